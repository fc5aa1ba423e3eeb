//! Queries over the projections and the log. Every list query takes a whole batch of keys so
//! that the GraphQL loaders issue one statement per kind of thing, however many parents.

use super::cursor::EventCursor;
use super::event_store::{EVENT_COLUMNS, Envelope, StoredEvent};
use super::replay::TimeFilter;
use super::{StoreError, StoreResult};
use crate::domain::commitment::CommitmentAssessed;
use crate::domain::rating::{Aspects, AssessorKind, DeliveryStatus, EvidenceKind, Rating};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// A commitment as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitmentRow {
    /// Stream id.
    pub id: Uuid,
    /// Unique key.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Policy area.
    pub area: String,
    /// Where it was promised.
    pub policy_source: String,
    /// Target.
    pub target: String,
    /// Deadline.
    pub due_date: Option<NaiveDate>,
    /// Responsible body.
    pub owner: Option<String>,
    /// When announced.
    pub announced_on: NaiveDate,
    /// Stream version.
    pub version: i32,
    /// Latest assessment by (assessed_on, position).
    pub current_assessment_id: Option<Uuid>,
    /// Position of the registration: the list order.
    pub registered_position: i64,
    /// When registered (transaction time).
    pub registered_at: DateTime<Utc>,
    /// When last changed (transaction time).
    pub updated_at: DateTime<Utc>,
    /// Where its latest event sits in the log.
    pub cursor: EventCursor,
}

/// An assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentRow {
    /// Assessment id.
    pub id: Uuid,
    /// The commitment assessed.
    pub commitment_id: Uuid,
    /// Who.
    pub assessor: String,
    /// What kind of body.
    pub assessor_kind: AssessorKind,
    /// When.
    pub assessed_on: NaiveDate,
    /// Overall rating.
    pub overall: Option<Rating>,
    /// Aspect ratings.
    pub aspects: Aspects,
    /// Delivery status.
    pub delivery_status: DeliveryStatus,
    /// Why.
    pub rationale: String,
    /// Evidence relied on.
    pub evidence_ids: Vec<Uuid>,
    /// Evaluation reference.
    pub evaluation: Option<String>,
    /// Where its event sits in the log.
    pub cursor: EventCursor,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
}

impl AssessmentRow {
    /// The row the projections hold for a recorded verdict: what the append path answers with
    /// and what an in-memory fold keeps, without reading the table back.
    pub fn recorded(envelope: &Envelope<'_>, e: &CommitmentAssessed) -> Self {
        AssessmentRow {
            id: e.assessment_id,
            commitment_id: envelope.stream_id,
            assessor: e.assessor.clone(),
            assessor_kind: e.assessor_kind,
            assessed_on: e.assessed_on,
            overall: e.overall,
            aspects: e.aspects,
            delivery_status: e.delivery_status,
            rationale: e.rationale.clone(),
            evidence_ids: e.evidence_ids.clone(),
            evaluation: e.evaluation.clone(),
            cursor: envelope.cursor(),
            recorded_at: envelope.recorded_at,
            actor: envelope.actor.to_owned(),
        }
    }
}

/// A piece of evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRow {
    /// Stream id.
    pub id: Uuid,
    /// Commitments it concerns.
    pub commitment_ids: Vec<Uuid>,
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: String,
    /// Source address.
    pub source_url: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// Their organisation.
    pub organisation: Option<String>,
    /// When submitted.
    pub submitted_on: NaiveDate,
    /// Kind.
    pub kind: EvidenceKind,
    /// Retracted?
    pub retracted: bool,
    /// Why retracted.
    pub retraction_reason: Option<String>,
    /// When retracted.
    pub retracted_on: Option<NaiveDate>,
    /// Stream version.
    pub version: i32,
    /// Where its submission sits in the log.
    pub cursor: EventCursor,
    /// Transaction time of the submission.
    pub recorded_at: DateTime<Utc>,
    /// Who submitted it through this system.
    pub actor: String,
}

/// A dispute of an assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeRow {
    /// Dispute id.
    pub id: Uuid,
    /// The assessment disputed.
    pub assessment_id: Uuid,
    /// Its commitment.
    pub commitment_id: Uuid,
    /// Who disputes.
    pub disputed_by: String,
    /// What they say.
    pub statement: String,
    /// When.
    pub disputed_on: NaiveDate,
    /// Evidence relied on.
    pub evidence_ids: Vec<Uuid>,
    /// Where its event sits in the log.
    pub cursor: EventCursor,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
}

/// A revision of a commitment's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRow {
    /// The commitment.
    pub commitment_id: Uuid,
    /// The stream version the revision created.
    pub version: i32,
    /// `[{field, from, to}]`.
    pub changes: Value,
    /// Why.
    pub reason: String,
    /// When it took effect.
    pub effective_on: NaiveDate,
    /// Where its event sits in the log.
    pub cursor: EventCursor,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
}

/// Filters of the commitments list; rating and status apply to the current assessment.
#[derive(Debug, Clone, Default)]
pub struct CommitmentFilter {
    /// Exact policy area.
    pub area: Option<String>,
    /// Current overall rating.
    pub rating: Option<Rating>,
    /// Current delivery status.
    pub delivery_status: Option<DeliveryStatus>,
}

fn cursor(row: &PgRow) -> Result<EventCursor, sqlx::Error> {
    Ok(EventCursor {
        transaction_id: row.try_get("transaction_id")?,
        position: row.try_get("position")?,
    })
}

/// A row's columns read by position, in the order a `*_COLUMNS` list names them, from a first
/// index: lists decode thousands of columns per answer, and finding each by name cost a
/// hash lookup. Debug builds check every name against the list, so a reordered list fails
/// the tests rather than swapping two fields of the same type.
struct Columns<'r> {
    row: &'r PgRow,
    next: usize,
}

impl<'r> Columns<'r> {
    fn from(row: &'r PgRow, first: usize) -> Self {
        Self { row, next: first }
    }

    fn get<T>(&mut self, name: &str) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        use sqlx::Column;
        let i = self.next;
        debug_assert_eq!(self.row.columns().get(i).map(|c| c.name()), Some(name));
        self.next += 1;
        self.row.try_get(i)
    }

    fn parse<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
        let s: &str = self.get(name)?;
        parse(s).ok_or_else(|| sqlx::Error::Decode(format!("unknown {name} {s:?}").into()))
    }

    fn rating(&mut self, name: &str) -> Result<Option<Rating>, sqlx::Error> {
        let s: Option<&str> = self.get(name)?;
        s.map(|s| {
            Rating::parse(s)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown rating {s:?}").into()))
        })
        .transpose()
    }

    /// `position, transaction_id`, in that order.
    fn cursor(&mut self) -> Result<EventCursor, sqlx::Error> {
        let position = self.get("position")?;
        Ok(EventCursor {
            transaction_id: self.get("transaction_id")?,
            position,
        })
    }
}

/// Decodes [`COMMITMENT_COLUMNS`].
fn commitment(row: &PgRow) -> Result<CommitmentRow, sqlx::Error> {
    let mut c = Columns::from(row, 0);
    Ok(CommitmentRow {
        id: c.get("id")?,
        slug: c.get("slug")?,
        title: c.get("title")?,
        description: c.get("description")?,
        area: c.get("area")?,
        policy_source: c.get("policy_source")?,
        target: c.get("target")?,
        due_date: c.get("due_date")?,
        owner: c.get("owner")?,
        announced_on: c.get("announced_on")?,
        version: c.get("version")?,
        current_assessment_id: c.get("current_assessment_id")?,
        registered_position: c.get("registered_position")?,
        registered_at: c.get("registered_at")?,
        updated_at: c.get("updated_at")?,
        cursor: EventCursor {
            transaction_id: c.get("last_transaction_id")?,
            position: c.get("last_position")?,
        },
    })
}

/// Decodes [`ASSESSMENT_COLUMNS`].
fn assessment(row: &PgRow) -> Result<AssessmentRow, sqlx::Error> {
    assessment_at(row, 0)
}

/// Decodes [`ASSESSMENT_COLUMNS`] from column `first` on.
fn assessment_at(row: &PgRow, first: usize) -> Result<AssessmentRow, sqlx::Error> {
    let mut c = Columns::from(row, first);
    Ok(AssessmentRow {
        id: c.get("id")?,
        commitment_id: c.get("commitment_id")?,
        assessor: c.get("assessor")?,
        assessor_kind: c.parse("assessor_kind", AssessorKind::parse)?,
        assessed_on: c.get("assessed_on")?,
        overall: c.rating("overall")?,
        aspects: Aspects {
            met: c.rating("met")?,
            funding: c.rating("funding")?,
            impact: c.rating("impact")?,
            appropriateness: c.rating("appropriateness")?,
        },
        delivery_status: c.parse("delivery_status", DeliveryStatus::parse)?,
        rationale: c.get("rationale")?,
        evidence_ids: c.get("evidence_ids")?,
        evaluation: c.get("evaluation")?,
        cursor: c.cursor()?,
        recorded_at: c.get("recorded_at")?,
        actor: c.get("actor")?,
    })
}

/// Decodes [`EVIDENCE_COLUMNS`] from column `first` on.
fn evidence_at(row: &PgRow, first: usize) -> Result<EvidenceRow, sqlx::Error> {
    let mut c = Columns::from(row, first);
    Ok(EvidenceRow {
        id: c.get("id")?,
        commitment_ids: c.get("commitment_ids")?,
        title: c.get("title")?,
        summary: c.get("summary")?,
        source_url: c.get("source_url")?,
        submitted_by: c.get("submitted_by")?,
        organisation: c.get("organisation")?,
        submitted_on: c.get("submitted_on")?,
        kind: c.parse("kind", EvidenceKind::parse)?,
        retracted: c.get("retracted")?,
        retraction_reason: c.get("retraction_reason")?,
        retracted_on: c.get("retracted_on")?,
        version: c.get("version")?,
        cursor: c.cursor()?,
        recorded_at: c.get("recorded_at")?,
        actor: c.get("actor")?,
    })
}

/// Decodes [`EVIDENCE_COLUMNS`].
fn evidence(row: &PgRow) -> Result<EvidenceRow, sqlx::Error> {
    evidence_at(row, 0)
}

fn dispute(row: &PgRow) -> Result<DisputeRow, sqlx::Error> {
    Ok(DisputeRow {
        id: row.try_get("id")?,
        assessment_id: row.try_get("assessment_id")?,
        commitment_id: row.try_get("commitment_id")?,
        disputed_by: row.try_get("disputed_by")?,
        statement: row.try_get("statement")?,
        disputed_on: row.try_get("disputed_on")?,
        evidence_ids: row.try_get("evidence_ids")?,
        cursor: cursor(row)?,
        recorded_at: row.try_get("recorded_at")?,
        actor: row.try_get("actor")?,
    })
}

fn revision(row: &PgRow) -> Result<RevisionRow, sqlx::Error> {
    Ok(RevisionRow {
        commitment_id: row.try_get("commitment_id")?,
        version: row.try_get("version")?,
        changes: row.try_get("changes")?,
        reason: row.try_get("reason")?,
        effective_on: row.try_get("effective_on")?,
        cursor: cursor(row)?,
        recorded_at: row.try_get("recorded_at")?,
        actor: row.try_get("actor")?,
    })
}

fn all<T>(rows: Vec<PgRow>, f: fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

const COMMITMENT_COLUMNS: &str = "c.id, c.slug, c.title, c.description, c.area, c.policy_source, \
     c.target, c.due_date, c.owner, c.announced_on, c.version, c.current_assessment_id, \
     c.registered_position, c.registered_at, c.updated_at, c.last_transaction_id, c.last_position";

// The filter shared by the list and its count: $1 area, $2 rating, $3 status.
const COMMITMENT_FILTER: &str = "from commitments c
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

const ASSESSMENT_COLUMNS: &str = "id, commitment_id, assessor, assessor_kind, assessed_on, overall, \
     met, funding, impact, appropriateness, delivery_status, rationale, evidence_ids, evaluation, \
     position, transaction_id, recorded_at, actor";

// Assessments inside a time filter, always the first two parameters: `$1` recorded by an
// instant, `$2` assessed before a date (see [`TimeFilter::assessed_before`]); both null for
// the live timeline.
// language=PostgreSQL
const ASSESSMENTS_ADMITTED: &str = "($1::timestamptz is null or recorded_at <= $1)
     and ($2::date is null or assessed_on < $2)";

/// A statement over assessments whose first two parameters are `filter`'s bounds.
fn assessments_in(sql: String, filter: TimeFilter) -> Query<'static, Postgres, PgArguments> {
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

const EVIDENCE_COLUMNS: &str = "e.id, e.commitment_ids, e.title, e.summary, e.source_url, \
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

/// The visibility horizon: every transaction with a lower id has committed or aborted, so
/// reading below it in (transaction id, position) order can never skip a late commit.
pub(crate) const BELOW_HORIZON: &str =
    "transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// The cursor of the last event after `after` that is below the horizon, if any: where a
/// reader nobody listens to can move without reading the events. One index step.
pub async fn last_below_horizon(
    pool: &PgPool,
    after: EventCursor,
) -> StoreResult<Option<EventCursor>> {
    // language=PostgreSQL
    let sql = format!(
        "select transaction_id, position from events
         where (transaction_id, position) > ($1, $2) and {BELOW_HORIZON}
         order by transaction_id desc, position desc limit 1"
    );
    let row: Option<(i64, i64)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(transaction_id, position)| EventCursor {
        transaction_id,
        position,
    }))
}

/// Whether committed events after `after` exist that are not yet below the horizon.
///
/// Such an event exists exactly when the last event in committed order is one (its
/// transaction id is the highest), so the answer is one backward step of the committed-order
/// index, whatever the table's size or statistics. (An `exists` over the range was planned as
/// a scan of the whole log while the table had no statistics yet, on every wake-up.)
pub async fn events_beyond_horizon(pool: &PgPool, after: EventCursor) -> StoreResult<bool> {
    // language=PostgreSQL
    let sql = format!(
        "select coalesce((select (transaction_id, position) > ($1, $2) and not ({BELOW_HORIZON})
                          from events order by transaction_id desc, position desc limit 1),
                         false)"
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .fetch_one(pool)
        .await?)
}

/// Events after `after` in committed order, optionally of one stream and of some types.
pub async fn events_after(
    pool: &PgPool,
    after: EventCursor,
    limit: i64,
    stream_id: Option<Uuid>,
    types: Option<&[String]>,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events
         where (transaction_id, position) > ($1, $2) and {BELOW_HORIZON}
           and ($3::uuid is null or stream_id = $3)
           and ($4::text[] is null or event_type = any($4))
         order by transaction_id, position limit $5"
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
fn history_at_sql(select: &str, rest: &str) -> String {
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

/// Each stream's last event inside a time filter (no payloads read).
pub async fn stream_heads_at(pool: &PgPool, filter: TimeFilter) -> StoreResult<Vec<StreamHeadAt>> {
    // language=PostgreSQL
    let sql = format!(
        "select distinct on (stream_id) stream_id, version, transaction_id, position, recorded_at
           from events where {EVENTS_ADMITTED}
          order by stream_id, version desc"
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
