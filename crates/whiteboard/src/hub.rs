//! The relay's shared state and the collab protocol's semantics: sessions by id, the room
//! table, what each client event does, and how a session ends.
//!
//! Every method is synchronous; transports call in with decoded packets and drain the
//! sessions' queues. Lock order: `rooms` before any session's state, never the reverse;
//! the session maps are only held for a lookup or an insert.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::Config;
use crate::eio::Packet;
use crate::metrics::{End, Metrics, Protocol, Reject, Transport};
use crate::packet::{self, Event, FollowAction, Kind};
use crate::rate::RateLimit;
use crate::rooms::{FOLLOW_PREFIX, Join, Limits, Rooms};
use crate::session::{Member, Out, PendingBinary, Phase, Push, Reader, Relayed, Session};
use crate::tap::Taps;

/// Queued bytes above which a recipient counts as "not writable" for volatile messages.
const VOLATILE_BACKLOG: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Hub {
    pub config: Config,
    pub metrics: Metrics,
    sessions: Arc<Mutex<HashMap<Arc<str>, Arc<Session>>>>,
    sockets: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    rooms: Mutex<Rooms<Member>>,
    closing: AtomicBool,
    pub taps: Taps,
}

/// What the transport should do after a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The session ended; the transport flushes the queue and stops.
    Closed,
}

/// 15 random bytes as 20 URL-safe base64 characters, like socket.io's ids.
fn random_id() -> Arc<str> {
    use base64::Engine as _;
    let mut bytes = [0u8; 15];
    // The OS generator failing means no secure ids can be made at all; a zeroed id would
    // be guessable, so fall back to the clock mixed with a counter only in that case.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..15].copy_from_slice(&nanos.to_le_bytes()[..15]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into()
}

impl Hub {
    pub fn new(config: Config, metrics: Metrics) -> Hub {
        Hub {
            config,
            metrics,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            sockets: Mutex::new(HashMap::new()),
            rooms: Mutex::new(Rooms::default()),
            closing: AtomicBool::new(false),
            taps: Taps::default(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_users_per_room: self.config.max_users_per_room,
            max_rooms_per_socket: self.config.max_rooms_per_socket,
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    pub fn new_reader(&self) -> Reader {
        Reader {
            pending: None,
            rate: RateLimit::new(
                self.config.rate_limit_per_second,
                self.config.rate_limit_burst,
                Instant::now(),
            ),
        }
    }

    /// Opens a session and returns it with its Engine.IO open packet.
    pub fn open(
        &self,
        protocol: Protocol,
        transport: Transport,
        b64: bool,
    ) -> (Arc<Session>, String) {
        let sid = random_id();
        let socket_id = if protocol == Protocol::V3 {
            sid.clone()
        } else {
            random_id()
        };
        let metrics = self.metrics.connect(transport, protocol);
        let session = Arc::new(Session::new(
            sid.clone(),
            socket_id,
            protocol,
            transport,
            b64,
            metrics,
            self.new_reader(),
        ));
        let upgrades = if transport == Transport::Polling {
            "[\"websocket\"]"
        } else {
            "[]"
        };
        let max_payload = match protocol {
            Protocol::V4 => format!(",\"maxPayload\":{}", self.config.max_message_size),
            Protocol::V3 => String::new(),
        };
        let open = format!(
            "0{{\"sid\":\"{sid}\",\"upgrades\":{upgrades},\"pingInterval\":{},\"pingTimeout\":{}{max_payload}}}",
            self.config.ping_interval.as_millis(),
            self.config.ping_timeout.as_millis(),
        );
        lock(&self.sessions).insert(sid, session.clone());
        if protocol == Protocol::V3 {
            // socket.io 2 servers connect the default namespace without being asked.
            self.connect(&session, "40".to_owned());
        }
        (session, open)
    }

    fn sessions_handle(&self) -> Arc<Mutex<HashMap<Arc<str>, Arc<Session>>>> {
        self.sessions.clone()
    }

    /// Drops a closed session from the id map (once its transport delivered the close).
    pub fn forget(&self, session: &Session) {
        let mut sessions = lock(&self.sessions);
        if sessions
            .get(&session.sid)
            .is_some_and(|s| std::ptr::eq(&**s, session))
        {
            sessions.remove(&session.sid);
        }
    }

    pub fn session(&self, sid: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(sid).cloned()
    }

    fn connect(&self, session: &Arc<Session>, reply: String) {
        {
            let mut state = session.state();
            if state.connected || state.closed {
                return;
            }
            state.connected = true;
        }
        lock(&self.sockets).insert(session.socket_id.clone(), session.clone());
        session.push(Out::Text(reply.into()));
        session.push(Out::Text(packet::event("init-room", None).into()));
    }

    /// Handles one Engine.IO packet from a client.
    pub fn receive(&self, session: &Arc<Session>, reader: &mut Reader, packet: Packet) -> Flow {
        match packet {
            Packet::Ping => {
                // v3 clients ping and the server answers; v4 clients never ping.
                session.state().heard = Instant::now();
                session.push(Out::Text(Utf8Bytes::from_static("3")));
            }
            Packet::Pong => session.state().heard = Instant::now(),
            Packet::Message(text) => return self.message(session, reader, text),
            Packet::Binary(data) => {
                let Some(pending) = reader.pending.as_mut() else {
                    tracing::debug!(sid = %session.sid, "binary message without a binary event");
                    self.metrics.reject(Reject::Malformed);
                    return Flow::Continue;
                };
                pending.attachments.push(data);
                if pending.attachments.len() == pending.expected
                    && let Some(p) = reader.pending.take()
                {
                    return self.event(session, reader, p.text, p.attachments);
                }
            }
            Packet::Close => {
                self.close(session, End::TransportClose);
                return Flow::Closed;
            }
            // Upgrade packets matter only to the transport that receives them.
            Packet::PingProbe | Packet::Upgrade | Packet::Noop => {}
        }
        Flow::Continue
    }

    fn message(&self, session: &Arc<Session>, reader: &mut Reader, text: Utf8Bytes) -> Flow {
        if reader.pending.take().is_some() {
            tracing::debug!(sid = %session.sid, "binary event cut short by a text message");
            self.metrics.reject(Reject::Malformed);
        }
        let header = match packet::parse_header(&text) {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(sid = %session.sid, error = %e, "malformed socket.io packet");
                self.metrics.reject(Reject::Malformed);
                return Flow::Continue;
            }
        };
        match header.kind {
            Kind::Connect if header.nsp == "/" => {
                if session.protocol == Protocol::V4 {
                    self.connect(session, format!("40{{\"sid\":\"{}\"}}", session.socket_id));
                }
            }
            Kind::Connect => {
                let reply = match session.protocol {
                    Protocol::V4 => {
                        format!("44{},{{\"message\":\"Invalid namespace\"}}", header.nsp)
                    }
                    Protocol::V3 => format!("44{},\"Invalid namespace\"", header.nsp),
                };
                session.push(Out::Text(reply.into()));
            }
            Kind::Disconnect => {
                if header.nsp == "/" {
                    self.close(session, End::ClientDisconnect);
                    return Flow::Closed;
                }
            }
            Kind::Event | Kind::BinaryEvent if header.nsp == "/" => {
                if header.attachments > 0 {
                    let expected = header.attachments;
                    reader.pending = Some(PendingBinary {
                        text,
                        expected,
                        attachments: Vec::with_capacity(expected),
                    });
                } else {
                    return self.event(session, reader, text, Vec::new());
                }
            }
            Kind::Event | Kind::BinaryEvent | Kind::Ack | Kind::BinaryAck => {
                // The relay never asks for acks and serves only `/`.
                self.metrics.reject(Reject::Malformed);
            }
        }
        Flow::Continue
    }

    /// A complete event (with its attachments).
    fn event(
        &self,
        session: &Arc<Session>,
        reader: &mut Reader,
        text: Utf8Bytes,
        attachments: Vec<Bytes>,
    ) -> Flow {
        if !reader.rate.allow(Instant::now()) {
            self.metrics.reject(Reject::RateLimited);
            return Flow::Continue;
        }
        if !session.state().connected {
            self.metrics.reject(Reject::Malformed);
            return Flow::Continue;
        }
        // parse_header succeeded on this text before, so it does again.
        let Ok(header) = packet::parse_header(&text) else {
            return Flow::Continue;
        };
        let event = match packet::parse_event(header.data, attachments.len()) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(sid = %session.sid, error = %e, "malformed event");
                self.metrics.reject(Reject::Malformed);
                return Flow::Continue;
            }
        };
        match event {
            Event::JoinRoom(room) => return self.join_room(session, &room),
            Event::Broadcast {
                volatile,
                room,
                rest,
            } => {
                let header = packet::relay_header(&rest, attachments.len());
                self.broadcast(session, &room, Relayed::new(header, attachments), volatile);
            }
            Event::UserFollow(follow) => {
                self.user_follow(session, &follow.user_to_follow.socket_id, follow.action);
            }
            Event::Unknown => {
                tracing::debug!(sid = %session.sid, "unknown event");
                self.metrics.reject(Reject::UnknownEvent);
            }
        }
        Flow::Continue
    }

    fn join_room(&self, session: &Arc<Session>, room: &str) -> Flow {
        let me = Member(session.clone());
        let mut rooms = lock(&self.rooms);
        match rooms.join(room, &me, self.limits()) {
            Join::Joined(members) => {
                self.update_room_gauges(&rooms);
                self.metrics.observe_room_size(members.len());
                if members.len() == 1 {
                    session.push(Out::Text(packet::event("first-in-room", None).into()));
                } else {
                    let id = serde_json::to_string(&*session.socket_id).unwrap_or_default();
                    let new_user = Out::Text(packet::event("new-user", Some(&id)).into());
                    for m in members.iter().filter(|m| **m != me) {
                        m.0.push(new_user.clone());
                    }
                }
                let change = Out::Text(packet::event_with_ids("room-user-change", &members).into());
                for m in &members {
                    m.0.push(change.clone());
                }
                Flow::Continue
            }
            Join::Full => {
                drop(rooms);
                tracing::debug!(sid = %session.sid, room, "room full");
                self.metrics.reject(Reject::RoomFull);
                session.push(Out::Text(packet::event("room-full", None).into()));
                // A socket.io DISCONNECT first, so the client does not try to reconnect.
                session.push(Out::Text(Utf8Bytes::from_static("41")));
                self.close(session, End::RoomFull);
                Flow::Closed
            }
            Join::TooManyRooms => {
                tracing::debug!(sid = %session.sid, room, "too many rooms for one socket");
                self.metrics.reject(Reject::TooManyRooms);
                Flow::Continue
            }
        }
    }

    fn broadcast(&self, session: &Arc<Session>, room: &str, relayed: Relayed, volatile: bool) {
        let own_follow_room = room.strip_prefix(FOLLOW_PREFIX) == Some(&*session.socket_id);
        let out = Out::Relayed(Arc::new(relayed));
        let limit = self.config.max_send_queue;
        let mut too_slow = Vec::new();
        {
            let rooms = lock(&self.rooms);
            let members = rooms.members(room);
            let is_member = members.iter().any(|m| Arc::ptr_eq(&m.0, session));
            if !is_member && !own_follow_room {
                drop(rooms);
                tracing::debug!(sid = %session.sid, room, "broadcast into a room the sender is not in");
                self.metrics.reject(Reject::NotMember);
                return;
            }
            if !volatile && let Out::Relayed(r) = &out {
                self.taps.offer(room, &r.attachments);
            }
            for m in members {
                if Arc::ptr_eq(&m.0, session) {
                    continue;
                }
                match m
                    .0
                    .push_limited(out.clone(), volatile, VOLATILE_BACKLOG, limit)
                {
                    Push::Queued | Push::Closed => {}
                    Push::Dropped => {
                        self.metrics.volatile_dropped.inc();
                    }
                    Push::TooSlow => too_slow.push(m.0.clone()),
                }
            }
        }
        session.state().metrics.messages.inc();
        for slow in too_slow {
            tracing::debug!(sid = %slow.sid, "send queue over max_send_queue: disconnecting");
            self.close(&slow, End::SlowConsumer);
        }
    }

    fn user_follow(&self, session: &Arc<Session>, target: &str, action: FollowAction) {
        let room = format!("{FOLLOW_PREFIX}{target}");
        let me = Member(session.clone());
        let followers = {
            let mut rooms = lock(&self.rooms);
            let followers = match action {
                FollowAction::Follow => match rooms.join(&room, &me, self.limits()) {
                    Join::Joined(members) => members,
                    Join::Full | Join::TooManyRooms => {
                        drop(rooms);
                        self.metrics.reject(Reject::TooManyRooms);
                        return;
                    }
                },
                FollowAction::Unfollow => rooms.leave(&room, &me).unwrap_or_default(),
            };
            self.update_room_gauges(&rooms);
            followers
        };
        let target = lock(&self.sockets).get(target).cloned();
        if let Some(target) = target {
            target.push(Out::Text(
                packet::event_with_ids("user-follow-room-change", &followers).into(),
            ));
        }
    }

    fn update_room_gauges(&self, rooms: &Rooms<Member>) {
        let (r, f, m) = rooms.counts();
        self.metrics.set_rooms(r, f, m);
    }

    /// Ends a session: leaves its rooms (telling the others), forgets it, and queues the
    /// final close for its transport. Idempotent.
    pub fn close(&self, session: &Arc<Session>, reason: End) {
        let abort = matches!(reason, End::HeartbeatTimeout | End::SlowConsumer);
        if !session.mark_closed(abort) {
            return;
        }
        tracing::debug!(sid = %session.sid, ?reason, "session closed");
        self.metrics.close(reason);
        {
            let state = session.state();
            self.metrics.disconnect(&state.metrics);
        }
        let polling = session.state().phase != Phase::Websocket;
        if polling {
            // The client still has to fetch the last packets (room-full, close) with one more
            // GET, so the session stays findable until then, or until it could not have come.
            let sessions = self.sessions_handle();
            let sid = session.sid.clone();
            let grace = self.config.ping_interval + self.config.ping_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                lock(&sessions).remove(&sid);
            });
        } else {
            self.forget(session);
        }
        {
            let mut sockets = lock(&self.sockets);
            if sockets
                .get(&session.socket_id)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                sockets.remove(&session.socket_id);
            }
        }
        let mut unfollowed = Vec::new();
        {
            let mut rooms = lock(&self.rooms);
            for left in rooms.leave_all(&Member(session.clone())) {
                match left.room.strip_prefix(FOLLOW_PREFIX) {
                    None if !left.remaining.is_empty() => {
                        let change = Out::Text(
                            packet::event_with_ids("room-user-change", &left.remaining).into(),
                        );
                        for m in &left.remaining {
                            m.0.push(change.clone());
                        }
                    }
                    Some(followed) if left.remaining.is_empty() => {
                        unfollowed.push(followed.to_owned())
                    }
                    _ => {}
                }
            }
            self.update_room_gauges(&rooms);
        }
        for followed in unfollowed {
            let target = lock(&self.sockets).get(followed.as_str()).cloned();
            if let Some(target) = target {
                target.push(Out::Text(packet::event("broadcast-unfollow", None).into()));
            }
        }
    }

    /// Closes every session and refuses new ones.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let all: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for session in all {
            self.close(&session, End::ServerShutdown);
        }
    }

    /// Drives the heartbeat of one session until it ends; returns when the client missed a
    /// heartbeat (after closing the session) or the session closed for another reason.
    pub async fn heartbeat(&self, session: &Arc<Session>) {
        let interval = self.config.ping_interval;
        let timeout = self.config.ping_timeout;
        loop {
            match session.protocol {
                Protocol::V4 => {
                    tokio::time::sleep(interval).await;
                    if session.is_closed() {
                        return;
                    }
                    let sent = Instant::now();
                    session.push(Out::Text(Utf8Bytes::from_static("2")));
                    tokio::time::sleep(timeout).await;
                    if session.state().heard < sent {
                        break;
                    }
                }
                Protocol::V3 => {
                    let waited = Instant::now();
                    tokio::time::sleep(interval + timeout).await;
                    if session.is_closed() {
                        return;
                    }
                    if session.state().heard < waited {
                        break;
                    }
                }
            }
        }
        tracing::debug!(sid = %session.sid, "heartbeat timeout");
        self.close(session, End::HeartbeatTimeout);
    }
}
