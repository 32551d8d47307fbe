//! Convene's media core: a sans-IO selective forwarding unit (SFU) around `str0m::Rtc`.
//!
//! The core holds one WebRTC session per participant and forwards every published track to the
//! other participants of the same room. It does no IO and reads no clock: the server's UDP loop
//! feeds it datagrams, signaling commands and `now`, and drains [`Output`]s (datagrams to send,
//! signaling messages per participant, session closures) plus the next deadline.
//!
//! Design choices (the reasons are in ARCHITECTURE.md, "Media"):
//! - ICE-lite on one UDP port for everyone. Incoming datagrams are routed to a session by the
//!   local ICE ufrag of STUN requests, and by source address afterwards ([`demux`]).
//! - str0m's frame level API: every leg has its own RTP sequence space, SSRCs, NACK/RTX send
//!   buffer, TWCC and RTCP reports, all kept by str0m. Frames are shared between subscribers by
//!   reference count, so a forwarded frame is never copied.
//! - A subscriber receives video only from a keyframe on, and a keyframe is requested from the
//!   publisher whenever a subscriber starts, asks for one (PLI/FIR) or the publisher's stream
//!   broke ([`forward`]).
//! - A frame that reaches forwarding much later than its track's frames usually do (the backlog
//!   of a stalled server) is dropped, and video waits for a fresh keyframe ([`freshness`]), so
//!   subscribers skip to the present instead of staying behind.
//! - The browser's RTP header-extension ids are taken from its first offer ([`extmap`]) so
//!   every server offer keeps them.
//! - The dominant speaker follows the RFC 6464 audio levels in the publishers' packets, with
//!   hysteresis ([`speaker`]); last-N pauses the cameras of all but the N most recent speakers
//!   per subscriber and resumes them at a keyframe.
//! - Glare: the server is the polite side. Accepting a client offer drops the server's own
//!   outstanding offer, and what it carried is offered again after the answer.

pub mod config;
pub mod demux;
pub mod error;
pub mod extmap;
pub mod forward;
pub mod freshness;
pub mod layer;
pub mod sdp_scan;
mod session;
mod sfu;
pub mod speaker;
pub mod stats;
pub mod stun;

pub use config::Config;
pub use error::MediaError;
pub use sfu::{Output, Sfu, SfuConfig, TapFrame, TapId};
pub use stats::Counters;

/// Re-exported so that the IO loop and the test kit use the same str0m as the core.
pub use str0m;
