//! The `[whiteboard]` configuration section: limits and timers of the collab relay.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the Excalidraw collab relay.
///
/// The defaults match excalidraw-room where an operator would notice a difference
/// (ping timers, 1 MB message limit, CORS `*`), and add the limits the Node servers lack
/// (per-connection rate limit, rooms per socket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Value of `Access-Control-Allow-Origin` on long-polling responses; `*` allows any origin.
    pub cors_origin: String,
    /// Users allowed in one room; the next joiner gets `room-full` and is disconnected. 0 = no limit.
    pub max_users_per_room: usize,
    /// Largest Engine.IO message (text packet or binary attachment) or polling body, in bytes.
    /// A client that sends more is disconnected; nobody else is affected.
    pub max_message_size: usize,
    /// Interval between Engine.IO heartbeats.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// How long a client may stay silent after a heartbeat before it is dropped.
    #[serde(with = "humantime_serde")]
    pub ping_timeout: Duration,
    /// Sustained socket.io messages per second one connection may send (token bucket rate).
    pub rate_limit_per_second: u32,
    /// Messages one connection may send in a burst above the sustained rate (token bucket size).
    pub rate_limit_burst: u32,
    /// Rooms (whiteboard rooms plus follow rooms) one socket may be in at once.
    pub max_rooms_per_socket: usize,
    /// Bytes that may wait for one slow recipient; past that it is disconnected (volatile
    /// messages are dropped much earlier).
    pub max_send_queue: usize,
    /// Whether clients may use HTTP long-polling; when false only WebSocket is offered,
    /// like Jitsi's excalidraw-backend.
    pub allow_polling: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cors_origin: "*".to_owned(),
            max_users_per_room: 100,
            max_message_size: 1_000_000,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            // Excalidraw sends a pointer update every 33 ms plus scene updates; 100/s leaves
            // three times that headroom, and a burst covers a scene resync after a reconnect.
            rate_limit_per_second: 100,
            rate_limit_burst: 400,
            max_rooms_per_socket: 16,
            max_send_queue: 16_000_000,
            allow_polling: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_section_keeps_other_defaults() {
        let config: Config =
            toml::from_str("max_users_per_room = 5\nping_timeout = \"1m\"").unwrap();
        assert_eq!(config.max_users_per_room, 5);
        assert_eq!(config.ping_timeout, Duration::from_secs(60));
        assert_eq!(config.ping_interval, Config::default().ping_interval);
        assert_eq!(config.cors_origin, "*");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let err = toml::from_str::<Config>("max_user_per_room = 5").unwrap_err();
        assert!(err.to_string().contains("max_user_per_room"), "{err}");
    }

    #[test]
    fn default_round_trips() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), Config::default());
    }
}
