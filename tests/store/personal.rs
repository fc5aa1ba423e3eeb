//! Personal values (DESIGN §11) are kept out of the events: each stored event holds a salted
//! commitment, and `personal_data` the value with its opening.

use super::*;
use commitment_tracker::tlog::leaf::{commit, commitment_in};
use sqlx::Row;

#[tokio::test]
async fn events_hold_commitments_and_personal_data_holds_the_values_that_open_them() {
    let (_db, pool) = fresh().await;
    import_seed(&pool).await;
    let rows = sqlx::query(
        "select e.event_id, e.payload, e.metadata,
                p.field, p.opening, p.value
           from events e join personal_data p using (event_id)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (mut actors, mut submitters) = (0, 0);
    for row in &rows {
        let field: String = row.get("field");
        let opening: Vec<u8> = row.get("opening");
        let value: String = row.get("value");
        let slot = match field.as_str() {
            "actor" => {
                actors += 1;
                row.get::<serde_json::Value, _>("metadata")["actor"].clone()
            }
            "submittedBy" => {
                submitters += 1;
                row.get::<serde_json::Value, _>("payload")["submittedBy"].clone()
            }
            other => panic!("unexpected personal field {other}"),
        };
        assert!(opening.len() >= 16, "an opening of {} bytes", opening.len());
        assert_eq!(
            commitment_in(&slot),
            Some(commit(&opening, &value)),
            "{field} of {}",
            row.get::<Uuid, _>("event_id")
        );
    }
    assert_eq!(actors, events, "every event has its actor apart");
    assert!(submitters > 0, "the seed holds evidence");
    // No personal field of any event holds a clear value, and every opening is its own.
    let clear: i64 = sqlx::query_scalar(
        "select count(*) from events
          where jsonb_typeof(metadata -> 'actor') <> 'object'
             or jsonb_typeof(payload -> 'submittedBy') = 'string'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    let openings: i64 = sqlx::query_scalar("select count(distinct opening) from personal_data")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(openings as usize, rows.len());
}

#[tokio::test]
async fn a_read_event_opens_its_personal_values_and_an_erased_one_reads_as_erased() {
    let (_db, pool) = fresh().await;
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    let stream = Uuid::now_v7();
    let head = event_store::new_stream(&mut tx, stream, StreamType::Evidence)
        .await
        .unwrap();
    let stored = event_store::append(&mut tx, &head, &[submitted("GDE")], &metadata())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let read = |pool: PgPool| async move {
        let mut conn = pool.acquire().await.unwrap();
        event_store::load_stream(&mut conn, stream).await.unwrap()
    };
    let events = read(pool.clone()).await;
    assert_eq!(events, stored, "read back as appended");
    assert_eq!(events[0].actor(), "store-test");
    assert_eq!(events[0].opened_payload()["submittedBy"], "x");
    assert!(matches!(
        events[0].decode().unwrap(),
        DomainEvent::Evidence(EvidenceEvent::Submitted(EvidenceSubmitted { ref submitted_by, .. }))
            if submitted_by == "x"
    ));

    sqlx::query(
        "update personal_data set value = null, opening = null where field = 'submittedBy'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let events = read(pool.clone()).await;
    assert_eq!(events[0].opened_payload()["submittedBy"], "[erased]");
    assert_eq!(events[0].erased_fields(), ["submittedBy"]);
    assert_eq!(events[0].actor(), "store-test");
    assert_eq!(
        events[0].hash, stored[0].hash,
        "the stored event, and so its hash, is unchanged"
    );
    let report = store::verify::verify(&pool).await.unwrap();
    assert!(
        report.problems.iter().all(|p| !p.message.contains("hash")),
        "{:?}",
        report.problems
    );
}

/// A process learns of an erasure another process made from the log: the erasure's event
/// names the commitments, and events it already holds in memory read as erased from then.
/// With nobody subscribed, the feed moves past the events without reading their rows; the
/// erasures among them it still reads.
#[tokio::test]
async fn a_feed_nobody_listens_to_still_learns_of_the_erasures_it_passes() {
    use base64::Engine;
    use commitment_tracker::domain::erasure::{ErasureEvent, PersonalDataErased};
    use commitment_tracker::store::personal;

    let (_db, pool) = fresh().await;
    let feed = running_feed(&pool).await;
    let mut moves = feed.moves();
    let stored = append_evidence(&pool, "GDE").await;
    let slot = stored.payload["submittedBy"].clone();
    let commitment = commitment_in(&slot).expect("the stored event holds a commitment");
    assert!(!personal::is_forgotten(Some(&slot)));

    // Appended straight to the log, as another process's erasure is seen from this one.
    let on = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    let erased = DomainEvent::Erasure(ErasureEvent::Erased(PersonalDataErased {
        reason: "request 7".into(),
        commitments: vec![base64::engine::general_purpose::STANDARD.encode(commitment)],
        token_names: 0,
        erased_on: on,
    }));
    let stored = append_new(&pool, StreamType::Erasure, (erased, on)).await;
    assert!(
        !personal::is_forgotten(Some(&slot)),
        "nothing but the feed tells this process"
    );

    feed.wake();
    let target = stored.cursor();
    tokio::time::timeout(
        Duration::from_secs(10),
        moves.wait_for(|head| *head >= target),
    )
    .await
    .expect("the feed moves past the erasure")
    .unwrap();
    assert!(personal::is_forgotten(Some(&slot)));
}
