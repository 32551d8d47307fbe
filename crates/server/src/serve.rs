//! `convene serve` and `convene whiteboard`: build every subsystem, serve, and drain on the first signal.

use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;

use crate::{
    config::Config,
    http::{self, Limits, Ops},
    metrics::{HttpMetrics, ProcessCollector},
    shutdown::{self, Lifecycle},
};

/// Which subsystems a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything: the meeting server.
    Full,
    /// Only the whiteboard relay (plus health and metrics).
    WhiteboardOnly,
}

/// Runs until the first signal has drained the server. Start-up problems are returned as errors.
pub async fn run(config: Config, mode: Mode) -> Result<(), crate::Error> {
    let signals = shutdown::Signals::install()?;
    let listener = http::bind(config.server.listen).await?;
    let lifecycle = Lifecycle::new();
    let server = start(config, mode, listener, lifecycle.clone()).await?;
    crate::sd_notify::ready(&format!("serving http on {}", server.addr));
    signals.wait().await;
    crate::sd_notify::stopping("draining connections");
    server.stop().await;
    Ok(())
}

/// A started server: what tests and `run` hold on to.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub lifecycle: Lifecycle,
    /// Mints TURN credentials for participants (`None` when `turn.mode = "off"`).
    pub turn: Option<crate::turn::TurnService>,
    drain_timeout: std::time::Duration,
    relay: convene_whiteboard::Relay,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Builds every subsystem and starts serving on `listener`. Tests call this with a port-0 listener.
pub async fn start(
    config: Config,
    mode: Mode,
    listener: tokio::net::TcpListener,
    lifecycle: Lifecycle,
) -> Result<Running, crate::Error> {
    let addr = listener
        .local_addr()
        .map_err(|e| crate::Error::Startup(format!("no local address: {e}")))?;
    let mut registry = Registry::with_prefix("convene");
    registry.register_collector(Box::new(ProcessCollector::new()));
    let http_metrics = HttpMetrics::register(registry.sub_registry_with_prefix("http"));

    let relay = convene_whiteboard::Relay::new(
        config.whiteboard.clone(),
        registry.sub_registry_with_prefix("whiteboard"),
    );
    tracing::debug!(?mode, "starting subsystems");
    let mut subsystems = Router::new().merge(relay.router());
    // TURN only serves media, so a whiteboard-only process runs none.
    let mut turn = None;
    if mode == Mode::Full {
        // A server asked for any free HTTP port (tests, trials) takes any free media port too,
        // so several can run side by side; the log and the candidates carry the real one.
        let mut media_config = config.media.clone();
        if config.server.listen.port() == 0 {
            media_config.port = 0;
            media_config.tcp_port = None;
        }
        let media = crate::media::start(
            &media_config,
            registry.sub_registry_with_prefix("media"),
            lifecycle.shutdown.clone(),
            &lifecycle.tasks,
        )
        .await?;
        // The media UDP port is the only peer the embedded TURN relay may reach. TURN starts before
        // signaling, so the first `welcome` already offers it.
        let media_port = media.local_addr().port();
        let https_port = (config.tls.mode != crate::tls::Mode::Off).then_some(addr.port());
        turn = crate::turn::start(
            &config.turn,
            media_port,
            https_port,
            registry.sub_registry_with_prefix("turn"),
            &lifecycle,
        )
        .await?;
        let recordings = crate::record::Recordings::new(
            config.recording.clone(),
            registry.sub_registry_with_prefix("record"),
            lifecycle.tasks.clone(),
            lifecycle.shutdown.clone(),
        );
        let recording = crate::room::RecordingLink::new(recordings, media.clone())
            .with_whiteboard(relay.taps());
        let signal = crate::signal::Signal::new(
            &config.conference,
            &config.auth,
            registry.sub_registry_with_prefix("conference"),
            crate::room::MediaLink::new(media),
            recording,
            lifecycle.tasks.clone(),
            lifecycle.shutdown.clone(),
        )?
        .with_turn(turn.clone());
        subsystems = subsystems.merge(signal.router()).merge(crate::api::router(
            signal.rooms().clone(),
            &config.auth.admin_token,
        ));
        // The web app is the fallback: every other route wins over its `/<room>` pages.
        subsystems = subsystems.merge(crate::assets::router(&config.ui));
    }

    let ops = Ops {
        lifecycle: lifecycle.clone(),
        registry: Arc::new(registry),
        http_metrics,
    };
    let limits = Limits {
        request_timeout: config.server.request_timeout,
        max_request_body: config.server.max_request_body,
    };
    let app = http::app(ops, limits, subsystems);
    let https = crate::tls::start(&config.tls, addr, &lifecycle).await?;
    let proxy = crate::tls::ProxyPolicy {
        behind_proxy: config.tls.behind_proxy,
        trusted: config.tls.trusted_proxies.clone(),
        tls: https.is_some(),
    };
    let scheme = if https.is_some() { "https" } else { "http" };
    let turn_over_tls = turn.as_ref().and_then(|t| t.tls_streams());
    let http = tokio::spawn(http::serve(
        listener,
        app,
        lifecycle.shutdown.clone(),
        https,
        proxy,
        turn_over_tls,
    ));
    // Ready before the announcement: whoever reads "listening" (tests, supervisors) may ask /ready at once.
    lifecycle.set_ready(true);
    tracing::info!("{scheme} listening on {addr}");
    Ok(Running {
        addr,
        lifecycle,
        turn,
        drain_timeout: config.server.drain_timeout,
        relay,
        http,
    })
}

impl Running {
    /// Graceful stop: not ready, stop accepting, tell connected clients, wait up to the drain timeout.
    pub async fn stop(self) {
        let started = std::time::Instant::now();
        self.lifecycle.set_ready(false);
        self.lifecycle.shutdown.cancel();
        self.relay.close_all().await;
        let deadline = self.drain_timeout;
        let http_done = tokio::time::timeout(deadline, self.http).await.is_ok();
        let left = deadline.saturating_sub(started.elapsed());
        let tasks_done = self.lifecycle.drain(left).await;
        if http_done && tasks_done {
            tracing::info!(elapsed = ?started.elapsed(), "drained; exiting");
        } else {
            tracing::warn!(timeout = ?deadline, "drain timeout reached; exiting with connections still open");
        }
        tracing::info!("final process state: {}", crate::metrics::process_summary());
    }
}
