//! Progress of long commands (`import`, `verify`, `rebuild-projections`, `log audit`): a bar
//! or a counter on standard error when it is a terminal, nothing otherwise, so that a log
//! file or a pipe gets only each command's plain summary line.
//!
//! Library code reports through a [`Progress`] it is given; [`Progress::hidden`] costs an
//! `Option` check per call.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A handle on one command's progress display (cheap to clone; clones share the display).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// No display at all.
    pub fn hidden() -> Self {
        Self::default()
    }

    /// A display on standard error if it is a terminal (and `NO_PROGRESS` is not set),
    /// else hidden.
    pub fn for_terminal() -> Self {
        if !std::io::stderr().is_terminal() || std::env::var_os("NO_PROGRESS").is_some() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar: Some(bar) }
    }

    /// Starts a phase named `message` that counts its steps: a bar towards `total` if it is
    /// known, else a counter.
    pub fn phase(&self, message: &str, total: Option<u64>) {
        let template = if total.is_some() {
            "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta} left)"
        } else {
            "{spinner} {msg}: {human_pos} ({per_sec})"
        };
        self.start(message, total, template);
    }

    /// Starts a phase named `message` that has no steps to count (a spinner and the time).
    pub fn step(&self, message: &str) {
        self.start(message, None, "{spinner} {msg} ({elapsed})");
    }

    fn start(&self, message: &str, total: Option<u64>, template: &str) {
        let Some(bar) = &self.bar else { return };
        // The style first: a phase that ended within the redraw interval was otherwise
        // only ever drawn in the previous one, without its name.
        let style = ProgressStyle::with_template(template)
            .expect("the templates are valid")
            .progress_chars("=> ");
        bar.set_message(message.to_owned());
        bar.set_style(style);
        bar.reset();
        match total {
            Some(n) => bar.set_length(n),
            None => bar.unset_length(),
        }
        // Shown now, whatever the redraw interval: a short phase is still seen by name.
        bar.force_draw();
    }

    /// `n` more steps done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Clears the display (the command then prints its summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
