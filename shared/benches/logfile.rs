//! Log file assembly throughput (records/s): sort + concatenate + SHA-256 +
//! gzip of staged records, against the baseline of serde_json serializing
//! the same records as `{"Records":[…]}` and gzipping the result.
//! The group is named after flate2's backend (`logfile-assembly-miniz_oxide`,
//! or `-zlib-rs` with `--features zlib-rs`).
//! `cargo bench -p trailkeep-shared --bench logfile`

use std::io::Write;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;
use trailkeep_shared::delivery::logfile::{assemble, DEFAULT_MAX_FILE_BYTES};

mod common;

const RECORDS: usize = 10_000;

fn bench(c: &mut Criterion) {
    let records = common::records(RECORDS);
    let staged = common::staged(&records);
    let mut group = c.benchmark_group(format!("logfile-assembly-{}", common::DEFLATE));
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
