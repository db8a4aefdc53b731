//! `trailkeep`: operate and inspect a trailkeep deployment.
//!
//! Verbs follow `aws cloudtrail …` where CloudTrail has them; `dev …`
//! commands work against a local endpoint (moto) for the local run.

mod dev;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trailkeep",
    version,
    about = "A tamper-evident audit trail for AWS accounts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local development: create resources from template.yaml, inspect the history.
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(cmd) => dev::run(cmd).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trailkeep: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
