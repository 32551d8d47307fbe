//! The one place where rooms talk to the media engine: open, feed and close a participant's media session.
//!
//! Everything media-specific the room task needs goes through [`MediaLink`], so the room code does not
//! depend on how the media loop is built.

use convene_proto::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;

/// What the media engine tells a room about one participant.
#[derive(Debug)]
pub enum MediaEvent {
    /// A message for the participant's WebSocket (sdp_answer, sdp_offer, tracks, media_error).
    Signal(ServerMessage),
    /// The participant's media transport failed (ICE consent, DTLS); its session is gone.
    Closed { reason: String },
}

/// A media failure to report to the client as `media_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFailure {
    pub code: String,
    pub message: String,
}

/// Handle to the media engine, or none when this server runs without media.
#[derive(Clone, Debug, Default)]
pub struct MediaLink {
    handle: Option<crate::media::MediaHandle>,
}

impl From<crate::media::MediaError> for MediaFailure {
    fn from(e: crate::media::MediaError) -> Self {
        MediaFailure {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

impl MediaLink {
    /// A link for a server without a media engine: signaling works, SDP gets `media_unavailable`.
    pub fn none() -> Self {
        Self { handle: None }
    }

    /// A link to the running media loop.
    pub fn new(handle: crate::media::MediaHandle) -> Self {
        Self {
            handle: Some(handle),
        }
    }

    /// Registers an admitted participant's media session; its events go to `events`.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<(), MediaFailure> {
        match &self.handle {
            Some(h) => Ok(h.join(room, participant, events).await?),
            None => Ok(()),
        }
    }

    /// Forwards a client's `sdp_offer` / `sdp_answer`.
    pub async fn signal(&self, participant: &str, msg: ClientMessage) -> Result<(), MediaFailure> {
        if let Some(h) = &self.handle {
            return Ok(h.signal(participant, msg).await?);
        }
        Err(MediaFailure {
            code: "media_unavailable".into(),
            message: "this server has no media engine running".into(),
        })
    }

    /// The participant left, was kicked, or the room ended.
    pub async fn leave(&self, participant: &str) {
        if let Some(h) = &self.handle {
            h.leave(participant).await;
        }
    }
}
