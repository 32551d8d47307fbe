//! Convene's recording core: a sans-IO WebM writer, per-track frame timing and the recording manifest.
//!
//! The server's recorder subscribes to a room like a participant and hands every received frame to a
//! [`TrackRecorder`], which decides what goes into the file (video from a keyframe on, nothing after
//! a loss until the next keyframe) and on which clock, and drives a [`WebmWriter`] that turns frames
//! into bytes. Nothing here touches files or reads a clock: bytes come out in a `Vec<u8>` and time
//! comes in as an argument.
//!
//! Invariant: a file written by [`WebmWriter`] and cut off at any byte still decodes up to its last
//! complete block; finishing it cleanly only adds an index and fills in sizes and the duration.

mod bits;
pub mod codec;
pub mod compose;
pub mod config;
mod ebml;
pub mod manifest;
pub mod scene;
pub mod track;
pub mod webm;

pub use codec::{Codec, Dimensions};
pub use config::Config;
pub use manifest::Manifest;
pub use track::{FrameIn, Outcome, TrackRecorder};
pub use webm::{Finished, Patch, TrackSpec, WebmWriter, WriterOptions, Written};
