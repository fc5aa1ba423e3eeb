//! Store tests on a fresh database each: the hash chain, appends, and committed-order reads.

mod audit;
mod batch;
#[path = "../common/mod.rs"]
mod common;
mod export;
mod flights;
mod horizon;
mod log;
mod personal;

use commitment_tracker::commands::Commands;
use commitment_tracker::domain::DomainEvent;
use commitment_tracker::domain::StreamType;
use commitment_tracker::domain::evidence::{EvidenceEvent, EvidenceRetracted, EvidenceSubmitted};
use commitment_tracker::domain::rating::EvidenceKind;
use commitment_tracker::seed;
use commitment_tracker::store::chain;
use commitment_tracker::store::cursor::EventCursor;
use commitment_tracker::store::event_store::{self, Metadata};
use commitment_tracker::store::feed::{EventFilter, Feed, FeedSettings};
use commitment_tracker::store::{self, read};
use common::TestDatabase;
use futures_util::StreamExt;
use sqlx::PgPool;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

async fn fresh() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await;
    let pool = store::connect(&db.url, 10).await.unwrap();
    store::migrate(&pool).await.unwrap();
    (db, pool)
}

fn metadata() -> Metadata {
    Metadata {
        actor: "store-test".into(),
        role: "admin".into(),
        request_id: None,
        idempotency_key: None,
    }
}

fn submitted(title: &str) -> (DomainEvent, chrono::NaiveDate) {
    let on = chrono::NaiveDate::from_ymd_opt(2023, 2, 17).unwrap();
    let event = DomainEvent::Evidence(EvidenceEvent::Submitted(EvidenceSubmitted {
        commitment_ids: vec![Uuid::now_v7()],
        title: title.into(),
        summary: "s".into(),
        source_url: None,
        submitted_by: "x".into(),
        organisation: None,
        submitted_on: on,
        kind: EvidenceKind::Other,
    }));
    (event, on)
}

/// Appends one piece of evidence as a new stream, in a transaction of its own, committed.
async fn append_evidence(pool: &PgPool, title: &str) -> event_store::StoredEvent {
    append_new(pool, StreamType::Evidence, submitted(title)).await
}

/// Appends `event` as the first of a new stream of `stream_type`, in a transaction of its own.
async fn append_new(
    pool: &PgPool,
    stream_type: StreamType,
    event: (DomainEvent, chrono::NaiveDate),
) -> event_store::StoredEvent {
    let mut tx = pool.begin().await.unwrap();
    let head = event_store::new_stream(&mut tx, Uuid::now_v7(), stream_type)
        .await
        .unwrap();
    let mut stored = event_store::append(&mut tx, &head, &[event], &metadata())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    stored.remove(0)
}

async fn import_seed(pool: &PgPool) {
    let file = seed::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/nhs-digitisation.json"
    )))
    .unwrap();
    let feed = Feed::new(pool.clone(), FeedSettings::default())
        .await
        .unwrap();
    seed::import(&Commands::new(pool.clone(), feed), &file)
        .await
        .unwrap();
}

/// A fresh database with the seed, and command handlers over it.
async fn seeded() -> (TestDatabase, PgPool, Commands) {
    let (db, pool) = fresh().await;
    import_seed(&pool).await;
    let feed = Feed::new(pool.clone(), FeedSettings::default())
        .await
        .unwrap();
    let commands = Commands::new(pool.clone(), feed);
    (db, pool, commands)
}

/// A live feed over `pool`, reading (50 ms poll, 64 buffered events).
async fn running_feed(pool: &PgPool) -> Feed {
    let feed = Feed::new(
        pool.clone(),
        FeedSettings {
            poll_interval: Duration::from_millis(50),
            capacity: 64,
            horizon: Default::default(),
        },
    )
    .await
    .unwrap();
    tokio::spawn(feed.clone().run(std::future::pending()));
    feed
}

#[tokio::test]
async fn every_stored_hash_recomputes_from_its_predecessor_and_streams_hold_the_chain_head() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let streams: Vec<(Uuid, i32, Vec<u8>)> =
        sqlx::query_as("select stream_id, version, last_hash from streams")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        streams.len(),
        28,
        "11 commitments and 17 pieces of evidence"
    );
    let mut checked = 0;
    for (stream_id, version, last_hash) in streams {
        let mut conn = pool.acquire().await.unwrap();
        let events = event_store::load_stream(&mut conn, stream_id)
            .await
            .unwrap();
        assert_eq!(events.len() as i32, version);
        let mut previous: Option<Vec<u8>> = None;
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as i32 + 1, "no gaps");
            assert_eq!(e.previous_hash, previous);
            assert_eq!(
                chain::link(previous.as_deref(), &e.chain_input()).to_vec(),
                e.hash
            );
            e.decode().expect("every stored payload decodes");
            previous = Some(e.hash.clone());
            checked += 1;
        }
        assert_eq!(previous, Some(last_hash));
    }
    assert_eq!(checked, 49);
}

#[tokio::test]
async fn a_changed_payload_no_longer_matches_its_hash() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let stream: Uuid = sqlx::query_scalar(
        "select stream_id from events where event_type = 'CommitmentAssessed' limit 1",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let events = event_store::load_stream(&mut conn, stream).await.unwrap();
    let mut tampered = events.last().unwrap().clone();
    tampered.payload["overall"] = serde_json::json!("OUTSTANDING");
    let recomputed = chain::link(tampered.previous_hash.as_deref(), &tampered.chain_input());
    assert_ne!(recomputed.to_vec(), tampered.hash);
}

#[tokio::test]
async fn a_second_writer_waits_for_the_stream_lock_and_sees_the_first_ones_version() {
    let (_db, pool) = fresh().await;
    let stream_id = Uuid::now_v7();
    let mut tx = pool.begin().await.unwrap();
    let head = event_store::new_stream(&mut tx, stream_id, StreamType::Evidence)
        .await
        .unwrap();
    event_store::append(&mut tx, &head, &[submitted("first")], &metadata())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut a = pool.begin().await.unwrap();
    let head_a = event_store::lock_stream(&mut a, stream_id, StreamType::Evidence)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head_a.version, 1);
    let second_writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut b = pool.begin().await.unwrap();
            let head_b = event_store::lock_stream(&mut b, stream_id, StreamType::Evidence)
                .await
                .unwrap()
                .unwrap();
            let version = head_b.version;
            b.rollback().await.unwrap();
            version
        })
    };
    let retracted = DomainEvent::Evidence(EvidenceEvent::Retracted(EvidenceRetracted {
        reason: "r".into(),
        retracted_on: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    }));
    let on = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    event_store::append(&mut a, &head_a, &[(retracted, on)], &metadata())
        .await
        .unwrap();
    a.commit().await.unwrap();
    assert_eq!(
        second_writer.await.unwrap(),
        2,
        "the waiter saw the committed append"
    );
}

#[tokio::test]
async fn a_late_committing_transaction_is_delivered_once_in_cursor_order() {
    let (_db, pool) = fresh().await;
    let feed = running_feed(&pool).await;
    let mut events = feed.subscribe(Some(EventCursor::START), EventFilter::default());

    // A takes the lower position and commits last; B commits first.
    let mut a = pool.begin().await.unwrap();
    let head_a = event_store::new_stream(&mut a, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    let stored_a = event_store::append(&mut a, &head_a, &[submitted("A")], &metadata())
        .await
        .unwrap();
    let mut b = pool.begin().await.unwrap();
    let head_b = event_store::new_stream(&mut b, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    let stored_b = event_store::append(&mut b, &head_b, &[submitted("B")], &metadata())
        .await
        .unwrap();
    assert!(stored_a[0].position < stored_b[0].position);
    b.commit().await.unwrap();
    feed.announce();

    // While A is open, B is committed but behind the horizon: a reader paging by position
    // alone would deliver B now and skip A for ever.
    let visible = read::events_after(
        &pool,
        EventCursor::START,
        read::Horizon::Appends,
        10,
        None,
        None,
    )
    .await
    .unwrap();
    assert!(
        visible.is_empty(),
        "nothing is delivered past an open transaction"
    );
    assert!(
        read::events_beyond_horizon(&pool, EventCursor::START, read::Horizon::Appends)
            .await
            .unwrap()
    );

    a.commit().await.unwrap();
    feed.announce();
    let first = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event_id, stored_a[0].event_id);
    assert_eq!(second.event_id, stored_b[0].event_id);
    assert!(first.cursor() < second.cursor());

    // Exactly once: the next event delivered is a new one.
    let mut c = pool.begin().await.unwrap();
    let head_c = event_store::new_stream(&mut c, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    let stored_c = event_store::append(&mut c, &head_c, &[submitted("C")], &metadata())
        .await
        .unwrap();
    c.commit().await.unwrap();
    feed.announce();
    let third = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.event_id, stored_c[0].event_id);
}

#[tokio::test]
async fn a_subscriber_too_slow_for_the_buffer_is_caught_up_from_the_database_without_a_gap() {
    let (_db, pool) = fresh().await;
    let feed = Feed::new(
        pool.clone(),
        FeedSettings {
            poll_interval: Duration::from_millis(50),
            capacity: 16,
            horizon: Default::default(),
        },
    )
    .await
    .unwrap();
    tokio::spawn(feed.clone().run(std::future::pending()));
    // The slow subscriber is created first and not read until 200 events have gone by.
    let mut slow = feed.subscribe(None, EventFilter::default());
    let mut probe = feed.subscribe(None, EventFilter::default());
    let mut appended = Vec::new();
    for i in 0..200 {
        let mut tx = pool.begin().await.unwrap();
        let head = event_store::new_stream(&mut tx, Uuid::now_v7(), StreamType::Evidence)
            .await
            .unwrap();
        let stored =
            event_store::append(&mut tx, &head, &[submitted(&format!("e{i}"))], &metadata())
                .await
                .unwrap();
        tx.commit().await.unwrap();
        feed.announce();
        appended.push(stored[0].event_id);
    }
    // The probe keeps up; once it has seen the last event, the broadcast has long overflowed
    // the slow subscriber's 16 places.
    for expected in &appended {
        let e = tokio::time::timeout(Duration::from_secs(20), probe.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.event_id, *expected);
    }
    let mut got = Vec::new();
    while got.len() < appended.len() {
        let e = tokio::time::timeout(Duration::from_secs(20), slow.next())
            .await
            .unwrap()
            .unwrap();
        got.push(e.event_id);
    }
    assert_eq!(
        got, appended,
        "every event, once, in order, despite the lag"
    );
}

#[tokio::test]
async fn a_stored_version_one_assessment_is_upcast_when_read() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    // Append, as an older build would have, a CommitmentAssessed v1 payload (no assessorKind),
    // chained properly so that verify accepts it.
    let stream: Uuid =
        sqlx::query_scalar("select id from commitments where slug = 'gp-data-public-support'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let head = event_store::lock_stream(&mut tx, stream, StreamType::Commitment)
        .await
        .unwrap()
        .unwrap();
    let assessment_id = Uuid::now_v7();
    let payload = serde_json::json!({
        "assessmentId": assessment_id, "assessor": "An earlier assessor", "assessedOn": "2024-01-01",
        "overall": "REQUIRES_IMPROVEMENT", "aspects": {}, "deliveryStatus": "NOT_ON_TRACK",
        "rationale": "Recorded before assessor kinds existed.", "evidenceIds": []
    });
    let metadata = serde_json::json!({ "actor": "legacy", "role": "admin" });
    let occurred = event_store::business_time(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
    let event_id = Uuid::now_v7();
    let input = chain::ChainInput {
        event_id,
        stream_id: stream,
        stream_type: "commitment",
        version: head.version + 1,
        event_type: "CommitmentAssessed",
        schema_version: 1,
        occurred_at: occurred,
        recorded_at: head.now,
        payload: &payload,
        metadata: &metadata,
    };
    let hash = chain::link(head.last_hash.as_deref(), &input);
    sqlx::query(
        "insert into events (event_id, stream_id, stream_type, version, event_type, schema_version,
                             payload, metadata, occurred_at, recorded_at, previous_hash, hash)
         values ($1, $2, 'commitment', $3, 'CommitmentAssessed', 1, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event_id)
    .bind(stream)
    .bind(head.version + 1)
    .bind(&payload)
    .bind(&metadata)
    .bind(occurred)
    .bind(head.now)
    .bind(head.last_hash.as_deref())
    .bind(&hash[..])
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("update streams set version = $2, last_hash = $3 where stream_id = $1")
        .bind(stream)
        .bind(head.version + 1)
        .bind(&hash[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The stored payload stays as it was; reading it upcasts it.
    let stored: (i32, serde_json::Value) =
        sqlx::query_as("select schema_version, payload from events where event_id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.0, 1);
    assert!(stored.1.get("assessorKind").is_none());
    let mut conn = pool.acquire().await.unwrap();
    let events = event_store::load_stream(&mut conn, stream).await.unwrap();
    drop(conn);
    let view = commitment_tracker::store::replay::View::fold(events).unwrap();
    let upcast = view.assessments[&stream]
        .iter()
        .find(|a| a.id == assessment_id)
        .expect("read back");
    assert_eq!(
        upcast.assessor_kind,
        commitment_tracker::domain::rating::AssessorKind::Other
    );
    // A rebuild projects it like any other event, and the chain still verifies.
    commitment_tracker::store::rebuild::rebuild(&pool)
        .await
        .unwrap();
    let kind: String = sqlx::query_scalar("select assessor_kind from assessments where id = $1")
        .bind(assessment_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kind, "OTHER");
    let report = commitment_tracker::store::verify::verify(&pool)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn a_payload_read_from_its_text_is_the_event_its_json_tree_gives() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let rows: Vec<(String, i32, serde_json::Value, String)> = sqlx::query_as(
        // Personal values back in the payload (as `StoredEvent::opened_payload` puts them).
        "select event_type, schema_version, opened, opened::text
           from (select event_type, schema_version, position,
                        payload || coalesce((select jsonb_object_agg(p.field, p.value)
                                               from personal_data p
                                              where p.event_id = events.event_id
                                                and p.field <> 'actor'), '{}') as opened
                   from events) e
          order by position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut types = std::collections::BTreeSet::new();
    for (event_type, version, tree, text) in &rows {
        assert_eq!(
            DomainEvent::decode_json(event_type, *version, text).unwrap(),
            DomainEvent::decode(event_type, *version, tree).unwrap(),
            "{event_type} v{version}"
        );
        types.insert(event_type.as_str());
    }
    // The seed holds registrations, assessments, revisions, disputes and evidence.
    assert!(types.len() >= 5, "only {types:?}");
}

#[tokio::test]
async fn with_nobody_listening_the_feed_moves_on_and_a_new_subscriber_starts_where_it_is() {
    let (_db, pool) = fresh().await;
    let feed = running_feed(&pool).await;
    let append = |title: &'static str| {
        let pool = pool.clone();
        let feed = feed.clone();
        async move {
            let stored = append_evidence(&pool, title).await;
            feed.announce();
            stored.cursor()
        }
    };
    let mut moves = feed.moves();
    let mut last = EventCursor::START;
    for title in ["one", "two", "three"] {
        last = append(title).await;
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        moves.wait_for(|head| *head == last),
    )
    .await
    .expect("the head moves on with nobody listening")
    .unwrap();
    assert_eq!(feed.head(), last);

    let mut live = feed.subscribe(None, EventFilter::default());
    let mut from_start = feed.subscribe(Some(EventCursor::START), EventFilter::default());
    let four = append("four").await;
    let first_live = next_event(&mut live).await;
    assert_eq!(
        first_live.cursor(),
        four,
        "a live subscriber starts at the head"
    );
    let mut titles = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut from_start).await;
        titles.push(e.payload["title"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(titles, ["one", "two", "three", "four"]);
    assert_eq!(
        *moves.borrow_and_update(),
        four,
        "the head's watchers see it move as subscribers are served"
    );
}

async fn next_event(
    events: &mut futures_util::stream::BoxStream<'static, std::sync::Arc<event_store::StoredEvent>>,
) -> std::sync::Arc<event_store::StoredEvent> {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event in time")
        .expect("the feed goes on")
}

/// Two running feeds on `pool` that stand for two server processes, a writer's and a
/// reader's, each with a live subscriber. Neither polls within a test's time, and both listen
/// before this returns, so only a NOTIFY can wake the reader.
async fn two_processes(
    pool: &PgPool,
) -> (
    Feed,
    futures_util::stream::BoxStream<'static, std::sync::Arc<event_store::StoredEvent>>,
    futures_util::stream::BoxStream<'static, std::sync::Arc<event_store::StoredEvent>>,
) {
    let quiet = FeedSettings {
        poll_interval: Duration::from_secs(3600),
        capacity: 64,
        horizon: Default::default(),
    };
    let writer = Feed::new(pool.clone(), quiet).await.unwrap();
    let reader = Feed::new(pool.clone(), quiet).await.unwrap();
    tokio::spawn(writer.clone().run(std::future::pending()));
    tokio::spawn(reader.clone().run(std::future::pending()));
    let heard = reader.subscribe(None, EventFilter::default());
    let own = writer.subscribe(None, EventFilter::default());
    // Each feed LISTENs from a task of its own, which wakes its reader once connected: wait
    // until both listen, so that only a NOTIFY can deliver what follows.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (listening,): (i64,) = sqlx::query_as(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query ilike 'listen%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the feeds never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (writer, heard, own)
}

#[tokio::test]
async fn another_process_hears_an_append_by_notify_without_waiting_for_its_poll() {
    let (_db, pool) = fresh().await;
    let (writer, mut heard, mut own) = two_processes(&pool).await;
    let sent = append_evidence(&pool, "heard elsewhere").await;
    writer.announce();
    assert_eq!(next_event(&mut heard).await.cursor(), sent.cursor());
    assert_eq!(
        next_event(&mut own).await.cursor(),
        sent.cursor(),
        "the writer's own feed delivers from its local wake"
    );
}
