//! Excalidraw collab relay: a socket.io server wire-compatible with excalidraw-room and
//! Jitsi's excalidraw-backend, served at `/socket.io/`.
//!
//! The relay knows room membership and nothing else: payloads are end-to-end encrypted by the
//! clients and relayed as opaque binary attachments. Unlike the reference servers it refuses
//! broadcasts into rooms the sender has not joined (except the sender's own follow room),
//! limits users per room and messages per connection, and exports correct metrics.

mod config;
mod metrics;
mod rate;
mod rooms;
mod sio;

use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use socketioxide::SocketIo;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::Config;

/// The relay: socket.io service, membership table and metrics.
pub struct Relay {
    io: SocketIo,
    router: Router,
}

impl Relay {
    /// Registers metrics under registry (caller passes registry.sub_registry_with_prefix("whiteboard")).
    pub fn new(config: Config, registry: &mut Registry) -> Relay {
        let metrics = metrics::Metrics::new(registry);
        let mut builder = socketioxide::SocketIo::builder()
            .ping_interval(config.ping_interval)
            .ping_timeout(config.ping_timeout)
            .max_payload(config.max_message_size as u64)
            .ws_max_message_size(config.max_message_size)
            .ws_max_frame_size(config.max_message_size);
        if !config.allow_polling {
            builder = builder.transports([socketioxide::TransportType::Websocket]);
        }
        let (svc, io) = builder.build_svc();
        let cors = if config.cors_origin == "*" {
            CorsLayer::new().allow_origin(AllowOrigin::any())
        } else {
            match config.cors_origin.parse() {
                Ok(origin) => CorsLayer::new().allow_origin(AllowOrigin::exact(origin)),
                Err(_) => CorsLayer::new(),
            }
        };
        let cors = cors
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                axum::http::header::CONTENT_TYPE,
                axum::http::header::AUTHORIZATION,
            ]);
        sio::register(&io, Arc::new(sio::Shared::new(config, metrics)));
        let router = Router::new()
            .route_service("/socket.io/", svc.clone())
            .route_service("/socket.io", svc)
            .layer(cors);
        Relay { io, router }
    }

    /// An axum Router that answers on /socket.io/ (merged into the main app by the server).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Disconnects every socket (called on graceful shutdown).
    pub async fn close_all(&self) {
        self.io.close().await;
    }
}
