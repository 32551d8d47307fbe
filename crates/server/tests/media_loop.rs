//! The media loop on a real UDP socket on 127.0.0.1, driven through `MediaHandle` by str0m test
//! clients on their own sockets: media flows between three participants, one leaves and the
//! others are renegotiated, metrics count it all, and shutdown closes the loop.

mod signal_support;

use signal_support::eventually;

use std::time::Duration;

use convene::media::{self, MediaEvent, MediaHandle};
use convene_proto::{MediaSource, ServerMessage};
use convene_testkit::udp::UdpPeer;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

/// Joins `name` through the handle and wires its events and messages like the room task does.
async fn join(
    handle: &MediaHandle,
    name: &str,
    tracks: &[MediaSource],
) -> (UdpPeer, mpsc::UnboundedReceiver<String>) {
    let (events_tx, mut events_rx) = mpsc::channel::<MediaEvent>(16);
    handle.join("room", name, events_tx).await.expect("join");
    let (to_client, from_server) = mpsc::unbounded_channel();
    let (to_server, mut from_client) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = mpsc::unbounded_channel();
    let forward = to_client.clone();
    tokio::spawn(async move {
        while let Some(ev) = events_rx.recv().await {
            match ev {
                MediaEvent::Signal(m) => {
                    let _ = forward.send(m);
                }
                MediaEvent::Closed { reason } => {
                    let _ = closed_tx.send(reason);
                }
            }
        }
    });
    let h = handle.clone();
    let who = name.to_owned();
    tokio::spawn(async move {
        while let Some(msg) = from_client.recv().await {
            if let Err(e) = h.signal(&who, msg).await {
                let _ = to_client.send(ServerMessage::MediaError {
                    code: e.code().into(),
                    message: e.to_string(),
                });
            }
        }
    });
    let peer = UdpPeer::start(name, tracks, to_server, from_server)
        .await
        .expect("peer socket");
    (peer, closed_rx)
}

fn frames(peer: &UdpPeer, from: &str, source: MediaSource) -> u64 {
    peer.client()
        .received_from(from, source)
        .map_or(0, |r| r.frames)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_over_udp() {
    let config = media::Config {
        port: 0,
        bind: "127.0.0.1".parse().unwrap(),
        ..media::Config::default()
    };
    let mut registry = Registry::with_prefix("convene");
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let handle = media::start(
        &config,
        registry.sub_registry_with_prefix("media"),
        shutdown.clone(),
        &tasks,
    )
    .await
    .expect("media loop starts");
    assert_ne!(handle.local_addr().port(), 0);
    assert_eq!(handle.candidates(), &[handle.local_addr()]);

    let (alice, _) = join(&handle, "alice", AV).await;
    let (bob, _) = join(&handle, "bob", AV).await;
    let (carol, mut carol_closed) = join(&handle, "carol", AV).await;
    let peers = [("alice", &alice), ("bob", &bob), ("carol", &carol)];

    let all_flowing = eventually(Duration::from_secs(10), || {
        peers.iter().all(|(me, p)| {
            peers
                .iter()
                .filter(|(other, _)| other != me)
                .all(|(other, _)| {
                    frames(p, other, MediaSource::Camera) > 20
                        && frames(p, other, MediaSource::Microphone) > 50
                })
        })
    })
    .await;
    for (me, p) in &peers {
        let c = p.client();
        assert!(
            all_flowing,
            "{me}: tracks {:?} received {:?} errors {:?}",
            c.tracks, c.received, c.media_errors
        );
        for r in c.received.values() {
            assert_eq!(r.damaged, 0, "{me}: {r:?}");
        }
        for (ssrc, r) in &c.rtp {
            assert_eq!(r.bad_version, 0, "{me} {ssrc:?}");
            assert_eq!(r.ts_backwards, 0, "{me} {ssrc:?} {r:?}");
        }
        assert!(c.media_errors.is_empty(), "{me}: {:?}", c.media_errors);
    }

    // Metrics as a scraper sees them (the loop refreshes them every second).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert_eq!(metric(&text, "convene_media_participants"), 3.0);
    assert_eq!(metric(&text, "convene_media_tracks"), 6.0);
    assert!(metric(&text, "convene_media_packets_received_total") > 300.0);
    assert!(metric(&text, "convene_media_bytes_sent_total") > 100_000.0);
    assert!(metric(&text, "convene_media_frames_forwarded_total") > 200.0);
    assert!(text.contains("convene_media_rtt_seconds_count"));
    assert!(text.contains("convene_media_nacks_received_total"));

    // Carol leaves: alice and bob are renegotiated and keep each other.
    handle.leave("carol").await;
    drop(carol);
    let renegotiated = eventually(Duration::from_secs(5), || {
        [&alice, &bob].iter().all(|p| {
            let c = p.client();
            c.tracks.len() == 2
                && c.tracks.iter().all(|t| t.participant_id != "carol")
                && !c.has_pending_offer()
        })
    })
    .await;
    assert!(
        renegotiated,
        "alice {:?} bob {:?}",
        alice.client().tracks,
        bob.client().tracks
    );
    let before = frames(&alice, "bob", MediaSource::Camera);
    assert!(
        eventually(Duration::from_secs(3), || frames(
            &alice,
            "bob",
            MediaSource::Camera
        ) > before + 10)
        .await
    );
    // A leave is not a failure: no Closed event.
    assert!(carol_closed.try_recv().is_err());

    // Shutdown stops the loop; the handle then reports the engine as gone.
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .expect("loop stops");
    let (tx, _rx) = mpsc::channel(1);
    let err = handle.join("room", "late", tx).await.unwrap_err();
    assert_eq!(err.code(), "media_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_client_is_reported_closed() {
    let config = media::Config {
        port: 0,
        bind: "127.0.0.1".parse().unwrap(),
        connect_timeout: Duration::from_secs(3),
        ..media::Config::default()
    };
    let mut registry = Registry::default();
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let handle = media::start(&config, &mut registry, shutdown.clone(), &tasks)
        .await
        .unwrap();

    let (alice, _) = join(&handle, "alice", AV).await;
    // Bob's client dies right after its offer was answered: ICE never completes.
    let (bob, mut bob_closed) = join(&handle, "bob", AV).await;
    bob.client().silent = true;
    assert!(eventually(Duration::from_secs(2), || !bob.client().has_pending_offer()).await);
    bob.abort();
    let reason = tokio::time::timeout(Duration::from_secs(8), bob_closed.recv())
        .await
        .expect("closed in time")
        .expect("a reason");
    assert!(reason.contains("ICE"), "{reason}");
    assert!(eventually(Duration::from_secs(2), || alice.client().tracks.is_empty()).await);
    assert!(alice.client().connected);
    shutdown.cancel();
}
