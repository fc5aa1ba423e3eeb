//! Subscriptions, served from the live feed (which tails the log in committed order), never
//! from the mutation path: a change made through any process reaches every subscriber.
//!
//! Each takes `after: <cursor>`: everything after it is delivered from the database first,
//! then live events, with no gap and no duplicate.

use super::error::{ApiResult, OrApi};
use super::inputs::parse_id;
use super::types::{Assessment, Event, Evidence, Source};
use crate::store::cursor::EventCursor;
use crate::store::event_store::StoredEvent;
use crate::store::feed::{EventFilter, Feed};
use crate::store::read;
use async_graphql::{Context, ID, Subscription as GqlSubscription};
use futures_util::{Stream, StreamExt};
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The root of live updates.
pub struct Subscription;

fn parse_after(after: Option<String>) -> ApiResult<Option<EventCursor>> {
    after.as_deref().map(EventCursor::decode).transpose().api()
}

fn id_in(payload: &serde_json::Value, field: &str) -> Option<Uuid> {
    payload.get(field)?.as_str()?.parse().ok()
}

#[GqlSubscription]
impl Subscription {
    /// Every new assessment (the first one too, and one whose overall rating is unchanged),
    /// optionally of one commitment.
    async fn rating_changed(
        &self,
        ctx: &Context<'_>,
        commitment_id: Option<ID>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Assessment>> + use<>> {
        let commitment_id = commitment_id
            .as_ref()
            .map(|c| parse_id("commitmentId", c))
            .transpose()
            .api()?;
        let after = parse_after(after)?;
        let pool = ctx.data::<PgPool>()?.clone();
        let recent = ctx.data::<RecentAssessments>()?.clone();
        let filter = EventFilter {
            stream_id: commitment_id,
            types: Some(vec!["CommitmentAssessed".to_owned()]),
        };
        let events = ctx.data::<Feed>()?.subscribe(after, filter);
        Ok(events.filter_map(move |event| {
            let (pool, recent) = (pool.clone(), recent.clone());
            async move { recent.of(&pool, &event).await.transpose() }
        }))
    }

    /// Every new piece of evidence, optionally only that concerning one commitment.
    async fn evidence_submitted(
        &self,
        ctx: &Context<'_>,
        commitment_id: Option<ID>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Evidence>> + use<>> {
        let commitment_id = commitment_id
            .as_ref()
            .map(|c| parse_id("commitmentId", c))
            .transpose()
            .api()?;
        let after = parse_after(after)?;
        let pool = ctx.data::<PgPool>()?.clone();
        let filter = EventFilter {
            stream_id: None,
            types: Some(vec!["EvidenceSubmitted".to_owned()]),
        };
        let events = ctx.data::<Feed>()?.subscribe(after, filter);
        Ok(events.filter_map(move |event| {
            let pool = pool.clone();
            async move {
                let concerns = |c: Uuid| {
                    event
                        .payload
                        .get("commitmentIds")
                        .and_then(|v| v.as_array())
                        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(&c.to_string())))
                };
                if commitment_id.is_some_and(|c| !concerns(c)) {
                    return None;
                }
                let ids = [event.stream_id];
                match crate::store::read_retrying(|| read::evidence_by_ids(&pool, &ids)).await {
                    Ok(rows) => rows
                        .into_iter()
                        .next()
                        .map(|r| Ok(Source::Live.evidence(r))),
                    Err(e) => Some(Err(e).api()),
                }
            }
        }))
    }

    /// Every new event, optionally of one stream and some types, with its envelope.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        stream_id: Option<ID>,
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = Event> + use<>> {
        let stream_id = stream_id
            .as_ref()
            .map(|s| parse_id("streamId", s))
            .transpose()
            .api()?;
        let after = parse_after(after)?;
        let filter = EventFilter { stream_id, types };
        Ok(ctx.data::<Feed>()?.subscribe(after, filter).map(Event))
    }
}

/// The assessments of recent events, shared by every subscription in the process: an event
/// delivered to 10,000 subscribers is read from the database once, by whichever subscriber
/// gets to it first, while the others wait for that read.
#[derive(Clone, Default)]
pub struct RecentAssessments(Arc<Mutex<Recent>>);

#[derive(Default)]
struct Recent {
    cells: HashMap<EventCursor, Arc<OnceCell<Option<Assessment>>>>,
    order: VecDeque<EventCursor>,
}

/// How many events' assessments are kept: enough for a subscriber that lags a little to
/// share the read; one further behind reads for itself.
const RECENT: usize = 1024;

impl RecentAssessments {
    /// The assessment recorded by a `CommitmentAssessed` event.
    async fn of(&self, pool: &PgPool, event: &StoredEvent) -> ApiResult<Option<Assessment>> {
        let cell = {
            let mut recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let key = event.cursor();
            if let Some(cell) = recent.cells.get(&key) {
                cell.clone()
            } else {
                if recent.order.len() >= RECENT
                    && let Some(oldest) = recent.order.pop_front()
                {
                    recent.cells.remove(&oldest);
                }
                let cell = Arc::new(OnceCell::new());
                recent.cells.insert(key, cell.clone());
                recent.order.push_back(key);
                cell
            }
        };
        cell.get_or_try_init(|| async {
            match id_in(&event.payload, "assessmentId") {
                Some(id) => Assessment::live_by_id(pool, id).await,
                None => Ok(None),
            }
        })
        .await
        .cloned()
    }
}
