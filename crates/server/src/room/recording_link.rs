//! The one place where rooms ask the recorder to start or stop recording a room.
//!
//! The room announces the result to everyone in the server-owned `recording` metadata key, so clients
//! learn of a recording the same way whoever started it (a moderator, the admin API, auto-record).

/// Handle to the recorder, or none when this server does not record.
#[derive(Clone, Debug, Default)]
pub struct RecordingLink {
    _private: (),
}

impl RecordingLink {
    /// A server without a recorder: every request is refused with a reason.
    pub fn none() -> Self {
        Self { _private: () }
    }

    /// Starts recording `room`. The error text is shown to whoever asked.
    pub async fn start(&self, room: &str) -> Result<(), String> {
        let _ = room;
        Err("recording is not available on this server".into())
    }

    /// Stops recording `room`.
    pub async fn stop(&self, room: &str) -> Result<(), String> {
        let _ = room;
        Err("recording is not available on this server".into())
    }
}
