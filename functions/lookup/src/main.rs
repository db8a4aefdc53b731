//! The lookup Lambda, grown into trailkeep's API: CloudTrail's trail
//! operations and LookupEvents, behind a function URL with IAM
//! authorization (docs/api.md, docs/lookup.md).

mod config;
mod handler;

use lambda_runtime::{service_fn, Error};
use trailkeep_shared::aws::history_table::DynamoHistory;
use trailkeep_shared::aws::kms::AwsPublicKeys;
use trailkeep_shared::aws::state_table::DynamoStaging;
use trailkeep_shared::aws::trail_items::DynamoTrails;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = trailkeep_shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        trails: DynamoTrails::new(dynamodb.clone(), &config.state_table),
        history: DynamoHistory::new(dynamodb.clone(), &config.history_table),
        staging: DynamoStaging::new(dynamodb.clone(), &config.state_table),
        keys: AwsPublicKeys {
            aws: aws.clone(),
            key_arns: config.signing_keys,
            registry: DynamoStaging::new(dynamodb, &config.state_table),
        },
        settings: config.api,
        account_id: config.account_id,
    };
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
