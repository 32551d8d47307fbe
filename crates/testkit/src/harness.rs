//! Runs test clients against the media core over a virtual network in virtual time: datagrams
//! take `latency` and are dropped with probability `loss` (seeded), signaling messages take
//! `signal_latency`. Nothing touches a socket or the clock, so a run replays exactly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use convene_media::{MediaError, Output, Sfu, SfuConfig};
use convene_proto::{ClientMessage, MediaSource, ServerMessage};

use crate::client::TestClient;
use crate::rng::Rng;

struct Datagram {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

enum Signal {
    ToServer(String, ClientMessage),
    ToClient(String, ServerMessage),
}

pub struct Harness {
    pub sfu: Sfu,
    pub clients: Vec<TestClient>,
    pub now: Instant,
    pub server: SocketAddr,
    /// Drop probability for every datagram, both directions.
    pub loss: f64,
    /// Extra drop probability for datagrams to the server (publishers' uplink) and to clients.
    pub loss_up: f64,
    pub loss_down: f64,
    pub latency: Duration,
    pub signal_latency: Duration,
    rng: Rng,
    inflight: Vec<Datagram>,
    signals: VecDeque<(Instant, Signal)>,
    /// `Output::Closed` seen: (participant, reason).
    pub closed: Vec<(String, String)>,
    /// Every message the server sent: (participant, message).
    pub sent: Vec<(String, ServerMessage)>,
    /// Errors the core returned for client messages.
    pub errors: Vec<(String, MediaError)>,
    pub dropped: u64,
    /// Frames delivered to room taps, and tracks whose end taps were told of.
    pub tapped: Vec<convene_media::TapFrame>,
    pub tap_ended: Vec<(convene_media::TapId, u64)>,
    /// Bottleneck links in front of clients (by address): datagrams to them queue behind each
    /// other at the link's rate and are dropped when the queue holds more than `max_queue`.
    links: Vec<(SocketAddr, Link)>,
    /// Until then the server gets no CPU: datagrams to it wait (as in its socket's receive
    /// buffer) and its timers do not run; see [`Harness::stall_server`].
    stalled_until: Option<Instant>,
    /// When set, CPU time this thread spends inside the core (datagrams and timers) is added to
    /// it: what a server pays in user space, without the clients' share.
    pub core_cpu: Option<Duration>,
}

/// A rate-limited link with a drop-tail queue.
#[derive(Debug, Clone, Copy)]
struct Link {
    bits_per_second: u64,
    max_queue: Duration,
    /// How far ahead of its rate an idle link may run: its token bucket, in time at the rate.
    burst: Duration,
    /// When the link finishes sending what is queued, at its rate.
    free_at: Instant,
}

impl Harness {
    pub fn new(seed: u64) -> Self {
        let now = Instant::now();
        let server: SocketAddr = "127.0.0.1:10000".parse().expect("literal address");
        let mut config = SfuConfig::with_candidates(vec![server]);
        config.stats_interval = Duration::from_secs(1);
        Self {
            sfu: Sfu::new(config, now),
            clients: Vec::new(),
            now,
            server,
            loss: 0.0,
            loss_up: 0.0,
            loss_down: 0.0,
            latency: Duration::from_millis(5),
            signal_latency: Duration::from_millis(10),
            rng: Rng::new(seed),
            inflight: Vec::new(),
            signals: VecDeque::new(),
            closed: Vec::new(),
            sent: Vec::new(),
            errors: Vec::new(),
            dropped: 0,
            tapped: Vec::new(),
            tap_ended: Vec::new(),
            links: Vec::new(),
            stalled_until: None,
            core_cpu: None,
        }
    }

    /// Builds a harness whose core uses `config` (candidates are replaced by the virtual one).
    pub fn with_config(seed: u64, mut config: SfuConfig) -> Self {
        let mut h = Self::new(seed);
        config.candidates = vec![h.server];
        h.sfu = Sfu::new(config, h.now);
        h
    }

    /// Joins `name` to `room` and sends its first offer with `tracks`. Returns its index.
    pub fn join(&mut self, room: &str, name: &str, tracks: &[MediaSource]) -> usize {
        let addr: SocketAddr =
            SocketAddr::from(([127, 0, 0, 1], 20000 + self.clients.len() as u16));
        let mut client = TestClient::new(name, addr, self.now);
        self.sfu
            .join(self.now, room, name)
            .expect("join within limits");
        let kinds: Vec<_> = tracks.iter().map(|s| (kind_of(*s), *s)).collect();
        client.offer(self.now, &kinds);
        self.clients.push(client);
        self.pump();
        self.clients.len() - 1
    }

    /// Like [`Harness::join`], publishing video as three simulcast layers.
    pub fn join_simulcast(&mut self, room: &str, name: &str, tracks: &[MediaSource]) -> usize {
        let addr: SocketAddr =
            SocketAddr::from(([127, 0, 0, 1], 20000 + self.clients.len() as u16));
        let mut client = TestClient::new(name, addr, self.now);
        client.simulcast = true;
        self.sfu
            .join(self.now, room, name)
            .expect("join within limits");
        let kinds: Vec<_> = tracks.iter().map(|s| (kind_of(*s), *s)).collect();
        client.offer(self.now, &kinds);
        self.clients.push(client);
        self.pump();
        self.clients.len() - 1
    }

    /// Puts a bottleneck of `bits_per_second` with a queue of at most `max_queue` in front of
    /// client `name` (its downlink).
    pub fn cap_downlink(&mut self, name: &str, bits_per_second: u64, max_queue: Duration) {
        self.cap_downlink_with_burst(name, bits_per_second, max_queue, 0);
    }

    /// Like [`Harness::cap_downlink`], but an idle link lets up to `burst_bytes` through at once
    /// before it queues (a token bucket, as in a policer or `tc tbf`): a short burst gets through
    /// faster than the link's rate, which is what fools a probe of the link.
    pub fn cap_downlink_with_burst(
        &mut self,
        name: &str,
        bits_per_second: u64,
        max_queue: Duration,
        burst_bytes: u64,
    ) {
        let addr = self.client(name).addr;
        self.links.retain(|(a, _)| *a != addr);
        self.links.push((
            addr,
            Link {
                bits_per_second,
                max_queue,
                burst: Duration::from_micros(burst_bytes * 8 * 1_000_000 / bits_per_second),
                free_at: self.now,
            },
        ));
    }

    /// Takes the bottleneck in front of client `name` away again.
    pub fn uncap_downlink(&mut self, name: &str) {
        let addr = self.client(name).addr;
        self.links.retain(|(a, _)| *a != addr);
    }

    pub fn client(&self, name: &str) -> &TestClient {
        self.clients
            .iter()
            .find(|c| c.name == name)
            .expect("known client")
    }

    pub fn client_mut(&mut self, name: &str) -> &mut TestClient {
        self.clients
            .iter_mut()
            .find(|c| c.name == name)
            .expect("known client")
    }

    /// The participant leaves (signaling told the core).
    pub fn leave(&mut self, name: &str) {
        let started = self.core_clock();
        self.sfu.leave(self.now, name);
        self.core_clock_add(started);
        self.clients.retain(|c| c.name != name);
        self.pump();
    }

    /// Sends a raw datagram to the server as if from `from`.
    pub fn inject(&mut self, from: SocketAddr, data: Vec<u8>) {
        self.inflight.push(Datagram {
            at: self.now,
            from,
            to: self.server,
            data,
        });
    }

    /// Runs for `d` of virtual time in 1 ms steps.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.tick();
        }
    }

    /// Runs for `d` while the server is stalled (a busy machine took its CPU): clients go on
    /// sending, and everything sent to the server arrives at once when the stall ends.
    pub fn stall_server(&mut self, d: Duration) {
        self.stalled_until = Some(self.now + d);
        self.run(d);
        self.stalled_until = None;
    }

    /// Runs until `cond` holds or `limit` passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Harness) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.now += Duration::from_millis(1);
            self.tick();
        }
        cond(self)
    }

    fn tick(&mut self) {
        let now = self.now;
        let stalled = self.stalled_until.is_some_and(|t| now < t);
        let server = self.server;
        // Datagrams due now.
        // A FIFO link: datagrams keep their sending order.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.inflight)
            .into_iter()
            .partition(|d| d.at <= now && !(stalled && d.to == server));
        self.inflight = later;
        // The server's datagrams first, in one timed stretch; nothing either side sends moves
        // before the next `pump`, so the order between the server and the clients is immaterial.
        let (to_server, to_clients): (Vec<_>, Vec<_>) =
            due.into_iter().partition(|d| d.to == server);
        let started = self.core_clock();
        for d in to_server {
            self.sfu.handle_datagram(now, d.from, d.to, &d.data);
        }
        self.core_clock_add(started);
        for d in to_clients {
            if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.to) {
                c.handle_datagram(now, d.from, &d.data);
            }
        }
        // Signaling due now.
        while self.signals.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, signal)) = self.signals.pop_front() else {
                break;
            };
            match signal {
                Signal::ToServer(who, msg) => {
                    let result = match msg {
                        ClientMessage::SdpOffer { sdp, sources } => {
                            self.sfu.client_offer(now, &who, &sdp, sources)
                        }
                        ClientMessage::SdpAnswer { sdp } => self.sfu.client_answer(now, &who, &sdp),
                        ClientMessage::TileSizes { tiles } => {
                            self.sfu.tile_sizes(now, &who, &tiles)
                        }
                        ClientMessage::SetLastN { last_n } => {
                            self.sfu.set_last_n(now, &who, last_n)
                        }
                        // Only media messages travel through this harness.
                        _ => Ok(()),
                    };
                    if let Err(e) = result {
                        // What the server's MediaHandle does: tell the client.
                        self.queue_to_client(
                            who.clone(),
                            ServerMessage::MediaError {
                                code: e.code().into(),
                                message: e.to_string(),
                            },
                        );
                        self.errors.push((who, e));
                    }
                }
                Signal::ToClient(who, msg) => {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.name == who) {
                        c.handle_signal(now, msg);
                    }
                }
            }
        }
        let started = self.core_clock();
        if !stalled && self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        self.core_clock_add(started);
        for c in &mut self.clients {
            if c.next_timeout() <= now {
                c.handle_timeout(now);
            }
        }
        self.pump();
    }

    fn queue_to_client(&mut self, who: String, msg: ServerMessage) {
        self.sent.push((who.clone(), msg.clone()));
        self.signals
            .push_back((self.now + self.signal_latency, Signal::ToClient(who, msg)));
    }

    /// The thread's CPU clock when the core's time is measured.
    fn core_clock(&self) -> Option<Duration> {
        self.core_cpu.map(|_| thread_cpu_time())
    }

    fn core_clock_add(&mut self, started: Option<Duration>) {
        if let (Some(total), Some(started)) = (&mut self.core_cpu, started) {
            *total += thread_cpu_time().saturating_sub(started);
        }
    }

    /// Moves everything the core and the clients want to send into flight.
    pub fn pump(&mut self) {
        let now = self.now;
        // Not timed: the core's outputs were made by the calls timed above; this only takes them.
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => {
                    let data = t.contents.to_vec();
                    self.send(t.source, t.destination, data);
                }
                Output::Signal {
                    participant,
                    message,
                } => self.queue_to_client(participant, message),
                Output::Closed {
                    participant,
                    reason,
                } => self.closed.push((participant, reason)),
                Output::Frame(f) => self.tapped.push(f),
                Output::TrackEnded { tap, track } => self.tap_ended.push((tap, track)),
            }
        }
        let mut out = Vec::new();
        for c in &mut self.clients {
            while let Some(t) = c.poll_transmit() {
                out.push((t.source, t.destination, t.contents.to_vec()));
            }
            while let Some(m) = c.poll_signal() {
                self.signals.push_back((
                    now + self.signal_latency,
                    Signal::ToServer(c.name.clone(), m),
                ));
            }
        }
        for (from, to, data) in out {
            self.send(from, to, data);
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let p = self.loss
            + if to == self.server {
                self.loss_up
            } else {
                self.loss_down
            };
        if p > 0.0 && self.rng.next_f64() < p {
            self.dropped += 1;
            return;
        }
        let mut at = self.now;
        if let Some((_, link)) = self.links.iter_mut().find(|(a, _)| *a == to) {
            let start = link.free_at.max(self.now);
            let bits = (data.len() as u64 + 28) * 8;
            let done = start + Duration::from_micros(bits * 1_000_000 / link.bits_per_second);
            // What the bucket still holds goes out at once.
            let out = done
                .checked_sub(link.burst)
                .map_or(self.now, |t| t.max(self.now));
            let queued = start
                .checked_sub(link.burst)
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(self.now));
            if queued > link.max_queue {
                self.dropped += 1;
                return;
            }
            link.free_at = done;
            at = out;
        }
        self.inflight.push(Datagram {
            at: at + self.latency,
            from,
            to,
            data,
        });
    }

    /// Sends a client message to the server as if from `who`, bypassing the client.
    pub fn signal_from(&mut self, who: &str, msg: ClientMessage) {
        self.signals
            .push_back((self.now, Signal::ToServer(who.to_owned(), msg)));
    }
}

/// Audio for the microphone, video for camera and screen.
pub fn kind_of(source: MediaSource) -> convene_media::str0m::media::MediaKind {
    match source {
        MediaSource::Microphone => convene_media::str0m::media::MediaKind::Audio,
        MediaSource::Camera | MediaSource::Screen => convene_media::str0m::media::MediaKind::Video,
    }
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}
