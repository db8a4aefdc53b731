//! Exports of the history: CSV with the CloudTrail console's columns,
//! cells neutralised against spreadsheet formula injection.

use crate::history::resources::LookupResource;
use crate::model::Record;

/// The CSV columns of an export, after the CloudTrail console's event
/// history download.
pub const CSV_COLUMNS: [&str; 12] = [
    "Event ID",
    "Event time",
    "User name",
    "Event name",
    "Resource type",
    "Resource name",
    "AWS access key",
    "Event source",
    "AWS region",
    "Error code",
    "Source IP address",
    "Read only",
];

/// A cell as a spreadsheet may safely open it: a value starting with `=`,
/// `+`, `-`, `@` (or a tab or carriage return) would be read as a formula,
/// so it gets a leading `'`.
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// One record as a CSV row of [`CSV_COLUMNS`] (cells neutralised).
pub fn csv_row(record_json: &str) -> Option<Vec<String>> {
    let r: Record = serde_json::from_str(record_json).ok()?;
    let resources = crate::history::resources::lookup_resources(&r);
    let join = |f: &dyn Fn(&LookupResource) -> Option<&str>| {
        resources
            .iter()
            .filter_map(f)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cells = [
        r.event_id.clone(),
        crate::time::format(&r.event_time),
        r.lookup_username().unwrap_or_default().to_owned(),
        r.event_name.clone(),
        join(&|x| x.resource_type.as_deref()),
        join(&|x| x.shown()),
        r.user_identity.access_key_id.clone().unwrap_or_default(),
        r.event_source.clone(),
        r.aws_region.clone(),
        r.error_code.clone().unwrap_or_default(),
        r.source_ip_address.clone().unwrap_or_default(),
        r.is_read_only().to_string(),
    ];
    Some(cells.iter().map(|c| neutralise(c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn formula_cells_are_neutralised_and_others_untouched() {
        for bad in ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        for ok in ["bob", "arn:aws:iam::1:role/x", "2026-11-24T01:00:00Z", ""] {
            assert_eq!(neutralise(ok), ok);
        }
    }

    #[test]
    fn a_csv_row_has_every_column_and_neutralised_cells() {
        let mut r: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/eventbridge/api-call-write.json"
        )))
        .unwrap();
        let mut record = r["detail"].take();
        record["userIdentity"]["userName"] = json!("=HYPERLINK(\"http://x\")");
        let row = csv_row(&record.to_string()).unwrap();
        assert_eq!(row.len(), CSV_COLUMNS.len());
        assert_eq!(row[0], "a1c3e5f7-0b1d-4e2f-8a6c-4d2e0f1a3b02");
        assert_eq!(row[1], "2026-11-24T01:04:10Z");
        assert_eq!(row[2], "'=HYPERLINK(\"http://x\")");
        assert_eq!(row[3], "AuthorizeSecurityGroupIngress");
        assert_eq!(row[4], "AWS::EC2::SecurityGroup");
        assert_eq!(row[11], "false");
    }
}
