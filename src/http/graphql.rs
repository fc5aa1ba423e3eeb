//! GraphQL over HTTP (the GraphQL-over-HTTP specification): `POST /graphql` with a JSON body,
//! and reads by `GET /graphql?query=…` (mutations only by POST).
//!
//! The answer's media type follows `Accept`: `application/graphql-response+json` when the
//! client takes it, `application/json` when it asks only for that or sends no `Accept`. The
//! status follows the media type, as the specification says: under
//! `application/graphql-response+json` a request that never ran (it did not parse, failed
//! validation or a limit) answers `400` without `data`; under `application/json` every
//! GraphQL answer is `200`. A body that is not a GraphQL request at all is `400` under both.

use super::{AppState, caching, error_response, request_id};
use crate::graphql::RequestInfo;
use crate::graphql::error::ApiError;
use crate::graphql::gateway::{Answer, Prepared};
use crate::graphql::limits::has_mutation;
use crate::store::replicas::Target;
use async_graphql::{Response as GqlResponse, ServerError, Value as GqlValue};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

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
    fn name(self) -> &'static str {
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

/// The parameters of a GraphQL request, as the specification names them.
struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Map<String, Value>>,
    extensions: Option<serde_json::Map<String, Value>>,
}

impl Params {
    /// Reads the parameters from a JSON object, refusing any of the wrong type.
    fn from_json(body: Value) -> Result<Self, ApiError> {
        let Value::Object(mut body) = body else {
            return Err(ApiError::bad_input(
                "body",
                "must be a JSON object (batches are not accepted)",
            ));
        };
        let mut text = |name: &str| match body.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_input(name, "must be a string")),
        };
        let query = text("query")?;
        let operation_name = text("operationName")?;
        let mut map = |name: &str| match body.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ApiError::bad_input(name, "must be an object")),
        };
        let variables = map("variables")?;
        let extensions = map("extensions")?;
        Ok(Self {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    /// Reads the parameters of `GET /graphql?…`; `variables` and `extensions` are JSON text.
    fn from_query_string(raw: &str) -> Result<Self, ApiError> {
        let mut query = None;
        let mut operation_name = None;
        let mut variables = None;
        let mut extensions = None;
        let object = |name: &str, text: &str| match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(Value::Null) => Ok(None),
            _ => Err(ApiError::bad_input(name, "must be a JSON object")),
        };
        for (key, value) in form_pairs(raw) {
            match key.as_str() {
                "query" => query = Some(value),
                "operationName" => operation_name = Some(value).filter(|v| !v.is_empty()),
                "variables" => variables = object("variables", &value)?,
                "extensions" => extensions = object("extensions", &value)?,
                _ => {}
            }
        }
        Ok(Self {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    /// The request for execution; a request needs a document or a persisted query's hash.
    fn into_request(self) -> Result<async_graphql::Request, ApiError> {
        let persisted = self
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("persistedQuery"));
        let query = match self.query {
            Some(q) => q,
            None if persisted => String::new(),
            None => {
                return Err(ApiError::bad_input(
                    "query",
                    "a GraphQL request needs a query",
                ));
            }
        };
        let mut request = async_graphql::Request::new(query);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = async_graphql::Variables::from_json(Value::Object(variables));
        }
        if let Some(extensions) = self.extensions {
            for (key, value) in extensions {
                if let Ok(value) = GqlValue::from_json(value) {
                    request.extensions.insert(key, value);
                }
            }
        }
        Ok(request)
    }
}

/// The pairs of an `application/x-www-form-urlencoded` string, decoded.
pub(crate) fn form_pairs(raw: &str) -> impl Iterator<Item = (String, String)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (a space); invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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

fn not_acceptable() -> Response {
    let err = ApiError::bad_input(
        "accept",
        "this endpoint answers application/graphql-response+json or application/json",
    );
    error_response(StatusCode::NOT_ACCEPTABLE, err)
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
fn answer(media: Media, response: GqlResponse) -> Response {
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
fn compiled_answer(media: Media, data: std::sync::Arc<str>) -> Response {
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
fn answer_refusal(media: Media, status: StatusCode, err: ApiError) -> Response {
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

    #[test]
    fn query_strings_decode_as_forms_do() {
        let pairs: Vec<_> = form_pairs("query=%7B%20a%20%7D&operationName=A+B&x=%zz&y").collect();
        assert_eq!(
            pairs,
            [
                ("query".into(), "{ a }".into()),
                ("operationName".into(), "A B".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), String::new()),
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn parameters_of_the_wrong_type_are_refused() {
        use serde_json::json;
        assert!(Params::from_json(json!({ "query": 5 })).is_err());
        assert!(Params::from_json(json!({ "query": "{a}", "variables": "x" })).is_err());
        assert!(Params::from_json(json!({ "query": "{a}", "operationName": [] })).is_err());
        assert!(Params::from_json(json!([{ "query": "{a}" }])).is_err());
        let missing = Params::from_json(json!({ "variables": {} })).unwrap();
        assert!(missing.into_request().is_err());
        let hash_only = Params::from_json(
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "ab" } } }),
        )
        .unwrap();
        assert_eq!(hash_only.into_request().unwrap().query, "");
    }
}
