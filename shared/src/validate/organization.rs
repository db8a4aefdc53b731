//! An organization trail's accounts, all at once (docs/organizations.md
//! "Checking every account"): which accounts have chains, each account's
//! chains validated with several accounts at a time, and a report per
//! account and region.
//!
//! The accounts are the union of three sources, so that deleting an
//! account's whole folder cannot take the account out of the report: the
//! trail's own account (its chains cover every region the trail logs),
//! every account the state table's chains name (chain heads and segment
//! marks), and every account folder under `[prefix/]AWSLogs/{org}/`. An
//! account the state table knows and the bucket no longer holds is
//! validated like any other, and each digest its chains owe is reported
//! missing.

use std::collections::{BTreeSet, HashMap};

use futures::channel::mpsc;
use futures::{stream, StreamExt, TryStreamExt};

use super::{validate, Finding, Found, Keys, Report, Request, Source};
use crate::digest::{ChainHead, SegmentMark};
use crate::ingest::normalize::is_region;
use crate::store::StoreError;
use crate::trail::{is_account_id, Place};

/// What the state table says of a trail's chains, keyed as it keys them
/// ([`Place::chain`]: `{region}`, or `{org}/{account}/{region}`). Best
/// effort: empty when the table cannot be read.
#[derive(Clone, Debug, Default)]
pub struct Chains {
    pub heads: HashMap<String, ChainHead>,
    pub segments: HashMap<String, Vec<SegmentMark>>,
}

/// Chain heads and segment marks by region, as a [`Request`] takes them.
pub type ByRegion = (
    HashMap<String, ChainHead>,
    HashMap<String, Vec<SegmentMark>>,
);

impl Chains {
    /// The heads and segment marks of `account`'s chains (in organization
    /// `org`'s folder, or the trail's own account's outside any), by region.
    pub fn of(&self, org: Option<&str>, account: &str) -> ByRegion {
        let chain = Place {
            org,
            account,
            region: "",
        }
        .chain();
        (
            by_region(&chain, &self.heads),
            by_region(&chain, &self.segments),
        )
    }

    /// The accounts whose chains in organization `org`'s folder the state
    /// table names (only account IDs: 12 digits).
    pub fn accounts(&self, org: &str) -> BTreeSet<String> {
        let prefix = format!("{org}/");
        self.heads
            .keys()
            .chain(self.segments.keys())
            .filter_map(|chain| chain.strip_prefix(&prefix)?.split_once('/'))
            .filter(|(account, region)| is_account_id(account) && is_region(region))
            .map(|(account, _)| account.to_owned())
            .collect()
    }
}

/// The entries of `map` whose chain is `chain` (a [`Place::chain`] with no
/// region) and a region, by that region.
fn by_region<V: Clone>(chain: &str, map: &HashMap<String, V>) -> HashMap<String, V> {
    map.iter()
        .filter_map(|(key, value)| {
            let region = key.strip_prefix(chain).filter(|r| is_region(r))?;
            Some((region.to_owned(), value.clone()))
        })
        .collect()
}

/// The accounts of an organization trail to validate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    /// Sorted, each once.
    pub ids: Vec<String>,
    /// Those whose chains the state table names.
    pub known: BTreeSet<String>,
    /// Folders under `[prefix/]AWSLogs/{org}/` whose names are not account
    /// IDs: trailkeep writes none, so they are reported and not looked
    /// into (as the bucket names them: print them with
    /// [`super::printable`]).
    pub odd_folders: Vec<String>,
}

/// Where to look for an organization trail's accounts.
#[derive(Clone, Copy, Debug)]
pub struct Folder<'a> {
    pub bucket: &'a str,
    /// The trail's key prefix (without the trailing `/`), if any.
    pub prefix: Option<&'a str>,
    pub org: &'a str,
    /// The trail's own account (its ARN's): always one of them.
    pub own_account: &'a str,
}

/// The accounts to validate: the trail's own, those the state table's
/// chains name, and those with a folder under `[prefix/]AWSLogs/{org}/`.
pub async fn find_accounts<S: Source>(
    src: &S,
    at: Folder<'_>,
    chains: &Chains,
) -> Result<Accounts, StoreError> {
    let prefix = at
        .prefix
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .unwrap_or_default();
    let folder = format!("{prefix}AWSLogs/{}/", at.org);
    let known = chains.accounts(at.org);
    let mut ids = known.clone();
    ids.insert(at.own_account.to_owned());
    let mut odd_folders = Vec::new();
    for name in src.folders(at.bucket, &folder).await? {
        if is_account_id(&name) {
            ids.insert(name);
        } else {
            odd_folders.push(name);
        }
    }
    odd_folders.sort();
    odd_folders.dedup();
    Ok(Accounts {
        ids: ids.into_iter().collect(),
        known,
        odd_folders,
    })
}

/// One account's run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountReport {
    pub account_id: String,
    /// Its counts, in all and per region.
    pub report: Report,
    /// The state table's chains of the account were read (so its heads
    /// and segment marks said which digests the range owes).
    pub known: bool,
}

/// What one account's run proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every digest and log file checked out, and there was a digest.
    Valid,
    /// Something is INVALID (a missing digest included).
    Invalid,
    /// No digest in the range, and the state table's heads and segment
    /// marks, read for this account, owe none (its chains began after the
    /// range, or ended before it).
    NoneOwed,
    /// No digest in the range, and nothing says none is owed: nothing is
    /// proven. An account whose digest folder was deleted looks like this
    /// when the state table cannot be read.
    NoDigests,
}

impl AccountReport {
    pub fn verdict(&self) -> Verdict {
        if !self.report.all_valid() {
            Verdict::Invalid
        } else if self.report.digests_total > 0 {
            Verdict::Valid
        } else if self.known {
            Verdict::NoneOwed
        } else {
            Verdict::NoDigests
        }
    }
}

/// Every account's run, by account ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganizationReport {
    pub accounts: Vec<AccountReport>,
    /// As [`Accounts::odd_folders`].
    pub odd_folders: Vec<String>,
}

impl OrganizationReport {
    /// Every account's counts added up, and the widest range found (no
    /// regions: they are per account).
    pub fn total(&self) -> Report {
        let (mut total, mut found) = (Report::default(), Found::default());
        for a in &self.accounts {
            let r = &a.report;
            total.digests_valid += r.digests_valid;
            total.digests_total += r.digests_total;
            total.logs_valid += r.logs_valid;
            total.logs_total += r.logs_total;
            found.merge(&Found::of(r));
        }
        (total.found_start, total.found_end) = (found.start, found.end);
        total
    }

    /// Valid: no account INVALID, none without digests that nothing
    /// accounts for, and at least one digest checked in all (nothing
    /// checked proves nothing).
    pub fn all_valid(&self) -> bool {
        self.accounts
            .iter()
            .all(|a| matches!(a.verdict(), Verdict::Valid | Verdict::NoneOwed))
            && self.total().digests_total > 0
    }
}

/// Accounts validated at once, at most.
pub const MAX_ACCOUNTS_AT_ONCE: usize = 8;

/// How a run's `concurrency` is shared among `accounts`: (accounts at
/// once, each one's concurrency). The requests in flight stay those of a
/// run of one account with `concurrency`.
pub fn share(concurrency: usize, accounts: usize) -> (usize, usize) {
    let at_once = MAX_ACCOUNTS_AT_ONCE.min(accounts).min(concurrency).max(1);
    (at_once, (concurrency / at_once).max(1))
}

/// Validates each account's chains: `req` (an organization trail's,
/// `account_id` the trail's own) with the account, its chains' heads and
/// segment marks from `chains` (`req.heads` and `req.segments` are not
/// used), and [`share`] of `req.concurrency`. `req.regions` are required
/// of the trail's own account alone, whose chains cover every region the
/// trail logs: a member's chains are only where it had events. Findings go
/// to `sink` with their account as they are made (accounts interleaved).
pub async fn validate_accounts<S: Source>(
    src: &S,
    keys: &Keys,
    req: &Request,
    chains: &Chains,
    accounts: &Accounts,
    mut sink: impl FnMut(&str, Finding) + Send,
) -> Result<OrganizationReport, StoreError> {
    let org = req.organization_id.as_deref();
    let (at_once, each) = share(req.concurrency, accounts.ids.len());
    let (tx, mut rx) = mpsc::unbounded::<(String, Finding)>();
    let runs = async move {
        stream::iter(&accounts.ids)
            .map(|account| {
                let tx = tx.clone();
                let (heads, segments) = chains.of(org, account);
                let regions = if *account == req.account_id {
                    req.regions.clone()
                } else {
                    Vec::new()
                };
                let request = Request {
                    account_id: account.clone(),
                    heads,
                    segments,
                    regions,
                    concurrency: each,
                    ..req.clone()
                };
                async move {
                    let report = validate(src, keys, &request, |f| {
                        // The receiver lives until every run is done.
                        let _ = tx.unbounded_send((request.account_id.clone(), f));
                    })
                    .await?;
                    Ok::<_, StoreError>(AccountReport {
                        known: accounts.known.contains(account),
                        account_id: request.account_id,
                        report,
                    })
                }
            })
            .buffer_unordered(at_once)
            .try_collect::<Vec<AccountReport>>()
            .await
        // `tx` is dropped here: the drain ends once the last run's findings are in.
    };
    let drain = async {
        while let Some((account, f)) = rx.next().await {
            sink(&account, f);
        }
    };
    let (runs, ()) = futures::join!(runs, drain);
    let mut reports = runs?;
    reports.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(OrganizationReport {
        accounts: reports,
        odd_folders: accounts.odd_folders.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(end: &str) -> ChainHead {
        ChainHead {
            end: crate::time::parse(end).unwrap(),
            bucket: "logs".into(),
            key: "k".into(),
            sha256: String::new(),
            signature: String::new(),
            last: false,
        }
    }

    #[test]
    fn the_state_tables_chains_are_split_by_account_and_region() {
        let mut chains = Chains::default();
        for chain in [
            "eu-west-1",
            "o-a1b2c3d4e5/111122223333/eu-west-1",
            "o-a1b2c3d4e5/222233334444/us-east-2",
            "o-a1b2c3d4e5/222233334444/eu-west-1",
            "o-a1b2c3d4e5/../eu-west-1",
            "o-a1b2c3d4e5/333344445555/a/b",
            "o-zzzzzzzzzz/444455556666/eu-west-1",
        ] {
            chains
                .heads
                .insert(chain.into(), head("2026-11-24T01:00:00Z"));
        }
        chains
            .segments
            .insert("o-a1b2c3d4e5/555566667777/eu-west-1".into(), Vec::new());
        assert_eq!(
            chains.accounts("o-a1b2c3d4e5"),
            BTreeSet::from(["111122223333", "222233334444", "555566667777"].map(str::to_owned))
        );
        let (heads, segments) = chains.of(Some("o-a1b2c3d4e5"), "222233334444");
        let mut regions: Vec<&String> = heads.keys().collect();
        regions.sort();
        assert_eq!(regions, ["eu-west-1", "us-east-2"]);
        assert!(segments.is_empty());
        // The trail's own account outside the organization's folder: the
        // chains keyed by region alone.
        let (heads, _) = chains.of(None, "111122223333");
        assert_eq!(heads.keys().collect::<Vec<_>>(), ["eu-west-1"]);
    }

    #[test]
    fn concurrency_is_shared_among_the_accounts_at_once() {
        assert_eq!(share(32, 1), (1, 32));
        assert_eq!(share(32, 3), (3, 10));
        assert_eq!(share(32, 50), (8, 4));
        assert_eq!(share(2, 50), (2, 1));
        assert_eq!(share(0, 5), (1, 1));
        assert_eq!(share(32, 0), (1, 32));
    }

    #[test]
    fn an_account_without_digests_is_valid_only_when_the_state_table_owes_none() {
        let account = |digests: usize, invalid: bool, known: bool| AccountReport {
            account_id: "222233334444".into(),
            report: Report {
                digests_total: digests,
                digests_valid: digests - usize::from(invalid),
                ..Report::default()
            },
            known,
        };
        assert_eq!(account(2, false, false).verdict(), Verdict::Valid);
        assert_eq!(account(2, true, true).verdict(), Verdict::Invalid);
        assert_eq!(account(0, false, true).verdict(), Verdict::NoneOwed);
        assert_eq!(account(0, false, false).verdict(), Verdict::NoDigests);
        let org = |accounts| OrganizationReport {
            accounts,
            odd_folders: Vec::new(),
        };
        assert!(org(vec![account(2, false, false), account(0, false, true)]).all_valid());
        assert!(!org(vec![account(2, false, false), account(0, false, false)]).all_valid());
        assert!(!org(vec![account(2, false, false), account(2, true, true)]).all_valid());
        // Nothing checked in any account proves nothing.
        assert!(!org(vec![account(0, false, true)]).all_valid());
        assert!(!org(Vec::new()).all_valid());
    }

    /// An organization trail on the in-memory fakes: the stack's own
    /// account (eu-west-1) and two members (one in two regions) with an
    /// event at 00:30 and 01:30 each, delivered and digested to 02:10.
    mod world {
        use chrono::{DateTime, Utc};

        use super::super::super::{Finding, Keys, Request};
        use super::super::*;
        use crate::delivery::{DeliverSettings, Deliverer};
        use crate::digest::{DigestSettings, DigestState, Digester};
        use crate::testkit::stage;
        use crate::testkit::{trail, MemoryBucket, MemoryState, TestSigner, ACCOUNT};

        pub const ORG: &str = "o-a1b2c3d4e5";
        pub const MEMBER: &str = "222233334444";
        pub const OTHER: &str = "333344445555";
        pub const PLACES: [(&str, &str); 4] = [
            (ACCOUNT, "eu-west-1"),
            (MEMBER, "eu-west-1"),
            (MEMBER, "us-east-2"),
            (OTHER, "eu-west-1"),
        ];

        pub fn t(s: &str) -> DateTime<Utc> {
            crate::time::parse(s).unwrap()
        }

        pub struct World {
            pub state: MemoryState,
            pub bucket: MemoryBucket,
            pub keys: Keys,
        }

        impl World {
            pub async fn new() -> Self {
                let (state, bucket, signer) = (
                    MemoryState::default(),
                    MemoryBucket::default(),
                    TestSigner::new(),
                );
                let mut org = trail("org", t("2026-11-24T00:20:00Z"));
                org.organization_id = Some(ORG.into());
                let trails = vec![org];
                for h in 0..2 {
                    let at = t("2026-11-24T00:30:00Z") + chrono::Duration::hours(h);
                    for (i, (account, region)) in PLACES.iter().enumerate() {
                        let id = format!("00000000-0000-4000-8000-{h:06}{i:06}");
                        let event = call_of(account, region, &id, &at);
                        stage(&state, &trails, &event.record, &event.json, &at)
                            .await
                            .unwrap();
                    }
                }
                let deliver = DeliverSettings::default();
                for now in ["2026-11-24T01:05:00Z", "2026-11-24T02:05:00Z"] {
                    Deliverer {
                        staging: &state,
                        logs: &bucket,
                        notifier: &crate::testkit::MemoryNotifier::default(),
                        events: &crate::testkit::MemoryEventLog::default(),
                        settings: &deliver,
                    }
                    .run(&trails, &t(now))
                    .await
                    .into_result()
                    .unwrap();
                }
                let settings = DigestSettings {
                    regions: vec!["eu-west-1".into()],
                    ..DigestSettings::default()
                };
                Digester {
                    state: &state,
                    signer: &signer,
                    bucket: &bucket,
                    settings: &settings,
                }
                .run(&trails, &t("2026-11-24T02:10:00Z"))
                .await
                .into_result()
                .unwrap();
                World {
                    state,
                    bucket,
                    keys: signer.keys(),
                }
            }

            /// The state table's chains of the trail, as validate-logs
            /// reads them.
            pub async fn chains(&self) -> Chains {
                let mut chains = Chains::default();
                for cursor in self.state.cursors("org").await.unwrap() {
                    let chain = cursor.chain;
                    if let Some(head) = self.state.chain_head("org", &chain) {
                        chains.heads.insert(chain.clone(), head);
                    }
                    let marks = self.state.segments("org", &chain);
                    chains.segments.insert(chain, marks);
                }
                chains
            }

            /// The trail's own account's request, without --account-id.
            pub fn request(&self) -> Request {
                Request {
                    bucket: "logs".into(),
                    prefix: None,
                    account_id: ACCOUNT.into(),
                    organization_id: Some(ORG.into()),
                    trail_name: "org".into(),
                    home_region: "eu-west-1".into(),
                    regions: Vec::new(),
                    start: t("2026-11-24T00:00:00Z"),
                    end: t("2026-11-24T02:10:00Z"),
                    now: t("2026-11-24T02:10:00Z"),
                    heads: Default::default(),
                    segments: Default::default(),
                    tail_grace: chrono::Duration::minutes(30),
                    concurrency: 4,
                    report_unlisted: false,
                }
            }

            pub async fn accounts(&self, chains: &Chains) -> Accounts {
                let at = Folder {
                    bucket: "logs",
                    prefix: None,
                    org: ORG,
                    own_account: ACCOUNT,
                };
                find_accounts(&self.bucket, at, chains).await.unwrap()
            }

            /// Every account validated; findings with their account.
            pub async fn validate(
                &self,
                chains: &Chains,
            ) -> (OrganizationReport, Vec<(String, Finding)>) {
                let accounts = self.accounts(chains).await;
                let mut findings = Vec::new();
                let report = validate_accounts(
                    &self.bucket,
                    &self.keys,
                    &self.request(),
                    chains,
                    &accounts,
                    |account, f| findings.push((account.to_owned(), f)),
                )
                .await
                .unwrap();
                (report, findings)
            }

            /// Deletes every object under `prefix`.
            pub fn delete(&self, prefix: &str) -> usize {
                let keys = self.bucket.keys("logs", prefix);
                for key in &keys {
                    self.bucket.set_object("logs", key, None);
                }
                keys.len()
            }
        }

        /// An API call of `account` in `region`, as its own bus forwards it.
        fn call_of(
            account: &str,
            region: &str,
            id: &str,
            at: &DateTime<Utc>,
        ) -> crate::ingest::normalize::Normalized {
            let mut v: serde_json::Value =
                serde_json::from_str(&crate::testkit::api_call(id, at)).unwrap();
            v["account"] = account.into();
            v["region"] = region.into();
            v["detail"]["recipientAccountId"] = account.into();
            v["detail"]["awsRegion"] = region.into();
            let ctx = crate::ingest::normalize::Context {
                account_id: ACCOUNT.into(),
            };
            crate::ingest::normalize::normalize(&v.to_string(), &ctx)
                .records
                .pop()
                .unwrap()
        }
    }

    /// (account, region, verdict line) of each region of each account.
    fn summaries(report: &OrganizationReport) -> Vec<(String, String, String)> {
        report
            .accounts
            .iter()
            .flat_map(|a| {
                a.report
                    .regions
                    .iter()
                    .map(|(region, r)| (a.account_id.clone(), region.clone(), r.summary()))
            })
            .collect()
    }

    #[tokio::test]
    async fn every_account_of_an_organization_trail_is_validated_with_a_report_per_region() {
        use world::*;
        // GIVEN an organization trail's chains of three accounts
        let w = World::new().await;
        let chains = w.chains().await;
        // WHEN every account is validated at once
        let (report, findings) = w.validate(&chains).await;
        // THEN each account and region has its own report, all valid
        let ids: Vec<&str> = report.accounts.iter().map(|a| &*a.account_id).collect();
        assert_eq!(ids, [crate::testkit::ACCOUNT, MEMBER, OTHER]);
        let expected: Vec<(String, String, String)> = PLACES
            .iter()
            .map(|(account, region)| {
                (
                    account.to_string(),
                    region.to_string(),
                    "2/2 digest files valid, 2/2 log files valid".to_owned(),
                )
            })
            .collect();
        assert_eq!(summaries(&report), expected);
        assert!(report
            .accounts
            .iter()
            .all(|a| a.verdict() == Verdict::Valid && a.known));
        assert!(report.all_valid());
        assert_eq!(
            report.total().summary(),
            "8/8 digest files valid, 8/8 log files valid"
        );
        // AND each finding comes with the account whose folder it is in
        assert_eq!(findings.len(), 16);
        for (account, f) in &findings {
            assert!(
                f.location
                    .starts_with(&format!("memory://logs/AWSLogs/{ORG}/{account}/")),
                "{account} {f:?}"
            );
            assert!(f.location.contains(&format!("/{}/", f.region)), "{f:?}");
        }
    }

    #[tokio::test]
    async fn an_account_whose_whole_folder_is_deleted_is_still_reported() {
        use world::*;
        // GIVEN the trail's chains, and a member's whole folder deleted
        let w = World::new().await;
        let chains = w.chains().await;
        assert!(w.delete(&format!("AWSLogs/{ORG}/{MEMBER}/")) > 0);
        // WHEN every account is validated with the state table
        let (report, findings) = w.validate(&chains).await;
        // THEN the member is still there, INVALID in both its regions: each
        // digest its chain heads say were written is missing
        let member = report
            .accounts
            .iter()
            .find(|a| a.account_id == MEMBER)
            .expect("the member is reported");
        assert_eq!(member.verdict(), Verdict::Invalid);
        let regions: Vec<&String> = member.report.regions.keys().collect();
        assert_eq!(regions, ["eu-west-1", "us-east-2"]);
        for r in member.report.regions.values() {
            assert_eq!(r.summary(), "0/2 digest files valid, 0/0 log files valid");
        }
        let missing: Vec<&Finding> = findings
            .iter()
            .filter(|(a, _)| a == MEMBER)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(missing.len(), 4);
        assert!(missing.iter().all(|f| f
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("not found"))));
        // AND the other accounts are valid, the run is not
        assert!(report
            .accounts
            .iter()
            .filter(|a| a.account_id != MEMBER)
            .all(|a| a.verdict() == Verdict::Valid));
        assert!(!report.all_valid());
        // AND without the state table nothing names the member any more:
        // only the state table can tell a deleted account from none
        let blind = w.accounts(&Chains::default()).await;
        assert_eq!(blind.ids, [crate::testkit::ACCOUNT, OTHER]);
    }

    #[tokio::test]
    async fn an_account_left_without_digests_fails_the_run_and_odd_folders_are_reported() {
        use world::*;
        // GIVEN a member's digest folder deleted (its log files left), and
        // a folder that is no account's beside the accounts' folders
        let w = World::new().await;
        assert!(w.delete(&format!("AWSLogs/{ORG}/{OTHER}/CloudTrail-Digest/")) > 0);
        for odd in ["../escape", "12345678901", "evil\n"] {
            let key = format!("AWSLogs/{ORG}/{odd}/x.json.gz");
            w.bucket.set_object("logs", &key, Some(Default::default()));
        }
        // WHEN every account is validated without the state table
        let (report, findings) = w.validate(&Chains::default()).await;
        // THEN the member is found by its folder, with no digests: nothing
        // is proven for it, and the run is not valid
        let other = report
            .accounts
            .iter()
            .find(|a| a.account_id == OTHER)
            .expect("found by its folder");
        assert_eq!(other.verdict(), Verdict::NoDigests);
        assert!(other.report.all_valid());
        assert!(!report.all_valid());
        assert!(findings.iter().all(|(a, _)| a != OTHER));
        // AND the odd folders are listed, not looked into
        assert_eq!(report.odd_folders, ["..", "12345678901", "evil\n"]);
        assert_eq!(report.accounts.len(), 3);
    }
}
