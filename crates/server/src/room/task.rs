//! The task that owns one room: it feeds commands and time into the conference core and carries out
//! the core's outputs (messages to connections, closes, media calls).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use convene_conference::{Output, Room};
use convene_proto::{ParticipantId, ServerMessage};
use tokio::sync::mpsc;

use convene_record::manifest::Actor;

use super::{Command, MediaEvent, Outbound, Rooms};
use crate::record::Input;

/// Events a participant's media session may queue before the room reads them.
const MEDIA_QUEUE: usize = 64;

struct Conn {
    id: ParticipantId,
    tx: mpsc::Sender<Outbound>,
}

pub(super) struct RoomTask {
    rooms: Rooms,
    core: Room,
    generation: u64,
    /// Our own queue, for media event forwarders.
    self_tx: mpsc::Sender<Command>,
    conns: HashMap<u64, Conn>,
    by_id: HashMap<ParticipantId, u64>,
    media_joined: HashSet<ParticipantId>,
    /// Participants and knockers last reported to the gauges.
    counted: (i64, i64),
    retired: bool,
    /// Auto-record was tried (once per room: a refusal, e.g. low disk, is not retried per join).
    auto_recorded: bool,
    /// Newest chat message id passed to the recorder (each message is sent once per recipient).
    chat_noted: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RoomTask {
    pub(super) fn new(
        rooms: Rooms,
        name: String,
        generation: u64,
        self_tx: mpsc::Sender<Command>,
    ) -> Self {
        let core = Room::new(name, rooms.config().clone(), rooms.inner.access, now_ms());
        rooms.metrics().rooms.inc();
        Self {
            rooms,
            core,
            generation,
            self_tx,
            conns: HashMap::new(),
            by_id: HashMap::new(),
            media_joined: HashSet::new(),
            counted: (0, 0),
            retired: false,
            auto_recorded: false,
            chat_noted: None,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        tracing::info!(room = self.core.name(), "room created");
        let shutdown = self.rooms.inner.shutdown.clone();
        loop {
            let sleep = self.wake_in();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                () = tokio::time::sleep(sleep.unwrap_or(Duration::ZERO)), if sleep.is_some() => {
                    let out = self.core.tick(now_ms());
                    self.apply(out).await;
                }
                // Connections close themselves on shutdown; the room only has to stop.
                () = shutdown.cancelled() => break,
            }
            self.update_gauges();
            if self.core.is_ended() && !self.retired {
                // New joins must reach a fresh room while this one says goodbye.
                self.rooms.forget(self.core.name(), self.generation);
                self.retired = true;
                self.close_pending();
            }
            if self.conns.is_empty()
                && self.core.is_expired(now_ms())
                && self
                    .rooms
                    .retire(self.core.name(), self.generation, &mut rx)
            {
                break;
            }
        }
        for id in std::mem::take(&mut self.media_joined) {
            self.rooms.inner.media.leave(&id).await;
        }
        let link = &self.rooms.inner.recording;
        if link.is_recording(self.core.name()) {
            let reason = if shutdown.is_cancelled() {
                convene_record::manifest::EndReason::Shutdown
            } else {
                convene_record::manifest::EndReason::RoomEnded
            };
            let _ = link.end(self.core.name(), reason, None).await;
        }
        self.counted_to(0, 0);
        self.rooms.metrics().rooms.dec();
        tracing::info!(room = self.core.name(), "room removed");
    }

    /// How long until the core has timed work, if it has any we can act on.
    fn wake_in(&self) -> Option<Duration> {
        let now = now_ms();
        let deadline = self.core.next_deadline()?;
        if deadline <= now && self.core.is_expired(now) {
            // Only the empty-room deadline is due, and connections keep the room: wait for them.
            return None;
        }
        Some(Duration::from_millis(deadline.saturating_sub(now)))
    }

    async fn handle(&mut self, cmd: Command) {
        let now = now_ms();
        let out = match cmd {
            Command::Connect { conn, id, outbound } => {
                self.conns.insert(
                    conn,
                    Conn {
                        id: id.clone(),
                        tx: outbound,
                    },
                );
                self.by_id.insert(id, conn);
                Vec::new()
            }
            Command::Join {
                conn,
                identity,
                password,
            } => match self.conns.get(&conn) {
                Some(c) => {
                    let id = c.id.clone();
                    self.core
                        .join(now, id, identity, password, super::random_id(24))
                }
                None => Vec::new(),
            },
            Command::Resume { conn, token } => match self.conns.get(&conn) {
                Some(c) => {
                    let id = c.id.clone();
                    self.core.resume(now, id, &token, super::random_id(24))
                }
                None => Vec::new(),
            },
            Command::Client { conn, msg } => match self.conns.get(&conn) {
                Some(c) => {
                    let id = c.id.clone();
                    self.core.client(now, &id, msg)
                }
                None => Vec::new(),
            },
            Command::Disconnected { conn } => match self.conns.remove(&conn) {
                Some(c) if self.by_id.get(&c.id) == Some(&conn) => {
                    self.by_id.remove(&c.id);
                    self.core.disconnected(now, &c.id)
                }
                _ => Vec::new(),
            },
            Command::Media { id, event } => match event {
                MediaEvent::Signal(msg) => vec![Output::Send { to: id, msg }],
                MediaEvent::Closed { reason } => {
                    tracing::debug!(room = self.core.name(), participant = %id, %reason, "media closed");
                    self.media_joined.remove(&id);
                    self.core.media_closed(now, &id)
                }
            },
            Command::Snapshot { reply } => {
                let _ = reply.send(self.core.snapshot());
                Vec::new()
            }
            Command::Kick { id, reply } => {
                let out = self.core.admin_kick(now, &id);
                let _ = reply.send(out.is_some());
                out.unwrap_or_default()
            }
            Command::End { reply } => {
                let out = self.core.end(None);
                let _ = reply.send(());
                out
            }
            Command::Recording { start, reply } => {
                let (result, out) = self.recording(start, Actor::AdminApi).await;
                let _ = reply.send(result);
                out
            }
            Command::SetMetadata { key, value, reply } => {
                match self.core.server_set_metadata(&key, value) {
                    Ok(out) => {
                        let _ = reply.send(Ok(()));
                        out
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        Vec::new()
                    }
                }
            }
        };
        self.apply(out).await;
    }

    /// Carries out the core's outputs in order. Delivery never waits on a slow client: a connection
    /// whose queue is full is dropped and treated as disconnected.
    async fn apply(&mut self, out: Vec<Output>) {
        let mut queue: VecDeque<Output> = out.into();
        while let Some(output) = queue.pop_front() {
            self.log(&output);
            self.note(&output);
            if self.auto_record_due(&output) {
                let (result, out) = self.recording(true, Actor::AutoRecord).await;
                if let Err(e) = result {
                    tracing::warn!(room = self.core.name(), error = %e, "automatic recording did not start");
                }
                queue.extend(out);
            }
            match output {
                Output::Send { to, msg } => {
                    if let ServerMessage::Error { code, .. } = &msg {
                        self.rooms.metrics().error(*code);
                    }
                    let outbound = if matches!(msg, ServerMessage::Welcome { .. }) {
                        Outbound::Welcome(Box::new(msg))
                    } else {
                        // Serializing our own message types cannot fail (string keys, no floats).
                        let Ok(text) = serde_json::to_string(&msg) else {
                            continue;
                        };
                        Outbound::Text(text)
                    };
                    if !self.deliver(&to, outbound) {
                        queue.extend(self.core.disconnected(now_ms(), &to));
                    }
                }
                Output::Close { to, reason } => {
                    self.deliver(&to, Outbound::Close(reason));
                    // Whatever the connection says next is no longer for this participant.
                    if let Some(conn) = self.by_id.remove(&to) {
                        self.conns.remove(&conn);
                    }
                }
                Output::Rebind { from, to } => {
                    let Some(conn) = self.by_id.remove(&from) else {
                        continue;
                    };
                    if let Some(old) = self.by_id.insert(to.clone(), conn) {
                        // Dropping the old connection's sender closes it: the place was taken over.
                        self.conns.remove(&old);
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.id = to;
                    }
                }
                Output::MediaJoin { id } => {
                    let (tx, mut rx) = mpsc::channel(MEDIA_QUEUE);
                    let media = self.rooms.inner.media.clone();
                    match media.join(self.core.name(), &id, tx).await {
                        Ok(()) => {
                            self.media_joined.insert(id.clone());
                            let room = self.self_tx.clone();
                            let forward_id = id.clone();
                            self.rooms.inner.tasks.spawn(async move {
                                while let Some(event) = rx.recv().await {
                                    let cmd = Command::Media {
                                        id: forward_id.clone(),
                                        event,
                                    };
                                    if room.send(cmd).await.is_err() {
                                        break;
                                    }
                                }
                            });
                        }
                        Err(e) => queue.push_back(media_error(id, e)),
                    }
                }
                Output::MediaSignal { id, msg } => {
                    if let Err(e) = self.rooms.inner.media.signal(&id, msg).await {
                        queue.push_back(media_error(id, e));
                    }
                }
                Output::Recording { start, by } => {
                    let name = self
                        .core
                        .snapshot()
                        .participants
                        .into_iter()
                        .find(|p| p.id == by)
                        .map(|p| p.name)
                        .unwrap_or_default();
                    let actor = Actor::Participant {
                        id: by.to_string(),
                        name,
                    };
                    let (result, out) = self.recording(start, actor).await;
                    queue.extend(out);
                    if let Err(text) = result {
                        queue.push_back(Output::Send {
                            to: by,
                            msg: ServerMessage::error(
                                convene_proto::ErrorCode::Unavailable,
                                text,
                                Some(if start {
                                    "start_recording"
                                } else {
                                    "stop_recording"
                                }),
                            ),
                        });
                    }
                }
                Output::MediaLeave { id } => {
                    if self.media_joined.remove(&id) {
                        self.rooms.inner.media.leave(&id).await;
                    }
                }
            }
        }
    }

    /// Asks the recorder, and on success tells everyone through the `recording` metadata key.
    async fn recording(&mut self, start: bool, by: Actor) -> (Result<(), String>, Vec<Output>) {
        let link = self.rooms.inner.recording.clone();
        let room = self.core.name().to_owned();
        let result = if start {
            link.start(&room, by.clone()).await
        } else {
            link.stop(&room, by.clone()).await
        };
        if let Err(e) = result {
            return (Err(e), Vec::new());
        }
        if start {
            self.watch_recording();
            // A whiteboard already open is followed from now on.
            if let Some(note) = self
                .core
                .snapshot()
                .metadata
                .get("whiteboard")
                .filter(|v| !v.is_null())
                .and_then(|v| link.follow_whiteboard(&room, v))
            {
                link.note(&room, Input::Whiteboard(note));
            }
            // The recording starts with whoever is already here.
            for p in self.core.snapshot().participants {
                link.note(
                    &room,
                    Input::Participant {
                        id: p.id.to_string(),
                        name: p.name.clone(),
                        present: true,
                    },
                );
            }
        }
        // `by` stays the participant id (null for the operator or the server); `by_kind` and
        // `by_name` say who it was either way.
        let by_id = match &by {
            Actor::Participant { id, .. } => serde_json::Value::from(id.as_str()),
            Actor::AdminApi | Actor::AutoRecord => serde_json::Value::Null,
        };
        let (by_kind, by_name) = (by.kind(), by.label());
        let value = if start {
            serde_json::json!({"active": true, "started_at": now_ms(), "by": by_id, "by_kind": by_kind, "by_name": by_name})
        } else {
            serde_json::json!({"active": false, "stopped_at": now_ms(), "by": by_id, "by_kind": by_kind, "by_name": by_name})
        };
        // The key is server-owned and the value small, so the write is always accepted.
        let out = self
            .core
            .server_set_metadata("recording", value)
            .unwrap_or_default();
        (Ok(()), out)
    }

    /// A recording may end without being asked (maximum duration, low disk space): everyone is
    /// told through the `recording` key then too.
    fn watch_recording(&self) {
        let link = self.rooms.inner.recording.clone();
        let room = self.core.name().to_owned();
        let Some((id, ended)) = link.ended(&room) else {
            return;
        };
        let tx = self.self_tx.clone();
        self.rooms.inner.tasks.spawn(async move {
            ended.await;
            if link.take_stopped_on_request(&id) || link.is_recording(&room) {
                // Stopped by a moderator or the API (that answer sets the key), or a new recording
                // already runs (its start set the key).
                return;
            }
            let (reply, _) = tokio::sync::oneshot::channel();
            let value = serde_json::json!({"active": false, "stopped_at": now_ms(), "by": null});
            let _ = tx
                .send(Command::SetMetadata {
                    key: "recording".into(),
                    value,
                    reply,
                })
                .await;
        });
    }

    /// The first admission of a room that config says to record.
    fn auto_record_due(&mut self, output: &Output) -> bool {
        if self.auto_recorded || !matches!(output, Output::MediaJoin { .. }) {
            return false;
        }
        self.auto_recorded = true;
        let link = &self.rooms.inner.recording;
        link.auto_records(self.core.name()) && !link.is_recording(self.core.name())
    }

    /// Tells the recording (if the room is recorded) who is here, what was said, and that the
    /// whiteboard was used. Room-wide messages are sent once per recipient; each is noted once.
    fn note(&mut self, output: &Output) {
        let link = &self.rooms.inner.recording;
        let room = self.core.name();
        let input = match output {
            Output::Send {
                to,
                msg: ServerMessage::Welcome { participants, .. },
            } => participants
                .iter()
                .find(|p| &p.id == to)
                .map(|p| Input::Participant {
                    id: p.id.to_string(),
                    name: p.name.clone(),
                    present: true,
                }),
            Output::Send {
                msg: ServerMessage::ParticipantUpdated { participant: p },
                ..
            } => Some(Input::Participant {
                id: p.id.to_string(),
                name: p.name.clone(),
                present: true,
            }),
            Output::MediaLeave { id } => Some(Input::Participant {
                id: id.to_string(),
                name: String::new(),
                present: false,
            }),
            Output::Send {
                msg: ServerMessage::Chat { message },
                ..
            } if message.to.is_none() && self.chat_noted.is_none_or(|n| message.id > n) => {
                self.chat_noted = Some(message.id);
                Some(Input::Chat {
                    from_id: message.from.to_string(),
                    from_name: message.from_name.clone(),
                    text: message.text.clone(),
                })
            }
            Output::Send {
                msg: ServerMessage::Metadata { metadata },
                ..
            } => metadata
                .get("whiteboard")
                .filter(|v| !v.is_null())
                .and_then(|v| link.follow_whiteboard(room, v))
                .map(Input::Whiteboard),
            _ => None,
        };
        if let Some(input) = input {
            link.note(room, input);
        }
    }

    /// Room events an operator wants in the log; user mistakes stay at debug.
    fn log(&self, output: &Output) {
        let room = self.core.name();
        match output {
            Output::Send {
                to,
                msg: ServerMessage::Welcome { participants, .. },
            } => {
                tracing::info!(room, participant = %to, present = participants.len(), "participant admitted")
            }
            Output::Send {
                msg:
                    ServerMessage::Error {
                        code,
                        message,
                        request,
                    },
                to,
            } => {
                tracing::debug!(room, participant = %to, ?code, ?request, %message, "request refused")
            }
            Output::MediaLeave { id } => {
                tracing::info!(room, participant = %id, "participant left")
            }
            Output::Send {
                msg: ServerMessage::MeetingEnded { by },
                to,
            } => tracing::debug!(room, participant = %to, ?by, "meeting ended"),
            _ => {}
        }
    }

    /// Queues `msg` for participant `to`; false if its connection had to be dropped for being too slow.
    fn deliver(&mut self, to: &str, msg: Outbound) -> bool {
        let Some(&conn) = self.by_id.get(to) else {
            return true;
        };
        let Some(c) = self.conns.get(&conn) else {
            return true;
        };
        match c.tx.try_send(msg) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(
                    room = self.core.name(),
                    participant = to,
                    "dropping a connection that does not keep up"
                );
                self.conns.remove(&conn);
                self.by_id.remove(to);
                false
            }
        }
    }

    /// Connections that had not entered when the meeting ended (password prompt, token wait) are told
    /// and closed, so they can reconnect to a fresh room of the same name.
    fn close_pending(&mut self) {
        let msg = ServerMessage::error(
            convene_proto::ErrorCode::Unavailable,
            "the meeting has ended",
            None,
        );
        let text = serde_json::to_string(&msg).unwrap_or_default();
        for (_, c) in self.conns.drain() {
            let _ = c.tx.try_send(Outbound::Text(text.clone()));
            let _ =
                c.tx.try_send(Outbound::Close(convene_conference::CloseReason::Normal));
        }
        self.by_id.clear();
    }

    fn update_gauges(&mut self) {
        let (p, k) = (
            self.core.participant_count() as i64,
            self.core.knocker_count() as i64,
        );
        self.counted_to(p, k);
    }

    fn counted_to(&mut self, participants: i64, knockers: i64) {
        let m = self.rooms.metrics();
        m.participants.inc_by(participants - self.counted.0);
        m.knockers.inc_by(knockers - self.counted.1);
        self.counted = (participants, knockers);
    }
}

fn media_error(id: ParticipantId, e: super::MediaFailure) -> Output {
    Output::Send {
        to: id,
        msg: ServerMessage::MediaError {
            code: e.code,
            message: e.message,
        },
    }
}
