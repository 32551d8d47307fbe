//! Who the client is: the TCP peer, or, with `tls.behind_proxy`, what a trusted reverse proxy says in
//! `X-Forwarded-For`, `-Proto` and `-Host`. Forwarded headers from anyone else are removed, so no
//! handler can be fooled by a client that sets them itself.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, header},
    middleware::Next,
    response::Response,
};

use super::config::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The client as the rest of the server should see it; a request extension set for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (the proxy's, unless the proxy is trusted).
    pub ip: IpAddr,
    /// `https` or `http`, as the browser used it.
    pub scheme: &'static str,
    /// The host (and port, if any) the browser used, from `Host` or a trusted `X-Forwarded-Host`.
    pub host: Option<String>,
}

/// The trust rule, built once from config.
#[derive(Debug, Clone)]
pub struct ProxyPolicy {
    pub behind_proxy: bool,
    pub trusted: Vec<IpNet>,
    /// Whether this listener itself speaks TLS.
    pub tls: bool,
}

impl ProxyPolicy {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.behind_proxy && self.trusted.iter().any(|net| net.contains(ip))
    }

    /// Works out the client from the peer address and headers. Pure, for tests.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientInfo {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let direct = ClientInfo {
            ip: peer,
            scheme: if self.tls { "https" } else { "http" },
            host,
        };
        if !self.trusts(peer) {
            return direct;
        }
        // Each proxy appends the address it received from; walk from the nearest one back and stop at
        // the first address that is not one of our proxies: everything left of it could be forged.
        let hops: Vec<IpAddr> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| parse_hop(s.trim()))
            .collect();
        let ip = hops
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer);
        let last = |name: &HeaderName| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let scheme = match last(&X_FORWARDED_PROTO).as_deref() {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ => direct.scheme,
        };
        ClientInfo {
            ip,
            scheme,
            host: last(&X_FORWARDED_HOST).or(direct.host),
        }
    }
}

/// `X-Forwarded-For` entries may carry a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Middleware: sets `ClientInfo`, rewrites `ConnectInfo` to the real client when a trusted proxy said
/// so (so rate limits and logs elsewhere see the client), and strips untrusted forwarded headers.
pub async fn client_info(
    State(policy): State<Arc<ProxyPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(peer) = peer {
        let info = policy.client(peer.ip(), request.headers());
        if !policy.trusts(peer.ip()) {
            let headers = request.headers_mut();
            headers.remove(&X_FORWARDED_FOR);
            headers.remove(&X_FORWARDED_PROTO);
            headers.remove(&X_FORWARDED_HOST);
        } else if info.ip != peer.ip() {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(info.ip, peer.port())));
        }
        request.extensions_mut().insert(info);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn policy(behind_proxy: bool) -> ProxyPolicy {
        ProxyPolicy {
            behind_proxy,
            trusted: vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            tls: false,
        }
    }

    #[test]
    fn untrusted_peer_gets_no_say() {
        let h = headers(&[
            ("host", "meet.example.org"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = policy(true).client("203.0.113.5".parse().unwrap(), &h);
        assert_eq!(info.ip, "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, "http");
        assert_eq!(info.host.as_deref(), Some("meet.example.org"));
    }

    #[test]
    fn trusted_proxy_is_believed_up_to_the_first_untrusted_hop() {
        let h = headers(&[
            ("host", "backend:8080"),
            // The client forged the first entry; the chain is forged, 198.51.100.7, our proxy 10.1.1.1.
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "meet.example.org"),
        ]);
        let info = policy(true).client("127.0.0.1".parse().unwrap(), &h);
        assert_eq!(info.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, "https");
        assert_eq!(info.host.as_deref(), Some("meet.example.org"));
    }

    #[test]
    fn off_means_headers_are_ignored_even_from_proxies() {
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = policy(false).client("127.0.0.1".parse().unwrap(), &h);
        assert_eq!(info.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, "http");
    }

    /// The middleware as handlers see it: forged headers gone, trusted ones turned into the client.
    #[tokio::test]
    async fn middleware_strips_untrusted_headers_and_rewrites_trusted_peers() {
        use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
        use tower::ServiceExt;

        let app = Router::new()
            .route(
                "/",
                get(
                    |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| async move {
                        let info = request.extensions().get::<ClientInfo>().cloned().unwrap();
                        let forwarded = request.headers().get(&X_FORWARDED_FOR).is_some();
                        format!("{} {} {} {forwarded}", peer.ip(), info.ip, info.scheme)
                    },
                ),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(policy(true)),
                client_info,
            ));
        let call = |peer: &str| {
            let mut request = axum::http::Request::builder()
                .uri("/")
                .header("x-forwarded-for", "198.51.100.7")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.unwrap();
                let body = axum::body::to_bytes(response.into_body(), 1024)
                    .await
                    .unwrap();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        assert_eq!(
            call("127.0.0.1:5000").await,
            "198.51.100.7 198.51.100.7 https true"
        );
        assert_eq!(
            call("203.0.113.9:5000").await,
            "203.0.113.9 203.0.113.9 http false"
        );
    }

    #[test]
    fn hops_with_ports_parse() {
        assert_eq!(parse_hop("[::1]:443"), Some("::1".parse().unwrap()));
        assert_eq!(parse_hop("1.2.3.4:80"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_hop("unknown"), None);
    }
}
