//! Mutations: each records one immutable event with the actor who made it, and answers with
//! the state it produced (read back from the projections it updated, or for a verdict, the
//! row the command wrote there).

use super::RequestInfo;
use super::error::{ApiError, ApiResult, OrApi};
use super::inputs::{
    AssessCommitmentInput, DisputeAssessmentInput, ErasePersonalDataInput, RegisterCommitmentInput,
    RetractEvidenceInput, ReviseCommitmentInput, SubmitEvidenceInput, idempotency_key,
};
use super::types::{Assessment, Commitment, Dispute, Evidence, Source};
use crate::commands::{CommandContext, Commands};
use crate::store::read;
use async_graphql::{Context, Object};
use sqlx::PgPool;
use uuid::Uuid;

/// The root of writes. Every mutation needs a bearer token.
pub struct Mutation;

fn command_context(ctx: &Context<'_>, key: &Option<String>) -> ApiResult<CommandContext> {
    let info = ctx.data::<RequestInfo>()?;
    let actor = info
        .actor
        .clone()
        .ok_or_else(|| {
            ApiError::Unauthenticated("this mutation needs Authorization: Bearer <token>".into())
        })
        .api()?;
    Ok(CommandContext {
        actor,
        request_id: info.request_id.clone(),
        idempotency_key: idempotency_key(key).api()?,
        written: info.written.clone(),
    })
}

/// Notes a write made outside the commands, whose log position only the database knows.
fn wrote_elsewhere(ctx: &Context<'_>) -> ApiResult<()> {
    ctx.data::<RequestInfo>()?.written.unknown();
    Ok(())
}

async fn commitment(ctx: &Context<'_>, id: Uuid) -> ApiResult<Commitment> {
    let rows = read::commitments_by_ids(ctx.data::<PgPool>()?, &[id])
        .await
        .api()?;
    rows.into_iter()
        .next()
        .map(|r| Source::Live.commitment(r))
        .ok_or(ApiError::Internal)
        .api()
}

async fn evidence(ctx: &Context<'_>, id: Uuid) -> ApiResult<Evidence> {
    let rows = read::evidence_by_ids(ctx.data::<PgPool>()?, &[id])
        .await
        .api()?;
    rows.into_iter()
        .next()
        .map(|r| Source::Live.evidence(r))
        .ok_or(ApiError::Internal)
        .api()
}

/// A webhook to create.
#[derive(async_graphql::InputObject)]
pub struct CreateWebhookInput {
    /// An `http://` or `https://` address on the public internet (private and loopback
    /// addresses are refused unless the server allows them).
    pub url: String,
    /// Event types to deliver, e.g. `["CommitmentAssessed"]`; empty: every type.
    #[graphql(default)]
    pub event_types: Vec<String>,
    /// What it is for (at most 500 characters).
    #[graphql(default)]
    pub description: String,
}

/// A token just created: shown this once.
#[derive(async_graphql::SimpleObject)]
pub struct CreatedToken {
    /// Its id (for listing and revoking).
    pub id: async_graphql::ID,
    /// The token itself; it is not stored and cannot be shown again.
    pub token: String,
}

/// What an erasure did.
#[derive(async_graphql::SimpleObject)]
pub struct PersonalDataErasure {
    /// How many stored values were erased: the personal fields of events that held the name,
    /// and token names (0 when no stored value was the name; nothing is recorded then).
    pub erased_values: i64,
}

#[Object]
impl Mutation {
    /// Erases every stored value equal to `name` in the personal fields (evidence submitters,
    /// the actors of events, token names) with its opening (admin). Records
    /// `PersonalDataErased` with the reason and the erased values' commitments, never the
    /// name; tokens held under the name are revoked. Every proof holds as before.
    async fn erase_personal_data(
        &self,
        ctx: &Context<'_>,
        input: ErasePersonalDataInput,
    ) -> ApiResult<PersonalDataErasure> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .erase_personal_data(&cctx, cmd)
            .await
            .api()?;
        let cache = ctx.data::<std::sync::Arc<crate::store::tokens::TokenCache>>()?;
        for token in &outcome.revoked_tokens {
            cache.forget(*token);
        }
        Ok(PersonalDataErasure {
            erased_values: outcome.erased_values as i64,
        })
    }

    /// Creates a token (admin). The token is in the answer and nowhere else.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        role: super::types::TokenRole,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> ApiResult<CreatedToken> {
        super::require_admin(ctx)?;
        wrote_elsewhere(ctx)?;
        let name = crate::domain::text::Line::parse("name", &name).api()?;
        if expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return Err(ApiError::bad_input("expiresAt", "must be in the future")).api();
        }
        let (id, token) = crate::store::tokens::create(
            ctx.data::<PgPool>()?,
            name.as_str(),
            role.into(),
            expires_at,
        )
        .await
        .api()?;
        Ok(CreatedToken {
            id: async_graphql::ID(id.to_string()),
            token,
        })
    }

    /// Registers a webhook (admin): every event of `eventTypes` (none: every type)
    /// committed from now on is POSTed to `url`, signed as Standard Webhooks v1 says, at least
    /// once and in committed order. The answer holds the signing secret, shown this once.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> ApiResult<super::types::CreatedWebhook> {
        super::require_admin(ctx)?;
        wrote_elsewhere(ctx)?;
        let actor = ctx.data::<RequestInfo>()?.actor.as_ref();
        let created = crate::webhooks::create(
            ctx.data::<PgPool>()?,
            ctx.data::<crate::webhooks::WebhookSettings>()?,
            &input.url,
            &input.event_types,
            &input.description,
            actor.map(|a| a.token_id),
        )
        .await
        .map_err(|e| match e {
            crate::webhooks::CreateError::Invalid { field, message } => {
                ApiError::bad_input(field, message)
            }
            crate::webhooks::CreateError::Store(e) => e.into(),
        })
        .api()?;
        Ok(super::types::CreatedWebhook {
            webhook: super::types::Webhook(created.webhook),
            secret: created.secret,
        })
    }

    /// Deletes a webhook and its delivery log (admin); deliveries stop. False if there was
    /// none.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: async_graphql::ID) -> ApiResult<bool> {
        super::require_admin(ctx)?;
        wrote_elsewhere(ctx)?;
        let id = super::inputs::parse_id("id", &id).api()?;
        crate::store::webhooks::delete(ctx.data::<PgPool>()?, id)
            .await
            .api()
    }

    /// Starts a paused webhook again (admin), from the event that failed.
    async fn resume_webhook(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> ApiResult<super::types::Webhook> {
        super::require_admin(ctx)?;
        wrote_elsewhere(ctx)?;
        let id = super::inputs::parse_id("id", &id).api()?;
        let resumed = crate::store::webhooks::resume(ctx.data::<PgPool>()?, id)
            .await
            .api()?
            .map(super::types::Webhook)
            .ok_or_else(|| ApiError::NotFound(format!("no webhook {id}")))
            .api()?;
        ctx.data::<crate::webhooks::WebhookSettings>()?
            .changes
            .tell();
        Ok(resumed)
    }

    /// Revokes a token (admin); it is refused from then on. False if it was not active.
    async fn revoke_token(&self, ctx: &Context<'_>, id: async_graphql::ID) -> ApiResult<bool> {
        super::require_admin(ctx)?;
        wrote_elsewhere(ctx)?;
        let id = super::inputs::parse_id("id", &id).api()?;
        let revoked = crate::store::tokens::revoke(ctx.data::<PgPool>()?, id)
            .await
            .api()?;
        ctx.data::<std::sync::Arc<crate::store::tokens::TokenCache>>()?
            .forget(id);
        Ok(revoked)
    }

    /// Registers a commitment (admin). Records `CommitmentRegistered`.
    async fn register_commitment(
        &self,
        ctx: &Context<'_>,
        input: RegisterCommitmentInput,
    ) -> ApiResult<Commitment> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .register_commitment(&cctx, cmd)
            .await
            .api()?;
        commitment(ctx, outcome.id).await
    }

    /// Revises a commitment's terms (admin). Records `CommitmentRevised`.
    async fn revise_commitment(
        &self,
        ctx: &Context<'_>,
        input: ReviseCommitmentInput,
    ) -> ApiResult<Commitment> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .revise_commitment(&cctx, cmd, input.expected_version)
            .await
            .api()?;
        commitment(ctx, outcome.id).await
    }

    /// Submits evidence (contributor). Records `EvidenceSubmitted`.
    async fn submit_evidence(
        &self,
        ctx: &Context<'_>,
        input: SubmitEvidenceInput,
    ) -> ApiResult<Evidence> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .submit_evidence(&cctx, cmd)
            .await
            .api()?;
        evidence(ctx, outcome.id).await
    }

    /// Retracts evidence (admin). Records `EvidenceRetracted`.
    async fn retract_evidence(
        &self,
        ctx: &Context<'_>,
        input: RetractEvidenceInput,
    ) -> ApiResult<Evidence> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .retract_evidence(&cctx, cmd, input.expected_version)
            .await
            .api()?;
        evidence(ctx, outcome.id).await
    }

    /// Records a verdict (assessor). Records `CommitmentAssessed`.
    async fn assess_commitment(
        &self,
        ctx: &Context<'_>,
        input: AssessCommitmentInput,
    ) -> ApiResult<Assessment> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .assess_commitment(&cctx, cmd, input.expected_version)
            .await
            .api()?;
        match outcome.assessment {
            Some(row) => Ok(Assessment::live(row)),
            None => Assessment::live_by_id(ctx.data::<PgPool>()?, outcome.id)
                .await?
                .ok_or(ApiError::Internal)
                .api(),
        }
    }

    /// Formally contests a verdict (assessor). Records `AssessmentDisputed`.
    async fn dispute_assessment(
        &self,
        ctx: &Context<'_>,
        input: DisputeAssessmentInput,
    ) -> ApiResult<Dispute> {
        let cctx = command_context(ctx, &input.idempotency_key)?;
        let cmd = input.parse().api()?;
        let outcome = ctx
            .data::<Commands>()?
            .dispute_assessment(&cctx, cmd, input.expected_version)
            .await
            .api()?;
        read::dispute_by_id(ctx.data::<PgPool>()?, outcome.id)
            .await
            .api()?
            .map(|r| Source::Live.dispute(r))
            .ok_or(ApiError::Internal)
            .api()
    }
}
