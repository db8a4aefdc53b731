//! The deliver Lambda: every 5 minutes, sealed delivery windows become
//! CloudTrail log files in the trails' buckets (docs/delivery.md).

mod config;
mod handler;

use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::logs::CloudWatchEventLog;
use trailkeep_shared::aws::s3::{self, S3Logs};
use trailkeep_shared::aws::sns::SnsNotifier;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = trailkeep_shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        staging: DynamoStaging::new(dynamodb.clone(), &config.state_table),
        trails: DynamoTrails::new(dynamodb, &config.state_table),
        logs: S3Logs::new(s3::client(&aws)),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&aws)),
        events: CloudWatchEventLog::new(aws_sdk_cloudwatchlogs::Client::new(&aws)),
        settings: config.deliver,
        stop_before: config.stop_before,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
