//! Signaling wire types: every JSON message a client and the server exchange over the participant WebSocket.
//!
//! Messages are internally tagged enums (`{"type": "...", ...}`), one enum per direction, so an unknown
//! or malformed message is a parse error rather than a struct with twenty optional fields.
//! docs/protocol.md describes the data model and every message with an example.

mod media;

pub use media::{MediaSource, TrackInfo, TrackKind};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change; the client sends it in `join`, the server in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The client's SDP offer: the first one, and every renegotiation when it adds or removes tracks.
    /// `sources` maps each sending transceiver's mid to what it carries.
    SdpOffer {
        sdp: String,
        #[serde(default)]
        sources: BTreeMap<String, MediaSource>,
    },
    /// The client's answer to a server offer.
    SdpAnswer { sdp: String },
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The server's answer to a client offer.
    SdpAnswer { sdp: String },
    /// A server-initiated renegotiation: other participants' tracks were added or removed.
    SdpOffer { sdp: String },
    /// The full map of this client's receiving mids to the participant and source they carry.
    Tracks { tracks: Vec<TrackInfo> },
    /// A media negotiation failed (malformed SDP, no usable codec, ...). The session is unchanged.
    MediaError { code: String, message: String },
}
