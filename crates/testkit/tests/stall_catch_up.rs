//! After the server stalls (another process took its CPU for seconds), subscribers skip the
//! backlog and get fresh media again within a moment, instead of hearing and seeing everything
//! seconds late. Video restarts at a fresh keyframe and decodes.

use std::time::{Duration, Instant};

use convene_proto::MediaSource;
use convene_testkit::{Harness, ReceivedMedia};

/// End-to-end delay of every frame `r` received after `from`, using the publisher's
/// production times.
fn delays(
    r: &ReceivedMedia,
    produced: &std::collections::HashMap<u32, Instant>,
    from: Instant,
) -> Vec<Duration> {
    r.history
        .iter()
        .filter(|s| s.at >= from)
        .map(|s| s.at - produced[&s.counter])
        .collect()
}

#[test]
fn subscriber_skips_the_backlog_of_a_stall() {
    let mut h = Harness::new(21);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.join("room", "bob", &[]);
    h.run(Duration::from_secs(2));
    let video_before = h
        .client("bob")
        .received_from("alice", MediaSource::Camera)
        .map_or(0, |r| r.frames);
    assert!(video_before > 20, "video flows before the stall");

    h.stall_server(Duration::from_secs(3));
    let resumed = h.now;
    h.run(Duration::from_secs(2));

    let alice = h.client("alice");
    let bob = h.client("bob");
    let audio = bob.received_from("alice", MediaSource::Microphone).unwrap();
    let video = bob.received_from("alice", MediaSource::Camera).unwrap();

    // Nothing that arrives after the stall is older than the staleness limit plus the link.
    let after: Vec<Duration> = delays(audio, &alice.produced, resumed)
        .into_iter()
        .chain(delays(video, &alice.produced, resumed))
        .collect();
    let worst = after.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(600),
        "a frame arrived {worst:?} after it was made ({} frames after the stall)",
        after.len()
    );
    // Within half a second both are back to the link's delay, and stay there.
    let settled = resumed + Duration::from_millis(500);
    for (what, r) in [("audio", audio), ("video", video)] {
        let d = delays(r, &alice.produced, settled);
        assert!(
            d.len() >= 10,
            "{what}: only {} frames after catching up",
            d.len()
        );
        let worst = d.iter().max().unwrap();
        assert!(
            *worst < Duration::from_millis(60),
            "{what} still {worst:?} behind"
        );
    }
    // Video restarted at a keyframe (requested by the server) and every frame decoded.
    assert_eq!(video.damaged, 0);
    assert_eq!(audio.damaged, 0);
    assert_eq!(video.reordered + audio.reordered, 0);
    assert!(video.keyframes >= 2, "no fresh keyframe: {video:?}");
    assert!(h.sfu.counters().frames_stale > 0);
    // The stream bob sees has no holes: dropped frames were never written to his leg.
    for c in bob.rtp.values() {
        assert_eq!(c.seq_jumps, 0, "{:?}", c.jumps);
    }
}
