//! ICE over TCP: a str0m client with no UDP socket at all (it offers only an active TCP
//! candidate) joins through the real signaling WebSocket, connects to the server's passive TCP
//! candidate and exchanges audio and video with a participant on UDP; bad input on other TCP
//! connections closes only those.

mod signal_support;

use std::net::SocketAddr;
use std::time::Duration;

use convene_proto::MediaSource;
use convene_testkit::TestClient;
use convene_testkit::tcp::TcpPeer;
use convene_testkit::udp::UdpPeer;
use signal_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

/// What carries a participant's media.
enum Peer {
    Udp(UdpPeer),
    Tcp(TcpPeer),
}

struct Participant {
    id: String,
    peer: Peer,
}

impl Participant {
    fn client(&self) -> std::sync::MutexGuard<'_, TestClient> {
        match &self.peer {
            Peer::Udp(p) => p.client(),
            Peer::Tcp(p) => p.client(),
        }
    }

    fn frames(&self, from: &Participant, source: MediaSource) -> u64 {
        self.client()
            .received_from(&from.id, source)
            .map_or(0, |r| r.frames)
    }
}

/// Joins `room` over the WebSocket and bridges its SDP messages to a str0m peer on UDP or,
/// with `tcp`, on ICE-TCP only.
async fn participant(server: &Server, room: &str, name: &str, tcp: bool) -> Participant {
    let (ws, id) = server.join(room, name).await;
    let Bridge {
        to_server,
        from_server,
        ..
    } = bridge(ws, is_media);
    let peer = if tcp {
        Peer::Tcp(
            TcpPeer::start(&id, AV, to_server, from_server)
                .await
                .unwrap(),
        )
    } else {
        Peer::Udp(
            UdpPeer::start(&id, AV, to_server, from_server)
                .await
                .unwrap(),
        )
    };
    Participant { id, peer }
}

fn flowing(a: &Participant, b: &Participant, over: u64) -> bool {
    a.frames(b, MediaSource::Camera) > over
        && a.frames(b, MediaSource::Microphone) > over
        && b.frames(a, MediaSource::Camera) > over
        && b.frames(a, MediaSource::Microphone) > over
}

fn report(p: &Participant) -> String {
    let c = p.client();
    format!(
        "{}: connected {} tracks {:?} received {:?} errors {:?}",
        p.id, c.connected, c.tracks, c.received, c.media_errors
    )
}

/// Whether the server closes `stream` (EOF or reset) within `limit`.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // The server never writes to a connection that sent no valid STUN; keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_only_client_exchanges_media_with_a_udp_participant() {
    let server = Server::start("").await;
    let ada = participant(&server, "tcp", "Ada", false).await;
    let bob = participant(&server, "tcp", "Bob", true).await;
    let ok = eventually(Duration::from_secs(15), || flowing(&ada, &bob, 20)).await;
    assert!(ok, "{}\n{}", report(&ada), report(&bob));
    for p in [&ada, &bob] {
        let c = p.client();
        assert!(c.media_errors.is_empty(), "{:?}", c.media_errors);
        let video = c.received_from(
            if p.id == ada.id { &bob.id } else { &ada.id },
            MediaSource::Camera,
        );
        let video = video.expect("video received");
        assert_eq!(video.first_was_keyframe, Some(true));
        assert_eq!(video.damaged, 0);
    }
    let Peer::Tcp(tcp) = &bob.peer else {
        unreachable!()
    };
    let (local, server_tcp) = tcp.connection().expect("connected over TCP");
    assert!(server_tcp.ip().is_loopback());
    assert_ne!(local, server_tcp);

    let (status, text) = server.http("GET", "/metrics", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "convene_media_tcp_connections "),
        1.0,
        "{text}"
    );
    assert!(metric(&text, "convene_media_tcp_connections_accepted_total") >= 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tcp_input_closes_only_that_connection() {
    let server = Server::start("").await;
    let ada = participant(&server, "bad", "Ada", false).await;
    let bob = participant(&server, "bad", "Bob", true).await;
    let ok = eventually(Duration::from_secs(15), || flowing(&ada, &bob, 10)).await;
    assert!(ok, "{}\n{}", report(&ada), report(&bob));
    let Peer::Tcp(tcp) = &bob.peer else {
        unreachable!()
    };
    let (_, port) = tcp.connection().expect("connected over TCP");
    let port: SocketAddr = port;

    let attempts: [(&str, Vec<u8>); 5] = [
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "a frame that is not STUN",
            vec![0x00, 0x04, 0x80, 0x60, 0x00, 0x01],
        ),
        (
            "a length prefix above any datagram",
            vec![0xff, 0xff, 0x00, 0x01],
        ),
        ("an empty frame", vec![0x00, 0x00]),
        (
            "random bytes",
            (0..200u32).map(|i| (i * 37 + 11) as u8).collect(),
        ),
    ];
    for (what, bytes) in attempts {
        let mut s = TcpStream::connect(port).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        assert!(
            closed_by_server(&mut s, Duration::from_secs(5)).await,
            "{what} did not close the connection"
        );
    }
    // The TCP participant's media went on meanwhile, both ways.
    let before = bob.frames(&ada, MediaSource::Camera);
    let ok = eventually(Duration::from_secs(5), || {
        bob.frames(&ada, MediaSource::Camera) > before + 20 && flowing(&ada, &bob, before)
    })
    .await;
    assert!(ok, "media stopped after bad input: {}", report(&bob));
    assert!(tcp.is_running());

    let (_, text) = server.http("GET", "/metrics", None, "").await;
    assert_eq!(
        metric(
            &text,
            "convene_media_tcp_connections_closed_total{reason=\"bad_input\"}"
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "convene_media_tcp_connections "),
        1.0,
        "{text}"
    );
    server.stop().await;
}
