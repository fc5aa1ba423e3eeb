//! Mutation inputs and their parsing into validated domain commands. Every failure names the
//! input field; nothing here touches the database.

use super::error::ApiError;
use super::scalars::Date;
use super::types::{AssessorKind, DeliveryStatus, EvidenceKind, Rating};
use crate::domain::commitment::{
    AssessCommitment, DisputeAssessment, RegisterCommitment, ReviseCommitment,
};
use crate::domain::erasure::ErasePersonalData;
use crate::domain::evidence::{RetractEvidence, SubmitEvidence};
use crate::domain::rating as domain;
use crate::domain::text::{Line, Slug, Text, WebUrl};
use async_graphql::{ID, InputObject};
use chrono::{NaiveDate, Utc};
use uuid::Uuid;

/// The longest idempotency key.
pub const MAX_KEY: usize = 200;

/// Parses an `ID` argument as a UUID.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::bad_input(field, "not a valid id"))
}

fn parse_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>, ApiError> {
    ids.iter().map(|id| parse_id(field, id)).collect()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn business_date(date: Option<Date>) -> NaiveDate {
    date.map(|d| d.0).unwrap_or_else(today)
}

fn opt<T>(
    value: &Option<String>,
    parse: impl Fn(&str) -> Result<T, crate::domain::DomainError>,
) -> Result<Option<T>, ApiError> {
    value.as_deref().map(parse).transpose().map_err(Into::into)
}

/// Checks an idempotency key.
pub fn idempotency_key(key: &Option<String>) -> Result<Option<String>, ApiError> {
    match key {
        None => Ok(None),
        Some(k) if k.is_empty() || k.len() > MAX_KEY || k.chars().any(char::is_control) => {
            Err(ApiError::bad_input(
                "idempotencyKey",
                format!("must be 1 to {MAX_KEY} characters without control characters"),
            ))
        }
        Some(k) => Ok(Some(k.clone())),
    }
}

/// Registers a commitment (admin).
#[derive(InputObject)]
pub struct RegisterCommitmentInput {
    /// Unique key: lower-case letters and digits joined by single hyphens.
    pub slug: String,
    pub title: String,
    pub description: String,
    /// The policy area.
    pub area: String,
    /// The document or speech that made the promise.
    pub policy_source: String,
    /// The measurable target.
    pub target: String,
    pub due_date: Option<Date>,
    pub owner: Option<String>,
    /// When the promise was made (default: today).
    pub announced_on: Option<Date>,
    /// Makes a retry return the first result and write nothing.
    pub idempotency_key: Option<String>,
}

impl RegisterCommitmentInput {
    /// The validated command.
    pub fn parse(&self) -> Result<RegisterCommitment, ApiError> {
        Ok(RegisterCommitment {
            slug: Slug::parse(&self.slug)?,
            title: Line::parse("title", &self.title)?,
            description: Text::parse("description", &self.description)?,
            area: Line::parse("area", &self.area)?,
            policy_source: Line::parse("policySource", &self.policy_source)?,
            target: Text::parse("target", &self.target)?,
            due_date: self.due_date.map(|d| d.0),
            owner: opt(&self.owner, |s| Line::parse("owner", s))?,
            announced_on: business_date(self.announced_on),
        })
    }
}

/// Revises a commitment's terms (admin): give only what changes.
#[derive(InputObject)]
pub struct ReviseCommitmentInput {
    pub commitment_id: ID,
    /// The version the client last saw; a mismatch is a CONFLICT.
    pub expected_version: Option<i32>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub target: Option<String>,
    /// The new deadline.
    pub due_date: Option<Date>,
    /// Why the terms changed.
    pub reason: String,
    /// When the change took effect (default: today).
    pub effective_on: Option<Date>,
    pub idempotency_key: Option<String>,
}

impl ReviseCommitmentInput {
    /// The validated command.
    pub fn parse(&self) -> Result<ReviseCommitment, ApiError> {
        Ok(ReviseCommitment {
            commitment_id: parse_id("commitmentId", &self.commitment_id)?,
            title: opt(&self.title, |s| Line::parse("title", s))?,
            description: opt(&self.description, |s| Text::parse("description", s))?,
            target: opt(&self.target, |s| Text::parse("target", s))?,
            due_date: self.due_date.map(|d| d.0),
            reason: Text::parse("reason", &self.reason)?,
            effective_on: business_date(self.effective_on),
        })
    }
}

/// Aspect ratings of an assessment; leave out what was not rated.
#[derive(InputObject, Default)]
pub struct AspectsInput {
    pub met: Option<Rating>,
    pub funding: Option<Rating>,
    pub impact: Option<Rating>,
    pub appropriateness: Option<Rating>,
}

/// Records a verdict on a commitment (assessor).
#[derive(InputObject)]
pub struct AssessCommitmentInput {
    pub commitment_id: ID,
    pub expected_version: Option<i32>,
    /// Who gives the verdict, e.g. "HSCC Expert Panel".
    pub assessor: String,
    pub assessor_kind: AssessorKind,
    /// The date of the verdict (default: today).
    pub assessed_on: Option<Date>,
    pub overall: Option<Rating>,
    pub aspects: Option<AspectsInput>,
    pub delivery_status: DeliveryStatus,
    pub rationale: String,
    /// Evidence the verdict relies on.
    #[graphql(default)]
    pub evidence_ids: Vec<ID>,
    /// The evaluation it belongs to, e.g. "HC 780".
    pub evaluation: Option<String>,
    pub idempotency_key: Option<String>,
}

impl AssessCommitmentInput {
    /// The validated command (its assessment id is chosen by the handler).
    pub fn parse(&self) -> Result<AssessCommitment, ApiError> {
        let a = self.aspects.as_ref();
        let r = |f: fn(&AspectsInput) -> Option<Rating>| a.and_then(f).map(domain::Rating::from);
        Ok(AssessCommitment {
            commitment_id: parse_id("commitmentId", &self.commitment_id)?,
            assessment_id: Uuid::nil(),
            assessor: Line::parse("assessor", &self.assessor)?,
            assessor_kind: self.assessor_kind.into(),
            assessed_on: business_date(self.assessed_on),
            overall: self.overall.map(Into::into),
            aspects: domain::Aspects {
                met: r(|a| a.met),
                funding: r(|a| a.funding),
                impact: r(|a| a.impact),
                appropriateness: r(|a| a.appropriateness),
            },
            delivery_status: self.delivery_status.into(),
            rationale: Text::parse("rationale", &self.rationale)?,
            evidence_ids: parse_ids("evidenceIds", &self.evidence_ids)?,
            evaluation: opt(&self.evaluation, |s| Line::parse("evaluation", s))?,
        })
    }
}

/// Formally contests an assessment (assessor).
#[derive(InputObject)]
pub struct DisputeAssessmentInput {
    pub assessment_id: ID,
    /// The commitment's version the client last saw.
    pub expected_version: Option<i32>,
    /// Who contests it, e.g. "Department of Health and Social Care".
    pub disputed_by: String,
    pub statement: String,
    /// When (default: today).
    pub disputed_on: Option<Date>,
    #[graphql(default)]
    pub evidence_ids: Vec<ID>,
    pub idempotency_key: Option<String>,
}

impl DisputeAssessmentInput {
    /// The validated command (its commitment and dispute ids are filled by the handler).
    pub fn parse(&self) -> Result<DisputeAssessment, ApiError> {
        Ok(DisputeAssessment {
            commitment_id: Uuid::nil(),
            dispute_id: Uuid::nil(),
            assessment_id: parse_id("assessmentId", &self.assessment_id)?,
            disputed_by: Line::parse("disputedBy", &self.disputed_by)?,
            statement: Text::parse("statement", &self.statement)?,
            disputed_on: business_date(self.disputed_on),
            evidence_ids: parse_ids("evidenceIds", &self.evidence_ids)?,
        })
    }
}

/// Submits evidence about one or more commitments (contributor).
#[derive(InputObject)]
pub struct SubmitEvidenceInput {
    /// The commitments it concerns (at least one).
    pub commitment_ids: Vec<ID>,
    pub title: String,
    pub summary: String,
    /// An http or https address where it can be read.
    pub source_url: Option<String>,
    pub submitted_by: String,
    pub organisation: Option<String>,
    /// When it was submitted or published (default: today).
    pub submitted_on: Option<Date>,
    /// What kind of submission (default: OTHER).
    pub kind: Option<EvidenceKind>,
    pub idempotency_key: Option<String>,
}

impl SubmitEvidenceInput {
    /// The validated command.
    pub fn parse(&self) -> Result<SubmitEvidence, ApiError> {
        Ok(SubmitEvidence {
            commitment_ids: parse_ids("commitmentIds", &self.commitment_ids)?,
            title: Line::parse("title", &self.title)?,
            summary: Text::parse("summary", &self.summary)?,
            source_url: opt(&self.source_url, |s| WebUrl::parse("sourceUrl", s))?,
            submitted_by: Line::parse("submittedBy", &self.submitted_by)?,
            organisation: opt(&self.organisation, |s| Line::parse("organisation", s))?,
            submitted_on: business_date(self.submitted_on),
            kind: self
                .kind
                .map(Into::into)
                .unwrap_or(domain::EvidenceKind::Other),
        })
    }
}

/// Retracts evidence (admin).
#[derive(InputObject)]
pub struct RetractEvidenceInput {
    pub evidence_id: ID,
    pub expected_version: Option<i32>,
    pub reason: String,
    /// When (default: today).
    pub retracted_on: Option<Date>,
    pub idempotency_key: Option<String>,
}

impl RetractEvidenceInput {
    /// The validated command.
    pub fn parse(&self) -> Result<RetractEvidence, ApiError> {
        Ok(RetractEvidence {
            evidence_id: parse_id("evidenceId", &self.evidence_id)?,
            reason: Text::parse("reason", &self.reason)?,
            retracted_on: business_date(self.retracted_on),
        })
    }
}

/// Erases a person's data on request (admin).
#[derive(InputObject)]
pub struct ErasePersonalDataInput {
    /// The value to erase wherever a personal field holds it: a submitter's or a token
    /// holder's name, exactly as stored.
    pub name: String,
    /// Why (the request's reference, its legal basis); recorded in the `PersonalDataErased`
    /// event, which never holds the name.
    pub reason: String,
    pub idempotency_key: Option<String>,
}

impl ErasePersonalDataInput {
    /// The validated command.
    pub fn parse(&self) -> Result<ErasePersonalData, ApiError> {
        Ok(ErasePersonalData::parse(&self.name, &self.reason)?)
    }
}
