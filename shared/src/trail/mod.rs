//! Trails: the rules a trail follows ([`rules`]: which events it logs, into
//! which region's files), their administration with CloudTrail's verbs
//! ([`admin`], over the [`TrailStore`] port), and the cached view the
//! functions read ([`cache`]).

pub mod admin;
mod advanced;
mod cache;
pub mod health;
mod rules;

pub use admin::{trail_name, AdminError, NewTrail, TrailSet, TrailStore, TrailUpdate};
pub use cache::TrailCache;
pub use health::{HealthStore, RunOutcome, TrailHealth};
pub use rules::*;
