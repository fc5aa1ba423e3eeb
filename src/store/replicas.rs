//! Read replicas (DESIGN §12, ADR 0015): where each read goes.
//!
//! Queries and catch-up reads may go to a streaming replica (`DATABASE_READ_URL`); writes,
//! the live tail, the log's sequencer and token checks stay on the primary. A monitor asks
//! the primary and every replica where they stand in the write-ahead log a few times a
//! second. A replica is *usable* while it answers and has replayed everything the primary had
//! written `REPLICA_MAX_LAG_MS` ago; reads go to the usable replicas in turn, and to the
//! primary when none is.
//!
//! A read that must include a write (`X-Min-Log-Position`) goes to a usable replica that has
//! already replayed that far; failing that, it waits up to `REPLICA_WAIT_MS` for one to get
//! there, then goes to the primary, which holds every position it has given out.
//!
//! Lag is measured in log positions, not clocks: the primary's position is sampled with the
//! time it was read, and a replica's lag is the age of the oldest sample it has not reached.
//! An idle primary with a replica that has replayed everything is no lag at all, however long
//! ago the last commit was (unlike `now() - pg_last_xact_replay_timestamp()`).

use super::position::{self, LogPosition};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How reads are spread over replicas.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// The replicas' URLs (none: every read goes to the primary).
    pub urls: Vec<String>,
    /// A replica further behind than this is skipped.
    pub max_lag: Duration,
    /// How long a read with a minimum log position waits for a replica to get there.
    pub wait: Duration,
    /// Connections each replica's pool may open.
    pub max_connections: u32,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            max_lag: Duration::from_millis(1000),
            wait: Duration::from_millis(500),
            max_connections: 20,
        }
    }
}

/// Where one read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The primary.
    Primary,
    /// The replica at this index of `DATABASE_READ_URL`.
    Replica(usize),
}

impl Target {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Target::Primary => "primary",
            Target::Replica(_) => "replica",
        }
    }
}

/// The primary and the replicas, with what the monitor last saw of each. Cheap to clone.
#[derive(Clone)]
pub struct Reads(Arc<Inner>);

struct Inner {
    primary: PgPool,
    replicas: Vec<Replica>,
    max_lag: Duration,
    wait: Duration,
    /// The next replica to start looking from (round robin).
    next: AtomicUsize,
}

struct Replica {
    /// `host:port/database`, for logs and metrics (never the password).
    name: String,
    pool: PgPool,
    /// Answering, and not further behind than `max_lag`.
    usable: AtomicBool,
    /// The highest replay position seen (by the monitor or a waiting read).
    replayed: AtomicU64,
}

impl Replica {
    fn replayed(&self) -> LogPosition {
        LogPosition(self.replayed.load(Ordering::Acquire))
    }

    fn saw(&self, position: LogPosition) {
        self.replayed.fetch_max(position.0, Ordering::AcqRel);
    }
}

/// `host:port/database` of a URL, without user or password.
fn display_name(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

impl Reads {
    /// Every read on the primary.
    pub fn primary_only(primary: PgPool) -> Self {
        Self::with(primary, Vec::new(), &ReplicaSettings::default())
    }

    /// The primary and the replicas of `settings`. Replicas are connected lazily, so one that
    /// is down at start is skipped rather than stopping the server.
    pub fn new(primary: PgPool, settings: &ReplicaSettings) -> Result<Self, super::OpenError> {
        let mut replicas = Vec::new();
        for url in &settings.urls {
            let options = super::check_url(url)?
                .application_name("commitment-tracker")
                .options([("jit", "off")]);
            let pool = super::pool_options(settings.max_connections.max(1))
                // A replica that does not answer is skipped; nobody waits long for it.
                .acquire_timeout(CHECK_TIMEOUT)
                .connect_lazy_with(options.clone());
            replicas.push((display_name(&options), pool));
        }
        Ok(Self::with(primary, replicas, settings))
    }

    fn with(primary: PgPool, replicas: Vec<(String, PgPool)>, settings: &ReplicaSettings) -> Self {
        let replicas = replicas
            .into_iter()
            .map(|(name, pool)| Replica {
                name,
                pool,
                // Unusable until the monitor has seen it answer.
                usable: AtomicBool::new(false),
                replayed: AtomicU64::new(0),
            })
            .collect();
        Self(Arc::new(Inner {
            primary,
            replicas,
            max_lag: settings.max_lag,
            wait: settings.wait,
            next: AtomicUsize::new(0),
        }))
    }

    /// The primary's pool.
    pub fn primary(&self) -> &PgPool {
        &self.0.primary
    }

    /// How many replicas are configured.
    pub fn replica_count(&self) -> usize {
        self.0.replicas.len()
    }

    /// The pool of a target.
    pub fn pool(&self, target: Target) -> &PgPool {
        match target {
            Target::Primary => &self.0.primary,
            Target::Replica(i) => &self.0.replicas[i].pool,
        }
    }

    /// The usable replicas, in the order this read should try them (round robin).
    fn usable(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.0.replicas.len();
        let start = if n == 0 {
            0
        } else {
            self.0.next.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n)
            .map(move |k| (start + k) % n)
            .filter(|&i| self.0.replicas[i].usable.load(Ordering::Acquire))
    }

    /// Where a read goes that must include everything up to `min` (if given).
    pub async fn choose(&self, min: Option<LogPosition>) -> Target {
        let target = self.choose_uncounted(min).await;
        metrics::counter!("db_reads_total", "target" => target.label()).increment(1);
        target
    }

    async fn choose_uncounted(&self, min: Option<LogPosition>) -> Target {
        let candidates: Vec<usize> = self.usable().collect();
        let Some(&first) = candidates.first() else {
            return Target::Primary;
        };
        let Some(min) = min else {
            return Target::Replica(first);
        };
        if let Some(&ready) = candidates
            .iter()
            .find(|&&i| self.0.replicas[i].replayed() >= min)
        {
            return Target::Replica(ready);
        }
        if self.wait_for(first, min).await {
            metrics::counter!("db_read_position_waits_total", "outcome" => "reached").increment(1);
            Target::Replica(first)
        } else {
            metrics::counter!("db_read_position_waits_total", "outcome" => "primary").increment(1);
            Target::Primary
        }
    }

    /// A read on replica `i` failed: it is skipped until the monitor sees it answer again.
    pub fn suspect(&self, i: usize) {
        let replica = &self.0.replicas[i];
        if replica.usable.swap(false, Ordering::AcqRel) {
            metrics::gauge!("db_replica_usable", "replica" => replica.name.clone()).set(0.0);
            tracing::warn!(replica = %replica.name, "a read failed on the replica: reads go elsewhere");
        }
    }

    /// A usable replica for a read that needs no particular position, if there is one.
    pub fn any_replica(&self) -> Option<usize> {
        self.usable().next()
    }

    /// Waits up to `REPLICA_WAIT_MS` for replica `i` to replay `min`; false if it did not.
    async fn wait_for(&self, i: usize, min: LogPosition) -> bool {
        let replica = &self.0.replicas[i];
        let deadline = Instant::now() + self.0.wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let asked = tokio::time::timeout_at(deadline, position::current(&replica.pool)).await;
            match asked {
                Ok(Ok(p)) => {
                    replica.saw(p);
                    if p >= min {
                        return true;
                    }
                }
                // Down, or no answer in time: the primary answers instead.
                Ok(Err(_)) | Err(_) => return false,
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// How often the monitor looks: a quarter of the lag allowed, between 10 ms and 250 ms.
    fn interval(&self) -> Duration {
        (self.0.max_lag / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    /// Watches the primary and the replicas until `stop` turns true. Without replicas it
    /// returns at once.
    pub async fn monitor(self, mut stop: watch::Receiver<bool>) {
        if self.0.replicas.is_empty() {
            return;
        }
        let interval = self.interval();
        // Samples older than this cannot change whether a replica is usable.
        let keep = self.0.max_lag * 2 + interval;
        let mut samples = Samples::default();
        loop {
            let now = Instant::now();
            // The primary first: a replica read after it that has reached it is not behind.
            match tokio::time::timeout(keep, position::current(&self.0.primary)).await {
                Ok(Ok(p)) => samples.push(now, p, keep),
                Ok(Err(e)) => tracing::debug!(error = %e, "no primary position"),
                Err(_) => tracing::debug!("no primary position in time"),
            }
            let checks = self.0.replicas.iter().map(|r| self.check(r, &samples));
            futures_util::future::join_all(checks).await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn check(&self, replica: &Replica, samples: &Samples) {
        let asked = tokio::time::timeout(CHECK_TIMEOUT, state(&replica.pool)).await;
        let verdict = match asked {
            Err(_) => Err("no answer in time".to_owned()),
            Ok(Err(e)) => Err(format!("unreachable: {e}")),
            Ok(Ok(None)) => Err("not a replica (promoted?)".to_owned()),
            Ok(Ok(Some(p))) => {
                replica.saw(p);
                let lag = samples.lag(p, Instant::now());
                metrics::gauge!("db_replica_lag_seconds", "replica" => replica.name.clone())
                    .set(lag.as_secs_f64());
                if lag > self.0.max_lag {
                    Err(format!("{} ms behind", lag.as_millis()))
                } else {
                    Ok(())
                }
            }
        };
        let usable = verdict.is_ok();
        let was = replica.usable.swap(usable, Ordering::AcqRel);
        metrics::gauge!("db_replica_usable", "replica" => replica.name.clone()).set(if usable {
            1.0
        } else {
            0.0
        });
        match verdict {
            Err(why) if was => {
                tracing::warn!(replica = %replica.name, why, "replica skipped: reads go elsewhere")
            }
            Ok(()) if !was => tracing::info!(replica = %replica.name, "replica serving reads"),
            _ => {}
        }
    }
}

/// How long a replica may take to hand over a connection or to say where it stands before
/// it is skipped.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// A replica's replay position, or none if it is not in recovery.
async fn state(pool: &PgPool) -> Result<Option<LogPosition>, sqlx::Error> {
    let (recovering, replayed): (bool, Option<String>) =
        sqlx::query_as("select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
            .fetch_one(pool)
            .await?;
    Ok(recovering
        .then(|| replayed.as_deref().and_then(LogPosition::parse))
        .flatten())
}

/// The primary's positions, each with when it was read, oldest first.
#[derive(Debug, Default)]
struct Samples(VecDeque<(Instant, LogPosition)>);

impl Samples {
    fn push(&mut self, at: Instant, position: LogPosition, keep: Duration) {
        self.0.push_back((at, position));
        while let Some(&(t, _)) = self.0.front()
            && at.duration_since(t) > keep
            && self.0.len() > 1
        {
            self.0.pop_front();
        }
    }

    /// How long a replica that has replayed `replayed` has been behind: since the oldest
    /// sample of a position it has not reached (zero when it has reached them all).
    fn lag(&self, replayed: LogPosition, now: Instant) -> Duration {
        self.0
            .iter()
            .find(|(_, p)| *p > replayed)
            .map_or(Duration::ZERO, |(t, _)| now.duration_since(*t))
    }
}

/// Parses `DATABASE_READ_URL`: URLs separated by commas or spaces.
pub fn parse_urls(list: &str) -> Result<Vec<String>, super::OpenError> {
    let urls: Vec<String> = list
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    for url in &urls {
        let scheme = url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(super::OpenError(
                "DATABASE_READ_URL must list postgres:// or postgresql:// URLs".to_owned(),
            ));
        }
        PgConnectOptions::from_str(url)
            .map_err(|e| super::OpenError(format!("DATABASE_READ_URL: {e}")))?;
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_replayed() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(10);
        let mut s = Samples::default();
        s.push(t0, LogPosition(100), keep);
        s.push(t0 + Duration::from_millis(100), LogPosition(100), keep);
        s.push(t0 + Duration::from_millis(200), LogPosition(150), keep);
        s.push(t0 + Duration::from_millis(300), LogPosition(200), keep);
        let now = t0 + Duration::from_millis(400);
        // Everything replayed: no lag, however old the last write.
        assert_eq!(s.lag(LogPosition(200), now), Duration::ZERO);
        assert_eq!(s.lag(LogPosition(250), now), Duration::ZERO);
        // Behind since the primary was first seen past it.
        assert_eq!(s.lag(LogPosition(150), now), Duration::from_millis(100));
        assert_eq!(s.lag(LogPosition(120), now), Duration::from_millis(200));
        assert_eq!(s.lag(LogPosition(0), now), Duration::from_millis(400));
    }

    #[test]
    fn old_samples_go_but_a_stuck_replica_stays_behind() {
        let t0 = Instant::now();
        let keep = Duration::from_millis(300);
        let mut s = Samples::default();
        s.push(t0, LogPosition(100), keep);
        for k in 1..=10 {
            s.push(t0 + Duration::from_millis(100 * k), LogPosition(200), keep);
        }
        assert!(s.0.len() <= 5, "{s:?}");
        let now = t0 + Duration::from_millis(1000);
        // The replica stuck at 100 is at least as far behind as the samples kept reach.
        assert!(s.lag(LogPosition(100), now) >= keep);
        assert_eq!(s.lag(LogPosition(200), now), Duration::ZERO);
    }

    #[test]
    fn read_urls_are_listed_with_commas_or_spaces_and_checked() {
        let urls = parse_urls(" postgres://a/x, postgresql://b:5433/y  ").unwrap();
        assert_eq!(urls, ["postgres://a/x", "postgresql://b:5433/y"]);
        assert!(parse_urls("").unwrap().is_empty());
        assert!(parse_urls("mysql://a/x").is_err());
    }
}
