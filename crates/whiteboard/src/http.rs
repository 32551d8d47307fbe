//! The `/socket.io/` endpoint: validates the Engine.IO query and routes to a transport.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::hub::Hub;
use crate::metrics::Protocol;
use crate::{polling, upgrade, ws};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Deserialize)]
struct EioQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
    b64: Option<String>,
}

/// An Engine.IO error body, as the reference servers send it.
pub fn error(status: StatusCode, code: u8, message: &str) -> Response {
    let body = format!("{{\"code\":{code},\"message\":\"{message}\"}}");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub fn router(hub: Arc<Hub>) -> Router {
    let origin = if hub.config.cors_origin == "*" {
        // Echoing the origin (rather than `*`) also serves socket.io 2 clients that send
        // credentials, as engine.io 3 servers did.
        AllowOrigin::mirror_request()
    } else {
        match hub.config.cors_origin.parse() {
            Ok(origin) => AllowOrigin::exact(origin),
            Err(_) => AllowOrigin::list([]),
        }
    };
    let cors = CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    Router::new()
        .route("/socket.io/", any(handle))
        .route("/socket.io", any(handle))
        .with_state(hub)
        .layer(cors)
}

async fn handle(State(hub): State<Arc<Hub>>, Query(q): Query<EioQuery>, req: Request) -> Response {
    let protocol = match q.eio.as_deref() {
        Some("4") => Protocol::V4,
        Some("3") => Protocol::V3,
        _ => return error(StatusCode::BAD_REQUEST, 5, "Unsupported protocol version"),
    };
    let websocket = match q.transport.as_deref() {
        Some("websocket") => true,
        Some("polling") if hub.config.allow_polling => false,
        _ => return error(StatusCode::BAD_REQUEST, 0, "Transport unknown"),
    };
    let session = match q.sid.as_deref() {
        Some(sid) => match hub.session(sid) {
            Some(s) if s.protocol == protocol => Some(s),
            _ => return error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        None => None,
    };
    if session.is_none() && hub.is_closing() {
        return error(StatusCode::SERVICE_UNAVAILABLE, 4, "Forbidden");
    }
    if websocket {
        if req.method() != Method::GET {
            return error(StatusCode::BAD_REQUEST, 2, "Bad handshake method");
        }
        let limit = hub.config.max_message_size;
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
            // A small read buffer keeps idle connections cheap (reads go through upgrade::LazyBuf).
            .read_buffer_size(512);
        let response = match session {
            None => upgrade::upgrade(req, config, move |socket| {
                ws::serve_new(hub, socket, protocol)
            }),
            Some(session) => upgrade::upgrade(req, config, move |socket| {
                ws::serve_upgrade(hub, socket, session)
            }),
        };
        return response.unwrap_or_else(|| error(StatusCode::BAD_REQUEST, 3, "Bad request"));
    }
    match (req.method().clone(), session) {
        (Method::GET, None) => polling::handshake(&hub, protocol, q.b64.is_some()),
        (Method::GET, Some(session)) => polling::get(&hub, session).await,
        (Method::POST, Some(session)) => {
            let binary = req
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
            polling::post(&hub, session, binary, req.into_body()).await
        }
        _ => error(StatusCode::BAD_REQUEST, 2, "Bad handshake method"),
    }
}
