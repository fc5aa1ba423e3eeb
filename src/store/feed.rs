//! The live feed: one reader per process tails the events table in committed order and fans
//! each event out to that process's subscribers.
//!
//! Committed order is (transaction id, position) read only below the visibility horizon
//! (see [`super::read::Horizon`]), so a transaction that commits after a later one is
//! still delivered, in its place. The reader wakes on a local signal after this process's own
//! commits, on a Postgres NOTIFY after any process's commits, and on a timer in case a
//! notification was missed. A subscriber that passes a cursor is first caught up from the
//! database, then switched to the live broadcast with no gap and no duplicate; one that falls
//! behind the broadcast is caught up from the database again rather than given a gap.

use super::cursor::EventCursor;
use super::event_store::StoredEvent;
use super::read;
use super::replicas::{Reads, Target};
use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tracing::Instrument;
use uuid::Uuid;

/// The NOTIFY channel on which appends announce themselves.
pub const CHANNEL: &str = "commitment_tracker_events";

/// How many events one read takes from the database.
const PAGE: i64 = 500;

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this stream.
    pub stream_id: Option<Uuid>,
    /// Only these event types.
    pub types: Option<Vec<String>>,
}

impl EventFilter {
    fn matches(&self, e: &StoredEvent) -> bool {
        self.stream_id.is_none_or(|s| s == e.stream_id)
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.contains(&e.event_type))
    }
}

/// Settings of the feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// How often the reader looks for events when nothing woke it.
    pub poll_interval: Duration,
    /// How many events the broadcast holds for slow subscribers before they must catch up
    /// from the database.
    pub capacity: usize,
    /// Which transactions may hold delivery back (the server uses the default).
    pub horizon: read::Horizon,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            capacity: 4096,
            horizon: read::Horizon::default(),
        }
    }
}

struct Shared {
    /// The cursor of the last event published. Guarded together with sending so that a new
    /// subscriber's (head, receiver) pair is exact: the receiver gets every event after head.
    head: Mutex<EventCursor>,
    /// Fan-out to this process's subscribers.
    sender: broadcast::Sender<Arc<StoredEvent>>,
    /// The head, for those who only need to know that it moved (they do not count as
    /// subscribers, so nobody listening still lets the reader skip the events' rows).
    moved: watch::Sender<EventCursor>,
    /// Wakes the reader.
    wake: Notify,
    /// Asks the notifier to send one NOTIFY: commits that happen while one is being sent
    /// share the next, so a burst of commits costs a few notifications, not one each.
    notify: Notify,
    /// This process's NOTIFY payload: the listener ignores its own, whose commits already
    /// woke the reader locally, so each local burst is read once, not twice.
    origin: String,
    /// [`Feed::notice`]'s statement.
    notice: String,
}

/// A handle on the process's live feed. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    pool: PgPool,
    shared: Arc<Shared>,
    settings: FeedSettings,
    /// Where catch-up reads may go instead of the primary.
    replicas: Option<Reads>,
}

impl Feed {
    /// Creates the feed positioned at the current end of the log; call [`Feed::run`] to start
    /// the reader.
    pub async fn new(pool: PgPool, settings: FeedSettings) -> Result<Self, sqlx::Error> {
        let head = end_of_log(&pool, settings.horizon).await?;
        let (sender, _) = broadcast::channel(settings.capacity.max(16));
        // Hexadecimal digits only, so it can stand in a statement's text.
        let origin = Uuid::new_v4().simple().to_string();
        let shared = Arc::new(Shared {
            head: Mutex::new(head),
            sender,
            moved: watch::Sender::new(head),
            wake: Notify::new(),
            notify: Notify::new(),
            origin: origin.clone(),
            // language=PostgreSQL
            notice: format!(
                "select set_config('synchronous_commit', 'off', true), pg_notify('{CHANNEL}', '{origin}')"
            ),
        });
        tokio::spawn(notifier(pool.clone(), Arc::downgrade(&shared)));
        Ok(Self {
            pool,
            shared,
            settings,
            replicas: None,
        })
    }

    /// The feed, with subscribers' catch-up reads on a usable replica: every full page comes
    /// from there, and only the last, short one from the primary, whose end is where live
    /// delivery takes over. A replica that lags or fails costs a subscriber one read on the
    /// primary, never a wait.
    pub fn with_replicas(mut self, reads: Reads) -> Self {
        self.replicas = (reads.replica_count() > 0).then_some(reads);
        self
    }

    /// Asks the reader to look for new events now (after a local commit).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Tells every process that events were committed: a local wake, and a NOTIFY sent after
    /// the commit (never inside the appending transaction, where it would serialise commits).
    pub fn announce(&self) {
        self.wake();
        self.shared.notify.notify_one();
    }

    /// The statement that tells other processes of a commit, for a writer with a connection
    /// of its own to send there after the commit, instead of the pooled round trip
    /// [`Feed::announce`] asks for ([`Feed::wake`] does the rest of its work). A NOTIFY takes
    /// a transaction id, so its transaction commits without waiting for the write-ahead log's
    /// flush: the notification is only a wake-up, and what it announces is flushed already.
    pub fn notice(&self) -> &str {
        &self.shared.notice
    }

    /// The cursor of the last event this process published.
    pub fn head(&self) -> EventCursor {
        *self.shared.head.lock().expect("feed head lock")
    }

    /// The head as it moves: with each event published, and past each run of events skipped.
    /// Cheaper than [`Feed::subscribe`] for a task that reads what it needs from the database.
    pub fn moves(&self) -> watch::Receiver<EventCursor> {
        self.shared.moved.subscribe()
    }

    /// Runs the reader until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let listener = tokio::spawn(
            listen(self.pool.clone(), self.shared.clone())
                .instrument(tracing::info_span!("feed_listener")),
        );
        let mut shutdown = std::pin::pin!(shutdown);
        let mut retry = None;
        loop {
            // While committed events wait behind the horizon (an older transaction is still
            // open somewhere in the cluster), look again soon rather than at the next poll;
            // while the database fails, back off up to seconds.
            let wait = retry.unwrap_or(self.settings.poll_interval);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            let outcome = self
                .read_new()
                .instrument(tracing::info_span!("feed_reader"))
                .await;
            retry = match (outcome, retry) {
                (ReadOutcome::CaughtUp, _) => None,
                (ReadOutcome::Pending, None) => Some(Duration::from_millis(2)),
                (ReadOutcome::Pending, Some(d)) => Some((d * 2).min(Duration::from_millis(25))),
                (ReadOutcome::Failed, None) => Some(Duration::from_millis(100)),
                (ReadOutcome::Failed, Some(d)) => {
                    Some((d * 2).clamp(Duration::from_millis(100), Duration::from_secs(5)))
                }
            };
        }
        listener.abort();
    }

    /// Publishes every event below the horizon after the head.
    async fn read_new(&self) -> ReadOutcome {
        if let Some(outcome) = self.skip_unheard().await {
            return outcome;
        }
        loop {
            let after = self.head();
            let page = match read::events_after(
                &self.pool,
                after,
                self.settings.horizon,
                PAGE,
                None,
                None,
            )
            .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "feed read failed; retrying");
                    return ReadOutcome::Failed;
                }
            };
            let full = page.len() as i64 == PAGE;
            for event in page {
                if event.event_type == "PersonalDataErased" {
                    // Events this process opened before the erasure read as erased from now.
                    super::personal::forget_erasure(&event.payload);
                }
                let lag = (chrono::Utc::now() - event.recorded_at).as_seconds_f64();
                metrics::gauge!("live_feed_lag_seconds").set(lag.max(0.0));
                let mut head = self.shared.head.lock().expect("feed head lock");
                *head = event.cursor();
                self.shared.moved.send_replace(*head);
                // No receivers is fine: nobody is subscribed right now.
                let _ = self.shared.sender.send(Arc::new(event));
            }
            if !full {
                return self.horizon_outcome().await;
            }
        }
    }

    /// With nobody subscribed, moves the head to the last committed event below the horizon
    /// without reading the events (index steps instead of every row and payload), and
    /// answers the pass's outcome; `None` when someone listens and the events must be read.
    /// The check and the move happen under the head lock, which a subscriber also takes to
    /// register, so a subscriber registers either before (and the events are read and
    /// published as usual) or after (and starts from the new head).
    async fn skip_unheard(&self) -> Option<ReadOutcome> {
        if self.shared.sender.receiver_count() > 0 {
            return None;
        }
        let skippable = match read::skippable(&self.pool, self.head(), self.settings.horizon).await
        {
            Ok(skippable) => skippable,
            Err(e) => {
                tracing::warn!(error = %e, "feed read failed; retrying");
                return Some(ReadOutcome::Failed);
            }
        };
        let mut head = self.shared.head.lock().expect("feed head lock");
        if self.shared.sender.receiver_count() > 0 {
            return None;
        }
        if let Some(last) = skippable.last {
            for payload in &skippable.erasures {
                super::personal::forget_erasure(payload);
            }
            *head = last;
            self.shared.moved.send_replace(last);
        }
        // The same snapshot said what waits behind the horizon: no second question needed.
        Some(if skippable.waiting {
            ReadOutcome::Pending
        } else {
            ReadOutcome::CaughtUp
        })
    }

    /// Whether committed events wait after the head: behind the horizon, or come below it
    /// since the read's snapshot (which the next read, soon, publishes).
    async fn horizon_outcome(&self) -> ReadOutcome {
        match read::events_after_exist(&self.pool, self.head()).await {
            Ok(true) => ReadOutcome::Pending,
            Ok(false) => ReadOutcome::CaughtUp,
            Err(_) => ReadOutcome::Failed,
        }
    }

    fn register(&self) -> (EventCursor, broadcast::Receiver<Arc<StoredEvent>>) {
        let head = self.shared.head.lock().expect("feed head lock");
        (*head, self.shared.sender.subscribe())
    }

    /// Every event matching `filter` after `after` (or, without it, from now on), in
    /// committed order, each once. The stream ends only when the feed shuts down.
    pub fn subscribe(
        &self,
        after: Option<EventCursor>,
        filter: EventFilter,
    ) -> BoxStream<'static, Arc<StoredEvent>> {
        let (head, receiver) = self.register();
        let state = Subscription {
            feed: self.clone(),
            receiver,
            last: after.unwrap_or(head),
            catching_up: after.is_some(),
            from_replica: true,
            buffer: VecDeque::new(),
            filter,
            backoff: Duration::from_millis(100),
        };
        stream::unfold(state, |mut s| async move {
            let next = s.next().await?;
            Some((next, s))
        })
        .boxed()
    }
}

/// What one pass of the reader found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOutcome {
    /// Everything committed has been published.
    CaughtUp,
    /// Committed events wait behind the horizon: read again soon.
    Pending,
    /// The database failed: back off.
    Failed,
}

struct Subscription {
    feed: Feed,
    receiver: broadcast::Receiver<Arc<StoredEvent>>,
    /// The last event delivered (or the starting point): everything up to it is done.
    last: EventCursor,
    /// Reading from the database rather than the broadcast.
    catching_up: bool,
    /// This catch-up may still read from a replica.
    from_replica: bool,
    buffer: VecDeque<Arc<StoredEvent>>,
    filter: EventFilter,
    backoff: Duration,
}

impl Subscription {
    async fn next(&mut self) -> Option<Arc<StoredEvent>> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Some(e);
            }
            if self.catching_up {
                self.catch_up().await;
                continue;
            }
            match self.receiver.recv().await {
                Ok(e) => {
                    if e.cursor() > self.last && self.filter.matches(&e) {
                        self.last = e.cursor();
                        return Some(e);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Too slow for the broadcast: take a fresh receiver and fill the gap from
                    // the database, where nothing is ever dropped.
                    tracing::debug!(missed, "subscriber lagged; catching up from the database");
                    let (_, receiver) = self.feed.register();
                    self.receiver = receiver;
                    self.catching_up = true;
                    self.from_replica = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads one page after `last`; when the page is short, the database is exhausted up to
    /// a horizon at least as late as the broadcast's head, so live events take over.
    ///
    /// A page from a replica counts only when it is full: a short one ends where the replica
    /// stands, which may be before the broadcast's head, so the rest comes from the primary.
    async fn catch_up(&mut self) {
        let types = self.filter.types.as_deref();
        let replica = match &self.feed.replicas {
            Some(reads) if self.from_replica => reads.any_replica().map(|i| (reads, i)),
            _ => None,
        };
        let pool = match replica {
            Some((reads, i)) => reads.pool(Target::Replica(i)),
            None => &self.feed.pool,
        };
        match read::events_after(
            pool,
            self.last,
            self.feed.settings.horizon,
            PAGE,
            self.filter.stream_id,
            types,
        )
        .await
        {
            Ok(page) => {
                self.backoff = Duration::from_millis(100);
                if (page.len() as i64) < PAGE {
                    if replica.is_some() {
                        self.from_replica = false;
                    } else {
                        self.catching_up = false;
                    }
                }
                for e in page {
                    self.last = e.cursor();
                    self.buffer.push_back(Arc::new(e));
                }
            }
            Err(e) if replica.is_some() => {
                tracing::debug!(error = %e, "catch-up read on a replica failed; reading the primary");
                self.from_replica = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "catch-up read failed; retrying");
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The cursor of the last committed event below the horizon.
async fn end_of_log(pool: &PgPool, horizon: read::Horizon) -> Result<EventCursor, sqlx::Error> {
    // language=PostgreSQL
    let sql = format!(
        "select transaction_id, position from events where {}
         order by transaction_id desc, position desc limit 1",
        horizon.below()
    );
    let row: Option<(i64, i64)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_optional(pool)
        .await?;
    Ok(row
        .map(|(transaction_id, position)| EventCursor {
            transaction_id,
            position,
        })
        .unwrap_or(EventCursor::START))
}

/// Listens for other processes' NOTIFYs and wakes the reader; reconnects on failure.
async fn listen(pool: PgPool, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "cannot LISTEN yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "LISTEN failed");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        // A reconnect may have missed notifications: look now.
        shared.wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.payload() == shared.origin => {}
                Ok(Some(_)) => shared.wake.notify_one(),
                // The connection dropped; PgListener reconnects on the next call.
                Ok(None) => shared.wake.notify_one(),
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

/// Sends the NOTIFY other processes listen for, after commits, one per burst; ends with the
/// feed.
async fn notifier(pool: PgPool, shared: std::sync::Weak<Shared>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        // The timeout only bounds how long this task outlives the feed.
        let asked = tokio::time::timeout(Duration::from_secs(1), strong.notify.notified()).await;
        let notice = strong.notice.clone();
        drop(strong);
        if asked.is_err() {
            continue;
        }
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(notice)).execute(&pool).await {
            tracing::debug!(error = %e, "could not notify other processes; their poll will cover it");
        }
    }
}
