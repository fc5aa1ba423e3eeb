//! The transparency log's tables (DESIGN §10): leaves, the tree's stored hashes, the
//! sequencer's position and the signed checkpoints.
//!
//! The tree algorithms ([`crate::tlog::tree`]) read hashes through a synchronous
//! [`HashReader`]. Which hashes they read depends only on the sizes and indexes, never on the
//! hashes' values, so [`with_hashes`] runs an algorithm twice: once against a reader that
//! only notes the indexes asked for, then, after one query fetched exactly those, for real.

use super::cursor::EventCursor;
use super::event_store::{EVENT_COLUMNS, StoredEvent};
use super::read::BELOW_HORIZON;
use super::{StoreError, StoreResult};
use crate::tlog::leaf::leaf_bytes;
use crate::tlog::tree::{self, Error as TreeError, Hash, HashReader, stored_hash_index};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use std::cell::RefCell;
use std::collections::HashMap;
use uuid::Uuid;

/// The advisory lock whose holder is the one sequencer (session-scoped: released when its
/// connection ends, however the process ended).
pub const SEQUENCER_LOCK: i64 = 0x0C0A_11FE_5EED_0002;

/// Where the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// Leaves in the tree.
    pub size: u64,
    /// The committed-order cursor of the last event given a leaf.
    pub cursor: EventCursor,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note, with any cosignatures.
    pub note: String,
    /// How many witnesses cosigned it.
    pub cosigned: i32,
}

fn tree_error(e: TreeError) -> StoreError {
    StoreError::Corrupt {
        position: 0,
        reason: format!("the stored tree: {e:?}"),
    }
}

/// A reader that serves the hashes it holds and, for any other, notes the index and answers
/// a placeholder: the dry run of [`with_hashes`].
struct Recording<'a> {
    known: &'a HashMap<u64, Hash>,
    missing: RefCell<Vec<u64>>,
}

impl HashReader for Recording<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        Ok(indexes
            .iter()
            .map(|i| {
                self.known.get(i).copied().unwrap_or_else(|| {
                    self.missing.borrow_mut().push(*i);
                    Hash::default()
                })
            })
            .collect())
    }
}

/// Any reader, as the tree algorithms' generic parameter.
pub struct Reader<'a>(&'a dyn HashReader);

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.0.read_hashes(indexes)
    }
}

/// A reader over fetched hashes.
struct Fetched<'a>(&'a HashMap<u64, Hash>);

impl HashReader for Fetched<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(TreeError::IndexesNotInTree))
            .collect()
    }
}

/// The stored hashes at `indexes`.
pub async fn read_hashes(
    conn: &mut PgConnection,
    indexes: &[u64],
) -> StoreResult<HashMap<u64, Hash>> {
    if indexes.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
    // language=PostgreSQL
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select hash_index, hash from log_hashes where hash_index = any($1)")
            .bind(&wanted)
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|(i, h)| {
            let hash: [u8; 32] = h.try_into().map_err(|_| StoreError::Corrupt {
                position: 0,
                reason: format!("stored hash {i} is not 32 bytes"),
            })?;
            Ok((i as u64, Hash(hash)))
        })
        .collect()
}

/// Runs a tree algorithm over the stored hashes (and `extra`, hashes not stored yet), with
/// one query for the hashes it reads.
pub async fn with_hashes<T>(
    conn: &mut PgConnection,
    extra: &HashMap<u64, Hash>,
    run: impl Fn(&Reader<'_>) -> Result<T, TreeError>,
) -> StoreResult<T> {
    let recording = Recording {
        known: extra,
        missing: RefCell::new(Vec::new()),
    };
    // The dry run may fail on placeholder values only where a real run would not; its result
    // is never used.
    let _ = run(&Reader(&recording));
    let mut missing = recording.missing.into_inner();
    missing.sort_unstable();
    missing.dedup();
    let mut hashes = read_hashes(conn, &missing).await?;
    hashes.extend(extra.iter().map(|(k, v)| (*k, *v)));
    run(&Reader(&Fetched(&hashes))).map_err(tree_error)
}

/// Where the log stands, locking its row for the caller's transaction if `lock`.
pub async fn state(conn: &mut PgConnection, lock: bool) -> StoreResult<LogState> {
    // language=PostgreSQL
    let sql = if lock {
        "select size, transaction_id, position from log_state for update"
    } else {
        "select size, transaction_id, position from log_state"
    };
    let (size, transaction_id, position): (i64, i64, i64) =
        sqlx::query_as(sql).fetch_one(&mut *conn).await?;
    Ok(LogState {
        size: size as u64,
        cursor: EventCursor {
            transaction_id,
            position,
        },
    })
}

/// How far the log is behind the event store: the seconds since the oldest committed event
/// that has no leaf yet was recorded (0 when every committed event has one). Reads one row
/// of the committed-order index after the log's cursor.
pub async fn integration_lag(pool: &PgPool) -> StoreResult<f64> {
    // language=PostgreSQL
    let lag: f64 = sqlx::query_scalar(
        "select coalesce(extract(epoch from clock_timestamp() - e.recorded_at), 0)::float8
         from log_state s
         left join lateral (
             select recorded_at from events
             where (transaction_id, position) > (s.transaction_id, s.position)
             order by transaction_id, position limit 1
         ) e on true",
    )
    .fetch_one(pool)
    .await?;
    Ok(lag.max(0.0))
}

/// Gives leaves to up to `limit` committed events after the log's cursor, in committed order,
/// in one transaction with their hashes and the log's new position. Returns the new size, or
/// `None` when there was nothing to do.
///
/// The log's row is locked for the transaction and its size checked, so even two sequencers
/// (which the advisory lock prevents) could not give one index twice or skip one.
pub async fn sequence(conn: &mut PgConnection, limit: i64) -> StoreResult<Option<u64>> {
    // Nothing to do is the common case at every poll: find that out without locking the
    // log's row, since a row lock is a write (of the row and of the write-ahead log), and an
    // idle server must leave the log position where it is for read tags to stay current.
    let seen = state(&mut *conn, false).await?;
    // language=PostgreSQL
    let probe = format!(
        "select 1 from events
         where (transaction_id, position) > ($1, $2) and {BELOW_HORIZON}
         order by transaction_id, position limit 1"
    );
    let pending: Option<i32> = sqlx::query_scalar(AssertSqlSafe(probe))
        .bind(seen.cursor.transaction_id)
        .bind(seen.cursor.position)
        .fetch_optional(&mut *conn)
        .await?;
    if pending.is_none() {
        return Ok(None);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let state = state(&mut tx, true).await?;
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events
         where (transaction_id, position) > ($1, $2) and {BELOW_HORIZON}
         order by transaction_id, position limit $3"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(state.cursor.transaction_id)
        .bind(state.cursor.position)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let events: Vec<StoredEvent> = rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?;
    let leaves: Vec<Vec<u8>> = events
        .iter()
        .map(|e| leaf_bytes(&e.chain_input()))
        .collect();
    let start = state.size;
    let new_hashes = with_hashes(&mut tx, &HashMap::new(), |reader| {
        let mut batch = Batch {
            stored: reader.0,
            new: HashMap::new(),
        };
        for (offset, leaf) in leaves.iter().enumerate() {
            let n = start + offset as u64;
            let hashes = tree::hashes_to_store(n, leaf, &batch)?;
            let first = stored_hash_index(0, n);
            for (k, h) in hashes.into_iter().enumerate() {
                batch.new.insert(first + k as u64, h);
            }
        }
        Ok(batch.new)
    })
    .await?;
    let size = start + leaves.len() as u64;
    let last = events.last().expect("not empty").cursor();
    let mut hash_rows: Vec<(i64, &Hash)> = new_hashes.iter().map(|(i, h)| (*i as i64, h)).collect();
    hash_rows.sort_unstable_by_key(|(i, _)| *i);
    // language=PostgreSQL
    sqlx::query(
        "with leaves as (
             insert into log_leaves (leaf_index, event_id, leaf)
             select * from unnest($1::int8[], $2::uuid[], $3::bytea[])
         ), hashes as (
             insert into log_hashes (hash_index, hash)
             select * from unnest($4::int8[], $5::bytea[])
         )
         update log_state set size = $6, transaction_id = $7, position = $8 where size = $9",
    )
    .bind(
        (0..leaves.len())
            .map(|k| (start + k as u64) as i64)
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<Uuid>>())
    .bind(leaves.iter().map(Vec::as_slice).collect::<Vec<_>>())
    .bind(hash_rows.iter().map(|(i, _)| *i).collect::<Vec<_>>())
    .bind(
        hash_rows
            .iter()
            .map(|(_, h)| h.0.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(size as i64)
    .bind(last.transaction_id)
    .bind(last.position)
    .bind(start as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(size))
}

/// Hashes already stored plus those of the batch being sequenced.
struct Batch<'a> {
    stored: &'a dyn HashReader,
    new: HashMap<u64, Hash>,
}

impl HashReader for Batch<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|i| match self.new.get(i) {
                Some(h) => Ok(*h),
                None => self.stored.read_hashes(&[*i]).map(|v| v[0]),
            })
            .collect()
    }
}

/// The root of the stored tree of `size` leaves.
pub async fn root(conn: &mut PgConnection, size: u64) -> StoreResult<Hash> {
    with_hashes(conn, &HashMap::new(), |r| tree::root(size, r)).await
}

/// The inclusion proof of leaf `index` in the stored tree of `size` leaves.
pub async fn inclusion_proof(
    conn: &mut PgConnection,
    index: u64,
    size: u64,
) -> StoreResult<Vec<Hash>> {
    with_hashes(conn, &HashMap::new(), |r| {
        tree::inclusion_proof(index, size, r)
    })
    .await
}

/// The consistency proof between the stored trees of `old` and `new` leaves.
pub async fn consistency_proof(
    conn: &mut PgConnection,
    old: u64,
    new: u64,
) -> StoreResult<Vec<Hash>> {
    with_hashes(conn, &HashMap::new(), |r| {
        tree::consistency_proof(old, new, r)
    })
    .await
}

/// The leaf index of each event that has one.
pub async fn leaf_indexes(pool: &PgPool, events: &[Uuid]) -> StoreResult<HashMap<Uuid, u64>> {
    // language=PostgreSQL
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select event_id, leaf_index from log_leaves where event_id = any($1)")
            .bind(events)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(e, i)| (e, i as u64)).collect())
}

/// The events at these global positions.
pub async fn events_at(pool: &PgPool, positions: &[i64]) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!("select {EVENT_COLUMNS} from events where position = any($1)");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(positions)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?)
}

/// The leaves from `start`, at most `count`, in index order: each recomputed from its event
/// as stored now, so that an event changed after it was sequenced changes what outsiders
/// fetch, and their audit against the signed root fails.
pub async fn leaves(pool: &PgPool, start: u64, count: u64) -> StoreResult<Vec<Vec<u8>>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from log_leaves l join events using (event_id)
         where l.leaf_index >= $1 and l.leaf_index < $2 order by l.leaf_index"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(start as i64)
        .bind((start + count) as i64)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok(leaf_bytes(&StoredEvent::from_row(row)?.chain_input())))
        .collect()
}

/// The latest checkpoint cosigned by `quorum` or more of `witnesses` (verifier keys): the
/// one served.
pub async fn latest_checkpoint(
    pool: &PgPool,
    quorum: usize,
    witnesses: &[String],
) -> StoreResult<Option<StoredCheckpoint>> {
    // language=PostgreSQL
    let row = sqlx::query(
        "select c.size, c.root_hash, c.note, c.cosigned from log_checkpoints c
          where $1 = 0
             or (select count(*) from log_cosignatures s
                  where s.size = c.size and s.witness = any($2)) >= $1
          order by c.size desc limit 1",
    )
    .bind(quorum as i64)
    .bind(witnesses)
    .fetch_optional(pool)
    .await?;
    row.map(|row| checkpoint_from_row(&row)).transpose()
}

/// The checkpoint of the largest size the log signed, whatever its cosignatures.
pub async fn last_signed(conn: &mut PgConnection) -> StoreResult<Option<StoredCheckpoint>> {
    // language=PostgreSQL
    let row = sqlx::query(
        "select size, root_hash, note, cosigned from log_checkpoints order by size desc limit 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| checkpoint_from_row(&row)).transpose()
}

fn checkpoint_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<StoredCheckpoint> {
    let size: i64 = row.try_get("size")?;
    let root: Vec<u8> = row.try_get("root_hash")?;
    Ok(StoredCheckpoint {
        size: size as u64,
        root: Hash(root.try_into().map_err(|_| StoreError::Corrupt {
            position: 0,
            reason: format!("checkpoint {size}: root is not 32 bytes"),
        })?),
        note: row.try_get("note")?,
        cosigned: row.try_get("cosigned")?,
    })
}

/// Stores a newly signed checkpoint.
pub async fn insert_checkpoint(
    conn: &mut PgConnection,
    checkpoint: &StoredCheckpoint,
) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query(
        "insert into log_checkpoints (size, root_hash, note, cosigned) values ($1, $2, $3, $4)",
    )
    .bind(checkpoint.size as i64)
    .bind(checkpoint.root.0.as_slice())
    .bind(&checkpoint.note)
    .bind(checkpoint.cosigned)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records `witness`'s cosignature `line` on the checkpoint of `size` leaves and appends the
/// line to its note, once: a second cosignature by the same witness on it changes nothing.
/// Returns whether it was new.
pub async fn add_cosignature(
    pool: &PgPool,
    size: u64,
    witness: &str,
    line: &str,
) -> StoreResult<bool> {
    // language=PostgreSQL
    let updated = sqlx::query(
        "with added as (
             insert into log_cosignatures (size, witness, line) values ($1, $2, $3)
             on conflict do nothing
             returning size)
         update log_checkpoints c
            set note = c.note || $3 || E'\\n', cosigned = c.cosigned + 1
           from added where c.size = added.size",
    )
    .bind(size as i64)
    .bind(witness)
    .bind(line)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// The largest checkpoint `witness` has cosigned (0 if none).
pub async fn witness_size(pool: &PgPool, witness: &str) -> StoreResult<u64> {
    // language=PostgreSQL
    let size: Option<i64> =
        sqlx::query_scalar("select max(size) from log_cosignatures where witness = $1")
            .bind(witness)
            .fetch_one(pool)
            .await?;
    Ok(size.unwrap_or(0) as u64)
}
