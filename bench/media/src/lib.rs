//! Convene's media load generator: publishers and subscribers that join rooms over the real
//! signaling WebSocket and real WebRTC (str0m), send synthetic VP8/Opus-shaped RTP at set
//! bitrates, and measure what every subscriber receives next to the server's CPU, memory and
//! `convene_media_` counters. The `convene-load` binary is its command line.

// The report's `json!` object has more fields than serde_json's macro expands by default.
#![recursion_limit = "256"]

pub mod peer;
pub mod procfs;
pub mod recording;
pub mod recv_stats;
pub mod report;
pub mod scenario;
pub mod scrape;
pub mod signaling;
pub mod synth;
pub mod target;

pub use report::Outcome;
pub use scenario::Scenario;
pub use target::{Launch, Target};
