//! Validation of room metadata writes: key shape, size caps, server-owned keys, the whiteboard value.

use convene_proto::{ErrorCode, Metadata};
use serde_json::Value;

use crate::Config;

/// Longest metadata key, in bytes.
pub const MAX_KEY_BYTES: usize = 64;

/// Why a metadata write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError {
    pub code: ErrorCode,
    pub message: String,
}

impl MetadataError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MetadataError {}

/// Checks a write of `value` (null = delete) to `key`. `by_server` writes may touch server-owned keys.
pub(crate) fn check_write(
    config: &Config,
    current: &Metadata,
    key: &str,
    value: &Value,
    by_server: bool,
) -> Result<(), MetadataError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(MetadataError::new(
            ErrorCode::InvalidValue,
            format!("metadata keys are 1-{MAX_KEY_BYTES} bytes without control characters"),
        ));
    }
    if !by_server && config.server_owned_metadata_keys.iter().any(|k| k == key) {
        return Err(MetadataError::new(
            ErrorCode::ReadOnlyKey,
            format!("the metadata key `{key}` is owned by the server"),
        ));
    }
    if value.is_null() {
        return Ok(());
    }
    // Serializing a Value cannot fail: its keys are strings and it holds no non-finite floats.
    let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    if size > config.max_metadata_value_bytes {
        return Err(MetadataError::new(
            ErrorCode::TooLarge,
            format!(
                "metadata values are at most {} bytes of JSON",
                config.max_metadata_value_bytes
            ),
        ));
    }
    if !current.contains_key(key) && current.len() >= config.max_metadata_keys {
        return Err(MetadataError::new(
            ErrorCode::TooLarge,
            format!(
                "the room already has {} metadata keys",
                config.max_metadata_keys
            ),
        ));
    }
    if key == "whiteboard" {
        check_whiteboard(value)?;
    }
    Ok(())
}

/// The whiteboard key is read by every client to open the same Excalidraw room, so a malformed value
/// would break the whiteboard for everyone: `{collabDetails: {roomId, roomKey}, collabServerUrl?}`.
fn check_whiteboard(value: &Value) -> Result<(), MetadataError> {
    let bad = || {
        MetadataError::new(
            ErrorCode::InvalidValue,
            "`whiteboard` must be {\"collabDetails\": {\"roomId\": string, \"roomKey\": string}, \"collabServerUrl\": string}",
        )
    };
    let details = value.get("collabDetails").ok_or_else(bad)?;
    for field in ["roomId", "roomKey"] {
        match details.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(bad()),
        }
    }
    match value.get("collabServerUrl") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(bad()),
    }
}
