//! Webhooks (DESIGN §13, Standard Webhooks v1): admins register an address and the event
//! types it wants; every matching event is POSTed to it, signed, at least once and in
//! committed order, retried with backoff and resumed after a restart. The rules for addresses
//! are in [`target`], the signatures in [`signing`], delivery in [`dispatcher`]; the rows in
//! `store/webhooks.rs`.

pub mod dispatcher;
pub mod signing;
pub mod target;

use crate::store::StoreError;
use crate::store::webhooks::{self as rows, NewWebhook, WebhookRow};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// How deliveries behave.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether private and loopback addresses may be delivered to.
    pub allow_private: bool,
    /// The first retry's delay; each further one doubles it.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_cap: Duration,
    /// Failures in a row after which a webhook is paused.
    pub pause_after: u32,
    /// How long an attempt (connect, send, answer) may take.
    pub timeout: Duration,
    /// Webhooks delivered to at the same time by one process.
    pub concurrency: usize,
    /// Shared by every clone: how this process's registrations reach its dispatcher.
    pub changes: Changes,
}

/// Tells the dispatcher that webhooks were registered or resumed, so that it looks for due
/// webhooks at once. Between such changes it looks only while some webhook was due at its
/// last look, or once a tick: a change made by another process is seen within a tick.
#[derive(Debug, Clone, Default)]
pub struct Changes(std::sync::Arc<tokio::sync::Notify>);

impl Changes {
    /// Says that the webhooks changed.
    pub fn tell(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next change (or at once, for one told since the last wait).
    pub async fn told(&self) {
        self.0.notified().await;
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(3600),
            pause_after: 15,
            timeout: Duration::from_secs(10),
            concurrency: 16,
            changes: Changes::default(),
        }
    }
}

impl WebhookSettings {
    /// The delay after the `failures`-th failure in a row: base × 2^(failures − 1), at most
    /// the cap, less up to a fifth at random so that webhooks that failed together do not
    /// retry together.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exponential = self
            .retry_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(30));
        let capped = exponential.min(self.retry_cap);
        let jitter = rand::random::<f64>() * 0.2;
        capped.mul_f64(1.0 - jitter)
    }
}

/// Why a webhook could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// An input is not acceptable; names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new webhook and its secret, which is shown this once.
pub struct Created {
    /// The webhook.
    pub webhook: WebhookRow,
    /// `whsec_…`.
    pub secret: String,
}

/// Checks and creates a webhook: an allowed address, known event types (none: all), a
/// description of at most 500 characters.
pub async fn create(
    pool: &PgPool,
    settings: &WebhookSettings,
    url: &str,
    event_types: &[String],
    description: &str,
    created_by: Option<Uuid>,
) -> Result<Created, CreateError> {
    let invalid = |field, message: String| CreateError::Invalid { field, message };
    let target = target::parse(url.trim()).map_err(|e| invalid("url", e.to_string()))?;
    target::check(&target, settings.allow_private)
        .await
        .map_err(|e| invalid("url", e.to_string()))?;
    let mut types: Vec<String> = Vec::new();
    for t in event_types {
        if crate::domain::event::current_schema_version(t).is_none() {
            return Err(invalid(
                "eventTypes",
                format!("{t:?} is not an event type (see DESIGN §2: e.g. CommitmentAssessed)"),
            ));
        }
        if !types.contains(t) {
            types.push(t.clone());
        }
    }
    let description = description.trim();
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        return Err(invalid(
            "description",
            "at most 500 characters, on one line".into(),
        ));
    }
    let secret = signing::new_secret();
    let webhook = rows::create(
        pool,
        NewWebhook {
            url: &target.uri.to_string(),
            event_types: &types,
            description,
            secret: &secret,
            created_by,
        },
    )
    .await?;
    settings.changes.tell();
    Ok(Created {
        webhook,
        secret: signing::secret_text(&secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_a_little_jitter() {
        let s = WebhookSettings {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_secs(1),
            ..WebhookSettings::default()
        };
        let within = |d: Duration, ms: u64| {
            let top = Duration::from_millis(ms);
            d <= top && d >= top.mul_f64(0.8)
        };
        assert!(within(s.backoff(1), 100));
        assert!(within(s.backoff(2), 200));
        assert!(within(s.backoff(4), 800));
        assert!(within(s.backoff(5), 1000));
        assert!(within(s.backoff(60), 1000));
    }
}
