//! Rebuilding the projections while the server serves: replay every event into fresh tables,
//! then swap them in atomically.
//!
//! 1. Fold the log up to a cursor into memory and bulk-insert the rows into `*_rebuild` tables
//!    (reads and writes go on against the live tables meanwhile).
//! 2. In one transaction: `LOCK events IN SHARE MODE` (appends wait; reads go on), replay the
//!    events committed since the cursor into the new tables, rename the live tables away and
//!    the new ones in, drop the old ones. Appends that waited then continue against the new
//!    tables: no write is lost, no read fails (it waits for the rename at most).

use super::event_store::{EVENT_COLUMNS, Envelope, StoredEvent};
use super::personal;
use super::read::{CommitmentRow, DisputeRow, EvidenceRow, RevisionRow};
use super::replay::View;
use super::{StoreError, StoreResult};
use crate::domain::DomainEvent;
use crate::domain::commitment::CommitmentEvent;
use crate::progress::Progress;
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::{PgValueFormat, PgValueRef};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

mod assessments;
mod copy;
mod personal_index;

use personal_index::PersonalIndex;

/// Rows per insert statement (well under Postgres's 65,535 bind parameters).
const BATCH: usize = 1000;

/// The projection tables, in dependency order (referenced before referencing).
const TABLES: [&str; 6] = [
    "commitments",
    "assessments",
    "evidence",
    "evidence_commitments",
    "disputes",
    "revisions",
];

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildReport {
    /// Events replayed.
    pub events: usize,
    /// Of those, committed while the rebuild ran (replayed under the lock).
    pub caught_up: usize,
    /// Time spent folding the log into memory.
    pub fold: std::time::Duration,
    /// Time spent writing the rows into the new tables.
    pub write: std::time::Duration,
    /// Time spent building the new tables' indexes.
    pub index: std::time::Duration,
    /// Time spent catching up and swapping the tables in, appends paused.
    pub swap: std::time::Duration,
}

async fn events_after(
    conn: &mut PgConnection,
    after: Option<(i64, i64)>,
) -> StoreResult<Vec<StoredEvent>> {
    let (t, p) = after.unwrap_or((0, 0));
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events where (transaction_id, position) > ($1, $2)
         order by transaction_id, position"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(t)
        .bind(p)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

/// Folds every committed event into `view`, in committed order, streaming the rows and
/// reading each payload straight into its event (no JSON tree, no hashes or metadata kept).
/// Each assessment row goes to `streamed` as it is folded. Returns how many events it folded
/// and the last one's cursor.
async fn fold_log(
    conn: &mut PgConnection,
    view: &mut View,
    streamed: &mut assessments::Streamed,
    progress: &Progress,
) -> StoreResult<(usize, Option<(i64, i64)>)> {
    // One snapshot for both reads, so that every event read has its values in the index.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // language=PostgreSQL
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let mut values = PersonalIndex::read(&mut tx).await?;
    // language=PostgreSQL
    let mut rows = sqlx::query(
        "select position, transaction_id, stream_id, version, recorded_at, event_id,
                event_type, schema_version, payload
           from events order by transaction_id, position",
    )
    .fetch(&mut *tx);
    let (mut folded, mut last) = (0, None);
    while let Some(row) = rows.try_next().await? {
        let personal = values.of(&row.try_get(5)?);
        let envelope = Envelope {
            position: row.try_get(0)?,
            transaction_id: row.try_get(1)?,
            stream_id: row.try_get(2)?,
            version: row.try_get(3)?,
            recorded_at: row.try_get(4)?,
            actor: personal.get(personal::ACTOR).unwrap_or_default(),
        };
        let event_type: &str = row.try_get(6)?;
        let schema_version: i32 = row.try_get(7)?;
        let payload = jsonb_text(row.try_get_raw(8)?)?;
        let event = personal::decode_stored(event_type, schema_version, payload, personal)
            .map_err(|e| StoreError::Corrupt {
                position: envelope.position,
                reason: e.to_string(),
            })?;
        view.apply(&envelope, &event);
        // An assessment's row is written as it is folded, and not kept: assessment rows are
        // never updated, and they are most of a long log.
        if let DomainEvent::Commitment(CommitmentEvent::Assessed(a)) = &event
            && let Some(timeline) = view.assessments.get_mut(&envelope.stream_id)
            && timeline.last().is_some_and(|row| row.id == a.assessment_id)
            && let Some(row) = timeline.pop()
        {
            streamed.push(&row).await?;
        }
        folded += 1;
        progress.advance(1);
        last = Some((envelope.transaction_id, envelope.position));
    }
    drop(rows);
    tx.commit().await?;
    view.sort();
    Ok((folded, last))
}

/// A `jsonb` value's text as PostgreSQL sends it (a format version, then the JSON), taken
/// as it is: the event decoder parses it once, where decoding it as JSON first parsed it twice.
fn jsonb_text(value: PgValueRef<'_>) -> StoreResult<&str> {
    let bytes = value.as_bytes().map_err(sqlx::Error::Decode)?;
    let text = match (value.format(), bytes) {
        (PgValueFormat::Binary, [1, text @ ..]) => text,
        (PgValueFormat::Text, text) => text,
        _ => return Err(sqlx::Error::Decode("a jsonb value in an unknown format".into()).into()),
    };
    Ok(std::str::from_utf8(text).map_err(|e| sqlx::Error::Decode(e.into()))?)
}

/// Replays the log into fresh tables and swaps them in.
pub async fn rebuild(pool: &PgPool) -> StoreResult<RebuildReport> {
    rebuild_with(pool, &Progress::hidden()).await
}

/// [`rebuild`], reporting each phase to `progress`.
pub async fn rebuild_with(pool: &PgPool, progress: &Progress) -> StoreResult<RebuildReport> {
    let mut conn = pool.acquire().await?;
    // Fresh, empty tables with the same columns, defaults, constraints and indexes.
    for table in TABLES {
        // language=PostgreSQL
        sqlx::query(AssertSqlSafe(format!(
            "drop table if exists {table}_rebuild cascade"
        )))
        .execute(&mut *conn)
        .await?;
        // Without indexes: they are built once the bulk is in (a sort), not row by row.
        sqlx::query(AssertSqlSafe(format!(
            "create table {table}_rebuild (like {table} including all excluding indexes)"
        )))
        .execute(&mut *conn)
        .await?;
    }

    // 1. Everything committed so far, replayed in memory, written in bulk.
    let started = std::time::Instant::now();
    let mut view = View::default();
    progress.phase("replaying events", None);
    let mut streamed = assessments::Streamed::start(pool).await?;
    let (replayed, last) = fold_log(&mut conn, &mut view, &mut streamed, progress).await?;
    let folded = started.elapsed();
    progress.step("writing the projection tables");
    write_view(&mut conn, &view, None, false).await?;
    streamed.finish().await?;
    let written = started.elapsed();
    progress.phase("building indexes", Some(TABLES.len() as u64));
    for table in TABLES {
        add_indexes(&mut conn, table).await?;
        progress.advance(1);
    }
    progress.step("replaying what came in meanwhile, and swapping the tables in");
    tracing::info!(
        events = replayed,
        fold_ms = folded.as_millis() as u64,
        write_ms = (written - folded).as_millis() as u64,
        index_ms = (started.elapsed() - written).as_millis() as u64,
        "projections rebuilt off to the side"
    );

    // 2. With appends paused and the live tables locked: catch up and swap.
    let indexed = started.elapsed();
    let mut tx = pause_and_lock(pool).await?;
    let late = events_after(&mut tx, last).await?;
    if !late.is_empty() {
        for e in &late {
            let decoded = e.decode()?;
            view.apply(&e.envelope(), &decoded);
        }
        view.sort();
        let t = touched(&late, &view);
        clear_touched(&mut tx, &t).await?;
        write_view(&mut tx, &view, Some(&t), true).await?;
    }
    // Values erased while the log was folded: the erasure's own updates went to the tables
    // about to be dropped.
    super::erasure::scrub_projections(&mut tx, "_rebuild").await?;
    for table in TABLES.iter().rev() {
        sqlx::query(AssertSqlSafe(format!(
            "alter table {table} rename to {table}_old"
        )))
        .execute(&mut *tx)
        .await?;
    }
    for table in TABLES {
        sqlx::query(AssertSqlSafe(format!(
            "alter table {table}_rebuild rename to {table}"
        )))
        .execute(&mut *tx)
        .await?;
    }
    for table in TABLES.iter().rev() {
        sqlx::query(AssertSqlSafe(format!("drop table {table}_old cascade")))
            .execute(&mut *tx)
            .await?;
    }
    for table in TABLES {
        rename_indexes(&mut tx, table).await?;
    }
    for sql in FOREIGN_KEYS {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    progress.finish();
    Ok(RebuildReport {
        events: replayed + late.len(),
        caught_up: late.len(),
        fold: folded,
        write: written - folded,
        index: indexed - written,
        swap: started.elapsed() - indexed,
    })
}

/// Opens the swap transaction: takes the append gate exclusively (in-flight appends finish, new
/// ones wait at their start) and locks the live tables. Each wait is bounded by a lock timeout
/// shorter than Postgres's deadlock timeout, so that if a reader holds one table while waiting
/// for another, the rebuild gives way and tries again rather than a reader being cancelled.
async fn pause_and_lock(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
    let mut attempt = 0u32;
    loop {
        let mut tx = pool.begin().await?;
        // language=PostgreSQL
        sqlx::query("set local lock_timeout = '200ms'")
            .execute(&mut *tx)
            .await?;
        let locked = async {
            sqlx::query("select pg_advisory_xact_lock($1)")
                .bind(super::event_store::APPEND_GATE)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "lock table commitments, assessments, evidence, evidence_commitments, disputes,
                 revisions in access exclusive mode",
            )
            .execute(&mut *tx)
            .await
        }
        .await;
        match locked {
            Ok(_) => {
                sqlx::query("set local lock_timeout = 0")
                    .execute(&mut *tx)
                    .await?;
                return Ok(tx);
            }
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("55P03") && attempt < 300 =>
            {
                attempt += 1;
                drop(tx);
                tokio::time::sleep(std::time::Duration::from_millis(
                    10 + u64::from(attempt.min(20)) * 5,
                ))
                .await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The keys whose rows a batch of events touches.
#[derive(Default)]
struct Touched {
    commitments: Vec<Uuid>,
    evidence: Vec<Uuid>,
}

fn touched(events: &[StoredEvent], view: &View) -> Touched {
    let mut t = Touched::default();
    for e in events {
        if e.stream_type == "commitment" {
            t.commitments.push(e.stream_id);
        } else {
            t.evidence.push(e.stream_id);
            if let Some(row) = view.evidence.get(&e.stream_id) {
                t.commitments.extend(row.commitment_ids.iter().copied());
            }
        }
    }
    t.commitments.sort();
    t.commitments.dedup();
    t.evidence.sort();
    t.evidence.dedup();
    t
}

/// Writes the rows of `view` (all of them, or only those of `only`) into the `*_rebuild` tables,
/// the assessments' only `with_assessments` (the fold streams them itself and keeps none; the
/// view holds only those recorded since).
async fn write_view(
    conn: &mut PgConnection,
    view: &View,
    only: Option<&Touched>,
    with_assessments: bool,
) -> StoreResult<()> {
    let keep_c = |id: &Uuid| only.is_none_or(|t| t.commitments.binary_search(id).is_ok());
    let keep_e = |id: &Uuid| only.is_none_or(|t| t.evidence.binary_search(id).is_ok());

    let commitments: Vec<&CommitmentRow> =
        view.commitments.iter().filter(|c| keep_c(&c.id)).collect();
    for chunk in commitments.chunks(BATCH) {
        let mut q = QueryBuilder::<Postgres>::new(
            "insert into commitments_rebuild (id, slug, title, description, area, policy_source, target,
             due_date, owner, announced_on, version, current_assessment_id, registered_position,
             registered_at, updated_at, last_transaction_id, last_position) ",
        );
        q.push_values(chunk, |mut b, c| {
            b.push_bind(c.id)
                .push_bind(&c.slug)
                .push_bind(&c.title)
                .push_bind(&c.description)
                .push_bind(&c.area)
                .push_bind(&c.policy_source)
                .push_bind(&c.target)
                .push_bind(c.due_date)
                .push_bind(&c.owner)
                .push_bind(c.announced_on)
                .push_bind(c.version)
                .push_bind(c.current_assessment_id)
                .push_bind(c.registered_position)
                .push_bind(c.registered_at)
                .push_bind(c.updated_at)
                .push_bind(c.cursor.transaction_id)
                .push_bind(c.cursor.position);
        });
        q.build().execute(&mut *conn).await?;
    }

    if with_assessments {
        let rows = view
            .assessments
            .iter()
            .filter(|(c, _)| keep_c(c))
            .flat_map(|(_, rows)| rows);
        assessments::copy(&mut *conn, rows).await?;
    }

    let evidence: Vec<&EvidenceRow> = view.evidence.values().filter(|e| keep_e(&e.id)).collect();
    for chunk in evidence.chunks(BATCH) {
        let mut q = QueryBuilder::<Postgres>::new(
            "insert into evidence_rebuild (id, commitment_ids, title, summary, source_url, submitted_by,
             organisation, submitted_on, kind, retracted, retraction_reason, retracted_on, version,
             position, transaction_id, recorded_at, actor) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.id)
                .push_bind(&e.commitment_ids)
                .push_bind(&e.title)
                .push_bind(&e.summary)
                .push_bind(&e.source_url)
                .push_bind(&e.submitted_by)
                .push_bind(&e.organisation)
                .push_bind(e.submitted_on)
                .push_bind(e.kind.as_str())
                .push_bind(e.retracted)
                .push_bind(&e.retraction_reason)
                .push_bind(e.retracted_on)
                .push_bind(e.version)
                .push_bind(e.cursor.position)
                .push_bind(e.cursor.transaction_id)
                .push_bind(e.recorded_at)
                .push_bind(&e.actor);
        });
        q.build().execute(&mut *conn).await?;
    }

    let links: Vec<(Uuid, Uuid)> = view
        .evidence_of
        .iter()
        .flat_map(|(c, es)| es.iter().map(move |e| (*c, *e)))
        .filter(|(c, e)| keep_c(c) || keep_e(e))
        .collect();
    for chunk in links.chunks(BATCH) {
        let mut q = QueryBuilder::<Postgres>::new(
            "insert into evidence_commitments_rebuild (commitment_id, evidence_id) ",
        );
        q.push_values(chunk, |mut b, (c, e)| {
            b.push_bind(*c).push_bind(*e);
        });
        q.push(" on conflict do nothing");
        q.build().execute(&mut *conn).await?;
    }

    let disputes: Vec<&DisputeRow> = view
        .disputes
        .values()
        .flatten()
        .filter(|d| keep_c(&d.commitment_id))
        .collect();
    for chunk in disputes.chunks(BATCH) {
        let mut q = QueryBuilder::<Postgres>::new(
            "insert into disputes_rebuild (id, assessment_id, commitment_id, disputed_by, statement,
             disputed_on, evidence_ids, position, transaction_id, recorded_at, actor) ",
        );
        q.push_values(chunk, |mut b, d| {
            b.push_bind(d.id)
                .push_bind(d.assessment_id)
                .push_bind(d.commitment_id)
                .push_bind(&d.disputed_by)
                .push_bind(&d.statement)
                .push_bind(d.disputed_on)
                .push_bind(&d.evidence_ids)
                .push_bind(d.cursor.position)
                .push_bind(d.cursor.transaction_id)
                .push_bind(d.recorded_at)
                .push_bind(&d.actor);
        });
        q.build().execute(&mut *conn).await?;
    }

    let revisions: Vec<&RevisionRow> = view
        .revisions
        .iter()
        .filter(|(c, _)| keep_c(c))
        .flat_map(|(_, r)| r)
        .collect();
    for chunk in revisions.chunks(BATCH) {
        let mut q = QueryBuilder::<Postgres>::new(
            "insert into revisions_rebuild (commitment_id, version, changes, reason, effective_on,
             position, transaction_id, recorded_at, actor) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.commitment_id)
                .push_bind(r.version)
                .push_bind(&r.changes)
                .push_bind(&r.reason)
                .push_bind(r.effective_on)
                .push_bind(r.cursor.position)
                .push_bind(r.cursor.transaction_id)
                .push_bind(r.recorded_at)
                .push_bind(&r.actor);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes the rows of the touched keys from the `*_rebuild` tables, so they can be rewritten.
/// Assessment rows stay: they are never updated, and the view holds only the assessments
/// recorded since the fold (it writes and drops the rest as it goes).
async fn clear_touched(conn: &mut PgConnection, t: &Touched) -> StoreResult<()> {
    // language=PostgreSQL
    for sql in [
        "delete from disputes_rebuild where commitment_id = any($1)",
        "delete from revisions_rebuild where commitment_id = any($1)",
        "delete from evidence_commitments_rebuild where commitment_id = any($1) or evidence_id = any($2)",
        "delete from commitments_rebuild where id = any($1)",
        "delete from evidence_rebuild where id = any($2)",
    ] {
        sqlx::query(sql)
            .bind(&t.commitments)
            .bind(&t.evidence)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Foreign keys between the projection tables (`create table ... like` does not copy them).
const FOREIGN_KEYS: [&str; 6] = [
    "alter table assessments add constraint assessments_commitment_id_fkey foreign key (commitment_id) references commitments (id) not valid",
    "alter table evidence_commitments add constraint evidence_commitments_commitment_id_fkey foreign key (commitment_id) references commitments (id) not valid",
    "alter table evidence_commitments add constraint evidence_commitments_evidence_id_fkey foreign key (evidence_id) references evidence (id) not valid",
    "alter table disputes add constraint disputes_assessment_id_fkey foreign key (assessment_id) references assessments (id) not valid",
    "alter table disputes add constraint disputes_commitment_id_fkey foreign key (commitment_id) references commitments (id) not valid",
    "alter table revisions add constraint revisions_commitment_id_fkey foreign key (commitment_id) references commitments (id) not valid",
];

/// Gives the new tables' indexes (and the constraints they back) the live tables' names, which
/// the store relies on (e.g. `commitments_slug_key` for a taken slug).
/// Gives `{table}_rebuild` the live table's indexes and the primary key and unique
/// constraints they back, named `{table}_rebuild…` (see [`rename_indexes`]).
async fn add_indexes(conn: &mut PgConnection, table: &str) -> StoreResult<()> {
    // language=PostgreSQL
    let indexes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select idx.relname::text, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
         from pg_index i
         join pg_class idx on idx.oid = i.indexrelid
         left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid
         where i.indrelid = to_regclass($1)",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition, constraint) in indexes {
        let Some(rest) = name.strip_prefix(table) else {
            return Err(StoreError::Corrupt {
                position: 0,
                reason: format!("index {name} of {table} is not named after its table"),
            });
        };
        let new_name = format!("{table}_rebuild{rest}");
        let sql = match constraint {
            Some(c) => format!("alter table {table}_rebuild add constraint {new_name} {c}"),
            None => {
                let unique = if definition.starts_with("CREATE UNIQUE") {
                    "unique "
                } else {
                    ""
                };
                let (_, using) =
                    definition
                        .split_once(" USING ")
                        .ok_or_else(|| StoreError::Corrupt {
                            position: 0,
                            reason: format!("unexpected index definition {definition}"),
                        })?;
                format!("create {unique}index {new_name} on {table}_rebuild using {using}")
            }
        };
        sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn rename_indexes(conn: &mut PgConnection, table: &str) -> StoreResult<()> {
    // language=PostgreSQL
    let names: Vec<String> = sqlx::query_scalar(
        "select indexname from pg_indexes where schemaname = current_schema() and tablename = $1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let prefix = format!("{table}_rebuild");
    for name in names {
        if let Some(rest) = name.strip_prefix(&prefix) {
            sqlx::query(AssertSqlSafe(format!(
                "alter index {name} rename to {table}{rest}"
            )))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
