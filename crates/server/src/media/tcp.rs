//! ICE over TCP (RFC 6544) for clients whose UDP is blocked: a listener for the passive TCP
//! candidates, one task per connection that cuts the byte stream into RFC 4571 frames (a 2-byte
//! length, then the packet), and [`TcpMedia`], the media loop's side, which hands each frame to
//! the core as a datagram with `Protocol::Tcp` and writes `Protocol::Tcp` transmits back to the
//! connection they are for.
//!
//! A connection is closed, and only that one, when its first frame is not a STUN request with a
//! USERNAME (RFC 6544: the connectivity check comes first), when a frame is longer than any
//! datagram needs, when no complete frame arrives for `idle` (a stalled or half-sent frame
//! included), when the peer does not read what is sent to it, or when the listener is full.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_media::Sfu;
use convene_media::str0m::net::{Protocol, Transmit};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest frame accepted: STUN, DTLS, RTP and RTCP never need more than a UDP datagram.
pub const MAX_FRAME: usize = 1500;
/// No complete frame for this long closes a connection. Browsers send ICE consent checks every
/// few seconds and str0m gives up on a silent client after 15 s, so a live connection is never
/// this quiet; a slowloris client that trickles a frame is.
pub const IDLE: Duration = Duration::from_secs(30);
/// A peer that does not take what is written to it for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames queued toward one connection. Beyond it frames are dropped, as a full UDP send buffer
/// would drop them: media survives loss, a queue that grows without bound does not.
const OUT_QUEUE: usize = 512;
/// Frames queued from all connections toward the media loop. When full, connection tasks wait,
/// and TCP flow control slows the clients down.
const IN_QUEUE: usize = 4096;
/// Frames the loop takes from the queue before it looks at other work.
const MAX_FRAMES_PER_TURN: usize = 256;
/// Most bytes gathered into one write: the queued frames of a connection go out together.
const WRITE_BATCH: usize = 64 * 1024;

/// Limits of the listener and its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub idle: Duration,
    pub max_frame: usize,
}

/// What a connection task tells the media loop.
#[derive(Debug)]
pub enum Inbound {
    /// A connection was accepted on local address `local`; `out` takes frames for it.
    Opened {
        peer: SocketAddr,
        local: SocketAddr,
        out: mpsc::Sender<Vec<u8>>,
    },
    /// One complete frame, without its length prefix.
    Frame {
        peer: SocketAddr,
        local: SocketAddr,
        data: Vec<u8>,
    },
    /// The connection is gone.
    Closed { peer: SocketAddr, local: SocketAddr },
}

/// Why a connection ended (the `reason` label of `convene_media_tcp_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed it, or the media loop stopped.
    Closed,
    /// Not STUN first, or a frame longer than `max_frame`.
    BadInput,
    /// No complete frame within `idle`.
    Idle,
    /// A read or write failed, or the peer did not read.
    Error,
    /// The listener was full.
    Full,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::BadInput => "bad_input",
            End::Idle => "idle",
            End::Error => "error",
            End::Full => "full",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// `convene_media_tcp_*`: connections open now, accepted, and closed by reason.
#[derive(Clone, Default)]
pub struct TcpMetrics {
    open: Gauge,
    accepted: Counter,
    closed: Family<ReasonLabel, Counter>,
}

impl TcpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "tcp_connections",
            "ICE-TCP media connections open now",
            m.open.clone(),
        );
        registry.register(
            "tcp_connections_accepted",
            "ICE-TCP media connections accepted",
            m.accepted.clone(),
        );
        registry.register(
            "tcp_connections_closed",
            "ICE-TCP media connections closed, by reason (closed, bad_input, idle, error, full)",
            m.closed.clone(),
        );
        m
    }

    fn ended(&self, end: End) {
        self.closed
            .get_or_create(&ReasonLabel {
                reason: end.label(),
            })
            .inc();
    }
}

/// Starts accepting on `listener`. Connection tasks are tracked by `tasks`; the accept loop
/// stops on `shutdown`, a connection when the media loop drops its [`TcpMedia`] (after writing
/// what was queued for it, such as DTLS close_notify) or for one of the reasons above.
pub fn listen(
    listener: TcpListener,
    limits: Limits,
    metrics: TcpMetrics,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> TcpMedia {
    let (tx, rx) = mpsc::channel(IN_QUEUE);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spawner = tasks.clone();
    let m = metrics.clone();
    tasks.spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::debug!(error = %e, "media tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                m.ended(End::Full);
                tracing::debug!(%peer, "media tcp connection refused: too many connections");
                continue;
            };
            let (tx, m) = (tx.clone(), m.clone());
            spawner.spawn(async move {
                m.accepted.inc();
                m.open.inc();
                let end = connection(stream, peer, limits, tx).await;
                tracing::debug!(%peer, reason = end.label(), "media tcp connection ended");
                m.ended(end);
                m.open.dec();
                drop(permit);
            });
        }
    });
    TcpMedia {
        inbound: Some(rx),
        conns: HashMap::new(),
        by_conn: HashMap::new(),
    }
}

/// Runs one connection until it ends; the loop hears `Opened` before any frame and `Closed`
/// at the end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    inbound: mpsc::Sender<Inbound>,
) -> End {
    let Ok(local) = stream.local_addr() else {
        return End::Error;
    };
    // Media is latency-sensitive and already packetized: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let opened = Inbound::Opened {
        peer,
        local,
        out: out_tx,
    };
    if inbound.send(opened).await.is_err() {
        return End::Closed;
    }
    let end = serve(stream, peer, local, limits, &inbound, out_rx).await;
    let _ = inbound.send(Inbound::Closed { peer, local }).await;
    end
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    limits: Limits,
    inbound: &mpsc::Sender<Inbound>,
    mut out: mpsc::Receiver<Vec<u8>>,
) -> End {
    let (mut reader, mut writer) = stream.split();
    // Room for one largest frame with its prefix plus what one read brings beyond it.
    let mut buf = vec![0u8; 2 * (2 + limits.max_frame)];
    let mut filled = 0;
    let mut first = true;
    let mut deadline = tokio::time::Instant::now() + limits.idle;
    let mut wbuf = Vec::with_capacity(WRITE_BATCH);
    loop {
        tokio::select! {
            // Reads are cancel-safe: bytes read stay in `buf` across turns.
            r = reader.read(&mut buf[filled..]) => {
                let n = match r {
                    Ok(0) => return End::Closed,
                    Ok(n) => n,
                    Err(_) => return End::Error,
                };
                filled += n;
                let mut at = 0;
                while let Some(frame) = next_frame(&buf[at..filled], limits.max_frame) {
                    let frame = match frame {
                        Ok(f) => f,
                        Err(()) => return End::BadInput,
                    };
                    if first && convene_media::stun::local_ufrag(frame).is_none() {
                        return End::BadInput;
                    }
                    first = false;
                    at += 2 + frame.len();
                    deadline = tokio::time::Instant::now() + limits.idle;
                    let data = frame.to_vec();
                    if inbound.send(Inbound::Frame { peer, local, data }).await.is_err() {
                        return End::Closed;
                    }
                }
                buf.copy_within(at..filled, 0);
                filled -= at;
            }
            frame = out.recv() => {
                let Some(frame) = frame else {
                    // The media loop is gone; nothing more will be written.
                    let _ = writer.shutdown().await;
                    return End::Closed;
                };
                wbuf.clear();
                push_frame(&mut wbuf, &frame);
                while wbuf.len() < WRITE_BATCH {
                    match out.try_recv() {
                        Ok(f) => push_frame(&mut wbuf, &f),
                        Err(_) => break,
                    }
                }
                match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&wbuf)).await {
                    Ok(Ok(())) => {}
                    _ => return End::Error,
                }
            }
            _ = tokio::time::sleep_until(deadline) => return End::Idle,
        }
    }
}

/// The first frame in `buf`: `None` while incomplete, `Err` when its length is zero or above
/// `max`.
fn next_frame(buf: &[u8], max: usize) -> Option<Result<&[u8], ()>> {
    let prefix = buf.get(..2)?;
    let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    if len == 0 || len > max {
        return Some(Err(()));
    }
    buf.get(2..2 + len).map(Ok)
}

fn push_frame(out: &mut Vec<u8>, frame: &[u8]) {
    // Frames come from the core, which never makes one above 64 KiB; a longer one would be a
    // bug, and cutting it would corrupt the stream, so it is not sent.
    let Ok(len) = u16::try_from(frame.len()) else {
        return;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
}

/// The media loop's side of ICE-TCP: frames in, transmits out. Without a listener (ICE-TCP off)
/// it never yields anything.
pub struct TcpMedia {
    inbound: Option<mpsc::Receiver<Inbound>>,
    /// Open connections by (candidate they reached, peer): the key of a `Protocol::Tcp` transmit
    /// (its `source` is the candidate, its `destination` the peer).
    conns: HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>,
    /// Candidate of each connection by (local address, peer), to look up frames.
    by_conn: HashMap<(SocketAddr, SocketAddr), SocketAddr>,
}

impl TcpMedia {
    /// ICE-TCP is off.
    pub fn off() -> Self {
        Self {
            inbound: None,
            conns: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }

    /// Waits for the next event from a connection; never returns when ICE-TCP is off.
    pub async fn next(&mut self) -> Inbound {
        if let Some(rx) = self.inbound.as_mut()
            && let Some(event) = rx.recv().await
        {
            return event;
        }
        std::future::pending().await
    }

    /// Handles `first` and whatever else is queued (up to a bound), feeding frames to `sfu`.
    pub fn handle(&mut self, sfu: &mut Sfu, first: Inbound) {
        let now = Instant::now();
        self.one(sfu, now, first);
        for _ in 0..MAX_FRAMES_PER_TURN {
            let Some(event) = self.inbound.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                return;
            };
            self.one(sfu, now, event);
        }
    }

    fn one(&mut self, sfu: &mut Sfu, now: Instant, event: Inbound) {
        match event {
            Inbound::Opened { peer, local, out } => {
                // No candidate (cannot happen while the listener runs): dropping `out` closes it.
                if let Some(candidate) = sfu.tcp_candidate_for(local.ip()) {
                    self.by_conn.insert((local, peer), candidate);
                    self.conns.insert((candidate, peer), out);
                }
            }
            Inbound::Frame { peer, local, data } => {
                if let Some(candidate) = self.by_conn.get(&(local, peer)) {
                    sfu.handle_receive(now, Protocol::Tcp, peer, *candidate, &data);
                }
            }
            Inbound::Closed { peer, local } => {
                if let Some(candidate) = self.by_conn.remove(&(local, peer)) {
                    self.conns.remove(&(candidate, peer));
                }
            }
        }
    }

    /// Queues a `Protocol::Tcp` transmit on its connection. One that has no connection (closed
    /// meanwhile) or whose queue is full is dropped, like a lost datagram.
    pub fn send(&mut self, t: Transmit) {
        let key = (t.source, t.destination);
        let Some(out) = self.conns.get(&key) else {
            tracing::trace!(destination = %t.destination, "media tcp: no connection for transmit");
            return;
        };
        match out.try_send(t.contents.into()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::trace!(destination = %t.destination, "media tcp: send queue full");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.conns.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN binding request with a USERNAME, framed.
    fn stun_frame() -> Vec<u8> {
        let username = b"abcd:efgh";
        let mut body = vec![0x00, 0x06, 0x00, username.len() as u8];
        body.extend_from_slice(username);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        msg.extend_from_slice(&[9; 12]);
        msg.extend_from_slice(&body);
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        framed
    }

    async fn next_event(media: &mut TcpMedia) -> Inbound {
        tokio::time::timeout(Duration::from_secs(5), media.next())
            .await
            .expect("an event from the listener")
    }

    async fn closed(stream: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(limit, stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn frames_both_ways_limits_and_slowloris() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_connections: 2,
            idle: Duration::from_millis(600),
            max_frame: MAX_FRAME,
        };
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let mut media = listen(
            listener,
            limits,
            TcpMetrics::default(),
            shutdown.clone(),
            &tasks,
        );

        // A good client: its STUN frame arrives whole, split across writes.
        let mut good = TcpStream::connect(addr).await.unwrap();
        let frame = stun_frame();
        good.write_all(&frame[..3]).await.unwrap();
        let Inbound::Opened { peer, out, .. } = next_event(&mut media).await else {
            panic!("expected Opened first");
        };
        assert_eq!(peer, good.local_addr().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        good.write_all(&frame[3..]).await.unwrap();
        let Inbound::Frame { data, .. } = next_event(&mut media).await else {
            panic!("expected the frame");
        };
        assert_eq!(data, frame[2..]);
        // What the loop writes arrives framed.
        out.send(vec![1, 2, 3]).await.unwrap();
        let mut back = [0u8; 5];
        good.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [0, 3, 1, 2, 3]);

        // A slowloris client: a valid first frame, then half a frame, then nothing.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(&stun_frame()).await.unwrap();
        slow.write_all(&[0x00, 0x40, 1, 2]).await.unwrap();
        // The loop keeps each connection's sender, as `TcpMedia` does: dropping it closes.
        let mut outs = vec![out];
        let Inbound::Opened { out, .. } = next_event(&mut media).await else {
            panic!("expected Opened");
        };
        outs.push(out);
        assert!(matches!(
            next_event(&mut media).await,
            Inbound::Frame { .. }
        ));

        // Both slots are taken: a third connection is closed at once.
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(closed(&mut third, Duration::from_secs(2)).await);

        // The good client keeps sending; the slow one is cut after the idle limit, only it.
        let started = tokio::time::Instant::now();
        let mut slow_closed = false;
        while started.elapsed() < Duration::from_secs(3) {
            good.write_all(&stun_frame()).await.unwrap();
            if closed(&mut slow, Duration::from_millis(100)).await {
                slow_closed = true;
                break;
            }
        }
        assert!(slow_closed, "the stalled connection stayed open");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let mut closed_peers = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), async {
            Some(media.next().await)
        })
        .await
        {
            if let Inbound::Closed { peer, .. } = e {
                closed_peers.push(peer);
            }
        }
        assert_eq!(closed_peers, [slow.local_addr().unwrap()]);
        good.write_all(&stun_frame()).await.unwrap();
        assert!(!closed(&mut good, Duration::from_millis(200)).await);

        // A slot is free again.
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        fourth.write_all(&stun_frame()).await.unwrap();
        loop {
            if let Inbound::Opened { out, .. } = next_event(&mut media).await {
                outs.push(out);
                break;
            }
        }

        // Dropping the loop's side ends the connections; the tasks finish.
        drop(media);
        drop(outs);
        shutdown.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("connection tasks end with the loop");
        assert!(closed(&mut good, Duration::from_secs(1)).await);
    }

    #[test]
    fn frame_parsing() {
        assert_eq!(next_frame(&[0x00], 10), None);
        assert_eq!(next_frame(&[0x00, 0x02, 7], 10), None);
        assert_eq!(
            next_frame(&[0x00, 0x02, 7, 8, 9], 10),
            Some(Ok(&[7u8, 8][..]))
        );
        assert_eq!(next_frame(&[0x00, 0x0b], 10), Some(Err(())));
        assert_eq!(next_frame(&[0x00, 0x00], 10), Some(Err(())));
    }
}
