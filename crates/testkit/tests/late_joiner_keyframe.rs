//! A participant who joins a running meeting gets video quickly: the core asks the publisher for
//! a keyframe (PLI) and holds back delta frames until it arrives.

use std::time::Duration;

use convene_proto::MediaSource;
use convene_testkit::Harness;

#[test]
fn late_joiner_starts_at_a_requested_keyframe() {
    let mut h = Harness::new(2);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.join("room", "bob", &[MediaSource::Microphone]);
    // Alice's encoder has long sent its first keyframe and now sends only deltas.
    h.run(Duration::from_secs(3));
    let requests_before = h.client("alice").keyframe_requests;

    h.join("room", "carol", &[]);
    let joined = h.now;
    let ok = h.run_until(Duration::from_secs(3), |h| {
        h.client("carol")
            .received_from("alice", MediaSource::Camera)
            .is_some_and(|r| r.frames > 0)
    });
    assert!(
        ok,
        "carol never got alice video: {:?} alice kf requests {} carol {:?}",
        h.sfu.counters(),
        h.client("alice").keyframe_requests,
        h.client("carol").received
    );
    let carol = h.client("carol");
    let video = carol.received_from("alice", MediaSource::Camera).unwrap();
    assert_eq!(video.first_was_keyframe, Some(true));
    let delay = video.first_frame_at.unwrap() - joined;
    // Signaling, ICE, DTLS and one PLI round trip on a 5 ms link: well under half a second.
    assert!(
        delay < Duration::from_millis(500),
        "first frame after {delay:?}"
    );
    assert!(h.client("alice").keyframe_requests > requests_before);
    // Carol publishes nothing: she receives, and nobody gets tracks from her.
    assert!(
        h.client("bob")
            .tracks
            .iter()
            .all(|t| t.participant_id != "carol")
    );
    assert_eq!(carol.tracks.len(), 3, "{:?}", carol.tracks);
}

#[test]
fn ignored_keyframe_request_is_repeated() {
    let mut h = Harness::new(8);
    h.join("room", "alice", &[MediaSource::Camera]);
    h.run(Duration::from_secs(2));
    // Alice's encoder drops the first two requests on the floor.
    h.client_mut("alice").ignore_keyframe_requests = 2;
    let before = h.client("alice").keyframe_requests;
    h.join("room", "carol", &[]);
    let joined = h.now;
    let ok = h.run_until(Duration::from_secs(3), |h| {
        h.client("carol")
            .received_from("alice", MediaSource::Camera)
            .is_some_and(|r| r.frames > 0)
    });
    assert!(
        ok,
        "carol never got video; alice saw {} requests",
        h.client("alice").keyframe_requests - before
    );
    let video = h
        .client("carol")
        .received_from("alice", MediaSource::Camera)
        .unwrap();
    assert_eq!(video.first_was_keyframe, Some(true));
    assert!(h.client("alice").keyframe_requests - before >= 3);
    // Requests are spaced by the throttle: three of them within about a second.
    let delay = video.first_frame_at.unwrap() - joined;
    assert!(
        delay < Duration::from_millis(1200),
        "first frame after {delay:?}"
    );
}
