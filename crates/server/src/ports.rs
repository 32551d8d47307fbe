//! `convene ports`: every port the current config listens on or relays through, with protocol and
//! purpose, for firewall rules and port forwards.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use crate::{
    config::Config,
    tls::{self, config::Challenge},
    turn,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (TOML). Without it every default applies.
    #[arg(long, short, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address, overriding `server.listen` (as `convene serve --listen` would).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    pub protocol: &'static str,
    /// A port, or a range such as `49152-65535`.
    pub port: String,
    /// The local address it is bound to.
    pub address: String,
    pub purpose: String,
}

/// The media UDP port, when the config knows one.
pub type MediaPort = Option<SocketAddr>;

/// Every port `config` needs. `media` is the media UDP socket address from `[media]`.
pub fn list(config: &Config, media: MediaPort) -> Vec<PortUse> {
    let mut out = Vec::new();
    let listen = config.server.listen;
    let (scheme, note) = match config.tls.mode {
        tls::Mode::Off if config.tls.behind_proxy => (
            "HTTP",
            " (behind the reverse proxy; reachable from the proxy only)",
        ),
        tls::Mode::Off => ("HTTP", ""),
        tls::Mode::Acme if config.tls.acme.challenge == Challenge::TlsAlpn01 => (
            "HTTPS",
            " (must be port 443 from outside for ACME tls-alpn-01)",
        ),
        _ => ("HTTPS", ""),
    };
    let turn_tls = config.tls.mode != tls::Mode::Off
        && config.turn.mode == turn::Mode::Embedded
        && config.turn.tls_on_https;
    out.push(PortUse {
        protocol: "tcp",
        port: listen.port().to_string(),
        address: listen.ip().to_string(),
        purpose: format!(
            "{scheme}: web app, signaling WebSocket, whiteboard relay, /health, /ready, /metrics{}{note}",
            if turn_tls { ", TURN over TLS" } else { "" }
        ),
    });
    if let (Some(http), true) = (config.tls.http_listen, config.tls.mode != tls::Mode::Off) {
        let acme =
            config.tls.mode == tls::Mode::Acme && config.tls.acme.challenge == Challenge::Http01;
        out.push(PortUse {
            protocol: "tcp",
            port: http.port().to_string(),
            address: http.ip().to_string(),
            purpose: if acme {
                "HTTP: ACME http-01 challenges (must be port 80 from outside) and redirect to HTTPS"
                    .to_owned()
            } else {
                "HTTP: redirect to HTTPS".to_owned()
            },
        });
    }
    if let Some(media) = media {
        out.push(PortUse {
            protocol: "udp",
            port: media.port().to_string(),
            address: media.ip().to_string(),
            purpose: "media: WebRTC (ICE, DTLS, SRTP) for every participant".to_owned(),
        });
        if config.media.tcp {
            out.push(PortUse {
                protocol: "tcp",
                port: config.media.tcp_port.unwrap_or(media.port()).to_string(),
                address: media.ip().to_string(),
                purpose: "media over TCP (ICE-TCP) for participants whose UDP is blocked"
                    .to_owned(),
            });
        }
    }
    let t = &config.turn;
    match t.mode {
        turn::Mode::Off => {}
        turn::Mode::Embedded => {
            for protocol in ["udp", "tcp"] {
                out.push(PortUse {
                    protocol,
                    port: t.listen.port().to_string(),
                    address: t.listen.ip().to_string(),
                    purpose: format!("TURN (embedded) over {}", protocol.to_uppercase()),
                });
            }
            out.push(PortUse {
                protocol: "udp",
                port: format!("{}-{}", t.relay_min_port, t.relay_max_port),
                address: t.listen.ip().to_string(),
                purpose: if t.relay_to_any_peer {
                    "TURN relay ports (one per allocation; toward any peer)".to_owned()
                } else {
                    "TURN relay ports (one per allocation; they talk only to the media port, so they need no inbound rule from outside)".to_owned()
                },
            });
        }
        turn::Mode::External => {}
    }
    out
}

/// The table as printed, plus notes for what lives elsewhere.
pub fn render(config: &Config, ports: &[PortUse]) -> String {
    let mut rows = vec![[
        "PROTO".to_owned(),
        "PORT".to_owned(),
        "ADDRESS".to_owned(),
        "PURPOSE".to_owned(),
    ]];
    for p in ports {
        rows.push([
            p.protocol.to_owned(),
            p.port.clone(),
            p.address.clone(),
            p.purpose.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    if config.turn.mode == turn::Mode::External {
        out.push_str(&format!(
            "\nTURN is external ({}): it needs no port here, but participants must reach it, and it must reach the media port.\n",
            config.turn.urls.join(", ")
        ));
    }
    out
}

pub fn main(args: Args) -> ExitCode {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("convene: error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let mut config = config;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let ports = list(&config, Some(media_addr(&config)));
    print!("{}", render(&config, &ports));
    ExitCode::SUCCESS
}

/// The media UDP socket address from `[media]`.
pub fn media_addr(config: &Config) -> SocketAddr {
    SocketAddr::new(config.media.bind, config.media.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn defaults_need_http_and_media() {
        let c = Config::default();
        let ports = list(&c, Some(media_addr(&c)));
        let summary: Vec<(&str, &str)> = ports
            .iter()
            .map(|p| (p.protocol, p.port.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("tcp", "8080"), ("udp", "10000"), ("tcp", "10000")]
        );
        assert!(ports[0].purpose.starts_with("HTTP:"));
    }

    #[test]
    fn https_acme_and_embedded_turn_are_listed() {
        let c = config(
            "[server]\nlisten = \"0.0.0.0:443\"\n\
             [tls]\nmode = \"acme\"\nnames = [\"meet.example.org\"]\nhttp_listen = \"0.0.0.0:80\"\n\
             [tls.acme]\nchallenge = \"http_01\"\n\
             [turn]\nmode = \"embedded\"\nsecret = \"s\"\nrelay_min_port = 50000\nrelay_max_port = 50999\n",
        );
        let ports = list(&c, Some(media_addr(&c)));
        let summary: Vec<(&str, &str)> = ports
            .iter()
            .map(|p| (p.protocol, p.port.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("tcp", "443"),
                ("tcp", "80"),
                ("udp", "10000"),
                ("tcp", "10000"),
                ("udp", "3478"),
                ("tcp", "3478"),
                ("udp", "50000-50999")
            ]
        );
        assert!(ports[0].purpose.starts_with("HTTPS"));
        assert!(ports[0].purpose.contains("TURN over TLS"));
        assert!(ports[1].purpose.contains("http-01"));
        let table = render(&c, &ports);
        assert!(table.lines().next().unwrap().starts_with("PROTO"));
        assert_eq!(table.lines().count(), 8);
    }

    #[test]
    fn media_tcp_port_follows_config() {
        let media_tcp = |text: &str| {
            let c = config(text);
            list(&c, Some(media_addr(&c)))
                .into_iter()
                .filter(|p| p.protocol == "tcp" && p.purpose.contains("ICE-TCP"))
                .map(|p| p.port)
                .collect::<Vec<_>>()
        };
        assert_eq!(media_tcp("[media]\nport = 20000\n"), ["20000"]);
        assert_eq!(media_tcp("[media]\ntcp_port = 443\n"), ["443"]);
        assert!(media_tcp("[media]\ntcp = false\n").is_empty());
    }

    #[test]
    fn external_turn_is_a_note_not_a_port() {
        let c = config(
            "[turn]\nmode = \"external\"\nsecret = \"s\"\nurls = [\"turn:turn.example.org:3478\"]\n",
        );
        let ports = list(&c, Some(media_addr(&c)));
        assert_eq!(ports.len(), 3);
        assert!(render(&c, &ports).contains("TURN is external (turn:turn.example.org:3478)"));
    }
}
