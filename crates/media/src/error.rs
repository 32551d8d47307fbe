//! Errors the media core reports for one participant; none of them affects other sessions.

/// A per-participant media error. Client mistakes become a `media_error` signaling message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The participant has no media session (never joined, left, or its media closed).
    #[error("no media session for this participant")]
    NotJoined,
    /// The server is at its configured session limit.
    #[error("media server is full")]
    Full,
    /// The SDP text could not be parsed.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The SDP parsed but could not be applied (str0m rejected it).
    #[error("SDP rejected: {0}")]
    SdpRejected(String),
    /// None of the offered codecs of a sending m-line is one the server forwards.
    #[error("no usable codec for mid {0}")]
    NoUsableCodec(String),
    /// An answer arrived while the server had no offer outstanding (or a newer one).
    #[error("answer does not match an outstanding server offer")]
    UnexpectedAnswer,
    /// The `sources` map names too many mids or a mid that is too long.
    #[error("invalid sources map: {0}")]
    InvalidSources(String),
    /// A `tile_sizes` message names too many mids, a mid that is too long, or a huge size.
    #[error("invalid tile sizes: {0}")]
    InvalidTileSizes(String),
    /// The media engine is not running (the server is shutting down).
    #[error("media session is closed")]
    Closed,
    /// A non-media message was handed to the media engine.
    #[error("not a media message")]
    NotMedia,
}

impl MediaError {
    /// The stable `code` of the `media_error` message.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::NotJoined => "not_joined",
            MediaError::Full => "server_full",
            MediaError::MalformedSdp(_) => "malformed_sdp",
            MediaError::SdpRejected(_) => "sdp_rejected",
            MediaError::NoUsableCodec(_) => "no_usable_codec",
            MediaError::UnexpectedAnswer => "unexpected_answer",
            MediaError::InvalidSources(_) => "invalid_sources",
            MediaError::InvalidTileSizes(_) => "invalid_tile_sizes",
            MediaError::Closed => "media_unavailable",
            MediaError::NotMedia => "not_media",
        }
    }
}
