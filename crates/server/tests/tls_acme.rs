//! ACME against Debian's `pebble` (the ACME test CA) with `pebble-challtestsrv` as its DNS: a
//! certificate is issued over tls-alpn-01 and http-01, served, renewed before expiry, and reused
//! after a restart; a CA that cannot be reached is logged and retried while the server keeps running.
//! Needs the `pebble` package (installed by scripts/test).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};

const NAME: &str = "meet.test";

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: apt-get install pebble (scripts/test does)"
    );
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convene-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_tcp(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running pebble with its DNS: its directory URL, the CA file that verifies pebble's own HTTPS,
/// and the management address (for the issuing root).
struct Pebble {
    _dns: Proc,
    _pebble: Proc,
    directory: String,
    api_ca: PathBuf,
    management: SocketAddr,
}

fn start_pebble(dir: &Path, http_port: u16, tls_port: u16) -> Pebble {
    require("pebble");
    require("pebble-challtestsrv");
    // pebble's own HTTPS certificate, from a CA made here (the package ships none).
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let api_ca = dir.join("pebble-api-ca.pem");
    std::fs::write(&api_ca, ca_cert.pem()).unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();

    let dns_port = free_udp_port();
    let dns = Command::new("pebble-challtestsrv")
        .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{}", free_tcp_port())])
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let management: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let config = dir.join("pebble.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"pebble": {{"listenAddress": "{listen}", "managementListenAddress": "{management}",
            "certificate": "{}", "privateKey": "{}", "httpPort": {http_port}, "tlsPort": {tls_port},
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
            "certificateValidityPeriod": 60}}}}"#,
            dir.join("pebble-cert.pem").display(),
            dir.join("pebble-key.pem").display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
    let pebble = Command::new("pebble")
        .args(["-config"])
        .arg(&config)
        .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_tcp(listen);
    Pebble {
        _dns: Proc(dns),
        _pebble: Proc(pebble),
        directory: format!("https://{listen}/dir"),
        api_ca,
        management,
    }
}

fn client(roots: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// GET over verified TLS: status, body, served leaf.
fn https_get(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<(u16, String, CertificateDer<'static>), String> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, server_name).unwrap();
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no certificate")?
        .into_owned();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body, leaf))
}

/// The root pebble signs with (made fresh at each pebble start), from its management interface.
fn pebble_roots(pebble: &Pebble) -> Vec<CertificateDer<'static>> {
    let api = CertificateDer::from_pem_file(&pebble.api_ca).unwrap();
    let mut roots = Vec::new();
    for path in ["/roots/0", "/intermediates/0"] {
        let (status, body, _) = https_get(
            pebble.management,
            "127.0.0.1",
            client(std::slice::from_ref(&api)),
            path,
        )
        .unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        // The body may be chunked; the PEM parser skips anything around the block.
        roots.extend(CertificateDer::pem_slice_iter(body.as_bytes()).map(Result::unwrap));
    }
    roots
}

struct Convene {
    _proc: Proc,
    log: Arc<Mutex<Vec<String>>>,
}

impl Convene {
    fn start(config: &Path, https: SocketAddr) -> Convene {
        let mut child = Command::new(env!("CARGO_BIN_EXE_convene"))
            .args(["serve", "--listen", &https.to_string(), "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("STATE_DIRECTORY")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let convene = Convene {
            _proc: Proc(child),
            log,
        };
        convene.wait_log("https listening on", Duration::from_secs(30));
        convene
    }

    fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while self.count(needle) == 0 {
            assert!(
                start.elapsed() < timeout,
                "log never said {needle:?}: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn write_config(
    dir: &Path,
    directory: &str,
    ca_file: &Path,
    challenge: &str,
    http: Option<SocketAddr>,
) -> PathBuf {
    let config = dir.join("convene.toml");
    let http_listen = http
        .map(|a| format!("http_listen = \"{a}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "[media]\nport = 0\n[tls]\nmode = \"acme\"\nnames = [\"{NAME}\"]\nstate_dir = \"{}\"\n{http_listen}\
             [tls.acme]\ndirectory = \"{directory}\"\nca_file = \"{}\"\nchallenge = \"{challenge}\"\n\
             contact = [\"mailto:ops@meet.test\"]\nrenew_before = \"45s\"\nretry_interval = \"1s\"\n",
            dir.join("state").display(),
            ca_file.display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn tls_alpn_01_certificate_is_issued_served_renewed_and_kept_across_restarts() {
    let dir = temp_dir("acme-alpn");
    let https: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let pebble = start_pebble(&dir, free_tcp_port(), https.port());
    let config = write_config(&dir, &pebble.directory, &pebble.api_ca, "tls_alpn_01", None);
    let convene = Convene::start(&config, https);
    convene.wait_log(
        "ACME certificate for meet.test issued",
        Duration::from_secs(60),
    );

    let roots = pebble_roots(&pebble);
    let (status, body, first) = https_get(https, NAME, client(&roots), "/health").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // pebble issues for 60 s and we renew 45 s before expiry: a new certificate within ~15 s.
    let start = Instant::now();
    let renewed = loop {
        let (_, _, leaf) = https_get(https, NAME, client(&roots), "/health").unwrap();
        if leaf != first {
            break leaf;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never renewed: {:#?}",
            convene.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(convene.count("ACME certificate for meet.test issued") >= 2);
    assert_eq!(
        convene.count("registered an ACME account"),
        1,
        "the account is reused"
    );
    drop(convene);

    // A restart serves the stored certificate at once, with the stored account.
    let stored = CertificateDer::pem_file_iter(dir.join("state/acme/cert.pem"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let convene = Convene::start(&config, https);
    convene.wait_log(
        "serving the stored ACME certificate",
        Duration::from_secs(5),
    );
    let (status, _, leaf) = https_get(https, NAME, client(&roots), "/health").unwrap();
    assert_eq!(status, 200);
    assert!(
        leaf == stored || leaf != renewed,
        "served neither the stored nor a newer certificate"
    );
    assert_eq!(convene.count("registered an ACME account"), 0);
    drop(convene);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn http_01_certificate_is_issued_through_the_plain_http_listener() {
    let dir = temp_dir("acme-http");
    let https: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let pebble = start_pebble(&dir, http.port(), https.port());
    let config = write_config(
        &dir,
        &pebble.directory,
        &pebble.api_ca,
        "http_01",
        Some(http),
    );
    let convene = Convene::start(&config, https);
    convene.wait_log(
        "ACME certificate for meet.test issued",
        Duration::from_secs(60),
    );
    let roots = pebble_roots(&pebble);
    let (status, body, _) = https_get(https, NAME, client(&roots), "/health").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    drop(convene);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreachable_ca_is_logged_and_retried_while_the_server_keeps_running() {
    let dir = temp_dir("acme-down");
    let https: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let dead = format!("https://127.0.0.1:{}/dir", free_tcp_port());
    let ca = dir.join("none.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(&ca, cert.pem()).unwrap();
    let config = write_config(&dir, &dead, &ca, "tls_alpn_01", None);
    let convene = Convene::start(&config, https);
    convene.wait_log(
        "getting a certificate for meet.test failed",
        Duration::from_secs(20),
    );
    assert!(convene.count("HTTPS has no certificate until this succeeds") >= 1);
    // Retried every retry_interval (1 s), and the process is still serving its listener.
    let start = Instant::now();
    while convene.count("getting a certificate for meet.test failed") < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "not retried");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(TcpStream::connect(https).is_ok());
    drop(convene);
    std::fs::remove_dir_all(&dir).unwrap();
}
