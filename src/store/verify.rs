//! Tamper evidence: recompute every stream's hash chain and compare the projections with a
//! fresh replay. Every problem names the stream, the version and what differs.

use super::chain;
use super::event_store::{EVENT_COLUMNS, StoredEvent};
use super::read::{self, CommitmentFilter};
use super::replay::{TimeFilter, View};
use super::tree;
use super::{StoreError, StoreResult};
use crate::progress::Progress;
use crate::tlog::leaf::leaf_bytes;
use crate::tlog::tree::{HashReader, MemoryTree, stored_hash_count};
use sqlx::{AssertSqlSafe, PgPool};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One thing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The stream concerned, if one is.
    pub stream_id: Option<Uuid>,
    /// The version concerned, if one is.
    pub version: Option<i32>,
    /// What differs.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.stream_id, self.version) {
            (Some(s), Some(v)) => write!(f, "stream {s} version {v}: {}", self.message),
            (Some(s), None) => write!(f, "stream {s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Streams whose chains were recomputed.
    pub streams: usize,
    /// Events whose hashes were recomputed.
    pub events: usize,
    /// Projection rows compared with the replay.
    pub projection_rows: usize,
    /// Leaves of the transparency log checked against their events.
    pub leaves: usize,
    /// Everything that does not hold; empty when all holds.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when every check held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(stream: Uuid, version: Option<i32>, message: impl Into<String>) -> Problem {
    Problem {
        stream_id: Some(stream),
        version,
        message: message.into(),
    }
}

/// Checks every stream's chain and the projections against a replay.
pub async fn verify(pool: &PgPool) -> StoreResult<Report> {
    verify_with(pool, &Progress::hidden()).await
}

/// [`verify`], reporting each phase to `progress`.
pub async fn verify_with(pool: &PgPool, progress: &Progress) -> StoreResult<Report> {
    progress.step("reading the events");
    // language=PostgreSQL
    let sql = format!("select {EVENT_COLUMNS} from events order by stream_id, version");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    let events: Vec<StoredEvent> = rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    let mut report = Report {
        events: events.len(),
        ..Report::default()
    };

    // 1. Each stream's chain: versions 1..n without gaps, each link to the previous hash,
    //    each hash recomputed from the stored envelope and payload.
    let mut by_stream: BTreeMap<Uuid, Vec<&StoredEvent>> = BTreeMap::new();
    for e in &events {
        by_stream.entry(e.stream_id).or_default().push(e);
    }
    report.streams = by_stream.len();
    progress.phase("checking hash chains", Some(events.len() as u64));
    let mut heads: HashMap<Uuid, (i32, Vec<u8>)> = HashMap::new();
    for (stream, chain_events) in &by_stream {
        let mut previous: Option<&[u8]> = None;
        for (i, e) in chain_events.iter().enumerate() {
            let expected_version = i as i32 + 1;
            if e.version != expected_version {
                report.problems.push(problem(
                    *stream,
                    Some(expected_version),
                    format!(
                        "version {expected_version} is missing (next stored is {})",
                        e.version
                    ),
                ));
                break;
            }
            if e.previous_hash.as_deref() != previous {
                report.problems.push(problem(
                    *stream,
                    Some(e.version),
                    "previous_hash does not match the hash of the event before it",
                ));
            }
            let recomputed = chain::link(previous, &e.chain_input());
            if recomputed[..] != e.hash[..] {
                report.problems.push(problem(
                    *stream,
                    Some(e.version),
                    format!(
                        "hash {} does not match the stored event (recomputed {})",
                        hex::encode(&e.hash),
                        hex::encode(recomputed)
                    ),
                ));
            }
            if let Err(err) = e.decode() {
                report
                    .problems
                    .push(problem(*stream, Some(e.version), err.to_string()));
            }
            previous = Some(&e.hash);
        }
        progress.advance(chain_events.len() as u64);
        if let Some(last) = chain_events.last() {
            heads.insert(*stream, (last.version, last.hash.clone()));
        }
    }

    // 2. The stream heads agree with the chains' last events.
    // language=PostgreSQL
    let stored_heads: Vec<(Uuid, i32, Vec<u8>)> =
        sqlx::query_as("select stream_id, version, last_hash from streams")
            .fetch_all(pool)
            .await?;
    for (stream, version, hash) in &stored_heads {
        match heads.remove(stream) {
            None => report.problems.push(problem(*stream, Some(*version), "the stream's events are missing")),
            Some((v, _)) if v != *version => report.problems.push(problem(
                *stream,
                Some(*version),
                format!("the stream head says version {version} but the last stored event is version {v}"),
            )),
            Some((_, h)) if h != *hash => {
                report.problems.push(problem(*stream, Some(*version), "the stream head's hash differs from the last event's"))
            }
            Some(_) => {}
        }
    }
    for (stream, (version, _)) in heads {
        report.problems.push(problem(
            stream,
            Some(version),
            "events exist for a stream with no head",
        ));
    }

    // 3. The projections equal a fresh replay of the log.
    let mut ordered = events;
    ordered.sort_by_key(|e| e.cursor());
    // 4. The transparency log's tree holds exactly these events, in committed order.
    progress.step("checking the transparency log's tree");
    check_tree(pool, &ordered, &mut report).await?;
    progress.step("replaying the log and comparing the projections");
    let readable: Vec<StoredEvent> = ordered.into_iter().filter(|e| e.decode().is_ok()).collect();
    let view = View::fold(readable)?;
    compare_projections(pool, &view, &mut report).await?;
    progress.finish();
    Ok(report)
}

fn log_problem(message: String) -> Problem {
    Problem {
        stream_id: None,
        version: None,
        message,
    }
}

/// Every leaf is its event's leaf bytes, at the event's place in committed order, without
/// gaps; every stored hash and every checkpoint's root recomputes from the leaves; every event
/// the sequencer has passed has its leaf.
async fn check_tree(
    pool: &PgPool,
    ordered: &[StoredEvent],
    report: &mut Report,
) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let state = tree::state(&mut conn, false).await?;
    // language=PostgreSQL
    let leaves: Vec<(i64, Uuid, Vec<u8>)> =
        sqlx::query_as("select leaf_index, event_id, leaf from log_leaves order by leaf_index")
            .fetch_all(&mut *conn)
            .await?;
    report.leaves = leaves.len();
    let place: HashMap<Uuid, usize> = ordered
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id, i))
        .collect();
    let mut rebuilt = MemoryTree::new();
    for (k, (index, event_id, leaf)) in leaves.iter().enumerate() {
        if *index != k as i64 {
            report.problems.push(log_problem(format!(
                "log leaf {k} is missing (next stored is {index})"
            )));
            return Ok(());
        }
        match place.get(event_id).map(|i| &ordered[*i]) {
            None => report.problems.push(log_problem(format!(
                "log leaf {index} names event {event_id}, which is not stored"
            ))),
            Some(e) => {
                if *leaf != leaf_bytes(&e.chain_input()) {
                    report.problems.push(problem(
                        e.stream_id,
                        Some(e.version),
                        format!("log leaf {index} does not match the stored event"),
                    ));
                }
                if place[event_id] != k {
                    report.problems.push(problem(
                        e.stream_id,
                        Some(e.version),
                        format!("log leaf {index} is not the event's place in committed order"),
                    ));
                }
            }
        }
        rebuilt.append(leaf);
    }
    let size = leaves.len() as u64;
    if state.size != size {
        report.problems.push(log_problem(format!(
            "the log's size is {} but it holds {size} leaves",
            state.size
        )));
    }
    // Events the sequencer has passed (up to its cursor) all have leaves.
    let passed = ordered
        .iter()
        .filter(|e| e.cursor() <= state.cursor)
        .count() as u64;
    if passed != size {
        report.problems.push(log_problem(format!(
            "{passed} events are at or before the log's cursor but the tree holds {size} leaves"
        )));
    }
    // language=PostgreSQL
    let hashes: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select hash_index, hash from log_hashes order by hash_index")
            .fetch_all(&mut *conn)
            .await?;
    if hashes.len() as u64 != stored_hash_count(size) {
        report.problems.push(log_problem(format!(
            "the tree of {size} leaves stores {} hashes, not {}",
            hashes.len(),
            stored_hash_count(size)
        )));
    }
    for (index, hash) in &hashes {
        let expected = rebuilt.read_hashes(&[*index as u64]).ok();
        if expected.as_ref().map(|h| h[0].0.as_slice()) != Some(hash.as_slice()) {
            report.problems.push(log_problem(format!(
                "stored tree hash {index} does not recompute from the leaves"
            )));
        }
    }
    // language=PostgreSQL
    let checkpoints: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select size, root_hash from log_checkpoints order by size")
            .fetch_all(&mut *conn)
            .await?;
    for (signed, root) in &checkpoints {
        let signed = *signed as u64;
        if signed > size {
            report.problems.push(log_problem(format!(
                "a checkpoint of {signed} leaves was signed but the tree holds {size}"
            )));
        } else if rebuilt.root_at(signed).0.as_slice() != root.as_slice() {
            report.problems.push(log_problem(format!(
                "the checkpoint of {signed} leaves signs a root the leaves do not give"
            )));
        }
    }
    Ok(())
}

async fn compare_projections(pool: &PgPool, view: &View, report: &mut Report) -> StoreResult<()> {
    let mut differ = |table: &str, id: Uuid, what: String| {
        report.problems.push(Problem {
            stream_id: Some(id),
            version: None,
            message: format!("projection {table} differs from the replay: {what}"),
        });
    };
    let commitments =
        read::list_commitments(pool, &CommitmentFilter::default(), None, i64::MAX).await?;
    let ids: Vec<Uuid> = commitments.iter().map(|c| c.id).collect();
    let mut rows = commitments.len();
    let by_id: HashMap<Uuid, _> = commitments.into_iter().map(|c| (c.id, c)).collect();
    for c in &view.commitments {
        match by_id.get(&c.id) {
            None => differ("commitments", c.id, "row missing".into()),
            Some(row) if row != c => {
                differ("commitments", c.id, format!("table {row:?}, replay {c:?}"))
            }
            _ => {}
        }
    }
    for id in by_id.keys().filter(|id| view.commitment(**id).is_none()) {
        differ("commitments", *id, "row not produced by any event".into());
    }

    let assessments = read::assessments_for(pool, &ids, TimeFilter::default()).await?;
    rows += assessments.len();
    let mut table: HashMap<Uuid, Vec<_>> = HashMap::new();
    for a in assessments {
        table.entry(a.commitment_id).or_default().push(a);
    }
    let revisions = read::revisions_for(pool, &ids).await?;
    rows += revisions.len();
    let mut revs: HashMap<Uuid, Vec<_>> = HashMap::new();
    for r in revisions {
        revs.entry(r.commitment_id).or_default().push(r);
    }
    let links = read::evidence_for(pool, &ids).await?;
    rows += links.len();
    let mut linked: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (c, e) in links {
        linked.entry(c).or_default().push(e.id);
    }
    for id in &ids {
        if table.remove(id).unwrap_or_default()
            != view.assessments.get(id).cloned().unwrap_or_default()
        {
            differ(
                "assessments",
                *id,
                "the commitment's assessments differ".into(),
            );
        }
        if revs.remove(id).unwrap_or_default()
            != view.revisions.get(id).cloned().unwrap_or_default()
        {
            differ("revisions", *id, "the commitment's revisions differ".into());
        }
        if linked.remove(id).unwrap_or_default()
            != view.evidence_of.get(id).cloned().unwrap_or_default()
        {
            differ(
                "evidence_commitments",
                *id,
                "the evidence linked to the commitment differs".into(),
            );
        }
    }
    for id in table.keys().chain(revs.keys()) {
        differ("assessments", *id, "rows for an unknown commitment".into());
    }

    // language=PostgreSQL
    let evidence_ids: Vec<Uuid> = sqlx::query_scalar("select id from evidence")
        .fetch_all(pool)
        .await?;
    let evidence = read::evidence_by_ids(pool, &evidence_ids).await?;
    rows += evidence.len();
    for e in &evidence {
        match view.evidence.get(&e.id) {
            None => differ("evidence", e.id, "row not produced by any event".into()),
            Some(v) if v != e => differ("evidence", e.id, format!("table {e:?}, replay {v:?}")),
            _ => {}
        }
    }
    if evidence.len() != view.evidence.len() {
        for id in view.evidence.keys().filter(|id| !evidence_ids.contains(id)) {
            differ("evidence", *id, "row missing".into());
        }
    }

    let assessment_ids: Vec<Uuid> = view.assessments.values().flatten().map(|a| a.id).collect();
    let disputes = read::disputes_for(pool, &assessment_ids).await?;
    rows += disputes.len();
    let mut by_assessment: HashMap<Uuid, Vec<_>> = HashMap::new();
    for d in disputes {
        by_assessment.entry(d.assessment_id).or_default().push(d);
    }
    for id in &assessment_ids {
        if by_assessment.remove(id).unwrap_or_default()
            != view.disputes.get(id).cloned().unwrap_or_default()
        {
            differ("disputes", *id, "the assessment's disputes differ".into());
        }
    }
    report.projection_rows = rows;
    Ok(())
}
