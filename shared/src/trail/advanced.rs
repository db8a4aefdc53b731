//! Advanced event selectors: CloudTrail's `AdvancedEventSelectors`, for the
//! fields it supports on trails (docs/trails.md "Advanced event selectors").
//!
//! A trail logs an event when any of its selectors selects it; a selector
//! selects an event when every one of its field selectors matches; a field
//! selector matches a value when the value meets at least one of its
//! positive conditions (`Equals`, `StartsWith`, `EndsWith`; none given:
//! any value) and none of its negative ones (`NotEquals`, `NotStartsWith`,
//! `NotEndsWith`). `resources.ARN` matches when one of the event's resources
//! of the selector's `resources.type` has an ARN that matches.

use serde::{Deserialize, Serialize};

use super::rules::{resources_of_type, type_source};
use super::{TrailError, LAMBDA_FUNCTION, S3_OBJECT};
use crate::model::{EventCategory, Record};

/// At most this many condition values over all of a trail's advanced
/// selectors (CloudTrail's limit; every selector has at least one, so it
/// bounds the number of selectors too).
pub const MAX_CONDITIONS: usize = 500;
/// A condition value's length limit, in characters.
pub const MAX_VALUE_CHARS: usize = 2048;
/// A selector name's length limit, in characters.
pub const MAX_NAME_CHARS: usize = 1000;

/// One advanced event selector, in CloudTrail's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AdvancedEventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

/// `AdvancedFieldSelector`: a field and the conditions on its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FieldSelector {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ends_with: Option<Vec<String>>,
}

const EVENT_CATEGORY: &str = "eventCategory";
const READ_ONLY: &str = "readOnly";
const EVENT_SOURCE: &str = "eventSource";
const EVENT_NAME: &str = "eventName";
const RESOURCES_TYPE: &str = "resources.type";
const RESOURCES_ARN: &str = "resources.ARN";

impl FieldSelector {
    fn operators(&self) -> [(&'static str, Option<&Vec<String>>); 6] {
        [
            ("Equals", self.equals.as_ref()),
            ("StartsWith", self.starts_with.as_ref()),
            ("EndsWith", self.ends_with.as_ref()),
            ("NotEquals", self.not_equals.as_ref()),
            ("NotStartsWith", self.not_starts_with.as_ref()),
            ("NotEndsWith", self.not_ends_with.as_ref()),
        ]
    }

    fn conditions(&self) -> usize {
        self.operators()
            .iter()
            .filter_map(|(_, v)| *v)
            .map(Vec::len)
            .sum()
    }

    /// Does `value` meet the conditions?
    fn matches(&self, value: &str) -> bool {
        let any = |values: &Option<Vec<String>>, test: &dyn Fn(&str) -> bool| {
            values.as_ref().is_some_and(|v| v.iter().any(|x| test(x)))
        };
        let positive =
            self.equals.is_some() || self.starts_with.is_some() || self.ends_with.is_some();
        let included = !positive
            || any(&self.equals, &|x| value == x)
            || any(&self.starts_with, &|x| value.starts_with(x))
            || any(&self.ends_with, &|x| value.ends_with(x));
        included
            && !any(&self.not_equals, &|x| value == x)
            && !any(&self.not_starts_with, &|x| value.starts_with(x))
            && !any(&self.not_ends_with, &|x| value.ends_with(x))
    }

    /// The single `Equals` value of a field that allows only that.
    fn only_equals(&self) -> Option<&str> {
        match (&self.equals, self.conditions()) {
            (Some(v), 1) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }
}

impl AdvancedEventSelector {
    fn field(&self, name: &str) -> Option<&FieldSelector> {
        self.field_selectors.iter().find(|f| f.field == name)
    }

    /// The category the selector's (required) `eventCategory` names.
    fn category(&self) -> Option<EventCategory> {
        match self.field(EVENT_CATEGORY)?.only_equals()? {
            "Management" => Some(EventCategory::Management),
            "Data" => Some(EventCategory::Data),
            _ => None,
        }
    }

    /// Does the selector select this event?
    pub fn selects(&self, record: &Record) -> bool {
        let Some(category) = self.category() else {
            return false; // refused by `validate`; never selects
        };
        if record.category() != category {
            return false;
        }
        let resource_type = self
            .field(RESOURCES_TYPE)
            .and_then(FieldSelector::only_equals)
            .unwrap_or_default();
        if category == EventCategory::Data {
            let Some(source) = type_source(resource_type) else {
                return false;
            };
            // `resources.type`: the event is on a resource of that type.
            let on_type = resources_of_type(record, resource_type).next().is_some();
            if record.event_source != source || !on_type {
                return false;
            }
        }
        let read_only = if record.is_read_only() {
            "true"
        } else {
            "false"
        };
        self.field_selectors.iter().all(|f| match f.field.as_str() {
            EVENT_CATEGORY | RESOURCES_TYPE => true, // checked above
            READ_ONLY => f.matches(read_only),
            EVENT_SOURCE => f.matches(&record.event_source),
            EVENT_NAME => f.matches(&record.event_name),
            RESOURCES_ARN => resources_of_type(record, resource_type)
                .filter_map(|r| r.arn.as_deref())
                .any(|arn| f.matches(arn)),
            _ => false,
        })
    }
}

/// Checks advanced selectors against CloudTrail's rules for trails.
pub fn validate_advanced(selectors: &[AdvancedEventSelector]) -> Result<(), TrailError> {
    let bad = |why: String| Err(TrailError::InvalidEventSelectors(why));
    let conditions: usize = selectors
        .iter()
        .flat_map(|s| &s.field_selectors)
        .map(FieldSelector::conditions)
        .sum();
    if conditions > MAX_CONDITIONS {
        return bad(format!(
            "{conditions} conditions in the advanced event selectors; at most {MAX_CONDITIONS} are allowed"
        ));
    }
    for (i, s) in selectors.iter().enumerate() {
        let which = match &s.name {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return bad(format!(
                    "advanced event selector {i}'s name is longer than {MAX_NAME_CHARS} characters"
                ))
            }
            Some(name) => format!("advanced event selector {i} ({name:?})"),
            None => format!("advanced event selector {i}"),
        };
        let Some(category) = s.category() else {
            return bad(format!(
                "{which} needs the field eventCategory with Equals Management or Data, and nothing else"
            ));
        };
        let allowed: &[&str] = match category {
            EventCategory::Management => &[EVENT_CATEGORY, READ_ONLY, EVENT_SOURCE],
            EventCategory::Data => &[
                EVENT_CATEGORY,
                READ_ONLY,
                EVENT_NAME,
                RESOURCES_TYPE,
                RESOURCES_ARN,
            ],
        };
        for (j, f) in s.field_selectors.iter().enumerate() {
            if !allowed.contains(&f.field.as_str()) {
                return bad(format!(
                    "{which}: field {:?} is not supported for {category:?} events; use one of {}",
                    crate::ingest::normalize::quote_prefix(&f.field),
                    allowed.join(", ")
                ));
            }
            if s.field_selectors[..j].iter().any(|g| g.field == f.field) {
                return bad(format!("{which}: field {} appears twice", f.field));
            }
            if f.conditions() == 0 {
                return bad(format!("{which}: field {} has no condition", f.field));
            }
            for (op, values) in f.operators() {
                if let Some(v) = values
                    .into_iter()
                    .flatten()
                    .find(|v| v.is_empty() || v.chars().count() > MAX_VALUE_CHARS)
                {
                    return bad(format!(
                        "{which}: a {op} value of {} is {} (1 to {MAX_VALUE_CHARS} characters)",
                        f.field,
                        if v.is_empty() { "empty" } else { "too long" }
                    ));
                }
                if values.is_some_and(|v| v.is_empty()) {
                    return bad(format!("{which}: {} has an empty {op} list", f.field));
                }
            }
            let fine = match f.field.as_str() {
                READ_ONLY => f.only_equals().is_some_and(|v| v == "true" || v == "false"),
                RESOURCES_TYPE => f.only_equals().and_then(type_source).is_some(),
                // CloudTrail allows only excluding a few high-volume sources.
                EVENT_SOURCE => {
                    f.conditions() == f.not_equals.as_ref().map_or(0, Vec::len)
                        && f.not_equals
                            .iter()
                            .flatten()
                            .all(|v| super::EXCLUDABLE_SOURCES.contains(&v.as_str()))
                }
                _ => true,
            };
            if !fine {
                return bad(format!(
                    "{which}: {}",
                    match f.field.as_str() {
                        READ_ONLY => "readOnly takes Equals \"true\" or \"false\"".to_owned(),
                        RESOURCES_TYPE =>
                            format!("resources.type takes Equals {S3_OBJECT} or {LAMBDA_FUNCTION}"),
                        _ => format!(
                            "eventSource of management events takes NotEquals {} only",
                            super::EXCLUDABLE_SOURCES.join(" or ")
                        ),
                    }
                ));
            }
        }
        if category == EventCategory::Data && s.field(RESOURCES_TYPE).is_none() {
            return bad(format!(
                "{which}: data events need the field resources.type"
            ));
        }
    }
    Ok(())
}
