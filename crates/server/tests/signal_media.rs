//! Signaling and media together: str0m test clients negotiate over the real WebSocket endpoint and
//! exchange audio and video over the server's UDP socket; a kick removes the kicked one's tracks.

mod signal_support;

use std::time::Duration;

use convene_proto::{MediaSource, ServerMessage as S};
use convene_testkit::udp::UdpPeer;
use serde_json::json;
use signal_support::*;
use tokio::sync::mpsc;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

/// A participant: a WebSocket client joined to `room`, bridged to a str0m peer on its own UDP socket.
struct Participant {
    id: String,
    peer: UdpPeer,
    /// Every non-media message the server sent, in order.
    other: mpsc::UnboundedReceiver<S>,
    to_ws: mpsc::UnboundedSender<serde_json::Value>,
}

async fn participant(server: &Server, room: &str, name: &str) -> Participant {
    let (ws, id) = server.join(room, name).await;
    let b = bridge(ws, is_media);
    let peer = UdpPeer::start(&id, AV, b.to_server, b.from_server)
        .await
        .unwrap();
    Participant {
        id,
        peer,
        other: b.rest,
        to_ws: b.to_ws,
    }
}

fn frames(p: &Participant, from: &str, source: MediaSource) -> u64 {
    p.peer
        .client()
        .received_from(from, source)
        .map_or(0, |r| r.frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_between_participants_negotiated_over_the_websocket() {
    let server = Server::start("").await;
    let mut ada = participant(&server, "av", "Ada").await;
    let bob = participant(&server, "av", "Bob").await;
    let cy = participant(&server, "av", "Cy").await;
    let all = [&ada, &bob, &cy];
    let flowing = eventually(Duration::from_secs(15), || {
        all.iter().all(|me| {
            all.iter().filter(|o| o.id != me.id).all(|o| {
                frames(me, &o.id, MediaSource::Camera) > 10
                    && frames(me, &o.id, MediaSource::Microphone) > 20
            })
        })
    })
    .await;
    for p in all {
        let c = p.peer.client();
        assert!(
            flowing,
            "{}: tracks {:?} received {:?} errors {:?}",
            p.id, c.tracks, c.received, c.media_errors
        );
        assert!(c.media_errors.is_empty(), "{:?}", c.media_errors);
    }

    // Kicking Cy removes Cy's tracks from the others (the room calls the media engine's leave).
    ada.to_ws
        .send(json!({"type": "kick", "participant": cy.id}))
        .unwrap();
    let gone = eventually(Duration::from_secs(10), || {
        [&ada, &bob].iter().all(|p| {
            p.peer
                .client()
                .tracks
                .iter()
                .all(|t| t.participant_id != cy.id)
        })
    })
    .await;
    assert!(gone, "tracks after kick: {:?}", bob.peer.client().tracks);
    // Media between the remaining two keeps flowing.
    let before = frames(&ada, &bob.id, MediaSource::Camera);
    assert!(
        eventually(Duration::from_secs(5), || frames(
            &ada,
            &bob.id,
            MediaSource::Camera
        ) > before + 10)
        .await
    );
    while let Ok(m) = ada.other.try_recv() {
        assert!(!matches!(m, S::Error { .. }), "{m:?}");
    }
    server.stop().await;
}
