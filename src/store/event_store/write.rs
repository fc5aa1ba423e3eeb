//! Chaining and sealing events on their locked streams, and writing them, their personal
//! fields and their streams' heads in one statement.

use super::*;

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
