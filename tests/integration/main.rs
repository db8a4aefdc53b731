//! Integration tests: the real AWS SDK for Rust against a local moto server.
//!
//! `scripts/test.sh` starts moto on 127.0.0.1 and exports AWS_ENDPOINT_URL;
//! each test creates its own resources (random names) from template.yaml's
//! definitions and deletes them when done.

mod athena;
mod cost;
mod delivery;
mod digests;
mod docs;
mod faults;
mod forwarder;
mod helpers;
mod history;
mod iam;
mod load;
mod lookup;
mod mix;
mod policies;
mod queue;
mod trails;
