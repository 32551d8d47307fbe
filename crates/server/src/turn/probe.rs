//! Checks that an external TURN server answers (a STUN Binding request, which coturn answers without
//! credentials), so clients are only offered TURN while it works and the operator hears when it stops.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::credentials::{TurnUrl, parse_url};

const TIMEOUT: Duration = Duration::from_secs(3);
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Probes now and then every `interval`, logging each change of state.
pub async fn watch(
    urls: Vec<String>,
    interval: Duration,
    healthy: Arc<AtomicBool>,
    up: prometheus_client::metrics::gauge::Gauge,
    shutdown: CancellationToken,
) {
    let mut was_ok = None;
    loop {
        let mut failures = Vec::new();
        let mut any_ok = false;
        for url in &urls {
            match probe(url).await {
                Ok(()) => any_ok = true,
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        healthy.store(any_ok, Ordering::Relaxed);
        up.set(i64::from(any_ok));
        match (was_ok, any_ok) {
            (Some(true) | None, false) => tracing::error!(
                "turn: the external TURN server does not answer ({}); clients get no TURN until it does",
                failures.join("; ")
            ),
            (Some(false), true) => tracing::info!("turn: the external TURN server answers again"),
            (None, true) => tracing::info!("turn: the external TURN server answers"),
            _ => {}
        }
        if any_ok && !failures.is_empty() && was_ok != Some(true) {
            tracing::warn!(
                "turn: some TURN urls do not answer: {}",
                failures.join("; ")
            );
        }
        was_ok = Some(any_ok);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn probe(url: &str) -> Result<(), String> {
    let TurnUrl {
        host,
        port,
        tcp,
        tls,
    } = parse_url(url)?;
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let request = binding_request();
    let work = async {
        if tls {
            // Speaking TLS only to check reachability is not worth it: a TCP accept is the signal.
            tokio::net::TcpStream::connect(addr).await.map(|_| ())
        } else if tcp {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(&request).await?;
            let mut header = [0u8; 20];
            stream.read_exact(&mut header).await?;
            check_response(&request, &header)
        } else {
            let bind: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = tokio::net::UdpSocket::bind(bind).await?;
            socket.send_to(&request, addr).await?;
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await?;
                if from == addr && n >= 20 {
                    return check_response(&request, &buf[..20]);
                }
            }
        }
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer from {addr} within {TIMEOUT:?}")),
    }
}

fn binding_request() -> [u8; 20] {
    let mut request = [0u8; 20];
    request[1] = 0x01; // Binding request, no attributes.
    request[4..8].copy_from_slice(&MAGIC_COOKIE);
    let id: [u8; 12] = std::array::from_fn(|i| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (nanos >> (i % 4 * 8)) as u8 ^ (i as u8).wrapping_mul(151)
    });
    request[8..].copy_from_slice(&id);
    request
}

/// A success or error response to our transaction both prove a live STUN/TURN server.
fn check_response(request: &[u8; 20], header: &[u8]) -> std::io::Result<()> {
    let class_ok = header[0] == 0x01 && (header[1] == 0x01 || header[1] == 0x11);
    if class_ok && header[4..20] == request[4..20] {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not a STUN Binding response",
        ))
    }
}
