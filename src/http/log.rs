//! The transparency log over plain HTTP (DESIGN §10, C2SP tlog-tiles): `GET /log/checkpoint`,
//! `GET /log/key` and `GET /log/tile/…`. Full tiles never change and are cached for a year as
//! immutable; partial tiles and the checkpoint change as the log grows and are not cached.

use super::AppState;
use crate::store::tree;
use crate::tlog::tiles::{self, TilePath, WIDTH};
use crate::tlog::tree::stored_hash_index;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the HTTP surface and GraphQL say about the log.
#[derive(Debug, Clone)]
pub struct LogInfo {
    /// The verifier key.
    pub verifier_key: String,
    /// The origin line.
    pub origin: String,
    /// Cosignatures a checkpoint needs before it is served.
    pub quorum: usize,
    /// The verifier keys of the witnesses whose cosignatures count.
    pub witnesses: Vec<String>,
}

impl LogInfo {
    /// The latest checkpoint with its witnesses' quorum.
    pub async fn served_checkpoint(
        &self,
        pool: &sqlx::PgPool,
    ) -> crate::store::StoreResult<Option<tree::StoredCheckpoint>> {
        tree::latest_checkpoint(pool, self.quorum, &self.witnesses).await
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const FRESH: &str = "no-cache";

fn text(status: StatusCode, cache: &'static str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a log read failed");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        FRESH,
        "the log is unavailable\n".into(),
    )
}

/// `GET /log/checkpoint`: the latest checkpoint with its witnesses' quorum, as a signed note.
pub async fn checkpoint(State(state): State<AppState>) -> Response {
    match state.log.served_checkpoint(&state.pool).await {
        Ok(Some(c)) => text(StatusCode::OK, FRESH, c.note),
        Ok(None) if state.log.quorum > 0 => text(
            StatusCode::NOT_FOUND,
            FRESH,
            format!(
                "no checkpoint has been cosigned by {} of the log's witnesses yet\n",
                state.log.quorum
            ),
        ),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            FRESH,
            "no checkpoint has been published yet\n".into(),
        ),
        Err(e) => unavailable(e),
    }
}

/// `GET /log/key`: the verifier key, in the signed-note format.
pub async fn key(State(state): State<AppState>) -> Response {
    text(
        StatusCode::OK,
        "public, max-age=3600",
        format!("{}\n", state.log.verifier_key),
    )
}

/// `GET /log/tile/<L>/<N>[.p/<W>]` and `GET /log/tile/entries/<N>[.p/<W>]`.
pub async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let Ok(tile) = TilePath::parse(&path) else {
        return text(StatusCode::NOT_FOUND, FRESH, format!("no tile at {path}\n"));
    };
    let mut conn = match state.pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return unavailable(e),
    };
    let size = match tree::state(&mut conn, false).await {
        Ok(s) => s.size,
        Err(e) => return unavailable(e),
    };
    let not_yet = || {
        text(
            StatusCode::NOT_FOUND,
            FRESH,
            format!("the log has no tile {path} yet\n"),
        )
    };
    let body = match tile {
        TilePath::Entries { index, width } => {
            let start = index * WIDTH;
            if size < start + u64::from(width) {
                return not_yet();
            }
            let leaves = match tree::leaves(&state.pool, start, u64::from(width)).await {
                Ok(leaves) => leaves,
                Err(e) => return unavailable(e),
            };
            match tiles::entry_bundle(leaves.iter().map(Vec::as_slice)) {
                Ok(bundle) => bundle,
                Err(e) => return unavailable(format!("{e:?}")),
            }
        }
        TilePath::Hashes {
            level,
            index,
            width,
        } => {
            let height = u32::from(level) * u32::from(tiles::HEIGHT);
            let nodes = size.checked_shr(height).unwrap_or(0);
            if nodes < index * WIDTH + u64::from(width) {
                return not_yet();
            }
            // The tile's hashes are the stored hashes of its level's nodes.
            let first = index * WIDTH;
            let indexes: Vec<u64> = (first..first + u64::from(width))
                .map(|n| stored_hash_index(height as u8, n))
                .collect();
            let hashes = match tree::read_hashes(&mut conn, &indexes).await {
                Ok(h) => h,
                Err(e) => return unavailable(e),
            };
            let mut body = Vec::with_capacity(indexes.len() * 32);
            for i in &indexes {
                match hashes.get(i) {
                    Some(h) => body.extend_from_slice(&h.0),
                    None => return unavailable(format!("stored hash {i} is missing")),
                }
            }
            body
        }
    };
    let cache = if tile.is_full() { IMMUTABLE } else { FRESH };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}
