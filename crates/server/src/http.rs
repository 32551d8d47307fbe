//! The HTTP surface: health, readiness and metrics routes, limits, timeouts and request metrics around
//! the subsystem routers (signaling, whiteboard relay, web app) that `serve` merges in.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    middleware,
    response::IntoResponse,
    routing::get,
    serve::ListenerExt,
};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::{metrics::HttpMetrics, shutdown::Lifecycle};

/// What the operational routes need.
#[derive(Clone)]
pub struct Ops {
    pub lifecycle: Lifecycle,
    pub registry: Arc<Registry>,
    pub http_metrics: HttpMetrics,
}

/// Limits applied to every request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_request_body: usize,
}

/// Builds the whole app: operational routes plus `subsystems`, with limits and metrics around all of it.
pub fn app(ops: Ops, limits: Limits, subsystems: Router) -> Router {
    let operational = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready).with_state(ops.lifecycle.clone()))
        .route(
            "/metrics",
            get(crate::metrics::render).with_state(ops.registry.clone()),
        );
    operational
        .merge(subsystems)
        .layer(middleware::from_fn_with_state(
            ops.http_metrics.clone(),
            crate::metrics::track_http,
        ))
        // The limit binds body extractors (`Bytes`, `Json`): the admin API and any form. The whiteboard
        // relay reads long-polling bodies itself against `whiteboard.max_message_size`, so an operator who
        // raises that (Jitsi's backend allows 20 MB) is not overruled by this server-wide default.
        .layer(DefaultBodyLimit::max(limits.max_request_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// Liveness: the process answers HTTP.
async fn health() -> &'static str {
    "ok\n"
}

/// Readiness: 200 while serving, 503 before start-up finished and while draining.
async fn ready(State(lifecycle): State<Lifecycle>) -> impl IntoResponse {
    if lifecycle.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Binds the HTTP listener, with a message that names the address when it fails.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Bind {
            what: "HTTP",
            addr,
            source,
        })
}

/// Serves `app` until `shutdown` is cancelled, then stops accepting and finishes in-flight requests.
/// Upgraded WebSockets are not waited for here: their handlers watch `shutdown` themselves.
/// With `https`, connections are TLS; `proxy` decides whose `X-Forwarded-*` headers are believed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    https: Option<crate::tls::Https>,
    proxy: crate::tls::ProxyPolicy,
    turn_over_tls: Option<tokio::sync::mpsc::Sender<crate::turn::Accepted>>,
) -> std::io::Result<()> {
    let app = app.layer(middleware::from_fn_with_state(
        Arc::new(proxy),
        crate::tls::proxy::client_info,
    ));
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    match https {
        None => {
            // Without TCP_NODELAY small WebSocket frames wait for Nagle's algorithm: 12 ms medians instead of 0.3.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, make_service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
        Some(https) => {
            // The TLS listener sets TCP_NODELAY itself; `tap_io` is what gives axum the peer address.
            let listener = crate::tls::TlsListener::new(
                listener,
                https.server_config,
                shutdown.clone(),
                turn_over_tls,
            )?
            .tap_io(|_| {});
            axum::serve(listener, make_service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    }
}
