//! The media candidates: which addresses browsers are told to send media to.

use std::net::{IpAddr, SocketAddr};

/// Resolves the configured candidate entries (IPs or host names) on `port`. With none
/// configured: the bind address if it is a specific one, else every local interface address of
/// the bind address's family (loopback included, so local use and tests work).
pub async fn resolve(
    configured: &[String],
    bind: IpAddr,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let mut out: Vec<SocketAddr> = Vec::new();
    if configured.is_empty() {
        if !bind.is_unspecified() {
            return Ok(vec![SocketAddr::new(bind, port)]);
        }
        let ifaces =
            if_addrs::get_if_addrs().map_err(|e| format!("cannot list network interfaces: {e}"))?;
        for iface in ifaces {
            let ip = iface.ip();
            if usable(ip, bind) {
                push_unique(&mut out, SocketAddr::new(ip, port));
            }
        }
        // Loopback first: a browser on this machine pairs with it at once.
        out.sort_by_key(|a| !a.ip().is_loopback());
    } else {
        for entry in configured {
            if let Ok(ip) = entry.parse::<IpAddr>() {
                push_unique(&mut out, SocketAddr::new(ip, port));
                continue;
            }
            let found = tokio::net::lookup_host((entry.as_str(), port))
                .await
                .map_err(|e| format!("[media] candidates: cannot resolve {entry:?}: {e}"))?;
            let mut any = false;
            for addr in found {
                if addr.is_ipv4() == bind.is_ipv4() {
                    push_unique(&mut out, addr);
                    any = true;
                }
            }
            if !any {
                return Err(format!(
                    "[media] candidates: {entry:?} has no address of the bind address's family"
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("[media] no usable candidate address; set [media] candidates".into());
    }
    Ok(out)
}

fn usable(ip: IpAddr, bind: IpAddr) -> bool {
    match (ip, bind) {
        (IpAddr::V4(v), IpAddr::V4(_)) => !v.is_link_local() && !v.is_unspecified(),
        // IPv6 link-local addresses need a scope id that SDP candidates cannot carry.
        (IpAddr::V6(v), IpAddr::V6(_)) => {
            !v.is_unspecified() && (v.segments()[0] & 0xffc0) != 0xfe80
        }
        _ => false,
    }
}

fn push_unique(out: &mut Vec<SocketAddr>, a: SocketAddr) {
    if !out.contains(&a) {
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn default_includes_loopback_first() {
        let c = resolve(&[], IpAddr::from([0, 0, 0, 0]), 10000)
            .await
            .unwrap();
        assert_eq!(c[0], SocketAddr::from(([127, 0, 0, 1], 10000)));
        assert!(c.iter().all(|a| a.is_ipv4() && a.port() == 10000));
    }

    #[tokio::test]
    async fn configured_ips_and_names() {
        let c = resolve(
            &["203.0.113.7".into(), "localhost".into()],
            IpAddr::from([0, 0, 0, 0]),
            4000,
        )
        .await
        .unwrap();
        assert_eq!(c[0], SocketAddr::from(([203, 0, 113, 7], 4000)));
        assert!(c.contains(&SocketAddr::from(([127, 0, 0, 1], 4000))));
        assert!(
            resolve(
                &["no-such-host.invalid".into()],
                IpAddr::from([0, 0, 0, 0]),
                1
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn specific_bind_is_the_default_candidate() {
        let c = resolve(&[], IpAddr::from([127, 0, 0, 1]), 5).await.unwrap();
        assert_eq!(c, vec![SocketAddr::from(([127, 0, 0, 1], 5))]);
    }
}
