//! `convene doctor`: checks a deployment from the outside, the way a browser would reach it, and prints
//! a checklist with a fix for every failure. Exit status 0 when nothing failed, 1 otherwise.
//!
//! Every network step runs under a timeout and a timed-out step is named, so the doctor never hangs.
//! The checks are ordered as a browser meets them: name, certificate, page, WebSockets, media.

mod ice;
mod report;
mod target;
mod turn;
mod udp;
mod web;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

pub use report::{Check, Report, Status};
pub use target::Target;

use crate::config::Config;

/// Exit status when at least one check failed.
const EXIT_FAILED: u8 = 1;
/// Exit status for a bad command line or an unreadable config, like the other subcommands.
const EXIT_USAGE: u8 = 2;

/// Default media UDP port (`[media] port`), probed when no config says otherwise.
const DEFAULT_MEDIA_PORT: u16 = 10000;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Public URL of the deployment, as users open it (e.g. https://meet.example.org).
    /// Without it: http://localhost on the config's listen port.
    #[arg(long)]
    pub url: Option<String>,
    /// The deployment's config file: adds config warnings and tells where media listens.
    #[arg(long, short, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file (a private CA), besides the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Media UDP address to probe (repeatable), instead of the ones the config or URL imply.
    #[arg(long = "media", value_name = "HOST:PORT")]
    pub media: Vec<String>,
    /// Skip checks by name: media, turn.
    #[arg(long, value_delimiter = ',', value_name = "CHECK")]
    pub skip: Vec<Skippable>,
    /// Time allowed for each network step.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Skippable {
    /// The media UDP probe.
    Media,
    /// The TURN allocation.
    Turn,
}

pub fn main(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("convene: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{}", report.render());
            if report.failed() {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("convene: error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs every check. Errors are usage problems (bad URL, unreadable config or CA file), not findings.
pub async fn run(args: &Args) -> Result<Report, String> {
    let config = match &args.config {
        Some(path) => Some(Config::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let url = match &args.url {
        Some(url) => url.clone(),
        None => default_url(config.as_ref()),
    };
    let target = Target::parse(&url)?;
    let tls = if target.https {
        Some(Arc::new(target::tls_client(args.ca_file.as_deref())?))
    } else {
        None
    };
    println!("convene doctor: checking {url}");

    let mut report = Report::default();
    if let Some(config) = &config {
        for check in config_warnings(config, &target) {
            report.push(check);
        }
    }
    let (dns, addrs) = web::dns(&target, args.timeout).await;
    let resolved = !addrs.is_empty();
    report.push(dns);
    let connector = target::Connector {
        target: target.clone(),
        addrs: addrs.clone(),
        tls,
        timeout: args.timeout,
    };
    if resolved {
        web_checks(&connector, &mut report).await;
    } else {
        report.push(Check::skip(
            "HTTP and WebSockets",
            "not tried: the host name does not resolve",
        ));
    }

    if args.skip.contains(&Skippable::Media) {
        report.push(Check::skip("media UDP", "skipped (--skip media)"));
    } else if args.media.is_empty() && signaling_ok(&report) {
        media_via_signaling(&connector, config.as_ref(), args, &addrs, &mut report).await?;
    } else {
        let media = media_addrs(args, config.as_ref(), &addrs).await?;
        if media.is_empty() {
            report.push(Check::skip("media UDP", "no address to probe"));
        }
        for check in udp::media(&media, args.timeout).await {
            report.push(check);
        }
    }
    match &config {
        _ if args.skip.contains(&Skippable::Turn) => {
            report.push(Check::skip("TURN", "skipped (--skip turn)"));
        }
        Some(config) => {
            for check in turn::checks(&config.turn, &target.host, args.timeout).await {
                report.push(check);
            }
        }
        None => report.push(Check::skip(
            "TURN",
            "not checked: give --config to test an allocation with the shared secret",
        )),
    }
    Ok(report)
}

fn signaling_ok(report: &Report) -> bool {
    report
        .checks
        .iter()
        .any(|c| c.name == "signaling WebSocket" && c.status == Status::Ok)
}

/// The media check a browser effectively makes: negotiate over signaling, then ICE connectivity checks
/// to the candidates in the server's answer. When negotiation is impossible (a token is required and
/// no config gives the secret), plain STUN binding requests to the media port instead.
async fn media_via_signaling(
    connector: &target::Connector,
    config: Option<&Config>,
    args: &Args,
    addrs: &[SocketAddr],
    report: &mut Report,
) -> Result<(), String> {
    let jwt = config.filter(|c| !c.auth.secret.is_empty()).and_then(|c| {
        crate::token::mint(
            &c.auth,
            ice::PROBE_ROOM,
            "convene doctor",
            true,
            Duration::from_secs(300),
            std::time::SystemTime::now(),
        )
        .ok()
    });
    match ice::media_checks(connector, jwt.as_deref()).await {
        Ok((answer, checks)) => {
            for check in checks {
                report.push(check);
            }
            if answer.tcp.is_empty() {
                report.push(Check::skip(
                    "ICE-TCP",
                    "the server offers no TCP candidates",
                ));
            }
        }
        Err(e) if e.reason.contains("token_required") || e.reason.contains("token_invalid") => {
            report.push(Check::skip(
                "media UDP",
                "not checked: the server requires a token to join; give --config with the [auth] secret so the doctor can mint one",
            ));
        }
        Err(e) => {
            report.push(Check::fail(
                "media negotiation",
                e.to_string(),
                "read the server log (journalctl -u convene) for the media error; plain STUN to the media port follows",
            ));
            let media = media_addrs(args, config, addrs).await?;
            for check in udp::media(&media, args.timeout).await {
                report.push(check);
            }
        }
    }
    Ok(())
}

/// Certificate, HTTP, and both WebSockets, in the order a browser needs them.
async fn web_checks(connector: &target::Connector, report: &mut Report) {
    let certificate = web::certificate(connector).await;
    let tls_broken = connector.tls.is_some() && certificate.status == Status::Fail;
    report.push(certificate);
    if tls_broken {
        // Browsers stop here too; every later check would repeat the same TLS error.
        report.push(Check::skip(
            "HTTP and WebSockets",
            "not tried: the TLS handshake fails (see above)",
        ));
        return;
    }
    for check in web::http(connector).await {
        report.push(check);
    }
    report.push(web::signaling(connector).await);
    report.push(web::socketio(connector).await);
}

/// `http://localhost:<listen port>`: the server on this machine.
/// With a config that serves HTTPS for a name, `https://<name>`; else the server on this machine.
fn default_url(config: Option<&Config>) -> String {
    let port = config.map_or(8080, |c| c.server.listen.port());
    match config {
        Some(c) if c.tls.mode != crate::tls::Mode::Off && !c.tls.names.is_empty() => {
            let host = &c.tls.names[0];
            if port == 443 {
                format!("https://{host}")
            } else {
                format!("https://{host}:{port}")
            }
        }
        _ => format!("http://localhost:{port}"),
    }
}

/// The media addresses a browser would send to: `--media` when given; else `[media] candidates` on
/// `[media] port` from the config; else the URL host's addresses on the media port (what Convene
/// announces when it has no candidates and the browser reaches it at that address).
async fn media_addrs(
    args: &Args,
    config: Option<&Config>,
    resolved: &[SocketAddr],
) -> Result<Vec<SocketAddr>, String> {
    let port = config.map_or(DEFAULT_MEDIA_PORT, |c| c.media.port);
    let specs: Vec<String> = if !args.media.is_empty() {
        args.media.clone()
    } else if let Some(candidates) = config
        .map(|c| &c.media.candidates)
        .filter(|c| !c.is_empty())
    {
        candidates
            .iter()
            .map(|c| match c.parse::<std::net::IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, port).to_string(),
                Err(_) => format!("{c}:{port}"),
            })
            .collect()
    } else {
        let mut out: Vec<SocketAddr> = resolved
            .iter()
            .map(|a| SocketAddr::new(a.ip(), port))
            .collect();
        out.dedup();
        return Ok(out);
    };
    let mut out = Vec::new();
    for spec in &specs {
        let found = tokio::time::timeout(args.timeout, tokio::net::lookup_host(spec.as_str()))
            .await
            .map_err(|_| {
                format!(
                    "timed out after {} resolving media address {spec}",
                    humantime::format_duration(args.timeout)
                )
            })?
            .map_err(|e| format!("media address {spec}: {e} (expected HOST:PORT)"))?;
        out.extend(found.take(1));
    }
    Ok(out)
}

/// Problems in the config that the server accepts but that break meetings for some users.
fn config_warnings(config: &Config, target: &Target) -> Vec<Check> {
    let mut checks = vec![Check::ok("config", "the config file is valid")];
    let public = !target.is_local();
    if public && config.media.candidates.is_empty() {
        checks.push(Check::warn(
            "config: media candidates",
            "media.candidates is empty, so Convene announces this machine's interface addresses; behind NAT (most clouds) browsers cannot reach them",
            format!("set [media] candidates = [\"<public IP of {}>\"]", target.host),
        ));
    }
    let private: Vec<&String> = config
        .media
        .candidates
        .iter()
        .filter(|c| {
            c.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| is_private(&ip))
        })
        .collect();
    if public && !private.is_empty() {
        checks.push(Check::warn(
            "config: media candidates",
            format!("media.candidates has private or loopback addresses ({}) that browsers on the Internet cannot reach", private.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            "list the public address in [media] candidates",
        ));
    }
    if target.https && config.tls.mode == crate::tls::Mode::Off && !config.tls.behind_proxy {
        checks.push(Check::warn(
            "config: proxy",
            "the URL is https but Convene serves plain HTTP and does not trust forwarded headers",
            "behind a TLS proxy, set [tls] behind_proxy = true (and trusted_proxies); see docs/operations.md, \"Reverse proxies\"",
        ));
    }
    if config.tls.mode == crate::tls::Mode::SelfSigned && public {
        checks.push(Check::warn(
            "config: certificate",
            "tls.mode = \"self_signed\": every browser warns unless the CA is imported on each machine",
            "use tls.mode = \"acme\" on a public server",
        ));
    }
    checks
}

fn is_private(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_with_lan_candidates_is_warned_about() {
        let config = Config::parse("[media]\ncandidates = [\"192.168.1.5\"]\n").unwrap();
        let target = Target::parse("https://meet.example.org").unwrap();
        let checks = config_warnings(&config, &target);
        assert!(
            checks
                .iter()
                .any(|c| c.status == Status::Warn && c.detail.contains("192.168.1.5"))
        );
        let local = Target::parse("http://localhost:8080").unwrap();
        assert!(
            config_warnings(&config, &local)
                .iter()
                .all(|c| c.status == Status::Ok)
        );
    }
}
