//! One recorded track: turns received frames into a WebM file on the recording's clock, and decides
//! which frames may go in.
//!
//! Timing: the first written frame is placed at its arrival time on the recording clock (that is the
//! file's start offset in the manifest); later frames are placed by their RTP timestamps, which keep
//! the sender's exact spacing. If the RTP clock and the arrival clock disagree by more than
//! [`RESYNC_THRESHOLD`] (the sender restarted, a simulcast layer with another timestamp base was
//! switched in), the track is re-anchored on arrival time, so tracks stay lined up.
//!
//! Simulcast: when the sender switches layers, the new layer's first keyframe is the same captured
//! picture as the old layer's last frame, with the same time. Two frames at one instant make players
//! and ffmpeg see equal decode times, so video is written one frame late: a keyframe that arrives
//! within a millisecond of the frame held back replaces it.
//!
//! Integrity: video is written from a keyframe on. A frame that follows lost packets cannot be decoded
//! without its reference, so after a loss nothing is written until the next keyframe, and a keyframe
//! is asked for (at most once per [`KEYFRAME_REQUEST_INTERVAL`]).

use std::time::Duration;

use crate::codec::Codec;
use crate::webm::{Finished, TrackSpec, WebmWriter, WriterOptions, Written};

/// How far RTP time may drift from arrival time before the track is re-anchored.
pub const RESYNC_THRESHOLD: Duration = Duration::from_secs(2);
/// A keyframe this close after the frame held back shows the same captured instant.
const SAME_INSTANT: Duration = Duration::from_millis(1);
/// Least time between two keyframe requests of one track.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// A frame as the media layer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct FrameIn<'a> {
    /// RTP timestamp, extended to 64 bits by the receiver.
    pub rtp_time: u64,
    /// RTP clock rate of `rtp_time` (48 kHz for Opus, 90 kHz for video).
    pub clock_rate: u32,
    /// When the frame arrived, measured from the start of the recording.
    pub arrival: Duration,
    /// The sender marked (or the depacketizer found) this frame as a keyframe.
    pub keyframe: bool,
    /// False when packets were lost between the previous frame and this one.
    pub contiguous: bool,
    pub data: &'a [u8],
}

/// What became of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The frame goes into the file (video: with the next frame, or at the end).
    pub written: bool,
    /// The video frame accepted before this one was dropped: this keyframe shows the same instant.
    pub replaced: bool,
    /// The recorder should ask the sender for a keyframe.
    pub request_keyframe: bool,
}

/// A video frame accepted but not yet written (see the module documentation).
struct Held {
    time: Duration,
    keyframe: bool,
    data: Vec<u8>,
}

struct Anchor {
    rtp: u64,
    clock_rate: u32,
    /// File time of the frame at `rtp`.
    at: Duration,
}

/// One track's recording state: timing, keyframe gating and the writer.
pub struct TrackRecorder {
    codec: Codec,
    name: Option<String>,
    options: WriterOptions,
    writer: Option<WebmWriter>,
    start_offset: Option<Duration>,
    anchor: Option<Anchor>,
    waiting_for_keyframe: bool,
    last_request: Option<Duration>,
    dropped: u64,
    held: Option<Held>,
}

impl TrackRecorder {
    pub fn new(codec: Codec, name: Option<String>, options: WriterOptions) -> TrackRecorder {
        TrackRecorder {
            codec,
            name,
            options,
            writer: None,
            start_offset: None,
            anchor: None,
            waiting_for_keyframe: codec.is_video(),
            last_request: None,
            dropped: 0,
            held: None,
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Where the file's time zero lies on the recording clock; `None` until the first frame is written.
    pub fn start_offset(&self) -> Option<Duration> {
        self.start_offset
    }

    pub fn bytes_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, WebmWriter::bytes_written)
    }

    /// Frames written or held back to be written.
    pub fn frames_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, WebmWriter::frames) + u64::from(self.held.is_some())
    }

    /// Frames that arrived but could not be written (waiting for a keyframe, or replaced by
    /// another layer's keyframe of the same instant).
    pub fn frames_dropped(&self) -> u64 {
        self.dropped
    }

    /// File time of the last written frame.
    pub fn last_timestamp(&self) -> Option<Duration> {
        match &self.held {
            // As the writer will place it: on whole milliseconds.
            Some(held) => Some(Duration::from_millis(held.time.as_millis() as u64)),
            None => self.writer.as_ref().map(WebmWriter::last_timestamp),
        }
    }

    /// Handles one frame; file bytes, if any, are appended to `out`.
    pub fn push(&mut self, frame: FrameIn<'_>, out: &mut Vec<u8>) -> Outcome {
        let mut outcome = Outcome::default();
        if frame.data.is_empty() {
            return outcome;
        }
        if self.codec.is_video() {
            if !frame.contiguous && !frame.keyframe {
                self.waiting_for_keyframe = true;
            }
            if self.waiting_for_keyframe && !frame.keyframe {
                self.dropped += 1;
                outcome.request_keyframe = self.may_request(frame.arrival);
                return outcome;
            }
        }
        if self.writer.is_none() {
            let Some(spec) = TrackSpec::from_first_frame(self.codec, frame.data, self.name.clone())
            else {
                // A keyframe the header parser does not understand: wait for another.
                self.dropped += 1;
                outcome.request_keyframe = self.may_request(frame.arrival);
                return outcome;
            };
            self.writer = Some(WebmWriter::new(&spec, self.options, out));
            self.start_offset = Some(frame.arrival);
        }
        let file_time = self.file_time(&frame);
        let Some(writer) = self.writer.as_mut() else {
            return outcome;
        };
        if !self.codec.is_video() {
            outcome.written =
                writer.write_frame(file_time, true, frame.data, out) == Written::Frame;
            return outcome;
        }
        if let Some(held) = self.held.take() {
            if frame.keyframe && file_time < held.time + SAME_INSTANT {
                self.dropped += 1;
                outcome.replaced = true;
            } else {
                writer.write_frame(held.time, held.keyframe, &held.data, out);
            }
        }
        // The first frame of a file or after a loss is a keyframe (gated above), so the held
        // frame always decodes once written.
        self.waiting_for_keyframe = false;
        self.held = Some(Held {
            time: file_time,
            keyframe: frame.keyframe,
            data: frame.data.to_vec(),
        });
        outcome.written = true;
        outcome
    }

    fn may_request(&mut self, now: Duration) -> bool {
        let due = self
            .last_request
            .is_none_or(|last| now.saturating_sub(last) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.last_request = Some(now);
        }
        due
    }

    fn file_time(&mut self, frame: &FrameIn<'_>) -> Duration {
        let start = self.start_offset.unwrap_or(frame.arrival);
        let by_arrival = frame.arrival.saturating_sub(start);
        if let Some(anchor) = &self.anchor
            && anchor.clock_rate == frame.clock_rate
            && frame.clock_rate > 0
        {
            let ticks = i128::from(frame.rtp_time) - i128::from(anchor.rtp);
            let nanos = ticks * 1_000_000_000 / i128::from(frame.clock_rate);
            let by_rtp = i128::try_from(anchor.at.as_nanos()).unwrap_or(i128::MAX) + nanos;
            let drift = by_rtp - i128::try_from(by_arrival.as_nanos()).unwrap_or(i128::MAX);
            if by_rtp >= 0 && drift.unsigned_abs() <= RESYNC_THRESHOLD.as_nanos() {
                return Duration::from_nanos(u64::try_from(by_rtp).unwrap_or(u64::MAX));
            }
        }
        self.anchor = Some(Anchor {
            rtp: frame.rtp_time,
            clock_rate: frame.clock_rate,
            at: by_arrival,
        });
        by_arrival
    }

    /// Ends the file (appending the frame held back and the index to `out`); `None` if nothing
    /// was ever written.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Option<Finished> {
        let mut writer = self.writer.take()?;
        if let Some(held) = self.held.take() {
            writer.write_frame(held.time, held.keyframe, &held.data, out);
        }
        Some(writer.finish(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8_key() -> Vec<u8> {
        vec![
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 1, 2, 3,
        ]
    }

    fn vp8_delta() -> Vec<u8> {
        vec![0x11, 0x02, 0x00, 9, 9, 9]
    }

    fn frame(data: &[u8], rtp: u64, arrival_ms: u64, key: bool, contiguous: bool) -> FrameIn<'_> {
        FrameIn {
            rtp_time: rtp,
            clock_rate: 90_000,
            arrival: Duration::from_millis(arrival_ms),
            keyframe: key,
            contiguous,
            data,
        }
    }

    #[test]
    fn video_waits_for_a_keyframe_and_asks_for_one_at_a_bounded_rate() {
        let mut t = TrackRecorder::new(Codec::Vp8, None, WriterOptions::default());
        let mut out = Vec::new();
        let d = vp8_delta();
        let first = t.push(frame(&d, 0, 0, false, true), &mut out);
        assert_eq!(
            first,
            Outcome {
                written: false,
                replaced: false,
                request_keyframe: true
            }
        );
        assert!(
            !t.push(frame(&d, 3000, 33, false, true), &mut out)
                .request_keyframe
        );
        assert!(
            t.push(frame(&d, 90_000, 1000, false, true), &mut out)
                .request_keyframe
        );
        assert!(out.is_empty());
        let k = vp8_key();
        assert!(
            t.push(frame(&k, 93_000, 1033, true, true), &mut out)
                .written
        );
        assert_eq!(t.start_offset(), Some(Duration::from_millis(1033)));
        assert!(
            t.push(frame(&d, 96_000, 1066, false, true), &mut out)
                .written
        );
        assert_eq!(t.frames_dropped(), 3);
    }

    #[test]
    fn a_loss_stops_video_until_the_next_keyframe() {
        let mut t = TrackRecorder::new(Codec::Vp8, None, WriterOptions::default());
        let mut out = Vec::new();
        let (k, d) = (vp8_key(), vp8_delta());
        assert!(t.push(frame(&k, 0, 0, true, true), &mut out).written);
        assert!(t.push(frame(&d, 3000, 33, false, true), &mut out).written);
        let lost = t.push(frame(&d, 9000, 100, false, false), &mut out);
        assert!(!lost.written && lost.request_keyframe);
        assert!(
            !t.push(frame(&d, 12_000, 133, false, true), &mut out)
                .written
        );
        assert!(t.push(frame(&k, 15_000, 166, true, true), &mut out).written);
        assert_eq!(t.frames_written(), 3);
        assert_eq!(t.last_timestamp(), Some(Duration::from_millis(166)));
    }

    #[test]
    fn a_keyframe_of_the_same_instant_replaces_the_frame_before_it() {
        let mut t = TrackRecorder::new(Codec::Vp8, None, WriterOptions::default());
        let mut out = Vec::new();
        let (k, d) = (vp8_key(), vp8_delta());
        assert!(t.push(frame(&k, 0, 0, true, true), &mut out).written);
        assert!(t.push(frame(&d, 3000, 33, false, true), &mut out).written);
        // Another layer's keyframe of the same captured picture, one RTP tick later.
        let switched = t.push(frame(&k, 3001, 40, true, true), &mut out);
        assert!(switched.written && switched.replaced);
        assert!(t.push(frame(&d, 6000, 66, false, true), &mut out).written);
        // A keyframe of a later picture replaces nothing.
        let later = t.push(frame(&k, 9000, 100, true, true), &mut out);
        assert!(later.written && !later.replaced);
        assert_eq!(t.frames_written(), 4);
        assert_eq!(t.frames_dropped(), 1);
        let done = t.finish(&mut out).expect("written");
        assert_eq!(done.frames, 4);
    }

    #[test]
    fn rtp_time_is_used_until_it_jumps() {
        let mut t = TrackRecorder::new(Codec::Vp8, None, WriterOptions::default());
        let mut out = Vec::new();
        let (k, d) = (vp8_key(), vp8_delta());
        t.push(frame(&k, 1_000_000, 500, true, true), &mut out);
        // Arrival jitter does not move frames: RTP says exactly 100 ms later.
        t.push(frame(&d, 1_009_000, 640, false, true), &mut out);
        assert_eq!(t.last_timestamp(), Some(Duration::from_millis(100)));
        // A new timestamp base (another simulcast layer): placed by arrival.
        t.push(frame(&k, 77, 700, true, true), &mut out);
        assert_eq!(t.last_timestamp(), Some(Duration::from_millis(200)));
        t.push(frame(&d, 77 + 9000, 790, false, true), &mut out);
        assert_eq!(t.last_timestamp(), Some(Duration::from_millis(300)));
    }

    #[test]
    fn audio_needs_no_keyframe_and_empty_frames_are_ignored() {
        let mut t = TrackRecorder::new(Codec::Opus, None, WriterOptions::default());
        let mut out = Vec::new();
        let packet = [27 << 3, 1, 2, 3];
        let f = |rtp, ms, data| FrameIn {
            rtp_time: rtp,
            clock_rate: 48_000,
            arrival: Duration::from_millis(ms),
            keyframe: false,
            contiguous: false,
            data,
        };
        assert!(!t.push(f(0, 0, &[]), &mut out).written);
        assert!(t.push(f(0, 0, &packet), &mut out).written);
        assert!(t.push(f(960, 20, &packet), &mut out).written);
        let finished = t.finish(&mut out).expect("frames were written");
        assert_eq!(finished.duration, Duration::from_millis(40));
    }
}
