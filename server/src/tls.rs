//! TLS for pgwire and the REST API, from PEM files (`--tls-cert`, `--tls-key`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// A TLS server configuration for `files`, offering `alpn` protocols.
fn server_config(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .with_context(|| format!("cannot read TLS certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "TLS certificate file {} holds no PEM certificate",
            files.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read TLS private key {}", files.key.display()))?;
    // An explicit provider: other crates may enable a second one, and then rustls has no
    // process default.
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "TLS key {} does not fit certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The acceptor for pgwire's SSLRequest and direct TLS (ALPN `postgresql`).
pub fn pgwire_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(server_config(files, &[b"postgresql"])?))
}

/// HTTPS for the REST API: accepts TCP connections and completes the TLS handshake.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, files: &TlsFiles) -> anyhow::Result<Self> {
        Ok(TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(server_config(files, &[b"http/1.1"])?),
        })
    }
}

/// A client that does not finish its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "REST accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "REST TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "REST TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
