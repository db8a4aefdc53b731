//! The lookup Lambda: CloudTrail's LookupEvents over the event history,
//! behind a function URL with IAM authorization (docs/lookup.md).

mod config;
mod handler;

use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::history_table::DynamoHistory;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = trailkeep_shared::aws::sdk_config().await;
    let deps = handler::Deps {
        reader: DynamoHistory::new(aws_sdk_dynamodb::Client::new(&aws), &config.history_table),
        settings: config.lookup,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
