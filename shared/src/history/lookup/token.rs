//! `NextToken`: opaque and authenticated (HMAC-SHA256 over the position
//! and a digest of the request's region, attribute, time range and page
//! size), so a forged or altered token, or one reused with other
//! parameters, is refused.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::request::{Lookup, LookupError, Position};
use crate::history::LookupAttribute;

/// What a token is bound to: the request's parameters as sent (defaults
/// unresolved), so a token works only with the request that issued it.
pub(super) fn binding(
    region: &str,
    attribute: Option<&(LookupAttribute, String)>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    max_results: i64,
) -> String {
    let attribute = attribute
        .map(|(a, v)| format!("{}={v}", a.as_str()))
        .unwrap_or_default();
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp().to_string()).unwrap_or_default();
    let canonical = format!(
        "{region}\n{attribute}\n{}\n{}\n{max_results}",
        time(start),
        time(end)
    );
    let mut h = crate::digest::sha256::Sha256::new();
    h.update(canonical.as_bytes());
    hex::encode(&h.finish()[..16])
}

pub(super) const B64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(super) fn seal_token(position: &Position, lookup: &Lookup, key: &[u8]) -> String {
    let body = json!({ "p": position, "b": lookup.binding }).to_string();
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        body.as_bytes(),
    );
    format!("{}.{}", B64.encode(body), B64.encode(mac.as_ref()))
}

pub(super) fn open_token(
    token: &str,
    lookup: &Lookup,
    key: &[u8],
) -> Result<Position, LookupError> {
    let bad = |why: &str| LookupError::InvalidNextToken(format!("NextToken {why}"));
    let (body, mac) = token.split_once('.').ok_or_else(|| bad("is malformed"))?;
    let body = B64.decode(body).map_err(|_| bad("is malformed"))?;
    let mac = B64.decode(mac).map_err(|_| bad("is malformed"))?;
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        &body,
        &mac,
    )
    .map_err(|_| bad("was not issued by this service or was altered"))?;
    #[derive(Deserialize)]
    struct Sealed {
        p: Position,
        b: String,
    }
    let sealed: Sealed = serde_json::from_slice(&body).map_err(|_| bad("is malformed"))?;
    if sealed.b != lookup.binding {
        return Err(bad(
            "belongs to a request with other LookupAttributes, time range, MaxResults or region",
        ));
    }
    Ok(sealed.p)
}
