//! The admin REST API against the real server: auth, listing, kick, end, metadata.

mod signal_support;

use convene_proto::{LeaveReason, ServerMessage as S};
use serde_json::{Value, json};
use signal_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const ADMIN: &str = "admin-test-token";

#[tokio::test]
async fn admin_api_needs_the_bearer_token_and_is_off_without_one() {
    let server = Server::start("").await;
    let (status, body) = server.http("GET", "/api/v1/rooms", Some("x"), "").await;
    assert_eq!(status, 404);
    assert!(body.contains("admin_token"), "{body}");
    server.stop().await;

    let server = Server::start(&format!("[auth]\nadmin_token = \"{ADMIN}\"\n")).await;
    assert_eq!(server.http("GET", "/api/v1/rooms", None, "").await.0, 401);
    assert_eq!(
        server
            .http("GET", "/api/v1/rooms", Some("wrong"), "")
            .await
            .0,
        401
    );
    let (status, body) = server.http("GET", "/api/v1/rooms", Some(ADMIN), "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"rooms": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn list_kick_metadata_and_end() {
    let server = Server::start(&format!("[auth]\nadmin_token = \"{ADMIN}\"\n")).await;
    let (mut ada, ada_id) = server.join("ops", "Ada").await;
    let (mut bob, bob_id) = server.join("ops", "Bob").await;
    ada.recv().await;

    let (status, body) = server.http("GET", "/api/v1/rooms", Some(ADMIN), "").await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["rooms"][0]["room"]["name"], "ops");
    let names: Vec<&str> = list["rooms"][0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Bob"]);
    let (status, body) = server
        .http("GET", "/api/v1/rooms/OPS", Some(ADMIN), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server
            .http("GET", "/api/v1/rooms/nope", Some(ADMIN), "")
            .await
            .0,
        404
    );

    // Server-owned keys are writable by the operator.
    let (status, body) = server
        .http(
            "PUT",
            "/api/v1/rooms/ops/metadata/recording",
            Some(ADMIN),
            r#"{"active":true}"#,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for c in [&mut ada, &mut bob] {
        assert!(
            matches!(c.recv().await, S::Metadata { metadata } if metadata["recording"] == json!({"active": true}))
        );
    }
    let (status, body) = server
        .http(
            "PUT",
            "/api/v1/rooms/ops/metadata/whiteboard",
            Some(ADMIN),
            "[1]",
        )
        .await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["code"].as_str()
        ),
        (400, Some("invalid_value"))
    );
    assert_eq!(
        server
            .http("PUT", "/api/v1/rooms/ops/metadata/k", Some(ADMIN), "{oops")
            .await
            .0,
        400
    );

    assert_eq!(
        server
            .http("POST", "/api/v1/rooms/nope/recording", Some(ADMIN), "")
            .await
            .0,
        404
    );
    // With a recorder this starts recording; without one the operator is told why not.
    let (status, body) = server
        .http("POST", "/api/v1/rooms/ops/recording", Some(ADMIN), "")
        .await;
    assert!(
        status == 204 || (status == 503 && body.contains("\"unavailable\"")),
        "{status} {body}"
    );
    if status == 204 {
        // Everyone is told through the server-owned key.
        for c in [&mut ada, &mut bob] {
            assert!(
                matches!(c.recv().await, S::Metadata { metadata } if metadata["recording"]["active"] == json!(true))
            );
        }
    }

    assert_eq!(
        server
            .http(
                "DELETE",
                "/api/v1/rooms/ops/participants/nobody",
                Some(ADMIN),
                ""
            )
            .await
            .0,
        404
    );
    assert_eq!(
        server
            .http(
                "DELETE",
                &format!("/api/v1/rooms/ops/participants/{bob_id}"),
                Some(ADMIN),
                ""
            )
            .await
            .0,
        204
    );
    assert_eq!(
        bob.recv().await,
        S::Kicked {
            by: None,
            reason: None
        }
    );
    assert_eq!(bob.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    assert_eq!(
        ada.recv().await,
        S::ParticipantLeft {
            participant: bob_id,
            reason: LeaveReason::Kicked
        }
    );

    assert_eq!(
        server
            .http("DELETE", "/api/v1/rooms/ops", Some(ADMIN), "")
            .await
            .0,
        204
    );
    assert_eq!(ada.recv().await, S::MeetingEnded { by: None });
    assert_eq!(ada.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    let _ = ada_id;
    // The ended room is gone from the list.
    let (_, body) = server.http("GET", "/api/v1/rooms", Some(ADMIN), "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"rooms": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_rooms_participants_and_errors() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("m", "Ada").await;
    ada.send_raw("nope").await;
    ada.expect_error(convene_proto::ErrorCode::BadJson).await;
    let (status, body) = server.http("GET", "/metrics", None, "").await;
    assert_eq!(status, 200);
    for line in [
        "convene_conference_rooms 1",
        "convene_conference_participants 1",
        "convene_conference_connections 1",
        "convene_conference_errors_total{code=\"bad_json\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in\n{body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_empty_room_is_removed_after_its_grace_period() {
    let server = Server::start(&format!(
        "[auth]\nadmin_token = \"{ADMIN}\"\n[conference]\nempty_room_grace = \"1s\"\n"
    ))
    .await;
    let (mut ada, _) = server.join("brief", "Ada").await;
    ada.send(json!({"type": "set_metadata", "key": "topic", "value": "kept while empty"}))
        .await;
    ada.recv().await;
    ada.send(json!({"type": "leave"})).await;
    assert_eq!(ada.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    // Within the grace period the room and its state are still there...
    let (status, body) = server
        .http("GET", "/api/v1/rooms/brief", Some(ADMIN), "")
        .await;
    assert_eq!(status, 200);
    let room: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(room["participants"], json!([]));
    assert_eq!(room["metadata"]["topic"], "kept while empty");
    // ...and after it, gone.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(
        server
            .http("GET", "/api/v1/rooms/brief", Some(ADMIN), "")
            .await
            .0,
        404
    );
    let (_, metrics) = server.http("GET", "/metrics", None, "").await;
    assert!(
        metrics.lines().any(|l| l == "convene_conference_rooms 0"),
        "{metrics}"
    );
    // A newcomer gets a fresh room.
    let mut bob = server.client("brief", "").await;
    bob.send(json!({"type": "join", "protocol_version": 1, "display_name": "Bob"}))
        .await;
    assert!(matches!(bob.recv().await, S::Welcome { metadata, .. } if metadata.is_empty()));
    server.stop().await;
}

/// The latest `recording` value in a `metadata` message.
async fn recording_value(c: &mut Client) -> Value {
    match c
        .recv_until(
            |m| matches!(m, S::Metadata { metadata } if metadata.get("recording").is_some()),
        )
        .await
    {
        S::Metadata { metadata } => metadata["recording"].clone(),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn recordings_say_who_started_and_stopped_them() {
    let dir = std::env::temp_dir().join(format!("convene-admin-actors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start(&format!(
        "[auth]\nadmin_token = \"{ADMIN}\"\n[recording]\nrecordings_dir = {:?}\nmin_free_space_mb = 0\ncompose = false\n",
        dir.to_string_lossy()
    ))
    .await;
    let (mut ada, ada_id) = server.join("actors", "Ada").await;
    let (mut bob, _) = server.join("actors", "Bob").await;

    // The operator starts it: `by` is null as before, and `by_kind`/`by_name` name the admin API.
    let (status, body) = server
        .http("POST", "/api/v1/rooms/actors/recording", Some(ADMIN), "")
        .await;
    assert_eq!(status, 204, "{body}");
    for c in [&mut ada, &mut bob] {
        let v = recording_value(c).await;
        assert_eq!(v["active"], json!(true));
        assert_eq!(v["by"], Value::Null);
        assert_eq!(v["by_kind"], json!("admin_api"));
        assert_eq!(v["by_name"], json!("admin API"));
    }

    // The moderator stops it from the meeting.
    ada.send(json!({"type": "stop_recording"})).await;
    for c in [&mut ada, &mut bob] {
        let v = recording_value(c).await;
        assert_eq!(v["active"], json!(false));
        assert_eq!(v["by"], json!(ada_id.to_string()));
        assert_eq!(v["by_kind"], json!("participant"));
        assert_eq!(v["by_name"], json!("Ada"));
    }

    let recordings: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(recordings[0].join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["started_by"], json!({"kind": "admin_api"}));
    assert_eq!(
        manifest["stopped_by"],
        json!({"kind": "participant", "id": ada_id.to_string(), "name": "Ada"})
    );
    assert_eq!(manifest["end_reason"], json!("stopped"));
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
