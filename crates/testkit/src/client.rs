//! A sans-IO WebRTC test client on str0m that behaves like the web client: it makes the first
//! offer, answers server offers, ignores a server offer that crosses its own (it is the
//! impolite side), publishes synthetic audio and video, answers keyframe requests with a
//! keyframe, and checks every frame and RTP header it receives.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use convene_media::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use convene_media::str0m::format::Codec;
use convene_media::str0m::media::{
    Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use convene_media::str0m::net::{Protocol, Receive, TcpType, Transmit};
use convene_media::str0m::rtp::RawPacket;
use convene_media::str0m::rtp::Ssrc;
use convene_media::str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use convene_proto::{ClientMessage, MediaSource, ServerMessage, TileSize, TrackInfo};

use crate::frames::{self, AUDIO_TICKS, VIDEO_TICKS};

/// What arrived on one receiving mid.
#[derive(Debug, Default, Clone)]
pub struct ReceivedMedia {
    pub kind: Option<MediaKind>,
    /// Frames that verified, and those that did not.
    pub frames: u64,
    pub damaged: u64,
    pub keyframes: u64,
    /// Whether the first video frame on this mid was a keyframe.
    pub first_was_keyframe: Option<bool>,
    pub first_frame_at: Option<Instant>,
    pub last_frame_at: Option<Instant>,
    /// The sender tag of the last frame, and its last counter.
    pub sender: Option<u32>,
    pub last_counter: Option<u32>,
    /// Frames whose counter went backwards (misordered output).
    pub reordered: u64,
    /// The same frame twice in a row.
    pub duplicates: u64,
    /// Frames str0m flagged as not following the previous one (loss it could not repair),
    /// and damaged frames among those.
    pub gaps: u64,
    pub damaged_after_gap: u64,
    /// Every verified frame in arrival order (tests run for seconds, not hours).
    pub history: Vec<Seen>,
    /// Whether the first frame after each pause of more than 300 ms was a keyframe.
    pub restarts: Vec<bool>,
}

/// One verified frame as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub sender: u32,
    pub counter: u32,
    pub keyframe: bool,
    /// From the keyframe header.
    pub size: Option<(u16, u16)>,
    /// RTP time as str0m delivered it.
    pub time: u64,
    /// When it arrived.
    pub at: Instant,
    /// False when packets before it were lost for good.
    pub contiguous: bool,
}

/// The simulcast layers a client publishes with [`TestClient::simulcast`]: rid, keyframe size,
/// frame length factor (so the layers' bitrates differ like a browser's).
pub const LAYERS: [(&str, (u16, u16), usize); 3] = [
    ("q", (320, 180), 1),
    ("h", (640, 360), 2),
    ("f", (1280, 720), 4),
];

/// RTP header checks per incoming SSRC.
#[derive(Debug, Default, Clone)]
pub struct RtpCheck {
    pub packets: u64,
    pub last_seq: Option<u16>,
    pub last_ts: Option<u32>,
    /// Sequence numbers that jumped by more than one (loss on the way, or a bad rewrite).
    pub seq_jumps: u64,
    /// Packets whose timestamp went back while the sequence went forward.
    pub ts_backwards: u64,
    pub markers: u64,
    pub bad_version: u64,
    /// (previous, next, payload type) of each jump, for failure messages.
    pub jumps: Vec<(u16, u16, String)>,
}

pub struct TestClient {
    pub name: String,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    tag: u32,
    pending: Option<SdpPendingOffer>,
    /// Own sending mids, what they carry.
    sending: Vec<(Mid, MediaKind, MediaSource)>,
    signals: VecDeque<ClientMessage>,
    transmits: VecDeque<Transmit>,
    timeout: Instant,
    pub connected: bool,
    pub disconnected: bool,
    /// Latest `tracks` map from the server.
    pub tracks: Vec<TrackInfo>,
    pub media_errors: Vec<(String, String)>,
    pub received: HashMap<Mid, ReceivedMedia>,
    pub rtp: HashMap<Ssrc, RtpCheck>,
    pub keyframe_requests: u64,
    /// Server offers ignored because they crossed our own.
    pub ignored_offers: u64,
    pub offers_answered: u64,
    /// Whether to publish (false: a muted client sends nothing, no renegotiation).
    pub muted: bool,
    /// Stop answering STUN/DTLS (a client that vanished).
    pub silent: bool,
    /// How many of the next keyframe requests to ignore.
    pub ignore_keyframe_requests: u64,
    counter: u32,
    /// When each sending mid produces its next frame.
    next_frame: HashMap<Mid, Instant>,
    start: Instant,
    /// Sending video mids (and layers) that owe a keyframe (a keyframe request; one without
    /// rid is for every layer).
    want_keyframe: Vec<(Mid, Option<Rid>)>,
    /// Sending video mids (and layers) that produced their first (key)frame.
    started: Vec<(Mid, Option<Rid>)>,
    /// Real encoded frames to send instead of the synthetic ones (decodable media, for tests
    /// that check recorded files), with each sending mid's position in them.
    pub fixture: Option<std::sync::Arc<Fixture>>,
    fixture_at: HashMap<Mid, usize>,
    /// Frames sent per sending mid.
    pub sent: HashMap<Mid, u64>,
    /// Publish video as three simulcast layers ([`LAYERS`]); each layer's frames carry the
    /// sender tag plus the layer's index, and all layers of one frame the same counter.
    pub simulcast: bool,
    /// Without simulcast, each video frame is this many times the usual length (one of
    /// [`frames::SCALES`]; 8 makes 7,200 bytes, about a 1.5 Mbit/s camera's frame at 30 fps).
    pub video_scale: usize,
    /// Simulcast layers (rids) not sent now, as a browser pauses layers its uplink cannot
    /// carry; a resumed layer starts with a keyframe, as in browsers.
    pub paused_layers: Vec<&'static str>,
    /// RFC 6464 level (0 loudest, -127 silence) put on every audio packet; none: no extension.
    pub audio_level: Option<i8>,
    /// The latest `dominant_speaker` and `paused_tracks` from the server.
    pub dominant: Option<String>,
    pub paused: Vec<String>,
    /// When each synthetic frame was produced, by its counter: a receiver's `history` time minus
    /// this is the frame's end-to-end delay.
    pub produced: HashMap<u32, Instant>,
}

/// Encoded media a client sends in a loop: Opus packets of 20 ms, and VP8 frames with their
/// keyframe flags (a keyframe request skips ahead to the next keyframe).
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub audio: Vec<Vec<u8>>,
    pub video: Vec<(Vec<u8>, bool)>,
}

impl TestClient {
    pub fn new(name: &str, addr: SocketAddr, now: Instant) -> Self {
        let mut client = Self::without_candidates(name, addr, now);
        // Unwrap: the test addresses are loopback, which str0m accepts as host candidates.
        client
            .rtc
            .add_local_candidate(Candidate::host(addr, "udp").expect("valid candidate"));
        client
    }

    /// A client that offers no candidate yet: one that adds a TCP candidate once it knows
    /// where to connect ([`TestClient::add_tcp_candidate`]). `addr` is only a default
    /// destination for [`TestClient::handle_datagram`].
    pub fn without_candidates(name: &str, addr: SocketAddr, now: Instant) -> Self {
        let rtc = Rtc::builder().enable_raw_packets(true).build(now);
        Self {
            name: name.to_owned(),
            rtc,
            addr,
            tag: frames::tag(name),
            pending: None,
            sending: Vec::new(),
            signals: VecDeque::new(),
            transmits: VecDeque::new(),
            timeout: now,
            connected: false,
            disconnected: false,
            tracks: Vec::new(),
            media_errors: Vec::new(),
            received: HashMap::new(),
            rtp: HashMap::new(),
            keyframe_requests: 0,
            ignored_offers: 0,
            offers_answered: 0,
            muted: false,
            silent: false,
            ignore_keyframe_requests: 0,
            counter: 0,
            next_frame: HashMap::new(),
            start: now,
            want_keyframe: Vec::new(),
            started: Vec::new(),
            fixture: None,
            fixture_at: HashMap::new(),
            sent: HashMap::new(),
            simulcast: false,
            video_scale: 1,
            paused_layers: Vec::new(),
            audio_level: None,
            dominant: None,
            paused: Vec::new(),
            produced: HashMap::new(),
        }
    }

    /// The sender tag frames of this client carry.
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Makes an offer that adds sending tracks (the first offer, or a later one).
    pub fn offer(&mut self, now: Instant, tracks: &[(MediaKind, MediaSource)]) {
        let mut api = self.rtc.sdp_api();
        let mut added = Vec::new();
        for (kind, source) in tracks {
            let simulcast = (self.simulcast && *kind == MediaKind::Video).then(|| {
                let mut s = Simulcast::new();
                for (rid, _, _) in LAYERS {
                    s.add_send_layer(SimulcastLayer::new(rid));
                }
                s
            });
            let mid = api.add_media(
                *kind,
                Direction::SendOnly,
                Some(self.name.clone()),
                None,
                simulcast,
            );
            added.push((mid, *kind, *source));
        }
        if tracks.is_empty() && !api.has_changes() {
            // An offer needs an m-line; a client that publishes nothing offers to receive.
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let applied = api.apply();
        self.apply_offer(now, applied, added);
    }

    /// Makes an offer that stops one of our sending tracks.
    pub fn stop_track(&mut self, now: Instant, source: MediaSource) {
        let Some(mid) = self
            .sending
            .iter()
            .find(|(_, _, s)| *s == source)
            .map(|(m, _, _)| *m)
        else {
            return;
        };
        self.sending.retain(|(m, _, _)| *m != mid);
        let mut api = self.rtc.sdp_api();
        api.stop_media(mid);
        let applied = api.apply();
        self.apply_offer(now, applied, Vec::new());
    }

    fn apply_offer(
        &mut self,
        now: Instant,
        applied: Option<(SdpOffer, SdpPendingOffer)>,
        added: Vec<(Mid, MediaKind, MediaSource)>,
    ) {
        let Some((offer, pending)) = applied else {
            return;
        };
        self.pending = Some(pending);
        self.sending.extend(added);
        let sources: BTreeMap<String, MediaSource> = self
            .sending
            .iter()
            .map(|(m, _, s)| (m.to_string(), *s))
            .collect();
        self.signals.push_back(ClientMessage::SdpOffer {
            sdp: offer.to_sdp_string(),
            sources,
        });
        self.drain(now);
    }

    /// Moves to a new address (a network change) and restarts ICE with a new offer.
    pub fn move_to(&mut self, now: Instant, addr: SocketAddr) {
        self.addr = addr;
        // Unwrap: test addresses are loopback, which str0m accepts as host candidates.
        self.rtc
            .add_local_candidate(Candidate::host(addr, "udp").expect("valid candidate"));
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let applied = api.apply();
        self.apply_offer(now, applied, Vec::new());
    }

    /// Tells the server the size at which each received mid is shown (`tile_sizes`).
    pub fn send_tile_sizes(&mut self, tiles: &[(&str, u32, u32)]) {
        let tiles = tiles
            .iter()
            .map(|(mid, width, height)| {
                (
                    (*mid).to_owned(),
                    TileSize {
                        width: *width,
                        height: *height,
                    },
                )
            })
            .collect();
        self.signals.push_back(ClientMessage::TileSizes { tiles });
    }

    /// Adds an active TCP host candidate: `local` is the local address of a connection to one
    /// of the server's passive TCP candidates (ICE-TCP, RFC 6544).
    pub fn add_tcp_candidate(&mut self, now: Instant, local: SocketAddr) {
        let candidate = Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()
            // Unwrap: the test addresses are loopback, which str0m accepts as host candidates.
            .expect("valid candidate");
        self.rtc.add_local_candidate(candidate);
        self.drain(now);
    }

    /// Whether our own offer is still waiting for its answer.
    pub fn has_pending_offer(&self) -> bool {
        self.pending.is_some()
    }

    /// A message from the server.
    pub fn handle_signal(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::SdpAnswer { sdp } => {
                let Some(pending) = self.pending.take() else {
                    panic!("{}: answer without an offer", self.name);
                };
                let answer = SdpAnswer::from_sdp_string(&sdp).expect("server answer parses");
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .expect("server answer applies");
            }
            ServerMessage::SdpOffer { sdp } => {
                if self.pending.is_some() {
                    // Impolite side of perfect negotiation: our offer stands, the server
                    // re-offers after answering it.
                    self.ignored_offers += 1;
                    return;
                }
                let offer = SdpOffer::from_sdp_string(&sdp).expect("server offer parses");
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("server offer applies");
                self.offers_answered += 1;
                self.signals.push_back(ClientMessage::SdpAnswer {
                    sdp: answer.to_sdp_string(),
                });
            }
            ServerMessage::Tracks { tracks } => self.tracks = tracks,
            ServerMessage::DominantSpeaker { participant } => self.dominant = participant,
            ServerMessage::PausedTracks { mids } => self.paused = mids,
            ServerMessage::MediaError { code, message } => self.media_errors.push((code, message)),
            // Conference messages are not the media client's business.
            _ => {}
        }
        self.drain(now);
    }

    /// Next message for the server.
    pub fn poll_signal(&mut self) -> Option<ClientMessage> {
        self.signals.pop_front()
    }

    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.handle_receive(now, Protocol::Udp, source, self.addr, data);
    }

    /// A datagram, or one frame of a TCP connection, that arrived at `destination`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        if self.silent {
            return;
        }
        let Ok(contents) = data.try_into() else {
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
        if self.rtc.accepts(&input) {
            let _ = self.rtc.handle_input(input);
        }
        self.drain(now);
    }

    /// Advances time: str0m timers and media production.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.silent {
            return;
        }
        if now >= self.timeout {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain(now);
        }
        self.produce(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.silent {
            self.transmits.clear();
            return None;
        }
        self.transmits.pop_front()
    }

    /// When this client next needs [`TestClient::handle_timeout`].
    pub fn next_timeout(&self) -> Instant {
        let mut t = self.timeout;
        if self.connected && !self.muted {
            for (mid, _, _) in &self.sending {
                t = t.min(self.next_frame.get(mid).copied().unwrap_or(t));
            }
        }
        t
    }

    fn produce(&mut self, now: Instant) {
        if !self.connected || self.muted {
            return;
        }
        let start = self.start;
        let elapsed = move |at: Instant| at.saturating_duration_since(start);
        let sending = self.sending.clone();
        for (mid, kind, _) in sending {
            let due = *self.next_frame.entry(mid).or_insert(now);
            if now < due {
                continue;
            }
            match kind {
                MediaKind::Audio => {
                    self.next_frame.insert(mid, due + Duration::from_millis(20));
                    let ticks = elapsed(due).as_millis() as u64 * 48;
                    let ticks = ticks - ticks % AUDIO_TICKS;
                    self.counter += 1;
                    self.produced.insert(self.counter, now);
                    let data = self
                        .fixture_frame(mid, MediaKind::Audio, false)
                        .unwrap_or_else(|| frames::audio(self.tag, self.counter));
                    self.write(
                        now,
                        mid,
                        Codec::Opus,
                        MediaTime::new(ticks, MEDIA_48K),
                        data,
                    );
                }
                MediaKind::Video => {
                    self.next_frame.insert(mid, due + Duration::from_millis(50));
                    let ticks = elapsed(due).as_millis() as u64 * 90;
                    let ticks = ticks - ticks % VIDEO_TICKS;
                    self.counter += 1;
                    self.produced.insert(self.counter, now);
                    let time = MediaTime::new(ticks, MEDIA_90K);
                    if self.simulcast {
                        for (index, (name, size, scale)) in LAYERS.into_iter().enumerate() {
                            let rid = Rid::from(name);
                            if self.paused_layers.contains(&name) {
                                self.started.retain(|s| *s != (mid, Some(rid)));
                                continue;
                            }
                            let key = self.owes_keyframe(mid, Some(rid));
                            let sender = self.tag.wrapping_add(index as u32);
                            let data = frames::video_sized(sender, self.counter, key, size, scale);
                            self.write_layer(now, mid, Some(rid), Codec::Vp8, time, data);
                        }
                        self.want_keyframe.retain(|(m, _)| *m != mid);
                        continue;
                    }
                    let key = self.owes_keyframe(mid, None);
                    self.want_keyframe.retain(|(m, _)| *m != mid);
                    let data = self
                        .fixture_frame(mid, MediaKind::Video, key)
                        .unwrap_or_else(|| {
                            frames::video_scaled(self.tag, self.counter, key, self.video_scale)
                        });
                    self.write(now, mid, Codec::Vp8, time, data);
                }
            }
        }
    }

    /// Whether the next frame of `mid` (layer `rid`) must be a keyframe; marks it started.
    fn owes_keyframe(&mut self, mid: Mid, rid: Option<Rid>) -> bool {
        let requested = self
            .want_keyframe
            .iter()
            .any(|(m, r)| *m == mid && (r.is_none() || *r == rid));
        let first = !self.started.contains(&(mid, rid));
        if first {
            self.started.push((mid, rid));
        }
        // Answered by this frame; requests for other layers wait for theirs.
        self.want_keyframe
            .retain(|(m, r)| !(*m == mid && *r == rid && rid.is_some()));
        requested || first
    }

    /// The next fixture frame of `mid`, if a fixture is set; `key` skips to the next keyframe.
    fn fixture_frame(&mut self, mid: Mid, kind: MediaKind, key: bool) -> Option<Vec<u8>> {
        let f = self.fixture.clone()?;
        let at = self.fixture_at.entry(mid).or_insert(0);
        let data = match kind {
            MediaKind::Audio if !f.audio.is_empty() => f.audio[*at % f.audio.len()].clone(),
            MediaKind::Video if !f.video.is_empty() => {
                let n = f.video.len();
                if key && !f.video[*at % n].1 {
                    *at += (0..n).find(|i| f.video[(*at + i) % n].1).unwrap_or(0);
                }
                f.video[*at % n].0.clone()
            }
            _ => return None,
        };
        *at += 1;
        *self.sent.entry(mid).or_insert(0) += 1;
        Some(data)
    }

    fn write(&mut self, now: Instant, mid: Mid, codec: Codec, time: MediaTime, data: Vec<u8>) {
        self.write_layer(now, mid, None, codec, time, data);
    }

    fn write_layer(
        &mut self,
        now: Instant,
        mid: Mid,
        rid: Option<Rid>,
        codec: Codec,
        time: MediaTime,
        data: Vec<u8>,
    ) {
        let Some(mut writer) = self.rtc.writer(mid) else {
            return;
        };
        if codec == Codec::Opus
            && let Some(level) = self.audio_level
        {
            writer = writer.audio_level(level, level > -127);
        }
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return;
        };
        if let Some(rid) = rid {
            writer = writer.rid(rid);
        }
        writer
            .write(pt, now, time, data)
            .expect("test client writes media");
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(t),
                Ok(Output::Event(e)) => self.on_event(now, e),
                Err(e) => panic!("{}: str0m error {e}", self.name),
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.disconnected = true
            }
            Event::KeyframeRequest(r) => {
                self.keyframe_requests += 1;
                if self.ignore_keyframe_requests > 0 {
                    // Like an encoder that rate-limits keyframes: the request is lost.
                    self.ignore_keyframe_requests -= 1;
                } else {
                    self.want_keyframe.push((r.mid, r.rid));
                }
            }
            Event::MediaData(d) => {
                let kind = self.rtc.media(d.mid).map(|m| m.kind());
                let r = self.received.entry(d.mid).or_default();
                r.kind = kind;
                let info = match kind {
                    Some(MediaKind::Audio) => frames::check_audio(&d.data),
                    Some(MediaKind::Video) => frames::check_video(&d.data),
                    None => None,
                };
                match info {
                    Some(f) => {
                        r.frames += 1;
                        if f.keyframe {
                            r.keyframes += 1;
                        }
                        if kind == Some(MediaKind::Video) && r.first_was_keyframe.is_none() {
                            r.first_was_keyframe = Some(f.keyframe);
                        }
                        r.first_frame_at.get_or_insert(now);
                        if r.last_frame_at
                            .is_some_and(|t| now - t > Duration::from_millis(300))
                        {
                            r.restarts.push(f.keyframe);
                        }
                        r.last_frame_at = Some(now);
                        if r.sender == Some(f.sender) {
                            match r.last_counter {
                                Some(c) if f.counter == c => r.duplicates += 1,
                                Some(c) if f.counter < c => r.reordered += 1,
                                _ => {}
                            }
                        }
                        r.sender = Some(f.sender);
                        r.last_counter = Some(f.counter);
                        r.history.push(Seen {
                            sender: f.sender,
                            counter: f.counter,
                            keyframe: f.keyframe,
                            size: frames::keyframe_size(&d.data),
                            time: d.time.numer(),
                            at: now,
                            contiguous: d.contiguous,
                        });
                    }
                    None => {
                        r.damaged += 1;
                        if !d.contiguous {
                            r.damaged_after_gap += 1;
                        }
                    }
                }
                if !d.contiguous {
                    r.gaps += 1;
                }
            }
            Event::RawPacket(p) => {
                if let RawPacket::RtpRx(h, _) = *p {
                    let c = self.rtp.entry(h.ssrc).or_default();
                    c.packets += 1;
                    if h.version != 2 {
                        c.bad_version += 1;
                    }
                    if h.marker {
                        c.markers += 1;
                    }
                    if let Some(prev) = c.last_seq {
                        let delta = h.sequence_number.wrapping_sub(prev);
                        if delta != 1 && delta < 0x8000 {
                            c.seq_jumps += 1;
                            c.jumps.push((
                                prev,
                                h.sequence_number,
                                format!("pt {} after {} packets", h.payload_type, c.packets),
                            ));
                        }
                        if delta < 0x8000
                            && let Some(ts) = c.last_ts
                            && h.timestamp.wrapping_sub(ts) >= 0x8000_0000
                        {
                            c.ts_backwards += 1;
                        }
                    }
                    let forward = c
                        .last_seq
                        .is_none_or(|prev| h.sequence_number.wrapping_sub(prev) < 0x8000);
                    if forward {
                        c.last_seq = Some(h.sequence_number);
                        c.last_ts = Some(h.timestamp);
                    }
                }
            }
            _ => {}
        }
    }

    /// Received media on the mid the server's `tracks` map gives for `participant`'s `source`.
    pub fn received_from(&self, participant: &str, source: MediaSource) -> Option<&ReceivedMedia> {
        let t = self
            .tracks
            .iter()
            .find(|t| t.participant_id == participant && t.source == source)?;
        self.received.get(&Mid::from(t.mid.as_str()))
    }
}

const MEDIA_48K: convene_media::str0m::media::Frequency =
    convene_media::str0m::media::Frequency::FORTY_EIGHT_KHZ;
const MEDIA_90K: convene_media::str0m::media::Frequency =
    convene_media::str0m::media::Frequency::NINETY_KHZ;
