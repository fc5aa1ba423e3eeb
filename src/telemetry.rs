//! Logging through `tracing`, filtered by `RUST_LOG` (default: info, with sqlx quiet).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to standard error.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
