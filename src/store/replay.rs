//! Replaying events into memory: the same state the projection tables hold, folded from any
//! prefix of the log. It answers time-travel queries (the log up to an instant of transaction
//! time, or up to a date of business time), and `verify` compares it with the tables.
//!
//! [`View::apply`] mirrors `projections::apply` row for row; `verify` and the time-travel
//! property test hold the two to each other.

use super::event_store::{EVENT_COLUMNS, Envelope, StoredEvent};
use super::read::{self, AssessmentRow, CommitmentRow, DisputeRow, EvidenceRow, RevisionRow};
use super::{StoreError, StoreResult};
use crate::domain::DomainEvent;
use crate::domain::commitment::CommitmentEvent;
use crate::domain::evidence::EvidenceEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// Which prefix of the log a view holds. Both bounds may be combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
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

    /// The filter as SQL bounds: `recorded_at <= .0` and `occurred_at < .1`.
    pub fn bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (self.as_of, self.valid_on.map(end_of))
    }

    /// The date an assessment must be assessed before to be inside the filter: its event
    /// occurs at the start of its `assessed_on` date, so "occurred by the end of the date"
    /// is "assessed before the next date".
    pub fn assessed_before(&self) -> Option<NaiveDate> {
        self.valid_on.map(|d| d.succ_opt().unwrap_or(d))
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
    /// Each commitment's assessments in timeline order (assessed_on, position). Only a
    /// fold fills it: a loaded view leaves timelines in the store, read through `filter`.
    pub assessments: HashMap<Uuid, Vec<AssessmentRow>>,
    /// Each commitment's current assessment.
    pub current: HashMap<Uuid, AssessmentRow>,
    /// Evidence by id.
    pub evidence: HashMap<Uuid, EvidenceRow>,
    /// Each commitment's evidence ids in (submitted_on, position) order.
    pub evidence_of: HashMap<Uuid, Vec<Uuid>>,
    /// Each assessment's disputes in position order.
    pub disputes: HashMap<Uuid, Vec<DisputeRow>>,
    /// Each commitment's revisions in version order.
    pub revisions: HashMap<Uuid, Vec<RevisionRow>>,
    /// The prefix of the log the view holds (none for a fold of given events).
    pub filter: TimeFilter,
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
            view.apply(&e.envelope(), &decoded);
        }
        view.sort();
        Ok(view)
    }

    /// Puts every list in its order after [`View::apply`]: assessments by (assessed_on,
    /// position), evidence by (submitted_on, position). Sorting once after a batch is
    /// O(n log n); keeping the lists ordered on each insert would be O(n²) on a long stream.
    pub fn sort(&mut self) {
        for (commitment, timeline) in &mut self.assessments {
            timeline.sort_by_key(|a| (a.assessed_on, a.cursor.position));
            if let Some(last) = timeline.last() {
                self.current.insert(*commitment, last.clone());
            }
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

    /// The view of the log inside `filter`.
    ///
    /// Assessments are most of a long log, and their projection rows are never updated, so
    /// they are not folded: the other events are folded in committed order, each commitment
    /// takes its current assessment (an index probe) and the version and cursor of its
    /// stream's last admitted event, and timelines are read from the store through the
    /// filter when a query asks for them. The answers equal those of [`View::fold`] over the
    /// same events (the time-travel tests hold the two to each other).
    pub async fn load(pool: &PgPool, filter: TimeFilter) -> StoreResult<Self> {
        // language=PostgreSQL
        let sql = format!(
            "select {EVENT_COLUMNS} from events
             where {} and event_type <> 'CommitmentAssessed'
             order by transaction_id, position",
            read::EVENTS_ADMITTED
        );
        let others = async {
            let rows = read::events_in(sql, filter).fetch_all(pool).await?;
            rows.iter()
                .map(StoredEvent::from_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)
        };
        let (events, heads) = tokio::try_join!(others, read::stream_heads_at(pool, filter))?;
        let mut view = View {
            filter,
            ..View::default()
        };
        for e in &events {
            let decoded = e.decode()?;
            view.apply(&e.envelope(), &decoded);
        }
        for head in heads {
            if let Some(c) = view.commitment_mut(head.stream_id) {
                c.version = head.version;
                c.updated_at = head.recorded_at;
                c.cursor = head.cursor;
            }
        }
        let ids: Vec<Uuid> = view.commitments.iter().map(|c| c.id).collect();
        for row in read::latest_assessments_for(pool, &ids, 1, filter).await? {
            if let Some(c) = view.commitment_mut(row.commitment_id) {
                c.current_assessment_id = Some(row.id);
                view.current.insert(row.commitment_id, row);
            }
        }
        view.sort();
        Ok(view)
    }

    /// A commitment by id.
    pub fn commitment(&self, id: Uuid) -> Option<&CommitmentRow> {
        self.index.get(&id).map(|i| &self.commitments[*i])
    }

    /// The commitments matching a list filter, in registration order, with their current
    /// assessments: the filter applied to the view as the SQL applies it to the tables.
    pub fn matching<'a>(
        &'a self,
        f: &'a read::CommitmentFilter,
    ) -> impl Iterator<Item = (&'a CommitmentRow, Option<&'a AssessmentRow>)> + 'a {
        self.commitments
            .iter()
            .map(|c| (c, self.current.get(&c.id)))
            .filter(move |(c, current)| {
                f.area.as_ref().is_none_or(|a| *a == c.area)
                    && f.rating
                        .is_none_or(|r| current.and_then(|a| a.overall) == Some(r))
                    && f.delivery_status
                        .is_none_or(|s| current.map(|a| a.delivery_status) == Some(s))
            })
    }

    /// A commitment by slug.
    pub fn commitment_by_slug(&self, slug: &str) -> Option<&CommitmentRow> {
        self.commitments.iter().find(|c| c.slug == slug)
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

    /// A commitment's history as this view holds it: its events and those of the evidence
    /// linked to it, inside the view's filter.
    pub fn history(&self, commitment: Uuid) -> read::HistoryAt {
        read::HistoryAt {
            commitment,
            evidence: self
                .evidence_of
                .get(&commitment)
                .cloned()
                .unwrap_or_default(),
            filter: self.filter,
        }
    }

    /// Adds an assessment to its commitment's timeline (at the end: [`View::sort`] orders
    /// it) and makes it current if it is the latest by (assessed_on, position): a back-dated
    /// verdict is history, not news. False, and nothing added, when the view does not hold
    /// the commitment.
    fn add_assessment(&mut self, row: AssessmentRow) -> bool {
        let (commitment, id) = (row.commitment_id, row.id);
        let Some(&at) = self.index.get(&commitment) else {
            return false;
        };
        let key = (row.assessed_on, row.cursor.position);
        self.assessments.entry(commitment).or_default().push(row);
        if self.current_key.get(&commitment).is_none_or(|k| key >= *k) {
            self.current_key.insert(commitment, key);
            self.commitments[at].current_assessment_id = Some(id);
        }
        true
    }

    fn commitment_mut(&mut self, id: Uuid) -> Option<&mut CommitmentRow> {
        self.index.get(&id).map(|i| &mut self.commitments[*i])
    }

    fn touch(&mut self, stored: &Envelope<'_>) {
        if let Some(c) = self.commitment_mut(stored.stream_id) {
            c.version = stored.version;
            c.updated_at = stored.recorded_at;
            c.cursor = stored.cursor();
        }
    }

    /// Applies one event, as `projections::apply` does to the tables. After a batch, call
    /// [`View::sort`] to put the lists in order ([`View::fold`] does).
    pub fn apply(&mut self, stored: &Envelope<'_>, event: &DomainEvent) {
        let cursor = stored.cursor();
        let actor = stored.actor.to_owned();
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
                if self.add_assessment(AssessmentRow::recorded(stored, e)) {
                    self.touch(stored);
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
            // Erased values arrive as erased with the events they were in.
            DomainEvent::Erasure(_) => {}
        }
    }
}
