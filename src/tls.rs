//! `edgewatch serve` over HTTPS: the server's rustls configuration from PEM files (ring,
//! as everywhere in edgewatch: `probers::tls`), its reload on SIGHUP, failed handshakes
//! in the log, and the rule for plain HTTP (only on loopback addresses unless `--insecure-http`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context, Result};
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpStream;

/// The certificate chain and private key `serve` answers HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How `serve` may listen on an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    Https,
    /// Plain HTTP on a loopback address: nothing crosses the network.
    PlainLoopback,
    /// Plain HTTP off loopback, because `--insecure-http` said so.
    PlainInsecure,
}

/// The loopback rule: HTTPS anywhere; plain HTTP on 127.0.0.0/8 and ::1, elsewhere only
/// with `--insecure-http`. The error names the flags that would make it work.
pub fn listening(addr: SocketAddr, tls: bool, insecure_http: bool) -> Result<Listening, String> {
    if tls {
        return Ok(Listening::Https);
    }
    if addr.ip().to_canonical().is_loopback() {
        return Ok(Listening::PlainLoopback);
    }
    if insecure_http {
        return Ok(Listening::PlainInsecure);
    }
    Err(format!(
        "refusing to serve plain HTTP on {addr}, which is not a loopback address: agents' tokens \
         would cross the network unencrypted. Give --tls-cert FILE --tls-key FILE (or [api] \
         tls_cert and tls_key in the config file) to serve HTTPS, listen on 127.0.0.1 or ::1, or \
         give --insecure-http (or [api] insecure_http = true) to serve plain HTTP anyway"
    ))
}

/// The server configuration for these files; errors name the file at fault.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let certs = probers::tls::read_certs(&files.cert).context("reading the TLS certificate (--tls-cert)")?;
    let key = probers::tls::read_key(&files.key).context("reading the TLS private key (--tls-key)")?;
    let mut config = rustls::ServerConfig::builder_with_provider(probers::tls::provider())
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("the private key {} does not go with the certificate {}", files.key.display(), files.cert.display())
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads the files again (at a SIGHUP): new handshakes use the new certificate,
/// connections already open keep theirs. A file that cannot be used leaves the current
/// certificate in place, and says why.
pub fn reload(config: &RustlsConfig, files: &TlsFiles) {
    match server_config(files) {
        Ok(new) => {
            config.reload_from_config(new);
            eprintln!(
                "SIGHUP: TLS certificate {} and key {} read again; new connections use them, open ones keep theirs",
                files.cert.display(),
                files.key.display()
            );
        }
        Err(e) => eprintln!("SIGHUP: keeping the current TLS certificate: {e:#}"),
    }
}

/// An acceptor that says each failed TLS handshake with the peer's address and rustls's
/// reason (an agent that does not trust the certificate shows on the server too), around
/// axum-server's rustls acceptor. A peer that closes before saying anything (a TCP health
/// check, a port scan) is said only at debug level.
#[derive(Debug, Clone)]
pub struct LogFailedHandshakes<A>(pub A);

impl<A, S> Accept<TcpStream, S> for LogFailedHandshakes<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().map_or_else(|_| "an unknown peer".to_string(), |a| a.to_string());
        let handshake = self.0.accept(stream, service);
        Box::pin(async move {
            let done = handshake.await;
            if let Err(e) = &done {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!("TLS handshake from {peer}: closed before it began");
                } else {
                    tracing::warn!("TLS handshake from {peer} failed: {e}");
                }
            }
            done
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_insecure() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(listening(at("127.0.0.1:8440"), false, false), Ok(Listening::PlainLoopback));
        assert_eq!(listening(at("127.3.2.1:0"), false, false), Ok(Listening::PlainLoopback));
        assert_eq!(listening(at("[::1]:8440"), false, false), Ok(Listening::PlainLoopback));
        assert_eq!(listening(at("[::ffff:127.0.0.1]:8440"), false, false), Ok(Listening::PlainLoopback));
        for open in ["0.0.0.0:8440", "[::]:8440", "198.18.0.1:8440", "10.1.2.3:80"] {
            let err = listening(at(open), false, false).unwrap_err();
            assert!(err.contains("--tls-cert") && err.contains("--insecure-http"), "{err}");
            assert_eq!(listening(at(open), false, true), Ok(Listening::PlainInsecure));
            assert_eq!(listening(at(open), true, false), Ok(Listening::Https));
        }
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles { cert: dir.path().join("no-cert.pem"), key: dir.path().join("no-key.pem") };
        let err = format!("{:#}", server_config(&files).unwrap_err());
        assert!(err.contains("no-cert.pem") && err.contains("--tls-cert"), "{err}");
    }
}
