//! The doctor's checks over TCP: DNS, the TLS certificate, HTTP health and readiness, clock skew, and the
//! two WebSocket handshakes (signaling and `/socket.io/`) through whatever proxy sits in front.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::{
    report::Check,
    target::{Connector, StepError, Target, step},
};

/// Largest HTTP response the doctor reads; health and handshake answers are tiny.
const MAX_RESPONSE: usize = 256 * 1024;

/// Where the reverse-proxy recipes are, for fixes.
const PROXY_DOCS: &str = "docs/operations.md, \"Reverse proxies\"";

/// Resolves the host like a browser's resolver would. Returns the addresses to connect to.
pub async fn dns(target: &Target, timeout: Duration) -> (Check, Vec<SocketAddr>) {
    const NAME: &str = "DNS";
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>() {
        let addr = SocketAddr::new(ip, target.port);
        return (
            Check::skip(NAME, format!("the URL names an IP address ({ip})")),
            vec![addr],
        );
    }
    let lookup = step(
        format!("resolving {}", target.host),
        timeout,
        tokio::net::lookup_host((target.host.as_str(), target.port)),
    )
    .await;
    match lookup {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                let check = Check::fail(
                    NAME,
                    format!("{} has no A or AAAA record", target.host),
                    format!(
                        "add an A (and AAAA) record for {} pointing at this server",
                        target.host
                    ),
                );
                return (check, addrs);
            }
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let check = Check::ok(
                NAME,
                format!("{} resolves to {}", target.host, shown.join(", ")),
            );
            (check, addrs)
        }
        Err(e) => {
            let fix = if e.timed_out {
                "check /etc/resolv.conf and that a DNS server is reachable from this machine"
                    .to_owned()
            } else {
                format!(
                    "add an A (and AAAA) record for {} pointing at this server",
                    target.host
                )
            };
            (Check::fail(NAME, e.to_string(), fix), Vec::new())
        }
    }
}

/// The certificate the deployment presents: trusted, valid for the host, and not about to expire.
pub async fn certificate(connector: &Connector) -> Check {
    const NAME: &str = "TLS certificate";
    let Some(tls) = connector.tls.clone() else {
        let local = connector.target.is_local();
        return if local {
            Check::ok(
                NAME,
                "plain http on this machine (browsers allow camera and microphone on localhost)",
            )
        } else {
            Check::fail(
                NAME,
                "the URL is plain http: browsers refuse camera and microphone on http pages other than localhost",
                "serve Convene over https: let it terminate TLS ([tls] in the config) or put a TLS proxy in front; see docs/operations.md, \"HTTPS\"",
            )
        };
    };
    let tcp = match connector.connect_tcp().await {
        Ok(tcp) => tcp,
        Err(e) => return Check::fail(NAME, e.to_string(), unreachable_fix(&connector.target)),
    };
    let stream = match connector.handshake(tls, tcp).await {
        Ok(stream) => stream,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                certificate_fix(&e.reason, &connector.target),
            );
        }
    };
    let (_, session) = stream.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return Check::fail(
            NAME,
            "the server sent no certificate",
            certificate_fix("", &connector.target),
        );
    };
    match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => {
            let left = cert.validity().time_to_expiration().map(|d| d.whole_days());
            let issuer = cert.issuer().to_string();
            match left {
                Some(days) if days < 14 => Check::warn(
                    NAME,
                    format!(
                        "valid for {}, issued by {issuer}, but expires in {days} days",
                        connector.target.host
                    ),
                    "renew the certificate (with [tls.acme] Convene renews it itself 30 days ahead)",
                ),
                Some(days) => Check::ok(
                    NAME,
                    format!(
                        "valid for {}, issued by {issuer}, expires in {days} days",
                        connector.target.host
                    ),
                ),
                None => Check::fail(NAME, "the certificate has expired", "renew the certificate"),
            }
        }
        // rustls accepted it, so it is valid; only the expiry cannot be shown.
        Err(_) => Check::ok(NAME, format!("valid for {}", connector.target.host)),
    }
}

fn certificate_fix(reason: &str, target: &Target) -> String {
    if reason.contains("Expired") {
        "renew the certificate (with [tls.acme] Convene renews it itself)".to_owned()
    } else if reason.contains("NotValidForName") {
        format!(
            "the certificate does not name {}: get one that does (a SAN for this host name)",
            target.host
        )
    } else if reason.contains("UnknownIssuer") {
        "the certificate is not signed by a trusted CA (self-signed?): browsers will warn every user. Use ACME ([tls.acme]), or pass --ca-file for a private CA your users' browsers trust".to_owned()
    } else if reason.contains("timed out") {
        unreachable_fix(target)
    } else {
        format!(
            "check that {} serves TLS on port {} with a complete certificate chain",
            target.host, target.port
        )
    }
}

fn unreachable_fix(target: &Target) -> String {
    format!(
        "make sure something listens on {}:{} and that a firewall lets TCP port {} in",
        target.host, target.port, target.port
    )
}

/// A plain HTTP response, read to the end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// `GET path` through a fresh connection, as a browser would send it.
pub async fn get(connector: &Connector, path: &str) -> Result<Response, StepError> {
    let mut stream = connector.connect().await?;
    let full = format!("{}{path}", connector.target.prefix);
    let request = format!(
        "GET {full} HTTP/1.1\r\nHost: {}\r\nUser-Agent: convene-doctor\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        connector.target.authority()
    );
    step(
        format!("sending GET {full}"),
        connector.timeout,
        stream.write_all(request.as_bytes()),
    )
    .await?;
    let mut raw = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 || raw.len() + n > MAX_RESPONSE {
                raw.extend_from_slice(&buf[..n.min(MAX_RESPONSE - raw.len())]);
                return Ok::<_, std::io::Error>(());
            }
            raw.extend_from_slice(&buf[..n]);
        }
    };
    step(
        format!("reading the answer to GET {full}"),
        connector.timeout,
        read,
    )
    .await?;
    parse_response(&raw).map_err(|reason| StepError {
        step: format!("reading the answer to GET {full}"),
        reason,
        timed_out: false,
    })
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| format!("the answer is not HTTP: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body; a truncated one yields what arrived.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|&s| s > 0) else {
            break;
        };
        let start = line_end + 2;
        let Some(chunk) = rest.get(start..start + size) else {
            out.extend_from_slice(&rest[start.min(rest.len())..]);
            break;
        };
        out.extend_from_slice(chunk);
        rest = rest.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// `/health` and `/ready` through the public URL, and the clock skew from the `Date` header.
pub async fn http(connector: &Connector) -> Vec<Check> {
    let mut checks = Vec::new();
    let health = get(connector, "/health").await;
    match &health {
        Ok(r) if r.status == 200 && r.body_text() == "ok" => {
            checks.push(Check::ok(
                "HTTP",
                format!("{} answers", connector.target.url("/health", false)),
            ));
        }
        Ok(r) => checks.push(Check::fail(
            "HTTP",
            format!(
                "GET {} answered {} {:?}: that is not Convene",
                connector.target.url("/health", false),
                r.status,
                truncate(&r.body_text(), 120)
            ),
            format!("make the reverse proxy forward every path to Convene; see {PROXY_DOCS}"),
        )),
        Err(e) => {
            checks.push(Check::fail(
                "HTTP",
                e.to_string(),
                unreachable_fix(&connector.target),
            ));
            return checks;
        }
    }
    checks.push(match get(connector, "/ready").await {
        Ok(r) if r.status == 200 => Check::ok("readiness", "/ready answers 200"),
        Ok(r) => Check::fail(
            "readiness",
            format!("/ready answered {}: Convene is starting or draining", r.status),
            "wait for start-up to finish; if it persists, read the service log (journalctl -u convene)",
        ),
        Err(e) => Check::fail("readiness", e.to_string(), unreachable_fix(&connector.target)),
    });
    if let Ok(r) = &health {
        checks.push(clock_skew(r.header("date"), std::time::SystemTime::now()));
    }
    checks
}

/// Compares the server's `Date` header with this machine's clock. Tokens (`nbf`, `exp`) and TURN
/// credentials carry timestamps, so a skewed clock makes them fail in ways that are hard to see.
pub fn clock_skew(date: Option<&str>, now: std::time::SystemTime) -> Check {
    const NAME: &str = "clock skew";
    let Some(date) = date else {
        return Check::skip(NAME, "the server sent no Date header");
    };
    let Ok(server) = httpdate::parse_http_date(date) else {
        return Check::skip(NAME, format!("unreadable Date header {date:?}"));
    };
    let skew = match server.duration_since(now) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    let direction = if server > now { "ahead of" } else { "behind" };
    // The Date header has one-second resolution and the request takes time: 2 s is noise.
    let secs = skew.as_secs();
    let detail = format!("the server's clock is {secs} s {direction} this machine's");
    let fix = "run NTP on both machines (systemd-timesyncd or chrony): tokens and TURN credentials carry timestamps";
    if secs <= 2 {
        Check::ok(
            NAME,
            format!("{secs} s between the server's clock and this machine's"),
        )
    } else if secs <= 30 {
        Check::warn(NAME, detail, fix)
    } else {
        Check::fail(NAME, detail, fix)
    }
}

/// What went wrong with a WebSocket handshake, and what fixes it.
pub fn diagnose_upgrade(status: u16, body: &str, path: &str) -> (String, String) {
    let upgrade_fix = format!(
        "the reverse proxy must pass WebSocket upgrades on {path}. In nginx, in that location:\n\
         proxy_http_version 1.1;\n\
         proxy_set_header Upgrade $http_upgrade;\n\
         proxy_set_header Connection $connection_upgrade;   # map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         proxy_read_timeout 1h;\n\
         See {PROXY_DOCS}."
    );
    // These are the exact rejections Convene's WebSocket endpoints give to a request that lost its
    // Upgrade/Connection headers on the way: the request reached Convene, so a proxy removed them.
    let dropped = body.contains("Connection header did not include 'upgrade'")
        || body.contains("`Upgrade` header did not include 'websocket'")
        || body.contains("Unsupported transport")
        || body.contains("\"code\":3");
    if dropped {
        return (
            format!(
                "the reverse proxy dropped the Upgrade headers: the WebSocket request for {path} reached Convene as a plain GET ({status})"
            ),
            upgrade_fix,
        );
    }
    if body.contains("no upgrade state") {
        return (
            format!(
                "the reverse proxy forwards the Upgrade headers but talks HTTP/1.0 to Convene, which cannot upgrade ({status})"
            ),
            upgrade_fix,
        );
    }
    let detail = format!(
        "the WebSocket handshake for {path} was answered {status} {:?} instead of 101 Switching Protocols",
        truncate(body, 120)
    );
    let fix = match status {
        502..=504 => "the reverse proxy cannot reach Convene: check proxy_pass and that Convene runs (systemctl status convene)".to_owned(),
        404 => format!("the reverse proxy does not forward {path} to Convene; see {PROXY_DOCS}"),
        _ => upgrade_fix,
    };
    (detail, fix)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Opens a WebSocket through the public URL and waits for the first sign of life from the other end.
/// Returns the first text message, or `None` when the server answered a ping with a pong.
async fn websocket(
    connector: &Connector,
    path: &str,
    expect_text: bool,
) -> Result<Option<String>, WsFailure> {
    let url = connector.target.url(path, true);
    let request = url.as_str().into_client_request().map_err(|e| {
        WsFailure::Step(StepError {
            step: format!("building a request for {url}"),
            reason: e.to_string(),
            timed_out: false,
        })
    })?;
    let stream = connector.connect().await.map_err(WsFailure::Step)?;
    let handshake = step(
        format!("waiting for the WebSocket handshake answer from {url}"),
        connector.timeout,
        async {
            match tokio_tungstenite::client_async(request, stream).await {
                Ok(ok) => Ok(Ok(ok)),
                Err(tungstenite::Error::Http(response)) => {
                    let status = response.status().as_u16();
                    let body = response
                        .body()
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                        .unwrap_or_default();
                    Ok(Err(WsFailure::Status { status, body }))
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
    .map_err(WsFailure::Step)?;
    let (mut ws, _) = handshake?;
    if !expect_text {
        let _ = ws
            .send(Message::Ping(b"convene-doctor".to_vec().into()))
            .await;
    }
    let first = step(
        format!("waiting for the first WebSocket frame from {url} after the upgrade"),
        connector.timeout,
        async {
            while let Some(msg) = ws.next().await {
                match msg? {
                    Message::Text(text) => return Ok(Some(text.to_string())),
                    Message::Pong(_) if !expect_text => return Ok(None),
                    Message::Close(frame) => {
                        return Err(tungstenite::Error::Io(std::io::Error::other(format!(
                            "the server closed the WebSocket right away ({})",
                            frame
                                .map(|f| format!("{} {}", f.code, f.reason))
                                .unwrap_or_default()
                        ))));
                    }
                    _ => {}
                }
            }
            Err(tungstenite::Error::ConnectionClosed)
        },
    )
    .await
    .map_err(WsFailure::Step)?;
    let _ = ws.close(None).await;
    Ok(first)
}

enum WsFailure {
    Step(StepError),
    Status { status: u16, body: String },
}

/// Room used by the signaling probe. The probe never sends `join`, so no participant appears in it.
pub const PROBE_ROOM: &str = "convene-doctor";

/// The signaling WebSocket: upgraded through the proxy, and frames flow afterwards.
pub async fn signaling(connector: &Connector) -> Check {
    const NAME: &str = "signaling WebSocket";
    let path = format!("/api/v1/rooms/{PROBE_ROOM}/ws");
    match websocket(connector, &path, false).await {
        Ok(first) => {
            let how = match first {
                Some(text) if text.contains("token_required") => {
                    "upgraded; the server asks for a token, as configured".to_owned()
                }
                Some(_) => "upgraded; the server speaks the signaling protocol".to_owned(),
                None => "upgraded; ping answered through the proxy".to_owned(),
            };
            Check::ok(
                NAME,
                format!("{}: {how}", connector.target.url(&path, true)),
            )
        }
        Err(WsFailure::Status { status, body }) => {
            let (detail, fix) = diagnose_upgrade(status, &body, "/api/v1/rooms/{room}/ws");
            Check::fail(NAME, detail, fix)
        }
        Err(WsFailure::Step(e)) => {
            Check::fail(NAME, e.to_string(), ws_step_fix(&e, &connector.target))
        }
    }
}

fn ws_step_fix(e: &StepError, target: &Target) -> String {
    if e.step.contains("after the upgrade") {
        format!(
            "the upgrade succeeded but no frame came back: the reverse proxy buffers or times out WebSockets (nginx: proxy_buffering off; proxy_read_timeout 1h); see {PROXY_DOCS}"
        )
    } else {
        unreachable_fix(target)
    }
}

/// The whiteboard relay's socket.io handshake over WebSocket, as Excalidraw and Jitsi clients open it.
pub async fn socketio(connector: &Connector) -> Check {
    const NAME: &str = "whiteboard /socket.io/";
    let path = "/socket.io/?EIO=4&transport=websocket";
    match websocket(connector, path, true).await {
        Ok(Some(open)) if open.starts_with("0{") => Check::ok(
            NAME,
            format!(
                "{}: WebSocket upgraded, Engine.IO open packet received",
                connector.target.url("/socket.io/", true)
            ),
        ),
        Ok(other) => Check::fail(
            NAME,
            format!(
                "upgraded, but the first frame is not an Engine.IO open packet: {:?}",
                other.map(|t| truncate(&t, 80))
            ),
            format!(
                "the reverse proxy sends /socket.io/ somewhere else than Convene; see {PROXY_DOCS}"
            ),
        ),
        Err(failure) => {
            // A polling handshake needs no upgrade: when it works, the path reaches Convene and only
            // the upgrade is lost on the way.
            let polling = get(connector, "/socket.io/?EIO=4&transport=polling").await;
            let polling_ok =
                matches!(&polling, Ok(r) if r.status == 200 && r.body.starts_with(b"0{"));
            let (_, upgrade_fix) = diagnose_upgrade(400, "", "/socket.io/");
            let (detail, fix) = match failure {
                WsFailure::Status { status, .. } if polling_ok && status == 400 => (
                    format!(
                        "the reverse proxy dropped the Upgrade headers: the WebSocket request for /socket.io/ reached Convene as a plain GET ({status}); long-polling works"
                    ),
                    upgrade_fix,
                ),
                WsFailure::Status { status, body } => {
                    diagnose_upgrade(status, &body, "/socket.io/")
                }
                // The 101 came back, but the connection broke at once: a proxy that relays the
                // answer without switching the connection to a tunnel, because it never sent the
                // Upgrade headers on.
                WsFailure::Step(e)
                    if polling_ok && !e.timed_out && e.step.contains("after the upgrade") =>
                {
                    (
                        format!(
                            "the reverse proxy dropped the Upgrade headers: the WebSocket connection for /socket.io/ broke right after the handshake ({}); long-polling works",
                            e.reason
                        ),
                        upgrade_fix,
                    )
                }
                WsFailure::Step(e) => {
                    let fix = ws_step_fix(&e, &connector.target);
                    (e.to_string(), fix)
                }
            };
            Check::fail(NAME, detail, fix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: x\r\n\r\nok\n").unwrap();
        assert_eq!(
            (r.status, r.body_text().as_str(), r.header("date")),
            (200, "ok", Some("x"))
        );
        let r = parse_response(b"HTTP/1.1 503 Nope\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n6\r\nready\n\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body_text().as_str()), (503, "not ready"));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn a_lost_upgrade_header_is_named() {
        let (detail, fix) =
            diagnose_upgrade(400, "Connection header did not include 'upgrade'", "/x");
        assert!(
            detail.starts_with("the reverse proxy dropped the Upgrade headers"),
            "{detail}"
        );
        assert!(
            fix.contains("proxy_set_header Upgrade $http_upgrade;"),
            "{fix}"
        );
        let (detail, _) = diagnose_upgrade(
            426,
            "WebSocket request couldn't be upgraded since no upgrade state was present",
            "/x",
        );
        assert!(detail.contains("HTTP/1.0"), "{detail}");
        let (detail, fix) = diagnose_upgrade(502, "Bad Gateway", "/x");
        assert!(detail.contains("502"), "{detail}");
        assert!(fix.contains("cannot reach Convene"), "{fix}");
    }

    #[test]
    fn clock_skew_grades() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |offset: i64| {
            httpdate::fmt_http_date(if offset >= 0 {
                now + Duration::from_secs(offset as u64)
            } else {
                now - Duration::from_secs((-offset) as u64)
            })
        };
        assert_eq!(
            clock_skew(Some(&at(1)), now).status,
            super::super::report::Status::Ok
        );
        let warn = clock_skew(Some(&at(-10)), now);
        assert_eq!(warn.status, super::super::report::Status::Warn);
        assert!(warn.detail.contains("10 s behind"), "{}", warn.detail);
        assert_eq!(
            clock_skew(Some(&at(120)), now).status,
            super::super::report::Status::Fail
        );
        assert_eq!(
            clock_skew(None, now).status,
            super::super::report::Status::Skip
        );
    }
}
