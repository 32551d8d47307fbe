//! Joining over a real WebSocket: welcome, roles and moderator hand-over, reconnect, and bad input.

mod signal_support;

use std::time::Duration;

use convene_proto::{ErrorCode, LeaveReason, Role, ServerMessage as S};
use serde_json::json;
use signal_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn join_welcome_and_moderator_hand_over() {
    let server = Server::start("").await;
    let (mut ada, ada_id) = server.join("Standup", "Ada").await;
    let (mut bob, bob_id) = server.join("standup", "Bob").await;
    let (mut cy, cy_id) = server.join("STANDUP", "Cy").await;
    // One room despite the different cases; everyone hears of every newcomer.
    let joined = ada.recv().await;
    assert!(
        matches!(&joined, S::ParticipantJoined { participant } if participant.id == bob_id && participant.name == "Bob" && participant.role == Role::Participant)
    );
    ada.recv_until(
        |m| matches!(m, S::ParticipantJoined { participant } if participant.id == cy_id),
    )
    .await;
    bob.recv_until(
        |m| matches!(m, S::ParticipantJoined { participant } if participant.id == cy_id),
    )
    .await;

    ada.send(json!({"type": "leave"})).await;
    assert_eq!(ada.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    for c in [&mut bob, &mut cy] {
        let left = c.recv().await;
        assert_eq!(
            left,
            S::ParticipantLeft {
                participant: ada_id.clone(),
                reason: LeaveReason::Left
            }
        );
        let promoted = c.recv().await;
        assert!(
            matches!(&promoted, S::ParticipantUpdated { participant } if participant.id == bob_id && participant.role == Role::Moderator),
            "{promoted:?}"
        );
    }
    // Bob can now use moderator powers; Cy cannot.
    cy.send(json!({"type": "kick", "participant": bob_id}))
        .await;
    cy.expect_error(ErrorCode::Forbidden).await;
    bob.send(json!({"type": "mute", "participant": cy_id, "kind": "audio"}))
        .await;
    assert_eq!(
        cy.recv().await,
        S::Muted {
            kind: convene_proto::TrackKind::Audio,
            by: bob_id.clone()
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn welcome_carries_room_state() {
    let server = Server::start("").await;
    let mut ada = server.client("state", "name=Ada%20L").await;
    ada.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    let S::Welcome {
        protocol_version,
        you,
        room,
        participants,
        resume_token,
        ..
    } = ada.recv().await
    else {
        panic!("no welcome")
    };
    assert_eq!(protocol_version, convene_proto::PROTOCOL_VERSION);
    assert_eq!(room.name, "state");
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0].id, you);
    assert_eq!(
        participants[0].name, "Ada L",
        "?name= is used when join has no display_name"
    );
    assert_eq!(participants[0].role, Role::Moderator);
    assert!(resume_token.len() >= 32);
    server.stop().await;
}

#[tokio::test]
async fn reconnect_within_grace_keeps_the_place() {
    let server = Server::start("[conference]\nreconnect_grace = \"4s\"\n").await;
    let mut ada = server.client("rc", "").await;
    ada.send(json!({"type": "join", "protocol_version": 1, "display_name": "Ada"}))
        .await;
    let welcome = ada.recv().await;
    let token = welcome_token(&welcome);
    let S::Welcome { you: ada_id, .. } = welcome else {
        unreachable!()
    };
    let (mut bob, _) = server.join("rc", "Bob").await;
    bob.send(json!({"type": "chat", "text": "while you were away"}))
        .await;
    ada.recv_until(|m| matches!(m, S::Chat { .. })).await;

    ada.drop_connection().await;
    bob.recv().await; // own chat echo
    bob.quiet_for(Duration::from_millis(300)).await;
    bob.send(json!({"type": "chat", "text": "missed"})).await;
    bob.recv().await;

    let mut again = server.client("rc", "").await;
    again
        .send(json!({"type": "resume", "protocol_version": 1, "token": token}))
        .await;
    let S::Welcome {
        you,
        chat_history,
        participants,
        resume_token,
        ..
    } = again.recv().await
    else {
        panic!("no welcome on resume")
    };
    assert_eq!(you, ada_id);
    assert_eq!(participants.len(), 2);
    assert_eq!(chat_history.last().unwrap().text, "missed");
    assert_ne!(resume_token, token);
    // Nobody saw Ada leave.
    bob.quiet_for(Duration::from_millis(4300)).await;

    // A spent token fails; the connection stays and may join afresh.
    let mut late = server.client("rc", "").await;
    late.send(json!({"type": "resume", "protocol_version": 1, "token": token}))
        .await;
    late.expect_error(ErrorCode::ResumeFailed).await;
    late.join("Late").await;
    server.stop().await;
}

#[tokio::test]
async fn place_is_lost_after_the_grace_period() {
    let server = Server::start("[conference]\nreconnect_grace = \"300ms\"\n").await;
    let (ada, ada_id) = server.join("gone", "Ada").await;
    let (mut bob, bob_id) = server.join("gone", "Bob").await;
    ada.drop_connection().await;
    let left = bob.recv().await;
    assert_eq!(
        left,
        S::ParticipantLeft {
            participant: ada_id,
            reason: LeaveReason::Timeout
        }
    );
    let promoted = bob.recv().await;
    assert!(
        matches!(promoted, S::ParticipantUpdated { participant } if participant.id == bob_id && participant.role == Role::Moderator)
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_keeps_the_connection() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("bad", "Ada").await;
    let (mut bob, bob_id) = server.join("bad", "Bob").await;
    ada.recv().await;
    for (frame, code) in [
        ("{not json", ErrorCode::BadJson),
        ("42", ErrorCode::BadJson),
        (r#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (r#"{"type":"chat","text":7}"#, ErrorCode::BadMessage),
        (r#"{"type":"raise_hand"}"#, ErrorCode::BadMessage),
        (r#"{"type":"chat","text":""}"#, ErrorCode::InvalidValue),
        (
            r#"{"type":"join","protocol_version":1}"#,
            ErrorCode::AlreadyJoined,
        ),
        (
            r#"{"type":"set_metadata","key":"recording","value":1}"#,
            ErrorCode::ReadOnlyKey,
        ),
    ] {
        ada.send_raw(frame).await;
        ada.expect_error(code).await;
    }
    bob.send(json!({"type": "end_meeting"})).await;
    let msg = bob.expect_error(ErrorCode::Forbidden).await;
    assert!(msg.contains("moderator"));
    // Nothing changed and both connections still work.
    ada.send(json!({"type": "chat", "text": "still here"}))
        .await;
    assert!(matches!(bob.recv().await, S::Chat { message } if message.text == "still here"));
    ada.send(json!({"type": "raise_hand", "raised": true}))
        .await;
    ada.recv_until(|m| matches!(m, S::Chat { .. })).await;
    assert!(matches!(ada.recv().await, S::ParticipantUpdated { .. }));
    let _ = bob_id;
    server.stop().await;
}

#[tokio::test]
async fn messages_before_join_are_refused() {
    let server = Server::start("").await;
    let mut c = server.client("early", "").await;
    c.send(json!({"type": "chat", "text": "hi"})).await;
    c.expect_error(ErrorCode::NotJoined).await;
    c.send(json!({"type": "sdp_offer", "sdp": "v=0"})).await;
    c.expect_error(ErrorCode::NotJoined).await;
    c.join("Ada").await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let server = Server::start("[conference]\nmax_frame_bytes = 2048\n").await;
    let (mut ada, _) = server.join("big", "Ada").await;
    let (mut bob, bob_id) = server.join("big", "Bob").await;
    ada.recv().await;
    let huge = json!({"type": "chat", "text": "x".repeat(3000)}).to_string();
    bob.send_raw(&huge).await;
    assert_eq!(bob.ended().await, Ended::Closed(Some(CloseCode::Size)));
    // Bob's place is kept for a resume, and Ada's connection is untouched.
    ada.send(json!({"type": "chat", "text": "fine"})).await;
    assert!(matches!(ada.recv().await, S::Chat { .. }));
    let _ = bob_id;
    server.stop().await;
}

#[tokio::test]
async fn a_flood_closes_only_that_connection() {
    let server =
        Server::start("[conference]\nrate_limit_per_second = 5\nrate_limit_burst = 10\n").await;
    let (mut ada, _) = server.join("flood", "Ada").await;
    let (mut bob, _) = server.join("flood", "Bob").await;
    ada.recv().await;
    for _ in 0..40 {
        if !bob
            .try_send_raw(r#"{"type":"reaction","reaction":"clap"}"#)
            .await
        {
            break;
        }
    }
    let mut reactions = 0;
    let code = loop {
        match bob
            .recv_until(|m| matches!(m, S::Error { .. } | S::Reaction { .. }))
            .await
        {
            S::Reaction { .. } => reactions += 1,
            S::Error { code, .. } => break code,
            _ => unreachable!(),
        }
    };
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(
        reactions <= 10,
        "{reactions} reactions got through a burst of 10"
    );
    assert_eq!(bob.ended().await, Ended::Closed(Some(CloseCode::Policy)));
    ada.send(json!({"type": "chat", "text": "unaffected"}))
        .await;
    ada.recv_until(|m| matches!(m, S::Chat { .. })).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_room_names_and_versions_are_refused() {
    let server = Server::start("").await;
    let mut c = server.client("bad%20room", "").await;
    let text = c.expect_error(ErrorCode::InvalidRoomName).await;
    assert!(text.contains("' '"), "{text}");
    assert_eq!(c.ended().await, Ended::Closed(Some(CloseCode::Policy)));
    let mut c = server.client("fine", "").await;
    c.send(json!({"type": "join", "protocol_version": 99}))
        .await;
    c.expect_error(ErrorCode::UnsupportedVersion).await;
    assert_eq!(c.ended().await, Ended::Closed(Some(CloseCode::Policy)));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_going_away() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("bye", "Ada").await;
    let stop = tokio::spawn(server.stop());
    assert_eq!(ada.ended().await, Ended::Closed(Some(CloseCode::Away)));
    stop.await.unwrap();
}
