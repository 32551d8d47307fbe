//! A test client whose only transport is ICE over TCP (RFC 6544), as a browser behind a
//! firewall that blocks UDP: it offers no candidate, reads the server's passive TCP candidate
//! from the answer, connects to it, adds the connection as its active TCP candidate, and sends
//! ICE, DTLS and SRTP as RFC 4571 frames (2-byte length, then the packet).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use convene_media::str0m::net::Protocol;
use convene_proto::{ClientMessage, MediaSource, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::TestClient;
use crate::harness::kind_of;

/// The connection to the server's TCP candidate, once the answer named it.
struct Link {
    server: SocketAddr,
    local: SocketAddr,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
}

pub struct TcpPeer {
    client: Arc<Mutex<TestClient>>,
    link: Arc<Mutex<Option<(SocketAddr, SocketAddr)>>>,
    task: JoinHandle<()>,
}

impl TcpPeer {
    /// Makes the first offer with `tracks` and runs until `from_server` closes or the TCP
    /// connection ends.
    pub async fn start(
        name: &str,
        tracks: &[MediaSource],
        to_server: mpsc::UnboundedSender<ClientMessage>,
        mut from_server: mpsc::UnboundedReceiver<ServerMessage>,
    ) -> std::io::Result<Self> {
        let now = Instant::now();
        let mut client = TestClient::without_candidates(name, SocketAddr::from(([0; 4], 0)), now);
        let kinds: Vec<_> = tracks.iter().map(|s| (kind_of(*s), *s)).collect();
        client.offer(now, &kinds);
        let client = Arc::new(Mutex::new(client));
        let link_seen = Arc::new(Mutex::new(None));
        let (shared, seen) = (client.clone(), link_seen.clone());
        let task = tokio::spawn(async move {
            let mut link: Option<Link> = None;
            let mut buf = vec![0u8; 2 * (2 + usize::from(u16::MAX))];
            let mut filled = 0;
            loop {
                let (transmits, next) = {
                    let mut c = lock(&shared);
                    let mut transmits = Vec::new();
                    while let Some(t) = c.poll_transmit() {
                        transmits.push(t);
                    }
                    while let Some(m) = c.poll_signal() {
                        if to_server.send(m).is_err() {
                            return;
                        }
                    }
                    let next = c
                        .next_timeout()
                        .max(Instant::now() + Duration::from_micros(200));
                    (transmits, next)
                };
                if let Some(l) = link.as_mut() {
                    let mut framed = Vec::new();
                    for t in transmits {
                        if t.proto == Protocol::Tcp && t.destination == l.server {
                            framed.extend_from_slice(&(t.contents.len() as u16).to_be_bytes());
                            framed.extend_from_slice(&t.contents);
                        }
                    }
                    if !framed.is_empty() && l.writer.write_all(&framed).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    r = read_some(&mut link, &mut buf[filled..]) => {
                        let Ok(n) = r else { return };
                        if n == 0 {
                            return;
                        }
                        filled += n;
                        let Some(l) = link.as_ref() else { return };
                        let mut at = 0;
                        let mut c = lock(&shared);
                        while filled - at >= 2 {
                            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
                            if filled - at < 2 + len {
                                break;
                            }
                            let frame = &buf[at + 2..at + 2 + len];
                            c.handle_receive(Instant::now(), Protocol::Tcp, l.server, l.local, frame);
                            at += 2 + len;
                        }
                        buf.copy_within(at..filled, 0);
                        filled -= at;
                    }
                    m = from_server.recv() => {
                        let Some(m) = m else { return };
                        let server = match (&m, &link) {
                            (ServerMessage::SdpAnswer { sdp }, None) => passive_tcp_candidate(sdp),
                            _ => None,
                        };
                        lock(&shared).handle_signal(Instant::now(), m);
                        if let Some(server) = server {
                            let Ok(stream) = TcpStream::connect(server).await else { return };
                            let _ = stream.set_nodelay(true);
                            let Ok(local) = stream.local_addr() else { return };
                            let (reader, writer) = stream.into_split();
                            lock(&shared).add_tcp_candidate(Instant::now(), local);
                            *lock_link(&seen) = Some((local, server));
                            link = Some(Link { server, local, reader, writer });
                        }
                    }
                    _ = tokio::time::sleep_until(next.into()) => {
                        lock(&shared).handle_timeout(Instant::now());
                    }
                }
            }
        });
        Ok(Self {
            client,
            link: link_seen,
            task,
        })
    }

    /// The client's state (received media, tracks map, errors).
    pub fn client(&self) -> MutexGuard<'_, TestClient> {
        lock(&self.client)
    }

    /// The (local, server) addresses of the TCP connection, once it is open.
    pub fn connection(&self) -> Option<(SocketAddr, SocketAddr)> {
        *lock_link(&self.link)
    }

    /// Whether the client task still runs (it ends when the connection closes).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the client without a word, like a browser tab that crashed.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for TcpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_some(link: &mut Option<Link>, buf: &mut [u8]) -> std::io::Result<usize> {
    match link {
        Some(l) => l.reader.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The first passive TCP host candidate of an SDP
/// (`a=candidate:F 1 tcp PRIO IP PORT typ host tcptype passive`).
pub fn passive_tcp_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=candidate:")?;
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let passive = parts.windows(2).any(|w| w == ["tcptype", "passive"]);
        if parts.len() < 6 || !parts[2].eq_ignore_ascii_case("tcp") || !passive {
            return None;
        }
        let ip = parts[4].parse().ok()?;
        let port = parts[5].parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

fn lock(m: &Mutex<TestClient>) -> MutexGuard<'_, TestClient> {
    // A panic inside the client (a failed expectation) poisons the lock; the state is still
    // what the test wants to look at.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock_link(
    m: &Mutex<Option<(SocketAddr, SocketAddr)>>,
) -> MutexGuard<'_, Option<(SocketAddr, SocketAddr)>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_passive_tcp_candidate() {
        let sdp = "v=0\r\n\
            a=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n\
            a=candidate:2 1 tcp 1509949695 127.0.0.1 9 typ host tcptype active\r\n\
            a=candidate:3 1 tcp 1509949695 127.0.0.1 5001 typ host tcptype passive\r\n";
        assert_eq!(
            passive_tcp_candidate(sdp),
            Some(SocketAddr::from(([127, 0, 0, 1], 5001)))
        );
        assert_eq!(passive_tcp_candidate("v=0\r\n"), None);
    }
}
