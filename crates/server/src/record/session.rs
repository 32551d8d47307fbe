//! One recording in progress: a task that owns the per-track files and the manifest, writes frames as
//! they come, flushes and syncs on a schedule, watches duration and disk space, and on stop closes the
//! files cleanly before composing and running the finalize command.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use convene_record::manifest::{
    ChatEntry, Composition, CompositionStatus, EndReason, Kind, MANIFEST_FILE, Manifest, TrackFile,
    WhiteboardNote,
};
use convene_record::scene::{SCENE_FILE, Scene};
use convene_record::{Config, FrameIn, TrackRecorder, WriterOptions};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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
    file: Option<(BufWriter<File>, usize)>,
    failed: bool,
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
    buf: Vec<u8>,
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

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    // Write-then-rename, so a crash leaves either the old or the new manifest, never half of one.
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, manifest.to_json())?;
    std::fs::rename(tmp, dir.join(MANIFEST_FILE))
}

impl Session {
    pub fn new(
        config: Arc<Config>,
        metrics: Metrics,
        dir: PathBuf,
        manifest: Manifest,
        keyframes: std::sync::mpsc::Sender<u64>,
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
            buf: Vec::new(),
            dirty: true,
            scene: Scene::default(),
            scene_dirty: false,
            stop: None,
        }
    }

    fn offset_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Runs until stopped; returns once the files are closed, reporting through `closed`, then composes
    /// and finalizes.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        shutdown: CancellationToken,
        closed: oneshot::Sender<Closed>,
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
        self.save_manifest();
        while self.stop.is_none() {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.handle(input),
                    None => self.stop = Some(EndReason::RoomEnded),
                },
                _ = flush.tick() => self.flush(),
                _ = sync.tick() => self.sync(),
                _ = disk.tick() => self.check_disk(),
                () = &mut deadline => {
                    tracing::info!(dir = %self.dir.display(), "recording reached max_duration");
                    self.stop = Some(EndReason::MaxDuration);
                }
                () = shutdown.cancelled() => self.stop = Some(EndReason::Shutdown),
            }
        }
        inputs.close();
        let reason = self.stop.unwrap_or(EndReason::Stopped);
        self.close_files(reason);
        let _ = closed.send(Closed {
            reason,
            dir: self.dir.clone(),
        });
        if reason == EndReason::Shutdown {
            self.skip_composition(
                "the server shut down before composition; run it again from the manifest",
            );
        } else {
            self.compose().await;
        }
        self.finalize().await;
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Frame(frame) => self.frame(frame),
            Input::TrackEnded { track } => self.end_track(track),
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

    fn frame(&mut self, frame: MediaFrame) {
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
            }
        });
        if state.failed || state.recorder.codec() != frame.codec {
            self.metrics.frames_dropped.inc();
            return;
        }
        self.buf.clear();
        let outcome = state.recorder.push(
            FrameIn {
                rtp_time: frame.rtp_time,
                clock_rate: frame.clock_rate,
                arrival,
                keyframe: frame.keyframe,
                contiguous: frame.contiguous,
                data: &frame.data,
            },
            &mut self.buf,
        );
        if outcome.request_keyframe {
            let _ = self.keyframes.send(frame.track);
        }
        if !outcome.written {
            self.metrics.frames_dropped.inc();
        } else {
            self.metrics.frames_written.inc();
        }
        if self.buf.is_empty() {
            return;
        }
        if state.file.is_none() {
            let key = (state.participant.clone(), state.source.clone());
            let n = self.files_per_source.entry(key).or_insert(0);
            *n += 1;
            let name = format!(
                "{}-{}-{}.webm",
                file_part(&state.participant),
                file_part(&state.source),
                n
            );
            match File::create(self.dir.join(&name)) {
                Ok(f) => {
                    self.manifest.files.push(TrackFile {
                        file: name,
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
                    state.file = Some((
                        BufWriter::with_capacity(64 * 1024, f),
                        self.manifest.files.len() - 1,
                    ));
                    self.dirty = true;
                }
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), error = %e, "cannot create a recording file");
                    state.failed = true;
                    return;
                }
            }
        }
        if let Some((file, _)) = state.file.as_mut() {
            if let Err(e) = file.write_all(&self.buf) {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot write a recording file; stopping and keeping what was written");
                state.failed = true;
                self.stop = Some(EndReason::DiskSpace);
                return;
            }
            self.metrics.bytes_written.inc_by(self.buf.len() as u64);
        }
    }

    fn end_track(&mut self, track: u64) {
        if let Some(state) = self.tracks.remove(&track) {
            self.finish_track(state);
            self.dirty = true;
        }
    }

    fn finish_track(&mut self, state: TrackState) {
        let TrackState { recorder, file, .. } = state;
        let Some((mut file, index)) = file else {
            return;
        };
        let mut tail = Vec::new();
        let finished = recorder.finish(&mut tail);
        let result = (|| -> std::io::Result<()> {
            file.write_all(&tail)?;
            let mut file = file.into_inner().map_err(|e| e.into_error())?;
            if let Some(done) = &finished {
                // The file is complete as streamed; the patches add sizes, the index and the duration.
                for patch in &done.patches {
                    file.seek(SeekFrom::Start(patch.offset))?;
                    file.write_all(&patch.bytes)?;
                }
            }
            file.sync_all()
        })();
        self.metrics.bytes_written.inc_by(tail.len() as u64);
        if let Err(e) = result {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot finish a recording file; it stays playable as streamed");
        }
        if let (Some(entry), Some(done)) = (self.manifest.files.get_mut(index), finished) {
            entry.duration_ms = Some(done.duration.as_millis() as u64);
            entry.frames = Some(done.frames);
            entry.bytes = Some(done.bytes);
        }
    }

    fn flush(&mut self) {
        for state in self.tracks.values_mut() {
            if let Some((file, _)) = state.file.as_mut()
                && let Err(e) = file.flush()
            {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot write a recording file; stopping and keeping what was written");
                state.failed = true;
                self.stop = Some(EndReason::DiskSpace);
            }
        }
        self.save_scene();
        if self.dirty {
            self.save_manifest();
        }
    }

    /// Writes the whiteboard's scene when it changed (like the manifest: write, then rename), so
    /// a recording cut off by a crash keeps the scene as of the last flush.
    fn save_scene(&mut self) {
        if !self.scene_dirty || self.scene.is_empty() {
            return;
        }
        let tmp = self.dir.join(format!("{SCENE_FILE}.tmp"));
        let written = std::fs::write(&tmp, self.scene.to_file())
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(SCENE_FILE)));
        match written {
            Ok(()) => {
                self.scene_dirty = false;
                if self.manifest.whiteboard.file.is_none() {
                    self.manifest.whiteboard = WhiteboardNote::saved(SCENE_FILE);
                    self.dirty = true;
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot write the whiteboard scene")
            }
        }
    }

    fn sync(&mut self) {
        for state in self.tracks.values_mut() {
            if let Some((file, _)) = state.file.as_mut() {
                let _ = file.get_ref().sync_data();
            }
        }
    }

    fn check_disk(&mut self) {
        match super::disk::free_bytes(&self.dir) {
            Ok(free) if free < self.config.min_free_space_mb.saturating_mul(1024 * 1024) => {
                tracing::warn!(dir = %self.dir.display(), free_mb = free / (1024 * 1024), "disk space low; stopping the recording and keeping what was written");
                self.stop = Some(EndReason::DiskSpace);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read free disk space"),
        }
    }

    fn save_manifest(&mut self) {
        match write_manifest(&self.dir, &self.manifest) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot write the recording manifest")
            }
        }
    }

    fn close_files(&mut self, reason: EndReason) {
        let tracks: Vec<TrackState> = self.tracks.drain().map(|(_, s)| s).collect();
        for state in tracks {
            self.finish_track(state);
        }
        self.save_scene();
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
        self.manifest.duration_ms = Some(self.offset_ms().max(media_end));
        self.manifest.end_reason = Some(reason);
        self.save_manifest();
        self.metrics.active.dec();
        tracing::info!(dir = %self.dir.display(), ?reason, files = self.manifest.files.len(), "recording stopped");
    }

    fn skip_composition(&mut self, why: &str) {
        tracing::info!(dir = %self.dir.display(), "composition skipped: {why}");
        self.metrics.composition("skipped");
        self.manifest.composition = Some(Composition {
            status: CompositionStatus::Skipped,
            file: None,
            message: Some(why.to_owned()),
            elapsed_ms: None,
        });
        self.save_manifest();
    }

    async fn compose(&mut self) {
        if !self.config.compose {
            return;
        }
        let plan = match convene_record::compose::plan(&self.manifest, &self.config) {
            Ok(plan) => plan,
            Err(e) => return self.skip_composition(&e.to_string()),
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
                return self.skip_composition(&why);
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
                let _ = std::fs::remove_file(self.dir.join(&plan.output));
                (CompositionStatus::Failed, Some(message))
            }
        };
        self.manifest.composition = Some(Composition {
            status,
            file: (status == CompositionStatus::Done).then(|| plan.output.clone()),
            message,
            elapsed_ms: Some(elapsed.as_millis() as u64),
        });
        self.save_manifest();
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
