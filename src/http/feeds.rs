//! `GET /feeds/assessments.atom`: every assessment as an Atom entry, newest first, paged
//! (DESIGN §13, [`crate::opendata::atom`]). `commitment=<slug>` or `area=<area>` narrows it;
//! `before=<cursor>` is a later page, as the feed's `next` link gives it.

use super::params::Params;
use super::{AppState, error_response};
use crate::graphql::error::ApiError;
use crate::opendata::atom::{self, url_encode};
use crate::store::read;
use crate::store::replicas::Target;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

/// Entries per page.
pub const PAGE: i64 = 50;

/// `GET /feeds/assessments.atom`.
pub async fn assessments(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = super::reader(&state, &headers).await {
        return refusal;
    }
    let reads = state.readers.reads();
    let target = reads.choose(None).await;
    let mut rendered = render(&state, reads.pool(target), query.as_deref(), &headers).await;
    if let (Target::Replica(i), Err((StatusCode::SERVICE_UNAVAILABLE, _))) = (target, &rendered) {
        // The replica failed: skip it, and ask the primary.
        reads.suspect(i);
        rendered = render(&state, reads.primary(), query.as_deref(), &headers).await;
    }
    match rendered {
        Ok(body) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/atom+xml; charset=utf-8"),
            );
            response
        }
        Err((status, err)) => error_response(status, err),
    }
}

async fn render(
    state: &AppState,
    pool: &PgPool,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<String, (StatusCode, ApiError)> {
    let bad = |e| (StatusCode::BAD_REQUEST, e);
    let p = Params::parse(query, &["commitment", "area", "before"]).map_err(bad)?;
    let slug = p.text("commitment");
    let area = p.text("area");
    let before = p.cursor("before").map_err(bad)?;
    let internal = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "the assessments feed failed");
        (StatusCode::SERVICE_UNAVAILABLE, ApiError::Internal)
    };
    let (scope, alternate) = match slug {
        Some(slug) => {
            let commitment = read::commitment_by_slug(pool, slug)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    (
                        StatusCode::NOT_FOUND,
                        ApiError::NotFound(format!("no commitment with slug {slug:?}")),
                    )
                })?;
            (
                Some(commitment.title),
                format!("/commitments/{}", url_encode(slug)),
            )
        }
        None => (
            area.map(str::to_owned),
            match area {
                Some(a) => format!("/?area={}", url_encode(a)),
                None => "/".to_owned(),
            },
        ),
    };
    let mut entries = read::assessment_feed(pool, slug, area, before, PAGE + 1)
        .await
        .map_err(internal)?;
    let next = (entries.len() as i64 > PAGE).then(|| {
        entries.truncate(PAGE as usize);
        entries.last().map(|e| e.assessment.cursor.encode())
    });
    let mut feed_path = "/feeds/assessments.atom".to_owned();
    let mut sep = '?';
    for (name, value) in [("commitment", slug), ("area", area)] {
        if let Some(v) = value {
            feed_path.push_str(&format!("{sep}{name}={}", url_encode(v)));
            sep = '&';
        }
    }
    let before_text = p.text("before");
    let base = super::public_base(state, headers);
    let authority = state.log.origin.split('/').next().unwrap_or("localhost");
    Ok(atom::render(&atom::Page {
        authority,
        base: &base,
        feed_path: &feed_path,
        scope: scope.as_deref(),
        alternate_path: &alternate,
        entries: &entries,
        before: before_text,
        next: next.flatten(),
    }))
}
