//! `convene doctor --config` against Convene's embedded TURN server: an allocation with credentials
//! minted from the shared secret succeeds, and a wrong secret is named as such.

mod doctor_support;

use std::net::UdpSocket;

use doctor_support::*;

fn turn_config(port: u16, secret: &str) -> String {
    format!(
        "[turn]\nmode = \"embedded\"\nsecret = \"{secret}\"\nlisten = \"127.0.0.1:{port}\"\n\
         relay_min_port = 40000\nrelay_max_port = 40999\n"
    )
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// One test, so that the two servers never race for a TURN port picked a moment earlier.
#[test]
fn embedded_turn_allocates_and_a_wrong_secret_is_named() {
    embedded_turn_allocates_with_minted_credentials();
    a_wrong_turn_secret_is_named();
}

fn embedded_turn_allocates_with_minted_credentials() {
    let dir = tempdir("doctor-turn");
    let port = free_udp_port();
    let (_convene, addr) = start_convene(&dir, &turn_config(port, "doctor-test-secret"));
    let config = dir.join("convene.toml").display().to_string();
    let url = format!("http://{addr}");
    let (code, out) = doctor(&["--url", &url, "--config", &config, "--skip", "media"]);
    assert_eq!(code, Some(0), "{out}");
    let line = check_line(&out, &format!("TURN turn:127.0.0.1:{port}?transport=udp"));
    assert!(
        line.starts_with("[ ok ]") && line.contains("relayed address 127.0.0.1:"),
        "{out}"
    );
}

fn a_wrong_turn_secret_is_named() {
    let dir = tempdir("doctor-turn-wrong-secret");
    let port = free_udp_port();
    let (_convene, addr) = start_convene(&dir, &turn_config(port, "the-server-secret"));
    // The doctor reads a config whose secret differs from the server's, as after a partial rollout.
    let other = dir.join("other.toml");
    std::fs::write(&other, turn_config(port, "a-different-secret")).unwrap();
    let url = format!("http://{addr}");
    let other = other.display().to_string();
    let (code, out) = doctor(&[
        "--url",
        &url,
        "--config",
        &other,
        "--skip",
        "media",
        "--timeout",
        "3s",
    ]);
    assert_eq!(code, Some(1), "{out}");
    let line = check_line(&out, &format!("TURN turn:127.0.0.1:{port}?transport=udp"));
    assert!(line.starts_with("[FAIL]"), "{out}");
    assert!(out.contains("refuses Convene's credentials"), "{out}");
}
