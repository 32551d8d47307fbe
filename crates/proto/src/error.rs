//! Error codes the server sends back, and the client-message parser that produces the first few of them.

use serde::{Deserialize, Serialize};

use crate::ClientMessage;

/// Machine-readable reason in an `error` message; the human text travels beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON (or not a JSON object).
    BadJson,
    /// The `type` is not one this server knows.
    UnknownType,
    /// A known type with missing, extra or wrongly typed fields.
    BadMessage,
    /// A frame or a field exceeds its size cap.
    TooLarge,
    /// Too many messages too fast; the connection is closed right after.
    RateLimited,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// The message needs an admitted participant (send `join` first, or wait for the lobby).
    NotJoined,
    /// `join` or `resume` sent twice on one connection.
    AlreadyJoined,
    /// The room name in the URL is not valid.
    InvalidRoomName,
    /// A field has an unacceptable value (empty name, empty chat text, bad whiteboard value...).
    InvalidValue,
    /// The action needs the moderator role.
    Forbidden,
    /// The participant named in the message is not in the room (or not in the lobby).
    NotFound,
    /// The room is locked; send `join` again with a password.
    PasswordRequired,
    /// The password was wrong; send `join` again with another.
    WrongPassword,
    /// This server requires a token (`?jwt=`).
    TokenRequired,
    /// The token is malformed, expired, for another room, or its signature does not verify.
    TokenInvalid,
    /// Guests may enter only while a moderator with a token is in the room; try again later.
    HostRequired,
    /// The room has reached its participant limit.
    RoomFull,
    /// The resume token is unknown or its grace period has passed; join afresh.
    ResumeFailed,
    /// The metadata key is owned by the server and cannot be written by clients.
    ReadOnlyKey,
    /// The room is ending or the server is shutting down.
    Unavailable,
    /// A fault on the server's side.
    Internal,
}

/// Why a client frame could not be turned into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The frame's `type`, when it had a readable one.
    pub request: Option<String>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses one client text frame, telling apart "not JSON", "unknown type" and "bad fields" so the
/// client gets a precise error code. Never panics, whatever the input.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
        request: None,
    })?;
    let Some(object) = value.as_object() else {
        return Err(ParseError {
            code: ErrorCode::BadJson,
            message: "a message must be a JSON object".into(),
            request: None,
        });
    };
    let kind = match object.get("type") {
        Some(serde_json::Value::String(kind)) => kind.clone(),
        Some(_) => {
            return Err(ParseError {
                code: ErrorCode::BadMessage,
                message: "field `type` must be a string".into(),
                request: None,
            });
        }
        None => {
            return Err(ParseError {
                code: ErrorCode::BadMessage,
                message: "missing field `type`".into(),
                request: None,
            });
        }
    };
    if !ClientMessage::TYPES.contains(&kind.as_str()) {
        // Echo at most a short prefix of the unknown type so a huge `type` does not come back in full.
        let shown: String = kind.chars().take(64).collect();
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type `{shown}`"),
            request: None,
        });
    }
    serde_json::from_value(value).map_err(|e| ParseError {
        code: ErrorCode::BadMessage,
        message: format!("bad `{kind}` message: {e}"),
        request: Some(kind),
    })
}
