//! The WebM writer: one track's frames in, file bytes out, written so that a file cut off anywhere
//! still plays up to its last complete block.
//!
//! Layout while recording: EBML header, a Segment of unknown size, a Void reserved for the SeekHead,
//! Info (with a Void reserved for the Duration), Tracks, then Clusters of unknown size, each starting
//! on a keyframe when there is one and never longer than `max_cluster_duration`. Nothing written
//! needs to be revisited while recording, so a reader of a truncated file finds every block that
//! was completely written. On a clean stop [`WebmWriter::finish`] appends the Cues and returns
//! [`Patch`]es (segment and cluster sizes, SeekHead, Duration) for an output that can seek.

use std::time::Duration;

use crate::codec::{self, Codec, Dimensions};
use crate::ebml;

/// What the file says about its one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub codec: Codec,
    /// Shown by players as the track name (the participant's name and source, for example).
    pub name: Option<String>,
    /// Video only; taken from the first keyframe.
    pub dimensions: Option<Dimensions>,
    /// Audio only.
    pub channels: u8,
    pub codec_private: Option<Vec<u8>>,
}

impl TrackSpec {
    /// Describes a track from its first frame. Video needs a keyframe (the picture size and, for AV1,
    /// the sequence header come from it); `None` means "wait for one".
    pub fn from_first_frame(codec: Codec, frame: &[u8], name: Option<String>) -> Option<TrackSpec> {
        let mut spec = TrackSpec {
            codec,
            name,
            dimensions: None,
            channels: 0,
            codec_private: None,
        };
        match codec {
            Codec::Opus => {
                spec.channels = codec::opus_channels(frame);
                spec.codec_private = Some(codec::opus_head(spec.channels));
            }
            Codec::Vp8 | Codec::Vp9 => {
                spec.dimensions = Some(codec::keyframe_dimensions(codec, frame)?);
            }
            Codec::Av1 => {
                let header = codec::av1_sequence_header(frame)?;
                spec.dimensions = Some(header.dimensions);
                spec.codec_private = Some(header.codec_private);
            }
        }
        Some(spec)
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A cluster is closed after this long even without a keyframe. Clamped to 30 s, since block
    /// timestamps are 16-bit milliseconds relative to their cluster.
    pub max_cluster_duration: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_cluster_duration: Duration::from_secs(5),
        }
    }
}

/// Bytes to write at an absolute file offset when finishing a file that can be seeked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The result of a clean stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Media duration of the file.
    pub duration: Duration,
    /// Overwrites that turn the streaming layout into a fully indexed file; optional to apply.
    pub patches: Vec<Patch>,
    pub frames: u64,
    pub bytes: u64,
}

/// What happened to a frame given to [`WebmWriter::write_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Frame,
    /// A video delta frame before the first keyframe: it cannot be decoded, so it is not written.
    SkippedBeforeKeyframe,
}

const TRACK_NUMBER: u64 = 1;
const SEEK_HEAD_RESERVED: usize = 80;
const DURATION_RESERVED: usize = 11;
const MAX_CLUSTER_MS: u64 = 30_000;

struct Cluster {
    timestamp_ms: u64,
    blocks: u32,
}

struct CuePoint {
    time_ms: u64,
    /// Cluster offset relative to the Segment's data.
    position: u64,
}

/// A streaming WebM writer for one track. Sans-IO: every method appends to the caller's buffer.
pub struct WebmWriter {
    codec: Codec,
    options: WriterOptions,
    position: u64,
    segment_size_offset: u64,
    segment_data_offset: u64,
    seek_head_offset: u64,
    info_offset: u64,
    duration_offset: u64,
    tracks_offset: u64,
    cluster: Option<Cluster>,
    cluster_offsets: Vec<u64>,
    cues: Vec<CuePoint>,
    started: bool,
    last_ms: u64,
    last_frame_ms: u64,
    frames: u64,
}

impl WebmWriter {
    /// Starts a file: appends the headers to `out`.
    pub fn new(track: &TrackSpec, options: WriterOptions, out: &mut Vec<u8>) -> WebmWriter {
        let start = out.len();
        let mut header = Vec::new();
        ebml::uint(&mut header, ebml::EBML_VERSION, 1);
        ebml::uint(&mut header, ebml::EBML_READ_VERSION, 1);
        ebml::uint(&mut header, ebml::EBML_MAX_ID_LENGTH, 4);
        ebml::uint(&mut header, ebml::EBML_MAX_SIZE_LENGTH, 8);
        ebml::bytes(&mut header, ebml::DOC_TYPE, b"webm");
        ebml::uint(&mut header, ebml::DOC_TYPE_VERSION, 4);
        ebml::uint(&mut header, ebml::DOC_TYPE_READ_VERSION, 2);
        ebml::master(out, ebml::EBML, &header);

        ebml::id(out, ebml::SEGMENT);
        let segment_size_offset = (out.len() - start) as u64;
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let segment_data_offset = (out.len() - start) as u64;

        let seek_head_offset = (out.len() - start) as u64;
        ebml::void(out, SEEK_HEAD_RESERVED);

        let info_offset = (out.len() - start) as u64;
        let mut info = Vec::new();
        ebml::uint(&mut info, ebml::TIMESTAMP_SCALE, 1_000_000);
        ebml::bytes(&mut info, ebml::MUXING_APP, b"convene");
        ebml::bytes(&mut info, ebml::WRITING_APP, b"convene");
        let duration_in_info = info.len();
        ebml::void(&mut info, DURATION_RESERVED);
        ebml::id(out, ebml::INFO);
        ebml::size(out, info.len() as u64);
        let duration_offset = (out.len() - start + duration_in_info) as u64;
        out.extend_from_slice(&info);

        let tracks_offset = (out.len() - start) as u64;
        let mut entry = Vec::new();
        ebml::uint(&mut entry, ebml::TRACK_NUMBER, TRACK_NUMBER);
        ebml::uint(&mut entry, ebml::TRACK_UID, TRACK_NUMBER);
        ebml::uint(
            &mut entry,
            ebml::TRACK_TYPE,
            if track.codec.is_video() { 1 } else { 2 },
        );
        ebml::uint(&mut entry, ebml::FLAG_LACING, 0);
        if let Some(name) = &track.name {
            ebml::bytes(&mut entry, ebml::NAME, name.as_bytes());
        }
        ebml::bytes(
            &mut entry,
            ebml::CODEC_ID,
            track.codec.matroska_id().as_bytes(),
        );
        if let Some(private) = &track.codec_private {
            ebml::bytes(&mut entry, ebml::CODEC_PRIVATE, private);
        }
        if track.codec.is_video() {
            let mut video = Vec::new();
            if let Some(d) = track.dimensions {
                ebml::uint(&mut video, ebml::PIXEL_WIDTH, u64::from(d.width));
                ebml::uint(&mut video, ebml::PIXEL_HEIGHT, u64::from(d.height));
            }
            ebml::master(&mut entry, ebml::VIDEO, &video);
        } else {
            ebml::uint(&mut entry, ebml::CODEC_DELAY, 0);
            // Opus decoders need 80 ms of preceding packets to converge after a seek (RFC 7845).
            ebml::uint(&mut entry, ebml::SEEK_PRE_ROLL, 80_000_000);
            let mut audio = Vec::new();
            ebml::float(&mut audio, ebml::SAMPLING_FREQUENCY, 48_000.0);
            ebml::uint(&mut audio, ebml::CHANNELS, u64::from(track.channels.max(1)));
            ebml::master(&mut entry, ebml::AUDIO, &audio);
        }
        let mut tracks = Vec::new();
        ebml::master(&mut tracks, ebml::TRACK_ENTRY, &entry);
        ebml::master(out, ebml::TRACKS, &tracks);

        let mut options = options;
        options.max_cluster_duration = options.max_cluster_duration.clamp(
            Duration::from_millis(1),
            Duration::from_millis(MAX_CLUSTER_MS),
        );
        WebmWriter {
            codec: track.codec,
            options,
            position: (out.len() - start) as u64,
            segment_size_offset,
            segment_data_offset,
            seek_head_offset,
            info_offset,
            duration_offset,
            tracks_offset,
            cluster: None,
            cluster_offsets: Vec::new(),
            cues: Vec::new(),
            started: false,
            last_ms: 0,
            last_frame_ms: 0,
            frames: 0,
        }
    }

    /// Bytes produced so far.
    pub fn bytes_written(&self) -> u64 {
        self.position
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Timestamp of the last frame written.
    pub fn last_timestamp(&self) -> Duration {
        Duration::from_millis(self.last_ms)
    }

    /// Appends one frame. `timestamp` is media time from the start of the file; a timestamp earlier
    /// than the previous frame's is written as the previous one (WebRTC media has no reordered frames,
    /// and a decreasing timestamp would make the file unplayable).
    pub fn write_frame(
        &mut self,
        timestamp: Duration,
        keyframe: bool,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Written {
        let video = self.codec.is_video();
        if video && !self.started && !keyframe {
            return Written::SkippedBeforeKeyframe;
        }
        let keyframe = keyframe || !video;
        let stripped;
        let data = if self.codec == Codec::Av1 {
            stripped = codec::av1_strip_temporal_delimiters(data);
            stripped.as_deref().unwrap_or(data)
        } else {
            data
        };
        // Block times must rise: two frames in one millisecond (the first keyframe of another
        // simulcast layer repeats the capture time of the frame before it, give or take a
        // tick) would make players and ffmpeg see equal decode times.
        let floor = if self.frames > 0 {
            self.last_ms.saturating_add(1)
        } else {
            0
        };
        let ms = u64::try_from(timestamp.as_millis())
            .unwrap_or(u64::MAX)
            .max(floor);
        let max_ms = self.options.max_cluster_duration.as_millis() as u64;
        let new_cluster = match &self.cluster {
            None => true,
            Some(c) => {
                let age = ms - c.timestamp_ms;
                (video && keyframe && c.blocks > 0 && age > 0) || age >= max_ms
            }
        };
        if new_cluster {
            self.open_cluster(ms, keyframe, out);
        }
        let start = out.len();
        // The cluster was opened above if there was none.
        let cluster = self.cluster.as_mut().map_or(0, |c| {
            c.blocks += 1;
            c.timestamp_ms
        });
        let relative = (ms - cluster) as i16;
        ebml::id(out, ebml::SIMPLE_BLOCK);
        ebml::size(out, 4 + data.len() as u64);
        out.push(0x80 | TRACK_NUMBER as u8);
        out.extend_from_slice(&relative.to_be_bytes());
        out.push(if keyframe { 0x80 } else { 0x00 });
        out.extend_from_slice(data);

        self.position += (out.len() - start) as u64;
        if self.started {
            self.last_frame_ms = ms - self.last_ms;
        }
        self.started = true;
        self.last_ms = ms;
        self.frames += 1;
        if self.codec == Codec::Opus
            && let Some(d) = codec::opus_packet_duration(data)
        {
            self.last_frame_ms = d.as_millis() as u64;
        }
        Written::Frame
    }

    fn open_cluster(&mut self, ms: u64, keyframe: bool, out: &mut Vec<u8>) {
        let offset = self.position;
        let before = out.len();
        ebml::id(out, ebml::CLUSTER);
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        ebml::uint(out, ebml::TIMESTAMP, ms);
        self.position += (out.len() - before) as u64;
        self.cluster = Some(Cluster {
            timestamp_ms: ms,
            blocks: 0,
        });
        self.cluster_offsets.push(offset);
        if keyframe {
            self.cues.push(CuePoint {
                time_ms: ms,
                position: offset - self.segment_data_offset,
            });
        }
    }

    /// Ends the file: appends the Cues to `out` and returns the patches that complete the header.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Finished {
        let start = out.len();
        let cues_offset = self.position;
        let mut cues = Vec::new();
        for cue in &self.cues {
            let mut positions = Vec::new();
            ebml::uint(&mut positions, ebml::CUE_TRACK, TRACK_NUMBER);
            ebml::uint(&mut positions, ebml::CUE_CLUSTER_POSITION, cue.position);
            let mut point = Vec::new();
            ebml::uint(&mut point, ebml::CUE_TIME, cue.time_ms);
            ebml::master(&mut point, ebml::CUE_TRACK_POSITIONS, &positions);
            ebml::master(&mut cues, ebml::CUE_POINT, &point);
        }
        if !cues.is_empty() {
            ebml::master(out, ebml::CUES, &cues);
        }
        self.position += (out.len() - start) as u64;
        let end = self.position;

        let mut patches = Vec::new();
        patches.push(Patch {
            offset: self.segment_size_offset,
            bytes: ebml::size8(end - self.segment_data_offset).to_vec(),
        });
        // Each cluster ends where the next one (or the Cues, or the file) begins.
        let ends = self
            .cluster_offsets
            .iter()
            .skip(1)
            .copied()
            .chain(std::iter::once(cues_offset));
        for (&offset, cluster_end) in self.cluster_offsets.iter().zip(ends) {
            let data_start = offset + 4 + 8;
            patches.push(Patch {
                offset: offset + 4,
                bytes: ebml::size8(cluster_end - data_start).to_vec(),
            });
        }

        let mut seek_head = Vec::new();
        let mut entries = vec![
            (ebml::INFO, self.info_offset),
            (ebml::TRACKS, self.tracks_offset),
        ];
        if !cues.is_empty() {
            entries.push((ebml::CUES, cues_offset));
        }
        for (element, offset) in entries {
            let mut id = Vec::new();
            ebml::id(&mut id, element);
            let mut seek = Vec::new();
            // Every id here is four bytes, and uint8 is eight: the SeekHead's size is fixed.
            ebml::bytes(&mut seek, ebml::SEEK_ID, &id);
            ebml::uint8(
                &mut seek,
                ebml::SEEK_POSITION,
                offset - self.segment_data_offset,
            );
            ebml::master(&mut seek_head, ebml::SEEK, &seek);
        }
        let mut bytes = Vec::new();
        ebml::master(&mut bytes, ebml::SEEK_HEAD, &seek_head);
        let rest = SEEK_HEAD_RESERVED - bytes.len();
        ebml::void(&mut bytes, rest);
        patches.push(Patch {
            offset: self.seek_head_offset,
            bytes,
        });

        let duration_ms = if self.frames == 0 {
            0
        } else {
            self.last_ms + self.last_frame_ms
        };
        let mut bytes = Vec::new();
        ebml::float(&mut bytes, ebml::DURATION, duration_ms as f64);
        debug_assert_eq!(bytes.len(), DURATION_RESERVED);
        patches.push(Patch {
            offset: self.duration_offset,
            bytes,
        });

        Finished {
            duration: Duration::from_millis(duration_ms),
            patches,
            frames: self.frames,
            bytes: end,
        }
    }
}

/// Applies patches to a complete file held in memory (for tests and small outputs).
pub fn apply_patches(file: &mut [u8], patches: &[Patch]) {
    for patch in patches {
        let at = usize::try_from(patch.offset).unwrap_or(usize::MAX);
        if let Some(target) = file.get_mut(at..at.saturating_add(patch.bytes.len())) {
            target.copy_from_slice(&patch.bytes);
        }
    }
}
