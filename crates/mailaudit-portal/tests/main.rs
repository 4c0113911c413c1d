//! Integration tests of the web portal: the portal serves a temporary SQLite store filled
//! through the `Store` API on 127.0.0.1 with an ephemeral port; `http` checks status codes,
//! headers and writes with a raw HTTP client, `policy` the one escaping policy on every page
//! type (markup, quotes, C0/C1 controls, bidi overrides), `browser` drives a real headless
//! Chromium (Debian packages `chromium` and `chromium-driver`) through chromedriver. Every test has its
//! own store, port, chromedriver port and browser profile, so they run in parallel.

mod accounts;
mod api;
mod browser;
mod common;
mod fleet;
mod http;
mod policy;
mod serving;
mod sso;
