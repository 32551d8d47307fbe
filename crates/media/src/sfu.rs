//! The forwarding core: sessions, rooms, tracks, and the event loop that ties their `Rtc`s
//! together.
//!
//! Invariant: every mutation of a session's `Rtc` (input, write, keyframe request, SDP change)
//! is followed at once by a drain of that `Rtc` to its next timeout. Events found while
//! draining are queued and handled afterwards, so one session's drain never interleaves with a
//! mutation of another.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_proto::ServerMessage;
use str0m::bwe::BweKind;
use str0m::config::DtlsCert;
use str0m::media::KeyframeRequestKind;
use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Event, IceConnectionState, Input};

use crate::demux::{Demux, Route};
use crate::error::MediaError;
use crate::session::{Dead, OutState, Session, SessionKey, TrackOut, drain};
use crate::stats::Counters;

mod downlink;
mod floor;
mod forwarding;
mod negotiation;
mod simulcast;
mod tap;
mod tcp;
use forwarding::Track;
pub(crate) use forwarding::TrackId;
pub(crate) use simulcast::Downlink;
pub use tap::{TapFrame, TapId};

/// Longest mid a client may name in `sources` or `tile_sizes` (the server's mids are short numbers).
const MAX_MID_LEN: usize = 16;

/// Most timeouts fed to one session in one [`Sfu::handle_timeout`]: each packetizes one queued
/// frame per media, so this bounds the work for a leg with a long queue.
const MAX_TIMEOUT_ROUNDS: usize = 32;

/// Session timers due this soon run in the current [`Sfu::handle_timeout`], at their own time.
/// str0m's pacer (on where the downlink is estimated) releases one packet per timeout and asks
/// for the next one a microsecond later, so a leg's burst would otherwise take one pass of the
/// IO loop per packet, each a send call of its own; run together, the burst leaves as one GSO
/// send. An `Rtc` never lets its clock go back, so input that arrives afterwards stamped up to
/// this much earlier is simply taken at the `Rtc`'s time. Pacing is off by at most this much.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Settings of the core, resolved by the server (addresses are concrete here).
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Host candidates announced in every answer and offer (the shared UDP port).
    pub candidates: Vec<SocketAddr>,
    /// Passive TCP host candidates (ICE-TCP, for clients whose UDP is blocked); empty: none.
    pub tcp_candidates: Vec<SocketAddr>,
    pub connect_timeout: Duration,
    pub stats_interval: Duration,
    pub max_sessions: usize,
    /// Cameras each subscriber receives at most (last-N); 0 is no limit.
    pub last_n: u32,
    /// Downlink estimation (and with it str0m's pacing and probing) per session.
    pub bandwidth_estimation: bool,
}

impl SfuConfig {
    /// A config for one candidate address with the `[media]` defaults otherwise.
    pub fn with_candidates(candidates: Vec<SocketAddr>) -> Self {
        let d = crate::Config::default();
        Self {
            candidates,
            tcp_candidates: Vec::new(),
            connect_timeout: d.connect_timeout,
            stats_interval: d.stats_interval,
            max_sessions: d.max_sessions,
            last_n: d.last_n,
            bandwidth_estimation: d.bandwidth_estimation,
        }
    }
}

/// Work for the IO loop.
#[derive(Debug)]
pub enum Output {
    /// Send `contents` from `source` (one of the candidates) to `destination`.
    Transmit(Transmit),
    /// Deliver a signaling message to a participant.
    Signal {
        participant: String,
        message: ServerMessage,
    },
    /// A participant's media session failed (ICE consent, DTLS, never connected) and is gone.
    Closed { participant: String, reason: String },
    /// A frame for a room tap (see [`Sfu::tap_room`]).
    Frame(TapFrame),
    /// A tapped room's track was unpublished.
    TrackEnded { tap: TapId, track: u64 },
}

struct Slot {
    generation: u32,
    session: Option<Session>,
}

/// The sans-IO selective forwarding unit.
pub struct Sfu {
    config: SfuConfig,
    cert: Option<DtlsCert>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_participant: HashMap<String, SessionKey>,
    rooms: HashMap<Arc<str>, Vec<SessionKey>>,
    tracks: HashMap<TrackId, Track>,
    next_track: u64,
    demux: Demux<SessionKey>,
    events: VecDeque<(SessionKey, Event)>,
    outputs: VecDeque<Output>,
    to_negotiate: Vec<SessionKey>,
    to_close: Vec<(SessionKey, String)>,
    counters: Counters,
    now: Instant,
    taps: tap::Taps,
    floor: floor::Floor,
}

impl Sfu {
    pub fn new(config: SfuConfig, now: Instant) -> Self {
        // One DTLS certificate for all sessions: generating a key pair per join would be the
        // most expensive step of a join, and the fingerprint is per session in SDP anyway.
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate();
        Self {
            config,
            cert,
            slots: Vec::new(),
            free: Vec::new(),
            by_participant: HashMap::new(),
            rooms: HashMap::new(),
            tracks: HashMap::new(),
            next_track: 0,
            demux: Demux::default(),
            events: VecDeque::new(),
            outputs: VecDeque::new(),
            to_negotiate: Vec::new(),
            to_close: Vec::new(),
            counters: Counters::default(),
            now,
            taps: tap::Taps::default(),
            floor: floor::Floor::default(),
        }
    }

    /// Statistics for metrics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Loss fractions and round-trip times gathered since the last call.
    pub fn take_samples(&mut self) -> (Vec<f32>, Vec<Duration>) {
        self.counters.take_samples()
    }

    /// Every session's latest downlink estimate (bits per second), for metrics: whether
    /// subscribers' links carry what is forwarded to them.
    pub fn downlink_estimates(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.session.as_ref())
            .filter_map(|s| s.downlink.estimate)
    }

    /// Participants with a media session.
    pub fn session_count(&self) -> usize {
        self.by_participant.len()
    }

    /// Published tracks.
    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    /// The candidate a datagram that arrived at local address `dst` was sent to: the candidate
    /// with that IP, else (behind NAT, where the public address is announced) the first one.
    pub fn candidate_for(&self, dst: Option<IpAddr>) -> Option<SocketAddr> {
        let c = &self.config.candidates;
        dst.and_then(|ip| c.iter().find(|a| a.ip() == ip).copied())
            .or_else(|| c.first().copied())
    }

    /// Next output, if any. Drain until `None` after every call that takes `now`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Sfu::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.session.as_ref())
            .flat_map(|s| [s.timeout, s.connect_deadline, s.downlink.recheck])
            .flatten()
            .min()
    }

    // ----- commands from signaling -----

    /// Registers a participant of `room`. A second join of the same participant replaces its
    /// previous session (a reconnect).
    pub fn join(&mut self, now: Instant, room: &str, participant: &str) -> Result<(), MediaError> {
        self.now = now;
        if let Some(old) = self.by_participant.get(participant).copied() {
            self.remove_session(old);
        }
        if self.by_participant.len() >= self.config.max_sessions {
            return Err(MediaError::Full);
        }
        let room: Arc<str> = self
            .rooms
            .get_key_value(room)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(room));
        let mut session = Session::new(Arc::from(participant), room.clone());
        // Everything already published in the room is offered once the client's first offer
        // is answered.
        for (id, t) in &self.tracks {
            if t.room == room
                && let Some(owner) = self.session(t.owner)
            {
                session.tracks_out.push(TrackOut {
                    track: *id,
                    participant: owner.participant.clone(),
                    kind: t.kind,
                    source: owner.source_of(t.mid, t.kind),
                    state: OutState::ToOpen,
                    removed: false,
                });
            }
        }
        // Offer order follows publication order, which keeps ids stable between runs.
        session.tracks_out.sort_by_key(|t| t.track.0);
        let key = self.insert(session);
        self.rooms.entry(room).or_default().push(key);
        self.by_participant.insert(participant.to_owned(), key);
        self.floor_join(key);
        self.settle();
        Ok(())
    }

    /// The participant left or was removed: its session and tracks go away for everyone.
    pub fn leave(&mut self, now: Instant, participant: &str) {
        self.now = now;
        if let Some(key) = self.by_participant.get(participant).copied() {
            self.remove_session(key);
        }
        self.settle();
    }

    // ----- network and time -----

    /// One datagram that arrived on the media port. `destination` is the candidate it was sent
    /// to (see [`Sfu::candidate_for`]).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) {
        self.handle_receive(now, Protocol::Udp, source, destination, datagram);
    }

    /// One datagram that arrived over `proto`: a UDP datagram, or one RFC 4571 frame of an
    /// ICE-TCP connection (then `source` is the connection's peer and `destination` the TCP
    /// candidate it reached, see [`Sfu::tcp_candidate_for`]).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) {
        self.now = now;
        self.counters.packets_in += 1;
        self.counters.bytes_in += datagram.len() as u64;
        let (key, is_stun) = match self.demux.route(proto, source, datagram) {
            Route::Stun(k) => (k, true),
            Route::Known(k) => (k, false),
            Route::Unknown => {
                self.counters.packets_dropped += 1;
                return;
            }
        };
        let Ok(contents) = DatagramRecv::try_from(datagram) else {
            self.counters.packets_dropped += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let Some(session) = slot_mut(&mut self.slots, key) else {
            self.counters.packets_dropped += 1;
            return;
        };
        let Some(rtc) = session.rtc.as_mut() else {
            self.counters.packets_dropped += 1;
            return;
        };
        if is_stun {
            if !rtc.accepts(&input) {
                self.counters.packets_dropped += 1;
                return;
            }
            self.demux.learn_addr(proto, source, key);
        }
        if let Err(e) = rtc.handle_input(input) {
            // Bad input from one client is that client's problem; only a dead Rtc ends it.
            tracing::debug!(participant = %session.participant, error = %e, "media input rejected");
        }
        self.drain(key);
        self.settle();
    }

    /// Advances time: str0m timers, connect deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let key = SessionKey {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(session) = slot.session.as_mut() else {
                continue;
            };
            if let Some(deadline) = session.connect_deadline
                && now >= deadline
                && !session.connected
            {
                session.connect_deadline = None;
                self.to_close
                    .push((key, "ICE/DTLS did not complete in time".into()));
                continue;
            }
            if session.downlink.recheck.is_some_and(|t| now >= t) {
                session.downlink.recheck = None;
                self.reallocate(key);
            }
            // str0m packetizes one queued frame per media per timeout and then asks for
            // another timeout at once: repeat, so a leg sends everything written to it since
            // the last pass instead of one frame per pass of the loop (which let a backlog that
            // built up under load persist). Timers up to `TIMER_SLACK` ahead run now, at their
            // own time (see there).
            for _ in 0..MAX_TIMEOUT_ROUNDS {
                let Some(session) = slot_mut(&mut self.slots, key) else {
                    break;
                };
                let Some(due) = session.timeout.filter(|t| *t <= now + TIMER_SLACK) else {
                    break;
                };
                if let Some(rtc) = session.rtc.as_mut()
                    && let Err(e) = rtc.handle_input(Input::Timeout(due.max(now)))
                {
                    tracing::debug!(participant = %session.participant, error = %e, "media timeout error");
                }
                self.drain(key);
            }
        }
        self.settle();
    }

    // ----- internals: sessions -----

    fn insert(&mut self, session: Session) -> SessionKey {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.session = Some(session);
            SessionKey {
                index,
                generation: slot.generation,
            }
        } else {
            self.slots.push(Slot {
                generation: 0,
                session: Some(session),
            });
            SessionKey {
                index: (self.slots.len() - 1) as u32,
                generation: 0,
            }
        }
    }

    /// The session of a participant that joined, else the client's `not_joined` error.
    pub(super) fn joined(&self, participant: &str) -> Result<SessionKey, MediaError> {
        self.by_participant
            .get(participant)
            .copied()
            .ok_or(MediaError::NotJoined)
    }

    fn session(&self, key: SessionKey) -> Option<&Session> {
        self.slots
            .get(key.index as usize)
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.session.as_ref())
    }

    fn session_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        slot_mut(&mut self.slots, key)
    }

    fn drain(&mut self, key: SessionKey) {
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return;
        };
        if let Err(Dead(reason)) = drain(
            key,
            session,
            &mut self.outputs,
            &mut self.events,
            &mut self.counters,
        ) {
            self.to_close.push((key, reason));
        }
    }

    /// Handles queued events, negotiations and closures until nothing is left.
    fn settle(&mut self) {
        loop {
            if let Some((key, event)) = self.events.pop_front() {
                self.on_event(key, event);
            } else if let Some(key) = self.to_negotiate.pop() {
                self.negotiate(key);
            } else if let Some((key, reason)) = self.to_close.pop() {
                if let Some(s) = self.session(key) {
                    let participant = s.participant.to_string();
                    tracing::info!(%participant, %reason, "media session failed");
                    self.counters.sessions_failed += 1;
                    self.remove_session(key);
                    self.outputs.push_back(Output::Closed {
                        participant,
                        reason,
                    });
                }
            } else {
                return;
            }
        }
    }

    fn remove_session(&mut self, key: SessionKey) {
        let Some(slot) = self.slots.get_mut(key.index as usize) else {
            return;
        };
        if slot.generation != key.generation {
            return;
        }
        let Some(mut session) = slot.session.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.demux.remove(key);
        self.by_participant.remove(&*session.participant);
        if let Some(members) = self.rooms.get_mut(&session.room) {
            members.retain(|k| *k != key);
            if members.is_empty() {
                self.rooms.remove(&session.room);
            }
        }
        for (_, track) in std::mem::take(&mut session.tracks_in) {
            self.remove_track(track);
        }
        for out in &session.tracks_out {
            if let Some(t) = self.tracks.get_mut(&out.track) {
                t.subscribers.retain(|s| s.session != key);
            }
        }
        self.floor_leave(key, &session.room, &session.participant);
        // Tell the browser (DTLS close_notify, RTCP BYE) rather than let it time out.
        if let Some(rtc) = session.rtc.as_mut()
            && rtc.close().is_ok()
        {
            let mut ignored = VecDeque::new();
            let _ = drain(
                key,
                &mut session,
                &mut self.outputs,
                &mut ignored,
                &mut self.counters,
            );
        }
    }

    // ----- internals: events -----

    fn on_event(&mut self, key: SessionKey, event: Event) {
        match event {
            Event::Connected => {
                let Some(session) = self.session_mut(key) else {
                    return;
                };
                session.connected = true;
                session.connect_deadline = None;
                tracing::debug!(participant = %session.participant, "media connected");
                let receiving: Vec<TrackId> = session
                    .tracks_out
                    .iter()
                    .filter(|t| matches!(t.state, OutState::Open(_)))
                    .map(|t| t.track)
                    .collect();
                for track in receiving {
                    self.request_keyframe_for(track, key, KeyframeRequestKind::Pli);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.to_close.push((key, "ICE consent lost".into()));
            }
            Event::Closed => self
                .to_close
                .push((key, "peer closed the connection".into())),
            Event::MediaAdded(m) if m.direction.is_receiving() => {
                self.add_track(key, m.mid, m.kind);
            }
            Event::MediaChanged(m) => {
                let existing = self.session(key).and_then(|s| s.track_in(m.mid));
                match (existing, m.direction.is_receiving()) {
                    (None, true) => {
                        let kind = self
                            .session(key)
                            .and_then(|s| s.rtc.as_ref())
                            .and_then(|r| r.media(m.mid))
                            .map(|media| media.kind());
                        if let Some(kind) = kind {
                            self.add_track(key, m.mid, kind);
                        }
                    }
                    (Some(track), false) => self.remove_track(track),
                    _ => {}
                }
            }
            Event::MediaData(data) => self.forward(key, data),
            Event::KeyframeRequest(req) => {
                self.counters.keyframe_requests_received += 1;
                if let Some(track) = self.session(key).and_then(|s| s.track_out_by_mid(req.mid)) {
                    self.request_keyframe_for(track, key, req.kind);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.on_estimate(key, estimate.as_u64());
            }
            Event::PeerStats(s) => {
                if let Some(rtt) = s.rtt {
                    self.counters.sample_rtt(rtt);
                }
            }
            Event::MediaIngressStats(s) => {
                if let Some(loss) = s.loss {
                    self.counters.sample_loss(loss);
                }
                if let Some(session) = self.session_mut(key) {
                    let [nacks, _, _] =
                        session.stats_delta((s.mid, s.rid, true), [s.nacks, s.plis, s.firs]);
                    self.counters.nacks_sent += nacks;
                }
            }
            Event::MediaEgressStats(s) => {
                if let Some(rtt) = s.rtt {
                    self.counters.sample_rtt(rtt);
                }
                if let Some(session) = self.session_mut(key) {
                    let [nacks, _, _] =
                        session.stats_delta((s.mid, s.rid, false), [s.nacks, s.plis, s.firs]);
                    self.counters.nacks_received += nacks;
                }
            }
            _ => {}
        }
    }
}

fn slot_mut(slots: &mut [Slot], key: SessionKey) -> Option<&mut Session> {
    slots
        .get_mut(key.index as usize)
        .filter(|s| s.generation == key.generation)
        .and_then(|s| s.session.as_mut())
}
