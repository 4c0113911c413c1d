//! Serving the portal on a listener: HTTP/1.1 connections, over TLS (rustls) when given a
//! certificate and key, within limits: at most [`Connections::max`] connections at once (more
//! wait in the kernel's accept queue), a request's headers read within
//! [`Connections::header_timeout`] (which also closes a kept-alive connection left idle that
//! long, and bounds the TLS handshake), and a graceful stop that lets the requests in flight
//! finish.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::PortalError;

/// How connections are served.
#[derive(Clone)]
pub struct Connections {
    /// TLS, when the portal serves HTTPS itself.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The most connections served at once.
    pub max: usize,
    /// How long a client may take to send a request's headers (and to finish the TLS
    /// handshake); a kept-alive connection idle this long is closed.
    pub header_timeout: Duration,
}

impl Default for Connections {
    /// Plain HTTP, 512 connections, 30 seconds.
    fn default() -> Self {
        Connections {
            tls: None,
            max: 512,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// The TLS configuration of a certificate chain and its private key, both PEM files. The key
/// file must not be readable by group or others (mode 0600 or stricter): a key anyone on the
/// machine can read is refused, not served.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, PortalError> {
    let tls = |why: String| PortalError::Tls(why);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key)
            .map_err(|e| tls(format!("{}: {e}", key.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(tls(format!(
                "{} is readable by others (mode {:o}): make it private (chmod 600)",
                key.display(),
                mode & 0o777
            )));
        }
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(tls(format!("{}: no certificate in it", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls(format!("{}: no private key read: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| tls(format!("the certificate and key do not make a pair: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` as `conn` says until `shutdown` completes, then waits for
/// the requests in flight.
pub(crate) async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    conn: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PortalError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let slots = Arc::new(tokio::sync::Semaphore::new(conn.max.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let acceptor = conn.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(|e| PortalError::Io {
                addr: addr.clone(),
                source: std::io::Error::other(e),
            })?,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                // A connection that failed before it was accepted (reset, out of descriptors
                // for a moment): the next one is served.
                Err(e) => {
                    eprintln!("mailaudit portal: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let timeout = conn.header_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move { tower_service::Service::call(&mut router, req).await }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(true);
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(timeout, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The client address a request came from (set by [`serve_router`]; none for a request the
/// router is called with in process).
pub(crate) fn peer(req: &axum::extract::Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}
