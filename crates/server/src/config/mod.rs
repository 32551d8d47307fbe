//! The one TOML config file: the root schema, its defaults, and loading with every problem reported.
//!
//! Each subsystem owns its section type and defaults (`convene_whiteboard::Config` is `[whiteboard]`);
//! this module only assembles them. Command-line flags are applied on top by `cli`.

mod check;

use std::{net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

pub use check::Problem;

/// Everything `convene` can be configured with. An empty file is `Config::default()`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub whiteboard: convene_whiteboard::Config,
    pub media: convene_media::Config,
    pub tls: crate::tls::Config,
    pub turn: crate::turn::Config,
    pub recording: convene_record::Config,
    pub conference: convene_conference::Config,
    pub auth: crate::token::Config,
    pub ui: crate::assets::Config,
}

/// `[server]`: the HTTP listener and process lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP listener (web app, signaling, whiteboard relay, metrics).
    pub listen: SocketAddr,
    /// A request (not an upgraded WebSocket) that takes longer than this is answered 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted HTTP request body, in bytes.
    pub max_request_body: usize,
    /// How long the first SIGTERM/SIGINT waits for connected clients to leave before exiting.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            request_timeout: Duration::from_secs(30),
            max_request_body: 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// `[log]`: where `tracing` output goes and how it looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `convene=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Human,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}:\n{}", format_problems(.problems))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Parses config text, collecting every problem rather than stopping at the first one.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        check::parse_all(text)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|problems| ConfigError::Invalid {
            path: shown,
            problems,
        })
    }

    /// The effective config as TOML, for `check-config --print`.
    pub fn to_toml(&self) -> String {
        // Serializing plain data structs to TOML cannot fail: every value type is representable.
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
