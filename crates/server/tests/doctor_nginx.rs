//! `convene doctor` against Convene behind a real nginx: the documented recipe is all green, and the
//! same recipe without the WebSocket upgrade headers is diagnosed as exactly that.

mod doctor_support;

use doctor_support::*;

/// Convene's config for these tests: plain HTTP behind the proxy.
const CONFIG: &str = "[tls]\nmode = \"off\"\nbehind_proxy = true\n";

#[test]
fn documented_nginx_recipe_is_all_green() {
    let dir = tempdir("doctor-nginx-good");
    let (_convene, backend) = start_convene(&dir, CONFIG);
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    let _nginx = start_nginx(&dir, port, &recipe(port, backend, &cert, &key));

    let url = format!("https://localhost:{port}");
    let ca = ca.display().to_string();
    let (code, out) = doctor(&["--url", &url, "--ca-file", &ca]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        check_line(&out, "TLS certificate").starts_with("[ ok ]"),
        "{out}"
    );
    assert!(
        check_line(&out, "TLS certificate").contains("valid for localhost"),
        "{out}"
    );
    assert!(check_line(&out, "HTTP").starts_with("[ ok ]"), "{out}");
    assert!(check_line(&out, "readiness").starts_with("[ ok ]"), "{out}");
    assert!(
        check_line(&out, "signaling WebSocket").starts_with("[ ok ]"),
        "{out}"
    );
    assert!(
        check_line(&out, "whiteboard /socket.io/").starts_with("[ ok ]"),
        "{out}"
    );
    let media: Vec<&str> = out.lines().filter(|l| l.contains("media UDP")).collect();
    assert!(!media.is_empty(), "{out}");
    assert!(media.iter().all(|l| l.starts_with("[ ok ]")), "{out}");
    assert!(!out.contains("[FAIL]") && !out.contains("[warn]"), "{out}");
}

#[test]
fn nginx_without_upgrade_headers_is_named() {
    let dir = tempdir("doctor-nginx-no-upgrade");
    let (_convene, backend) = start_convene(&dir, CONFIG);
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    // The most common mistake: a plain proxy_pass, without the Upgrade/Connection lines.
    let broken: String = recipe(port, backend, &cert, &key)
        .lines()
        .filter(|l| {
            !l.contains("proxy_set_header Upgrade")
                && !l.contains("proxy_set_header Connection $connection_upgrade")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let _nginx = start_nginx(&dir, port, &broken);

    let url = format!("https://localhost:{port}");
    let ca = ca.display().to_string();
    let (code, out) = doctor(&["--url", &url, "--ca-file", &ca, "--skip", "media"]);
    assert_eq!(code, Some(1), "{out}");
    for name in ["signaling WebSocket", "whiteboard /socket.io/"] {
        let l = check_line(&out, name);
        assert!(
            l.starts_with(&format!(
                "[FAIL] {name}: the reverse proxy dropped the Upgrade headers"
            )),
            "{out}"
        );
    }
    assert!(
        out.contains("proxy_set_header Upgrade $http_upgrade;"),
        "{out}"
    );
    // Plain HTTP still works through this proxy, and the doctor says so.
    assert!(check_line(&out, "HTTP").starts_with("[ ok ]"), "{out}");
}

#[test]
fn an_untrusted_certificate_is_named() {
    let dir = tempdir("doctor-nginx-untrusted");
    let (_convene, backend) = start_convene(&dir, CONFIG);
    let (_ca, cert, key) = certificates(&dir);
    let port = free_port();
    let _nginx = start_nginx(&dir, port, &recipe(port, backend, &cert, &key));

    // Without --ca-file the test CA is unknown, as a self-signed certificate is to browsers.
    let url = format!("https://localhost:{port}");
    let (code, out) = doctor(&["--url", &url, "--skip", "media"]);
    assert_eq!(code, Some(1), "{out}");
    let l = check_line(&out, "TLS certificate");
    assert!(
        l.starts_with("[FAIL]") && l.contains("UnknownIssuer"),
        "{out}"
    );
    assert!(out.contains("not signed by a trusted CA"), "{out}");
}
