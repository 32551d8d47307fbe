//! Room metadata: who may write, server-owned keys, the whiteboard shape, size caps, broadcast of the map.

mod common;

use common::*;
use convene_conference::{Access, Config, MetadataWriters};
use convene_proto::{ClientMessage as C, ErrorCode, ServerMessage as S};
use serde_json::{Value, json};

fn set(key: &str, value: Value) -> C {
    C::SetMetadata {
        key: key.into(),
        value,
    }
}

fn whiteboard() -> Value {
    json!({"collabDetails": {"roomId": "d3c1a9f0e2b4c6a8d0e2", "roomKey": "AbCdEfGhIjKlMnOpQrStUv"},
           "collabServerUrl": "https://meet.example.org/"})
}

#[test]
fn moderator_writes_and_everyone_receives_the_whole_map() {
    let mut r = open_room(&["ada", "bob"]);
    send(&mut r, "ada", set("topic", json!("standup")));
    let out = send(&mut r, "ada", set("whiteboard", whiteboard()));
    let want = S::Metadata {
        metadata: [
            ("topic".to_owned(), json!("standup")),
            ("whiteboard".to_owned(), whiteboard()),
        ]
        .into(),
    };
    assert_eq!(to(&out, "bob"), [&want]);
    assert_eq!(to(&out, "ada"), [&want]);
    let out = join(&mut r, T0 + 90_000, "cy", anon("cy"));
    assert!(
        matches!(to(&out, "cy").last(), Some(S::Welcome { metadata, .. }) if metadata.len() == 2)
    );
    // Writing the same value again says nothing; null deletes.
    assert!(send(&mut r, "ada", set("topic", json!("standup"))).is_empty());
    let out = send(&mut r, "ada", set("topic", Value::Null));
    assert!(
        matches!(to(&out, "bob")[..], [S::Metadata { metadata }] if !metadata.contains_key("topic"))
    );
}

#[test]
fn server_owned_keys_are_read_only_for_clients_but_not_for_the_server() {
    let mut r = open_room(&["ada", "bob"]);
    assert_refused(
        &mut r,
        "ada",
        set("recording", json!({"active": true})),
        ErrorCode::ReadOnlyKey,
    );
    assert_refused(
        &mut r,
        "ada",
        set("recording", Value::Null),
        ErrorCode::ReadOnlyKey,
    );
    let out = r
        .server_set_metadata("recording", json!({"active": true}))
        .unwrap();
    assert!(
        matches!(to(&out, "bob")[..], [S::Metadata { metadata }] if metadata["recording"] == json!({"active": true}))
    );
}

#[test]
fn whiteboard_value_must_have_the_collab_shape() {
    let mut r = open_room(&["ada"]);
    for bad in [
        json!("https://whiteboard"),
        json!({"collabServerUrl": "https://x/"}),
        json!({"collabDetails": {"roomId": "a"}}),
        json!({"collabDetails": {"roomId": "", "roomKey": "k"}}),
        json!({"collabDetails": {"roomId": "a", "roomKey": 5}}),
        json!({"collabDetails": {"roomId": "a", "roomKey": "k"}, "collabServerUrl": 1}),
    ] {
        assert_refused(
            &mut r,
            "ada",
            set("whiteboard", bad),
            ErrorCode::InvalidValue,
        );
    }
    assert!(r.server_set_metadata("whiteboard", json!(3)).is_err());
}

#[test]
fn keys_and_values_are_capped() {
    let config = Config {
        max_metadata_keys: 2,
        max_metadata_value_bytes: 100,
        ..Default::default()
    };
    let mut r = room_with(config, Access::Open);
    join(&mut r, T0, "ada", anon("ada"));
    assert_refused(&mut r, "ada", set("", json!(1)), ErrorCode::InvalidValue);
    assert_refused(
        &mut r,
        "ada",
        set(&"k".repeat(65), json!(1)),
        ErrorCode::InvalidValue,
    );
    assert_refused(
        &mut r,
        "ada",
        set("a\nb", json!(1)),
        ErrorCode::InvalidValue,
    );
    assert_refused(
        &mut r,
        "ada",
        set("big", json!("x".repeat(100))),
        ErrorCode::TooLarge,
    );
    send(&mut r, "ada", set("one", json!(1)));
    send(&mut r, "ada", set("two", json!(2)));
    assert_refused(&mut r, "ada", set("three", json!(3)), ErrorCode::TooLarge);
    // Overwriting an existing key is fine when the map is full.
    assert!(!send(&mut r, "ada", set("two", json!(22))).is_empty());
}

#[test]
fn everyone_may_write_when_configured() {
    let config = Config {
        metadata_writers: MetadataWriters::Everyone,
        ..Default::default()
    };
    let mut r = room_with(config, Access::Open);
    join(&mut r, T0, "ada", anon("ada"));
    join(&mut r, T0, "bob", anon("bob"));
    let out = send(&mut r, "bob", set("topic", json!("hi")));
    assert_eq!(error(&out, "bob"), None);
    assert_refused(
        &mut r,
        "bob",
        set("recording", json!(1)),
        ErrorCode::ReadOnlyKey,
    );
}
