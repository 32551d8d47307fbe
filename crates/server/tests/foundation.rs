//! The process from the outside: flags, config errors, health, readiness, metrics and graceful shutdown.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn convene() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convene"));
    cmd.env_remove("RUST_LOG").env_remove("CONVENE_CONFIG");
    cmd
}

/// Starts `convene serve` on a free port and returns it with its address (read from the log).
fn start(extra: &[&str]) -> (Child, SocketAddr, std::thread::JoinHandle<String>) {
    let mut child = convene()
        .args(["serve", "--listen", "127.0.0.1:0", "--media-port", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.split("http listening on ").nth(1) {
            break addr.trim().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe; return it for assertions.
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, addr, rest)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn health_ready_and_metrics() {
    let (mut child, addr, _log) = start(&[]);
    assert_eq!(get(addr, "/health"), (200, "ok\n".to_owned()));
    assert_eq!(get(addr, "/ready").0, 200);
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    let lines: Vec<String> = body.lines().map(str::to_owned).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).expect("metrics parse");
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for expected in [
        "convene_process_resident_memory_bytes",
        "convene_process_cpu_seconds_total",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let rss = scrape
        .samples
        .iter()
        .find(|s| s.metric == "convene_process_resident_memory_bytes")
        .unwrap();
    assert!(
        matches!(rss.value, prometheus_parse::Value::Gauge(v) if v > 1e6),
        "{:?}",
        rss.value
    );
    // The health requests above were counted by route.
    let health = scrape.samples.iter().find(|s| {
        s.metric == "convene_http_requests_total" && s.labels.get("route") == Some("/health")
    });
    assert!(
        health.is_some(),
        "no request counter for /health in:\n{body}"
    );
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics text must end with # EOF"
    );
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let (mut child, addr, log) = start(&[]);
    assert_eq!(get(addr, "/health").0, 200);
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let log = log.join().unwrap();
    assert!(log.contains("draining"), "{log}");
    assert!(log.contains("drained; exiting"), "{log}");
    // After exit nothing listens any more.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn sigint_also_drains() {
    let (mut child, _addr, _log) = start(&[]);
    signal(&child, "INT");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(15)).code(),
        Some(0)
    );
}

/// Runs convene to completion and returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = convene().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_config_file_is_one_clear_line() {
    let (code, stderr) = run(&["serve", "--config", "/nonexistent/convene.toml"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot read config file /nonexistent/convene.toml"),
        "{stderr}"
    );
}

#[test]
fn invalid_config_names_every_problem_and_exits_2() {
    let dir = tempdir();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisen = \"127.0.0.1:1\"\n\n[log]\nformat = 3\n",
    )
    .unwrap();
    let (code, stderr) = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(
            "line 2: `server.lisen`: unknown key `lisen` in [server]; did you mean `listen`?"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("line 5: `log.format`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // serve refuses the same file the same way.
    let (code, _) = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
}

#[test]
fn check_config_prints_the_effective_config() {
    let dir = tempdir();
    let path = dir.join("ok.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    let out = convene()
        .args(["check-config", path.to_str().unwrap(), "--print"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("listen = \"127.0.0.1:9999\""), "{printed}");
    assert!(printed.contains("drain_timeout = \"10s\""), "{printed}");
}

#[test]
fn port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run(&["serve", "--listen", &addr, "--media-port", "0"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (HTTP)")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn invalid_flag_exits_2() {
    let (code, stderr) = run(&["serve", "--listen", "nowhere"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid value 'nowhere'"), "{stderr}");
    assert_eq!(run(&["serve", "--no-such-flag"]).0, Some(2));
}

#[test]
fn version_and_help() {
    let out = convene().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("convene 0."));
    let out = convene().arg("help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for sub in ["serve", "whiteboard", "check-config"] {
        assert!(help.contains(sub), "{help}");
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "convene-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempdir();
    let path = dir.join("json.toml");
    std::fs::write(&path, "[log]\nformat = \"json\"\nlevel = \"debug\"\n").unwrap();
    let mut child = convene()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--media-port",
            "0",
            "--config",
            path.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = loop {
        let line = lines.next().expect("server exited").unwrap();
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let message = event["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if message.starts_with("http listening on ") {
            break event;
        }
    };
    assert_eq!(listening["level"], "INFO");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[test]
fn oversized_request_body_is_refused_with_413() {
    let dir = tempdir();
    let path = dir.join("admin.toml");
    std::fs::write(&path, "[auth]\nadmin_token = \"s3cret-admin-token\"\n").unwrap();
    let (mut child, addr, _log) = start(&["--config", path.to_str().unwrap()]);
    let body = vec![b' '; 2 * 1024 * 1024];
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "PUT /api/v1/rooms/standup/metadata/note HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3cret-admin-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer and close before reading everything; a failed write is expected then.
    let _ = stream.write_all(&body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    // The server is still fine.
    assert_eq!(get(addr, "/health").0, 200);
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}
