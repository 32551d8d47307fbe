//! `tls.mode = "files"`: loads the certificate and key files and reloads them when they change,
//! keeping the last good pair when the new files are unreadable or do not match.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio_util::sync::CancellationToken;

use super::store::{self, CertError, CertStore};

/// What identifies one version of the files: their modification times and sizes.
type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// Reads and checks both files.
pub fn load(cert: &Path, key: &Path) -> Result<rustls::sign::CertifiedKey, CertError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    store::certified_key(
        &cert_pem,
        &key_pem,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
}

/// Loads the files into `store` once (an error here stops start-up: there is nothing to serve yet).
pub fn install(store: &CertStore, cert: &Path, key: &Path) -> Result<(), CertError> {
    let loaded = load(cert, key)?;
    let expiry = loaded
        .end_entity_cert()
        .ok()
        .and_then(|c| store::not_after(c));
    tracing::info!(
        cert = %cert.display(),
        "tls certificate loaded from files, {}",
        store::describe_expiry(expiry)
    );
    store.set(Arc::new(loaded));
    Ok(())
}

/// Polls the files every `interval` and swaps in a new certificate when they changed and load cleanly.
pub async fn watch(
    store: Arc<CertStore>,
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut last = stamp(&cert, &key);
    // Files are often written one after the other (cert, then key): a failure is only reported when
    // the same version still fails one poll later, and then only once until the files change again.
    let mut failed: Option<Stamp> = None;
    let mut reported: Option<Stamp> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = stamp(&cert, &key);
        if now == last {
            continue;
        }
        match load(&cert, &key) {
            Ok(loaded) => {
                let expiry = loaded
                    .end_entity_cert()
                    .ok()
                    .and_then(|c| store::not_after(c));
                store.set(Arc::new(loaded));
                tracing::info!(
                    cert = %cert.display(),
                    "tls certificate files changed: reloaded, {}",
                    store::describe_expiry(expiry)
                );
                last = now;
                failed = None;
                reported = None;
            }
            Err(e) if reported == Some(now) => {
                tracing::debug!("tls certificate files still unusable: {e}");
            }
            Err(e) if failed == Some(now) => {
                tracing::error!(
                    "tls certificate files changed but cannot be used ({e}); still serving the previous certificate"
                );
                reported = Some(now);
            }
            Err(e) => {
                tracing::debug!("tls certificate files changing: {e}");
                failed = Some(now);
            }
        }
    }
}
