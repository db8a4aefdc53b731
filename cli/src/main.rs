//! `trailkeep`: operate and inspect a trailkeep deployment.
//!
//! Verbs follow `aws cloudtrail …` where CloudTrail has them. Development
//! helpers (local resources, inspection) are `trailkeep-dev`, a crate of
//! their own (dev/).

mod api_client;
mod aws_model;
mod console;
#[cfg(test)]
mod docs;
mod lookup;
mod progress;
mod trails;
mod validate;

use clap::{Parser, Subcommand};

/// `trailkeep --version`: the crate's version and the commit it was built
/// from (cli/build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TRAILKEEP_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "trailkeep",
    version = VERSION,
    about = "A tamper-evident audit trail for AWS accounts"
)]
struct Cli {
    #[command(flatten)]
    state: trails::StateArgs,
    #[command(flatten)]
    api: trails::ApiArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Trail(trails::TrailCommand),
    #[command(flatten)]
    Audit(validate::AuditCommand),
    #[command(flatten)]
    Lookup(lookup::LookupCommand),
    /// The Event history and Trails pages in a browser, served on
    /// 127.0.0.1 by this process, which calls the API (--api-url) with your
    /// credentials (docs/console.md).
    Console(console::ConsoleArgs),
    /// Installs the botocore model that lets the AWS CLI and SDKs call the
    /// API: `aws trailkeep <operation> --endpoint-url $ApiUrl`, boto3's
    /// `client("trailkeep")` (signed for `lambda`, as the function URL wants).
    InstallAwsModel {
        /// Where botocore looks for models [default: ~/.aws/models].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (message, code) = match cli.command {
        Command::Trail(cmd) => match trails::run(cli.api, cmd).await {
            Ok(()) => return std::process::ExitCode::SUCCESS,
            Err(e) => (e.to_string(), e.exit_code()),
        },
        Command::Audit(cmd) => match validate::run(&cli.state.state_table, cmd).await {
            Ok(()) => return std::process::ExitCode::SUCCESS,
            Err(validate::AuditError::Invalid) => return std::process::ExitCode::from(1),
            Err(e) => (e.to_string(), e.exit_code()),
        },
        Command::Lookup(cmd) => match lookup::run(cmd).await {
            Ok(()) => return std::process::ExitCode::SUCCESS,
            Err(e) => (e.to_string(), e.exit_code()),
        },
        Command::Console(args) => {
            match console::run(cli.api.api_url, cli.state.state_table, args).await {
                Ok(()) => return std::process::ExitCode::SUCCESS,
                Err(e) => (e.to_string(), e.exit_code()),
            }
        }
        Command::InstallAwsModel { dir } => match dir.or_else(aws_model::default_dir) {
            None => ("no --dir, and HOME is not set".to_owned(), 252),
            Some(dir) => match aws_model::install(&dir) {
                Ok(files) => {
                    for file in files {
                        println!("wrote {}", file.display());
                    }
                    println!(
                        "use: aws {} describe-trails --endpoint-url \"$ApiUrl\" (or export AWS_ENDPOINT_URL_TRAILKEEP=\"$ApiUrl\")",
                        aws_model::SERVICE
                    );
                    return std::process::ExitCode::SUCCESS;
                }
                Err(e) => (e.to_string(), 255),
            },
        },
    };
    // Messages can quote object keys and API answers: escaped as findings are.
    eprintln!(
        "trailkeep: {}",
        trailkeep_shared::validate::printable(&message)
    );
    std::process::ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_version_names_the_release_and_the_commit() {
        let v = Cli::command().render_version();
        assert!(
            v.starts_with(&format!("trailkeep {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
        let commit = env!("TRAILKEEP_COMMIT");
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit}"
        );
        assert!(v.trim_end().ends_with(&format!("{commit})")), "{v}");
    }
}
