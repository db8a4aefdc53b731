//! template.yaml's Athena table (Glue, partition projection) against the
//! keys and records the code writes: each log file falls in exactly the
//! partition its key names, digests in none, and every field of every
//! record has a column. And against what AWS publishes: every column of
//! AWS's own CloudTrail table, and a column for every field of sample
//! CloudTrail records of several event versions
//! (tests/integration/fixtures/athena/, sources in its README.md).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use serde_yaml_ng::{Mapping, Value};
use trailkeep_dev::provision::Template;
use trailkeep_shared::delivery::logfile::log_file_key;
use trailkeep_shared::digest::digest_key;
use trailkeep_shared::ingest::normalize::{normalize, Context};
use trailkeep_shared::trail::Place;

use crate::helpers::{event, parse_time, template};

const ACCOUNT: &str = "111122223333";
const ORG: &str = "o-a1b2c3d4e5";
const MEMBER: &str = "222233334444";
const OTHER_MEMBER: &str = "444455556666";
/// An account of the organization that no `AthenaAccountIds` below lists.
const UNLISTED: &str = "999988887777";
/// The last day the tests' projections run to (`NOW` stands for it).
const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2027, 1, 2).unwrap();

/// The template's parameters, pseudo-parameters and conditions, for one
/// deployment.
struct Deployment {
    values: BTreeMap<&'static str, String>,
    /// The `CommaDelimitedList` parameters' values, as CloudFormation gives
    /// them (a list set to "" is `[""]`).
    lists: BTreeMap<String, Vec<String>>,
    /// template.yaml's `Conditions`, evaluated for these values.
    conditions: Mapping,
}

impl Deployment {
    /// A stack in `region` with `AthenaKeyPrefix` `prefix/` (or none), these
    /// `ServedRegions`, and every other parameter at its default
    /// (`OrganizationId` and the other lists empty).
    fn new(region: &str, prefix: Option<&str>, served_regions: &[&str]) -> Self {
        let mut lists: BTreeMap<String, Vec<String>> = template_section("Parameters")
            .iter()
            .filter(|(_, p)| p["Type"].as_str() == Some("CommaDelimitedList"))
            .map(|(name, _)| (name.as_str().unwrap().to_owned(), list(&[])))
            .collect();
        lists.insert("ServedRegions".to_owned(), list(served_regions));
        Self {
            values: [
                ("LogBucket", "logs".to_owned()),
                (
                    "AthenaKeyPrefix",
                    prefix.map(|p| format!("{p}/")).unwrap_or_default(),
                ),
                ("OrganizationId", String::new()),
                ("AWS::AccountId", ACCOUNT.to_owned()),
                ("AWS::Region", region.to_owned()),
            ]
            .into_iter()
            .collect(),
            lists,
            conditions: template_section("Conditions"),
        }
    }

    /// The same, deployed with `OrganizationId` `org`.
    fn organization(mut self, org: &str) -> Self {
        self.values.insert("OrganizationId", org.to_owned());
        self
    }

    /// The same, deployed with `AthenaAccountIds` `accounts`.
    fn athena_accounts(mut self, accounts: &[&str]) -> Self {
        self.lists
            .insert("AthenaAccountIds".to_owned(), list(accounts));
        self
    }

    /// A string: a literal, `!Ref`, `!Sub` (`${!x}` is a literal `${x}`),
    /// `!Join`, or `!If` on one of the template's conditions.
    fn eval(&self, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Tagged(t) => match t.tag.to_string().trim_start_matches('!') {
                "Ref" => self.reference(t.value.as_str().unwrap_or_default()),
                "Sub" => self.sub(t.value.as_str().unwrap_or_default()),
                "Join" => {
                    let parts = t.value.as_sequence().expect("!Join [sep, list]");
                    let sep = parts[0].as_str().expect("!Join's separator is a literal");
                    self.eval_list(&parts[1]).join(sep)
                }
                "If" => {
                    let parts = t.value.as_sequence().expect("!If [condition, then, else]");
                    let condition = parts[0].as_str().expect("!If names a condition");
                    self.eval(&parts[if self.holds(condition) { 1 } else { 2 }])
                }
                other => panic!("unexpected !{other} where a string is expected"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A list: a sequence, `!Ref` to the list parameter, or `!Split`.
    fn eval_list(&self, v: &Value) -> Vec<String> {
        match v {
            Value::Sequence(items) => items.iter().map(|i| self.eval(i)).collect(),
            Value::Tagged(t) => match t.tag.to_string().trim_start_matches('!') {
                "Ref" => {
                    let name = t.value.as_str().unwrap_or_default();
                    self.lists
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| panic!("!Ref {name} is not a list parameter"))
                }
                "Split" => {
                    let parts = t.value.as_sequence().expect("!Split [sep, text]");
                    let sep = parts[0].as_str().expect("!Split's separator is a literal");
                    self.eval(&parts[1]).split(sep).map(str::to_owned).collect()
                }
                other => panic!("unexpected !{other} where a list is expected"),
            },
            other => panic!("unexpected {other:?} where a list is expected"),
        }
    }

    /// Whether the template's condition `name` holds.
    fn holds(&self, name: &str) -> bool {
        let condition = self
            .conditions
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name} in template.yaml"));
        self.truth(condition)
    }

    /// A condition function: `!Equals`, `!Not`, `!And`, `!Or`, or
    /// `{Condition: name}`.
    fn truth(&self, v: &Value) -> bool {
        match v {
            Value::Tagged(t) => {
                let args = t
                    .value
                    .as_sequence()
                    .expect("a condition function takes a list");
                match t.tag.to_string().trim_start_matches('!') {
                    "Equals" => self.eval(&args[0]) == self.eval(&args[1]),
                    "Not" => !self.truth(&args[0]),
                    "And" => args.iter().all(|c| self.truth(c)),
                    "Or" => args.iter().any(|c| self.truth(c)),
                    other => panic!("unexpected !{other} in a condition"),
                }
            }
            Value::Mapping(m) => {
                let name = m
                    .get("Condition")
                    .and_then(Value::as_str)
                    .expect("{Condition: name}");
                self.holds(name)
            }
            other => panic!("unexpected {other:?} in a condition"),
        }
    }

    fn reference(&self, name: &str) -> String {
        if let Some(list) = self.lists.get(name) {
            return list.join(",");
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

/// A section of template.yaml (`Template` keeps `Conditions` and
/// `Parameters` private).
fn template_section(name: &str) -> Mapping {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_yaml_ng::from_str(&text).expect("template.yaml parses");
    doc.get(name)
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_else(|| panic!("template.yaml has no {name}"))
}

/// A `CommaDelimitedList` parameter's value as CloudFormation gives it to
/// `!Ref`: `[""]` when set to "".
fn list(values: &[&str]) -> Vec<String> {
    if values.is_empty() {
        vec![String::new()]
    } else {
        values.iter().map(|v| (*v).to_owned()).collect()
    }
}

/// The Athena table's `TableInput`.
fn table_input(t: &Template) -> &Value {
    &t.properties("AthenaTable", "AWS::Glue::Table")
        .expect("AthenaTable in template.yaml")["TableInput"]
}

/// The table's columns, in order, with their types parsed.
fn columns(table: &Value) -> Vec<(String, HiveType)> {
    table["StorageDescriptor"]["Columns"]
        .as_sequence()
        .expect("the table has Columns")
        .iter()
        .map(|c| {
            let name = c["Name"].as_str().expect("a column name").to_owned();
            (name, hive_type(c["Type"].as_str().expect("a column type")))
        })
        .collect()
}

/// Athena's date pattern (`yyyy/MM/dd`) as a chrono format.
fn chrono_format(java: &str) -> String {
    java.replace("yyyy", "%Y")
        .replace("MM", "%m")
        .replace("dd", "%d")
}

/// The table's partition projection, evaluated for one deployment: the
/// partitions Athena reads, each a folder of the bucket.
struct Projection {
    accounts: Vec<String>,
    regions: Vec<String>,
    /// `projection.day.format` as a chrono format.
    day_format: String,
    /// The first day of `projection.day.range`.
    first_day: NaiveDate,
    /// `storage.location.template`.
    location_template: String,
    /// The table's `Location`.
    location: String,
}

impl Projection {
    fn of(table: &Value, d: &Deployment) -> Self {
        let params = &table["Parameters"];
        let param = |k: &str| d.eval(&params[k]);
        for column in ["account", "region"] {
            assert_eq!(param(&format!("projection.{column}.type")), "enum");
        }
        assert_eq!(param("projection.day.type"), "date");
        let day_format = chrono_format(&param("projection.day.format"));
        let range = param("projection.day.range");
        let first_day = NaiveDate::parse_from_str(range.split(',').next().unwrap(), &day_format)
            .expect("the range starts with a date in the projection's format");
        let values = |k: &str| param(k).split(',').map(str::to_owned).collect();
        Self {
            accounts: values("projection.account.values"),
            regions: values("projection.region.values"),
            day_format,
            first_day,
            location_template: param("storage.location.template"),
            location: d.eval(&table["StorageDescriptor"]["Location"]),
        }
    }

    /// The S3 folder of partition (`account`, `region`, `day`).
    fn partition(&self, account: &str, region: &str, day: NaiveDate) -> String {
        let folder = self
            .location_template
            .replace("${account}", account)
            .replace("${region}", region)
            .replace("${day}", &day.format(&self.day_format).to_string());
        assert!(!folder.contains("${"), "{folder}: a placeholder left");
        folder
    }

    /// Every projected partition up to `last`, by its folder: a folder two
    /// partitions share (a value projected twice) lists both.
    fn folders(&self, last: NaiveDate) -> Folders {
        let mut folders = Folders::new();
        for account in &self.accounts {
            for region in &self.regions {
                for day in self.first_day.iter_days().take_while(|d| *d <= last) {
                    folders
                        .entry(self.partition(account, region, day))
                        .or_default()
                        .push((account.clone(), region.clone(), day));
                }
            }
        }
        folders
    }
}

/// Partitions by folder: (account, region, day).
type Folders = BTreeMap<String, Vec<(String, String, NaiveDate)>>;

/// The partitions that hold `object` (`s3://bucket/key`) directly, as a
/// file of their folder: Athena reads a partition's folder, not below it.
fn holding(folders: &Folders, object: &str) -> Vec<(String, String, NaiveDate)> {
    let (folder, _file) = object.rsplit_once('/').expect("a key with a folder");
    folders.get(folder).cloned().unwrap_or_default()
}

/// A Hive column type: the shape the JSON SerDe reads a JSON value into.
#[derive(Clone, Debug, PartialEq)]
enum HiveType {
    /// `string`, `bigint`…; a `string` column keeps any JSON value as its text.
    Scalar(String),
    Struct(Vec<(String, HiveType)>),
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
}

impl HiveType {
    /// The type of this struct's field `name`.
    fn field(&self, name: &str) -> &HiveType {
        match self {
            HiveType::Struct(fields) => fields
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, t)| t)
                .unwrap_or_else(|| panic!("no field {name} in {self:?}")),
            other => panic!("{other:?} is not a struct"),
        }
    }
}

/// Parses a Hive type (`struct<a:string,b:array<…>>`), ignoring case and
/// whitespace.
fn hive_type(text: &str) -> HiveType {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let mut parser = TypeParser { rest: &compact };
    let parsed = parser.parse();
    assert!(
        parser.rest.is_empty(),
        "{text}: {:?} left after the type",
        parser.rest
    );
    parsed
}

struct TypeParser<'a> {
    rest: &'a str,
}

impl<'a> TypeParser<'a> {
    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) {
        assert!(self.eat(token), "{token:?} expected at {:?}", self.rest);
    }

    fn name(&mut self) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let (name, rest) = self.rest.split_at(end);
        assert!(!name.is_empty(), "a name expected at {:?}", self.rest);
        self.rest = rest;
        name
    }

    fn parse(&mut self) -> HiveType {
        match self.name() {
            "struct" => {
                self.expect("<");
                let mut fields = Vec::new();
                loop {
                    let field = self.name().to_owned();
                    self.expect(":");
                    fields.push((field, self.parse()));
                    if !self.eat(",") {
                        break;
                    }
                }
                self.expect(">");
                HiveType::Struct(fields)
            }
            "array" => {
                self.expect("<");
                let element = self.parse();
                self.expect(">");
                HiveType::Array(Box::new(element))
            }
            "map" => {
                self.expect("<");
                let key = self.parse();
                self.expect(",");
                let value = self.parse();
                self.expect(">");
                HiveType::Map(Box::new(key), Box::new(value))
            }
            scalar => HiveType::Scalar(scalar.to_owned()),
        }
    }
}

/// Whether a type reads everything another reads: the same type, or a
/// struct with every field of the other (and maybe more), each covering.
fn covers(ours: &HiveType, theirs: &HiveType) -> Result<(), String> {
    match (ours, theirs) {
        (HiveType::Struct(our_fields), HiveType::Struct(their_fields)) => {
            for (name, their_type) in their_fields {
                let our_type = our_fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t)
                    .ok_or_else(|| format!("no field {name}"))?;
                covers(our_type, their_type).map_err(|e| format!("{name}: {e}"))?;
            }
            Ok(())
        }
        (HiveType::Array(ours), HiveType::Array(theirs)) => covers(ours, theirs),
        (ours, theirs) if ours == theirs => Ok(()),
        (ours, theirs) => Err(format!("{ours:?} where AWS has {theirs:?}")),
    }
}

/// A walk of JSON records against the table's columns.
#[derive(Default)]
struct Coverage {
    /// Every key path met: lower-cased (the JSON SerDe matches names
    /// case-insensitively), dotted, an array's elements as `[]`.
    seen: BTreeSet<String>,
    /// Key paths without a column or struct field, and values their column
    /// cannot read.
    missing: Vec<String>,
}

impl Coverage {
    fn walk(&mut self, path: &str, value: &serde_json::Value, ty: &HiveType) {
        use serde_json::Value as Json;
        match (value, ty) {
            // NULL in any column; any JSON in a string column, as its text
            // (requestparameters, additionaleventdata…).
            (Json::Null, _) => {}
            (_, HiveType::Scalar(s)) if s.as_str() == "string" => {}
            (Json::Object(_) | Json::Array(_), HiveType::Scalar(s)) => self
                .missing
                .push(format!("{path}: a JSON object or array in a {s} column")),
            (_, HiveType::Scalar(_)) => {}
            (Json::Object(members), HiveType::Struct(fields)) => {
                for (key, member) in members {
                    let key = key.to_lowercase();
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.seen.insert(child.clone());
                    match fields.iter().find(|(name, _)| *name == key) {
                        Some((_, field)) => self.walk(&child, member, field),
                        None => self.missing.push(child),
                    }
                }
            }
            // A map takes any key (JSON keys are strings); its values must
            // fit its value type.
            (Json::Object(members), HiveType::Map(key, values)) => {
                if **key != HiveType::Scalar("string".to_owned()) {
                    self.missing
                        .push(format!("{path}: JSON keys in a map of {key:?} keys"));
                }
                for (key, member) in members {
                    self.walk(&format!("{path}[{key}]"), member, values);
                }
            }
            (Json::Array(items), HiveType::Array(element)) => {
                let child = format!("{path}[]");
                for item in items {
                    self.walk(&child, item, element);
                }
            }
            (other, ty) => self
                .missing
                .push(format!("{path}: {other} does not fit {ty:?}")),
        }
    }
}

/// The sample CloudTrail log files' records, each named by file and index.
fn fixture_records() -> Vec<(String, serde_json::Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/integration/fixtures/athena");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let list = file["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no Records array"));
        for (i, record) in list.iter().enumerate() {
            records.push((format!("{name}, record {i}"), record.clone()));
        }
    }
    records
}

/// The columns of AWS's own CloudTrail table, as the Athena user guide's
/// "Create the table for CloudTrail logs in Athena using partition
/// projection" declares them, in its order (`name TYPE` written `name:TYPE`).
const AWS_CLOUDTRAIL_COLUMNS: &str = "struct<
    eventversion: STRING,
    useridentity: STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        invokedby: STRING,
        accesskeyid: STRING,
        username: STRING,
        onbehalfof: STRUCT<
             userid: STRING,
             identitystorearn: STRING>,
        sessioncontext: STRUCT<
            attributes: STRUCT<
                mfaauthenticated: STRING,
                creationdate: STRING>,
            sessionissuer: STRUCT<
                type: STRING,
                principalid: STRING,
                arn: STRING,
                accountid: STRING,
                username: STRING>,
            ec2roledelivery:string,
            webidfederationdata: STRUCT<
                federatedprovider: STRING,
                attributes: map<string,string>>
        >
    >,
    eventtime: STRING,
    eventsource: STRING,
    eventname: STRING,
    awsregion: STRING,
    sourceipaddress: STRING,
    useragent: STRING,
    errorcode: STRING,
    errormessage: STRING,
    requestparameters: STRING,
    responseelements: STRING,
    additionaleventdata: STRING,
    requestid: STRING,
    eventid: STRING,
    readonly: STRING,
    resources: ARRAY<STRUCT<
        arn: STRING,
        accountid: STRING,
        type: STRING>>,
    eventtype: STRING,
    apiversion: STRING,
    recipientaccountid: STRING,
    serviceeventdetails: STRING,
    sharedeventid: STRING,
    vpcendpointid: STRING,
    vpcendpointaccountid: STRING,
    eventcategory: STRING,
    addendum: STRUCT<
      reason:STRING,
      updatedfields:STRING,
      originalrequestid:STRING,
      originaleventid:STRING>,
    sessioncredentialfromconsole: STRING,
    edgedevicedetails: STRING,
    tlsdetails: STRUCT<
      tlsversion:STRING,
      ciphersuite:STRING,
      clientprovidedhostheader:STRING>
>";

#[test]
fn the_athena_table_reads_exactly_the_log_files_deliver_writes() {
    let t = template();
    let table = table_input(&t);
    for (prefix, served, expected_regions) in [
        (None, vec![], "eu-west-1,us-east-1"),
        (
            Some("audit"),
            vec!["eu-west-1", "us-east-1"],
            "eu-west-1,us-east-1",
        ),
    ] {
        let d = Deployment::new("eu-west-1", prefix, &served);
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
        assert_eq!(regions, expected_regions);
        assert_eq!(param("projection.day.type"), "date");
        let format = chrono_format(&param("projection.day.format"));
        let range_start = param("projection.day.range");
        let range_start = range_start.split(',').next().unwrap();
        let first_day = chrono::NaiveDate::parse_from_str(range_start, &format)
            .expect("the range starts with a date in the projection's format");
        let location_template = param("storage.location.template");
        let location = d.eval(&table["StorageDescriptor"]["Location"]);
        let folders = Projection::of(table, &d).folders(LAST_DAY);

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
                let place = Place {
                    org: None,
                    account: ACCOUNT,
                    region,
                };
                let key = log_file_key(prefix, &place, &at, "0123456789abcdef");
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
                // Nor does any other partition.
                assert_eq!(
                    holding(&folders, &object),
                    [(ACCOUNT.to_owned(), region.to_owned(), at.date_naive())],
                    "{object}"
                );
                // The same account's file of an organization trail is in no
                // partition of a stack without OrganizationId.
                let org_place = Place {
                    org: Some(ORG),
                    ..place
                };
                let org_object = format!(
                    "s3://logs/{}",
                    log_file_key(prefix, &org_place, &at, "0123456789abcdef")
                );
                assert_eq!(holding(&folders, &org_object), [], "{org_object}");

                // A digest of the same trail, region and hour is in no partition.
                let digest = format!(
                    "s3://logs/{}",
                    digest_key(prefix, &place, "audit", "eu-west-1", &at)
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

    // Every field of every record the code writes has a column (a struct
    // field all the way down), and a value of the column's shape.
    let record_type = HiveType::Struct(columns(table));
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
            let mut coverage = Coverage::default();
            coverage.walk("", &record, &record_type);
            assert!(
                coverage.missing.is_empty(),
                "{rel:?}: no column for {:?}",
                coverage.missing
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} sample records");
}

/// Checks the table of a stack with `OrganizationId` `org` (or none) and
/// `AthenaAccountIds`, against the keys deliver writes: a file of a trail of
/// the stack's layout (an organization trail's with `org`, else one
/// account's), of a projected account and region, lies in exactly the
/// partition of its account, region and day; any other file in none.
fn check_the_layout(org: Option<&str>) {
    let t = template();
    let table = table_input(&t);
    let layouts = [None, Some(ORG)];
    for prefix in [None, Some("org-audit")] {
        for listed in [
            vec![],
            vec![ACCOUNT, MEMBER, OTHER_MEMBER],
            vec![MEMBER, OTHER_MEMBER],
        ] {
            let mut d = Deployment::new("eu-west-1", prefix, &["eu-west-1", "ap-south-1"])
                .athena_accounts(&listed);
            if let Some(org) = org {
                d = d.organization(org);
            }
            let case =
                format!("OrganizationId {org:?}, prefix {prefix:?}, AthenaAccountIds {listed:?}");
            let p = Projection::of(table, &d);
            let projected = if listed.is_empty() {
                vec![ACCOUNT]
            } else {
                listed.clone()
            };
            assert_eq!(p.accounts, projected, "{case}: the accounts, as given");
            assert_eq!(
                p.regions,
                ["eu-west-1", "ap-south-1", "us-east-1"],
                "{case}"
            );
            let folders = p.folders(LAST_DAY);
            for account in [ACCOUNT, MEMBER, OTHER_MEMBER, UNLISTED] {
                for region in ["eu-west-1", "ap-south-1", "us-east-1", "sa-east-1"] {
                    for at in [
                        "2026-11-24T00:07:00Z",
                        "2026-12-31T23:57:00Z",
                        "2027-01-01T00:02:00Z",
                    ] {
                        let at = parse_time(at);
                        let object = |prefix: Option<&str>, org: Option<&str>| {
                            let place = Place {
                                org,
                                account,
                                region,
                            };
                            format!(
                                "s3://logs/{}",
                                log_file_key(prefix, &place, &at, "0123456789abcdef")
                            )
                        };
                        let ours = object(prefix, org);
                        if projected.contains(&account) && region != "sa-east-1" {
                            assert_eq!(
                                holding(&folders, &ours),
                                [(account.to_owned(), region.to_owned(), at.date_naive())],
                                "{case}: {ours}"
                            );
                            assert!(
                                ours.starts_with(&p.location),
                                "{case}: {ours} under {}",
                                p.location
                            );
                        } else {
                            assert_eq!(holding(&folders, &ours), [], "{case}: {ours}");
                        }
                        // The other layout, another organization's, another
                        // trail prefix's: in no partition.
                        let other_prefix = match prefix {
                            None => Some("other"),
                            Some(_) => None,
                        };
                        for stranger in [
                            object(prefix, layouts.into_iter().find(|l| *l != org).unwrap()),
                            object(prefix, Some("o-zzzz9999zzzz")),
                            object(other_prefix, org),
                        ] {
                            assert_eq!(holding(&folders, &stranger), [], "{case}: {stranger}");
                        }
                        // A digest of the same chain and hour: in none.
                        let digest = format!(
                            "s3://logs/{}",
                            digest_key(
                                prefix,
                                &Place {
                                    org,
                                    account,
                                    region
                                },
                                "org",
                                "eu-west-1",
                                &at
                            )
                        );
                        assert_eq!(holding(&folders, &digest), [], "{case}: {digest}");
                    }
                }
            }
        }
    }
}

/// With `OrganizationId`, the table reads an organization trail's files,
/// `AWSLogs/<org-id>/<account>/…`, of the accounts `AthenaAccountIds`
/// lists (the stack's account alone when empty), and nothing else.
#[test]
fn an_organization_stacks_table_reads_the_org_layout_of_the_listed_accounts() {
    check_the_layout(Some(ORG));
}

/// Without `OrganizationId`, the table reads `AWSLogs/<account>/…` of the
/// accounts `AthenaAccountIds` lists (the stack's account alone when
/// empty), and no organization trail's files.
#[test]
fn a_stack_without_an_organization_reads_the_account_layout_of_the_listed_accounts() {
    check_the_layout(None);
}

/// `AthenaAccountIds` takes 12-digit account IDs (CloudFormation applies a
/// `CommaDelimitedList`'s pattern to each member), or "" for none.
#[test]
fn athena_account_ids_takes_12_digit_account_ids() {
    let parameters = template_section("Parameters");
    let p = &parameters["AthenaAccountIds"];
    assert_eq!(p["Type"].as_str(), Some("CommaDelimitedList"));
    assert_eq!(p["Default"].as_str(), Some(""));
    let pattern = regex::Regex::new(p["AllowedPattern"].as_str().expect("a pattern")).unwrap();
    for good in ["", ACCOUNT, "012345678901"] {
        assert!(pattern.is_match(good), "{good:?} refused");
    }
    for bad in [
        "11112222333",
        "1111222233334",
        "111122223333,222233334444",
        " 111122223333",
        "o-a1b2c3d4e5",
        "arn:aws:iam::111122223333:root",
        "*",
    ] {
        assert!(!pattern.is_match(bad), "{bad:?} accepted");
    }
}

/// A multi-region trail files global-service events (IAM, STS, CloudFront,
/// sign-in) under us-east-1: the table projects it whatever ServedRegions
/// says, and once (a value listed twice could read each file twice).
#[test]
fn the_region_projection_holds_every_served_region_and_us_east_1_once() {
    let t = template();
    let params = &table_input(&t)["Parameters"];
    for (region, served, expected) in [
        ("us-east-1", vec![], vec!["us-east-1"]),
        ("eu-west-1", vec![], vec!["eu-west-1", "us-east-1"]),
        (
            "eu-west-1",
            vec!["eu-west-1", "us-east-1"],
            vec!["eu-west-1", "us-east-1"],
        ),
        (
            "eu-west-1",
            vec!["eu-west-1", "ap-south-1"],
            vec!["eu-west-1", "ap-south-1", "us-east-1"],
        ),
        (
            "ap-south-1",
            vec!["us-east-1", "eu-west-1"],
            vec!["us-east-1", "eu-west-1"],
        ),
    ] {
        let d = Deployment::new(region, None, &served);
        let values = d.eval(&params["projection.region.values"]);
        let values: Vec<&str> = values.split(',').collect();
        let case = format!("stack in {region}, ServedRegions {served:?}");
        assert_eq!(values, expected, "{case}");
        assert_eq!(
            values.iter().filter(|r| **r == "us-east-1").count(),
            1,
            "{case}: us-east-1 once"
        );
        let served_or_own = if served.is_empty() {
            vec![region]
        } else {
            served
        };
        for r in &served_or_own {
            assert!(values.contains(r), "{case}: {r} missing from {values:?}");
        }
    }
}

/// The table has every column of AWS's own CloudTrail table, in AWS's
/// order and with AWS's types (a struct may have more fields).
#[test]
fn the_table_has_every_column_of_aws_cloudtrail_table() {
    let t = template();
    let ours = columns(table_input(&t));
    let HiveType::Struct(theirs) = hive_type(AWS_CLOUDTRAIL_COLUMNS) else {
        panic!("AWS's columns are written as a struct");
    };
    for (name, their_type) in &theirs {
        let our_type = ours
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("no column {name}"));
        if let Err(e) = covers(our_type, their_type) {
            panic!("column {name}: {e}");
        }
    }
    let is_aws = |name: &str| theirs.iter().any(|(n, _)| n.as_str() == name);
    let ours_of_aws: Vec<&str> = ours
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| is_aws(n))
        .collect();
    let aws_order: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ours_of_aws, aws_order, "AWS's column order");
    let extra: Vec<&str> = ours
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !is_aws(n))
        .collect();
    assert_eq!(extra, ["managementevent"], "columns AWS's table lacks");

    // The columns issue 20 names, with their types.
    let record = HiveType::Struct(ours);
    let identity = record.field("useridentity");
    let session = identity.field("sessioncontext");
    for (ty, expected) in [
        (
            identity.field("onbehalfof"),
            "struct<userid:string,identitystorearn:string>",
        ),
        (session.field("ec2roledelivery"), "string"),
        (
            session.field("webidfederationdata"),
            "struct<federatedprovider:string,attributes:map<string,string>>",
        ),
        (record.field("vpcendpointaccountid"), "string"),
        (
            record.field("addendum"),
            "struct<reason:string,updatedfields:string,originalrequestid:string,originaleventid:string>",
        ),
        (record.field("edgedevicedetails"), "string"),
        (record.field("sessioncredentialfromconsole"), "string"),
        (
            record.field("tlsdetails"),
            "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>",
        ),
        (record.field("serviceeventdetails"), "string"),
        (record.field("managementevent"), "string"),
        (identity.field("credentialid"), "string"),
        (identity.field("identityprovider"), "string"),
        (session.field("sourceidentity"), "string"),
    ] {
        assert_eq!(ty, &hive_type(expected), "{expected}");
    }
}

/// Records of AWS's own shapes (event versions 1.05 to 1.11: STS web
/// identity federation, an EC2 instance role, IAM Identity Center, console
/// sign-in, a VPC endpoint, addendum, S3 on Outposts, a service event…):
/// every key, at every depth, has a column or struct field, and every value
/// fits its column.
#[test]
fn every_field_of_the_record_shapes_aws_documents_has_a_column() {
    let t = template();
    let record_type = HiveType::Struct(columns(table_input(&t)));
    let records = fixture_records();
    let mut seen = BTreeSet::new();
    let mut missing = Vec::new();
    let mut versions = BTreeSet::new();
    for (name, record) in &records {
        let mut coverage = Coverage::default();
        coverage.walk("", record, &record_type);
        missing.extend(coverage.missing.into_iter().map(|m| format!("{name}: {m}")));
        seen.extend(coverage.seen);
        versions.insert(
            record["eventVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert!(
        missing.is_empty(),
        "fields without a column:\n{}",
        missing.join("\n")
    );

    // The samples hold what they are meant to exercise.
    assert!(records.len() >= 15, "{} sample records", records.len());
    for version in ["1.05", "1.08", "1.09", "1.10", "1.11"] {
        assert!(
            versions.contains(version),
            "no sample of eventVersion {version}"
        );
    }
    for path in [
        "useridentity.onbehalfof.userid",
        "useridentity.onbehalfof.identitystorearn",
        "useridentity.credentialid",
        "useridentity.identityprovider",
        "useridentity.inscopeof.credentialsissuedto",
        "useridentity.invokedbydelegate.accountid",
        "useridentity.sessioncontext.ec2roledelivery",
        "useridentity.sessioncontext.sourceidentity",
        "useridentity.sessioncontext.signinsessionarn",
        "useridentity.sessioncontext.webidfederationdata.federatedprovider",
        "useridentity.sessioncontext.webidfederationdata.attributes",
        "additionaleventdata",
        "serviceeventdetails",
        "vpcendpointid",
        "vpcendpointaccountid",
        "addendum.reason",
        "addendum.updatedfields",
        "addendum.originalrequestid",
        "addendum.originaleventid",
        "edgedevicedetails",
        "sessioncredentialfromconsole",
        "tlsdetails.tlsversion",
        "tlsdetails.ciphersuite",
        "tlsdetails.clientprovidedhostheader",
        "resources[].arn",
        "sharedeventid",
    ] {
        assert!(seen.contains(path), "no sample record has {path}");
    }
}
