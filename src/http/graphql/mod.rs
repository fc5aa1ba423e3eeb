//! GraphQL over HTTP (the GraphQL-over-HTTP specification): `POST /graphql` with a JSON body,
//! and reads by `GET /graphql?query=…` (mutations only by POST).
//!
//! The answer's media type follows `Accept`: `application/graphql-response+json` when the
//! client takes it, `application/json` when it asks only for that or sends no `Accept`. The
//! status follows the media type, as the specification says: under
//! `application/graphql-response+json` a request that never ran (it did not parse, failed
//! validation or a limit) answers `400` without `data`; under `application/json` every
//! GraphQL answer is `200`. A body that is not a GraphQL request at all is `400` under both.

mod answer;
mod request;

use super::{AppState, caching, error_response, request_id};
use crate::graphql::RequestInfo;
use crate::graphql::error::ApiError;
use crate::graphql::gateway::{Answer, Prepared};
use crate::graphql::limits::has_mutation;
use crate::store::replicas::Target;
pub use answer::{Media, is_request_error, negotiate};
use answer::{answer, answer_refusal, compiled_answer, not_acceptable};
use async_graphql::{Response as GqlResponse, ServerError, Value as GqlValue};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use request::Params;
pub(crate) use request::form_pairs;
use serde_json::Value;

/// `POST /graphql`.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // Only JSON: a form or `text/plain` body is what a cross-site page can send without
    // asking, so it must never reach a mutation.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| v == "application/json");
    if !json {
        let err = ApiError::bad_input("content-type", "POST /graphql takes application/json");
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, err);
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(body) => Params::from_json(body),
        Err(_) => Err(ApiError::bad_input("body", "not valid JSON")),
    };
    match params.and_then(Params::into_request) {
        Ok(request) => execute(&state, &headers, request, media, false, None).await,
        Err(err) => answer_refusal(media, StatusCode::BAD_REQUEST, err),
    }
}

/// `GET /graphql`: with parameters, a read executed like a POST; without, GraphiQL for a
/// browser. Mutations are refused over GET: a link or an image tag must never write.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let is_request = form_pairs(&raw).any(|(k, _)| {
        matches!(
            k.as_str(),
            "query" | "extensions" | "variables" | "operationName"
        )
    });
    if !is_request {
        let wants_page = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|a| a.contains("text/html") || a.trim().is_empty() || a.contains("*/*"));
        if wants_page {
            return super::graphiql::page(&state).await;
        }
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match Params::from_query_string(&raw).and_then(Params::into_request) {
        Ok(request) => request,
        Err(err) => return answer_refusal(media, StatusCode::BAD_REQUEST, err),
    };
    if headers.contains_key(header::AUTHORIZATION) {
        let mut response = execute(&state, &headers, request, media, true, None).await;
        caching::private(response.headers_mut());
        return response;
    }
    // An anonymous read: the database it goes to is chosen first, and the answer tagged with
    // that database's log position, read before the query runs, so the answer holds at least
    // everything the tag says; a tag the client holds is current only while nothing has been
    // written (or, on a replica, replayed) since.
    let min = match caching::min_position(&headers) {
        Ok(min) => min,
        Err(err) => return answer_refusal(media, StatusCode::BAD_REQUEST, err),
    };
    let target = state.readers.reads().choose(min).await;
    let pool = state.readers.reads().pool(target);
    let etag = match crate::store::position::current(pool).await {
        Ok(position) => Some(caching::etag(position, &raw, media.name())),
        Err(e) => {
            tracing::warn!(error = %e, "no log position: answering without a tag");
            None
        }
    };
    if let Some(etag) = &etag
        && caching::not_modified(&headers, etag)
    {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        caching::public(
            response.headers_mut(),
            etag,
            state.settings.cache_max_age_secs,
        );
        return response;
    }
    let tagged = Tagged {
        target,
        etag: etag.as_deref(),
    };
    execute(&state, &headers, request, media, true, Some(tagged)).await
}

/// An anonymous read whose database is chosen and whose answer has its tag.
struct Tagged<'a> {
    target: Target,
    etag: Option<&'a str>,
}

/// Authenticates, prepares (persisted query, parse, limits) and runs one request.
/// `tagged`, for an anonymous read, is where it reads and the tag its answer is given when it
/// succeeds; other reads choose where to read once the document is known to be a query, and
/// mutations (with whatever they select) run on the primary.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    media: Media,
    read_only: bool,
    tagged: Option<Tagged<'_>>,
) -> Response {
    // A read after one's own write: a replica answers once it has replayed that far.
    let min = match caching::min_position(headers) {
        Ok(min) => min,
        Err(err) => return answer_refusal(media, StatusCode::BAD_REQUEST, err),
    };
    let actor = match super::reader(state, headers).await {
        Ok(actor) => actor,
        Err(refusal) => return refusal,
    };
    let info = RequestInfo {
        actor,
        request_id: request_id(headers),
        written: Default::default(),
    };
    let spare = (state.readers.reads().replica_count() > 0).then(|| copy(&request));
    let prepared = match state.gateway.prepare(request, Some(&info)).await {
        Ok(prepared) => prepared,
        Err(refused) => return answer(media, refused),
    };
    if read_only && has_mutation(prepared.document()) {
        let err = ApiError::bad_input("query", "mutations must be sent with POST");
        let mut response = answer_refusal(media, StatusCode::METHOD_NOT_ALLOWED, err);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let mutation = has_mutation(prepared.document());
    let target = match (&tagged, mutation) {
        (_, true) => Target::Primary,
        (Some(t), false) => t.target,
        (None, false) => state.readers.reads().choose(min).await,
    };
    let mut etag = tagged.and_then(|t| t.etag);
    let again = || async {
        let request = spare?;
        let prepared = state.gateway.prepare(request, Some(&info)).await;
        Some(prepared.map(|p| p.with_data(info.clone())))
    };
    let prepared = prepared.with_data(info.clone());
    let (answered, on_primary) = run_read(state, prepared, target, again).await;
    if on_primary {
        // The replica's tag does not name this answer.
        etag = None;
    }
    let mut response = match answered {
        Answer::Resolved(response) => response,
        Answer::Compiled(data) => {
            let mut http = compiled_answer(media, data);
            if let Some(etag) = etag {
                caching::public(http.headers_mut(), etag, state.settings.cache_max_age_secs);
            }
            return http;
        }
    };
    if mutation && response.is_ok() {
        // Noted by the committer after its commit, or else read now, after every commit: so
        // the position includes the request's writes.
        let position = match info.written.position() {
            Some(position) => Ok(position),
            None => crate::store::position::current(&state.pool).await,
        };
        match position {
            Ok(position) => {
                response
                    .extensions
                    .insert("logPosition".into(), GqlValue::String(position.to_string()));
            }
            Err(e) => tracing::warn!(error = %e, "no log position for a mutation's answer"),
        }
    }
    let ok = response.is_ok();
    let mut http = answer(media, response);
    if let Some(etag) = etag
        && ok
        && http.status() == StatusCode::OK
    {
        caching::public(http.headers_mut(), etag, state.settings.cache_max_age_secs);
    }
    http
}

/// The parts of a request needed to run it again (its data is attached anew).
fn copy(request: &async_graphql::Request) -> async_graphql::Request {
    let mut again = async_graphql::Request::new(request.query.clone());
    again.operation_name = request.operation_name.clone();
    again.variables = request.variables.clone();
    again.extensions = request.extensions.clone();
    again
}

/// Runs a prepared request on `target`. A read that fails on a replica from the inside (the
/// replica is gone, or cannot serve it) marks the replica suspect and runs again on the
/// primary, as `again` prepares it anew (`None`: it cannot be). Answers the answer and
/// whether the primary stood in.
pub(crate) async fn run_read<F, Fut>(
    state: &AppState,
    prepared: Prepared,
    target: Target,
    again: F,
) -> (Answer, bool)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Result<Prepared, GqlResponse>>>,
{
    let response = state
        .gateway
        .run(state.readers.attach(prepared, target))
        .await;
    let Target::Replica(i) = target else {
        return (response, false);
    };
    if !failed_inside(response.errors()) {
        return (response, false);
    }
    let Some(again) = again().await else {
        return (response, false);
    };
    state.readers.reads().suspect(i);
    metrics::counter!("db_reads_total", "target" => "primary").increment(1);
    let response = match again {
        Ok(prepared) => {
            let prepared = state.readers.attach(prepared, Target::Primary);
            state.gateway.run(prepared).await
        }
        Err(refused) => Answer::Resolved(refused),
    };
    (response, true)
}

/// Whether an answer holds an error of the server's own (a database that failed), rather
/// than one of the request's.
pub(crate) fn failed_inside(errors: &[ServerError]) -> bool {
    errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == GqlValue::from(ApiError::Internal.code()))
    })
}
