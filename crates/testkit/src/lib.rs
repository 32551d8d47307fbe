//! Convene's test kit: a str0m-based WebRTC test client that publishes synthetic Opus- and
//! VP8-shaped media and checks what it receives, a virtual lossy network that runs clients
//! against the media core in virtual time, and a socket-driven runner for server tests.

pub mod client;
pub mod frames;
pub mod harness;
pub mod rng;
pub mod tcp;
pub mod udp;
pub mod ws;

pub use client::{Fixture, ReceivedMedia, TestClient};
pub use harness::Harness;
