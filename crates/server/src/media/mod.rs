//! The media IO loop: one UDP socket for every participant, the clock, and the SFU core it feeds;
//! [`MediaHandle`] is how signaling talks to it.
//!
//! The loop is a single task that owns the socket and the `convene_media::Sfu`. Commands from
//! signaling arrive on a channel and are answered on oneshots; signaling messages and closures
//! for a participant go to the events channel it registered with.

mod batch;
mod candidates;
mod metrics;
mod run;
mod socket;
mod tap;
mod tcp;

use std::net::SocketAddr;

use convene_proto::ClientMessage;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use convene_media::MediaError;
pub use convene_media::{Config, Sfu};

/// What the media loop tells signaling about one participant.
pub use crate::room::MediaEvent;

pub(crate) enum Command {
    Join {
        room: String,
        participant: String,
        events: mpsc::Sender<MediaEvent>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Signal {
        participant: String,
        msg: ClientMessage,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Leave {
        participant: String,
        reply: oneshot::Sender<()>,
    },
    SubscribeRoom {
        room: String,
        sink: crate::record::FrameSink,
    },
}

/// Handle to the media loop. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaHandle {
    tx: mpsc::Sender<Command>,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
    tcp_local: Option<SocketAddr>,
}

/// The loop is gone (server shutting down).
fn stopped() -> MediaError {
    MediaError::Closed
}

impl MediaHandle {
    /// Register a participant's media session. Events for it go to `events`.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<(), MediaError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Join {
            room: room.to_owned(),
            participant: participant.to_owned(),
            events,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// A client's `sdp_offer` / `sdp_answer` message. An error is for the client
    /// (`media_error` with `code()`); the session is unchanged by it.
    pub async fn signal(&self, participant: &str, msg: ClientMessage) -> Result<(), MediaError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Signal {
            participant: participant.to_owned(),
            msg,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Participant left (or was kicked): remove its session and its tracks from everyone.
    pub async fn leave(&self, participant: &str) {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Leave {
            participant: participant.to_owned(),
            reply,
        };
        if self.tx.send(cmd).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Taps `room` for a recording: its tracks' frames go to `sink` until the recording ends
    /// (the sink reports itself closed). False if the media loop is gone.
    pub async fn subscribe_room(&self, room: &str, sink: crate::record::FrameSink) -> bool {
        let cmd = Command::SubscribeRoom {
            room: room.to_owned(),
            sink,
        };
        self.tx.send(cmd).await.is_ok()
    }

    /// The address the media socket is bound to (the real port when configured as 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The candidate addresses announced to browsers.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// The address the ICE-TCP listener is bound to, when ICE-TCP is on.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp_local
    }
}

/// Binds the media port, resolves the candidates and starts the loop on `tasks`. The loop stops
/// when `shutdown` is cancelled, closing every session (DTLS close_notify) on the way out.
pub async fn start(
    config: &Config,
    registry: &mut Registry,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<MediaHandle, crate::Error> {
    let bind = SocketAddr::new(config.bind, config.port);
    let socket = socket::MediaSocket::bind(bind).map_err(|source| crate::Error::Bind {
        what: "media (UDP)",
        addr: bind,
        source,
    })?;
    let local = socket.local_addr();
    let candidates = candidates::resolve(&config.candidates, config.bind, local.port())
        .await
        .map_err(crate::Error::Startup)?;
    tracing::info!(%local, ?candidates, "media listening");
    // ICE-TCP: the same addresses as the UDP candidates, on the TCP port.
    let mut tcp_candidates = Vec::new();
    let mut tcp_local = None;
    let mut tcp = tcp::TcpMedia::off();
    if config.tcp {
        if config.tcp_max_connections == 0 {
            return Err(crate::Error::Startup(
                "[media] tcp_max_connections must be at least 1 (or set tcp = false)".into(),
            ));
        }
        let listener = bind_tcp(config, local.port()).await?;
        let bound = listener.local_addr().map_err(|source| crate::Error::Bind {
            what: "media (TCP)",
            addr: local,
            source,
        })?;
        tcp_candidates = candidates
            .iter()
            .map(|c| SocketAddr::new(c.ip(), bound.port()))
            .collect();
        tracing::info!(local = %bound, candidates = ?tcp_candidates, "media ICE-TCP listening");
        let limits = tcp::Limits {
            max_connections: config.tcp_max_connections,
            idle: tcp::IDLE,
            max_frame: tcp::MAX_FRAME,
        };
        let metrics = tcp::TcpMetrics::register(registry);
        tcp = tcp::listen(listener, limits, metrics, shutdown.clone(), tasks);
        tcp_local = Some(bound);
    }
    let sfu_config = convene_media::SfuConfig {
        candidates: candidates.clone(),
        tcp_candidates,
        connect_timeout: config.connect_timeout,
        stats_interval: config.stats_interval,
        max_sessions: config.max_sessions,
        last_n: config.last_n,
        bandwidth_estimation: config.bandwidth_estimation,
    };
    let metrics = metrics::Metrics::register(registry);
    let (tx, rx) = mpsc::channel(1024);
    tasks.spawn(run::run(sfu_config, socket, tcp, rx, shutdown, metrics));
    Ok(MediaHandle {
        tx,
        local,
        candidates,
        tcp_local,
    })
}

/// Binds the ICE-TCP listener: on `tcp_port`, else on the number the UDP socket got (`udp_port`),
/// so one number serves both protocols even when the UDP port was picked as any free one; in that
/// case, should the TCP twin be taken, any free TCP port does.
async fn bind_tcp(config: &Config, udp_port: u16) -> Result<tokio::net::TcpListener, crate::Error> {
    let addr = SocketAddr::new(config.bind, config.tcp_port.unwrap_or(udp_port));
    let result = match tokio::net::TcpListener::bind(addr).await {
        Err(_) if config.tcp_port.is_none() && config.port == 0 => {
            tokio::net::TcpListener::bind(SocketAddr::new(config.bind, 0)).await
        }
        r => r,
    };
    result.map_err(|source| crate::Error::Bind {
        what: "media (TCP)",
        addr,
        source,
    })
}
