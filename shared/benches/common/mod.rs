//! Realistic records for the benches.

use trailkeep_shared::delivery::logfile::Staged;
use trailkeep_shared::ingest::normalize::{normalize, Context};
use trailkeep_shared::model::Record;

const SAMPLES: [&str; 5] = [
    include_str!("../../../events/eventbridge/api-call-write.json"),
    include_str!("../../../events/eventbridge/api-call-read.json"),
    include_str!("../../../events/eventbridge/console-signin-success.json"),
    include_str!("../../../events/eventbridge/s3-object-created.json"),
    include_str!("../../../events/s3/put.json"),
];

/// flate2's backend in this build (the crate's `zlib-rs` feature).
#[allow(dead_code)] // not every bench compresses
pub const DEFLATE: &str = if cfg!(feature = "zlib-rs") {
    "zlib-rs"
} else {
    "miniz_oxide"
};

/// `n` realistic records with distinct ids and shuffled times.
pub fn records(n: usize) -> Vec<Record> {
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    let base: Vec<Record> = SAMPLES
        .iter()
        .map(|p| normalize(p, &ctx).records.remove(0).record)
        .collect();
    (0..n)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r.event_id = format!("{:08x}-0000-4000-8000-{:012x}", i, i * 7919);
            r.event_time += chrono::Duration::seconds(((i * 7919) % 300) as i64);
            r
        })
        .collect()
}

/// The same records, staged (serialized) as delivery holds them.
#[allow(dead_code)] // not every bench uses both
pub fn staged(records: &[Record]) -> Vec<Staged> {
    records
        .iter()
        .map(|r| Staged {
            event_time: r.event_time,
            event_id: r.event_id.clone(),
            json: serde_json::to_string(r).unwrap(),
            first: None,
        })
        .collect()
}
