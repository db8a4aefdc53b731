//! Lookup page assembly: a page of 50 stored records (as a DynamoDB Query
//! returns them) turned into CloudTrail's `LookupEvents` response body —
//! each record parsed for its lookup fields and embedded as the
//! `CloudTrailEvent` string. Baseline in the same run: parsing the same 50
//! records into `serde_json::Value`s and writing them out as one array, the
//! least a response that looks into the records must do. `trailkeep-inflating`
//! adds what the adapter does first since records are stored packed: inflate
//! the 50 primary items' records (`history::unpack`).
//!
//! `pack/…` and `unpack/…`: one record of the realistic mix (3.8 KB,
//! `shared/src/history/testdata/record.json`, not in the dictionary)
//! packed as ingest packs it (zstd level 9 with the preset dictionary) and
//! unpacked as a lookup does, against raw deflate at level 6 (the format
//! before 2026-12-03), with flate2's backend of this build.
//!
//! `cargo bench -p trailkeep-shared --bench lookup`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailkeep_shared::history::lookup::{response_json, Page};
use trailkeep_shared::history::{pack, unpack};

mod common;

fn page_assembly(c: &mut Criterion) {
    let records: Vec<String> = common::records(50)
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let page = Page {
        records: records.clone(),
        next_token: Some("t".repeat(200)),
    };
    let mut group = c.benchmark_group("lookup-page");
    group.throughput(Throughput::Elements(50));
    group.bench_function("trailkeep", |b| b.iter(|| response_json(&page).to_string()));
    let packed: Vec<Vec<u8>> = records.iter().map(|r| pack(r)).collect();
    group.bench_function("trailkeep-inflating", |b| {
        b.iter(|| {
            let page = Page {
                records: packed.iter().map(|p| unpack(p).unwrap()).collect(),
                next_token: Some("t".repeat(200)),
            };
            response_json(&page).to_string()
        })
    });
    group.bench_function("baseline-parse-and-write", |b| {
        b.iter(|| {
            let values: Vec<serde_json::Value> = records
                .iter()
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
            serde_json::to_string(&values).unwrap()
        })
    });
    group.finish();
}

fn packing(c: &mut Criterion) {
    use std::io::{Read, Write};
    let json = include_str!("../src/history/testdata/record.json");
    // Raw deflate at level 6: the format before 2026-12-03.
    let deflate = |json: &str| {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(json.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let (zstd, deflated) = (pack(json), deflate(json));
    eprintln!(
        "{} bytes packed: zstd-dictionary {}, deflate {}",
        json.len(),
        zstd.len(),
        deflated.len()
    );

    let mut group = c.benchmark_group("pack");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("zstd-dictionary", |b| b.iter(|| pack(json)));
    group.bench_function("deflate", |b| b.iter(|| deflate(json)));
    group.finish();

    let mut group = c.benchmark_group("unpack");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("zstd-dictionary", |b| b.iter(|| unpack(&zstd).unwrap()));
    group.bench_function("deflate", |b| {
        b.iter(|| {
            let mut out = String::new();
            flate2::read::DeflateDecoder::new(&deflated[..])
                .read_to_string(&mut out)
                .unwrap();
            out
        })
    });
    group.finish();
}

criterion_group!(benches, page_assembly, packing);
criterion_main!(benches);
