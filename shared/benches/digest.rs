//! Digest building and validation hot paths:
//! - `inflate-sha256`: SHA-256 of a log file's inflated bytes while it
//!   streams in (64 KB chunks), the validator's and digest function's inner
//!   loop, in MB/s of uncompressed data; reference: inflating alone.
//!   Named after flate2's backend (`inflate-sha256-miniz_oxide`, or
//!   `-zlib-rs` with `--features zlib-rs`). The input file is also
//!   written to cargo's bench scratch directory for bench.sh's
//!   `zcat | sha256sum` baseline on the same bytes.
//! - `sha256`: SHA-256 alone over the same inflated bytes: RustCrypto's
//!   `sha2` (SHA-NI when the CPU has it, as here) against `ring`'s (the
//!   product's).
//! - `digest-build`: a digest JSON with N log files serialized, hashed into
//!   the string to sign, and gzipped (what the digest function does per hour
//!   besides I/O and KMS).
//!
//! `cargo bench -p trailkeep-shared --bench digest`

use std::io::{Read, Write};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use trailkeep_shared::delivery::logfile::{assemble, DEFAULT_MAX_FILE_BYTES};
use trailkeep_shared::digest::gzhash::GzHasher;
use trailkeep_shared::digest::{
    string_to_sign, DigestFile, DigestLogFile, HASH_ALGORITHM, SIGNATURE_ALGORITHM,
};

mod common;

const CHUNK: usize = 64 * 1024;

fn inflate_sha256(c: &mut Criterion) {
    let mut staged = common::staged(&common::records(5_000));
    let file = assemble(&mut staged, DEFAULT_MAX_FILE_BYTES)
        .unwrap()
        .remove(0);
    let input =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("inflate-sha256-input.json.gz");
    std::fs::write(&input, &file.gzip).unwrap();
    let mut group = c.benchmark_group(format!("inflate-sha256-{}", common::DEFLATE));
    group.throughput(Throughput::Bytes(file.uncompressed_bytes as u64));
    group.sample_size(30);
    group.bench_function("trailkeep", |b| {
        b.iter(|| {
            let mut h = GzHasher::new();
            for chunk in file.gzip.chunks(CHUNK) {
                h.update(chunk).unwrap();
            }
            h.finish().unwrap()
        })
    });
    group.bench_function("inflate-only", |b| {
        b.iter(|| {
            let mut d = flate2::write::GzDecoder::new(std::io::sink());
            for chunk in file.gzip.chunks(CHUNK) {
                d.write_all(chunk).unwrap();
            }
            d.finish().unwrap()
        })
    });
    group.finish();
}

fn sha256(c: &mut Criterion) {
    use sha2::Digest;
    let mut staged = common::staged(&common::records(5_000));
    let file = assemble(&mut staged, DEFAULT_MAX_FILE_BYTES)
        .unwrap()
        .remove(0);
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&file.gzip[..])
        .read_to_end(&mut json)
        .unwrap();
    let mut group = c.benchmark_group("sha256");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.sample_size(30);
    group.bench_function("sha2", |b| b.iter(|| sha2::Sha256::digest(&json)));
    group.bench_function("ring", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, &json))
    });
    group.finish();
}

fn digest(files: usize) -> DigestFile {
    let t = |m: usize| format!("2026-11-24T03:{:02}:00Z", m % 60);
    DigestFile {
        aws_account_id: "111122223333".into(),
        digest_start_time: "2026-11-24T02:00:00Z".into(),
        digest_end_time: "2026-11-24T03:00:00Z".into(),
        digest_s3_bucket: "trailkeep-logs".into(),
        digest_s3_object: "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T030000Z.json.gz".into(),
        digest_public_key_fingerprint: "7062f239b4fcab6c41f4da1239980708".into(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
        newest_event_time: Some(t(59)),
        oldest_event_time: Some(t(0)),
        previous_digest_s3_bucket: Some("trailkeep-logs".into()),
        previous_digest_s3_object: Some("AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/24/111122223333_CloudTrail-Digest_eu-west-1_audit_eu-west-1_20261124T020000Z.json.gz".into()),
        previous_digest_hash_value: Some("ab".repeat(32)),
        previous_digest_hash_algorithm: Some(HASH_ALGORITHM.into()),
        previous_digest_signature: Some("cd".repeat(256)),
        log_files: (0..files)
            .map(|i| DigestLogFile {
                s3_bucket: "trailkeep-logs".into(),
                s3_object: format!("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/24/111122223333_CloudTrail_eu-west-1_20261124T02{:02}Z_{i:016x}.json.gz", i % 60),
                hash_value: format!("{i:064x}"),
                hash_algorithm: HASH_ALGORITHM.into(),
                newest_event_time: t(i + 5),
                oldest_event_time: t(i),
            })
            .collect(),
    }
}

fn digest_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest-build");
    // 12 files: one per 5-minute window; 120: a busy hour with split files.
    for files in [12usize, 120] {
        let d = digest(files);
        group.bench_with_input(BenchmarkId::from_parameter(files), &d, |b, d| {
            b.iter(|| {
                let json = serde_json::to_vec(d).unwrap();
                let to_sign = string_to_sign(
                    &d.digest_end_time,
                    &d.digest_s3_bucket,
                    &d.digest_s3_object,
                    &json,
                    d.previous_digest_signature.as_deref(),
                );
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&json).unwrap();
                (to_sign, gz.finish().unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, inflate_sha256, sha256, digest_build);
criterion_main!(benches);
