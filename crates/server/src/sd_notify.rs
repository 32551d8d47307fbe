//! systemd readiness notification (`sd_notify(3)`): one datagram to `$NOTIFY_SOCKET`, nothing when unset.
//!
//! With `Type=notify` systemd considers the service started only when it receives `READY=1`, so units
//! ordered after Convene (a reverse proxy, a health check) start once every listener is bound, not when
//! the process has merely been forked. The protocol is a single datagram on a Unix socket, so it is
//! written here instead of pulling in a crate.

use std::os::unix::net::UnixDatagram;

/// Tells systemd that start-up finished: every listener is bound and the server answers.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={status}"));
}

/// Tells systemd that the drain has started, so `systemctl status` shows "deactivating" with a reason.
pub fn stopping(status: &str) {
    send(&format!("STOPPING=1\nSTATUS={status}"));
}

fn send(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    match notify(&target, state) {
        Ok(()) => tracing::debug!(state, "sent service notification"),
        // Not fatal: without the notification systemd times the start out and says so itself.
        Err(e) => tracing::warn!(
            socket = %target.to_string_lossy(),
            "cannot notify the service manager: {e}"
        ),
    }
}

/// Sends `state` to the notification socket `target`: an absolute path, or `@name` for an abstract socket.
pub fn notify(target: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else if bytes.first() == Some(&b'/') {
        socket.send_to(state.as_bytes(), target)?;
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract socket name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("convene-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        notify(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("convene-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        notify(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn rejects_a_relative_target() {
        let err = notify(std::ffi::OsStr::new("notify.sock"), "READY=1").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    }
}
