//! `erasePersonalData` (DESIGN §11): erase every stored value of a name in one transaction
//! and record a `PersonalDataErased` event naming the erased commitments and the reason.
//!
//! Unlike the other commands it changes no aggregate, so it runs alone rather than through
//! the committers: it takes the erasure lock, claims its idempotency key, erases
//! ([`crate::store::erasure`]), appends its event in a stream of its own, and commits.
//! Nothing is recorded when nothing matched.
//!
//! The idempotency record of an erasure hashes only the command's kind and reason: a hash of
//! the name, however salted, would let anyone holding the database confirm a guessed name,
//! which is what the erasure is for. A key retried with the same reason replays the first
//! answer whatever the name; a key is for retrying one request, never for a second one.

use super::*;
use crate::domain::erasure::{ErasePersonalData, ErasureEvent, PersonalDataErased};
use crate::store::{erasure, personal};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureOutcome {
    /// How many stored values were erased (event values and token names).
    pub erased_values: u64,
    /// The tokens revoked because their holder's name was erased.
    pub revoked_tokens: Vec<Uuid>,
    /// True when an idempotency key replayed an earlier run and nothing was erased now.
    pub replayed: bool,
}

impl Commands {
    /// Erases every stored value equal to the name (admin).
    #[tracing::instrument(skip_all, fields(token = %ctx.actor.token_id))]
    pub async fn erase_personal_data(
        &self,
        ctx: &CommandContext,
        cmd: ErasePersonalData,
    ) -> Result<ErasureOutcome, CommandError> {
        require(ctx, Role::Admin)?;
        // Rare enough that its answer asks the database where the log stands.
        ctx.written.unknown();
        let core = &self.core;
        let mut tx = core.pool.begin().await?;
        // The append gate comes first: nothing before it may write (ADR 0013).
        let stream = Uuid::now_v7();
        let head = event_store::new_stream(&mut tx, stream, StreamType::Erasure).await?;
        check_token(&mut tx, &ctx.actor).await?;
        let scope = ctx.actor.token_id.to_string();
        let key = ctx.idempotency_key.as_deref();
        if let Some(key) = key {
            let hash = idempotency::command_hash(
                "erasePersonalData",
                &json!({ "reason": cmd.reason.as_str() }),
            );
            match idempotency::claim(&mut tx, &scope, key, &hash).await? {
                Claim::Fresh => {}
                Claim::Replay(outcome) => {
                    return Ok(ErasureOutcome {
                        erased_values: outcome["erasedValues"].as_u64().unwrap_or(0),
                        revoked_tokens: Vec::new(),
                        replayed: true,
                    });
                }
                Claim::Mismatch => return Err(CommandError::KeyReused),
            }
        }
        let name = cmd.name.as_str();
        let erased = erasure::erase(&mut tx, name).await?;
        let mut recorded = None;
        if erased.values() > 0 {
            let today = chrono::Utc::now().date_naive();
            let event = DomainEvent::Erasure(ErasureEvent::Erased(PersonalDataErased {
                reason: cmd.reason.as_str().to_owned(),
                commitments: erased
                    .commitments
                    .iter()
                    .map(|c| STANDARD.encode(c))
                    .collect(),
                token_names: erased.tokens.len() as u32,
                erased_on: today,
            }));
            // An administrator erasing their own name is recorded as `[erased]` too.
            let actor = if ctx.actor.name == name {
                personal::ERASED.to_owned()
            } else {
                ctx.actor.name.clone()
            };
            let metadata = Metadata {
                actor,
                role: ctx.actor.role.as_str().to_owned(),
                request_id: ctx.request_id.clone(),
                idempotency_key: ctx.idempotency_key.clone(),
            };
            event_store::append(&mut tx, &head, &[(event, today)], &metadata).await?;
            recorded = Some(stream);
        }
        if let Some(key) = key {
            let outcome = json!({ "erasedValues": erased.values(), "id": recorded });
            idempotency::complete(&mut tx, &scope, key, &outcome).await?;
        }
        tx.commit().await?;
        if recorded.is_some() {
            metrics::counter!("event_log_appends_total").increment(1);
        }
        personal::forget(erased.commitments.iter().copied());
        if recorded.is_some() {
            core.feed.announce();
        }
        tracing::info!(
            erased_values = erased.values(),
            revoked_tokens = erased.tokens.len(),
            "erased personal data on request"
        );
        Ok(ErasureOutcome {
            erased_values: erased.values(),
            revoked_tokens: erased.tokens,
            replayed: false,
        })
    }
}
