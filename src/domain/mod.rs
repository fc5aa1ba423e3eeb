//! The domain: what a commitment, a piece of evidence and an assessment are, the events that
//! record them, the commands that ask for change and the rules that decide it.
//!
//! Nothing here does I/O or knows about SQL, HTTP or GraphQL. A command is decided by a pure
//! function of the stream's current state (folded from its events) and the facts about other
//! streams it refers to ([`References`]); applying an event to a state cannot fail.

pub mod commitment;
pub mod erasure;
pub mod error;
pub mod event;
pub mod evidence;
pub mod rating;
pub mod scorecard;
pub mod text;

pub use error::DomainError;
pub use event::{DomainEvent, StreamType};

use std::collections::HashMap;
use uuid::Uuid;

/// Facts about the streams a command refers to, looked up by the caller before deciding.
///
/// Keeping these as plain data lets every cross-stream rule ("evidence must concern an existing
/// commitment", "a retracted item cannot be cited") be tested without a database.
#[derive(Debug, Default, Clone)]
pub struct References {
    /// Commitments that exist, among those the command names.
    pub commitments: std::collections::HashSet<Uuid>,
    /// Evidence that exists, among those the command names, with whether it was retracted.
    pub evidence: HashMap<Uuid, EvidenceStatus>,
}

/// What a command needs to know about a piece of evidence it cites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceStatus {
    /// The evidence stands.
    Current,
    /// The evidence was retracted and may no longer be cited.
    Retracted,
}

impl References {
    /// Takes in an event just decided on `stream`, for the commands decided after it against
    /// the same facts (in one transaction).
    pub fn note(&mut self, stream: Uuid, event: &DomainEvent) {
        use commitment::CommitmentEvent;
        use evidence::EvidenceEvent;
        match event {
            DomainEvent::Commitment(CommitmentEvent::Registered(_)) => {
                self.commitments.insert(stream);
            }
            DomainEvent::Evidence(EvidenceEvent::Submitted(_)) => {
                self.evidence.insert(stream, EvidenceStatus::Current);
            }
            DomainEvent::Evidence(EvidenceEvent::Retracted(_)) => {
                self.evidence.insert(stream, EvidenceStatus::Retracted);
            }
            _ => {}
        }
    }

    /// Checks that every cited evidence id exists and is not retracted.
    pub fn require_citable_evidence(&self, ids: &[Uuid]) -> Result<(), DomainError> {
        for id in ids {
            match self.evidence.get(id) {
                None => {
                    return Err(DomainError::NotFound {
                        what: "evidence",
                        id: *id,
                    });
                }
                Some(EvidenceStatus::Retracted) => {
                    return Err(DomainError::invalid(
                        "evidenceIds",
                        format!("evidence {id} was retracted and cannot be cited"),
                    ));
                }
                Some(EvidenceStatus::Current) => {}
            }
        }
        Ok(())
    }
}
