//! Taps: a meeting server that records a room subscribes to the non-volatile broadcasts of the
//! room's collab room and decrypts them itself, with the key it holds in the meeting's metadata.
//! The relay hands over the ciphertext and IV exactly as relayed; it still never reads them.
//!
//! Only broadcasts of members count (the relay drops the others before this), and only
//! non-volatile ones: scenes are sent reliably, pointers and bounds volatile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

/// One relayed `server-broadcast`: the encrypted payload and its 12-byte IV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub data: Bytes,
    pub iv: Bytes,
}

/// Broadcasts queued for a slow tap before further ones are dropped (a dropped scene update is
/// made good by the clients' full resync every 20 s).
const QUEUE: usize = 256;

/// The taps of a relay. Cheap to clone.
#[derive(Clone, Default)]
pub struct Taps {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether any tap exists, so that untapped relays take no lock per broadcast.
    any: AtomicBool,
    by_room: Mutex<HashMap<String, mpsc::Sender<Broadcast>>>,
}

impl Taps {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, mpsc::Sender<Broadcast>>> {
        // Inserts and removes only: a panic elsewhere cannot leave the map half-changed.
        self.inner.by_room.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to collab room `room`, replacing an earlier tap of it. Dropping the receiver
    /// ends the tap.
    pub fn subscribe(&self, room: &str) -> mpsc::Receiver<Broadcast> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut rooms = self.lock();
        rooms.insert(room.to_owned(), tx);
        self.inner.any.store(true, Ordering::Relaxed);
        rx
    }

    /// Hands a member's broadcast into `room` to its tap, if it has one. Never blocks.
    pub(crate) fn offer(&self, room: &str, attachments: &[Bytes]) {
        if !self.inner.any.load(Ordering::Relaxed) {
            return;
        }
        let [data, iv] = attachments else {
            return;
        };
        let mut rooms = self.lock();
        let Some(tx) = rooms.get(room) else {
            return;
        };
        let broadcast = Broadcast {
            data: data.clone(),
            iv: iv.clone(),
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(broadcast) {
            rooms.remove(room);
            self.inner.any.store(!rooms.is_empty(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_gets_its_rooms_broadcasts_until_it_is_dropped() {
        let taps = Taps::default();
        let pair = [Bytes::from_static(b"cipher"), Bytes::from_static(&[7; 12])];
        taps.offer("r1", &pair); // nobody listens: nothing happens
        let mut rx = taps.subscribe("r1");
        taps.offer("r2", &pair);
        taps.offer("r1", &pair);
        taps.offer("r1", &pair[..1]); // not a broadcast's two attachments
        let got = rx.try_recv().expect("one broadcast");
        assert_eq!(got.data, pair[0]);
        assert_eq!(got.iv, pair[1]);
        assert!(rx.try_recv().is_err());
        drop(rx);
        taps.offer("r1", &pair);
        assert!(taps.lock().is_empty());
        assert!(!taps.inner.any.load(Ordering::Relaxed));
    }
}
