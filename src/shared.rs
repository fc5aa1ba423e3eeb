//! Shared subscriptions: when many clients subscribe with the same operation and variables,
//! it is executed once and each result serialised once; every subscriber receives the same
//! bytes. 10,000 dashboards watching `ratingChanged` cost one execution per event, not
//! 10,000.
//!
//! Only operations whose answers cannot differ between subscribers are shared: a single
//! subscription operation whose root fields take no `after` (a subscription with `after`
//! replays history from its own cursor, so it runs on its own). Answers never depend on who
//! is asking: the connection's token decides only whether it may subscribe at all.
//!
//! A subscriber joining a running shared stream receives what it produces from then on:
//! the same as a fresh subscription without `after`, which starts at the feed's head. A
//! subscriber that falls more than [`BACKLOG`] results behind is told so with an error for
//! that subscription (code `SUBSCRIBER_TOO_SLOW`) and the subscription ends: never a silent
//! gap. It can resubscribe with `after` its last cursor.

use async_graphql::Executor;
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many results a shared stream keeps for a subscriber that is behind.
pub const BACKLOG: usize = 4096;

/// One result of a shared stream.
#[derive(Debug, Clone)]
pub enum Shared {
    /// A result, serialised as the `payload` of a `next` message.
    Next(Arc<str>),
    /// The stream ended (its operation failed to start, or the server is stopping).
    End,
}

/// The subscribe payload clients send.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

/// The running shared streams, by operation.
pub struct Hub<E> {
    executor: E,
    streams: Arc<Mutex<HashMap<String, broadcast::Sender<Shared>>>>,
}

impl<E: Executor> Hub<E> {
    /// A hub executing operations on `executor`.
    pub fn new(executor: E) -> Self {
        Self {
            executor,
            streams: Arc::default(),
        }
    }

    /// How many shared streams are running.
    pub fn running(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Joins the shared stream for a subscribe payload, starting it if none runs; `None`
    /// when the operation must run on its own.
    pub fn join(&self, payload: &Value) -> Option<broadcast::Receiver<Shared>> {
        let parsed = SubscribePayload::deserialize(payload).ok()?;
        if !shareable(&parsed.query, parsed.operation_name.as_deref()) {
            return None;
        }
        let key =
            serde_json::to_string(&(&parsed.query, &parsed.variables, &parsed.operation_name))
                .ok()?;
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = streams.get(&key) {
            return Some(sender.subscribe());
        }
        let (sender, receiver) = broadcast::channel(BACKLOG);
        streams.insert(key.clone(), sender.clone());
        drop(streams);

        let mut request = async_graphql::Request::new(parsed.query);
        if let Some(v) = parsed.variables {
            request = request.variables(async_graphql::Variables::from_json(v));
        }
        if let Some(name) = parsed.operation_name {
            request = request.operation_name(name);
        }
        let mut data = async_graphql::Data::default();
        data.insert(crate::graphql::RequestInfo::default());
        let results = self.executor.execute_stream(request, Some(Arc::new(data)));
        let streams = self.streams.clone();
        tokio::spawn(async move {
            futures_util::pin_mut!(results);
            let gone = closed(&sender);
            futures_util::pin_mut!(gone);
            loop {
                let next = tokio::select! {
                    next = results.next() => Some(next),
                    () = &mut gone => None,
                };
                // Sent and removed under the lock joiners take: a subscriber either joins in
                // time to see what follows, or starts a new stream.
                let mut running = streams.lock().unwrap_or_else(|e| e.into_inner());
                let response = match next {
                    // Every subscriber had gone; stop unless one joined meanwhile.
                    None if sender.receiver_count() == 0 => {
                        running.remove(&key);
                        return;
                    }
                    None => {
                        drop(running);
                        gone.set(closed(&sender));
                        continue;
                    }
                    Some(None) => {
                        let _ = sender.send(Shared::End);
                        running.remove(&key);
                        return;
                    }
                    Some(Some(response)) => response,
                };
                let failed_to_start = response.is_err()
                    && response.errors.iter().all(|e| e.path.is_empty())
                    && response.data == async_graphql::Value::Null;
                let json = serde_json::to_string(&response).unwrap_or_default();
                let delivered = sender.send(Shared::Next(json.into())).is_ok();
                if failed_to_start || !delivered {
                    let _ = sender.send(Shared::End);
                    running.remove(&key);
                    return;
                }
            }
        });
        Some(receiver)
    }
}

/// Resolves once no receiver is left.
async fn closed(sender: &broadcast::Sender<Shared>) {
    // `broadcast` has no close notification for senders: look every so often. This only
    // bounds how long an abandoned stream lingers; delivery never waits on it.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if sender.receiver_count() == 0 {
            return;
        }
    }
}

/// Whether an operation's answers are the same for every subscriber: one subscription
/// operation, only fields at its root (no fragments), none taking `after`.
fn shareable(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            match ops.iter().find(|(n, _)| n.as_str() == name) {
                Some((_, op)) => op,
                None => return false,
            }
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    if operation.node.ty != OperationType::Subscription {
        return false;
    }
    operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .all(|item| match &item.node {
            Selection::Field(field) => field
                .node
                .arguments
                .iter()
                .all(|(name, _)| name.node.as_str() != "after"),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::{Hub, Shared, shareable};
    use async_graphql::{EmptyMutation, Object, Schema, Subscription};
    use futures_util::Stream;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::broadcast;

    struct Query;

    #[Object]
    impl Query {
        async fn ok(&self) -> bool {
            true
        }
    }

    /// Counts how many times its subscription is executed, and yields what it is sent.
    struct Ticks {
        executions: Arc<AtomicUsize>,
        ticks: broadcast::Sender<i32>,
    }

    #[Subscription]
    impl Ticks {
        async fn ticks(&self, after: Option<i32>) -> impl Stream<Item = i32> + use<> {
            self.executions.fetch_add(1, Ordering::SeqCst);
            let floor = after.unwrap_or(i32::MIN);
            let rx = self.ticks.subscribe();
            futures_util::stream::unfold(rx, move |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(t) if t > floor => return Some((t, rx)),
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            })
        }
    }

    async fn next(rx: &mut broadcast::Receiver<Shared>) -> String {
        match rx.recv().await.expect("a result") {
            Shared::Next(payload) => payload.to_string(),
            Shared::End => "end".into(),
        }
    }

    #[tokio::test]
    async fn identical_subscriptions_execute_once_and_receive_the_same_results() {
        let executions = Arc::new(AtomicUsize::new(0));
        let (ticks, _) = broadcast::channel(16);
        let schema = Schema::build(
            Query,
            EmptyMutation,
            Ticks {
                executions: executions.clone(),
                ticks: ticks.clone(),
            },
        )
        .finish();
        let hub = Hub::new(schema);
        let payload = json!({ "query": "subscription { ticks }" });
        let mut a = hub.join(&payload).expect("shared");
        let mut b = hub.join(&payload).expect("shared");
        let other = json!({ "query": "subscription S { ticks }", "operationName": "S" });
        let mut c = hub.join(&other).expect("shared");
        assert!(
            hub.join(&json!({ "query": "subscription { ticks(after: 1) }" }))
                .is_none()
        );
        assert_eq!(hub.running(), 2);
        // The streams start executing on their own tasks: send until each has subscribed.
        while executions.load(Ordering::SeqCst) < 2 || ticks.receiver_count() < 2 {
            tokio::task::yield_now().await;
        }
        ticks.send(7).expect("subscribers");
        let expected = r#"{"data":{"ticks":7}}"#;
        assert_eq!(next(&mut a).await, expected);
        assert_eq!(next(&mut b).await, expected);
        assert_eq!(next(&mut c).await, expected);
        assert_eq!(executions.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_operation_that_fails_to_start_ends_its_shared_stream() {
        let (ticks, _) = broadcast::channel(16);
        let schema = Schema::build(
            Query,
            EmptyMutation,
            Ticks {
                executions: Arc::default(),
                ticks,
            },
        )
        .finish();
        let hub = Hub::new(schema);
        let mut rx = hub
            .join(&json!({ "query": "subscription { nosuchfield }" }))
            .expect("parsed, so shared");
        assert!(next(&mut rx).await.contains("errors"));
        assert_eq!(next(&mut rx).await, "end");
        assert_eq!(hub.running(), 0);
    }

    #[test]
    fn only_cursorless_subscriptions_are_shared() {
        assert!(shareable("subscription { ratingChanged { id } }", None));
        assert!(shareable(
            "subscription($c: ID) { ratingChanged(commitmentId: $c) { id } }",
            None
        ));
        assert!(!shareable(
            "subscription { ratingChanged(after: \"e1.00\") { id } }",
            None
        ));
        assert!(!shareable(
            "subscription($a: String) { events(after: $a) { id } }",
            None
        ));
        assert!(!shareable("query { commitments { totalCount } }", None));
        assert!(!shareable(
            "subscription { ...F } fragment F on Subscription { ratingChanged { id } }",
            None
        ));
        assert!(!shareable("subscription {", None));
        let two = "subscription A { ratingChanged { id } } subscription B { events(after: \"x\") { id } }";
        assert!(shareable(two, Some("A")));
        assert!(!shareable(two, Some("B")));
        assert!(!shareable(two, None));
    }
}
