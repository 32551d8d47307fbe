//! wb-load: drives an Excalidraw collab relay with rooms × clients × rate × payload size and
//! reports delivered messages per second, latency percentiles, and the server's CPU and RSS.
//!
//! Each client is a minimal socket.io v4 client over WebSocket that does what Excalidraw does:
//! waits for `init-room`, sends `join-room`, then sends `server-broadcast` (or the volatile
//! variant) with a binary payload and a 12-byte IV. The first 8 bytes of every payload carry
//! the send time, so each receiver measures the one-way latency through the relay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Barrier, Mutex};
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[derive(Parser, Clone)]
struct Args {
    /// Relay base URL, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Messages per second sent by each client.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Payload bytes per message (the ciphertext; the 12-byte IV is extra).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Use server-volatile-broadcast.
    #[arg(long)]
    volatile: bool,
    /// Server process id, to report its CPU and RSS over the measured window.
    #[arg(long)]
    pid: Option<u32>,
    /// Runtime worker threads; 1 = a single-threaded runtime (best when pinned to one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Only connect this many idle clients (no rooms, no traffic), hold them for --duration and
    /// report the server's RSS before and after, per connection.
    #[arg(long)]
    idle: Option<usize>,
}

struct Stats {
    delivered: AtomicU64,
    sent: AtomicU64,
    measuring: std::sync::atomic::AtomicBool,
    latencies_us: Mutex<Vec<u32>>,
}

fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect");
    let _ = ws.get_ref();
    ws
}

/// Connects, does the socket.io handshake, waits for init-room; returns the stream.
async fn handshake(url: &str) -> Ws {
    let mut ws = open(url).await;
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        let _ = tcp.set_nodelay(true);
    }
    ws.send(Message::text("40")).await.expect("send connect");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                ws.send(Message::text("3")).await.expect("pong")
            }
            Some(Ok(Message::Text(t))) if t.contains("init-room") => return ws,
            Some(Ok(_)) => {}
            other => panic!("handshake failed: {other:?}"),
        }
    }
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn proc_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

const TICKS_PER_SEC: f64 = 100.0;

fn main() {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    runtime.expect("tokio runtime").block_on(run(args));
}

async fn run(args: Args) {
    let url = ws_url(&args.url);
    if let Some(n) = args.idle {
        return idle(&args, &url, n).await;
    }
    let total = args.rooms * args.clients;
    let stats = Arc::new(Stats {
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        measuring: false.into(),
        latencies_us: Mutex::new(Vec::new()),
    });
    let epoch = Instant::now();
    let joined = Arc::new(Barrier::new(total + 1));
    let start = Arc::new(Barrier::new(total + 1));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for room in 0..args.rooms {
        for _ in 0..args.clients {
            let (args, url, stats, joined, start, stop) = (
                args.clone(),
                url.clone(),
                stats.clone(),
                joined.clone(),
                start.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                client(args, url, room, stats, epoch, joined, start, stop).await;
            }));
        }
    }
    joined.wait().await;
    // Give the last room-user-change messages time to land before traffic starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    start.wait().await;
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let t0 = Instant::now();
    let cpu0 = args.pid.map(proc_cpu_ticks);
    let rss0 = args.pid.map(proc_rss_kb);
    let d0 = stats.delivered.load(Ordering::Relaxed);
    let s0 = stats.sent.load(Ordering::Relaxed);
    stats.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stats.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let delivered = stats.delivered.load(Ordering::Relaxed) - d0;
    let sent = stats.sent.load(Ordering::Relaxed) - s0;
    let cpu1 = args.pid.map(proc_cpu_ticks);
    let rss1 = args.pid.map(proc_rss_kb);
    stop.notify_waiters();
    // Let the readers hand in their latency samples.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = std::mem::take(&mut *stats.latencies_us.lock().await);
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    };
    let expected = sent as f64 * (args.clients - 1) as f64;
    println!(
        "rooms={} clients={} rate={}/s size={}B volatile={} | sent {:.0}/s, delivered {:.0}/s ({:.1}% of expected) | latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        args.rooms,
        args.clients,
        args.rate,
        args.size,
        args.volatile,
        sent as f64 / elapsed,
        delivered as f64 / elapsed,
        if expected > 0.0 {
            delivered as f64 * 100.0 / expected
        } else {
            0.0
        },
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
    );
    if let (Some(c0), Some(c1), Some(r0), Some(r1)) = (cpu0, cpu1, rss0, rss1) {
        let cpu = (c1 - c0) as f64 / TICKS_PER_SEC / elapsed * 100.0;
        let us_per_delivery = if delivered > 0 {
            (c1 - c0) as f64 / TICKS_PER_SEC * 1e6 / delivered as f64
        } else {
            f64::NAN
        };
        println!(
            "server: CPU {cpu:.1}% of one core, {us_per_delivery:.2} µs CPU per delivered message, RSS {:.1} → {:.1} MB",
            r0 as f64 / 1024.0,
            r1 as f64 / 1024.0
        );
    }
    for t in tasks {
        t.abort();
    }
}

#[allow(clippy::too_many_arguments)]
async fn client(
    args: Args,
    url: String,
    room: usize,
    stats: Arc<Stats>,
    epoch: Instant,
    joined: Arc<Barrier>,
    start: Arc<Barrier>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut ws = handshake(&url).await;
    let room_name = format!("load-room-{room}");
    ws.send(Message::text(format!("42[\"join-room\",\"{room_name}\"]")))
        .await
        .expect("join");
    // Wait until this client sees the whole room.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                ws.send(Message::text("3")).await.expect("pong")
            }
            Some(Ok(Message::Text(t))) if t.contains("room-user-change") => {
                if t.matches(',').count() + 1 >= args.clients || args.clients == 1 {
                    break;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("join failed: {other:?}"),
        }
    }
    joined.wait().await;
    let (mut tx, mut rx) = ws.split();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let st = stats.clone();
    let reader_stop = stop.clone();
    let reader = tokio::spawn(async move {
        let mut expect_binary = 0u8;
        let mut samples: Vec<u32> = Vec::new();
        let stopped = reader_stop.notified();
        tokio::pin!(stopped);
        loop {
            let msg = tokio::select! {
                _ = &mut stopped => break,
                msg = rx.next() => match msg { Some(Ok(m)) => m, _ => break },
            };
            match msg {
                Message::Text(t) => {
                    if t.as_str() == "2" {
                        let _ = pong_tx.send(());
                    } else if t.starts_with("452-[\"client-broadcast\"") {
                        expect_binary = 2;
                    }
                }
                Message::Binary(b) if expect_binary > 0 => {
                    if expect_binary == 2 {
                        st.delivered.fetch_add(1, Ordering::Relaxed);
                        if st.measuring.load(Ordering::Relaxed) && b.len() >= 8 {
                            let sent = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
                            let now = epoch.elapsed().as_nanos() as u64;
                            samples.push((now.saturating_sub(sent) / 1000) as u32);
                        }
                    }
                    expect_binary -= 1;
                }
                _ => {}
            }
        }
        st.latencies_us.lock().await.extend_from_slice(&samples);
    });
    start.wait().await;
    let header = Message::text(format!(
        "452-[\"{}\",\"{room_name}\",{{\"_placeholder\":true,\"num\":0}},{{\"_placeholder\":true,\"num\":1}}]",
        if args.volatile {
            "server-volatile-broadcast"
        } else {
            "server-broadcast"
        }
    ));
    let iv = Bytes::from(vec![7u8; 12]);
    let mut body = vec![0u8; args.size.max(8)];
    // Spread senders over the interval so the load is smooth, not synchronized bursts.
    let period = Duration::from_secs_f64(1.0 / args.rate);
    tokio::time::sleep(period.mul_f64(rand_fraction(room))).await;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            Some(()) = pong_rx.recv() => { let _ = tx.send(Message::text("3")).await; }
            _ = tick.tick() => {
                let now = epoch.elapsed().as_nanos() as u64;
                body[..8].copy_from_slice(&now.to_le_bytes());
                let _ = tx.feed(header.clone()).await;
                let _ = tx.feed(Message::Binary(Bytes::copy_from_slice(&body))).await;
                if tx.send(Message::Binary(iv.clone())).await.is_err() { break; }
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let _ = reader.await;
}

/// A cheap spread in [0, 1) without a random number crate: the sub-second clock.
fn rand_fraction(salt: usize) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    ((nanos as usize ^ salt.wrapping_mul(2654435761)) % 1000) as f64 / 1000.0
}

async fn idle(args: &Args, url: &str, n: usize) {
    let pid = args.pid.expect("--idle needs --pid");
    let rss0 = proc_rss_kb(pid);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = handshake(url).await;
        let pinger = tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if matches!(&m, Message::Text(t) if t.as_str() == "2")
                    && ws.send(Message::text("3")).await.is_err()
                {
                    break;
                }
            }
        });
        conns.push(pinger);
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let rss1 = proc_rss_kb(pid);
    println!(
        "idle: {n} connections, server RSS {:.1} → {:.1} MB, {:.2} kB per connection",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        (rss1 as f64 - rss0 as f64) / n as f64
    );
    for c in conns {
        c.abort();
    }
}
