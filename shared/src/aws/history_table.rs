//! The event history on DynamoDB.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::history::{unpack, Claim, HistoryStore, Item, StoreError, PRIMARY_SK};

/// Item attribute names (the key names are also in template.yaml).
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    /// The packed record (Binary), on primary items and on staged copies
    /// in the state table.
    pub const PACKED: &str = "z";
    /// The record JSON (String), on every history item of the layout before
    /// records were stored once, and on copies staged before they were
    /// packed; read until those items expire.
    pub const RECORD: &str = "rec";
    pub const EXPIRES_AT: &str = "expiresAt";
    /// ReadOnly (Boolean), on time index items.
    pub const READ_ONLY: &str = "ro";
    /// The event's first delivery window (Number): on staged copies, and
    /// on a management event's primary item (its first-staging note).
    pub const FIRST_WINDOW: &str = "fw";
    /// A shared index item's members: the sort keys of the events it
    /// lists, after the bucket, as a JSON array in a String (one attribute
    /// is quicker to parse than a List of as many, for ~2 bytes more per
    /// member; items written before hold a List of String, read as well).
    pub const MEMBERS: &str = "m";
    /// A batch item's packed content (Binary), in the state table
    /// ([`crate::delivery::batch`]).
    pub const BATCH: &str = "zb";
    /// The keys of the batch copies a window delivered (Binary, 16 bytes
    /// each), in the state table.
    pub const DELIVERED: &str = "d";
}

/// BatchWriteItem takes at most 25 items (moto takes more; AWS does not).
const BATCH_LIMIT: usize = 25;
/// BatchGetItem takes at most 100 keys.
const GET_BATCH_LIMIT: usize = 100;
/// Attempts at writing (or reading) throttled leftovers of a batch before
/// giving up.
const BATCH_ATTEMPTS: u32 = 8;

/// Exponential backoff before attempt `attempt` (from 1) at a batch's
/// leftovers: 50 ms, 100 ms, … capped at 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((25u64 << attempt.min(6)).min(1000))
}

/// Sends `first`, then what each answer leaves unprocessed (`send`
/// returns the answer and the leftover, `None` when all was processed),
/// with [`backoff`] between attempts, at most [`BATCH_ATTEMPTS`] in all;
/// `take` gets every answer. What is still left then is an
/// [`StoreError::Unprocessed`] of `size(leftover)` items.
async fn until_processed<T, A, Fut>(
    first: T,
    size: impl Fn(&T) -> usize,
    mut send: impl FnMut(T) -> Fut,
    mut take: impl FnMut(A),
) -> Result<(), StoreError>
where
    Fut: std::future::Future<Output = Result<(A, Option<T>), StoreError>>,
{
    let mut pending = Some(first);
    let mut attempt = 0;
    while let Some(batch) = pending.take() {
        if attempt > 0 {
            if attempt >= BATCH_ATTEMPTS {
                return Err(StoreError::Unprocessed {
                    items: size(&batch),
                    attempts: attempt,
                });
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        attempt += 1;
        let (answer, leftover) = send(batch).await?;
        take(answer);
        pending = leftover;
    }
    Ok(())
}

type Attributes = HashMap<String, AttributeValue>;

/// The record an item holds: its packed record, or the JSON of the layout
/// before; none on an index item of today's layout.
pub fn record_of(item: &Attributes) -> Result<Option<String>, StoreError> {
    if let Some(packed) = item.get(attr::PACKED) {
        let bytes = packed.as_b().map_err(|_| StoreError::Corrupt {
            message: format!("attribute {} is not Binary", attr::PACKED),
        })?;
        return unpack(bytes.as_ref()).map(Some);
    }
    Ok(item.get(attr::RECORD).and_then(|v| v.as_s().ok()).cloned())
}

/// [`record_of`], an unreadable record reported and left out: one item
/// altered outside trailkeep never fails the lookups or re-deliveries
/// around it (the log files and digests are what proves tampering).
fn readable(item: &Attributes) -> Option<String> {
    record_of(item).unwrap_or_else(|e| {
        let pk = item.get(attr::PK).and_then(|v| v.as_s().ok());
        tracing::warn!(pk = ?pk, error = %e, "history item unreadable; left out");
        None
    })
}

fn expires_at(item: &Attributes) -> Option<i64> {
    item.get(attr::EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

/// True if the item's TTL is after `now` (TTL deletion is lazy).
fn alive(item: &Attributes, now: i64) -> bool {
    expires_at(item).is_some_and(|e| e > now)
}

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

/// A shared item's members as written: a JSON array of strings, or (items
/// written on 2026-12-02) a List of String. What trailkeep did not write (a
/// member that is not a string, a String that is not such an array) is
/// left out.
fn members_of(value: &AttributeValue) -> Vec<String> {
    match value {
        AttributeValue::S(json) => serde_json::from_str::<Vec<String>>(json).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "shared index item whose members do not parse; left out");
            Vec::new()
        }),
        AttributeValue::L(list) => list.iter().filter_map(|m| m.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}

fn to_attributes(item: &Item<'_>) -> Attributes {
    let packed = item
        .record
        .map(|p| (attr::PACKED, AttributeValue::B(Blob::new(p))));
    let read_only = item
        .read_only
        .map(|ro| (attr::READ_ONLY, AttributeValue::Bool(ro)));
    let members = (!item.members.is_empty()).then(|| {
        (
            attr::MEMBERS,
            AttributeValue::S(serde_json::Value::from(item.members.clone()).to_string()),
        )
    });
    [
        (attr::PK, AttributeValue::S(item.pk.clone())),
        (attr::SK, AttributeValue::S(item.sk.clone())),
        (
            attr::EXPIRES_AT,
            AttributeValue::N(item.expires_at.to_string()),
        ),
    ]
    .into_iter()
    .chain(packed)
    .chain(read_only)
    .chain(members)
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl HistoryStore for DynamoHistory {
    async fn claim(&self, item: &Item<'_>, first_window: Option<i64>) -> Result<Claim, StoreError> {
        let mut attributes = to_attributes(item);
        if let Some(w) = first_window {
            attributes.insert(
                attr::FIRST_WINDOW.to_owned(),
                AttributeValue::N(w.to_string()),
            );
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
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
                let item = got.item.unwrap_or_default();
                Ok(Claim::Exists {
                    record: readable(&item),
                    expires_at: expires_at(&item),
                    first_window: item
                        .get(attr::FIRST_WINDOW)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok()),
                })
            }
            Err(e) => Err(self.backend("PutItem", e)),
        }
    }

    async fn put_all(&self, items: &[Item<'_>]) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_LIMIT) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(to_attributes(item)))
                        .build()
                        .expect("item is set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            let send = |requests: Vec<WriteRequest>| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| self.backend("BatchWriteItem", e))?;
                let leftover = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|r| !r.is_empty());
                Ok(((), leftover))
            };
            until_processed(requests, Vec::len, send, |()| {}).await?;
        }
        Ok(())
    }
}

impl crate::history::lookup::HistoryReader for DynamoHistory {
    async fn query(
        &self,
        part: &crate::history::lookup::Part,
        low: &str,
        high: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<(Vec<crate::history::lookup::Stored>, Option<String>), StoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let pk = part.pk.as_str();
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        query = match part.read_only {
            None => query.filter_expression("#exp > :now"),
            Some(ro) => query
                .filter_expression("#exp > :now AND #ro = :ro")
                .expression_attribute_names("#ro", attr::READ_ONLY)
                .expression_attribute_values(":ro", AttributeValue::Bool(ro)),
        };
        if let Some(after) = after {
            query = query
                .exclusive_start_key(attr::PK, s(pk))
                .exclusive_start_key(attr::SK, s(after));
        }
        let out = query.send().await.map_err(|e| self.backend("Query", e))?;
        let items = out
            .items()
            .iter()
            .map(|i| {
                let sk = i
                    .get(attr::SK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let members = i.get(attr::MEMBERS).map(members_of).unwrap_or_default();
                crate::history::lookup::Stored {
                    members: crate::history::member_sks(&sk, &members),
                    record: readable(i),
                    sk,
                }
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
        Ok(out
            .item
            .filter(|item| alive(item, now))
            .as_ref()
            .and_then(readable))
    }

    async fn records(
        &self,
        pks: &[String],
        now: i64,
        consistent: bool,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut found = HashMap::new();
        for chunk in pks.chunks(GET_BATCH_LIMIT) {
            let keys: Vec<Attributes> = chunk
                .iter()
                .map(|pk| {
                    HashMap::from([
                        (attr::PK.to_owned(), AttributeValue::S(pk.clone())),
                        (
                            attr::SK.to_owned(),
                            AttributeValue::S(PRIMARY_SK.to_owned()),
                        ),
                    ])
                })
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::Backend {
                    operation: "BatchGetItem",
                    resource: self.table.clone(),
                    message: e.to_string(),
                })?;
            let send = |keys: KeysAndAttributes| async move {
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| self.backend("BatchGetItem", e))?;
                let items = out
                    .responses
                    .take()
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default();
                let leftover = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                Ok((items, leftover))
            };
            let take = |items: Vec<Attributes>| {
                for item in items {
                    let pk = item.get(attr::PK).and_then(|v| v.as_s().ok()).cloned();
                    if let (Some(pk), true) = (pk, alive(&item, now)) {
                        if let Some(record) = readable(&item) {
                            found.insert(pk, record);
                        }
                    }
                }
            };
            until_processed(request, |k| k.keys().len(), send, take).await?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_back_as_written_whatever_an_event_id_holds_and_as_lists_of_before() {
        let hostile = vec![
            ":06Z#plain".to_owned(),
            ":07Z#new\nline\",\"quote".to_owned(),
            ":08Z#\u{0}\u{10FFFF}]".to_owned(),
        ];
        let item = Item {
            pk: "r#Time#2026-11-24".into(),
            sk: "2026-11-24T08:01~0123456789abcdef".into(),
            members: hostile.clone(),
            ..Item::default()
        };
        let written = to_attributes(&item);
        let m = &written[attr::MEMBERS];
        assert!(m.is_s(), "{m:?}");
        assert_eq!(members_of(m), hostile);
        // Items written on 2026-12-02: a List of String.
        let list = AttributeValue::L(hostile.iter().cloned().map(AttributeValue::S).collect());
        assert_eq!(members_of(&list), hostile);
        // What trailkeep did not write is left out.
        assert!(members_of(&AttributeValue::S("not json".into())).is_empty());
        assert!(members_of(&AttributeValue::S("[1]".into())).is_empty());
        let mixed = AttributeValue::L(vec![
            AttributeValue::N("1".into()),
            AttributeValue::S(":09Z#x".into()),
        ]);
        assert_eq!(members_of(&mixed), [":09Z#x"]);
    }

    /// A service that processes `per` items of each batch and leaves the
    /// rest: each answer's items, and the sizes of the batches sent.
    async fn drain(items: Vec<u32>, per: usize) -> (Result<(), StoreError>, Vec<u32>, Vec<usize>) {
        let mut sent = Vec::new();
        let mut taken = Vec::new();
        let send = |mut batch: Vec<u32>| {
            sent.push(batch.len());
            async move {
                let left = batch.split_off(per.min(batch.len()));
                Ok((batch, (!left.is_empty()).then_some(left)))
            }
        };
        let result = until_processed(items, Vec::len, send, |done| taken.extend(done)).await;
        (result, taken, sent)
    }

    #[tokio::test(start_paused = true)]
    async fn leftovers_are_sent_again_with_backoff_until_none_is_left() {
        let start = tokio::time::Instant::now();
        let (result, taken, sent) = drain((0..10).collect(), 3).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            taken,
            (0..10).collect::<Vec<_>>(),
            "every item once, in order"
        );
        assert_eq!(sent, [10, 7, 4, 1]);
        // 50 + 100 + 200 ms between the four attempts.
        assert_eq!(start.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn leftovers_that_never_go_through_are_an_error_naming_them() {
        let (result, taken, sent) = drain((0..5).collect(), 0).await;
        assert!(
            matches!(
                result,
                Err(StoreError::Unprocessed {
                    items: 5,
                    attempts: BATCH_ATTEMPTS
                })
            ),
            "{result:?}"
        );
        assert!(taken.is_empty());
        assert_eq!(sent.len(), BATCH_ATTEMPTS as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_call_is_not_retried_here() {
        let mut calls = 0;
        let send = |_: Vec<u32>| {
            calls += 1;
            async {
                Err::<((), Option<Vec<u32>>), _>(StoreError::Backend {
                    operation: "BatchWriteItem",
                    resource: "history".into(),
                    message: "ValidationException".into(),
                })
            }
        };
        let result = until_processed(vec![1], Vec::len, send, |()| {}).await;
        assert!(
            matches!(result, Err(StoreError::Backend { .. })),
            "{result:?}"
        );
        assert_eq!(
            calls, 1,
            "the SDK retries calls; this loop retries leftovers"
        );
    }
}
