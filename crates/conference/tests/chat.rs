//! Chat: room and private messages, bounded history for late joiners, size caps.

mod common;

use common::*;
use convene_conference::{Access, Config};
use convene_proto::{ClientMessage as C, ErrorCode, ServerMessage as S};

fn chat(text: &str, to: Option<&str>) -> C {
    C::Chat {
        text: text.into(),
        to: to.map(Into::into),
    }
}

#[test]
fn room_message_reaches_everyone_including_the_sender() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(&mut r, "bob", chat("hello", None));
    for id in ["ada", "bob", "cy"] {
        assert!(
            matches!(to(&out, id)[..], [S::Chat { message }] if message.text == "hello" && message.from == "bob" && message.from_name == "bob" && message.to.is_none() && message.id == 1)
        );
    }
}

#[test]
fn private_message_reaches_only_sender_and_recipient_and_is_not_kept() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(&mut r, "bob", chat("psst", Some("cy")));
    assert_eq!(to(&out, "bob").len(), 1);
    assert!(
        matches!(to(&out, "cy")[..], [S::Chat { message }] if message.to.as_deref() == Some("cy"))
    );
    assert!(to(&out, "ada").is_empty());
    let out = join(&mut r, T0 + 90_000, "dee", anon("dee"));
    assert!(
        matches!(to(&out, "dee").last(), Some(S::Welcome { chat_history, .. }) if chat_history.is_empty())
    );
    assert_refused(
        &mut r,
        "bob",
        chat("psst", Some("ghost")),
        ErrorCode::NotFound,
    );
}

#[test]
fn late_joiners_get_the_last_n_room_messages() {
    let config = Config {
        chat_history: 3,
        ..Default::default()
    };
    let mut r = room_with(config, Access::Open);
    join(&mut r, T0, "ada", anon("ada"));
    for i in 1..=5 {
        send(&mut r, "ada", chat(&format!("m{i}"), None));
    }
    let out = join(&mut r, T0 + 90_000, "bob", anon("bob"));
    let Some(S::Welcome { chat_history, .. }) = to(&out, "bob").last().copied() else {
        panic!("no welcome: {out:?}");
    };
    let texts: Vec<&str> = chat_history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m3", "m4", "m5"]);
    assert_eq!(chat_history[0].id, 3);
}

#[test]
fn empty_and_oversized_messages_are_refused() {
    let mut r = open_room(&["ada"]);
    assert_refused(&mut r, "ada", chat("   ", None), ErrorCode::InvalidValue);
    let max = Config::default().max_chat_bytes;
    assert_refused(
        &mut r,
        "ada",
        chat(&"é".repeat(max / 2 + 1), None),
        ErrorCode::TooLarge,
    );
    let out = send(&mut r, "ada", chat(&"x".repeat(max), None));
    assert_eq!(error(&out, "ada"), None);
}

#[test]
fn outsiders_cannot_chat() {
    let mut r = open_room(&["ada"]);
    assert_refused(&mut r, "stranger", chat("hi", None), ErrorCode::NotJoined);
}
