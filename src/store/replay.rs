//! Replaying events into memory: the same state the projection tables hold, folded from any
//! prefix of the log. It answers time-travel queries (the log up to an instant of transaction
//! time, or up to a date of business time), and `verify` compares it with the tables.
//!
//! [`View::apply`] mirrors `projections::apply` row for row; `verify` and the time-travel
//! property test hold the two to each other.

use super::cursor::EventCursor;
use super::event_store::{EVENT_COLUMNS, StoredEvent};
use super::read::{AssessmentRow, CommitmentRow, DisputeRow, EvidenceRow, RevisionRow};
use super::{StoreError, StoreResult};
use crate::domain::DomainEvent;
use crate::domain::commitment::CommitmentEvent;
use crate::domain::evidence::EvidenceEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Which prefix of the log a view holds. Both bounds may be combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeFilter {
    /// Transaction time: events recorded at or before this instant.
    pub as_of: Option<DateTime<Utc>>,
    /// Business time: events that happened on or before this date.
    pub valid_on: Option<NaiveDate>,
}

impl TimeFilter {
    /// True when neither bound is set (the live projections answer).
    pub fn is_live(&self) -> bool {
        self.as_of.is_none() && self.valid_on.is_none()
    }

    /// Whether an event is inside the filter.
    pub fn admits(&self, e: &StoredEvent) -> bool {
        self.as_of.is_none_or(|t| e.recorded_at <= t)
            && self.valid_on.is_none_or(|d| e.occurred_at < end_of(d))
    }
}

/// The first instant after a business date.
fn end_of(date: NaiveDate) -> DateTime<Utc> {
    super::event_store::business_time(date.succ_opt().unwrap_or(date))
}

/// State folded from a prefix of the log.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// Commitments in registration order.
    pub commitments: Vec<CommitmentRow>,
    index: HashMap<Uuid, usize>,
    /// Each commitment's assessments in timeline order (assessed_on, position).
    pub assessments: HashMap<Uuid, Vec<AssessmentRow>>,
    /// Evidence by id.
    pub evidence: HashMap<Uuid, EvidenceRow>,
    /// Each commitment's evidence ids in (submitted_on, position) order.
    pub evidence_of: HashMap<Uuid, Vec<Uuid>>,
    /// Each assessment's disputes in position order.
    pub disputes: HashMap<Uuid, Vec<DisputeRow>>,
    /// Each commitment's revisions in version order.
    pub revisions: HashMap<Uuid, Vec<RevisionRow>>,
    /// The events folded, in committed order.
    pub events: Vec<Arc<StoredEvent>>,
    /// Each commitment's current assessment key (assessed_on, position), so that finding the
    /// current one never scans the timeline.
    current_key: HashMap<Uuid, (NaiveDate, i64)>,
}

impl View {
    /// Folds `events` (in committed order) into a view.
    pub fn fold(events: Vec<StoredEvent>) -> StoreResult<Self> {
        let mut view = View::default();
        for e in events {
            let decoded = e.decode()?;
            view.apply(&e, &decoded);
            view.events.push(Arc::new(e));
        }
        view.sort();
        Ok(view)
    }

    /// Puts every list in its order after [`View::apply`]: assessments by (assessed_on,
    /// position), evidence by (submitted_on, position). Sorting once after a batch is
    /// O(n log n); keeping the lists ordered on each insert would be O(n²) on a long stream.
    pub fn sort(&mut self) {
        for timeline in self.assessments.values_mut() {
            timeline.sort_by_key(|a| (a.assessed_on, a.cursor.position));
        }
        let evidence = &self.evidence;
        for list in self.evidence_of.values_mut() {
            list.sort_by_key(|id| {
                evidence
                    .get(id)
                    .map(|e| (e.submitted_on, e.cursor.position))
            });
        }
    }

    /// Reads the events inside `filter` and folds them.
    pub async fn load(pool: &PgPool, filter: TimeFilter) -> StoreResult<Self> {
        // language=PostgreSQL
        let sql = format!(
            "select {EVENT_COLUMNS} from events
             where ($1::timestamptz is null or recorded_at <= $1)
               and ($2::timestamptz is null or occurred_at < $2)
             order by transaction_id, position"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(filter.as_of)
            .bind(filter.valid_on.map(end_of))
            .fetch_all(pool)
            .await?;
        let events = rows
            .iter()
            .map(StoredEvent::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?;
        Self::fold(events)
    }

    /// A commitment by id.
    pub fn commitment(&self, id: Uuid) -> Option<&CommitmentRow> {
        self.index.get(&id).map(|i| &self.commitments[*i])
    }

    /// A commitment by slug.
    pub fn commitment_by_slug(&self, slug: &str) -> Option<&CommitmentRow> {
        self.commitments.iter().find(|c| c.slug == slug)
    }

    /// The assessment before `of` in its commitment's timeline.
    pub fn before(&self, of: &AssessmentRow) -> Option<&AssessmentRow> {
        let timeline = self.assessments.get(&of.commitment_id)?;
        let at = timeline
            .binary_search_by_key(&(of.assessed_on, of.cursor.position), |a| {
                (a.assessed_on, a.cursor.position)
            })
            .ok()?;
        at.checked_sub(1).map(|i| &timeline[i])
    }

    /// The evidence concerning a commitment, in order.
    pub fn evidence_for(&self, commitment: Uuid) -> Vec<EvidenceRow> {
        self.evidence_of
            .get(&commitment)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.evidence.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A commitment's history: its events and those of evidence concerning it.
    pub fn history(&self, commitment: Uuid) -> Vec<Arc<StoredEvent>> {
        let evidence: std::collections::HashSet<&Uuid> = self
            .evidence_of
            .get(&commitment)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        self.events
            .iter()
            .filter(|e| e.stream_id == commitment || evidence.contains(&e.stream_id))
            .cloned()
            .collect()
    }

    fn commitment_mut(&mut self, id: Uuid) -> Option<&mut CommitmentRow> {
        self.index.get(&id).map(|i| &mut self.commitments[*i])
    }

    fn touch(&mut self, stored: &StoredEvent) {
        if let Some(c) = self.commitment_mut(stored.stream_id) {
            c.version = stored.version;
            c.updated_at = stored.recorded_at;
            c.cursor = stored.cursor();
        }
    }

    /// Applies one event, as `projections::apply` does to the tables. After a batch, call
    /// [`View::sort`] to put the lists in order ([`View::fold`] does).
    pub fn apply(&mut self, stored: &StoredEvent, event: &DomainEvent) {
        let cursor = stored.cursor();
        let actor = stored.actor().to_owned();
        match event {
            DomainEvent::Commitment(CommitmentEvent::Registered(e)) => {
                self.index.insert(stored.stream_id, self.commitments.len());
                self.commitments.push(CommitmentRow {
                    id: stored.stream_id,
                    slug: e.slug.clone(),
                    title: e.title.clone(),
                    description: e.description.clone(),
                    area: e.area.clone(),
                    policy_source: e.policy_source.clone(),
                    target: e.target.clone(),
                    due_date: e.due_date,
                    owner: e.owner.clone(),
                    announced_on: e.announced_on,
                    version: stored.version,
                    current_assessment_id: None,
                    registered_position: stored.position,
                    registered_at: stored.recorded_at,
                    updated_at: stored.recorded_at,
                    cursor,
                });
            }
            DomainEvent::Commitment(CommitmentEvent::Revised(e)) => {
                let Some(c) = self.commitment_mut(stored.stream_id) else {
                    return;
                };
                let mut changes = Vec::new();
                let mut change = |field: &str, from: Value, to: Value| {
                    if from != to {
                        changes.push(json!({"field": field, "from": from, "to": to}));
                    }
                };
                if let Some(v) = &e.title {
                    change("title", json!(c.title), json!(v));
                    c.title = v.clone();
                }
                if let Some(v) = &e.description {
                    change("description", json!(c.description), json!(v));
                    c.description = v.clone();
                }
                if let Some(v) = &e.target {
                    change("target", json!(c.target), json!(v));
                    c.target = v.clone();
                }
                if let Some(v) = e.due_date {
                    change("dueDate", json!(c.due_date), json!(v));
                    c.due_date = Some(v);
                }
                self.revisions
                    .entry(stored.stream_id)
                    .or_default()
                    .push(RevisionRow {
                        commitment_id: stored.stream_id,
                        version: stored.version,
                        changes: Value::Array(changes),
                        reason: e.reason.clone(),
                        effective_on: e.effective_on,
                        cursor,
                        recorded_at: stored.recorded_at,
                        actor,
                    });
                self.touch(stored);
            }
            DomainEvent::Commitment(CommitmentEvent::Assessed(e)) => {
                if self.commitment(stored.stream_id).is_none() {
                    return;
                }
                let row = AssessmentRow {
                    id: e.assessment_id,
                    commitment_id: stored.stream_id,
                    assessor: e.assessor.clone(),
                    assessor_kind: e.assessor_kind,
                    assessed_on: e.assessed_on,
                    overall: e.overall,
                    aspects: e.aspects,
                    delivery_status: e.delivery_status,
                    rationale: e.rationale.clone(),
                    evidence_ids: e.evidence_ids.clone(),
                    evaluation: e.evaluation.clone(),
                    cursor,
                    recorded_at: stored.recorded_at,
                    actor,
                };
                // The current assessment is the latest by (assessed_on, position); `sort` puts
                // the timeline in that order once the batch is applied.
                let key = (e.assessed_on, stored.position);
                self.assessments
                    .entry(stored.stream_id)
                    .or_default()
                    .push(row);
                let becomes_current = self
                    .current_key
                    .get(&stored.stream_id)
                    .is_none_or(|k| key >= *k);
                self.touch(stored);
                if becomes_current {
                    self.current_key.insert(stored.stream_id, key);
                    if let Some(c) = self.commitment_mut(stored.stream_id) {
                        c.current_assessment_id = Some(e.assessment_id);
                    }
                }
            }
            DomainEvent::Commitment(CommitmentEvent::AssessmentDisputed(e)) => {
                self.disputes
                    .entry(e.assessment_id)
                    .or_default()
                    .push(DisputeRow {
                        id: e.dispute_id,
                        assessment_id: e.assessment_id,
                        commitment_id: stored.stream_id,
                        disputed_by: e.disputed_by.clone(),
                        statement: e.statement.clone(),
                        disputed_on: e.disputed_on,
                        evidence_ids: e.evidence_ids.clone(),
                        cursor,
                        recorded_at: stored.recorded_at,
                        actor,
                    });
                self.touch(stored);
            }
            DomainEvent::Evidence(EvidenceEvent::Submitted(e)) => {
                let row = EvidenceRow {
                    id: stored.stream_id,
                    commitment_ids: e.commitment_ids.clone(),
                    title: e.title.clone(),
                    summary: e.summary.clone(),
                    source_url: e.source_url.clone(),
                    submitted_by: e.submitted_by.clone(),
                    organisation: e.organisation.clone(),
                    submitted_on: e.submitted_on,
                    kind: e.kind,
                    retracted: false,
                    retraction_reason: None,
                    retracted_on: None,
                    version: stored.version,
                    cursor,
                    recorded_at: stored.recorded_at,
                    actor,
                };
                for c in &e.commitment_ids {
                    // Under a business-time filter the commitment may not exist yet; the
                    // tables keep a link only to an existing commitment.
                    if self.commitment(*c).is_none() {
                        continue;
                    }
                    self.evidence_of
                        .entry(*c)
                        .or_default()
                        .push(stored.stream_id);
                }
                self.evidence.insert(stored.stream_id, row);
            }
            DomainEvent::Evidence(EvidenceEvent::Retracted(e)) => {
                if let Some(row) = self.evidence.get_mut(&stored.stream_id) {
                    row.retracted = true;
                    row.retraction_reason = Some(e.reason.clone());
                    row.retracted_on = Some(e.retracted_on);
                    row.version = stored.version;
                }
            }
        }
    }
}

/// The cursor of the last event in a view.
pub fn last_cursor(view: &View) -> EventCursor {
    view.events
        .last()
        .map(|e| e.cursor())
        .unwrap_or(EventCursor::START)
}
