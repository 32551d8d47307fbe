//! The `[tls]` config section: how HTTPS is served (certificate files, self-signed, ACME) and which
//! reverse proxies are trusted.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the certificate for `server.listen` comes from; `off` serves plain HTTP.
    pub mode: Mode,
    /// `files` mode: PEM certificate chain (leaf first) and PEM private key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// `files` mode: how often the files are checked for changes (they are reloaded without a restart).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// `self_signed` and `acme`: where keys, certificates and the ACME account are kept.
    /// Empty: `$STATE_DIRECTORY/tls` (set by systemd's `StateDirectory=`), else `./convene-state/tls`.
    pub state_dir: PathBuf,
    /// Host names (or IP addresses) the certificate is for. `acme`: required, each must resolve to this
    /// server. `self_signed`: added to `localhost`, `127.0.0.1`, `::1` and this machine's host name.
    pub names: Vec<String>,
    /// A plain-HTTP listener that answers ACME http-01 challenges and redirects everything else to
    /// HTTPS, usually `0.0.0.0:80`. None: no such listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Trust `X-Forwarded-For`, `-Proto` and `-Host` from `trusted_proxies` (and only from them), for a
    /// reverse proxy in front of Convene that terminates TLS.
    pub behind_proxy: bool,
    /// Addresses (`IP` or `IP/prefix`) of the reverse proxies whose forwarded headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub acme: AcmeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            reload_interval: Duration::from_secs(10),
            state_dir: PathBuf::new(),
            names: Vec::new(),
            http_listen: None,
            behind_proxy: false,
            trusted_proxies: vec![
                IpNet::host(IpAddr::from([127, 0, 0, 1])),
                IpNet::host(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
            ],
            acme: AcmeConfig::default(),
        }
    }
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plain HTTP (for a reverse proxy that terminates TLS, or for localhost trials).
    Off,
    /// `cert_file` and `key_file`, reloaded when they change.
    Files,
    /// A local certificate authority and certificate generated on first start into `state_dir`.
    SelfSigned,
    /// Certificates from an ACME CA (Let's Encrypt by default), renewed automatically.
    Acme,
}

/// `[tls.acme]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's ACME directory URL.
    pub directory: String,
    /// Contact addresses for the account, such as `mailto:admin@example.org`.
    pub contact: Vec<String>,
    /// How the CA checks that we own the names: `tls_alpn_01` (on the HTTPS port, must be 443 from
    /// outside) or `http_01` (needs `http_listen` reachable on port 80).
    pub challenge: Challenge,
    /// Extra PEM root certificate to trust for the CA's own HTTPS (a private or test CA). Empty: the
    /// usual public roots.
    pub ca_file: PathBuf,
    /// Renew when the certificate has less than this left.
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
    /// Wait this long after a failed order before trying again.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            directory: "https://acme-v02.api.letsencrypt.org/directory".to_owned(),
            contact: Vec::new(),
            challenge: Challenge::TlsAlpn01,
            ca_file: PathBuf::new(),
            renew_before: Duration::from_secs(30 * 24 * 3600),
            retry_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Challenge {
    #[serde(rename = "tls_alpn_01")]
    TlsAlpn01,
    #[serde(rename = "http_01")]
    Http01,
}

/// An address range such as `10.0.0.0/8` or a single address such as `127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn host(addr: IpAddr) -> IpNet {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }

    /// Whether `ip` is inside this range. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or IP/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix must be a number from 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// The state directory with the documented fallbacks applied.
    pub fn state_dir(&self) -> PathBuf {
        if !self.state_dir.as_os_str().is_empty() {
            return self.state_dir.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several directories separated by ':'; the first is ours.
            Some(dirs) if !dirs.is_empty() => {
                let first = dirs
                    .to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                PathBuf::from(first).join("tls")
            }
            _ => PathBuf::from("convene-state").join("tls"),
        }
    }

    /// Problems that types alone cannot catch, reported at start-up.
    pub fn validate(&self) -> Result<(), String> {
        match self.mode {
            Mode::Files if self.cert_file.as_os_str().is_empty() => {
                Err("tls.mode = \"files\" needs tls.cert_file and tls.key_file".to_owned())
            }
            Mode::Files if self.key_file.as_os_str().is_empty() => {
                Err("tls.mode = \"files\" needs tls.key_file".to_owned())
            }
            Mode::Acme if self.names.is_empty() => Err(
                "tls.mode = \"acme\" needs tls.names: the host names to get a certificate for"
                    .to_owned(),
            ),
            Mode::Acme
                if self.acme.challenge == Challenge::Http01 && self.http_listen.is_none() =>
            {
                Err(
                    "tls.acme.challenge = \"http_01\" needs tls.http_listen (port 80 from outside)"
                        .to_owned(),
                )
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_nets_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.9.9.9".parse().unwrap()));
        let host: IpNet = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("example.org".parse::<IpNet>().is_err());
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!(host.to_string(), "::1");
    }

    #[test]
    fn files_mode_needs_both_files() {
        let config = Config {
            mode: Mode::Files,
            cert_file: "cert.pem".into(),
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().contains("key_file"));
    }
}
