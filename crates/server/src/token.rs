//! Jitsi-style JWTs: the `[auth]` config section, verification of `?jwt=` tokens (HS256, RS256), and
//! `convene token`, which mints one from the configured secret.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// How participants are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Anyone may join; a valid token still gives its name and role, an invalid one is refused.
    Open,
    /// Every participant needs a valid token.
    Token,
    /// Token holders, and guests without a token while a token-holding moderator is in the room.
    GuestsAfterModerator,
}

/// `[auth]`: tokens and the admin API's bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mode: AuthMode,
    /// HS256 shared secret (Jitsi's `app_secret`). Also what `convene token` signs with.
    pub secret: String,
    /// PEM file with an RSA public key, to accept RS256 tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` (Jitsi's `app_id`); empty accepts any.
    pub issuer: String,
    /// Required `aud`; empty accepts any.
    pub audience: String,
    /// Tolerance for clock differences when checking `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Bearer token of the admin API (`/api/v1/rooms...`); empty disables the admin API.
    pub admin_token: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: AuthMode::Open,
            secret: String::new(),
            public_key_file: None,
            issuer: String::new(),
            audience: String::new(),
            leeway: Duration::from_secs(30),
            admin_token: String::new(),
        }
    }
}

/// The claims Convene reads and writes, in Jitsi's shape. Unknown claims are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A string or a list of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// A room name, or `*` for every room.
    pub room: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub context: Context,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub features: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct User {
    /// Issuers send strings or numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// `true` or `"true"` (Jitsi's token_moderation plugin accepts both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator: Option<serde_json::Value>,
    /// `owner` or `moderator` also grant the role (Jitsi's token_affiliation plugin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliation: Option<String>,
}

impl Claims {
    /// Jitsi's rule: a token that lists features allows recording only if `recording` is true.
    pub fn may_record(&self) -> Option<bool> {
        let features = &self.context.features;
        if features.is_empty() {
            return None;
        }
        Some(match features.get("recording") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        })
    }

    pub fn is_moderator(&self) -> bool {
        let user = &self.context.user;
        let flag = match &user.moderator {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        flag || matches!(user.affiliation.as_deref(), Some("owner" | "moderator"))
    }
}

/// Why a token was refused. The text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted by this server")]
    Algorithm,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    Issuer,
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token is for another room")]
    WrongRoom,
    #[error("no token secret is configured ([auth] secret)")]
    NoSecret,
}

/// Checks tokens against the configured keys. Built once at start-up.
pub struct Verifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Reads the public key file, if any. Errors name the file and the problem.
    pub fn new(config: &Config) -> Result<Self, String> {
        let hs256 =
            (!config.secret.is_empty()).then(|| DecodingKey::from_secret(config.secret.as_bytes()));
        let rs256 = match &config.public_key_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("cannot read [auth] public_key_file {}: {e}", path.display())
                })?;
                Some(DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    format!(
                        "[auth] public_key_file {} is not an RSA public key in PEM: {e}",
                        path.display()
                    )
                })?)
            }
        };
        if config.mode != AuthMode::Open && hs256.is_none() && rs256.is_none() {
            return Err(
                "[auth] mode needs tokens but neither `secret` nor `public_key_file` is set".into(),
            );
        }
        Ok(Self {
            hs256,
            rs256,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
        })
    }

    /// Verifies `token` for canonical room name `room`.
    pub fn verify(&self, token: &str, room: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or(TokenError::Algorithm)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if self.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&self.issuer]);
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&self.audience]);
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer,
            ErrorKind::InvalidAudience => TokenError::Audience,
            ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
            ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
            // Claims are decoded into our struct first, so a missing required claim shows up as a serde error.
            ErrorKind::Json(e) => missing_field(&e.to_string())
                .map_or(TokenError::Malformed, |f| {
                    TokenError::MissingClaim(f.to_owned())
                }),
            _ => TokenError::Malformed,
        })?;
        let claims = data.claims;
        if claims.room != "*" && claims.room.to_lowercase() != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

/// The field name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next()
}

/// Mints an HS256 token for `room` (or `*`) with the configured secret, issuer and audience.
pub fn mint(
    config: &Config,
    room: &str,
    name: &str,
    moderator: bool,
    ttl: Duration,
    now: SystemTime,
) -> Result<String, TokenError> {
    if config.secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let or_default = |s: &str| {
        if s.is_empty() {
            "convene".to_owned()
        } else {
            s.to_owned()
        }
    };
    let claims = Claims {
        iss: Some(or_default(&config.issuer)),
        aud: Some(or_default(&config.audience).into()),
        sub: Some("*".into()),
        room: room.to_owned(),
        exp: now + ttl.as_secs(),
        nbf: Some(now),
        context: Context {
            user: User {
                name: Some(name.to_owned()),
                moderator: Some(moderator.into()),
                ..User::default()
            },
            features: serde_json::Map::new(),
        },
    };
    let key = EncodingKey::from_secret(config.secret.as_bytes());
    // Encoding our own claims with an HMAC key cannot fail; map it anyway rather than unwrap.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|_| TokenError::Malformed)
}

/// `convene token`: mint a participant token from the configured secret.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Config file (TOML) holding `[auth] secret`.
    #[arg(long, short, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Room the token is valid for, or `*` for every room.
    #[arg(long)]
    pub room: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Grant the moderator role.
    #[arg(long)]
    pub moderator: bool,
    /// Lifetime, e.g. `1h`, `30m`, `7d`.
    #[arg(long, default_value = "1h", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub ttl: Duration,
}

/// Runs `convene token`: prints the token on stdout.
pub fn run_cli(args: &TokenArgs) -> Result<(), crate::Error> {
    let config = match &args.config {
        Some(path) => crate::config::Config::load(path)?,
        None => crate::config::Config::default(),
    };
    let room = if args.room == "*" {
        args.room.clone()
    } else {
        convene_conference::canonical_room_name(&args.room, config.conference.room_name_max_len)
            .map_err(|e| crate::Error::Startup(format!("--room: {e}")))?
    };
    let token = mint(
        &config.auth,
        &room,
        &args.name,
        args.moderator,
        args.ttl,
        SystemTime::now(),
    )
    .map_err(|e| crate::Error::Startup(e.to_string()))?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            secret: "s3cret-s3cret-s3cret".into(),
            ..Config::default()
        }
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn minted_tokens_verify_and_carry_name_and_role() {
        let c = config();
        let v = Verifier::new(&c).unwrap();
        let t = mint(
            &c,
            "standup",
            "Ada",
            true,
            Duration::from_secs(3600),
            SystemTime::now(),
        )
        .unwrap();
        let claims = v.verify(&t, "standup").unwrap();
        assert_eq!(claims.context.user.name.as_deref(), Some("Ada"));
        assert!(claims.is_moderator());
        let t = mint(
            &c,
            "standup",
            "Bob",
            false,
            Duration::from_secs(3600),
            SystemTime::now(),
        )
        .unwrap();
        assert!(!v.verify(&t, "standup").unwrap().is_moderator());
        assert_eq!(v.verify(&t, "other"), Err(TokenError::WrongRoom));
    }

    #[test]
    fn jitsi_claim_shapes_are_understood() {
        let v = Verifier::new(&config()).unwrap();
        let base = |user: serde_json::Value, room: &str| {
            sign(
                serde_json::json!({"iss": "app", "aud": "jitsi", "sub": "meet.example.org", "room": room,
                    "exp": now() + 60, "context": {"user": user, "features": {"recording": true}, "group": "x"}}),
                "s3cret-s3cret-s3cret",
            )
        };
        let moderator = |user| v.verify(&base(user, "*"), "any").unwrap().is_moderator();
        assert!(moderator(serde_json::json!({"moderator": "true"})));
        assert!(moderator(serde_json::json!({"moderator": true})));
        assert!(moderator(serde_json::json!({"affiliation": "owner"})));
        assert!(moderator(serde_json::json!({"affiliation": "moderator"})));
        assert!(!moderator(
            serde_json::json!({"moderator": "false", "id": 42})
        ));
        assert!(!moderator(serde_json::json!({"affiliation": "member"})));
        let claims = v.verify(&base(serde_json::json!({}), "*"), "any").unwrap();
        assert_eq!(claims.may_record(), Some(true));
        let mut claims = claims;
        claims
            .context
            .features
            .insert("livestreaming".into(), true.into());
        claims.context.features.remove("recording");
        assert_eq!(claims.may_record(), Some(false));
        claims.context.features.clear();
        assert_eq!(claims.may_record(), None);
        // The room claim is compared case-insensitively with the canonical name.
        assert!(
            v.verify(&base(serde_json::json!({}), "StandUp"), "standup")
                .is_ok()
        );
    }

    #[test]
    fn bad_tokens_are_refused_with_a_reason() {
        let c = Config {
            issuer: "app".into(),
            audience: "convene".into(),
            leeway: Duration::ZERO,
            ..config()
        };
        let v = Verifier::new(&c).unwrap();
        let claims = |patch: serde_json::Value| {
            let mut base =
                serde_json::json!({"iss": "app", "aud": "convene", "room": "r", "exp": now() + 60});
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    base.as_object_mut().unwrap().remove(k);
                } else {
                    base[k] = val.clone();
                }
            }
            base
        };
        let secret = "s3cret-s3cret-s3cret";
        assert!(
            v.verify(&sign(claims(serde_json::json!({})), secret), "r")
                .is_ok()
        );
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({})), "wrong-secret"), "r"),
            Err(TokenError::Signature)
        );
        assert_eq!(
            v.verify(
                &sign(claims(serde_json::json!({"exp": now() - 10})), secret),
                "r"
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.verify(
                &sign(claims(serde_json::json!({"nbf": now() + 600})), secret),
                "r"
            ),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            v.verify(
                &sign(claims(serde_json::json!({"iss": "other"})), secret),
                "r"
            ),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            v.verify(
                &sign(claims(serde_json::json!({"aud": "other"})), secret),
                "r"
            ),
            Err(TokenError::Audience)
        );
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({"exp": null})), secret), "r"),
            Err(TokenError::MissingClaim("exp".into()))
        );
        assert_eq!(
            v.verify(
                &sign(claims(serde_json::json!({"room": null})), secret),
                "r"
            ),
            Err(TokenError::MissingClaim("room".into()))
        );
        assert_eq!(v.verify("not.a.token", "r"), Err(TokenError::Malformed));
        let rs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(serde_json::json!({})),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&rs, "r"), Err(TokenError::Algorithm));
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let c = Config {
            mode: AuthMode::Token,
            public_key_file: Some(format!("{fixtures}/jwt-rs256-public.pem").into()),
            ..Config::default()
        };
        let v = Verifier::new(&c).unwrap();
        let private = std::fs::read(format!("{fixtures}/jwt-rs256-private.pem")).unwrap();
        let claims = serde_json::json!({"room": "r", "exp": now() + 60,
            "context": {"user": {"name": "Rita", "affiliation": "owner"}}});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(&private).unwrap(),
        )
        .unwrap();
        let verified = v.verify(&token, "r").unwrap();
        assert!(verified.is_moderator());
        assert_eq!(verified.context.user.name.as_deref(), Some("Rita"));
        // Without a secret, HS256 tokens are refused rather than checked against an empty key.
        assert_eq!(
            v.verify(&sign(claims, "s3cret-s3cret-s3cret"), "r"),
            Err(TokenError::Algorithm)
        );
        let bad = Config {
            public_key_file: Some(format!("{fixtures}/jwt-rs256-private.pem.missing").into()),
            ..c
        };
        assert!(Verifier::new(&bad).is_err());
    }

    #[test]
    fn token_modes_need_a_key_and_minting_needs_the_secret() {
        let c = Config {
            mode: AuthMode::Token,
            ..Config::default()
        };
        assert!(Verifier::new(&c).is_err());
        assert_eq!(
            mint(
                &c,
                "r",
                "n",
                false,
                Duration::from_secs(1),
                SystemTime::now()
            ),
            Err(TokenError::NoSecret)
        );
        let c = Config {
            public_key_file: Some("/nonexistent/key.pem".into()),
            ..config()
        };
        assert!(
            Verifier::new(&c)
                .unwrap_err()
                .contains("/nonexistent/key.pem")
        );
    }

    #[test]
    fn auth_section_parses_with_defaults() {
        let c: Config =
            toml::from_str("mode = \"guests-after-moderator\"\nsecret = \"x\"").unwrap();
        assert_eq!(c.mode, AuthMode::GuestsAfterModerator);
        assert_eq!(c.leeway, Duration::from_secs(30));
        assert!(toml::from_str::<Config>("sekret = \"x\"").is_err());
    }
}
