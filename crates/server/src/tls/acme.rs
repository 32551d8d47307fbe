//! `tls.mode = "acme"`: gets certificates from an ACME CA (tls-alpn-01 or http-01), keeps the account
//! and certificates in the state directory, and renews before expiry. A failure is logged and retried;
//! the last good certificate keeps being served meanwhile.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    config::{AcmeConfig, Challenge},
    self_signed::{create_private_dir, write_file},
    store::{self, CertStore},
};

/// http-01 tokens and their key authorizations, shared with the plain-HTTP responder.
pub type Http01Tokens = Arc<RwLock<HashMap<String, String>>>;

const ACCOUNT: &str = "account.json";
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";

/// Re-check at least this often even when the certificate is far from expiry (clock jumps, suspend).
const MAX_SLEEP: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("ACME: {0}")]
    Other(String),
    #[error(transparent)]
    Files(#[from] super::self_signed::SelfSignedError),
    #[error("cannot make a key or request: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Cert(#[from] store::CertError),
}

/// The stored account, remembered per directory so switching CAs (staging to production) starts fresh.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

pub struct Acme {
    pub config: AcmeConfig,
    pub names: Vec<String>,
    pub dir: PathBuf,
    pub store: Arc<CertStore>,
    pub tokens: Http01Tokens,
}

impl Acme {
    /// Loads a previously issued certificate from the state directory, if any, so a restart serves at once.
    pub fn load_cached(&self) -> Option<SystemTime> {
        let loaded = super::files::load(&self.dir.join(CERT), &self.dir.join(KEY)).ok()?;
        let leaf = loaded.end_entity_cert().ok()?;
        let have = store::subject_names(leaf);
        if !self
            .names
            .iter()
            .all(|n| have.contains(&n.to_ascii_lowercase()))
        {
            tracing::info!(
                "tls: the stored ACME certificate does not cover tls.names; ordering a new one"
            );
            return None;
        }
        let expiry = store::not_after(leaf);
        tracing::info!(
            "tls: serving the stored ACME certificate for {}, {}",
            self.names.join(", "),
            store::describe_expiry(expiry)
        );
        self.store.set(Arc::new(loaded));
        expiry
    }

    /// Orders when needed, then sleeps until renewal is due; on failure retries after `retry_interval`.
    pub async fn run(self, mut expiry: Option<SystemTime>, shutdown: CancellationToken) {
        loop {
            let due = expiry
                .and_then(|e| e.checked_sub(self.config.renew_before))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
            if !wait.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => continue,
                }
            }
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.obtain() => r,
            };
            match attempt {
                Ok(new_expiry) => {
                    tracing::info!(
                        "tls: ACME certificate for {} issued, {}",
                        self.names.join(", "),
                        store::describe_expiry(new_expiry)
                    );
                    expiry = new_expiry;
                }
                Err(e) => {
                    let serving = if self.store.current().is_some() {
                        "still serving the previous certificate"
                    } else {
                        "HTTPS has no certificate until this succeeds"
                    };
                    tracing::error!(
                        "tls: getting a certificate for {} failed: {e}; {serving}; retrying in {}",
                        self.names.join(", "),
                        humantime::format_duration(self.config.retry_interval)
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(self.config.retry_interval) => {}
                    }
                }
            }
        }
    }

    async fn account(&self) -> Result<Account, AcmeError> {
        let builder = || {
            if self.config.ca_file.as_os_str().is_empty() {
                Account::builder()
            } else {
                Account::builder_with_root(&self.config.ca_file)
            }
        };
        let path = self.dir.join(ACCOUNT);
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str::<StoredAccount>(&text) {
                Ok(stored) if stored.directory == self.config.directory => {
                    match builder()?.from_credentials(stored.credentials).await {
                        Ok(account) => return Ok(account),
                        Err(e) => tracing::warn!(
                            "tls: stored ACME account unusable ({e}); registering a new one"
                        ),
                    }
                }
                Ok(_) => tracing::info!("tls: ACME directory changed; registering a new account"),
                Err(e) => tracing::warn!(
                    "tls: {} is unreadable ({e}); registering a new account",
                    path.display()
                ),
            }
        }
        let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.config.directory.clone(),
                None,
            )
            .await?;
        let stored = StoredAccount {
            directory: self.config.directory.clone(),
            credentials,
        };
        let json =
            serde_json::to_vec_pretty(&stored).map_err(|e| AcmeError::Other(e.to_string()))?;
        write_file(&path, &json, true)?;
        tracing::info!(id = account.id(), "tls: registered an ACME account");
        Ok(account)
    }

    /// One complete order: challenges, CSR, certificate; stores and installs the result.
    async fn obtain(&self) -> Result<Option<SystemTime>, AcmeError> {
        create_private_dir(&self.dir)?;
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Identifier::Ip(ip),
                Err(_) => Identifier::Dns(n.clone()),
            })
            .collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut published: Vec<(String, String)> = Vec::new();
        let result = self.answer_challenges(&mut order, &mut published).await;
        let result = match result {
            Ok(()) => self.finish(&mut order).await,
            Err(e) => Err(e),
        };
        for (name, token) in published {
            self.store.clear_challenge(&name);
            self.tokens
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&token);
        }
        result
    }

    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        published: &mut Vec<(String, String)>,
    ) -> Result<(), AcmeError> {
        let kind = match self.config.challenge {
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            Challenge::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Other(format!(
                        "authorization for {} is {other:?}",
                        authz.identifier()
                    )));
                }
            }
            let name = authz.identifier().to_string();
            let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                AcmeError::Other(format!("the CA offers no {kind:?} challenge for {name}"))
            })?;
            let key_auth = challenge.key_authorization();
            match self.config.challenge {
                Challenge::TlsAlpn01 => {
                    let cert = alpn_challenge_cert(&name, key_auth.digest().as_ref())?;
                    self.store.set_challenge(&name, Arc::new(cert));
                }
                Challenge::Http01 => {
                    self.tokens
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(challenge.token.clone(), key_auth.as_str().to_owned());
                }
            }
            published.push((name, challenge.token.clone()));
            challenge.set_ready().await?;
        }
        Ok(())
    }

    async fn finish(
        &self,
        order: &mut instant_acme::Order,
    ) -> Result<Option<SystemTime>, AcmeError> {
        let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Other(format!(
                "order is {status:?} after the challenges: {}",
                order
                    .state()
                    .error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            )));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(self.names.clone())?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&retries).await?;
        let key_pem = key.serialize_pem();
        let certified = store::certified_key(
            chain.as_bytes(),
            key_pem.as_bytes(),
            "ACME certificate",
            "ACME key",
        )?;
        let expiry = certified
            .end_entity_cert()
            .ok()
            .and_then(|c| store::not_after(c));
        // Key first: a crash between the two writes leaves a mismatched pair, which load() rejects.
        write_file(&self.dir.join(KEY), key_pem.as_bytes(), true)?;
        write_file(&self.dir.join(CERT), chain.as_bytes(), false)?;
        self.store.set(Arc::new(certified));
        Ok(expiry)
    }
}

/// The self-signed certificate that answers a tls-alpn-01 validation (RFC 8737 section 3).
fn alpn_challenge_cert(name: &str, digest: &[u8]) -> Result<rustls::sign::CertifiedKey, AcmeError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    // Not through `store::certified_key`: its key check parses the certificate with webpki, which
    // rejects the critical acmeIdentifier extension that this certificate exists to carry.
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Other(format!("challenge key: {e}")))?;
    Ok(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    ))
}

/// Where ACME files live inside the TLS state directory.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("acme")
}
