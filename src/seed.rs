//! The seed data set: a JSON file of commitments, evidence, assessments, revisions and
//! disputes with their real dates, imported through the same commands as the API.
//!
//! Each item is imported with an idempotency key derived from its key in the file, so
//! importing the same file twice adds nothing, and an item added to the file later is
//! imported alone.

use crate::auth::{Actor, Role};
use crate::commands::{CommandContext, CommandError, Commands};
use crate::domain::DomainError;
use crate::domain::commitment::{
    AssessCommitment, DisputeAssessment, RegisterCommitment, ReviseCommitment,
};
use crate::domain::evidence::SubmitEvidence;
use crate::domain::rating::{Aspects, AssessorKind, DeliveryStatus, EvidenceKind, Rating};
use crate::domain::text::{Line, Slug, Text, WebUrl};
use crate::progress::Progress;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

/// The actor recorded on imported events.
pub const IMPORT_ACTOR: &str = "seed-import";

/// A seed file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    /// What the data set is.
    pub name: String,
    /// Where its facts come from, and conventions (kept for readers; not imported).
    #[serde(default)]
    pub sources: Vec<serde_json::Value>,
    /// Commitments.
    pub commitments: Vec<SeedCommitment>,
    /// Evidence.
    pub evidence: Vec<SeedEvidence>,
    /// Assessments.
    pub assessments: Vec<SeedAssessment>,
    /// Revisions.
    #[serde(default)]
    pub revisions: Vec<SeedRevision>,
    /// Disputes.
    #[serde(default)]
    pub disputes: Vec<SeedDispute>,
}

/// A commitment in the seed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCommitment {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub area: String,
    pub policy_source: String,
    pub target: String,
    pub due_date: Option<NaiveDate>,
    pub owner: Option<String>,
    pub announced_on: NaiveDate,
    /// How the date was established, where the source does not give it exactly.
    pub date_note: Option<String>,
    /// A caveat on the sourcing (kept for readers; not imported).
    pub note: Option<String>,
}

/// Evidence in the seed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedEvidence {
    pub key: String,
    /// Slugs of the commitments it concerns.
    pub commitments: Vec<String>,
    pub title: String,
    pub summary: String,
    pub source_url: Option<String>,
    pub submitted_by: String,
    pub organisation: Option<String>,
    pub submitted_on: NaiveDate,
    pub date_note: Option<String>,
    pub kind: EvidenceKind,
}

/// An assessment in the seed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAssessment {
    pub key: String,
    pub commitment: String,
    pub assessor: String,
    pub assessor_kind: AssessorKind,
    pub assessed_on: NaiveDate,
    pub overall: Option<Rating>,
    #[serde(default)]
    pub aspects: Aspects,
    pub delivery_status: DeliveryStatus,
    /// The status in the source's own words.
    pub source_status: Option<String>,
    pub rationale: String,
    /// Keys of the evidence relied on.
    #[serde(default)]
    pub evidence: Vec<String>,
    pub evaluation: Option<String>,
}

/// A revision in the seed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRevision {
    pub key: String,
    pub commitment: String,
    pub title: Option<String>,
    pub target: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub reason: String,
    pub effective_on: NaiveDate,
    pub date_note: Option<String>,
}

/// A dispute in the seed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedDispute {
    pub key: String,
    /// Key of the assessment disputed.
    pub assessment: String,
    pub disputed_by: String,
    pub statement: String,
    pub disputed_on: NaiveDate,
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The file is not a valid seed file.
    #[error("invalid seed file: {0}")]
    Format(#[from] serde_json::Error),
    /// An item refers to a key the file does not define.
    #[error("{item} refers to unknown {what} {key:?}")]
    UnknownKey {
        /// The referring item.
        item: String,
        /// What kind of key.
        what: &'static str,
        /// The key.
        key: String,
    },
    /// An item was refused.
    #[error("{item}: {source}")]
    Command {
        /// The item.
        item: String,
        /// Why.
        source: CommandError,
    },
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Items written now.
    pub written: usize,
    /// Items already present (replayed by their idempotency key).
    pub already_present: usize,
}

/// Reads a seed file.
pub fn load(path: &Path) -> Result<SeedFile, SeedError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SeedError::Io(path.display().to_string(), e))?;
    Ok(serde_json::from_str(&text)?)
}

/// One step of the import in business-date order.
enum Step<'a> {
    Assess(&'a SeedAssessment),
    Revise(&'a SeedRevision),
    Dispute(&'a SeedDispute),
}

struct Importer<'a> {
    commands: &'a Commands,
    progress: &'a Progress,
    actor: Actor,
    commitments: HashMap<String, Uuid>,
    evidence: HashMap<String, Uuid>,
    assessments: HashMap<String, Uuid>,
    report: ImportReport,
}

fn invalid(item: &str, e: DomainError) -> SeedError {
    SeedError::Command {
        item: item.to_owned(),
        source: CommandError::Domain(e),
    }
}

fn lookup(
    map: &HashMap<String, Uuid>,
    item: &str,
    what: &'static str,
    key: &str,
) -> Result<Uuid, SeedError> {
    map.get(key).copied().ok_or_else(|| SeedError::UnknownKey {
        item: item.to_owned(),
        what,
        key: key.to_owned(),
    })
}

impl Importer<'_> {
    fn ctx(&self, key: String) -> CommandContext {
        CommandContext {
            actor: self.actor.clone(),
            request_id: None,
            idempotency_key: Some(key),
            written: Default::default(),
        }
    }

    fn count(
        &mut self,
        item: &str,
        r: Result<crate::commands::Outcome, CommandError>,
    ) -> Result<Uuid, SeedError> {
        let outcome = r.map_err(|source| SeedError::Command {
            item: item.to_owned(),
            source,
        })?;
        self.progress.advance(1);
        if outcome.replayed {
            self.report.already_present += 1;
        } else {
            self.report.written += 1;
        }
        Ok(outcome.id)
    }
}

/// Imports `seed` through `commands`. Idempotent.
pub async fn import(commands: &Commands, seed: &SeedFile) -> Result<ImportReport, SeedError> {
    import_with(commands, seed, &Progress::hidden()).await
}

/// [`import`], reporting each item to `progress`.
pub async fn import_with(
    commands: &Commands,
    seed: &SeedFile,
    progress: &Progress,
) -> Result<ImportReport, SeedError> {
    let items = seed.commitments.len()
        + seed.evidence.len()
        + seed.assessments.len()
        + seed.revisions.len()
        + seed.disputes.len();
    progress.phase("importing", Some(items as u64));
    let mut im = Importer {
        commands,
        progress,
        actor: Actor {
            token_id: Uuid::nil(),
            name: IMPORT_ACTOR.to_owned(),
            role: Role::Admin,
        },
        commitments: HashMap::new(),
        evidence: HashMap::new(),
        assessments: HashMap::new(),
        report: ImportReport::default(),
    };

    for c in &seed.commitments {
        let item = format!("commitment {}", c.slug);
        let parsed = (|| {
            Ok(RegisterCommitment {
                slug: Slug::parse(&c.slug)?,
                title: Line::parse("title", &c.title)?,
                description: Text::parse("description", &c.description)?,
                area: Line::parse("area", &c.area)?,
                policy_source: Line::parse("policySource", &c.policy_source)?,
                target: Text::parse("target", &c.target)?,
                due_date: c.due_date,
                owner: c
                    .owner
                    .as_deref()
                    .map(|o| Line::parse("owner", o))
                    .transpose()?,
                announced_on: c.announced_on,
            })
        })()
        .map_err(|e| invalid(&item, e))?;
        let ctx = im.ctx(format!("seed:commitment:{}", c.slug));
        let r = im.commands.register_commitment(&ctx, parsed).await;
        let id = im.count(&item, r)?;
        im.commitments.insert(c.slug.clone(), id);
    }

    for e in &seed.evidence {
        let item = format!("evidence {}", e.key);
        let commitment_ids = e
            .commitments
            .iter()
            .map(|s| lookup(&im.commitments, &item, "commitment", s))
            .collect::<Result<Vec<_>, _>>()?;
        let parsed = (|| {
            Ok(SubmitEvidence {
                commitment_ids,
                title: Line::parse("title", &e.title)?,
                summary: Text::parse("summary", &e.summary)?,
                source_url: e
                    .source_url
                    .as_deref()
                    .map(|u| WebUrl::parse("sourceUrl", u))
                    .transpose()?,
                submitted_by: Line::parse("submittedBy", &e.submitted_by)?,
                organisation: e
                    .organisation
                    .as_deref()
                    .map(|o| Line::parse("organisation", o))
                    .transpose()?,
                submitted_on: e.submitted_on,
                kind: e.kind,
            })
        })()
        .map_err(|err| invalid(&item, err))?;
        let ctx = im.ctx(format!("seed:evidence:{}", e.key));
        let r = im.commands.submit_evidence(&ctx, parsed).await;
        let id = im.count(&item, r)?;
        im.evidence.insert(e.key.clone(), id);
    }

    // Verdicts, revisions and disputes in the order they happened, so that the log reads
    // as the story did.
    let mut steps: Vec<(NaiveDate, Step<'_>)> = Vec::new();
    steps.extend(
        seed.assessments
            .iter()
            .map(|a| (a.assessed_on, Step::Assess(a))),
    );
    steps.extend(
        seed.revisions
            .iter()
            .map(|r| (r.effective_on, Step::Revise(r))),
    );
    steps.extend(
        seed.disputes
            .iter()
            .map(|d| (d.disputed_on, Step::Dispute(d))),
    );
    steps.sort_by_key(|(date, _)| *date);

    for (_, step) in steps {
        match step {
            Step::Assess(a) => {
                let item = format!("assessment {}", a.key);
                let commitment_id = lookup(&im.commitments, &item, "commitment", &a.commitment)?;
                let evidence_ids = a
                    .evidence
                    .iter()
                    .map(|k| lookup(&im.evidence, &item, "evidence", k))
                    .collect::<Result<Vec<_>, _>>()?;
                let parsed = (|| {
                    Ok(AssessCommitment {
                        commitment_id,
                        assessment_id: Uuid::nil(),
                        assessor: Line::parse("assessor", &a.assessor)?,
                        assessor_kind: a.assessor_kind,
                        assessed_on: a.assessed_on,
                        overall: a.overall,
                        aspects: a.aspects,
                        delivery_status: a.delivery_status,
                        rationale: Text::parse("rationale", &a.rationale)?,
                        evidence_ids,
                        evaluation: a
                            .evaluation
                            .as_deref()
                            .map(|v| Line::parse("evaluation", v))
                            .transpose()?,
                    })
                })()
                .map_err(|e| invalid(&item, e))?;
                let ctx = im.ctx(format!("seed:assessment:{}", a.key));
                let r = im.commands.assess_commitment(&ctx, parsed, None).await;
                let id = im.count(&item, r)?;
                im.assessments.insert(a.key.clone(), id);
            }
            Step::Revise(r) => {
                let item = format!("revision {}", r.key);
                let commitment_id = lookup(&im.commitments, &item, "commitment", &r.commitment)?;
                let parsed = (|| {
                    Ok(ReviseCommitment {
                        commitment_id,
                        title: r
                            .title
                            .as_deref()
                            .map(|t| Line::parse("title", t))
                            .transpose()?,
                        description: None,
                        target: r
                            .target
                            .as_deref()
                            .map(|t| Text::parse("target", t))
                            .transpose()?,
                        due_date: r.due_date,
                        reason: Text::parse("reason", &r.reason)?,
                        effective_on: r.effective_on,
                    })
                })()
                .map_err(|e| invalid(&item, e))?;
                let ctx = im.ctx(format!("seed:revision:{}", r.key));
                let result = im.commands.revise_commitment(&ctx, parsed, None).await;
                im.count(&item, result)?;
            }
            Step::Dispute(d) => {
                let item = format!("dispute {}", d.key);
                let assessment_id = lookup(&im.assessments, &item, "assessment", &d.assessment)?;
                let evidence_ids = d
                    .evidence
                    .iter()
                    .map(|k| lookup(&im.evidence, &item, "evidence", k))
                    .collect::<Result<Vec<_>, _>>()?;
                let parsed = (|| {
                    Ok(DisputeAssessment {
                        commitment_id: Uuid::nil(),
                        dispute_id: Uuid::nil(),
                        assessment_id,
                        disputed_by: Line::parse("disputedBy", &d.disputed_by)?,
                        statement: Text::parse("statement", &d.statement)?,
                        disputed_on: d.disputed_on,
                        evidence_ids,
                    })
                })()
                .map_err(|e| invalid(&item, e))?;
                let ctx = im.ctx(format!("seed:dispute:{}", d.key));
                let r = im.commands.dispute_assessment(&ctx, parsed, None).await;
                im.count(&item, r)?;
            }
        }
    }
    progress.finish();
    Ok(im.report)
}
