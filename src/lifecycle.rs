//! Where the process is in its life (DESIGN §12): whether its background tasks run, whether
//! it is stopping (readiness answers 503 from then on) and whether it is closing (WebSocket
//! connections end with close code 1001 and no new connection is accepted).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Shared by the HTTP surface and the tasks that run the process. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    stopping: Arc<watch::Sender<bool>>,
    closing: Arc<watch::Sender<bool>>,
    feed: Arc<AtomicBool>,
    sequencer: Arc<AtomicBool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            stopping: Arc::new(watch::channel(false).0),
            closing: Arc::new(watch::channel(false).0),
            feed: Arc::default(),
            sequencer: Arc::default(),
        }
    }
}

impl Lifecycle {
    /// Shutdown has begun: readiness fails from now on.
    pub fn begin_stopping(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// The drain is over: connections are to close.
    pub fn begin_closing(&self) {
        self.stopping.send_replace(true);
        self.closing.send_replace(true);
    }

    /// Turns true when connections are to close.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Set while the live feed's reader runs.
    pub fn feed_running(&self) -> &Arc<AtomicBool> {
        &self.feed
    }

    /// Set while the log's sequencer task runs (leading or waiting its turn).
    pub fn sequencer_running(&self) -> &Arc<AtomicBool> {
        &self.sequencer
    }

    /// Whether both background tasks run.
    pub fn tasks(&self) -> (bool, bool) {
        (
            self.feed.load(Ordering::Acquire),
            self.sequencer.load(Ordering::Acquire),
        )
    }
}
