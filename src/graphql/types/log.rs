//! The transparency log in GraphQL (DESIGN §10): `Checkpoint`, `InclusionProof`, and the
//! reads behind `Query.checkpoint`, `Query.consistencyProof` and `Event.inclusionProof`.

use super::*;
use crate::graphql::error::ApiError;
use crate::http::log::LogInfo;
use crate::store::StoreError;
use crate::store::tree::{self, StoredCheckpoint};
use crate::tlog::tree::Hash;
use async_graphql::ErrorExtensions;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A signed statement of the log's size and root (C2SP tlog-checkpoint).
#[derive(SimpleObject, Clone)]
pub struct Checkpoint {
    /// The log's name: the checkpoint's first line and the key's name.
    pub origin: String,
    /// Leaves in the tree.
    pub size: i64,
    /// The tree's root hash, base64.
    pub root_hash: String,
    /// The whole signed note (checkpoint text, a blank line, signature lines), as served by
    /// `GET /log/checkpoint`.
    pub note: String,
}

/// The hashes that prove a leaf is in a tree (RFC 9162 §2.1.3).
#[derive(SimpleObject, Clone)]
pub struct InclusionProof {
    /// The leaf's index.
    pub leaf_index: i64,
    /// The size of the tree the proof is for.
    pub tree_size: i64,
    /// The proof's hashes, base64, from the leaf upwards.
    pub hashes: Vec<String>,
}

fn b64(hashes: Vec<Hash>) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h.0)).collect()
}

fn bad(field: &str, message: String) -> async_graphql::Error {
    ApiError::BadUserInput {
        field: Some(field.to_owned()),
        message,
    }
    .extend()
}

/// The latest checkpoint served (with its witnesses' quorum), if any.
pub(crate) async fn latest(ctx: &Context<'_>) -> ApiResult<Option<StoredCheckpoint>> {
    let log = ctx.data::<Arc<LogInfo>>()?;
    let pool = pool(ctx)?;
    crate::store::read_retrying(|| log.served_checkpoint(pool))
        .await
        .api()
}

/// `Query.checkpoint`.
pub(crate) async fn checkpoint(ctx: &Context<'_>) -> ApiResult<Checkpoint> {
    let origin = ctx.data::<Arc<LogInfo>>()?.origin.clone();
    let Some(c) = latest(ctx).await? else {
        return Err(ApiError::NotFound(
            "the log has published no checkpoint yet: it signs one within \
             LOG_CHECKPOINT_INTERVAL_MS of its first event and serves it once \
             LOG_WITNESS_QUORUM of its witnesses have cosigned it"
                .into(),
        ))
        .api();
    };
    Ok(Checkpoint {
        origin,
        size: c.size as i64,
        root_hash: STANDARD.encode(c.root.0),
        note: c.note,
    })
}

/// `Query.consistencyProof`: sizes up to the latest checkpoint's.
pub(crate) async fn consistency_proof(
    ctx: &Context<'_>,
    from_size: i32,
    to_size: i32,
) -> ApiResult<Vec<String>> {
    let published = latest(ctx).await?.map_or(0, |c| c.size);
    if from_size < 1 || from_size > to_size {
        return Err(bad(
            "fromSize",
            format!("fromSize must be at least 1 and at most toSize ({to_size})"),
        ));
    }
    if to_size as u64 > published {
        return Err(bad(
            "toSize",
            format!("toSize must be at most the latest checkpoint's size ({published})"),
        ));
    }
    let mut conn = pool(ctx)?.acquire().await.map_err(StoreError::from).api()?;
    let proof = tree::consistency_proof(&mut conn, from_size as u64, to_size as u64)
        .await
        .api()?;
    Ok(b64(proof))
}

/// `Event.inclusionProof`: in the tree of `tree_size` leaves (the latest checkpoint's by
/// default); null while the event has no leaf or the default tree does not hold it yet.
pub(crate) async fn inclusion_proof(
    ctx: &Context<'_>,
    leaf: Option<u64>,
    tree_size: Option<i32>,
) -> ApiResult<Option<InclusionProof>> {
    let Some(index) = leaf else {
        return Ok(None);
    };
    let published = latest(ctx).await?.map_or(0, |c| c.size);
    let size = match tree_size {
        None if index >= published => return Ok(None),
        None => published,
        Some(n) if n < 1 || n as u64 > published => {
            return Err(bad(
                "treeSize",
                format!("treeSize must be from 1 to the latest checkpoint's size ({published})"),
            ));
        }
        Some(n) if (n as u64) <= index => {
            return Err(bad(
                "treeSize",
                format!("the tree of {n} leaves does not hold leaf {index}"),
            ));
        }
        Some(n) => n as u64,
    };
    let mut conn = pool(ctx)?.acquire().await.map_err(StoreError::from).api()?;
    let hashes = tree::inclusion_proof(&mut conn, index, size).await.api()?;
    Ok(Some(InclusionProof {
        leaf_index: index as i64,
        tree_size: size as i64,
        hashes: b64(hashes),
    }))
}

/// An event's leaf index, once sequenced.
pub(crate) async fn leaf_of(ctx: &Context<'_>, event: Uuid) -> ApiResult<Option<u64>> {
    loader(ctx)?.load_one(LeafOf(event)).await.api()
}

/// The event at a global position (an assessment's, a dispute's).
pub(crate) async fn event_at(ctx: &Context<'_>, position: i64) -> ApiResult<Event> {
    loader(ctx)?
        .load_one(EventAt(position))
        .await
        .api()?
        .map(Event)
        .ok_or_else(|| ApiError::Internal.extend())
}
