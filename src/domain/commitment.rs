//! The commitment stream: its events, its state, and the commands that change it.

use super::rating::{Aspects, AssessorKind, DeliveryStatus, Rating};
use super::text::{Line, Slug, Text, check_date, check_ids};
use super::{DomainError, References};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// `CommitmentRegistered`: a promise was made and is now tracked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitmentRegistered {
    /// Unique human-readable key.
    pub slug: String,
    /// Short title.
    pub title: String,
    /// What was promised, in a sentence or two.
    pub description: String,
    /// The policy area it belongs to.
    pub area: String,
    /// The document or speech that made the promise.
    pub policy_source: String,
    /// The measurable target.
    pub target: String,
    /// The deadline, if one was given.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// Who is responsible for delivery, if named.
    #[serde(default)]
    pub owner: Option<String>,
    /// When the promise was made (the event's business time).
    pub announced_on: NaiveDate,
}

/// `CommitmentRevised`: the target or deadline (or wording) changed, for a stated reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitmentRevised {
    /// The new title, if changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The new description, if changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The new target, if changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The new deadline, if changed (an extension, usually).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// Why it changed.
    pub reason: String,
    /// When the change took effect (the event's business time).
    pub effective_on: NaiveDate,
}

/// `CommitmentAssessed`: an assessor gave a verdict (schema v2: with `assessorKind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitmentAssessed {
    /// The assessment's own id.
    pub assessment_id: Uuid,
    /// Who gave the verdict (e.g. "HSCC Expert Panel").
    pub assessor: String,
    /// What kind of body the assessor is.
    pub assessor_kind: AssessorKind,
    /// The date of the verdict (the event's business time).
    pub assessed_on: NaiveDate,
    /// The overall rating, if one was given.
    #[serde(default)]
    pub overall: Option<Rating>,
    /// The aspect ratings given.
    #[serde(default)]
    pub aspects: Aspects,
    /// The delivery status.
    pub delivery_status: DeliveryStatus,
    /// Why.
    pub rationale: String,
    /// The evidence the verdict relies on.
    #[serde(default)]
    pub evidence_ids: Vec<Uuid>,
    /// The evaluation it belongs to (e.g. "HC 780").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<String>,
}

/// `AssessmentDisputed`: someone formally contested a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentDisputed {
    /// The dispute's own id.
    pub dispute_id: Uuid,
    /// The assessment contested.
    pub assessment_id: Uuid,
    /// Who contests it (e.g. "Department of Health and Social Care").
    pub disputed_by: String,
    /// What they said.
    pub statement: String,
    /// When (the event's business time).
    pub disputed_on: NaiveDate,
    /// Evidence the dispute relies on.
    #[serde(default)]
    pub evidence_ids: Vec<Uuid>,
}

/// The events of a commitment stream.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitmentEvent {
    /// `CommitmentRegistered`.
    Registered(CommitmentRegistered),
    /// `CommitmentRevised`.
    Revised(CommitmentRevised),
    /// `CommitmentAssessed`.
    Assessed(CommitmentAssessed),
    /// `AssessmentDisputed`.
    AssessmentDisputed(AssessmentDisputed),
}

impl CommitmentEvent {
    /// The contract name of the event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            CommitmentEvent::Registered(_) => "CommitmentRegistered",
            CommitmentEvent::Revised(_) => "CommitmentRevised",
            CommitmentEvent::Assessed(_) => "CommitmentAssessed",
            CommitmentEvent::AssessmentDisputed(_) => "AssessmentDisputed",
        }
    }

    /// When it happened in the world.
    pub fn occurred_on(&self) -> NaiveDate {
        match self {
            CommitmentEvent::Registered(e) => e.announced_on,
            CommitmentEvent::Revised(e) => e.effective_on,
            CommitmentEvent::Assessed(e) => e.assessed_on,
            CommitmentEvent::AssessmentDisputed(e) => e.disputed_on,
        }
    }

    pub(super) fn payload(&self) -> serde_json::Result<Value> {
        match self {
            CommitmentEvent::Registered(e) => serde_json::to_value(e),
            CommitmentEvent::Revised(e) => serde_json::to_value(e),
            CommitmentEvent::Assessed(e) => serde_json::to_value(e),
            CommitmentEvent::AssessmentDisputed(e) => serde_json::to_value(e),
        }
    }

    /// Decodes a current-version payload; `None` if the type is not a commitment event.
    pub(super) fn decode<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Option<Result<Self, D::Error>> {
        Some(match event_type {
            "CommitmentRegistered" => Deserialize::deserialize(payload).map(Self::Registered),
            "CommitmentRevised" => Deserialize::deserialize(payload).map(Self::Revised),
            "CommitmentAssessed" => Deserialize::deserialize(payload).map(Self::Assessed),
            "AssessmentDisputed" => Deserialize::deserialize(payload).map(Self::AssessmentDisputed),
            _ => return None,
        })
    }
}

/// What the rules need to know about a commitment, folded from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitmentState {
    /// The stream's version: the number of events applied (0 = no such commitment).
    pub version: i32,
    /// The commitment as it stands, once registered.
    pub current: Option<Commitment>,
}

/// A registered commitment's current terms and the verdicts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Commitment {
    /// Unique key.
    pub slug: String,
    /// Current title.
    pub title: String,
    /// Current description.
    pub description: String,
    /// Current target.
    pub target: String,
    /// Current deadline.
    pub due_date: Option<NaiveDate>,
    /// When it was announced.
    pub announced_on: NaiveDate,
    /// Assessments on it, with their dates.
    pub assessments: HashMap<Uuid, NaiveDate>,
    /// Disputes recorded on it.
    pub disputes: HashSet<Uuid>,
}

impl CommitmentState {
    /// Applies one event. Never fails: events are facts.
    pub fn apply(&mut self, event: &CommitmentEvent) {
        self.version += 1;
        match event {
            CommitmentEvent::Registered(e) => {
                self.current = Some(Commitment {
                    slug: e.slug.clone(),
                    title: e.title.clone(),
                    description: e.description.clone(),
                    target: e.target.clone(),
                    due_date: e.due_date,
                    announced_on: e.announced_on,
                    assessments: HashMap::new(),
                    disputes: HashSet::new(),
                });
            }
            CommitmentEvent::Revised(e) => {
                if let Some(c) = &mut self.current {
                    if let Some(v) = &e.title {
                        c.title = v.clone();
                    }
                    if let Some(v) = &e.description {
                        c.description = v.clone();
                    }
                    if let Some(v) = &e.target {
                        c.target = v.clone();
                    }
                    if e.due_date.is_some() {
                        c.due_date = e.due_date;
                    }
                }
            }
            CommitmentEvent::Assessed(e) => {
                if let Some(c) = &mut self.current {
                    c.assessments.insert(e.assessment_id, e.assessed_on);
                }
            }
            CommitmentEvent::AssessmentDisputed(e) => {
                if let Some(c) = &mut self.current {
                    c.disputes.insert(e.dispute_id);
                }
            }
        }
    }

    /// Folds a whole stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a CommitmentEvent>) -> Self {
        let mut state = Self::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    fn registered(&self, id: Uuid) -> Result<&Commitment, DomainError> {
        self.current.as_ref().ok_or(DomainError::NotFound {
            what: "commitment",
            id,
        })
    }
}

/// Checks an optimistic-concurrency expectation against the stream's version.
pub fn check_expected_version(expected: Option<i32>, actual: i32) -> Result<(), DomainError> {
    match expected {
        Some(expected) if expected != actual => Err(DomainError::Conflict { expected, actual }),
        _ => Ok(()),
    }
}

/// Register a new commitment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCommitment {
    /// Unique key.
    pub slug: Slug,
    /// Title.
    pub title: Line,
    /// Description.
    pub description: Text,
    /// Policy area.
    pub area: Line,
    /// Where the promise was made.
    pub policy_source: Line,
    /// Measurable target.
    pub target: Text,
    /// Deadline.
    pub due_date: Option<NaiveDate>,
    /// Responsible body.
    pub owner: Option<Line>,
    /// When it was announced.
    pub announced_on: NaiveDate,
}

impl RegisterCommitment {
    /// Decides the registration. Slug uniqueness is checked by the store, which owns the index.
    pub fn decide(self, state: &CommitmentState) -> Result<Vec<CommitmentEvent>, DomainError> {
        if state.version != 0 {
            return Err(DomainError::invalid(
                "id",
                "a commitment with this id already exists",
            ));
        }
        check_date("announcedOn", self.announced_on)?;
        if let Some(due) = self.due_date {
            check_date("dueDate", due)?;
        }
        Ok(vec![CommitmentEvent::Registered(CommitmentRegistered {
            slug: self.slug.as_str().to_owned(),
            title: self.title.as_str().to_owned(),
            description: self.description.as_str().to_owned(),
            area: self.area.as_str().to_owned(),
            policy_source: self.policy_source.as_str().to_owned(),
            target: self.target.as_str().to_owned(),
            due_date: self.due_date,
            owner: self.owner.map(|o| o.as_str().to_owned()),
            announced_on: self.announced_on,
        })])
    }
}

/// Revise a commitment's terms (extend a deadline, restate a target).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviseCommitment {
    /// The commitment.
    pub commitment_id: Uuid,
    /// New title.
    pub title: Option<Line>,
    /// New description.
    pub description: Option<Text>,
    /// New target.
    pub target: Option<Text>,
    /// New deadline.
    pub due_date: Option<NaiveDate>,
    /// Why.
    pub reason: Text,
    /// When the change took effect.
    pub effective_on: NaiveDate,
}

impl ReviseCommitment {
    /// Decides the revision: something must actually change.
    pub fn decide(self, state: &CommitmentState) -> Result<Vec<CommitmentEvent>, DomainError> {
        let current = state.registered(self.commitment_id)?;
        check_date("effectiveOn", self.effective_on)?;
        if let Some(due) = self.due_date {
            check_date("dueDate", due)?;
        }
        let changed = |new: Option<&str>, old: &str| new.filter(|n| *n != old).map(str::to_owned);
        let event = CommitmentRevised {
            title: changed(self.title.as_ref().map(Line::as_str), &current.title),
            description: changed(
                self.description.as_ref().map(Text::as_str),
                &current.description,
            ),
            target: changed(self.target.as_ref().map(Text::as_str), &current.target),
            due_date: self.due_date.filter(|d| Some(*d) != current.due_date),
            reason: self.reason.as_str().to_owned(),
            effective_on: self.effective_on,
        };
        if event.title.is_none()
            && event.description.is_none()
            && event.target.is_none()
            && event.due_date.is_none()
        {
            return Err(DomainError::invalid(
                "input",
                "a revision must change at least one of title, description, target or dueDate",
            ));
        }
        Ok(vec![CommitmentEvent::Revised(event)])
    }
}

/// Give a verdict on a commitment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessCommitment {
    /// The commitment.
    pub commitment_id: Uuid,
    /// The new assessment's id, chosen by the caller (not part of the command's identity).
    #[serde(skip)]
    pub assessment_id: Uuid,
    /// Who gives the verdict.
    pub assessor: Line,
    /// What kind of body.
    pub assessor_kind: AssessorKind,
    /// Date of the verdict.
    pub assessed_on: NaiveDate,
    /// Overall rating.
    pub overall: Option<Rating>,
    /// Aspect ratings.
    pub aspects: Aspects,
    /// Delivery status.
    pub delivery_status: DeliveryStatus,
    /// Why.
    pub rationale: Text,
    /// Evidence relied on.
    pub evidence_ids: Vec<Uuid>,
    /// Evaluation reference.
    pub evaluation: Option<Line>,
}

impl AssessCommitment {
    /// Decides the verdict: the commitment must exist, the evidence must exist and stand, and
    /// the verdict cannot predate the commitment.
    pub fn decide(
        self,
        state: &CommitmentState,
        refs: &References,
    ) -> Result<Vec<CommitmentEvent>, DomainError> {
        let current = state.registered(self.commitment_id)?;
        check_date("assessedOn", self.assessed_on)?;
        if self.assessed_on < current.announced_on {
            return Err(DomainError::invalid(
                "assessedOn",
                format!(
                    "cannot be before the commitment was announced ({})",
                    current.announced_on
                ),
            ));
        }
        check_ids("evidenceIds", &self.evidence_ids)?;
        refs.require_citable_evidence(&self.evidence_ids)?;
        Ok(vec![CommitmentEvent::Assessed(CommitmentAssessed {
            assessment_id: self.assessment_id,
            assessor: self.assessor.as_str().to_owned(),
            assessor_kind: self.assessor_kind,
            assessed_on: self.assessed_on,
            overall: self.overall,
            aspects: self.aspects,
            delivery_status: self.delivery_status,
            rationale: self.rationale.as_str().to_owned(),
            evidence_ids: self.evidence_ids,
            evaluation: self.evaluation.map(|e| e.as_str().to_owned()),
        })])
    }
}

/// Contest a verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisputeAssessment {
    /// The commitment the assessment is on (looked up from the assessment by the caller).
    #[serde(skip)]
    pub commitment_id: Uuid,
    /// The new dispute's id, chosen by the caller.
    #[serde(skip)]
    pub dispute_id: Uuid,
    /// The assessment contested.
    pub assessment_id: Uuid,
    /// Who contests it.
    pub disputed_by: Line,
    /// What they say.
    pub statement: Text,
    /// When.
    pub disputed_on: NaiveDate,
    /// Evidence relied on.
    pub evidence_ids: Vec<Uuid>,
}

impl DisputeAssessment {
    /// Decides the dispute: the assessment must be on this commitment and not later than the
    /// dispute.
    pub fn decide(
        self,
        state: &CommitmentState,
        refs: &References,
    ) -> Result<Vec<CommitmentEvent>, DomainError> {
        let current = state.registered(self.commitment_id)?;
        let assessed_on =
            current
                .assessments
                .get(&self.assessment_id)
                .ok_or(DomainError::NotFound {
                    what: "assessment",
                    id: self.assessment_id,
                })?;
        check_date("disputedOn", self.disputed_on)?;
        if self.disputed_on < *assessed_on {
            return Err(DomainError::invalid(
                "disputedOn",
                format!("cannot be before the assessment it disputes ({assessed_on})"),
            ));
        }
        check_ids("evidenceIds", &self.evidence_ids)?;
        refs.require_citable_evidence(&self.evidence_ids)?;
        Ok(vec![CommitmentEvent::AssessmentDisputed(
            AssessmentDisputed {
                dispute_id: self.dispute_id,
                assessment_id: self.assessment_id,
                disputed_by: self.disputed_by.as_str().to_owned(),
                statement: self.statement.as_str().to_owned(),
                disputed_on: self.disputed_on,
                evidence_ids: self.evidence_ids,
            },
        )])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::EvidenceStatus;

    pub(crate) fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    pub(crate) fn register(slug: &str) -> RegisterCommitment {
        RegisterCommitment {
            slug: Slug::parse(slug).unwrap(),
            title: Line::parse("title", "Electronic patient records in all trusts").unwrap(),
            description: Text::parse("description", "Bring all trusts to a baseline.").unwrap(),
            area: Line::parse("area", "Digital foundations").unwrap(),
            policy_source: Line::parse(
                "policySource",
                "A plan for digital health and social care (2022)",
            )
            .unwrap(),
            target: Text::parse("target", "Every NHS trust with an EPR by Mar 2025").unwrap(),
            due_date: Some(date("2025-03-31")),
            owner: None,
            announced_on: date("2022-06-29"),
        }
    }

    fn given(events: &[CommitmentEvent]) -> CommitmentState {
        CommitmentState::from_events(events)
    }

    fn registered() -> (Uuid, CommitmentState) {
        let events = register("epr-all-trusts")
            .decide(&CommitmentState::default())
            .unwrap();
        (Uuid::now_v7(), given(&events))
    }

    fn assess(commitment_id: Uuid, on: &str) -> AssessCommitment {
        AssessCommitment {
            commitment_id,
            assessment_id: Uuid::now_v7(),
            assessor: Line::parse("assessor", "HSCC Expert Panel").unwrap(),
            assessor_kind: AssessorKind::Independent,
            assessed_on: date(on),
            overall: Some(Rating::Inadequate),
            aspects: Aspects::default(),
            delivery_status: DeliveryStatus::NotOnTrack,
            rationale: Text::parse("rationale", "Far from on track.").unwrap(),
            evidence_ids: vec![],
            evaluation: Some(Line::parse("evaluation", "HC 780").unwrap()),
        }
    }

    #[test]
    fn registering_records_the_terms_and_starts_at_version_one() {
        let (_, state) = registered();
        assert_eq!(state.version, 1);
        let c = state.current.unwrap();
        assert_eq!(c.slug, "epr-all-trusts");
        assert_eq!(c.due_date, Some(date("2025-03-31")));
    }

    #[test]
    fn registering_twice_on_one_stream_is_refused() {
        let (_, state) = registered();
        assert!(matches!(
            register("other").decide(&state),
            Err(DomainError::Invalid { field: "id", .. })
        ));
    }

    #[test]
    fn assessing_an_unknown_commitment_is_not_found() {
        let id = Uuid::now_v7();
        let err = assess(id, "2023-02-17")
            .decide(&CommitmentState::default(), &References::default())
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::NotFound {
                what: "commitment",
                id
            }
        );
    }

    #[test]
    fn an_assessment_cannot_predate_the_commitment() {
        let (id, state) = registered();
        let err = assess(id, "2021-01-01")
            .decide(&state, &References::default())
            .unwrap_err();
        assert!(matches!(
            err,
            DomainError::Invalid {
                field: "assessedOn",
                ..
            }
        ));
    }

    #[test]
    fn an_assessment_may_only_cite_evidence_that_exists_and_stands() {
        let (id, state) = registered();
        let (standing, retracted, missing) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut refs = References::default();
        refs.evidence.insert(standing, EvidenceStatus::Current);
        refs.evidence.insert(retracted, EvidenceStatus::Retracted);

        let mut ok = assess(id, "2023-02-17");
        ok.evidence_ids = vec![standing];
        assert!(ok.decide(&state, &refs).is_ok());

        let mut gone = assess(id, "2023-02-17");
        gone.evidence_ids = vec![missing];
        assert_eq!(
            gone.decide(&state, &refs).unwrap_err(),
            DomainError::NotFound {
                what: "evidence",
                id: missing
            }
        );

        let mut withdrawn = assess(id, "2023-02-17");
        withdrawn.evidence_ids = vec![retracted];
        assert!(matches!(
            withdrawn.decide(&state, &refs),
            Err(DomainError::Invalid {
                field: "evidenceIds",
                ..
            })
        ));
    }

    #[test]
    fn an_extension_records_only_what_changed() {
        let (id, state) = registered();
        let events = ReviseCommitment {
            commitment_id: id,
            title: Some(Line::parse("title", "Electronic patient records in all trusts").unwrap()),
            description: None,
            target: Some(Text::parse("target", "Every NHS trust with an EPR by Mar 2026").unwrap()),
            due_date: Some(date("2026-03-31")),
            reason: Text::parse("reason", "IPA judged Mar 2025 unachievable").unwrap(),
            effective_on: date("2023-07-31"),
        }
        .decide(&state)
        .unwrap();
        let CommitmentEvent::Revised(r) = &events[0] else {
            panic!("not a revision")
        };
        assert_eq!(r.title, None, "an unchanged title is not recorded");
        assert_eq!(r.due_date, Some(date("2026-03-31")));
        let after = given(&[
            register("epr-all-trusts")
                .decide(&CommitmentState::default())
                .unwrap()
                .remove(0),
            events[0].clone(),
        ]);
        assert_eq!(after.current.unwrap().due_date, Some(date("2026-03-31")));
    }

    #[test]
    fn a_revision_that_changes_nothing_is_refused() {
        let (id, state) = registered();
        let err = ReviseCommitment {
            commitment_id: id,
            title: None,
            description: None,
            target: None,
            due_date: Some(date("2025-03-31")),
            reason: Text::parse("reason", "no change").unwrap(),
            effective_on: date("2023-07-31"),
        }
        .decide(&state)
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid { field: "input", .. }));
    }

    #[test]
    fn a_dispute_must_name_an_assessment_of_this_commitment_and_follow_it() {
        let (id, mut state) = registered();
        let a = assess(id, "2023-02-17");
        let assessment_id = a.assessment_id;
        for e in a.decide(&state, &References::default()).unwrap() {
            state.apply(&e);
        }
        let dispute = |assessment_id, on: &str| DisputeAssessment {
            commitment_id: id,
            dispute_id: Uuid::now_v7(),
            assessment_id,
            disputed_by: Line::parse("disputedBy", "DHSC").unwrap(),
            statement: Text::parse("statement", "We reject the rating.").unwrap(),
            disputed_on: date(on),
            evidence_ids: vec![],
        };
        assert!(
            dispute(assessment_id, "2023-04-17")
                .decide(&state, &References::default())
                .is_ok()
        );
        let other = Uuid::now_v7();
        assert_eq!(
            dispute(other, "2023-04-17")
                .decide(&state, &References::default())
                .unwrap_err(),
            DomainError::NotFound {
                what: "assessment",
                id: other
            }
        );
        assert!(matches!(
            dispute(assessment_id, "2023-01-01").decide(&state, &References::default()),
            Err(DomainError::Invalid {
                field: "disputedOn",
                ..
            })
        ));
    }

    #[test]
    fn a_stale_expected_version_is_a_conflict_naming_both_versions() {
        assert_eq!(
            check_expected_version(Some(1), 3),
            Err(DomainError::Conflict {
                expected: 1,
                actual: 3
            })
        );
        assert!(check_expected_version(Some(3), 3).is_ok());
        assert!(check_expected_version(None, 3).is_ok());
    }

    #[test]
    fn payloads_round_trip_through_decode() {
        let (id, _) = registered();
        let event = crate::domain::DomainEvent::Commitment(CommitmentEvent::Assessed(
            match assess(id, "2023-02-17")
                .decide(&registered().1, &References::default())
                .unwrap()
                .remove(0)
            {
                CommitmentEvent::Assessed(a) => a,
                other => panic!("{other:?}"),
            },
        ));
        let decoded = crate::domain::DomainEvent::decode(
            event.event_type(),
            event.schema_version(),
            &event.payload(),
        )
        .unwrap();
        assert_eq!(decoded, event);
    }
}
