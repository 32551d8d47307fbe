//! The doctor's media check: a STUN binding request to the media UDP port at each advertised address,
//! the first packet a browser sends there.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::net::UdpSocket;

use super::{report::Check, target::step};

const MAGIC_COOKIE: u32 = 0x2112_a442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// Tries per address: UDP may lose a datagram, and a browser retransmits too.
pub const TRIES: u32 = 3;

/// A STUN binding request (RFC 8489) without attributes: what a STUN client sends to learn its
/// public address. `id` is the transaction id that the answer must echo.
pub fn binding_request(id: [u8; 12]) -> [u8; 20] {
    let mut msg = [0u8; 20];
    msg[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    msg[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    msg[8..20].copy_from_slice(&id);
    msg
}

/// The address a binding success answer for `id` reports (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS).
/// `Some(None)` is a success without an address; `None` is not an answer to `id`.
pub fn parse_binding_success(msg: &[u8], id: [u8; 12]) -> Option<Option<SocketAddr>> {
    if msg.len() < 20
        || u16::from_be_bytes([msg[0], msg[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]) != MAGIC_COOKIE
        || msg[8..20] != id
    {
        return None;
    }
    let len = u16::from_be_bytes([msg[2], msg[3]]) as usize;
    let mut attrs = msg.get(20..20 + len)?;
    let mut mapped = None;
    while attrs.len() >= 4 {
        let typ = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let value = attrs.get(4..4 + alen)?;
        let xor = typ == ATTR_XOR_MAPPED_ADDRESS;
        if (xor || typ == ATTR_MAPPED_ADDRESS) && value.len() >= 8 {
            let cookie = MAGIC_COOKIE.to_be_bytes();
            let mut port = u16::from_be_bytes([value[2], value[3]]);
            if xor {
                port ^= (MAGIC_COOKIE >> 16) as u16;
            }
            let ip = match value[1] {
                1 => {
                    let mut b = [value[4], value[5], value[6], value[7]];
                    if xor {
                        b.iter_mut().zip(cookie).for_each(|(b, c)| *b ^= c);
                    }
                    Some(IpAddr::from(b))
                }
                2 if value.len() >= 20 => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(&value[4..20]);
                    if xor {
                        let key: Vec<u8> = cookie.iter().chain(id.iter()).copied().collect();
                        b.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
                    }
                    Some(IpAddr::from(b))
                }
                _ => None,
            };
            if let Some(ip) = ip {
                mapped = Some(SocketAddr::new(ip, port));
                if xor {
                    break;
                }
            }
        }
        attrs = attrs.get(4 + alen.div_ceil(4) * 4..).unwrap_or_default();
    }
    Some(mapped)
}

/// What one probe of one address found.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Answered; the address this machine was seen from, when the answer says.
    Answered(Option<SocketAddr>),
    /// ICMP port unreachable: nothing listens on that UDP port.
    Closed,
    /// No answer at all: dropped by a firewall, or not Convene.
    Silent,
    Error(String),
}

pub async fn probe(addr: SocketAddr, timeout: Duration) -> Probe {
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Probe::Error(format!("cannot open a UDP socket: {e}")),
    };
    // Connected, so that an ICMP port-unreachable comes back as ConnectionRefused.
    if let Err(e) = socket.connect(addr).await {
        return Probe::Error(format!("cannot send to {addr}: {e}"));
    }
    let per_try = timeout / TRIES;
    for attempt in 0..TRIES {
        let id: [u8; 12] = transaction_id(attempt);
        if let Err(e) = socket.send(&binding_request(id)).await {
            return match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Probe::Closed,
                _ => Probe::Error(format!("cannot send to {addr}: {e}")),
            };
        }
        let wait = step(
            format!("waiting for a STUN answer from {addr}"),
            per_try,
            async {
                let mut buf = [0u8; 1500];
                loop {
                    let n = socket.recv(&mut buf).await?;
                    if let Some(mapped) = parse_binding_success(&buf[..n], id) {
                        return Ok::<_, std::io::Error>(mapped);
                    }
                }
            },
        )
        .await;
        match wait {
            Ok(mapped) => return Probe::Answered(mapped),
            Err(e) if e.timed_out => continue,
            Err(e) if e.reason.contains("refused") => return Probe::Closed,
            Err(e) => return Probe::Error(e.to_string()),
        }
    }
    Probe::Silent
}

/// Transaction ids need only be unique per request; time and attempt make them so without a RNG.
pub fn transaction_id(attempt: u32) -> [u8; 12] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&(nanos as u64).to_be_bytes());
    id[8..].copy_from_slice(&(attempt ^ std::process::id()).to_be_bytes());
    id
}

/// Probes every advertised media address with plain STUN binding requests; one check per address.
pub async fn media(addrs: &[SocketAddr], timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    for &addr in addrs {
        let name = format!("media UDP {addr}");
        checks.push(match probe(addr, timeout).await {
            Probe::Answered(Some(seen)) => Check::ok(
                name,
                format!("answers STUN; it sees this machine as {seen}"),
            ),
            Probe::Answered(None) => Check::ok(name, "answers STUN"),
            // Convene's media socket answers only ICE checks that carry a session's credentials,
            // so silence to a plain binding request does not prove the port is blocked.
            Probe::Silent => Check::warn(
                name,
                format!(
                    "no answer to {TRIES} plain STUN binding requests within {}; Convene answers only ICE checks of a negotiated session, so this proves nothing by itself",
                    humantime::format_duration(timeout)
                ),
                "run the doctor without --media so it negotiates a session over signaling and sends real ICE checks",
            ),
            other => media_failure(name, addr, other, timeout),
        });
    }
    checks
}

/// The failed check for a probe that got no answer.
pub fn media_failure(name: String, addr: SocketAddr, probe: Probe, timeout: Duration) -> Check {
    let firewall = format!(
        "open UDP port {} in every firewall between browsers and Convene (ufw allow {}/udp; cloud security groups too), and check [media] port and candidates",
        addr.port(),
        addr.port()
    );
    match probe {
        Probe::Closed => Check::fail(
            name,
            format!(
                "UDP port {} is closed: nothing listens there (ICMP port unreachable)",
                addr.port()
            ),
            format!(
                "start Convene with media on this port ([media] port = {}), or advertise the address it really uses ([media] candidates)",
                addr.port()
            ),
        ),
        Probe::Silent => Check::fail(
            name,
            format!(
                "no answer to {TRIES} ICE connectivity checks within {}: the port is filtered or Convene's media is not there",
                humantime::format_duration(timeout)
            ),
            firewall,
        ),
        Probe::Error(e) => Check::fail(name, e, firewall),
        Probe::Answered(_) => Check::ok(name, "answers STUN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn success(id: [u8; 12], addr: SocketAddr) -> Vec<u8> {
        let SocketAddr::V4(v4) = addr else {
            panic!("v4 only here")
        };
        let mut value = vec![0, 1];
        value.extend_from_slice(&(v4.port() ^ 0x2112).to_be_bytes());
        let cookie = MAGIC_COOKIE.to_be_bytes();
        value.extend(v4.ip().octets().iter().zip(cookie).map(|(b, c)| b ^ c));
        let mut msg = BINDING_SUCCESS.to_be_bytes().to_vec();
        msg.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        msg.extend_from_slice(&cookie);
        msg.extend_from_slice(&id);
        msg.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        msg.extend_from_slice(&(value.len() as u16).to_be_bytes());
        msg.extend_from_slice(&value);
        msg
    }

    #[test]
    fn reads_the_mapped_address() {
        let id = [9; 12];
        let addr: SocketAddr = "203.0.113.7:54321".parse().unwrap();
        assert_eq!(
            parse_binding_success(&success(id, addr), id),
            Some(Some(addr))
        );
        assert_eq!(parse_binding_success(&success(id, addr), [1; 12]), None);
        assert_eq!(parse_binding_success(&binding_request(id), id), None);
        assert_eq!(parse_binding_success(&[0u8; 5], id), None);
    }

    #[tokio::test]
    async fn a_stun_server_answers_and_a_closed_port_is_named() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                let mut id = [0u8; 12];
                id.copy_from_slice(&buf[8..20.min(n)]);
                let _ = server.send_to(&success(id, from), from).await;
            }
        });
        let Probe::Answered(Some(seen)) = probe(addr, Duration::from_secs(3)).await else {
            panic!("no answer")
        };
        assert_eq!(seen.ip(), IpAddr::from([127, 0, 0, 1]));

        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(
            probe(closed_addr, Duration::from_secs(3)).await,
            Probe::Closed
        );
    }

    #[tokio::test]
    async fn a_silent_port_times_out_and_says_so() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let checks = media(&[silent.local_addr().unwrap()], Duration::from_millis(300)).await;
        assert_eq!(checks[0].status, super::super::report::Status::Warn);
        assert!(
            checks[0]
                .detail
                .contains("no answer to 3 plain STUN binding requests within 300ms"),
            "{}",
            checks[0].detail
        );
    }
}
