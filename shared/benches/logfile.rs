//! Log file assembly throughput (records/s): sort + concatenate + SHA-256 +
//! gzip of staged records, against the baseline of serde_json serializing
//! the same records as `{"Records":[…]}` and gzipping the result.
//! `cargo bench -p trailkeep-shared --bench logfile`

use std::io::Write;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;
use trailkeep_shared::logfile::{assemble, Staged, DEFAULT_MAX_FILE_BYTES};
use trailkeep_shared::model::Record;
use trailkeep_shared::normalize::{normalize, Context};

const RECORDS: usize = 10_000;
const SAMPLES: [&str; 5] = [
    include_str!("../../events/eventbridge/api-call-write.json"),
    include_str!("../../events/eventbridge/api-call-read.json"),
    include_str!("../../events/eventbridge/console-signin-success.json"),
    include_str!("../../events/eventbridge/s3-object-created.json"),
    include_str!("../../events/s3/put.json"),
];

/// 10,000 realistic records with distinct ids and shuffled times.
fn records() -> Vec<Record> {
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    let base: Vec<Record> = SAMPLES
        .iter()
        .map(|p| normalize(p, &ctx).records.remove(0).record)
        .collect();
    (0..RECORDS)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r.event_id = format!("{:08x}-0000-4000-8000-{:012x}", i, i * 7919);
            r.event_time += chrono::Duration::seconds(((i * 7919) % 300) as i64);
            r
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records = records();
    let staged: Vec<Staged> = records
        .iter()
        .map(|r| Staged {
            event_time: r.event_time,
            event_id: r.event_id.clone(),
            json: serde_json::to_string(r).unwrap(),
        })
        .collect();
    let mut group = c.benchmark_group("logfile-assembly");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    group.bench_function("trailkeep", |b| {
        b.iter_batched(
            || staged.clone(),
            |mut s| assemble(&mut s, DEFAULT_MAX_FILE_BYTES).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("baseline-serde-json-gzip", |b| {
        b.iter(|| {
            let json = serde_json::to_vec(&serde_json::json!({ "Records": &records })).unwrap();
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&json).unwrap();
            gz.finish().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
