//! One client connection: its ids, protocol version, outgoing queue and incoming state.
//!
//! A session outlives transports: it starts on polling or WebSocket and may move from
//! polling to WebSocket. Whichever transport is current drains [`Session::take`] when
//! [`Session::notified`] fires, so an upgrade needs no hand-over of queued messages.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::eio::Frame;
use crate::metrics::{ConnMetrics, Protocol, Transport};
use crate::rate::RateLimit;

/// A relayed broadcast, encoded once and shared by every recipient.
#[derive(Debug)]
pub struct Relayed {
    /// `452-["client-broadcast",{"_placeholder":...},...]`, Engine.IO type digit included.
    pub header: Utf8Bytes,
    pub attachments: Vec<Bytes>,
    /// The attachments with the v3 WebSocket type byte in front, made on first use.
    v3_attachments: OnceLock<Vec<Bytes>>,
    /// Payload bytes (attachments), for the byte counters and queue limits.
    pub size: usize,
}

impl Relayed {
    pub fn new(header: String, attachments: Vec<Bytes>) -> Relayed {
        let size = attachments.iter().map(Bytes::len).sum();
        Relayed {
            header: header.into(),
            attachments,
            v3_attachments: OnceLock::new(),
            size,
        }
    }

    /// Attachments as v3 WebSocket frames carry them: 0x04 then the data.
    pub fn v3_attachments(&self) -> &[Bytes] {
        self.v3_attachments.get_or_init(|| {
            self.attachments
                .iter()
                .map(|a| {
                    let mut b = BytesMut::with_capacity(a.len() + 1);
                    b.put_u8(4);
                    b.put_slice(a);
                    b.freeze()
                })
                .collect()
        })
    }
}

/// An item of the outgoing queue.
#[derive(Debug, Clone)]
pub enum Out {
    Text(Utf8Bytes),
    Relayed(Arc<Relayed>),
    /// End of the session: the transport flushes what came before, then closes.
    Close,
}

impl Out {
    /// Appends this item's Engine.IO packets.
    pub fn frames(&self, into: &mut Vec<Frame>) {
        match self {
            Out::Text(t) => into.push(Frame::Text(t.clone())),
            Out::Relayed(r) => {
                into.push(Frame::Text(r.header.clone()));
                into.extend(r.attachments.iter().cloned().map(Frame::Binary));
            }
            Out::Close => into.push(Frame::Text(Utf8Bytes::from_static("1"))),
        }
    }

    fn size(&self) -> usize {
        match self {
            Out::Text(t) => t.len(),
            Out::Relayed(r) => r.size + r.header.len(),
            Out::Close => 0,
        }
    }
}

/// Where the session's packets currently flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Polling,
    /// A WebSocket sent `2probe`; the pending poll must end so the client can send `5`.
    Upgrading,
    Websocket,
}

/// Mutable state, behind the session's lock.
#[derive(Debug)]
pub struct State {
    outbox: VecDeque<Out>,
    queued: usize,
    pub phase: Phase,
    pub closed: bool,
    /// socket.io CONNECT done (v3: at once; v4: after the client's `40`).
    pub connected: bool,
    /// A polling GET is waiting.
    pub polling: bool,
    /// Last heartbeat from the client (v4: pong, v3: ping).
    pub heard: Instant,
    pub metrics: ConnMetrics,
}

/// Result of queueing a message for a recipient.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// Volatile message dropped because the recipient is behind.
    Dropped,
    /// The recipient is so far behind that it must be disconnected.
    TooSlow,
    Closed,
}

/// Incoming state, used by one transport at a time: a binary event waiting for its
/// attachments, and the flood limit.
#[derive(Debug)]
pub struct Reader {
    pub pending: Option<PendingBinary>,
    pub rate: RateLimit,
}

#[derive(Debug)]
pub struct PendingBinary {
    pub text: Utf8Bytes,
    pub expected: usize,
    pub attachments: Vec<Bytes>,
}

#[derive(Debug)]
pub struct Session {
    /// Engine.IO session id.
    pub sid: Arc<str>,
    /// socket.io socket id: v3 clients require it to equal `sid`; v4 gets its own.
    pub socket_id: Arc<str>,
    pub protocol: Protocol,
    /// v3 polling client that cannot take binary payloads (`b64=1`).
    pub b64: bool,
    state: Mutex<State>,
    notify: Notify,
    pub reader: Mutex<Option<Reader>>,
    /// Cancelled when the session must end without flushing (heartbeat timeout, slow consumer):
    /// the transport drops the connection at once, whatever it was waiting for.
    pub abort: CancellationToken,
}

/// Locks, ignoring poison: every critical section leaves the state consistent, and a
/// panic in one connection must not take the others down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    pub fn new(
        sid: Arc<str>,
        socket_id: Arc<str>,
        protocol: Protocol,
        transport: Transport,
        b64: bool,
        metrics: ConnMetrics,
        reader: Reader,
    ) -> Session {
        let phase = match transport {
            Transport::Polling => Phase::Polling,
            Transport::Websocket => Phase::Websocket,
        };
        Session {
            sid,
            socket_id,
            protocol,
            b64,
            state: Mutex::new(State {
                outbox: VecDeque::new(),
                queued: 0,
                phase,
                closed: false,
                connected: false,
                polling: false,
                heard: Instant::now(),
                metrics,
            }),
            notify: Notify::new(),
            reader: Mutex::new(Some(reader)),
            abort: CancellationToken::new(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Resolves when something was queued, the session closed or its phase changed.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Queues a message; `limit` is the most bytes a recipient may have waiting.
    pub fn push(&self, out: Out) -> Push {
        self.push_limited(out, false, usize::MAX, usize::MAX)
    }

    /// Queues a relayed message. Volatile ones are dropped when more than `volatile_limit`
    /// bytes are waiting (the recipient is "not writable"); anything beyond `limit` marks the
    /// recipient as too slow.
    pub fn push_limited(
        &self,
        out: Out,
        volatile: bool,
        volatile_limit: usize,
        limit: usize,
    ) -> Push {
        let size = out.size();
        let mut state = self.state();
        if state.closed {
            return Push::Closed;
        }
        if volatile && state.queued > volatile_limit {
            return Push::Dropped;
        }
        if state.queued.saturating_add(size) > limit {
            return Push::TooSlow;
        }
        if let Out::Relayed(r) = &out {
            state.metrics.deliveries.inc();
            state.metrics.bytes.inc_by(r.size as u64);
        }
        state.queued += size;
        state.outbox.push_back(out);
        drop(state);
        self.notify.notify_one();
        Push::Queued
    }

    /// Moves every queued item into `into` (which the caller reuses between calls).
    pub fn take(&self, into: &mut VecDeque<Out>) {
        let mut state = self.state();
        std::mem::swap(&mut state.outbox, into);
        state.queued = 0;
    }

    /// Marks the session closed and queues the final [`Out::Close`]; false if it already was.
    /// With `abort`, whatever was queued is dropped and the transport stops at once.
    pub fn mark_closed(&self, abort: bool) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.closed = true;
        if abort {
            state.outbox.clear();
            state.queued = 0;
            self.abort.cancel();
        }
        state.outbox.push_back(Out::Close);
        drop(state);
        self.notify.notify_one();
        true
    }

    /// Puts the final close back for the next poll.
    pub fn requeue_close(&self) {
        self.state().outbox.push_front(Out::Close);
        self.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed
    }
}

/// Room member: a session, equal by identity, hashed by socket id.
#[derive(Debug, Clone)]
pub struct Member(pub Arc<Session>);

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Member {}

impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.socket_id.hash(state);
    }
}

impl AsRef<str> for Member {
    fn as_ref(&self) -> &str {
        &self.0.socket_id
    }
}
