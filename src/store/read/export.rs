//! Whole tables read row by row for the open-data exports: one statement each, its rows
//! decoded as they arrive from the connection, as a stream the caller reads at its own pace
//! (a slow client's), so memory stays flat however large the answer. One statement is one
//! snapshot: an export never mixes two states.

use super::*;
use futures_util::stream::{BoxStream, StreamExt};

/// The verdict a commitment currently stands at.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentVerdict {
    /// The assessment.
    pub assessment_id: Uuid,
    /// Its overall rating.
    pub overall: Option<Rating>,
    /// Its delivery status.
    pub delivery_status: DeliveryStatus,
    /// When it was made.
    pub assessed_on: NaiveDate,
    /// Who made it.
    pub assessor: String,
}

impl From<&AssessmentRow> for CurrentVerdict {
    fn from(a: &AssessmentRow) -> Self {
        Self {
            assessment_id: a.id,
            overall: a.overall,
            delivery_status: a.delivery_status,
            assessed_on: a.assessed_on,
            assessor: a.assessor.clone(),
        }
    }
}

/// A commitment with its current verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitmentLine {
    /// The commitment.
    pub commitment: CommitmentRow,
    /// Its current verdict, if it has been assessed.
    pub current: Option<CurrentVerdict>,
}

/// An assessment with the commitment it concerns spelled out.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentLine {
    /// The assessment.
    pub assessment: AssessmentRow,
    /// Its commitment's slug.
    pub commitment_slug: String,
    /// Its commitment's title.
    pub commitment_title: String,
    /// How many disputes it has.
    pub disputes: i64,
}

/// Evidence with the slugs of the commitments it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceLine {
    /// The evidence.
    pub evidence: EvidenceRow,
    /// The slugs of its commitments, in the order of its `commitment_ids`.
    pub commitment_slugs: Vec<String>,
}

/// The rows of `query`, decoded, as they arrive.
fn rows<'a, T: Send + 'a>(
    pool: &'a PgPool,
    query: Query<'a, Postgres, PgArguments>,
    decode: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> BoxStream<'a, StoreResult<T>> {
    query.fetch(pool).map(move |row| Ok(decode(&row?)?)).boxed()
}

/// Every commitment matching `filter`, in registration order, with its current verdict.
pub fn stream_commitments<'a>(
    pool: &'a PgPool,
    filter: &'a CommitmentFilter,
) -> BoxStream<'a, StoreResult<CommitmentLine>> {
    // language=PostgreSQL
    let sql = format!(
        "select {COMMITMENT_COLUMNS}, cur.id as current_id, cur.overall as current_overall,
                cur.delivery_status as current_status, cur.assessed_on as current_assessed_on,
                cur.assessor as current_assessor
         {COMMITMENT_FILTER}
         order by c.registered_position"
    );
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(&filter.area)
        .bind(filter.rating.map(Rating::as_str))
        .bind(filter.delivery_status.map(DeliveryStatus::as_str));
    rows(pool, query, |row| {
        let id: Option<Uuid> = row.try_get("current_id")?;
        let current = match id {
            None => None,
            Some(assessment_id) => {
                let overall: Option<&str> = row.try_get("current_overall")?;
                let status: &str = row.try_get("current_status")?;
                Some(CurrentVerdict {
                    assessment_id,
                    overall: overall.and_then(Rating::parse),
                    delivery_status: DeliveryStatus::parse(status).ok_or_else(|| {
                        sqlx::Error::Decode(format!("unknown status {status:?}").into())
                    })?,
                    assessed_on: row.try_get("current_assessed_on")?,
                    assessor: row.try_get("current_assessor")?,
                })
            }
        };
        Ok(CommitmentLine {
            commitment: commitment(row)?,
            current,
        })
    })
}

/// Every assessment inside `filter`, of one commitment (by slug) or of all, commitments in
/// registration order and each one's in timeline order, with its disputes inside `filter`
/// counted. The commitment's slug and title are today's: under a time filter the caller
/// labels rows from a view of that time.
pub fn stream_assessments<'a>(
    pool: &'a PgPool,
    commitment_slug: Option<&'a str>,
    filter: TimeFilter,
) -> BoxStream<'a, StoreResult<AssessmentLine>> {
    // language=PostgreSQL
    let sql = format!(
        "select {ASSESSMENT_COLUMNS}, c.c_slug, c.c_title,
                (select count(*) from disputes d where d.assessment_id = assessments.id
                   and ($1::timestamptz is null or d.recorded_at <= $1)
                   and ($2::date is null or d.disputed_on < $2)) as disputes
         from assessments
         join (select id as c_id, slug as c_slug, title as c_title, registered_position as c_order
               from commitments) c on c.c_id = commitment_id
         where {ASSESSMENTS_ADMITTED} and ($3::text is null or c.c_slug = $3)
         order by c.c_order, assessed_on, position"
    );
    let query = assessments_in(sql, filter).bind(commitment_slug);
    rows(pool, query, |row| {
        Ok(AssessmentLine {
            assessment: assessment(row)?,
            commitment_slug: row.try_get("c_slug")?,
            commitment_title: row.try_get("c_title")?,
            disputes: row.try_get("disputes")?,
        })
    })
}

/// Every piece of evidence, of one commitment (by slug) or of all, in submission order.
pub fn stream_evidence<'a>(
    pool: &'a PgPool,
    commitment_slug: Option<&'a str>,
) -> BoxStream<'a, StoreResult<EvidenceLine>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVIDENCE_COLUMNS},
                array(select c.slug from unnest(e.commitment_ids) with ordinality u(id, n)
                      join commitments c on c.id = u.id order by u.n) as commitment_slugs
         from evidence e
         where $1::text is null
            or exists (select 1 from commitments c where c.slug = $1 and c.id = any(e.commitment_ids))
         order by e.position"
    );
    let query = sqlx::query(AssertSqlSafe(sql)).bind(commitment_slug);
    rows(pool, query, |row| {
        Ok(EvidenceLine {
            evidence: evidence(row)?,
            commitment_slugs: row.try_get("commitment_slugs")?,
        })
    })
}

/// Every event after `after` below the append horizon, in committed order, optionally of one
/// stream and of some types: the log as `events` pages it, in one pass.
pub fn stream_events<'a>(
    pool: &'a PgPool,
    after: EventCursor,
    stream_id: Option<Uuid>,
    types: Option<&'a [String]>,
) -> BoxStream<'a, StoreResult<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events
         where (transaction_id, position) > ($1, $2) and {}
           and ($3::uuid is null or stream_id = $3)
           and ($4::text[] is null or event_type = any($4))
         order by transaction_id, position",
        Horizon::Appends.below()
    );
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(stream_id)
        .bind(types);
    rows(pool, query, StoredEvent::from_row)
}

/// An assessment as a feed entry: with its commitment and the overall rating it replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedAssessment {
    /// The assessment.
    pub assessment: AssessmentRow,
    /// Its commitment's slug.
    pub commitment_slug: String,
    /// Its commitment's title.
    pub commitment_title: String,
    /// Its commitment's area.
    pub area: String,
    /// The overall rating of the assessment before it in the commitment's timeline: `None`
    /// when it is the first, `Some(None)` when that one gave no overall rating.
    pub previous_overall: Option<Option<Rating>>,
}

/// One page of assessments, newest recorded first (committed order, backwards), before
/// `before`, of one commitment (by slug) and/or one area.
pub async fn assessment_feed(
    pool: &PgPool,
    commitment_slug: Option<&str>,
    area: Option<&str>,
    before: Option<EventCursor>,
    limit: i64,
) -> StoreResult<Vec<FeedAssessment>> {
    // language=PostgreSQL
    let sql = format!(
        "select a.*, c.c_slug, c.c_title, c.c_area, p.has_previous, p.previous_overall
         from (select {ASSESSMENT_COLUMNS} from assessments) a
         join (select id as c_id, slug as c_slug, title as c_title, area as c_area
               from commitments) c on c.c_id = a.commitment_id
         left join lateral (
             select true as has_previous, p.overall as previous_overall from assessments p
             where p.commitment_id = a.commitment_id
               and (p.assessed_on, p.position) < (a.assessed_on, a.position)
             order by p.assessed_on desc, p.position desc limit 1
         ) p on true
         where ($1::text is null or c.c_slug = $1)
           and ($2::text is null or c.c_area = $2)
           and ($3::bigint is null or (a.transaction_id, a.position) < ($3, $4))
         order by a.transaction_id desc, a.position desc
         limit $5"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(commitment_slug)
        .bind(area)
        .bind(before.map(|c| c.transaction_id))
        .bind(before.map(|c| c.position))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let has_previous: Option<bool> = row.try_get("has_previous")?;
            let previous: Option<&str> = row.try_get("previous_overall")?;
            Ok(FeedAssessment {
                assessment: assessment(row)?,
                commitment_slug: row.try_get("c_slug")?,
                commitment_title: row.try_get("c_title")?,
                area: row.try_get("c_area")?,
                previous_overall: has_previous.map(|_| previous.and_then(Rating::parse)),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
