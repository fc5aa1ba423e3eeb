//! Batch loaders: however many commitments a query lists, each kind of related record is read
//! with one statement per batch.

use super::types::{Assessment, Source};
use crate::store::StoreError;
use crate::store::read::{
    self, AssessmentRow, CommitmentRow, DisputeRow, EvidenceRow, RevisionRow,
};
use async_graphql::dataloader::Loader;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The loader behind every batched read.
pub struct Loaders {
    pool: PgPool,
}

impl Loaders {
    /// Loaders reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Errors are shared between every waiter of a batch.
pub type LoadError = Arc<StoreError>;

/// A commitment by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitmentById(pub Uuid);
/// A commitment's assessments as a timeline (oldest first, each linked to the one before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssessmentsOf(pub Uuid);
/// A commitment's latest assessments (at most the count), oldest first, the first linked to
/// its predecessor lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LatestAssessmentsOf(pub Uuid, pub u16);
/// The assessment an assessment replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreviousOf(pub Uuid);
/// The evidence that concerns a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvidenceOf(pub Uuid);
/// A piece of evidence by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvidenceById(pub Uuid);
/// The disputes of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DisputesOf(pub Uuid);
/// The revisions of a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevisionsOf(pub Uuid);

fn group<K: Copy + Eq + std::hash::Hash, T>(
    keys: &[K],
    rows: impl IntoIterator<Item = (Uuid, T)>,
    key: impl Fn(Uuid) -> K,
) -> HashMap<K, Vec<T>> {
    let mut map: HashMap<K, Vec<T>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (id, row) in rows {
        map.entry(key(id)).or_default().push(row);
    }
    map
}

impl Loader<CommitmentById> for Loaders {
    type Value = CommitmentRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CommitmentById],
    ) -> Result<HashMap<CommitmentById, CommitmentRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::commitments_by_ids(&self.pool, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| (CommitmentById(r.id), r))
            .collect())
    }
}

impl Loader<AssessmentsOf> for Loaders {
    type Value = Arc<Vec<Assessment>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AssessmentsOf],
    ) -> Result<HashMap<AssessmentsOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::assessments_for(&self.pool, &ids).await?;
        let grouped = group(
            keys,
            rows.into_iter().map(|r| (r.commitment_id, r)),
            AssessmentsOf,
        );
        Ok(grouped
            .into_iter()
            .map(|(k, rows)| (k, Arc::new(Assessment::timeline(rows, &Source::Live))))
            .collect())
    }
}

impl Loader<LatestAssessmentsOf> for Loaders {
    type Value = Arc<Vec<Assessment>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[LatestAssessmentsOf],
    ) -> Result<HashMap<LatestAssessmentsOf, Self::Value>, LoadError> {
        // One statement per distinct count (a query usually asks for one).
        let mut counts: Vec<u16> = keys.iter().map(|k| k.1).collect();
        counts.sort_unstable();
        counts.dedup();
        let mut out = HashMap::with_capacity(keys.len());
        for count in counts {
            let batch: Vec<LatestAssessmentsOf> =
                keys.iter().filter(|k| k.1 == count).copied().collect();
            let ids: Vec<Uuid> = batch.iter().map(|k| k.0).collect();
            let rows = read::latest_assessments_for(&self.pool, &ids, i64::from(count)).await?;
            let grouped = group(
                &batch,
                rows.into_iter().map(|r| (r.commitment_id, r)),
                |id| LatestAssessmentsOf(id, count),
            );
            for (key, mut newest_first) in grouped {
                // A full window may have older assessments before it.
                let more = newest_first.len() == usize::from(count);
                newest_first.reverse();
                out.insert(
                    key,
                    Arc::new(Assessment::window(newest_first, more, &Source::Live)),
                );
            }
        }
        Ok(out)
    }
}

impl Loader<PreviousOf> for Loaders {
    type Value = AssessmentRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PreviousOf],
    ) -> Result<HashMap<PreviousOf, AssessmentRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::assessments_before(&self.pool, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|(of, r)| (PreviousOf(of), r))
            .collect())
    }
}

impl Loader<EvidenceOf> for Loaders {
    type Value = Arc<Vec<EvidenceRow>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EvidenceOf],
    ) -> Result<HashMap<EvidenceOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::evidence_for(&self.pool, &ids).await?;
        Ok(group(keys, rows, EvidenceOf)
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect())
    }
}

impl Loader<EvidenceById> for Loaders {
    type Value = EvidenceRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EvidenceById],
    ) -> Result<HashMap<EvidenceById, EvidenceRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::evidence_by_ids(&self.pool, &ids).await?;
        Ok(rows.into_iter().map(|r| (EvidenceById(r.id), r)).collect())
    }
}

impl Loader<DisputesOf> for Loaders {
    type Value = Arc<Vec<DisputeRow>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DisputesOf],
    ) -> Result<HashMap<DisputesOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::disputes_for(&self.pool, &ids).await?;
        let grouped = group(
            keys,
            rows.into_iter().map(|r| (r.assessment_id, r)),
            DisputesOf,
        );
        Ok(grouped.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Loader<RevisionsOf> for Loaders {
    type Value = Arc<Vec<RevisionRow>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[RevisionsOf],
    ) -> Result<HashMap<RevisionsOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = read::revisions_for(&self.pool, &ids).await?;
        let grouped = group(
            keys,
            rows.into_iter().map(|r| (r.commitment_id, r)),
            RevisionsOf,
        );
        Ok(grouped.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}
