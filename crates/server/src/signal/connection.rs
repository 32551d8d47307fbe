//! One participant WebSocket: parses frames, enforces size and rate limits, keeps the socket alive, and
//! relays between the client and its room task.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use convene_conference::{CloseReason, Identity, RateLimiter, canonical_room_name};
use convene_proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage, parse_client_message,
};
use tokio::sync::mpsc;

use super::{Signal, WsQuery};
use crate::{
    room::{Command, Outbound, RoomLink},
    token::{AuthMode, Claims},
};

/// Messages a room may queue for one connection before it is considered too slow.
const OUTBOUND_QUEUE: usize = 512;

/// The name used when neither the client, the URL nor the token gives one.
const DEFAULT_NAME: &str = "Guest";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// Sends an error and closes with a policy violation: for problems a retry on this socket cannot fix.
async fn refuse(socket: &mut WebSocket, signal: &Signal, code: ErrorCode, text: &str) {
    tracing::debug!(?code, text, "signaling connection refused");
    signal.rooms.metrics().error(code);
    send(socket, &ServerMessage::error(code, text, None)).await;
    close(socket, close_code::POLICY, text).await;
}

pub(super) async fn run(
    mut socket: WebSocket,
    room: String,
    query: WsQuery,
    host: Option<String>,
    signal: Signal,
) {
    let config = signal.rooms.config().clone();
    let room = match canonical_room_name(&room, config.room_name_max_len) {
        Ok(room) => room,
        Err(e) => {
            return refuse(
                &mut socket,
                &signal,
                ErrorCode::InvalidRoomName,
                &e.to_string(),
            )
            .await;
        }
    };
    let claims = match (&query.jwt, signal.mode) {
        (Some(jwt), _) if !jwt.is_empty() => match signal.verifier.verify(jwt, &room) {
            Ok(claims) => Some(claims),
            Err(e) => {
                return refuse(
                    &mut socket,
                    &signal,
                    ErrorCode::TokenInvalid,
                    &e.to_string(),
                )
                .await;
            }
        },
        (_, AuthMode::Token) => {
            return refuse(
                &mut socket,
                &signal,
                ErrorCode::TokenRequired,
                "this server requires a token (?jwt=)",
            )
            .await;
        }
        _ => None,
    };
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let id = crate::room::random_id(9);
    let Some(link) = signal.rooms.connect(&room, id, out_tx) else {
        return refuse(
            &mut socket,
            &signal,
            ErrorCode::Unavailable,
            "the room is busy; try again",
        )
        .await;
    };
    signal.rooms.metrics().connections.inc();
    let mut conn = Connection {
        signal: &signal,
        link: &link,
        claims,
        query_name: query.name,
        host,
        limiter: RateLimiter::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
            now_ms(),
        ),
        max_frame: config.max_frame_bytes,
    };
    conn.serve(&mut socket, out_rx, config.keepalive).await;
    link.send(Command::Disconnected { conn: link.conn }).await;
    signal.rooms.metrics().connections.dec();
}

struct Connection<'a> {
    signal: &'a Signal,
    link: &'a RoomLink,
    claims: Option<Claims>,
    query_name: Option<String>,
    /// The host the client reached us by, for TURN URLs.
    host: Option<String>,
    limiter: RateLimiter,
    max_frame: usize,
}

/// What to do after a client frame.
enum Next {
    Continue,
    Stop,
}

impl Connection<'_> {
    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        mut out_rx: mpsc::Receiver<Outbound>,
        keepalive: Duration,
    ) {
        let mut ping = tokio::time::interval(keepalive);
        ping.tick().await;
        let mut last_seen = Instant::now();
        loop {
            tokio::select! {
                frame = socket.recv() => {
                    let Some(Ok(frame)) = frame else { return };
                    last_seen = Instant::now();
                    if let Next::Stop = self.on_frame(socket, frame).await {
                        return;
                    }
                }
                out = out_rx.recv() => match out {
                    Some(Outbound::Text(text)) => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(Outbound::Welcome(welcome)) => {
                        if !send(socket, &self.with_ice_servers(*welcome)).await {
                            return;
                        }
                    }
                    Some(Outbound::Close(reason)) => {
                        let code = match reason {
                            CloseReason::Normal => close_code::NORMAL,
                            CloseReason::Policy => close_code::POLICY,
                        };
                        return close(socket, code, "").await;
                    }
                    // The room dropped us: the session was taken over by a resumed connection, or we were too slow.
                    None => return close(socket, close_code::NORMAL, "session closed by the server").await,
                },
                _ = ping.tick() => {
                    if last_seen.elapsed() > keepalive * 3 {
                        tracing::debug!("closing a silent signaling connection");
                        return;
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                () = self.signal.shutdown.cancelled() => {
                    return close(socket, close_code::AWAY, "server shutting down").await;
                }
            }
        }
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, frame: Message) -> Next {
        let metrics = self.signal.rooms.metrics();
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(bytes) => {
                if !self.admit_frame(socket, bytes.len()).await {
                    return Next::Stop;
                }
                let err = ServerMessage::error(
                    ErrorCode::BadJson,
                    "binary frames are not accepted; send JSON text",
                    None,
                );
                metrics.error(ErrorCode::BadJson);
                return if send(socket, &err).await {
                    Next::Continue
                } else {
                    Next::Stop
                };
            }
            Message::Close(_) => return Next::Stop,
            Message::Ping(_) | Message::Pong(_) => return Next::Continue,
        };
        if !self.admit_frame(socket, text.len()).await {
            return Next::Stop;
        }
        metrics.messages.inc();
        let msg = match parse_client_message(text.as_str()) {
            Ok(msg) => msg,
            Err(e) => {
                metrics.error(e.code);
                let err = ServerMessage::error(e.code, e.message, e.request.as_deref());
                return if send(socket, &err).await {
                    Next::Continue
                } else {
                    Next::Stop
                };
            }
        };
        let cmd = match msg {
            ClientMessage::Join {
                protocol_version,
                display_name,
                password,
            } => {
                if !self.check_version(socket, protocol_version, "join").await {
                    return Next::Stop;
                }
                Command::Join {
                    conn: self.link.conn,
                    identity: self.identity(display_name),
                    password,
                }
            }
            ClientMessage::Resume {
                protocol_version,
                token,
            } => {
                if !self.check_version(socket, protocol_version, "resume").await {
                    return Next::Stop;
                }
                Command::Resume {
                    conn: self.link.conn,
                    token,
                }
            }
            msg => Command::Client {
                conn: self.link.conn,
                msg,
            },
        };
        if self.link.send(cmd).await {
            Next::Continue
        } else {
            Next::Stop
        }
    }

    /// Fresh TURN credentials for the participant a `welcome` (after join or resume) names; they expire,
    /// so a resumed participant gets new ones too.
    fn with_ice_servers(&self, mut welcome: ServerMessage) -> ServerMessage {
        if let (
            ServerMessage::Welcome {
                you, ice_servers, ..
            },
            Some(turn),
        ) = (&mut welcome, &self.signal.turn)
        {
            *ice_servers = turn.ice_servers(you, self.host.as_deref());
        }
        welcome
    }

    /// Size cap and rate limit; both close the connection when exceeded.
    async fn admit_frame(&mut self, socket: &mut WebSocket, len: usize) -> bool {
        let metrics = self.signal.rooms.metrics();
        if len > self.max_frame {
            metrics.closed_for_abuse.inc();
            metrics.error(ErrorCode::TooLarge);
            close(socket, close_code::SIZE, "frame too large").await;
            return false;
        }
        if !self.limiter.allow(now_ms()) {
            metrics.closed_for_abuse.inc();
            metrics.error(ErrorCode::RateLimited);
            let err =
                ServerMessage::error(ErrorCode::RateLimited, "too many messages; closing", None);
            send(socket, &err).await;
            close(socket, close_code::POLICY, "rate limited").await;
            return false;
        }
        true
    }

    async fn check_version(&self, socket: &mut WebSocket, version: u32, request: &str) -> bool {
        if version == PROTOCOL_VERSION {
            return true;
        }
        let text = format!(
            "protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"
        );
        self.signal
            .rooms
            .metrics()
            .error(ErrorCode::UnsupportedVersion);
        send(
            socket,
            &ServerMessage::error(ErrorCode::UnsupportedVersion, &text, Some(request)),
        )
        .await;
        close(socket, close_code::POLICY, "unsupported protocol version").await;
        false
    }

    /// Name precedence: the join message, `?name=`, the token, then a default.
    fn identity(&self, display_name: Option<String>) -> Identity {
        let user = self.claims.as_ref().map(|c| &c.context.user);
        let name = display_name
            .filter(|n| !n.trim().is_empty())
            .or_else(|| self.query_name.clone().filter(|n| !n.trim().is_empty()))
            .or_else(|| user.and_then(|u| u.name.clone()))
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        Identity {
            name,
            avatar: user.and_then(|u| u.avatar.clone()),
            email: user.and_then(|u| u.email.clone()),
            authenticated: self.claims.is_some(),
            token_moderator: self.claims.as_ref().is_some_and(Claims::is_moderator),
            may_record: self.claims.as_ref().and_then(Claims::may_record),
        }
    }
}
