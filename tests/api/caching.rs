//! HTTP caching and read-your-writes (DESIGN §12): anonymous `GET /graphql` reads carry an
//! `ETag` and get `304` while nothing was written, without running the query; a write makes
//! the tag stale at once (never a stale `304`); answers to a token are private; mutations
//! answer with `extensions.logPosition`, which `X-Min-Log-Position` takes back.

use crate::helpers::{TestApp, spawn_app};
use crate::statements::statements;
use serde_json::{Value, json};

const LIST: &str =
    "{ commitments(first: 50) { totalCount nodes { slug currentAssessment { overall } } } }";

fn url(app: &TestApp, query: &str) -> String {
    let mut url = reqwest::Url::parse(&format!("{}/graphql", app.address)).unwrap();
    url.query_pairs_mut().append_pair("query", query);
    url.to_string()
}

/// A GET of `query`, optionally conditional: (status, ETag, Cache-Control, body).
async fn get(
    app: &TestApp,
    query: &str,
    if_none_match: Option<&str>,
) -> (u16, Option<String>, String, String) {
    let mut request = app
        .client
        .get(url(app, query))
        .header("accept", "application/json");
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (etag, control) = (header("etag"), header("cache-control").unwrap_or_default());
    assert_eq!(header("vary").as_deref(), Some("Accept, Authorization"));
    (
        response.status().as_u16(),
        etag,
        control,
        response.text().await.unwrap(),
    )
}

/// The tag of `query` once the server has stopped writing: after a write, the log's
/// sequencer integrates the new events (a write of its own, which moves the position), so the
/// first tag after a write may be replaced once more. Bounded: fails if it never settles.
async fn settled(app: &TestApp, query: &str) -> String {
    let (_, mut tag, _, _) = get(app, query, None).await;
    for _ in 0..500 {
        let (status, new, _, _) = get(app, query, tag.as_deref()).await;
        if status == 304 {
            return tag.unwrap();
        }
        tag = new;
    }
    panic!("the log position never settled");
}

#[tokio::test]
async fn a_repeat_gets_304_without_running_the_query_and_a_write_a_new_answer() {
    let app = spawn_app().await;
    let id = app.register("cached").await;
    let (status, etag, control, body) = get(&app, LIST, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(control, "public, max-age=0, must-revalidate");
    assert!(etag.is_some(), "an ETag");
    let first: Value = serde_json::from_str(&body).unwrap();

    // The repeat: 304, no body, and only the position is read. The position is the
    // cluster's, which other tests' databases move too: a write there between the two
    // requests makes a 200 (a wasted refetch), and the repeat is tried again with the new tag.
    let mut refetched = 0;
    let etag = loop {
        let etag = settled(&app, LIST).await;
        let before = statements();
        let (status, again, _, body) = get(&app, LIST, Some(&etag)).await;
        if status == 200 && refetched < 100 {
            refetched += 1;
            continue;
        }
        assert_eq!((status, body.as_str()), (304, ""));
        assert_eq!(again.as_deref(), Some(etag.as_str()));
        assert_eq!(
            statements() - before,
            1,
            "a 304 reads the log position and nothing else"
        );
        break etag;
    };
    // Another query, or the same one in another media type, has another tag.
    let (_, other, _, _) = get(&app, "{ commitments { totalCount } }", None).await;
    assert_ne!(other.as_deref(), Some(etag.as_str()));

    // Every write that changes the answer makes the held tag stale at once: never a 304
    // with the old answer.
    let mut tag = etag;
    let mut count = first["data"]["commitments"]["totalCount"].as_i64().unwrap();
    for (i, rating) in ["INADEQUATE", "GOOD", "REQUIRES_IMPROVEMENT"]
        .iter()
        .enumerate()
    {
        app.assess(&id, rating, &format!("2024-0{}-01", i + 1))
            .await;
        let (status, new, _, body) = get(&app, LIST, Some(&tag)).await;
        assert_eq!(status, 200, "a stale 304 after a write");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer["data"]["commitments"]["nodes"][0]["currentAssessment"]["overall"],
            *rating
        );
        let new = new.unwrap();
        assert_ne!(new, tag);
        tag = new;
        app.register(&format!("more-{i}")).await;
        let (status, new, _, body) = get(&app, LIST, Some(&tag)).await;
        assert_eq!(status, 200);
        count += 1;
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["data"]["commitments"]["totalCount"], count);
        assert_ne!(new.as_deref(), Some(tag.as_str()));
        tag = settled(&app, LIST).await;
    }

    // An answer to a token is the token's: not tagged, not stored by shared caches.
    let response = app
        .client
        .get(url(&app, LIST))
        .bearer_auth(&app.admin_token)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("etag").is_none());
    assert_eq!(response.headers()["cache-control"], "private, no-store");
}

#[tokio::test]
async fn mutations_answer_with_a_log_position_that_reads_take_back() {
    let app = spawn_app().await;
    sqlx::query("create extension pg_walinspect")
        .execute(&app.pool)
        .await
        .unwrap();
    let before = commitment_tracker::store::position::current(&app.pool)
        .await
        .unwrap();
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&app.admin_token)
        .json(
            &json!({ "query": crate::helpers::REGISTER, "variables": { "input": {
                "slug": "positioned", "title": "Positioned", "description": "A promise.",
                "area": "Records", "policySource": "A plan (2022)", "target": "All trusts",
                "announcedOn": "2022-06-29"
            }}}),
        )
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let position = body["extensions"]["logPosition"]
        .as_str()
        .expect("a logPosition")
        .to_owned();
    let parsed = commitment_tracker::store::position::LogPosition::parse(&position).unwrap();
    let now = commitment_tracker::store::position::current(&app.pool)
        .await
        .unwrap();
    assert!(parsed <= now && parsed.0 > 0, "{position}");
    // The position is after the write's commit record: a replica that has replayed up to it
    // holds the write.
    let xid: i64 =
        sqlx::query_scalar("select transaction_id from events where stream_type = 'commitment'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let commits: i64 = sqlx::query_scalar(
        "select count(*) from pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)
         where resource_manager = 'Transaction' and record_type = 'COMMIT'
           and xid::text = ($3 % 4294967296)::text and end_lsn <= $2::text::pg_lsn",
    )
    .bind(before.to_string())
    .bind(&position)
    .bind(xid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        commits, 1,
        "the commit of transaction {xid} lies before {position}"
    );
    // A read that must include the write does.
    let read = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("x-min-log-position", &position)
        .json(&json!({ "query": "{ commitment(slug: \"positioned\") { slug } }" }))
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["data"]["commitment"]["slug"], "positioned");
    // Reads answer without a position; a malformed one is refused with a code.
    assert!(
        read.get("extensions")
            .is_none_or(|e| e.get("logPosition").is_none())
    );
    let refused = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("x-min-log-position", "yesterday")
        .json(&json!({ "query": "{ commitments { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn persisted_query_hashes_are_tagged_and_revalidated_like_documents() {
    use commitment_tracker::store::persisted::sha256_hex;
    let app = spawn_app().await;
    app.register("hashed").await;
    let query = "query Count { commitments { totalCount } }";
    let hash = sha256_hex(query);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    // Registered by sending the document with its hash once.
    let registered = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "extensions": extensions }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let by_hash = |tag: Option<String>| {
        let mut request = app
            .client
            .get(format!("{}/graphql", app.address))
            .query(&[("extensions", extensions.to_string())])
            .header("accept", "application/json");
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        async move {
            let response = request.send().await.unwrap();
            let etag = response
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_owned());
            (response.status().as_u16(), etag)
        }
    };
    let (status, mut tag) = by_hash(None).await;
    assert_eq!(status, 200);
    assert!(tag.is_some(), "a persisted query's answer is tagged");
    let mut revalidated = false;
    for _ in 0..500 {
        let (status, new) = by_hash(tag.clone()).await;
        if status == 304 {
            revalidated = true;
            break;
        }
        tag = new;
    }
    assert!(
        revalidated,
        "a persisted query's tag is revalidated with 304"
    );
    app.register("another").await;
    assert_eq!(
        by_hash(tag).await.0,
        200,
        "a write makes the hash's tag stale"
    );
}
