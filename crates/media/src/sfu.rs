//! The forwarding core: sessions, rooms, tracks, and the event loop that ties their `Rtc`s
//! together.
//!
//! Invariant: every mutation of a session's `Rtc` (input, write, keyframe request, SDP change)
//! is followed at once by a drain of that `Rtc` to its next timeout. Events found while
//! draining are queued and handled afterwards, so one session's drain never interleaves with a
//! mutation of another.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_proto::{MediaSource, ServerMessage};
use str0m::bwe::BweKind;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::media::{Direction, KeyframeRequestKind};
use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Rtc, RtcError};

use crate::demux::{Demux, Route};
use crate::error::MediaError;
use crate::session::{Dead, OutState, Session, SessionKey, TrackOut, drain};
use crate::stats::Counters;

mod downlink;
mod floor;
mod forwarding;
mod simulcast;
mod tap;
mod tcp;
pub(crate) use forwarding::TrackId;
use forwarding::{Subscription, Track};
pub(crate) use simulcast::Downlink;
pub use tap::{TapFrame, TapId};

/// Largest SDP accepted from a client. Chromium's offers with a dozen m-lines stay far below.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Most entries in an offer's `sources` map, and the longest mid in it.
const MAX_SOURCES: usize = 64;
const MAX_MID_LEN: usize = 16;
/// Most timeouts fed to one session in one [`Sfu::handle_timeout`]: each packetizes one queued
/// frame per media, so this bounds the work for a leg with a long queue.
const MAX_TIMEOUT_ROUNDS: usize = 32;

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
            .flat_map(|s| [s.timeout, s.connect_deadline])
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

    /// A client's `sdp_offer`.
    pub fn client_offer(
        &mut self,
        now: Instant,
        participant: &str,
        sdp: &str,
        sources: BTreeMap<String, MediaSource>,
    ) -> Result<(), MediaError> {
        self.now = now;
        let result = self.accept_client_offer(participant, sdp, sources);
        if result.is_err() {
            self.counters.client_errors += 1;
        }
        self.settle();
        result
    }

    /// A client's `sdp_answer` to a server offer.
    pub fn client_answer(
        &mut self,
        now: Instant,
        participant: &str,
        sdp: &str,
    ) -> Result<(), MediaError> {
        self.now = now;
        let result = self.accept_client_answer(participant, sdp);
        if result.is_err() {
            self.counters.client_errors += 1;
        }
        self.settle();
        result
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
            // str0m packetizes one queued frame per media per timeout and then asks for
            // another timeout at once: repeat, so a leg sends everything written to it since
            // the last pass instead of one frame per pass of the loop (which let a backlog that
            // built up under load persist).
            for _ in 0..MAX_TIMEOUT_ROUNDS {
                let Some(session) = slot_mut(&mut self.slots, key) else {
                    break;
                };
                if session.timeout.is_none_or(|t| t > now) {
                    break;
                }
                if let Some(rtc) = session.rtc.as_mut()
                    && let Err(e) = rtc.handle_input(Input::Timeout(now))
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

    // ----- internals: negotiation -----

    fn accept_client_offer(
        &mut self,
        participant: &str,
        sdp: &str,
        sources: BTreeMap<String, MediaSource>,
    ) -> Result<(), MediaError> {
        let key = self.joined(participant)?;
        if sdp.len() > MAX_SDP_BYTES {
            return Err(MediaError::MalformedSdp("SDP too large".into()));
        }
        if sources.len() > MAX_SOURCES
            || sources
                .keys()
                .any(|m| m.is_empty() || m.len() > MAX_MID_LEN)
        {
            return Err(MediaError::InvalidSources(format!(
                "at most {MAX_SOURCES} entries with mids of 1 to {MAX_MID_LEN} characters"
            )));
        }
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| MediaError::MalformedSdp(e.to_string()))?;
        let first = self.session(key).is_some_and(|s| s.rtc.is_none());
        if crate::sdp_scan::has_simulcast(sdp)
            && let Some(s) = self.session_mut(key)
        {
            s.sends_simulcast = true;
        }
        if first {
            let estimate = self.config.bandwidth_estimation && self.layers_to_choose(key);
            let (rtc, ufrag) = self.new_rtc(sdp, estimate);
            self.demux.add_ufrag(&ufrag, key);
            if let Some(s) = self.session_mut(key) {
                s.rtc = Some(rtc);
            }
        }
        let connect_timeout = self.config.connect_timeout;
        let now = self.now;
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return Err(MediaError::NotJoined);
        };
        session.sources = sources;
        // Glare: the client's offer wins. What the dropped server offer carried is offered
        // again right after this answer.
        session.drop_pending_offer();
        let Some(rtc) = session.rtc.as_mut() else {
            return Err(MediaError::NotJoined);
        };
        match rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                if first {
                    session.connect_deadline = Some(now + connect_timeout);
                }
                tracing::debug!(participant = %session.participant, first, "client offer answered");
                let answer = answer.to_sdp_string();
                // A client-initiated ICE restart gives the session new local credentials; STUN
                // from the client's new address will name the new ufrag.
                if let Some(ufrag) = crate::sdp_scan::ice_ufrag(&answer) {
                    self.demux.add_ufrag(ufrag, key);
                }
                let rejected: Vec<String> = crate::sdp_scan::rejected(sdp, &answer)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                self.outputs.push_back(Output::Signal {
                    participant: participant.to_owned(),
                    message: ServerMessage::SdpAnswer { sdp: answer },
                });
                // The answer stands for the other m-lines; the client learns why these failed.
                for mid in rejected {
                    self.counters.client_errors += 1;
                    let e = MediaError::NoUsableCodec(mid);
                    self.outputs.push_back(Output::Signal {
                        participant: participant.to_owned(),
                        message: ServerMessage::MediaError {
                            code: e.code().into(),
                            message: e.to_string(),
                        },
                    });
                }
                self.drain(key);
                self.to_negotiate.push(key);
                Ok(())
            }
            Err(e) => {
                let dead = !rtc.is_alive();
                if first {
                    // Nothing was established: start over with the next offer.
                    session.rtc = None;
                    self.demux.remove(key);
                } else if dead {
                    self.to_close
                        .push((key, format!("offer broke the session: {e}")));
                } else {
                    self.to_negotiate.push(key);
                }
                Err(MediaError::SdpRejected(e.to_string()))
            }
        }
    }

    fn accept_client_answer(&mut self, participant: &str, sdp: &str) -> Result<(), MediaError> {
        let key = self.joined(participant)?;
        if sdp.len() > MAX_SDP_BYTES {
            return Err(MediaError::MalformedSdp("SDP too large".into()));
        }
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| MediaError::MalformedSdp(e.to_string()))?;
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return Err(MediaError::NotJoined);
        };
        let Some(pending) = session.pending.take() else {
            return Err(MediaError::UnexpectedAnswer);
        };
        let Some(rtc) = session.rtc.as_mut() else {
            return Err(MediaError::UnexpectedAnswer);
        };
        if let Err(e) = rtc.sdp_api().accept_answer(pending, answer) {
            let dead = !rtc.is_alive();
            session.drop_pending_offer();
            if dead {
                self.to_close
                    .push((key, format!("answer broke the session: {e}")));
            } else {
                self.to_negotiate.push(key);
            }
            return Err(match e {
                RtcError::ChangesOutOfOrder => MediaError::UnexpectedAnswer,
                e => MediaError::SdpRejected(e.to_string()),
            });
        }
        let connected = session.connected;
        tracing::debug!(participant = %session.participant, connected, "server offer answered");
        let mut opened = Vec::new();
        session.tracks_out.retain_mut(|t| match t.state {
            OutState::Negotiating(m) => {
                t.state = OutState::Open(m);
                opened.push((t.track, m));
                true
            }
            OutState::Stopping(_) => false,
            _ => true,
        });
        self.drain(key);
        for &(track, mid) in &opened {
            if let Some(t) = self.tracks.get_mut(&track) {
                t.subscribers.push(Subscription::new(key, mid));
            }
        }
        // The new subscriptions get their layers (and keyframe requests for them).
        self.reallocate(key);
        if connected {
            for (track, _) in opened {
                self.request_keyframe_for(track, key, KeyframeRequestKind::Pli);
            }
        }
        self.apply_last_n(key);
        self.to_negotiate.push(key);
        Ok(())
    }

    /// Whether the session `key` will have simulcast layers to choose from: someone in its room
    /// (itself included) offered simulcast (in a meeting of browsers, everyone). Only then is a downlink estimate worth its cost: str0m's estimator
    /// comes with a pacer that sends each packet on its own timer (no batching) and probes with
    /// padding, about a third more CPU per forwarded packet (BENCHMARKS.md). A receive-only
    /// session that joins before any simulcast publisher goes without one: its layers then
    /// follow its tile sizes only.
    fn layers_to_choose(&self, key: SessionKey) -> bool {
        let Some(room) = self.session(key).map(|s| s.room.clone()) else {
            return false;
        };
        self.rooms
            .get(&room)
            .into_iter()
            .flatten()
            .any(|&member| self.session(member).is_some_and(|s| s.sends_simulcast))
    }

    fn new_rtc(&self, first_offer: &str, estimate: bool) -> (Rtc, String) {
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut builder = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_extension_map(crate::extmap::from_offer(first_offer))
            .set_stats_interval(Some(self.config.stats_interval))
            // The downlink estimate picks simulcast layers (see `downlink`).
            .enable_bwe(estimate.then_some(downlink::INITIAL_ESTIMATE))
            // VP8 first: every browser encodes and decodes it, so publishers pick a codec all
            // subscribers can take. H.265 stays off: browsers decode it only with hardware.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .enable_av1(true);
        if let Some(cert) = &self.cert {
            builder = builder.set_dtls_cert(cert.clone());
        }
        let mut rtc = builder.build(self.now);
        for addr in &self.config.candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "unusable media candidate"),
            }
        }
        tcp::add_candidates(&mut rtc, &self.config.tcp_candidates);
        (rtc, ufrag)
    }

    /// Sends a server offer with what changed for this session, if anything did and no offer is
    /// outstanding. Also sends the `tracks` map (before the offer, so the client can name the
    /// tracks when they arrive).
    fn negotiate(&mut self, key: SessionKey) {
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return;
        };
        if session.pending.is_some() {
            return;
        }
        let Some(rtc) = session.rtc.as_mut() else {
            return;
        };
        session
            .tracks_out
            .retain(|t| !(t.removed && t.state == OutState::ToOpen));
        let mut api = rtc.sdp_api();
        for t in &mut session.tracks_out {
            match (t.state, t.removed) {
                (OutState::ToOpen, false) => {
                    let mid = api.add_media(
                        t.kind,
                        Direction::SendOnly,
                        Some(t.participant.to_string()),
                        Some(format!("t{}", t.track.0)),
                        None,
                    );
                    t.state = OutState::Negotiating(mid);
                }
                (OutState::Open(m), true) => {
                    api.stop_media(m);
                    t.state = OutState::Stopping(m);
                }
                _ => {}
            }
        }
        let offer = if api.has_changes() { api.apply() } else { None };
        let participant = session.participant.to_string();
        if let Some(tracks) = session.tracks_message_if_changed() {
            self.outputs.push_back(Output::Signal {
                participant: participant.clone(),
                message: ServerMessage::Tracks { tracks },
            });
        }
        if let Some((offer, pending)) = offer {
            session.pending = Some(pending);
            self.outputs.push_back(Output::Signal {
                participant,
                message: ServerMessage::SdpOffer {
                    sdp: offer.to_sdp_string(),
                },
            });
            self.drain(key);
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
