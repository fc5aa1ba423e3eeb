//! `Token` and `TokenRole`.

use super::*;

/// What a token may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TokenRole {
    /// Submits evidence.
    Contributor,
    /// Also assesses and disputes.
    Assessor,
    /// Also registers and revises commitments, retracts evidence, manages tokens.
    Admin,
}

impl From<TokenRole> for crate::auth::Role {
    fn from(r: TokenRole) -> Self {
        match r {
            TokenRole::Contributor => crate::auth::Role::Contributor,
            TokenRole::Assessor => crate::auth::Role::Assessor,
            TokenRole::Admin => crate::auth::Role::Admin,
        }
    }
}

/// A token as listed (never the token itself).
#[derive(SimpleObject, Clone)]
pub struct Token {
    /// Id.
    pub id: ID,
    /// Holder: the actor of the events written with it.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires, if set.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked, if so.
    pub revoked_at: Option<DateTime<Utc>>,
}
