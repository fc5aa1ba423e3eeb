//! Logging through `tracing`, filtered by `RUST_LOG` (default: info, with sqlx quiet), to
//! standard error: text for people, coloured only on a terminal (and never with `NO_COLOR`),
//! or one JSON object per line with `LOG_FORMAT=json` for log collectors.

use std::io::IsTerminal;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (the default) or `json`.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT").ok().as_deref() {
            None | Some("") | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!("LOG_FORMAT must be text or json, not {other:?}")),
        }
    }
}

/// Installs the global subscriber: log lines to standard error, and the database pool's
/// acquisition times to `/metrics` (whatever `RUST_LOG` says).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let format = LogFormat::from_env().unwrap_or_else(|e| {
        eprintln!("warning: {e}; writing text");
        LogFormat::Text
    });
    let log_level = log_level(&filter);
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
        LogFormat::Text => lines.with_ansi(colour).boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(PoolWaits.with_filter(Targets::new().with_target(POOL_ACQUIRE, Level::TRACE)))
        .try_init();
    // `try_init` lets through every `log` record at or below the most verbose level any layer
    // wants, and the pool's layer wants TRACE (from `tracing` alone): every `log::trace!` of
    // the WebSocket library, several per frame, would then be handed to the subscriber only
    // to be dropped there. Records are only ever written by the lines' filter, so `log`'s own
    // check, one atomic load, stops the rest.
    if installed.is_ok() {
        log::set_max_level(log_level);
    }
}

/// The most verbose `log` record `filter` lets through.
fn log_level(filter: &EnvFilter) -> log::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match filter.max_level_hint().unwrap_or(LevelFilter::TRACE) {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// The target of sqlx's event for each connection taken from a pool.
const POOL_ACQUIRE: &str = "sqlx::pool::acquire";

/// Records the wait of each connection taken from a pool (sqlx's `acquired_after_secs`,
/// which [`crate::store::connect`] asks it to report) in `db_pool_acquire_wait_seconds`.
struct PoolWaits;

impl<S: tracing::Subscriber> Layer<S> for PoolWaits {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Waited(Option<f64>);
        impl tracing::field::Visit for Waited {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "acquired_after_secs" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut waited = Waited(None);
        event.record(&mut waited);
        if let Some(seconds) = waited.0 {
            metrics::histogram!("db_pool_acquire_wait_seconds").record(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_pass_only_as_far_as_the_lines_filter_lets_them() {
        let level = |directives: &str| log_level(&EnvFilter::new(directives));
        assert_eq!(level("warn"), log::LevelFilter::Warn);
        assert_eq!(
            level("info,sqlx=warn,tower_http=info"),
            log::LevelFilter::Info
        );
        // One target asked for in detail raises the level for all; the filter drops the rest.
        assert_eq!(level("warn,tungstenite=trace"), log::LevelFilter::Trace);
        assert_eq!(level("error,hyper=debug"), log::LevelFilter::Debug);
        assert_eq!(level("off"), log::LevelFilter::Off);
    }
}
