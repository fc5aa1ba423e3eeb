//! Queries over the event log: which streams exist, the visibility horizon, events in
//! committed order, histories and stream heads at an instant.

use super::*;

/// Which of `ids` are streams of `stream_type`, with the evidence retraction flag.
pub async fn existing_streams(
    conn: &mut sqlx::PgConnection,
    commitment_ids: &[Uuid],
    evidence_ids: &[Uuid],
) -> StoreResult<crate::domain::References> {
    use crate::domain::{EvidenceStatus, References};
    let mut refs = References::default();
    if commitment_ids.is_empty() && evidence_ids.is_empty() {
        return Ok(refs);
    }
    // language=PostgreSQL
    let rows: Vec<(Uuid, String, Option<bool>)> = sqlx::query_as(
        "select c.id, 'commitment', null::boolean from commitments c where c.id = any($1)
         union all
         select e.id, 'evidence', e.retracted from evidence e where e.id = any($2)",
    )
    .bind(commitment_ids)
    .bind(evidence_ids)
    .fetch_all(&mut *conn)
    .await?;
    for (id, kind, retracted) in rows {
        if kind == "commitment" {
            refs.commitments.insert(id);
        } else {
            let status = if retracted.unwrap_or(false) {
                EvidenceStatus::Retracted
            } else {
                EvidenceStatus::Current
            };
            refs.evidence.insert(id, status);
        }
    }
    Ok(refs)
}

/// Which transactions may hold readers of committed order back: reading below a horizon in
/// (transaction id, position) order never skips an event whose transaction commits late,
/// because no transaction below it can still append one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Horizon {
    /// Only transactions that append events (ADR 0013): a transaction that has not taken the
    /// append gate before writing never appends, whichever database or table it writes. The
    /// server's horizon.
    #[default]
    Appends,
    /// Every running transaction of the cluster (`pg_snapshot_xmin`): ADR 0002's horizon,
    /// which any long writer anywhere holds back. Kept so that `bench -- ordering` measures
    /// the two in one run.
    Cluster,
}

impl Horizon {
    /// The condition on `events` rows that keeps those below the horizon.
    pub fn below(self) -> &'static str {
        match self {
            Horizon::Appends => BELOW_HORIZON,
            Horizon::Cluster => {
                "transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            }
        }
    }
}

/// Below the append horizon (migration 0008): every transaction with a lower id has
/// committed, aborted, or never appends. The key is [`crate::store::event_store::APPEND_GATE`]
/// (a test checks they agree); the subquery makes it run once per statement.
pub(crate) const BELOW_HORIZON: &str =
    "transaction_id < (select append_horizon(867525662434197505))";

/// What a reader nobody listens to may skip, as one snapshot sees the log: see
/// [`skippable`].
#[derive(Debug, Clone, PartialEq)]
pub struct Skippable {
    /// The last event after the cursor asked about that is below the horizon, if any.
    pub last: Option<EventCursor>,
    /// The payloads of the `PersonalDataErased` events up to `last`, which every process must
    /// learn of, listened to or not.
    pub erasures: Vec<serde_json::Value>,
    /// Whether committed events lie beyond `last` (or beyond the cursor asked about, if there
    /// is no `last`): events behind the horizon, waiting for an older transaction.
    pub waiting: bool,
}

/// What a reader nobody listens to skips after `after`, and whether more waits behind the
/// horizon. One statement, so one snapshot: an event is either below the horizon, and
/// skipped, or beyond it, and waited for; index steps only.
pub async fn skippable(
    pool: &PgPool,
    after: EventCursor,
    horizon: Horizon,
) -> StoreResult<Skippable> {
    // language=PostgreSQL
    let sql = format!(
        "with last as (
             select transaction_id, position from events
             where (transaction_id, position) > ($1, $2) and {}
             order by transaction_id desc, position desc limit 1
         ),
         newest as (
             select transaction_id, position from events
             order by transaction_id desc, position desc limit 1
         )
         select l.transaction_id, l.position,
                array(select e.payload from events e
                      where e.event_type = 'PersonalDataErased'
                        and (e.transaction_id, e.position) > ($1, $2)
                        and (e.transaction_id, e.position) <= (l.transaction_id, l.position)
                      order by e.transaction_id, e.position),
                coalesce((select (n.transaction_id, n.position)
                                 > (coalesce(l.transaction_id, $1), coalesce(l.position, $2))
                          from newest n), false)
         from (select) one left join last l on true",
        horizon.below()
    );
    let (transaction_id, position, erasures, waiting): (
        Option<i64>,
        Option<i64>,
        Vec<serde_json::Value>,
        bool,
    ) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .fetch_one(pool)
        .await?;
    let last = transaction_id
        .zip(position)
        .map(|(transaction_id, position)| EventCursor {
            transaction_id,
            position,
        });
    Ok(Skippable {
        last,
        erasures,
        waiting,
    })
}

/// Whether any committed event lies after `after`, below the horizon or not: one backward step
/// of the committed-order index.
///
/// A reader that has read everything below the horizon asks this, not
/// [`events_beyond_horizon`]: its read and this question see different snapshots, and an
/// event that was beyond the horizon for the read may be below it for the question. Asked
/// with the horizon, that event would count as read.
pub async fn events_after_exist(pool: &PgPool, after: EventCursor) -> StoreResult<bool> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar(
        "select coalesce((select (transaction_id, position) > ($1, $2)
                          from events order by transaction_id desc, position desc limit 1),
                         false)",
    )
    .bind(after.transaction_id)
    .bind(after.position)
    .fetch_one(pool)
    .await?)
}

/// Whether committed events after `after` exist that are not yet below the horizon.
///
/// Such an event exists exactly when the last event in committed order is one (its
/// transaction id is the highest), so the answer is one backward step of the committed-order
/// index, whatever the table's size or statistics. (An `exists` over the range was planned as
/// a scan of the whole log while the table had no statistics yet, on every wake-up.)
pub async fn events_beyond_horizon(
    pool: &PgPool,
    after: EventCursor,
    horizon: Horizon,
) -> StoreResult<bool> {
    // language=PostgreSQL
    let sql = format!(
        "select coalesce((select (transaction_id, position) > ($1, $2) and not ({})
                          from events order by transaction_id desc, position desc limit 1),
                         false)",
        horizon.below()
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .fetch_one(pool)
        .await?)
}

/// Events after `after` in committed order below `horizon`, optionally of one stream and of
/// some types.
pub async fn events_after(
    pool: &PgPool,
    after: EventCursor,
    horizon: Horizon,
    limit: i64,
    stream_id: Option<Uuid>,
    types: Option<&[String]>,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events
         where (transaction_id, position) > ($1, $2) and {}
           and ($3::uuid is null or stream_id = $3)
           and ($4::text[] is null or event_type = any($4))
         order by transaction_id, position limit $5",
        horizon.below()
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(stream_id)
        .bind(types)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    all(rows, StoredEvent::from_row)
}

/// A commitment's history: its own events and those of evidence that concerns it, in
/// committed order, after `after`.
///
/// Unlike the log-wide [`events_after`], this reads every committed event, not only those
/// below the horizon, so a client sees its own write at once. Within the commitment's own
/// stream the order is version order (see `event_store::lock_stream`).
pub async fn history_after(
    pool: &PgPool,
    commitment_id: Uuid,
    after: EventCursor,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events
         where (stream_id = $1 or stream_id in (
                    select evidence_id from evidence_commitments where commitment_id = $1))
           and (transaction_id, position) > ($2, $3)
         order by transaction_id, position limit $4"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(commitment_id)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    all(rows, StoredEvent::from_row)
}

/// A commitment's history as a time-travel view holds it: the commitment's events and those
/// of the evidence the view links to it, inside the view's time filter.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryAt {
    /// The commitment.
    pub commitment: Uuid,
    /// The evidence linked to it in the view.
    pub evidence: Vec<Uuid>,
    /// The view's bounds.
    pub filter: TimeFilter,
}

/// A time-travel view's history: [`EVENTS_ADMITTED`] of the commitment (`$3`) and its
/// evidence (`$4`).
pub(super) fn history_at_sql(select: &str, rest: &str) -> String {
    format!(
        "select {select} from events
         where {EVENTS_ADMITTED} and (stream_id = $3 or stream_id = any($4)) {rest}"
    )
}

/// A page of a time-travel view's history after `after`, in committed order.
pub async fn history_at(
    pool: &PgPool,
    history: &HistoryAt,
    after: EventCursor,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = history_at_sql(
        EVENT_COLUMNS,
        "and (transaction_id, position) > ($5, $6) order by transaction_id, position limit $7",
    );
    let rows = events_in(sql, history.filter)
        .bind(history.commitment)
        .bind(history.evidence.clone())
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    all(rows, StoredEvent::from_row)
}

/// How many events a time-travel view's history holds.
pub async fn history_at_count(pool: &PgPool, history: &HistoryAt) -> StoreResult<i64> {
    let row = events_in(history_at_sql("count(*)", ""), history.filter)
        .bind(history.commitment)
        .bind(history.evidence.clone())
        .fetch_one(pool)
        .await?;
    Ok(row.try_get(0)?)
}

/// Where a stream's last event inside a time filter sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamHeadAt {
    /// The stream.
    pub stream_id: Uuid,
    /// Its last event's version.
    pub version: i32,
    /// Its last event's place in the log.
    pub cursor: EventCursor,
    /// Its last event's transaction time.
    pub recorded_at: DateTime<Utc>,
}

/// Each stream's last event inside a time filter (no payloads read): each stream's versions are
/// walked back from its head, so a filter that admits the head costs one index step.
pub async fn stream_heads_at(pool: &PgPool, filter: TimeFilter) -> StoreResult<Vec<StreamHeadAt>> {
    // language=PostgreSQL
    let sql = format!(
        "select s.stream_id, h.version, h.transaction_id, h.position, h.recorded_at
           from streams s
           cross join lateral (
               select version, transaction_id, position, recorded_at from events
                where stream_id = s.stream_id and {EVENTS_ADMITTED}
                order by version desc limit 1) h"
    );
    let rows = events_in(sql, filter).fetch_all(pool).await?;
    all(rows, |row| {
        Ok(StreamHeadAt {
            stream_id: row.try_get("stream_id")?,
            version: row.try_get("version")?,
            cursor: cursor(row)?,
            recorded_at: row.try_get("recorded_at")?,
        })
    })
}

/// How many events a commitment's history holds.
pub async fn history_count(pool: &PgPool, commitment_id: Uuid) -> StoreResult<i64> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar(
        "select count(*) from events
         where stream_id = $1 or stream_id in (
                    select evidence_id from evidence_commitments where commitment_id = $1)",
    )
    .bind(commitment_id)
    .fetch_one(pool)
    .await?)
}

/// How many events match the `events` query's filters.
pub async fn events_count(
    pool: &PgPool,
    stream_id: Option<Uuid>,
    types: Option<&[String]>,
) -> StoreResult<i64> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar(
        "select count(*) from events
         where ($1::uuid is null or stream_id = $1) and ($2::text[] is null or event_type = any($2))",
    )
    .bind(stream_id)
    .bind(types)
    .fetch_one(pool)
    .await?)
}

/// One event by id.
pub async fn event_by_id(pool: &PgPool, event_id: Uuid) -> StoreResult<Option<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!("select {EVENT_COLUMNS} from events where event_id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(event_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(StoredEvent::from_row).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_reads_the_gate_appends_take() {
        let gate = crate::store::event_store::APPEND_GATE;
        assert!(BELOW_HORIZON.contains(&format!("append_horizon({gate})")));
        assert_eq!(Horizon::default().below(), BELOW_HORIZON);
    }
}
