//! The CSV exports (DESIGN §13): commitments, assessments, evidence and events, one row per
//! item, written while the rows arrive from the database and sent in chunks through a small
//! bounded channel. A slow client holds the statement back rather than letting rows pile up
//! in memory, so a server exporting a million events uses what it uses for ten.
//!
//! Headers are the GraphQL field names; ratings, statuses and kinds are the contract's enum
//! names; dates are ISO 8601 (`2023-02-01`) and instants RFC 3339 as GraphQL gives them; a
//! list (evidence ids, slugs) is one cell with its items separated by single spaces.

use super::csv::CsvWriter;
use crate::store::StoreError;
use crate::store::cursor::EventCursor;
use crate::store::event_store::StoredEvent;
use crate::store::read::{
    self, AssessmentLine, CommitmentFilter, CommitmentLine, CurrentVerdict, EvidenceLine,
};
use crate::store::replay::{TimeFilter, View};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 32 * 1024;
/// Chunks in flight between the statement and the client.
const CHUNKS_IN_FLIGHT: usize = 4;
/// How long a client may leave a chunk unread before its export is ended (and its database
/// connection given back).
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Exports that may run at once with a pool of `pool_size` connections: a quarter of them (at
/// least one), so that exports never starve the API of connections.
pub fn concurrent_exports(pool_size: u32) -> usize {
    (pool_size as usize / 4).max(1)
}

/// The columns of `commitments.csv`.
pub const COMMITMENT_HEADERS: &[&str] = &[
    "id",
    "slug",
    "title",
    "description",
    "area",
    "policySource",
    "target",
    "dueDate",
    "owner",
    "announcedOn",
    "version",
    "currentRating",
    "currentDeliveryStatus",
    "currentAssessedOn",
    "currentAssessor",
    "currentAssessmentId",
    "registeredAt",
    "updatedAt",
];

/// The columns of `assessments.csv`.
pub const ASSESSMENT_HEADERS: &[&str] = &[
    "id",
    "commitmentId",
    "commitmentSlug",
    "commitmentTitle",
    "assessor",
    "assessorKind",
    "assessedOn",
    "overall",
    "met",
    "funding",
    "impact",
    "appropriateness",
    "deliveryStatus",
    "rationale",
    "evaluation",
    "evidenceIds",
    "disputes",
    "recordedAt",
    "actor",
    "cursor",
];

/// The columns of `evidence.csv`.
pub const EVIDENCE_HEADERS: &[&str] = &[
    "id",
    "title",
    "summary",
    "kind",
    "sourceUrl",
    "submittedBy",
    "organisation",
    "submittedOn",
    "retracted",
    "retractionReason",
    "retractedOn",
    "commitmentIds",
    "commitmentSlugs",
    "version",
    "recordedAt",
];

/// The columns of `events.csv`.
pub const EVENT_HEADERS: &[&str] = &[
    "position",
    "cursor",
    "id",
    "streamId",
    "streamType",
    "version",
    "type",
    "schemaVersion",
    "occurredAt",
    "recordedAt",
    "actor",
    "role",
    "requestId",
    "erasedFields",
    "payload",
    "hash",
    "previousHash",
];

/// What to export, with its filters.
#[derive(Debug, Clone)]
pub enum Export {
    /// `commitments.csv`: the list filter and the time filter, as `commitments(…)` takes them.
    Commitments(CommitmentFilter, TimeFilter),
    /// `assessments.csv`: of one commitment (slug) or all, inside a time filter.
    Assessments(Option<String>, TimeFilter),
    /// `evidence.csv`: of one commitment (slug) or all, inside a time filter.
    Evidence(Option<String>, TimeFilter),
    /// `events.csv`: the log after a cursor, of one stream and some types, as `events(…)`.
    Events {
        /// Start after this cursor.
        after: EventCursor,
        /// Only this stream.
        stream_id: Option<Uuid>,
        /// Only these types.
        types: Option<Vec<String>>,
    },
}

impl Export {
    /// The time filter, if the export takes one.
    fn time(&self) -> TimeFilter {
        match self {
            Export::Commitments(_, t) | Export::Assessments(_, t) | Export::Evidence(_, t) => *t,
            Export::Events { .. } => TimeFilter::default(),
        }
    }
}

/// A chunk of the body, or the error that ends it early (the client sees a cut-off transfer,
/// never a short file that looks whole).
pub type Chunk = Result<Bytes, std::io::Error>;

/// Prepares an export: a time-travel export folds its view of the log here, so that a bad
/// database answer is an error status rather than a cut-off body. Then the rows are written
/// by a task while the receiver is read.
pub async fn start(
    pool: PgPool,
    export: Export,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<mpsc::Receiver<Chunk>, StoreError> {
    start_with_stall(pool, export, permit, STALL).await
}

/// [`start`], ending the export once its reader has left a chunk unread for `stall`.
pub async fn start_with_stall(
    pool: PgPool,
    export: Export,
    permit: tokio::sync::OwnedSemaphorePermit,
    stall: std::time::Duration,
) -> Result<mpsc::Receiver<Chunk>, StoreError> {
    let time = export.time();
    let view = if time.is_live() {
        None
    } else {
        Some(Arc::new(View::load(&pool, time).await?))
    };
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        let mut sink = Sink {
            csv: CsvWriter::with_capacity(CHUNK + 4096),
            tx,
            open: true,
            stall,
        };
        match write(&pool, export, view.as_deref(), &mut sink).await {
            Ok(()) => sink.flush().await,
            Err(e) => {
                tracing::error!(error = %e, "a CSV export failed part way");
                let _ = sink
                    .tx
                    .send(Err(std::io::Error::other("the export failed")))
                    .await;
            }
        }
        // The place is free before the reader sees the end, so a reader who starts another
        // export as soon as this one ends finds it.
        drop(permit);
        drop(sink);
    });
    Ok(rx)
}

/// Where rows go: a buffer sent on whenever it passes [`CHUNK`] bytes.
struct Sink {
    csv: CsvWriter,
    tx: mpsc::Sender<Chunk>,
    /// False once the client has gone: the statement stops.
    open: bool,
    /// How long a chunk may wait for the reader.
    stall: std::time::Duration,
}

impl Sink {
    /// Sends the buffer if it is full enough; false when nobody reads any more.
    async fn row_written(&mut self) -> bool {
        if self.csv.len() >= CHUNK {
            let chunk = Bytes::from(self.csv.take());
            self.open = self.tx.send_timeout(Ok(chunk), self.stall).await.is_ok();
        }
        self.open
    }

    async fn flush(&mut self) {
        if self.open && !self.csv.is_empty() {
            let _ = self
                .tx
                .send_timeout(Ok(Bytes::from(self.csv.take())), self.stall)
                .await;
        }
    }
}

async fn write(
    pool: &PgPool,
    export: Export,
    view: Option<&View>,
    sink: &mut Sink,
) -> Result<(), StoreError> {
    match export {
        Export::Commitments(filter, _) => {
            sink.csv.header(COMMITMENT_HEADERS);
            match view {
                Some(view) => {
                    for (c, current) in view.matching(&filter) {
                        let line = CommitmentLine {
                            commitment: c.clone(),
                            current: current.map(CurrentVerdict::from),
                        };
                        commitment_record(&mut sink.csv, &line);
                        if !sink.row_written().await {
                            break;
                        }
                    }
                }
                None => {
                    let mut lines = read::stream_commitments(pool, &filter);
                    while let Some(line) = lines.try_next().await? {
                        commitment_record(&mut sink.csv, &line);
                        if !sink.row_written().await {
                            break;
                        }
                    }
                }
            }
        }
        Export::Assessments(slug, time) => {
            sink.csv.header(ASSESSMENT_HEADERS);
            let mut lines = read::stream_assessments(pool, slug.as_deref(), time);
            while let Some(mut line) = lines.try_next().await? {
                if let Some(view) = view {
                    // Labelled as the commitment stood then; one registered later has no
                    // assessment inside the filter.
                    let Some(c) = view.commitment(line.assessment.commitment_id) else {
                        continue;
                    };
                    line.commitment_slug.clone_from(&c.slug);
                    line.commitment_title.clone_from(&c.title);
                }
                assessment_record(&mut sink.csv, &line);
                if !sink.row_written().await {
                    break;
                }
            }
        }
        Export::Evidence(slug, _) => {
            sink.csv.header(EVIDENCE_HEADERS);
            match view {
                Some(view) => {
                    let wanted = slug
                        .as_deref()
                        .map(|s| view.commitment_by_slug(s).map(|c| c.id));
                    let mut all: Vec<_> = view.evidence.values().collect();
                    all.sort_by_key(|e| e.cursor.position);
                    for e in all {
                        if let Some(wanted) = wanted
                            && !wanted.is_some_and(|id| e.commitment_ids.contains(&id))
                        {
                            continue;
                        }
                        let commitments: Vec<_> = e
                            .commitment_ids
                            .iter()
                            .filter_map(|id| view.commitment(*id))
                            .collect();
                        let line = EvidenceLine {
                            evidence: e.clone(),
                            commitment_slugs: commitments.iter().map(|c| c.slug.clone()).collect(),
                        };
                        evidence_record(&mut sink.csv, &line);
                        if !sink.row_written().await {
                            break;
                        }
                    }
                }
                None => {
                    let mut lines = read::stream_evidence(pool, slug.as_deref());
                    while let Some(line) = lines.try_next().await? {
                        evidence_record(&mut sink.csv, &line);
                        if !sink.row_written().await {
                            break;
                        }
                    }
                }
            }
        }
        Export::Events {
            after,
            stream_id,
            types,
        } => {
            sink.csv.header(EVENT_HEADERS);
            let mut events = read::stream_events(pool, after, stream_id, types.as_deref());
            while let Some(e) = events.try_next().await? {
                event_record(&mut sink.csv, &e);
                if !sink.row_written().await {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// An instant as GraphQL's `DateTime` spells it.
fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// Items of a list cell, separated by single spaces.
fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn commitment_record(w: &mut CsvWriter, line: &CommitmentLine) {
    let c = &line.commitment;
    let cur = line.current.as_ref();
    w.display(c.id);
    w.text(&c.slug);
    w.text(&c.title);
    w.text(&c.description);
    w.text(&c.area);
    w.text(&c.policy_source);
    w.text(&c.target);
    w.opt_display(c.due_date);
    w.opt(c.owner.as_deref());
    w.display(c.announced_on);
    w.display(c.version);
    w.opt(cur.and_then(|a| a.overall).map(|r| r.as_str()));
    w.opt(cur.map(|a| a.delivery_status.as_str()));
    w.opt_display(cur.map(|a| a.assessed_on));
    w.opt(cur.map(|a| a.assessor.as_str()));
    w.opt_display(cur.map(|a| a.assessment_id));
    w.text(&instant(c.registered_at));
    w.text(&instant(c.updated_at));
    w.end_row();
}

fn assessment_record(w: &mut CsvWriter, line: &AssessmentLine) {
    let a = &line.assessment;
    let rating = |r: Option<crate::domain::rating::Rating>| r.map(|r| r.as_str());
    w.display(a.id);
    w.display(a.commitment_id);
    w.text(&line.commitment_slug);
    w.text(&line.commitment_title);
    w.text(&a.assessor);
    w.text(a.assessor_kind.as_str());
    w.display(a.assessed_on);
    w.opt(rating(a.overall));
    w.opt(rating(a.aspects.met));
    w.opt(rating(a.aspects.funding));
    w.opt(rating(a.aspects.impact));
    w.opt(rating(a.aspects.appropriateness));
    w.text(a.delivery_status.as_str());
    w.text(&a.rationale);
    w.opt(a.evaluation.as_deref());
    w.text(&joined(&a.evidence_ids));
    w.display(line.disputes);
    w.text(&instant(a.recorded_at));
    w.text(&a.actor);
    w.text(&a.cursor.encode());
    w.end_row();
}

fn evidence_record(w: &mut CsvWriter, line: &EvidenceLine) {
    let e = &line.evidence;
    w.display(e.id);
    w.text(&e.title);
    w.text(&e.summary);
    w.text(e.kind.as_str());
    w.opt(e.source_url.as_deref());
    w.text(&e.submitted_by);
    w.opt(e.organisation.as_deref());
    w.display(e.submitted_on);
    w.display(e.retracted);
    w.opt(e.retraction_reason.as_deref());
    w.opt_display(e.retracted_on);
    w.text(&joined(&e.commitment_ids));
    w.text(&line.commitment_slugs.join(" "));
    w.display(e.version);
    w.text(&instant(e.recorded_at));
    w.end_row();
}

fn event_record(w: &mut CsvWriter, e: &StoredEvent) {
    let meta = |key: &str| e.metadata.get(key).and_then(|v| v.as_str());
    w.display(e.position);
    w.text(&e.cursor().encode());
    w.display(e.event_id);
    w.display(e.stream_id);
    w.text(&e.stream_type);
    w.display(e.version);
    w.text(&e.event_type);
    w.display(e.schema_version);
    w.text(&instant(e.occurred_at));
    w.text(&instant(e.recorded_at));
    w.text(e.actor());
    w.opt(meta("role"));
    w.opt(meta("requestId"));
    w.text(&e.erased_fields().join(" "));
    w.text(&e.opened_payload().to_string());
    w.text(&hex::encode(&e.hash));
    w.opt(e.previous_hash.as_ref().map(hex::encode).as_deref());
    w.end_row();
}
