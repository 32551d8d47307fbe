//! The media loop: reads datagrams, runs timers, executes commands, and sends what the core
//! produces. It owns the clock: every `now` the core sees comes from here.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, IoSliceMut};
use std::time::{Duration, Instant};

use convene_media::str0m::net::Protocol;
use convene_media::{MediaError, Output, Sfu, SfuConfig};
use convene_proto::ClientMessage;
use quinn_udp::RecvMeta;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batch::SendBatch;
use super::metrics::Metrics;
use super::socket::MediaSocket;
use super::tap::Taps;
use super::tcp::TcpMedia;
use super::{Command, MediaEvent};

/// Receive buffers per read call, and most read calls before the loop looks at other work.
const BATCH: usize = 16;
const MAX_READS: usize = 64;
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// A participant's events channel, with what did not fit into it yet (signaling must not be
/// lost, and the loop must not wait for a slow WebSocket).
struct Listener {
    tx: mpsc::Sender<MediaEvent>,
    backlog: VecDeque<MediaEvent>,
}

impl Listener {
    fn deliver(&mut self, event: MediaEvent) {
        self.backlog.push_back(event);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }
}

pub(crate) async fn run(
    config: SfuConfig,
    socket: MediaSocket,
    mut tcp: TcpMedia,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
    mut metrics: Metrics,
) {
    let mut sfu = Sfu::new(config, Instant::now());
    let mut listeners: HashMap<String, Listener> = HashMap::new();
    let mut taps = Taps::default();
    // With GRO one buffer carries several datagrams of up to 1500 bytes each.
    let buf_len = (socket.gro_segments().max(1) * 1500).max(2048);
    let mut storage = vec![vec![0u8; buf_len]; BATCH];
    let mut meta = [RecvMeta::default(); BATCH];
    let mut metrics_at = Instant::now();
    let mut batch = SendBatch::default();

    loop {
        taps.service(&mut sfu, Instant::now());
        flush(
            &mut sfu,
            &socket,
            &mut tcp,
            &mut batch,
            &mut listeners,
            &mut taps,
        )
        .await;
        for l in listeners.values_mut() {
            l.flush();
        }
        let now = Instant::now();
        let wake = sfu
            .poll_timeout()
            .map_or(metrics_at, |t| t.min(metrics_at))
            .max(now);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            cmd = commands.recv() => match cmd {
                Some(cmd) => command(&mut sfu, &mut listeners, &mut taps, cmd),
                None => break,
            },
            ready = socket.readable() => {
                if ready.is_ok() {
                    read(&mut sfu, &socket, &mut storage, &mut meta);
                }
            }
            event = tcp.next() => tcp.handle(&mut sfu, event),
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        if sfu.poll_timeout().is_some_and(|t| t <= now) {
            sfu.handle_timeout(now);
        }
        if now >= metrics_at {
            metrics.update(&mut sfu, batch.calls());
            metrics_at = now + METRICS_EVERY;
        }
    }

    // Close every session so browsers hear it (DTLS close_notify) instead of timing out.
    let now = Instant::now();
    let participants: Vec<String> = listeners.keys().cloned().collect();
    for p in participants {
        sfu.leave(now, &p);
    }
    flush(
        &mut sfu,
        &socket,
        &mut tcp,
        &mut batch,
        &mut listeners,
        &mut taps,
    )
    .await;
    metrics.update(&mut sfu, batch.calls());
    tracing::debug!("media loop stopped");
}

fn command(
    sfu: &mut Sfu,
    listeners: &mut HashMap<String, Listener>,
    taps: &mut Taps,
    cmd: Command,
) {
    let now = Instant::now();
    match cmd {
        Command::Join {
            room,
            participant,
            events,
            reply,
        } => {
            let result = sfu.join(now, &room, &participant);
            if result.is_ok() {
                listeners.insert(
                    participant,
                    Listener {
                        tx: events,
                        backlog: VecDeque::new(),
                    },
                );
            }
            let _ = reply.send(result);
        }
        Command::Signal {
            participant,
            msg,
            reply,
        } => {
            let result = match msg {
                ClientMessage::SdpOffer { sdp, sources } => {
                    sfu.client_offer(now, &participant, &sdp, sources)
                }
                ClientMessage::SdpAnswer { sdp } => sfu.client_answer(now, &participant, &sdp),
                ClientMessage::TileSizes { tiles } => sfu.tile_sizes(now, &participant, &tiles),
                ClientMessage::SetLastN { last_n } => sfu.set_last_n(now, &participant, last_n),
                _ => Err(MediaError::NotMedia),
            };
            if let Err(e) = &result {
                tracing::debug!(%participant, error = %e, "media signaling rejected");
            }
            let _ = reply.send(result);
        }
        Command::Leave { participant, reply } => {
            sfu.leave(now, &participant);
            listeners.remove(&participant);
            let _ = reply.send(());
        }
        Command::SubscribeRoom { room, sink } => taps.subscribe(sfu, now, &room, sink),
    }
}

fn read(sfu: &mut Sfu, socket: &MediaSocket, storage: &mut [Vec<u8>], meta: &mut [RecvMeta]) {
    let mut bufs: Vec<IoSliceMut<'_>> = storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
    for _ in 0..MAX_READS {
        let n = match socket.try_recv(&mut bufs, meta) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                // ICMP errors surface here (e.g. a browser that went away): not the loop's end.
                tracing::debug!(error = %e, "media socket receive error");
                return;
            }
        };
        let now = Instant::now();
        for (m, buf) in meta.iter().zip(bufs.iter()).take(n) {
            let Some(destination) = sfu.candidate_for(m.dst_ip) else {
                continue;
            };
            let stride = m.stride.max(1);
            for datagram in buf[..m.len].chunks(stride) {
                sfu.handle_datagram(now, m.addr, destination, datagram);
            }
        }
    }
}

/// Executes the core's outputs. Datagrams are collected and sent together at the end (see
/// `batch`): one pass of the core writes a frame to every subscriber, and the runs of packets to
/// each of them leave as one send apiece.
async fn flush(
    sfu: &mut Sfu,
    socket: &MediaSocket,
    tcp: &mut TcpMedia,
    batch: &mut SendBatch,
    listeners: &mut HashMap<String, Listener>,
    taps: &mut Taps,
) {
    while let Some(out) = sfu.poll_output() {
        match out {
            Output::Transmit(t) if t.proto == Protocol::Tcp => tcp.send(t),
            Output::Transmit(t) => batch.push(t),
            Output::Signal {
                participant,
                message,
            } => {
                if let Some(l) = listeners.get_mut(&participant) {
                    l.deliver(MediaEvent::Signal(message));
                }
            }
            Output::Frame(f) => taps.frame(sfu, f),
            Output::TrackEnded { tap, track } => taps.track_ended(tap, track),
            Output::Closed {
                participant,
                reason,
            } => {
                if let Some(mut l) = listeners.remove(&participant) {
                    l.deliver(MediaEvent::Closed { reason });
                    if !l.backlog.is_empty() {
                        // The room must learn of the closure even behind a full queue.
                        tokio::spawn(async move {
                            for event in l.backlog {
                                if l.tx.send(event).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                }
            }
        }
    }
    batch.flush(socket).await;
}
