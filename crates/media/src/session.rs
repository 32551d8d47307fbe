//! One participant's WebRTC session: its `Rtc`, its negotiation state, what it publishes and
//! what it receives.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use convene_proto::{MediaSource, TrackInfo, TrackKind};
use str0m::change::SdpPendingOffer;
use str0m::media::{MediaKind, Mid, Rid};
use str0m::{Event, Rtc};

use crate::sfu::{Downlink, Output, TrackId};
use crate::stats::Counters;

/// Stable handle of a session: slot index plus generation, so a stale handle never reaches a
/// session that later reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    pub index: u32,
    pub generation: u32,
}

/// Negotiation state of one outgoing (server to client) m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Not yet in any offer.
    ToOpen,
    /// In the outstanding server offer.
    Negotiating(Mid),
    /// Answered; media flows.
    Open(Mid),
    /// Its stop is in the outstanding server offer.
    Stopping(Mid),
}

/// Another participant's track as this session receives it.
#[derive(Debug)]
pub(crate) struct TrackOut {
    pub track: TrackId,
    pub participant: Arc<str>,
    pub kind: MediaKind,
    pub source: MediaSource,
    pub state: OutState,
    /// The publisher removed it; stop the m-line at the next negotiation.
    pub removed: bool,
}

impl TrackOut {
    /// The entry of the `tracks` message, if the client has (or is about to have) this mid.
    fn info(&self) -> Option<TrackInfo> {
        let mid = match self.state {
            OutState::Negotiating(m) | OutState::Open(m) if !self.removed => m,
            _ => return None,
        };
        Some(TrackInfo {
            mid: mid.to_string(),
            participant_id: self.participant.to_string(),
            kind: match self.kind {
                MediaKind::Audio => TrackKind::Audio,
                MediaKind::Video => TrackKind::Video,
            },
            source: self.source,
        })
    }
}

/// Cumulative str0m statistics last seen per (mid, rid, ingress?), to turn them into deltas.
type StatsKey = (Mid, Option<Rid>, bool);

pub(crate) struct Session {
    pub participant: Arc<str>,
    pub room: Arc<str>,
    /// Created from the client's first offer (its extension ids shape the session).
    pub rtc: Option<Rtc>,
    /// The server's outstanding offer.
    pub pending: Option<SdpPendingOffer>,
    /// What each of the client's sending mids carries, from its latest offer.
    pub sources: BTreeMap<String, MediaSource>,
    /// Tracks this participant publishes, by its mid.
    pub tracks_in: Vec<(Mid, TrackId)>,
    /// Other participants' tracks this participant receives.
    pub tracks_out: Vec<TrackOut>,
    /// The last `tracks` message sent, to send only changes.
    pub sent_tracks: Vec<TrackInfo>,
    /// When the `Rtc` wants its next timeout.
    pub timeout: Option<Instant>,
    /// Remove the session if ICE and DTLS are not up by then.
    pub connect_deadline: Option<Instant>,
    /// ICE and DTLS are up: media can be written.
    pub connected: bool,
    pub stats_seen: HashMap<StatsKey, [u64; 3]>,
    /// Tile sizes and bandwidth estimate, for simulcast layer choice.
    pub downlink: Downlink,
    /// One of the client's offers sent simulcast.
    pub sends_simulcast: bool,
}

impl Session {
    pub fn new(participant: Arc<str>, room: Arc<str>) -> Self {
        Self {
            participant,
            room,
            rtc: None,
            pending: None,
            sources: BTreeMap::new(),
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            sent_tracks: Vec::new(),
            timeout: None,
            connect_deadline: None,
            connected: false,
            stats_seen: HashMap::new(),
            downlink: Downlink::default(),
            sends_simulcast: false,
        }
    }

    /// The source a client mid carries: from the offer's `sources`, else by kind.
    pub fn source_of(&self, mid: Mid, kind: MediaKind) -> MediaSource {
        if let Some(s) = self.sources.get(&*mid) {
            return *s;
        }
        match kind {
            MediaKind::Audio => MediaSource::Microphone,
            MediaKind::Video => MediaSource::Camera,
        }
    }

    pub fn track_in(&self, mid: Mid) -> Option<TrackId> {
        self.tracks_in
            .iter()
            .find(|(m, _)| *m == mid)
            .map(|(_, t)| *t)
    }

    /// The track an outgoing mid carries, while it is open.
    pub fn track_out_by_mid(&self, mid: Mid) -> Option<TrackId> {
        self.tracks_out
            .iter()
            .find(|t| t.state == OutState::Open(mid))
            .map(|t| t.track)
    }

    /// Forgets the server's outstanding offer: its additions are offered again later, its stops
    /// are still to do. Used when a client offer wins over it (glare) or it failed.
    pub fn drop_pending_offer(&mut self) {
        self.pending = None;
        for t in &mut self.tracks_out {
            t.state = match t.state {
                OutState::Negotiating(_) => OutState::ToOpen,
                OutState::Stopping(m) => OutState::Open(m),
                s => s,
            };
        }
    }

    /// The current `tracks` map, if it differs from the last one sent.
    pub fn tracks_message_if_changed(&mut self) -> Option<Vec<TrackInfo>> {
        let now: Vec<TrackInfo> = self.tracks_out.iter().filter_map(TrackOut::info).collect();
        if now == self.sent_tracks {
            return None;
        }
        self.sent_tracks = now.clone();
        Some(now)
    }

    /// Turns a cumulative counter triple into the increase since the last report.
    pub fn stats_delta(&mut self, key: StatsKey, now: [u64; 3]) -> [u64; 3] {
        let prev = self.stats_seen.insert(key, now).unwrap_or([0; 3]);
        [
            now[0].saturating_sub(prev[0]),
            now[1].saturating_sub(prev[1]),
            now[2].saturating_sub(prev[2]),
        ]
    }
}

/// Why a drain ended the session.
pub(crate) struct Dead(pub String);

/// Polls the session's `Rtc` until it returns its next timeout: datagrams go to `outputs`,
/// events to `events` (handled after the drain, so no other mutation interleaves with it).
pub(crate) fn drain(
    key: SessionKey,
    session: &mut Session,
    outputs: &mut VecDeque<Output>,
    events: &mut VecDeque<(SessionKey, Event)>,
    counters: &mut Counters,
) -> Result<(), Dead> {
    let Some(rtc) = session.rtc.as_mut() else {
        return Ok(());
    };
    loop {
        if !rtc.is_alive() {
            session.timeout = None;
            return Err(Dead("media connection closed".into()));
        }
        match rtc.poll_output() {
            Ok(str0m::Output::Timeout(t)) => {
                session.timeout = Some(t);
                return Ok(());
            }
            Ok(str0m::Output::Transmit(t)) => {
                counters.packets_out += 1;
                counters.bytes_out += t.contents.len() as u64;
                outputs.push_back(Output::Transmit(t));
            }
            Ok(str0m::Output::Event(e)) => events.push_back((key, e)),
            Err(e) => {
                session.timeout = None;
                return Err(Dead(format!("media error: {e}")));
            }
        }
    }
}
