//! Where the doctor connects: the public URL split into parts, and a connector that opens TCP (plus TLS
//! for https) to it with a timeout on every step, naming the step when it times out.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

/// The deployment's public URL, as users type it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path prefix under which Convene is served (usually empty), without a trailing slash.
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: axum::http::Uri = url
            .parse()
            .map_err(|e| format!("not a URL: {url:?} ({e})"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => {
                return Err(format!(
                    "unsupported scheme {other:?}: use https:// or http://"
                ));
            }
            None => return Err(format!("{url:?} has no scheme: write https://{url}")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Target {
            https,
            host,
            port,
            prefix,
        })
    }

    /// Whether the URL points at this machine, where browsers allow camera and microphone over http.
    pub fn is_local(&self) -> bool {
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// A URL on this deployment, for messages and WebSocket requests.
    pub fn url(&self, path: &str, websocket: bool) -> String {
        let scheme = match (self.https, websocket) {
            (true, true) => "wss",
            (false, true) => "ws",
            (true, false) => "https",
            (false, false) => "http",
        };
        format!("{scheme}://{}{}{path}", self.authority(), self.prefix)
    }
}

/// A failed step: what the doctor was doing, and why it failed.
#[derive(Debug, Clone)]
pub struct StepError {
    pub step: String,
    pub reason: String,
    pub timed_out: bool,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.timed_out {
            write!(f, "timed out {} while {}", self.reason, self.step)
        } else {
            write!(f, "{} failed: {}", self.step, self.reason)
        }
    }
}

/// Runs `fut` as the step `step`, giving up after `timeout` with an error that names the step.
pub async fn step<T, E: std::fmt::Display>(
    step: impl Into<String>,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, StepError> {
    let step = step.into();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StepError {
            step,
            reason: e.to_string(),
            timed_out: false,
        }),
        Err(_) => Err(StepError {
            step,
            reason: format!("after {}", humantime::format_duration(timeout)),
            timed_out: true,
        }),
    }
}

/// A byte stream to the deployment: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens connections to the target's resolved addresses, the way a browser would.
#[derive(Clone)]
pub struct Connector {
    pub target: Target,
    pub addrs: Vec<SocketAddr>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

impl Connector {
    /// TCP to the first address that answers, then the TLS handshake for https.
    pub async fn connect(&self) -> Result<Box<dyn Io>, StepError> {
        let tcp = self.connect_tcp().await?;
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let stream = self.handshake(tls.clone(), tcp).await?;
        Ok(Box::new(stream))
    }

    pub async fn connect_tcp(&self) -> Result<TcpStream, StepError> {
        let mut last = None;
        for addr in &self.addrs {
            match step(
                format!("connecting to {addr} (TCP)"),
                self.timeout,
                TcpStream::connect(addr),
            )
            .await
            {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StepError {
            step: format!("connecting to {}", self.target.host),
            reason: "the name resolved to no address".to_owned(),
            timed_out: false,
        }))
    }

    pub async fn handshake(
        &self,
        tls: Arc<rustls::ClientConfig>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, StepError> {
        let name =
            rustls::pki_types::ServerName::try_from(self.target.host.clone()).map_err(|e| {
                StepError {
                    step: "TLS handshake".to_owned(),
                    reason: format!("{:?} is not a valid server name: {e}", self.target.host),
                    timed_out: false,
                }
            })?;
        step(
            format!("TLS handshake with {}", self.target.host),
            self.timeout,
            tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
        )
        .await
    }
}

/// The TLS client: the system's trusted roots plus `extra_ca` (a PEM file, for private CAs).
pub fn tls_client(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate only removes that root; the others still count.
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot parse CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("CA file {} holds no certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_as_users_write_them() {
        let t = Target::parse("https://meet.example.org").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.prefix.as_str()),
            (true, "meet.example.org", 443, "")
        );
        assert_eq!(
            t.url("/socket.io/", true),
            "wss://meet.example.org/socket.io/"
        );
        let t = Target::parse("http://[::1]:8080/convene/").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.prefix.as_str()),
            (false, "::1", 8080, "/convene")
        );
        assert_eq!(t.authority(), "[::1]:8080");
        assert_eq!(t.url("/health", false), "http://[::1]:8080/convene/health");
        assert!(t.host_is_ip());
    }

    #[test]
    fn rejects_what_is_not_a_web_url() {
        assert!(
            Target::parse("meet.example.org")
                .unwrap_err()
                .contains("https://meet.example.org")
        );
        assert!(
            Target::parse("ftp://x")
                .unwrap_err()
                .contains("unsupported scheme")
        );
    }

    #[tokio::test]
    async fn a_step_that_times_out_names_itself() {
        let err = step(
            "waiting for the moon",
            Duration::from_millis(10),
            std::future::pending::<Result<(), String>>(),
        )
        .await
        .unwrap_err();
        assert!(err.timed_out);
        assert_eq!(
            err.to_string(),
            "timed out after 10ms while waiting for the moon"
        );
    }
}
