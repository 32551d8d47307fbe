//! HTTP long-polling transport: the handshake, GET (server → client) and POST (client → server).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::eio::{self, Frame};
use crate::http::error;
use crate::hub::{Flow, Hub};
use crate::metrics::{End, Protocol, Reject, Transport};
use crate::session::{Out, Phase, Session};

/// Opens a polling session; the response carries the open packet (and, for v3, the
/// socket.io connect and `init-room` that follow it).
pub fn handshake(hub: &Arc<Hub>, protocol: Protocol, b64: bool) -> Response {
    let (session, open) = hub.open(protocol, Transport::Polling, b64);
    let mut frames = vec![Frame::Text(open.into())];
    if protocol == Protocol::V3 {
        let mut queue = VecDeque::new();
        session.take(&mut queue);
        for out in &queue {
            out.frames(&mut frames);
        }
    }
    let heartbeat_hub = hub.clone();
    let heartbeat_session = session.clone();
    tokio::spawn(async move { heartbeat_hub.heartbeat(&heartbeat_session).await });
    respond(&frames, protocol, b64)
}

fn respond(frames: &[Frame], protocol: Protocol, b64: bool) -> Response {
    let (body, content_type) = eio::encode_payload(frames, protocol, b64);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Clears the "a GET is waiting" flag however the request ends (also when the client goes away).
struct PollGuard<'a>(&'a Session);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.state().polling = false;
    }
}

pub async fn get(hub: &Hub, session: Arc<Session>) -> Response {
    {
        let mut state = session.state();
        if state.phase == Phase::Websocket {
            return error(StatusCode::BAD_REQUEST, 3, "Bad request");
        }
        if state.polling {
            drop(state);
            // Two concurrent polls break the ordering guarantee; engine.io closes the session.
            hub.metrics.reject(Reject::Malformed);
            hub.close(&session, End::Malformed);
            return error(StatusCode::BAD_REQUEST, 3, "Bad request");
        }
        state.polling = true;
    }
    let _guard = PollGuard(&session);
    let mut queue = VecDeque::new();
    loop {
        let notified = session.notified();
        session.take(&mut queue);
        if !queue.is_empty() {
            break;
        }
        if session.state().phase == Phase::Upgrading {
            return respond(&[Frame::Text("6".into())], session.protocol, session.b64);
        }
        // The heartbeat queues a ping every ping_interval, and closing queues Out::Close,
        // so this wait always ends.
        notified.await;
    }
    let mut frames = Vec::with_capacity(queue.len());
    for out in &queue {
        if matches!(out, Out::Close) {
            if frames.is_empty() {
                out.frames(&mut frames);
                hub.forget(&session);
            } else {
                // Clients handle a payload's messages on a later tick but a close at once, so
                // a close next to `room-full` would swallow it: the close goes in the next poll.
                session.requeue_close();
            }
            break;
        }
        out.frames(&mut frames);
    }
    respond(&frames, session.protocol, session.b64)
}

pub async fn post(hub: &Hub, session: Arc<Session>, binary: bool, body: Body) -> Response {
    // A little framing overhead on top of the largest message.
    let limit = hub.config.max_message_size.saturating_add(1024);
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            tracing::debug!(sid = %session.sid, "polling body over max_message_size: disconnecting");
            hub.metrics.reject(Reject::Oversized);
            hub.close(&session, End::Oversized);
            return error(StatusCode::PAYLOAD_TOO_LARGE, 3, "Bad request");
        }
    };
    let packets = match eio::decode_payload(body, binary, session.protocol) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(sid = %session.sid, error = %e, "malformed polling payload");
            hub.metrics.reject(Reject::Malformed);
            hub.close(&session, End::Malformed);
            return error(StatusCode::BAD_REQUEST, 3, "Bad request");
        }
    };
    if session.is_closed() {
        return ok();
    }
    let mut slot = session.reader.lock().unwrap_or_else(|p| p.into_inner());
    let Some(reader) = slot.as_mut() else {
        // The session moved to WebSocket; late POSTs are ignored.
        return ok();
    };
    for packet in packets {
        if hub.receive(&session, reader, packet) == Flow::Closed {
            break;
        }
    }
    ok()
}

fn ok() -> Response {
    ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
}
