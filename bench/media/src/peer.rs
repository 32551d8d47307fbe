//! One load client: joins a room over the signaling WebSocket, negotiates a str0m WebRTC session
//! with the server (it makes the first offer and answers the server's, like the web client),
//! publishes synthetic audio and video if it is a publisher, and counts every RTP packet it
//! receives.
//!
//! Clients run str0m in RTP mode: received packets are counted, not reassembled into frames,
//! and sent video is packetized here ([`crate::synth`]). That keeps the generator's cost per
//! packet low, which matters because it shares the machine with the server it measures.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use convene_proto::{ClientMessage, MediaSource, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::recv_stats::RecvStats;
use crate::signaling::{self, Ws};
use crate::synth::{self, AudioSource, Layer, Packet, VideoSource};

/// What a publisher sends.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Opus-shaped audio at this bitrate, if any.
    pub audio_kbps: Option<u32>,
    /// Video layers: none, one, or three for simulcast.
    pub video: Vec<Layer>,
}

#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// Signaling URL of the client's room.
    pub url: String,
    pub name: String,
    /// Local address of the client's UDP socket (its ICE host candidate).
    pub local_ip: IpAddr,
    pub publish: Option<Publish>,
    /// Receive buffer of the UDP socket, in bytes.
    pub rcvbuf: usize,
    /// Limit for joining and for ICE + DTLS to complete.
    pub connect_timeout: Duration,
}

/// Where a client is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Joining,
    /// In the room; WebRTC negotiating.
    Joined,
    /// ICE and DTLS are up.
    Connected,
    Failed(String),
    /// Stopped on request.
    Ended,
}

/// A client's state as the coordinator sees it.
#[derive(Debug, Default)]
pub struct Shared {
    pub phase: Phase,
    pub participant: Option<String>,
    /// Local UDP port, for the kernel's drop counters.
    pub port: Option<u16>,
    pub joined_after: Option<Duration>,
    pub connected_after: Option<Duration>,
    pub recv: RecvStats,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Frames published: video frames of one layer (a receiver gets one layer), audio packets.
    pub sent_frames: u64,
    /// The same, by kind (for comparing with what a recording wrote).
    pub sent_audio_frames: u64,
    pub sent_video_frames: u64,
    /// Datagrams the client could not hand to its socket.
    pub send_failures: u64,
    pub keyframe_requests: u64,
    /// Video frames skipped because this client woke up more than half a second late (an
    /// overloaded generator).
    pub frames_skipped: u64,
    /// Entries of the latest `tracks` message.
    pub tracks: usize,
    pub media_errors: Vec<String>,
}

pub type SharedRef = Arc<Mutex<Shared>>;

pub fn lock(s: &SharedRef) -> MutexGuard<'_, Shared> {
    // A client task that panicked leaves its counters as they were; still worth reading.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one client until `stop` is cancelled or it fails; the outcome is in `shared.phase`.
/// `on_connected` is dropped once ICE and DTLS are up (or the client failed), which lets the
/// caller bound how many clients are joining at once.
pub async fn run<T: Send>(
    spec: PeerSpec,
    shared: SharedRef,
    stop: CancellationToken,
    on_connected: T,
) {
    let mut on_connected = Some(on_connected);
    let result = tokio::select! {
        r = run_client(&spec, &shared, &stop, &mut on_connected) => r,
        // A client never outlives the run, whatever it is waiting on.
        _ = stop.cancelled() => Ok(()),
    };
    let mut s = lock(&shared);
    s.phase = match result {
        Ok(()) => Phase::Ended,
        Err(e) => Phase::Failed(format!("{e:#}")),
    };
}

async fn run_client<T>(
    spec: &PeerSpec,
    shared: &SharedRef,
    stop: &CancellationToken,
    on_connected: &mut Option<T>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (mut ws, id) = signaling::join(&spec.url, &spec.name, spec.connect_timeout).await?;
    let socket = bind_udp(spec.local_ip, spec.rcvbuf)?;
    let addr = socket.local_addr()?;
    {
        let mut s = lock(shared);
        s.phase = Phase::Joined;
        s.participant = Some(id);
        s.port = Some(addr.port());
        s.joined_after = Some(started.elapsed());
    }
    let mut client = Client::new(spec, addr, socket, shared.clone())?;
    client.offer(Instant::now())?;
    let deadline = started + spec.connect_timeout;
    loop {
        client.flush(&mut ws).await?;
        if client.connected {
            if on_connected.take().is_some() {
                let mut s = lock(shared);
                s.phase = Phase::Connected;
                s.connected_after = Some(started.elapsed());
            }
        } else if Instant::now() > deadline {
            bail!("ICE/DTLS not connected after {:?}", spec.connect_timeout);
        }
        let wake = client
            .next_wake()
            .max(Instant::now() + Duration::from_micros(500));
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                // Leave properly so the server frees the seat at once.
                let _ = signaling::send(&mut ws, &ClientMessage::Leave).await;
                let _ = ws.close(None).await;
                return Ok(());
            }
            ready = client.socket.readable() => {
                ready?;
                client.read()?;
            }
            msg = signaling::recv(&mut ws) => match msg? {
                Some(m) => client.on_signal(m)?,
                None => bail!("signaling connection closed by the server"),
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        client.tick(Instant::now())?;
    }
}

fn bind_udp(ip: IpAddr, rcvbuf: usize) -> anyhow::Result<UdpSocket> {
    let addr = SocketAddr::new(ip, 0);
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // The kernel caps this at net.core.rmem_max; a larger buffer rides out scheduling gaps
    // of the generator that would otherwise show up as loss.
    let _ = socket.set_recv_buffer_size(rcvbuf);
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding UDP on {ip}"))?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// A sending stream: an m-line (and simulcast layer) with its own sequence numbers.
struct VideoOut {
    mid: Mid,
    rid: Option<Rid>,
    source: VideoSource,
    seq: u64,
}

struct AudioOut {
    mid: Mid,
    source: AudioSource,
    seq: u64,
}

struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    name: String,
    pending: Option<SdpPendingOffer>,
    outbox: VecDeque<ClientMessage>,
    timeout: Instant,
    connected: bool,
    audio: Option<AudioOut>,
    video: Vec<VideoOut>,
    /// Media that this client offered to send: (mid, kind, source).
    sending: Vec<(Mid, MediaKind, MediaSource)>,
    publish: Option<Publish>,
    shared: SharedRef,
    buf: Vec<u8>,
}

impl Client {
    fn new(
        spec: &PeerSpec,
        addr: SocketAddr,
        socket: UdpSocket,
        shared: SharedRef,
    ) -> anyhow::Result<Self> {
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_stats_interval(None)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").context("host candidate")?);
        Ok(Self {
            rtc,
            socket,
            addr,
            name: spec.name.clone(),
            pending: None,
            outbox: VecDeque::new(),
            timeout: now,
            connected: false,
            audio: None,
            video: Vec::new(),
            sending: Vec::new(),
            publish: spec.publish.clone(),
            shared,
            buf: vec![0; 2048],
        })
    }

    /// The first offer: sending audio and video for a publisher; a subscriber, which sends
    /// nothing, offers to receive audio (an offer needs an m-line).
    fn offer(&mut self, now: Instant) -> anyhow::Result<()> {
        let mut api = self.rtc.sdp_api();
        let stream_id = Some(self.name.clone());
        if let Some(p) = &self.publish {
            if p.audio_kbps.is_some() {
                let mid = api.add_media(
                    MediaKind::Audio,
                    Direction::SendOnly,
                    stream_id.clone(),
                    None,
                    None,
                );
                self.sending
                    .push((mid, MediaKind::Audio, MediaSource::Microphone));
            }
            if !p.video.is_empty() {
                let simulcast = (p.video.len() > 1).then(|| {
                    let mut s = Simulcast::new();
                    for l in &p.video {
                        s.add_send_layer(SimulcastLayer::new(l.rid.as_deref().unwrap_or("f")));
                    }
                    s
                });
                let mid = api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    stream_id,
                    None,
                    simulcast,
                );
                self.sending
                    .push((mid, MediaKind::Video, MediaSource::Camera));
            }
        }
        if self.sending.is_empty() {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().context("nothing to offer")?;
        self.pending = Some(pending);
        let sources: BTreeMap<String, MediaSource> = self
            .sending
            .iter()
            .map(|(m, _, s)| (m.to_string(), *s))
            .collect();
        self.outbox.push_back(ClientMessage::SdpOffer {
            sdp: offer.to_sdp_string(),
            sources,
        });
        self.drain(now)
    }

    fn on_signal(&mut self, msg: ServerMessage) -> anyhow::Result<()> {
        let now = Instant::now();
        match msg {
            ServerMessage::SdpAnswer { sdp } => {
                let Some(pending) = self.pending.take() else {
                    bail!("server answered an offer that was not made");
                };
                let answer = SdpAnswer::from_sdp_string(&sdp).context("server answer")?;
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .context("applying the server's answer")?;
                self.setup_sending();
            }
            ServerMessage::SdpOffer { sdp } => {
                if self.pending.is_some() {
                    // Our own offer stands (the impolite side); the server offers again after
                    // answering it.
                    return Ok(());
                }
                let offer = SdpOffer::from_sdp_string(&sdp).context("server offer")?;
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .context("applying the server's offer")?;
                self.outbox.push_back(ClientMessage::SdpAnswer {
                    sdp: answer.to_sdp_string(),
                });
            }
            ServerMessage::Tracks { tracks } => lock(&self.shared).tracks = tracks.len(),
            ServerMessage::MediaError { code, message } => {
                lock(&self.shared)
                    .media_errors
                    .push(format!("{code}: {message}"));
                bail!("media_error {code}: {message}");
            }
            ServerMessage::Error { code, message, .. } => {
                lock(&self.shared)
                    .media_errors
                    .push(format!("{code:?}: {message}"));
            }
            // Conference messages are not the load client's business.
            _ => {}
        }
        self.drain(now)
    }

    /// Creates the senders once the server accepted what this client publishes.
    fn setup_sending(&mut self) {
        let Some(p) = &self.publish else {
            return;
        };
        if self.audio.is_some() || !self.video.is_empty() {
            return;
        }
        for (mid, kind, _) in &self.sending {
            match kind {
                MediaKind::Audio => {
                    self.audio = Some(AudioOut {
                        mid: *mid,
                        source: AudioSource::new(p.audio_kbps.unwrap_or(32)),
                        seq: 1,
                    })
                }
                MediaKind::Video => {
                    for (i, layer) in p.video.iter().enumerate() {
                        self.video.push(VideoOut {
                            mid: *mid,
                            rid: layer.rid.as_deref().map(Rid::from),
                            source: VideoSource::new(layer.clone()),
                            seq: 1 + 10_000 * i as u64,
                        });
                    }
                }
            }
        }
    }

    /// Sends pending signaling messages.
    async fn flush(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        while let Some(m) = self.outbox.pop_front() {
            signaling::send(ws, &m).await?;
        }
        Ok(())
    }

    fn next_wake(&self) -> Instant {
        let mut t = self.timeout;
        if self.connected {
            let dues = self.audio.iter().filter_map(|a| a.source.next_due());
            let dues = dues.chain(self.video.iter().filter_map(|v| v.source.next_due()));
            for due in dues {
                t = t.min(due);
            }
            if self.audio.is_some() || !self.video.is_empty() {
                // A source that has not produced yet is due now.
                let unstarted = self.audio.iter().any(|a| a.source.next_due().is_none())
                    || self.video.iter().any(|v| v.source.next_due().is_none());
                if unstarted {
                    t = Instant::now();
                }
            }
        }
        t
    }

    /// Reads every queued datagram.
    fn read(&mut self) -> anyhow::Result<()> {
        loop {
            let (n, from) = match self.socket.try_recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                // ICMP errors (the server went away) surface here; the signaling side notices.
                Err(_) => return Ok(()),
            };
            let now = Instant::now();
            let Ok(contents) = self.buf[..n].try_into() else {
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: self.addr,
                    contents,
                },
            );
            // A datagram str0m rejects is the server's or the network's problem, not a reason
            // to stop counting.
            let _ = self.rtc.handle_input(input);
            self.drain(now)?;
        }
    }

    /// Advances str0m's timers and produces media that is due.
    fn tick(&mut self, now: Instant) -> anyhow::Result<()> {
        let wrote = self.produce(now);
        if wrote || now >= self.timeout {
            self.rtc
                .handle_input(Input::Timeout(now))
                .context("str0m timeout")?;
            self.drain(now)?;
        }
        Ok(())
    }

    /// Writes the audio and video packets due at `now`; whether any were written.
    fn produce(&mut self, now: Instant) -> bool {
        if !self.connected {
            return false;
        }
        let mut packets: Vec<(Mid, Option<Rid>, Codec, Packet, u32, u64)> = Vec::new();
        let (mut audio_frames, mut video_frames) = (0, 0);
        if let Some(a) = &mut self.audio {
            while let Some((p, time)) = a.source.poll(now) {
                packets.push((a.mid, None, Codec::Opus, p, time, a.seq));
                a.seq += 1;
                audio_frames += 1;
            }
        }
        for (layer, v) in self.video.iter_mut().enumerate() {
            while let Some((frame, time)) = v.source.poll(now) {
                if layer == 0 {
                    video_frames += 1;
                }
                for p in frame {
                    packets.push((v.mid, v.rid, Codec::Vp8, p, time, v.seq));
                    v.seq += 1;
                }
            }
        }
        if packets.is_empty() {
            return false;
        }
        let (mut count, mut bytes) = (0, 0);
        for (mid, rid, codec, p, time, seq) in packets {
            let Some(pt) = self.payload_type(mid, codec) else {
                continue;
            };
            let len = p.payload.len();
            let mut api = self.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, rid) else {
                continue;
            };
            let write = RtpWrite::new(pt, SeqNo::from(seq), time, now, p.payload)
                .marker(p.marker)
                // Video is kept for retransmission on NACK, as browsers do; audio is not.
                .nackable(codec == Codec::Vp8);
            tx.write_rtp(write);
            count += 1;
            bytes += len as u64;
        }
        let mut s = lock(&self.shared);
        s.sent_packets += count;
        s.sent_bytes += bytes;
        s.sent_frames += audio_frames + video_frames;
        s.sent_audio_frames += audio_frames;
        s.sent_video_frames += video_frames;
        s.frames_skipped = self.video.iter().map(|v| v.source.skipped).sum();
        true
    }

    /// The negotiated payload type of `codec` on `mid`.
    fn payload_type(&self, mid: Mid, codec: Codec) -> Option<str0m::media::Pt> {
        let media = self.rtc.media(mid)?;
        let config = self.rtc.codec_config();
        media.remote_pts().iter().copied().find(|pt| {
            config
                .iter()
                .any(|p| p.pt() == *pt && p.spec().codec == codec)
        })
    }

    /// Runs str0m to its next timeout: datagrams go out, events are handled.
    fn drain(&mut self, now: Instant) -> anyhow::Result<()> {
        let mut failures = 0;
        loop {
            match self.rtc.poll_output().context("str0m")? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    break;
                }
                Output::Transmit(t) => {
                    // Loopback sends do not block for long; a full buffer is loss, counted.
                    if self.socket.try_send_to(&t.contents, t.destination).is_err() {
                        failures += 1;
                    }
                }
                Output::Event(e) => self.on_event(now, e),
            }
        }
        if failures > 0 {
            lock(&self.shared).send_failures += failures;
        }
        Ok(())
    }

    fn on_event(&mut self, _now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                lock(&self.shared)
                    .media_errors
                    .push("ICE disconnected".into());
            }
            Event::KeyframeRequest(r) => {
                for v in self
                    .video
                    .iter_mut()
                    .filter(|v| v.mid == r.mid && (r.rid.is_none() || v.rid == r.rid))
                {
                    v.source.request_keyframe();
                }
                lock(&self.shared).keyframe_requests += 1;
            }
            Event::RtpPacket(p) => {
                let clock = p.time.frequency().get();
                let mut shared = lock(&self.shared);
                if clock == 48_000
                    && let Some(latency) = synth::audio_latency(&p.payload, Instant::now())
                {
                    shared.recv.on_latency(latency);
                }
                shared.recv.on_packet(
                    *p.header.ssrc,
                    *p.seq_no,
                    p.time.numer(),
                    clock,
                    p.header.marker,
                    p.timestamp,
                    p.payload.len(),
                );
            }
            _ => {}
        }
    }
}

/// Local UDP ports of these clients (for the kernel's per-socket drop counters).
pub fn ports(clients: &[SharedRef]) -> HashSet<u16> {
    clients.iter().filter_map(|c| lock(c).port).collect()
}
