//! The recording manifest: one JSON file per recording that says what was recorded, when, from whom,
//! and which file holds what, so the composer (and any later tool) can line the files up.
//!
//! The server rewrites it whenever something changes (a file starts, someone joins), so a recording cut
//! off by a crash still has a manifest that names every file written so far.

use serde::{Deserialize, Serialize};

use crate::codec::Codec;

/// Version of the manifest's shape; bumped on incompatible changes.
pub const MANIFEST_VERSION: u32 = 1;
/// The manifest's file name inside a recording directory.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub recording_id: String,
    pub room: String,
    /// RFC 3339 wall-clock time of the recording's time zero.
    pub started_at: String,
    /// RFC 3339; absent while recording (or when the process died before a clean stop).
    pub ended_at: Option<String>,
    /// Length of the recording on its clock.
    pub duration_ms: Option<u64>,
    pub end_reason: Option<EndReason>,
    /// Who started the recording.
    #[serde(default)]
    pub started_by: Option<Actor>,
    /// Who stopped it, when someone did (not a limit, the room's end or a shutdown).
    #[serde(default)]
    pub stopped_by: Option<Actor>,
    pub participants: Vec<Participant>,
    pub files: Vec<TrackFile>,
    pub chat: Vec<ChatEntry>,
    pub whiteboard: WhiteboardNote,
    pub composition: Option<Composition>,
}

impl Manifest {
    pub fn new(recording_id: String, room: String, started_at: String) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            recording_id,
            room,
            started_at,
            ended_at: None,
            duration_ms: None,
            end_reason: None,
            started_by: None,
            stopped_by: None,
            participants: Vec::new(),
            files: Vec::new(),
            chat: Vec::new(),
            whiteboard: WhiteboardNote::default(),
            composition: None,
        }
    }

    /// Adds a participant, or updates the name of one already listed (a rejoin keeps one entry).
    pub fn participant_joined(&mut self, id: &str, name: &str, offset_ms: u64) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == id) {
            p.name = name.to_owned();
            p.left_ms = None;
            return;
        }
        self.participants.push(Participant {
            id: id.to_owned(),
            name: name.to_owned(),
            joined_ms: offset_ms,
            left_ms: None,
        });
    }

    pub fn participant_left(&mut self, id: &str, offset_ms: u64) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == id) {
            p.left_ms = Some(offset_ms);
        }
    }

    pub fn participant_name(&self, id: &str) -> Option<&str> {
        self.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A moderator or the admin API stopped it.
    Stopped,
    /// `max_duration` was reached.
    MaxDuration,
    /// Free disk space fell below `min_free_space`.
    DiskSpace,
    /// Everyone left or the room was ended.
    RoomEnded,
    /// The server shut down.
    Shutdown,
}

/// Who started or stopped a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A moderator, over signaling (the web app's record button).
    Participant { id: String, name: String },
    /// The operator, through the admin API.
    AdminApi,
    /// The server, because config says to record the room (`auto_record*`).
    AutoRecord,
}

impl Actor {
    /// The `kind` tag, as it appears in the manifest and the `recording` metadata key.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Participant { .. } => "participant",
            Actor::AdminApi => "admin_api",
            Actor::AutoRecord => "auto_record",
        }
    }

    /// For people: the participant's name, "admin API" or "auto-record".
    pub fn label(&self) -> &str {
        match self {
            Actor::Participant { name, .. } => name,
            Actor::AdminApi => "admin API",
            Actor::AutoRecord => "auto-record",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: String,
    pub name: String,
    /// When the participant was first seen, on the recording clock.
    pub joined_ms: u64,
    pub left_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Audio,
    Video,
}

/// One per-track WebM file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackFile {
    /// File name inside the recording directory.
    pub file: String,
    pub participant_id: String,
    /// The track within the participant's media (microphone, camera, screen).
    pub source: String,
    /// The track's id in the media session (its mid).
    pub track: String,
    pub kind: Kind,
    pub codec: Codec,
    /// Where the file's time zero lies on the recording clock.
    pub start_offset_ms: u64,
    /// Set on a clean stop.
    pub duration_ms: Option<u64>,
    pub frames: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEntry {
    pub offset_ms: u64,
    pub from_id: String,
    pub from_name: String,
    pub text: String,
}

/// What the recording says about the whiteboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhiteboardNote {
    pub used: bool,
    /// The final scene, when the server could read it (older manifests; now see `file`).
    pub scene: Option<serde_json::Value>,
    /// The final scene as an Excalidraw file inside the recording directory.
    #[serde(default)]
    pub file: Option<String>,
    pub note: String,
}

impl Default for WhiteboardNote {
    fn default() -> Self {
        Self {
            used: false,
            scene: None,
            file: None,
            note: "the whiteboard was not opened during the recording".to_owned(),
        }
    }
}

impl WhiteboardNote {
    /// The whiteboard is open and the server follows its scene with the key from the room's
    /// metadata; the note is replaced when the scene file is written.
    pub fn followed() -> WhiteboardNote {
        WhiteboardNote {
            used: true,
            scene: None,
            file: None,
            note: "the whiteboard was opened; the server holds its key (the room's `whiteboard` metadata), \
                   but no scene reached it while recording (nothing drawn yet; clients resend the whole \
                   scene every 20 s)"
                .to_owned(),
        }
    }

    /// The final scene was written to `file`.
    pub fn saved(file: &str) -> WhiteboardNote {
        WhiteboardNote {
            used: true,
            scene: None,
            file: Some(file.to_owned()),
            note: format!(
                "the whiteboard's final scene, decrypted with the key in the room's metadata, is in {file}"
            ),
        }
    }

    /// The whiteboard was opened with metadata that holds no key the server can use (a client
    /// other than the web app), so its end-to-end encrypted scene is not part of the recording.
    pub fn encrypted() -> WhiteboardNote {
        WhiteboardNote {
            used: true,
            scene: None,
            file: None,
            note: "the whiteboard was used, but its metadata holds no key the server can use; the scene is \
                   end-to-end encrypted, so it is not part of the recording"
                .to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Composition {
    pub status: CompositionStatus,
    /// File name inside the recording directory, when produced.
    pub file: Option<String>,
    pub message: Option<String>,
    pub elapsed_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompositionStatus {
    Done,
    Failed,
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_one_entry_per_participant() {
        let mut m = Manifest::new("r1".into(), "standup".into(), "2025-01-01T10:00:00Z".into());
        m.participant_joined("p1", "Ada", 0);
        m.participant_left("p1", 5000);
        m.participant_joined("p1", "Ada L.", 7000);
        assert_eq!(m.participants.len(), 1);
        assert_eq!(m.participant_name("p1"), Some("Ada L."));
        assert_eq!(m.participants[0].left_ms, None);
        m.files.push(TrackFile {
            file: "p1-camera-1.webm".into(),
            participant_id: "p1".into(),
            source: "camera".into(),
            track: "1".into(),
            kind: Kind::Video,
            codec: Codec::Vp8,
            start_offset_ms: 120,
            duration_ms: None,
            frames: None,
            bytes: None,
        });
        m.whiteboard = WhiteboardNote::encrypted();
        m.started_by = Some(Actor::AdminApi);
        m.stopped_by = Some(Actor::Participant {
            id: "p1".into(),
            name: "Ada".into(),
        });
        let json = m.to_json();
        assert!(json.contains("\"codec\": \"vp8\""), "{json}");
        assert!(json.contains("\"kind\": \"admin_api\""), "{json}");
        assert!(json.contains("\"kind\": \"participant\""), "{json}");
        assert!(json.contains("\"kind\": \"video\""), "{json}");
        assert_eq!(Manifest::from_json(&json).expect("parses"), m);
    }

    #[test]
    fn a_manifest_without_actors_still_parses() {
        let m = Manifest::new("r1".into(), "standup".into(), "2025-01-01T10:00:00Z".into());
        let mut v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("started_by");
        o.remove("stopped_by");
        assert_eq!(Manifest::from_json(&v.to_string()).expect("parses"), m);
        assert_eq!(Actor::AutoRecord.label(), "auto-record");
        assert_eq!(Actor::AdminApi.kind(), "admin_api");
    }
}
