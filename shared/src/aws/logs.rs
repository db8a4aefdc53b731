//! CloudWatch Logs: a trail's events, sent with the deliver function's role.

use aws_sdk_cloudwatchlogs::config::http::HttpResponse;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::operation::put_log_events::{PutLogEventsError, PutLogEventsOutput};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;

use crate::delivery::cloudwatch::{EventLog, LogEvent, Put};
use crate::store::StoreError;

/// Sends batches with `PutLogEvents` (no sequence tokens: the service has
/// not required them since 2023).
#[derive(Clone, Debug)]
pub struct CloudWatchEventLog {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl CloudWatchEventLog {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client) -> Self {
        Self { client }
    }

    fn fail(operation: &'static str, group: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            operation,
            resource: group.to_owned(),
            message: e.to_string(),
        }
    }

    async fn send(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
    ) -> Result<PutLogEventsOutput, SdkError<PutLogEventsError>> {
        self.client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events.to_vec()))
            .send()
            .await
    }

    /// Creates the stream; one that exists already (another run made it)
    /// is fine. `Some(why)`: refused for good (the group is gone).
    async fn create_stream(&self, group: &str, stream: &str) -> Result<Option<String>, StoreError> {
        match self
            .client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) =>
            {
                Ok(None)
            }
            Err(e) if may_pass(&e) => Err(Self::fail(
                "CreateLogStream",
                group,
                DisplayErrorContext(&e),
            )),
            Err(e) => Ok(Some(format!(
                "CreateLogStream in {group} refused: {}",
                DisplayErrorContext(&e)
            ))),
        }
    }
}

/// How many of `n` events the service rejected: those before the
/// too-old and expired end indexes (exclusive) and from the too-new start.
fn rejected(output: &PutLogEventsOutput, n: usize) -> usize {
    let Some(info) = output.rejected_log_events_info() else {
        return 0;
    };
    let index = |i: Option<i32>| i.map_or(0, |i| usize::try_from(i).unwrap_or(0).min(n));
    let old =
        index(info.too_old_log_event_end_index()).max(index(info.expired_log_event_end_index()));
    let new = info
        .too_new_log_event_start_index()
        .map_or(0, |start| n - index(Some(start)));
    (old + new).min(n)
}

/// Whether a failed call may succeed later (throttling, a 5xx, no
/// answer): the window is then tried again next run. Any other answer
/// (the group gone, access denied, an invalid batch) is a refusal.
fn may_pass<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            s.raw().status().as_u16() >= 500
                || code.contains("Throttl")
                || code == "ServiceUnavailableException"
        }
        // A request the SDK could not even build fails the same way again.
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

impl EventLog for CloudWatchEventLog {
    async fn put(
        &self,
        group: &str,
        stream: &str,
        batch: Vec<LogEvent>,
    ) -> Result<Put, StoreError> {
        let n = batch.len();
        let events = batch
            .into_iter()
            .map(|e| {
                InputLogEvent::builder()
                    .timestamp(e.timestamp)
                    .message(e.message)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>();
        // Both members are set, so this never fails; if it did, it would
        // fail the same way every time.
        let events = match events {
            Ok(events) => events,
            Err(e) => return Ok(Put::Refused(format!("PutLogEvents on {group}: {e}"))),
        };
        let not_found = |answer: &Result<_, SdkError<PutLogEventsError>>| {
            answer
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| e.is_resource_not_found_exception())
        };
        let mut answer = self.send(group, stream, &events).await;
        let mut just_made = false;
        if not_found(&answer) {
            // The first file of an account and region: its stream is new
            // (or the group is gone, which CreateLogStream then says).
            if let Some(refused) = self.create_stream(group, stream).await? {
                return Ok(Put::Refused(refused));
            }
            just_made = true;
            answer = self.send(group, stream, &events).await;
        }
        // A stream made a moment ago and not found yet: next run.
        let not_yet = just_made && not_found(&answer);
        match answer {
            Ok(output) => Ok(Put::Accepted {
                rejected: rejected(&output, n),
            }),
            Err(e) if not_yet || may_pass(&e) => {
                Err(Self::fail("PutLogEvents", group, DisplayErrorContext(&e)))
            }
            Err(e) => Ok(Put::Refused(format!(
                "PutLogEvents on {group} refused: {}",
                DisplayErrorContext(&e)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

    fn output(old: Option<i32>, expired: Option<i32>, new: Option<i32>) -> PutLogEventsOutput {
        PutLogEventsOutput::builder()
            .rejected_log_events_info(
                RejectedLogEventsInfo::builder()
                    .set_too_old_log_event_end_index(old)
                    .set_expired_log_event_end_index(expired)
                    .set_too_new_log_event_start_index(new)
                    .build(),
            )
            .build()
    }

    #[test]
    fn rejected_events_are_counted_from_the_service_indexes() {
        assert_eq!(rejected(&PutLogEventsOutput::builder().build(), 10), 0);
        // Events 0 and 1 too old, 2 expired; 8 and 9 too new.
        assert_eq!(rejected(&output(Some(2), Some(3), Some(8)), 10), 5);
        assert_eq!(rejected(&output(None, None, Some(0)), 10), 10);
        // Indexes out of range never count more than the batch.
        assert_eq!(rejected(&output(Some(50), None, Some(-1)), 10), 10);
    }
}
