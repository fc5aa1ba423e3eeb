//! Queries over the projections: commitments, assessments, evidence, disputes, revisions and
//! the scorecard's rows.

use super::*;

pub(super) const COMMITMENT_COLUMNS: &str = "c.id, c.slug, c.title, c.description, c.area, c.policy_source, \
     c.target, c.due_date, c.owner, c.announced_on, c.version, c.current_assessment_id, \
     c.registered_position, c.registered_at, c.updated_at, c.last_transaction_id, c.last_position";

// The filter shared by the list and its count: $1 area, $2 rating, $3 status.
pub(super) const COMMITMENT_FILTER: &str = "from commitments c
     left join assessments cur on cur.id = c.current_assessment_id
     where ($1::text is null or c.area = $1)
       and ($2::text is null or cur.overall = $2)
       and ($3::text is null or cur.delivery_status = $3)";

/// One page of commitments in registration order, after `after` (a registration position).
pub async fn list_commitments(
    pool: &PgPool,
    filter: &CommitmentFilter,
    after: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<CommitmentRow>> {
    // language=PostgreSQL
    let sql = format!(
        "select {COMMITMENT_COLUMNS} {COMMITMENT_FILTER}
           and c.registered_position > $4
         order by c.registered_position limit $5"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(&filter.area)
        .bind(filter.rating.map(Rating::as_str))
        .bind(filter.delivery_status.map(DeliveryStatus::as_str))
        .bind(after.unwrap_or(0))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    all(rows, commitment)
}

/// How many commitments match `filter`.
pub async fn count_commitments(pool: &PgPool, filter: &CommitmentFilter) -> StoreResult<i64> {
    // language=PostgreSQL
    let sql = format!("select count(*) {COMMITMENT_FILTER}");
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(&filter.area)
        .bind(filter.rating.map(Rating::as_str))
        .bind(filter.delivery_status.map(DeliveryStatus::as_str))
        .fetch_one(pool)
        .await?)
}

/// Commitments by id (any order).
pub async fn commitments_by_ids(pool: &PgPool, ids: &[Uuid]) -> StoreResult<Vec<CommitmentRow>> {
    // language=PostgreSQL
    let sql = format!("select {COMMITMENT_COLUMNS} from commitments c where c.id = any($1)");
    all(
        sqlx::query(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(pool)
            .await?,
        commitment,
    )
}

/// A commitment by slug.
pub async fn commitment_by_slug(pool: &PgPool, slug: &str) -> StoreResult<Option<CommitmentRow>> {
    // language=PostgreSQL
    let sql = format!("select {COMMITMENT_COLUMNS} from commitments c where c.slug = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(slug)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(commitment).transpose()?)
}

pub(super) const ASSESSMENT_COLUMNS: &str = "id, commitment_id, assessor, assessor_kind, assessed_on, overall, \
     met, funding, impact, appropriateness, delivery_status, rationale, evidence_ids, evaluation, \
     position, transaction_id, recorded_at, actor";

// Assessments inside a time filter, always the first two parameters: `$1` recorded by an
// instant, `$2` assessed before a date (see [`TimeFilter::assessed_before`]); both null for
// the live timeline.
// language=PostgreSQL
pub(super) const ASSESSMENTS_ADMITTED: &str = "($1::timestamptz is null or recorded_at <= $1)
     and ($2::date is null or assessed_on < $2)";

/// A statement over assessments whose first two parameters are `filter`'s bounds.
pub(super) fn assessments_in(
    sql: String,
    filter: TimeFilter,
) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(filter.as_of)
        .bind(filter.assessed_before())
}

// Events inside a time filter, always the first two parameters: `$1` recorded by an instant,
// `$2` occurred before an instant (see [`TimeFilter::bounds`]).
// language=PostgreSQL
pub(crate) const EVENTS_ADMITTED: &str = "($1::timestamptz is null or recorded_at <= $1)
     and ($2::timestamptz is null or occurred_at < $2)";

/// A statement over events whose first two parameters are `filter`'s bounds.
pub(crate) fn events_in(sql: String, filter: TimeFilter) -> Query<'static, Postgres, PgArguments> {
    let (recorded_by, occurred_before) = filter.bounds();
    sqlx::query(AssertSqlSafe(sql))
        .bind(recorded_by)
        .bind(occurred_before)
}

/// Every assessment of the given commitments inside `filter`, each commitment's in timeline
/// order (assessed_on, then position).
pub async fn assessments_for(
    pool: &PgPool,
    commitment_ids: &[Uuid],
    filter: TimeFilter,
) -> StoreResult<Vec<AssessmentRow>> {
    // language=PostgreSQL
    let sql = format!(
        "select {ASSESSMENT_COLUMNS} from assessments
         where commitment_id = any($3) and {ASSESSMENTS_ADMITTED}
         order by commitment_id, assessed_on, position"
    );
    all(
        assessments_in(sql, filter)
            .bind(commitment_ids)
            .fetch_all(pool)
            .await?,
        assessment,
    )
}

/// The latest `count` assessments inside `filter` of each of the given commitments, each
/// commitment's newest first: one index walk per commitment, however long its timeline.
pub async fn latest_assessments_for(
    pool: &PgPool,
    commitment_ids: &[Uuid],
    count: i64,
    filter: TimeFilter,
) -> StoreResult<Vec<AssessmentRow>> {
    // language=PostgreSQL
    let sql = format!(
        "select a.* from unnest($3::uuid[]) as c(id)
         cross join lateral (
             select {ASSESSMENT_COLUMNS} from assessments
             where commitment_id = c.id and {ASSESSMENTS_ADMITTED}
             order by assessed_on desc, position desc limit $4
         ) a"
    );
    all(
        assessments_in(sql, filter)
            .bind(commitment_ids)
            .bind(count)
            .fetch_all(pool)
            .await?,
        assessment,
    )
}

/// An assessment by id.
pub async fn assessment_by_id(pool: &PgPool, id: Uuid) -> StoreResult<Option<AssessmentRow>> {
    // language=PostgreSQL
    let sql = format!("select {ASSESSMENT_COLUMNS} from assessments where id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(assessment).transpose()?)
}

/// The assessment before each of the given ones in its commitment's timeline (assessed_on,
/// then position) inside `filter`: the verdict it replaced, as (assessment id, predecessor).
/// One probe of the timeline index each, however long the timeline.
pub async fn assessments_before(
    pool: &PgPool,
    assessment_ids: &[Uuid],
    filter: TimeFilter,
) -> StoreResult<Vec<(Uuid, AssessmentRow)>> {
    // language=PostgreSQL
    let sql = format!(
        "select a.id as of_assessment, p.* from assessments a
         cross join lateral (
             select {ASSESSMENT_COLUMNS} from assessments
             where commitment_id = a.commitment_id
               and (assessed_on, position) < (a.assessed_on, a.position)
               and {ASSESSMENTS_ADMITTED}
             order by assessed_on desc, position desc limit 1
         ) p
         where a.id = any($3)"
    );
    let rows = assessments_in(sql, filter)
        .bind(assessment_ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, assessment_at(r, 1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The commitment an assessment belongs to.
pub async fn assessment_commitment(
    pool: &PgPool,
    assessment_id: Uuid,
) -> StoreResult<Option<Uuid>> {
    // language=PostgreSQL
    Ok(
        sqlx::query_scalar("select commitment_id from assessments where id = $1")
            .bind(assessment_id)
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) const EVIDENCE_COLUMNS: &str = "e.id, e.commitment_ids, e.title, e.summary, e.source_url, \
     e.submitted_by, e.organisation, e.submitted_on, e.kind, e.retracted, e.retraction_reason, \
     e.retracted_on, e.version, e.position, e.transaction_id, e.recorded_at, e.actor";

/// Evidence concerning the given commitments, as (commitment id, evidence), each
/// commitment's in submission order.
pub async fn evidence_for(
    pool: &PgPool,
    commitment_ids: &[Uuid],
) -> StoreResult<Vec<(Uuid, EvidenceRow)>> {
    // language=PostgreSQL
    let sql = format!(
        "select ec.commitment_id as for_commitment, {EVIDENCE_COLUMNS}
         from evidence_commitments ec join evidence e on e.id = ec.evidence_id
         where ec.commitment_id = any($1)
         order by ec.commitment_id, e.submitted_on, e.position"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(commitment_ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, evidence_at(r, 1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Evidence by id (any order).
pub async fn evidence_by_ids(pool: &PgPool, ids: &[Uuid]) -> StoreResult<Vec<EvidenceRow>> {
    // language=PostgreSQL
    let sql = format!("select {EVIDENCE_COLUMNS} from evidence e where e.id = any($1)");
    all(
        sqlx::query(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(pool)
            .await?,
        evidence,
    )
}

/// Disputes of the given assessments, in the order recorded.
pub async fn disputes_for(pool: &PgPool, assessment_ids: &[Uuid]) -> StoreResult<Vec<DisputeRow>> {
    // language=PostgreSQL
    let rows = sqlx::query(
        "select id, assessment_id, commitment_id, disputed_by, statement, disputed_on,
                evidence_ids, position, transaction_id, recorded_at, actor
         from disputes where assessment_id = any($1) order by position",
    )
    .bind(assessment_ids)
    .fetch_all(pool)
    .await?;
    all(rows, dispute)
}

/// A dispute by id.
pub async fn dispute_by_id(pool: &PgPool, id: Uuid) -> StoreResult<Option<DisputeRow>> {
    // language=PostgreSQL
    let row = sqlx::query(
        "select id, assessment_id, commitment_id, disputed_by, statement, disputed_on,
                evidence_ids, position, transaction_id, recorded_at, actor
         from disputes where id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(dispute).transpose()?)
}

/// Revisions of the given commitments, each commitment's in version order.
pub async fn revisions_for(
    pool: &PgPool,
    commitment_ids: &[Uuid],
) -> StoreResult<Vec<RevisionRow>> {
    // language=PostgreSQL
    let rows = sqlx::query(
        "select commitment_id, version, changes, reason, effective_on, position, transaction_id,
                recorded_at, actor
         from revisions where commitment_id = any($1) order by commitment_id, version",
    )
    .bind(commitment_ids)
    .fetch_all(pool)
    .await?;
    all(rows, revision)
}

/// For the scorecard: every commitment in `area` with its current overall rating and status.
pub async fn scorecard_rows(
    pool: &PgPool,
    area: Option<&str>,
) -> StoreResult<Vec<(Uuid, Option<Rating>, Option<DeliveryStatus>)>> {
    // language=PostgreSQL
    let rows: Vec<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "select c.id, cur.overall, cur.delivery_status
         from commitments c left join assessments cur on cur.id = c.current_assessment_id
         where ($1::text is null or c.area = $1)
         order by c.registered_position",
    )
    .bind(area)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, r, s)| {
            (
                id,
                r.as_deref().and_then(Rating::parse),
                s.as_deref().and_then(DeliveryStatus::parse),
            )
        })
        .collect())
}
