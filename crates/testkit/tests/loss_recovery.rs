//! On a lossy network, NACK/RTX repairs losses on both legs and broken video recovers through
//! a keyframe: subscribers never get a damaged frame, and most frames arrive.

use std::time::Duration;

use convene_proto::MediaSource;
use convene_testkit::Harness;

#[test]
fn five_percent_loss_is_repaired() {
    let mut h = Harness::new(7);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.join(
        "room",
        "bob",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    // Connect cleanly first, as the handshake itself is not what this test is about.
    assert!(h.run_until(Duration::from_secs(2), |h| {
        h.clients.iter().all(|c| c.connected)
    }));
    h.run(Duration::from_millis(500));
    h.loss = 0.05;
    let before = h
        .client("bob")
        .received_from("alice", MediaSource::Camera)
        .unwrap()
        .frames;
    h.run(Duration::from_secs(10));
    h.loss = 0.0;
    h.run(Duration::from_secs(1));

    assert!(
        h.dropped > 100,
        "the network dropped {} datagrams",
        h.dropped
    );
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let c = h.client(me);
        let video = c.received_from(other, MediaSource::Camera).unwrap();
        let audio = c.received_from(other, MediaSource::Microphone).unwrap();
        assert_eq!(
            video.damaged + audio.damaged,
            0,
            "{me}: damaged frames {video:?} {audio:?}"
        );
        assert_eq!(video.reordered, 0, "{me}: {video:?} {:?}", h.sfu.counters());
        // 11 s at 20 fps = 220 frames; repaired loss keeps most of them.
        let got = video.frames - if me == "bob" { before } else { 0 };
        assert!(got > 180, "{me} got {got} video frames");
        assert!(audio.frames > 400, "{me} got {} audio frames", audio.frames);
    }
    let counters = h.sfu.counters().clone();
    assert!(
        counters.nacks_sent > 0,
        "core asked publishers to resend: {counters:?}"
    );
    assert!(
        counters.nacks_received > 0,
        "subscribers asked the core to resend: {counters:?}"
    );
}
