//! DKIM key records (RFC 6376 §3.6.1) and the public keys inside them.
//!
//! [`parse_key_record`] reads the tag list published at `<selector>._domainkey.<domain>`;
//! [`DkimKeyRecord::public_key`] decodes `p=` (base64, whitespace allowed) and reads the key
//! size: the modulus of an RSA key published as DER `SubjectPublicKeyInfo` (the standard form)
//! or as a bare PKCS#1 `RSAPublicKey` (which some publish and many verifiers accept), or an
//! Ed25519 key (RFC 8463: the raw 32-byte key, 256 bits). Base64 is the `base64` crate's; the
//! DER reader is small, hand-written, bounded by its input and never panics.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{DecodeError, Engine as _};

/// A parsed DKIM key record. Field names are the RFC 6376 §3.6.1 tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DkimKeyRecord {
    /// `v=`: the version; `Some("DKIM1")` when present (any other value is an error).
    pub v: Option<String>,
    /// `h=`: acceptable hash algorithms (colon-separated); `None` allows all.
    pub h: Option<Vec<String>>,
    /// `k=`: the key type; `None` means the default, `rsa`.
    pub k: Option<String>,
    /// `n=`: notes for humans (qp-section, kept verbatim).
    pub n: Option<String>,
    /// `p=`: the public key in base64, whitespace removed; empty for a revoked key.
    pub p: String,
    /// `s=`: service types (colon-separated); `None` means `*`.
    pub s: Option<Vec<String>>,
    /// `t=`: flags (colon-separated, e.g. `y` for testing).
    pub t: Option<Vec<String>>,
    /// Unknown tags, in order (RFC 6376 §3.2: "Unrecognized tags MUST be ignored").
    pub extensions: Vec<(String, String)>,
}

/// Why a DKIM key record or its key cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DkimKeyError {
    /// A tag-spec that is not `name=value`, or whose name is not `ALPHA *(ALPHA / DIGIT / "_")`.
    #[error("malformed tag {0:?}")]
    MalformedTag(String),
    /// A tag value with a character outside VALCHAR / whitespace.
    #[error("tag {tag}= has an invalid character")]
    InvalidValue {
        /// The tag.
        tag: String,
    },
    /// A tag appears twice (RFC 6376 §3.2: the whole tag-list is then invalid).
    #[error("tag {0}= appears more than once")]
    DuplicateTag(String),
    /// `v=` is present but not the first tag.
    #[error("v= must be the first tag")]
    VersionNotFirst,
    /// `v=` is present with a value other than `DKIM1`.
    #[error("unsupported version v={0} (expected DKIM1)")]
    UnsupportedVersion(String),
    /// No `p=` tag (it is required).
    #[error("no p= tag")]
    MissingPublicKey,
    /// `p=` is empty: the key has been revoked.
    #[error("the key is revoked (empty p=)")]
    Revoked,
    /// A character that is not base64 at this offset of the `p=` value.
    #[error("p= is not base64 (invalid character at offset {position})")]
    Base64InvalidChar {
        /// Byte offset in the value.
        position: usize,
    },
    /// Base64 of impossible length or with misplaced padding.
    #[error("p= is not base64 (bad length or padding)")]
    Base64Length,
    /// The decoded key is not the DER structure expected.
    #[error("p= is not a DER public key: {reason}")]
    Der {
        /// What was wrong.
        reason: &'static str,
    },
    /// `k=` names a key type this auditor does not know.
    #[error("unknown key type k={0}")]
    UnknownKeyType(String),
    /// The key's algorithm is not the one `k=` declares.
    #[error("k={declared} but the key is {found}")]
    KeyTypeMismatch {
        /// The `k=` value (or the default `rsa`).
        declared: String,
        /// The algorithm found in the key.
        found: &'static str,
    },
    /// An Ed25519 key that is not 32 bytes.
    #[error("an ed25519 key must be 32 bytes, found {0}")]
    Ed25519Length(usize),
}

/// A public key algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (`k=rsa`, the default).
    Rsa,
    /// Ed25519 (`k=ed25519`, RFC 8463).
    Ed25519,
}

impl KeyType {
    /// The `k=` name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the key bytes in `p=` were laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyEncoding {
    /// DER `SubjectPublicKeyInfo` (RFC 6376 §3.6.1, the standard form for RSA).
    SubjectPublicKeyInfo,
    /// A bare DER PKCS#1 `RSAPublicKey` (non-standard, seen in the wild).
    Pkcs1,
    /// The raw key bytes (the standard form for Ed25519).
    Raw,
}

/// What [`DkimKeyRecord::public_key`] found in `p=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// The algorithm.
    pub key_type: KeyType,
    /// The size: the RSA modulus length in bits, 256 for Ed25519.
    pub bits: u32,
    /// How the key was encoded.
    pub encoding: KeyEncoding,
}

fn is_fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_tag_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(':')
        .map(|x| x.trim_matches(is_fws).to_string())
        .collect()
}

/// Parses a DKIM key record.
///
/// RFC 6376 §3.6.1: "v= Version of the DKIM key record (plain-text; RECOMMENDED, default is
/// "DKIM1"). If specified, this tag MUST be set to "DKIM1" (without the quotes). This tag MUST
/// be the first tag in the record. [...] p= Public-key data (base64; REQUIRED). An empty value
/// means that this public key has been revoked."
///
/// RFC 6376 §3.2: "Tags with duplicate names MUST NOT occur within a single tag-list; if a tag
/// name does occur more than once, the entire tag-list is invalid." Tag names are
/// case-sensitive. Empty tag-specs (`;;`) are tolerated, as most verifiers do.
pub fn parse_key_record(text: &str) -> Result<DkimKeyRecord, DkimKeyError> {
    let mut rec = DkimKeyRecord::default();
    let mut seen: Vec<String> = Vec::new();
    let mut p = None;
    for spec in text.split(';') {
        let spec = spec.trim_matches(is_fws);
        if spec.is_empty() {
            continue;
        }
        let Some((name, value)) = spec.split_once('=') else {
            return Err(DkimKeyError::MalformedTag(spec.to_string()));
        };
        let name = name.trim_matches(is_fws);
        let value = value.trim_matches(is_fws);
        if !is_tag_name(name) {
            return Err(DkimKeyError::MalformedTag(spec.to_string()));
        }
        if !value
            .chars()
            .all(|c| is_fws(c) || matches!(c, '\x21'..='\x3a' | '\x3c'..='\x7e'))
        {
            return Err(DkimKeyError::InvalidValue {
                tag: name.to_string(),
            });
        }
        if seen.iter().any(|s| s == name) {
            return Err(DkimKeyError::DuplicateTag(name.to_string()));
        }
        let first = seen.is_empty();
        seen.push(name.to_string());
        match name {
            "v" => {
                if !first {
                    return Err(DkimKeyError::VersionNotFirst);
                }
                if value != "DKIM1" {
                    return Err(DkimKeyError::UnsupportedVersion(value.to_string()));
                }
                rec.v = Some(value.to_string());
            }
            "h" => rec.h = Some(split_list(value)),
            "k" => rec.k = Some(value.to_string()),
            "n" => rec.n = Some(value.to_string()),
            "p" => {
                let compact: String = value.chars().filter(|c| !is_fws(*c)).collect();
                decode_base64(&compact)?;
                p = Some(compact);
            }
            "s" => rec.s = Some(split_list(value)),
            "t" => rec.t = Some(split_list(value)),
            _ => rec.extensions.push((name.to_string(), value.to_string())),
        }
    }
    rec.p = p.ok_or(DkimKeyError::MissingPublicKey)?;
    Ok(rec)
}

impl DkimKeyRecord {
    /// The key type named by `k=`, or the default `rsa`.
    pub fn key_type_name(&self) -> &str {
        self.k.as_deref().unwrap_or("rsa")
    }

    /// Whether the key is revoked (empty `p=`).
    pub fn is_revoked(&self) -> bool {
        self.p.is_empty()
    }

    /// Decodes `p=` and reads the key's algorithm and size.
    ///
    /// RFC 8301 §3.2: "Signers MUST use RSA keys of at least 1024 bits for all keys. Signers
    /// SHOULD use RSA keys of at least 2048 bits." RFC 8463 §4.2: the Ed25519 "p=" value is
    /// the base64 encoding of the raw 32-byte public key.
    pub fn public_key(&self) -> Result<PublicKey, DkimKeyError> {
        if self.is_revoked() {
            return Err(DkimKeyError::Revoked);
        }
        let bytes = decode_base64(&self.p)?;
        match self.key_type_name() {
            "rsa" => rsa_key(&bytes),
            "ed25519" => {
                if bytes.len() == 32 {
                    Ok(PublicKey {
                        key_type: KeyType::Ed25519,
                        bits: 256,
                        encoding: KeyEncoding::Raw,
                    })
                } else if spki_algorithm(&bytes) == Some(Algorithm::Rsa) {
                    Err(DkimKeyError::KeyTypeMismatch {
                        declared: "ed25519".into(),
                        found: "rsa",
                    })
                } else {
                    Err(DkimKeyError::Ed25519Length(bytes.len()))
                }
            }
            other => Err(DkimKeyError::UnknownKeyType(other.to_string())),
        }
    }
}

impl fmt::Display for DkimKeyRecord {
    /// Prints the record in canonical tag order (`v h k n p s t`, then unknown tags).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tags: Vec<(String, String)> = Vec::new();
        if let Some(v) = &self.v {
            tags.push(("v".into(), v.clone()));
        }
        if let Some(h) = &self.h {
            tags.push(("h".into(), h.join(":")));
        }
        if let Some(k) = &self.k {
            tags.push(("k".into(), k.clone()));
        }
        if let Some(n) = &self.n {
            tags.push(("n".into(), n.clone()));
        }
        tags.push(("p".into(), self.p.clone()));
        if let Some(s) = &self.s {
            tags.push(("s".into(), s.join(":")));
        }
        if let Some(t) = &self.t {
            tags.push(("t".into(), t.join(":")));
        }
        tags.extend(self.extensions.iter().cloned());
        for (i, (name, value)) in tags.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// Standard base64 with canonical padding, lenient about the unused bits of the last symbol.
const PADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The same without padding.
const UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Decodes standard base64 (RFC 4648 §4), skipping whitespace; padding is optional but, when
/// present, must close the input.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, DkimKeyError> {
    // Offsets in `s` of the characters kept, to report an invalid one where it was.
    let kept: Vec<usize> = s
        .bytes()
        .enumerate()
        .filter(|(_, b)| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map(|(i, _)| i)
        .collect();
    let compact: Vec<u8> = kept.iter().map(|&i| s.as_bytes()[i]).collect();
    let invalid = |i: usize| DkimKeyError::Base64InvalidChar {
        position: kept.get(i).copied().unwrap_or(s.len()),
    };
    let Some(pad) = compact.iter().position(|&b| b == b'=') else {
        return UNPADDED.decode(&compact).map_err(|e| match e {
            DecodeError::InvalidByte(i, _) => invalid(i),
            _ => DkimKeyError::Base64Length,
        });
    };
    // Padding closes the input: a character after it is the invalid one.
    if let Some(after) = compact[pad..].iter().position(|&b| b != b'=') {
        return Err(invalid(pad + after));
    }
    PADDED.decode(&compact).map_err(|e| match e {
        DecodeError::InvalidByte(i, _) if i < pad => invalid(i),
        _ => DkimKeyError::Base64Length,
    })
}

/// Encodes standard base64 with padding (for tests and fixes).
pub fn encode_base64(bytes: &[u8]) -> String {
    PADDED.encode(bytes)
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1 (rsaEncryption).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.3.101.112 (id-Ed25519).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn der_err(reason: &'static str) -> DkimKeyError {
    DkimKeyError::Der { reason }
}

/// A cursor over DER: reads one tag-length-value at a time, bounds-checked.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element with the expected tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], DkimKeyError> {
        let (&t, rest) = self.rest.split_first().ok_or(der_err("truncated"))?;
        if t != tag {
            return Err(der_err("unexpected element"));
        }
        let (&l, mut rest) = rest.split_first().ok_or(der_err("truncated"))?;
        let len = if l < 0x80 {
            usize::from(l)
        } else {
            let n = usize::from(l & 0x7f);
            if n == 0 || n > 4 {
                return Err(der_err("unsupported length"));
            }
            let (digits, after) = rest.split_at_checked(n).ok_or(der_err("truncated"))?;
            rest = after;
            digits
                .iter()
                .fold(0usize, |acc, &d| (acc << 8) | usize::from(d))
        };
        let (content, after) = rest.split_at_checked(len).ok_or(der_err("truncated"))?;
        self.rest = after;
        Ok(content)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Algorithm {
    Rsa,
    Ed25519,
    Other,
}

/// The algorithm of a `SubjectPublicKeyInfo`, or `None` if `bytes` is not one.
fn spki_algorithm(bytes: &[u8]) -> Option<Algorithm> {
    let spki = Der::new(bytes).read(TAG_SEQUENCE).ok()?;
    let alg = Der::new(spki).read(TAG_SEQUENCE).ok()?;
    let oid = Der::new(alg).read(TAG_OID).ok()?;
    Some(match oid {
        OID_RSA => Algorithm::Rsa,
        OID_ED25519 => Algorithm::Ed25519,
        _ => Algorithm::Other,
    })
}

/// Reads an RSA key: `SubjectPublicKeyInfo` (RFC 5280 §4.1, algorithm rsaEncryption) or a
/// bare `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017
/// §A.1.1), and returns the modulus size.
fn rsa_key(bytes: &[u8]) -> Result<PublicKey, DkimKeyError> {
    let outer = Der::new(bytes).read(TAG_SEQUENCE)?;
    let mut inner = Der::new(outer);
    match inner.peek_tag() {
        Some(TAG_SEQUENCE) => {
            let alg = inner.read(TAG_SEQUENCE)?;
            match Der::new(alg).read(TAG_OID)? {
                OID_RSA => {}
                OID_ED25519 => {
                    return Err(DkimKeyError::KeyTypeMismatch {
                        declared: "rsa".into(),
                        found: "ed25519",
                    });
                }
                _ => return Err(der_err("not an RSA key")),
            }
            let bits = inner.read(TAG_BIT_STRING)?;
            let (&unused, key) = bits.split_first().ok_or(der_err("empty bit string"))?;
            if unused != 0 {
                return Err(der_err("bit string with unused bits"));
            }
            let bits = rsa_public_key_bits(key)?;
            Ok(PublicKey {
                key_type: KeyType::Rsa,
                bits,
                encoding: KeyEncoding::SubjectPublicKeyInfo,
            })
        }
        Some(TAG_INTEGER) => {
            let bits = rsa_public_key_bits(bytes)?;
            Ok(PublicKey {
                key_type: KeyType::Rsa,
                bits,
                encoding: KeyEncoding::Pkcs1,
            })
        }
        _ => Err(der_err("neither SubjectPublicKeyInfo nor RSAPublicKey")),
    }
}

/// The modulus size in bits of a DER `RSAPublicKey`.
fn rsa_public_key_bits(bytes: &[u8]) -> Result<u32, DkimKeyError> {
    let seq = Der::new(bytes).read(TAG_SEQUENCE)?;
    let mut fields = Der::new(seq);
    let modulus = fields.read(TAG_INTEGER)?;
    fields.read(TAG_INTEGER)?;
    let start = modulus
        .iter()
        .position(|&b| b != 0)
        .ok_or(der_err("zero modulus"))?;
    let significant = &modulus[start..];
    let bits = (significant.len() - 1) * 8 + (8 - significant[0].leading_zeros() as usize);
    u32::try_from(bits).map_err(|_| der_err("modulus too large"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `openssl genrsa 1024 | openssl rsa -pubout -outform DER | base64`
    pub(crate) const RSA1024_SPKI: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDaFx04apmFph8iy2xyo3/1/n0zvdVneofqBjS5G3LeIDgO8E8s720x7Cd0cG3Jvq1ZRI7L4ep23V7p5aKR2x7Jx0CHObXJqYORSnbNm03Ufnwkx0WNporrzUl0TT8faym1x++K026NxQhMnrxLIC7UJvMluUD6sTvNPY9y9jus0wIDAQAB";
    /// `openssl genrsa 2048 | openssl rsa -pubout -outform DER | base64`
    pub(crate) const RSA2048_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8OOxifOIX0+u/n3wcb7zYlOVrUQB3WiGWfWO7NkJo9JJHdWIGE9Y63TncmicabS0/9drCBr8XzjefYsj1UP8G2MDkEN2sEh4gCN6/Qiju71Iuf/+m4zmVg5gT/j07xvTMcv62v+m1d9Z3On3V/tK0lSIOEjBXhMZ+SOXNcClnDQ2crK8w4ECRYAQOeCx5RrIn4wpe1n4yIkc40h1og859kfU/2CLB/knk3cniJUqE8+DJuSuXYk9N6CUi6TmTYJkiUV8FhUZKFxpWnB6eOPTxlAuarTRGuWefOjHcmVO+cfqlvGbRtcmVQqvFq0SATAJRuNgTQ19Q974e/O0LK8b4wIDAQAB";
    /// The same 2048-bit key, `openssl rsa -RSAPublicKey_out -outform DER | base64` (PKCS#1).
    pub(crate) const RSA2048_PKCS1: &str = "MIIBCgKCAQEA8OOxifOIX0+u/n3wcb7zYlOVrUQB3WiGWfWO7NkJo9JJHdWIGE9Y63TncmicabS0/9drCBr8XzjefYsj1UP8G2MDkEN2sEh4gCN6/Qiju71Iuf/+m4zmVg5gT/j07xvTMcv62v+m1d9Z3On3V/tK0lSIOEjBXhMZ+SOXNcClnDQ2crK8w4ECRYAQOeCx5RrIn4wpe1n4yIkc40h1og859kfU/2CLB/knk3cniJUqE8+DJuSuXYk9N6CUi6TmTYJkiUV8FhUZKFxpWnB6eOPTxlAuarTRGuWefOjHcmVO+cfqlvGbRtcmVQqvFq0SATAJRuNgTQ19Q974e/O0LK8b4wIDAQAB";
    /// The 1024-bit key as PKCS#1.
    pub(crate) const RSA1024_PKCS1: &str = "MIGJAoGBANoXHThqmYWmHyLLbHKjf/X+fTO91Wd6h+oGNLkbct4gOA7wTyzvbTHsJ3Rwbcm+rVlEjsvh6nbdXunlopHbHsnHQIc5tcmpg5FKds2bTdR+fCTHRY2miuvNSXRNPx9rKbXH74rTbo3FCEyevEsgLtQm8yW5QPqxO809j3L2O6zTAgMBAAE=";
    /// `openssl genrsa 1025`: a modulus that is not a whole number of bytes.
    pub(crate) const RSA1025_SPKI: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQG53ckFPorN0Gu3kgSfoJJNQcW+CWjEfToUzTbH0fzT1TVDX0XEEeuBcUfhnLPDmlxjNfFBCwO9SbiWUGuydIXDkHl5T91uiKk7UybQjndK004p5ubIwyvAW87wngbo+i4FYigi/N50xo9wdjG3kRwoEzJyNZ6Z/FCNDY5iTV/i0QIDAQAB";
    /// `openssl genpkey -algorithm ed25519`, the raw 32-byte public key (RFC 8463 form).
    pub(crate) const ED25519_RAW: &str = "ItlSDMpQ/05L++G3nuwrnQArJFjWof3kwPa4nLVUArE=";
    /// The same Ed25519 key as `SubjectPublicKeyInfo` (not the RFC 8463 form).
    pub(crate) const ED25519_SPKI: &str =
        "MCowBQYDK2VwAyEAItlSDMpQ/05L++G3nuwrnQArJFjWof3kwPa4nLVUArE=";

    fn key(record: &str) -> Result<PublicKey, DkimKeyError> {
        parse_key_record(record)?.public_key()
    }

    #[test]
    fn key_sizes() {
        use KeyEncoding::*;
        use KeyType::*;
        let folded = format!(
            "v=DKIM1; k=rsa; p={} {}",
            &RSA2048_SPKI[..100],
            &RSA2048_SPKI[100..]
        );
        for (record, expected) in [
            (
                format!("v=DKIM1; k=rsa; p={RSA1024_SPKI}"),
                Ok((Rsa, 1024, SubjectPublicKeyInfo)),
            ),
            (
                format!("v=DKIM1; p={RSA2048_SPKI}"),
                Ok((Rsa, 2048, SubjectPublicKeyInfo)),
            ),
            (format!("p={RSA2048_PKCS1}"), Ok((Rsa, 2048, Pkcs1))),
            (format!("p={RSA1024_PKCS1}"), Ok((Rsa, 1024, Pkcs1))),
            (
                format!("p={RSA1025_SPKI}"),
                Ok((Rsa, 1025, SubjectPublicKeyInfo)),
            ),
            (folded, Ok((Rsa, 2048, SubjectPublicKeyInfo))),
            (
                format!("v=DKIM1; k=ed25519; p={ED25519_RAW}"),
                Ok((Ed25519, 256, Raw)),
            ),
            (
                format!("v=DKIM1; k=ed25519; p={ED25519_SPKI}"),
                Err(DkimKeyError::Ed25519Length(44)),
            ),
            (
                format!("v=DKIM1; k=rsa; p={ED25519_SPKI}"),
                Err(DkimKeyError::KeyTypeMismatch {
                    declared: "rsa".into(),
                    found: "ed25519",
                }),
            ),
            (
                format!("v=DKIM1; k=ed25519; p={RSA2048_SPKI}"),
                Err(DkimKeyError::KeyTypeMismatch {
                    declared: "ed25519".into(),
                    found: "rsa",
                }),
            ),
            ("v=DKIM1; p=".to_string(), Err(DkimKeyError::Revoked)),
            (
                "v=DKIM1; k=ecdsa; p=AAAA".to_string(),
                Err(DkimKeyError::UnknownKeyType("ecdsa".into())),
            ),
            (
                "v=DKIM1; p=AAAA".to_string(),
                Err(der_err("unexpected element")),
            ),
            (
                format!("p={}", &RSA2048_SPKI[..200]),
                Err(der_err("truncated")),
            ),
        ] {
            let got = key(&record).map(|k| (k.key_type, k.bits, k.encoding));
            assert_eq!(got, expected, "{record}");
        }
    }

    #[test]
    fn record_syntax() {
        use DkimKeyError::*;
        for (record, expected) in [
            ("v=DKIM1; k=rsa; p=", Ok(())),
            ("v=DKIM1;p=;", Ok(())),
            ("  v = DKIM1 ;; h=sha256 ; t=y:s; p = AAAA", Ok(())),
            ("p=AAAA; v=DKIM1", Err(VersionNotFirst)),
            ("v=DKIM2; p=AAAA", Err(UnsupportedVersion("DKIM2".into()))),
            (
                "v=spf1 include:x -all",
                Err(UnsupportedVersion("spf1 include:x -all".into())),
            ),
            ("v=DKIM1; k=rsa", Err(MissingPublicKey)),
            ("v=DKIM1; p=AAAA; p=BBBB", Err(DuplicateTag("p".into()))),
            (
                "v=DKIM1; garbage; p=AAAA",
                Err(MalformedTag("garbage".into())),
            ),
            ("v=DKIM1; 1x=y; p=AAAA", Err(MalformedTag("1x=y".into()))),
            ("v=DKIM1; p=AA*A", Err(Base64InvalidChar { position: 2 })),
            ("v=DKIM1; p=A", Err(Base64Length)),
            ("v=DKIM1; p=AA=A", Err(Base64InvalidChar { position: 3 })),
            (
                "v=DKIM1; n=caf\u{e9}; p=AAAA",
                Err(InvalidValue { tag: "n".into() }),
            ),
        ] {
            assert_eq!(parse_key_record(record).map(|_| ()), expected, "{record}");
        }
        let r = parse_key_record("v=DKIM1; h=sha1:sha256; k=rsa; n=hi; p=AAAA; s=email; t=y; x=1")
            .unwrap();
        assert_eq!(r.h, Some(vec!["sha1".to_string(), "sha256".to_string()]));
        assert_eq!(r.t, Some(vec!["y".to_string()]));
        assert_eq!(r.extensions, vec![("x".to_string(), "1".to_string())]);
        assert_eq!(
            r.to_string(),
            "v=DKIM1; h=sha1:sha256; k=rsa; n=hi; p=AAAA; s=email; t=y; x=1"
        );
    }

    #[test]
    fn base64() {
        for (text, bytes) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zg", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9v YmFy\r\n", b"foobar"),
        ] {
            assert_eq!(decode_base64(text).unwrap(), bytes, "{text}");
        }
        for bad in ["Z", "Zg=", "Zm9=v", "Zm8==", "Z===", "Zm9v!"] {
            assert!(decode_base64(bad).is_err(), "{bad}");
        }
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob"] {
            assert_eq!(decode_base64(&encode_base64(bytes)).unwrap(), bytes);
        }
    }

    proptest::proptest! {
        #[test]
        fn key_parsing_never_panics(s in "\\PC{0,200}") {
            if let Ok(r) = parse_key_record(&s) {
                let _ = r.public_key();
            }
        }

        #[test]
        fn der_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = rsa_key(&bytes);
            let _ = spki_algorithm(&bytes);
            let rec = DkimKeyRecord { p: encode_base64(&bytes), ..Default::default() };
            let _ = rec.public_key();
        }

        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            proptest::prop_assert_eq!(decode_base64(&encode_base64(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn records_round_trip(s in "(v=DKIM1; )?([a-z]{1,3} ?= ?[ -:<-~]{0,12};){0,5} ?p=[A-Za-z0-9+/]{0,8}(; [hkst]=[a-z:]{0,6})?") {
            if let Ok(r) = parse_key_record(&s) {
                let printed = r.to_string();
                proptest::prop_assert_eq!(parse_key_record(&printed), Ok(r), "{}", printed);
            }
        }
    }
}
