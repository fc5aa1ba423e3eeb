//! `Webhook`, its deliveries, and what creating one answers.

use super::*;
use crate::store::webhooks::{self as rows, DeliveryRow, WebhookRow};

/// Whether a webhook is being delivered to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookState {
    /// Deliveries run.
    Active,
    /// Stopped after too many failed deliveries in a row; `resumeWebhook` starts it again
    /// from the event that failed.
    Paused,
}

/// An address that receives events as they are committed (Standard Webhooks v1). Admins
/// only.
pub struct Webhook(pub WebhookRow);

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The event types delivered (empty: every type).
    async fn event_types(&self) -> &[String] {
        &self.0.event_types
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn state(&self) -> WebhookState {
        if self.0.paused {
            WebhookState::Paused
        } else {
            WebhookState::Active
        }
    }
    /// When it was paused.
    async fn paused_at(&self) -> Option<DateTime<Utc>> {
        self.0.paused_at
    }
    /// Why it was paused: how many failures, at which event, and the last error.
    async fn paused_reason(&self) -> Option<&str> {
        self.0.paused_reason.as_deref()
    }
    /// Failed attempts in a row at the next event to deliver.
    async fn failures(&self) -> i32 {
        self.0.failures
    }
    /// When the next attempt is due after a failure.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    /// The last delivery the receiver accepted.
    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_success_at
    }
    /// Every event up to this cursor has been delivered (or is not of its types).
    async fn delivered_up_to(&self) -> String {
        self.0.cursor.encode()
    }
    /// The latest attempts, newest first (at most 100; the last 1,000 are kept).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> ApiResult<Vec<WebhookDelivery>> {
        let first = i64::from(first.clamp(0, 100));
        let list = rows::deliveries(ctx.data::<PgPool>()?, self.0.id, first)
            .await
            .api()?;
        Ok(list.into_iter().map(WebhookDelivery::from).collect())
    }
}

/// One attempt at delivering an event.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// The event (also the `webhook-id` header).
    pub event_id: ID,
    /// Its type.
    pub event_type: String,
    /// 1 for the first attempt at this event, 2 for the first retry, …
    pub attempt: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; null when none came.
    pub status_code: Option<i32>,
    /// What went wrong; null when the receiver accepted it.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
    /// Whether the receiver accepted it (a 2xx answer).
    pub delivered: bool,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            event_id: ID(d.event_id.to_string()),
            event_type: d.event_type,
            attempt: d.attempt,
            attempted_at: d.attempted_at,
            status_code: d.status_code,
            delivered: d.error.is_none(),
            error: d.error,
            duration_ms: d.duration_ms,
        }
    }
}

/// A webhook just created, with its signing secret: shown this once.
#[derive(SimpleObject)]
pub struct CreatedWebhook {
    /// The webhook.
    pub webhook: Webhook,
    /// `whsec_` and the base64 of the key every delivery is signed with (Standard Webhooks);
    /// it cannot be shown again.
    pub secret: String,
}
