//! HTTPS from the outside: self-signed mode (CA made once, trusted by a real TLS client), certificate
//! files reloaded on change, and bad certificate files refused at start-up or ignored on reload.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};

fn convene() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convene"));
    cmd.env_remove("RUST_LOG")
        .env_remove("CONVENE_CONFIG")
        .env_remove("STATE_DIRECTORY");
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convene-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running server: its HTTPS address and everything it logged so far.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(config: &Path) -> Server {
        let mut child = convene()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(addr) = line.split("https listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no https listener; log: {:#?}", log.lock().unwrap()));
        Server {
            child,
            addr: addr.parse().unwrap(),
            log,
        }
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.log_contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "log never said {needle:?}: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    // A resumed session carries no certificate: every connection must see what is served now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// GET over TLS, verifying the server's certificate for `name`. Returns status, body and the leaf.
fn https_get(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<(u16, String, CertificateDer<'static>), String> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, server_name).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // A close without close_notify is tolerated: we only need what arrived.
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

fn pem_cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[test]
fn self_signed_is_created_once_trusted_via_its_ca_and_explained_in_the_log() {
    let dir = temp_dir("tls-selfsigned");
    let state = dir.join("state");
    let config = dir.join("convene.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"self_signed\"\nstate_dir = \"{}\"\nnames = [\"meet.lan\"]\n",
            state.display()
        ),
    )
    .unwrap();

    let server = Server::start(&config);
    let ca_path = state.join("ca.pem");
    server.wait_log("self-signed certificate", Duration::from_secs(5));
    assert!(
        server.log_contains(&ca_path.display().to_string()),
        "the log must say which CA file to trust"
    );
    assert!(server.log_contains("update-ca-certificates"));
    let ca = pem_cert(&ca_path);
    let trusting = client(std::slice::from_ref(&ca));
    for name in ["localhost", "127.0.0.1", "meet.lan"] {
        let (status, body, _) = https_get(server.addr, name, trusting.clone(), "/health")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((status, body.as_str()), (200, "ok\n"), "{name}");
    }
    // A client that does not trust the local CA is refused, as a browser would warn.
    let (empty_roots, other) = {
        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        (client(&[other.cert.der().clone()]), other)
    };
    drop(other);
    let refused = https_get(server.addr, "localhost", empty_roots, "/health");
    assert!(refused.is_err(), "{refused:?}");
    let first_leaf = https_get(server.addr, "localhost", trusting.clone(), "/health")
        .unwrap()
        .2;
    drop(server);

    // The second start keeps the CA (browsers trust it once) and the certificate.
    let server = Server::start(&config);
    let (status, _, leaf) = https_get(server.addr, "meet.lan", trusting, "/health").unwrap();
    assert_eq!(status, 200);
    assert_eq!(leaf, first_leaf);
    assert_eq!(pem_cert(&ca_path), ca);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A CA and a leaf for `localhost` it signed, written as PEM files.
fn write_pair(
    ca: &rcgen::Issuer<'static, rcgen::KeyPair>,
    cert: &Path,
    key: &Path,
) -> CertificateDer<'static> {
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf = params.signed_by(&leaf_key, ca).unwrap();
    // Written to temporary names and renamed, as certbot and friends do, so a poll never sees half a file.
    std::fs::write(cert.with_extension("new"), leaf.pem()).unwrap();
    std::fs::write(key.with_extension("new"), leaf_key.serialize_pem()).unwrap();
    std::fs::rename(key.with_extension("new"), key).unwrap();
    std::fs::rename(cert.with_extension("new"), cert).unwrap();
    leaf.der().clone()
}

fn test_ca() -> (
    CertificateDer<'static>,
    rcgen::Issuer<'static, rcgen::KeyPair>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().clone(), rcgen::Issuer::new(params, key))
}

#[test]
fn certificate_files_are_reloaded_and_bad_ones_keep_the_last_good() {
    let dir = temp_dir("tls-files");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let (ca_der, ca) = test_ca();
    let first = write_pair(&ca, &cert, &key);
    let config = dir.join("convene.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"files\"\ncert_file = \"{}\"\nkey_file = \"{}\"\nreload_interval = \"100ms\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = Server::start(&config);
    let trusting = client(&[ca_der]);
    let served = || https_get(server.addr, "localhost", trusting.clone(), "/health").unwrap();
    assert_eq!(served().0, 200);
    assert_eq!(served().2, first);

    // Renewed files: the next connection gets the new certificate, without a restart.
    std::thread::sleep(Duration::from_millis(1100)); // mtime granularity on some filesystems
    let second = write_pair(&ca, &cert, &key);
    let start = Instant::now();
    while served().2 != second {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "new certificate never served: {:#?}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.wait_log("reloaded", Duration::from_secs(1));

    // A key that does not match: a clear error, and the previous certificate stays.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&key, other.serialize_pem()).unwrap();
    server.wait_log("does not match", Duration::from_secs(5));
    assert_eq!(served().2, second);
    // An unreadable file, likewise.
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::remove_file(&key).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, leaf) = served();
    assert_eq!((status, leaf), (200, second));
    drop(server);

    // At start-up there is nothing to fall back on: a clear error and exit status 2.
    let out = convene()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls.mode = \"files\""), "{stderr}");
    assert!(
        stderr.contains(&key.display().to_string()) || stderr.contains(&cert.display().to_string()),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plain_http_listener_redirects_to_https() {
    let dir = temp_dir("tls-redirect");
    let config = dir.join("convene.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"self_signed\"\nstate_dir = \"{}\"\nhttp_listen = \"127.0.0.1:0\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let server = Server::start(&config);
    let http_addr: SocketAddr = {
        server.wait_log("http redirect listening on ", Duration::from_secs(5));
        let log = server.log.lock().unwrap();
        let line = log
            .iter()
            .find(|l| l.contains("http redirect listening on "))
            .unwrap();
        line.split("http redirect listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mut tcp = TcpStream::connect(http_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET /some-room?x=1 HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        http_addr.port()
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 308"), "{response}");
    let location = format!(
        "location: https://localhost:{}/some-room?x=1",
        server.addr.port()
    );
    assert!(
        response.to_ascii_lowercase().contains(&location),
        "{response}"
    );
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A STUN Binding request over TLS without ALPN on the HTTPS port; the response's class and method.
fn stun_binding_over_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<u16, String> {
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut request = [0u8; 20];
    request[1] = 0x01; // Binding request, no attributes.
    request[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    request[8..].copy_from_slice(b"convene-test");
    tls.write_all(&request).map_err(|e| e.to_string())?;
    let mut header = [0u8; 20];
    tls.read_exact(&mut header).map_err(|e| e.to_string())?;
    assert_eq!(&header[4..], &request[4..], "same transaction");
    Ok(u16::from_be_bytes([header[0], header[1]]))
}

/// coturn's test client with a time limit; returns its output.
fn turn_uclient(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("30")
        .arg("turnutils_uclient")
        .args(args)
        .output()
        .expect("turnutils_uclient (apt-get install coturn; scripts/test does)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn turn_over_tls_shares_the_https_port() {
    let dir = temp_dir("tls-turn");
    let state = dir.join("state");
    let config = dir.join("convene.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"self_signed\"\nstate_dir = \"{}\"\n\n[turn]\nmode = \"embedded\"\n\
             secret = \"tls-secret\"\nlisten = \"127.0.0.1:0\"\nrelay_to_any_peer = true\n\
             relay_min_port = 43000\nrelay_max_port = 43999\n",
            state.display()
        ),
    )
    .unwrap();
    let server = Server::start(&config);
    server.wait_log(
        "TURN over TLS shares the HTTPS port",
        Duration::from_secs(5),
    );
    let ca = pem_cert(&state.join("ca.pem"));
    let no_alpn = client(std::slice::from_ref(&ca));

    // Without ALPN the first byte decides: a STUN message goes to TURN...
    let answer = stun_binding_over_tls(server.addr, no_alpn.clone()).unwrap();
    assert_eq!(answer, 0x0101, "Binding success response");
    // ...and an HTTP request is HTTPS as before, with or without ALPN.
    let (status, body, _) =
        https_get(server.addr, "localhost", no_alpn.clone(), "/health").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let mut h1 = (*no_alpn).clone();
    h1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (status, _, _) = https_get(server.addr, "localhost", Arc::new(h1), "/health").unwrap();
    assert_eq!(status, 200);

    // coturn's client (it offers the stun.turn ALPN) allocates over TLS on the HTTPS port and relays
    // 20 messages to coturn's echo peer and back.
    let peer_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut peer = Command::new("turnutils_peer")
        .args(["-p", &peer_port.to_string(), "-L", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnutils_peer (apt-get install coturn; scripts/test does)");
    std::thread::sleep(Duration::from_millis(200));
    let port = server.addr.port().to_string();
    let peer_arg = peer_port.to_string();
    let out = turn_uclient(&[
        "-S",
        "-t",
        "-n",
        "20",
        "-m",
        "1",
        "-c",
        "-e",
        "127.0.0.1",
        "-r",
        &peer_arg,
        "-p",
        &port,
        "-W",
        "tls-secret",
        "-u",
        "alice",
        "127.0.0.1",
    ]);
    let _ = peer.kill();
    let _ = peer.wait();
    assert!(out.contains("Total lost packets 0 "), "{out}");
    assert!(out.contains("tot_recv_msgs=20"), "{out}");

    // The relay shows in the metrics, counted as TLS.
    let (_, metrics, _) = https_get(server.addr, "localhost", no_alpn, "/metrics").unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert!(value("convene_turn_relayed_bytes_total{direction=\"to_peer\"}") >= 20.0 * 100.0);
    assert!(value("convene_turn_relayed_bytes_total{direction=\"from_peer\"}") >= 20.0 * 100.0);
    assert!(metrics.contains("convene_turn_connections{transport=\"tls\"}"));
    let _ = std::fs::remove_dir_all(dir);
}
