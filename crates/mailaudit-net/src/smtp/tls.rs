//! TLS for the SMTP probe: trust roots (web PKI plus an optional lab CA file), a rustls client
//! configuration whose verifier lets every certificate through so the session goes on, and a
//! separate web PKI verdict on the chain the server presented, recorded in [`TlsInfo`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use mailaudit_core::smtp::TlsInfo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct};
use rustls::{Error as TlsError, RootCertStore, SignatureScheme};
use time::format_description::well_known::{Rfc2822, Rfc3339};

use crate::NetError;

/// The trust anchors certificates are judged against, and the client configuration built on
/// them. Cheap to clone.
#[derive(Clone)]
pub struct TlsRoots {
    pub(crate) verifier: Arc<WebPkiServerVerifier>,
    pub(crate) config: Arc<ClientConfig>,
    extra: usize,
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRoots")
            .field("webpki_roots", &webpki_roots::TLS_SERVER_ROOTS.len())
            .field("extra_cas", &self.extra)
            .finish()
    }
}

impl Default for TlsRoots {
    fn default() -> Self {
        Self::webpki()
    }
}

impl TlsRoots {
    /// The Mozilla web PKI roots (webpki-roots).
    pub fn webpki() -> Self {
        // The built-in root list is a non-empty constant, so the verifier always builds.
        Self::build(Vec::new()).expect("the webpki roots build a verifier")
    }

    /// The web PKI roots plus every certificate in the PEM file at `path` (a lab CA).
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<Self, NetError> {
        let path = path.as_ref();
        let err = |reason: String| NetError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        Self::with_ca_pem(&pem).map_err(|e| match e {
            NetError::CaFile { reason, .. } => err(reason),
            other => other,
        })
    }

    /// The web PKI roots plus every certificate in `pem` (PEM text).
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, NetError> {
        let err = |reason: String| NetError::CaFile {
            path: "(PEM data)".into(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(err("no CERTIFICATE block".into()));
        }
        Self::build(certs).map_err(err)
    }

    fn build(extra: Vec<CertificateDer<'static>>) -> Result<Self, String> {
        let mut store = RootCertStore::empty();
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let n = extra.len();
        for c in extra {
            store
                .add(c)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        Self::from_store(store, n)
    }

    fn from_store(store: RootCertStore, extra: usize) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordOnly {
                provider: provider.clone(),
            }))
            .with_no_client_auth();
        // Every probe must see the certificate of the server it talks to: a resumed session
        // (a ticket from another endpoint or another address of the same name) carries none.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsRoots {
            verifier,
            config: Arc::new(config),
            extra,
        })
    }
}

/// Accepts any certificate chain (it is judged separately, after the handshake, by
/// [`inspect`]) but still checks the handshake signatures against the presented key.
#[derive(Debug)]
struct RecordOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The name the certificate must match and SNI carries: the MX host name, or the address when
/// the host is not a valid DNS name.
pub(crate) fn server_name(host: &str, ip: std::net::IpAddr) -> ServerName<'static> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    ServerName::try_from(h).unwrap_or_else(|_| ServerName::IpAddress(ip.into()))
}

/// Judges the established session: version, cipher, and the presented chain against the
/// roots, the host name and the clock.
///
/// RFC 8461 §4.2 (the rules MTA-STS applies, and the ones this finding uses): "The certificate
/// presented by the receiving MTA MUST not be expired, and it MUST chain to a root CA that is
/// trusted by the sending MTA. The certificate MUST have a subject alternative name (SAN) with
/// a dNSName entry that matches the host name".
pub(crate) fn inspect(
    conn: &ClientConnection,
    roots: &TlsRoots,
    name: &ServerName<'_>,
    host: &str,
) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let s = s.suite();
            s.as_str().map_or_else(|| format!("{s:?}"), str::to_string)
        })
        .unwrap_or_else(|| "unknown".to_string());
    let certs = conn.peer_certificates().unwrap_or(&[]);
    let Some((ee, intermediates)) = certs.split_first() else {
        return TlsInfo {
            version,
            cipher,
            cert_valid: false,
            cert_error: Some("no certificate presented".into()),
            names: Vec::new(),
            not_after: None,
        };
    };
    let facts = CertFacts::read(ee.as_ref());
    let verdict = roots
        .verifier
        .verify_server_cert(ee, intermediates, name, &[], UnixTime::now());
    let cert_error = match verdict {
        Ok(_) => None,
        Err(e) => Some(describe(&e, &facts, host, intermediates.is_empty())),
    };
    TlsInfo {
        version,
        cipher,
        cert_valid: cert_error.is_none(),
        cert_error,
        names: facts.names,
        not_after: facts.not_after,
    }
}

/// The presented chain as DANE sees it (RFC 6698 §2.1.2): each certificate's DER (selector 0)
/// and its SubjectPublicKeyInfo's DER (selector 1), end entity first. A certificate x509-parser
/// cannot read keeps an empty SPKI, which matches no "x 1 x" record.
pub(crate) fn chain(conn: &ClientConnection) -> Vec<mailaudit_core::dane::ChainCert> {
    conn.peer_certificates()
        .unwrap_or(&[])
        .iter()
        .map(|c| {
            let der = c.as_ref();
            let spki_der = x509_parser::parse_x509_certificate(der)
                .map(|(_, cert)| cert.tbs_certificate.subject_pki.raw.to_vec())
                .unwrap_or_default();
            mailaudit_core::dane::ChainCert {
                cert_der: der.to_vec(),
                spki_der,
            }
        })
        .collect()
}

/// What x509-parser reads from the end-entity certificate.
#[derive(Debug, Default)]
struct CertFacts {
    names: Vec<String>,
    not_after: Option<String>,
    self_issued: bool,
}

impl CertFacts {
    fn read(der: &[u8]) -> Self {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return CertFacts::default();
        };
        let mut names: Vec<String> = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    names.push(d.to_string());
                }
            }
        }
        if names.is_empty() {
            names.extend(
                cert.subject()
                    .iter_common_name()
                    .filter_map(|a| a.as_str().ok())
                    .map(str::to_string),
            );
        }
        CertFacts {
            names,
            not_after: Some(rfc3339(cert.validity().not_after.timestamp())),
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        }
    }
}

fn describe(e: &TlsError, facts: &CertFacts, host: &str, alone: bool) -> String {
    let names = if facts.names.is_empty() {
        "none".to_string()
    } else {
        facts.names.join(", ")
    };
    let mut s = match e {
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "expired (notAfter {})",
                facts.not_after.as_deref().unwrap_or("unknown")
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not yet valid".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("not valid for name {host} (the certificate names: {names})")
            }
            CertificateError::UnknownIssuer if facts.self_issued && alone => {
                "self-signed (not issued by a trusted certification authority)".to_string()
            }
            CertificateError::UnknownIssuer => {
                "unknown issuer (the chain does not lead to a trusted root)".to_string()
            }
            other => format!("invalid certificate: {other:?}"),
        },
        other => other.to_string(),
    };
    // webpki stops at the first problem; name the host mismatch too when it is not the one.
    let name_error = matches!(
        e,
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    );
    if !name_error && !facts.names.iter().any(|n| name_matches(n, host)) {
        s.push_str(&format!(
            "; also not valid for name {host} (the certificate names: {names})"
        ));
    }
    s
}

/// RFC 9525 §6.3 matching, simplified: case-insensitive, a leading `*.` matches one label.
fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    match p.strip_prefix("*.") {
        Some(rest) => h
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => p == h,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from a Unix time (RFC 3339, UTC); the number itself when out of
/// the years 0 to 9999.
pub(crate) fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// RFC 5322 §3.3 date: `Mon, 01 Jan 2024 00:00:00 +0000`; the Unix epoch's when out of the
/// years 1900 to 9999.
pub(crate) fn rfc5322(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc2822).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 1970 00:00:00 +0000".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for (t, iso, mail) in [
            (0, "1970-01-01T00:00:00Z", "Thu, 01 Jan 1970 00:00:00 +0000"),
            (
                1_704_067_200,
                "2024-01-01T00:00:00Z",
                "Mon, 01 Jan 2024 00:00:00 +0000",
            ),
            (
                951_825_599,
                "2000-02-29T11:59:59Z",
                "Tue, 29 Feb 2000 11:59:59 +0000",
            ),
        ] {
            assert_eq!(rfc3339(t), iso);
            assert_eq!(rfc5322(t), mail);
        }
    }

    #[test]
    fn name_matching() {
        for (p, h, want) in [
            ("mx.example.com", "MX.example.com.", true),
            ("*.example.com", "mx.example.com", true),
            ("*.example.com", "a.mx.example.com", false),
            ("*.example.com", "example.com", false),
            ("other.example.com", "mx.example.com", false),
        ] {
            assert_eq!(name_matches(p, h), want, "{p} {h}");
        }
    }

    #[test]
    fn ca_pem_errors() {
        assert!(matches!(
            TlsRoots::with_ca_pem(b"not pem"),
            Err(NetError::CaFile { .. })
        ));
        assert!(matches!(
            TlsRoots::with_ca_file("/nonexistent/ca.pem"),
            Err(NetError::CaFile { path, .. }) if path == "/nonexistent/ca.pem"
        ));
    }
}
