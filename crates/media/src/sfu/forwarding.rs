//! Tracks and forwarding: what a publisher's frames become for each subscriber of its room.
//!
//! A [`Track`] is one published m-line; each [`Subscription`] is one subscriber's send-only
//! m-line carrying it. `forward` runs for every frame str0m hands up from a publisher: it drops
//! late frames, offers the frame to the room's taps, and writes it to each subscriber whose
//! keyframe gate ([`crate::forward`]) lets it through. `request_keyframe` is the one way to ask a
//! publisher for a keyframe, throttled per track.

use std::sync::Arc;

use convene_proto::ServerMessage;
use str0m::Rtc;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};

use super::{Output, Sfu, slot_mut};
use crate::error::MediaError;
use crate::forward::{Decision, KeyframeThrottle, decide};
use crate::session::{Dead, OutState, SessionKey, TrackOut, drain};

/// A published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackId(pub(crate) u64);

pub(super) struct Subscription {
    pub(super) session: SessionKey,
    pub(super) mid: Mid,
    pub(super) awaiting_keyframe: bool,
}

pub(super) struct Track {
    pub(super) owner: SessionKey,
    pub(super) mid: Mid,
    pub(super) kind: MediaKind,
    pub(super) room: Arc<str>,
    pub(super) subscribers: Vec<Subscription>,
    pub(super) throttle: KeyframeThrottle,
    /// With simulcast the publisher sends several encodings on one mid; until layer choice
    /// exists, the first encoding seen is the one forwarded.
    pub(super) rid: Option<Option<str0m::media::Rid>>,
    /// Media time of the newest frame forwarded. A frame older than that (a retransmission that
    /// completed after its successor was already sent) is dropped: decoders want time forward.
    pub(super) newest: Option<MediaTime>,
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
                rid: None,
                newest: None,
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
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        match track.rid {
            None => track.rid = Some(data.rid),
            Some(rid) if rid != data.rid => return,
            Some(_) => {}
        }
        if track.newest.is_some_and(|t| data.time <= t) {
            self.counters.frames_late += 1;
            return;
        }
        track.newest = Some(data.time);
        self.tap_frame(track_id, &data);
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let is_video = track.kind.is_video();
        let is_keyframe = data.is_keyframe();
        let mut want_keyframe = false;
        // The wallclock of the outgoing frame is when it leaves here: str0m paces and orders
        // sending by it, and a frame that waited for a retransmission must not be queued ahead
        // of frames sent before it.
        let now = self.now;
        if is_video && !data.contiguous {
            // The publisher's stream broke (loss that NACK could not repair): what follows
            // does not decode until the next keyframe.
            for sub in &mut track.subscribers {
                sub.awaiting_keyframe = true;
            }
            want_keyframe = true;
        }
        if is_keyframe {
            track.throttle.satisfied();
        }
        for sub in &mut track.subscribers {
            let Some(session) = slot_mut(&mut self.slots, sub.session) else {
                continue;
            };
            let ready = session.connected && session.rtc.as_ref().is_some_and(Rtc::is_alive);
            match decide(is_video, sub.awaiting_keyframe, is_keyframe, ready) {
                Decision::DropNotReady => {
                    sub.awaiting_keyframe = true;
                    self.counters.frames_held_back += 1;
                    continue;
                }
                Decision::DropAwaitKeyframe => {
                    want_keyframe = true;
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
            match writer.write(pt, now, data.time, data.data.clone()) {
                Ok(()) => {
                    self.counters.frames_forwarded += 1;
                    if is_keyframe && sub.awaiting_keyframe {
                        sub.awaiting_keyframe = false;
                        tracing::debug!(participant = %session.participant, mid = %sub.mid, "video starts at keyframe");
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
        if want_keyframe {
            self.request_keyframe(track_id, KeyframeRequestKind::Pli);
        }
    }

    pub(super) fn request_keyframe(&mut self, id: TrackId, kind: KeyframeRequestKind) {
        let now = self.now;
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        if !track.kind.is_video() || !track.throttle.try_request(now) {
            return;
        }
        let (owner, mid, rid) = (track.owner, track.mid, track.rid.flatten());
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
                tracing::debug!(participant = %session.participant, %mid, ?kind, "keyframe requested");
            }
            // No packet from the publisher yet: nothing to ask; media will start with a keyframe.
            Err(e) => tracing::debug!(error = %e, "keyframe request not possible"),
        }
        self.drain(owner);
    }
}
