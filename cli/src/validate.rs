//! `validate-logs`, `download-logs` and `list-public-keys`: the auditor's
//! verbs (docs/validation.md). `validate-logs` takes the AWS CLI's flags;
//! it reads the bucket or a local copy, and public keys from files or KMS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::json;
use trailkeep_shared::aws::kms;
use trailkeep_shared::aws::s3::{self, S3Logs};
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::digest::registry;
use trailkeep_shared::digest::DigestState;
use trailkeep_shared::trail::{admin, Place};
use trailkeep_shared::validate::localcopy::{self, LocalDir};
use trailkeep_shared::validate::organization::{self, Chains, Folder, OrganizationReport, Verdict};
use trailkeep_shared::validate::{self, Finding, Keys, Report, Request, Source};

use crate::progress::{Progress, Watch};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Which trail's files, and where they are.
#[derive(Args, Debug, Clone)]
pub struct Location {
    /// The trail: arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME.
    #[arg(long)]
    trail_arn: String,
    /// The bucket (default: the trail's, read from the state table; or the
    /// bucket a --local-dir copy was taken from).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The key prefix (default: the trail's).
    #[arg(long)]
    s3_prefix: Option<String>,
    /// The account in the keys (default: the trail ARN's). For an
    /// organization trail, the member account whose files to check or
    /// copy; without it, every account's: the trail's own, each one the
    /// state table's chains name, and each with a folder under
    /// `AWSLogs/o-…/` (validated several at once, a summary per account and
    /// region).
    #[arg(long)]
    account_id: Option<String>,
    /// An organization trail's organization, whose folder
    /// (`AWSLogs/o-…/ACCOUNT/`) holds its files (default: the trail's, read
    /// from the state table; none for a trail of one account). "": none,
    /// whatever the trail is now (its chains from before it became one).
    #[arg(long)]
    organization_id: Option<String>,
}

impl Location {
    /// `--account-id`, else the trail ARN's account: 12 digits, as it is a
    /// folder of the keys.
    fn account(&self, arn_account: String) -> Result<String, AuditError> {
        let account = self.account_id.clone().unwrap_or(arn_account);
        if !trailkeep_shared::trail::is_account_id(&account) {
            return Err(AuditError::Usage(format!(
                "--account-id {account:?} is not an account ID (12 digits)"
            )));
        }
        Ok(account)
    }
}

/// Where a trail's files are.
struct Found {
    bucket: String,
    prefix: Option<String>,
    organization_id: Option<String>,
}

/// `validate-logs`' flags.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    location: Location,
    /// Start of the range (ISO 8601 or epoch seconds).
    #[arg(long)]
    start_time: String,
    /// End of the range (default: now).
    #[arg(long)]
    end_time: Option<String>,
    /// Print every valid file too.
    #[arg(long)]
    verbose: bool,
    /// Validate a local copy (from download-logs) instead of the bucket.
    #[arg(long)]
    local_dir: Option<PathBuf>,
    /// Public key file (PEM or DER, SubjectPublicKeyInfo or PKCS#1);
    /// repeatable. Instead of --signing-key-arn, for offline validation.
    #[arg(long)]
    public_key: Vec<PathBuf>,
    #[command(flatten)]
    signing: SigningKeys,
    /// Regions the trail logs (comma-separated): each is checked even if
    /// none of its digests is left. The regions with digests, the home
    /// region and those the state table's chain heads name are always
    /// checked. Over an organization trail's every account, required of
    /// the trail's own account only (a member has chains only where it
    /// had events).
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// Log files checked at once, and digests fetched ahead of the chain
    /// walk (docs/validation.md); over an organization trail's every
    /// account, shared by the accounts checked at once (up to 8).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Also report log files in the trail's folders that no digest lists
    /// (INVALID: not listed in any digest), where the digests say every
    /// file is listed. Off by default, as in the AWS CLI: only meaningful
    /// when the trail has its bucket and key prefix to itself.
    #[arg(long)]
    report_unlisted: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// The keys an auditor trusts.
#[derive(Args, Debug, Clone, Default)]
pub struct SigningKeys {
    /// The stack's signing key ARN (output SigningKeyArn); repeatable or
    /// comma-separated, one per region if several. Only digests signed by
    /// these keys are valid: the key registry in the state table is never
    /// trusted, since whoever can write that table could add a key to it.
    #[arg(
        long = "signing-key-arn",
        env = "TRAILKEEP_SIGNING_KEY_ARNS",
        value_delimiter = ','
    )]
    arns: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Validate digest and log files (as `aws cloudtrail validate-logs`).
    /// An organization trail's without --account-id: every account's, with
    /// a summary per account and region; exit 1 if any is INVALID.
    ValidateLogs(ValidateArgs),
    /// Copy a trail's log and digest files to a local directory laid out
    /// like the bucket, with the digests' signature metadata in sidecars
    /// (an organization trail's without --account-id: every account's).
    DownloadLogs {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        local_dir: PathBuf,
        /// Only date folders from this day on (ISO 8601).
        #[arg(long)]
        start_time: Option<String>,
        /// Only date folders up to this day.
        #[arg(long)]
        end_time: Option<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The digest signing keys (as `aws cloudtrail list-public-keys`), and
    /// optionally their PEM files for offline validation.
    ListPublicKeys {
        #[arg(long)]
        start_time: Option<String>,
        #[arg(long)]
        end_time: Option<String>,
        /// Write each key as `{fingerprint}.pem` (PKCS#1) into this directory.
        #[arg(long)]
        pem_dir: Option<PathBuf>,
        #[command(flatten)]
        signing: SigningKeys,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] trailkeep_shared::store::StoreError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// Validation ran and found invalid files (the report says which).
    #[error("some files are INVALID")]
    Invalid,
}

impl AuditError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid => 1,
            Self::Usage(_) => 252,
            Self::Store(_) | Self::File { .. } => 254,
        }
    }
}

/// Reads `2026-11-24T03:00:00Z`, `2026-11-24T03:00Z`, `2026-11-24T03:00:00`
/// (UTC), `2026-11-24` or epoch seconds.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, AuditError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let bare = s.trim_end_matches('Z');
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(bare, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    if let Some(t) = s
        .parse::<i64>()
        .ok()
        .and_then(|n| DateTime::from_timestamp(n, 0))
    {
        return Ok(t);
    }
    Err(AuditError::Usage(format!(
        "cannot read {s:?} as a time: use ISO 8601 (2026-11-24T03:00:00Z) or epoch seconds"
    )))
}

/// (home region, account, name) of `arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME`.
fn parse_trail_arn(arn: &str) -> Result<(String, String, String), AuditError> {
    let bad = || AuditError::Usage(format!("Invalid trail ARN provided: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "cloudtrail", region, account, resource]
            if !region.is_empty() && account.len() == 12 =>
        {
            let name = resource.strip_prefix("trail/").ok_or_else(bad)?;
            Ok((region.to_string(), account.to_string(), name.to_owned()))
        }
        _ => Err(bad()),
    }
}

struct Ctx {
    aws: aws_config::SdkConfig,
    state: Option<DynamoStaging>,
    state_table: String,
}

impl Ctx {
    async fn new(state_table: &str) -> Self {
        let aws = trailkeep_shared::aws::sdk_config().await;
        let state = (!state_table.is_empty())
            .then(|| DynamoStaging::new(aws_sdk_dynamodb::Client::new(&aws), state_table));
        Self {
            aws,
            state,
            state_table: state_table.to_owned(),
        }
    }

    /// Bucket and prefix: the flags, else the copy's record, else the trail's.
    async fn bucket_and_prefix(
        &self,
        location: &Location,
        name: &str,
        local: Option<&LocalDir>,
    ) -> Result<Found, AuditError> {
        let origin = local.and_then(LocalDir::origin);
        let mut bucket = location
            .s3_bucket
            .clone()
            .or_else(|| origin.as_ref().map(|(b, _)| b.clone()));
        let mut prefix = location
            .s3_prefix
            .clone()
            .or_else(|| origin.as_ref().and_then(|(_, p)| p.clone()));
        // Some(""): no organization, said explicitly.
        let said = location.organization_id.is_some();
        let mut organization_id = location.organization_id.clone().filter(|o| !o.is_empty());
        let needed = bucket.is_none() || (prefix.is_none() && local.is_none());
        if self.state_table.is_empty() {
            if bucket.is_none() {
                return Err(AuditError::Usage(
                    "pass --s3-bucket, or --state-table (TRAILKEEP_STATE_TABLE) to read the trail's bucket".into(),
                ));
            }
        } else if needed || !said {
            let store =
                DynamoTrails::new(aws_sdk_dynamodb::Client::new(&self.aws), &self.state_table);
            match admin::get(&store, name).await {
                Ok(trail) => {
                    bucket = bucket.or(Some(trail.s3_bucket_name));
                    if needed {
                        prefix = prefix.or(trail.s3_key_prefix);
                    }
                    if !said {
                        organization_id = trail.organization_id;
                    }
                }
                Err(e) if needed => {
                    return Err(AuditError::Usage(format!("cannot read trail {name}: {e}")))
                }
                // Only the organization was asked of the trail: as given.
                Err(_) => {}
            }
        }
        if let Some(org) = organization_id.as_deref() {
            if !trailkeep_shared::trail::is_organization_id(org) {
                return Err(AuditError::Usage(format!(
                    "--organization-id {org:?} is not an organization ID (o- and 10 to 32 lowercase letters or digits)"
                )));
            }
        }
        Ok(Found {
            bucket: bucket.unwrap_or_default(),
            prefix: prefix.filter(|p| !p.is_empty()),
            organization_id,
        })
    }

    /// The keys validation trusts: the files given, else the public halves
    /// of the signing key ARNs given. Nothing else.
    async fn trusted_keys(
        &self,
        files: &[PathBuf],
        signing: &SigningKeys,
    ) -> Result<Keys, AuditError> {
        if !files.is_empty() {
            let mut keys = Keys::default();
            for path in files {
                keys.add_file_bytes(&read_file(path)?)
                    .map_err(|e| AuditError::File {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            }
            return Ok(keys);
        }
        if signing.arns.is_empty() {
            return Err(AuditError::Usage(NO_TRUSTED_KEYS.into()));
        }
        Ok(kms::trusted_keys(&self.aws, &signing.arns).await?)
    }

    /// Every chain's head, to cross-check the tail (read several at once:
    /// an organization trail has one chain per account and region), and
    /// segment marks, to check every ended segment to its final digest.
    /// Best effort: an auditor may have no access to the state table (a
    /// failure to read the marks is said on stderr).
    async fn chains(&self, trail: &str) -> Chains {
        let Some(state) = &self.state else {
            return Chains::default();
        };
        let cursors = state.cursors(trail).await.unwrap_or_else(|e| {
            eprintln!(
                "warning: chain heads not read from the state table ({e}): the tail is checked by the hourly rule alone"
            );
            Vec::new()
        });
        let heads = stream::iter(cursors)
            .map(|c| async move {
                match state.head(trail, &c.chain).await {
                    Ok(head) => head.map(|h| (c.chain, h)),
                    Err(e) => {
                        let chain = trailkeep_shared::ingest::normalize::quote_prefix(&c.chain);
                        eprintln!(
                            "warning: chain head of {chain} not read from the state table ({e}): its tail is checked by the hourly rule alone"
                        );
                        None
                    }
                }
            })
            .buffer_unordered(HEADS_AT_ONCE)
            .filter_map(|h| async move { h })
            .collect::<HashMap<_, _>>()
            .await;
        let segments = state.segments(trail).await.unwrap_or_else(|e| {
            eprintln!(
                "warning: chain segments not read from the state table ({e}): segment ends are not checked"
            );
            HashMap::new()
        });
        Chains { heads, segments }
    }

    /// The key registry's trusted keys whose span meets `[start, end]`
    /// (`registry::list`); entries for other keys are reported on stderr.
    async fn used_keys(
        &self,
        signing: &SigningKeys,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<registry::ListedKey>, AuditError> {
        if signing.arns.is_empty() {
            return Err(AuditError::Usage(NO_TRUSTED_KEYS.into()));
        }
        let state = self.state.as_ref().ok_or_else(|| {
            AuditError::Usage(
                "list-public-keys reads when each key was used from the state table: pass --state-table (TRAILKEEP_STATE_TABLE)".into(),
            )
        })?;
        let trusted = kms::trusted_keys(&self.aws, &signing.arns).await?;
        let (listed, untrusted) = registry::list(state.keys_used().await?, &trusted, start, end);
        for k in untrusted {
            eprintln!(
                "warning: the state table names key {:?} (fingerprint {:?}), which is not a --signing-key-arn: not listed, not trusted",
                trailkeep_shared::ingest::normalize::quote_prefix(&k.key_id),
                trailkeep_shared::ingest::normalize::quote_prefix(&k.fingerprint)
            );
        }
        Ok(listed)
    }
}

/// Chain heads read from the state table at once.
const HEADS_AT_ONCE: usize = 16;

/// Why validation will not guess its keys.
const NO_TRUSTED_KEYS: &str = "no trusted keys: pass --signing-key-arn ARN (TRAILKEEP_SIGNING_KEY_ARNS; the stack output SigningKeyArn) or --public-key FILE. The key registry in the state table is not trusted: whoever can write that table could add a key to it";

fn read_file(path: &Path) -> Result<Vec<u8>, AuditError> {
    std::fs::read(path).map_err(|e| AuditError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

pub async fn run(state_table: &str, cmd: AuditCommand) -> Result<(), AuditError> {
    let ctx = Ctx::new(state_table).await;
    match cmd {
        AuditCommand::ValidateLogs(args) => {
            let (valid, report) = validate_logs(&ctx, args, None).await?;
            print!("{report}");
            if valid {
                Ok(())
            } else {
                Err(AuditError::Invalid)
            }
        }
        AuditCommand::DownloadLogs {
            location,
            local_dir,
            start_time,
            end_time,
            concurrency,
        } => {
            let days = (
                start_time.as_deref().map(parse_time).transpose()?,
                end_time.as_deref().map(parse_time).transpose()?,
            );
            download_logs(&ctx, &location, &local_dir, days, concurrency).await
        }
        AuditCommand::ListPublicKeys {
            start_time,
            end_time,
            pem_dir,
            signing,
        } => {
            let start = start_time.as_deref().map(parse_time).transpose()?;
            let end = end_time.as_deref().map(parse_time).transpose()?;
            list_public_keys(&ctx, start, end, pem_dir.as_deref(), &signing).await
        }
    }
}

/// `validate-logs` for the console's "Validate now": the trail's files in
/// S3 (its bucket and prefix as DescribeTrails names them) between `start`
/// and `end`, against the keys the console was given, counted into `watch`
/// as they are checked. Whether every file checked out, and the JSON
/// report (`--output json`'s).
pub async fn validate_for_console(
    state_table: &str,
    trail_arn: &str,
    s3_bucket: Option<&str>,
    s3_prefix: Option<&str>,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    signing: SigningKeys,
    watch: std::sync::Arc<Watch>,
) -> Result<(bool, serde_json::Value), AuditError> {
    let ctx = Ctx::new(state_table).await;
    let args = ValidateArgs {
        location: Location {
            trail_arn: trail_arn.to_owned(),
            s3_bucket: s3_bucket.map(str::to_owned),
            s3_prefix: s3_prefix.filter(|p| !p.is_empty()).map(str::to_owned),
            account_id: None,
            organization_id: None,
        },
        start_time: start.timestamp().to_string(),
        end_time: Some(end.timestamp().to_string()),
        verbose: false,
        local_dir: None,
        public_key: Vec::new(),
        signing,
        regions: Vec::new(),
        concurrency: 32,
        report_unlisted: false,
        output: Output::Json,
    };
    let (valid, report) = validate_logs(&ctx, args, Some(watch)).await?;
    let report = serde_json::from_str(&report).map_err(|e| AuditError::File {
        path: "validation report".into(),
        message: e.to_string(),
    })?;
    Ok((valid, report))
}

/// `validate-logs`: prints findings as they are made (text output); the
/// report to print last, and whether every file checked out (and at
/// least one digest was found). For an organization trail without
/// `--account-id`, every account's chains.
async fn validate_logs(
    ctx: &Ctx,
    args: ValidateArgs,
    watch: Option<std::sync::Arc<Watch>>,
) -> Result<(bool, String), AuditError> {
    let ValidateArgs {
        location,
        start_time,
        end_time,
        verbose,
        local_dir,
        public_key,
        signing,
        regions,
        concurrency,
        report_unlisted,
        output,
    } = args;
    let (home, arn_account, name) = parse_trail_arn(&location.trail_arn)?;
    let now = Utc::now();
    let start = parse_time(&start_time)?;
    let end = end_time
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(now);
    if start > end {
        return Err(AuditError::Usage(
            "--start-time must be before --end-time".into(),
        ));
    }
    let local = local_dir.map(LocalDir::new);
    let Found {
        bucket,
        prefix,
        organization_id,
    } = ctx
        .bucket_and_prefix(&location, &name, local.as_ref())
        .await?;
    let every_account = organization_id.is_some() && location.account_id.is_none();
    let account_id = location.account(arn_account)?;
    let keys = ctx.trusted_keys(&public_key, &signing).await?;
    let chains = ctx.chains(&name).await;
    // The state's chains are keyed by region, or by
    // {org}/{account}/{region} for an organization trail's: this account's.
    let (heads, segments) = chains.of(organization_id.as_deref(), &account_id);
    let run = Run {
        trail_arn: &location.trail_arn,
        keys,
        request: Request {
            bucket,
            prefix,
            account_id,
            organization_id,
            trail_name: name,
            home_region: home,
            regions,
            start,
            end,
            now,
            heads,
            segments,
            tail_grace: chrono::Duration::minutes(validate::DEFAULT_TAIL_GRACE_MINUTES),
            concurrency,
            report_unlisted,
        },
        chains,
        verbose,
        output,
        watch,
    };
    match (&local, every_account) {
        (Some(dir), false) => run.one_account(dir).await,
        (Some(dir), true) => run.every_account(dir).await,
        (None, every) => {
            let s3 = S3Logs::new(s3::client(&ctx.aws));
            if every {
                run.every_account(&s3).await
            } else {
                run.one_account(&s3).await
            }
        }
    }
}

/// One `validate-logs` run, wherever its files are.
struct Run<'a> {
    trail_arn: &'a str,
    keys: Keys,
    /// The run's request: of `--account-id`, else of the trail's own
    /// account (its ARN's).
    request: Request,
    /// The state table's chains, every account's.
    chains: Chains,
    verbose: bool,
    output: Output,
    /// Counts for another task to read (the console).
    watch: Option<std::sync::Arc<Watch>>,
}

impl Run<'_> {
    fn printer(&self) -> Printer {
        Printer::new(self.output, self.verbose, self.watch.clone())
    }

    fn header(&self) {
        if matches!(self.output, Output::Text) {
            println!(
                "Validating log files for trail {} between {} and {}",
                self.trail_arn,
                trailkeep_shared::time::format(&self.request.start),
                trailkeep_shared::time::format(&self.request.end)
            );
        }
    }

    /// The request's account.
    async fn one_account<S: Source>(&self, src: &S) -> Result<(bool, String), AuditError> {
        self.header();
        if matches!(self.output, Output::Text) {
            println!();
        }
        let mut printer = self.printer();
        let report =
            validate::validate(src, &self.keys, &self.request, |f| printer.take("", f)).await;
        let findings = printer.finish();
        let report = report?;
        let findings: Vec<Finding> = findings.into_iter().map(|(_, f)| f).collect();
        let out = render_report(&report, &self.request, &findings, self.output);
        // Nothing checked proves nothing: not "valid".
        Ok((report.digests_total > 0 && report.all_valid(), out))
    }

    /// Every account of an organization trail (docs/organizations.md
    /// "Checking every account"), several at once, with a summary per
    /// account and region.
    async fn every_account<S: Source>(&self, src: &S) -> Result<(bool, String), AuditError> {
        let req = &self.request;
        let org = req.organization_id.as_deref().unwrap_or_default();
        let at = Folder {
            bucket: &req.bucket,
            prefix: req.prefix.as_deref(),
            org,
            own_account: &req.account_id,
        };
        if self.chains.heads.is_empty() && self.chains.segments.is_empty() {
            eprintln!(
                "warning: no chains read from the state table (--state-table): accounts are found by their folders alone, and one whose whole folder was deleted is not reported"
            );
        }
        let accounts = organization::find_accounts(src, at, &self.chains).await?;
        warn_odd_folders(&at, &accounts.odd_folders);
        self.header();
        if matches!(self.output, Output::Text) {
            println!(
                "Accounts of organization {org}: {}\n",
                accounts.ids.join(", ")
            );
        }
        let mut printer = self.printer();
        let report = organization::validate_accounts(
            src,
            &self.keys,
            req,
            &self.chains,
            &accounts,
            |account, f| printer.take(account, f),
        )
        .await;
        let findings = printer.finish();
        let report = report?;
        let out = match self.output {
            Output::Json => {
                let v = organization_json(&report, req, &findings);
                format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            Output::Text => organization_text(&report, req),
        };
        Ok((report.all_valid(), out))
    }
}

/// Says on stderr which folders beside the accounts' are not looked into.
fn warn_odd_folders(at: &Folder<'_>, odd: &[String]) {
    let prefix = at.prefix.map(|p| format!("{p}/")).unwrap_or_default();
    for name in odd {
        eprintln!(
            "warning: {} is not an account's folder (12 digits): not validated",
            validate::printable(&format!("{prefix}AWSLogs/{}/{name}/", at.org))
        );
    }
}

/// Findings as they are made: printed (text: INVALID on stderr, valid
/// with `--verbose`) under a progress bar on a terminal's stderr (text
/// output, no RUST_LOG), or kept with their account for the JSON report.
struct Printer {
    progress: Progress,
    output: Output,
    verbose: bool,
    kept: Vec<(String, Finding)>,
}

impl Printer {
    fn new(output: Output, verbose: bool, watch: Option<std::sync::Arc<Watch>>) -> Self {
        let show = matches!(output, Output::Text) && std::env::var_os("RUST_LOG").is_none();
        Self {
            progress: Progress::new(show).watched(watch),
            output,
            verbose,
            kept: Vec::new(),
        }
    }

    fn take(&mut self, account: &str, f: Finding) {
        self.progress.finding(&f);
        match self.output {
            Output::Json => self.kept.push((account.to_owned(), f)),
            Output::Text if f.problem.is_some() => self.progress.eprintln(&f.line()),
            Output::Text if self.verbose => self.progress.println(&f.line()),
            Output::Text => {}
        }
    }

    /// Clears the bar; the findings kept.
    fn finish(self) -> Vec<(String, Finding)> {
        self.progress.finish();
        self.kept
    }
}

/// `download-logs`: the account's files, or, for an organization trail
/// without `--account-id`, every account's (found as `validate-logs`
/// finds them).
async fn download_logs(
    ctx: &Ctx,
    location: &Location,
    local_dir: &Path,
    days: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    concurrency: usize,
) -> Result<(), AuditError> {
    let (_, arn_account, name) = parse_trail_arn(&location.trail_arn)?;
    let Found {
        bucket,
        prefix,
        organization_id,
    } = ctx.bucket_and_prefix(location, &name, None).await?;
    let account = location.account(arn_account)?;
    let client = s3::client(&ctx.aws);
    let every_account = organization_id.is_some() && location.account_id.is_none();
    let accounts = match organization_id.as_deref() {
        Some(org) if every_account => {
            let chains = ctx.chains(&name).await;
            let at = Folder {
                bucket: &bucket,
                prefix: prefix.as_deref(),
                org,
                own_account: &account,
            };
            let found =
                organization::find_accounts(&S3Logs::new(client.clone()), at, &chains).await?;
            warn_odd_folders(&at, &found.odd_folders);
            found.ids
        }
        _ => vec![account],
    };
    let roots: Vec<String> = accounts
        .iter()
        .map(|account| {
            Place {
                org: organization_id.as_deref(),
                account,
                region: "",
            }
            .root()
        })
        .collect();
    let counts = download(
        &client,
        &bucket,
        prefix.as_deref(),
        &roots,
        local_dir,
        days,
        concurrency,
    )
    .await?;
    if every_account {
        for (account, n) in accounts.iter().zip(&counts) {
            println!("account {account}: {n} objects");
        }
    }
    println!(
        "downloaded {} objects from s3://{bucket} to {}",
        counts.iter().sum::<usize>(),
        local_dir.display()
    );
    Ok(())
}

/// `list-public-keys`, and the PEM files with `--pem-dir`.
async fn list_public_keys(
    ctx: &Ctx,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    pem_dir: Option<&Path>,
    signing: &SigningKeys,
) -> Result<(), AuditError> {
    let mut list = Vec::new();
    for listed in ctx.used_keys(signing, start, end).await? {
        let (k, pkcs1) = (&listed.key, &listed.pkcs1);
        if let Some(dir) = pem_dir {
            // The file name comes from the state table: only a fingerprint.
            let fingerprint_ok = k.fingerprint.len() == 32
                && k.fingerprint
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !fingerprint_ok {
                return Err(AuditError::Usage(format!(
                    "refused to write a PEM file for key {:?}: its fingerprint {:?} is not 32 hex digits",
                    k.key_id, k.fingerprint
                )));
            }
            let pem =
                pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, pkcs1)
                    .map_err(|e| AuditError::Usage(e.to_string()))?;
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(dir.join(format!("{}.pem", k.fingerprint)), pem))
                .map_err(|e| AuditError::File {
                    path: dir.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        list.push(json!({
            "Value": base64_encode(pkcs1),
            "ValidityStartTime": listed.valid_from.map(|t| trailkeep_shared::time::format(&t)),
            "ValidityEndTime": listed.valid_to.map(|t| trailkeep_shared::time::format(&t)),
            "Fingerprint": k.fingerprint,
            "KeyId": k.key_id,
            "Regions": k.regions,
        }));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "PublicKeyList": list })).unwrap_or_default()
    );
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The report printed after the findings: JSON, or the AWS CLI's text.
fn render_report(
    report: &Report,
    request: &Request,
    findings: &[Finding],
    output: Output,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    match output {
        Output::Json => {
            let v = json!({
                "trail": request.trail_name,
                "start": trailkeep_shared::time::format(&request.start),
                "end": trailkeep_shared::time::format(&request.end),
                "valid": report.all_valid(),
                "digestFiles": { "valid": report.digests_valid, "total": report.digests_total },
                "logFiles": { "valid": report.logs_valid, "total": report.logs_total },
                "foundStart": report.found_start,
                "foundEnd": report.found_end,
                "findings": findings,
            });
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
        }
        Output::Text => {
            let _ = writeln!(
                out,
                "\nResults requested for {} to {}",
                trailkeep_shared::time::format(&request.start),
                trailkeep_shared::time::format(&request.end)
            );
            if report.digests_total == 0 {
                let _ = writeln!(out, "No digests found");
                return out;
            }
            match (&report.found_start, &report.found_end) {
                (Some(s), Some(e)) => {
                    let _ = writeln!(out, "Results found for {s} to {e}:");
                }
                _ => {
                    let _ = writeln!(out, "No valid digests found in range");
                }
            }
            let _ = writeln!(out, "\n{}", report.summary());
        }
    }
    out
}

/// `INVALID: …`, `No digests found` or the counts of one account's region.
fn region_line(r: &Report) -> String {
    let found = match (&r.found_start, &r.found_end) {
        (Some(s), Some(e)) => format!(" (results found for {s} to {e})"),
        _ => String::new(),
    };
    if !r.all_valid() {
        format!("INVALID: {}{found}", r.summary())
    } else if r.digests_total == 0 {
        "No digests found".to_owned()
    } else {
        format!("{}{found}", r.summary())
    }
}

/// The text summary of a run over every account: a line per account and
/// region (by account, then region), then the totals and which accounts
/// failed. Region names come from the bucket's folders: escaped.
fn organization_text(report: &OrganizationReport, request: &Request) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nResults requested for {} to {}\n",
        trailkeep_shared::time::format(&request.start),
        trailkeep_shared::time::format(&request.end)
    );
    for a in &report.accounts {
        let owed_none = a.verdict() == Verdict::NoneOwed;
        if a.report.regions.is_empty() {
            let line = match a.verdict() {
                Verdict::NoneOwed => NONE_OWED.to_owned(),
                Verdict::NoDigests => "No digests found".to_owned(),
                Verdict::Valid | Verdict::Invalid => region_line(&a.report),
            };
            let _ = writeln!(out, "Account {}: {line}", a.account_id);
            continue;
        }
        for (region, r) in &a.report.regions {
            let line = if owed_none {
                NONE_OWED.to_owned()
            } else {
                region_line(r)
            };
            let _ = writeln!(
                out,
                "Account {}, region {}: {line}",
                a.account_id,
                validate::printable(region)
            );
        }
    }
    let total = report.total();
    let _ = writeln!(
        out,
        "\n{} accounts: {}",
        report.accounts.len(),
        total.summary()
    );
    let with = |v: Verdict| {
        report
            .accounts
            .iter()
            .filter(|a| a.verdict() == v)
            .map(|a| a.account_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let invalid = with(Verdict::Invalid);
    if !invalid.is_empty() {
        let _ = writeln!(out, "INVALID: {invalid}");
    }
    let unproven = with(Verdict::NoDigests);
    if !unproven.is_empty() {
        let _ = writeln!(out, "No digests found, nothing proven: {unproven}");
    }
    if total.digests_total == 0 {
        let _ = writeln!(out, "No digests found");
    }
    out
}

/// An account with no digest in range whose chains the state table says
/// owe none there.
const NONE_OWED: &str =
    "No digests found, none owed (its chains in the state table began after the range or ended before it)";

/// The JSON report of a run over every account: totals, each account with
/// its regions, the folders not looked into, and every finding with its
/// account and region.
fn organization_json(
    report: &OrganizationReport,
    request: &Request,
    findings: &[(String, Finding)],
) -> serde_json::Value {
    let counts = |r: &Report| {
        json!({
            "digestFiles": { "valid": r.digests_valid, "total": r.digests_total },
            "logFiles": { "valid": r.logs_valid, "total": r.logs_total },
            "foundStart": r.found_start,
            "foundEnd": r.found_end,
        })
    };
    let with = |mut v: serde_json::Value, extra: serde_json::Value| {
        if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    };
    let accounts: Vec<serde_json::Value> = report
        .accounts
        .iter()
        .map(|a| {
            let verdict = a.verdict();
            let regions: Vec<serde_json::Value> = a
                .report
                .regions
                .iter()
                .map(|(region, r)| {
                    with(
                        counts(r),
                        json!({ "region": region, "valid": r.all_valid() && r.digests_total > 0 }),
                    )
                })
                .collect();
            with(
                counts(&a.report),
                json!({
                    "accountId": a.account_id,
                    "result": match verdict {
                        Verdict::Valid => "valid",
                        Verdict::Invalid => "INVALID",
                        Verdict::NoneOwed => "noDigestsNoneOwed",
                        Verdict::NoDigests => "noDigestsFound",
                    },
                    "valid": matches!(verdict, Verdict::Valid | Verdict::NoneOwed),
                    "knownToStateTable": a.known,
                    "regions": regions,
                }),
            )
        })
        .collect();
    let findings: Vec<serde_json::Value> = findings
        .iter()
        .map(|(account, f)| {
            with(
                serde_json::to_value(f).unwrap_or_default(),
                json!({ "account": account, "region": f.region }),
            )
        })
        .collect();
    with(
        counts(&report.total()),
        json!({
            "trail": request.trail_name,
            "organizationId": request.organization_id,
            "start": trailkeep_shared::time::format(&request.start),
            "end": trailkeep_shared::time::format(&request.end),
            "valid": report.all_valid(),
            "accounts": accounts,
            "oddFolders": report.odd_folders,
            "findings": findings,
        }),
    )
}

/// The date folder (`YYYY/MM/DD`) of a CloudTrail key, as a date.
fn key_day(key: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = key.split('/').collect();
    parts.windows(3).find_map(|w| {
        (w[0].len() == 4 && w[1].len() == 2 && w[2].len() == 2)
            .then(|| NaiveDate::parse_from_str(&w.join("/"), "%Y/%m/%d").ok())
            .flatten()
    })
}

/// Copies the log and digest files under each of `roots`
/// (`AWSLogs/[{org}/]{account}`) to `dir`; how many of each root.
async fn download(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: Option<&str>,
    roots: &[String],
    dir: &Path,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    concurrency: usize,
) -> Result<Vec<usize>, AuditError> {
    let p = prefix.map(|p| format!("{p}/")).unwrap_or_default();
    let s3 = S3Logs::new(client.clone());
    let (mut keys, mut refused, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for root in roots {
        let before = keys.len();
        for kind in ["CloudTrail/", "CloudTrail-Digest/"] {
            let folder = format!("{p}{root}/{kind}");
            for key in s3.list(bucket, &folder, "").await? {
                let day = key_day(&key);
                let keep = day.is_some_and(|d| {
                    from.is_none_or(|f| d >= f.date_naive())
                        && to.is_none_or(|t| d <= t.date_naive())
                });
                if !keep {
                    continue;
                }
                match localcopy::unsafe_key(&key) {
                    None => keys.push(key),
                    Some(why) => refused.push(format!("{key:?} {why}")),
                }
            }
        }
        counts.push(keys.len() - before);
    }
    let file_err = |path: &Path, e: std::io::Error| AuditError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    std::fs::write(
        dir.join(localcopy::COPY_INFO),
        json!({ "bucket": bucket, "prefix": prefix }).to_string(),
    )
    .map_err(|e| file_err(dir, e))?;
    let n = keys.len();
    let copy = &LocalDir::new(dir);
    stream::iter(keys)
        .map(|key| async move {
            let fail = |e: String| trailkeep_shared::store::StoreError::Backend {
                operation: "GetObject",
                resource: format!("s3://{bucket}/{key}"),
                message: e,
            };
            let out = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| fail(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
            let meta = out.metadata().cloned().unwrap_or_default();
            let bytes = out.body.collect().await.map_err(|e| fail(e.to_string()))?;
            copy.write_object(&key, &bytes.into_bytes(), &meta)?;
            Ok::<(), AuditError>(())
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    if !refused.is_empty() {
        // Everything else is copied; these could not be without leaving
        // the directory, and an auditor must know.
        return Err(AuditError::Usage(format!(
            "copied {n} objects; refused {} whose keys would leave {}: {}",
            refused.len(),
            dir.display(),
            refused.join("; ")
        )));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_aws_cli_accepts_them() {
        let want = trailkeep_shared::time::parse("2026-11-24T03:00:00Z").unwrap();
        for s in [
            "2026-11-24T03:00:00Z",
            "2026-11-24T03:00:00+00:00",
            "2026-11-24T04:00:00+01:00",
            "2026-11-24T03:00Z",
            "2026-11-24T03:00:00",
            "1795489200",
        ] {
            assert_eq!(parse_time(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            parse_time("2026-11-24").unwrap(),
            trailkeep_shared::time::parse("2026-11-24T00:00:00Z").unwrap()
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn the_account_in_the_keys_is_twelve_digits() {
        let location = |account: Option<&str>| Location {
            trail_arn: String::new(),
            s3_bucket: None,
            s3_prefix: None,
            account_id: account.map(str::to_owned),
            organization_id: None,
        };
        let arn = || "111122223333".to_owned();
        assert_eq!(location(None).account(arn()).unwrap(), "111122223333");
        assert_eq!(
            location(Some("222233334444")).account(arn()).unwrap(),
            "222233334444"
        );
        for bad in ["2222", "../../etc", "22223333444x", ""] {
            assert!(location(Some(bad)).account(arn()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trail_arns_name_region_account_and_trail() {
        assert_eq!(
            parse_trail_arn("arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit").unwrap(),
            ("eu-west-1".into(), "111122223333".into(), "audit".into())
        );
        assert!(parse_trail_arn("arn:aws:cloudtrail:eu-west-1:1:trail/audit").is_err());
        assert!(parse_trail_arn("audit").is_err());
    }

    #[test]
    fn keys_are_downloaded_by_their_date_folder() {
        assert_eq!(
            key_day("p/AWSLogs/1/CloudTrail/us-east-1/2026/11/24/x.json.gz"),
            NaiveDate::from_ymd_opt(2026, 11, 24)
        );
        assert_eq!(key_day("AWSLogs/1/CloudTrail/us-east-1/x.json.gz"), None);
    }

    /// A report of `digests` (valid, total) and `logs` over a region or an
    /// account, found from 00:00 to 02:00 when a digest is valid.
    fn counts(digests: (usize, usize), logs: (usize, usize)) -> Report {
        let found = |t: &str| (digests.0 > 0).then(|| t.to_owned());
        Report {
            digests_valid: digests.0,
            digests_total: digests.1,
            logs_valid: logs.0,
            logs_total: logs.1,
            found_start: found("2026-11-24T00:00:00Z"),
            found_end: found("2026-11-24T02:00:00Z"),
            regions: Default::default(),
        }
    }

    fn account(id: &str, regions: &[(&str, Report)], known: bool) -> organization::AccountReport {
        let mut report = Report::default();
        for (region, r) in regions {
            report.digests_valid += r.digests_valid;
            report.digests_total += r.digests_total;
            report.logs_valid += r.logs_valid;
            report.logs_total += r.logs_total;
            report.found_start = report.found_start.or(r.found_start.clone());
            report.found_end = report.found_end.or(r.found_end.clone());
            report.regions.insert(region.to_string(), r.clone());
        }
        organization::AccountReport {
            account_id: id.into(),
            report,
            known,
        }
    }

    fn org_request() -> Request {
        Request {
            bucket: "logs".into(),
            prefix: None,
            account_id: "111122223333".into(),
            organization_id: Some("o-a1b2c3d4e5".into()),
            trail_name: "org".into(),
            home_region: "eu-west-1".into(),
            regions: Vec::new(),
            start: parse_time("2026-11-24T00:00:00Z").unwrap(),
            end: parse_time("2026-11-24T02:10:00Z").unwrap(),
            now: parse_time("2026-11-24T02:10:00Z").unwrap(),
            heads: HashMap::new(),
            segments: HashMap::new(),
            tail_grace: chrono::Duration::minutes(30),
            concurrency: 32,
            report_unlisted: false,
        }
    }

    /// Own account valid in two regions; a member INVALID in one, its
    /// other region empty; a member with nothing at all; one that owes
    /// nothing by the state table; a region name with a newline.
    fn org_report() -> OrganizationReport {
        OrganizationReport {
            accounts: vec![
                account(
                    "111122223333",
                    &[
                        ("eu-west-1", counts((2, 2), (2, 2))),
                        ("us-east-2", counts((2, 2), (1, 1))),
                    ],
                    true,
                ),
                account(
                    "222233334444",
                    &[
                        ("eu-west-1", counts((0, 2), (0, 0))),
                        ("us-east-2", counts((0, 0), (0, 0))),
                    ],
                    true,
                ),
                account("333344445555", &[], false),
                account(
                    "444455556666",
                    &[("eu-west-1", counts((0, 0), (0, 0)))],
                    true,
                ),
                account(
                    "555566667777",
                    &[("x\nAccount 1: valid", counts((1, 1), (0, 0)))],
                    false,
                ),
            ],
            odd_folders: vec!["evil".into()],
        }
    }

    #[test]
    fn every_account_gets_a_summary_per_region_in_order_and_the_failures_are_named() {
        let text = organization_text(&org_report(), &org_request());
        let expected = "
Results requested for 2026-11-24T00:00:00Z to 2026-11-24T02:10:00Z

Account 111122223333, region eu-west-1: 2/2 digest files valid, 2/2 log files valid (results found for 2026-11-24T00:00:00Z to 2026-11-24T02:00:00Z)
Account 111122223333, region us-east-2: 2/2 digest files valid, 1/1 log files valid (results found for 2026-11-24T00:00:00Z to 2026-11-24T02:00:00Z)
Account 222233334444, region eu-west-1: INVALID: 0/2 digest files valid, 0/0 log files valid
Account 222233334444, region us-east-2: No digests found
Account 333344445555: No digests found
Account 444455556666, region eu-west-1: No digests found, none owed (its chains in the state table began after the range or ended before it)
Account 555566667777, region x\\nAccount 1: valid: 1/1 digest files valid, 0/0 log files valid (results found for 2026-11-24T00:00:00Z to 2026-11-24T02:00:00Z)

5 accounts: 5/7 digest files valid, 3/3 log files valid
INVALID: 222233334444
No digests found, nothing proven: 333344445555
";
        assert_eq!(text, expected);
        assert!(!org_report().all_valid());
    }

    #[test]
    fn the_json_report_has_every_account_and_region_and_each_findings_account() {
        let finding = Finding {
            kind: validate::Kind::Digest,
            location: "s3://logs/AWSLogs/o-a1b2c3d4e5/222233334444/CloudTrail-Digest/eu-west-1/k"
                .into(),
            problem: Some("not found".into()),
            bytes: 0,
            listed: 0,
            region: "eu-west-1".into(),
        };
        let v = organization_json(
            &org_report(),
            &org_request(),
            &[("222233334444".into(), finding)],
        );
        assert_eq!(v["valid"], json!(false));
        assert_eq!(v["organizationId"], json!("o-a1b2c3d4e5"));
        assert_eq!(v["digestFiles"], json!({ "valid": 5, "total": 7 }));
        let accounts = v["accounts"].as_array().unwrap();
        let results: Vec<(&str, &str, bool)> = accounts
            .iter()
            .map(|a| {
                (
                    a["accountId"].as_str().unwrap(),
                    a["result"].as_str().unwrap(),
                    a["valid"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            results,
            [
                ("111122223333", "valid", true),
                ("222233334444", "INVALID", false),
                ("333344445555", "noDigestsFound", false),
                ("444455556666", "noDigestsNoneOwed", true),
                ("555566667777", "valid", true),
            ]
        );
        assert_eq!(
            accounts[1]["regions"],
            json!([
                { "region": "eu-west-1", "valid": false,
                  "digestFiles": { "valid": 0, "total": 2 }, "logFiles": { "valid": 0, "total": 0 },
                  "foundStart": null, "foundEnd": null },
                { "region": "us-east-2", "valid": false,
                  "digestFiles": { "valid": 0, "total": 0 }, "logFiles": { "valid": 0, "total": 0 },
                  "foundStart": null, "foundEnd": null },
            ])
        );
        assert_eq!(v["oddFolders"], json!(["evil"]));
        assert_eq!(v["findings"][0]["account"], json!("222233334444"));
        assert_eq!(v["findings"][0]["region"], json!("eu-west-1"));
        assert_eq!(v["findings"][0]["problem"], json!("not found"));
    }

    #[test]
    fn base64_is_plain_base64() {
        assert_eq!(base64_encode(b"hello world"), "aGVsbG8gd29ybGQ=");
    }
}
