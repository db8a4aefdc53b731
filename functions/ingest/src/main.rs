//! The ingest Lambda: batches of the ingest queue (EventBridge events and
//! S3 notifications) → event history and trail staging.

mod config;
mod handler;

use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::sqs::SqsReceipts;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;
use trailkeep_shared::trail::TrailCache;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = trailkeep_shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        receipts: SqsReceipts::new(
            aws_sdk_sqs::Client::new(&aws),
            &config.queue_url,
            config.queue_visibility_seconds,
        ),
        history: DynamoHistory::new(dynamodb.clone(), &config.history_table),
        staging: DynamoStaging::new(dynamodb.clone(), &config.state_table),
        trails: TrailCache::new(
            DynamoTrails::new(dynamodb, &config.state_table),
            config.trail_cache,
        ),
        settings: config.history,
        organization: config.organization_id.is_some(),
        account_id: config.account_id,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
