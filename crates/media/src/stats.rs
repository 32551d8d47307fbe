//! Counters the core keeps for metrics. Totals only grow; the server exports them as counters.

use std::time::Duration;

/// Monotonic totals plus recent quality samples.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counters {
    /// Datagrams and bytes handed to the core.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Datagrams and bytes the core asked to send.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Datagrams no session claimed, or that were not STUN/DTLS/RTP/RTCP.
    pub packets_dropped: u64,
    /// NACKs received from subscribers (answered from str0m's send buffer with RTX).
    pub nacks_received: u64,
    /// NACKs sent to publishers for packets lost on the way in.
    pub nacks_sent: u64,
    /// PLIs and FIRs received from subscribers.
    pub keyframe_requests_received: u64,
    /// PLIs and FIRs sent to publishers.
    pub keyframe_requests_sent: u64,
    /// Frames written to subscribers.
    pub frames_forwarded: u64,
    /// Frames not written because the subscriber waited for a keyframe or was not connected.
    pub frames_held_back: u64,
    /// Frames from publishers that completed after a newer frame of the same track was sent.
    pub frames_late: u64,
    /// Subscriptions moved from one simulcast layer to another.
    pub layer_switches: u64,
    /// Frames dropped because they reached forwarding far later than their track's frames
    /// usually do (see `freshness`).
    pub frames_stale: u64,
    /// Client SDP or str0m errors reported as `media_error`.
    pub client_errors: u64,
    /// Sessions closed because ICE consent or DTLS failed, or they never connected.
    pub sessions_failed: u64,
    /// Loss fractions (0..=1) and round-trip times from the latest statistics; drained by the
    /// server with [`Counters::take_samples`].
    pub loss_samples: Vec<f32>,
    pub rtt_samples: Vec<Duration>,
}

/// Most samples kept between two drains, so an idle exporter cannot grow memory.
const MAX_SAMPLES: usize = 4096;

impl Counters {
    pub(crate) fn sample_loss(&mut self, loss: f32) {
        if self.loss_samples.len() < MAX_SAMPLES && loss.is_finite() {
            self.loss_samples.push(loss.clamp(0.0, 1.0));
        }
    }

    pub(crate) fn sample_rtt(&mut self, rtt: Duration) {
        if self.rtt_samples.len() < MAX_SAMPLES {
            self.rtt_samples.push(rtt);
        }
    }

    /// Takes the quality samples gathered since the last call.
    pub fn take_samples(&mut self) -> (Vec<f32>, Vec<Duration>) {
        (
            std::mem::take(&mut self.loss_samples),
            std::mem::take(&mut self.rtt_samples),
        )
    }
}
