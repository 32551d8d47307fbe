//! Reads the server's Prometheus text from /metrics (plain HTTP/1.1, so no client library) and
//! picks out the `convene_media_` and `convene_record_` samples; also the admin API requests a
//! recording benchmark makes.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the metrics are: host:port and path of an `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    pub authority: String,
    pub path: String,
}

impl MetricsUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("metrics URL must start with http:// (got {url})");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        Ok(Self {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Samples by name (labels included, e.g. `convene_media_loss_ratio_bucket{le="0.01"}`).
pub type Samples = HashMap<String, f64>;

/// Fetches and parses the `convene_media_` and `convene_record_` samples.
pub async fn fetch(url: &MetricsUrl) -> anyhow::Result<Samples> {
    let body = tokio::time::timeout(Duration::from_secs(10), get(url))
        .await
        .context("metrics request timed out")??;
    let mut samples = parse(&body, "convene_media_");
    samples.extend(parse(&body, "convene_record_"));
    Ok(samples)
}

async fn get(url: &MetricsUrl) -> anyhow::Result<String> {
    let (status, body) = request(&url.authority, "GET", &url.path, None).await?;
    if status != 200 {
        bail!("metrics answered {status}");
    }
    Ok(body)
}

/// One HTTP/1.1 request with an optional bearer token and an empty body; the status and body.
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let auth = bearer.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Samples whose name starts with `prefix`.
pub fn parse(text: &str, prefix: &str) -> Samples {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// A counter's value; prometheus-client names counters `<name>_total`.
pub fn counter(samples: &Samples, name: &str) -> Option<f64> {
    samples
        .get(&format!("{name}_total"))
        .or_else(|| samples.get(name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counters_and_labelled_samples() {
        let text = "# HELP convene_media_packets_sent UDP datagrams sent.\n\
# TYPE convene_media_packets_sent counter\n\
convene_media_packets_sent_total 123456\n\
convene_media_participants 501\n\
convene_media_loss_ratio_bucket{le=\"0.01\"} 7\n\
convene_signal_connections 3\n";
        let s = parse(text, "convene_media_");
        assert_eq!(counter(&s, "convene_media_packets_sent"), Some(123456.0));
        assert_eq!(counter(&s, "convene_media_participants"), Some(501.0));
        assert_eq!(
            s.get("convene_media_loss_ratio_bucket{le=\"0.01\"}"),
            Some(&7.0)
        );
        assert!(!s.contains_key("convene_signal_connections"));
    }

    #[test]
    fn urls_and_chunked_bodies() {
        let u = MetricsUrl::parse("http://127.0.0.1:8080/metrics").unwrap();
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path, "/metrics");
        assert_eq!(
            MetricsUrl::parse("http://h:1").unwrap().path,
            "/metrics".to_owned()
        );
        assert!(MetricsUrl::parse("ftp://h").is_err());
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
