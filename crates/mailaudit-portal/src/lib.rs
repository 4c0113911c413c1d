//! mailaudit's self-hosted web portal (`mailaudit serve`): server-rendered HTML over the store.
//!
//! Pages ([`pages`]): the fleet overview (`/`, `?customer=NAME`), one domain (`/domains/{domain}`:
//! findings, score history, the checklist with tick/reopen forms, the remediation guide), its
//! printable guide (`/domains/{domain}/guide`), the check catalogue (`/checks`, `/checks/{ID}`)
//! and `/healthz`; with accounts, `/login` (and `/login/totp`, the second factor), `/logout`,
//! `/account` (two-factor enrolment, the user's own password), with single sign-on
//! ([`sso`]) `/login/sso` and `/login/sso/callback`, and, for admins,
//! `/admin/users` and `/admin/audit` (`.csv`). Everything is read through the [`Store`] trait
//! and presented with the core's functions (`guide::build`, `history::diff`, the catalogue)
//! and the guide's HTML renderer ([`guide_html`], also `mailaudit guide --format html`); the
//! portal does no DNS and no SMTP. Its writes are a checklist item's state, through
//! [`Store::set_item_state`], as `mailaudit checklist --done/--reopen` does, and, with
//! accounts, sessions, the audit log and (admins) users.
//!
//! Accounts ([`auth`], [`access`]): once the store has portal users, everyone signs in, with
//! a server-side session; admins and technicians see every customer, a viewer only its own
//! (read-only), and every read of customer data is scoped in one place (`access::Reads`).
//! Without users, the portal is one person's on loopback: [`check_listen`] refuses a
//! non-loopback address unless the caller says `public` (or the store has an admin); on
//! loopback, requests must name a loopback host (`Host:`), which stops DNS-rebinding pages from
//! reading the portal through a victim's browser. Every POST must come from the portal's own
//! origin and, with accounts, carry the session's CSRF token. Pages carry a strict
//! Content-Security-Policy (nothing external; one script of the portal's own, an audit run's
//! live progress); every stored value is escaped ([`html`]).
//!
//! Store failures give a 500 page (the cause is logged to standard error, the page says only
//! that the store failed); unknown domains, checks and checklist keys a 404 page; nothing
//! panics on any input.
#![warn(missing_docs)]

pub mod access;
pub mod auth;
pub mod charts;
pub mod dane_html;
pub mod guide_html;
mod html;
pub mod pages;
pub mod report_html;
pub mod serving;
pub mod sso;

pub use serving::{Connections, tls_config};

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
    /// A non-loopback address without an admin account (or `public`).
    #[error(
        "refusing to listen on {0}: the store has no admin, and without one the portal only \
         listens on a loopback address (127.0.0.1, ::1); add the first admin with \
         `mailaudit user add --admin NAME` (or, behind an authenticating reverse proxy, pass \
         --public)"
    )]
    NotLoopback(SocketAddr),
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
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
    /// Any `Host:` is accepted (`--public`, or a non-loopback address with accounts). When
    /// false, only requests naming a loopback host (`localhost`, `127.0.0.1`, `[::1]`, any
    /// port) are served; others get 403 (DNS-rebinding protection).
    pub public: bool,
    /// The portal is reached over HTTPS: cookies are `Secure`.
    pub secure_cookies: bool,
    /// The portal is behind a reverse proxy on this machine (`--behind-https-proxy`): the
    /// client's address is the last one of `X-Forwarded-For` when the request comes from a
    /// loopback address.
    pub behind_proxy: bool,
    /// A session unused this long (seconds) ends.
    pub session_idle_secs: i64,
    /// A session ends this long (seconds) after sign-in, however it is used.
    pub session_max_secs: i64,
}

impl PortalOptions {
    /// Half an hour unused ends a session.
    pub const IDLE: i64 = 30 * 60;
    /// Twelve hours after sign-in, a session ends.
    pub const MAX: i64 = 12 * 3600;

    /// On loopback, over plain HTTP, sessions of the default lengths.
    pub const fn local() -> PortalOptions {
        PortalOptions {
            public: false,
            secure_cookies: false,
            behind_proxy: false,
            session_idle_secs: Self::IDLE,
            session_max_secs: Self::MAX,
        }
    }
}

pub use access::Portal;

/// The portal's router, to call in process (tests, `mailaudit-bench portal`). Served, it needs
/// the peer's address as [`serve_portal`] gives it (the login throttle and the audit log key on
/// it): serve with [`serve_portal`], not `axum::serve`.
pub fn router(store: Arc<dyn Store>, options: PortalOptions) -> axum::Router {
    pages::router(Portal::new(store, options))
}

/// Serves `portal` on `listener` as `conn` says until `shutdown` completes, then finishes the
/// requests in flight and returns.
pub async fn serve_portal(
    listener: tokio::net::TcpListener,
    portal: Portal,
    conn: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PortalError> {
    serving::serve_router(listener, pages::router(portal), conn, shutdown).await
}

/// Parses `--listen` and applies the loopback rule: a non-loopback address needs an admin
/// account in the store (`has_admin`: then everyone signs in) or `public`. `localhost:PORT`
/// means `127.0.0.1:PORT`.
pub fn check_listen(
    listen: &str,
    public: bool,
    has_admin: bool,
) -> Result<SocketAddr, PortalError> {
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
    if !addr.ip().is_loopback() && !public && !has_admin {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_rule() {
        for (listen, public, admin, ok) in [
            ("127.0.0.1:8080", false, false, true),
            ("[::1]:0", false, false, true),
            ("localhost:9000", false, false, true),
            ("127.0.0.2:80", false, false, true),
            ("0.0.0.0:8080", false, false, false),
            ("192.0.2.1:8080", false, false, false),
            ("[::]:8080", false, false, false),
            ("0.0.0.0:8080", true, false, true),
            // With an admin, everyone signs in: any address.
            ("0.0.0.0:8080", false, true, true),
            ("[::]:443", false, true, true),
        ] {
            assert_eq!(
                check_listen(listen, public, admin).is_ok(),
                ok,
                "{listen} {public} {admin}"
            );
        }
        assert!(matches!(
            check_listen("0.0.0.0:8080", false, false),
            Err(PortalError::NotLoopback(_))
        ));
        for bad in ["", "8080", "localhost", "localhost:x", "example.com:80"] {
            assert!(
                matches!(
                    check_listen(bad, true, true),
                    Err(PortalError::BadListen(_))
                ),
                "{bad}"
            );
        }
    }
}
