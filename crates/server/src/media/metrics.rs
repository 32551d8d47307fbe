//! `convene_media_*` metrics: participants, tracks, packets and bytes, NACKs, keyframe requests,
//! loss and RTT. The loop copies the core's totals here about once a second.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use convene_media::{Counters, Sfu};

#[derive(Clone)]
pub struct Metrics {
    participants: Gauge,
    tracks: Gauge,
    packets_received: Counter,
    bytes_received: Counter,
    packets_sent: Counter,
    bytes_sent: Counter,
    send_calls: Counter,
    packets_dropped: Counter,
    nacks_received: Counter,
    nacks_sent: Counter,
    keyframe_requests_received: Counter,
    keyframe_requests_sent: Counter,
    frames_forwarded: Counter,
    frames_held_back: Counter,
    frames_stale: Counter,
    frames_late: Counter,
    layer_switches: Counter,
    client_errors: Counter,
    session_failures: Counter,
    loss: Histogram,
    rtt: Histogram,
    estimate: Histogram,
    /// The totals already exported, to add only the difference.
    seen: Counters,
    seen_send_calls: u64,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            participants: Gauge::default(),
            tracks: Gauge::default(),
            packets_received: Counter::default(),
            bytes_received: Counter::default(),
            packets_sent: Counter::default(),
            bytes_sent: Counter::default(),
            send_calls: Counter::default(),
            packets_dropped: Counter::default(),
            nacks_received: Counter::default(),
            nacks_sent: Counter::default(),
            keyframe_requests_received: Counter::default(),
            keyframe_requests_sent: Counter::default(),
            frames_forwarded: Counter::default(),
            frames_held_back: Counter::default(),
            frames_stale: Counter::default(),
            frames_late: Counter::default(),
            layer_switches: Counter::default(),
            client_errors: Counter::default(),
            session_failures: Counter::default(),
            loss: Histogram::new([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            rtt: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6]),
            estimate: Histogram::new([100e3, 300e3, 500e3, 1e6, 1.5e6, 2e6, 3e6, 5e6, 10e6, 30e6]),
            seen: Counters::default(),
            seen_send_calls: 0,
        };
        let r = registry;
        r.register(
            "participants",
            "Participants with a media session",
            m.participants.clone(),
        );
        r.register(
            "tracks",
            "Published audio and video tracks",
            m.tracks.clone(),
        );
        r.register(
            "packets_received",
            "UDP datagrams received on the media port",
            m.packets_received.clone(),
        );
        r.register(
            "bytes_received",
            "Bytes received on the media port",
            m.bytes_received.clone(),
        );
        r.register(
            "packets_sent",
            "UDP datagrams sent from the media port",
            m.packets_sent.clone(),
        );
        r.register(
            "bytes_sent",
            "Bytes sent from the media port",
            m.bytes_sent.clone(),
        );
        r.register(
            "send_calls",
            "Send system calls of the media port (one GSO send carries several datagrams)",
            m.send_calls.clone(),
        );
        r.register(
            "packets_dropped",
            "Datagrams no session claimed or that were not STUN/DTLS/RTP/RTCP",
            m.packets_dropped.clone(),
        );
        r.register(
            "nacks_received",
            "NACKs received from subscribers",
            m.nacks_received.clone(),
        );
        r.register(
            "nacks_sent",
            "NACKs sent to publishers",
            m.nacks_sent.clone(),
        );
        r.register(
            "keyframe_requests_received",
            "PLIs and FIRs received from subscribers",
            m.keyframe_requests_received.clone(),
        );
        r.register(
            "keyframe_requests_sent",
            "PLIs and FIRs sent to publishers",
            m.keyframe_requests_sent.clone(),
        );
        r.register(
            "frames_forwarded",
            "Audio and video frames written to subscribers",
            m.frames_forwarded.clone(),
        );
        r.register(
            "frames_held_back",
            "Frames not written to a subscriber: waiting for a keyframe or not connected yet",
            m.frames_held_back.clone(),
        );
        r.register(
            "frames_stale",
            "Frames dropped because they reached the server far later than their track's usually do",
            m.frames_stale.clone(),
        );
        r.register(
            "frames_late",
            "Frames dropped because a newer frame of the same layer was already forwarded",
            m.frames_late.clone(),
        );
        r.register(
            "layer_switches",
            "Subscriptions moved to another simulcast layer",
            m.layer_switches.clone(),
        );
        r.register(
            "client_errors",
            "Client SDP problems answered with media_error",
            m.client_errors.clone(),
        );
        r.register(
            "session_failures",
            "Media sessions ended by ICE consent, DTLS or connect timeout",
            m.session_failures.clone(),
        );
        r.register(
            "loss_ratio",
            "Fraction of packets lost per stream and report",
            m.loss.clone(),
        );
        r.register(
            "rtt_seconds",
            "Round-trip time per peer and report",
            m.rtt.clone(),
        );
        r.register(
            "downlink_estimate_bits",
            "Bandwidth estimate (TWCC) of each subscriber's downlink, sampled at every update",
            m.estimate.clone(),
        );
        m
    }

    /// Copies the core's state, and the loop's count of send calls, into the exported metrics.
    pub fn update(&mut self, sfu: &mut Sfu, send_calls: u64) {
        self.send_calls
            .inc_by(send_calls.saturating_sub(self.seen_send_calls));
        self.seen_send_calls = send_calls;
        self.participants.set(sfu.session_count() as i64);
        self.tracks.set(sfu.track_count() as i64);
        let now = sfu.counters().clone();
        let s = &self.seen;
        let add = |c: &Counter, new: u64, old: u64| {
            c.inc_by(new.saturating_sub(old));
        };
        add(&self.packets_received, now.packets_in, s.packets_in);
        add(&self.bytes_received, now.bytes_in, s.bytes_in);
        add(&self.packets_sent, now.packets_out, s.packets_out);
        add(&self.bytes_sent, now.bytes_out, s.bytes_out);
        add(
            &self.packets_dropped,
            now.packets_dropped,
            s.packets_dropped,
        );
        add(&self.nacks_received, now.nacks_received, s.nacks_received);
        add(&self.nacks_sent, now.nacks_sent, s.nacks_sent);
        add(
            &self.keyframe_requests_received,
            now.keyframe_requests_received,
            s.keyframe_requests_received,
        );
        add(
            &self.keyframe_requests_sent,
            now.keyframe_requests_sent,
            s.keyframe_requests_sent,
        );
        add(
            &self.frames_forwarded,
            now.frames_forwarded,
            s.frames_forwarded,
        );
        add(
            &self.frames_held_back,
            now.frames_held_back,
            s.frames_held_back,
        );
        add(&self.frames_stale, now.frames_stale, s.frames_stale);
        add(&self.frames_late, now.frames_late, s.frames_late);
        add(&self.layer_switches, now.layer_switches, s.layer_switches);
        add(&self.client_errors, now.client_errors, s.client_errors);
        add(
            &self.session_failures,
            now.sessions_failed,
            s.sessions_failed,
        );
        self.seen = now;
        for e in sfu.downlink_estimates() {
            self.estimate.observe(e as f64);
        }
        let (loss, rtt) = sfu.take_samples();
        for l in loss {
            self.loss.observe(l as f64);
        }
        for r in rtt {
            self.rtt.observe(r.as_secs_f64());
        }
    }
}
