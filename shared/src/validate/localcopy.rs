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
            if entry.path().is_dir() {
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
        let dir = self.path(prefix);
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
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.fail("read", &path, e)),
        };
        // A missing or unreadable sidecar is a missing signature.
        let meta: HashMap<String, String> = std::fs::read_to_string(self.path(&sidecar(key)))
            .ok()
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
        let path = self.path(key);
        let p = path.clone();
        tokio::task::spawn_blocking(move || hash_file(&p))
            .await
            .map_err(|e| self.fail("hash", &path, e))?
            .map_err(|e| self.fail("read", &path, e))
    }
}
