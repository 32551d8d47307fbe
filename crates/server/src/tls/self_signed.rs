//! `tls.mode = "self_signed"`: a local certificate authority made on first start and a server
//! certificate signed by it, both kept in the state directory so browsers need to trust the CA only once.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{
    pki_types::{CertificateDer, pem::PemObject},
    sign::CertifiedKey,
};
use time::OffsetDateTime;

use super::store;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";

/// Leaf lifetime: short enough that platforms which cap validity (Apple: 825 days) accept it.
const LEAF_DAYS: i64 = 397;
/// The CA is trusted by hand, so it lives long.
const CA_DAYS: i64 = 3650;
/// A leaf closer than this to expiry is replaced at start-up.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("cannot use state directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Cert(#[from] store::CertError),
}

/// The result: the server certificate, and where the CA is for the "how to trust it" log line.
pub struct SelfSigned {
    pub key: CertifiedKey,
    pub ca_path: PathBuf,
    pub ca_fingerprint: String,
    pub names: Vec<String>,
    pub created_ca: bool,
}

/// The names a LAN trial is reached by, plus the configured ones.
pub fn default_names(extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_ascii_lowercase();
        if !host.is_empty() && host != "localhost" {
            names.push(host);
        }
    }
    for name in extra {
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Loads or creates the CA and the server certificate in `dir`.
pub fn ensure(dir: &Path, names: &[String]) -> Result<SelfSigned, SelfSignedError> {
    create_private_dir(dir)?;
    let (ca_pem, issuer, created_ca) = load_or_create_ca(dir)?;
    let cert_path = dir.join(CERT);
    let key_path = dir.join(KEY);
    let reusable = match super::files::load(&cert_path, &key_path) {
        Ok(existing) => {
            let leaf = existing.end_entity_cert().ok().cloned();
            let covers = leaf.as_ref().is_some_and(|l| {
                let have = store::subject_names(l);
                names.iter().all(|n| have.contains(n))
            });
            let fresh = leaf
                .as_ref()
                .and_then(store::not_after)
                .is_some_and(|t| t > SystemTime::now() + RENEW_BEFORE);
            // A leaf left over from an older CA (the CA files were replaced) must be reissued too.
            let same_ca = existing.cert.get(1).is_some_and(|c| {
                CertificateDer::from_pem_slice(ca_pem.as_bytes()).is_ok_and(|ca| ca == *c)
            });
            (covers && fresh && !created_ca && same_ca).then_some(existing)
        }
        Err(_) => None,
    };
    let key = match reusable {
        Some(key) => key,
        None => {
            let leaf_key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names.to_vec())?;
            params.distinguished_name.push(
                DnType::CommonName,
                names.first().cloned().unwrap_or_default(),
            );
            params.use_authority_key_identifier_extension = true;
            params.key_usages.push(KeyUsagePurpose::DigitalSignature);
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
            let now = OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(LEAF_DAYS);
            let leaf = params.signed_by(&leaf_key, &issuer)?;
            // The chain includes the CA so clients that were given only the leaf can still build a path.
            let chain = format!("{}{}", leaf.pem(), ca_pem);
            write_file(&cert_path, chain.as_bytes(), false)?;
            write_file(&key_path, leaf_key.serialize_pem().as_bytes(), true)?;
            tracing::info!(names = ?names, "tls: issued a new self-signed server certificate");
            super::files::load(&cert_path, &key_path)?
        }
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| store::CertError::NoCertificate(format!("{CA_CERT}: {e}")))?;
    Ok(SelfSigned {
        key,
        ca_path: dir.join(CA_CERT),
        ca_fingerprint: fingerprint(&ca_der),
        names: names.to_vec(),
        created_ca,
    })
}

/// The line that tells an operator how to make browsers accept the certificate.
pub fn trust_hint(s: &SelfSigned) -> String {
    let ca = s.ca_path.display();
    format!(
        "tls: serving a self-signed certificate for {names}; browsers warn until they trust the local CA {ca} \
         (SHA-256 {fp}). Trust it once: Firefox: Settings > Privacy & Security > Certificates > View Certificates > \
         Authorities > Import {ca}; Chrome/Chromium: Settings > Privacy and security > Security > Manage certificates > \
         Authorities > Import; Debian/Ubuntu system-wide: sudo cp {ca} /usr/local/share/ca-certificates/convene.crt \
         && sudo update-ca-certificates; macOS: sudo security add-trusted-cert -d -r trustRoot \
         -k /Library/Keychains/System.keychain {ca}",
        names = s.names.join(", "),
        fp = s.ca_fingerprint,
    )
}

fn load_or_create_ca(
    dir: &Path,
) -> Result<(String, Issuer<'static, KeyPair>, bool), SelfSignedError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    if let (Ok(cert_pem), Ok(key_pem)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) {
        match KeyPair::from_pem(&key_pem).and_then(|key| Issuer::from_ca_cert_pem(&cert_pem, key)) {
            Ok(issuer) => return Ok((cert_pem, issuer, false)),
            Err(e) => tracing::warn!(
                "tls: the local CA in {} is unusable ({e}); making a new one (browsers must trust it again)",
                dir.display()
            ),
        }
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Convene local CA ({})", host.trim()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    let cert = params.self_signed(&key)?;
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok((cert.pem(), Issuer::new(params, key), true))
}

fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SelfSignedError + '_ {
    move |source| SelfSignedError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn create_private_dir(dir: &Path) -> Result<(), SelfSignedError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// Writes via a temporary file and rename, so a crash never leaves half a key; keys are owner-only.
pub(super) fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), SelfSignedError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(data).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_start_reuses_the_ca_and_the_certificate() {
        let dir = std::env::temp_dir().join(format!("convene-selfsigned-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = ensure(&dir, &names).unwrap();
        assert!(first.created_ca);
        let second = ensure(&dir, &names).unwrap();
        assert!(!second.created_ca);
        assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
        assert_eq!(first.key.cert, second.key.cert);
        // A new name reissues the leaf from the same CA.
        let more = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "meet.lan".to_owned(),
        ];
        let third = ensure(&dir, &more).unwrap();
        assert_eq!(third.ca_fingerprint, first.ca_fingerprint);
        assert_ne!(third.key.cert[0], first.key.cert[0]);
        assert!(store::subject_names(&third.key.cert[0]).contains(&"meet.lan".to_owned()));
        let mode = std::fs::metadata(dir.join(KEY)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
