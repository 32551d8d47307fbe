//! Forwarding decisions per subscriber: which frames may go out, and when to ask for a keyframe.
//!
//! A video decoder can only start at a keyframe, and a frame whose predecessor never arrived
//! decodes into garbage. So each subscription carries a "waiting for keyframe" flag: set when
//! the subscription starts, when the subscriber's transport (re)connects, when the subscriber
//! reports picture loss, and when the publisher's stream broke; cleared by the next keyframe
//! actually written. Keyframe requests to a publisher are rate limited per track, because every
//! subscriber's PLI would otherwise turn into one.
//! Switching simulcast layers is the same "wait for a keyframe" step, for the new layer
//! (`sfu::simulcast`).

use std::time::{Duration, Instant};

/// What to do with one frame for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write the frame; afterwards the subscription no longer waits for a keyframe.
    Forward,
    /// Drop it; the subscriber waits for a keyframe, so ask the publisher for one.
    DropAwaitKeyframe,
    /// Drop it; the subscriber cannot take media yet (transport not up).
    DropNotReady,
}

/// Decides for one frame. `awaiting_keyframe` is the subscription's flag.
pub fn decide(is_video: bool, awaiting_keyframe: bool, is_keyframe: bool, ready: bool) -> Decision {
    if !ready {
        return Decision::DropNotReady;
    }
    if is_video && awaiting_keyframe && !is_keyframe {
        return Decision::DropAwaitKeyframe;
    }
    Decision::Forward
}

/// Rate limit for keyframe requests sent to one publisher track.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    last: Option<Instant>,
    interval: Duration,
}

/// Default spacing of keyframe requests to one track: short enough that a new subscriber sees
/// video quickly even if a request is lost, long enough that an encoder is not forced to send
/// nothing but keyframes.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

impl Default for KeyframeThrottle {
    fn default() -> Self {
        Self::new(KEYFRAME_REQUEST_INTERVAL)
    }
}

impl KeyframeThrottle {
    pub fn new(interval: Duration) -> Self {
        Self {
            last: None,
            interval,
        }
    }

    /// Whether a request may be sent at `now`; if so it is recorded as sent.
    pub fn try_request(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }

    /// A keyframe arrived: the next loss may ask again at once.
    pub fn satisfied(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_waits_for_keyframe_audio_never() {
        assert_eq!(decide(true, true, false, true), Decision::DropAwaitKeyframe);
        assert_eq!(decide(true, true, true, true), Decision::Forward);
        assert_eq!(decide(true, false, false, true), Decision::Forward);
        assert_eq!(decide(false, true, false, true), Decision::Forward);
        assert_eq!(decide(false, false, false, false), Decision::DropNotReady);
        assert_eq!(decide(true, true, true, false), Decision::DropNotReady);
    }

    #[test]
    fn throttle_spaces_requests_and_resets_on_keyframe() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::new(Duration::from_millis(300));
        assert!(t.try_request(t0));
        assert!(!t.try_request(t0 + Duration::from_millis(100)));
        assert!(!t.try_request(t0 + Duration::from_millis(299)));
        assert!(t.try_request(t0 + Duration::from_millis(300)));
        t.satisfied();
        assert!(t.try_request(t0 + Duration::from_millis(301)));
        // Time going backwards (a caller bug) must not panic or unblock forever.
        assert!(!t.try_request(t0));
    }
}
