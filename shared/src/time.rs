//! CloudTrail timestamps: `YYYY-MM-DDTHH:MM:SSZ`, always UTC, whole seconds.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// Parses an RFC 3339 timestamp (any offset, optional fraction) into UTC,
/// truncated to whole seconds as CloudTrail records carry them.
pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    Ok(DateTime::parse_from_rfc3339(s)?
        .with_timezone(&Utc)
        .trunc_subsecs(0))
}

/// Formats as CloudTrail does: `2026-11-24T02:10:06Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The UTC day of `t` as `YYYY-MM-DD`.
pub fn day(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Serde adapter for `eventTime`.
pub mod serde_event_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse(&s).map_err(|e| {
            serde::de::Error::custom(format!("eventTime {s:?} is not an RFC 3339 timestamp: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fractional_and_offset_times_become_whole_utc_seconds() {
        let t = parse("2026-11-24T03:10:06.987+01:00").unwrap();
        assert_eq!(format(&t), "2026-11-24T02:10:06Z");
        assert_eq!(day(&t), "2026-11-24");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse("yesterday").is_err());
        assert!(parse("2026-13-01T00:00:00Z").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0i64..4_102_444_800) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let s = format(&t);
            prop_assert_eq!(s.len(), 20);
            prop_assert_eq!(parse(&s).unwrap(), t);
        }

        #[test]
        fn formatted_times_sort_like_times(a in 0i64..4_102_444_800, b in 0i64..4_102_444_800) {
            let (ta, tb) = (DateTime::from_timestamp(a, 0).unwrap(), DateTime::from_timestamp(b, 0).unwrap());
            prop_assert_eq!(format(&ta).cmp(&format(&tb)), ta.cmp(&tb));
        }
    }
}
