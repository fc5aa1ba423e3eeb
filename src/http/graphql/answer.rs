//! The answer's media type (from `Accept`) and the answer written under it, with the status
//! the GraphQL-over-HTTP specification gives it.

use super::super::error_response;
use crate::graphql::error::ApiError;
use async_graphql::{Response as GqlResponse, ServerError, Value as GqlValue};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// The media types an answer can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: statuses tell request errors apart.
    GraphQLResponse,
    /// `application/json`: the legacy type, `200` for every GraphQL answer.
    Json,
}

impl Media {
    /// The media type's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Media::GraphQLResponse => "application/graphql-response+json",
            Media::Json => "application/json",
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }
}

/// What a request's `Accept` header lets the answer be. `None`: nothing this server writes.
pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    if accept.trim().is_empty() {
        return Some(Media::Json);
    }
    // The highest quality wins; among equals, the first listed.
    let mut best: Option<(f32, Media)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let media = match media.as_str() {
            "application/graphql-response+json" => Media::GraphQLResponse,
            "application/json" | "application/*" | "*/*" => Media::Json,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, media));
        }
    }
    best.map(|(_, media)| media)
}

pub(super) fn not_acceptable() -> Response {
    let err = ApiError::bad_input(
        "accept",
        "this endpoint answers application/graphql-response+json or application/json",
    );
    error_response(StatusCode::NOT_ACCEPTABLE, err)
}

/// A GraphQL answer as the specification's body: `data` only when execution started.
#[derive(Serialize)]
struct AnswerBody<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a GqlValue>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, GqlValue>,
}

/// Whether an answer is a request error: nothing ran, so there is no `data`.
pub fn is_request_error(response: &GqlResponse) -> bool {
    !response.errors.is_empty()
        && response.data == GqlValue::Null
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Writes a GraphQL answer in `media`, with the status the specification gives it.
pub(super) fn answer(media: Media, response: GqlResponse) -> Response {
    let request_error = is_request_error(&response);
    let body = AnswerBody {
        errors: &response.errors,
        data: (!request_error).then_some(&response.data),
        extensions: &response.extensions,
    };
    let body = serde_json::to_vec(&body).expect("answers serialise");
    let status = match media {
        Media::GraphQLResponse if request_error => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut http = Response::new(Body::from(body));
    *http.status_mut() = status;
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    if response.is_ok()
        && let Some(cache_control) = response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&cache_control)
    {
        http.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    http.headers_mut().extend(response.http_headers);
    http
}

/// A compiled statement's answer: its `data` as the statement wrote it (see
/// `graphql::compiled`), under the media type asked for.
pub(super) fn compiled_answer(media: Media, data: std::sync::Arc<str>) -> Response {
    let mut body = Vec::with_capacity(data.len() + 9);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(data.as_bytes());
    body.push(b'}');
    let mut http = Response::new(Body::from(body));
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    http
}

/// A request refused before it became a GraphQL request (bad parameters): `status` under
/// either media type.
pub(super) fn answer_refusal(media: Media, status: StatusCode, err: ApiError) -> Response {
    let mut response = error_response(status, err);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Media> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn the_answer_takes_the_media_type_the_client_prefers() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json));
        assert_eq!(accept("application/json"), Some(Media::Json));
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            Some(Media::GraphQLResponse)
        );
        assert_eq!(
            accept("application/json;q=0.5, application/graphql-response+json"),
            Some(Media::GraphQLResponse)
        );
        assert_eq!(accept("*/*"), Some(Media::Json));
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/graphql-response+json;q=0"), None);
    }
}
