//! template.yaml's Athena table (Glue, partition projection) against the
//! keys and records the code writes: each log file falls in exactly the
//! partition its key names, digests in none, and every field of every
//! record has a column.

use std::collections::BTreeMap;

use chrono::Duration;
use serde_yaml_ng::Value;
use trailkeep_shared::delivery::logfile::log_file_key;
use trailkeep_shared::digest::digest_key;
use trailkeep_shared::ingest::normalize::{normalize, Context};

use crate::helpers::{event, parse_time, template};

const ACCOUNT: &str = "111122223333";

/// The template's parameters and pseudo-parameters, for one deployment.
struct Deployment {
    values: BTreeMap<&'static str, String>,
    served_regions: Vec<String>,
}

impl Deployment {
    /// `!Ref`, `!Sub` (`${!x}` is a literal `${x}`), `!Join`, and `!If` on
    /// `HasServedRegions`: the forms the Athena resources use.
    fn eval(&self, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Tagged(t) => match t.tag.to_string().trim_start_matches('!') {
                "Ref" => self.reference(t.value.as_str().unwrap_or_default()),
                "Sub" => self.sub(t.value.as_str().unwrap_or_default()),
                "Join" => {
                    let parts = t.value.as_sequence().expect("!Join [sep, list]");
                    let sep = parts[0].as_str().unwrap_or_default();
                    match &parts[1] {
                        Value::Sequence(items) => items
                            .iter()
                            .map(|i| self.eval(i))
                            .collect::<Vec<_>>()
                            .join(sep),
                        other => self.eval(other).split(',').collect::<Vec<_>>().join(sep),
                    }
                }
                "If" => {
                    let parts = t.value.as_sequence().expect("!If [cond, a, b]");
                    assert_eq!(parts[0].as_str(), Some("HasServedRegions"));
                    self.eval(&parts[if self.served_regions.is_empty() { 2 } else { 1 }])
                }
                other => panic!("unexpected !{other} in the Athena resources"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    fn reference(&self, name: &str) -> String {
        if name == "ServedRegions" {
            return self.served_regions.join(",");
        }
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no value for {name}"))
    }

    fn sub(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${…}") + start;
            let name = &rest[start + 2..end];
            match name.strip_prefix('!') {
                Some(literal) => out.push_str(&format!("${{{literal}}}")),
                None => out.push_str(&self.reference(name)),
            }
            rest = &rest[end + 1..];
        }
        out + rest
    }
}

/// Athena's date pattern (`yyyy/MM/dd`) as a chrono format.
fn chrono_format(java: &str) -> String {
    java.replace("yyyy", "%Y")
        .replace("MM", "%m")
        .replace("dd", "%d")
}

#[test]
fn the_athena_table_reads_exactly_the_log_files_deliver_writes() {
    let t = template();
    let table = &t
        .properties("AthenaTable", "AWS::Glue::Table")
        .expect("AthenaTable in template.yaml")["TableInput"];
    for (prefix, served) in [
        (None, vec![]),
        (
            Some("audit"),
            vec!["eu-west-1".to_owned(), "us-east-1".to_owned()],
        ),
    ] {
        let d = Deployment {
            values: [
                ("LogBucket", "logs".to_owned()),
                (
                    "AthenaKeyPrefix",
                    prefix.map(|p| format!("{p}/")).unwrap_or_default(),
                ),
                ("AWS::AccountId", ACCOUNT.to_owned()),
                ("AWS::Region", "eu-west-1".to_owned()),
            ]
            .into_iter()
            .collect(),
            served_regions: served.clone(),
        };
        let params = &table["Parameters"];
        let param = |k: &str| d.eval(&params[k]);
        let partitions: Vec<&str> = table["PartitionKeys"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap())
            .collect();
        assert_eq!(partitions, ["account", "region", "day"]);
        assert_eq!(param("projection.enabled"), "true");
        assert_eq!(param("projection.account.values"), ACCOUNT);
        let regions = param("projection.region.values");
        let expected_regions = if served.is_empty() {
            "eu-west-1".to_owned()
        } else {
            served.join(",")
        };
        assert_eq!(regions, expected_regions);
        assert_eq!(param("projection.day.type"), "date");
        let format = chrono_format(&param("projection.day.format"));
        let range_start = param("projection.day.range");
        let range_start = range_start.split(',').next().unwrap();
        let first_day = chrono::NaiveDate::parse_from_str(range_start, &format)
            .expect("the range starts with a date in the projection's format");
        let location_template = param("storage.location.template");
        let location = d.eval(&table["StorageDescriptor"]["Location"]);

        // Every log file deliver writes lies directly in the partition its
        // account, region and delivery day name — and under the table's location.
        for region in regions.split(',') {
            for at in [
                "2026-11-24T00:07:00Z",
                "2026-12-31T23:57:00Z",
                "2027-01-01T00:02:00Z",
            ] {
                let at = parse_time(at);
                assert!(at.date_naive() >= first_day);
                let key = log_file_key(prefix, ACCOUNT, region, &at, "0123456789abcdef");
                let object = format!("s3://logs/{key}");
                let partition = location_template
                    .replace("${account}", ACCOUNT)
                    .replace("${region}", region)
                    .replace("${day}", &at.format(&format).to_string());
                assert!(!partition.contains("${"), "{partition}: a placeholder left");
                let file = object
                    .strip_prefix(&format!("{partition}/"))
                    .unwrap_or_else(|| panic!("{object} is not in partition {partition}"));
                assert!(!file.contains('/'), "{object}: directly in {partition}");
                assert!(object.starts_with(&location), "{object} under {location}");
                // The neighbouring day's partition does not hold it.
                let other = location_template
                    .replace("${account}", ACCOUNT)
                    .replace("${region}", region)
                    .replace(
                        "${day}",
                        &(at + Duration::days(1)).format(&format).to_string(),
                    );
                assert!(!object.starts_with(&format!("{other}/")));

                // A digest of the same trail, region and hour is in no partition.
                let digest = format!(
                    "s3://logs/{}",
                    digest_key(prefix, ACCOUNT, region, "audit", "eu-west-1", &at)
                );
                assert!(!digest.starts_with(&format!("{partition}/")), "{digest}");
            }
        }
    }

    // CloudTrail's input format reads each file's Records array.
    let storage = &table["StorageDescriptor"];
    assert_eq!(
        storage["InputFormat"].as_str(),
        Some("com.amazon.emr.cloudtrail.CloudTrailInputFormat")
    );

    // Every field of every record the code writes has a column, and every
    // userIdentity field a struct member.
    let columns: BTreeMap<String, String> = storage["Columns"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_owned(),
                c["Type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let samples = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge"
    ))
    .unwrap()
    .chain(std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/s3")).unwrap())
    .map(|e| e.unwrap().path())
    .filter(|p| !p.ends_with("batch-with-bad-record.json"));
    let mut checked = 0;
    for path in samples {
        let rel = path
            .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/"))
            .unwrap();
        for n in normalize(&event(rel.to_str().unwrap()), &ctx).records {
            let record: serde_json::Value = serde_json::from_str(&n.json).unwrap();
            for (field, value) in record.as_object().unwrap() {
                let column = columns
                    .get(&field.to_lowercase())
                    .unwrap_or_else(|| panic!("{rel:?}: no column for {field}"));
                if field == "userIdentity" {
                    for member in value.as_object().unwrap().keys() {
                        assert!(
                            column.contains(&format!("{}:", member.to_lowercase())),
                            "{rel:?}: userIdentity.{member} missing in {column}"
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} sample records");
}
