//! Simulcast state: the layers a publisher sends on one track, which layer each receiver
//! follows, and each subscriber's downlink budget.
//!
//! Every track is a list of layers, one per RID seen (a track without simulcast has one layer
//! without RID). A receiver (a subscription, or the room taps) follows one layer at a time:
//! `current` is forwarded, `target` is where it should be. A switch happens only at a keyframe
//! of the target layer, so the decoder never sees a frame that refers to a picture of another
//! layer. Sequence numbers are str0m's per outgoing leg and stay continuous by themselves; RTP
//! time is rewritten here ([`Retime`]) so it keeps running across a switch even if the layers'
//! timestamps do not share a base.
//!
//! The choice itself is [`crate::layer`]; this module measures what it needs (bitrate and
//! resolution per layer, whether a layer is still sent).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::{MediaData, MediaTime, Mid, Rid};

use crate::forward::KeyframeThrottle;
use crate::layer::{LayerInfo, Tile};

/// A layer that sent nothing for this long is gone (the publisher's browser pauses layers when
/// its own uplink or CPU is short).
const INACTIVE_AFTER: Duration = Duration::from_millis(1500);
/// A layer this far behind the track's newest frame is gone too, without waiting for
/// [`INACTIVE_AFTER`]: every layer carries the same captured frames, so when the others keep
/// coming, the publisher paused this one (browsers do it at the start of a call, while their
/// estimate is low, right after a layer's first keyframe), and its receivers would see a frozen
/// picture until they move. When all layers are quiet (a still screen share) none of them is.
/// It is above a retransmission round trip, which can hold back one layer's frame.
const BEHIND_AFTER: Duration = Duration::from_millis(400);
/// A new track's layers start within one frame of each other; its receivers get their first
/// choice when every layer the SDP announced has sent its keyframe, or after this long (a
/// browser may not send all of them). Choosing at the first
/// keyframe would start them on whichever layer came first, then switch twice within a frame,
/// which is a burst of three keyframes.
const SETTLE: Duration = Duration::from_millis(300);
/// How often a track re-ranks its layers and re-checks its receivers' choices.
pub(super) const REVIEW_EVERY: Duration = Duration::from_millis(500);
/// Bitrate measurement window.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Two layers whose timestamps are closer than this share a time base (browsers stamp all
/// layers of one captured frame alike); otherwise a switch rebases the output time.
const SAME_BASE: Duration = Duration::from_secs(2);
/// After a downgrade for bandwidth, no upgrade for this long: the estimate needs time to
/// recover, and a layer that was just too much will be too much again. A downgrade soon after an
/// upgrade doubles the hold (up to [`MAX_UPGRADE_HOLD`]), so a link that cannot carry a layer is
/// not made to try it every few seconds.
pub(super) const UPGRADE_HOLD: Duration = Duration::from_secs(4);
pub(super) const MAX_UPGRADE_HOLD: Duration = Duration::from_secs(32);
/// After an upgrade, the next one waits this long: the estimator must see the new rate first.
pub(super) const UPGRADE_SETTLE: Duration = Duration::from_secs(2);
/// A downgrade this soon after an upgrade means the upgrade failed.
pub(super) const FAILED_UPGRADE: Duration = Duration::from_secs(10);
/// Once an upgrade of a downlink has failed, before each later upgrade str0m pads the downlink up
/// to what the upgrade will send, for this long; the upgrade happens only if the estimate still
/// allows it then. A short probe
/// overestimates a link that lets a burst through (a policer, a token bucket) and a subscriber
/// then got a layer its link could not carry, froze and went down again; sustained padding finds
/// that out without touching the video.
pub(super) const UPGRADE_PROBE: Duration = Duration::from_secs(2);

/// Received bitrate of one layer, over the last full window. Before the first window is full,
/// what arrived so far counts as one window: a layer starts with a keyframe, and dividing that
/// by a few milliseconds would make every layer look too expensive to start with.
#[derive(Debug, Clone)]
struct RateMeter {
    window_start: Instant,
    bytes: u64,
    rate: Option<u64>,
}

impl RateMeter {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            bytes: 0,
            rate: None,
        }
    }

    fn add(&mut self, now: Instant, bytes: usize) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.rate = Some(self.bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64);
            self.window_start = now;
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }

    fn bitrate(&self, now: Instant) -> u64 {
        self.rate.unwrap_or_else(|| {
            let elapsed = now
                .saturating_duration_since(self.window_start)
                .max(RATE_WINDOW);
            self.bytes * 8 * 1000 / elapsed.as_millis() as u64
        })
    }
}

/// One encoding of a track.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub rid: Option<Rid>,
    /// Media time of the newest frame accepted. A frame older than that (a retransmission that
    /// completed after its successor) is dropped: decoders want time to go forward.
    pub newest: Option<MediaTime>,
    last_frame: Instant,
    /// Resolution from the last keyframe, when the codec tells (VP8); 0 otherwise.
    width: u32,
    height: u32,
    /// Only a layer that sent a keyframe can be switched to.
    keyframed: bool,
    meter: RateMeter,
    pub throttle: KeyframeThrottle,
}

/// What a frame did to a track's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepted {
    /// Forward it (as a frame of layer `rid`).
    Yes,
    /// It is older than the newest frame of its layer.
    Late,
}

/// The layers of one track, and their ranking.
#[derive(Debug)]
pub(super) struct Layers {
    list: Vec<Layer>,
    /// Indices into `list` of the layers receivers may follow, lowest quality first.
    ranked: Vec<usize>,
    next_review: Option<Instant>,
    first_frame: Option<Instant>,
    /// Layers announced in the publisher's SDP (1 without simulcast).
    expected: usize,
}

/// Most layers per track: browsers send at most three, and a peer that sends more RIDs than
/// this gets the rest ignored rather than growing the table.
const MAX_LAYERS: usize = 4;

impl Layers {
    pub fn new(expected: usize) -> Self {
        Self {
            list: Vec::new(),
            ranked: Vec::new(),
            next_review: None,
            first_frame: None,
            expected: expected.clamp(1, MAX_LAYERS),
        }
    }

    /// Whether receivers may get their first choice (see [`SETTLE`]).
    pub fn settled(&self, now: Instant) -> bool {
        self.list.iter().filter(|l| l.keyframed).count() >= self.expected
            || self
                .first_frame
                .is_some_and(|t| now.saturating_duration_since(t) >= SETTLE)
    }

    /// Records a frame. Returns whether to accept it, and whether the ranking changed (a layer
    /// became usable or changed resolution), in which case receivers' choices need a review.
    /// Audio frames count as keyframes: any of them can start a receiver.
    pub fn on_frame(&mut self, now: Instant, data: &MediaData, video: bool) -> (Accepted, bool) {
        self.first_frame.get_or_insert(now);
        let index = match self.list.iter().position(|l| l.rid == data.rid) {
            Some(i) => i,
            None if self.list.len() < MAX_LAYERS => {
                self.list.push(Layer {
                    rid: data.rid,
                    newest: None,
                    last_frame: now,
                    width: 0,
                    height: 0,
                    keyframed: false,
                    meter: RateMeter::new(now),
                    throttle: KeyframeThrottle::default(),
                });
                self.list.len() - 1
            }
            None => return (Accepted::Late, false),
        };
        let layer = &mut self.list[index];
        if layer.newest.is_some_and(|t| data.time <= t) {
            return (Accepted::Late, false);
        }
        layer.newest = Some(data.time);
        layer.last_frame = now;
        layer.meter.add(now, data.data.len());
        // A ranked layer that stopped while this one goes on.
        let mut changed = self
            .ranked
            .iter()
            .any(|&i| now.saturating_duration_since(self.list[i].last_frame) >= BEHIND_AFTER);
        let layer = &mut self.list[index];
        if data.is_keyframe() || !video {
            layer.throttle.satisfied();
            let (width, height) = vp8_size(&data.data).unwrap_or((0, 0));
            if !layer.keyframed || (width, height) != (layer.width, layer.height) {
                changed = true;
            }
            layer.keyframed = true;
            (layer.width, layer.height) = (width, height);
        }
        if changed || !self.ranked.contains(&index) && layer.keyframed {
            self.rerank(now);
            changed = true;
        }
        (Accepted::Yes, changed)
    }

    /// Re-ranks if a review is due. Returns whether the set of usable layers or their
    /// order changed.
    pub fn review(&mut self, now: Instant) -> bool {
        if self.next_review.is_some_and(|t| now < t) {
            return false;
        }
        let before = self.ranked.clone();
        self.rerank(now);
        self.ranked != before
    }

    fn rerank(&mut self, now: Instant) {
        self.next_review = Some(now + REVIEW_EVERY);
        let newest = self.list.iter().map(|l| l.last_frame).max();
        let usable: Vec<usize> = (0..self.list.len())
            .filter(|&i| {
                let l = &self.list[i];
                l.keyframed
                    && now.saturating_duration_since(l.last_frame) < INACTIVE_AFTER
                    && newest
                        .is_none_or(|n| n.saturating_duration_since(l.last_frame) < BEHIND_AFTER)
            })
            .collect();
        let infos: Vec<LayerInfo> = usable.iter().map(|&i| self.info(i, now)).collect();
        self.ranked = crate::layer::rank(&infos)
            .into_iter()
            .map(|p| usable[p])
            .collect();
    }

    fn info(&self, index: usize, now: Instant) -> LayerInfo {
        let l = &self.list[index];
        LayerInfo {
            width: l.width,
            height: l.height,
            bitrate: l.meter.bitrate(now),
        }
    }

    /// The usable layers, lowest first, as the choice needs them.
    pub fn ranked_info(&self, now: Instant) -> Vec<LayerInfo> {
        self.ranked.iter().map(|&i| self.info(i, now)).collect()
    }

    /// The RID of the layer at `position` of the ranking.
    pub fn rid_at(&self, position: usize) -> Option<Option<Rid>> {
        self.ranked.get(position).map(|&i| self.list[i].rid)
    }

    /// Where the layer `rid` stands in the ranking, if it is usable.
    pub fn position_of(&self, rid: Option<Rid>) -> Option<usize> {
        self.ranked.iter().position(|&i| self.list[i].rid == rid)
    }

    /// The best usable layer.
    pub fn best(&self) -> Option<Option<Rid>> {
        self.ranked.last().map(|&i| self.list[i].rid)
    }

    pub fn get(&self, rid: Option<Rid>) -> Option<&Layer> {
        self.list.iter().find(|l| l.rid == rid)
    }

    pub fn get_mut(&mut self, rid: Option<Rid>) -> Option<&mut Layer> {
        self.list.iter_mut().find(|l| l.rid == rid)
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386, 9.1), if `data` is one.
pub(super) fn vp8_size(data: &[u8]) -> Option<(u32, u32)> {
    let h = data.get(..10)?;
    if h[0] & 0x01 != 0 || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([h[6], h[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([h[8], h[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

/// Output media time of one receiver: continuous across layer switches.
#[derive(Debug, Clone, Default)]
pub(super) struct Retime {
    /// Added to the input time of the followed layer.
    offset: i64,
    /// The last output time and when it was written.
    last: Option<(u64, Instant)>,
}

impl Retime {
    /// The output time for a frame at `time` of the followed layer. `switched_from` is the
    /// newest time of the previous layer when this frame is the first after a switch.
    pub fn map(
        &mut self,
        now: Instant,
        time: MediaTime,
        switched_from: Option<MediaTime>,
    ) -> MediaTime {
        let hz = u64::from(time.frequency().get());
        let input = time.numer() as i64;
        if let (Some(old), Some((last_out, last_at))) = (switched_from, self.last) {
            let same_base = old.numer().abs_diff(time.numer()) < SAME_BASE.as_secs() * hz;
            if !same_base {
                // Continue from the last output by the time that passed since.
                let elapsed = now.saturating_duration_since(last_at);
                let ticks = (elapsed.as_micros() as u64 * hz / 1_000_000).max(1);
                self.offset = (last_out + ticks) as i64 - input;
            }
        }
        let mut out = (input + self.offset).max(0) as u64;
        if let Some((last_out, _)) = self.last
            && out <= last_out
        {
            // The first frame of the new layer can carry the capture time of a frame already
            // sent from the old one; a decoder wants every frame later than the previous.
            out = last_out + 1;
        }
        self.last = Some((out, now));
        MediaTime::new(out, time.frequency())
    }
}

/// What a receiver does with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Not the layer this receiver follows or is moving to.
    Skip,
    /// A keyframe of the target layer: switch to it and forward.
    Switch,
    /// A frame of the followed layer: the usual keyframe gate decides.
    Follow,
}

/// Which layer one receiver forwards, and where it is going.
#[derive(Debug, Clone, Default)]
pub(super) struct Follow {
    pub current: Option<Option<Rid>>,
    pub target: Option<Option<Rid>>,
    pub retime: Retime,
}

impl Follow {
    pub fn step(&self, rid: Option<Rid>, keyframe_or_audio: bool) -> Step {
        // Until the target's keyframe comes, the old layer keeps flowing.
        if self.target == Some(rid) && self.current != Some(rid) && keyframe_or_audio {
            return Step::Switch;
        }
        if self.current == Some(rid) {
            Step::Follow
        } else {
            Step::Skip
        }
    }

    /// The layer a keyframe is needed from: the target while a switch is pending, else the
    /// followed one.
    pub fn keyframe_layer(&self) -> Option<Option<Rid>> {
        self.target.or(self.current)
    }

    pub fn switching(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }
}

/// A subscriber's downlink: tile sizes it reported and its bandwidth estimate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Downlink {
    pub tiles: HashMap<Mid, Tile>,
    /// Latest TWCC estimate, bits per second.
    pub estimate: Option<u64>,
    pub upgrade_hold: Option<Instant>,
    /// The current hold after a bandwidth downgrade, and when the last upgrade happened.
    pub backoff: Option<Duration>,
    pub upgraded_at: Option<Instant>,
    /// An upgrade of this downlink failed: from then on upgrades are probed first.
    pub upgrade_failed: bool,
    /// Since when the forwarded layers cost more than the estimate allows.
    pub over_since: Option<Instant>,
    /// The desired bitrate last given to str0m's estimator.
    pub bwe_desired: Option<u64>,
    /// The minimum (padding) bitrate last given to str0m's estimator.
    pub bwe_minimum: u64,
    /// The upgrade being tried with padding: since when, and what it would send in all.
    pub probe: Option<Probe>,
    /// When to choose again without a new estimate (str0m reports one only when it changes):
    /// when the probe is due or the upgrade hold ends.
    pub recheck: Option<Instant>,
}

/// An upgrade tried with padding first; see [`UPGRADE_PROBE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    pub since: Instant,
    /// Bits per second the upgraded choice sends, audio included.
    pub rate: u64,
    /// The highest estimate during the probe.
    pub peak: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::Frequency;

    fn t(ticks: u64) -> MediaTime {
        MediaTime::new(ticks, Frequency::NINETY_KHZ)
    }

    #[test]
    fn vp8_size_reads_keyframe_headers_only() {
        let key = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02, 0, 0,
        ];
        assert_eq!(vp8_size(&key), Some((1280, 720)));
        // The top two bits are the scaling mode, not size.
        let scaled = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0xc1, 0xb4, 0x40];
        assert_eq!(vp8_size(&scaled), Some((320, 180)));
        let delta = [0x11, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02];
        assert_eq!(vp8_size(&delta), None);
        assert_eq!(vp8_size(&key[..9]), None);
        assert_eq!(vp8_size(&[0x10, 0, 0, 1, 2, 3, 0, 5, 0xd0, 2]), None);
    }

    #[test]
    fn retime_keeps_a_shared_base_and_rebases_a_foreign_one() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut r = Retime::default();
        assert_eq!(r.map(ms(0), t(90_000), None), t(90_000));
        assert_eq!(r.map(ms(33), t(93_000), None), t(93_000));
        // Switch to a layer with the same base: times pass through unchanged...
        assert_eq!(r.map(ms(66), t(96_000), Some(t(93_000))), t(96_000));
        // ...and a keyframe stamped like the frame already sent still moves forward.
        assert_eq!(r.map(ms(70), t(96_000), Some(t(96_000))), t(96_001));
        assert_eq!(r.map(ms(100), t(99_000), None), t(99_000));
        // A layer with an unrelated base continues from the last output by the elapsed time.
        let out = r.map(ms(133), t(5_000_000_000), Some(t(99_000)));
        assert_eq!(out, t(99_000 + 2970));
        assert_eq!(
            r.map(ms(166), t(5_000_003_000), None),
            t(99_000 + 2970 + 3000)
        );
        // Backwards far below zero never underflows.
        let mut r = Retime::default();
        r.map(ms(0), t(10), None);
        assert!(r.map(ms(33), t(0), Some(t(100_000_000))).numer() > 10);
    }

    #[test]
    fn follow_switches_only_at_a_keyframe_of_the_target() {
        let q = Some(Rid::from("q"));
        let f = Some(Rid::from("f"));
        let mut follow = Follow {
            current: Some(q),
            target: Some(f),
            retime: Retime::default(),
        };
        assert!(follow.switching());
        assert_eq!(follow.keyframe_layer(), Some(f));
        assert_eq!(follow.step(f, false), Step::Skip);
        assert_eq!(follow.step(q, false), Step::Follow);
        assert_eq!(follow.step(q, true), Step::Follow);
        assert_eq!(follow.step(f, true), Step::Switch);
        follow.current = Some(f);
        assert!(!follow.switching());
        assert_eq!(follow.step(q, true), Step::Skip);
        assert_eq!(follow.step(f, false), Step::Follow);
        // A new receiver has no layer yet and starts at its target's keyframe.
        let fresh = Follow {
            current: None,
            target: Some(None),
            retime: Retime::default(),
        };
        assert_eq!(fresh.step(None, false), Step::Skip);
        assert_eq!(fresh.step(None, true), Step::Switch);
    }
}
