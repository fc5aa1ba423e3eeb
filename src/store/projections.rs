//! Inline projections: current state, updated in the appending transaction.
//!
//! `apply` is the one function that turns an event into projection rows; the live append path
//! and a rebuild both go through it, so the two cannot drift apart.

use super::event_store::{Fused, StoredEvent};
use super::{StoreError, StoreResult, unique_violation};
use crate::domain::DomainError;
use crate::domain::DomainEvent;
use crate::domain::commitment::CommitmentEvent;
use crate::domain::evidence::EvidenceEvent;
use crate::domain::rating::Rating;
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

/// Applies one stored event (decoded as `event`) to the projection tables.
pub async fn apply(
    conn: &mut PgConnection,
    stored: &StoredEvent,
    event: &DomainEvent,
) -> StoreResult<()> {
    let actor = stored.actor();
    match event {
        DomainEvent::Commitment(CommitmentEvent::Registered(e)) => {
            // language=PostgreSQL
            sqlx::query(
                "insert into commitments (id, slug, title, description, area, policy_source, target,
                                          due_date, owner, announced_on, version,
                                          registered_position, registered_at, updated_at,
                                          last_transaction_id, last_position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $12)",
            )
            .bind(stored.stream_id)
            .bind(&e.slug)
            .bind(&e.title)
            .bind(&e.description)
            .bind(&e.area)
            .bind(&e.policy_source)
            .bind(&e.target)
            .bind(e.due_date)
            .bind(&e.owner)
            .bind(e.announced_on)
            .bind(stored.version)
            .bind(stored.position)
            .bind(stored.recorded_at)
            .bind(stored.transaction_id)
            .execute(&mut *conn)
            .await
            .map_err(|err| match unique_violation(&err).as_deref() {
                Some("commitments_slug_key") => StoreError::Domain(DomainError::invalid(
                    "slug",
                    format!("{:?} is already used by another commitment", e.slug),
                )),
                _ => err.into(),
            })?;
        }
        DomainEvent::Commitment(CommitmentEvent::Revised(e)) => {
            // language=PostgreSQL
            let (title, description, target, due_date): (
                String,
                String,
                String,
                Option<NaiveDate>,
            ) = sqlx::query_as(
                "select title, description, target, due_date from commitments where id = $1",
            )
            .bind(stored.stream_id)
            .fetch_one(&mut *conn)
            .await?;
            let mut changes = Vec::new();
            let mut change = |field: &str, from: Value, to: Value| {
                if from != to {
                    changes.push(json!({"field": field, "from": from, "to": to}));
                }
            };
            if let Some(v) = &e.title {
                change("title", json!(title), json!(v));
            }
            if let Some(v) = &e.description {
                change("description", json!(description), json!(v));
            }
            if let Some(v) = &e.target {
                change("target", json!(target), json!(v));
            }
            if let Some(v) = e.due_date {
                change("dueDate", json!(due_date), json!(v));
            }
            // language=PostgreSQL
            sqlx::query(
                "update commitments set title = coalesce($2, title),
                        description = coalesce($3, description), target = coalesce($4, target),
                        due_date = coalesce($5, due_date), version = $6, updated_at = $7,
                        last_transaction_id = $8, last_position = $9
                 where id = $1",
            )
            .bind(stored.stream_id)
            .bind(&e.title)
            .bind(&e.description)
            .bind(&e.target)
            .bind(e.due_date)
            .bind(stored.version)
            .bind(stored.recorded_at)
            .bind(stored.transaction_id)
            .bind(stored.position)
            .execute(&mut *conn)
            .await?;
            // language=PostgreSQL
            sqlx::query(
                "insert into revisions (commitment_id, version, changes, reason, effective_on,
                                        position, transaction_id, recorded_at, actor)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(stored.stream_id)
            .bind(stored.version)
            .bind(Value::Array(changes))
            .bind(&e.reason)
            .bind(e.effective_on)
            .bind(stored.position)
            .bind(stored.transaction_id)
            .bind(stored.recorded_at)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
        }
        DomainEvent::Commitment(CommitmentEvent::Assessed(e)) => {
            let rating = |r: Option<Rating>| r.map(Rating::as_str);
            // language=PostgreSQL
            sqlx::query(
                "insert into assessments (id, commitment_id, assessor, assessor_kind, assessed_on,
                                          overall, met, funding, impact, appropriateness,
                                          delivery_status, rationale, evidence_ids, evaluation,
                                          position, transaction_id, recorded_at, actor)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                         $17, $18)",
            )
            .bind(e.assessment_id)
            .bind(stored.stream_id)
            .bind(&e.assessor)
            .bind(e.assessor_kind.as_str())
            .bind(e.assessed_on)
            .bind(rating(e.overall))
            .bind(rating(e.aspects.met))
            .bind(rating(e.aspects.funding))
            .bind(rating(e.aspects.impact))
            .bind(rating(e.aspects.appropriateness))
            .bind(e.delivery_status.as_str())
            .bind(&e.rationale)
            .bind(&e.evidence_ids)
            .bind(&e.evaluation)
            .bind(stored.position)
            .bind(stored.transaction_id)
            .bind(stored.recorded_at)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
            // The current assessment is the latest by (assessed_on, position): a back-dated
            // verdict is history, not news.
            // language=PostgreSQL
            sqlx::query(
                "update commitments c
                    set version = $2, updated_at = $3,
                        last_transaction_id = $7, last_position = $6,
                        current_assessment_id = case
                            when c.current_assessment_id is null or not exists (
                                select 1 from assessments a
                                where a.id = c.current_assessment_id
                                  and (a.assessed_on, a.position) > ($5, $6))
                            then $4 else c.current_assessment_id end
                  where c.id = $1",
            )
            .bind(stored.stream_id)
            .bind(stored.version)
            .bind(stored.recorded_at)
            .bind(e.assessment_id)
            .bind(e.assessed_on)
            .bind(stored.position)
            .bind(stored.transaction_id)
            .execute(&mut *conn)
            .await?;
        }
        DomainEvent::Commitment(CommitmentEvent::AssessmentDisputed(e)) => {
            // language=PostgreSQL
            sqlx::query(
                "insert into disputes (id, assessment_id, commitment_id, disputed_by, statement,
                                       disputed_on, evidence_ids, position, transaction_id,
                                       recorded_at, actor)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(e.dispute_id)
            .bind(e.assessment_id)
            .bind(stored.stream_id)
            .bind(&e.disputed_by)
            .bind(&e.statement)
            .bind(e.disputed_on)
            .bind(&e.evidence_ids)
            .bind(stored.position)
            .bind(stored.transaction_id)
            .bind(stored.recorded_at)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
            bump_commitment(conn, stored).await?;
        }
        DomainEvent::Evidence(EvidenceEvent::Submitted(e)) => {
            // language=PostgreSQL
            sqlx::query(
                "insert into evidence (id, commitment_ids, title, summary, source_url, submitted_by,
                                       organisation, submitted_on, kind, version, position,
                                       transaction_id, recorded_at, actor)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(stored.stream_id)
            .bind(&e.commitment_ids)
            .bind(&e.title)
            .bind(&e.summary)
            .bind(&e.source_url)
            .bind(&e.submitted_by)
            .bind(&e.organisation)
            .bind(e.submitted_on)
            .bind(e.kind.as_str())
            .bind(stored.version)
            .bind(stored.position)
            .bind(stored.transaction_id)
            .bind(stored.recorded_at)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
            // language=PostgreSQL
            sqlx::query(
                "insert into evidence_commitments (commitment_id, evidence_id)
                 select unnest($1::uuid[]), $2",
            )
            .bind(&e.commitment_ids)
            .bind(stored.stream_id)
            .execute(&mut *conn)
            .await?;
        }
        DomainEvent::Evidence(EvidenceEvent::Retracted(e)) => {
            // language=PostgreSQL
            sqlx::query(
                "update evidence set retracted = true, retraction_reason = $2, retracted_on = $3,
                        version = $4
                 where id = $1",
            )
            .bind(stored.stream_id)
            .bind(&e.reason)
            .bind(e.retracted_on)
            .bind(stored.version)
            .execute(&mut *conn)
            .await?;
        }
        // The erasure's changes to the projections are made by the command that records it
        // (store::erasure), and a replay reads the erased values as erased.
        DomainEvent::Erasure(_) => {}
    }
    Ok(())
}

/// Applies a batch's events, in order, as [`apply`] applies each: the same rows, with the
/// verdicts (the bulk of any busy batch) written in one statement whatever their number,
/// the one [`Verdicts`] adds to an append.
///
/// Verdicts are grouped only when each is on a commitment no other event of the batch
/// touches; otherwise every event goes through [`apply`] in order.
pub async fn apply_many(
    conn: &mut PgConnection,
    events: &[(&StoredEvent, &DomainEvent)],
) -> StoreResult<()> {
    let is_verdict = |event: &DomainEvent| {
        matches!(event, DomainEvent::Commitment(CommitmentEvent::Assessed(_)))
    };
    let verdicts: Vec<(&StoredEvent, &DomainEvent)> = events
        .iter()
        .filter(|(_, event)| is_verdict(event))
        .copied()
        .collect();
    let mut streams = std::collections::HashSet::with_capacity(events.len());
    let separate = events
        .iter()
        .all(|(stored, _)| streams.insert(stored.stream_id));
    let grouped = if separate && verdicts.len() > 1 {
        Verdicts::of(&verdicts)
    } else {
        None
    };
    let Some(grouped) = grouped else {
        for (stored, event) in events {
            apply(conn, stored, event).await?;
        }
        return Ok(());
    };
    for (stored, event) in events {
        if !is_verdict(event) {
            apply(conn, stored, event).await?;
        }
    }
    // The verdicts' events are stored already: `appended` names their places in the log,
    // as the append's own statement does.
    // language=PostgreSQL
    let sql = format!(
        "with appended as (
             select * from unnest($1::uuid[], $2::int8[], $3::int8[])
                 as a(event_id, position, transaction_id)
         ), {}
         select 1",
        grouped.ctes(4)
    );
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(column(&verdicts, |(s, _)| s.event_id))
        .bind(column(&verdicts, |(s, _)| s.position))
        .bind(column(&verdicts, |(s, _)| s.transaction_id));
    grouped.bind(query).execute(&mut *conn).await?;
    Ok(())
}

/// A batch's verdicts, written by the append's own statement (see [`Fused`]): the rows
/// [`apply`] writes for each, in no extra round trip.
#[derive(Debug)]
pub struct Verdicts {
    event_id: Vec<Uuid>,
    id: Vec<Uuid>,
    commitment_id: Vec<Uuid>,
    assessor: Vec<String>,
    assessor_kind: Vec<&'static str>,
    assessed_on: Vec<NaiveDate>,
    overall: Vec<Option<&'static str>>,
    met: Vec<Option<&'static str>>,
    funding: Vec<Option<&'static str>>,
    impact: Vec<Option<&'static str>>,
    appropriateness: Vec<Option<&'static str>>,
    delivery_status: Vec<&'static str>,
    rationale: Vec<String>,
    evidence_ids: Vec<String>,
    evaluation: Vec<Option<String>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
    actor: Vec<String>,
    version: Vec<i32>,
}

impl Verdicts {
    /// The verdicts of a batch made only of verdicts, each on a commitment of its own (the
    /// bulk of any busy batch); `None` for any other batch, which [`apply_many`] applies
    /// after the append.
    pub fn of(events: &[(&StoredEvent, &DomainEvent)]) -> Option<Verdicts> {
        let mut streams = std::collections::HashSet::with_capacity(events.len());
        let mut assessed = Vec::with_capacity(events.len());
        for (stored, event) in events {
            match event {
                DomainEvent::Commitment(CommitmentEvent::Assessed(e))
                    if streams.insert(stored.stream_id) =>
                {
                    assessed.push((*stored, e));
                }
                _ => return None,
            }
        }
        if assessed.is_empty() {
            return None;
        }
        let rating = |r: Option<Rating>| r.map(Rating::as_str);
        Some(Verdicts {
            event_id: column(&assessed, |(s, _)| s.event_id),
            id: column(&assessed, |(_, e)| e.assessment_id),
            commitment_id: column(&assessed, |(s, _)| s.stream_id),
            assessor: column(&assessed, |(_, e)| e.assessor.clone()),
            assessor_kind: column(&assessed, |(_, e)| e.assessor_kind.as_str()),
            assessed_on: column(&assessed, |(_, e)| e.assessed_on),
            overall: column(&assessed, |(_, e)| rating(e.overall)),
            met: column(&assessed, |(_, e)| rating(e.aspects.met)),
            funding: column(&assessed, |(_, e)| rating(e.aspects.funding)),
            impact: column(&assessed, |(_, e)| rating(e.aspects.impact)),
            appropriateness: column(&assessed, |(_, e)| rating(e.aspects.appropriateness)),
            delivery_status: column(&assessed, |(_, e)| e.delivery_status.as_str()),
            rationale: column(&assessed, |(_, e)| e.rationale.clone()),
            evidence_ids: column(&assessed, |(_, e)| uuid_array_literal(&e.evidence_ids)),
            evaluation: column(&assessed, |(_, e)| e.evaluation.clone()),
            recorded_at: column(&assessed, |(s, _)| s.recorded_at),
            actor: column(&assessed, |(s, _)| s.actor().to_owned()),
            version: column(&assessed, |(s, _)| s.version),
        })
    }
}

/// The expressions [`Verdicts`] adds to the append's statement, numbering their parameters
/// from `$first`: each verdict's assessment row, and its commitment's version, last write and
/// current assessment.
pub fn verdict_ctes(first: usize) -> String {
    let n = |k: usize| format!("${}", first + k);
    // The same rows and the same rule for the current assessment as `apply`: the latest
    // by (assessed_on, position). Every statement of the batch reads the snapshot from
    // before it, so the current assessment compared with is the one from before.
    // language=PostgreSQL
    format!(
        "verdicts as (
             insert into assessments (id, commitment_id, assessor, assessor_kind,
                                      assessed_on, overall, met, funding, impact,
                                      appropriateness, delivery_status, rationale,
                                      evidence_ids, evaluation, position, transaction_id,
                                      recorded_at, actor)
             select v.id, v.commitment_id, v.assessor, v.assessor_kind, v.assessed_on,
                    v.overall, v.met, v.funding, v.impact, v.appropriateness,
                    v.delivery_status, v.rationale, v.evidence_ids::uuid[], v.evaluation,
                    a.position, a.transaction_id, v.recorded_at, v.actor
             from unnest({ev}::uuid[], {id}::uuid[], {cm}::uuid[], {asr}::text[],
                         {kind}::text[], {on}::date[], {ov}::text[], {met}::text[],
                         {fun}::text[], {imp}::text[], {app}::text[], {ds}::text[],
                         {rat}::text[], {evi}::text[], {eva}::text[], {at}::timestamptz[],
                         {act}::text[])
                  as v(event_id, id, commitment_id, assessor, assessor_kind, assessed_on,
                       overall, met, funding, impact, appropriateness, delivery_status,
                       rationale, evidence_ids, evaluation, recorded_at, actor)
             join appended a on a.event_id = v.event_id
         ), current_verdicts as (
             update commitments c
                set version = v.version, updated_at = v.recorded_at,
                    last_transaction_id = a.transaction_id, last_position = a.position,
                    current_assessment_id = case
                        when c.current_assessment_id is null or not exists (
                            select 1 from assessments x
                            where x.id = c.current_assessment_id
                              and (x.assessed_on, x.position) > (v.assessed_on, a.position))
                        then v.id else c.current_assessment_id end
               from unnest({ev}::uuid[], {id}::uuid[], {cm}::uuid[], {on}::date[],
                           {at}::timestamptz[], {ver}::int4[])
                    as v(event_id, id, commitment_id, assessed_on, recorded_at, version)
               join appended a on a.event_id = v.event_id
              where c.id = v.commitment_id
         )",
        ev = n(0),
        id = n(1),
        cm = n(2),
        asr = n(3),
        kind = n(4),
        on = n(5),
        ov = n(6),
        met = n(7),
        fun = n(8),
        imp = n(9),
        app = n(10),
        ds = n(11),
        rat = n(12),
        evi = n(13),
        eva = n(14),
        at = n(15),
        act = n(16),
        ver = n(17),
    )
}

impl Fused for Verdicts {
    fn ctes(&self, first: usize) -> String {
        verdict_ctes(first)
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.event_id)
            .bind(&self.id)
            .bind(&self.commitment_id)
            .bind(&self.assessor)
            .bind(&self.assessor_kind)
            .bind(&self.assessed_on)
            .bind(&self.overall)
            .bind(&self.met)
            .bind(&self.funding)
            .bind(&self.impact)
            .bind(&self.appropriateness)
            .bind(&self.delivery_status)
            .bind(&self.rationale)
            .bind(&self.evidence_ids)
            .bind(&self.evaluation)
            .bind(&self.recorded_at)
            .bind(&self.actor)
            .bind(&self.version)
    }
}

/// A list of ids as a PostgreSQL array literal: `unnest` cannot take an array of arrays of
/// different lengths, so each row's ids travel as text and are cast back.
fn uuid_array_literal(ids: &[Uuid]) -> String {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("{{{}}}", ids.join(","))
}

/// One column of a batch's rows, for binding as an array.
fn column<'a, R, T>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

async fn bump_commitment(conn: &mut PgConnection, stored: &StoredEvent) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query(
        "update commitments set version = $2, updated_at = $3, last_transaction_id = $4,
                last_position = $5
         where id = $1",
    )
    .bind(stored.stream_id)
    .bind(stored.version)
    .bind(stored.recorded_at)
    .bind(stored.transaction_id)
    .bind(stored.position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
