//! Configuration: one typed struct per command, read from flags and the environment.

use crate::domain::scorecard::ScorecardRule;
use crate::graphql::gateway::PersistedMode;
use crate::http::ratelimit::{Cidr, parse_trusted};
use crate::tlog::cosignature::CosignatureVerifier;
use clap::{Args, Parser, Subcommand};
use sha2::Digest;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The database used when `DATABASE_URL` is not set (created if missing).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/commitment_tracker";

/// `commitment-tracker`: a tamper-evident record of how government commitments are delivered.
#[derive(Debug, Parser)]
#[command(name = "commitment-tracker", version, about)]
pub struct Cli {
    /// The PostgreSQL database (created if missing): a `postgres://` URL, or `embedded` for a
    /// private cluster in DATA_DIR. Unset: the local server at the default address, or the
    /// private cluster when nothing answers there.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the private PostgreSQL cluster (`DATABASE_URL=embedded`) keeps its data, socket
    /// and log.
    #[arg(
        long,
        env = "DATA_DIR",
        default_value = ".commitment-tracker",
        global = true
    )]
    pub data_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve the GraphQL API.
    Serve(Box<ServeArgs>),
    /// Run pending migrations and exit.
    Migrate,
    /// Import a seed file (idempotent: importing twice adds nothing).
    Import {
        /// The seed file, e.g. data/nhs-digitisation.json.
        file: PathBuf,
    },
    /// Print the GraphQL schema (SDL) to standard output.
    ExportSchema,
    /// Recompute every stream's hash chain and compare the projections with a fresh replay;
    /// exit 0 only when all holds.
    Verify,
    /// Replay every event into fresh projection tables and swap them in while serving.
    RebuildProjections,
    /// Erase every stored value of a name in the personal fields (evidence submitters, the
    /// actors of events, token names) with its opening, and record `PersonalDataErased`
    /// with the reason; prints how many values were erased. Every proof holds as before.
    Erase {
        /// The value to erase, exactly as stored.
        #[arg(long)]
        name: String,
        /// Why (the request's reference, its legal basis); recorded, unlike the name.
        #[arg(long)]
        reason: String,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The transparency log.
    #[command(subcommand)]
    Log(LogCommand),
}

/// Transparency-log subcommands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print a new signing key for the log (signed-note format) on standard output, and its
    /// verifier key on standard error. Keep the first secret; publish the second.
    Keygen {
        /// The log's name: the first line of every checkpoint, e.g. `tracker.example.org/log`.
        #[arg(long)]
        origin: String,
    },
    /// Audit a log from outside, with no database: verify its checkpoint's signature, check
    /// it is consistent with the one saved by the previous run, fetch the new entries from the
    /// tiles and recompute the root. Exits non-zero, naming what failed.
    Audit {
        /// The server, e.g. `http://127.0.0.1:8080` (plain HTTP).
        #[arg(long)]
        url: String,
        /// The log's verifier key (signed-note format, as `GET /log/key` serves it and as the
        /// operator publishes it).
        #[arg(long)]
        key: String,
        /// Where the previous run's checkpoint and right edge are kept; with it, a run fetches
        /// only the tiles holding new entries and fails if the log contradicts the saved one.
        #[arg(long)]
        state: Option<PathBuf>,
        /// A witness the auditor trusts, by its cosignature/v1 verifier key; repeat for each.
        /// The checkpoint must carry valid cosignatures from `--witness-quorum` of them.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the `--witness` keys must have cosigned (default: all of them).
        #[arg(long)]
        witness_quorum: Option<usize>,
    },
}

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (alone) on standard output. It is shown only this once.
    Create {
        /// contributor, assessor or admin.
        #[arg(long, value_parser = ["contributor", "assessor", "admin"])]
        role: String,
        /// Who holds it: recorded as the actor of every event written with it.
        #[arg(long)]
        name: String,
        /// Make the token expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (id, holder, role, dates); never the tokens themselves.
    List,
    /// Revoke a token by id; it is refused from then on.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: uuid::Uuid,
    },
}

/// `--listen`: `host:port`, where the host is an address or a name to resolve.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut addrs = text.to_socket_addrs().map_err(|e| {
        format!("{text:?} is not host:port with a host that resolves (e.g. 127.0.0.1:8080, localhost:8080): {e}")
    })?;
    addrs
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    /// A host name (`localhost:8080`) is resolved, and its first address used.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Import this seed file after migrating (idempotent), e.g. data/nhs-digitisation.json.
    #[arg(long, env = "IMPORT_FILE")]
    pub import: Option<PathBuf>,
    /// Most database connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// How often (ms) the live feed looks for new events when no notification woke it.
    #[arg(long, env = "FEED_POLL_INTERVAL_MS", default_value_t = 500)]
    pub feed_poll_interval_ms: u64,
    /// Events the live feed buffers for slow subscribers before they catch up from the database.
    #[arg(long, env = "FEED_BUFFER", default_value_t = 4096)]
    pub feed_buffer: usize,
    /// The scorecard's overall rating: none, worst or median.
    #[arg(long, env = "SCORECARD_RULE", default_value = "none", value_parser = ["none", "worst", "median"])]
    pub scorecard_rule: String,
    /// Seconds before an HTTP request is cut off.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Seconds between keep-alive messages on WebSocket connections.
    #[arg(long, env = "WS_KEEPALIVE_SECS", default_value_t = 15)]
    pub ws_keepalive_secs: u64,
    /// Most subscriptions active at once on one WebSocket connection.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,
    /// Most WebSocket connections this process serves at once (more are refused with 503).
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub ws_max_connections: usize,
    /// Seconds between SIGTERM and closing: readiness answers 503 at once, so that load
    /// balancers stop sending, while requests and WebSocket connections are still served.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", default_value_t = 0)]
    pub shutdown_drain_secs: u64,
    /// Seconds in-flight requests and WebSocket closes may take once closing has begun; the
    /// process exits then whatever is left.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Deepest selection nesting a query may have (deeper is QUERY_TOO_COMPLEX).
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// Largest complexity (roughly, fields selected) a query may have.
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 2_000)]
    pub max_query_complexity: usize,
    /// Most aliased fields one request may hold.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// Largest page (`first`) any list returns.
    #[arg(long, env = "MAX_PAGE_SIZE", default_value_t = 500)]
    pub max_page_size: u16,
    /// Answer the common read shapes (the live commitment list and one commitment, with
    /// their assessments and evidence) with one SQL statement that builds the whole answer,
    /// once the resolvers have answered the same document text without an error. `false`:
    /// every query goes through the resolvers.
    #[arg(long, env = "COMPILED_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub compiled_reads: bool,
    /// Require a token for reads too (queries and subscriptions), not only for writes.
    #[arg(long, env = "REQUIRE_TOKEN_FOR_READS", default_value_t = false)]
    pub require_token_for_reads: bool,
    /// Seconds a server trusts a token it has checked before checking it again (0: check on
    /// every request). Writes re-check their token in the transaction that records them, so a
    /// revocation stops writes at once; another process's revocation reaches this server's
    /// reads within this time (a revocation through this server, at once).
    #[arg(long, env = "TOKEN_CACHE_SECS", default_value_t = 5)]
    pub token_cache_secs: u64,
    /// Run only registered documents (trusted documents): a request names a registered
    /// document by its hash, or sends a text whose hash is registered; only an admin token
    /// registers one (by sending a document with its hash, as automatic persisted queries do).
    #[arg(long, env = "PERSISTED_QUERIES_ONLY", default_value_t = false)]
    pub persisted_queries_only: bool,
    /// The transparency log's private key (signed-note format, from `log keygen`). Created
    /// there (mode 0600) if the file does not exist; the last checkpoint signed is kept
    /// beside it in `<file>.checkpoint`.
    #[arg(long, env = "LOG_SIGNING_KEY_FILE", default_value = "log-signing.key")]
    pub log_signing_key_file: PathBuf,
    /// The log's name (checkpoint origin) for a key created at start.
    #[arg(
        long,
        env = "LOG_ORIGIN",
        default_value = "commitment-tracker.localhost/log"
    )]
    pub log_origin: String,
    /// The least time (ms) between two checkpoints; one is signed only when the tree grew.
    #[arg(long, env = "LOG_CHECKPOINT_INTERVAL_MS", default_value_t = 1000)]
    pub log_checkpoint_interval_ms: u64,
    /// How often (ms) the log's sequencer looks for newly committed events.
    #[arg(long, env = "LOG_SEQUENCE_INTERVAL_MS", default_value_t = 100)]
    pub log_sequence_interval_ms: u64,
    /// The log's witnesses (C2SP tlog-witness): entries separated by `;` or new lines, each
    /// `<cosignature/v1 verifier key> <URL prefix of add-checkpoint>` (plain http://).
    #[arg(long, env = "LOG_WITNESSES", default_value = "")]
    pub log_witnesses: String,
    /// How many witnesses must cosign a checkpoint before it is served.
    #[arg(long, env = "LOG_WITNESS_QUORUM", default_value_t = 0)]
    pub log_witness_quorum: usize,
    /// Requests (and WebSocket messages) a second per client address, in bursts of as many
    /// (IPv6 addresses by their /64); 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_IP", default_value_t = 100)]
    pub rate_limit_per_ip: u32,
    /// Requests (and WebSocket messages) a second per bearer token, in bursts of as many;
    /// 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_TOKEN", default_value_t = 100)]
    pub rate_limit_per_token: u32,
    /// Proxies whose `X-Forwarded-For` names the client: addresses or CIDR blocks separated
    /// by commas (for example `10.0.0.0/8,127.0.0.1`). Empty: the header is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The address people reach this server at (for example `https://tracker.example.org`):
    /// the base of links in feeds, pages and webhook payloads. Empty: `http://` and the
    /// request's `Host` header.
    #[arg(long, env = "PUBLIC_URL", default_value = "", value_parser = parse_public_url)]
    pub public_url: String,
    /// Let webhooks deliver to private, loopback and link-local addresses (refused by
    /// default: nobody can aim the server at what stands behind its firewall).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,
    /// The delay (ms) before the first retry of a failed webhook delivery; each further
    /// retry doubles it.
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    pub webhook_retry_base_ms: u64,
    /// The longest delay (s) between two attempts at a webhook delivery.
    #[arg(long, env = "WEBHOOK_RETRY_MAX_SECS", default_value_t = 3600)]
    pub webhook_retry_max_secs: u64,
    /// Failed attempts in a row after which a webhook is paused until an admin resumes it.
    #[arg(long, env = "WEBHOOK_PAUSE_AFTER_FAILURES", default_value_t = 15)]
    pub webhook_pause_after_failures: u32,
    /// How long (s) one webhook delivery (connect, send, answer) may take.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
    /// `max-age` (s) of anonymous `GET /graphql` answers: how long a shared cache may serve
    /// one without asking again (0: it asks every time, and gets 304 while nothing changed).
    #[arg(long, env = "CACHE_MAX_AGE_SECS", default_value_t = 0)]
    pub cache_max_age_secs: u64,
    /// Streaming replicas of `DATABASE_URL` that serve queries, exports, feeds, pages and
    /// subscriptions' catch-up reads: `postgres://` URLs separated by commas. Empty: every
    /// read goes to the primary.
    #[arg(
        long,
        env = "DATABASE_READ_URL",
        default_value = "",
        hide_env_values = true
    )]
    pub database_read_url: String,
    /// A replica further behind the primary than this (ms) is skipped until it catches up;
    /// so is one that does not answer.
    #[arg(long, env = "REPLICA_MAX_LAG_MS", default_value_t = 1000)]
    pub replica_max_lag_ms: u64,
    /// How long (ms) a read sent with `X-Min-Log-Position` waits for a replica to replay
    /// that far before the primary answers it instead.
    #[arg(long, env = "REPLICA_WAIT_MS", default_value_t = 500)]
    pub replica_wait_ms: u64,
}

/// `PUBLIC_URL`: empty, or an `http(s)://` address, kept without a trailing `/`.
fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(format!("{raw:?} is not an http:// or https:// address"))
    }
}

/// The transparency log's settings (DESIGN §10).
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The private key's file.
    pub signing_key_file: PathBuf,
    /// The origin of a key created at start.
    pub origin: String,
    /// Least time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Sequencer poll interval.
    pub sequence_interval: Duration,
    /// The witnesses asked to cosign each checkpoint.
    pub witnesses: Vec<WitnessConfig>,
    /// Cosignatures needed before a checkpoint is served.
    pub witness_quorum: usize,
}

/// One witness of the log: its key and where it takes checkpoints.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// Its cosignature/v1 verifier key.
    pub verifier: CosignatureVerifier,
    /// The URL prefix of its `add-checkpoint` endpoint.
    pub url: String,
}

/// Reads `LOG_WITNESSES` and checks `LOG_WITNESS_QUORUM` against it.
pub fn parse_witnesses(list: &str, quorum: usize) -> anyhow::Result<Vec<WitnessConfig>> {
    let mut witnesses: Vec<WitnessConfig> = Vec::new();
    for entry in list
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let mut parts = entry.split_whitespace();
        let (Some(vkey), Some(url), None) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!(
                "LOG_WITNESSES: {entry:?} is not `<verifier key> <URL>` (entries are separated by ;)"
            );
        };
        let verifier =
            CosignatureVerifier::new(vkey).map_err(|e| anyhow::anyhow!("LOG_WITNESSES: {e}"))?;
        anyhow::ensure!(
            url.starts_with("http://"),
            "LOG_WITNESSES: the witness URL {url:?} is not http:// (reach https through a local TLS proxy)"
        );
        anyhow::ensure!(
            !witnesses
                .iter()
                .any(|w| w.verifier.vkey() == verifier.vkey()),
            "LOG_WITNESSES: the witness {vkey} is listed twice"
        );
        witnesses.push(WitnessConfig {
            verifier,
            url: url.trim_end_matches('/').to_owned(),
        });
    }
    anyhow::ensure!(
        quorum <= witnesses.len(),
        "LOG_WITNESS_QUORUM is {quorum} but LOG_WITNESSES lists {} witnesses: no checkpoint could ever be served",
        witnesses.len()
    );
    Ok(witnesses)
}

impl LogSettings {
    /// Where the last checkpoint signed is kept: beside the key.
    pub fn state_file(&self) -> PathBuf {
        let mut name = self.signing_key_file.clone().into_os_string();
        name.push(".checkpoint");
        name.into()
    }
}

/// Everything the server needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database.
    pub database_url: String,
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Pool size.
    pub db_max_connections: u32,
    /// Feed poll interval.
    pub feed_poll_interval: Duration,
    /// Feed buffer.
    pub feed_buffer: usize,
    /// Scorecard rule.
    pub scorecard_rule: ScorecardRule,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Body limit.
    pub max_body_bytes: usize,
    /// WebSocket keep-alive interval.
    pub ws_keepalive: Duration,
    /// Subscriptions per WebSocket connection.
    pub ws_max_subscriptions: usize,
    /// WebSocket connections per process.
    pub ws_max_connections: usize,
    /// Time between a shutdown signal and closing.
    pub shutdown_drain: Duration,
    /// Time closing may take.
    pub shutdown_grace: Duration,
    /// Query depth limit.
    pub max_query_depth: usize,
    /// Query complexity limit.
    pub max_query_complexity: usize,
    /// Alias limit.
    pub max_aliases: usize,
    /// Page size limit.
    pub max_page_size: i32,
    /// Whether compiled reads answer the shapes they know.
    pub compiled_reads: bool,
    /// Whether reads need a token.
    pub require_token_for_reads: bool,
    /// How long a checked token is trusted.
    pub token_cache: Duration,
    /// Whether any document runs, or only registered ones.
    pub persisted_mode: PersistedMode,
    /// The transparency log.
    pub log: LogSettings,
    /// Requests a second per client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Requests a second per token (0: no limit).
    pub rate_limit_per_token: u32,
    /// Proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<Cidr>,
    /// The address people reach the server at, without a trailing `/` (none: from `Host`).
    pub public_url: Option<String>,
    /// Webhook checks and deliveries.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// `max-age` of anonymous reads.
    pub cache_max_age_secs: u64,
    /// Read replicas.
    pub replicas: crate::store::replicas::ReplicaSettings,
}

impl Settings {
    /// Settings from `serve`'s arguments.
    pub fn from_args(database_url: String, args: &ServeArgs) -> anyhow::Result<Self> {
        let witnesses = parse_witnesses(&args.log_witnesses, args.log_witness_quorum)?;
        let trusted_proxies = parse_trusted(&args.trusted_proxies).map_err(anyhow::Error::msg)?;
        Ok(Self {
            database_url,
            listen: args.listen,
            db_max_connections: args.db_max_connections.max(2),
            feed_poll_interval: Duration::from_millis(args.feed_poll_interval_ms.max(10)),
            feed_buffer: args.feed_buffer,
            scorecard_rule: ScorecardRule::parse(&args.scorecard_rule).unwrap_or_default(),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            max_body_bytes: args.max_body_bytes,
            ws_keepalive: Duration::from_secs(args.ws_keepalive_secs.max(1)),
            ws_max_subscriptions: args.ws_max_subscriptions.max(1),
            ws_max_connections: args.ws_max_connections.max(1),
            shutdown_drain: Duration::from_secs(args.shutdown_drain_secs),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            max_query_depth: args.max_query_depth.max(2),
            max_query_complexity: args.max_query_complexity.max(10),
            max_aliases: args.max_aliases,
            max_page_size: i32::from(args.max_page_size.max(1)),
            compiled_reads: args.compiled_reads,
            require_token_for_reads: args.require_token_for_reads,
            token_cache: Duration::from_secs(args.token_cache_secs),
            persisted_mode: if args.persisted_queries_only {
                PersistedMode::Only
            } else {
                PersistedMode::Automatic
            },
            log: LogSettings {
                signing_key_file: args.log_signing_key_file.clone(),
                origin: args.log_origin.clone(),
                checkpoint_interval: Duration::from_millis(args.log_checkpoint_interval_ms),
                sequence_interval: Duration::from_millis(args.log_sequence_interval_ms.max(5)),
                witnesses,
                witness_quorum: args.log_witness_quorum,
            },
            rate_limit_per_ip: args.rate_limit_per_ip,
            rate_limit_per_token: args.rate_limit_per_token,
            trusted_proxies,
            public_url: Some(args.public_url.clone()).filter(|u| !u.is_empty()),
            webhooks: crate::webhooks::WebhookSettings {
                allow_private: args.webhook_allow_private,
                retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
                retry_cap: Duration::from_secs(args.webhook_retry_max_secs.max(1)),
                pause_after: args.webhook_pause_after_failures.max(1),
                timeout: Duration::from_secs(args.webhook_timeout_secs.max(1)),
                concurrency: 16,
                changes: Default::default(),
            },
            cache_max_age_secs: args.cache_max_age_secs,
            replicas: crate::store::replicas::ReplicaSettings {
                urls: crate::store::replicas::parse_urls(&args.database_read_url)?,
                max_lag: Duration::from_millis(args.replica_max_lag_ms.max(1)),
                wait: Duration::from_millis(args.replica_wait_ms),
                max_connections: args.db_max_connections.max(2),
            },
        })
    }

    /// Defaults for `database_url`, listening on `listen`, with the log's key in a file of
    /// the temporary directory named after the database (so that every database has a key
    /// and a state file of its own, as tests and benchmarks need).
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Self {
        let database_url = database_url.into();
        let mut args = ServeArgs::parse_from_defaults();
        let tag = hex::encode(&sha2::Sha256::digest(database_url.as_bytes())[..8]);
        args.log_signing_key_file =
            std::env::temp_dir().join(format!("commitment-tracker-log-{tag}.key"));
        Self {
            listen,
            ..Self::from_args(database_url, &args).expect("the defaults are valid")
        }
    }
}

impl ServeArgs {
    fn parse_from_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::parse_from(["serve"]).args
    }
}
