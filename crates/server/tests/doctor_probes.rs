//! `convene doctor` on broken deployments without a proxy: a closed media port, a server that accepts
//! connections but never answers (every step has a timeout that names it), and a name that does not resolve.

mod doctor_support;

use std::{
    net::{TcpListener, UdpSocket},
    time::{Duration, Instant},
};

use doctor_support::*;

#[test]
fn closed_udp_port_is_named() {
    let dir = tempdir("doctor-closed-udp");
    let (_convene, addr) = start_convene(&dir, "");
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = closed.local_addr().unwrap();
    drop(closed);

    let url = format!("http://{addr}");
    let (code, out) = doctor(&["--url", &url, "--media", &media.to_string()]);
    assert_eq!(code, Some(1), "{out}");
    let l = check_line(&out, &format!("media UDP {media}"));
    assert!(
        l.starts_with(&format!(
            "[FAIL] media UDP {media}: UDP port {} is closed",
            media.port()
        )),
        "{out}"
    );
}

#[test]
fn an_advertised_media_address_nobody_listens_on_is_named() {
    // Media bound to 127.0.0.1 but advertised as 127.0.0.2: browsers are sent where nothing listens.
    let dir = tempdir("doctor-advertised-closed");
    let (_convene, addr) = start_convene(
        &dir,
        "[media]\nbind = \"127.0.0.1\"\ncandidates = [\"127.0.0.2\"]\n",
    );
    let url = format!("http://{addr}");
    let (code, out) = doctor(&["--url", &url, "--timeout", "2s"]);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("media UDP 127.0.0.2:"))
        .unwrap_or_else(|| panic!("no media line for the advertised address:\n{out}"));
    assert!(
        line.starts_with("[FAIL]") && line.contains("is closed"),
        "{out}"
    );
    // Its ICE-TCP twin is unreachable too; that is a warning, UDP being the normal path.
    let line = out
        .lines()
        .find(|l| l.contains("media TCP 127.0.0.2:"))
        .unwrap_or_else(|| panic!("no media TCP line for the advertised address:\n{out}"));
    assert!(
        line.starts_with("[warn]") && line.contains("no ICE answer over TCP"),
        "{out}"
    );
}

#[test]
fn a_token_server_is_checked_with_a_minted_token() {
    let dir = tempdir("doctor-token");
    let (_convene, addr) = start_convene(
        &dir,
        "[auth]\nmode = \"token\"\nsecret = \"doctor-token-secret\"\n",
    );
    let url = format!("http://{addr}");
    // Without the secret the doctor cannot join, and says so instead of guessing.
    let (code, out) = doctor(&["--url", &url]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        check_line(&out, "signaling WebSocket").contains("asks for a token"),
        "{out}"
    );
    assert!(
        check_line(&out, "media UDP")
            .starts_with("[skip] media UDP: not checked: the server requires a token"),
        "{out}"
    );
    // With the config it mints a token, joins, and checks every advertised address.
    let config = dir.join("convene.toml").display().to_string();
    let (code, out) = doctor(&["--url", &url, "--config", &config]);
    assert_eq!(code, Some(0), "{out}");
    let media: Vec<&str> = out.lines().filter(|l| l.contains("media UDP")).collect();
    assert!(
        !media.is_empty() && media.iter().all(|l| l.starts_with("[ ok ]")),
        "{out}"
    );
    // ICE-TCP is on by default: the same check over TCP answers on every TCP candidate.
    let tcp: Vec<&str> = out.lines().filter(|l| l.contains("media TCP")).collect();
    assert!(
        tcp.len() == media.len() && tcp.iter().all(|l| l.starts_with("[ ok ]")),
        "{out}"
    );
}

#[test]
fn a_silent_server_times_out_with_the_step_named() {
    // Accepts TCP connections (the kernel does, from the backlog) but never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, out) = doctor(&["--url", &url, "--skip", "media", "--timeout", "500ms"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        check_line(&out, "HTTP")
            .contains("timed out after 500ms while reading the answer to GET /health"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn an_unknown_host_name_is_a_dns_failure() {
    let (code, out) = doctor(&[
        "--url",
        "https://convene-doctor.invalid",
        "--skip",
        "media",
        "--timeout",
        "2s",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(check_line(&out, "DNS").starts_with("[FAIL] DNS:"), "{out}");
}
