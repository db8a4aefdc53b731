//! The event history on DynamoDB.

use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::history::{Claim, HistoryStore, Item, StoreError};

/// Item attribute names (the key names are also in template.yaml).
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const RECORD: &str = "rec";
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// BatchWriteItem takes at most 25 items (moto takes more; AWS does not).
const BATCH_LIMIT: usize = 25;
/// Attempts at writing throttled leftovers of a batch before giving up.
const BATCH_ATTEMPTS: u32 = 8;

/// The history table.
#[derive(Clone, Debug)]
pub struct DynamoHistory {
    client: Client,
    table: String,
}

impl DynamoHistory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn backend<E, R>(&self, operation: &'static str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let message = DisplayErrorContext(&e).to_string();
        let resource = self.table.clone();
        // A ValidationException about a size (a key or an item over
        // DynamoDB's limits) is DynamoDB refusing this input: permanent,
        // never a reason to retry the payload. Any other one (a table whose
        // keys do not match the code: a deployment fault) stays transient,
        // so the payload is retried and dead-lettered as a store fault.
        let service = e.as_service_error();
        let size = service
            .and_then(|s| s.message())
            .is_some_and(|m| m.to_ascii_lowercase().contains("size"));
        if service.and_then(|s| s.code()) == Some("ValidationException") && size {
            return StoreError::Refused {
                operation,
                resource,
                message,
            };
        }
        StoreError::Backend {
            operation,
            resource,
            message,
        }
    }
}

fn to_attributes(item: &Item<'_>) -> std::collections::HashMap<String, AttributeValue> {
    [
        (attr::PK, AttributeValue::S(item.pk.clone())),
        (attr::SK, AttributeValue::S(item.sk.clone())),
        (attr::RECORD, AttributeValue::S(item.record.to_owned())),
        (
            attr::EXPIRES_AT,
            AttributeValue::N(item.expires_at.to_string()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl HistoryStore for DynamoHistory {
    async fn claim(&self, item: &Item<'_>) -> Result<Claim, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(item)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Stored),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(attr::PK, AttributeValue::S(item.pk.clone()))
                    .key(attr::SK, AttributeValue::S(item.sk.clone()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.backend("GetItem", e))?;
                let record = got
                    .item
                    .and_then(|mut i| i.remove(attr::RECORD))
                    .and_then(|v| v.as_s().ok().cloned())
                    .unwrap_or_else(|| item.record.to_owned());
                Ok(Claim::Exists { record })
            }
            Err(e) => Err(self.backend("PutItem", e)),
        }
    }

    async fn put_all(&self, items: &[Item<'_>]) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_LIMIT) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(to_attributes(item)))
                        .build()
                        .expect("item is set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            let mut attempt = 0;
            while !requests.is_empty() {
                if attempt > 0 {
                    if attempt >= BATCH_ATTEMPTS {
                        return Err(StoreError::Unprocessed {
                            items: requests.len(),
                            attempts: attempt,
                        });
                    }
                    // Exponential backoff: 25 ms, 50 ms, … capped at 1 s.
                    let delay = Duration::from_millis((25u64 << attempt.min(6)).min(1000));
                    tokio::time::sleep(delay).await;
                }
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(|e| self.backend("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

impl crate::history::lookup::HistoryReader for DynamoHistory {
    async fn query(
        &self,
        pk: &str,
        low: &str,
        high: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<(Vec<crate::history::lookup::Stored>, Option<String>), StoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .filter_expression("#exp > :now")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(after) = after {
            query = query
                .exclusive_start_key(attr::PK, s(pk))
                .exclusive_start_key(attr::SK, s(after));
        }
        let out = query.send().await.map_err(|e| self.backend("Query", e))?;
        let text = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let items = out
            .items()
            .iter()
            .map(|i| crate::history::lookup::Stored {
                sk: text(i, attr::SK),
                record: text(i, attr::RECORD),
            })
            .collect();
        let last = out
            .last_evaluated_key()
            .and_then(|k| k.get(attr::SK))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok((items, last))
    }

    async fn get(&self, pk: &str, sk: &str, now: i64) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(pk.to_owned()))
            .key(attr::SK, AttributeValue::S(sk.to_owned()))
            .send()
            .await
            .map_err(|e| self.backend("GetItem", e))?;
        Ok(out.item.and_then(|item| {
            let alive = item
                .get(attr::EXPIRES_AT)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|e| e > now);
            alive
                .then(|| item.get(attr::RECORD).and_then(|v| v.as_s().ok()).cloned())
                .flatten()
        }))
    }
}
