//! Sending what one pass of the media core produced in as few system calls as the kernel allows.
//!
//! A video frame written to a subscriber leaves as several RTP packets of the same size in a row
//! (str0m fills each packet to the MTU, only the last one is shorter), all to that subscriber's
//! address. Such a run goes out as one UDP GSO send (`UDP_SEGMENT`): one system call and one
//! buffer through the stack, cut into datagrams by the kernel, the NIC or the receiver. Anything
//! else is one datagram per `sendmsg`, as before. Without GSO (old kernels, other systems), or
//! when a device refuses it (quinn-udp then turns it off for the socket), every run falls back
//! to single datagrams.
//!
//! The batch keeps its buffers between passes, so sending allocates nothing per packet.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use str0m::net::Transmit;

use super::socket::MediaSocket;

/// The kernel's limit on segments per GSO send (`UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// Largest GSO buffer: a UDP datagram's payload must fit in 16 bits before segmentation.
const MAX_GSO_BYTES: usize = 65_000;

/// Datagrams waiting to be sent, in the order the core produced them.
#[derive(Default)]
pub struct SendBatch {
    queue: Vec<Transmit>,
    /// A run's datagrams laid end to end, for the GSO send.
    scratch: Vec<u8>,
    /// System calls made, for the `send_calls` metric.
    calls: u64,
}

impl SendBatch {
    pub fn push(&mut self, t: Transmit) {
        self.queue.push(t);
    }

    /// Send calls made so far (each carries one datagram or one GSO run).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Sends everything queued. A full send buffer is waited for once per send; if it is still
    /// full the datagram is dropped (RTP survives loss, and a stalled loop would hurt everyone).
    pub async fn flush(&mut self, socket: &MediaSocket) {
        let max_segments = socket.max_gso_segments().min(MAX_SEGMENTS);
        let mut start = 0;
        while start < self.queue.len() {
            let run = &self.queue[start..];
            let n = run_len(run, max_segments);
            let first = &run[0];
            let (source, destination) = (first.source, first.destination);
            if n == 1 {
                self.calls += 1;
                send_one(socket, source, destination, &first.contents, None).await;
            } else {
                let segment = first.contents.len();
                self.scratch.clear();
                for t in &run[..n] {
                    self.scratch.extend_from_slice(&t.contents);
                }
                self.calls += 1;
                let sent =
                    send_one(socket, source, destination, &self.scratch, Some(segment)).await;
                if !sent {
                    // GSO refused by the path (quinn-udp has switched it off by now): the same
                    // datagrams one by one.
                    for t in &self.queue[start..start + n] {
                        self.calls += 1;
                        send_one(socket, source, destination, &t.contents, None).await;
                    }
                }
            }
            start += n;
        }
        self.queue.clear();
    }
}

/// One send with one wait for a full buffer. False only when a GSO send failed otherwise, so the
/// caller can retry its datagrams one by one.
async fn send_one(
    socket: &MediaSocket,
    source: SocketAddr,
    destination: SocketAddr,
    contents: &[u8],
    segment: Option<usize>,
) -> bool {
    let mut result = socket.try_send(source, destination, contents, segment);
    if is_would_block(&result) {
        let _ = socket.writable().await;
        result = socket.try_send(source, destination, contents, segment);
    }
    match result {
        Ok(()) => true,
        Err(e) => {
            let full = e.kind() == ErrorKind::WouldBlock;
            tracing::debug!(error = %e, %destination, ?segment, "media send failed");
            // A refused GSO send is worth retrying one datagram at a time; a full buffer is not.
            segment.is_none() || full
        }
    }
}

fn is_would_block(result: &io::Result<()>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// How many datagrams from the start of `queue` can leave as one GSO send: the same source and
/// destination, the same size except a last one that may be shorter (the kernel cuts the buffer
/// at every `size` bytes), within the kernel's segment and byte limits. At least 1.
fn run_len(queue: &[Transmit], max_segments: usize) -> usize {
    let Some(first) = queue.first() else {
        return 0;
    };
    let size = first.contents.len();
    let mut n = 1;
    let mut bytes = size;
    for t in &queue[1..] {
        let len = t.contents.len();
        if n >= max_segments
            || t.destination != first.destination
            || t.source != first.source
            || t.proto != first.proto
            || len > size
            || len == 0
            || bytes + len > MAX_GSO_BYTES
        {
            break;
        }
        n += 1;
        bytes += len;
        if len < size {
            // A shorter datagram can only end a run.
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::net::Protocol;

    fn t(to: u16, len: usize, fill: u8) -> Transmit {
        Transmit {
            proto: Protocol::Udp,
            source: "127.0.0.1:5000".parse().unwrap(),
            destination: SocketAddr::from(([127, 0, 0, 1], to)),
            contents: vec![fill; len].into(),
        }
    }

    fn runs(queue: &[Transmit], max: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < queue.len() {
            let n = run_len(&queue[i..], max);
            out.push(n);
            i += n;
        }
        out
    }

    #[test]
    fn runs_group_equal_sizes_to_one_destination() {
        let q = [
            t(1, 1200, 0),
            t(1, 1200, 1),
            t(1, 1200, 2),
            t(1, 300, 3),
            t(1, 1200, 4),
            t(2, 1200, 5),
            t(2, 1200, 6),
            t(3, 100, 7),
        ];
        assert_eq!(runs(&q, 64), vec![4, 1, 2, 1]);
    }

    #[test]
    fn a_larger_datagram_or_other_source_breaks_a_run() {
        let mut q = vec![t(1, 800, 0), t(1, 1200, 1), t(1, 1200, 2)];
        assert_eq!(runs(&q, 64), vec![1, 2]);
        q[2].source = "127.0.0.2:5000".parse().unwrap();
        assert_eq!(runs(&q, 64), vec![1, 1, 1]);
    }

    #[test]
    fn runs_respect_segment_and_byte_limits() {
        let q: Vec<_> = (0..10).map(|i| t(1, 1200, i)).collect();
        assert_eq!(runs(&q, 4), vec![4, 4, 2]);
        assert_eq!(runs(&q, 1), vec![1; 10]);
        // 54 × 1200 = 64,800 fits; the 55th would pass 65,000 bytes.
        let q: Vec<_> = (0..60).map(|i| t(1, 1200, i as u8)).collect();
        assert_eq!(runs(&q, 64), vec![54, 6]);
        assert_eq!(runs(&[], 64), Vec::<usize>::new());
    }

    /// Through a real socket: every datagram arrives whole and in order at a receiver that does
    /// no GRO, and runs used fewer send calls than datagrams when the kernel has GSO.
    #[tokio::test]
    async fn flush_delivers_each_datagram_intact() {
        let socket = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let source = socket.local_addr();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let mk = |to: &std::net::UdpSocket, len: usize, fill: u8| Transmit {
            proto: Protocol::Udp,
            source,
            destination: to.local_addr().unwrap(),
            contents: vec![fill; len].into(),
        };
        let sent = [
            mk(&a, 1200, 1),
            mk(&a, 1200, 2),
            mk(&a, 1200, 3),
            mk(&a, 517, 4),
            mk(&b, 90, 5),
            mk(&a, 1200, 6),
        ];
        let mut batch = SendBatch::default();
        for s in &sent {
            batch.push(Transmit {
                proto: s.proto,
                source: s.source,
                destination: s.destination,
                contents: s.contents.to_vec().into(),
            });
        }
        batch.flush(&socket).await;
        let mut buf = [0u8; 2000];
        for s in &sent {
            let rx = if s.destination == a.local_addr().unwrap() {
                &a
            } else {
                &b
            };
            let (n, from) = rx.recv_from(&mut buf).expect("datagram arrives");
            assert_eq!(from, source);
            assert_eq!(
                &buf[..n],
                &s.contents[..],
                "datagram {} intact",
                s.contents[0]
            );
        }
        if socket.max_gso_segments() > 1 {
            assert_eq!(batch.calls(), 3, "one GSO send for the run of four");
        } else {
            assert_eq!(batch.calls(), 6);
        }
        // The batch is empty and reusable.
        batch.flush(&socket).await;
        assert_eq!(
            batch.calls(),
            if socket.max_gso_segments() > 1 { 3 } else { 6 }
        );
    }
}
