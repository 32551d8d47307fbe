//! One recording in progress: a task that owns the per-track recorders and the manifest, turns frames
//! into file bytes as they come, has them flushed and synced on a schedule, watches duration and disk
//! space, and on stop closes the files cleanly before composing and running the finalize command.
//!
//! The task does no file IO itself: its [`Writer`] thread does, in queue order. A stop waits for
//! the writer to have written and synced every queued byte before the manifest records the end,
//! before the service hears that the files are closed, and before composition and finalize run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use convene_record::manifest::{
    ChatEntry, Composition, CompositionStatus, EndReason, Kind, Manifest, TrackFile, WhiteboardNote,
};
use convene_record::scene::{SCENE_FILE, Scene};
use convene_record::{Config, FrameIn, TrackRecorder, WriterOptions};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::writer::{Command, Event, FileId, Writer};
use super::{Input, MediaFrame, Metrics, process};

/// What the service learns when a recording's files are closed.
#[derive(Debug, Clone)]
pub struct Closed {
    pub reason: EndReason,
    pub dir: PathBuf,
}

struct TrackState {
    recorder: TrackRecorder,
    participant: String,
    source: String,
    mid: String,
    file: Option<FileId>,
    failed: bool,
    /// A frame was dropped because the writer's queue was full: the next one follows a loss.
    lossy: bool,
}

pub struct Session {
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub start: Instant,
    pub keyframes: std::sync::mpsc::Sender<u64>,
    tracks: HashMap<u64, TrackState>,
    files_per_source: HashMap<(String, String), u32>,
    writer: Writer,
    events: mpsc::UnboundedReceiver<Event>,
    dirty: bool,
    /// The whiteboard's scene, and whether it changed since it was last written.
    scene: Scene,
    scene_dirty: bool,
    stop: Option<EndReason>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Keeps a file name portable: letters, digits, `-` and `_`.
fn file_part(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if cleaned.is_empty() {
        "x".to_owned()
    } else {
        cleaned
    }
}

impl Session {
    pub fn new(
        config: Arc<Config>,
        metrics: Metrics,
        dir: PathBuf,
        manifest: Manifest,
        keyframes: std::sync::mpsc::Sender<u64>,
        writer: Writer,
        events: mpsc::UnboundedReceiver<Event>,
    ) -> Session {
        Session {
            config,
            metrics,
            dir,
            manifest,
            start: Instant::now(),
            keyframes,
            tracks: HashMap::new(),
            files_per_source: HashMap::new(),
            writer,
            events,
            dirty: true,
            scene: Scene::default(),
            scene_dirty: false,
            stop: None,
        }
    }

    fn offset_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Runs until stopped; once the files are closed, reports through `closed` and `files_closed`,
    /// then composes and finalizes.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        shutdown: CancellationToken,
        closed: oneshot::Sender<Closed>,
        files_closed: CancellationToken,
    ) {
        let mut flush =
            tokio::time::interval(self.config.flush_interval.max(Duration::from_millis(10)));
        let mut sync =
            tokio::time::interval(self.config.sync_interval.max(Duration::from_millis(10)));
        let mut disk = tokio::time::interval(
            self.config
                .disk_check_interval
                .max(Duration::from_millis(10)),
        );
        let deadline = tokio::time::sleep(self.config.max_duration);
        tokio::pin!(deadline);
        self.save_manifest().await;
        while self.stop.is_none() {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.handle(input).await,
                    None => self.stop = Some(EndReason::RoomEnded),
                },
                Some(event) = self.events.recv() => self.event(event),
                _ = flush.tick() => self.flush(),
                _ = sync.tick() => {
                    self.writer.offer(Command::Sync);
                }
                _ = disk.tick() => self
                    .writer
                    .check_disk(self.config.min_free_space_mb.saturating_mul(1024 * 1024)),
                () = &mut deadline => {
                    tracing::info!(dir = %self.dir.display(), "recording reached max_duration");
                    self.stop = Some(EndReason::MaxDuration);
                }
                () = shutdown.cancelled() => self.stop = Some(EndReason::Shutdown),
            }
        }
        inputs.close();
        let reason = self.stop.unwrap_or(EndReason::Stopped);
        self.close_files(reason).await;
        files_closed.cancel();
        let _ = closed.send(Closed {
            reason,
            dir: self.dir.clone(),
        });
        if reason == EndReason::Shutdown {
            self.skip_composition(
                "the server shut down before composition; run it again from the manifest",
            )
            .await;
        } else {
            self.compose().await;
        }
        self.finalize().await;
        self.writer.close().await;
    }

    async fn handle(&mut self, input: Input) {
        match input {
            Input::Frame(frame) => self.frame(frame),
            Input::TrackEnded { track } => self.end_track(track).await,
            Input::Participant { id, name, present } => {
                let at = self.offset_ms();
                if present {
                    self.manifest.participant_joined(&id, &name, at);
                } else {
                    self.manifest.participant_left(&id, at);
                }
                self.dirty = true;
            }
            Input::Chat {
                from_id,
                from_name,
                text,
            } => {
                let offset_ms = self.offset_ms();
                self.manifest.chat.push(ChatEntry {
                    offset_ms,
                    from_id,
                    from_name,
                    text,
                });
                self.dirty = true;
            }
            Input::Whiteboard(note) => {
                // Once a scene is saved, the note says where; later notes only repeat the opening.
                if self.manifest.whiteboard.file.is_none() && self.manifest.whiteboard != note {
                    self.manifest.whiteboard = note;
                    self.dirty = true;
                }
            }
            Input::WhiteboardElements(elements) => {
                if self.scene.apply(elements) > 0 {
                    self.scene_dirty = true;
                }
            }
            Input::Stop(reason, by) => {
                self.stop = Some(reason);
                self.manifest.stopped_by = by;
            }
        }
    }

    /// What the writer thread reports.
    fn event(&mut self, event: Event) {
        match event {
            Event::CreateFailed(file) => {
                // The writer logged it; the track is not recorded further.
                for state in self.tracks.values_mut() {
                    if state.file == Some(file) {
                        state.failed = true;
                    }
                }
            }
            Event::WriteFailed => self.stop = Some(EndReason::DiskSpace),
            Event::DiskLow { free } => {
                tracing::warn!(dir = %self.dir.display(), free_mb = free / (1024 * 1024), "disk space low; stopping the recording and keeping what was written");
                self.stop = Some(EndReason::DiskSpace);
            }
            Event::SceneSaved => {
                if self.manifest.whiteboard.file.is_none() {
                    self.manifest.whiteboard = WhiteboardNote::saved(SCENE_FILE);
                    self.dirty = true;
                }
            }
        }
    }

    fn frame(&mut self, mut frame: MediaFrame) {
        let arrival = frame.network_time.saturating_duration_since(self.start);
        let options = WriterOptions {
            max_cluster_duration: self.config.cluster_duration,
        };
        let names = &self.manifest;
        let state = self.tracks.entry(frame.track).or_insert_with(|| {
            let name = names
                .participant_name(&frame.participant)
                .unwrap_or(&frame.participant);
            TrackState {
                recorder: TrackRecorder::new(
                    frame.codec,
                    Some(format!("{name} ({})", frame.source)),
                    options,
                ),
                participant: frame.participant.clone(),
                source: frame.source.clone(),
                mid: frame.mid.clone(),
                file: None,
                failed: false,
                lossy: false,
            }
        });
        if state.failed || state.recorder.codec() != frame.codec {
            self.metrics.frames_dropped.inc();
            return;
        }
        // The disk is behind: the frame is dropped before the recorder sees it, so the file stays
        // well-formed, and the track goes on as after a network loss (video from a keyframe).
        // The margin covers a block header and a new cluster's.
        if !self.writer.room_for(frame.data.len() + 64) {
            self.metrics.frames_dropped.inc();
            state.lossy = true;
            return;
        }
        if std::mem::take(&mut state.lossy) {
            frame.contiguous = false;
        }
        let mut buf = Vec::with_capacity(frame.data.len() + 64);
        let outcome = state.recorder.push(
            FrameIn {
                rtp_time: frame.rtp_time,
                clock_rate: frame.clock_rate,
                arrival,
                keyframe: frame.keyframe,
                contiguous: frame.contiguous,
                data: &frame.data,
            },
            &mut buf,
        );
        if outcome.request_keyframe {
            let _ = self.keyframes.send(frame.track);
        }
        if !outcome.written {
            self.metrics.frames_dropped.inc();
        } else {
            self.metrics.frames_written.inc();
        }
        if outcome.replaced {
            // Counted as written when it came; another layer's keyframe took its place.
            self.metrics.frames_dropped.inc();
        }
        if buf.is_empty() {
            return;
        }
        let mut create = None;
        let file = match state.file {
            Some(file) => file,
            None => {
                let key = (state.participant.clone(), state.source.clone());
                let n = self.files_per_source.entry(key).or_insert(0);
                *n += 1;
                let name = format!(
                    "{}-{}-{}.webm",
                    file_part(&state.participant),
                    file_part(&state.source),
                    n
                );
                self.manifest.files.push(TrackFile {
                    file: name.clone(),
                    participant_id: state.participant.clone(),
                    source: state.source.clone(),
                    track: state.mid.clone(),
                    kind: if frame.codec.is_video() {
                        Kind::Video
                    } else {
                        Kind::Audio
                    },
                    codec: frame.codec,
                    start_offset_ms: state
                        .recorder
                        .start_offset()
                        .map_or(0, |d| d.as_millis() as u64),
                    duration_ms: None,
                    frames: None,
                    bytes: None,
                });
                let file = self.manifest.files.len() - 1;
                state.file = Some(file);
                self.dirty = true;
                create = Some(name);
                file
            }
        };
        if !self.writer.write(file, create, buf) {
            tracing::error!(dir = %self.dir.display(), "the recording's writer is gone; stopping and keeping what was written");
            self.stop = Some(EndReason::DiskSpace);
        }
    }

    async fn end_track(&mut self, track: u64) {
        if let Some(state) = self.tracks.remove(&track) {
            self.finish_track(state).await;
            self.dirty = true;
        }
    }

    /// Queues the file's tail and index; the manifest entry gets the file's final numbers.
    async fn finish_track(&mut self, state: TrackState) {
        let TrackState { recorder, file, .. } = state;
        let Some(file) = file else {
            return;
        };
        let mut tail = Vec::new();
        let finished = recorder.finish(&mut tail);
        let patches = finished
            .as_ref()
            .map(|done| done.patches.clone())
            .unwrap_or_default();
        self.writer
            .send(Command::Finish {
                file,
                tail,
                patches,
            })
            .await;
        if let (Some(entry), Some(done)) = (self.manifest.files.get_mut(file), finished) {
            entry.duration_ms = Some(done.duration.as_millis() as u64);
            entry.frames = Some(done.frames);
            entry.bytes = Some(done.bytes);
        }
    }

    /// The periodic flush: buffered bytes, the scene and the manifest when they changed. Skipped
    /// while the writer's queue is full (it is busy writing anyway); the next period retries.
    fn flush(&mut self) {
        self.writer.offer(Command::Flush);
        if self.scene_dirty
            && !self.scene.is_empty()
            && self.writer.offer(Command::Scene(self.scene.to_file()))
        {
            self.scene_dirty = false;
        }
        if self.dirty
            && self
                .writer
                .offer(Command::Manifest(self.manifest.to_json()))
        {
            self.dirty = false;
        }
    }

    /// Queues the manifest, waiting for room.
    async fn save_manifest(&mut self) {
        self.writer
            .send(Command::Manifest(self.manifest.to_json()))
            .await;
        self.dirty = false;
    }

    async fn close_files(&mut self, reason: EndReason) {
        // The recording's length is up to the stop, not up to when the disk has caught up.
        let length = self.offset_ms();
        let tracks: Vec<TrackState> = self.tracks.drain().map(|(_, s)| s).collect();
        for state in tracks {
            self.finish_track(state).await;
        }
        if self.scene_dirty && !self.scene.is_empty() {
            self.writer.send(Command::Scene(self.scene.to_file())).await;
            self.scene_dirty = false;
        }
        // Every frame taken before the stop is on the disk before the manifest says it ended.
        self.writer.barrier().await;
        while let Ok(event) = self.events.try_recv() {
            self.event(event);
        }
        self.manifest.ended_at = Some(now_rfc3339());
        // The clock's length, or the end of the last file if media ran ahead of it (frames are
        // timed by their arrival, which may lie slightly after the stop).
        let media_end = self
            .manifest
            .files
            .iter()
            .map(|f| f.start_offset_ms + f.duration_ms.unwrap_or(0))
            .max()
            .unwrap_or(0);
        self.manifest.duration_ms = Some(length.max(media_end));
        self.manifest.end_reason = Some(reason);
        self.save_manifest().await;
        self.writer.barrier().await;
        self.metrics.active.dec();
        tracing::info!(dir = %self.dir.display(), ?reason, files = self.manifest.files.len(), "recording stopped");
    }

    async fn skip_composition(&mut self, why: &str) {
        tracing::info!(dir = %self.dir.display(), "composition skipped: {why}");
        self.metrics.composition("skipped");
        self.manifest.composition = Some(Composition {
            status: CompositionStatus::Skipped,
            file: None,
            message: Some(why.to_owned()),
            elapsed_ms: None,
        });
        self.save_manifest().await;
        self.writer.barrier().await;
    }
    async fn compose(&mut self) {
        if !self.config.compose {
            return;
        }
        let plan = match convene_record::compose::plan(&self.manifest, &self.config) {
            Ok(plan) => plan,
            Err(e) => return self.skip_composition(&e.to_string()).await,
        };
        let started = Instant::now();
        tracing::info!(dir = %self.dir.display(), output = %plan.output, "composing");
        let ended = process::compose(
            &self.config.ffmpeg,
            &self.dir,
            &plan,
            self.config.compose_timeout,
        )
        .await;
        let elapsed = started.elapsed();
        let (status, message) = match ended {
            process::Ended::Exited { success: true, .. } => {
                tracing::info!(dir = %self.dir.display(), output = %plan.output, ?elapsed, "composition done");
                self.metrics.composition("done");
                self.metrics
                    .composition_duration
                    .observe(elapsed.as_secs_f64());
                (CompositionStatus::Done, None)
            }
            process::Ended::NotStarted(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let why = format!(
                    "{} not found (install the ffmpeg package); the per-track files are complete",
                    self.config.ffmpeg.display()
                );
                return self.skip_composition(&why).await;
            }
            other => {
                let message = match other {
                    process::Ended::Exited { code, output, .. } => {
                        format!("ffmpeg exited with {code:?}: {output}")
                    }
                    process::Ended::TimedOut => "ffmpeg timed out (compose_timeout)".to_owned(),
                    process::Ended::NotStarted(e) => format!("ffmpeg did not start: {e}"),
                };
                tracing::error!(dir = %self.dir.display(), %message, "composition failed; the per-track files are kept");
                self.metrics.composition("failed");
                // A half-written composed file would look like a result.
                self.writer.send(Command::Remove(plan.output.clone())).await;
                (CompositionStatus::Failed, Some(message))
            }
        };
        self.manifest.composition = Some(Composition {
            status,
            file: (status == CompositionStatus::Done).then(|| plan.output.clone()),
            message,
            elapsed_ms: Some(elapsed.as_millis() as u64),
        });
        self.save_manifest().await;
        // The finalize command sees the manifest as it is now.
        self.writer.barrier().await;
    }

    async fn finalize(&mut self) {
        let Some(command) = self.config.finalize_command.clone() else {
            return;
        };
        let (ended, elapsed) =
            process::finalize(&command, &self.dir, self.config.finalize_timeout).await;
        let dir = self.dir.display().to_string();
        match ended {
            process::Ended::Exited {
                success,
                code,
                output,
            } => {
                if success {
                    tracing::info!(%dir, command = %command.display(), ?code, ?elapsed, %output, "finalize command done");
                } else {
                    self.metrics.finalize_failures.inc();
                    tracing::error!(%dir, command = %command.display(), ?code, ?elapsed, %output, "finalize command failed");
                }
            }
            process::Ended::TimedOut => {
                self.metrics.finalize_failures.inc();
                tracing::error!(%dir, command = %command.display(), "finalize command timed out and was killed");
            }
            process::Ended::NotStarted(e) => {
                self.metrics.finalize_failures.inc();
                tracing::error!(%dir, command = %command.display(), error = %e, "finalize command could not start");
            }
        }
    }
}
