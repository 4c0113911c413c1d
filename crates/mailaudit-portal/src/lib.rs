//! mailaudit's self-hosted web portal (`mailaudit serve`): server-rendered HTML over the store.
//!
//! Pages ([`pages`]): the fleet overview (`/`, `?customer=NAME`), one domain (`/domains/{domain}`:
//! findings, score history, the checklist with tick/reopen forms, the remediation guide), its
//! printable guide (`/domains/{domain}/guide`), the check catalogue (`/checks`, `/checks/{ID}`)
//! and `/healthz`. Everything is read through the [`Store`] trait and presented with the core's
//! functions (`guide::build`, `history::diff`, the catalogue) and the guide's HTML renderer
//! ([`guide_html`], also `mailaudit guide --format html`);
//! the portal does no DNS and no SMTP. The only write is a checklist item's state, through
//! [`Store::set_item_state`], as `mailaudit checklist --done/--reopen` does.
//!
//! There is no authentication yet. [`check_listen`] refuses a non-loopback address unless the
//! caller says `public`; on loopback, requests must name a loopback host (`Host:`), which stops
//! DNS-rebinding pages from reading the portal through a victim's browser, and a checklist
//! POST must come from the portal's own origin. Pages carry a strict Content-Security-Policy
//! (no script at all); every stored value is escaped ([`html`]).
//!
//! Store failures give a 500 page (the cause is logged to standard error, the page says only
//! that the store failed); unknown domains, checks and checklist keys a 404 page; nothing
//! panics on any input.
#![warn(missing_docs)]

pub mod dane_html;
pub mod guide_html;
mod html;
pub mod pages;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mailaudit_store::{Store, StoreError};

/// Errors of the portal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortalError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The application layer failed (a stored audit this version cannot read).
    #[error(transparent)]
    App(#[from] mailaudit_app::AppError),
    /// `--listen` is not `ADDR:PORT`.
    #[error("invalid listen address {0:?}: expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")]
    BadListen(String),
    /// A non-loopback address without `public`.
    #[error(
        "refusing to listen on {0}: the portal has no authentication yet, so it only listens on a \
         loopback address (127.0.0.1, ::1) unless --public is given"
    )]
    NotLoopback(SocketAddr),
    /// Binding or serving failed.
    #[error("portal on {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How the portal runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortalOptions {
    /// Listening on a non-loopback address was asked for (`--public`): any `Host:` is accepted.
    /// When false, only requests naming a loopback host (`localhost`, `127.0.0.1`, `[::1]`,
    /// any port) are served; others get 403 (DNS-rebinding protection).
    pub public: bool,
}

/// The state every handler gets.
#[derive(Clone)]
pub struct Portal {
    /// The store.
    pub store: Arc<dyn Store>,
    /// How it runs.
    pub options: PortalOptions,
}

/// The portal's router, ready for `axum::serve` (or `tower::ServiceExt::oneshot` in tests).
pub fn router(store: Arc<dyn Store>, options: PortalOptions) -> axum::Router {
    pages::router(Portal { store, options })
}

/// Parses `--listen` and applies the loopback rule: a non-loopback address needs `public`.
/// `localhost:PORT` means `127.0.0.1:PORT`.
pub fn check_listen(listen: &str, public: bool) -> Result<SocketAddr, PortalError> {
    let listen = listen.trim();
    let addr = match listen.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| PortalError::BadListen(listen.to_string()))?,
        None => listen
            .parse::<SocketAddr>()
            .map_err(|_| PortalError::BadListen(listen.to_string()))?,
    };
    if !addr.ip().is_loopback() && !public {
        return Err(PortalError::NotLoopback(addr));
    }
    Ok(addr)
}

/// Binds `addr` (see [`check_listen`]).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, PortalError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| PortalError::Io {
            addr: addr.to_string(),
            source,
        })
}

/// Serves the portal on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: PortalOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PortalError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    axum::serve(listener, router(store, options))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| PortalError::Io { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_rule() {
        for (listen, public, ok) in [
            ("127.0.0.1:8080", false, true),
            ("[::1]:0", false, true),
            ("localhost:9000", false, true),
            ("127.0.0.2:80", false, true),
            ("0.0.0.0:8080", false, false),
            ("192.0.2.1:8080", false, false),
            ("[::]:8080", false, false),
            ("0.0.0.0:8080", true, true),
        ] {
            assert_eq!(
                check_listen(listen, public).is_ok(),
                ok,
                "{listen} {public}"
            );
        }
        assert!(matches!(
            check_listen("0.0.0.0:8080", false),
            Err(PortalError::NotLoopback(_))
        ));
        for bad in ["", "8080", "localhost", "localhost:x", "example.com:80"] {
            assert!(
                matches!(check_listen(bad, true), Err(PortalError::BadListen(_))),
                "{bad}"
            );
        }
    }
}
