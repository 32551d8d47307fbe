//! The `[conference]` config section: limits and grace periods of the rooms core.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who may write room metadata keys that are not server-owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataWriters {
    Moderators,
    Everyone,
}

/// Settings of the conference core and of the signaling connections that feed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Longest room name, in characters.
    pub room_name_max_len: usize,
    /// Longest display name, in characters.
    pub max_name_chars: usize,
    /// How long an empty room is kept (state, lock, lobby, metadata) before it is removed.
    #[serde(with = "humantime_serde")]
    pub empty_room_grace: Duration,
    /// How long a participant whose socket dropped keeps its place, waiting for `resume`.
    #[serde(with = "humantime_serde")]
    pub reconnect_grace: Duration,
    /// Room chat messages kept for late joiners.
    pub chat_history: usize,
    /// Largest chat text, in bytes.
    pub max_chat_bytes: usize,
    /// Largest WebSocket frame a client may send; larger closes the connection.
    pub max_frame_bytes: usize,
    /// Most metadata keys per room.
    pub max_metadata_keys: usize,
    /// Largest metadata value, in bytes of JSON.
    pub max_metadata_value_bytes: usize,
    /// Who may write metadata keys.
    pub metadata_writers: MetadataWriters,
    /// Keys only the server (recorder, admin API) may write.
    pub server_owned_metadata_keys: Vec<String>,
    /// Sustained messages per second per connection.
    pub rate_limit_per_second: u32,
    /// Messages a connection may send in a burst before it is rate limited (and closed).
    pub rate_limit_burst: u32,
    /// Most admitted participants per room.
    pub max_participants: usize,
    /// WebSocket ping interval; a connection silent for three intervals is treated as dropped.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            room_name_max_len: 64,
            max_name_chars: 64,
            empty_room_grace: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(30),
            chat_history: 100,
            max_chat_bytes: 4096,
            max_frame_bytes: 64 * 1024,
            max_metadata_keys: 32,
            max_metadata_value_bytes: 16 * 1024,
            metadata_writers: MetadataWriters::Moderators,
            server_owned_metadata_keys: vec!["recording".to_owned()],
            rate_limit_per_second: 20,
            rate_limit_burst: 50,
            max_participants: 100,
            keepalive: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// Values that parse but make no sense, each as `(key, problem)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut positive = |key: &'static str, value: usize| {
            if value == 0 {
                out.push((key, "must be at least 1".to_owned()));
            }
        };
        positive("room_name_max_len", self.room_name_max_len);
        positive("max_name_chars", self.max_name_chars);
        positive("max_chat_bytes", self.max_chat_bytes);
        positive("max_metadata_value_bytes", self.max_metadata_value_bytes);
        positive("rate_limit_per_second", self.rate_limit_per_second as usize);
        positive("rate_limit_burst", self.rate_limit_burst as usize);
        positive("max_participants", self.max_participants);
        // A frame must at least hold a full chat message or metadata value with its envelope.
        if self.max_frame_bytes < 1024 {
            out.push(("max_frame_bytes", "must be at least 1024".to_owned()));
        }
        if self.keepalive < Duration::from_secs(1) {
            out.push(("keepalive", "must be at least 1s".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_section_keeps_other_defaults() {
        let c: Config = toml::from_str("chat_history = 5\nreconnect_grace = \"2m\"").unwrap();
        assert_eq!(c.chat_history, 5);
        assert_eq!(c.reconnect_grace, Duration::from_secs(120));
        assert_eq!(c.max_chat_bytes, Config::default().max_chat_bytes);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = toml::from_str::<Config>("chat_histroy = 5").unwrap_err();
        assert!(err.to_string().contains("chat_histroy"), "{err}");
    }

    #[test]
    fn defaults_round_trip_and_are_sane() {
        let c = Config::default();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), c);
        assert!(c.problems().is_empty());
    }

    #[test]
    fn nonsense_values_are_reported() {
        let c = Config {
            max_participants: 0,
            keepalive: Duration::ZERO,
            ..Config::default()
        };
        let keys: Vec<_> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["max_participants", "keepalive"]);
    }
}
