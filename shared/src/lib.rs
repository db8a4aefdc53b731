//! trailkeep's library: everything the Lambda functions and the CLI share,
//! one folder per thing the system does, each with its ports (traits) next
//! to its logic; `aws/` adapts the ports to AWS services. The module map,
//! with the ports each capability uses, is in docs/architecture.md.
//!
//! - [`ingest`]: a trigger's payload → normalized, classified records →
//!   the history and the trails' staging.
//! - [`history`]: the per-region, 90-day event history (keys, items, the
//!   store port) and [`history::lookup`], LookupEvents over it.
//! - [`trail`]: which events a trail logs ([`trail::rules`] re-exported),
//!   trail administration ([`trail::admin`]) and the functions' cache.
//! - [`delivery`]: delivery windows, exactly-once delivery (first-staging
//!   notes, claims of re-delivered copies), log files.
//! - [`digest`]: the digest file format, the hourly signed run, streaming
//!   inflate + SHA-256.
//! - [`validate`]: the validator (digest chains, signatures, hashes) and the
//!   local copy it reads offline.
//! - [`aws`]: adapters from the ports to DynamoDB, S3 and KMS.
//! - [`model`], [`time`], [`config`], [`store`]: the record, times, the
//!   functions' environment, the stores' error.
//! - `testkit` (feature `testkit`): in-memory fakes of every port, for
//!   fast use-case tests.

pub mod api;
pub mod aws;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod history;
pub mod ingest;
pub mod model;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod trail;
pub mod validate;
