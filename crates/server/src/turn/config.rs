//! The `[turn]` config section: an embedded TURN server or an external one (coturn), and the
//! shared secret both use for time-limited credentials.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// `[turn]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    /// The shared secret of the credential scheme (coturn's `static-auth-secret` with
    /// `use-auth-secret`). Required unless `mode = "off"`.
    pub secret: String,
    /// How long credentials handed to a participant stay valid.
    #[serde(with = "humantime_serde")]
    pub credential_lifetime: Duration,
    /// The TURN URLs given to browsers (`turn:host:3478?transport=udp`, `turns:host:5349?transport=tcp`).
    /// `external`: required. `embedded`: empty means `turn:<host the browser used>:<port>` over UDP and TCP.
    pub urls: Vec<String>,
    /// `embedded`: UDP and TCP listen address.
    pub listen: SocketAddr,
    /// `embedded`: the realm in TURN messages.
    pub realm: String,
    /// `embedded`: the address relayed candidates announce. None: `listen`'s address if it is not
    /// unspecified, else this machine's primary address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_ip: Option<IpAddr>,
    /// `embedded`: UDP ports for relayed traffic (one per allocation), for firewall rules.
    pub relay_min_port: u16,
    pub relay_max_port: u16,
    /// `embedded`: relay to any address. false: only to the media UDP port (`media.port`), which is all
    /// Convene's participants need, so the relay cannot be used to reach other services.
    pub relay_to_any_peer: bool,
    /// `embedded`, when Convene serves HTTPS itself: also accept TURN over TLS on the HTTPS port (told
    /// apart from HTTPS by the `stun.turn` ALPN or, without ALPN, by its first byte) and offer
    /// `turns:<host>:<https port>?transport=tcp`, for networks that let nothing but TLS on 443 out.
    pub tls_on_https: bool,
    /// `external`: how often the TURN server is checked; while it does not answer, clients are not
    /// offered it.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No TURN: browsers reach the media port directly or not at all.
    Off,
    /// Convene runs a TURN server itself.
    Embedded,
    /// A TURN server elsewhere (coturn) with the same secret; Convene only hands out credentials.
    External,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            secret: String::new(),
            credential_lifetime: Duration::from_secs(24 * 3600),
            urls: Vec::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 3478)),
            realm: "convene".to_owned(),
            relay_ip: None,
            relay_min_port: 49152,
            relay_max_port: 65535,
            relay_to_any_peer: false,
            tls_on_https: true,
            probe_interval: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Problems that types alone cannot catch, reported at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == Mode::Off {
            return Ok(());
        }
        if self.secret.is_empty() {
            return Err("turn.secret is required when turn.mode is not \"off\"".to_owned());
        }
        if self.mode == Mode::External && self.urls.is_empty() {
            return Err(
                "turn.mode = \"external\" needs turn.urls, e.g. [\"turn:turn.example.org:3478\"]"
                    .to_owned(),
            );
        }
        if self.relay_min_port == 0 || self.relay_min_port > self.relay_max_port {
            return Err(
                "turn.relay_min_port must be 1 or more and at most turn.relay_max_port".to_owned(),
            );
        }
        for url in &self.urls {
            super::credentials::parse_url(url)?;
        }
        Ok(())
    }
}
