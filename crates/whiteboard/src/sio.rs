//! The relay's socket.io event handlers, on socketioxide.
//!
//! socketioxide speaks Engine.IO v3 and v4 over websocket and polling and owns the room
//! broadcast; this module adds the collab protocol on top: the events, Convene's membership
//! rule, the limits and the metrics. The membership table ([`Rooms`]) is kept beside
//! socketioxide's own so the limits and `room-user-change` lists come from one place.

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use socketioxide::extract::{Event, SocketRef, TryData};
use socketioxide::socket::{DisconnectReason, Sid};
use socketioxide::{ProtocolVersion, SocketIo, TransportType};

use crate::Config;
use crate::metrics::{ConnMetrics, Metrics, Protocol, Reject, Transport};
use crate::rate::RateLimit;
use crate::rooms::{FOLLOW_PREFIX, Join, Limits, Rooms};

pub(crate) struct Shared {
    pub config: Config,
    pub metrics: Metrics,
    rooms: Mutex<Rooms<Sid>>,
}

/// Per-socket state, stored in the socket's extensions.
struct Conn {
    metrics: ConnMetrics,
    rate: Mutex<RateLimit>,
}

impl Shared {
    pub fn new(config: Config, metrics: Metrics) -> Shared {
        Shared {
            config,
            metrics,
            rooms: Mutex::new(Rooms::default()),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_users_per_room: self.config.max_users_per_room,
            max_rooms_per_socket: self.config.max_rooms_per_socket,
        }
    }

    /// Locks the table; a poisoned lock still holds consistent data because every
    /// mutation is a single call into [`Rooms`], so the poison is ignored.
    fn rooms(&self) -> MutexGuard<'_, Rooms<Sid>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_room_gauges(&self, rooms: &Rooms<Sid>) {
        let (r, f, m) = rooms.counts();
        self.metrics.set_rooms(r, f, m);
    }
}

/// Registers the namespace and its handlers on `io`.
pub(crate) fn register(io: &SocketIo, shared: Arc<Shared>) {
    io.ns("/", move |s: SocketRef| {
        let shared = shared.clone();
        async move { on_connect(shared, s) }
    });
}

fn on_connect(shared: Arc<Shared>, s: SocketRef) {
    let transport = match s.transport_type() {
        TransportType::Websocket => Transport::Websocket,
        TransportType::Polling => Transport::Polling,
    };
    let protocol = match s.protocol() {
        ProtocolVersion::V4 => Protocol::V3,
        ProtocolVersion::V5 => Protocol::V4,
    };
    let conn = Arc::new(Conn {
        metrics: shared.metrics.connect(transport, protocol),
        rate: Mutex::new(RateLimit::new(
            shared.config.rate_limit_per_second,
            shared.config.rate_limit_burst,
            Instant::now(),
        )),
    });
    s.extensions.insert(conn.clone());

    let sh = shared.clone();
    s.on(
        "join-room",
        move |s: SocketRef, TryData(room): TryData<String>| {
            let sh = sh.clone();
            async move {
                if allowed(&sh, &s) {
                    match room {
                        Ok(room) => join_room(&sh, &s, room).await,
                        Err(_) => sh.metrics.reject(Reject::Malformed),
                    }
                }
            }
        },
    );
    for (event, volatile) in [
        ("server-broadcast", false),
        ("server-volatile-broadcast", true),
    ] {
        let sh = shared.clone();
        s.on(
            event,
            move |s: SocketRef, TryData(args): TryData<(String, Bytes, Bytes)>| {
                let sh = sh.clone();
                async move {
                    if allowed(&sh, &s) {
                        match args {
                            Ok((room, data, iv)) => {
                                broadcast(&sh, &s, &room, data, iv, volatile).await
                            }
                            Err(_) => sh.metrics.reject(Reject::Malformed),
                        }
                    }
                }
            },
        );
    }
    let sh = shared.clone();
    s.on(
        "user-follow",
        move |s: SocketRef, TryData(follow): TryData<UserFollow>| {
            let sh = sh.clone();
            async move {
                if allowed(&sh, &s) {
                    match follow {
                        Ok(follow) => user_follow(&sh, &s, follow),
                        Err(_) => sh.metrics.reject(Reject::Malformed),
                    }
                }
            }
        },
    );
    let sh = shared.clone();
    s.on_fallback(move |s: SocketRef, Event(event): Event| {
        let sh = sh.clone();
        async move {
            if allowed(&sh, &s) {
                tracing::debug!(sid = %s.id, event, "unknown event");
                sh.metrics.reject(Reject::UnknownEvent);
            }
        }
    });
    let sh = shared.clone();
    s.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
        let sh = sh.clone();
        async move { on_disconnect(&sh, &s, reason).await }
    });

    let _ = s.emit("init-room", &());
}

/// Applies the per-connection rate limit; a dropped message is counted, not answered.
fn allowed(shared: &Shared, s: &SocketRef) -> bool {
    let Some(conn) = s.extensions.get::<Arc<Conn>>() else {
        return false;
    };
    let ok = conn
        .rate
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .allow(Instant::now());
    if !ok {
        tracing::debug!(sid = %s.id, "rate limit: message dropped");
        shared.metrics.reject(Reject::RateLimited);
    }
    ok
}

fn ids(members: &[Sid]) -> Vec<String> {
    members.iter().map(Sid::to_string).collect()
}

async fn join_room(shared: &Shared, s: &SocketRef, room: String) {
    let outcome = {
        let mut rooms = shared.rooms();
        let outcome = rooms.join(&room, &s.id, shared.limits());
        if matches!(outcome, Join::Joined(_)) {
            // Joined under the table's lock so a concurrent broadcast sees both or neither.
            s.join(room.clone());
            shared.update_room_gauges(&rooms);
        }
        outcome
    };
    match outcome {
        Join::Joined(members) => {
            shared.metrics.observe_room_size(members.len());
            if members.len() == 1 {
                let _ = s.emit("first-in-room", &());
            } else {
                let _ = s.to(room.clone()).emit("new-user", &s.id.to_string()).await;
            }
            let _ = s
                .within(room)
                .emit("room-user-change", &ids(&members))
                .await;
        }
        Join::Full => {
            tracing::debug!(sid = %s.id, room, "room full");
            shared.metrics.reject(Reject::RoomFull);
            let _ = s.emit("room-full", &());
            let _ = s.clone().disconnect();
        }
        Join::TooManyRooms => {
            tracing::debug!(sid = %s.id, room, "too many rooms for one socket");
            shared.metrics.reject(Reject::TooManyRooms);
        }
    }
}

async fn broadcast(
    shared: &Shared,
    s: &SocketRef,
    room: &str,
    data: Bytes,
    iv: Bytes,
    volatile: bool,
) {
    let own_follow_room = room
        .strip_prefix(FOLLOW_PREFIX)
        .is_some_and(|id| id == s.id.to_string());
    let recipients = {
        let rooms = shared.rooms();
        let member = rooms.is_member(room, &s.id);
        if !member && !own_follow_room {
            drop(rooms);
            tracing::debug!(sid = %s.id, room, "broadcast into a room the sender is not in");
            shared.metrics.reject(Reject::NotMember);
            return;
        }
        rooms.members(room).len() - usize::from(member)
    };
    let bytes = (data.len() + iv.len()) as u64;
    let mut op = s.to(room.to_owned());
    if volatile {
        op = op.volatile();
    }
    let _ = op.emit("client-broadcast", &(data, iv)).await;
    if let Some(conn) = s.extensions.get::<Arc<Conn>>() {
        conn.metrics.messages.inc();
        conn.metrics.deliveries.inc_by(recipients as u64);
        conn.metrics.bytes.inc_by(bytes * recipients as u64);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserFollow {
    user_to_follow: UserToFollow,
    action: FollowAction,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserToFollow {
    socket_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum FollowAction {
    Follow,
    Unfollow,
}

fn user_follow(shared: &Shared, s: &SocketRef, follow: UserFollow) {
    let target = follow.user_to_follow.socket_id;
    let room = format!("{FOLLOW_PREFIX}{target}");
    let followers = {
        let mut rooms = shared.rooms();
        let followers = match follow.action {
            FollowAction::Follow => match rooms.join(&room, &s.id, shared.limits()) {
                Join::Joined(members) => {
                    s.join(room.clone());
                    members
                }
                Join::Full | Join::TooManyRooms => {
                    drop(rooms);
                    shared.metrics.reject(Reject::TooManyRooms);
                    return;
                }
            },
            FollowAction::Unfollow => {
                s.leave(room.clone());
                rooms.leave(&room, &s.id).unwrap_or_default()
            }
        };
        shared.update_room_gauges(&rooms);
        followers
    };
    if let Some(target) = Sid::from_str(&target)
        .ok()
        .and_then(|sid| s.broadcast().get_socket(sid))
    {
        let _ = target.emit("user-follow-room-change", &ids(&followers));
    }
}

async fn on_disconnect(shared: &Shared, s: &SocketRef, reason: DisconnectReason) {
    tracing::debug!(sid = %s.id, %reason, "disconnected");
    if let Some(conn) = s.extensions.get::<Arc<Conn>>() {
        shared.metrics.disconnect(&conn.metrics);
    }
    let left = {
        let mut rooms = shared.rooms();
        let left = rooms.leave_all(&s.id);
        shared.update_room_gauges(&rooms);
        left
    };
    for left in left {
        match left.room.strip_prefix(FOLLOW_PREFIX) {
            None if !left.remaining.is_empty() => {
                let _ = s
                    .within(left.room.clone())
                    .emit("room-user-change", &ids(&left.remaining))
                    .await;
            }
            Some(followed) if left.remaining.is_empty() => {
                if let Some(target) = Sid::from_str(followed)
                    .ok()
                    .and_then(|sid| s.broadcast().get_socket(sid))
                {
                    let _ = target.emit("broadcast-unfollow", &());
                }
            }
            _ => {}
        }
    }
}
