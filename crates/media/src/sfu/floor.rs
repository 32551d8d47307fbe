//! Who holds the floor in each room, and whose camera each subscriber receives (last-N).
//!
//! Audio frames feed the room's [`Speakers`] with their RFC 6464 level. When the dominant speaker
//! changes, every member hears `dominant_speaker`, and last-N is applied again to every member of
//! the room: a subscriber receives the camera video of the first N others in the speaker order
//! who publish a camera, where N is the smaller of `[media] last_n` and the client's
//! `set_last_n` (0 on either side: no limit). The other cameras' subscriptions are paused: the
//! forwarding loop skips them (nothing is written, so no keyframe is asked for on their behalf),
//! and their mids are listed in `paused_tracks`. Resuming sets the subscription waiting for a
//! keyframe and asks the publisher for one. Audio and screen shares are never paused: a screen
//! share is what people look at whoever speaks.
//!
//! Last-N is re-applied when the speaker order changes (a new dominant speaker, someone leaves),
//! when a subscriber's subscriptions change (an answer was accepted, which is how a newcomer's
//! camera meets everyone's N), and when a client asks for another N; never per frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use convene_proto::{MediaSource, ServerMessage};
use str0m::media::{KeyframeRequestKind, MediaKind};

use super::{Output, Sfu, TrackId};
use crate::error::MediaError;
use crate::session::{OutState, SessionKey};
use crate::speaker::Speakers;

/// Speaker state of every room, and the last-N requests and pause lists of every session.
#[derive(Debug, Default)]
pub(crate) struct Floor {
    rooms: HashMap<Arc<str>, Speakers>,
    /// `set_last_n` per session; absent means "as many as the server sends".
    requested: HashMap<SessionKey, u32>,
    /// The last `paused_tracks` list sent to each session, to send only changes.
    sent_paused: HashMap<SessionKey, Vec<String>>,
}

impl Sfu {
    /// A client's `set_last_n`: receive the camera video of at most `last_n` others (0: as
    /// many as the server's own limit allows).
    pub fn set_last_n(
        &mut self,
        now: Instant,
        participant: &str,
        last_n: u32,
    ) -> Result<(), MediaError> {
        self.now = now;
        let key = self.joined(participant)?;
        if last_n == 0 {
            self.floor.requested.remove(&key);
        } else {
            self.floor.requested.insert(key, last_n);
        }
        self.apply_last_n(key);
        self.settle();
        Ok(())
    }

    /// The participant who holds the floor in `room`, if anyone does.
    pub fn dominant_speaker(&self, room: &str) -> Option<&str> {
        self.floor
            .rooms
            .get(room)
            .and_then(Speakers::dominant)
            .map(|d| &**d)
    }

    /// A session joined its room: it enters the speaker order and learns who holds the floor.
    pub(super) fn floor_join(&mut self, key: SessionKey) {
        let Some(s) = self.session(key) else {
            return;
        };
        let (room, participant) = (s.room.clone(), s.participant.clone());
        let speakers = self.floor.rooms.entry(room.clone()).or_default();
        speakers.add(&participant);
        if let Some(d) = speakers.dominant() {
            let message = ServerMessage::DominantSpeaker {
                participant: Some(d.to_string()),
            };
            self.outputs.push_back(Output::Signal {
                participant: participant.to_string(),
                message,
            });
        }
        // Nobody's last-N changes yet: the newcomer enters the order last and publishes nothing
        // so far. Its camera meets each member's last-N when that member's subscription to it is
        // answered (`negotiation`), so a join costs O(1) here, not a pass over the whole room.
    }

    /// A session is gone (its slot is already free).
    pub(super) fn floor_leave(&mut self, key: SessionKey, room: &Arc<str>, participant: &str) {
        self.floor.requested.remove(&key);
        self.floor.sent_paused.remove(&key);
        let Some(speakers) = self.floor.rooms.get_mut(room) else {
            return;
        };
        let changed = speakers.remove(participant);
        if self.rooms.get(room).is_none_or(Vec::is_empty) {
            self.floor.rooms.remove(room);
            return;
        }
        if changed {
            self.announce(room);
        }
        self.apply_last_n_room(room);
    }

    /// An audio frame of `from` with its level (str0m's value: 0 loudest, -127 silence).
    pub(super) fn floor_observe(&mut self, room: &Arc<str>, from: SessionKey, level: i8) {
        let Some(participant) = self.session(from).map(|s| s.participant.clone()) else {
            return;
        };
        let now = self.now;
        let Some(speakers) = self.floor.rooms.get_mut(room) else {
            return;
        };
        if speakers.observe(now, &participant, level) {
            tracing::debug!(room = %room, dominant = ?speakers.dominant(), "dominant speaker");
            self.announce(room);
            self.apply_last_n_room(room);
        }
    }

    /// Tells every member of `room` who holds the floor.
    fn announce(&mut self, room: &Arc<str>) {
        let dominant = self.dominant_speaker(room).map(str::to_owned);
        let members = self.rooms.get(room).cloned().unwrap_or_default();
        for member in members {
            if let Some(s) = self.session(member) {
                self.outputs.push_back(Output::Signal {
                    participant: s.participant.to_string(),
                    message: ServerMessage::DominantSpeaker {
                        participant: dominant.clone(),
                    },
                });
            }
        }
    }

    /// Applies last-N to every member of `room` after the speaker order changed. Members
    /// without a limit are skipped: nothing of theirs is paused (a limit that was lifted
    /// resumed everything at once, in `set_last_n`), and in a room where nobody has one
    /// this pass was O(n² log n) per leave.
    pub(super) fn apply_last_n_room(&mut self, room: &Arc<str>) {
        let members = self.rooms.get(room).cloned().unwrap_or_default();
        let mut order = None;
        for member in members {
            if self.last_n_of(member).is_none() {
                continue;
            }
            let order = order.get_or_insert_with(|| self.speaker_order(room));
            self.apply_last_n_in(member, order);
        }
    }

    /// How many cameras session `key` may receive; `None` is no limit.
    fn last_n_of(&self, key: SessionKey) -> Option<usize> {
        let server = self.config.last_n;
        let client = self.floor.requested.get(&key).copied().unwrap_or(0);
        match (server, client) {
            (0, 0) => None,
            (0, n) | (n, 0) => Some(n as usize),
            (a, b) => Some(a.min(b) as usize),
        }
    }

    /// Pauses and resumes the camera subscriptions of session `key` to match its last-N, and
    /// tells the client when its list of paused mids changed.
    pub(super) fn apply_last_n(&mut self, key: SessionKey) {
        let Some(session) = self.session(key) else {
            return;
        };
        let order = self.speaker_order(&session.room);
        self.apply_last_n_in(key, &order);
    }

    /// The room's participants, most recent speaker first.
    fn speaker_order(&self, room: &Arc<str>) -> Vec<Arc<str>> {
        self.floor
            .rooms
            .get(room)
            .map(Speakers::order)
            .unwrap_or_default()
    }

    /// [`Sfu::apply_last_n`] with the room's speaker order at hand.
    fn apply_last_n_in(&mut self, key: SessionKey, order: &[Arc<str>]) {
        let limit = self.last_n_of(key);
        let Some(session) = self.session(key) else {
            return;
        };
        // Cameras this session receives or is about to, by publisher.
        let cameras: Vec<(TrackId, Arc<str>, Option<String>)> = session
            .tracks_out
            .iter()
            .filter(|t| !t.removed && t.kind == MediaKind::Video && t.source == MediaSource::Camera)
            .map(|t| {
                let mid = match t.state {
                    OutState::Open(m) => Some(m.to_string()),
                    _ => None,
                };
                (t.track, t.participant.clone(), mid)
            })
            .collect();
        let allowed: Vec<&Arc<str>> = match limit {
            None => cameras.iter().map(|(_, p, _)| p).collect(),
            Some(n) => order
                .iter()
                .filter(|p| cameras.iter().any(|(_, c, _)| c == *p))
                .take(n)
                .collect(),
        };
        let mut paused_mids = Vec::new();
        let mut resumed = Vec::new();
        let mut flipped = false;
        for (track, publisher, mid) in &cameras {
            let pause = !allowed.contains(&publisher);
            if pause && let Some(mid) = mid {
                paused_mids.push(mid.clone());
            }
            let Some(t) = self.tracks.get_mut(track) else {
                continue;
            };
            for sub in t.subscribers.iter_mut().filter(|s| s.session == key) {
                if sub.paused && !pause {
                    // A decoder that missed frames can only start again at a keyframe.
                    sub.awaiting_keyframe = true;
                    resumed.push(*track);
                }
                flipped |= sub.paused != pause;
                sub.paused = pause;
            }
        }
        paused_mids.sort();
        // Nothing is sent until something is paused: "no mid paused" is what a client assumes.
        let previous = self.floor.sent_paused.get(&key);
        let changed = match previous {
            None => !paused_mids.is_empty(),
            Some(p) => *p != paused_mids,
        };
        if changed {
            if let Some(s) = self.session(key) {
                self.outputs.push_back(Output::Signal {
                    participant: s.participant.to_string(),
                    message: ServerMessage::PausedTracks {
                        mids: paused_mids.clone(),
                    },
                });
            }
            self.floor.sent_paused.insert(key, paused_mids);
        }
        if flipped {
            // The downlink budget goes to the cameras that flow; a resumed one gets its layer.
            self.reallocate(key);
        }
        for track in resumed {
            self.request_keyframe_for(track, key, KeyframeRequestKind::Pli);
        }
    }
}
