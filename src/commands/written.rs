//! Where a request's writes stand in the write-ahead log.
//!
//! A mutation answers with `extensions.logPosition`: a position at or after every commit the
//! request made, which a read can ask a replica to have replayed (`X-Min-Log-Position`). The
//! committer reads that position on the connection that has just committed, once for its
//! whole batch, and the commands note it here, so the answer needs no statement of its own.

use crate::store::position::LogPosition;
use std::sync::{Arc, Mutex};

/// A request's writes, as its commands noted them. Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<Mutex<Noted>>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Noted {
    /// No write noted.
    #[default]
    Nothing,
    /// Every write noted is at or before this position.
    At(LogPosition),
    /// A write was made whose position is not known: only the database can say.
    Unknown,
}

impl Written {
    /// Notes a commit at or before `position`; `None` for a write (or a replayed command) whose
    /// position is not known.
    pub fn note(&self, position: Option<LogPosition>) {
        let mut noted = self.0.lock().expect("written lock");
        *noted = match (*noted, position) {
            (Noted::Unknown, _) | (_, None) => Noted::Unknown,
            (Noted::Nothing, Some(p)) => Noted::At(p),
            (Noted::At(q), Some(p)) => Noted::At(p.max(q)),
        };
    }

    /// Notes a write whose position is not known (one made outside the commands).
    pub fn unknown(&self) {
        self.note(None);
    }

    /// A position at or after every write noted, if each had one and there was any.
    pub fn position(&self) -> Option<LogPosition> {
        match *self.0.lock().expect("written lock") {
            Noted::At(p) => Some(p),
            Noted::Nothing | Noted::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_covers_every_write_and_any_unknown_one_withholds_it() {
        let written = Written::default();
        assert_eq!(written.position(), None, "nothing written");
        written.note(Some(LogPosition(7)));
        written.clone().note(Some(LogPosition(5)));
        assert_eq!(
            written.position(),
            Some(LogPosition(7)),
            "the later of the two"
        );
        written.note(Some(LogPosition(9)));
        assert_eq!(written.position(), Some(LogPosition(9)));
        written.unknown();
        written.note(Some(LogPosition(11)));
        assert_eq!(
            written.position(),
            None,
            "an unknown write is never covered"
        );
    }
}
