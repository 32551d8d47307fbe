//! Dominant speaker detection from RFC 6464 audio levels, and the order in which participants
//! last held the floor (last-N forwards the video of the first N of that order).
//!
//! Every audio packet a browser sends carries the level of its audio in the `ssrc-audio-level`
//! header extension (0 dBov loudest, -127 silence). Levels are turned into an energy in 0..=1
//! and kept per participant as the peak of each 100 ms bucket, so a packet rate of 50/s or a few
//! missing packets change nothing. Two averages over those buckets decide:
//! - short (1 s): is the participant speaking right now;
//! - medium (3 s): how much it has been speaking lately.
//!
//! Hysteresis: a challenger takes the floor only while it speaks, when its medium score beats
//! the dominant speaker's clearly (by a factor and a margin), and only after it has led like
//! that for [`HOLD`] without interruption. So a cough, a short "yes" or two people talking at
//! the same level do not flip the view back and forth, and silence never takes the floor: when
//! everyone is quiet, the last speaker stays dominant.
//!
//! Sans-IO like the rest of the core: time is an argument, and a clock going backwards (a caller
//! bug) only freezes the detector.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Width of one level bucket.
pub const BUCKET: Duration = Duration::from_millis(100);
/// Buckets of the short window ("speaking now").
const SHORT_BUCKETS: u64 = 10;
/// Buckets of the medium window ("has been speaking").
const MEDIUM_BUCKETS: u64 = 30;
/// How long a challenger must lead before it takes the floor.
pub const HOLD: Duration = Duration::from_millis(1000);
/// A participant speaks now when its short score reaches this (one loud bucket in the last
/// second is enough: speech has pauses, and Chromium's fake microphone beeps twice a second).
const SPEAKING: f32 = 0.05;
/// Least medium score a challenger needs, whatever the dominant speaker's.
const MIN_MEDIUM: f32 = 0.03;
/// A challenger's medium score must exceed the dominant speaker's times this, plus
/// [`MARGIN`].
const RATIO: f32 = 1.5;
const MARGIN: f32 = 0.02;
/// Levels (in -dBov) at and below which audio counts as silence, and at and above which as
/// full energy. Between the two, energy rises linearly. Room noise after the browser's noise
/// suppression sits well below -70 dBov; speech close to a microphone around -20 to -40.
const QUIET_DBOV: f32 = 70.0;
const LOUD_DBOV: f32 = 20.0;

/// Energy in 0..=1 of an RFC 6464 level as str0m reports it (0 loudest, -127 silence).
pub fn energy(level: i8) -> f32 {
    let attenuation = f32::from(level.unsigned_abs().min(127));
    ((QUIET_DBOV - attenuation) / (QUIET_DBOV - LOUD_DBOV)).clamp(0.0, 1.0)
}

#[derive(Debug)]
struct Participant {
    id: Arc<str>,
    /// `(bucket index, peak energy)`, oldest first, at most the medium window.
    buckets: VecDeque<(u64, f32)>,
    /// When this participant last took the floor (a sequence number), for the speaker order.
    last_dominant: Option<u64>,
}

impl Participant {
    /// Mean bucket energy over the `len` buckets before `end` (missing buckets are silence).
    fn score(&self, end: u64, len: u64) -> f32 {
        let start = end.saturating_sub(len);
        let sum: f32 = self
            .buckets
            .iter()
            .filter(|(b, _)| *b >= start && *b < end)
            .map(|(_, e)| e)
            .sum();
        sum / len as f32
    }
}

/// The dominant speaker of one room.
#[derive(Debug, Default)]
pub struct Speakers {
    /// Bucket 0 starts here: the first observation.
    epoch: Option<Instant>,
    /// In arrival order, which is the speaker order among those who never held the floor.
    participants: Vec<Participant>,
    dominant: Option<Arc<str>>,
    /// The participant currently beating the dominant speaker, and since which bucket.
    challenger: Option<(Arc<str>, u64)>,
    /// Newest bucket evaluated.
    evaluated: u64,
    /// Counts floor changes, to order speakers by recency.
    changes: u64,
}

impl Speakers {
    /// The participant who holds the floor, if anyone has spoken yet.
    pub fn dominant(&self) -> Option<&Arc<str>> {
        self.dominant.as_ref()
    }

    /// Everyone known, most recent speaker first: the dominant speaker, then the others by when
    /// they last held the floor, then those who never did in the order they arrived.
    pub fn order(&self) -> Vec<Arc<str>> {
        let mut order: Vec<&Participant> = self.participants.iter().collect();
        // Stable sort: ties (never dominant) keep arrival order.
        order.sort_by_key(|p| std::cmp::Reverse(p.last_dominant));
        order.into_iter().map(|p| p.id.clone()).collect()
    }

    /// A participant whose audio may be observed (it joined the room).
    pub fn add(&mut self, id: &Arc<str>) {
        if !self.participants.iter().any(|p| p.id == *id) {
            self.participants.push(Participant {
                id: id.clone(),
                buckets: VecDeque::new(),
                last_dominant: None,
            });
        }
    }

    /// A participant left. If it held the floor, the most recent earlier speaker still present
    /// takes it (or nobody). Returns whether the dominant speaker changed.
    pub fn remove(&mut self, id: &str) -> bool {
        self.participants.retain(|p| &*p.id != id);
        if self.challenger.as_ref().is_some_and(|(c, _)| &**c == id) {
            self.challenger = None;
        }
        if self.dominant.as_deref() != Some(id) {
            return false;
        }
        self.dominant = self
            .participants
            .iter()
            .filter(|p| p.last_dominant.is_some())
            .max_by_key(|p| p.last_dominant)
            .map(|p| p.id.clone());
        true
    }

    /// One audio packet's level from `id` at `now`. Returns true when the dominant speaker
    /// changed (evaluation happens once per bucket, when a packet of a newer bucket arrives).
    pub fn observe(&mut self, now: Instant, id: &str, level: i8) -> bool {
        let epoch = *self.epoch.get_or_insert(now);
        let bucket = (now.saturating_duration_since(epoch).as_millis() / BUCKET.as_millis()) as u64;
        let changed = if bucket > self.evaluated {
            self.evaluate(bucket)
        } else {
            false
        };
        let Some(p) = self.participants.iter_mut().find(|p| &*p.id == id) else {
            return changed;
        };
        let e = energy(level);
        match p.buckets.back_mut() {
            Some((b, peak)) if *b == bucket => *peak = peak.max(e),
            // A packet older than the newest bucket (the clock went back) is ignored.
            Some((b, _)) if *b > bucket => {}
            _ => {
                p.buckets.push_back((bucket, e));
                while p
                    .buckets
                    .front()
                    .is_some_and(|(b, _)| *b + MEDIUM_BUCKETS < bucket)
                {
                    p.buckets.pop_front();
                }
            }
        }
        changed
    }

    /// Decides with the buckets before `bucket` (all complete).
    fn evaluate(&mut self, bucket: u64) -> bool {
        self.evaluated = bucket;
        let dominant_medium = self
            .dominant
            .as_ref()
            .and_then(|d| self.participants.iter().find(|p| p.id == *d))
            .map_or(0.0, |p| p.score(bucket, MEDIUM_BUCKETS));
        let best = self
            .participants
            .iter()
            .filter(|p| Some(&p.id) != self.dominant.as_ref())
            .filter(|p| p.score(bucket, SHORT_BUCKETS) >= SPEAKING)
            .map(|p| (p, p.score(bucket, MEDIUM_BUCKETS)))
            .filter(|(_, m)| *m >= MIN_MEDIUM && *m > dominant_medium * RATIO + MARGIN)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(p, _)| p.id.clone());
        let Some(best) = best else {
            self.challenger = None;
            return false;
        };
        let since = match &self.challenger {
            Some((c, since)) if *c == best => *since,
            _ => {
                self.challenger = Some((best.clone(), bucket));
                bucket
            }
        };
        let hold = (HOLD.as_millis() / BUCKET.as_millis()) as u64;
        if bucket - since < hold {
            return false;
        }
        self.changes += 1;
        let seq = self.changes;
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == best) {
            p.last_dominant = Some(seq);
        }
        self.dominant = Some(best);
        self.challenger = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: i8 = -127;
    const SPEECH: i8 = -25;

    /// Drives a room in 20 ms packet steps, like Opus.
    struct Room {
        s: Speakers,
        t0: Instant,
        now: Instant,
        changes: Vec<(Duration, Option<String>)>,
    }

    impl Room {
        fn new(names: &[&str]) -> Self {
            let mut s = Speakers::default();
            for n in names {
                s.add(&Arc::from(*n));
            }
            let now = Instant::now();
            Self {
                s,
                t0: now,
                now,
                changes: Vec::new(),
            }
        }

        /// Runs `d`; `level(name, packet index)` gives each participant's level per packet,
        /// `None` for no packet.
        fn run(&mut self, d: Duration, level: impl Fn(&str, u64) -> Option<i8>) {
            let names: Vec<Arc<str>> = self.s.participants.iter().map(|p| p.id.clone()).collect();
            let end = self.now + d;
            while self.now < end {
                let packet = (self.now - self.t0).as_millis() as u64 / 20;
                for n in &names {
                    if let Some(l) = level(n, packet)
                        && self.s.observe(self.now, n, l)
                    {
                        self.changes
                            .push((self.now - self.t0, self.s.dominant().map(|d| d.to_string())));
                    }
                }
                self.now += Duration::from_millis(20);
            }
        }

        fn dominant(&self) -> Option<&str> {
            self.s.dominant().map(|d| &**d)
        }
    }

    fn talks(who: &'static str) -> impl Fn(&str, u64) -> Option<i8> {
        move |n, _| Some(if n == who { SPEECH } else { SILENCE })
    }

    #[test]
    fn energy_maps_levels_and_never_leaves_the_range() {
        assert_eq!(energy(-127), 0.0);
        assert_eq!(energy(-70), 0.0);
        assert_eq!(energy(-20), 1.0);
        assert_eq!(energy(0), 1.0);
        assert!((energy(-45) - 0.5).abs() < 1e-6);
        // str0m never reports positive levels, but a positive i8 must not panic or escape.
        for l in i8::MIN..=i8::MAX {
            let e = energy(l);
            assert!((0.0..=1.0).contains(&e), "{l} -> {e}");
        }
    }

    #[test]
    fn first_speaker_takes_the_floor_after_the_hold() {
        let mut r = Room::new(&["a", "b", "c"]);
        r.run(Duration::from_secs(2), |_, _| Some(SILENCE));
        assert_eq!(r.dominant(), None, "silence makes nobody dominant");
        r.run(Duration::from_millis(900), talks("b"));
        assert_eq!(r.dominant(), None, "not before the hold");
        r.run(Duration::from_millis(700), talks("b"));
        assert_eq!(r.dominant(), Some("b"));
        assert_eq!(r.changes.len(), 1);
        let at = r.changes[0].0;
        assert!(
            at >= Duration::from_secs(3) && at <= Duration::from_millis(3500),
            "{at:?}"
        );
    }

    #[test]
    fn silence_never_steals_the_floor() {
        let mut r = Room::new(&["a", "b"]);
        r.run(Duration::from_secs(3), talks("a"));
        assert_eq!(r.dominant(), Some("a"));
        // Everyone quiet for a long time, one of them sending no packets at all.
        r.run(Duration::from_secs(30), |n, _| {
            (n == "b").then_some(SILENCE)
        });
        assert_eq!(r.dominant(), Some("a"));
        // Background noise just above silence is not speech either.
        r.run(Duration::from_secs(10), |_, _| Some(-72));
        assert_eq!(r.dominant(), Some("a"));
        assert_eq!(r.changes.len(), 1);
    }

    #[test]
    fn a_short_interjection_does_not_switch() {
        let mut r = Room::new(&["a", "b"]);
        r.run(Duration::from_secs(5), talks("a"));
        assert_eq!(r.dominant(), Some("a"));
        // b says "yes" for half a second while a pauses.
        r.run(Duration::from_millis(500), talks("b"));
        r.run(Duration::from_secs(5), talks("a"));
        assert_eq!(r.dominant(), Some("a"));
        // And a cough of 200 ms while a keeps talking.
        r.run(Duration::from_millis(200), |_, _| Some(SPEECH));
        r.run(Duration::from_secs(3), talks("a"));
        assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    }

    #[test]
    fn a_sustained_new_speaker_takes_over_after_the_hold() {
        let mut r = Room::new(&["a", "b"]);
        r.run(Duration::from_secs(5), talks("a"));
        let handover = r.now - r.t0;
        r.run(Duration::from_secs(6), talks("b"));
        assert_eq!(r.dominant(), Some("b"));
        let (at, who) = r.changes.last().cloned().unwrap();
        assert_eq!(who.as_deref(), Some("b"));
        let waited = at - handover;
        // a's medium score has to fade before b beats it clearly, then b must lead for HOLD.
        assert!(
            waited >= HOLD && waited <= Duration::from_secs(4),
            "{waited:?}"
        );
    }

    #[test]
    fn two_people_talking_at_once_do_not_flap() {
        let mut r = Room::new(&["a", "b"]);
        r.run(Duration::from_secs(3), talks("a"));
        // Both at similar levels, with independent pauses.
        r.run(Duration::from_secs(30), |n, p| {
            let pause = if n == "a" { p % 17 < 4 } else { p % 13 < 3 };
            Some(if pause { SILENCE } else { -28 })
        });
        assert_eq!(r.dominant(), Some("a"));
        assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    }

    #[test]
    fn a_beeping_fake_microphone_beats_muted_ones() {
        // Chromium's fake audio device: a 20 ms beep every 500 ms, silence in between. The
        // others are muted (the browser sends silence).
        let mut r = Room::new(&["muted1", "beeper", "muted2"]);
        r.run(Duration::from_secs(4), |n, p| {
            Some(if n == "beeper" && p % 25 == 0 {
                -8
            } else {
                SILENCE
            })
        });
        assert_eq!(r.dominant(), Some("beeper"));
        // Real speech from someone else takes over from the beeper...
        r.run(Duration::from_secs(4), |n, p| {
            Some(match n {
                "beeper" if p % 25 == 0 => -8,
                "muted2" => SPEECH,
                _ => SILENCE,
            })
        });
        assert_eq!(r.dominant(), Some("muted2"));
    }

    #[test]
    fn order_is_most_recent_speaker_first_then_arrival() {
        let mut r = Room::new(&["a", "b", "c", "d"]);
        assert_eq!(r.s.order(), ["a", "b", "c", "d"].map(Arc::from));
        r.run(Duration::from_secs(3), talks("c"));
        r.run(Duration::from_secs(6), talks("b"));
        assert_eq!(r.dominant(), Some("b"));
        assert_eq!(r.s.order(), ["b", "c", "a", "d"].map(Arc::from));
        // A newcomer goes to the end until it speaks.
        r.s.add(&Arc::from("e"));
        r.s.add(&Arc::from("e"));
        assert_eq!(r.s.order().len(), 5);
        assert_eq!(&*r.s.order()[4], "e");
    }

    #[test]
    fn when_the_dominant_speaker_leaves_the_previous_one_takes_over() {
        let mut r = Room::new(&["a", "b", "c"]);
        r.run(Duration::from_secs(3), talks("a"));
        r.run(Duration::from_secs(6), talks("b"));
        assert_eq!(r.dominant(), Some("b"));
        assert!(!r.s.remove("c"), "not the dominant speaker");
        assert!(r.s.remove("b"));
        assert_eq!(r.dominant(), Some("a"));
        assert!(r.s.remove("a"));
        assert_eq!(r.dominant(), None);
        assert!(r.s.order().is_empty());
    }

    #[test]
    fn unknown_participants_and_time_going_back_are_harmless() {
        let mut s = Speakers::default();
        let t0 = Instant::now() + Duration::from_secs(10);
        s.add(&Arc::from("a"));
        assert!(!s.observe(t0, "nobody", 0));
        for i in 0..200u64 {
            s.observe(t0 + Duration::from_millis(20 * i), "a", SPEECH);
        }
        assert_eq!(s.dominant().map(|d| &**d), Some("a"));
        // Earlier than the epoch and earlier than the newest bucket.
        assert!(!s.observe(t0 - Duration::from_secs(5), "a", 0));
        assert!(!s.observe(t0 + Duration::from_secs(1), "a", 0));
        assert_eq!(s.dominant().map(|d| &**d), Some("a"));
    }
}
