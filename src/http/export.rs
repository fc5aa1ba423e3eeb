//! `GET /export/{commitments,assessments,evidence,events}.csv`: the record as spreadsheets
//! (DESIGN §13), streamed ([`crate::opendata::export`]). The same filters as the GraphQL
//! queries, under the same names; `download=true` asks the browser to save the file.

use super::params::Params;
use super::{AppState, error_response};
use crate::graphql::error::ApiError;
use crate::opendata::export::{self, Export};
use crate::store::cursor::EventCursor;
use crate::store::read::CommitmentFilter;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::wrappers::ReceiverStream;

/// `GET /export/{file}`.
pub async fn csv(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = super::reader(&state, &headers).await {
        return refusal;
    }
    let (export, download) = match parse(&file, query.as_deref()) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            let err = ApiError::NotFound(format!(
                "no export {file:?}: there are commitments.csv, assessments.csv, evidence.csv and events.csv"
            ));
            return error_response(StatusCode::NOT_FOUND, err);
        }
        Err(err) => return error_response(StatusCode::BAD_REQUEST, err),
    };
    let Ok(permit) = state.exports.clone().try_acquire_owned() else {
        let err = ApiError::RateLimited {
            retry_after_secs: 1,
        };
        let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, err);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let rx = match export::start(state.read_pool().await.clone(), export, permit).await {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "a CSV export could not start");
            return error_response(StatusCode::SERVICE_UNAVAILABLE, ApiError::Internal);
        }
    };
    let disposition = format!(
        "{}; filename=\"{file}\"",
        if download { "attachment" } else { "inline" }
    );
    let mut response = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The export a file name and query string ask for; `None` for a file that is not one.
fn parse(file: &str, query: Option<&str>) -> Result<Option<(Export, bool)>, ApiError> {
    const TIME: [&str; 2] = ["asOf", "validOn"];
    let export = match file {
        "commitments.csv" => {
            let p = Params::parse(
                query,
                &[
                    "area",
                    "rating",
                    "deliveryStatus",
                    TIME[0],
                    TIME[1],
                    "download",
                ],
            )?;
            let filter = CommitmentFilter {
                area: p.text("area").map(str::to_owned),
                rating: p.rating("rating")?,
                delivery_status: p.delivery_status("deliveryStatus")?,
            };
            (Export::Commitments(filter, p.time()?), p.flag("download")?)
        }
        "assessments.csv" | "evidence.csv" => {
            let p = Params::parse(query, &["commitment", TIME[0], TIME[1], "download"])?;
            let slug = p.text("commitment").map(str::to_owned);
            let time = p.time()?;
            let export = if file == "evidence.csv" {
                Export::Evidence(slug, time)
            } else {
                Export::Assessments(slug, time)
            };
            (export, p.flag("download")?)
        }
        "events.csv" => {
            let p = Params::parse(query, &["after", "streamId", "types", "download"])?;
            let export = Export::Events {
                after: p.cursor("after")?.unwrap_or(EventCursor::START),
                stream_id: p.uuid("streamId")?,
                types: p.list("types"),
            };
            (export, p.flag("download")?)
        }
        _ => return Ok(None),
    };
    Ok(Some(export))
}
