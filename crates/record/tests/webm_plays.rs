//! Real encoded frames (made by ffmpeg) recorded through `TrackRecorder`, checked with ffprobe and a
//! full ffmpeg decode: codec, frame count, last timestamp, and no decoder complaint.

mod common;

use std::time::Duration;

use common::{Frame, decode_errors, probe, record, scratch};
use convene_record::Codec;

fn check(codec: Codec, name: &str, frames: &[Frame]) {
    check_count(codec, name, frames, frames.len());
}

/// Like `check`, for `expected` frames in the finished file.
fn check_count(codec: Codec, name: &str, frames: &[Frame], expected: usize) {
    let recorded = record(codec, frames);
    let last = frames.last().expect("fixture has frames").pts;
    for (variant, bytes) in [
        ("finished", &recorded.finished),
        ("streamed", &recorded.streamed),
    ] {
        let path = scratch(&format!("{name}-{variant}.webm"));
        std::fs::write(&path, bytes).expect("write output");
        let errors = decode_errors(&path);
        assert!(errors.is_empty(), "{name} {variant}: ffmpeg says: {errors}");
        let p = probe(&path);
        assert_eq!(p.codec, name, "{variant}: {p:?}");
        // The file as streamed lacks the video frame held back until the next one or the end.
        let expected = expected - usize::from(variant == "streamed" && codec.is_video());
        assert_eq!(p.frames, expected as u64, "{name} {variant}: {p:?}");
        let gap = p.last_pts.abs_diff(last);
        assert!(
            gap <= Duration::from_millis(500),
            "{name} {variant}: last timestamp {:?}, sent {last:?}",
            p.last_pts
        );
        if codec.is_video() {
            assert_eq!(p.width, Some(640), "{name} {variant}: {p:?}");
        }
        if variant == "finished" {
            let d = p.format_duration.expect("finished files state a duration");
            assert!(
                (d - recorded.duration.as_secs_f64()).abs() < 0.05,
                "{name}: container says {d}, writer {:?}",
                recorded.duration
            );
        }
    }
}

#[test]
fn vp8_plays() {
    check(Codec::Vp8, "vp8", &common::video_frames(Codec::Vp8, 6));
}

#[test]
fn vp9_plays() {
    check(Codec::Vp9, "vp9", &common::video_frames(Codec::Vp9, 6));
}

#[test]
fn av1_plays() {
    check(Codec::Av1, "av1", &common::video_frames(Codec::Av1, 4));
}

#[test]
fn opus_plays() {
    check(Codec::Opus, "opus", &common::opus_frames(6));
}

/// After a simulcast layer switch the new layer's first keyframe carries the capture time of the
/// frame before it (give or take an RTP tick): it replaces that frame, so no two frames share an
/// instant and ffmpeg decodes without "non monotonically increasing dts".
#[test]
fn frames_in_the_same_millisecond_still_play() {
    let mut frames = common::video_frames(Codec::Vp8, 6);
    let switches: Vec<usize> = (1..frames.len()).filter(|&i| frames[i].keyframe).collect();
    assert!(
        !switches.is_empty(),
        "the fixture has keyframes after the first"
    );
    for &i in &switches {
        frames[i].pts = frames[i - 1].pts + Duration::from_micros(300);
    }
    // Each keyframe replaced the frame of the same instant before it.
    check_count(Codec::Vp8, "vp8", &frames, frames.len() - switches.len());
}
