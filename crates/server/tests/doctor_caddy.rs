//! `convene doctor` against Convene behind a real Caddy running the documented Caddyfile: all green.

mod doctor_support;

use doctor_support::*;

#[test]
fn documented_caddyfile_is_all_green() {
    let dir = tempdir("doctor-caddy");
    let (_convene, backend) = start_convene(&dir, "[tls]\nmode = \"off\"\nbehind_proxy = true\n");
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    let _caddy = start_caddy(&dir, port, backend, &cert, &key);

    let url = format!("https://localhost:{port}");
    let ca = ca.display().to_string();
    let (code, out) = doctor(&["--url", &url, "--ca-file", &ca]);
    assert_eq!(code, Some(0), "{out}");
    for name in [
        "TLS certificate",
        "HTTP",
        "readiness",
        "signaling WebSocket",
        "whiteboard /socket.io/",
    ] {
        assert!(check_line(&out, name).starts_with("[ ok ]"), "{out}");
    }
    let media: Vec<&str> = out.lines().filter(|l| l.contains("media UDP")).collect();
    assert!(!media.is_empty(), "{out}");
    assert!(media.iter().all(|l| l.starts_with("[ ok ]")), "{out}");
    assert!(!out.contains("[FAIL]") && !out.contains("[warn]"), "{out}");
}
