//! A room tap (the recorder's view of a room) gets every published track as whole frames, from the
//! tracks already there and from later publishers, starts video at a requested keyframe, and hears
//! of a track's end.

use std::time::Duration;

use convene_media::str0m::format::Codec;
use convene_proto::MediaSource;
use convene_testkit::{Harness, frames};

#[test]
fn tap_gets_frames_of_every_track_and_their_end() {
    let mut h = Harness::new(5);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.run(Duration::from_secs(2));
    let requests_before = h.client("alice").keyframe_requests;
    let now = h.now;
    let tap = h.sfu.tap_room(now, "room");
    h.pump();
    h.join("room", "bob", &[MediaSource::Microphone]);
    h.join("other", "carol", &[MediaSource::Microphone]);
    h.run(Duration::from_secs(2));

    assert!(h.client("alice").keyframe_requests > requests_before);
    assert!(h.tapped.iter().all(|f| f.tap == tap));
    let of = |who: &str, source: MediaSource| {
        h.tapped
            .iter()
            .filter(|f| &*f.participant == who && f.source == source)
            .collect::<Vec<_>>()
    };
    let video = of("alice", MediaSource::Camera);
    assert!(video.len() >= 30, "{} video frames", video.len());
    assert!(
        video[0].keyframe,
        "tap must see the requested keyframe early"
    );
    assert!(
        video
            .iter()
            .all(|f| f.codec == Codec::Vp8 && f.clock_rate == 90_000)
    );
    assert!(video.windows(2).all(|w| w[0].rtp_time < w[1].rtp_time));
    for f in &video {
        let info = frames::check_video(&f.data).expect("intact frame");
        assert_eq!(info.sender, frames::tag("alice"));
    }
    let audio = of("bob", MediaSource::Microphone);
    assert!(audio.len() >= 50, "{} audio frames", audio.len());
    assert!(
        audio
            .iter()
            .all(|f| f.codec == Codec::Opus && f.clock_rate == 48_000)
    );
    assert!(
        of("carol", MediaSource::Microphone).is_empty(),
        "other room leaked into the tap"
    );

    let bob_track = audio[0].track;
    h.leave("bob");
    h.run(Duration::from_millis(200));
    assert_eq!(h.tap_ended, vec![(tap, bob_track)]);

    h.sfu.untap(tap);
    assert_eq!(h.sfu.tap_count(), 0);
    let seen = h.tapped.len();
    h.run(Duration::from_millis(500));
    assert_eq!(h.tapped.len(), seen, "frames after untap");
}
