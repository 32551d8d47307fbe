//! The doctor's media check as a browser does it: join a room over the signaling WebSocket, send an
//! SDP offer, read the server's ICE credentials and candidates from the answer, and send an ICE
//! connectivity check (an authenticated STUN binding request) to every advertised address: over UDP,
//! and over TCP (RFC 4571 framing) to the passive TCP candidates.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use super::{
    report::Check,
    target::{Connector, StepError, step},
};

/// The room the probe joins; it leaves at once, so the room is empty again a moment later.
pub const PROBE_ROOM: &str = "convene-doctor-media";

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLING: u16 = 0x802a;

/// What the server's SDP answer says about reaching its media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ufrag: String,
    pub pwd: String,
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
}

/// Reads ICE credentials and host candidates from an SDP answer.
pub fn parse_answer(sdp: &str) -> Result<Answer, String> {
    let mut ufrag = None;
    let mut pwd = None;
    let (mut udp, mut tcp) = (Vec::new(), Vec::new());
    for line in sdp.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            ufrag.get_or_insert_with(|| v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            pwd.get_or_insert_with(|| v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ type ...
            let f: Vec<&str> = v.split_whitespace().collect();
            let (Some(transport), Some(ip), Some(port)) = (f.get(2), f.get(4), f.get(5)) else {
                continue;
            };
            let Ok(addr) = format!("{ip}:{port}")
                .parse::<SocketAddr>()
                .or_else(|_| format!("[{ip}]:{port}").parse())
            else {
                continue;
            };
            let list = if transport.eq_ignore_ascii_case("udp") {
                &mut udp
            } else {
                &mut tcp
            };
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
    }
    Ok(Answer {
        ufrag: ufrag.ok_or("the SDP answer has no a=ice-ufrag")?,
        pwd: pwd.ok_or("the SDP answer has no a=ice-pwd")?,
        udp,
        tcp,
    })
}

/// Our own ICE credentials, from the offer str0m wrote.
fn offer_credentials(sdp: &str) -> Option<(String, String)> {
    let get = |prefix: &str| {
        sdp.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
    };
    Some((get("a=ice-ufrag:")?, get("a=ice-pwd:")?))
}

/// Joins the probe room, exchanges offer and answer, runs the connectivity checks while the session
/// exists, and leaves. `jwt` for servers that need one.
pub async fn media_checks(
    connector: &Connector,
    jwt: Option<&str>,
) -> Result<(Answer, Vec<Check>), StepError> {
    let fail = |step: &str, reason: String| StepError {
        step: step.to_owned(),
        reason,
        timed_out: false,
    };
    let mut path = format!("/api/v1/rooms/{PROBE_ROOM}/ws?name=convene%20doctor");
    if let Some(jwt) = jwt {
        path.push_str("&jwt=");
        path.push_str(jwt);
    }
    let url = connector.target.url(&path, true);
    let request = url
        .as_str()
        .into_client_request()
        .map_err(|e| fail("building the signaling request", e.to_string()))?;
    let stream = connector.connect().await?;
    let (mut ws, _) = step(
        "opening the signaling WebSocket for the media check",
        connector.timeout,
        tokio_tungstenite::client_async(request, stream),
    )
    .await?;
    let send = |msg: convene_proto::ClientMessage| {
        // Serializing our own message types cannot fail.
        Message::Text(serde_json::to_string(&msg).unwrap_or_default().into())
    };
    let join = send(convene_proto::ClientMessage::Join {
        protocol_version: convene_proto::PROTOCOL_VERSION,
        display_name: Some("convene doctor".to_owned()),
        password: None,
    });
    step("sending join", connector.timeout, ws.send(join)).await?;
    let welcome = |m: &convene_proto::ServerMessage| {
        matches!(m, convene_proto::ServerMessage::Welcome { .. })
    };
    step(
        "waiting for welcome",
        connector.timeout,
        next_message(&mut ws, welcome),
    )
    .await??;

    let mut rtc = str0m::Rtc::builder().build(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::RecvOnly,
        None,
        None,
        None,
    );
    let (offer, _pending) = api
        .apply()
        .ok_or_else(|| fail("writing an SDP offer", "nothing to offer".to_owned()))?;
    let offer = offer.to_sdp_string();
    let ours = offer_credentials(&offer).ok_or_else(|| {
        fail(
            "writing an SDP offer",
            "no ICE credentials in it".to_owned(),
        )
    })?;
    let msg = send(convene_proto::ClientMessage::SdpOffer {
        sdp: offer,
        sources: BTreeMap::new(),
    });
    step("sending the SDP offer", connector.timeout, ws.send(msg)).await?;
    let answer = |m: &convene_proto::ServerMessage| {
        matches!(
            m,
            convene_proto::ServerMessage::SdpAnswer { .. }
                | convene_proto::ServerMessage::MediaError { .. }
        )
    };
    let reply = step(
        "waiting for the SDP answer",
        connector.timeout,
        next_message(&mut ws, answer),
    )
    .await??;
    let result = match reply {
        convene_proto::ServerMessage::SdpAnswer { sdp } => match parse_answer(&sdp) {
            Ok(answer) => {
                let mut checks = check_udp(&answer, &ours, connector.timeout).await;
                checks.extend(check_tcp(&answer, &ours, connector.timeout).await);
                Ok((answer, checks))
            }
            Err(e) => Err(fail("reading the SDP answer", e)),
        },
        convene_proto::ServerMessage::MediaError { code, message } => {
            Err(fail("negotiating media", format!("{code}: {message}")))
        }
        _ => Err(fail("negotiating media", "unexpected reply".to_owned())),
    };
    let _ = ws.send(send(convene_proto::ClientMessage::Leave)).await;
    let _ = ws.close(None).await;
    result
}

/// The next server message that `wanted` accepts; a server `error` message ends the wait.
async fn next_message<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    wanted: impl Fn(&convene_proto::ServerMessage) -> bool,
) -> Result<Result<convene_proto::ServerMessage, StepError>, std::io::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(frame) = ws.next().await {
        let frame = frame.map_err(std::io::Error::other)?;
        let Message::Text(text) = frame else { continue };
        let Ok(msg) = serde_json::from_str::<convene_proto::ServerMessage>(&text) else {
            continue;
        };
        if wanted(&msg) {
            return Ok(Ok(msg));
        }
        if let convene_proto::ServerMessage::Error { .. } = &msg {
            return Ok(Err(StepError {
                step: "joining the probe room".to_owned(),
                reason: format!("the server refused: {text}"),
                timed_out: false,
            }));
        }
    }
    Err(std::io::Error::other(
        "the server closed the signaling WebSocket",
    ))
}

/// An ICE connectivity check (RFC 8445 7.2.2) from the controlling side.
pub fn connectivity_check(id: [u8; 12], answer: &Answer, ours: &(String, String)) -> Vec<u8> {
    let username = format!("{}:{}", answer.ufrag, ours.0);
    let mut attrs = Vec::new();
    push_attr(&mut attrs, ATTR_USERNAME, username.as_bytes());
    push_attr(&mut attrs, ATTR_PRIORITY, &0x6e00_1eff_u32.to_be_bytes());
    push_attr(
        &mut attrs,
        ATTR_ICE_CONTROLLING,
        &u64::from_be_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]).to_be_bytes(),
    );
    push_attr(&mut attrs, ATTR_USE_CANDIDATE, &[]);
    let mut msg = header(&id, attrs.len() + 24);
    msg.extend_from_slice(&attrs);
    // MESSAGE-INTEGRITY covers the header (with the length including itself) and what precedes it.
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        answer.pwd.as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, &msg);
    push_attr(&mut msg, ATTR_MESSAGE_INTEGRITY, tag.as_ref());
    // FINGERPRINT covers everything before it, with the length including itself.
    let len = msg.len() - 20 + 8;
    msg[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    let crc = crc32(&msg) ^ 0x5354_554e;
    push_attr(&mut msg, ATTR_FINGERPRINT, &crc.to_be_bytes());
    msg
}

fn header(id: &[u8; 12], len: usize) -> Vec<u8> {
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(len as u16).to_be_bytes());
    msg.extend_from_slice(&MAGIC_COOKIE);
    msg.extend_from_slice(id);
    msg
}

fn push_attr(buf: &mut Vec<u8>, typ: u16, value: &[u8]) {
    buf.extend_from_slice(&typ.to_be_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + (4 - value.len() % 4) % 4, 0);
}

/// CRC-32 (IEEE), as STUN's FINGERPRINT uses it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Whether `msg` is a binding success response to `id`.
fn is_success(msg: &[u8], id: &[u8; 12]) -> bool {
    msg.len() >= 20 && msg[0..2] == [0x01, 0x01] && msg[4..8] == MAGIC_COOKIE && &msg[8..20] == id
}

/// Sends connectivity checks to each advertised UDP address; one check line per address.
pub async fn check_udp(answer: &Answer, ours: &(String, String), timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    for &addr in &answer.udp {
        let name = format!("media UDP {addr}");
        checks.push(match probe(addr, answer, ours, timeout).await {
            super::udp::Probe::Answered(_) => Check::ok(name, "answers ICE connectivity checks (the address the server advertises in its SDP answer)"),
            other => super::udp::media_failure(name, addr, other, timeout),
        });
    }
    if answer.udp.is_empty() {
        checks.push(Check::fail(
            "media UDP",
            "the server's SDP answer advertises no UDP candidate",
            "check [media] candidates and the media log lines at start-up",
        ));
    }
    checks
}

/// Sends a connectivity check over TCP to each advertised passive TCP candidate (ICE-TCP, the path
/// of browsers whose UDP is blocked); one check line per address. A closed TCP port only warns:
/// browsers that can use UDP do not need it.
pub async fn check_tcp(answer: &Answer, ours: &(String, String), timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    for &addr in &answer.tcp {
        let id = super::udp::transaction_id(0);
        let probe = step(
            format!("an ICE-TCP connectivity check to {addr}"),
            timeout,
            async {
                let mut stream = TcpStream::connect(addr).await?;
                let check = connectivity_check(id, answer, ours);
                let mut framed = (check.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&check);
                stream.write_all(&framed).await?;
                loop {
                    let mut len = [0u8; 2];
                    stream.read_exact(&mut len).await?;
                    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    stream.read_exact(&mut frame).await?;
                    if is_success(&frame, &id) {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            },
        )
        .await;
        let name = format!("media TCP {addr}");
        checks.push(match probe {
            Ok(()) => Check::ok(
                name,
                "answers ICE connectivity checks over TCP (the fallback for browsers whose UDP is blocked)",
            ),
            Err(e) => Check::warn(
                name,
                format!("no ICE answer over TCP: {e}"),
                format!(
                    "open TCP port {} to the server for browsers whose UDP is blocked, or set [media] tcp = false",
                    addr.port()
                ),
            ),
        });
    }
    checks
}

async fn probe(
    addr: SocketAddr,
    answer: &Answer,
    ours: &(String, String),
    timeout: Duration,
) -> super::udp::Probe {
    use super::udp::Probe;
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = UdpSocket::bind(bind).await else {
        return Probe::Error("cannot open a UDP socket".to_owned());
    };
    if let Err(e) = socket.connect(addr).await {
        return Probe::Error(format!("cannot send to {addr}: {e}"));
    }
    let tries = super::udp::TRIES;
    for attempt in 0..tries {
        let id = super::udp::transaction_id(attempt);
        if let Err(e) = socket.send(&connectivity_check(id, answer, ours)).await {
            return if e.kind() == std::io::ErrorKind::ConnectionRefused {
                Probe::Closed
            } else {
                Probe::Error(e.to_string())
            };
        }
        let wait = step(
            format!("waiting for an ICE answer from {addr}"),
            timeout / tries,
            async {
                let mut buf = [0u8; 1500];
                loop {
                    let n = socket.recv(&mut buf).await?;
                    if is_success(&buf[..n], &id) {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            },
        )
        .await;
        match wait {
            Ok(()) => return Probe::Answered(None),
            Err(e) if e.timed_out => continue,
            Err(e) if e.reason.contains("refused") => return Probe::Closed,
            Err(e) => return Probe::Error(e.to_string()),
        }
    }
    Probe::Silent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_and_candidates() {
        let sdp = "v=0\r\na=ice-ufrag:srv\r\na=ice-pwd:secretpwd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=candidate:1 1 udp 2130706175 127.0.0.1 40000 typ host\r\n\
                   a=candidate:2 1 udp 2130706175 ::1 40000 typ host\r\n\
                   a=candidate:3 1 tcp 2130706175 192.0.2.2 443 typ host tcptype passive\r\n";
        let a = parse_answer(sdp).unwrap();
        assert_eq!((a.ufrag.as_str(), a.pwd.as_str()), ("srv", "secretpwd"));
        assert_eq!(
            a.udp,
            [
                "127.0.0.1:40000".parse().unwrap(),
                "[::1]:40000".parse().unwrap()
            ]
        );
        assert_eq!(a.tcp, ["192.0.2.2:443".parse().unwrap()]);
        assert!(parse_answer("v=0\r\n").is_err());
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn a_check_carries_username_integrity_and_fingerprint() {
        let answer = Answer {
            ufrag: "srv".into(),
            pwd: "pwd".into(),
            udp: vec![],
            tcp: vec![],
        };
        let msg = connectivity_check([7; 12], &answer, &("cli".into(), "x".into()));
        assert_eq!(
            u16::from_be_bytes([msg[2], msg[3]]) as usize,
            msg.len() - 20
        );
        assert!(msg.windows(7).any(|w| w == b"srv:cli"));
        // FINGERPRINT is last and checks out.
        let fp = u32::from_be_bytes([
            msg[msg.len() - 4],
            msg[msg.len() - 3],
            msg[msg.len() - 2],
            msg[msg.len() - 1],
        ]);
        assert_eq!(fp, crc32(&msg[..msg.len() - 8]) ^ 0x5354_554e);
    }
}
