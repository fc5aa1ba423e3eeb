//! Every event's personal values, read in one pass before the log is folded.
//!
//! Looking each event's values up as its row is read (a subquery per event) took as long in
//! PostgreSQL as reading the events themselves. Reading `personal_data` whole is one sequential
//! scan; the values repeat (a handful of actors write most events), so each distinct set of an
//! event's values is kept once and each event holds only its number.
//!
//! The events are kept sorted by id rather than hashed: event ids are time-ordered (UUIDv7),
//! so the log, read in committed order, asks for ids close to the one before, and a search
//! that starts from the last answer finds each in a few steps over memory it has just read. A
//! hash map sent each lookup to a random place in a table of a million entries.

use super::super::StoreResult;
use super::super::personal::Personal;
use futures_util::TryStreamExt;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The personal values of every event in the snapshot read.
#[derive(Default)]
pub(super) struct PersonalIndex {
    /// The distinct sets of values (fields in name order, as [`Personal`] keeps them).
    sets: Vec<Personal>,
    /// Each set's number in `sets`.
    numbers: HashMap<Personal, u32>,
    /// Each event's id (as a number, in uuid order) and set, sorted by id.
    events: Vec<(u128, u32)>,
    /// Where the last lookup ended.
    cursor: usize,
    /// What an event without personal values reads.
    none: Personal,
}

impl PersonalIndex {
    /// Reads `personal_data` whole. Run it in the snapshot the events are read in, so that
    /// every event read has its values here.
    pub(super) async fn read(conn: &mut PgConnection) -> StoreResult<Self> {
        let mut index = Self::default();
        // language=PostgreSQL
        let mut rows = sqlx::query_as::<_, (Uuid, String, Option<String>)>(
            "select event_id, field, value from personal_data",
        )
        .fetch(&mut *conn);
        let mut values = Vec::new();
        while let Some((event_id, field, value)) = rows.try_next().await? {
            let n = index.number(Personal(vec![(field, value)]));
            values.push((event_id.as_u128(), n));
        }
        index.group(values);
        Ok(index)
    }

    /// Makes the index from one `(event, single-value set)` pair per value, in any order:
    /// an event with several values gets the set of all of them.
    fn group(&mut self, mut values: Vec<(u128, u32)>) {
        values.sort_unstable();
        // Each event's entry is written over the first of its run (in place: the list is a
        // million entries long for a million events).
        let (mut read, mut kept) = (0, 0);
        while read < values.len() {
            let id = values[read].0;
            let run = values[read..].iter().take_while(|(e, _)| *e == id).count();
            let n = if run == 1 {
                values[read].1
            } else {
                let mut set: Vec<_> = values[read..read + run]
                    .iter()
                    .flat_map(|(_, n)| self.sets[*n as usize].0.iter().cloned())
                    .collect();
                set.sort();
                self.number(Personal(set))
            };
            values[kept] = (id, n);
            kept += 1;
            read += run;
        }
        values.truncate(kept);
        self.events = values;
    }

    fn number(&mut self, set: Personal) -> u32 {
        if let Some(&n) = self.numbers.get(&set) {
            return n;
        }
        let n = u32::try_from(self.sets.len()).expect("fewer than 2^32 distinct sets");
        self.sets.push(set.clone());
        self.numbers.insert(set, n);
        n
    }

    /// An event's values (none if it has none).
    pub(super) fn of(&mut self, event_id: &Uuid) -> &Personal {
        match self.find(event_id.as_u128()) {
            Some(n) => &self.sets[n as usize],
            None => &self.none,
        }
    }

    /// Gallops from the last answer towards `id`, then searches the window it closed in on.
    fn find(&mut self, id: u128) -> Option<u32> {
        let events = &self.events;
        if events.is_empty() {
            return None;
        }
        let from = self.cursor.min(events.len() - 1);
        let (lo, hi) = if events[from].0 <= id {
            // events[lo] <= id, and events[hi] > id or hi is the end.
            let (mut lo, mut step) = (from, 1);
            while lo + step < events.len() && events[lo + step].0 <= id {
                lo += step;
                step *= 2;
            }
            (lo, (lo + step).min(events.len()))
        } else {
            // events[hi] > id, and events[lo] <= id or lo is the start.
            let (mut hi, mut step) = (from, 1);
            while hi >= step && events[hi - step].0 > id {
                hi -= step;
                step *= 2;
            }
            (hi.saturating_sub(step), hi)
        };
        let at = lo + events[lo..hi].partition_point(|(e, _)| *e < id);
        let found = events.get(at).filter(|(e, _)| *e == id)?;
        self.cursor = at;
        Some(found.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(values: &[(Uuid, &str, Option<&str>)]) -> PersonalIndex {
        let mut index = PersonalIndex::default();
        let pairs = values
            .iter()
            .map(|(id, field, value)| {
                let set = Personal(vec![(field.to_string(), value.map(str::to_owned))]);
                (id.as_u128(), index.number(set))
            })
            .collect();
        index.group(pairs);
        index
    }

    #[test]
    fn each_event_reads_its_own_values_whatever_order_they_came_in() {
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut index = index(&[
            (a, "submittedBy", Some("Ada")),
            (b, "actor", Some("Bo")),
            (a, "actor", Some("Bo")),
            (c, "actor", None),
            (d, "actor", Some("Bo")),
        ]);

        assert_eq!(index.of(&a).get("actor"), Some("Bo"));
        assert_eq!(index.of(&a).get("submittedBy"), Some("Ada"));
        assert_eq!(
            index.of(&a).0,
            vec![
                ("actor".to_owned(), Some("Bo".to_owned())),
                ("submittedBy".to_owned(), Some("Ada".to_owned())),
            ],
            "fields in name order"
        );
        assert_eq!(index.of(&b).get("submittedBy"), None);
        assert_eq!(
            index.of(&c).get("actor"),
            Some(crate::store::personal::ERASED)
        );
        let bo = index.of(&b).clone();
        assert_eq!(index.of(&d), &bo);
        assert_eq!(index.of(&Uuid::now_v7()), &Personal::default());
        // b's and d's set is kept once.
        assert_eq!(index.sets.len(), 4);
    }

    #[test]
    fn lookups_in_any_order_find_every_event_and_no_other() {
        let ids: Vec<Uuid> = (0..1000u128).map(|i| Uuid::from_u128(i * 7 + 3)).collect();
        let values: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, "actor", Some(if i % 3 == 0 { "x" } else { "y" })))
            .collect();
        let mut index = index(&values);
        // Forwards, backwards, jumping about, and ids between those held.
        let mut order: Vec<usize> = (0..1000).chain((0..1000).rev()).collect();
        order.extend((0..1000).map(|i| (i * 389) % 1000));
        for i in order {
            let want = if i % 3 == 0 { "x" } else { "y" };
            assert_eq!(index.of(&ids[i]).get("actor"), Some(want), "event {i}");
            let between = Uuid::from_u128(ids[i].as_u128() + 1);
            assert_eq!(index.of(&between).get("actor"), None, "no event at {i}+1");
        }
        assert_eq!(index.of(&Uuid::from_u128(0)).get("actor"), None);
        assert_eq!(index.of(&Uuid::max()).get("actor"), None);
    }
}
