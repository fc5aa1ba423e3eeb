//! A page of commitments loads what its query asks of every commitment (the current
//! assessment, the latest assessments, the evidence) once for the whole page, before the
//! fields run, instead of each field of each commitment asking the loader on its own.
//!
//! The loads go through the same batch loaders as a lone field would (so concurrent requests
//! still share statements) and give the same rows; a field whose arguments the plan did not
//! cover asks the loader as before.

use super::error::{ApiResult, OrApi};
use super::loaders::{EvidenceOf, LatestAssessmentsOf, Shared, newest};
use super::types::{MAX_PAGE, PageLimit, loader};
use crate::store::read::{AssessmentRow, EvidenceRow};
use crate::store::replay::TimeFilter;
use async_graphql::{Context, Lookahead, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// What a page's query asks of each of its commitments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The most latest assessments any field asks for (`currentAssessment` asks for one).
    pub window: Option<u16>,
    /// Whether `evidence` is asked for.
    pub evidence: bool,
}

impl Plan {
    /// Reads the plan off the selection of a commitment connection field (its `nodes` and its
    /// `edges { node }`, through fragments). Arguments given as variables are resolved; a
    /// `currentAssessment(kind:)` or an `assessments` without a valid `last` is left to its
    /// field.
    pub fn of(ctx: &Context<'_>) -> ApiResult<Plan> {
        let max = ctx.data_opt::<PageLimit>().map_or(MAX_PAGE, |p| p.0);
        let look = ctx.look_ahead();
        let mut plan = Plan::default();
        for node in [look.field("nodes"), look.field("edges").field("node")] {
            plan.add(&node, max)?;
        }
        Ok(plan)
    }

    fn add(&mut self, node: &Lookahead<'_>, max: i32) -> ApiResult<()> {
        for field in node.field("currentAssessment").selection_fields() {
            let kind = field.arguments()?.into_iter().find(|(n, _)| n == "kind");
            if kind.is_none_or(|(_, v)| v == Value::Null) {
                self.widen(1);
            }
        }
        for field in node.field("assessments").selection_fields() {
            let last = field.arguments()?.into_iter().find(|(n, _)| n == "last");
            if let Some((_, Value::Number(n))) = last
                && let Some(n) = n.as_i64().filter(|n| (0..=i64::from(max)).contains(n))
                && let Ok(n) = u16::try_from(n)
            {
                self.widen(n);
            }
        }
        self.evidence |= node.field("evidence").exists();
        Ok(())
    }

    fn widen(&mut self, n: u16) {
        self.window = Some(self.window.map_or(n, |w| w.max(n)));
    }

    /// Loads what the plan asks for, for every commitment of the page at once (nothing when it
    /// asks for nothing).
    pub async fn load(
        &self,
        ctx: &Context<'_>,
        ids: &[Uuid],
    ) -> ApiResult<Option<Arc<Prefetched>>> {
        if self.window.is_none() && !self.evidence {
            return Ok(None);
        }
        let loader = loader(ctx)?;
        let filter = TimeFilter::default();
        let latest = async {
            match self.window {
                Some(n) => loader
                    .load_many(ids.iter().map(|id| LatestAssessmentsOf(*id, n, filter)))
                    .await
                    .map(|rows| {
                        let rows = rows.into_iter().map(|(k, v)| (k.0, v)).collect();
                        Some((n, rows))
                    }),
                None => Ok(None),
            }
        };
        let evidence = async {
            if self.evidence {
                loader
                    .load_many(ids.iter().map(|id| EvidenceOf(*id)))
                    .await
                    .map(|rows| Some(rows.into_iter().map(|(k, v)| (k.0, v)).collect()))
            } else {
                Ok(None)
            }
        };
        let (latest, evidence) = tokio::join!(latest, evidence);
        Ok(Some(Arc::new(Prefetched {
            latest: latest.api()?,
            evidence: evidence.api()?,
        })))
    }
}

/// What was loaded for a page of live commitments.
pub struct Prefetched {
    /// Each commitment's newest assessments, newest first, at most the window.
    latest: Option<(u16, HashMap<Uuid, Shared<AssessmentRow>>)>,
    /// Each commitment's evidence, oldest first.
    evidence: Option<HashMap<Uuid, Shared<EvidenceRow>>>,
}

impl Prefetched {
    /// A commitment's newest `n` assessments, newest first, if the page loaded that many.
    pub fn latest(&self, commitment: Uuid, n: u16) -> Option<&[Arc<AssessmentRow>]> {
        let (window, rows) = self.latest.as_ref()?;
        if n > *window {
            return None;
        }
        Some(newest(
            rows.get(&commitment).map_or(&[][..], |r| r.as_slice()),
            n,
        ))
    }

    /// A commitment's evidence, oldest first, if the page loaded it.
    pub fn evidence(&self, commitment: Uuid) -> Option<&[Arc<EvidenceRow>]> {
        let rows = self.evidence.as_ref()?;
        Some(rows.get(&commitment).map_or(&[][..], |r| r.as_slice()))
    }
}
