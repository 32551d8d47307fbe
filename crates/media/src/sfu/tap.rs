//! Room taps: subscribers that take a room's published tracks as depacketized frames instead of
//! RTP (the recorder is one).
//!
//! A tap is a subscriber kind, not a branch in forwarding: every frame the core accepts from a
//! publisher (after late-frame dropping) of the track's best simulcast layer is offered to the
//! taps of its room as [`Output::Frame`]. The taps of a track follow its best layer like a
//! subscription follows its chosen one: a switch waits for a keyframe of the new layer, and RTP
//! time stays continuous across it. The frame data is shared by reference count with the forwarded
//! copies. Keyframe gating is the tap owner's business: it sees `keyframe` and `contiguous` and
//! asks for keyframes with [`Sfu::request_keyframe_of`], which goes through the same per-track
//! throttle as subscribers' requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use convene_proto::MediaSource;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};

use super::simulcast::{Follow, Step};
use super::{Output, Sfu, TrackId};

/// Handle of a room tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapId(pub u64);

/// One frame of a published track, for a tap.
#[derive(Debug, Clone)]
pub struct TapFrame {
    pub tap: TapId,
    /// Identifies the published track; stable while it is published (see [`Sfu::request_keyframe_of`]).
    pub track: u64,
    pub participant: Arc<str>,
    /// The track's mid in the publisher's session.
    pub mid: Mid,
    pub source: MediaSource,
    pub kind: MediaKind,
    pub codec: Codec,
    /// RTP time of the frame (extended to 64 bits by str0m) and its clock rate.
    pub rtp_time: u64,
    pub clock_rate: u32,
    /// When the frame's first packet arrived.
    pub network_time: Instant,
    pub keyframe: bool,
    /// False when packets were lost before this frame.
    pub contiguous: bool,
    pub data: Arc<[u8]>,
}

/// The taps of every room.
#[derive(Debug, Default)]
pub(crate) struct Taps {
    next: u64,
    /// Room name → its taps. Kept by name, not by membership: a tapped room without participants
    /// keeps its taps, so people who join later are recorded too.
    by_room: HashMap<Arc<str>, Vec<TapId>>,
}

impl Taps {
    fn of(&self, room: &str) -> &[TapId] {
        self.by_room.get(room).map_or(&[], Vec::as_slice)
    }
}

impl Sfu {
    /// Starts a tap of `room`: from now on every frame published in it comes out as
    /// [`Output::Frame`], and [`Output::TrackEnded`] when a track goes away. Keyframes of the
    /// room's video tracks are requested so the tap can start soon.
    pub fn tap_room(&mut self, now: Instant, room: &str) -> TapId {
        self.now = now;
        let id = TapId(self.taps.next);
        self.taps.next += 1;
        let key: Arc<str> = self
            .rooms
            .get_key_value(room)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(room));
        self.taps.by_room.entry(key).or_default().push(id);
        let tracks: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| &*t.room == room)
            .map(|(id, _)| *id)
            .collect();
        for track in tracks {
            // Taps of this room start afresh: at a keyframe of the best layer.
            let rid = self.tracks.get_mut(&track).and_then(|t| {
                t.tap = Follow {
                    target: t.layers.best(),
                    ..Follow::default()
                };
                t.tap.target
            });
            self.request_keyframe(track, rid.flatten(), KeyframeRequestKind::Pli);
        }
        self.settle();
        id
    }

    /// Ends a tap. Unknown ids are ignored.
    pub fn untap(&mut self, tap: TapId) {
        self.taps.by_room.retain(|_, taps| {
            taps.retain(|t| *t != tap);
            !taps.is_empty()
        });
    }

    /// Number of taps, for metrics.
    pub fn tap_count(&self) -> usize {
        self.taps.by_room.values().map(Vec::len).sum()
    }

    /// A tap wants a keyframe of `track` (it started, or it lost frames). Throttled per track like
    /// subscribers' requests; unknown tracks and audio are ignored.
    pub fn request_keyframe_of(&mut self, now: Instant, track: u64) {
        self.now = now;
        let rid = self
            .tracks
            .get(&TrackId(track))
            .and_then(|t| t.tap.keyframe_layer().or_else(|| t.layers.best()));
        self.request_keyframe(TrackId(track), rid.flatten(), KeyframeRequestKind::Pli);
        self.settle();
    }

    /// Offers an accepted frame of `track_id` to the taps of its room.
    pub(super) fn tap_frame(&mut self, track_id: TrackId, data: &MediaData) {
        let now = self.now;
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let taps = self.taps.of(&track.room);
        if taps.is_empty() {
            return;
        }
        let video = track.kind.is_video();
        let rid = data.rid;
        let switched_from = match track.tap.step(rid, data.is_keyframe() || !video) {
            Step::Skip => {
                if track.tap.switching() && track.tap.target == Some(rid) {
                    self.request_keyframe(track_id, rid, KeyframeRequestKind::Pli);
                }
                return;
            }
            Step::Switch => track.tap.current.replace(rid).map(|p| {
                track
                    .layers
                    .get(p)
                    .and_then(|l| l.newest)
                    .unwrap_or(data.time)
            }),
            Step::Follow => None,
        };
        let time = track.tap.retime.map(now, data.time, switched_from);
        let Some(track) = self.tracks.get(&track_id) else {
            return;
        };
        let taps = self.taps.of(&track.room);
        let Some(owner) = self.session(track.owner) else {
            return;
        };
        let spec = data.params.spec();
        let frame = TapFrame {
            tap: TapId(0),
            track: track_id.0,
            participant: owner.participant.clone(),
            mid: track.mid,
            source: owner.source_of(track.mid, track.kind),
            kind: track.kind,
            codec: spec.codec,
            rtp_time: time.numer(),
            clock_rate: time.frequency().get(),
            network_time: data.network_time,
            keyframe: data.is_keyframe(),
            contiguous: data.contiguous,
            data: data.data.clone(),
        };
        for tap in taps {
            self.outputs.push_back(Output::Frame(TapFrame {
                tap: *tap,
                ..frame.clone()
            }));
        }
    }

    /// `track_id` of `room` was removed: its taps close its file.
    pub(super) fn tap_track_ended(&mut self, room: &str, track_id: TrackId) {
        for tap in self.taps.of(room) {
            self.outputs.push_back(Output::TrackEnded {
                tap: *tap,
                track: track_id.0,
            });
        }
    }
}
