//! Two participants publish audio and video; each receives the other's, intact and in order.

use std::time::Duration;

use convene_proto::{MediaSource, TrackKind};
use convene_testkit::Harness;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

#[test]
fn audio_and_video_flow_both_ways() {
    let mut h = Harness::new(1);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(3));

    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let c = h.client(me);
        assert!(c.connected, "{me} connected");
        let other_tag = h.client(other).tag();
        assert_eq!(c.tracks.len(), 2, "{me} tracks map: {:?}", c.tracks);
        assert!(c.tracks.iter().all(|t| t.participant_id == other));
        assert!(
            c.tracks
                .iter()
                .any(|t| t.kind == TrackKind::Audio && t.source == MediaSource::Microphone)
        );
        assert!(
            c.tracks
                .iter()
                .any(|t| t.kind == TrackKind::Video && t.source == MediaSource::Camera)
        );

        let audio = c
            .received_from(other, MediaSource::Microphone)
            .expect("audio arrives");
        let video = c
            .received_from(other, MediaSource::Camera)
            .expect("video arrives");
        // About 3 s minus connection setup: 50 audio and 20 video frames per second.
        assert!(audio.frames > 100, "{me} audio frames {}", audio.frames);
        assert!(video.frames > 40, "{me} video frames {}", video.frames);
        assert_eq!(audio.damaged + video.damaged, 0, "{me} damaged frames");
        assert_eq!(
            audio.reordered + video.reordered,
            0,
            "{me} reordered frames"
        );
        assert_eq!(audio.sender, Some(other_tag));
        assert_eq!(video.sender, Some(other_tag));
        assert_eq!(
            video.first_was_keyframe,
            Some(true),
            "{me}: video starts at a keyframe"
        );

        // RTP as received: version 2, no sequence gaps on a lossless network, timestamps
        // never go back, a marker per video frame.
        assert!(!c.rtp.is_empty());
        for (ssrc, r) in &c.rtp {
            assert_eq!(r.bad_version, 0, "{me} {ssrc:?}");
            assert_eq!(r.seq_jumps, 0, "{me} {ssrc:?} {r:?}");
            assert_eq!(r.ts_backwards, 0, "{me} {ssrc:?} {r:?}");
        }
    }
    assert!(h.closed.is_empty(), "{:?}", h.closed);
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!(h.sfu.session_count(), 2);
    assert_eq!(h.sfu.track_count(), 4);
    assert!(h.sfu.counters().frames_forwarded > 300);
}
