//! One benchmark run: join publishers, then subscribers, at a bounded rate; wait until media
//! flows to everyone; warm up; measure a window between two snapshots taken right after the
//! server refreshed its metrics; stop every client.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::peer::{self, PeerSpec, Phase, Publish, Shared, SharedRef, lock};
use crate::procfs::{self, CpuTime};
use crate::recording;
use crate::recv_stats::{Totals, Window};
use crate::report::Outcome;
use crate::scrape::{self, Samples};
use crate::signaling;
use crate::synth;
use crate::target::Target;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub rooms: usize,
    /// Per room. Publishers also receive the other publishers of their room.
    pub publishers: usize,
    /// Per room; they publish nothing.
    pub subscribers: usize,
    /// Video bitrate of each publisher (of the top layer with simulcast); 0: no video.
    pub video_kbps: u32,
    pub fps: u32,
    /// 0: no audio.
    pub audio_kbps: u32,
    pub simulcast: bool,
    /// Clients started per second, and most clients joining (not yet connected) at once.
    pub join_rate: f64,
    pub max_joining: usize,
    /// Per client: join, ICE and DTLS.
    pub connect_timeout: Duration,
    /// After the last join, longest wait for media to reach every receiver.
    pub ready_timeout: Duration,
    /// Longest time for starting and connecting every client; who is not in by then is left
    /// out (and counted).
    pub ramp_timeout: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub local_ip: IpAddr,
    pub rcvbuf: usize,
    pub room_prefix: String,
    pub jwt: Option<String>,
    /// After the measured window, record every room (admin API) and measure a second window of
    /// the same length; then stop the recordings and check their files against what was sent.
    pub record: bool,
}

impl Scenario {
    pub fn describe(&self) -> String {
        let video = if self.video_kbps == 0 {
            "no video".to_owned()
        } else {
            format!(
                "video {} kbps at {} fps{}",
                self.video_kbps,
                self.fps,
                if self.simulcast {
                    " (simulcast, 3 layers)"
                } else {
                    ""
                }
            )
        };
        let audio = if self.audio_kbps == 0 {
            "no audio".to_owned()
        } else {
            format!("audio {} kbps", self.audio_kbps)
        };
        format!(
            "{} room(s) x ({} publisher(s) + {} subscriber(s)); {video}; {audio}",
            self.rooms, self.publishers, self.subscribers
        )
    }

    /// Streams a client receives: one audio and one video per other publisher in its room.
    fn expected_streams(&self, is_publisher: bool) -> usize {
        let kinds = usize::from(self.video_kbps > 0) + usize::from(self.audio_kbps > 0);
        let others = self.publishers - usize::from(is_publisher);
        others * kinds
    }

    fn publish(&self) -> Publish {
        Publish {
            audio_kbps: (self.audio_kbps > 0).then_some(self.audio_kbps),
            video: if self.video_kbps > 0 {
                synth::layers(self.video_kbps, self.fps, self.simulcast)
            } else {
                Vec::new()
            },
        }
    }

    pub fn total_clients(&self) -> usize {
        self.rooms * (self.publishers + self.subscribers)
    }
}

struct Client {
    name: String,
    shared: SharedRef,
    room: usize,
    publisher: bool,
    /// Streams it should receive.
    expected: usize,
}

impl Client {
    fn receiving(&self) -> bool {
        let s = lock(&self.shared);
        s.recv.streams.values().filter(|st| st.packets > 0).count() >= self.expected
    }
}

/// Runs the scenario against `target`. Every wait is bounded, so a run ends by itself.
pub async fn run(s: &Scenario, target: &Target) -> anyhow::Result<Outcome> {
    let stop = CancellationToken::new();
    // Whatever happens below, the clients stop when the run does.
    let _stop_guard = stop.clone().drop_guard();
    let mut tasks = JoinSet::new();
    let mut clients: Vec<Client> = Vec::new();
    let limiter = Arc::new(Semaphore::new(s.max_joining.max(1)));
    let spacing = Duration::from_secs_f64(1.0 / s.join_rate.max(0.01));
    let started = Instant::now();

    // Publishers first, so a subscriber's first negotiation already carries their tracks.
    let ramp_end = started + s.ramp_timeout;
    let mut spawner = Spawner {
        s,
        target,
        stop: &stop,
        limiter: &limiter,
        spacing,
        last: None,
        deadline: ramp_end,
    };
    let mut progress = Progress::new(s.total_clients());
    let publishers = (0..s.publishers).flat_map(|i| (0..s.rooms).map(move |r| (r, i, true)));
    let subscribers = (0..s.subscribers).flat_map(|i| (0..s.rooms).map(move |r| (r, i, false)));
    let mut publishers_settled = false;
    for (room, i, publisher) in publishers.chain(subscribers) {
        if !publisher && !publishers_settled {
            wait_settled(&clients, ramp_end.min(Instant::now() + s.connect_timeout)).await;
            publishers_settled = true;
        }
        let kind = if publisher { "pub" } else { "sub" };
        let Some(c) = spawner
            .spawn(&mut tasks, room, format!("{kind}-{room}-{i}"), publisher)
            .await?
        else {
            eprintln!(
                "ramp timeout: started {} of {} clients",
                clients.len(),
                s.total_clients()
            );
            break;
        };
        clients.push(c);
        progress.report(&clients);
    }
    wait_settled(&clients, ramp_end.min(Instant::now() + s.connect_timeout)).await;
    let ready_end = Instant::now() + s.ready_timeout;
    while Instant::now() < ready_end
        && !clients
            .iter()
            .filter(|c| c.expected > 0 && connected(c))
            .all(Client::receiving)
    {
        progress.report(&clients);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ramp = started.elapsed();
    tokio::time::sleep(s.warmup).await;

    let ports = peer::ports(&clients.iter().map(|c| c.shared.clone()).collect::<Vec<_>>());
    let first = snapshot_aligned(target, &clients, &ports).await;
    tokio::time::sleep(s.duration).await;
    let last = snapshot_aligned(target, &clients, &ports).await;
    let memory = target.pid.and_then(procfs::memory);
    let recorded = if s.record {
        Some(record(s, target, &clients, &ports).await?)
    } else {
        None
    };

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let mut o = outcome(s, &clients, &first, &last);
    o.ramp_secs = ramp.as_secs_f64();
    o.server_idle_rss = target.idle.map(|m| m.rss);
    o.server_rss = memory.map(|m| m.rss);
    o.server_peak_rss = memory.map(|m| m.peak);
    if let Some((mut with, check)) = recorded {
        with.ramp_secs = o.ramp_secs;
        with.server_idle_rss = o.server_idle_rss;
        o.recorded = Some(Box::new(with));
        o.record_check = Some(check);
    }
    Ok(o)
}

/// Records every room: starts the recordings, measures a window like the first one, stops
/// them and checks the files. The window starts 2 s after the last start, when every recording
/// has its first keyframes.
async fn record(
    s: &Scenario,
    target: &Target,
    clients: &[Client],
    ports: &HashSet<u16>,
) -> anyhow::Result<(Outcome, recording::Check)> {
    let dir = target
        .recordings_dir
        .clone()
        .ok_or_else(|| anyhow::anyhow!("recording needs a server this tool started"))?;
    let rooms: Vec<String> = (0..s.rooms)
        .map(|r| format!("{}-{r}", s.room_prefix))
        .collect();
    // Per client: (audio, video) frames sent when its room's recording started.
    let mut at_start = vec![(0, 0); clients.len()];
    let sent_now = |i: usize| {
        let sh = lock(&clients[i].shared);
        (sh.sent_audio_frames, sh.sent_video_frames)
    };
    let mut start_ms = Vec::new();
    for (r, name) in rooms.iter().enumerate() {
        let asked = Instant::now();
        recording::request(target, name, true).await?;
        start_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        for i in (0..clients.len()).filter(|&i| clients[i].room == r) {
            at_start[i] = sent_now(i);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = snapshot_aligned(target, clients, ports).await;
    tokio::time::sleep(s.duration).await;
    let last = snapshot_aligned(target, clients, ports).await;
    let memory = target.pid.and_then(procfs::memory);
    let mut sent = Vec::new();
    let mut stop_ms = Vec::new();
    for (r, name) in rooms.iter().enumerate() {
        for i in (0..clients.len()).filter(|&i| clients[i].room == r && clients[i].publisher) {
            let (audio, video) = sent_now(i);
            let participant = lock(&clients[i].shared).participant.clone();
            sent.push(recording::Sent {
                participant: participant.unwrap_or_default(),
                audio: audio - at_start[i].0,
                video: video - at_start[i].1,
            });
        }
        let asked = Instant::now();
        recording::request(target, name, false).await?;
        stop_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
    }
    let mut o = outcome(s, clients, &first, &last);
    o.server_rss = memory.map(|m| m.rss);
    o.server_peak_rss = memory.map(|m| m.peak);
    let mut check = recording::check(&dir, &sent)?;
    check.start_ms = start_ms;
    check.stop_ms = stop_ms;
    // The server is fresh and records only here, so the counter is this phase's total.
    if let Some(url) = &target.metrics
        && let Ok(m) = scrape::fetch(url).await
    {
        check.frames_dropped = scrape::counter(&m, "convene_record_frames_dropped");
    }
    Ok((o, check))
}

struct Spawner<'a> {
    s: &'a Scenario,
    target: &'a Target,
    stop: &'a CancellationToken,
    limiter: &'a Arc<Semaphore>,
    spacing: Duration,
    last: Option<Instant>,
    /// No client is started after this.
    deadline: Instant,
}

impl Spawner<'_> {
    /// Starts one client, no sooner than the join rate allows and only when fewer than
    /// `max_joining` are still connecting; `None` once the ramp deadline has passed.
    async fn spawn(
        &mut self,
        tasks: &mut JoinSet<()>,
        room: usize,
        name: String,
        publisher: bool,
    ) -> anyhow::Result<Option<Client>> {
        if let Some(last) = self.last {
            tokio::time::sleep_until((last + self.spacing).into()).await;
        }
        self.last = Some(Instant::now());
        let acquire = self.limiter.clone().acquire_owned();
        let Ok(permit) = tokio::time::timeout_at(self.deadline.into(), acquire).await else {
            return Ok(None);
        };
        // The semaphore is never closed.
        let permit = permit?;
        let room_name = format!("{}-{room}", self.s.room_prefix);
        let spec = PeerSpec {
            url: signaling::room_url(&self.target.base_url, &room_name, self.s.jwt.as_deref())?,
            name: name.clone(),
            local_ip: self.s.local_ip,
            publish: publisher.then(|| self.s.publish()),
            rcvbuf: self.s.rcvbuf,
            connect_timeout: self.s.connect_timeout,
        };
        let shared = SharedRef::new(std::sync::Mutex::new(Shared::default()));
        tasks.spawn(peer::run(spec, shared.clone(), self.stop.clone(), permit));
        Ok(Some(Client {
            name,
            shared,
            room,
            publisher,
            expected: self.s.expected_streams(publisher),
        }))
    }
}

/// A line on stderr every few seconds while clients join, so a long ramp is visibly alive.
struct Progress {
    total: usize,
    next: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            next: Instant::now() + Duration::from_secs(5),
        }
    }

    fn report(&mut self, clients: &[Client]) {
        if Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + Duration::from_secs(5);
        let connected = clients.iter().filter(|c| connected(c)).count();
        let receiving = clients
            .iter()
            .filter(|c| c.expected > 0 && c.receiving())
            .count();
        eprintln!(
            "  started {}/{}, connected {connected}, receiving {receiving}",
            clients.len(),
            self.total
        );
    }
}

fn connected(c: &Client) -> bool {
    lock(&c.shared).phase == Phase::Connected
}

/// Waits until no client is still joining or negotiating (each has its own timeout), or `end`.
async fn wait_settled(clients: &[Client], end: Instant) {
    while Instant::now() < end {
        let busy = clients
            .iter()
            .any(|c| matches!(lock(&c.shared).phase, Phase::Joining | Phase::Joined));
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the window is computed from.
struct Snapshot {
    at: Instant,
    server_cpu: Option<CpuTime>,
    server_wait: Option<Duration>,
    own_cpu: Option<CpuTime>,
    own_wait: Option<Duration>,
    metrics: Option<Samples>,
    totals: Vec<Totals>,
    /// Frames each client published so far.
    sent_frames: Vec<u64>,
    sent: u64,
    skipped: u64,
    generator_drops: u64,
    server_drops: Option<u64>,
}

/// A snapshot taken right after the server refreshed its metrics (it does about once a
/// second), so the counter differences and the CPU time cover the same interval.
async fn snapshot_aligned(target: &Target, clients: &[Client], ports: &HashSet<u16>) -> Snapshot {
    const KEY: &str = "convene_media_packets_sent";
    let Some(url) = &target.metrics else {
        return snapshot(target, clients, ports, None);
    };
    // A saturated server answers HTTP late; a few tries before going without its counters.
    let mut before = None;
    for _ in 0..3 {
        if let Ok(m) = scrape::fetch(url).await {
            before = Some(m);
            break;
        }
    }
    if let Some(before) = before {
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let Ok(now) = scrape::fetch(url).await else {
                break;
            };
            if scrape::counter(&now, KEY) != scrape::counter(&before, KEY) {
                return snapshot(target, clients, ports, Some(now));
            }
        }
    }
    for _ in 0..3 {
        if let Ok(m) = scrape::fetch(url).await {
            return snapshot(target, clients, ports, Some(m));
        }
    }
    snapshot(target, clients, ports, None)
}

fn snapshot(
    target: &Target,
    clients: &[Client],
    ports: &HashSet<u16>,
    metrics: Option<Samples>,
) -> Snapshot {
    let at = Instant::now();
    let server_cpu = target.pid.and_then(procfs::cpu_time);
    let server_wait = target.pid.and_then(procfs::runqueue_wait);
    let (mut sent, mut skipped) = (0, 0);
    let mut sent_frames = Vec::with_capacity(clients.len());
    let totals = clients
        .iter()
        .map(|c| {
            let s = lock(&c.shared);
            sent += s.sent_packets;
            skipped += s.frames_skipped;
            sent_frames.push(s.sent_frames);
            s.recv.totals()
        })
        .collect();
    Snapshot {
        at,
        server_cpu,
        server_wait,
        own_cpu: procfs::own_cpu_time(),
        own_wait: procfs::runqueue_wait(std::process::id()),
        metrics,
        totals,
        sent_frames,
        sent,
        skipped,
        generator_drops: procfs::udp_drops(ports),
        server_drops: target
            .media_port
            .map(|p| procfs::udp_drops(&HashSet::from([p]))),
    }
}

fn outcome(s: &Scenario, clients: &[Client], a: &Snapshot, b: &Snapshot) -> Outcome {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let delta = |name: &str| -> Option<f64> {
        let (x, y) = (a.metrics.as_ref()?, b.metrics.as_ref()?);
        Some(scrape::counter(y, name)? - scrape::counter(x, name)?)
    };
    let diff =
        |x: Option<Duration>, y: Option<Duration>| Some((y?.saturating_sub(x?)).as_secs_f64());
    let total = |c: Option<CpuTime>| c.map(|c| c.total());
    let system = |c: Option<CpuTime>| c.map(|c| c.system);
    let mut failures = Vec::new();
    let mut failed = 0;
    let mut connected = 0;
    for c in clients {
        let shared = lock(&c.shared);
        match &shared.phase {
            Phase::Failed(e) => {
                failed += 1;
                if failures.len() < 5 {
                    failures.push(format!("{}: {e}", c.name));
                }
            }
            // Clients end when the run stops them; what counts is whether they got this far.
            _ if shared.connected_after.is_some() => connected += 1,
            _ => {}
        }
    }
    let receivers: Vec<usize> = (0..clients.len())
        .filter(|&i| clients[i].expected > 0)
        .collect();
    // What the publishers of each receiver's room sent in the window.
    let published = |i: usize| -> u64 {
        (0..clients.len())
            .filter(|&j| j != i && clients[j].publisher && clients[j].room == clients[i].room)
            .map(|j| b.sent_frames[j].saturating_sub(a.sent_frames[j]))
            .sum()
    };
    let windows: Vec<Window> = receivers
        .iter()
        .map(|&i| {
            let (x, y) = (&a.totals[i], &b.totals[i]);
            Window::between(x, y, secs).with_expected_frames(x, y, published(i))
        })
        .collect();
    let generator_received = receivers
        .iter()
        .map(|&i| b.totals[i].packets.saturating_sub(a.totals[i].packets))
        .sum();
    Outcome {
        scenario: s.describe(),
        clients: clients.len(),
        connected,
        failures,
        failed,
        receivers: receivers.len(),
        receiving: receivers
            .iter()
            .filter(|&&i| clients[i].receiving())
            .count(),
        ramp_secs: 0.0,
        window_secs: secs,
        server_cpu_secs: diff(total(a.server_cpu), total(b.server_cpu)),
        server_sys_secs: diff(system(a.server_cpu), system(b.server_cpu)),
        server_wait_secs: diff(a.server_wait, b.server_wait),
        generator_wait_secs: diff(a.own_wait, b.own_wait),
        server_idle_rss: None,
        server_rss: None,
        server_peak_rss: None,
        recorded: None,
        record_check: None,
        packets_sent: delta("convene_media_packets_sent"),
        send_calls: delta("convene_media_send_calls"),
        packets_received: delta("convene_media_packets_received"),
        bytes_sent: delta("convene_media_bytes_sent"),
        frames_forwarded: delta("convene_media_frames_forwarded"),
        nacks_received: delta("convene_media_nacks_received"),
        keyframe_requests_received: delta("convene_media_keyframe_requests_received"),
        generator_cpu_secs: diff(total(a.own_cpu), total(b.own_cpu)),
        generator_sent: b.sent.saturating_sub(a.sent),
        generator_frames_skipped: b.skipped.saturating_sub(a.skipped),
        generator_received,
        generator_drops: b.generator_drops.saturating_sub(a.generator_drops),
        server_drops: match (a.server_drops, b.server_drops) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x)),
            _ => None,
        },
        windows,
    }
}
