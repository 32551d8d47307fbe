//! What one client received, per RTP stream: packets, bytes, loss from sequence numbers and
//! interarrival jitter (RFC 3550, section 6.4.1), kept cheap enough to run for every packet of
//! hundreds of subscribers.

use std::collections::HashMap;
use std::time::Instant;

/// Counters of one incoming RTP stream (one SSRC, retransmissions folded in by str0m).
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub video: bool,
    pub packets: u64,
    pub bytes: u64,
    /// Whole frames: marked packets of video (the last of each frame), packets of audio.
    pub frames: u64,
    first_seq: Option<u64>,
    max_seq: u64,
    /// Previous packet's transit time in clock ticks, for jitter.
    last_transit: Option<f64>,
    /// RFC 3550 jitter estimate, in clock ticks.
    jitter: f64,
    clock: u32,
}

impl StreamStats {
    /// Packets the sender numbered between the first and the newest seen.
    pub fn expected(&self) -> u64 {
        self.first_seq.map_or(0, |f| self.max_seq - f + 1)
    }

    /// Jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        if self.clock == 0 {
            0.0
        } else {
            self.jitter * 1000.0 / f64::from(self.clock)
        }
    }
}

/// Everything one client received.
#[derive(Debug, Clone, Default)]
pub struct RecvStats {
    pub streams: HashMap<u32, StreamStats>,
    /// Send-to-receive latency of stamped audio packets: sum and count.
    latency_us: u64,
    latency_samples: u64,
    base: Option<Instant>,
}

/// Sums over a client's streams at one moment, for differences over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    pub expected: u64,
    pub video_packets: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Mean jitter of the video streams, in milliseconds (0 without video).
    pub video_jitter_ms: f64,
    /// Mean jitter of the audio streams, in milliseconds.
    pub audio_jitter_ms: f64,
    pub latency_us: u64,
    pub latency_samples: u64,
}

impl RecvStats {
    /// One latency sample (publisher send to arrival here).
    pub fn on_latency(&mut self, latency: std::time::Duration) {
        self.latency_us += latency.as_micros() as u64;
        self.latency_samples += 1;
    }

    /// One new (not duplicate) RTP packet: its SSRC, extended sequence number, extended RTP
    /// time with the clock rate, marker bit, arrival time and payload length.
    #[allow(clippy::too_many_arguments)]
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        seq: u64,
        rtp_time: u64,
        clock: u32,
        marker: bool,
        arrival: Instant,
        len: usize,
    ) {
        let base = *self.base.get_or_insert(arrival);
        let s = self.streams.entry(ssrc).or_default();
        s.video = clock == 90_000;
        s.clock = clock;
        s.packets += 1;
        s.bytes += len as u64;
        if marker || !s.video {
            s.frames += 1;
        }
        match s.first_seq {
            None => {
                s.first_seq = Some(seq);
                s.max_seq = seq;
            }
            Some(first) => {
                // A retransmission of a packet from before the first one seen counts as if
                // the stream had started there.
                if seq < first {
                    s.first_seq = Some(seq);
                }
                s.max_seq = s.max_seq.max(seq);
            }
        }
        let arrival_ticks = arrival.duration_since(base).as_secs_f64() * f64::from(clock);
        let transit = arrival_ticks - rtp_time as f64;
        if let Some(last) = s.last_transit {
            let d = (transit - last).abs();
            s.jitter += (d - s.jitter) / 16.0;
        }
        s.last_transit = Some(transit);
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            latency_us: self.latency_us,
            latency_samples: self.latency_samples,
            ..Totals::default()
        };
        let (mut vj, mut vn, mut aj, mut an) = (0.0, 0, 0.0, 0);
        for s in self.streams.values() {
            t.packets += s.packets;
            t.bytes += s.bytes;
            t.expected += s.expected();
            if s.video {
                t.video_packets += s.packets;
                t.video_frames += s.frames;
                vj += s.jitter_ms();
                vn += 1;
            } else {
                t.audio_frames += s.frames;
                aj += s.jitter_ms();
                an += 1;
            }
        }
        if vn > 0 {
            t.video_jitter_ms = vj / f64::from(vn);
        }
        if an > 0 {
            t.audio_jitter_ms = aj / f64::from(an);
        }
        t
    }
}

/// What a client received between two [`Totals`] snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub kbps: f64,
    pub packets_per_s: f64,
    /// RTP packets lost on the way from the server (gaps in sequence numbers), 0..=1.
    pub loss: f64,
    /// Frames the publishers sent that never arrived, 0..=1. A frame the server drops before
    /// sending leaves no sequence gap (each leg numbers its own packets), so this is the
    /// measure of delivery end to end; see [`Window::with_expected_frames`].
    pub frames_missing: f64,
    pub video_jitter_ms: f64,
    pub audio_jitter_ms: f64,
    /// Mean audio latency from publisher to this receiver, in ms (`NAN` without samples).
    pub latency_ms: f64,
}

impl Window {
    pub fn between(start: &Totals, end: &Totals, seconds: f64) -> Self {
        let packets = end.packets.saturating_sub(start.packets);
        let expected = end.expected.saturating_sub(start.expected);
        let lost = expected.saturating_sub(packets);
        let secs = seconds.max(1e-9);
        Self {
            kbps: end.bytes.saturating_sub(start.bytes) as f64 * 8.0 / 1000.0 / secs,
            packets_per_s: packets as f64 / secs,
            loss: if expected == 0 {
                // Nothing arrived at all in the window: everything was lost.
                if packets == 0 { 1.0 } else { 0.0 }
            } else {
                lost as f64 / expected as f64
            },
            frames_missing: 0.0,
            video_jitter_ms: end.video_jitter_ms,
            audio_jitter_ms: end.audio_jitter_ms,
            latency_ms: {
                let n = end.latency_samples.saturating_sub(start.latency_samples);
                let us = end.latency_us.saturating_sub(start.latency_us);
                if n == 0 {
                    f64::NAN
                } else {
                    us as f64 / n as f64 / 1000.0
                }
            },
        }
    }

    /// Sets `frames_missing` from the frames received between the snapshots and the frames
    /// the publishers this client receives sent in the same time.
    pub fn with_expected_frames(mut self, start: &Totals, end: &Totals, expected: u64) -> Self {
        let received = (end.video_frames + end.audio_frames)
            .saturating_sub(start.video_frames + start.audio_frames);
        self.frames_missing = if expected == 0 {
            0.0
        } else {
            expected.saturating_sub(received) as f64 / expected as f64
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loss_counts_sequence_gaps() {
        let t0 = Instant::now();
        let mut r = RecvStats::default();
        for seq in [10u64, 11, 12, 14, 15, 19] {
            r.on_packet(1, seq, seq * 960, 48_000, false, t0, 100);
        }
        let t = r.totals();
        assert_eq!((t.packets, t.expected, t.bytes), (6, 10, 600));
        let w = Window::between(&Totals::default(), &t, 1.0);
        assert!((w.loss - 0.4).abs() < 1e-9);
        assert!((w.kbps - 4.8).abs() < 1e-9);
        // A late retransmission fills a hole.
        r.on_packet(1, 13, 13 * 960, 48_000, false, t0, 100);
        assert_eq!(r.totals().expected - r.totals().packets, 3);
    }

    #[test]
    fn steady_arrival_has_no_jitter_and_uneven_arrival_has_some() {
        let t0 = Instant::now();
        let mut steady = RecvStats::default();
        let mut uneven = RecvStats::default();
        for i in 0..200u64 {
            let at = t0 + Duration::from_millis(20 * i);
            steady.on_packet(5, i, i * 960, 48_000, false, at, 80);
            let wobble = Duration::from_millis(if i % 2 == 0 { 0 } else { 8 });
            uneven.on_packet(5, i, i * 960, 48_000, false, at + wobble, 80);
        }
        assert!(steady.totals().audio_jitter_ms < 0.01);
        let j = uneven.totals().audio_jitter_ms;
        // |D| is 8 ms for every pair, so the estimate converges to 8 ms.
        assert!((7.5..8.01).contains(&j), "{j}");
        assert_eq!(uneven.totals().video_jitter_ms, 0.0);
    }

    #[test]
    fn window_is_the_difference_of_two_snapshots() {
        let t0 = Instant::now();
        let mut r = RecvStats::default();
        for seq in 0..100u64 {
            r.on_packet(9, seq, seq * 3000, 90_000, seq % 5 == 4, t0, 1000);
        }
        let start = r.totals();
        for seq in 100..200u64 {
            if seq % 10 != 0 {
                r.on_packet(9, seq, seq * 3000, 90_000, seq % 5 == 4, t0, 1000);
            }
        }
        let end = r.totals();
        assert_eq!((start.video_frames, end.video_frames), (20, 40));
        // 20 frames of five packets arrived; the sender had sent 25 in that time.
        let w = Window::between(&start, &end, 2.0).with_expected_frames(&start, &end, 25);
        assert!((w.frames_missing - 0.2).abs() < 1e-9);
        assert!((w.loss - 0.10).abs() < 0.011, "{}", w.loss);
        assert!((w.packets_per_s - 45.0).abs() < 1e-9);
        assert!((w.kbps - 360.0).abs() < 1e-9);
        assert!(w.latency_ms.is_nan());
        r.on_latency(Duration::from_millis(4));
        r.on_latency(Duration::from_millis(6));
        let w = Window::between(&end, &r.totals(), 1.0);
        assert!((w.latency_ms - 5.0).abs() < 1e-9);
        // Silence in a window is total loss, not zero loss.
        let t = r.totals();
        assert_eq!(Window::between(&t, &t, 1.0).loss, 1.0);
    }
}
