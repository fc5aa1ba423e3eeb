//! `GET /`, `GET /commitments/<slug>` and `GET /assets/{site.css,live.js}`: the pages
//! ([`crate::pages`]). Each runs its GraphQL query through the gateway, as a client's would
//! run, as the reader (a token is needed only where the server requires one for reads), and
//! renders the answer.

use super::params::Params;
use super::{AppState, request_id};
use crate::graphql::RequestInfo;
use crate::graphql::gateway::Answer;
use crate::pages::{self, model};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `GET /`.
pub async fn home(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = match Params::parse(
        query.as_deref(),
        &["area", "rating", "asOf", "validOn", "after"],
    ) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.to_string()),
    };
    if let Err(e) = p.rating("rating").and_then(|_| p.time()) {
        return bad_request(&e.to_string());
    }
    let filters = pages::scorecard::Filters {
        area: p.text("area"),
        rating: p.text("rating"),
        as_of: p.text("asOf"),
        valid_on: p.text("validOn"),
        after: p.text("after"),
    };
    let variables = json!({
        "area": filters.area, "rating": filters.rating, "asOf": filters.as_of,
        "validOn": filters.valid_on, "after": filters.after,
    });
    match run::<model::ScorecardData>(&state, &headers, model::SCORECARD_QUERY, variables).await {
        Ok(data) => html(StatusCode::OK, pages::scorecard::page(&data, &filters)),
        Err(refusal) => refusal,
    }
}

/// `GET /commitments/<slug>`.
pub async fn commitment(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = match Params::parse(query.as_deref(), &["asOf", "validOn"]) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.to_string()),
    };
    if let Err(e) = p.time() {
        return bad_request(&e.to_string());
    }
    let (as_of, valid_on) = (p.text("asOf"), p.text("validOn"));
    let variables = json!({ "slug": slug, "asOf": as_of, "validOn": valid_on });
    match run::<model::TimelineData>(&state, &headers, model::TIMELINE_QUERY, variables).await {
        Ok(model::TimelineData {
            commitment: Some(c),
        }) => html(StatusCode::OK, pages::timeline::page(&c, as_of, valid_on)),
        Ok(_) => html(
            StatusCode::NOT_FOUND,
            pages::problem(
                "No such commitment",
                "NOT_FOUND",
                &format!("There is no commitment {slug:?} (or there was none then)."),
            ),
        ),
        Err(refusal) => refusal,
    }
}

/// `GET /assets/<file>`: the style sheet and the script, from the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, media) = match file.as_str() {
        "site.css" => (pages::SITE_CSS, "text/css; charset=utf-8"),
        "live.js" => (pages::LIVE_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Runs a page's query as the reader; a refusal is the page to answer with.
async fn run<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    query: &str,
    variables: Value,
) -> Result<T, Response> {
    let actor = super::reader(state, headers).await?;
    let info = RequestInfo {
        actor,
        request_id: request_id(headers),
        written: Default::default(),
    };
    let target = state.readers.reads().choose(None).await;
    let prepare = || async {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables.clone()));
        let prepared = state.gateway.prepare(request, Some(&info)).await;
        prepared.map(|p| p.with_data(info.clone()))
    };
    let prepared = prepare().await.map_err(|refused| answer_error(&refused))?;
    let again = || async { Some(prepare().await) };
    let response = match super::graphql::run_read(state, prepared, target, again).await {
        (Answer::Compiled(data), _) => {
            return serde_json::from_str(&data).map_err(|e| {
                tracing::error!(error = %e, "a page's answer does not fit the page");
                internal()
            });
        }
        (Answer::Resolved(response), _) => response,
    };
    if !response.errors.is_empty() {
        return Err(answer_error(&response));
    }
    let data = response.data.into_json().map_err(|e| {
        tracing::error!(error = %e, "a page's answer is not JSON");
        internal()
    })?;
    serde_json::from_value(data).map_err(|e| {
        tracing::error!(error = %e, "a page's answer does not fit the page");
        internal()
    })
}

/// The page for a GraphQL error: its message and code, with the status a client would get.
fn answer_error(response: &async_graphql::Response) -> Response {
    let first = &response.errors[0];
    let code = first
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "INTERNAL_SERVER_ERROR".to_owned());
    let status = match code.as_str() {
        "BAD_USER_INPUT" | "QUERY_TOO_COMPLEX" => StatusCode::BAD_REQUEST,
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    html(
        status,
        pages::problem("This page cannot be shown", &code, &first.message),
    )
}

fn bad_request(message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        pages::problem("This address is not quite right", "BAD_USER_INPUT", message),
    )
}

fn internal() -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::problem(
            "Something failed",
            "INTERNAL_SERVER_ERROR",
            "The details are in the server's log.",
        ),
    )
}

fn html(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(pages::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
