//! Recording without a browser: the recorder subscribes to a room's media like a participant and
//! writes one WebM file per track, a manifest, then a composed file and the finalize command.
//!
//! The media loop delivers frames to a [`FrameSink`] (one per recording, owned by the loop); the sink
//! hands them to the recording's task over a bounded queue and never blocks the loop. If the queue is
//! full the frame is dropped and the track's next frame is marked as following a loss, so the writer
//! waits for a keyframe and asks for one through [`FrameSink::keyframe_requests`].
//! The writing itself (timing, keyframe gating, WebM bytes) is `convene-record`, which does no IO;
//! the recording's task turns frames into bytes and hands them to its [`writer`] thread, the only
//! place that touches the recording's files, so a slow disk never blocks the async runtime.

mod disk;
mod metrics;
mod process;
mod session;
#[cfg(test)]
mod tests;
pub mod whiteboard;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use convene_record::manifest::{Actor, EndReason, Manifest, WhiteboardNote};
use convene_record::{Codec, Config};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use metrics::Metrics;
pub use session::Closed;

/// Frames queued between the media loop and one recording's writer (about 10 s of a 2-person call).
const QUEUE: usize = 2048;

/// A received frame of a published track, as the media loop hands it to the recorder.
#[derive(Debug, Clone)]
pub struct MediaFrame {
    pub participant: String,
    /// Identifies the published track in the media core; stable while it is published.
    pub track: u64,
    /// The track's mid in the publisher's session.
    pub mid: String,
    /// microphone, camera or screen.
    pub source: String,
    pub codec: Codec,
    pub rtp_time: u64,
    pub clock_rate: u32,
    pub network_time: Instant,
    pub keyframe: bool,
    /// False when packets were lost before this frame.
    pub contiguous: bool,
    pub data: Arc<[u8]>,
}

/// Everything a recording task is told.
#[derive(Debug)]
pub enum Input {
    Frame(MediaFrame),
    /// The track was unpublished: its file is closed; a new publication gets a new file.
    TrackEnded {
        track: u64,
    },
    Participant {
        id: String,
        name: String,
        present: bool,
    },
    Chat {
        from_id: String,
        from_name: String,
        text: String,
    },
    Whiteboard(WhiteboardNote),
    /// Elements of a whiteboard scene payload, decrypted (see [`whiteboard`]).
    WhiteboardElements(Vec<serde_json::Value>),
    /// Stop for this reason; who asked, if someone did.
    Stop(EndReason, Option<Actor>),
}

/// The media loop's end of a recording: owned by the loop, used without blocking.
pub struct FrameSink {
    pub recording: String,
    tx: mpsc::Sender<Input>,
    /// Tracks that lost a frame to a full queue: their next frame is marked non-contiguous.
    lossy: HashSet<u64>,
    keyframes: std::sync::mpsc::Receiver<u64>,
    metrics: Metrics,
}

impl FrameSink {
    /// Offers a frame. `false` means the recording is over and the sink can be dropped.
    pub fn offer(&mut self, mut frame: MediaFrame) -> bool {
        let track = frame.track;
        if self.lossy.contains(&track) {
            frame.contiguous = false;
        }
        match self.tx.try_send(Input::Frame(frame)) {
            Ok(()) => {
                self.lossy.remove(&track);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.frames_dropped.inc();
                self.lossy.insert(track);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The publisher stopped sending this track.
    pub fn track_ended(&mut self, track: u64) {
        self.lossy.remove(&track);
        let _ = self.tx.try_send(Input::TrackEnded { track });
    }

    /// Tracks the recorder wants a keyframe of (after joining, or after a loss). Never blocks.
    pub fn keyframe_requests(&mut self) -> Vec<u64> {
        let mut out: Vec<u64> = self.keyframes.try_iter().collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A recording as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordingInfo {
    pub id: String,
    pub room: String,
    pub dir: PathBuf,
    pub started_at: String,
    pub started_by: Actor,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("recording is disabled on this server")]
    Disabled,
    #[error("this room is already being recorded")]
    AlreadyRecording,
    #[error("this room is not being recorded")]
    NotRecording,
    #[error("not enough free disk space to record ({free_mb} MiB free, {min_mb} MiB required)")]
    DiskSpace { free_mb: u64, min_mb: u64 },
    #[error("cannot create the recording directory: {0}")]
    Io(String),
}

struct Active {
    info: RecordingInfo,
    tx: mpsc::Sender<Input>,
    closed: Option<oneshot::Receiver<Closed>>,
    /// Cancelled once the files are closed and the manifest records the end.
    files_closed: CancellationToken,
    /// The collab room whose whiteboard scene this recording follows.
    whiteboard: Option<String>,
}

struct Inner {
    config: Arc<Config>,
    metrics: Metrics,
    active: Mutex<HashMap<String, Active>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    counter: AtomicU64,
    /// The writer queue's bounds: commands, bytes of frames.
    writer_limits: (usize, usize),
    /// Holds every writer while locked (tests only: a stalled disk).
    stall: Option<Arc<writer::Stall>>,
}

/// The recording service. Cheap to clone.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

impl Recordings {
    /// `registry` is the `record` sub-registry; `shutdown` stops every recording cleanly, and
    /// `tasks` lets a drain wait for their files to be closed.
    pub fn new(
        config: Config,
        registry: &mut Registry,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Recordings {
        Self::with_writers(
            config,
            registry,
            tasks,
            shutdown,
            (writer::QUEUE, writer::QUEUE_BYTES),
            None,
        )
    }

    /// [`Recordings::new`] with the writer queue's bounds (commands, bytes of frames) and a stall.
    fn with_writers(
        config: Config,
        registry: &mut Registry,
        tasks: TaskTracker,
        shutdown: CancellationToken,
        writer_limits: (usize, usize),
        stall: Option<Arc<writer::Stall>>,
    ) -> Recordings {
        Recordings {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                metrics: Metrics::register(registry),
                active: Mutex::new(HashMap::new()),
                tasks,
                shutdown,
                counter: AtomicU64::new(0),
                writer_limits,
                stall,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        // Inserts and removes only: a panic elsewhere cannot leave the map half-changed.
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recording(&self, room: &str) -> bool {
        self.lock().get(room).is_some_and(|a| !a.tx.is_closed())
    }

    /// Starts recording `room` for `by`. The returned sink goes to the media loop, which feeds it
    /// the room's frames. The free-space check and the directory are done off the runtime.
    pub async fn start(
        &self,
        room: &str,
        by: Actor,
    ) -> Result<(RecordingInfo, FrameSink), RecordError> {
        let config = &self.inner.config;
        if !config.enabled {
            return Err(RecordError::Disabled);
        }
        if self.recording(room) {
            return Err(RecordError::AlreadyRecording);
        }
        let min = config.min_free_space_mb.saturating_mul(1024 * 1024);
        let base = config.recordings_dir.clone();
        let free = tokio::task::spawn_blocking(move || disk::free_bytes(&base))
            .await
            .map_err(|e| RecordError::Io(e.to_string()))?
            .map_err(|e| RecordError::Io(e.to_string()))?;
        if free < min {
            return Err(RecordError::DiskSpace {
                free_mb: free / (1024 * 1024),
                min_mb: config.min_free_space_mb,
            });
        }
        let now = SystemTime::now();
        let started_at = humantime::format_rfc3339_seconds(now).to_string();
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        // Room names are already restricted by the conference core (no dots first, no slashes); the
        // time stamp keeps directories in order, the counter keeps two starts in one second apart.
        let stamp: String = started_at
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let id = format!("{stamp}-{n}");
        let dir_name: String = format!("{room}-{id}")
            .chars()
            .map(|c| if c == '/' || c == '\\' { '_' } else { c })
            .collect();
        let dir = config.recordings_dir.join(dir_name);
        let create = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::create_dir_all(create))
            .await
            .map_err(|e| RecordError::Io(e.to_string()))?
            .map_err(|e| RecordError::Io(e.to_string()))?;
        // Rooms ask one at a time (a room's task owns it), so this only matters for a caller that
        // does not: the second of two concurrent starts is refused after all.
        let mut active = self.lock();
        if active.get(room).is_some_and(|a| !a.tx.is_closed()) {
            return Err(RecordError::AlreadyRecording);
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let writer = writer::Writer::spawn(
            dir.clone(),
            self.inner.metrics.clone(),
            events_tx,
            self.inner.writer_limits,
            self.inner.stall.clone(),
        )
        .map_err(|e| RecordError::Io(e.to_string()))?;
        let info = RecordingInfo {
            id: id.clone(),
            room: room.to_owned(),
            dir: dir.clone(),
            started_at: started_at.clone(),
            started_by: by.clone(),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let (keyframe_tx, keyframe_rx) = std::sync::mpsc::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let files_closed = CancellationToken::new();
        let mut manifest = Manifest::new(id.clone(), room.to_owned(), started_at);
        manifest.started_by = Some(by);
        let session = session::Session::new(
            config.clone(),
            self.inner.metrics.clone(),
            dir,
            manifest,
            keyframe_tx,
            writer,
            events_rx,
        );
        let metrics = self.inner.metrics.clone();
        // Decremented by the session once its files are closed.
        metrics.active.inc();
        let this = self.clone();
        let room_name = room.to_owned();
        let shutdown = self.inner.shutdown.child_token();
        let done = files_closed.clone();
        self.inner.tasks.spawn(async move {
            // Whatever happens to the session, whoever waits for the end is not left waiting.
            let _done = done.clone().drop_guard();
            session.run(rx, shutdown, closed_tx, done).await;
            this.forget(&room_name, &id);
        });
        active.insert(
            room.to_owned(),
            Active {
                info: info.clone(),
                tx: tx.clone(),
                closed: Some(closed_rx),
                files_closed,
                whiteboard: None,
            },
        );
        tracing::info!(room, dir = %info.dir.display(), by = info.started_by.label(), "recording started");
        let sink = FrameSink {
            recording: info.id.clone(),
            tx,
            lossy: HashSet::new(),
            keyframes: keyframe_rx,
            metrics,
        };
        Ok((info, sink))
    }

    fn forget(&self, room: &str, id: &str) {
        let mut active = self.lock();
        if active.get(room).is_some_and(|a| a.info.id == id) {
            active.remove(room);
        }
    }

    /// Stops recording `room` (`by` whoever asked, if someone did) and waits until its files are
    /// closed (composition goes on afterwards).
    pub async fn stop(
        &self,
        room: &str,
        reason: EndReason,
        by: Option<Actor>,
    ) -> Result<Closed, RecordError> {
        let (tx, closed) = {
            let mut active = self.lock();
            let a = active
                .get_mut(room)
                .filter(|a| !a.tx.is_closed())
                .ok_or(RecordError::NotRecording)?;
            (a.tx.clone(), a.closed.take())
        };
        if let Some(by) = &by {
            tracing::info!(room, by = by.label(), "recording stop requested");
        }
        let _ = tx.send(Input::Stop(reason, by)).await;
        let closed = closed.ok_or(RecordError::NotRecording)?;
        closed.await.map_err(|_| RecordError::NotRecording)
    }

    /// Stops recording `room` like [`Recordings::stop`] but waits at most `limit` for the files:
    /// `Ok(None)` when they are still being written then. The stop goes on in the background
    /// either way, and once the recording has taken it nothing offered later is recorded (it
    /// takes it at once unless its own queue to the disk is full); a slow or hung disk must not
    /// hold up whoever asked (a room's signaling).
    pub async fn stop_within(
        &self,
        room: &str,
        reason: EndReason,
        by: Option<Actor>,
        limit: std::time::Duration,
    ) -> Result<Option<Closed>, RecordError> {
        let stopping = {
            let (this, room) = (self.clone(), room.to_owned());
            self.inner
                .tasks
                .spawn(async move { this.stop(&room, reason, by).await })
        };
        match tokio::time::timeout(limit, stopping).await {
            Ok(Ok(result)) => result.map(Some),
            // The task panicked: the session is gone, so is the recording.
            Ok(Err(e)) => Err(RecordError::Io(e.to_string())),
            Err(_) => {
                tracing::warn!(
                    room,
                    "recording stopped; its files are still being written (the disk is slow)"
                );
                Ok(None)
            }
        }
    }

    /// The recording of `room`, if one is running.
    pub fn status(&self, room: &str) -> Option<RecordingInfo> {
        self.lock()
            .get(room)
            .filter(|a| !a.tx.is_closed())
            .map(|a| a.info.clone())
    }

    /// Resolves when `room`'s current recording has ended, however it ended (stop, maximum
    /// duration, low disk space, shutdown), and its files and manifest are closed; `None` when the
    /// room is not recorded.
    pub fn ended(&self, room: &str) -> Option<impl std::future::Future<Output = ()> + use<>> {
        let done = self.lock().get(room)?.files_closed.clone();
        Some(async move { done.cancelled().await })
    }

    /// Follows the whiteboard of `room`'s recording: `metadata` is the room's `whiteboard` value.
    /// Returns the note for the manifest: followed (the key is usable; a repeat of the same collab
    /// room changes nothing), or encrypted (no usable key). `None` when the room is not recorded.
    pub fn follow_whiteboard(
        &self,
        room: &str,
        metadata: &serde_json::Value,
        taps: &convene_whiteboard::Taps,
    ) -> Option<WhiteboardNote> {
        let mut active = self.lock();
        let a = active.get_mut(room).filter(|a| !a.tx.is_closed())?;
        let Some((collab_room, key)) = whiteboard::collab_details(metadata) else {
            return Some(WhiteboardNote::encrypted());
        };
        if a.whiteboard.as_deref() != Some(collab_room.as_str()) {
            let broadcasts = taps.subscribe(&collab_room);
            a.whiteboard = Some(collab_room);
            self.inner
                .tasks
                .spawn(whiteboard::follow(broadcasts, key, a.tx.clone()));
        }
        Some(WhiteboardNote::followed())
    }

    /// Tells `room`'s recording about a participant, a chat message or the whiteboard; ignored when
    /// the room is not recorded. Never blocks: a full queue drops the note.
    pub fn note(&self, room: &str, input: Input) {
        if let Some(a) = self.lock().get(room) {
            let _ = a.tx.try_send(input);
        }
    }
}
