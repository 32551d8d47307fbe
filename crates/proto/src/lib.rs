//! Signaling wire types: every JSON message a client and the server exchange over the participant WebSocket.
//!
//! Messages are internally tagged enums (`{"type": "...", ...}`), one enum per direction, so an unknown
//! or malformed message is a parse error rather than a struct with twenty optional fields.
//! docs/protocol.md describes the data model and every message with an example;
//! fixtures/messages.json holds one example of each, shared with the TypeScript client's tests.

mod error;
mod media;
mod model;

pub use error::{ErrorCode, ParseError, parse_client_message};
pub use media::{MediaSource, TileSize, TrackInfo, TrackKind};
pub use model::{
    ChatMessage, IceServer, KnockOutcome, Knocker, LeaveReason, Metadata, ParticipantId,
    ParticipantInfo, Reaction, Role, RoomInfo, Timestamp,
};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change; the client sends it in `join`, the server in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest `last_n` a client may ask for: more videos than anyone can watch at once.
pub const MAX_LAST_N: u32 = 100;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message on a new connection: enter the room (or its lobby).
    /// `display_name` overrides `?name=` and the token's name; `password` answers a locked room.
    /// May be sent again after a `password_required`, `wrong_password` or `host_required` error.
    Join {
        protocol_version: u32,
        #[serde(default)]
        display_name: Option<String>,
        #[serde(default)]
        password: Option<String>,
    },
    /// First message on a replacement connection: take back the place held by `token`
    /// (the `resume_token` of the last `welcome`) within the reconnect grace period.
    Resume {
        protocol_version: u32,
        token: String,
    },
    /// Leave the room now (closing the socket without it starts the reconnect grace period instead).
    Leave,
    /// Change one's own display name.
    SetDisplayName { name: String },
    /// Report one's own media state; absent fields are unchanged.
    SetMediaState {
        #[serde(default)]
        audio_muted: Option<bool>,
        #[serde(default)]
        video_muted: Option<bool>,
        #[serde(default)]
        screen_sharing: Option<bool>,
    },
    /// Raise or lower one's hand.
    RaiseHand { raised: bool },
    /// Send a reaction to everyone.
    Reaction { reaction: Reaction },
    /// A chat message to the room, or privately to participant `to`.
    Chat {
        text: String,
        #[serde(default)]
        to: Option<ParticipantId>,
    },
    /// Moderator: make `participant` a moderator too.
    GrantModerator { participant: ParticipantId },
    /// Moderator: mute `participant`'s audio or video.
    Mute {
        participant: ParticipantId,
        kind: TrackKind,
    },
    /// Moderator: mute everyone's audio or video except one's own.
    MuteAll { kind: TrackKind },
    /// Moderator: remove `participant` from the room.
    Kick {
        participant: ParticipantId,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Moderator: end the meeting for everyone.
    EndMeeting,
    /// Moderator: lock the room with `password`, or unlock it with null.
    SetPassword {
        #[serde(default)]
        password: Option<String>,
    },
    /// Moderator: turn the lobby on or off (off admits everyone waiting).
    SetLobby { enabled: bool },
    /// Moderator: let a knocker in.
    Admit { participant: ParticipantId },
    /// Moderator: turn a knocker away.
    Deny { participant: ParticipantId },
    /// Write one room metadata key; a null `value` deletes it. Moderators only unless configured otherwise.
    SetMetadata {
        key: String,
        #[serde(default)]
        value: serde_json::Value,
    },
    /// Moderator: start recording the meeting. Everyone learns of it through the `recording` metadata key.
    StartRecording,
    /// Moderator: stop recording the meeting.
    StopRecording,
    /// The client's SDP offer: the first one, and every renegotiation when it adds or removes tracks.
    /// `sources` maps each sending transceiver's mid to what it carries.
    SdpOffer {
        sdp: String,
        #[serde(default)]
        sources: BTreeMap<String, MediaSource>,
    },
    /// The client's answer to a server offer.
    SdpAnswer { sdp: String },
    /// The sizes at which the client shows its received video tracks, by receiving mid: the
    /// full map each time (a mid left out has no size and gets the best layer).
    TileSizes { tiles: BTreeMap<String, TileSize> },
    /// Last-N: receive camera video of at most `last_n` other participants, the most recent
    /// speakers. 0 asks for as many as the server forwards. Capped by the server's own limit;
    /// more than [`MAX_LAST_N`] is an `invalid_value` error.
    SetLastN { last_n: u32 },
}

impl ClientMessage {
    /// Every `type` a client may send, in declaration order.
    pub const TYPES: &'static [&'static str] = &[
        "join",
        "resume",
        "leave",
        "set_display_name",
        "set_media_state",
        "raise_hand",
        "reaction",
        "chat",
        "grant_moderator",
        "mute",
        "mute_all",
        "kick",
        "end_meeting",
        "set_password",
        "set_lobby",
        "admit",
        "deny",
        "set_metadata",
        "start_recording",
        "stop_recording",
        "sdp_offer",
        "sdp_answer",
        "tile_sizes",
        "set_last_n",
    ];

    /// This message's `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Resume { .. } => "resume",
            Self::Leave => "leave",
            Self::SetDisplayName { .. } => "set_display_name",
            Self::SetMediaState { .. } => "set_media_state",
            Self::RaiseHand { .. } => "raise_hand",
            Self::Reaction { .. } => "reaction",
            Self::Chat { .. } => "chat",
            Self::GrantModerator { .. } => "grant_moderator",
            Self::Mute { .. } => "mute",
            Self::MuteAll { .. } => "mute_all",
            Self::Kick { .. } => "kick",
            Self::EndMeeting => "end_meeting",
            Self::SetPassword { .. } => "set_password",
            Self::SetLobby { .. } => "set_lobby",
            Self::Admit { .. } => "admit",
            Self::Deny { .. } => "deny",
            Self::SetMetadata { .. } => "set_metadata",
            Self::StartRecording => "start_recording",
            Self::StopRecording => "stop_recording",
            Self::SdpOffer { .. } => "sdp_offer",
            Self::SdpAnswer { .. } => "sdp_answer",
            Self::TileSizes { .. } => "tile_sizes",
            Self::SetLastN { .. } => "set_last_n",
        }
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// Admitted (or resumed): the full room state. `you` is this connection's participant id,
    /// `participants` includes it. `knockers` is filled for moderators only.
    Welcome {
        protocol_version: u32,
        you: ParticipantId,
        resume_token: String,
        room: RoomInfo,
        participants: Vec<ParticipantInfo>,
        metadata: Metadata,
        chat_history: Vec<ChatMessage>,
        knockers: Vec<Knocker>,
        /// TURN servers with credentials minted for this participant; empty when TURN is off or
        /// not answering. Absent in messages from older servers.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// Someone entered the room.
    ParticipantJoined { participant: ParticipantInfo },
    /// Someone's name, role, mute state, screen share or hand changed; the whole record is sent.
    ParticipantUpdated { participant: ParticipantInfo },
    /// Someone is no longer in the room.
    ParticipantLeft {
        participant: ParticipantId,
        reason: LeaveReason,
    },
    /// The room was locked/unlocked or the lobby turned on/off.
    RoomUpdated { room: RoomInfo },
    /// The whole metadata map, after any change.
    Metadata { metadata: Metadata },
    /// A chat message (room-wide, or private to or from this participant).
    Chat { message: ChatMessage },
    /// Someone reacted.
    Reaction {
        participant: ParticipantId,
        reaction: Reaction,
    },
    /// A moderator muted this participant's audio or video: the client must stop sending it.
    Muted { kind: TrackKind, by: ParticipantId },
    /// To a knocker: you are waiting in the lobby.
    LobbyWaiting,
    /// To moderators: someone is knocking.
    Knock { knocker: Knocker },
    /// To moderators: a knock ended. `by` is the moderator who decided, if any.
    KnockResolved {
        participant: ParticipantId,
        outcome: KnockOutcome,
        #[serde(default)]
        by: Option<ParticipantId>,
    },
    /// To a knocker: a moderator turned you away. The server closes the connection next.
    LobbyDenied,
    /// To the kicked participant; `by` is null when the operator did it. The server closes the connection next.
    Kicked {
        #[serde(default)]
        by: Option<ParticipantId>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The meeting is over for everyone; `by` is null when the operator ended it. The connection closes next.
    MeetingEnded {
        #[serde(default)]
        by: Option<ParticipantId>,
    },
    /// A request failed; nothing changed. `request` is the `type` of the message that failed, when known.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default)]
        request: Option<String>,
    },
    /// The server's answer to a client offer.
    SdpAnswer { sdp: String },
    /// A server-initiated renegotiation: other participants' tracks were added or removed.
    SdpOffer { sdp: String },
    /// The full map of this client's receiving mids to the participant and source they carry.
    Tracks { tracks: Vec<TrackInfo> },
    /// A media negotiation failed (malformed SDP, no usable codec, ...). The session is unchanged.
    MediaError { code: String, message: String },
    /// The participant who holds the floor changed (or, right after the media session opens,
    /// who holds it now). Null when nobody has spoken yet or the last speaker left.
    DominantSpeaker {
        #[serde(default)]
        participant: Option<ParticipantId>,
    },
    /// The full list of this client's receiving video mids that last-N currently does not
    /// forward; the client shows the participant's avatar instead of a frozen frame. Sent
    /// whenever the list changes. A mid that leaves the list resumes at a keyframe.
    PausedTracks { mids: Vec<String> },
}

impl ServerMessage {
    /// Every `type` the server may send, in declaration order.
    pub const TYPES: &'static [&'static str] = &[
        "welcome",
        "participant_joined",
        "participant_updated",
        "participant_left",
        "room_updated",
        "metadata",
        "chat",
        "reaction",
        "muted",
        "lobby_waiting",
        "knock",
        "knock_resolved",
        "lobby_denied",
        "kicked",
        "meeting_ended",
        "error",
        "sdp_answer",
        "sdp_offer",
        "tracks",
        "media_error",
        "dominant_speaker",
        "paused_tracks",
    ];

    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            request: request.map(str::to_owned),
        }
    }

    /// This message's `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::ParticipantJoined { .. } => "participant_joined",
            Self::ParticipantUpdated { .. } => "participant_updated",
            Self::ParticipantLeft { .. } => "participant_left",
            Self::RoomUpdated { .. } => "room_updated",
            Self::Metadata { .. } => "metadata",
            Self::Chat { .. } => "chat",
            Self::Reaction { .. } => "reaction",
            Self::Muted { .. } => "muted",
            Self::LobbyWaiting => "lobby_waiting",
            Self::Knock { .. } => "knock",
            Self::KnockResolved { .. } => "knock_resolved",
            Self::LobbyDenied => "lobby_denied",
            Self::Kicked { .. } => "kicked",
            Self::MeetingEnded { .. } => "meeting_ended",
            Self::Error { .. } => "error",
            Self::SdpAnswer { .. } => "sdp_answer",
            Self::SdpOffer { .. } => "sdp_offer",
            Self::Tracks { .. } => "tracks",
            Self::MediaError { .. } => "media_error",
            Self::DominantSpeaker { .. } => "dominant_speaker",
            Self::PausedTracks { .. } => "paused_tracks",
        }
    }
}

#[cfg(test)]
mod tests;
