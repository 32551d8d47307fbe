//! Media description types shared by the SDP messages: what a track carries and whose it is.

use serde::{Deserialize, Serialize};

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Microphone,
    Camera,
    Screen,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Audio,
    Video,
}

/// One receiving transceiver of a client: which participant's which track arrives on `mid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInfo {
    pub mid: String,
    pub participant_id: String,
    pub kind: TrackKind,
    pub source: MediaSource,
}

/// The size, in device pixels, at which a client shows a received video track (0 x 0: hidden).
/// The server picks the simulcast layer from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileSize {
    pub width: u32,
    pub height: u32,
}
