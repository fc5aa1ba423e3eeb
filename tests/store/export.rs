//! CSV exports (DESIGN §13) and their places: an export holds one while its reader reads,
//! and gives it back when the reader goes, when the reader stops reading for the stall
//! timeout, and when the export ends.

use crate::common::TestDatabase;
use crate::{fresh, metadata, submitted};
use commitment_tracker::domain::StreamType;
use commitment_tracker::opendata::export::{self, EVENT_HEADERS, Export};
use commitment_tracker::store::cursor::EventCursor;
use commitment_tracker::store::event_store;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Evidence events whose titles repeat `TITLE`.
const EVENTS: usize = 400;
/// About 400 KiB of CSV in all: many times what travels between the statement and the reader.
const TITLE_LEN: usize = 1000;

/// A database with [`EVENTS`] events, the title they share, and the places of a pool of four
/// connections (one).
async fn exporting() -> (TestDatabase, PgPool, String, Arc<Semaphore>) {
    let (db, pool) = fresh().await;
    let title = "t".repeat(TITLE_LEN);
    let events: Vec<_> = (0..EVENTS).map(|_| submitted(&title)).collect();
    let mut tx = pool.begin().await.unwrap();
    let head = event_store::new_stream(&mut tx, Uuid::now_v7(), StreamType::Evidence)
        .await
        .unwrap();
    event_store::append(&mut tx, &head, &events, &metadata())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let places = Arc::new(Semaphore::new(export::concurrent_exports(4)));
    (db, pool, title, places)
}

fn all() -> Export {
    Export::Events {
        after: EventCursor::START,
        stream_id: None,
        types: None,
    }
}

#[tokio::test]
async fn an_export_keeps_its_place_while_its_reader_holds_it_and_gives_it_back_when_gone() {
    let (_db, pool, title, places) = exporting().await;
    let place = places.clone().try_acquire_owned().unwrap();
    let mut unread = export::start(pool.clone(), all(), place).await.unwrap();
    let first = unread.recv().await.unwrap().unwrap();
    assert!(first.starts_with(EVENT_HEADERS.join(",").as_bytes()));
    assert!(
        places.clone().try_acquire_owned().is_err(),
        "an export whose reader has not read it all keeps its place"
    );

    // Its reader gone, the export ends at its next chunk and gives its place back.
    drop(unread);
    let place = tokio::time::timeout(Duration::from_secs(30), places.clone().acquire_owned())
        .await
        .expect("the place comes back")
        .unwrap();
    // And an export read to its end has every event.
    let mut read = export::start(pool.clone(), all(), place).await.unwrap();
    let mut csv = Vec::new();
    while let Some(chunk) = read.recv().await {
        csv.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.matches(&title).count(), EVENTS);
    assert_eq!(
        places.available_permits(),
        1,
        "the finished export gave its place back"
    );
}

/// A reader that stops reading (a client that went quiet without closing) holds its export
/// only for the stall timeout (a minute in the server; a fifth of a second here): then the
/// statement stops and the place comes back, and what the reader still gets is a cut-off
/// file, not a whole one.
#[tokio::test]
async fn an_export_whose_reader_stops_reading_gives_its_place_back_after_the_stall_timeout() {
    let (_db, pool, title, places) = exporting().await;
    let place = places.clone().try_acquire_owned().unwrap();
    let stall = Duration::from_millis(200);
    let mut quiet = export::start_with_stall(pool.clone(), all(), place, stall)
        .await
        .unwrap();
    quiet.recv().await.unwrap().unwrap();

    // Far past the stall timeout: if the export waited for its reader for ever, this fires.
    let place = tokio::time::timeout(Duration::from_secs(30), places.clone().acquire_owned())
        .await
        .expect("the stalled export gave its place back")
        .unwrap();
    drop(place);

    let mut rest = Vec::new();
    while let Some(chunk) = quiet.recv().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let seen = String::from_utf8_lossy(&rest).matches(&title).count();
    assert!(
        seen < EVENTS,
        "the stalled export was cut off, yet {seen} of {EVENTS} came"
    );
}
