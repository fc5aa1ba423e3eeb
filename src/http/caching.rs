//! HTTP caching of anonymous reads (DESIGN §12): `GET /graphql` answers carry an `ETag`
//! made of the database's log position, the request and the answer's media type, and
//! `Cache-Control`; a request whose `If-None-Match` holds the current tag is answered `304`
//! without running the query. Any commit moves the log position, so a tag can never outlive a
//! change: a `304` is never stale. Answers to requests with a token are `private, no-store`.
//!
//! Mutation answers carry `extensions.logPosition` (the position after their commit); a read
//! sent with `X-Min-Log-Position: <it>` is answered from data that includes that write.

use crate::graphql::error::ApiError;
use crate::store::position::LogPosition;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use sha2::{Digest, Sha256};

/// The header a client sends a mutation's `logPosition` back in.
pub const MIN_LOG_POSITION: HeaderName = HeaderName::from_static("x-min-log-position");

/// The tag of an anonymous read: the log position, the server's version, the request's query
/// string (query, variables, operation name, extensions) and the media type answered.
pub fn etag(position: LogPosition, query_string: &str, media: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update([0]);
    hash.update(position.0.to_be_bytes());
    hash.update(media.as_bytes());
    hash.update([0]);
    hash.update(query_string.as_bytes());
    format!("\"{}\"", hex::encode(&hash.finalize()[..16]))
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak tags compare by their opaque part,
/// as RFC 9110 §13.1.2 says for this header.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// Sets the caching headers of an anonymous read's answer.
pub fn public(headers: &mut HeaderMap, etag: &str, max_age_secs: u64) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    let control = format!("public, max-age={max_age_secs}, must-revalidate");
    if let Ok(v) = HeaderValue::from_str(&control) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
}

/// Sets the headers of an answer that depends on its token: never stored by a shared cache.
pub fn private(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
}

/// The `X-Min-Log-Position` of a request, checked.
pub fn min_position(headers: &HeaderMap) -> Result<Option<LogPosition>, ApiError> {
    let Some(value) = headers.get(&MIN_LOG_POSITION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(LogPosition::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_input(
                "X-Min-Log-Position",
                "must be a logPosition a mutation answered with, such as 0/16B3748",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_change_with_the_position_the_request_and_the_media_type() {
        let p = LogPosition(42);
        let t = etag(p, "query=%7Bx%7D", "application/json");
        assert_eq!(t, etag(p, "query=%7Bx%7D", "application/json"));
        assert_ne!(
            t,
            etag(LogPosition(43), "query=%7Bx%7D", "application/json")
        );
        assert_ne!(t, etag(p, "query=%7By%7D", "application/json"));
        assert_ne!(
            t,
            etag(p, "query=%7Bx%7D", "application/graphql-response+json")
        );
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_the_star() {
        let mut h = HeaderMap::new();
        let tag = "\"abc\"";
        assert!(!not_modified(&h, tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(not_modified(&h, tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!not_modified(&h, tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, tag));
    }
}
