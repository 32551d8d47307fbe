//! Stale frames: how much later than usual a publisher's frame reaches forwarding, and whether it
//! is too late to be worth sending.
//!
//! After the server stalled (a busy machine took its CPU for seconds), the socket and str0m hold
//! seconds of a publisher's media. Forwarding all of it keeps every subscriber that far behind,
//! because new frames queue behind the old ones at the same rate. A conversation wants the
//! present instead: frames that arrive much later than the track's frames usually do are dropped
//! (video then waits for a keyframe, which the core requests), so subscribers skip to fresh media.
//!
//! "Usually" is the smallest difference seen between arrival time and the frame's media time,
//! the track's fastest path. It is allowed to creep later slowly, which absorbs clock drift
//! between publisher and server, and it is reset when frames have been late for longer than
//! [`RESYNC_AFTER`], so a publisher whose own path got slower for good freezes only briefly
//! instead of for as long as the creep would take.

use std::time::{Duration, Instant};

use str0m::media::MediaTime;

/// Frames later than this behind the track's usual timing are dropped. Network jitter and a
/// NACK round trip stay well below it; a stall's backlog does not.
pub const STALE_AFTER: Duration = Duration::from_millis(500);

/// Frames late for this long in a row become the new usual timing.
pub const RESYNC_AFTER: Duration = Duration::from_secs(2);

/// The usual timing may move this many microseconds later per second (1000 ppm, ten times the
/// drift of ordinary clocks).
const DRIFT_PER_SEC_US: i64 = 1000;

/// Timing of one track's frames at the forwarding step.
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    /// Arrival time of the first frame: the zero of the offsets.
    anchor: Option<Instant>,
    /// Smallest `arrival - media time` seen (µs), and when it was seen.
    usual: i64,
    usual_at: Option<Instant>,
    /// Since when frames have been stale without a break.
    stale_since: Option<Instant>,
}

impl Freshness {
    /// How much later than usual a frame with media time `time` arrives at `now`. Zero for a
    /// frame on time or early (which also becomes the new usual timing).
    pub fn lateness(&mut self, now: Instant, time: MediaTime) -> Duration {
        let anchor = *self.anchor.get_or_insert(now);
        let offset =
            now.saturating_duration_since(anchor).as_micros() as i64 - time.as_micros() as i64;
        let Some(usual_at) = self.usual_at else {
            self.reset(now, offset);
            return Duration::ZERO;
        };
        let creep =
            now.saturating_duration_since(usual_at).as_millis() as i64 * DRIFT_PER_SEC_US / 1000;
        let allowed = self.usual + creep;
        if offset <= allowed {
            self.reset(now, offset);
            return Duration::ZERO;
        }
        let late = Duration::from_micros((offset - allowed) as u64);
        if late <= STALE_AFTER {
            self.stale_since = None;
            return late;
        }
        let since = *self.stale_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= RESYNC_AFTER {
            // Late for good: this is the publisher's timing now.
            self.reset(now, offset);
            return Duration::ZERO;
        }
        late
    }

    /// Whether a frame with media time `time` arriving at `now` is too late to forward.
    pub fn is_stale(&mut self, now: Instant, time: MediaTime) -> bool {
        self.lateness(now, time) > STALE_AFTER
    }

    fn reset(&mut self, now: Instant, offset: i64) {
        self.usual = offset;
        self.usual_at = Some(now);
        self.stale_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn audio(at_ms: u64) -> MediaTime {
        MediaTime::from_millis(at_ms)
    }

    #[test]
    fn on_time_frames_and_jitter_pass() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        for i in 0..100u64 {
            // 20 ms frames arriving with up to 40 ms of jitter.
            let jitter = (i * 7) % 41;
            assert!(!f.is_stale(t0 + ms(i * 20 + jitter), audio(i * 20)));
        }
    }

    #[test]
    fn a_backlog_after_a_stall_is_stale_until_fresh_frames_come() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        for i in 0..50u64 {
            assert!(!f.is_stale(t0 + ms(i * 20), audio(i * 20)));
        }
        // Stalled from 1000 ms to 4000 ms: everything sent meanwhile is read at 4000 ms.
        let resumed = t0 + ms(4000);
        let mut stale = 0;
        for i in 50..200u64 {
            if f.is_stale(resumed, audio(i * 20)) {
                stale += 1;
            }
        }
        // Frames from 1000 ms to 3480 ms are more than 500 ms late; the last ones are not.
        assert_eq!(stale, 125);
        assert!(!f.is_stale(resumed + ms(20), audio(4020)));
    }

    #[test]
    fn slow_drift_is_absorbed() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        // The publisher's clock runs 0.05 % slow: after 20 minutes frames arrive 600 ms "late".
        for i in 0..60_000u64 {
            let at = t0 + ms(i * 20);
            assert!(!f.is_stale(at, audio(i * 20 - i * 20 / 2000)), "frame {i}");
        }
    }

    #[test]
    fn lasting_lateness_becomes_the_new_timing() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        for i in 0..50u64 {
            assert!(!f.is_stale(t0 + ms(i * 20), audio(i * 20)));
        }
        // From now on every frame takes 800 ms longer (the publisher's path got slower).
        let mut stale_for = Duration::ZERO;
        for i in 50..400u64 {
            if f.is_stale(t0 + ms(i * 20 + 800), audio(i * 20)) {
                stale_for += ms(20);
            }
        }
        assert!(
            stale_for >= RESYNC_AFTER && stale_for <= RESYNC_AFTER + ms(40),
            "{stale_for:?}"
        );
        assert!(!f.is_stale(t0 + ms(400 * 20 + 800), audio(400 * 20)));
    }
}
