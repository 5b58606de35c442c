//! HTTPS for `listen`: rustls (aws-lc-rs) in front of the same router, with a certificate chain and
//! a key from PEM files, and the bounds of plain HTTP (`referrals_mirror::receiver::http`): the
//! handshake and each request's head within 10 s, at most `--max-connections` at once.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use referrals_mirror::receiver::http;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use tokio::sync::Semaphore;

use crate::stop::Stop;

/// Serves `router` over TLS on `listener` until `stop`, with the chain and key of `files`,
/// at most `max_connections` at once (a connection beyond is closed at once: a 503 cannot be
/// written before a handshake).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    (cert, key): (&Path, &Path),
    max_connections: usize,
    stop: Stop,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config(cert, key)?));
    let places = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.wait() => return Ok(()),
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A client that fails the handshake, or takes longer than a request's head may,
            // gets no answer; the next one is served.
            let handshake = tokio::time::timeout(http::HEADER_TIMEOUT, acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                http::serve_connection(tls, router).await;
            }
            drop(place);
        });
    }
}

fn config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not make a TLS identity")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
