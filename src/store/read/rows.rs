//! The rows queries answer with, and their decoding by column position.

use super::*;

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

pub(super) fn cursor(row: &PgRow) -> Result<EventCursor, sqlx::Error> {
    Ok(EventCursor {
        transaction_id: row.try_get("transaction_id")?,
        position: row.try_get("position")?,
    })
}

/// A row's columns read by position, in the order a `*_COLUMNS` list names them, from a first
/// index: lists decode thousands of columns per answer, and finding each by name cost a
/// hash lookup. Debug builds check every name against the list, so a reordered list fails
/// the tests rather than swapping two fields of the same type.
pub(super) struct Columns<'r> {
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
pub(super) fn commitment(row: &PgRow) -> Result<CommitmentRow, sqlx::Error> {
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
pub(super) fn assessment(row: &PgRow) -> Result<AssessmentRow, sqlx::Error> {
    assessment_at(row, 0)
}

/// Decodes [`ASSESSMENT_COLUMNS`] from column `first` on.
pub(super) fn assessment_at(row: &PgRow, first: usize) -> Result<AssessmentRow, sqlx::Error> {
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
pub(super) fn evidence_at(row: &PgRow, first: usize) -> Result<EvidenceRow, sqlx::Error> {
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
pub(super) fn evidence(row: &PgRow) -> Result<EvidenceRow, sqlx::Error> {
    evidence_at(row, 0)
}

pub(super) fn dispute(row: &PgRow) -> Result<DisputeRow, sqlx::Error> {
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

pub(super) fn revision(row: &PgRow) -> Result<RevisionRow, sqlx::Error> {
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

pub(super) fn all<T>(
    rows: Vec<PgRow>,
    f: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}
