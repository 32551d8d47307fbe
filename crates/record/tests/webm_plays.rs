//! Real encoded frames (made by ffmpeg) recorded through `TrackRecorder`, checked with ffprobe and a
//! full ffmpeg decode: codec, frame count, last timestamp, and no decoder complaint.

mod common;

use std::time::Duration;

use common::{Frame, decode_errors, probe, record, scratch};
use convene_record::Codec;

fn check(codec: Codec, name: &str, frames: &[Frame]) {
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
        assert_eq!(p.frames, frames.len() as u64, "{name} {variant}: {p:?}");
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
