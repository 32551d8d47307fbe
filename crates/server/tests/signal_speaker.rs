//! Dominant speaker and last-N through the real server: str0m test clients on real UDP sockets
//! send audio with RFC 6464 levels, everyone hears `dominant_speaker` over the WebSocket, and a
//! client that asks for `set_last_n` 1 receives only the speaker's camera. Bad `set_last_n`
//! values get a clear error.

mod signal_support;

use std::time::Duration;

use convene_proto::{ErrorCode, MediaSource, ServerMessage as S};
use convene_testkit::udp::UdpPeer;
use serde_json::json;
use signal_support::*;
use tokio::sync::mpsc;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

struct Participant {
    id: String,
    peer: UdpPeer,
    /// Errors the server sent.
    errors: mpsc::UnboundedReceiver<S>,
    to_ws: mpsc::UnboundedSender<serde_json::Value>,
}

async fn participant(server: &Server, room: &str, name: &str) -> Participant {
    let (ws, id) = server.join(room, name).await;
    // The test client keeps media messages, dominant_speaker and paused_tracks; errors go aside.
    let b = bridge(ws, |m| !matches!(m, S::Error { .. }));
    let peer = UdpPeer::start(&id, AV, b.to_server, b.from_server)
        .await
        .unwrap();
    peer.client().audio_level = Some(-127);
    Participant {
        id,
        peer,
        errors: b.rest,
        to_ws: b.to_ws,
    }
}

fn camera_frames(p: &Participant, from: &str) -> u64 {
    p.peer
        .client()
        .received_from(from, MediaSource::Camera)
        .map_or(0, |r| r.frames)
}

async fn error_code(p: &mut Participant) -> (ErrorCode, Option<String>, String) {
    match tokio::time::timeout(Duration::from_secs(5), p.errors.recv()).await {
        Ok(Some(S::Error {
            code,
            request,
            message,
        })) => (code, request, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speaker_is_announced_and_last_n_one_forwards_only_that_camera() {
    let server = Server::start("").await;
    let mut ada = participant(&server, "talk", "Ada").await;
    let bob = participant(&server, "talk", "Bob").await;
    let cy = participant(&server, "talk", "Cy").await;
    let all = [&ada, &bob, &cy];
    let flowing = eventually(Duration::from_secs(15), || {
        all.iter().all(|me| {
            all.iter()
                .filter(|o| o.id != me.id)
                .all(|o| camera_frames(me, &o.id) > 10)
        })
    })
    .await;
    assert!(flowing, "video does not flow");

    // Bob speaks; the others send silence.
    bob.peer.client().audio_level = Some(-20);
    let announced = eventually(Duration::from_secs(6), || {
        all.iter()
            .all(|p| p.peer.client().dominant.as_deref() == Some(bob.id.as_str()))
    })
    .await;
    assert!(announced, "not everyone heard that bob speaks");

    // Ada wants one video: bob's flows, cy's stops and is listed as paused.
    ada.to_ws
        .send(json!({"type": "set_last_n", "last_n": 1}))
        .unwrap();
    let cy_mid = ada
        .peer
        .client()
        .tracks
        .iter()
        .find(|t| t.participant_id == cy.id && t.source == MediaSource::Camera)
        .map(|t| t.mid.clone())
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || ada.peer.client().paused
            == [cy_mid.clone()])
        .await,
        "paused: {:?}",
        ada.peer.client().paused
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (bob0, cy0) = (camera_frames(&ada, &bob.id), camera_frames(&ada, &cy.id));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (bob1, cy1) = (camera_frames(&ada, &bob.id), camera_frames(&ada, &cy.id));
    assert!(bob1 - bob0 >= 20, "bob's camera: {bob0} -> {bob1}");
    assert_eq!(cy1, cy0, "cy's camera still flows");

    // Bad values get an error naming the request; the setting stays.
    for (text, code) in [
        (
            r#"{"type":"set_last_n","last_n":-1}"#,
            ErrorCode::BadMessage,
        ),
        (
            r#"{"type":"set_last_n","last_n":99999999999}"#,
            ErrorCode::BadMessage,
        ),
        (
            r#"{"type":"set_last_n","last_n":"two"}"#,
            ErrorCode::BadMessage,
        ),
        (r#"{"type":"set_last_n"}"#, ErrorCode::BadMessage),
        (
            r#"{"type":"set_last_n","last_n":1000}"#,
            ErrorCode::InvalidValue,
        ),
    ] {
        ada.to_ws.send(serde_json::from_str(text).unwrap()).unwrap();
        let (got, request, message) = error_code(&mut ada).await;
        assert_eq!(got, code, "{text}: {message}");
        assert_eq!(request.as_deref(), Some("set_last_n"), "{text}");
        assert!(message.contains("last_n"), "{text}: {message}");
    }
    assert_eq!(ada.peer.client().paused, [cy_mid]);
    server.stop().await;
}
