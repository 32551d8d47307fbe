//! `Type=notify` from the outside: `convene serve` sends READY=1 once it answers and STOPPING=1 when draining.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    os::unix::net::UnixDatagram,
    process::{Command, Stdio},
    time::Duration,
};

fn status_of(addr: SocketAddr, path: &str) -> u16 {
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
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("no notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_after_listening_and_stopping_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("convene-sd-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_convene"))
        .env_remove("RUST_LOG")
        .env_remove("CONVENE_CONFIG")
        .env("NOTIFY_SOCKET", &path)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.split("http listening on ").nth(1) {
            break addr.trim().parse().unwrap();
        }
    };
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());

    let ready = recv(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=serving http on {addr}")),
        "{ready:?}"
    );
    // READY=1 promises that the server answers: systemd starts dependent units right after it.
    assert_eq!(status_of(addr, "/ready"), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = recv(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(child.wait().unwrap().success());
    drain.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_notify_socket_nothing_changes() {
    // The common case outside systemd: no NOTIFY_SOCKET, no warning in the log.
    let mut child = Command::new(env!("CARGO_BIN_EXE_convene"))
        .env_remove("RUST_LOG")
        .env_remove("CONVENE_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("http listening on ") {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let log = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    assert!(!log.contains("notify"), "{log}");
}
