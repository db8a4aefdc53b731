//! trailkeep's library: everything the Lambda functions and the CLI share.
//!
//! - [`config`]: the functions' environment variables.
//! - [`model`]: the CloudTrail event record.
//! - [`normalize`]: every trigger ingest accepts → records.
//! - [`classify`]: management/data, read-only, global services.
//! - [`history`]: the per-region, 90-day event history (keys, items, the port).
//! - [`trail`]: which events a trail logs, into which region's files.
//! - [`lookup`]: LookupEvents over the history (request, pages, tokens).
//! - [`logfile`]: CloudTrail log file content and keys.
//! - [`trails`]: trail administration (the CloudTrail verbs) over a store port.
//! - [`delivery`]: staging at ingest and exactly-once log file delivery.
//! - [`digest`]: digest file format, key, string to sign, key fingerprint.
//! - [`digester`]: the hourly digest run (chains, catch-up, stop/start).
//! - [`gzhash`]: streaming inflate + SHA-256 of gzip files.
//! - [`ingest`]: the ingest use case (normalize, then record in the history).
//! - [`validate`]: the log file validator (digest chains, signatures, hashes).
//! - [`localcopy`]: a local copy of a log bucket, as the validator reads it.
//! - [`aws`]: adapters from the ports to AWS services.
//! - [`provision`] (feature `provision`): resources from template.yaml on a local endpoint.

pub mod aws;
pub mod classify;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod digester;
pub mod gzhash;
pub mod history;
pub mod ingest;
pub mod localcopy;
pub mod logfile;
pub mod lookup;
pub mod model;
pub mod normalize;
#[cfg(feature = "provision")]
pub mod provision;
pub mod store;
pub mod time;
pub mod trail;
pub mod trails;
pub mod validate;
