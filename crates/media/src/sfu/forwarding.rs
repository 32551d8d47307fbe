//! Tracks and forwarding: what a publisher's frames become for each subscriber of its room.
//!
//! A [`Track`] is one published m-line; each [`Subscription`] is one subscriber's send-only
//! m-line carrying it. `forward` runs for every frame str0m hands up from a publisher: it drops
//! late frames, keeps the track's simulcast layers up to date ([`super::simulcast`]), offers the
//! frame to the room's taps, and writes it to each subscriber that follows its layer and whose
//! keyframe gate ([`crate::forward`]) lets it through. `request_keyframe` is the one way to ask a
//! publisher for a keyframe, throttled per layer.

use std::sync::Arc;
use std::time::Instant;

use convene_proto::ServerMessage;
use str0m::Rtc;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid, Rids};

use super::simulcast::{Accepted, Follow, Layers, Step};
use super::{Output, Sfu, slot_mut};
use crate::error::MediaError;
use crate::forward::{Decision, KeyframeThrottle, decide};
use crate::freshness::Freshness;
use crate::session::{Dead, OutState, SessionKey, TrackOut, drain};

/// A published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackId(pub(crate) u64);

pub(super) struct Subscription {
    pub(super) session: SessionKey,
    pub(super) mid: Mid,
    /// The followed layer needs a keyframe before its frames decode again.
    pub(super) awaiting_keyframe: bool,
    /// Last-N does not forward this camera to this subscriber now (see `floor`).
    pub(super) paused: bool,
    /// The simulcast layer forwarded, and the one to switch to.
    pub(super) follow: Follow,
}

impl Subscription {
    pub(super) fn new(session: SessionKey, mid: Mid) -> Self {
        Self {
            session,
            mid,
            awaiting_keyframe: true,
            follow: Follow::default(),
            paused: false,
        }
    }
}

pub(super) struct Track {
    pub(super) owner: SessionKey,
    pub(super) mid: Mid,
    pub(super) kind: MediaKind,
    pub(super) room: Arc<str>,
    pub(super) subscribers: Vec<Subscription>,
    /// Keyframe requests before any layer is known (each layer has its own throttle).
    pub(super) throttle: KeyframeThrottle,
    /// The encodings the publisher sends on this mid (one without simulcast).
    pub(super) layers: Layers,
    /// The layer the room's taps get: always the best one.
    pub(super) tap: Follow,
    /// Each layer's usual timing, to drop the stale backlog of a stall.
    pub(super) freshness: Vec<(Option<Rid>, Freshness)>,
}

impl Track {
    /// Whether a frame of layer `rid` with media time `time` is too late at `now` to forward
    /// (see [`crate::freshness`]).
    fn is_stale(&mut self, rid: Option<Rid>, now: Instant, time: MediaTime) -> bool {
        let i = match self.freshness.iter().position(|(r, _)| *r == rid) {
            Some(i) => i,
            None => {
                self.freshness.push((rid, Freshness::default()));
                self.freshness.len() - 1
            }
        };
        self.freshness[i].1.is_stale(now, time)
    }
}

impl Sfu {
    pub(super) fn add_track(&mut self, owner: SessionKey, mid: Mid, kind: MediaKind) {
        let Some(session) = self.session(owner) else {
            return;
        };
        if session.track_in(mid).is_some() {
            return;
        }
        // A sending m-line without a codec we forward cannot become a track.
        let usable = session
            .rtc
            .as_ref()
            .and_then(|r| r.media(mid))
            .is_some_and(|m| !m.remote_pts().is_empty());
        let participant = session.participant.clone();
        if !usable {
            self.counters.client_errors += 1;
            let e = MediaError::NoUsableCodec(mid.to_string());
            self.outputs.push_back(Output::Signal {
                participant: participant.to_string(),
                message: ServerMessage::MediaError {
                    code: e.code().into(),
                    message: e.to_string(),
                },
            });
            return;
        }
        // Simulcast: the RIDs the publisher announced.
        let layers = match session
            .rtc
            .as_ref()
            .and_then(|r| r.media(mid))
            .map(|m| m.rids_rx())
        {
            Some(Rids::Specific(rids)) => rids.len(),
            _ => 1,
        };
        let room = session.room.clone();
        let source = session.source_of(mid, kind);
        let id = TrackId(self.next_track);
        self.next_track += 1;
        self.tracks.insert(
            id,
            Track {
                owner,
                mid,
                kind,
                room: room.clone(),
                subscribers: Vec::new(),
                throttle: KeyframeThrottle::default(),
                layers: Layers::new(layers),
                tap: Follow::default(),
                freshness: Vec::new(),
            },
        );
        if let Some(s) = self.session_mut(owner) {
            s.tracks_in.push((mid, id));
        }
        let members = self.rooms.get(&room).cloned().unwrap_or_default();
        for member in members {
            if member == owner {
                continue;
            }
            if let Some(s) = self.session_mut(member) {
                s.tracks_out.push(TrackOut {
                    track: id,
                    participant: participant.clone(),
                    kind,
                    source,
                    state: OutState::ToOpen,
                    removed: false,
                });
                self.to_negotiate.push(member);
            }
        }
    }

    pub(super) fn remove_track(&mut self, id: TrackId) {
        let Some(track) = self.tracks.remove(&id) else {
            return;
        };
        if let Some(owner) = self.session_mut(track.owner) {
            owner.tracks_in.retain(|(_, t)| *t != id);
        }
        self.tap_track_ended(&track.room, id);
        let members = self.rooms.get(&track.room).cloned().unwrap_or_default();
        for member in members {
            if let Some(s) = self.session_mut(member) {
                let mut any = false;
                for t in s.tracks_out.iter_mut().filter(|t| t.track == id) {
                    t.removed = true;
                    any = true;
                }
                if any {
                    self.to_negotiate.push(member);
                }
            }
        }
    }

    pub(super) fn forward(&mut self, from: SessionKey, data: MediaData) {
        let Some(track_id) = self.session(from).and_then(|s| s.track_in(data.mid)) else {
            return;
        };
        let now = self.now;
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let is_video = track.kind.is_video();
        let is_keyframe = data.is_keyframe();
        let (accepted, mut changed) = track.layers.on_frame(now, &data, is_video);
        if accepted == Accepted::Late {
            self.counters.frames_late += 1;
            return;
        }
        changed |= track.layers.review(now);
        // Subscribers whose choice is due: all of them when the layers changed, else new ones;
        // none while a new track's layers are still starting.
        let settled = track.layers.settled(now);
        let due: Vec<SessionKey> = track
            .subscribers
            .iter()
            .filter(|s| settled && (changed || s.follow.target.is_none()))
            .map(|s| s.session)
            .collect();
        if settled && (changed || track.tap.target.is_none()) {
            track.tap.target = track.layers.best();
        }
        for session in due {
            self.reallocate(session);
        }
        // Recordings take every frame, stale or not: they are not watched live.
        self.tap_frame(track_id, &data);
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let rid = data.rid;
        if track.is_stale(rid, now, data.time) {
            self.counters.frames_stale += 1;
            if is_video {
                // What follows the dropped frames does not decode without a keyframe.
                for sub in &mut track.subscribers {
                    if sub.follow.current == Some(rid) {
                        sub.awaiting_keyframe = true;
                    }
                }
                self.request_keyframe(track_id, rid, KeyframeRequestKind::Pli);
            }
            return;
        }
        let mut want_keyframe: Vec<Option<Rid>> = Vec::new();
        // The wallclock of the outgoing frame is when it leaves here: str0m paces and orders
        // sending by it, and a frame that waited for a retransmission must not be queued ahead
        // of frames sent before it.
        if is_video && !data.contiguous {
            // The publisher's stream broke (loss that NACK could not repair): what follows
            // does not decode until the next keyframe.
            for sub in &mut track.subscribers {
                if sub.follow.current == Some(rid) {
                    sub.awaiting_keyframe = true;
                }
            }
            want_keyframe.push(rid);
        }
        let Track {
            layers,
            subscribers,
            ..
        } = track;
        for sub in subscribers.iter_mut() {
            if sub.paused {
                continue;
            }
            let step = sub.follow.step(rid, is_keyframe || !is_video);
            if step == Step::Skip {
                if sub.follow.switching() && sub.follow.target == Some(rid) {
                    // Waiting for the target layer's keyframe; the request may have been lost.
                    want_keyframe.push(rid);
                }
                continue;
            }
            let Some(session) = slot_mut(&mut self.slots, sub.session) else {
                continue;
            };
            let ready = session.connected && session.rtc.as_ref().is_some_and(Rtc::is_alive);
            let awaiting = sub.awaiting_keyframe || step == Step::Switch;
            match decide(is_video, awaiting, is_keyframe, ready) {
                Decision::DropNotReady => {
                    sub.awaiting_keyframe = true;
                    self.counters.frames_held_back += 1;
                    continue;
                }
                Decision::DropAwaitKeyframe => {
                    want_keyframe.extend(sub.follow.keyframe_layer());
                    self.counters.frames_held_back += 1;
                    continue;
                }
                Decision::Forward => {}
            }
            let Some(rtc) = session.rtc.as_mut() else {
                continue;
            };
            let Some(writer) = rtc.writer(sub.mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                // The subscriber did not accept the publisher's codec.
                self.counters.frames_held_back += 1;
                continue;
            };
            // The old layer's newest time when this frame is the first after a switch.
            let switched_from: Option<MediaTime> = if step == Step::Switch {
                let previous = sub.follow.current.replace(rid);
                if previous.is_some() {
                    self.counters.layer_switches += 1;
                    tracing::debug!(participant = %session.participant, mid = %sub.mid, from = ?previous.flatten(), to = ?rid, "layer switch");
                }
                previous.map(|p| layers.get(p).and_then(|l| l.newest).unwrap_or(data.time))
            } else {
                None
            };
            let time = sub.follow.retime.map(now, data.time, switched_from);
            match writer.write(pt, now, time, data.data.clone()) {
                Ok(()) => {
                    self.counters.frames_forwarded += 1;
                    if is_keyframe && sub.awaiting_keyframe {
                        sub.awaiting_keyframe = false;
                        tracing::debug!(participant = %session.participant, mid = %sub.mid, "video starts at keyframe");
                    }
                    if step == Step::Switch {
                        sub.awaiting_keyframe = false;
                    }
                }
                Err(e) => {
                    tracing::debug!(participant = %session.participant, error = %e, "write failed");
                }
            }
            if let Err(Dead(reason)) = drain(
                sub.session,
                session,
                &mut self.outputs,
                &mut self.events,
                &mut self.counters,
            ) {
                self.to_close.push((sub.session, reason));
            }
        }
        want_keyframe.dedup();
        for rid in want_keyframe {
            self.request_keyframe(track_id, rid, KeyframeRequestKind::Pli);
        }
        if let (false, Some(level)) = (is_video, data.ext_vals.audio_level)
            && let Some(room) = self.tracks.get(&track_id).map(|t| t.room.clone())
        {
            self.floor_observe(&room, from, level);
        }
    }

    /// Asks the publisher of `id` for a keyframe of layer `rid`, at most once per throttle
    /// interval per layer.
    pub(super) fn request_keyframe(
        &mut self,
        id: TrackId,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let now = self.now;
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        if !track.kind.is_video() {
            return;
        }
        let throttle = match track.layers.get_mut(rid) {
            Some(layer) => &mut layer.throttle,
            None => &mut track.throttle,
        };
        if !throttle.try_request(now) {
            return;
        }
        let (owner, mid) = (track.owner, track.mid);
        let Some(session) = slot_mut(&mut self.slots, owner) else {
            return;
        };
        let Some(rtc) = session.rtc.as_mut() else {
            return;
        };
        let Some(mut writer) = rtc.writer(mid) else {
            return;
        };
        // FIR only if negotiated; Chromium negotiates both.
        let kind = if writer.is_request_keyframe_possible(kind) {
            kind
        } else {
            KeyframeRequestKind::Pli
        };
        match writer.request_keyframe(rid, kind) {
            Ok(()) => {
                self.counters.keyframe_requests_sent += 1;
                tracing::debug!(participant = %session.participant, %mid, ?rid, ?kind, "keyframe requested");
            }
            // No packet from the publisher yet: nothing to ask; media will start with a keyframe.
            Err(e) => tracing::debug!(error = %e, "keyframe request not possible"),
        }
        self.drain(owner);
    }

    /// A subscriber needs a keyframe of `track` (it connected, or reported picture loss): of
    /// the layer it follows or is moving to.
    pub(super) fn request_keyframe_for(
        &mut self,
        track: TrackId,
        subscriber: SessionKey,
        kind: KeyframeRequestKind,
    ) {
        let rid = self.tracks.get(&track).and_then(|t| {
            t.subscribers
                .iter()
                .find(|s| s.session == subscriber)
                .and_then(|s| s.follow.keyframe_layer())
                .or_else(|| t.layers.best())
        });
        self.request_keyframe(track, rid.flatten(), kind);
    }
}
