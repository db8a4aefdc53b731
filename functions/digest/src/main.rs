//! The digest Lambda: every hour, one signed digest per trail and region,
//! chained to the previous one (docs/digests.md).

mod config;
mod handler;

use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::kms::KmsSigner;
use trailkeep_shared::aws::s3::{self, S3Logs};
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = trailkeep_shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        state: DynamoStaging::new(dynamodb.clone(), &config.state_table),
        trails: DynamoTrails::new(dynamodb, &config.state_table),
        signer: KmsSigner::new(&aws, config.keys),
        bucket: S3Logs::new(s3::client(&aws)),
        settings: config.digest,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
