//! Who is asking: bearer tokens, roles, and the actor recorded in every event.
//!
//! Tokens are 256 random bits shown once; the database keeps only their SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

/// What a token may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Submits evidence.
    Contributor,
    /// Also assesses commitments and disputes assessments.
    Assessor,
    /// Also registers and revises commitments and retracts evidence.
    Admin,
}

impl Role {
    /// The stored and command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Contributor => "contributor",
            Role::Assessor => "assessor",
            Role::Admin => "admin",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contributor" => Some(Role::Contributor),
            "assessor" => Some(Role::Assessor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's id (nil for an actor without a token, such as the importer run by an
    /// operator with database access).
    pub token_id: Uuid,
    /// The token's name: recorded as the actor of the events it writes.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Actor {
    /// Whether this actor holds at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// The prefix of every token, so that a leaked one is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "ct_";

/// A new random token: the prefix and 64 hex digits.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        let admin = Actor {
            token_id: Uuid::nil(),
            name: "a".into(),
            role: Role::Admin,
        };
        let contributor = Actor {
            role: Role::Contributor,
            ..admin.clone()
        };
        assert!(admin.can(Role::Assessor));
        assert!(!contributor.can(Role::Assessor));
        assert!(contributor.can(Role::Contributor));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a).len(), 32);
        assert_ne!(hash_token(&a), a.as_bytes());
    }

    #[test]
    fn bearer_headers_are_parsed_leniently_but_not_loosely() {
        assert_eq!(bearer("Bearer ct_abc"), Some("ct_abc"));
        assert_eq!(bearer("bearer  ct_abc "), Some("ct_abc"));
        assert_eq!(bearer("Basic ct_abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("ct_abc"), None);
    }
}
