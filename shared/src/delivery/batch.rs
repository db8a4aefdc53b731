//! Batch copies (docs/delivery.md "Data events: batch copies"): the data
//! events one ingest batch stages for one trail's chain, in one item of
//! the window (a few, for a large batch), instead of an item and a
//! first-staging note each.
//!
//! Content (before packing with the history's dictionary): per copy, in
//! (eventTime, eventID) order, three fields — eventTime, eventID, record
//! JSON — each a little-endian `u32` length and its UTF-8 bytes. The
//! item's sort key is a hash of the content, so staging the same copies
//! again (a retried batch) writes the same item, and two batches never
//! overwrite each other's.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::logfile::Staged;
use crate::digest::sha256::Sha256;

/// A batch item's content stops before this many bytes (unpacked): a
/// packed item stays well inside DynamoDB's 400 KB, and one copy (ingest
/// refuses records over 256 KB) always fits.
pub const MAX_CONTENT_BYTES: usize = 300 * 1024;
/// Batch items' sort keys: `B#{hash}`, after every per-event copy's
/// `{eventTime}#{eventID}` (a digit comes first).
pub const SK_PREFIX: &str = "B#";
/// A sort key before every batch item and after every per-event copy.
pub const BEFORE_BATCHES: &str = "B";

/// What identifies a copy at delivery: a hash of its eventTime and eventID
/// (16 bytes of SHA-256: a chance collision, which would leave an event out,
/// is as unlikely as guessing a 128-bit key).
pub type CopyKey = [u8; 16];

/// The [`CopyKey`] of a record.
pub fn copy_key(event_time: &DateTime<Utc>, event_id: &str) -> CopyKey {
    let mut sha = Sha256::new();
    sha.update(crate::history::index_sk(event_time, event_id).as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&sha.finish()[..16]);
    key
}

/// The contents of the batch items that hold `copies`: sorted, repeats
/// (the same eventTime and eventID) dropped, cut before
/// [`MAX_CONTENT_BYTES`].
pub fn contents(mut copies: Vec<Staged>) -> Vec<Vec<u8>> {
    copies.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    copies.dedup_by(|a, b| (a.event_time, &a.event_id) == (b.event_time, &b.event_id));
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut open = Vec::new();
    for copy in &copies {
        let entry = encode_one(copy);
        if !open.is_empty() && open.len() + entry.len() > MAX_CONTENT_BYTES {
            out.push(std::mem::take(&mut open));
        }
        open.extend_from_slice(&entry);
    }
    if !open.is_empty() {
        out.push(open);
    }
    out
}

fn encode_one(copy: &Staged) -> Vec<u8> {
    let time = crate::time::format(&copy.event_time);
    let mut out = Vec::with_capacity(12 + time.len() + copy.event_id.len() + copy.json.len());
    for field in [time.as_str(), &copy.event_id, &copy.json] {
        // Each field is under 256 KB: the length fits a u32.
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// The copies a batch item's content holds, in order. Content trailkeep
/// did not write (a field running past the end, not UTF-8, a time that
/// does not parse, an eventID or record over ingest's limits) is refused
/// whole: a log file never silently lacks an event.
pub fn decode(content: &[u8]) -> Result<Vec<Staged>, String> {
    let mut copies = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let [time, id, json] = [(); 3].map(|()| take_field(&mut rest));
        let (time, event_id, json) = (time?, id?, json?);
        if event_id.len() > crate::ingest::normalize::MAX_EVENT_ID {
            return Err(format!("an eventID of {} bytes", event_id.len()));
        }
        if json.len() > crate::model::MAX_RECORD_BYTES {
            return Err(format!("a record of {} bytes", json.len()));
        }
        let event_time = crate::time::parse(time).map_err(|e| e.to_string())?;
        copies.push(Staged {
            event_time,
            event_id: event_id.to_owned(),
            json: json.to_owned(),
            first: None,
        });
    }
    Ok(copies)
}

fn take_field<'a>(rest: &mut &'a [u8]) -> Result<&'a str, String> {
    let (len, tail) = rest
        .split_first_chunk::<4>()
        .ok_or("a field's length runs past the end")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > tail.len() {
        return Err(format!("a field of {len} bytes runs past the end"));
    }
    let (field, tail) = tail.split_at(len);
    *rest = tail;
    std::str::from_utf8(field).map_err(|e| e.to_string())
}

/// The sort key of the batch item holding `content`.
pub fn item_sk(content: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(content);
    format!("{SK_PREFIX}{}", &sha.finish_hex()[..32])
}

/// A position inside the batch items: after copy `index` of item `sk`
/// (a cut run's [`super::Progress::after`]).
pub fn position(sk: &str, index: usize) -> String {
    format!("{sk}#{index}")
}

/// The item and copy a [`position`] names; none for a per-event copy's
/// sort key.
pub fn parse_position(after: &str) -> Option<(&str, usize)> {
    if !after.starts_with(SK_PREFIX) {
        return None;
    }
    let (sk, index) = after.rsplit_once('#')?;
    Some((sk, index.parse().ok()?))
}

/// Which batch copies one window delivers: the first copy of each event
/// in the window, unless an earlier window delivered the event. What
/// earlier windows delivered is kept per the events' own eventTime
/// window ([`super::StagingStore::delivered_copies`]), read once per such window.
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashSet<CopyKey>,
    before: HashMap<i64, HashSet<CopyKey>>,
    /// What this window delivers, per eventTime window.
    pub owned: BTreeMap<i64, Vec<CopyKey>>,
}

/// Whether a copy is the window's to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Owned,
    /// Another copy of the event: in this window, or in an earlier one.
    Repeat,
    /// The eventTime window's delivered keys are to be read first
    /// ([`Dedup::learn`]), then ask again.
    Unknown(i64),
}

impl Dedup {
    /// The verdict on a copy; an owned one is counted as delivered.
    pub fn judge(&mut self, copy: &Staged) -> Verdict {
        let key = copy_key(&copy.event_time, &copy.event_id);
        let at = super::window_of(&copy.event_time);
        let Some(before) = self.before.get(&at) else {
            return Verdict::Unknown(at);
        };
        if before.contains(&key) || !self.seen.insert(key) {
            return Verdict::Repeat;
        }
        self.owned.entry(at).or_default().push(key);
        Verdict::Owned
    }

    /// What earlier windows delivered of events of eventTime window `at`.
    pub fn learn(&mut self, at: i64, delivered: Vec<CopyKey>) {
        self.before.insert(at, delivered.into_iter().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn copy(n: usize, time: &str, json: &str) -> Staged {
        Staged {
            event_time: crate::time::parse(time).unwrap(),
            event_id: format!("id-{n}"),
            json: json.to_owned(),
            first: None,
        }
    }

    #[test]
    fn contents_sort_drop_repeats_and_decode_to_the_same_copies() {
        let (a, b) = (
            copy(2, "2026-11-24T01:00:02Z", r#"{"b":"é"}"#),
            copy(1, "2026-11-24T01:00:01Z", "{}"),
        );
        let contents = contents(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(contents.len(), 1);
        assert_eq!(decode(&contents[0]).unwrap(), [b, a]);
    }

    #[test]
    fn the_same_copies_in_any_order_make_the_same_item() {
        let copies: Vec<Staged> = (0..5)
            .map(|n| copy(n, "2026-11-24T01:00:00Z", "{}"))
            .collect();
        let mut reversed = copies.clone();
        reversed.reverse();
        let (one, two) = (contents(copies), contents(reversed));
        assert_eq!(item_sk(&one[0]), item_sk(&two[0]));
        assert!(item_sk(&one[0]).starts_with(SK_PREFIX));
        assert!(item_sk(&one[0]).as_str() > BEFORE_BATCHES);
        // A per-event copy's sort key comes before every batch item's.
        assert!("2026-11-24T01:00:00Z#x" < BEFORE_BATCHES);
    }

    #[test]
    fn a_large_batch_is_cut_into_items_under_the_cap_each_holding_whole_copies() {
        let big = "x".repeat(100_000);
        let copies: Vec<Staged> = (0..7)
            .map(|n| copy(n, "2026-11-24T01:00:00Z", &big))
            .collect();
        let contents = contents(copies);
        assert_eq!(contents.len(), 3);
        assert!(contents.iter().all(|c| c.len() <= MAX_CONTENT_BYTES));
        let back: usize = contents.iter().map(|c| decode(c).unwrap().len()).sum();
        assert_eq!(back, 7);
        // Packed, the largest stays inside DynamoDB's 400 KB item.
        let packed = crate::history::pack_bytes(&contents[0]);
        assert!(packed.len() < 400_000);
        let unpacked = crate::history::unpack_bytes(&packed, MAX_CONTENT_BYTES as u64).unwrap();
        assert_eq!(unpacked, contents[0]);
    }

    #[test]
    fn content_trailkeep_did_not_write_is_refused_whole() {
        let good = contents(vec![copy(1, "2026-11-24T01:00:00Z", "{}")]).remove(0);
        // Cut short, a length past the end, not UTF-8, a bad time.
        assert!(decode(&good[..good.len() - 1]).is_err());
        let mut long = good.clone();
        long[0] = 0xff;
        assert!(decode(&long).is_err());
        let mut bad_utf8 = good.clone();
        bad_utf8[4] = 0xff;
        assert!(decode(&bad_utf8).is_err());
        let mut bad_time = good.clone();
        bad_time[4] = b'x';
        assert!(decode(&bad_time).is_err());
        // An eventID over ingest's limit.
        let long_id = encode_one(&Staged {
            event_id: "i".repeat(crate::ingest::normalize::MAX_EVENT_ID + 1),
            ..copy(1, "2026-11-24T01:00:00Z", "{}")
        });
        assert!(decode(&long_id).unwrap_err().contains("eventID"));
        assert_eq!(decode(&[]).unwrap(), []);
    }

    #[test]
    fn positions_name_a_copy_of_a_batch_item_and_never_a_per_event_key() {
        let sk = item_sk(b"x");
        assert_eq!(parse_position(&position(&sk, 17)), Some((sk.as_str(), 17)));
        assert_eq!(parse_position("2026-11-24T01:00:00Z#B#1"), None);
        assert_eq!(parse_position("B#abc#x"), None);
    }

    #[test]
    fn a_window_delivers_an_events_first_copy_unless_an_earlier_window_did() {
        let mut dedup = Dedup::default();
        let (one, two) = (
            copy(1, "2026-11-24T01:00:00Z", "{}"),
            copy(2, "2026-11-24T01:00:00Z", "{}"),
        );
        let at = super::super::window_of(&one.event_time);
        assert_eq!(dedup.judge(&one), Verdict::Unknown(at));
        dedup.learn(at, vec![copy_key(&two.event_time, &two.event_id)]);
        assert_eq!(dedup.judge(&one), Verdict::Owned);
        assert_eq!(dedup.judge(&one), Verdict::Repeat);
        assert_eq!(dedup.judge(&two), Verdict::Repeat);
        // Another eventTime with the same eventID is another record.
        let other = copy(1, "2026-11-24T01:00:01Z", "{}");
        assert_eq!(dedup.judge(&other), Verdict::Owned);
        assert_eq!(dedup.owned[&at].len(), 2);
    }

    proptest! {
        #[test]
        fn any_copies_round_trip(
            copies in proptest::collection::vec(
                (0usize..20, 0i64..86_400, "\\PC{0,40}"), 0..30)
        ) {
            let base = crate::time::parse("2026-11-24T00:00:00Z").unwrap();
            let copies: Vec<Staged> = copies
                .into_iter()
                .map(|(n, s, json)| Staged {
                    event_time: base + chrono::Duration::seconds(s),
                    event_id: format!("id-{n}"),
                    json,
                    first: None,
                })
                .collect();
            let mut want = copies.clone();
            want.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
            want.dedup_by(|a, b| (a.event_time, &a.event_id) == (b.event_time, &b.event_id));
            let back: Vec<Staged> = contents(copies)
                .iter()
                .flat_map(|c| decode(c).unwrap())
                .collect();
            prop_assert_eq!(back, want);
        }
    }
}
