//! The doctor's TURN check: an allocation on each TURN URL browsers are given, with credentials minted
//! from the config's shared secret exactly as Convene mints them for participants.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::UdpSocket;

use super::{report::Check, target::step};
use crate::turn::{
    config::{Config, Mode},
    credentials::{TurnUrl, mint, parse_url},
};

/// The TURN URLs browsers get: `turn.urls`, or for the embedded server without them, the public host
/// on `turn.listen`'s port (what Convene itself announces).
pub fn urls(config: &Config, public_host: &str) -> Vec<String> {
    if !config.urls.is_empty() || config.mode != Mode::Embedded {
        return config.urls.clone();
    }
    let host = if public_host.contains(':') {
        format!("[{public_host}]")
    } else {
        public_host.to_owned()
    };
    vec![format!(
        "turn:{host}:{}?transport=udp",
        config.listen.port()
    )]
}

pub async fn checks(config: &Config, public_host: &str, timeout: Duration) -> Vec<Check> {
    if config.mode == Mode::Off {
        return vec![Check::skip(
            "TURN",
            "not configured: users whose networks block UDP cannot join ([turn] in docs/operations.md, \"TURN\")",
        )];
    }
    let mut checks = Vec::new();
    for url in urls(config, public_host) {
        let name = format!("TURN {url}");
        let parsed = match parse_url(&url) {
            Ok(parsed) => parsed,
            Err(e) => {
                checks.push(Check::fail(name, e, "fix turn.urls"));
                continue;
            }
        };
        if parsed.tcp || parsed.tls {
            checks.push(Check::skip(
                name,
                "allocations are checked over UDP only; this URL is TCP",
            ));
            continue;
        }
        checks.push(match allocate(config, &parsed, timeout).await {
            Ok(relayed) => Check::ok(
                name,
                format!("allocation with minted credentials succeeded; relayed address {relayed}"),
            ),
            Err(e) => {
                // Our requests are well formed, so a 400 after the authenticated retry, like a 401,
                // means the server could not verify the credentials' integrity.
                let refused = ["error 400", "error 401", "nauthorized", "ntegrity"];
                let fix = if refused.iter().any(|r| e.contains(r)) {
                    "the TURN server refuses Convene's credentials: turn.secret must equal its static-auth-secret (coturn: use-auth-secret), and both clocks must be right"
                } else {
                    "make sure the TURN server runs and its UDP port (3478 by default) is open in every firewall; see docs/operations.md, \"TURN\""
                };
                Check::fail(name, e, fix)
            }
        });
    }
    checks
}

async fn allocate(config: &Config, url: &TurnUrl, timeout: Duration) -> Result<SocketAddr, String> {
    let server = step(
        format!("resolving TURN host {}", url.host),
        timeout,
        tokio::net::lookup_host((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|e| e.to_string())?
    .next()
    .ok_or_else(|| format!("{} has no address", url.host))?;
    let (username, password) = mint(
        &config.secret,
        "convene-doctor",
        std::time::SystemTime::now(),
        config.credential_lifetime,
    );
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    let client = ::turn::client::Client::new(::turn::client::ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username,
        password,
        realm: String::new(),
        software: "convene-doctor".to_owned(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .map_err(|e| format!("TURN client: {e}"))?;
    let result = async {
        step("starting the TURN client", timeout, client.listen()).await?;
        let relay = step(
            format!("waiting for a TURN allocation from {server}"),
            timeout,
            client.allocate(),
        )
        .await?;
        use webrtc_util::Conn as _;
        relay.local_addr().map_err(|e| super::target::StepError {
            step: "reading the relayed address".to_owned(),
            reason: e.to_string(),
            timed_out: false,
        })
    }
    .await;
    let _ = tokio::time::timeout(timeout, client.close()).await;
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_without_urls_uses_the_public_host() {
        let config = Config {
            mode: Mode::Embedded,
            ..Config::default()
        };
        assert_eq!(
            urls(&config, "meet.example.org"),
            ["turn:meet.example.org:3478?transport=udp"]
        );
        assert_eq!(urls(&config, "::1"), ["turn:[::1]:3478?transport=udp"]);
        let external = Config {
            mode: Mode::External,
            urls: vec!["turn:turn.example.org".to_owned()],
            ..Config::default()
        };
        assert_eq!(
            urls(&external, "meet.example.org"),
            ["turn:turn.example.org"]
        );
    }
}
