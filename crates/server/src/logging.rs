//! Logging setup: `tracing` with a human or JSON format; the level comes from config unless RUST_LOG is set.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Called once, at start-up.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(&value)
            .map_err(|e| anyhow::anyhow!("invalid RUST_LOG {value:?}: {e}"))?,
        _ => EnvFilter::try_new(&config.level)
            .map_err(|e| anyhow::anyhow!("invalid log.level {:?}: {e}", config.level))?,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Human => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install logger: {e}"))
}
