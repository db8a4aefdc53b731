//! The trails as a function sees them: one read of the trail document,
//! cached for a short time.

use super::admin::TrailStore;
use super::Trail;
use crate::store::StoreError;

/// The trails as a function sees them: reloaded at most every `ttl`, so a
/// trail change (start/stop logging, selectors) takes effect within `ttl`.
pub struct TrailCache<S> {
    store: S,
    ttl: std::time::Duration,
    cached: tokio::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<Trail>>)>>,
}

impl<S: TrailStore> TrailCache<S> {
    pub fn new(store: S, ttl: std::time::Duration) -> Self {
        Self {
            store,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The trails, from the cache when it is fresh.
    pub async fn trails(&self) -> Result<std::sync::Arc<Vec<Trail>>, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, trails)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(trails.clone());
            }
        }
        let trails = std::sync::Arc::new(self.store.load().await?.trails);
        *cached = Some((std::time::Instant::now(), trails.clone()));
        Ok(trails)
    }
}
