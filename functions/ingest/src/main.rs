//! The ingest Lambda: EventBridge events and S3 notifications → event history.

mod config;
mod handler;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::dynamodb::DynamoHistory;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = DynamoHistory::new(aws_sdk_dynamodb::Client::new(&aws), &config.history_table);
    let deps = handler::Deps {
        store,
        settings: config.history,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
