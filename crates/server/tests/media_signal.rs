//! Media through the whole server: str0m test clients join a room through the real signaling
//! WebSocket of `convene serve`, publish audio and video, receive everyone else's, and when one
//! closes its tab the others are told and renegotiated.

mod signal_support;

use signal_support::eventually;

use std::time::Duration;

use convene::{config::Config, serve, shutdown::Lifecycle};
use convene_proto::{MediaSource, ServerMessage};
use convene_testkit::ws::WsPeer;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

fn frames(p: &WsPeer, from: &WsPeer, source: MediaSource) -> u64 {
    p.peer
        .client()
        .received_from(&from.id, source)
        .map_or(0, |r| r.frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_through_signaling() {
    // Media on loopback only; any free ports.
    // A closed tab is gone after a one-second reconnect grace.
    let config = Config::parse(
        "[media]\nport = 0\nbind = \"127.0.0.1\"\n[conference]\nreconnect_grace = \"1s\"\n",
    )
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve::start(config, serve::Mode::Full, listener, Lifecycle::new())
        .await
        .expect("server starts");

    let ann = WsPeer::join(server.addr, "media-room", "Ann", AV)
        .await
        .unwrap();
    let ben = WsPeer::join(server.addr, "media-room", "Ben", AV)
        .await
        .unwrap();
    let cat = WsPeer::join(server.addr, "media-room", "Cat", AV)
        .await
        .unwrap();
    let all = [&ann, &ben, &cat];

    let flowing = eventually(Duration::from_secs(10), || {
        all.iter().all(|me| {
            all.iter().filter(|o| o.id != me.id).all(|o| {
                frames(me, o, MediaSource::Camera) > 20
                    && frames(me, o, MediaSource::Microphone) > 50
            })
        })
    })
    .await;
    for me in all {
        let c = me.peer.client();
        assert!(
            flowing,
            "{}: tracks {:?} received {:?} errors {:?}",
            c.name, c.tracks, c.received, c.media_errors
        );
        assert!(c.media_errors.is_empty(), "{:?}", c.media_errors);
        assert!(
            c.received.values().all(|r| r.damaged == 0),
            "{:?}",
            c.received
        );
        // The tracks map names participants by the ids signaling gave them.
        assert_eq!(c.tracks.len(), 4);
        assert!(c.tracks.iter().all(|t| t.participant_id != me.id));
    }

    // Cat closes the tab (WebSocket and media at once).
    let cat_id = cat.id.clone();
    cat.close();
    let told = eventually(Duration::from_secs(15), || {
        [&ann, &ben].iter().all(|p| {
            let left = p.messages.lock().unwrap().iter().any(|m| {
                matches!(m, ServerMessage::ParticipantLeft { participant, .. } if *participant == cat_id)
            });
            let c = p.peer.client();
            left && c.tracks.len() == 2 && c.tracks.iter().all(|t| t.participant_id != cat_id)
        })
    })
    .await;
    assert!(
        told,
        "ann {:?} / {:?}",
        ann.peer.client().tracks,
        ann.messages.lock().unwrap()
    );
    let before = frames(&ann, &ben, MediaSource::Camera);
    assert!(
        eventually(Duration::from_secs(3), || frames(
            &ann,
            &ben,
            MediaSource::Camera
        ) > before + 10)
        .await
    );

    server.stop().await;
}
