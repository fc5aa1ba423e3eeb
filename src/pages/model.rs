//! What the pages show, as the GraphQL queries in [`SCORECARD_QUERY`] and
//! [`TIMELINE_QUERY`] answer it: the pages read through the same schema as every client, so
//! a page and a GraphQL answer can never disagree (time travel included).

use serde::Deserialize;

/// The scorecard page's query.
pub const SCORECARD_QUERY: &str = "query Scorecard($area: String, $rating: Rating, $asOf: DateTime, $validOn: Date, $after: String) {
  scorecard(area: $area, asOf: $asOf, validOn: $validOn) {
    total unrated byRating { rating count } byDeliveryStatus { status count }
  }
  commitments(area: $area, rating: $rating, asOf: $asOf, validOn: $validOn, first: 200, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      slug title area dueDate
      currentAssessment { overall deliveryStatus assessedOn assessor assessorKind }
    }
  }
  everything: commitments(first: 500) { nodes { area } }
}";

/// The timeline page's query.
pub const TIMELINE_QUERY: &str = "query Timeline($slug: String!, $asOf: DateTime, $validOn: Date) {
  commitment(slug: $slug, asOf: $asOf, validOn: $validOn) {
    id slug title description area policySource target dueDate owner announcedOn version
    currentAssessment { id overall deliveryStatus assessedOn assessor }
    assessments {
      id assessor assessorKind assessedOn overall deliveryStatus rationale evaluation recordedAt
      aspects { met funding impact appropriateness }
      evidence { id title sourceUrl }
      disputes { id disputedBy statement disputedOn }
    }
    revisions { version changes { field from to } reason effectiveOn }
    evidence { id title summary sourceUrl submittedOn kind organisation retracted }
  }
}";

/// The scorecard page's data.
#[derive(Debug, Deserialize)]
pub struct ScorecardData {
    /// Counts.
    pub scorecard: Scorecard,
    /// The commitments shown.
    pub commitments: Commitments,
    /// Every commitment's area, for the filter.
    pub everything: Everything,
}

/// Counts by rating.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scorecard {
    /// Commitments counted.
    pub total: i64,
    /// Without an overall rating.
    pub unrated: i64,
    /// By rating, best first.
    pub by_rating: Vec<RatingCount>,
    /// By delivery status.
    pub by_delivery_status: Vec<StatusCount>,
}

/// One rating's count.
#[derive(Debug, Deserialize)]
pub struct RatingCount {
    /// The rating's enum name.
    pub rating: String,
    /// How many.
    pub count: i64,
}

/// One status's count.
#[derive(Debug, Deserialize)]
pub struct StatusCount {
    /// The status's enum name.
    pub status: String,
    /// How many.
    pub count: i64,
}

/// A page of commitments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commitments {
    /// How many match.
    pub total_count: i64,
    /// Paging.
    pub page_info: PageInfo,
    /// The commitments.
    pub nodes: Vec<ListedCommitment>,
}

/// Paging of a list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// Whether more follow.
    pub has_next_page: bool,
    /// The cursor of the last shown.
    pub end_cursor: Option<String>,
}

/// Every commitment's area.
#[derive(Debug, Deserialize)]
pub struct Everything {
    /// The commitments.
    pub nodes: Vec<AreaOnly>,
}

/// A commitment's area.
#[derive(Debug, Deserialize)]
pub struct AreaOnly {
    /// The area.
    pub area: String,
}

/// A commitment in the list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedCommitment {
    /// Its slug.
    pub slug: String,
    /// Its title.
    pub title: String,
    /// Its area.
    pub area: String,
    /// Its deadline.
    pub due_date: Option<String>,
    /// Its current verdict.
    pub current_assessment: Option<Verdict>,
}

/// A verdict in brief.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Overall rating (enum name).
    pub overall: Option<String>,
    /// Delivery status (enum name).
    pub delivery_status: String,
    /// When.
    pub assessed_on: String,
    /// Who.
    pub assessor: String,
    /// What kind of body.
    pub assessor_kind: Option<String>,
}

/// The timeline page's data.
#[derive(Debug, Deserialize)]
pub struct TimelineData {
    /// The commitment, if it existed then.
    pub commitment: Option<Commitment>,
}

/// A commitment with its history.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commitment {
    /// Its id.
    pub id: String,
    /// Its slug.
    pub slug: String,
    /// Its title.
    pub title: String,
    /// What it promises.
    pub description: String,
    /// Its area.
    pub area: String,
    /// Where it was promised.
    pub policy_source: String,
    /// Its target.
    pub target: String,
    /// Its deadline.
    pub due_date: Option<String>,
    /// Who is responsible.
    pub owner: Option<String>,
    /// When it was announced.
    pub announced_on: String,
    /// Every assessment, oldest first.
    pub assessments: Vec<Assessment>,
    /// Changes to its terms.
    pub revisions: Vec<Revision>,
    /// Evidence about it.
    pub evidence: Vec<Evidence>,
}

/// An assessment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    /// Its id.
    pub id: String,
    /// Who.
    pub assessor: String,
    /// What kind of body (enum name).
    pub assessor_kind: String,
    /// When.
    pub assessed_on: String,
    /// Overall rating (enum name).
    pub overall: Option<String>,
    /// Delivery status (enum name).
    pub delivery_status: String,
    /// Why.
    pub rationale: String,
    /// The evaluation it belongs to.
    pub evaluation: Option<String>,
    /// When it was recorded.
    pub recorded_at: String,
    /// Aspect ratings.
    pub aspects: Aspects,
    /// Evidence relied on.
    pub evidence: Vec<EvidenceLink>,
    /// Disputes of it.
    pub disputes: Vec<Dispute>,
}

/// The four aspects.
#[derive(Debug, Deserialize)]
pub struct Aspects {
    /// Met or on track.
    pub met: Option<String>,
    /// Funding.
    pub funding: Option<String>,
    /// Impact.
    pub impact: Option<String>,
    /// Appropriateness.
    pub appropriateness: Option<String>,
}

/// Evidence as a link.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceLink {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Where to read it.
    pub source_url: Option<String>,
}

/// A dispute.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    /// Its id.
    pub id: String,
    /// Who disputes.
    pub disputed_by: String,
    /// What they say.
    pub statement: String,
    /// When.
    pub disputed_on: String,
}

/// A revision of the terms.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The stream version it made.
    pub version: i64,
    /// What changed.
    pub changes: Vec<Change>,
    /// Why.
    pub reason: String,
    /// When it took effect.
    pub effective_on: String,
}

/// One field changed.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The field.
    pub field: String,
    /// Before.
    pub from: Option<String>,
    /// After.
    pub to: Option<String>,
}

/// A piece of evidence.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its summary.
    pub summary: String,
    /// Where to read it.
    pub source_url: Option<String>,
    /// When submitted.
    pub submitted_on: String,
    /// Its kind (enum name).
    pub kind: String,
    /// Its organisation.
    pub organisation: Option<String>,
    /// Retracted?
    pub retracted: bool,
}
