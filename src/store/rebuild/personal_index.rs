//! Every event's personal values, read in one pass before the log is folded.
//!
//! Looking each event's values up as its row is read (a subquery per event) took as long in
//! PostgreSQL as reading the events themselves. Reading `personal_data` whole is one sequential
//! scan; the values repeat (a handful of actors write most events), so each distinct set of an
//! event's values is kept once and each event holds only its number.

use super::super::StoreResult;
use super::super::personal::Personal;
use futures_util::TryStreamExt;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use uuid::Uuid;

/// Hashes an event id by mixing its two halves: ids are not chosen by an adversary here (the
/// index lives for one rebuild), and the default SipHash took a third of the lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(26) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn finish(&self) -> u64 {
        // The multiply mixes upwards only; fold the high half down into the bucket bits.
        self.0 ^ (self.0 >> 29)
    }
}

/// The personal values of every event in the snapshot read.
#[derive(Default)]
pub(super) struct PersonalIndex {
    /// The distinct sets of values (fields in name order, as [`Personal`] keeps them).
    sets: Vec<Personal>,
    /// Each set's number in `sets`.
    numbers: HashMap<Personal, u32>,
    /// Each event's set.
    events: HashMap<Uuid, u32, BuildHasherDefault<IdHasher>>,
    /// What an event without personal values reads.
    none: Personal,
}

impl PersonalIndex {
    /// Reads `personal_data` whole. Run it in the snapshot the events are read in, so that
    /// every event read has its values here.
    pub(super) async fn read(conn: &mut PgConnection) -> StoreResult<Self> {
        // Sized from the planner's count, so the map is not rebuilt as it grows.
        // language=PostgreSQL
        let estimate: f32 = sqlx::query_scalar(
            "select reltuples from pg_class where oid = 'personal_data'::regclass",
        )
        .fetch_one(&mut *conn)
        .await?;
        let mut index = Self::default();
        index.events.reserve(estimate.clamp(0.0, 1e8) as usize);
        // language=PostgreSQL
        let mut rows = sqlx::query_as::<_, (Uuid, String, Option<String>)>(
            "select event_id, field, value from personal_data",
        )
        .fetch(&mut *conn);
        while let Some((event_id, field, value)) = rows.try_next().await? {
            index.add(event_id, field, value);
        }
        Ok(index)
    }

    /// Adds one value to its event's set (rows come in any order).
    fn add(&mut self, event_id: Uuid, field: String, value: Option<String>) {
        let mut set = match self.events.get(&event_id) {
            Some(&n) => self.sets[n as usize].clone(),
            None => Personal::default(),
        };
        let at = set.0.partition_point(|(f, _)| *f < field);
        set.0.insert(at, (field, value));
        let n = self.number(set);
        self.events.insert(event_id, n);
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
    pub(super) fn of(&self, event_id: &Uuid) -> &Personal {
        self.events
            .get(event_id)
            .map_or(&self.none, |&n| &self.sets[n as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_reads_its_own_values_whatever_order_they_came_in() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut index = PersonalIndex::default();
        index.add(a, "submittedBy".into(), Some("Ada".into()));
        index.add(b, "actor".into(), Some("Bo".into()));
        index.add(a, "actor".into(), Some("Bo".into()));
        index.add(c, "actor".into(), None);
        let d = Uuid::now_v7();
        index.add(d, "actor".into(), Some("Bo".into()));

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
        assert_eq!(index.of(&d), index.of(&b));
        assert_eq!(index.of(&Uuid::now_v7()), &Personal::default());
        // b's and d's set is kept once.
        assert_eq!(index.sets.len(), 4);
    }
}
