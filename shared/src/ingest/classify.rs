//! Classification rules (docs/normalization.md): management vs data, read-only vs write,
//! global services. Every list the rules use is kept here, in one place.

use crate::model::{EventCategory, Record, EVENT_VERSION};

/// The region every global-service event is recorded in.
pub const GLOBAL_REGION: &str = "us-east-1";

/// Services whose events are global: `awsRegion` is always us-east-1 and the
/// event is in the history of every region the deployment serves.
/// `sts.amazonaws.com` is global only for calls to the global endpoint
/// (see [`is_global`]).
pub const GLOBAL_SERVICES: &[&str] = &[
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "route53.amazonaws.com",
    "cloudfront.amazonaws.com",
    "signin.amazonaws.com",
];

/// S3 object-level API operations: data events.
pub const S3_OBJECT_EVENTS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
    "DeleteObjectTagging",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "HeadObject",
    "ListParts",
    "PostObject",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "RestoreObject",
    "SelectObjectContent",
    "UploadPart",
    "UploadPartCopy",
];

/// Lambda function invocations: data events.
pub const LAMBDA_INVOKE_EVENTS: &[&str] = &["Invoke", "InvokeAsync", "InvokeWithResponseStream"];

/// Name prefixes of operations that read and change nothing. Used only when
/// the source does not say `readOnly` itself.
const READ_ONLY_PREFIXES: &[&str] = &[
    "Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search", "Select", "Scan", "Query",
];

/// Is `(event_source, event_name)` a data event?
pub fn is_data_event(event_source: &str, event_name: &str) -> bool {
    match event_source {
        "s3.amazonaws.com" => S3_OBJECT_EVENTS.contains(&event_name),
        "lambda.amazonaws.com" => LAMBDA_INVOKE_EVENTS.contains(&event_name),
        _ => false,
    }
}

/// Read-only by name, for sources that do not say.
pub fn is_read_only_name(event_name: &str) -> bool {
    READ_ONLY_PREFIXES.iter().any(|p| {
        event_name.strip_prefix(p).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
        })
    })
}

/// Is the record's service global? STS counts as global only when the call
/// went to the global endpoint: the TLS host header says `sts.amazonaws.com`,
/// or, without TLS details, the region already is us-east-1.
pub fn is_global(record: &Record) -> bool {
    match record.event_source.as_str() {
        "sts.amazonaws.com" => {
            let host = record
                .tls_details
                .as_ref()
                .and_then(|t| t.get("clientProvidedHostHeader"))
                .and_then(|h| h.as_str());
            match host {
                Some(h) => h == "sts.amazonaws.com",
                None => record.aws_region == GLOBAL_REGION,
            }
        }
        s => GLOBAL_SERVICES.contains(&s),
    }
}

/// Completes the classification of a record trailkeep built (S3
/// notification, application event): its version, category,
/// managementEvent, readOnly, and the us-east-1 region of global services.
/// Values the source stated (`readOnly`, `eventCategory`) are kept;
/// `managementEvent` always agrees with the category. A record AWS wrote is
/// never passed here: it is kept as sent (docs/normalization.md).
pub fn classify(record: &mut Record) {
    record.event_version = EVENT_VERSION.to_owned();
    let category = record.category();
    record.event_category = Some(category);
    record.management_event = Some(category == EventCategory::Management);
    record.read_only = Some(record.is_read_only());
    if is_global(record) {
        record.aws_region = GLOBAL_REGION.to_owned();
    }
}

/// The AWS partition a region belongs to, for building ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(source: &str, name: &str, region: &str) -> Record {
        Record {
            event_source: source.into(),
            event_name: name.into(),
            aws_region: region.into(),
            ..Record::default()
        }
    }

    #[test]
    fn s3_object_operations_are_data_events_with_the_right_direction() {
        for (name, read_only) in [
            ("GetObject", true),
            ("HeadObject", true),
            ("PutObject", false),
            ("DeleteObject", false),
            ("CopyObject", false),
            ("CompleteMultipartUpload", false),
        ] {
            let mut r = record("s3.amazonaws.com", name, "eu-west-1");
            classify(&mut r);
            assert_eq!(r.event_category, Some(EventCategory::Data), "{name}");
            assert_eq!(r.management_event, Some(false), "{name}");
            assert_eq!(r.read_only, Some(read_only), "{name}");
        }
    }

    #[test]
    fn bucket_level_s3_calls_are_management_events() {
        let mut r = record("s3.amazonaws.com", "CreateBucket", "eu-west-1");
        classify(&mut r);
        assert_eq!(r.event_category, Some(EventCategory::Management));
        assert_eq!(r.management_event, Some(true));
        assert_eq!(r.read_only, Some(false));
    }

    #[test]
    fn lambda_invoke_is_a_data_event_and_create_function_is_not() {
        let mut invoke = record("lambda.amazonaws.com", "Invoke", "eu-west-1");
        let mut create = record(
            "lambda.amazonaws.com",
            "CreateFunction20150331",
            "eu-west-1",
        );
        classify(&mut invoke);
        classify(&mut create);
        assert_eq!(invoke.event_category, Some(EventCategory::Data));
        assert_eq!(invoke.read_only, Some(false));
        assert_eq!(create.event_category, Some(EventCategory::Management));
    }

    #[test]
    fn read_only_prefix_must_end_at_a_word_boundary() {
        assert!(is_read_only_name("GetUser"));
        assert!(is_read_only_name("ListBuckets"));
        assert!(is_read_only_name("DescribeInstances"));
        assert!(!is_read_only_name("Getaway"));
        assert!(!is_read_only_name("PutObject"));
        assert!(!is_read_only_name("ConsoleLogin"));
    }

    #[test]
    fn source_stated_read_only_and_category_are_kept() {
        let mut r = record("dynamodb.amazonaws.com", "GetItem", "eu-west-1");
        r.read_only = Some(false);
        r.event_category = Some(EventCategory::Data);
        classify(&mut r);
        assert_eq!(r.read_only, Some(false));
        assert_eq!(r.event_category, Some(EventCategory::Data));
        assert_eq!(r.management_event, Some(false));
    }

    #[test]
    fn global_services_are_recorded_in_us_east_1() {
        for source in [
            "iam.amazonaws.com",
            "route53.amazonaws.com",
            "cloudfront.amazonaws.com",
            "signin.amazonaws.com",
        ] {
            let mut r = record(source, "Anything", "eu-central-1");
            classify(&mut r);
            assert_eq!(r.aws_region, "us-east-1", "{source}");
        }
        let mut ec2 = record("ec2.amazonaws.com", "RunInstances", "eu-central-1");
        classify(&mut ec2);
        assert_eq!(ec2.aws_region, "eu-central-1");
    }

    #[test]
    fn sts_is_global_only_on_the_global_endpoint() {
        let mut global = record("sts.amazonaws.com", "AssumeRole", "eu-west-1");
        global.tls_details = Some(json!({"clientProvidedHostHeader": "sts.amazonaws.com"}));
        let mut regional = record("sts.amazonaws.com", "AssumeRole", "eu-west-1");
        regional.tls_details =
            Some(json!({"clientProvidedHostHeader": "sts.eu-west-1.amazonaws.com"}));
        assert!(is_global(&global));
        assert!(!is_global(&regional));
        classify(&mut regional);
        assert_eq!(regional.aws_region, "eu-west-1");
    }

    #[test]
    fn classification_sets_the_version() {
        let mut r = record("ec2.amazonaws.com", "RunInstances", "eu-west-1");
        r.event_version = "1.08".into();
        classify(&mut r);
        assert_eq!(r.event_version, "1.11");
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }
}
