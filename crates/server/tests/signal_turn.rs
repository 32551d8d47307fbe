//! TURN credentials in `welcome`: with the embedded TURN server on, a joining participant gets URLs for
//! the host it connected to and a shared-secret username and password minted for its id, and a resumed
//! participant gets fresh ones; with TURN off the list is empty.

mod signal_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use convene::{config::Config, serve, shutdown::Lifecycle, turn::credentials};
use convene_proto::{IceServer, ServerMessage as S};
use serde_json::json;
use signal_support::*;

const SECRET: &str = "signal-turn-secret";

/// The full server with `toml`, on free ports.
async fn start(toml: &str) -> serve::Running {
    let toml = format!("{toml}\n[media]\nport = 0\nbind = \"127.0.0.1\"\n");
    let config = Config::parse(&toml).unwrap_or_else(|p| panic!("test config: {p:?}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve::start(config, serve::Mode::Full, listener, Lifecycle::new())
        .await
        .unwrap_or_else(|e| panic!("server did not start: {e}"))
}

fn welcome_parts(m: S) -> (String, String, Vec<IceServer>) {
    match m {
        S::Welcome {
            you,
            resume_token,
            ice_servers,
            ..
        } => (you, resume_token, ice_servers),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Checks one participant's credentials: the scheme coturn checks, for this id, valid for about a day.
fn assert_credentials(servers: &[IceServer], turn_port: u16, you: &str) {
    assert_eq!(servers.len(), 1, "{servers:?}");
    let server = &servers[0];
    assert_eq!(
        server.urls,
        [
            format!("turn:127.0.0.1:{turn_port}?transport=udp"),
            format!("turn:127.0.0.1:{turn_port}?transport=tcp"),
        ]
    );
    let (expiry, id) = server.username.split_once(':').expect("<expiry>:<id>");
    assert_eq!(id, you);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let left = expiry.parse::<u64>().unwrap().saturating_sub(now.as_secs());
    assert!(
        (24 * 3600 - 60..=24 * 3600).contains(&left),
        "{left} s left"
    );
    assert_eq!(
        server.credential,
        credentials::password(SECRET, &server.username)
    );
}

#[tokio::test]
async fn welcome_carries_turn_credentials_on_join_and_fresh_ones_on_resume() {
    let running = start(&format!(
        "[turn]\nmode = \"embedded\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.1:0\"\n"
    ))
    .await;
    let turn_port = running.turn.as_ref().expect("turn is on").port();
    let mut ada = Client::connect(running.addr, "turn", "").await;
    ada.send(json!({"type": "join", "protocol_version": 1, "display_name": "Ada"}))
        .await;
    let (you, token, servers) = welcome_parts(ada.recv().await);
    assert_credentials(&servers, turn_port, &you);

    // Expiry has one-second resolution: make sure the resumed credentials are visibly newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ada.drop_connection().await;
    let mut again = Client::connect(running.addr, "turn", "").await;
    again
        .send(json!({"type": "resume", "protocol_version": 1, "token": token}))
        .await;
    let (resumed, _, fresh) = welcome_parts(again.recv().await);
    assert_eq!(resumed, you);
    assert_credentials(&fresh, turn_port, &you);
    assert_ne!(fresh[0].username, servers[0].username, "fresh credentials");
    running.stop().await;
}

#[tokio::test]
async fn welcome_has_no_ice_servers_when_turn_is_off() {
    let running = start("").await;
    assert!(running.turn.is_none());
    let mut ada = Client::connect(running.addr, "noturn", "").await;
    ada.send(json!({"type": "join", "protocol_version": 1, "display_name": "Ada"}))
        .await;
    let (_, _, servers) = welcome_parts(ada.recv().await);
    assert!(servers.is_empty(), "{servers:?}");
    running.stop().await;
}
