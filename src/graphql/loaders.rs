//! Batch loaders: however many commitments a query lists, each kind of related record is read
//! with one statement per batch.

use crate::store::StoreError;
use crate::store::read::{
    self, AssessmentRow, CommitmentRow, DisputeRow, EvidenceRow, RevisionRow,
};
use crate::store::replay::TimeFilter;
use async_graphql::dataloader::Loader;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Batches gathered while a request's resolvers run, loaded once its task yields.
///
/// A batch starts when the first key of a kind is asked for, and the loader takes every key
/// asked for until its load task runs. A fixed wait (async-graphql's 1 ms) is both too long
/// and too short: a request alone waits a millisecond for nothing, and on a busy or slow
/// machine a request still asking for keys when the wait ends splits its batch (the server
/// process read 40 commitments' list in 19 to 23 statements instead of 10). Instead, while a
/// request is polled inside [`GatherLoads`], the load tasks it starts are held back and
/// spawned once the request has nothing left to do but wait for them: every key it asked
/// for is in the batch, and so is every key another request asks for before the task is
/// run, which under load is later.
/// A subscription's results gather the same way ([`gathering::GatherStream`]); loads started
/// elsewhere keep a short fixed wait.
pub mod gathering {
    use futures_util::future::BoxFuture;
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    thread_local! {
        static HELD: RefCell<Option<Vec<BoxFuture<'static, ()>>>> = const { RefCell::new(None) };
    }

    /// The wait of a batch started outside [`GatherLoads`].
    const FALLBACK_WAIT: Duration = Duration::from_millis(1);

    /// The loaders' spawner: holds a load task back while a [`GatherLoads`] poll runs on this
    /// thread, and otherwise spawns it after a short wait.
    pub fn spawn(task: BoxFuture<'static, ()>) {
        let task = HELD.with(|held| match held.borrow_mut().as_mut() {
            Some(list) => {
                list.push(task);
                None
            }
            None => Some(task),
        });
        if let Some(task) = task {
            tokio::spawn(async move {
                tokio::time::sleep(FALLBACK_WAIT).await;
                task.await;
            });
        }
    }

    /// A request's execution, whose load tasks start once a poll of it ends with nothing
    /// left to do but wait. A poll that ends because the executor's budget ran out (a list
    /// of more than 32 items is polled in slices, each slice waking the task again) keeps
    /// them held: the next slice's keys join the same batches.
    pub struct GatherLoads<F> {
        execution: Pin<Box<F>>,
        held: Held,
    }

    impl<F> GatherLoads<F> {
        pub fn new(execution: Pin<Box<F>>) -> Self {
            Self {
                execution,
                held: Held::default(),
            }
        }
    }

    /// Forwards a wake, noting that it happened.
    struct Noting {
        inner: Waker,
        woken: AtomicBool,
    }

    impl Wake for Noting {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.inner.wake_by_ref();
        }
    }

    /// Restores the thread's previous state even if the poll panicked, handing back what
    /// the poll started.
    struct Restore<'a> {
        previous: Option<Vec<BoxFuture<'static, ()>>>,
        into: &'a mut Vec<BoxFuture<'static, ()>>,
    }

    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let held = HELD.with(|h| h.replace(self.previous.take()));
            self.into.extend(held.into_iter().flatten());
        }
    }

    /// Polls with `poll`, holding back the load tasks it starts, and spawns them once the
    /// poll has ended ready, or pending with nothing left to do but wait for them.
    fn gathering<T>(
        held: &mut Vec<BoxFuture<'static, ()>>,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let noting = Arc::new(Noting {
            inner: cx.waker().clone(),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(noting.clone());
        let outcome = {
            let _restore = Restore {
                previous: HELD.with(|h| h.replace(Some(Vec::new()))),
                into: &mut *held,
            };
            poll(&mut Context::from_waker(&waker))
        };
        if outcome.is_ready() || !noting.woken.load(Ordering::Acquire) {
            for task in held.drain(..) {
                tokio::spawn(task);
            }
        }
        outcome
    }

    impl<F: Future> Future for GatherLoads<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.get_mut();
            let execution = &mut this.execution;
            gathering(&mut this.held.0, cx, |cx| execution.as_mut().poll(cx))
        }
    }

    /// A subscription's results, each executed as [`GatherLoads`] executes a request: the
    /// loads of one result start once its execution has nothing left to do but wait for them.
    pub struct GatherStream<S> {
        results: Pin<Box<S>>,
        held: Held,
    }

    impl<S> GatherStream<S> {
        pub fn new(results: Pin<Box<S>>) -> Self {
            Self {
                results,
                held: Held::default(),
            }
        }
    }

    impl<S: futures_util::Stream> futures_util::Stream for GatherStream<S> {
        type Item = S::Item;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
            let this = self.get_mut();
            let results = &mut this.results;
            gathering(&mut this.held.0, cx, |cx| results.as_mut().poll_next(cx))
        }
    }

    /// Load tasks held back by a poll. Dropped with a request or subscription before they
    /// were spawned, they are spawned then: other requests may wait on a held batch.
    #[derive(Default)]
    struct Held(Vec<BoxFuture<'static, ()>>);

    impl Drop for Held {
        fn drop(&mut self) {
            for task in self.0.drain(..) {
                tokio::spawn(task);
            }
        }
    }
}

/// The loader behind every batched read.
pub struct Loaders {
    pool: PgPool,
}

impl Loaders {
    /// Loaders reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Errors are shared between every waiter of a batch.
pub type LoadError = Arc<StoreError>;

/// A commitment by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitmentById(pub Uuid);
/// A commitment's assessments inside a time filter (the default filter for the live
/// timeline), in timeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssessmentsOf(pub Uuid, pub TimeFilter);
/// A commitment's latest assessments inside a time filter (at most the count), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LatestAssessmentsOf(pub Uuid, pub u16, pub TimeFilter);
/// The assessment an assessment replaced, inside a time filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreviousOf(pub Uuid, pub TimeFilter);
/// The evidence that concerns a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvidenceOf(pub Uuid);
/// A piece of evidence by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvidenceById(pub Uuid);
/// The disputes of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DisputesOf(pub Uuid);
/// The revisions of a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevisionsOf(pub Uuid);

/// An event's leaf index in the transparency log (none until sequenced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeafOf(pub Uuid);
/// The event at a global position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventAt(pub i64);

fn group<K: Copy + Eq + std::hash::Hash, T>(
    keys: &[K],
    rows: impl IntoIterator<Item = (Uuid, T)>,
    key: impl Fn(Uuid) -> K,
) -> HashMap<K, Vec<T>> {
    let mut map: HashMap<K, Vec<T>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (id, row) in rows {
        map.entry(key(id)).or_default().push(row);
    }
    map
}

impl Loader<CommitmentById> for Loaders {
    type Value = CommitmentRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CommitmentById],
    ) -> Result<HashMap<CommitmentById, CommitmentRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows =
            crate::store::read_retrying(|| read::commitments_by_ids(&self.pool, &ids)).await?;
        Ok(rows
            .into_iter()
            .map(|r| (CommitmentById(r.id), r))
            .collect())
    }
}

/// Keys grouped by a part that the statement takes once (a filter, a count), in first-seen
/// order: a query usually asks with one.
fn batches<K: Copy, P: Copy + PartialEq>(keys: &[K], part: impl Fn(&K) -> P) -> Vec<(P, Vec<K>)> {
    let mut out: Vec<(P, Vec<K>)> = Vec::new();
    for k in keys {
        let p = part(k);
        match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, batch)) => batch.push(*k),
            None => out.push((p, vec![*k])),
        }
    }
    out
}

/// Rows shared by every waiter of a key (and by the answers built from them) without copying.
pub type Shared<T> = Arc<Vec<Arc<T>>>;

/// The newest `n` of a window held newest first.
pub fn newest<T>(window: &[T], n: u16) -> &[T] {
    &window[..window.len().min(usize::from(n))]
}

fn shared<T>(rows: Vec<T>) -> Shared<T> {
    Arc::new(rows.into_iter().map(Arc::new).collect())
}

impl Loader<AssessmentsOf> for Loaders {
    type Value = Shared<AssessmentRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AssessmentsOf],
    ) -> Result<HashMap<AssessmentsOf, Self::Value>, LoadError> {
        let mut out = HashMap::with_capacity(keys.len());
        for (filter, batch) in batches(keys, |k| k.1) {
            let ids: Vec<Uuid> = batch.iter().map(|k| k.0).collect();
            let rows =
                crate::store::read_retrying(|| read::assessments_for(&self.pool, &ids, filter))
                    .await?;
            let grouped = group(
                &batch,
                rows.into_iter().map(|r| (r.commitment_id, r)),
                |id| AssessmentsOf(id, filter),
            );
            out.extend(grouped.into_iter().map(|(k, rows)| (k, shared(rows))));
        }
        Ok(out)
    }
}

impl Loader<LatestAssessmentsOf> for Loaders {
    type Value = Shared<AssessmentRow>;
    type Error = LoadError;

    /// Keys of one filter share one statement: each commitment's window is read once, as long
    /// as the longest asked for, and every key gets its newest part (a list asking for both
    /// `currentAssessment` and `assessments(last: 5)` reads five rows per commitment, not six).
    async fn load(
        &self,
        keys: &[LatestAssessmentsOf],
    ) -> Result<HashMap<LatestAssessmentsOf, Self::Value>, LoadError> {
        let mut out = HashMap::with_capacity(keys.len());
        for (filter, batch) in batches(keys, |k| k.2) {
            let count = batch.iter().map(|k| k.1).max().unwrap_or(0);
            let mut ids: Vec<Uuid> = batch.iter().map(|k| k.0).collect();
            ids.sort_unstable();
            ids.dedup();
            let rows = crate::store::read_retrying(|| {
                read::latest_assessments_for(&self.pool, &ids, i64::from(count), filter)
            })
            .await?;
            let mut windows: HashMap<Uuid, Vec<Arc<AssessmentRow>>> =
                HashMap::with_capacity(ids.len());
            for row in rows {
                windows
                    .entry(row.commitment_id)
                    .or_default()
                    .push(Arc::new(row));
            }
            for key in batch {
                let window = windows.get(&key.0).map_or(&[][..], Vec::as_slice);
                out.insert(key, Arc::new(newest(window, key.1).to_vec()));
            }
        }
        Ok(out)
    }
}

impl Loader<PreviousOf> for Loaders {
    type Value = AssessmentRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PreviousOf],
    ) -> Result<HashMap<PreviousOf, AssessmentRow>, LoadError> {
        let mut out = HashMap::with_capacity(keys.len());
        for (filter, batch) in batches(keys, |k| k.1) {
            let ids: Vec<Uuid> = batch.iter().map(|k| k.0).collect();
            let rows =
                crate::store::read_retrying(|| read::assessments_before(&self.pool, &ids, filter))
                    .await?;
            out.extend(rows.into_iter().map(|(of, r)| (PreviousOf(of, filter), r)));
        }
        Ok(out)
    }
}

impl Loader<EvidenceOf> for Loaders {
    type Value = Shared<EvidenceRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EvidenceOf],
    ) -> Result<HashMap<EvidenceOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = crate::store::read_retrying(|| read::evidence_for(&self.pool, &ids)).await?;
        Ok(group(keys, rows, EvidenceOf)
            .into_iter()
            .map(|(k, v)| (k, shared(v)))
            .collect())
    }
}

impl Loader<EvidenceById> for Loaders {
    type Value = EvidenceRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EvidenceById],
    ) -> Result<HashMap<EvidenceById, EvidenceRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = crate::store::read_retrying(|| read::evidence_by_ids(&self.pool, &ids)).await?;
        Ok(rows.into_iter().map(|r| (EvidenceById(r.id), r)).collect())
    }
}

impl Loader<DisputesOf> for Loaders {
    type Value = Arc<Vec<DisputeRow>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DisputesOf],
    ) -> Result<HashMap<DisputesOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = crate::store::read_retrying(|| read::disputes_for(&self.pool, &ids)).await?;
        let grouped = group(
            keys,
            rows.into_iter().map(|r| (r.assessment_id, r)),
            DisputesOf,
        );
        Ok(grouped.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Loader<RevisionsOf> for Loaders {
    type Value = Arc<Vec<RevisionRow>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[RevisionsOf],
    ) -> Result<HashMap<RevisionsOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = crate::store::read_retrying(|| read::revisions_for(&self.pool, &ids)).await?;
        let grouped = group(
            keys,
            rows.into_iter().map(|r| (r.commitment_id, r)),
            RevisionsOf,
        );
        Ok(grouped.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Loader<LeafOf> for Loaders {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[LeafOf]) -> Result<HashMap<LeafOf, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows =
            crate::store::read_retrying(|| crate::store::tree::leaf_indexes(&self.pool, &ids))
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, index)| (LeafOf(id), index))
            .collect())
    }
}

impl Loader<EventAt> for Loaders {
    type Value = Arc<crate::store::event_store::StoredEvent>;
    type Error = LoadError;

    async fn load(&self, keys: &[EventAt]) -> Result<HashMap<EventAt, Self::Value>, LoadError> {
        let positions: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows =
            crate::store::read_retrying(|| crate::store::tree::events_at(&self.pool, &positions))
                .await?;
        Ok(rows
            .into_iter()
            .map(|e| (EventAt(e.position), Arc::new(e)))
            .collect())
    }
}
