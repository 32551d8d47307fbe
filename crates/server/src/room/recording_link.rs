//! The one place where rooms ask the recorder to start or stop recording a room.
//!
//! The room announces the result to everyone in the server-owned `recording` metadata key, so clients
//! learn of a recording the same way whoever started it (a moderator, the admin API, auto-record).
//! Starting a recording opens its files ([`Recordings::start`]) and taps the room in the media loop,
//! which then feeds the recording like any other subscriber.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use convene_record::manifest::{Actor, EndReason, WhiteboardNote};

use crate::media::MediaHandle;
use crate::record::{Input, Recordings};

/// Handle to the recorder, or none when this server does not record.
#[derive(Clone, Default)]
pub struct RecordingLink {
    inner: Option<(Recordings, MediaHandle)>,
    /// The whiteboard relay's taps, for following a recorded room's scene.
    whiteboard: Option<convene_whiteboard::Taps>,
    /// Recordings (by id) being stopped on request: their room announces the stop itself. By id,
    /// not room: a stop that outlasts `STOP_WAIT` may still be closing files when the room's next
    /// recording ends by itself, and that end must still be announced.
    stopping: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for RecordingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingLink")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

const UNAVAILABLE: &str = "recording is not available on this server";

/// Longest a room waits for a stopped recording's files to close before it goes on (and announces
/// the stop). Closing takes milliseconds on a healthy disk; the room's signaling waits meanwhile.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl RecordingLink {
    /// A server without a recorder: every request is refused with a reason.
    pub fn none() -> Self {
        Self::default()
    }

    /// Records through `recordings`, with frames from the media loop behind `media`.
    pub fn new(recordings: Recordings, media: MediaHandle) -> Self {
        Self {
            inner: Some((recordings, media)),
            whiteboard: None,
            stopping: Arc::default(),
        }
    }

    /// Also records the whiteboard scenes that pass through this relay.
    pub fn with_whiteboard(mut self, taps: convene_whiteboard::Taps) -> Self {
        self.whiteboard = Some(taps);
        self
    }

    /// The room's `whiteboard` metadata is `metadata`: follows its scene if `room` is recorded and
    /// the key is usable. Returns what the manifest should say, `None` when `room` is not recorded.
    pub fn follow_whiteboard(
        &self,
        room: &str,
        metadata: &serde_json::Value,
    ) -> Option<WhiteboardNote> {
        let (recordings, _) = self.inner.as_ref()?;
        match &self.whiteboard {
            Some(taps) => recordings.follow_whiteboard(room, metadata, taps),
            // No relay in this process: the scene never passes through it.
            None => recordings.status(room).map(|_| WhiteboardNote::encrypted()),
        }
    }

    /// Whether `room` is recorded from its first participant on (config `auto_record*`).
    pub fn auto_records(&self, room: &str) -> bool {
        self.inner.as_ref().is_some_and(|(r, _)| {
            let c = r.config();
            c.enabled && (c.auto_record || c.auto_record_rooms.iter().any(|n| n == room))
        })
    }

    /// Starts recording `room` for `by`. The error text is shown to whoever asked.
    pub async fn start(&self, room: &str, by: Actor) -> Result<(), String> {
        let (recordings, media) = self.inner.as_ref().ok_or(UNAVAILABLE)?;
        let (_, sink) = recordings
            .start(room, by)
            .await
            .map_err(|e| e.to_string())?;
        if !media.subscribe_room(room, sink).await {
            let _ = recordings.stop(room, EndReason::Shutdown, None).await;
            return Err("the media engine is not running".into());
        }
        Ok(())
    }

    /// Stops recording `room` for `by`; returns once its files are closed, or after `STOP_WAIT`.
    pub async fn stop(&self, room: &str, by: Actor) -> Result<(), String> {
        self.end(room, EndReason::Stopped, Some(by)).await
    }

    /// Stops recording `room` for `reason`.
    pub async fn end(
        &self,
        room: &str,
        reason: EndReason,
        by: Option<Actor>,
    ) -> Result<(), String> {
        let (recordings, _) = self.inner.as_ref().ok_or(UNAVAILABLE)?;
        let id = recordings.status(room).map(|info| info.id);
        if let Some(id) = &id {
            self.lock_stopping().insert(id.clone());
        }
        let result = recordings.stop_within(room, reason, by, STOP_WAIT).await;
        if let (Err(_), Some(id)) = (&result, &id) {
            self.lock_stopping().remove(id);
        }
        result.map(|_| ()).map_err(|e| e.to_string())
    }

    fn lock_stopping(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of names: a panic elsewhere cannot leave it half-changed.
        self.stopping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the recording `id`, which just ended, was stopped on request (then the request's
    /// answer announces it); clears the mark.
    pub fn take_stopped_on_request(&self, id: &str) -> bool {
        self.lock_stopping().remove(id)
    }

    /// The id of `room`'s current recording and a future that resolves when it has ended; `None`
    /// when the room is not recorded.
    pub fn ended(
        &self,
        room: &str,
    ) -> Option<(String, impl std::future::Future<Output = ()> + use<>)> {
        let (recordings, _) = self.inner.as_ref()?;
        Some((recordings.status(room)?.id, recordings.ended(room)?))
    }

    /// Whether `room` is being recorded.
    pub fn is_recording(&self, room: &str) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|(r, _)| r.status(room).is_some())
    }

    /// Tells `room`'s recording (if any) about a participant, a chat message or the whiteboard.
    pub fn note(&self, room: &str, input: Input) {
        if let Some((recordings, _)) = &self.inner {
            recordings.note(room, input);
        }
    }
}
