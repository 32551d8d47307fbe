//! Token modes over real WebSockets, and `convene token` minting a token the server accepts.

mod signal_support;

use std::process::Command;

use convene_proto::{ErrorCode, Role, ServerMessage as S};
use serde_json::json;
use signal_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "a-test-secret-of-reasonable-length";

fn mint(room: &str, name: &str, moderator: bool) -> String {
    let config = convene::token::Config {
        secret: SECRET.into(),
        ..Default::default()
    };
    convene::token::mint(
        &config,
        room,
        name,
        moderator,
        std::time::Duration::from_secs(600),
        std::time::SystemTime::now(),
    )
    .unwrap()
}

fn config(mode: &str) -> String {
    format!("[auth]\nmode = \"{mode}\"\nsecret = \"{SECRET}\"\n")
}

#[tokio::test]
async fn token_mode_requires_a_valid_token() {
    let server = Server::start(&config("token")).await;
    let mut anon = server.client("secure", "").await;
    anon.expect_error(ErrorCode::TokenRequired).await;
    assert_eq!(anon.ended().await, Ended::Closed(Some(CloseCode::Policy)));

    let mut forged = server
        .client("secure", "jwt=eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
        .await;
    forged.expect_error(ErrorCode::TokenInvalid).await;
    assert_eq!(forged.ended().await, Ended::Closed(Some(CloseCode::Policy)));

    let mut wrong_room = server
        .client("secure", &format!("jwt={}", mint("other", "X", true)))
        .await;
    let text = wrong_room.expect_error(ErrorCode::TokenInvalid).await;
    assert!(text.contains("another room"), "{text}");

    let mut boss = server
        .client("Secure", &format!("jwt={}", mint("secure", "Boss", true)))
        .await;
    boss.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    let S::Welcome { participants, .. } = boss.recv().await else {
        panic!("no welcome")
    };
    assert_eq!(participants[0].name, "Boss", "the token's name is used");
    assert_eq!(participants[0].role, Role::Moderator);

    let mut user = server
        .client("secure", &format!("jwt={}", mint("*", "User", false)))
        .await;
    user.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    assert!(
        matches!(user.recv().await, S::Welcome { participants, .. } if participants[1].role == Role::Participant)
    );
    server.stop().await;
}

#[tokio::test]
async fn guests_enter_once_a_token_moderator_is_in() {
    let server = Server::start(&config("guests-after-moderator")).await;
    let mut guest = server.client("sd", "name=Guest%20One").await;
    guest
        .send(json!({"type": "join", "protocol_version": 1}))
        .await;
    guest.expect_error(ErrorCode::HostRequired).await;

    let mut host = server
        .client("sd", &format!("jwt={}", mint("sd", "Host", true)))
        .await;
    host.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    assert!(matches!(host.recv().await, S::Welcome { .. }));

    // Same connection, second try.
    guest
        .send(json!({"type": "join", "protocol_version": 1}))
        .await;
    let S::Welcome {
        you, participants, ..
    } = guest.recv().await
    else {
        panic!("no welcome")
    };
    let me = participants.iter().find(|p| p.id == you).unwrap();
    assert_eq!((me.name.as_str(), me.role), ("Guest One", Role::Guest));
    server.stop().await;
}

#[tokio::test]
async fn open_mode_still_refuses_a_bad_token_and_honours_a_good_one() {
    let server = Server::start(&config("open")).await;
    let (mut first, _) = server.join("open", "First").await;
    let mut bad = server.client("open", "jwt=garbage").await;
    bad.expect_error(ErrorCode::TokenInvalid).await;
    let mut boss = server
        .client("open", &format!("jwt={}", mint("open", "Boss", true)))
        .await;
    boss.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    assert!(matches!(boss.recv().await, S::Welcome { .. }));
    assert!(
        matches!(first.recv().await, S::ParticipantJoined { participant } if participant.role == Role::Moderator)
    );
    server.stop().await;
}

#[tokio::test]
async fn convene_token_command_mints_an_accepted_token() {
    let dir = std::env::temp_dir().join(format!("convene-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("convene.toml");
    std::fs::write(&file, config("token")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_convene"))
        .args([
            "token",
            "--room",
            "Daily",
            "--name",
            "Ada",
            "--moderator",
            "--ttl",
            "10m",
            "--config",
        ])
        .arg(&file)
        .env_remove("CONVENE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let server = Server::start(&config("token")).await;
    let mut ada = server.client("daily", &format!("jwt={token}")).await;
    ada.send(json!({"type": "join", "protocol_version": 1}))
        .await;
    let S::Welcome { participants, .. } = ada.recv().await else {
        panic!("no welcome")
    };
    assert_eq!(
        (participants[0].name.as_str(), participants[0].role),
        ("Ada", Role::Moderator)
    );
    server.stop().await;

    // Without a secret there is nothing to sign with.
    let out = Command::new(env!("CARGO_BIN_EXE_convene"))
        .args(["token", "--room", "r", "--name", "n"])
        .env_remove("CONVENE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret"));
    std::fs::remove_dir_all(&dir).ok();
}
