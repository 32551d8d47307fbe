//! WebSocket transport: a session that starts on WebSocket, or a polling session upgrading.
//!
//! One task per connection reads frames and writes the session's queue. Writes are fed into
//! the WebSocket buffer and flushed once per batch, so a burst of broadcasts to one client
//! costs one system call, not one per frame.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::eio::{self, Packet};
use crate::hub::{Flow, Hub};
use crate::metrics::{End, Protocol, Reject, Transport};
use crate::session::{Out, Phase, Session};
use crate::upgrade::Socket;

/// How long a probing WebSocket may take to complete the upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// A session that starts on WebSocket.
pub async fn serve_new(hub: Arc<Hub>, mut ws: Socket, protocol: Protocol) {
    let (session, open) = hub.open(protocol, Transport::Websocket, false);
    if ws.send(Message::Text(open.into())).await.is_err() {
        hub.close(&session, End::TransportError);
        return;
    }
    run(&hub, &session, ws, true).await;
}

/// A WebSocket taking over polling session `session` (`2probe`, `3probe`, `5`).
pub async fn serve_upgrade(hub: Arc<Hub>, mut ws: Socket, session: Arc<Session>) {
    let upgraded = tokio::time::timeout(UPGRADE_TIMEOUT, async {
        loop {
            let Some(Ok(msg)) = ws.next().await else {
                return false;
            };
            let Message::Text(text) = msg else { continue };
            match eio::decode_text(text, session.protocol) {
                Ok(Packet::PingProbe) => {
                    if ws
                        .send(Message::Text(Utf8Bytes::from_static("3probe")))
                        .await
                        .is_err()
                    {
                        return false;
                    }
                    session.state().phase = Phase::Upgrading;
                    // Ends the pending poll so the client can send `5`.
                    session.wake();
                }
                Ok(Packet::Upgrade) => return true,
                _ => return false,
            }
        }
    })
    .await;
    if upgraded != Ok(true) {
        // The session stays on polling; only this WebSocket goes away.
        let mut state = session.state();
        if state.phase == Phase::Upgrading {
            state.phase = Phase::Polling;
        }
        return;
    }
    {
        let mut state = session.state();
        state.phase = Phase::Websocket;
        let metrics = hub.metrics.clone();
        state.metrics.upgrade(&metrics, Transport::Websocket);
    }
    run(&hub, &session, ws, false).await;
}

async fn run(hub: &Hub, session: &Arc<Session>, mut ws: Socket, own_heartbeat: bool) {
    let mut reader = session
        .reader
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(|| hub.new_reader());
    // Sessions that began on polling keep the heartbeat task they started with.
    let heartbeat = async {
        if own_heartbeat {
            hub.heartbeat(session).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(heartbeat);
    // Made once: creating this future registers with the token, which is not free per message.
    let aborted = session.abort.cancelled();
    tokio::pin!(aborted);
    let mut heartbeat_done = false;
    let mut queue = VecDeque::new();
    // Anything queued before this transport took over.
    session.wake();
    loop {
        tokio::select! {
            biased;
            () = &mut aborted => return,
            () = session.notified() => {
                session.take(&mut queue);
                let closing = queue.iter().any(|out| matches!(out, Out::Close));
                let write = write_batch(&mut ws, session.protocol, &mut queue);
                let written = if closing {
                    // A closing session gets a bounded time to flush: a client that stopped
                    // reading must not keep its task and queue alive.
                    tokio::time::timeout(hub.config.ping_timeout, write).await.unwrap_or(Err(()))
                } else {
                    tokio::select! {
                        r = write => r,
                        () = &mut aborted => return,
                    }
                };
                match written {
                    Ok(false) => {}
                    Ok(true) => return,
                    Err(()) => {
                        hub.close(session, End::TransportError);
                        return;
                    }
                }
            }
            msg = ws.next() => {
                let packet = match msg {
                    Some(Ok(Message::Text(text))) => eio::decode_text(text, session.protocol),
                    Some(Ok(Message::Binary(data))) => eio::decode_ws_binary(data, session.protocol),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => {
                        hub.close(session, End::TransportClose);
                        return;
                    }
                    Some(Err(e)) => {
                        if is_too_long(&e) {
                            tracing::debug!(sid = %session.sid, "message over max_message_size: disconnecting");
                            hub.metrics.reject(Reject::Oversized);
                            hub.close(session, End::Oversized);
                        } else {
                            hub.close(session, End::TransportError);
                        }
                        return;
                    }
                };
                match packet {
                    Ok(packet) => {
                        if hub.receive(session, &mut reader, packet) == Flow::Closed {
                            // Loop once more to flush what close() queued.
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(sid = %session.sid, error = %e, "malformed Engine.IO packet");
                        hub.metrics.reject(Reject::Malformed);
                        hub.close(session, End::Malformed);
                    }
                }
            }
            () = &mut heartbeat, if !heartbeat_done => heartbeat_done = true,
        }
    }
}

/// Writes a drained queue with one flush; true when it ended with the session's close.
async fn write_batch(
    ws: &mut Socket,
    protocol: Protocol,
    queue: &mut VecDeque<Out>,
) -> Result<bool, ()> {
    let mut close = false;
    for out in queue.drain(..) {
        match out {
            Out::Text(t) => ws.feed(Message::Text(t)).await.map_err(drop)?,
            Out::Relayed(r) => {
                ws.feed(Message::Text(r.header.clone()))
                    .await
                    .map_err(drop)?;
                let attachments = match protocol {
                    Protocol::V4 => &r.attachments[..],
                    Protocol::V3 => r.v3_attachments(),
                };
                for a in attachments {
                    ws.feed(Message::Binary(a.clone())).await.map_err(drop)?;
                }
            }
            Out::Close => {
                close = true;
                break;
            }
        }
    }
    queue.clear();
    ws.flush().await.map_err(drop)?;
    if close {
        let _ = ws.send(Message::Close(None)).await;
    }
    Ok(close)
}

/// The WebSocket layer refused a message over `max_message_size`.
fn is_too_long(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Capacity(_))
}
