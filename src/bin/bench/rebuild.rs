//! `rebuild`: replays a large log into fresh projection tables and swaps them in (what
//! `commitment-tracker rebuild-projections` does), against the ceiling of a plain sequential
//! read of the same rows.
//!
//! The log is written straight through the event store in large batches (hash-chained like
//! any other): commitments, each with a long run of assessments, a deadline extension and a
//! dispute, and a piece of evidence for each commitment that its assessments cite.

use crate::support::{BenchDatabase, ratio, with_database};
use chrono::NaiveDate;
use commitment_tracker::domain::commitment::{
    AssessmentDisputed, CommitmentAssessed, CommitmentEvent, CommitmentRegistered,
    CommitmentRevised,
};
use commitment_tracker::domain::evidence::{EvidenceEvent, EvidenceSubmitted};
use commitment_tracker::domain::rating::{
    Aspects, AssessorKind, DeliveryStatus, EvidenceKind, Rating,
};
use commitment_tracker::domain::{DomainEvent, StreamType};
use commitment_tracker::store::event_store::{self, Metadata};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

pub struct RebuildArgs {
    pub events: usize,
}

/// Events per commitment (with its evidence).
const PER_COMMITMENT: usize = 200;

fn day(n: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2022, 6, 29).expect("a date") + chrono::Duration::days(n as i64)
}

fn metadata() -> Metadata {
    Metadata {
        actor: "bench".into(),
        role: "admin".into(),
        request_id: None,
        idempotency_key: None,
    }
}

const RATINGS: [Rating; 4] = [
    Rating::Outstanding,
    Rating::Good,
    Rating::RequiresImprovement,
    Rating::Inadequate,
];

/// One commitment's stream and its evidence's (`per` events in all), appended in three
/// transactions. Returns how many events were written.
pub async fn write_commitment(db: &BenchDatabase, i: usize, per: usize) -> anyhow::Result<usize> {
    let commitment = Uuid::now_v7();
    let evidence = Uuid::now_v7();
    let registered = DomainEvent::Commitment(CommitmentEvent::Registered(CommitmentRegistered {
        slug: format!("rebuild-{i}"),
        title: format!("Commitment {i}"),
        description: "Every trust to have an electronic patient record.".into(),
        area: "Records".into(),
        policy_source: "A plan for digital health and social care (2022)".into(),
        target: "All trusts on an EPR".into(),
        due_date: Some(day(1000)),
        owner: Some("NHS England".into()),
        announced_on: day(0),
    }));
    let mut tx = db.pool.begin().await?;
    let head = event_store::new_stream(&mut tx, commitment, StreamType::Commitment).await?;
    event_store::append(&mut tx, &head, &[(registered, day(0))], &metadata()).await?;
    tx.commit().await?;

    // Evidence concerning it, which its assessments cite.
    let submitted = DomainEvent::Evidence(EvidenceEvent::Submitted(EvidenceSubmitted {
        commitment_ids: vec![commitment],
        title: format!("Evaluation {i}"),
        summary: "Findings on progress.".into(),
        source_url: Some("https://www.ed.ac.uk/usher/digital-innovation".into()),
        submitted_by: "University of Edinburgh".into(),
        organisation: None,
        submitted_on: day(1),
        kind: EvidenceKind::Evaluation,
    }));
    let mut tx = db.pool.begin().await?;
    let head = event_store::new_stream(&mut tx, evidence, StreamType::Evidence).await?;
    event_store::append(&mut tx, &head, &[(submitted, day(1))], &metadata()).await?;
    tx.commit().await?;

    let mut events = Vec::with_capacity(per);
    let mut first_assessment = None;
    let rest = per.saturating_sub(2).max(1);
    for n in 0..rest {
        let on = day(2 + n);
        let event = if n == rest / 2 {
            CommitmentEvent::Revised(CommitmentRevised {
                title: None,
                description: None,
                target: None,
                due_date: Some(day(2000)),
                reason: "Deadline extended".into(),
                effective_on: on,
            })
        } else if n == rest - 1 && first_assessment.is_some() {
            CommitmentEvent::AssessmentDisputed(AssessmentDisputed {
                dispute_id: Uuid::now_v7(),
                assessment_id: first_assessment.unwrap_or_default(),
                disputed_by: "Department of Health and Social Care".into(),
                statement: "The rating does not reflect recent progress.".into(),
                disputed_on: on,
                evidence_ids: vec![evidence],
            })
        } else {
            let id = Uuid::now_v7();
            first_assessment.get_or_insert(id);
            CommitmentEvent::Assessed(CommitmentAssessed {
                assessment_id: id,
                assessor: "HSCC Expert Panel".into(),
                assessor_kind: AssessorKind::Independent,
                assessed_on: on,
                overall: Some(RATINGS[n % 4]),
                aspects: Aspects {
                    met: Some(RATINGS[(n + 1) % 4]),
                    funding: Some(RATINGS[(n + 2) % 4]),
                    impact: Some(RATINGS[(n + 3) % 4]),
                    appropriateness: Some(Rating::Good),
                },
                delivery_status: DeliveryStatus::NotOnTrack,
                rationale: "Far from on track; weak common standards hold back interoperability."
                    .into(),
                evidence_ids: vec![evidence],
                evaluation: Some("HC 780".into()),
            })
        };
        events.push((DomainEvent::Commitment(event), on));
    }
    let mut tx = db.pool.begin().await?;
    let head = event_store::lock_stream(&mut tx, commitment, StreamType::Commitment)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stream exists"))?;
    let appended = event_store::append(&mut tx, &head, &events, &metadata()).await?;
    tx.commit().await?;
    Ok(2 + appended.len())
}

pub async fn run(server_url: &str, args: &RebuildArgs) -> anyhow::Result<Value> {
    with_database(server_url, 4, async |db| {
        let started = Instant::now();
        let commitments = args.events.div_ceil(PER_COMMITMENT).max(1);
        let per = args.events.div_ceil(commitments).max(3);
        let mut written = 0;
        for i in 0..commitments {
            written += write_commitment(db, i, per).await?;
        }
        sqlx::query("vacuum analyze events").execute(&db.pool).await?;
        let generated_in = started.elapsed();

        // The ceiling: every row of the log read in committed order, nothing else.
        let t = Instant::now();
        let mut rows = 0usize;
        {
            let mut stream = sqlx::query(
                "select position, transaction_id, event_id, stream_id, stream_type, version,
                        event_type, schema_version, payload, metadata, occurred_at, recorded_at,
                        previous_hash, hash
                 from events order by transaction_id, position",
            )
            .fetch(&db.pool);
            while stream.try_next().await?.is_some() {
                rows += 1;
            }
        }
        let read_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(rows == written, "read {rows} of {written} events");

        let t = Instant::now();
        let report = commitment_tracker::store::rebuild::rebuild(&db.pool).await?;
        let rebuild_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(report.events == written, "rebuilt {} of {written}", report.events);
        let assessments: i64 = sqlx::query_scalar("select count(*) from assessments")
            .fetch_one(&db.pool)
            .await?;

        let rebuild_rate = written as f64 / rebuild_secs;
        let read_rate = written as f64 / read_secs;
        Ok(json!({
            "scenario": "rebuild",
            "events": written,
            "commitments": commitments,
            "assessment_rows_rebuilt": assessments,
            "log_written_in_secs": (generated_in.as_secs_f64() * 10.0).round() / 10.0,
            "rebuild": {
                "secs": (rebuild_secs * 100.0).round() / 100.0,
                "events_per_sec": rebuild_rate.round(),
                "phases_secs": {
                    "fold": secs(report.fold),
                    "write": secs(report.write),
                    "index": secs(report.index),
                    "swap": secs(report.swap),
                },
            },
            "ceiling": { "what": "a sequential read of every event row in committed order", "secs": (read_secs * 100.0).round() / 100.0, "events_per_sec": read_rate.round() },
            "ratio": ratio(rebuild_rate, read_rate),
        }))
    })
    .await
}

fn secs(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}
