//! Per-subscriber layer allocation: tile sizes from the client, the bandwidth estimate from
//! str0m's TWCC estimator, and the choice ([`crate::layer::choose`]) applied to every video
//! subscription of the subscriber.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use convene_proto::{MediaSource, TileSize};
use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, Mid, Rid};

use super::simulcast::{
    FAILED_UPGRADE, MAX_UPGRADE_HOLD, Probe, UPGRADE_HOLD, UPGRADE_PROBE, UPGRADE_SETTLE,
};
use super::{MAX_MID_LEN, Sfu, TrackId, slot_mut};
use crate::error::MediaError;
use crate::layer::{Tile, Want, choose, cost, for_size};
use crate::session::{OutState, SessionKey};

/// Where str0m's estimate starts: enough for a middle layer at once; probing finds more.
pub(super) const INITIAL_ESTIMATE: Bitrate = Bitrate::kbps(1000);
/// How long the estimate must stay below what is forwarded before a layer goes down (at once
/// when it is below half).
const DOWNGRADE_AFTER: Duration = Duration::from_secs(1);
/// A probe fails if the estimate ends it more than 1/`PROBE_FALL` below its highest during it.
const PROBE_FALL: u64 = 20;
/// Kept free for each received audio track (Opus at browsers' default rate, plus headers).
const AUDIO_RESERVE: u64 = 50_000;
/// Limits of a `tile_sizes` message.
const MAX_TILES: usize = 64;
const MAX_SIDE: u32 = 16384;

impl Sfu {
    /// A client's `tile_sizes`: the size at which it shows each received track (the full map).
    pub fn tile_sizes(
        &mut self,
        now: Instant,
        participant: &str,
        tiles: &BTreeMap<String, TileSize>,
    ) -> Result<(), MediaError> {
        self.now = now;
        let key = self.joined(participant)?;
        if tiles.len() > MAX_TILES
            || tiles.iter().any(|(mid, size)| {
                mid.is_empty()
                    || mid.len() > MAX_MID_LEN
                    || size.width > MAX_SIDE
                    || size.height > MAX_SIDE
            })
        {
            self.counters.client_errors += 1;
            return Err(MediaError::InvalidTileSizes(format!(
                "at most {MAX_TILES} entries, mids of 1 to {MAX_MID_LEN} characters, sides up to {MAX_SIDE}"
            )));
        }
        let parsed: HashMap<Mid, Tile> = tiles
            .iter()
            .map(|(mid, size)| {
                (
                    Mid::from(mid.as_str()),
                    Tile {
                        width: size.width,
                        height: size.height,
                    },
                )
            })
            .collect();
        if let Some(session) = self.session_mut(key) {
            tracing::debug!(participant = %session.participant, ?tiles, "tile sizes");
            session.downlink.tiles = parsed;
        }
        self.reallocate(key);
        self.settle();
        Ok(())
    }

    /// A new downlink estimate for a session.
    pub(super) fn on_estimate(&mut self, key: SessionKey, estimate: u64) {
        let Some(session) = self.session_mut(key) else {
            return;
        };
        session.downlink.estimate = Some(estimate);
        tracing::trace!(participant = %session.participant, estimate, "downlink estimate");
        self.reallocate(key);
    }

    /// Chooses the layer of every video subscription of `key` and asks for keyframes of the
    /// layers it moves to; tells str0m's estimator what to probe for.
    pub(super) fn reallocate(&mut self, key: SessionKey) {
        let now = self.now;
        let Some(session) = self.session(key) else {
            return;
        };
        let downlink = &session.downlink;
        let (estimate, hold, over_before, upgraded_at, probe, constrained) = (
            downlink.estimate,
            downlink.upgrade_hold,
            downlink.over_since,
            downlink.upgraded_at,
            downlink.probe,
            downlink.upgrade_failed,
        );
        let mut audio: Vec<TrackId> = Vec::new();
        let mut outs: Vec<(TrackId, Option<Tile>, bool)> = Vec::new();
        for t in &session.tracks_out {
            let OutState::Open(mid) = t.state else {
                continue;
            };
            if t.removed {
                continue;
            }
            if t.kind.is_audio() {
                audio.push(t.track);
                continue;
            }
            let tile = downlink.tiles.get(&mid).copied();
            outs.push((t.track, tile, t.source == MediaSource::Screen));
        }
        let mut wants: Vec<Want> = Vec::new();
        let mut chosen_for: Vec<TrackId> = Vec::new();
        for (id, tile, screen) in outs {
            let Some(track) = self.tracks.get(&id) else {
                continue;
            };
            let Some(sub) = track.subscribers.iter().find(|s| s.session == key) else {
                continue;
            };
            if sub.paused {
                // Last-N: it costs nothing until it resumes, which allocates again.
                continue;
            }
            let ranked = track.layers.ranked_info(now);
            if ranked.is_empty() || !track.layers.settled(now) {
                continue;
            }
            let wanted = if screen {
                ranked.len() - 1
            } else {
                for_size(&ranked, tile)
            };
            wants.push(Want {
                ladder: ranked.iter().map(|l| l.bitrate).collect(),
                wanted,
                // Where it is heading: a switch already decided counts as done, or the next
                // estimate would undo it before its keyframe arrived.
                current: sub
                    .follow
                    .target
                    .or(sub.follow.current)
                    .and_then(|r| track.layers.position_of(r)),
                screen,
            });
            chosen_for.push(id);
        }
        // Audio has one layer and needs no choice.
        for id in &audio {
            if let Some(track) = self.tracks.get_mut(id) {
                let best = track.layers.best();
                for sub in track.subscribers.iter_mut().filter(|s| s.session == key) {
                    sub.follow.target = best;
                }
            }
        }
        let reserve = audio.len() as u64 * AUDIO_RESERVE;
        let budget = estimate.map_or(u64::MAX, |e| e.saturating_sub(reserve));
        let may_upgrade = hold.is_none_or(|h| now >= h);
        // What is forwarded now must have been over budget for a while before it goes down.
        let current: Vec<usize> = wants
            .iter()
            .map(|w| w.current.unwrap_or(w.wanted))
            .collect();
        let current_cost = cost(&wants, &current);
        let over = current_cost > budget;
        let over_since = match (over, over_before) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
        };
        // No point waiting when half of what is sent does not get through, or when a recent
        // upgrade is what no longer fits.
        let just_upgraded =
            upgraded_at.is_some_and(|t| now.saturating_duration_since(t) < FAILED_UPGRADE);
        let may_downgrade = over_since
            .is_some_and(|t| now.saturating_duration_since(t) >= DOWNGRADE_AFTER)
            || over && just_upgraded
            || budget < current_cost / 2;
        let mut chosen = choose(&wants, budget, may_upgrade, may_downgrade);
        // Where an upgrade has failed before (the link could not carry what the estimate
        // allowed), an upgrade the estimate allows is tried with padding first (see
        // `UPGRADE_PROBE`), and made once the estimate has allowed it throughout. Elsewhere an
        // upgrade is made at once: padding costs packets, and a momentary dip of the estimate
        // (a busy machine) says nothing about the link.
        let upgrade = wants
            .iter()
            .zip(&chosen)
            .any(|(w, &p)| w.current.is_some_and(|c| p > c));
        let estimate_now = estimate.unwrap_or(0);
        let (next_probe, fell) = match probe {
            _ if !upgrade || !constrained || estimate.is_none() => (None, false),
            // Done: the padding must not have pulled the estimate down either (a link that
            // absorbs a burst shows its limit late, as a falling estimate).
            Some(p) if now >= p.since + UPGRADE_PROBE => {
                (None, estimate_now < p.peak - p.peak / PROBE_FALL)
            }
            _ => (
                Some(Probe {
                    since: probe.map_or(now, |p| p.since),
                    rate: cost(&wants, &chosen) + reserve,
                    peak: probe.map_or(0, |p| p.peak).max(estimate_now),
                }),
                false,
            ),
        };
        if next_probe.is_some() || fell {
            for (w, p) in wants.iter().zip(chosen.iter_mut()) {
                if let Some(c) = w.current {
                    *p = (*p).min(c);
                }
            }
        }
        // The estimate fell below what the probe was for, with the subscriber still short of
        // what it wants: the link cannot carry the upgrade.
        let probe_failed = fell
            || probe.is_some() && !upgrade && wants.iter().zip(&chosen).any(|(w, &p)| p < w.wanted);
        if probe.is_none() && next_probe.is_some() {
            tracing::debug!(?next_probe, budget, "upgrade probe");
        } else if probe.is_some() && next_probe.is_none() {
            tracing::debug!(
                ?probe,
                budget,
                fell,
                failed = probe_failed,
                "upgrade probe done"
            );
        }
        let mut held_back = false;
        let mut upgraded = false;
        let mut keyframes: Vec<(TrackId, Option<Rid>)> = Vec::new();
        let mut desired = reserve;
        for ((id, want), &position) in chosen_for.iter().zip(&wants).zip(&chosen) {
            if want.current.is_some_and(|c| position < c) && position < want.wanted {
                held_back = true;
            }
            upgraded |= want.current.is_some_and(|c| position > c);
            desired += want.ladder[want.wanted];
            let Some(track) = self.tracks.get_mut(id) else {
                continue;
            };
            let rid = track.layers.rid_at(position);
            let Some(sub) = track.subscribers.iter_mut().find(|s| s.session == key) else {
                continue;
            };
            if sub.follow.target != rid {
                tracing::debug!(
                    mid = %sub.mid,
                    to = ?rid.flatten(),
                    wanted = want.wanted,
                    ladder = ?want.ladder,
                    budget,
                    "layer target"
                );
                sub.follow.target = rid;
                if sub.follow.switching() {
                    keyframes.extend(rid.map(|r| (*id, r)));
                }
            }
        }
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return;
        };
        session.downlink.over_since = over_since;
        let d = &mut session.downlink;
        d.probe = next_probe;
        if held_back || probe_failed {
            let failed = probe_failed
                || d.upgraded_at
                    .is_some_and(|t| now.saturating_duration_since(t) < FAILED_UPGRADE);
            let hold = match d.backoff {
                Some(b) if failed => (b * 2).min(MAX_UPGRADE_HOLD),
                _ => UPGRADE_HOLD,
            };
            d.backoff = Some(hold);
            d.upgrade_hold = Some(now + hold);
            d.upgrade_failed |= failed;
        } else if upgraded {
            d.upgraded_at = Some(now);
            d.upgrade_hold = Some(now + UPGRADE_SETTLE);
        }
        let probe_due = d.probe.map(|p| p.since + UPGRADE_PROBE);
        let hold_ends = d.upgrade_hold.filter(|&t| t > now);
        d.recheck = probe_due.into_iter().chain(hold_ends).min();
        // Probe towards what the subscriber would take at its tile sizes; changes under 10 %
        // are not worth the estimator's attention. A minimum only while an upgrade is tried:
        // str0m pads every leg up to its minimum whenever media falls short of it, which cost
        // 14 % more packets per subscriber on loopback and would crowd out media on a full
        // link; its own 50 kbit/s keeps the estimate alive, and probes find more when more is
        // wanted.
        let changed = session
            .downlink
            .bwe_desired
            .is_none_or(|d| d.abs_diff(desired) * 10 > d.max(1));
        let minimum = next_probe.map_or(0, |p| p.rate);
        if (changed || minimum != session.downlink.bwe_minimum) && !wants.is_empty() {
            session.downlink.bwe_desired = Some(desired);
            session.downlink.bwe_minimum = minimum;
            if let Some(rtc) = session.rtc.as_mut() {
                rtc.bwe()
                    .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
            }
            self.drain(key);
        }
        for (id, rid) in keyframes {
            self.request_keyframe(id, rid, KeyframeRequestKind::Pli);
        }
    }
}
