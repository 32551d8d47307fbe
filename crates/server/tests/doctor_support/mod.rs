//! Shared by the `doctor_*` tests: a real Convene process, a real nginx in front of it configured from
//! `deploy/nginx/convene.conf`, test certificates, and running `convene doctor` as a user would.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub fn convene() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convene"));
    cmd.env_remove("RUST_LOG").env_remove("CONVENE_CONFIG");
    cmd
}

/// A scratch directory, removed when dropped (declared first in a test, so dropped after the processes).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("convene-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A child process killed when dropped, so a failing assertion leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `convene serve` on a free port with `config` (TOML text); returns the process and its HTTP address.
pub fn start_convene(dir: &Path, config: &str) -> (Proc, SocketAddr) {
    let path = dir.join("convene.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = convene()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("convene exited before listening")
            .unwrap();
        if let Some(addr) = line.split("http listening on ").nth(1) {
            break addr.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (Proc(child), addr)
}

/// A port that was free a moment ago (nginx cannot be told to pick one itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a certificate for `localhost` signed by it, written as PEM files: (ca, cert, key).
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca, cert, key)
}

/// The documented recipe, adapted to this test: local port, test certificate, this backend, and
/// without the port-80 redirect server (which would need port 80).
pub fn recipe(port: u16, backend: SocketAddr, cert: &Path, key: &Path) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/convene.conf"),
    )
    .unwrap();
    let https_server_end = text.rfind("\nserver {").unwrap();
    text[..https_server_end]
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
        .replace(
            "/etc/letsencrypt/live/meet.example.org/fullchain.pem",
            &cert.display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/meet.example.org/privkey.pem",
            &key.display().to_string(),
        )
        .replace("meet.example.org", "localhost")
        .replace("server 127.0.0.1:8080;", &format!("server {backend};"))
}

/// Runs nginx in the foreground with `http_conf` inside a minimal main config; waits until it listens.
pub fn start_nginx(dir: &Path, port: u16, http_conf: &str) -> Proc {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "nginx is needed for this test: apt-get install nginx-light (scripts/test installs it)",
        );
    for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(temp)).unwrap();
    }
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         {http_conf}\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = proc.0.try_wait().unwrap() {
            panic!("nginx exited with {status} (its error is above)");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

/// `convene doctor ARGS`: (exit code, stdout).
pub fn doctor(args: &[&str]) -> (Option<i32>, String) {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = convene().arg("doctor").args(args).output().unwrap();
    let out = String::from_utf8_lossy(&stdout).into_owned();
    eprintln!(
        "doctor {args:?} ({:?}):\n{out}{}",
        started.elapsed(),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), out)
}

/// The checklist line of the check called `name`.
pub fn check_line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(7..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{out}"))
}

/// Runs Caddy with the documented Caddyfile, adapted to this test (local port, test certificate, this
/// backend, no admin API, no automatic HTTPS on port 80); waits until it listens.
pub fn start_caddy(dir: &Path, port: u16, backend: SocketAddr, cert: &Path, key: &Path) -> Proc {
    let caddy = ["/usr/bin/caddy", "/usr/local/bin/caddy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("caddy is needed for this test: apt-get install caddy (scripts/test installs it)");
    let recipe = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/caddy/Caddyfile"),
    )
    .unwrap();
    let site = recipe
        .replace(
            "meet.example.org {",
            &format!(
                "https://localhost:{port} {{\n\ttls {} {}",
                cert.display(),
                key.display()
            ),
        )
        .replace("127.0.0.1:8080", &backend.to_string());
    let global = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {}\n}}\n",
        dir.join("caddy-data").display()
    );
    let file = dir.join("Caddyfile");
    std::fs::write(&file, global + &site).unwrap();
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("xdg-data"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = proc.0.try_wait().unwrap() {
            panic!("caddy exited with {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "caddy did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}
