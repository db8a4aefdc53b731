//! A local copy of a log bucket, laid out like the bucket (`DIR/{key}`), as
//! `trailkeep download-logs` writes it: each object that has user metadata
//! (the digests' `signature` and `signature-algorithm`) gets a sidecar
//! `DIR/{key}.metadata.json`, and `DIR/.trailkeep-copy.json` names the bucket
//! and key prefix.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::gzhash::{GzError, GzHasher, Inflated};
use crate::store::StoreError;
use crate::validate::{Fetched, Source};

/// The sidecar of `key`.
pub fn sidecar(key: &str) -> String {
    format!("{key}.metadata.json")
}

/// Why `key` cannot name a file inside a local copy: an S3 key may hold
/// anything, and a copy's paths are built from keys (listed by S3, or read
/// from a digest an attacker may have written). `None`: it can.
pub fn unsafe_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("is empty");
    }
    if key.starts_with('/') {
        return Some("is an absolute path");
    }
    if key.contains('\\') {
        return Some("contains a backslash");
    }
    if key.chars().any(char::is_control) {
        return Some("contains a control character (NUL, newline …)");
    }
    if key.split('/').any(|part| part.is_empty()) {
        return Some("has an empty path segment");
    }
    if key.split('/').any(|part| part == "." || part == "..") {
        return Some("has a . or .. segment, which would leave the directory");
    }
    None
}

/// The file naming the bucket a copy was taken from.
pub const COPY_INFO: &str = ".trailkeep-copy.json";

/// Read buffer for hashing local files.
const CHUNK: usize = 256 * 1024;

/// A local copy of one bucket.
#[derive(Clone, Debug)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The bucket and key prefix the copy was taken from, as
    /// `download-logs` recorded them.
    pub fn origin(&self) -> Option<(String, Option<String>)> {
        let text = std::fs::read_to_string(self.root.join(COPY_INFO)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let bucket = v.get("bucket")?.as_str()?.to_owned();
        let prefix = v.get("prefix").and_then(|p| p.as_str()).map(str::to_owned);
        Some((bucket, prefix))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The path of `key` inside the copy, or why it is refused: a key that
    /// would leave the directory, or one that passes through a symlink
    /// (which could point anywhere).
    pub fn path_inside(&self, key: &str) -> Result<PathBuf, String> {
        if let Some(why) = unsafe_key(key) {
            return Err(format!("key {key:?} {why}"));
        }
        let mut p = self.root.clone();
        for part in key.split('/') {
            p.push(part);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "key {key:?} passes through a symlink ({})",
                        p.display()
                    ))
                }
                Ok(_) => {}
                // Nothing below a missing component exists: no symlink either.
                Err(_) => break,
            }
        }
        Ok(self.root.join(key))
    }

    /// Writes one object of the copy (creating its folders) and, when it
    /// has user metadata (a digest's signature), its sidecar. A key that
    /// would leave the directory is refused.
    pub fn write_object(
        &self,
        key: &str,
        bytes: &[u8],
        metadata: &HashMap<String, String>,
    ) -> Result<(), StoreError> {
        let write = |key: &str, bytes: &[u8]| {
            let path = self
                .path_inside(key)
                .map_err(|why| self.fail("write", &self.root, format!("refused: {why}")))?;
            path.parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::write(&path, bytes))
                .map_err(|e| self.fail("write", &path, e))
        };
        write(key, bytes)?;
        if metadata.is_empty() {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(metadata).unwrap_or_default();
        write(&sidecar(key), text.as_bytes())
    }

    fn fail(&self, operation: &'static str, path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            operation,
            resource: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// Inflates and hashes a local gzip file in fixed-size reads.
pub fn hash_file(path: &Path) -> std::io::Result<Option<Result<Inflated, GzError>>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hasher = GzHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Err(e) = hasher.update(&buf[..n]) {
            return Ok(Some(Err(e)));
        }
    }
    Ok(Some(hasher.finish()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

impl Source for LocalDir {
    fn location(&self, _bucket: &str, key: &str) -> String {
        self.path(key).display().to_string()
    }

    async fn folders(&self, _bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.path(prefix);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.fail("read directory", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.fail("read directory", &dir, e))?;
            // Not followed: a symlinked folder could list files from anywhere.
            let is_dir = entry
                .file_type()
                .map_err(|e| self.fail("read directory", &dir, e))?
                .is_dir();
            if is_dir {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list(
        &self,
        _bucket: &str,
        prefix: &str,
        start_after: &str,
    ) -> Result<Vec<String>, StoreError> {
        // `prefix` is a folder (it ends in `/`) in every use.
        let dir = self
            .path_inside(prefix.trim_end_matches('/'))
            .map_err(|why| self.fail("read directory", &self.root, format!("refused: {why}")))?;
        let mut paths = Vec::new();
        walk(&dir, &mut paths).map_err(|e| self.fail("read directory", &dir, e))?;
        let mut keys: Vec<String> = paths
            .iter()
            .filter_map(|p| p.strip_prefix(&self.root).ok())
            .map(|p| p.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"))
            .filter(|k| k.as_str() > start_after && !k.ends_with(".metadata.json"))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn get_digest(&self, _bucket: &str, key: &str) -> Result<Option<Fetched>, StoreError> {
        let path = self
            .path_inside(key)
            .map_err(|why| self.fail("read", &self.root, format!("refused: {why}")))?;
        // At most one byte past the cap: a larger digest is INVALID anyway.
        let mut bytes = Vec::new();
        match std::fs::File::open(&path) {
            Ok(f) => f
                .take(crate::validate::MAX_DIGEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| self.fail("read", &path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.fail("read", &path, e)),
        };
        // A missing, unreadable or refused sidecar is a missing signature.
        let meta: HashMap<String, String> = self
            .path_inside(&sidecar(key))
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok(Some(Fetched {
            bytes,
            signature: meta.get("signature").cloned(),
            signature_algorithm: meta.get("signature-algorithm").cloned(),
        }))
    }

    async fn hash_log(
        &self,
        _bucket: &str,
        key: &str,
    ) -> Result<Option<Result<Inflated, GzError>>, StoreError> {
        // A digest may list any key: one that cannot be inside the copy is
        // not in it (the validator reports it not found), and nothing
        // outside the directory is read.
        let path = match self.path_inside(key) {
            Ok(path) => path,
            Err(why) => {
                tracing::warn!(reason = %why, "log file key refused in a local copy");
                return Ok(None);
            }
        };
        let p = path.clone();
        tokio::task::spawn_blocking(move || hash_file(&p))
            .await
            .map_err(|e| self.fail("hash", &path, e))?
            .map_err(|e| self.fail("read", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_leave_the_copy_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "AWSLogs/../../../etc/passwd",
            "..",
            "AWSLogs/./x.json.gz",
            "AWSLogs\\..\\x",
            "AWSLogs//x",
            "AWSLogs/x\0.json.gz",
            "AWSLogs/x\n.json.gz",
        ] {
            assert!(unsafe_key(key).is_some(), "{key:?} accepted");
        }
        let ok = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/111122223333_CloudTrail_eu-west-1_20261124T0105Z_abc.json.gz";
        assert_eq!(unsafe_key(ok), None);
        assert_eq!(
            unsafe_key("a..b/c...json.gz"),
            None,
            "dots inside a name are fine"
        );
    }

    #[tokio::test]
    async fn nothing_outside_the_copy_is_read_through_dot_dot_or_a_symlink() {
        let base = std::env::temp_dir().join(format!("trailkeep-localcopy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (copy, outside) = (base.join("copy"), base.join("outside"));
        std::fs::create_dir_all(copy.join("AWSLogs")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // A valid gzip file outside the copy, and a symlink to its folder inside.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"secret").unwrap();
        std::fs::write(outside.join("secret.json.gz"), gz.finish().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, copy.join("AWSLogs/link")).unwrap();
        let dir = LocalDir::new(&copy);

        let dotdot = Source::hash_log(&dir, "b", "AWSLogs/../../outside/secret.json.gz").await;
        let linked = Source::hash_log(&dir, "b", "AWSLogs/link/secret.json.gz").await;
        let digest = Source::get_digest(&dir, "b", "AWSLogs/link/secret.json.gz").await;

        // Objects are written where their keys say, folders created.
        let key = "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/d.json.gz";
        let meta = HashMap::from([("signature".to_owned(), "ab".to_owned())]);
        dir.write_object(key, b"digest", &meta).unwrap();
        dir.write_object(
            "AWSLogs/111122223333/CloudTrail/x.json.gz",
            b"log",
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(std::fs::read(copy.join(key)).unwrap(), b"digest");
        let fetched = Source::get_digest(&dir, "b", key).await.unwrap().unwrap();
        assert_eq!(fetched.signature.as_deref(), Some("ab"));
        assert!(dir
            .write_object("AWSLogs/../../x", b"no", &HashMap::new())
            .is_err());
        assert!(!base.join("x").exists());

        assert!(matches!(dotdot, Ok(None)), "{dotdot:?}");
        assert!(matches!(linked, Ok(None)), "{linked:?}");
        let err = digest.unwrap_err().to_string();
        assert!(err.contains("refused") && err.contains("symlink"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
