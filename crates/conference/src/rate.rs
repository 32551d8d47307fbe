//! A token bucket for per-connection message rate limits, with time passed in.

/// Allows `burst` messages at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32, now_ms: u64) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last_ms: now_ms,
        }
    }

    /// Takes one token; false means the caller is over its limit.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        // A clock that steps backwards must not mint tokens, hence saturating_sub.
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut r = RateLimiter::new(10, 5, 0);
        assert!((0..5).all(|_| r.allow(0)));
        assert!(!r.allow(0));
        assert!(!r.allow(50));
        assert!(r.allow(100));
        assert!(!r.allow(100));
        // A long pause refills only up to the burst.
        assert!((0..5).all(|_| r.allow(60_000)));
        assert!(!r.allow(60_000));
    }

    #[test]
    fn backwards_clock_mints_nothing() {
        let mut r = RateLimiter::new(10, 1, 10_000);
        assert!(r.allow(10_000));
        assert!(!r.allow(0));
        assert!(!r.allow(10_050));
    }
}
