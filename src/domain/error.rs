//! Why the domain refuses a command.

use uuid::Uuid;

/// A command broke a rule of the domain. Every variant is the caller's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is invalid; `field` names it as the client sent it.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field, in the client's spelling (e.g. `sourceUrl`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The command refers to something that does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// The kind of thing (`commitment`, `evidence`, `assessment`).
        what: &'static str,
        /// The id the command named.
        id: Uuid,
    },
    /// The command expected the stream at another version (optimistic concurrency).
    #[error("expected version {expected} but the stream is at version {actual}")]
    Conflict {
        /// The version the command expected.
        expected: i32,
        /// The stream's actual version.
        actual: i32,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
