//! Normalization time per event, for each trigger shape ingest accepts:
//! from the payload bytes Lambda hands over to a serialized, classified
//! record (what ingest stores), against the baseline of parsing the same
//! bytes into a `serde_json::Value`. `cargo bench -p trailkeep-shared --bench normalize`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use trailkeep_shared::ingest::normalize::{normalize, Context};

const SHAPES: [(&str, &str); 6] = [
    (
        "eventbridge-api-call",
        include_str!("../../events/eventbridge/api-call-write.json"),
    ),
    (
        "eventbridge-console-sign-in",
        include_str!("../../events/eventbridge/console-signin-success.json"),
    ),
    (
        "eventbridge-service-event",
        include_str!("../../events/eventbridge/service-event.json"),
    ),
    (
        "eventbridge-s3-object",
        include_str!("../../events/eventbridge/s3-object-created.json"),
    ),
    (
        "eventbridge-custom",
        include_str!("../../events/eventbridge/custom-app-event.json"),
    ),
    ("s3-notification", include_str!("../../events/s3/put.json")),
];

fn bench(c: &mut Criterion) {
    let ctx = Context {
        account_id: "111122223333".into(),
    };
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(1));
    for (name, payload) in SHAPES {
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            payload.as_bytes(),
            |b, bytes| {
                b.iter(|| {
                    // What the Lambda runtime does with the bytes, then normalization.
                    let raw: Box<serde_json::value::RawValue> =
                        serde_json::from_slice(black_box(bytes)).unwrap();
                    let batch = normalize(raw.get(), &ctx);
                    assert_eq!(batch.records.len(), 1);
                    batch
                })
            },
        );
    }
    group.finish();

    // Baseline: parsing the same bytes into a serde_json::Value, which is
    // what a generic JSON Lambda handler pays before doing anything.
    let mut baseline = c.benchmark_group("baseline-parse-value");
    baseline.throughput(Throughput::Elements(1));
    for (name, payload) in SHAPES {
        baseline.bench_with_input(
            BenchmarkId::from_parameter(name),
            payload.as_bytes(),
            |b, bytes| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(bytes)).unwrap())
            },
        );
    }
    baseline.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
