//! A recording cut off at an arbitrary byte (kill -9, power loss, full disk) still decodes up to the
//! last frame that was completely written before the cut.

mod common;

use std::time::Duration;

use common::{Frame, decode_errors, probe, record, scratch};
use convene_record::Codec;

/// ffmpeg's only complaint about a cut-off file is that it ended early; anything else is a defect.
fn only_premature_end(errors: &str) -> bool {
    errors
        .lines()
        .all(|l| l.contains("File ended prematurely") || l.trim().is_empty())
}

fn check_cuts(codec: Codec, name: &str, frames: &[Frame]) {
    let recorded = record(codec, frames);
    let stream = &recorded.streamed;
    // Cut points spread over the file, deliberately not on any structure boundary: inside the headers'
    // aftermath, inside blocks, near the end.
    let header_end = recorded.frame_ends[0].0;
    let cuts = [
        header_end + 3,
        stream.len() * 23 / 100 + 1,
        stream.len() / 2 + 7,
        stream.len() * 77 / 100 + 5,
        stream.len() - 2,
    ];
    for cut in cuts {
        let complete: Vec<_> = recorded
            .frame_ends
            .iter()
            .filter(|(end, _)| *end <= cut)
            .collect();
        let path = scratch(&format!("{name}-cut-{cut}.webm"));
        std::fs::write(&path, &stream[..cut]).expect("write truncated file");
        let errors = decode_errors(&path);
        assert!(
            only_premature_end(&errors),
            "{name} cut at {cut}: ffmpeg says: {errors}"
        );
        let p = probe(&path);
        assert_eq!(p.codec, name, "cut at {cut}: {p:?}");
        assert!(
            p.frames >= complete.len() as u64,
            "{name} cut at {cut}: decoded {} frames, {} were complete",
            p.frames,
            complete.len()
        );
        let expected_last = complete.last().map_or(Duration::ZERO, |(_, ts)| *ts);
        assert!(
            p.last_pts.abs_diff(expected_last) <= Duration::from_millis(500),
            "{name} cut at {cut}: last timestamp {:?}, last complete frame {expected_last:?}",
            p.last_pts
        );
    }
}

#[test]
fn vp8_cut_anywhere_still_plays() {
    check_cuts(Codec::Vp8, "vp8", &common::video_frames(Codec::Vp8, 6));
}

#[test]
fn opus_cut_anywhere_still_plays() {
    check_cuts(Codec::Opus, "opus", &common::opus_frames(6));
}

#[test]
fn av1_cut_anywhere_still_plays() {
    check_cuts(Codec::Av1, "av1", &common::video_frames(Codec::Av1, 4));
}
