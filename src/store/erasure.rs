//! Erasing every stored occurrence of a person's value (DESIGN §11), inside the caller's
//! transaction: the value and its opening in `personal_data`, the copies the projections
//! keep, and token names. What stays is each value's salted commitment, in the events and the
//! log's leaves, which no longer opens to anything: every hash, chain and proof holds as
//! before.

use super::StoreResult;
use super::personal::ERASED;
use crate::tlog::leaf::commit;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

/// The lock that serialises erasures, so that two of one name never both count its values.
pub const ERASURE_LOCK: i64 = 0x0C0A_11FE_5EED_0003;

/// The projection columns that hold personal values, copied from the events: table, column,
/// and the personal field of the row's event (the event at the row's `position`).
const PROJECTED: &[(&str, &str, &str)] = &[
    ("assessments", "actor", "actor"),
    ("evidence", "actor", "actor"),
    ("evidence", "submitted_by", "submittedBy"),
    ("disputes", "actor", "actor"),
    ("revisions", "actor", "actor"),
];

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Erased {
    /// The commitments of the values erased from events, sorted and without repeats.
    pub commitments: Vec<[u8; 32]>,
    /// How many event values were erased.
    pub event_values: u64,
    /// The tokens whose holder's name was erased (they are revoked too).
    pub tokens: Vec<Uuid>,
}

impl Erased {
    /// Every value erased: the events' and the tokens' names.
    pub fn values(&self) -> u64 {
        self.event_values + self.tokens.len() as u64
    }
}

/// Erases every stored value equal to `name`, with its opening, in the transaction `tx`.
pub async fn erase(tx: &mut PgConnection, name: &str) -> StoreResult<Erased> {
    // language=PostgreSQL
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(ERASURE_LOCK)
        .execute(&mut *tx)
        .await?;
    // language=PostgreSQL
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("select opening, value from personal_data where value = $1 for update")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
    // language=PostgreSQL
    sqlx::query("update personal_data set opening = null, value = null where value = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    for (table, column, _) in PROJECTED {
        // language=PostgreSQL
        sqlx::query(AssertSqlSafe(format!(
            "update {table} set {column} = $2 where {column} = $1"
        )))
        .bind(name)
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
    }
    // A person whose name is erased holds no working token under it.
    // language=PostgreSQL
    let tokens: Vec<Uuid> = sqlx::query_scalar(
        "update api_tokens set name = $2, revoked_at = coalesce(revoked_at, now())
          where name = $1 returning id",
    )
    .bind(name)
    .bind(ERASED)
    .fetch_all(&mut *tx)
    .await?;
    let mut commitments: Vec<[u8; 32]> = rows
        .iter()
        .map(|(opening, value)| commit(opening, value))
        .collect();
    commitments.sort_unstable();
    commitments.dedup();
    Ok(Erased {
        commitments,
        event_values: rows.len() as u64,
        tokens,
    })
}

/// Marks `[erased]`, in the projection tables named `<table><suffix>`, every copy of a value
/// that `personal_data` holds as erased. A rebuild of the projections reads values while
/// appends go on and an erasure may commit meanwhile: it runs this on its new tables once
/// appends (erasures included) are paused, before it swaps them in.
pub async fn scrub_projections(tx: &mut PgConnection, suffix: &str) -> StoreResult<u64> {
    let mut scrubbed = 0;
    for (table, column, field) in PROJECTED {
        // language=PostgreSQL
        scrubbed += sqlx::query(AssertSqlSafe(format!(
            "update {table}{suffix} t set {column} = $1
               from personal_data p join events e on e.event_id = p.event_id
              where p.value is null and p.field = $2 and e.position = t.position
                and t.{column} <> $1"
        )))
        .bind(ERASED)
        .bind(field)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    Ok(scrubbed)
}
