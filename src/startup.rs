//! Building and running the server: `Application::build(settings)` migrates, starts the live
//! feed and binds the listener (port 0 picks a free one, for tests); `run_until_stopped`
//! serves until the shutdown future resolves.

use crate::commands::Commands;
use crate::config::Settings;
use crate::graphql::compiled::Compiler;
use crate::graphql::gateway::Gateway;
use crate::graphql::limits::Limits;
use crate::graphql::{SchemaDeps, Schemas, build_schemas};
use crate::http::log::LogInfo;
use crate::http::ratelimit::RateLimiter;
use crate::http::{AppState, router};
use crate::lifecycle::Lifecycle;
use crate::shared::Hub;
use crate::store::persisted::PersistedQueries;
use crate::store::replicas::Reads;
use crate::store::tokens::TokenCache;
use crate::store::{self, feed::Feed, feed::FeedSettings};
use crate::tlog::sequencer::{self, SequencerSettings};
use crate::tlog::signer::{Signer, load_or_create_key};
use axum::Router;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::sync::watch;
use tracing::Instrument;

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    feed: Feed,
    pool: PgPool,
    sequencer: SequencerSettings,
    lifecycle: Lifecycle,
    ws_connections: Arc<Semaphore>,
    settings: Settings,
    reads: Reads,
}

impl Application {
    /// Creates the database if missing, migrates it, starts nothing yet, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = store::open_pool(&settings.database_url, settings.db_max_connections).await?;
        store::migrate(&pool).await?;
        let reads = Reads::new(pool.clone(), &settings.replicas)?;
        let feed = Feed::new(
            pool.clone(),
            FeedSettings {
                poll_interval: settings.feed_poll_interval,
                capacity: settings.feed_buffer,
                horizon: Default::default(),
            },
        )
        .await?
        .with_replicas(reads.clone());
        let commands = Commands::new(pool.clone(), feed.clone());
        let tokens = Arc::new(TokenCache::new(settings.token_cache));
        let log = &settings.log;
        let (key, created) = load_or_create_key(&log.signing_key_file, &log.origin)?;
        if created {
            tracing::warn!(
                file = %log.signing_key_file.display(),
                verifier_key = key.verifier_key(),
                "created a new signing key for the transparency log; keep it safe and set \
                 LOG_SIGNING_KEY_FILE to it"
            );
        }
        let log_info = Arc::new(LogInfo {
            verifier_key: key.verifier_key().to_owned(),
            origin: key.origin().to_owned(),
            quorum: log.witness_quorum,
            witnesses: log
                .witnesses
                .iter()
                .map(|w| w.verifier.vkey().to_owned())
                .collect(),
        });
        let sequencer = SequencerSettings {
            poll_interval: log.sequence_interval,
            checkpoint_interval: log.checkpoint_interval,
            signer: Arc::new(Signer::new(key, log.state_file())),
            witnesses: log.witnesses.clone().into(),
        };
        let Schemas {
            http,
            live,
            readers,
        } = build_schemas(SchemaDeps {
            pool: pool.clone(),
            commands,
            feed: feed.clone(),
            scorecard_rule: settings.scorecard_rule,
            max_complexity: settings.max_query_complexity,
            max_page: settings.max_page_size,
            tokens: tokens.clone(),
            log: log_info.clone(),
            webhooks: settings.webhooks.clone(),
            reads: reads.clone(),
        });
        let limits = Limits {
            max_depth: settings.max_query_depth,
            max_aliases: settings.max_aliases,
        };
        let persisted = PersistedQueries::new(pool.clone());
        let mode = settings.persisted_mode;
        let compiler = || Compiler::new(settings.compiled_reads, settings.max_page_size);
        let gateway = Gateway::new(http, limits, persisted.clone(), mode, compiler());
        let live = Gateway::new(live, limits, persisted, mode, compiler());
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let lifecycle = Lifecycle::default();
        // The recorder exists before the first figure is recorded.
        crate::metrics::handle();
        let ws_connections = Arc::new(Semaphore::new(settings.ws_max_connections));
        let router = router(AppState {
            pool: pool.clone(),
            readers,
            ws_connections: ws_connections.clone(),
            exports: Arc::new(Semaphore::new(crate::opendata::export::concurrent_exports(
                settings.db_max_connections,
            ))),
            lifecycle: lifecycle.clone(),
            hub: Arc::new(Hub::new(live.clone())),
            tokens,
            gateway,
            live,
            settings: settings.clone(),
            log: log_info,
            limiter: Arc::new(RateLimiter::new(
                settings.rate_limit_per_ip,
                settings.rate_limit_per_token,
                settings.trusted_proxies.clone(),
            )),
        });
        Ok(Self {
            listener,
            router,
            feed,
            pool,
            sequencer,
            lifecycle,
            ws_connections,
            settings,
            reads,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` resolves, then shuts down in order (DESIGN §12): readiness
    /// answers 503 at once; after `SHUTDOWN_DRAIN_SECS` no new connection is accepted and
    /// every WebSocket subscription is completed and its connection closed with code 1001;
    /// in-flight requests finish; the feed and the sequencer stop. Whatever is left after
    /// `SHUTDOWN_GRACE_SECS` more is dropped.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut feed_stop = stop_rx.clone();
        let feed_running = self.lifecycle.feed_running().clone();
        let feed = self.feed.clone();
        let feed = tokio::spawn(async move {
            feed_running.store(true, std::sync::atomic::Ordering::Release);
            feed.run(async move {
                let _ = feed_stop.wait_for(|s| *s).await;
            })
            .await;
            feed_running.store(false, std::sync::atomic::Ordering::Release);
        });
        let sequencer_running = self.lifecycle.sequencer_running().clone();
        let (pool, settings) = (self.pool.clone(), self.sequencer.clone());
        let sequencer_stop = stop_rx.clone();
        let sequencer = tokio::spawn(
            async move {
                sequencer_running.store(true, std::sync::atomic::Ordering::Release);
                sequencer::run(pool, settings, sequencer_stop).await;
                sequencer_running.store(false, std::sync::atomic::Ordering::Release);
            }
            .instrument(tracing::info_span!("log_sequencer")),
        );
        let (pool, feed_handle) = (self.pool.clone(), self.feed.clone());
        let webhook_settings = self.settings.webhooks.clone();
        let webhooks = tokio::spawn(
            crate::webhooks::dispatcher::run(pool, feed_handle, webhook_settings, stop_rx.clone())
                .instrument(tracing::info_span!("webhooks")),
        );
        let replicas = tokio::spawn(
            self.reads
                .clone()
                .monitor(stop_rx.clone())
                .instrument(tracing::info_span!("replicas")),
        );
        let lifecycle = self.lifecycle.clone();
        let drain = self.settings.shutdown_drain;
        let grace = self.settings.shutdown_grace;
        // Each answer and each delivery is written whole: sent at once, not held back for the
        // acknowledgement of what went before it (Nagle's algorithm).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
            }
        });
        let serve = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            lifecycle.begin_stopping();
            tracing::info!(
                drain_secs = drain.as_secs(),
                "stopping: readiness now fails"
            );
            tokio::time::sleep(drain).await;
            lifecycle.begin_closing();
            tracing::info!("closing connections");
        });
        let closing = {
            let mut closing = self.lifecycle.closing();
            async move {
                let _ = closing.wait_for(|c| *c).await;
            }
        };
        // Requests finish and WebSocket connections close, within the grace period.
        let ws = self.ws_connections.clone();
        let max_ws = self.settings.ws_max_connections as u32;
        let finished = async move {
            let result = serve.await;
            // Every WebSocket connection holds a permit until its close frame is sent.
            let _ = ws.acquire_many(max_ws).await;
            result
        };
        tokio::pin!(finished);
        let result = tokio::select! {
            result = &mut finished => result,
            _ = async { closing.await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; dropping what is left");
                Ok(())
            }
        };
        let _ = stop_tx.send(true);
        drop(stop_rx);
        let _ = tokio::time::timeout(grace.max(std::time::Duration::from_secs(1)), feed).await;
        let _ = tokio::time::timeout(grace.max(std::time::Duration::from_secs(1)), sequencer).await;
        let _ = tokio::time::timeout(grace.max(std::time::Duration::from_secs(1)), webhooks).await;
        let _ = tokio::time::timeout(grace.max(std::time::Duration::from_secs(1)), replicas).await;
        tracing::info!("stopped");
        result
    }
}
