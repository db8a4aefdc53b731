//! SHA-256 of a gzip file's *inflated* content, computed while the
//! compressed bytes stream in (chunk by chunk, from S3 or a local file),
//! without ever holding the file. Used by the digest function (re-hashing
//! delivered log files) and by the validator.
//!
//! The hash is the product's one SHA-256 ([`super::sha256`]).

use std::io::Write;

use super::sha256::Sha256;
use flate2::write::GzDecoder;

/// Why a gzip file does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GzError {
    /// Bytes follow the end of the first gzip member (an appended member, or
    /// anything else): CloudTrail's files are one member.
    #[error("unexpected data after end of compressed stream")]
    TrailingData,
    #[error("invalid format: {0}")]
    Invalid(String),
    /// More than the caller allows once inflated (a gzip bomb, or not the
    /// file it claims to be).
    #[error("invalid format: over {0} bytes inflated")]
    TooLarge(usize),
}

struct HashWriter {
    hasher: Sha256,
    len: u64,
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The hash of an inflated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflated {
    /// Lowercase hex SHA-256 of the inflated bytes.
    pub sha256: String,
    /// Inflated length in bytes.
    pub len: u64,
}

/// Feed compressed chunks with [`GzHasher::update`], then [`GzHasher::finish`].
pub struct GzHasher {
    decoder: GzDecoder<HashWriter>,
    trailing: bool,
}

impl Default for GzHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl GzHasher {
    pub fn new() -> Self {
        Self {
            decoder: GzDecoder::new(HashWriter {
                hasher: Sha256::new(),
                len: 0,
            }),
            trailing: false,
        }
    }

    /// Inflates and hashes one chunk of the compressed file.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), GzError> {
        if !self.trailing {
            self.trailing = feed(&mut self.decoder, chunk)?;
        }
        Ok(())
    }

    /// Checks the end of the stream (CRC, length, nothing after it).
    pub fn finish(mut self) -> Result<Inflated, GzError> {
        if self.trailing {
            return Err(GzError::TrailingData);
        }
        self.decoder
            .try_finish()
            .map_err(|e| GzError::Invalid(e.to_string()))?;
        let w = self.decoder.get_ref();
        Ok(Inflated {
            sha256: w.hasher.clone().finish_hex(),
            len: w.len,
        })
    }
}

/// Writes `chunk` into a single-member decoder; true if bytes were left
/// over after the member's end.
fn feed<W: Write>(decoder: &mut GzDecoder<W>, mut chunk: &[u8]) -> Result<bool, GzError> {
    while !chunk.is_empty() {
        // The single-member decoder takes nothing once its member ended.
        let n = decoder
            .write(chunk)
            .map_err(|e| GzError::Invalid(e.to_string()))?;
        if n == 0 {
            return Ok(true);
        }
        chunk = &chunk[n..];
    }
    Ok(false)
}

/// The inflated content of a (small) gzip file, refusing trailing data.
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, GzError> {
    inflate_at_most(bytes, usize::MAX)
}

/// Collects inflated bytes up to a limit, then refuses more.
struct Capped {
    out: Vec<u8>,
    max: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len().saturating_add(buf.len()) > self.max {
            return Err(std::io::Error::other(GzError::TooLarge(self.max)));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`inflate`], refusing to hold more than `max` inflated bytes: what a
/// hostile file can make the reader allocate is bounded.
pub fn inflate_at_most(bytes: &[u8], max: usize) -> Result<Vec<u8>, GzError> {
    let capacity = bytes.len().saturating_mul(4).min(max).min(1 << 24);
    let mut decoder = GzDecoder::new(Capped {
        out: Vec::with_capacity(capacity),
        max,
    });
    let too_large = |e: &dyn std::fmt::Display| {
        if e.to_string() == GzError::TooLarge(max).to_string() {
            GzError::TooLarge(max)
        } else {
            GzError::Invalid(e.to_string())
        }
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = decoder.write(rest).map_err(|e| too_large(&e))?;
        if n == 0 {
            return Err(GzError::TrailingData);
        }
        rest = &rest[n..];
    }
    decoder.finish().map(|c| c.out).map_err(|e| too_large(&e))
}

/// The hash of a whole gzip file in memory.
pub fn hash_gzip(bytes: &[u8]) -> Result<Inflated, GzError> {
    let mut h = GzHasher::new();
    h.update(bytes)?;
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_hash_is_of_the_inflated_bytes() {
        let data = b"{\"Records\":[]}";
        let got = hash_gzip(&gzip(data)).unwrap();
        assert_eq!(got.sha256, hex::encode(Sha256::digest(data)));
        assert_eq!(got.len, data.len() as u64);
        assert_eq!(inflate(&gzip(data)).unwrap(), data);
        let mut two = gzip(data);
        two.extend(gzip(data));
        assert_eq!(inflate(&two), Err(GzError::TrailingData));
    }

    #[test]
    fn a_second_member_or_any_trailing_byte_is_refused() {
        let mut two = gzip(b"one");
        two.extend(gzip(b"two"));
        assert_eq!(hash_gzip(&two), Err(GzError::TrailingData));
        let mut junk = gzip(b"one");
        junk.push(0);
        assert_eq!(hash_gzip(&junk), Err(GzError::TrailingData));
    }

    #[test]
    fn truncated_or_corrupt_input_is_invalid() {
        let g = gzip(&[7u8; 10_000]);
        assert!(matches!(
            hash_gzip(&g[..g.len() - 3]),
            Err(GzError::Invalid(_))
        ));
        let mut bad = g.clone();
        let n = bad.len();
        bad[n - 6] ^= 1; // CRC
        assert!(matches!(hash_gzip(&bad), Err(GzError::Invalid(_))));
        assert!(matches!(hash_gzip(b"not gzip"), Err(GzError::Invalid(_))));
        assert!(matches!(hash_gzip(b""), Err(GzError::Invalid(_))));
    }

    proptest! {
        /// However the compressed stream is cut into chunks, the result is
        /// the one-shot hash, and an appended byte is always caught.
        #[test]
        fn chunking_does_not_matter(data in proptest::collection::vec(any::<u8>(), 0..20_000),
                                    cuts in proptest::collection::vec(1usize..4096, 1..20),
                                    extra in any::<bool>()) {
            let mut g = gzip(&data);
            if extra {
                g.push(b'x');
            }
            let mut h = GzHasher::new();
            let mut rest = &g[..];
            for c in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*c).min(rest.len());
                h.update(&rest[..n]).unwrap();
                rest = &rest[n..];
            }
            let got = h.finish();
            if extra {
                prop_assert_eq!(got, Err(GzError::TrailingData));
            } else {
                prop_assert_eq!(got.unwrap().sha256, hex::encode(Sha256::digest(&data)));
            }
        }
    }
}
