//! Sans-IO conference core: rooms, participants, roles, chat, lobby, password, reactions and metadata.
//!
//! A [`Room`] is a plain state machine. The server feeds it what happened (a participant joined, a client
//! message arrived, a socket dropped, time passed) with the current time as an argument, and gets back
//! [`Output`]s: messages to send, connections to close, media sessions to open or close. It does no IO,
//! reads no clock and never panics on client input; every permission rule lives here.

mod config;
mod metadata;
mod name;
mod rate;
mod room;

pub use config::{Config, MetadataWriters};
pub use metadata::MetadataError;
pub use name::{RoomNameError, canonical_room_name};
pub use rate::RateLimiter;
pub use room::{Access, CloseReason, Identity, Output, Room, RoomSnapshot};

/// Milliseconds since the Unix epoch; the only notion of time in the core.
pub type Millis = u64;
