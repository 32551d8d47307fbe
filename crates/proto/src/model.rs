//! The data model the messages talk about: participants, roles, rooms, chat, lobby knockers, reactions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Server-assigned participant id: unique across the server for the life of the process, stable across
/// a resumed connection.
pub type ParticipantId = String;

/// Milliseconds since the Unix epoch, as the server's clock saw it.
pub type Timestamp = u64;

/// The room's shared key → JSON map (Prosody's room_metadata). Every participant receives all of it.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// What a participant may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May use every moderator action.
    Moderator,
    /// A regular participant.
    Participant,
    /// Joined without a token in a room that requires a token-holding moderator to be present.
    Guest,
}

/// One admitted participant as everyone in the room sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub screen_sharing: bool,
    /// When the hand was raised (orders the queue), or null when it is down.
    #[serde(default)]
    pub hand_raised_at: Option<Timestamp>,
    pub joined_at: Timestamp,
    /// From the token's `context.user.avatar`, if any.
    #[serde(default)]
    pub avatar: Option<String>,
    /// From the token's `context.user.email`, if any.
    #[serde(default)]
    pub email: Option<String>,
}

/// A TURN (or STUN) server the client adds to its `RTCPeerConnection`, in the browser's
/// `RTCIceServer` shape. The credentials expire (coturn's shared-secret scheme), so each `welcome`
/// carries fresh ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// Room-wide state other than people, chat and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomInfo {
    /// The canonical (lower-case) room name.
    pub name: String,
    /// A password is required to enter.
    pub locked: bool,
    /// Newcomers knock and wait for a moderator.
    pub lobby_enabled: bool,
    pub created_at: Timestamp,
}

/// One chat message, room-wide or private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Increasing per room; lets a client de-duplicate history after a resume.
    pub id: u64,
    pub from: ParticipantId,
    /// The sender's display name when it was sent (the sender may have left since).
    pub from_name: String,
    /// The recipient of a private message, or null for a room message.
    #[serde(default)]
    pub to: Option<ParticipantId>,
    pub text: String,
    pub sent_at: Timestamp,
}

/// Someone waiting in the lobby.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knocker {
    pub id: ParticipantId,
    pub name: String,
    pub knocked_at: Timestamp,
}

/// How a knock ended, told to moderators so their lobby lists stay current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnockOutcome {
    Admitted,
    Denied,
    /// The knocker gave up (closed the page).
    Left,
}

/// Why a participant is no longer in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It said `leave` or closed its connection and did not resume in time.
    Left,
    /// A moderator or the operator removed it.
    Kicked,
    /// Its connection dropped and it did not resume within the grace period.
    Timeout,
    /// Its media transport failed and its connection was gone too.
    MediaFailed,
}

/// The fixed set of reactions (Jitsi's set), so clients render them the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    Like,
    Love,
    Clap,
    Laugh,
    Surprised,
    Boo,
    Silence,
}
