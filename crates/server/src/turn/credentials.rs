//! Time-limited TURN credentials in the shared-secret scheme coturn checks with `use-auth-secret`:
//! username `<expiry unix seconds>:<id>`, password base64(HMAC-SHA1(secret, username)).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD};

/// One entry of a browser's `RTCConfiguration.iceServers`: the wire type the `welcome` message carries.
pub use convene_proto::IceServer;

/// The password for `username`.
pub fn password(secret: &str, username: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        secret.as_bytes(),
    );
    STANDARD.encode(aws_lc_rs::hmac::sign(&key, username.as_bytes()).as_ref())
}

/// A username valid until `now + lifetime` for participant `id`, and its password.
pub fn mint(secret: &str, id: &str, now: SystemTime, lifetime: Duration) -> (String, String) {
    let expiry = (now + lifetime)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let username = format!("{expiry}:{id}");
    let password = password(secret, &username);
    (username, password)
}

/// Why a username is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("username {0:?} does not start with an expiry time")]
    Malformed(String),
    #[error("username {0:?} has expired")]
    Expired(String),
}

/// The expiry check the server applies before deriving the key; the password itself is checked by
/// the TURN message integrity, which needs the derived key.
pub fn check_expiry(username: &str, now: SystemTime) -> Result<(), Refused> {
    // coturn reads the number before the first separator; a bare number is also accepted there.
    let stamp = username.split(':').next().unwrap_or("");
    let expiry: u64 = stamp
        .parse()
        .map_err(|_| Refused::Malformed(username.to_owned()))?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if expiry < now {
        return Err(Refused::Expired(username.to_owned()));
    }
    Ok(())
}

/// A TURN URL split into what a probe needs: host, port, and whether it is TCP (or TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl {
    pub host: String,
    pub port: u16,
    pub tcp: bool,
    pub tls: bool,
}

/// Parses `turn:host[:port][?transport=udp|tcp]` and `turns:...` (RFC 7065).
pub fn parse_url(url: &str) -> Result<TurnUrl, String> {
    let bad = |why: &str| format!("turn url {url:?}: {why}");
    let (tls, rest) = if let Some(r) = url.strip_prefix("turns:") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("turn:") {
        (false, r)
    } else {
        return Err(bad("must start with turn: or turns:"));
    };
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let tcp = match query {
        "" => tls,
        "transport=udp" if !tls => false,
        "transport=tcp" => true,
        _ => {
            return Err(bad(
                "the only query allowed is ?transport=udp or ?transport=tcp",
            ));
        }
    };
    let default_port = if tls { 5349 } else { 3478 };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if after.is_empty() => default_port,
            None => return Err(bad("junk after ]")),
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
            None => (hostport.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(TurnUrl {
        host,
        port,
        tcp,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_coturns_scheme() {
        // Reference value: printf %s '1700000000:alice' | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(
            password("north", "1700000000:alice"),
            "Cd/49soE35ICqcJF/bCTn8Z4OyE="
        );
    }

    #[test]
    fn minted_usernames_carry_the_expiry_and_the_id() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let (user, pass) = mint("s", "p1", now, Duration::from_secs(60));
        assert_eq!(user, "1060:p1");
        assert_eq!(pass, password("s", "1060:p1"));
        assert!(check_expiry(&user, now).is_ok());
        assert_eq!(
            check_expiry(&user, now + Duration::from_secs(61)),
            Err(Refused::Expired(user.clone()))
        );
        assert!(matches!(
            check_expiry("alice", now),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse_url("turn:turn.example.org?transport=tcp").unwrap(),
            TurnUrl {
                host: "turn.example.org".into(),
                port: 3478,
                tcp: true,
                tls: false
            }
        );
        assert_eq!(
            parse_url("turns:[2001:db8::1]:443?transport=tcp").unwrap(),
            TurnUrl {
                host: "2001:db8::1".into(),
                port: 443,
                tcp: true,
                tls: true
            }
        );
        assert_eq!(parse_url("turn:10.0.0.1:3479").unwrap().port, 3479);
        assert!(parse_url("stun:x").is_err());
        assert!(parse_url("turn:x:y").is_err());
        assert!(parse_url("turn:x?transport=sctp").is_err());
    }
}
