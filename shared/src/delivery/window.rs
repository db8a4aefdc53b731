//! Delivery windows: 5-minute spans of ingest time, numbered from the
//! epoch, sealed `grace` after their end (docs/delivery.md).

use chrono::{DateTime, Duration, Utc};

/// Length of a delivery window.
pub const WINDOW_SECS: i64 = 300;
/// Default time after a window's end before it is sealed: more than twice
/// the ingest function's timeout (30 s) plus clock skew.
pub const DEFAULT_GRACE_SECS: i64 = 120;
/// The window a moment falls in.
pub fn window_of(t: &DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(WINDOW_SECS)
}

/// The end of window `w` (exclusive).
pub fn window_end(w: i64) -> DateTime<Utc> {
    DateTime::from_timestamp((w + 1) * WINDOW_SECS, 0).unwrap_or_default()
}

/// The newest window sealed at `now`.
pub fn last_sealed(now: &DateTime<Utc>, grace_secs: i64) -> i64 {
    window_of(&(*now - Duration::seconds(grace_secs))) - 1
}

/// The delivery time of window `w`'s files (in their keys): the moment it is
/// sealed, so every run that delivers `w` names its files alike.
pub fn delivery_time(w: i64, grace_secs: i64) -> DateTime<Utc> {
    window_end(w) + Duration::seconds(grace_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse(s).unwrap()
    }

    #[test]
    fn windows_are_five_minutes_and_seal_after_the_grace() {
        let w = window_of(&t("2026-11-24T02:07:30Z"));
        assert_eq!(window_end(w), t("2026-11-24T02:10:00Z"));
        assert_eq!(window_of(&t("2026-11-24T02:05:00Z")), w);
        assert_eq!(window_of(&t("2026-11-24T02:04:59Z")), w - 1);
        // Sealed 120 s after its end, not before.
        assert_eq!(last_sealed(&t("2026-11-24T02:11:59Z"), 120), w - 1);
        assert_eq!(last_sealed(&t("2026-11-24T02:12:00Z"), 120), w);
        assert_eq!(delivery_time(w, 120), t("2026-11-24T02:12:00Z"));
    }

    #[test]
    fn no_write_at_or_before_the_seal_of_a_window_can_be_in_a_later_sealed_window() {
        // For every moment an ingest may write at, the window it writes into
        // is not sealed yet, even `grace` seconds later.
        for secs in (0..3600).step_by(7) {
            let write = t("2026-11-24T00:00:00Z") + Duration::seconds(secs);
            let w = window_of(&write);
            let deadline = write + Duration::seconds(DEFAULT_GRACE_SECS - 1);
            assert!(last_sealed(&deadline, DEFAULT_GRACE_SECS) < w, "{write}");
        }
    }
}
