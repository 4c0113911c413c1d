//! A report's raw file as the store keeps it: compressed with Zstandard (RFC 8878) when that
//! saves at least an eighth of it, else as it was read (an `.xml.gz` or a `.zip` is compressed
//! already).
//!
//! The compression is done by whoever builds the [`NewReport`](crate::NewReport) (in
//! `reports ingest`, the reading thread, off the store's writing path); the store decodes on the
//! way out ([`Store::report_raw`](crate::Store::report_raw)), so callers always see the bytes as
//! read. XML aggregate reports shrink about tenfold at level 1, which is also what makes storing
//! them cheap: a third of the bytes written, and half the time of `reports ingest` was writing
//! them.

use std::io::Read;

use crate::StoreError;

/// The `raw_encoding` of a stored report (schema version 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEncoding {
    /// The bytes as read.
    Identity,
    /// A Zstandard frame of the bytes as read.
    Zstd,
}

impl RawEncoding {
    /// The column's value: `identity` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            RawEncoding::Identity => "identity",
            RawEncoding::Zstd => "zstd",
        }
    }
}

/// Zstandard level: 1 is the fastest of the regular levels and already shrinks report XML about
/// tenfold.
const LEVEL: i32 = 1;

/// Largest raw file `RawFile::decode` gives back (a stored frame claiming more is refused as
/// corrupt): well above the 100 MiB `reports ingest` reads.
pub const MAX_RAW: u64 = 512 * 1024 * 1024;

/// A report's raw file in its stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    encoding: RawEncoding,
    bytes: Vec<u8>,
}

impl RawFile {
    /// `original` compressed, or as it is when compression would save less than an eighth.
    pub fn compress(original: &[u8]) -> RawFile {
        match zstd::bulk::compress(original, LEVEL) {
            Ok(mut c) if c.len() < original.len() - original.len() / 8 => {
                // The buffer was allocated for the worst case (about the original's size).
                c.shrink_to_fit();
                RawFile {
                    encoding: RawEncoding::Zstd,
                    bytes: c,
                }
            }
            _ => RawFile::identity(original.to_vec()),
        }
    }

    /// `original` stored as it is.
    pub fn identity(original: Vec<u8>) -> RawFile {
        RawFile {
            encoding: RawEncoding::Identity,
            bytes: original,
        }
    }

    /// How it is stored.
    pub fn encoding(&self) -> RawEncoding {
        self.encoding
    }

    /// The bytes stored (compressed or not).
    pub fn stored(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes stored, taken.
    pub fn into_stored(self) -> Vec<u8> {
        self.bytes
    }

    /// The bytes as read.
    pub fn original(&self) -> Result<Vec<u8>, StoreError> {
        Self::decode(self.encoding.as_str(), &self.bytes).map_err(StoreError::Corrupt)
    }

    /// The bytes as read, from a stored `raw_encoding` and `raw`, or why they cannot be.
    pub(crate) fn decode(encoding: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
        match encoding {
            "identity" => Ok(stored.to_vec()),
            "zstd" => {
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(stored)
                    .map_err(|e| format!("zstd: {e}"))?
                    .take(MAX_RAW + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("zstd: {e}"))?;
                if out.len() as u64 > MAX_RAW {
                    return Err(format!("zstd: larger than {MAX_RAW} bytes"));
                }
                Ok(out)
            }
            other => Err(format!("unknown raw encoding {other:?}")),
        }
    }
}

impl From<Vec<u8>> for RawFile {
    /// Stored as it is.
    fn from(original: Vec<u8>) -> RawFile {
        RawFile::identity(original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_compressed_and_decodes_to_the_original() {
        let xml = "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>\n"
            .repeat(200)
            .into_bytes();
        let r = RawFile::compress(&xml);
        assert_eq!(r.encoding(), RawEncoding::Zstd);
        assert!(r.stored().len() * 10 < xml.len(), "{}", r.stored().len());
        assert_eq!(r.original().unwrap(), xml);
    }

    #[test]
    fn what_does_not_shrink_is_kept_as_it_is() {
        // A gzip member is compressed already; short inputs only grow.
        for bytes in [
            vec![0x1f, 0x8b, 0x08, 0x00, 1, 2, 3],
            Vec::new(),
            b"x".to_vec(),
        ] {
            let r = RawFile::compress(&bytes);
            assert_eq!(r.encoding(), RawEncoding::Identity);
            assert_eq!(r.stored(), bytes.as_slice());
            assert_eq!(r.original().unwrap(), bytes);
        }
    }

    #[test]
    fn a_corrupt_or_unknown_stored_form_is_an_error() {
        assert!(RawFile::decode("zstd", b"not a zstd frame").is_err());
        assert!(
            RawFile::decode("brotli", b"")
                .unwrap_err()
                .contains("brotli")
        );
        let r = RawFile::compress(&b"abc".repeat(1000));
        let mut cut = r.stored().to_vec();
        cut.truncate(cut.len() / 2);
        assert!(RawFile::decode("zstd", &cut).is_err());
    }
}
