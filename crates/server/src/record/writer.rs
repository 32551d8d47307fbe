//! A recording's disk: one thread per recording does all of its file IO (creating, writing,
//! flushing and syncing the per-track files, the manifest and the whiteboard scene), fed by a
//! bounded queue of commands with already-serialized bytes. Free-space checks run on tokio's
//! blocking pool beside it, so a queue full of writes does not hold them up.
//!
//! The recording's task only serializes (the sans-IO `convene-record` core) and queues, so a slow or
//! stalled disk never holds up the async runtime, and with it the media loop. Commands are applied in
//! queue order, so nothing is reordered; [`Writer::barrier`] waits until everything queued before
//! it is written, flushed and synced, which is how a stop waits for the tail of every file.
//!
//! The bound: at most [`QUEUE`] commands and [`QUEUE_BYTES`] bytes of frames wait for the disk.
//! A frame that does not fit is dropped *before* it is serialized (see [`Writer::room_for`]), so
//! the files stay well-formed; the drop is counted in `convene_record_frames_dropped_total`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use convene_record::manifest::MANIFEST_FILE;
use convene_record::scene::SCENE_FILE;
use convene_record::webm::Patch;
use tokio::sync::{mpsc, oneshot};

use super::Metrics;

/// Commands waiting for one recording's disk (a batch of frames is one command).
pub const QUEUE: usize = 2048;
/// Bytes of frames waiting for one recording's disk: about a minute of a two-person call (about
/// 400 kB/s), a few seconds of a large room. This is the memory a stalled disk can cost.
pub const QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Frame bytes gathered before they go to the writer as one command, so the thread is not woken
/// for every frame (160 a second in a two-person call). The periodic flush sends a smaller batch,
/// so a crash still loses at most one flush interval.
const BATCH_BYTES: usize = 64 * 1024;

/// A per-track file, by its index in the manifest's file list.
pub type FileId = usize;

/// Bytes for the end of a file; `create` names the file on its first write.
#[derive(Debug)]
pub struct Chunk {
    pub file: FileId,
    pub create: Option<String>,
    pub bytes: Vec<u8>,
}

/// What the writer thread is asked to do, in order.
#[derive(Debug)]
pub enum Command {
    /// Appends to files, in order.
    Writes(Vec<Chunk>),
    /// Appends the file's tail, applies the patches that index it, syncs and closes it.
    Finish {
        file: FileId,
        tail: Vec<u8>,
        patches: Vec<Patch>,
    },
    /// Hands buffered bytes to the OS, so a crash loses at most one flush interval.
    Flush,
    /// Syncs the open files' data to the disk.
    Sync,
    /// Replaces the manifest (write, then rename: a crash leaves the old or the new one).
    Manifest(String),
    /// Replaces the whiteboard scene, like the manifest.
    Scene(String),
    /// Removes a file of the recording (a half-written composed file).
    Remove(String),
    /// Answered once everything before it is written, flushed and synced (files and directory).
    Barrier(oneshot::Sender<()>),
}

/// What the writer thread tells the recording's task.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A file could not be created: its track is not recorded further.
    CreateFailed(FileId),
    /// Writing failed (a full disk, most likely): the recording should stop.
    WriteFailed,
    /// Fewer free bytes than the recording's minimum.
    DiskLow {
        free: u64,
    },
    SceneSaved,
}

/// The recording task's end of the writer.
pub struct Writer {
    tx: mpsc::Sender<Command>,
    /// Frame bytes queued (batched or sent) and not yet written.
    queued: Arc<AtomicUsize>,
    /// Frames gathered for the next [`Command::Writes`], and their bytes.
    batch: Vec<Chunk>,
    batch_bytes: usize,
    limit: usize,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    /// A free-space check is running: a slow file system does not get a pile of them.
    checking: Arc<AtomicBool>,
}

/// Holds the writer thread before each command while held; tests use it to play a stalled disk.
#[derive(Default)]
pub struct Stall {
    held: std::sync::Mutex<bool>,
    released: std::sync::Condvar,
}

impl Stall {
    #[cfg(test)]
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    #[cfg(test)]
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.released.notify_all();
    }

    fn wait(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self.released.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Writer {
    /// Starts the writer thread for the recording in `dir`; events come back on `events`.
    pub fn spawn(
        dir: PathBuf,
        metrics: Metrics,
        events: mpsc::UnboundedSender<Event>,
        limits: (usize, usize),
        stall: Option<Arc<Stall>>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(limits.0.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let disk = Disk {
            dir: dir.clone(),
            metrics,
            events: events.clone(),
            queued: queued.clone(),
            files: HashMap::new(),
            failed: HashSet::new(),
        };
        let thread = std::thread::Builder::new()
            .name("convene-record".into())
            .spawn(move || disk.run(rx, stall))?;
        Ok(Writer {
            tx,
            queued,
            batch: Vec::new(),
            batch_bytes: 0,
            limit: limits.1,
            thread: Some(thread),
            dir,
            events,
            checking: Arc::default(),
        })
    }

    /// Whether a frame of about `len` bytes fits in the queue now (with room for the batch it
    /// may complete). The recording's task is the only sender, so a `true` stays true until it
    /// queues something itself.
    pub fn room_for(&self, len: usize) -> bool {
        self.tx.capacity() > 0 && self.queued.load(Ordering::Acquire) + len <= self.limit
    }

    /// Queues frame bytes; call after [`Writer::room_for`]. `false` if the writer thread is gone
    /// (it panicked): nothing can be written any more.
    pub fn write(&mut self, file: FileId, create: Option<String>, bytes: Vec<u8>) -> bool {
        self.queued.fetch_add(bytes.len(), Ordering::AcqRel);
        self.batch_bytes += bytes.len();
        self.batch.push(Chunk {
            file,
            create,
            bytes,
        });
        // A batch is a small part of the bound, so what waits in it never starves the queue.
        if self.batch_bytes < BATCH_BYTES.min(self.limit / 4) {
            return !self.tx.is_closed();
        }
        // room_for saw a free slot, and nothing else was queued since.
        self.send_batch().is_ok()
    }

    /// Sends the gathered frames, if any, as one command without waiting.
    fn send_batch(&mut self) -> Result<(), mpsc::error::TrySendError<Command>> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.tx.try_send(Command::Writes(batch)).map_err(|e| {
            // Put back: a full queue keeps the batch for the next attempt.
            if let mpsc::error::TrySendError::Full(Command::Writes(batch)) = e {
                self.batch_bytes = batch.iter().map(|w| w.bytes.len()).sum();
                self.batch = batch;
                mpsc::error::TrySendError::Full(Command::Flush)
            } else {
                e
            }
        })
    }

    /// Reads the free space off the runtime and reports [`Event::DiskLow`] below `min_free`.
    pub fn check_disk(&self, min_free: u64) {
        if self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, events, checking) =
            (self.dir.clone(), self.events.clone(), self.checking.clone());
        tokio::task::spawn_blocking(move || {
            match super::disk::free_bytes(&dir) {
                Ok(free) if free < min_free => {
                    let _ = events.send(Event::DiskLow { free });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read free disk space"),
            }
            checking.store(false, Ordering::Release);
        });
    }

    /// Queues gathered frames and then a command that may be skipped when the queue is full (a
    /// periodic flush, sync or manifest, which the next period repeats). `false` when the command
    /// was not queued.
    pub fn offer(&mut self, command: Command) -> bool {
        self.send_batch().is_ok() && self.tx.try_send(command).is_ok()
    }

    /// Queues gathered frames and then a command that must not be lost, waiting for room.
    pub async fn send(&mut self, command: Command) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.batch_bytes = 0;
            if self.tx.send(Command::Writes(batch)).await.is_err() {
                tracing::error!("the recording's writer is gone; frames are lost");
            }
        }
        if self.tx.send(command).await.is_err() {
            tracing::error!("the recording's writer is gone; a command is lost");
        }
    }

    /// Waits until everything queued so far is written, flushed and synced.
    pub async fn barrier(&mut self) {
        let (done, wait) = oneshot::channel();
        self.send(Command::Barrier(done)).await;
        let _ = wait.await;
    }

    /// Ends the writer thread once its queue is done, and waits for it off the runtime.
    pub async fn close(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Open {
    name: String,
    out: BufWriter<File>,
}

/// The writer thread's state.
struct Disk {
    dir: PathBuf,
    metrics: Metrics,
    events: mpsc::UnboundedSender<Event>,
    queued: Arc<AtomicUsize>,
    files: HashMap<FileId, Open>,
    /// Files that could not be created or written: later writes to them are skipped.
    failed: HashSet<FileId>,
}

impl Disk {
    fn run(mut self, mut rx: mpsc::Receiver<Command>, stall: Option<Arc<Stall>>) {
        while let Some(command) = rx.blocking_recv() {
            if let Some(stall) = &stall {
                stall.wait();
            }
            self.apply(command);
        }
        // Every sender is gone: whatever is still open is made durable before the thread ends.
        self.sync_all();
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Writes(writes) => {
                for Chunk {
                    file,
                    create,
                    bytes,
                } in writes
                {
                    self.write(file, create, &bytes);
                    self.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                }
            }
            Command::Finish {
                file,
                tail,
                patches,
            } => self.finish(file, &tail, &patches),
            Command::Flush => self.flush(),
            Command::Sync => {
                for open in self.files.values() {
                    let _ = open.out.get_ref().sync_data();
                }
            }
            Command::Manifest(json) => {
                if let Err(e) = self.replace(MANIFEST_FILE, &json) {
                    tracing::error!(dir = %self.dir.display(), error = %e, "cannot write the recording manifest");
                }
            }
            Command::Scene(json) => match self.replace(SCENE_FILE, &json) {
                Ok(()) => {
                    let _ = self.events.send(Event::SceneSaved);
                }
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), error = %e, "cannot write the whiteboard scene")
                }
            },
            Command::Remove(name) => {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
            Command::Barrier(done) => {
                self.sync_all();
                let _ = done.send(());
            }
        }
    }

    fn write(&mut self, file: FileId, create: Option<String>, bytes: &[u8]) {
        if self.failed.contains(&file) {
            return;
        }
        if let Some(name) = create {
            match File::create(self.dir.join(&name)) {
                Ok(f) => {
                    let out = BufWriter::with_capacity(64 * 1024, f);
                    self.files.insert(file, Open { name, out });
                }
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), file = %name, error = %e, "cannot create a recording file");
                    self.failed.insert(file);
                    let _ = self.events.send(Event::CreateFailed(file));
                    return;
                }
            }
        }
        let Some(open) = self.files.get_mut(&file) else {
            return;
        };
        match open.out.write_all(bytes) {
            Ok(()) => {
                self.metrics.bytes_written.inc_by(bytes.len() as u64);
            }
            Err(e) => self.write_failed(file, &e),
        }
    }

    fn write_failed(&mut self, file: FileId, e: &std::io::Error) {
        let name = self.files.remove(&file).map(|o| o.name).unwrap_or_default();
        tracing::error!(dir = %self.dir.display(), file = %name, error = %e, "cannot write a recording file; stopping and keeping what was written");
        self.failed.insert(file);
        let _ = self.events.send(Event::WriteFailed);
    }

    fn finish(&mut self, file: FileId, tail: &[u8], patches: &[Patch]) {
        let Some(Open { name, out }) = self.files.remove(&file) else {
            return;
        };
        let result = (|| -> std::io::Result<()> {
            let mut out = out;
            out.write_all(tail)?;
            let mut f = out.into_inner().map_err(|e| e.into_error())?;
            // The file is complete as streamed; the patches add sizes, the index and the duration.
            for patch in patches {
                f.seek(SeekFrom::Start(patch.offset))?;
                f.write_all(&patch.bytes)?;
            }
            f.sync_all()
        })();
        match result {
            Ok(()) => {
                self.metrics.bytes_written.inc_by(tail.len() as u64);
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), file = %name, error = %e, "cannot finish a recording file; it stays playable as streamed")
            }
        }
    }

    fn flush(&mut self) {
        let mut failed = Vec::new();
        for (file, open) in &mut self.files {
            if let Err(e) = open.out.flush() {
                failed.push((*file, e));
            }
        }
        for (file, e) in failed {
            self.write_failed(file, &e);
        }
    }

    fn sync_all(&mut self) {
        self.flush();
        for open in self.files.values() {
            let _ = open.out.get_ref().sync_all();
        }
        // The directory too, so new files and renamed manifests survive a crash.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }

    fn replace(&self, name: &str, text: &str) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, self.dir.join(name))
    }
}
