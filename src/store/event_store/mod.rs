//! Appending events: the single place that writes the events table.
//!
//! An append locks the stream's row in `streams` (so appends to one stream are serial and the
//! chain has one head), checks the expected version, chains each event's hash from the
//! previous one and inserts it. The caller applies projections in the same transaction.
//!
//! The shape of an event as stored, and its decoding, are in `stored`.

mod stored;

pub use stored::*;

use super::chain::{ChainInput, canonical_bytes, link_leaf};
use super::personal::{self, Personal, PersonalRow};
use super::position::{self, LogPosition};
use super::{StoreError, StoreResult, unique_violation};
use crate::domain::{DomainError, DomainEvent, EvidenceStatus, References, StreamType};
use crate::tlog::tiles::MAX_LEAF_BYTES;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Who asked for a change and how: stored as each event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The actor (a token's name).
    pub actor: String,
    /// The actor's role when the event was written.
    pub role: String,
    /// The request that carried the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's idempotency key, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// A stream, locked for appending.
#[derive(Debug, Clone)]
pub struct StreamHead {
    /// The stream.
    pub stream_id: Uuid,
    /// Its type.
    pub stream_type: StreamType,
    /// The version of its last event (0 for a stream that does not exist yet).
    pub version: i32,
    /// The hash of its last event.
    pub last_hash: Option<Vec<u8>>,
    /// The database clock when the lock was taken: the events' `recorded_at`.
    pub now: DateTime<Utc>,
}

/// The advisory lock every append holds shared and a projection rebuild takes exclusively to
/// swap its tables in: appends pause for the swap, before they take any other lock, so the two
/// can never wait for each other.
///
/// It also marks who may append: an appending transaction enters it (`enter_append_gate`,
/// migration 0008) before it writes anything, and the horizon readers read below passes over
/// every running transaction that does not hold it (ADR 0013).
pub const APPEND_GATE: i64 = 0x0C0A_11FE_5EED_0001;

/// The advisory-lock key of a stream: its UUID folded to 64 bits. A collision only makes two
/// streams' appends wait for each other.
fn lock_key(stream_id: Uuid) -> i64 {
    let v = stream_id.as_u128();
    ((v >> 64) as u64 ^ v as u64) as i64
}

/// Locks an existing stream for appending. `None` if there is no such stream of that type.
///
/// The lock is a transaction-scoped advisory lock, taken before the transaction writes
/// anything. Postgres assigns a transaction id at the first write, so a writer that waited
/// for the lock gets a higher id than the one it waited for: within a stream, committed
/// order (transaction id, position) is always version order.
pub async fn lock_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: StreamType,
) -> StoreResult<Option<StreamHead>> {
    // language=PostgreSQL
    sqlx::query("select enter_append_gate($1), pg_advisory_xact_lock($2)")
        .bind(APPEND_GATE)
        .bind(lock_key(stream_id))
        .execute(&mut *conn)
        .await?;
    // A statement of its own: in READ COMMITTED each statement takes a new snapshot, so this
    // one sees what the writer we waited for committed (a snapshot taken before the wait
    // would not).
    // language=PostgreSQL
    let row = sqlx::query(
        "select s.version, s.last_hash, clock_timestamp() as now
         from (select 1) one left join streams s on s.stream_id = $1 and s.stream_type = $2",
    )
    .bind(stream_id)
    .bind(stream_type.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let version: Option<i32> = row.try_get("version")?;
    let Some(version) = version else {
        return Ok(None);
    };
    Ok(Some(StreamHead {
        stream_id,
        stream_type,
        version,
        last_hash: row.try_get("last_hash")?,
        now: row.try_get("now")?,
    }))
}

/// What a batch of commands decides against, read in the round trip that takes its locks.
#[derive(Debug, Default)]
pub struct Opened {
    /// The heads of the streams asked for that exist with the type asked (the others are
    /// missing).
    pub heads: HashMap<Uuid, StreamHead>,
    /// The database clock after the locks were taken: the events' `recorded_at`.
    pub now: DateTime<Utc>,
    /// Which of the tokens asked for are valid now, as this transaction sees them: no event
    /// is written under a token revoked or expired before the commit, whatever a cache said.
    pub valid_tokens: HashSet<Uuid>,
    /// Which of the referenced commitments and evidence exist.
    pub references: References,
}

/// Begins a transaction on `conn` and opens an append in it, in one round trip (migration
/// 0011): enters the append gate, locks the existing `streams`, and reads their heads, the
/// clock, which of `tokens` are valid and which referenced streams exist, in a snapshot taken
/// after the locks (see `lock_stream`).
///
/// `BEGIN` travels in the same message as the call, so the transaction is sqlx's to know
/// nothing of: the caller ends it with [`commit_append`], or rolls it back, on this
/// connection. Every value in the message is a number or a UUID, written by this function.
///
/// Every batch takes its stream locks in one order (ascending key, after the append gate), so
/// two batches can wait for each other's commit but never for each other in a cycle.
pub async fn begin_append(
    conn: &mut PgConnection,
    streams: &[(Uuid, StreamType)],
    tokens: &[Uuid],
    commitments: &[Uuid],
    evidence: &[Uuid],
) -> StoreResult<Opened> {
    let mut keys: Vec<i64> = streams.iter().map(|(id, _)| lock_key(*id)).collect();
    keys.sort_unstable();
    keys.dedup();
    fn array<T: std::fmt::Display>(values: impl Iterator<Item = T>, of: &str) -> String {
        let values: Vec<String> = values.map(|v| v.to_string()).collect();
        format!("'{{{}}}'::{of}[]", values.join(","))
    }
    // language=PostgreSQL
    let sql = format!(
        "begin; select * from open_append({APPEND_GATE}, {}, {}, {}, {}, {})",
        array(keys.iter(), "int8"),
        array(streams.iter().map(|(id, _)| id), "uuid"),
        array(tokens.iter(), "uuid"),
        array(commitments.iter(), "uuid"),
        array(evidence.iter(), "uuid"),
    );
    let rows = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    let mut now = None;
    let mut found: HashMap<Uuid, (String, i32, Option<Vec<u8>>)> = HashMap::new();
    let mut opened = Opened::default();
    for row in &rows {
        let kind: &str = row.try_get("kind")?;
        let id: Option<Uuid> = row.try_get("id")?;
        match (kind, id) {
            ("clock", _) => now = Some(row.try_get::<DateTime<Utc>, _>("at")?),
            ("head", Some(id)) => {
                found.insert(
                    id,
                    (
                        row.try_get("stream_type")?,
                        row.try_get("version")?,
                        row.try_get("last_hash")?,
                    ),
                );
            }
            ("token", Some(id)) => {
                opened.valid_tokens.insert(id);
            }
            ("commitment", Some(id)) => {
                opened.references.commitments.insert(id);
            }
            ("evidence", Some(id)) => {
                let status = if row.try_get::<Option<bool>, _>("retracted")? == Some(true) {
                    EvidenceStatus::Retracted
                } else {
                    EvidenceStatus::Current
                };
                opened.references.evidence.insert(id, status);
            }
            _ => {
                return Err(StoreError::Corrupt {
                    position: 0,
                    reason: format!("open_append returned an unknown row: {kind}"),
                });
            }
        }
    }
    opened.now = now.ok_or(StoreError::Corrupt {
        position: 0,
        reason: "open_append returned no clock".into(),
    })?;
    for (id, stream_type) in streams {
        if let Some((stored_type, version, last_hash)) = found.get(id)
            && stored_type == stream_type.as_str()
        {
            opened.heads.insert(
                *id,
                StreamHead {
                    stream_id: *id,
                    stream_type: *stream_type,
                    version: *version,
                    last_hash: last_hash.clone(),
                    now: opened.now,
                },
            );
        }
    }
    Ok(opened)
}

/// Commits the transaction [`begin_append`] began and reads the log position after its commit
/// record, in one round trip.
///
/// `Err` means the commit failed (or its fate is unknown: the connection was lost);
/// `Ok(None)` means it committed and only the position could not be read.
pub async fn commit_append(conn: &mut PgConnection) -> Result<Option<LogPosition>, sqlx::Error> {
    use futures_util::TryStreamExt;
    // language=PostgreSQL
    let mut results = sqlx::raw_sql(AssertSqlSafe(format!("commit; {}", position::CURRENT)))
        .fetch_many(&mut *conn);
    // The first result is the commit's: once it is in, whatever follows cannot undo it.
    match results.try_next().await? {
        Some(sqlx::Either::Left(_)) => {}
        _ => {
            return Err(sqlx::Error::Protocol(
                "the commit returned no result".into(),
            ));
        }
    }
    let position = match results.try_next().await {
        Ok(Some(sqlx::Either::Right(row))) => row
            .try_get::<String, _>(0)
            .ok()
            .and_then(|text| LogPosition::parse(&text)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "no log position after a commit");
            None
        }
    };
    // Drain the rest, so the connection is ready for its next statement.
    while let Ok(Some(_)) = results.try_next().await {}
    Ok(position)
}

/// A head for a stream that does not exist yet.
pub async fn new_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: StreamType,
) -> StoreResult<StreamHead> {
    // language=PostgreSQL
    let (_, now): ((), DateTime<Utc>) =
        sqlx::query_as("select enter_append_gate($1), clock_timestamp()")
            .bind(APPEND_GATE)
            .fetch_one(&mut *conn)
            .await?;
    Ok(StreamHead {
        stream_id,
        stream_type,
        version: 0,
        last_hash: None,
        now,
    })
}

/// Reads a whole stream in version order.
pub async fn load_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
) -> StoreResult<Vec<StoredEvent>> {
    load_stream_after(conn, stream_id, 0).await
}

/// The events of a stream after `version`, in version order.
pub async fn load_stream_after(
    conn: &mut PgConnection,
    stream_id: Uuid,
    version: i32,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events where stream_id = $1 and version > $2 order by version"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(stream_id)
        .bind(version)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The business time of a business date: midnight UTC at its start.
pub fn business_time(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// Appends `events` to the locked stream `head`, chaining their hashes.
///
/// `head.version` is the version the caller decided against (it holds the lock, so it is
/// current). A unique violation on `(stream_id, version)` can only come from a writer that
/// skipped the lock; it is reported as a conflict rather than trusted.
pub async fn append(
    conn: &mut PgConnection,
    head: &StreamHead,
    events: &[(DomainEvent, NaiveDate)],
    metadata: &Metadata,
) -> StoreResult<Vec<StoredEvent>> {
    let mut appended = append_many(
        conn,
        &[Append {
            head,
            events,
            metadata,
        }],
    )
    .await?;
    Ok(appended.pop().unwrap_or_default())
}

/// What one command appends to one locked stream.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// The locked stream, at the version the command decided against.
    pub head: &'a StreamHead,
    /// The events, each with its business date.
    pub events: &'a [(DomainEvent, NaiveDate)],
    /// Who asked.
    pub metadata: &'a Metadata,
}

/// Appends several commands' events in one statement: each to its own locked stream (no
/// stream twice), in the order given, so positions follow that order and, within a stream,
/// versions. Returns each command's stored events.
pub async fn append_many(
    conn: &mut PgConnection,
    appends: &[Append<'_>],
) -> StoreResult<Vec<Vec<StoredEvent>>> {
    let mut sealed = seal_many(appends)?;
    write_sealed(conn, &mut sealed, None).await?;
    Ok(sealed.events)
}

/// Events chained, hashed and ready to write: everything but their positions and
/// transaction id, which the database assigns.
#[derive(Debug, Default)]
pub struct Sealed {
    /// Each command's events, in the order given.
    pub events: Vec<Vec<StoredEvent>>,
    personal: Vec<(Uuid, PersonalRow)>,
    /// The first command's head, for the conflict a writer that skipped the lock causes.
    first: Option<(i32, i32)>,
}

/// Projection writes made by the append's own statement, after its rows are placed: common
/// table expressions over `appended(event_id, position, transaction_id)`.
pub trait Fused: Sync {
    /// The expressions, each `name as (...)`, separated by commas, numbering their
    /// parameters from `$first`.
    fn ctes(&self, first: usize) -> String;
    /// Binds their parameters, in order.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
}

/// Chains and hashes several commands' events, each on its own locked stream, as
/// [`append_many`] writes them.
pub fn seal_many(appends: &[Append<'_>]) -> StoreResult<Sealed> {
    let mut stored: Vec<Vec<StoredEvent>> = Vec::with_capacity(appends.len());
    let mut personal_rows: Vec<(Uuid, PersonalRow)> = Vec::new();
    for append in appends {
        let head = append.head;
        let clear_metadata = serde_json::to_value(append.metadata).expect("metadata serialises");
        let mut previous = head.last_hash.clone();
        let mut events = Vec::with_capacity(append.events.len());
        for (offset, (event, occurred_on)) in append.events.iter().enumerate() {
            let mut payload = event.payload();
            let mut metadata = clear_metadata.clone();
            let rows = personal::seal(event.event_type(), &mut payload, &mut metadata);
            let version = head.version + 1 + offset as i32;
            let event_id = Uuid::now_v7();
            let opened = Personal::from_rows(&rows);
            personal_rows.extend(rows.into_iter().map(|r| (event_id, r)));
            let input = ChainInput {
                event_id,
                stream_id: head.stream_id,
                stream_type: head.stream_type.as_str(),
                version,
                event_type: event.event_type(),
                schema_version: event.schema_version(),
                occurred_at: business_time(*occurred_on),
                recorded_at: head.now,
                payload: &payload,
                metadata: &metadata,
            };
            let leaf = canonical_bytes(&input);
            if leaf.len() > MAX_LEAF_BYTES {
                return Err(DomainError::invalid(
                    "input",
                    format!(
                        "the event would take {} bytes in the transparency log, more than the \
                         {MAX_LEAF_BYTES} one entry can hold: shorten its text",
                        leaf.len()
                    ),
                )
                .into());
            }
            let hash = link_leaf(previous.as_deref(), &leaf).to_vec();
            events.push(StoredEvent {
                position: 0,
                transaction_id: 0,
                event_id,
                stream_id: head.stream_id,
                stream_type: head.stream_type.as_str().to_owned(),
                version,
                event_type: event.event_type().to_owned(),
                schema_version: input.schema_version,
                occurred_at: input.occurred_at,
                recorded_at: input.recorded_at,
                previous_hash: previous.replace(hash.clone()),
                hash,
                payload,
                metadata,
                personal: opened,
            });
        }
        stored.push(events);
    }
    Ok(Sealed {
        events: stored,
        personal: personal_rows,
        first: appends
            .first()
            .map(|a| (a.head.version, a.head.version + 1)),
    })
}

/// The statement [`write_sealed`] sends: the events (parameters `$1`–`$12`, one array each,
/// in order), the personal fields (`$17`–`$20`) and the streams' new heads (`$13`–`$16`),
/// and, after them, the expressions `fused` names, numbered from `$21` (see [`Fused`]).
pub fn append_statement(fused: Option<&str>) -> String {
    // language=PostgreSQL
    format!(
        "with appended as (
             insert into events (event_id, stream_id, stream_type, version, event_type,
                                 schema_version, payload, metadata, occurred_at, recorded_at,
                                 previous_hash, hash)
             select e.event_id, e.stream_id, e.stream_type, e.version, e.event_type,
                    e.schema_version, e.payload, e.metadata, e.occurred_at, e.recorded_at,
                    e.previous_hash, e.hash
             from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::text[],
                         $6::int4[], $7::jsonb[], $8::jsonb[], $9::timestamptz[],
                         $10::timestamptz[], $11::bytea[], $12::bytea[])
                  with ordinality
                  as e(event_id, stream_id, stream_type, version, event_type, schema_version,
                       payload, metadata, occurred_at, recorded_at, previous_hash, hash, ord)
             order by e.ord
             returning event_id, position, transaction_id
         ), personal as (
             insert into personal_data (event_id, field, opening, value)
             select * from unnest($17::uuid[], $18::text[], $19::bytea[], $20::text[])
         ), head as (
             insert into streams (stream_id, stream_type, version, last_hash)
             select * from unnest($13::uuid[], $14::text[], $15::int4[], $16::bytea[])
             on conflict (stream_id) do update
                set version = excluded.version, last_hash = excluded.last_hash
         ){}
         select event_id, position, transaction_id from appended",
        fused.map(|f| format!(", {f}")).unwrap_or_default()
    )
}

/// Writes sealed events in one statement (in the order given, so positions follow it), the
/// streams' new heads, their personal data and `fused`'s projection writes, and fills in
/// each event's position and transaction id.
pub async fn write_sealed(
    conn: &mut PgConnection,
    sealed: &mut Sealed,
    fused: Option<&dyn Fused>,
) -> StoreResult<()> {
    let stored = &mut sealed.events;
    let personal_rows = &sealed.personal;
    let all: Vec<&StoredEvent> = stored.iter().flatten().collect();
    if all.is_empty() {
        return Ok(());
    }
    let heads: Vec<&StoredEvent> = stored.iter().filter_map(|events| events.last()).collect();
    // One round trip for the whole batch: the rows (in the order given, so positions follow
    // it) and each stream's new head.
    let sql = append_statement(fused.map(|f| f.ctes(21)).as_deref());
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(all.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(all.iter().map(|e| e.stream_id).collect::<Vec<_>>())
        .bind(
            all.iter()
                .map(|e| e.stream_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(all.iter().map(|e| e.version).collect::<Vec<_>>())
        .bind(
            all.iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(all.iter().map(|e| e.schema_version).collect::<Vec<_>>())
        .bind(all.iter().map(|e| &e.payload).collect::<Vec<_>>())
        .bind(all.iter().map(|e| &e.metadata).collect::<Vec<_>>())
        .bind(all.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(all.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
        .bind(
            all.iter()
                .map(|e| e.previous_hash.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(all.iter().map(|e| e.hash.as_slice()).collect::<Vec<_>>())
        .bind(heads.iter().map(|e| e.stream_id).collect::<Vec<_>>())
        .bind(
            heads
                .iter()
                .map(|e| e.stream_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(heads.iter().map(|e| e.version).collect::<Vec<_>>())
        .bind(heads.iter().map(|e| e.hash.as_slice()).collect::<Vec<_>>())
        .bind(personal_rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(
            personal_rows
                .iter()
                .map(|(_, r)| r.field)
                .collect::<Vec<_>>(),
        )
        .bind(
            personal_rows
                .iter()
                .map(|(_, r)| r.opening.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(
            personal_rows
                .iter()
                .map(|(_, r)| r.value.as_str())
                .collect::<Vec<_>>(),
        );
    let query = match fused {
        Some(f) => f.bind(query),
        None => query,
    };
    let first = sealed.first;
    let rows = query.fetch_all(&mut *conn).await.map_err(|e| {
        match (unique_violation(&e).as_deref(), first) {
            (Some("events_stream_version_key"), Some((expected, actual))) => {
                StoreError::Domain(DomainError::Conflict { expected, actual })
            }
            _ => StoreError::Database(e),
        }
    })?;
    let stored = &mut sealed.events;
    let mut placed: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(rows.len());
    for row in &rows {
        placed.insert(
            row.try_get("event_id")?,
            (row.try_get("position")?, row.try_get("transaction_id")?),
        );
    }
    for e in stored.iter_mut().flatten() {
        let (position, transaction_id) =
            placed
                .get(&e.event_id)
                .copied()
                .ok_or_else(|| StoreError::Corrupt {
                    position: 0,
                    reason: format!("event {} was not stored", e.event_id),
                })?;
        e.position = position;
        e.transaction_id = transaction_id;
    }
    Ok(())
}
