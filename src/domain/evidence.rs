//! The evidence stream: submissions about one or more commitments, and their retraction.

use super::rating::EvidenceKind;
use super::text::{Line, Text, WebUrl, check_date, check_ids};
use super::{DomainError, References};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `EvidenceSubmitted`: a submission about one or more commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceSubmitted {
    /// The commitments it concerns (at least one).
    pub commitment_ids: Vec<Uuid>,
    /// Title.
    pub title: String,
    /// What it says.
    pub summary: String,
    /// Where it can be read.
    #[serde(default)]
    pub source_url: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// Their organisation.
    #[serde(default)]
    pub organisation: Option<String>,
    /// When it was submitted or published (the event's business time).
    pub submitted_on: NaiveDate,
    /// What kind of submission.
    pub kind: EvidenceKind,
}

/// `EvidenceRetracted`: the evidence no longer stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRetracted {
    /// Why.
    pub reason: String,
    /// When (the event's business time).
    pub retracted_on: NaiveDate,
}

/// The events of an evidence stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceEvent {
    /// `EvidenceSubmitted`.
    Submitted(EvidenceSubmitted),
    /// `EvidenceRetracted`.
    Retracted(EvidenceRetracted),
}

impl EvidenceEvent {
    /// The contract name of the event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            EvidenceEvent::Submitted(_) => "EvidenceSubmitted",
            EvidenceEvent::Retracted(_) => "EvidenceRetracted",
        }
    }

    /// When it happened in the world.
    pub fn occurred_on(&self) -> NaiveDate {
        match self {
            EvidenceEvent::Submitted(e) => e.submitted_on,
            EvidenceEvent::Retracted(e) => e.retracted_on,
        }
    }

    pub(super) fn payload(&self) -> serde_json::Result<Value> {
        match self {
            EvidenceEvent::Submitted(e) => serde_json::to_value(e),
            EvidenceEvent::Retracted(e) => serde_json::to_value(e),
        }
    }

    pub(super) fn decode<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Option<Result<Self, D::Error>> {
        Some(match event_type {
            "EvidenceSubmitted" => Deserialize::deserialize(payload).map(Self::Submitted),
            "EvidenceRetracted" => Deserialize::deserialize(payload).map(Self::Retracted),
            _ => return None,
        })
    }
}

/// What the rules need to know about a piece of evidence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceState {
    /// Events applied (0 = no such evidence).
    pub version: i32,
    /// Whether it was retracted.
    pub retracted: bool,
    /// When it was submitted.
    pub submitted_on: Option<NaiveDate>,
}

impl EvidenceState {
    /// Applies one event.
    pub fn apply(&mut self, event: &EvidenceEvent) {
        self.version += 1;
        match event {
            EvidenceEvent::Submitted(e) => self.submitted_on = Some(e.submitted_on),
            EvidenceEvent::Retracted(_) => self.retracted = true,
        }
    }
}

/// Submit evidence about one or more commitments.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitEvidence {
    /// The commitments it concerns.
    pub commitment_ids: Vec<Uuid>,
    /// Title.
    pub title: Line,
    /// Summary.
    pub summary: Text,
    /// Source address.
    pub source_url: Option<WebUrl>,
    /// Who submits it.
    pub submitted_by: Line,
    /// Their organisation.
    pub organisation: Option<Line>,
    /// When it was submitted or published.
    pub submitted_on: NaiveDate,
    /// What kind.
    pub kind: EvidenceKind,
}

impl SubmitEvidence {
    /// Decides the submission: it must concern at least one commitment, all of which exist.
    pub fn decide(
        self,
        state: &EvidenceState,
        refs: &References,
    ) -> Result<Vec<EvidenceEvent>, DomainError> {
        if state.version != 0 {
            return Err(DomainError::invalid(
                "id",
                "evidence with this id already exists",
            ));
        }
        if self.commitment_ids.is_empty() {
            return Err(DomainError::invalid(
                "commitmentIds",
                "evidence must concern at least one commitment",
            ));
        }
        check_ids("commitmentIds", &self.commitment_ids)?;
        if let Some(missing) = self
            .commitment_ids
            .iter()
            .find(|id| !refs.commitments.contains(id))
        {
            return Err(DomainError::NotFound {
                what: "commitment",
                id: *missing,
            });
        }
        check_date("submittedOn", self.submitted_on)?;
        Ok(vec![EvidenceEvent::Submitted(EvidenceSubmitted {
            commitment_ids: self.commitment_ids,
            title: self.title.as_str().to_owned(),
            summary: self.summary.as_str().to_owned(),
            source_url: self.source_url.map(|u| u.as_str().to_owned()),
            submitted_by: self.submitted_by.as_str().to_owned(),
            organisation: self.organisation.map(|o| o.as_str().to_owned()),
            submitted_on: self.submitted_on,
            kind: self.kind,
        })])
    }
}

/// Retract evidence.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetractEvidence {
    /// The evidence.
    pub evidence_id: Uuid,
    /// Why.
    pub reason: Text,
    /// When.
    pub retracted_on: NaiveDate,
}

impl RetractEvidence {
    /// Decides the retraction: the evidence must exist and not be retracted already.
    pub fn decide(self, state: &EvidenceState) -> Result<Vec<EvidenceEvent>, DomainError> {
        if state.version == 0 {
            return Err(DomainError::NotFound {
                what: "evidence",
                id: self.evidence_id,
            });
        }
        if state.retracted {
            return Err(DomainError::invalid(
                "evidenceId",
                "this evidence is already retracted",
            ));
        }
        check_date("retractedOn", self.retracted_on)?;
        if let Some(submitted) = state.submitted_on.filter(|s| self.retracted_on < *s) {
            return Err(DomainError::invalid(
                "retractedOn",
                format!("cannot be before the evidence was submitted ({submitted})"),
            ));
        }
        Ok(vec![EvidenceEvent::Retracted(EvidenceRetracted {
            reason: self.reason.as_str().to_owned(),
            retracted_on: self.retracted_on,
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commitment::tests::date;

    fn submit(commitment_ids: Vec<Uuid>) -> SubmitEvidence {
        SubmitEvidence {
            commitment_ids,
            title: Line::parse("title", "GDE evaluation executive summary").unwrap(),
            summary: Text::parse("summary", "51 providers.").unwrap(),
            source_url: Some(
                WebUrl::parse("sourceUrl", "https://transform.england.nhs.uk/").unwrap(),
            ),
            submitted_by: Line::parse("submittedBy", "University of Edinburgh evaluation team")
                .unwrap(),
            organisation: None,
            submitted_on: date("2021-09-29"),
            kind: EvidenceKind::Evaluation,
        }
    }

    #[test]
    fn evidence_must_concern_at_least_one_existing_commitment() {
        let known = Uuid::now_v7();
        let unknown = Uuid::now_v7();
        let mut refs = References::default();
        refs.commitments.insert(known);
        assert!(
            submit(vec![known])
                .decide(&EvidenceState::default(), &refs)
                .is_ok()
        );
        assert!(matches!(
            submit(vec![]).decide(&EvidenceState::default(), &refs),
            Err(DomainError::Invalid {
                field: "commitmentIds",
                ..
            })
        ));
        assert_eq!(
            submit(vec![known, unknown])
                .decide(&EvidenceState::default(), &refs)
                .unwrap_err(),
            DomainError::NotFound {
                what: "commitment",
                id: unknown
            }
        );
    }

    #[test]
    fn retracted_evidence_cannot_be_retracted_again() {
        let mut state = EvidenceState::default();
        let mut refs = References::default();
        let c = Uuid::now_v7();
        refs.commitments.insert(c);
        for e in submit(vec![c]).decide(&state, &refs).unwrap() {
            state.apply(&e);
        }
        let retract = || RetractEvidence {
            evidence_id: Uuid::now_v7(),
            reason: Text::parse("reason", "Superseded by the full report").unwrap(),
            retracted_on: date("2022-01-10"),
        };
        for e in retract().decide(&state).unwrap() {
            state.apply(&e);
        }
        assert!(state.retracted);
        assert!(matches!(
            retract().decide(&state),
            Err(DomainError::Invalid {
                field: "evidenceId",
                ..
            })
        ));
    }

    #[test]
    fn retracting_unknown_evidence_is_not_found() {
        let cmd = RetractEvidence {
            evidence_id: Uuid::now_v7(),
            reason: Text::parse("reason", "x").unwrap(),
            retracted_on: date("2022-01-10"),
        };
        let id = cmd.evidence_id;
        assert_eq!(
            cmd.decide(&EvidenceState::default()).unwrap_err(),
            DomainError::NotFound {
                what: "evidence",
                id
            }
        );
    }
}
