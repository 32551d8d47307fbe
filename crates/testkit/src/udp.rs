//! A test client on a real UDP socket in real time, for server tests: a task that runs a
//! [`TestClient`] on `127.0.0.1:0`, sends its signaling messages to `to_server` and applies what
//! arrives on `from_server`. The client's state stays readable through [`UdpPeer::client`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use convene_proto::{ClientMessage, MediaSource, ServerMessage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::TestClient;
use crate::harness::kind_of;

pub struct UdpPeer {
    client: Arc<Mutex<TestClient>>,
    task: JoinHandle<()>,
}

impl UdpPeer {
    /// Binds a socket, makes the first offer with `tracks`, and runs until `from_server` closes.
    pub async fn start(
        name: &str,
        tracks: &[MediaSource],
        to_server: mpsc::UnboundedSender<ClientMessage>,
        mut from_server: mpsc::UnboundedReceiver<ServerMessage>,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let now = Instant::now();
        let mut client = TestClient::new(name, addr, now);
        let kinds: Vec<_> = tracks.iter().map(|s| (kind_of(*s), *s)).collect();
        client.offer(now, &kinds);
        let client = Arc::new(Mutex::new(client));
        let shared = client.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let next = {
                    let mut c = lock(&shared);
                    while let Some(t) = c.poll_transmit() {
                        // Loopback sends do not block for long; a full buffer is loss, which
                        // the client handles like any other.
                        let _ = socket.try_send_to(&t.contents, t.destination);
                    }
                    while let Some(m) = c.poll_signal() {
                        if to_server.send(m).is_err() {
                            return;
                        }
                    }
                    c.next_timeout()
                        .max(Instant::now() + Duration::from_micros(200))
                };
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        if let Ok((n, from)) = r {
                            lock(&shared).handle_datagram(Instant::now(), from, &buf[..n]);
                        }
                    }
                    m = from_server.recv() => match m {
                        Some(m) => lock(&shared).handle_signal(Instant::now(), m),
                        None => return,
                    },
                    _ = tokio::time::sleep_until(next.into()) => {
                        lock(&shared).handle_timeout(Instant::now());
                    }
                }
            }
        });
        Ok(Self { client, task })
    }

    /// The client's state (received media, tracks map, errors).
    pub fn client(&self) -> MutexGuard<'_, TestClient> {
        lock(&self.client)
    }

    /// Stops the client without a word, like a browser tab that crashed.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(m: &Mutex<TestClient>) -> MutexGuard<'_, TestClient> {
    // A panic inside the client (a failed expectation) poisons the lock; the state is still
    // what the test wants to look at.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
