//! The product's one SHA-256: `ring`'s, or with the `sha2-hash` feature
//! RustCrypto's `sha2` (the product card's crate), so both can be measured
//! end to end as shipped. On x86_64 they are 4–11 % apart, but on arm64 (the
//! functions' target, a cross-built binary under qemu-user) sha2 takes
//! 1.16–1.47× as long: over the 15 % that justifies keeping ring
//! (BENCHMARKS.md, "SHA-256 end to end"). Every hash of a log file or a
//! digest goes through [`Sha256`]; the two give the same bytes (tests).

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256(
    #[cfg(not(feature = "sha2-hash"))] ring::digest::Context,
    #[cfg(feature = "sha2-hash")] sha2::Sha256,
);

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        #[cfg(not(feature = "sha2-hash"))]
        return Self(ring::digest::Context::new(&ring::digest::SHA256));
        #[cfg(feature = "sha2-hash")]
        return Self(<sha2::Sha256 as sha2::Digest>::new());
    }

    pub fn update(&mut self, bytes: &[u8]) {
        #[cfg(not(feature = "sha2-hash"))]
        self.0.update(bytes);
        #[cfg(feature = "sha2-hash")]
        sha2::Digest::update(&mut self.0, bytes);
    }

    /// The 32-byte digest.
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0; 32];
        #[cfg(not(feature = "sha2-hash"))]
        out.copy_from_slice(self.0.finish().as_ref());
        #[cfg(feature = "sha2-hash")]
        out.copy_from_slice(&sha2::Digest::finalize(self.0));
        out
    }

    /// Lowercase hex of the digest.
    pub fn finish_hex(self) -> String {
        hex::encode(self.finish())
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finish_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_whole_hashes_match_the_reference() {
        use sha2::Digest as _;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Sha256::new();
        for chunk in data.chunks(4093) {
            h.update(chunk);
        }
        let reference = hex::encode(sha2::Sha256::digest(&data));
        assert_eq!(h.finish_hex(), reference);
        assert_eq!(sha256_hex(&data), reference);
        // FIPS 180-2's published examples, whichever implementation is built
        // (scripts/test.sh runs this with --features sha2-hash too).
        for (input, hash) in [
            (
                &b""[..],
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ] {
            assert_eq!(sha256_hex(input), hash);
        }
    }
}
