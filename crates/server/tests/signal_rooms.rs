//! Room features over real WebSockets: chat, lobby, password, kick, end, and metadata.

mod signal_support;

use convene_proto::{ErrorCode, KnockOutcome, LeaveReason, ServerMessage as S};
use serde_json::json;
use signal_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn chat_room_private_and_history() {
    let server = Server::start("").await;
    let (mut ada, ada_id) = server.join("chat", "Ada").await;
    let (mut bob, bob_id) = server.join("chat", "Bob").await;
    let (mut cy, _) = server.join("chat", "Cy").await;
    ada.recv_until(
        |m| matches!(m, S::ParticipantJoined { participant } if participant.name == "Cy"),
    )
    .await;
    bob.recv_until(|m| matches!(m, S::ParticipantJoined { .. }))
        .await;

    ada.send(json!({"type": "chat", "text": "hello all"})).await;
    for c in [&mut ada, &mut bob, &mut cy] {
        assert!(
            matches!(c.recv().await, S::Chat { message } if message.text == "hello all" && message.from == ada_id && message.to.is_none())
        );
    }
    ada.send(json!({"type": "chat", "text": "psst", "to": bob_id}))
        .await;
    assert!(
        matches!(bob.recv().await, S::Chat { message } if message.text == "psst" && message.to.as_deref() == Some(bob_id.as_str()))
    );
    assert!(matches!(ada.recv().await, S::Chat { message } if message.text == "psst"));
    cy.quiet_for(std::time::Duration::from_millis(200)).await;

    let mut dee = server.client("chat", "").await;
    dee.send(json!({"type": "join", "protocol_version": 1, "display_name": "Dee"}))
        .await;
    let S::Welcome { chat_history, .. } = dee.recv().await else {
        panic!("no welcome")
    };
    let texts: Vec<_> = chat_history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello all"], "private messages are not kept");
    server.stop().await;
}

#[tokio::test]
async fn lobby_knock_admit_and_deny() {
    let server = Server::start("").await;
    let (mut ada, ada_id) = server.join("lobby", "Ada").await;
    ada.send(json!({"type": "set_lobby", "enabled": true}))
        .await;
    assert!(matches!(ada.recv().await, S::RoomUpdated { room } if room.lobby_enabled));

    let mut kay = server.client("lobby", "").await;
    kay.send(json!({"type": "join", "protocol_version": 1, "display_name": "Kay"}))
        .await;
    assert_eq!(kay.recv().await, S::LobbyWaiting);
    let S::Knock { knocker } = ada.recv().await else {
        panic!("no knock")
    };
    assert_eq!(knocker.name, "Kay");
    kay.send(json!({"type": "chat", "text": "let me in"})).await;
    kay.expect_error(ErrorCode::NotJoined).await;

    ada.send(json!({"type": "admit", "participant": knocker.id}))
        .await;
    assert!(
        matches!(kay.recv().await, S::Welcome { you, participants, .. } if you == knocker.id && participants.len() == 2)
    );
    assert_eq!(
        ada.recv().await,
        S::KnockResolved {
            participant: knocker.id.clone(),
            outcome: KnockOutcome::Admitted,
            by: Some(ada_id.clone())
        }
    );
    assert!(
        matches!(ada.recv().await, S::ParticipantJoined { participant } if participant.id == knocker.id)
    );

    let mut lu = server.client("lobby", "name=Lu").await;
    lu.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    assert_eq!(lu.recv().await, S::LobbyWaiting);
    let S::Knock { knocker } = ada.recv().await else {
        panic!("no knock")
    };
    kay.send(json!({"type": "deny", "participant": knocker.id}))
        .await;
    kay.expect_error(ErrorCode::Forbidden).await;
    ada.send(json!({"type": "deny", "participant": knocker.id}))
        .await;
    assert_eq!(lu.recv().await, S::LobbyDenied);
    assert_eq!(lu.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    server.stop().await;
}

#[tokio::test]
async fn password_locked_room() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("locked", "Ada").await;
    ada.send(json!({"type": "set_password", "password": "s3cret"}))
        .await;
    assert!(matches!(ada.recv().await, S::RoomUpdated { room } if room.locked));

    let mut eve = server.client("locked", "").await;
    eve.send(json!({"type": "join", "protocol_version": 1, "display_name": "Eve"}))
        .await;
    eve.expect_error(ErrorCode::PasswordRequired).await;
    eve.send(
        json!({"type": "join", "protocol_version": 1, "display_name": "Eve", "password": "guess"}),
    )
    .await;
    eve.expect_error(ErrorCode::WrongPassword).await;
    ada.quiet_for(std::time::Duration::from_millis(200)).await;
    eve.send(
        json!({"type": "join", "protocol_version": 1, "display_name": "Eve", "password": "s3cret"}),
    )
    .await;
    assert!(matches!(eve.recv().await, S::Welcome { room, .. } if room.locked));
    assert!(
        matches!(ada.recv().await, S::ParticipantJoined { participant } if participant.name == "Eve")
    );
    server.stop().await;
}

#[tokio::test]
async fn kick_and_end_meeting() {
    let server = Server::start("").await;
    let (mut ada, ada_id) = server.join("kick", "Ada").await;
    let (mut bob, bob_id) = server.join("kick", "Bob").await;
    let (mut cy, _) = server.join("kick", "Cy").await;
    ada.recv_until(
        |m| matches!(m, S::ParticipantJoined { participant } if participant.name == "Cy"),
    )
    .await;
    bob.recv_until(|m| matches!(m, S::ParticipantJoined { .. }))
        .await;

    ada.send(json!({"type": "kick", "participant": bob_id, "reason": "testing"}))
        .await;
    assert_eq!(
        bob.recv().await,
        S::Kicked {
            by: Some(ada_id.clone()),
            reason: Some("testing".into())
        }
    );
    assert_eq!(bob.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    assert_eq!(
        cy.recv().await,
        S::ParticipantLeft {
            participant: bob_id,
            reason: LeaveReason::Kicked
        }
    );

    // Someone still at the password prompt is told the meeting ended too.
    ada.send(json!({"type": "set_password", "password": "pw"}))
        .await;
    let mut eve = server.client("kick", "").await;
    eve.send(json!({"type": "join", "protocol_version": 1, "display_name": "Eve"}))
        .await;
    eve.expect_error(ErrorCode::PasswordRequired).await;

    ada.send(json!({"type": "end_meeting"})).await;
    eve.expect_error(ErrorCode::Unavailable).await;
    assert_eq!(eve.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    for c in [&mut ada, &mut cy] {
        assert_eq!(
            c.recv_until(|m| matches!(m, S::MeetingEnded { .. })).await,
            S::MeetingEnded {
                by: Some(ada_id.clone())
            }
        );
        assert_eq!(c.ended().await, Ended::Closed(Some(CloseCode::Normal)));
    }
    // The name is free again: a new meeting starts with a new moderator.
    let mut again = server.client("kick", "").await;
    again
        .send(json!({"type": "join", "protocol_version": 1, "display_name": "New"}))
        .await;
    assert!(
        matches!(again.recv().await, S::Welcome { participants, .. } if participants.len() == 1 && participants[0].role == convene_proto::Role::Moderator)
    );
    server.stop().await;
}

#[tokio::test]
async fn metadata_whiteboard_and_read_only_keys() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("meta", "Ada").await;
    let (mut bob, _) = server.join("meta", "Bob").await;
    ada.recv().await;
    let whiteboard = json!({"collabDetails": {"roomId": "0123456789abcdef0123", "roomKey": "AbCdEfGhIjKlMnOpQrStUv"},
                            "collabServerUrl": "http://127.0.0.1/"});
    ada.send(json!({"type": "set_metadata", "key": "whiteboard", "value": whiteboard}))
        .await;
    for c in [&mut ada, &mut bob] {
        assert!(
            matches!(c.recv().await, S::Metadata { metadata } if metadata["whiteboard"] == whiteboard)
        );
    }
    bob.send(json!({"type": "set_metadata", "key": "whiteboard", "value": null}))
        .await;
    bob.expect_error(ErrorCode::Forbidden).await;
    ada.send(json!({"type": "set_metadata", "key": "whiteboard", "value": {"collabDetails": {}}}))
        .await;
    ada.expect_error(ErrorCode::InvalidValue).await;
    ada.send(json!({"type": "set_metadata", "key": "recording", "value": {"active": true}}))
        .await;
    ada.expect_error(ErrorCode::ReadOnlyKey).await;
    let (mut cy, _) = (server.client("meta", "").await, ());
    cy.send(json!({"type": "join", "protocol_version": 1, "display_name": "Cy"}))
        .await;
    assert!(
        matches!(cy.recv().await, S::Welcome { metadata, .. } if metadata.len() == 1 && metadata["whiteboard"] == whiteboard)
    );
    server.stop().await;
}

#[tokio::test]
async fn media_state_hand_and_reactions_reach_everyone() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("state", "Ada").await;
    let (mut bob, bob_id) = server.join("state", "Bob").await;
    ada.recv().await;
    bob.send(json!({"type": "set_media_state", "audio_muted": true, "screen_sharing": true}))
        .await;
    assert!(
        matches!(ada.recv().await, S::ParticipantUpdated { participant } if participant.id == bob_id && participant.audio_muted && participant.screen_sharing)
    );
    bob.send(json!({"type": "raise_hand", "raised": true}))
        .await;
    assert!(
        matches!(ada.recv().await, S::ParticipantUpdated { participant } if participant.hand_raised_at.is_some())
    );
    bob.send(json!({"type": "reaction", "reaction": "love"}))
        .await;
    assert_eq!(
        ada.recv().await,
        S::Reaction {
            participant: bob_id,
            reaction: convene_proto::Reaction::Love
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn recording_requests_are_for_moderators() {
    let server = Server::start("").await;
    let (mut ada, _) = server.join("rec", "Ada").await;
    let (mut bob, _) = server.join("rec", "Bob").await;
    ada.recv().await;
    bob.send(json!({"type": "start_recording"})).await;
    bob.expect_error(ErrorCode::Forbidden).await;
    bob.send(json!({"type": "stop_recording"})).await;
    bob.expect_error(ErrorCode::Forbidden).await;
    // The moderator's request reaches the recorder; whatever it answers, the room's metadata is the
    // only place that says recording is on, and clients cannot write it themselves.
    ada.send(json!({"type": "start_recording"})).await;
    match ada.recv().await {
        S::Metadata { metadata } => assert_eq!(metadata["recording"]["active"], true),
        S::Error { code, request, .. } => {
            assert_eq!(code, ErrorCode::Unavailable);
            assert_eq!(request.as_deref(), Some("start_recording"));
        }
        other => panic!("unexpected {other:?}"),
    }
    ada.send(json!({"type": "set_metadata", "key": "recording", "value": {"active": true}}))
        .await;
    ada.expect_error(ErrorCode::ReadOnlyKey).await;
    server.stop().await;
}
