//! The `[media]` section of the server configuration.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Media (WebRTC/UDP) settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// UDP port that carries every participant's media (ICE, DTLS, SRTP).
    pub port: u16,
    /// Address the UDP socket binds to. `0.0.0.0` receives on every IPv4 interface.
    pub bind: IpAddr,
    /// Addresses (IPs or host names) that browsers are told to send media to, each announced
    /// as a host candidate on `port`. Empty: every local interface address (loopback included),
    /// which is right for a LAN or a single machine. Behind 1:1 NAT, list the public address.
    pub candidates: Vec<String>,
    /// A participant whose ICE and DTLS have not completed this long after its first offer was
    /// answered is removed.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How often per-session statistics (loss, RTT, NACK and PLI counts) are gathered.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// Most participants with a media session at once; joins beyond it are refused.
    pub max_sessions: usize,
    /// Last-N: each participant receives the camera video of at most this many others, the most
    /// recent speakers; the others' video is paused (screen shares and audio always flow).
    /// 0 forwards every camera. Clients may ask for fewer (`set_last_n`), never for more.
    pub last_n: u32,
    /// ICE over TCP for clients whose UDP is blocked: passive TCP candidates on `tcp_port`
    /// (same addresses as the UDP ones), RFC 4571 framing. Browsers prefer UDP whenever it
    /// works, so this costs nothing for the others.
    pub tcp: bool,
    /// TCP port for ICE-TCP, bound on `bind`. None: the same number as `port` (TCP and UDP
    /// ports are separate, and one number makes one firewall rule for both protocols; with
    /// `port = 0`, the number the UDP socket got).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_port: Option<u16>,
    /// Most ICE-TCP connections at once; later ones are closed at once. A browser opens one
    /// per server candidate it tries, so allow a few per participant.
    pub tcp_max_connections: usize,
    /// Estimate each subscriber's downlink (transport-wide congestion control feedback) and fit
    /// its simulcast layers to it. Off: layers follow tile sizes only, and nothing is paced or
    /// probed (for a LAN whose links never fill).
    pub bandwidth_estimation: bool,
}

impl Config {
    /// The ICE-TCP port to bind, when ICE-TCP is on.
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp.then(|| self.tcp_port.unwrap_or(self.port))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 10000,
            bind: IpAddr::from([0, 0, 0, 0]),
            candidates: Vec::new(),
            connect_timeout: Duration::from_secs(20),
            stats_interval: Duration::from_secs(5),
            max_sessions: 1000,
            last_n: 0,
            tcp: true,
            tcp_port: None,
            tcp_max_connections: 4000,
            bandwidth_estimation: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Root {
        #[serde(default)]
        media: Config,
    }

    #[test]
    fn partial_section_keeps_other_defaults() {
        let root: Root =
            toml::from_str("[media]\nport = 4000\nconnect_timeout = \"5s\"\n").unwrap();
        assert_eq!(root.media.port, 4000);
        assert_eq!(root.media.connect_timeout, Duration::from_secs(5));
        assert_eq!(root.media.stats_interval, Config::default().stats_interval);
        assert!(root.media.candidates.is_empty());
        assert_eq!(root.media.last_n, 0);
        let root: Root = toml::from_str("[media]\nlast_n = 4\n").unwrap();
        assert_eq!(root.media.last_n, 4);
    }

    #[test]
    fn last_n_must_be_a_count() {
        for bad in ["-1", "\"4\"", "2.5", "99999999999"] {
            let err = toml::from_str::<Root>(&format!("[media]\nlast_n = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("last_n"), "{bad}: {err}");
        }
    }

    #[test]
    fn tcp_port_follows_the_udp_port_unless_set() {
        let root: Root = toml::from_str("[media]\nport = 4000\n").unwrap();
        assert_eq!(root.media.tcp_port(), Some(4000));
        let root: Root = toml::from_str("[media]\ntcp_port = 443\n").unwrap();
        assert_eq!(root.media.tcp_port(), Some(443));
        let root: Root = toml::from_str("[media]\ntcp = false\n").unwrap();
        assert_eq!(root.media.tcp_port(), None);
    }

    #[test]
    fn unknown_key_is_rejected_and_named() {
        let err = toml::from_str::<Root>("[media]\nprot = 4000\n").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn default_round_trips() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
    }
}
