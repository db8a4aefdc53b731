//! Trails in the state table (DynamoDB): one item, `pk = TRAIL`, `sk = set`,
//! holding every trail as a JSON array (`trails`) and a version (`version`).
//! A write is a PutItem conditioned on the version it read, so it is atomic
//! on its own (no transaction) and concurrent writers cannot both succeed.
//! Five trails of at most `MAX_TRAIL_BYTES` (64 KB) each stay below the
//! 400 KB item limit (`Trail::validate` refuses a larger trail).

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::aws::history_table::attr;
use crate::store::StoreError;
use crate::trail::Trail;
use crate::trail::{TrailSet, TrailStore};

const PK: &str = "TRAIL";
const SK: &str = "set";
const TRAILS: &str = "trails";
const VERSION: &str = "version";

/// Trails on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoTrails {
    client: Client,
    table: String,
}

impl DynamoTrails {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn fail(&self, operation: &'static str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            operation,
            resource: self.table.clone(),
            message: message.to_string(),
        }
    }
}

impl TrailStore for DynamoTrails {
    async fn load(&self) -> Result<TrailSet, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(PK.into()))
            .key(attr::SK, AttributeValue::S(SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", DisplayErrorContext(&e)))?;
        let Some(item) = out.item else {
            return Ok(TrailSet::default());
        };
        let json = item
            .get(TRAILS)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| self.fail("read trails", "the trails item has no trails attribute"))?;
        let trails = serde_json::from_str(json).map_err(|e| self.fail("read trails", e))?;
        let version = item
            .get(VERSION)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.fail("read trails", "the trails item has no version"))?;
        Ok(TrailSet { trails, version })
    }

    async fn save(&self, trails: &[Trail], expected: u64) -> Result<bool, StoreError> {
        let json = serde_json::to_string(trails).map_err(|e| self.fail("write trails", e))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, AttributeValue::S(PK.into()))
            .item(attr::SK, AttributeValue::S(SK.into()))
            .item(TRAILS, AttributeValue::S(json))
            .item(VERSION, AttributeValue::N((expected + 1).to_string()));
        let put = if expected == 0 {
            put.condition_expression("attribute_not_exists(#v)")
        } else {
            put.condition_expression("#v = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
        };
        match put.expression_attribute_names("#v", VERSION).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail("PutItem", DisplayErrorContext(&e))),
        }
    }
}
