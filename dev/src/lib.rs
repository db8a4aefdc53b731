//! trailkeep's development tooling, in a crate of its own that neither the
//! functions nor the `trailkeep` CLI link:
//!
//! - [`provision`]: the resources template.yaml declares (tables, log
//!   bucket, signing key), created on a local endpoint for the local run
//!   and the integration tests;
//! - [`make_copy`]: the validation benchmark's generated bucket copy;
//! - [`bench_lookup`]: LookupEvents page latency, today's layout against
//!   the one before;
//! - [`bench_ingest`]: ingest's time per event at a number of concurrent
//!   invocations;
//! - [`bench_deliver`]: deliver's throughput and memory on one large window;
//! - [`bench_digest`]: the digest run of an organization trail with many
//!   accounts and regions.
//!
//! The `trailkeep-dev` binary (src/main.rs) wraps them for the scripts.

pub mod bench_deliver;
pub mod bench_digest;
pub mod bench_ingest;
pub mod bench_lookup;
pub mod make_copy;
pub mod provision;
