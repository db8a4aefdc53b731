//! SNS: a trail's notification per delivered log file.

use aws_sdk_sns::error::DisplayErrorContext;

use crate::delivery::Notifier;
use crate::store::StoreError;

/// Publishes file notifications with the deliver function's role.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

impl Notifier for SnsNotifier {
    async fn notify(&self, topic_arn: &str, message: &str) -> Result<(), StoreError> {
        self.client
            .publish()
            .topic_arn(topic_arn)
            .message(message)
            .send()
            .await
            .map_err(|e| StoreError::Backend {
                operation: "Publish",
                resource: topic_arn.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}
