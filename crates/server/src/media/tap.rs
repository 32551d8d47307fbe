//! The media loop's end of room taps: frames the core emits for a tap go to that tap's
//! recording through its [`FrameSink`], which never blocks the loop; the recorder's keyframe
//! wishes go back to the core.

use std::collections::HashMap;
use std::time::Instant;

use convene_media::str0m::format::Codec as RtpCodec;
use convene_media::{Sfu, TapFrame, TapId};
use convene_proto::MediaSource;
use convene_record::Codec;

use crate::record::{FrameSink, MediaFrame};

#[derive(Default)]
pub(crate) struct Taps {
    sinks: HashMap<TapId, FrameSink>,
}

/// The recorder writes these codecs as received; H.264 has no WebM mapping, so such a track is
/// left out of the recording (the log says so once per track).
fn codec(c: RtpCodec) -> Option<Codec> {
    match c {
        RtpCodec::Opus => Some(Codec::Opus),
        RtpCodec::Vp8 => Some(Codec::Vp8),
        RtpCodec::Vp9 => Some(Codec::Vp9),
        RtpCodec::Av1 => Some(Codec::Av1),
        _ => None,
    }
}

fn source_name(s: MediaSource) -> &'static str {
    match s {
        MediaSource::Microphone => "microphone",
        MediaSource::Camera => "camera",
        MediaSource::Screen => "screen",
    }
}

impl Taps {
    pub fn subscribe(&mut self, sfu: &mut Sfu, now: Instant, room: &str, sink: FrameSink) {
        let tap = sfu.tap_room(now, room);
        tracing::debug!(room, recording = %sink.recording, ?tap, "room tapped");
        self.sinks.insert(tap, sink);
    }

    pub fn frame(&mut self, sfu: &mut Sfu, f: TapFrame) {
        let Some(sink) = self.sinks.get_mut(&f.tap) else {
            return;
        };
        let Some(codec) = codec(f.codec) else {
            if f.keyframe {
                tracing::debug!(participant = %f.participant, codec = ?f.codec, "track not recordable in WebM");
            }
            return;
        };
        let frame = MediaFrame {
            participant: f.participant.to_string(),
            track: f.track,
            mid: f.mid.to_string(),
            source: source_name(f.source).to_owned(),
            codec,
            rtp_time: f.rtp_time,
            clock_rate: f.clock_rate,
            network_time: f.network_time,
            keyframe: f.keyframe,
            contiguous: f.contiguous,
            data: f.data,
        };
        if !sink.offer(frame) {
            self.sinks.remove(&f.tap);
            sfu.untap(f.tap);
        }
    }

    pub fn track_ended(&mut self, tap: TapId, track: u64) {
        if let Some(sink) = self.sinks.get_mut(&tap) {
            sink.track_ended(track);
        }
    }

    /// Passes the recorders' keyframe requests to the core and drops taps whose recording ended.
    pub fn service(&mut self, sfu: &mut Sfu, now: Instant) {
        let mut gone = Vec::new();
        for (tap, sink) in &mut self.sinks {
            if sink.is_closed() {
                gone.push(*tap);
                continue;
            }
            for track in sink.keyframe_requests() {
                sfu.request_keyframe_of(now, track);
            }
        }
        for tap in gone {
            self.sinks.remove(&tap);
            sfu.untap(tap);
        }
    }
}
