//! TURN, so media gets through firewalls and NAT: an embedded TURN server (UDP and TCP, webrtc-rs
//! `turn`) or an external one such as coturn, both checking the same time-limited shared-secret
//! credentials that `TurnService::ice_servers` mints for each participant.

pub mod config;
pub mod credentials;
mod metrics;
mod probe;
mod relay;
mod tcp;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turn::{
    auth::{AuthHandler, generate_auth_key},
    relay::relay_range::RelayAddressGeneratorRanges,
    server::{
        Server,
        config::{ConnConfig, ServerConfig},
    },
};

pub use config::{Config, Mode};
pub use credentials::IceServer;
pub use metrics::TurnMetrics;
pub use tcp::Accepted;

use crate::shutdown::Lifecycle;

/// What the signaling side holds: mints credentials and knows which URLs to offer. Cheap to clone.
#[derive(Clone)]
pub struct TurnService {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The embedded server's bound port (it may have been 0 in the config).
    port: u16,
    /// External mode: whether the last probe got an answer. Embedded: always true.
    healthy: Arc<AtomicBool>,
    /// Embedded with TURN over TLS on the HTTPS port: that port, and where the HTTPS listener hands
    /// the connections that speak TURN.
    tls: Option<(u16, mpsc::Sender<Accepted>)>,
}

impl TurnService {
    /// ICE servers for participant `id`, valid for `turn.credential_lifetime`. `host` is the host the
    /// browser reached us by (the `Host` header, or a trusted `X-Forwarded-Host`), used for embedded
    /// URLs when `turn.urls` is empty. Empty when TURN is off or the external server is not answering.
    pub fn ice_servers(&self, id: &str, host: Option<&str>) -> Vec<IceServer> {
        let config = &self.inner.config;
        if !self.inner.healthy.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let urls = if config.urls.is_empty() {
            let host = host.map(strip_port).unwrap_or_default();
            let host = if host.is_empty() {
                url_host(relay_ip(config))
            } else {
                host.to_owned()
            };
            let port = self.inner.port;
            let mut urls = vec![
                format!("turn:{host}:{port}?transport=udp"),
                format!("turn:{host}:{port}?transport=tcp"),
            ];
            // Last, so browsers try it after the cheaper ones: for networks that let only 443 out.
            if let Some((tls_port, _)) = &self.inner.tls {
                urls.push(format!("turns:{host}:{tls_port}?transport=tcp"));
            }
            urls
        } else {
            config.urls.clone()
        };
        let (username, credential) = credentials::mint(
            &config.secret,
            id,
            SystemTime::now(),
            config.credential_lifetime,
        );
        vec![IceServer {
            urls,
            username,
            credential,
        }]
    }

    /// The embedded server's bound port (for logs and tests).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Where the HTTPS listener hands connections that speak TURN (embedded, `tls_on_https`).
    pub fn tls_streams(&self) -> Option<mpsc::Sender<Accepted>> {
        self.inner.tls.as_ref().map(|(_, tx)| tx.clone())
    }
}

/// Drops the port from a `Host` value, keeping IPv6 brackets.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p))
            if p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => host,
    }
}

fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// Accepts `<expiry>:<id>` usernames that have not expired and derives the long-term key from the
/// shared secret; a wrong password then fails the message-integrity check inside the TURN server.
struct SharedSecretAuth {
    secret: String,
    refused: prometheus_client::metrics::counter::Counter,
}

impl AuthHandler for SharedSecretAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        if let Err(refused) = credentials::check_expiry(username, SystemTime::now()) {
            tracing::debug!(%src_addr, "turn: refused: {refused}");
            self.refused.inc();
            return Err(turn::Error::Other(refused.to_string()));
        }
        let password = credentials::password(&self.secret, username);
        Ok(generate_auth_key(username, realm, &password))
    }
}

/// The address relayed candidates announce.
fn relay_ip(config: &Config) -> IpAddr {
    if let Some(ip) = config.relay_ip {
        return ip;
    }
    if !config.listen.ip().is_unspecified() {
        return config.listen.ip();
    }
    primary_ip().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The address the default route leaves from. Connecting a UDP socket sends nothing; it only asks
/// the kernel for a route (to a documentation address that is never contacted).
fn primary_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Starts TURN as configured. `media_port` is the UDP port the relay may reach when
/// `relay_to_any_peer` is false; `https_port` is the HTTPS port when Convene terminates TLS itself
/// (TURN over TLS shares it). Returns None when TURN is off.
pub async fn start(
    config: &Config,
    media_port: u16,
    https_port: Option<u16>,
    registry: &mut Registry,
    lifecycle: &Lifecycle,
) -> Result<Option<TurnService>, crate::Error> {
    config.validate().map_err(crate::Error::Startup)?;
    if config.mode == Mode::Off {
        return Ok(None);
    }
    let metrics = TurnMetrics::register(registry);
    let healthy = Arc::new(AtomicBool::new(true));
    let mut tls = None;
    let port = match config.mode {
        Mode::Off => 0,
        Mode::External => {
            lifecycle.tasks.spawn(probe::watch(
                config.urls.clone(),
                config.probe_interval,
                healthy.clone(),
                metrics.external_up.clone(),
                lifecycle.shutdown.clone(),
            ));
            tracing::info!(urls = ?config.urls, "turn: offering the external TURN server to clients");
            0
        }
        Mode::Embedded => {
            let (port, streams) = embedded(config, media_port, &metrics, lifecycle).await?;
            if let (Some(https_port), true) = (https_port, config.tls_on_https) {
                tracing::info!("turn: TURN over TLS shares the HTTPS port {https_port}");
                tls = Some((https_port, streams));
            }
            port
        }
    };
    Ok(Some(TurnService {
        inner: Arc::new(Inner {
            config: config.clone(),
            port,
            healthy,
            tls,
        }),
    }))
}

/// Starts the embedded server: UDP and TCP on `turn.listen`, plus a stream server fed through the
/// returned sender (TURN over TLS from the HTTPS listener).
async fn embedded(
    config: &Config,
    media_port: u16,
    metrics: &TurnMetrics,
    lifecycle: &Lifecycle,
) -> Result<(u16, mpsc::Sender<Accepted>), crate::Error> {
    let bind_err = |addr, source| crate::Error::Bind {
        what: "TURN",
        addr,
        source,
    };
    let udp = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(|e| bind_err(config.listen, e))?;
    let bound = udp.local_addr().map_err(|e| bind_err(config.listen, e))?;
    // TCP on the same port as UDP, so one number goes into URLs and firewall rules.
    let tcp = tokio::net::TcpListener::bind(bound)
        .await
        .map_err(|e| bind_err(bound, e))?;
    let announce = relay_ip(config);
    let peer_port = (!config.relay_to_any_peer).then_some(media_port);
    let auth: Arc<dyn AuthHandler + Send + Sync> = Arc::new(SharedSecretAuth {
        secret: config.secret.clone(),
        refused: metrics.refused.clone(),
    });
    let relays = {
        let config = config.clone();
        let metrics = metrics.clone();
        move || relay::Relays {
            ranges: RelayAddressGeneratorRanges {
                relay_address: announce,
                min_port: config.relay_min_port,
                max_port: config.relay_max_port,
                max_retries: 0,
                address: config.listen.ip().to_string(),
                net: Arc::new(webrtc_util::vnet::net::Net::new(None)),
            },
            peer_port,
            metrics: metrics.clone(),
        }
    };
    let server_config = |conn: Arc<dyn webrtc_util::Conn + Send + Sync>| ServerConfig {
        conn_configs: vec![ConnConfig {
            conn,
            relay_addr_generator: Box::new(relays()),
        }],
        realm: config.realm.clone(),
        auth_handler: auth.clone(),
        channel_bind_timeout: std::time::Duration::ZERO,
        alloc_close_notify: None,
    };
    let udp_server = Server::new(server_config(Arc::new(udp)))
        .await
        .map_err(|e| crate::Error::Startup(format!("turn: {e}")))?;
    let shutdown = lifecycle.shutdown.clone();
    lifecycle.tasks.spawn(async move {
        shutdown.cancelled().await;
        let _ = udp_server.close().await;
    });
    let tcp_configs = {
        let realm = config.realm.clone();
        let auth = auth.clone();
        move |conn: Arc<dyn webrtc_util::Conn + Send + Sync>| ServerConfig {
            conn_configs: vec![ConnConfig {
                conn,
                relay_addr_generator: Box::new(relays()),
            }],
            realm: realm.clone(),
            auth_handler: auth.clone(),
            channel_bind_timeout: std::time::Duration::ZERO,
            alloc_close_notify: None,
        }
    };
    let (tls_tx, tls_rx) = mpsc::channel(64);
    let tcp_configs = Arc::new(tcp_configs);
    lifecycle.tasks.spawn(accept_tcp(
        tcp,
        tcp_configs.clone(),
        metrics.clone(),
        lifecycle.shutdown.clone(),
    ));
    lifecycle.tasks.spawn(serve_handed_over(
        tls_rx,
        tcp_configs,
        metrics.clone(),
        lifecycle.shutdown.clone(),
    ));
    tracing::info!(
        relay_ip = %announce,
        relay_ports = %format!("{}-{}", config.relay_min_port, config.relay_max_port),
        peers = if peer_port.is_some() { "media port only" } else { "any" },
        "turn listening on {bound} (udp, tcp)"
    );
    Ok((bound.port(), tls_tx))
}

type MakeConfig = dyn Fn(Arc<dyn webrtc_util::Conn + Send + Sync>) -> ServerConfig + Send + Sync;

/// TURN over TCP on `turn.listen`.
async fn accept_tcp(
    listener: tokio::net::TcpListener,
    make_config: Arc<MakeConfig>,
    metrics: TurnMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("turn tcp accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let accepted = Accepted {
            stream: Box::new(stream),
            local,
            peer,
        };
        serve_stream(accepted, "tcp", &*make_config, &metrics, &shutdown).await;
    }
}

/// TURN over TLS: connections the HTTPS listener recognised as TURN.
async fn serve_handed_over(
    mut streams: mpsc::Receiver<Accepted>,
    make_config: Arc<MakeConfig>,
    metrics: TurnMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = streams.recv() => match next {
                Some(accepted) => accepted,
                None => return,
            },
        };
        serve_stream(accepted, "tls", &*make_config, &metrics, &shutdown).await;
    }
}

/// One TURN server per stream connection; it lives until the client disconnects or we shut down.
async fn serve_stream(
    accepted: Accepted,
    transport: &'static str,
    make_config: &MakeConfig,
    metrics: &TurnMetrics,
    shutdown: &CancellationToken,
) {
    let conn = tcp::StreamConn::new(accepted);
    let closed = conn.closed.clone();
    let server = match Server::new(make_config(conn)).await {
        Ok(server) => server,
        Err(e) => {
            tracing::warn!("turn: cannot serve a {transport} connection: {e}");
            return;
        }
    };
    let gauge = metrics
        .connections
        .get_or_create(&metrics::Transport { transport })
        .clone();
    gauge.inc();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = closed.cancelled() => {}
            _ = shutdown.cancelled() => {}
        }
        // Closing the server releases the connection's allocations and their relay ports.
        let _ = server.close().await;
        gauge.dec();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_port_is_dropped() {
        assert_eq!(strip_port("meet.example.org:8443"), "meet.example.org");
        assert_eq!(strip_port("meet.example.org"), "meet.example.org");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn expired_or_malformed_usernames_get_no_key() {
        let auth = SharedSecretAuth {
            secret: "s".to_owned(),
            refused: Default::default(),
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(auth.auth_handle("1:p", "convene", addr).is_err());
        assert!(auth.auth_handle("alice", "convene", addr).is_err());
        let (user, pass) = credentials::mint(
            "s",
            "p",
            SystemTime::now(),
            std::time::Duration::from_secs(60),
        );
        assert_eq!(
            auth.auth_handle(&user, "convene", addr).unwrap(),
            generate_auth_key(&user, "convene", &pass)
        );
    }

    #[tokio::test]
    async fn ice_servers_use_the_browsers_host_and_fresh_credentials() {
        let config = Config {
            mode: Mode::Embedded,
            secret: "s".to_owned(),
            ..Config::default()
        };
        let service = TurnService {
            inner: Arc::new(Inner {
                config,
                port: 3478,
                healthy: Arc::new(AtomicBool::new(true)),
                tls: Some((443, mpsc::channel(1).0)),
            }),
        };
        let servers = service.ice_servers("p1", Some("meet.example.org:443"));
        assert_eq!(
            servers[0].urls,
            [
                "turn:meet.example.org:3478?transport=udp",
                "turn:meet.example.org:3478?transport=tcp",
                "turns:meet.example.org:443?transport=tcp"
            ]
        );
        assert!(servers[0].username.ends_with(":p1"));
        assert_eq!(
            servers[0].credential,
            credentials::password("s", &servers[0].username)
        );
        service.inner.healthy.store(false, Ordering::Relaxed);
        assert!(service.ice_servers("p1", None).is_empty());
    }
}
