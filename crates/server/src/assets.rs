//! The embedded web app: static files with cache headers, the single-page fallback (`/` is the welcome
//! page, `/<room>` a meeting), and `/config.json`, the `[ui]` section the browser app reads at start.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Deserializer, Serialize};

/// One embedded file of `web/dist`.
struct Asset {
    /// Relative to the site root, without a leading slash (`assets/index-1a2b3c.js`).
    path: &'static str,
    body: &'static [u8],
    /// A quoted strong validator computed from the content at build time.
    etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// `[ui]`: branding and options of the web app, published to browsers at `/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name shown in the page title, on the welcome page and in the meeting.
    pub app_name: String,
    /// URL of a logo image (absolute, or a path on this server); empty shows the built-in mark.
    pub logo_url: String,
    /// Colour of buttons and highlights, as `#rgb` or `#rrggbb`.
    #[serde(deserialize_with = "hex_colour")]
    pub accent_color: String,
    /// Show the logo as a watermark over the meeting (Jitsi's watermark).
    pub watermark: bool,
    /// Show the welcome page (room name field, recent rooms) at `/`.
    pub welcome_page: bool,
    /// Show the prejoin page (name, camera preview, devices) before entering (Jitsi's prejoinPageEnabled).
    pub prejoin: bool,
    /// Show who is a moderator on tiles and in the participants pane (the opposite of Jitsi's
    /// disableModeratorIndicator).
    pub moderator_indicator: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_name: "Convene".to_owned(),
            logo_url: String::new(),
            accent_color: "#2f80ed".to_owned(),
            watermark: true,
            welcome_page: true,
            prejoin: true,
            moderator_indicator: true,
        }
    }
}

/// Accepts only `#rgb` / `#rrggbb`, so the value is safe to hand to CSS.
fn hex_colour<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let value = String::deserialize(de)?;
    let hex = value.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "`{value}` is not a colour like \"#2f80ed\""
        )))
    }
}

struct Site {
    config: Config,
    /// index.html with the configured app name as its title.
    index: Option<Vec<u8>>,
    index_etag: String,
}

/// The web app's routes; mounted as the app's fallback, so every other router wins over it.
pub fn router(config: &Config) -> Router {
    let index = find("index.html").map(|a| branded_index(a.body, &config.app_name));
    let index_etag = match find("index.html") {
        // The title depends on the config, so the validator must too.
        Some(a) => format!(
            "\"{}-{:x}\"",
            a.etag.trim_matches('"'),
            fnv(config.app_name.as_bytes())
        ),
        None => String::new(),
    };
    let site = Arc::new(Site {
        config: config.clone(),
        index,
        index_etag,
    });
    Router::new()
        .route("/config.json", get(client_config))
        .fallback(serve)
        .with_state(site)
}

async fn client_config(State(site): State<Arc<Site>>) -> Response {
    let mut response = Json(&site.config).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn serve(
    State(site): State<Arc<Site>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty()
        && path != "index.html"
        && let Some(asset) = find(path)
    {
        let cache = cache_control(path);
        let kind = content_type(path);
        // build time gzipped the text assets; send that form to every client that takes it.
        if accepts_gzip(&headers)
            && let Some(gz) = find(&format!("{path}.gz"))
        {
            let mut response = file(gz.body, gz.etag, kind, cache, &headers);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            return response;
        }
        let mut response = file(asset.body, asset.etag, kind, cache, &headers);
        if find(&format!("{path}.gz")).is_some() {
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        return response;
    }
    if is_page(path) {
        return match &site.index {
            Some(index) => file(
                index,
                &site.index_etag,
                "text/html; charset=utf-8",
                "no-cache",
                &headers,
            ),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "This convene binary was built without its web app (CONVENE_SKIP_WEB_BUILD). \
                 Rebuild it with Node.js and npm installed.\n",
            )
                .into_response(),
        };
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// `/`, `/index.html` and `/<room>`, where a room name is what docs/protocol.md allows: 1–64 letters,
/// digits, `-`, `_` and `.`, not starting with `.`. Anything else that is not a file is a 404.
fn is_page(path: &str) -> bool {
    path.is_empty()
        || path == "index.html"
        || (path.len() <= 64
            && !path.starts_with('.')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or("").trim();
                // `gzip;q=0` means "not gzip".
                let refused =
                    parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                name.eq_ignore_ascii_case("gzip") && !refused
            })
        })
}

fn find(path: &str) -> Option<&'static Asset> {
    FILES
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &FILES[i])
}

fn file(
    body: &[u8],
    etag: &str,
    content_type: &str,
    cache: &'static str,
    headers: &HeaderMap,
) -> Response {
    let etag_value =
        HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut builder = Response::builder()
        .header(header::ETAG, etag_value)
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if matches {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
    }
    builder
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Vite puts content-hashed names under `assets/`: those never change and are cached for a year.
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600, must-revalidate"
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// index.html with `<title>` set to the configured app name, HTML-escaped.
fn branded_index(body: &[u8], app_name: &str) -> Vec<u8> {
    let html = String::from_utf8_lossy(body);
    let escaped = app_name
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    match (html.find("<title>"), html.find("</title>")) {
        (Some(start), Some(end)) if start < end => format!(
            "{}<title>{escaped}</title>{}",
            &html[..start],
            &html[end + "</title>".len()..]
        )
        .into_bytes(),
        _ => body.to_vec(),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
