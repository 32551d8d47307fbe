//! Prometheus metrics of the relay, registered as `convene_whiteboard_*`.
//!
//! Hot-path counters are resolved once per connection ([`ConnMetrics`]) so relaying a message
//! touches only atomics, never the label map's lock.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Transport a socket uses (after an upgrade, the one it upgraded to).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Transport {
    Websocket,
    Polling,
}

/// Engine.IO protocol version: 3 for socket.io-client 2.x (Jitsi), 4 for 3.x and later.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Protocol {
    V3,
    V4,
}

/// Why a client message was not relayed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reject {
    /// Over `max_message_size`; the sender is disconnected.
    Oversized,
    /// Not a valid Engine.IO / socket.io packet, or event arguments of the wrong shape.
    Malformed,
    /// An event name the protocol does not have.
    UnknownEvent,
    /// A broadcast into a room the sender is not in.
    NotMember,
    /// Over the per-connection rate limit.
    RateLimited,
    /// A join beyond `max_users_per_room`; the joiner gets `room-full`.
    RoomFull,
    /// A join beyond `max_rooms_per_socket`.
    TooManyRooms,
}

/// Label values in snake_case, as Prometheus users expect (the derive would keep `NotMember`).
macro_rules! label_values {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}
label_values!(Transport { Websocket => "websocket", Polling => "polling" });
label_values!(Protocol { V3 => "v3", V4 => "v4" });
label_values!(Reject {
    Oversized => "oversized",
    Malformed => "malformed",
    UnknownEvent => "unknown_event",
    NotMember => "not_member",
    RateLimited => "rate_limited",
    RoomFull => "room_full",
    TooManyRooms => "too_many_rooms",
});

/// Why a session ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum End {
    /// The client closed the transport or sent an Engine.IO close.
    TransportClose,
    /// The client sent a socket.io DISCONNECT.
    ClientDisconnect,
    /// The connection broke (reset, bad WebSocket framing).
    TransportError,
    HeartbeatTimeout,
    /// The client sent a message over `max_message_size`.
    Oversized,
    /// The client sent something that is not Engine.IO.
    Malformed,
    RoomFull,
    /// Messages for the client piled up past `max_send_queue`.
    SlowConsumer,
    ServerShutdown,
}
label_values!(End {
    TransportClose => "transport_close",
    ClientDisconnect => "client_disconnect",
    TransportError => "transport_error",
    HeartbeatTimeout => "heartbeat_timeout",
    Oversized => "oversized",
    Malformed => "malformed",
    RoomFull => "room_full",
    SlowConsumer => "slow_consumer",
    ServerShutdown => "server_shutdown",
});

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    reason: End,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLabels {
    pub transport: Transport,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: Reject,
}

/// Every metric the relay exports.
#[derive(Clone)]
pub struct Metrics {
    sockets: Family<ConnLabels, Gauge>,
    rooms: Gauge,
    follow_rooms: Gauge,
    memberships: Gauge,
    room_members: Histogram,
    messages: Family<ConnLabels, Counter>,
    deliveries: Family<ConnLabels, Counter>,
    bytes: Family<ConnLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    disconnects: Family<CloseLabels, Counter>,
    pub volatile_dropped: Counter,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            sockets: Family::default(),
            rooms: Gauge::default(),
            follow_rooms: Gauge::default(),
            memberships: Gauge::default(),
            room_members: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            messages: Family::default(),
            deliveries: Family::default(),
            bytes: Family::default(),
            rejected: Family::default(),
            disconnects: Family::default(),
            volatile_dropped: Counter::default(),
        };
        registry.register(
            "sockets",
            "Connected socket.io clients",
            metrics.sockets.clone(),
        );
        registry.register(
            "rooms",
            "Whiteboard rooms with at least one member",
            metrics.rooms.clone(),
        );
        registry.register(
            "follow_rooms",
            "Follow rooms (follow@<socket id>) with at least one follower",
            metrics.follow_rooms.clone(),
        );
        registry.register(
            "room_memberships",
            "Socket-in-room pairs, follow rooms included (0 when nobody is connected)",
            metrics.memberships.clone(),
        );
        registry.register(
            "room_members",
            "Members of a whiteboard room, observed after each join",
            metrics.room_members.clone(),
        );
        registry.register(
            "messages_received",
            "Broadcast messages accepted for relay, by sender transport and protocol",
            metrics.messages.clone(),
        );
        registry.register(
            "messages_relayed",
            "Broadcasts delivered to recipients, by recipient transport and protocol",
            metrics.deliveries.clone(),
        );
        registry.register(
            "bytes_relayed",
            "Payload bytes (ciphertext and IV) delivered to recipients, by recipient transport and protocol",
            metrics.bytes.clone(),
        );
        registry.register(
            "rejected_messages",
            "Client messages not relayed, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "disconnects",
            "Ended sessions, by reason",
            metrics.disconnects.clone(),
        );
        registry.register(
            "volatile_dropped",
            "Volatile broadcasts not delivered to a recipient that was behind",
            metrics.volatile_dropped.clone(),
        );
        metrics
    }

    pub fn close(&self, reason: End) {
        self.disconnects
            .get_or_create(&CloseLabels { reason })
            .inc();
    }

    /// Counts a connected socket and resolves its hot-path counters.
    pub fn connect(&self, transport: Transport, protocol: Protocol) -> ConnMetrics {
        let labels = ConnLabels {
            transport,
            protocol,
        };
        self.sockets.get_or_create(&labels).inc();
        ConnMetrics::new(self, labels)
    }

    /// Undoes [`Metrics::connect`].
    pub fn disconnect(&self, conn: &ConnMetrics) {
        self.sockets.get_or_create(&conn.labels).dec();
    }

    pub fn reject(&self, reason: Reject) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    pub fn set_rooms(&self, rooms: usize, follow_rooms: usize, memberships: usize) {
        self.rooms.set(rooms as i64);
        self.follow_rooms.set(follow_rooms as i64);
        self.memberships.set(memberships as i64);
    }

    pub fn observe_room_size(&self, members: usize) {
        self.room_members.observe(members as f64);
    }
}

/// One connection's counters, cloned out of the families once.
#[derive(Clone, Debug)]
pub struct ConnMetrics {
    labels: ConnLabels,
    pub messages: Counter,
    pub deliveries: Counter,
    pub bytes: Counter,
}

impl ConnMetrics {
    fn new(metrics: &Metrics, labels: ConnLabels) -> ConnMetrics {
        ConnMetrics {
            messages: metrics.messages.get_or_create(&labels).clone(),
            deliveries: metrics.deliveries.get_or_create(&labels).clone(),
            bytes: metrics.bytes.get_or_create(&labels).clone(),
            labels,
        }
    }

    /// Moves this connection's gauge to another transport (after a polling → websocket upgrade).
    pub fn upgrade(&mut self, metrics: &Metrics, transport: Transport) {
        metrics.disconnect(self);
        *self = metrics.connect(transport, self.labels.protocol);
    }
}
