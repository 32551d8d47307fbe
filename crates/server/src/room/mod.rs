//! Rooms: one tokio task per room owns its `convene_conference::Room`; everyone else talks to it through
//! a closed [`Command`] enum. The registry maps canonical room names to those tasks.
//!
//! Invariant: no room state behind a lock. The registry's mutex guards only the name → channel map, and
//! a room leaves the map only while holding it with an empty queue, so a connection that found the room
//! there has its `Connect` queued before the room could retire.

mod media_link;
mod metrics;
mod recording_link;
mod task;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use convene_conference::{Access, CloseReason, Identity, MetadataError, RoomSnapshot};
use convene_proto::{ClientMessage, ParticipantId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use media_link::{MediaEvent, MediaFailure, MediaLink};
pub use metrics::Metrics;
pub use recording_link::RecordingLink;

/// Commands a room task accepts. `conn` identifies one WebSocket connection.
#[derive(Debug)]
pub enum Command {
    /// A new connection, with the participant id it will use and where its messages go.
    Connect {
        conn: u64,
        id: ParticipantId,
        outbound: mpsc::Sender<Outbound>,
    },
    Join {
        conn: u64,
        identity: Identity,
        password: Option<String>,
    },
    Resume {
        conn: u64,
        token: String,
    },
    Client {
        conn: u64,
        msg: ClientMessage,
    },
    /// The connection ended (for whatever reason). Its last command.
    Disconnected {
        conn: u64,
    },
    /// Something the media engine said about participant `id`.
    Media {
        id: ParticipantId,
        event: MediaEvent,
    },
    Snapshot {
        reply: oneshot::Sender<RoomSnapshot>,
    },
    Kick {
        id: ParticipantId,
        reply: oneshot::Sender<bool>,
    },
    End {
        reply: oneshot::Sender<()>,
    },
    SetMetadata {
        key: String,
        value: serde_json::Value,
        reply: oneshot::Sender<Result<(), MetadataError>>,
    },
    /// The operator starts or stops recording.
    Recording {
        start: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What a room sends to a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A serialized `ServerMessage`.
    Text(String),
    /// A `welcome`, left unserialized: the connection adds what only it knows (TURN credentials for
    /// the host its client reached us by).
    Welcome(Box<convene_proto::ServerMessage>),
    /// Close the connection after the texts before it.
    Close(CloseReason),
}

/// How deep a room's command queue may get; a full queue makes new connections wait.
const ROOM_QUEUE: usize = 1024;

struct Entry {
    tx: mpsc::Sender<Command>,
    generation: u64,
}

struct Inner {
    map: Mutex<HashMap<String, Entry>>,
    config: convene_conference::Config,
    access: Access,
    media: MediaLink,
    recording: RecordingLink,
    metrics: Metrics,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    next_generation: AtomicU64,
    next_conn: AtomicU64,
}

/// The room registry. Cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

/// A connection's link to its room.
#[derive(Debug, Clone)]
pub struct RoomLink {
    pub conn: u64,
    tx: mpsc::Sender<Command>,
}

impl RoomLink {
    /// Sends a command; false if the room is gone.
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).await.is_ok()
    }
}

/// Why an admin request on a room failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminError {
    NoRoom,
    NoParticipant,
    Metadata(MetadataError),
}

impl Rooms {
    pub fn new(
        config: convene_conference::Config,
        access: Access,
        media: MediaLink,
        recording: RecordingLink,
        metrics: Metrics,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                config,
                access,
                media,
                recording,
                metrics,
                tasks,
                shutdown,
                next_generation: AtomicU64::new(1),
                next_conn: AtomicU64::new(1),
            }),
        }
    }

    pub fn config(&self) -> &convene_conference::Config {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Registers a new connection with participant id `id` in room `name` (canonical), creating the room
    /// if needed. `None` when the room's queue is full.
    pub fn connect(
        &self,
        name: &str,
        id: ParticipantId,
        outbound: mpsc::Sender<Outbound>,
    ) -> Option<RoomLink> {
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        let tx = match map.get(name) {
            Some(entry) if !entry.tx.is_closed() => entry.tx.clone(),
            _ => {
                let tx = self.spawn(name);
                map.insert(
                    name.to_owned(),
                    Entry {
                        tx: tx.0.clone(),
                        generation: tx.1,
                    },
                );
                tx.0
            }
        };
        // Queued under the lock: the room cannot retire between our lookup and this command.
        tx.try_send(Command::Connect { conn, id, outbound }).ok()?;
        Some(RoomLink { conn, tx })
    }

    /// Snapshots of every room, sorted by name.
    pub async fn list(&self) -> Vec<RoomSnapshot> {
        let rooms: Vec<mpsc::Sender<Command>> =
            self.lock().values().map(|e| e.tx.clone()).collect();
        let mut out = Vec::new();
        for tx in rooms {
            let (reply, rx) = oneshot::channel();
            if tx.send(Command::Snapshot { reply }).await.is_ok()
                && let Ok(snapshot) = rx.await
            {
                out.push(snapshot);
            }
        }
        out.sort_by(|a, b| a.room.name.cmp(&b.room.name));
        out
    }

    pub async fn snapshot(&self, name: &str) -> Result<RoomSnapshot, AdminError> {
        self.ask(name, |reply| Command::Snapshot { reply }).await
    }

    pub async fn kick(&self, name: &str, id: &str) -> Result<(), AdminError> {
        let id = id.to_owned();
        match self.ask(name, |reply| Command::Kick { id, reply }).await? {
            true => Ok(()),
            false => Err(AdminError::NoParticipant),
        }
    }

    pub async fn end(&self, name: &str) -> Result<(), AdminError> {
        self.ask(name, |reply| Command::End { reply }).await
    }

    pub async fn set_metadata(
        &self,
        name: &str,
        key: String,
        value: serde_json::Value,
    ) -> Result<(), AdminError> {
        self.ask(name, |reply| Command::SetMetadata { key, value, reply })
            .await?
            .map_err(AdminError::Metadata)
    }

    /// Starts (or stops) recording room `name`; the error text says why not.
    pub async fn recording(
        &self,
        name: &str,
        start: bool,
    ) -> Result<Result<(), String>, AdminError> {
        self.ask(name, |reply| Command::Recording { start, reply })
            .await
    }

    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, AdminError> {
        let tx = self
            .lock()
            .get(name)
            .map(|e| e.tx.clone())
            .ok_or(AdminError::NoRoom)?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply)).await.map_err(|_| AdminError::NoRoom)?;
        rx.await.map_err(|_| AdminError::NoRoom)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and removes).
        self.inner.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(&self, name: &str) -> (mpsc::Sender<Command>, u64) {
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let task = task::RoomTask::new(self.clone(), name.to_owned(), generation, tx.clone());
        self.inner.tasks.spawn(task.run(rx));
        (tx, generation)
    }

    /// Removes room `name` from the map if it is still `generation`.
    fn forget(&self, name: &str, generation: u64) {
        let mut map = self.lock();
        if map.get(name).is_some_and(|e| e.generation == generation) {
            map.remove(name);
        }
    }

    /// Retires an expired room: only with an empty queue, under the lock, so no `Connect` is lost.
    fn retire(&self, name: &str, generation: u64, rx: &mut mpsc::Receiver<Command>) -> bool {
        let mut map = self.lock();
        if !rx.is_empty() {
            return false;
        }
        if map.get(name).is_some_and(|e| e.generation == generation) {
            map.remove(name);
        }
        rx.close();
        true
    }
}

/// A random id of `bytes` bytes, URL-safe base64.
pub fn random_id(bytes: usize) -> String {
    use aws_lc_rs::rand::SecureRandom as _;
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    // The system RNG failing means the OS cannot give randomness at all; ids must never be guessable.
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
