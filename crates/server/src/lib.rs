//! Convene: a self-hosted meeting server in one binary.
//!
//! This crate is the only IO layer: it loads the config, owns sockets, files, the clock and tokio tasks,
//! and translates between the wire and the sans-IO cores (`convene-conference`, `convene-media`).
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod assets;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod http;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod ports;
pub mod record;
pub mod room;
pub mod sd_notify;
pub mod serve;
pub mod shutdown;
pub mod signal;
pub mod tls;
pub mod token;
pub mod turn;

use std::net::SocketAddr;

/// Errors of the server crate that reach the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Startup(String),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}
