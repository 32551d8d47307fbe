//! HTTPS served by Convene itself: certificate files reloaded on change, a self-signed local CA for LAN
//! trials, or ACME with renewal; plus the reverse-proxy trust rule for `X-Forwarded-*`.
//!
//! All three sources feed one `CertStore` that rustls asks on every handshake, so a reload or renewal
//! takes effect for the next connection without a restart, and a failure leaves the last good
//! certificate in place.

pub mod acme;
pub mod config;
pub mod files;
pub mod listener;
pub mod proxy;
pub mod self_signed;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

pub use config::{Config, Mode};
pub use listener::TlsListener;
pub use proxy::{ClientInfo, ProxyPolicy};
pub use store::CertStore;

use crate::shutdown::Lifecycle;

/// HTTPS, started: what `http::serve` needs to terminate TLS.
#[derive(Clone)]
pub struct Https {
    pub server_config: Arc<rustls::ServerConfig>,
    pub store: Arc<CertStore>,
}

/// Sets up the certificate source for `tls.mode` and starts its background task (file watcher or
/// ACME renewal) and the plain-HTTP listener if configured. `https_addr` is the bound HTTPS address.
/// Returns `None` when TLS is off.
pub async fn start(
    config: &Config,
    https_addr: SocketAddr,
    lifecycle: &Lifecycle,
) -> Result<Option<Https>, crate::Error> {
    config.validate().map_err(crate::Error::Startup)?;
    let store = Arc::new(CertStore::default());
    let tokens = acme::Http01Tokens::default();
    let shutdown = lifecycle.shutdown.clone();
    match config.mode {
        Mode::Off => {
            if config.http_listen.is_some() {
                tracing::warn!("tls.http_listen is ignored while tls.mode = \"off\"");
            }
            return Ok(None);
        }
        Mode::Files => {
            files::install(&store, &config.cert_file, &config.key_file)
                .map_err(|e| crate::Error::Startup(format!("tls.mode = \"files\": {e}")))?;
            lifecycle.tasks.spawn(files::watch(
                store.clone(),
                config.cert_file.clone(),
                config.key_file.clone(),
                config.reload_interval,
                shutdown.clone(),
            ));
        }
        Mode::SelfSigned => {
            let dir = config.state_dir();
            let names = self_signed::default_names(&config.names);
            let made = self_signed::ensure(&dir, &names)
                .map_err(|e| crate::Error::Startup(format!("tls.mode = \"self_signed\": {e}")))?;
            tracing::info!("{}", self_signed::trust_hint(&made));
            store.set(Arc::new(made.key));
        }
        Mode::Acme => {
            let acme = acme::Acme {
                config: config.acme.clone(),
                names: config.names.clone(),
                dir: acme::dir(&config.state_dir()),
                store: store.clone(),
                tokens: tokens.clone(),
            };
            let expiry = acme.load_cached();
            if expiry.is_none() {
                tracing::info!(
                    "tls: no certificate yet for {}; ordering one from {}",
                    config.names.join(", "),
                    config.acme.directory
                );
            }
            lifecycle.tasks.spawn(acme.run(expiry, shutdown.clone()));
        }
    }
    if let Some(addr) = config.http_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| crate::Error::Bind {
                what: "HTTP (redirect to HTTPS and ACME http-01)",
                addr,
                source,
            })?;
        let bound = listener.local_addr().unwrap_or(addr);
        let app = redirect_router(tokens, https_addr.port());
        lifecycle.tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("http redirect listener failed: {e}");
            }
        });
        tracing::info!("http redirect listening on {bound}");
    }
    Ok(Some(Https {
        server_config: Arc::new(server_config(store.clone())),
        store,
    }))
}

/// rustls settings for the HTTPS listener: certificates from `store`, HTTP/1.1 (WebSockets need it)
/// and the ACME validation protocol.
pub fn server_config(store: Arc<CertStore>) -> rustls::ServerConfig {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    // The aws-lc-rs provider supports every default protocol version; this cannot fail.
    .unwrap_or_else(|_| rustls::ServerConfig::builder())
    .with_no_client_auth()
    .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec(), store::ACME_TLS_ALPN.to_vec()];
    config
}

/// The plain-HTTP side: ACME http-01 answers, and a permanent redirect to HTTPS for everything else.
pub fn redirect_router(tokens: acme::Http01Tokens, https_port: u16) -> Router {
    Router::new()
        .route(
            "/.well-known/acme-challenge/{token}",
            get(http01).with_state(tokens),
        )
        .fallback(move |headers: HeaderMap, uri: Uri| async move {
            to_https(&headers, &uri, https_port)
        })
}

async fn http01(State(tokens): State<acme::Http01Tokens>, Path(token): Path<String>) -> Response {
    let answer = tokens
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&token)
        .cloned();
    match answer {
        Some(key_auth) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_auth,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn to_https(headers: &HeaderMap, uri: &Uri, https_port: u16) -> Response {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "Host header required\n").into_response();
    };
    // Drop any port the browser used for plain HTTP; add the HTTPS one unless it is the default.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = if https_port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{https_port}{path}")
    };
    Redirect::permanent(&target).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_the_path_and_swaps_the_port() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "meet.example.org:80".parse().unwrap());
        let uri: Uri = "/room?x=1".parse().unwrap();
        let response = to_https(&headers, &uri, 8443);
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://meet.example.org:8443/room?x=1"
        );
        headers.insert(header::HOST, "[::1]".parse().unwrap());
        let response = to_https(&headers, &uri, 443);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://[::1]/room?x=1"
        );
    }
}
