//! TLS for everything edgewatch sends over the network: rustls with the `ring` crypto
//! provider (it builds with the C compiler the Rust toolchain already needs; aws-lc-rs
//! would want cmake or clang on some hosts), PEM files read with errors that name the
//! file, the agent's client configuration (a CA bundle, else the system's roots), the
//! loopback rule for plain HTTP, and TLS failures said in words (unknown CA, name
//! mismatch) rather than as a chain of library errors.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// The one crypto provider edgewatch uses (ring).
///
/// rustls 0.23.48 marks ring's provider deprecated because ring has no post-quantum key
/// exchange (X25519MLKEM768; aws-lc-rs has it). It is kept on purpose: it builds with only
/// the toolchain's C compiler. TLS 1.3 with X25519 and TLS 1.2 with ECDHE remain.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default provider, for code that builds TLS configurations
/// without naming one. Harmless when a default is already installed.
pub fn install_default_provider() {
    let _ = CryptoProvider::install_default((*provider()).clone());
}

/// Every certificate in a PEM file (a chain, or a CA bundle); none is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in it (expected -----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            pem_error(path, "no private key in it (expected -----BEGIN PRIVATE KEY----- or similar)")
        }
        e => pem_error(path, format!("not a PEM private key file: {e}")),
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| pem_error(path, format!("cannot read it: {e}")))
}

fn pem_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Pem { path: path.to_path_buf(), reason: reason.into() }
}

/// Where a client's trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The CA certificates of this PEM bundle, and no others.
    Bundle(PathBuf),
    /// The system's roots (`/etc/ssl/certs`, via rustls-native-certs; `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` are honoured).
    System,
}

/// A client configuration verifying servers against `roots`.
pub fn client_config(roots: &Roots) -> Result<rustls::ClientConfig> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::Bundle(path) => {
            for cert in read_certs(path)? {
                store.add(cert).map_err(|e| pem_error(path, format!("not a usable CA certificate: {e}")))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                // Every server will be refused as signed by an unknown CA, which says what to do.
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                tracing::warn!("no CA certificates found among the system's roots{why}: give --ca FILE");
            }
        }
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::setting("ca", format!("TLS setup: {e}")))
        .map(|b| b.with_root_certificates(store).with_no_client_auth())
}

/// Is `host` (a URL's host: a name, an IPv4 address, or an IPv6 address with or without
/// brackets) this machine's loopback: 127.0.0.0/8, ::1 (also IPv4-mapped), or `localhost`?
/// Plain HTTP is allowed there without `--insecure-http`, since nothing leaves the host.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => {
            let name = bare.strip_suffix('.').unwrap_or(bare);
            name.eq_ignore_ascii_case("localhost")
        }
    }
}

/// The TLS failure somewhere in `err`'s chain of causes, in words: what went wrong and
/// what to do about it. `None` when the error is not a TLS one.
pub fn failure_reason(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(tls) = as_rustls(e) {
            return Some(explain(tls));
        }
        next = e.source();
    }
    None
}

/// A rustls error itself, or inside `io::Error`s (whose `source()` skips the error they
/// wrap, so they are opened directly; hyper-rustls wraps tokio-rustls's `io::Error` in
/// another).
fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = e;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// One rustls error in words.
pub fn explain(e: &rustls::Error) -> String {
    let what = match e {
        rustls::Error::InvalidCertificate(cert) => certificate_problem(cert),
        rustls::Error::AlertReceived(alert) => return format!("the peer ended the handshake with the alert {alert:?}"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the peer does not speak TLS here, or not as expected"
        }
        other => return other.to_string(),
    };
    format!("{what} ({e})")
}

fn certificate_problem(cert: &CertificateError) -> &'static str {
    match cert {
        CertificateError::UnknownIssuer => "unknown CA: the server's certificate is not signed by a CA trusted here",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "name mismatch: the server's certificate is not valid for the name or address connected to"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "the server's certificate has expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet; check both clocks"
        }
        _ => "the server's certificate was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in
            ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost.", "::ffff:127.0.0.1"]
        {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "198.18.0.1",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "[2001:db8::1]",
            "edgewatch.example.com",
            "localhost.example.com",
            "128.0.0.1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn pem_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = read_certs(&missing).unwrap_err().to_string();
        assert!(err.starts_with(&missing.display().to_string()) && err.contains("cannot read"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let err = read_certs(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no certificate"), "{err}");
        let err = read_key(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no private key"), "{err}");
        let err = client_config(&Roots::Bundle(empty.clone())).unwrap_err().to_string();
        assert!(err.contains("empty.pem"), "{err}");
    }

    #[test]
    fn failures_are_said_in_words() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        assert!(failure_reason(&wrapped).unwrap().starts_with("unknown CA"));
        let twice = std::io::Error::other(wrapped);
        assert!(failure_reason(&twice).unwrap().starts_with("unknown CA"));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(failure_reason(&name).unwrap().starts_with("name mismatch"));
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(failure_reason(&other), None);
    }
}
