//! `fanout`: thousands of WebSocket subscribers to `ratingChanged`; the time from a
//! mutation's answer to each subscriber's receipt, and the server's peak memory.
//!
//! Each subscriber count gets a fresh server process, so its peak resident memory is that
//! count's own. Subscribers are proven live first: assessments are made until every one of
//! them has received one; only then are the measured rounds sent, one at a time, each waiting
//! for every subscriber's receipt.

use crate::support::{
    Client, Latencies, Server, admin_token, assess_body, assessed_id, ratio, register_commitments,
    with_database,
};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub struct FanoutArgs {
    pub subscribers: Vec<usize>,
    pub rounds: usize,
}

const SUBSCRIPTION: &str = "subscription { ratingChanged { id overall commitment { slug } } }";

/// One receipt: which subscriber got which assessment, when.
struct Receipt {
    subscriber: usize,
    assessment: String,
    at: Instant,
}

/// The assessment id in a `next` message, found without parsing the whole message.
fn assessment_in(text: &str) -> Option<&str> {
    const KEY: &str = "\"ratingChanged\":{\"id\":\"";
    let start = text.find(KEY)? + KEY.len();
    text.get(start..start + 36)
}

/// Opens one subscriber: connects, initialises, subscribes, then reports every assessment
/// it receives until the socket closes.
async fn subscriber(
    addr: SocketAddr,
    token: Arc<str>,
    index: usize,
    receipts: mpsc::UnboundedSender<Receipt>,
    connecting: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let permit = connecting.acquire_owned().await?;
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("WebSocket handshake")?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await?;
    loop {
        match ws.next().await.context("closed before connection_ack")?? {
            Message::Text(t) if t.as_str().contains("connection_ack") => break,
            Message::Text(t) => anyhow::bail!("expected connection_ack, got {t}"),
            _ => {}
        }
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
    ws.send(Message::text(subscribe.to_string())).await?;
    drop(permit);
    while let Some(message) = ws.next().await {
        let at = Instant::now();
        match message? {
            Message::Text(t) => {
                let text = t.as_str();
                if let Some(id) = assessment_in(text) {
                    let _ = receipts.send(Receipt {
                        subscriber: index,
                        assessment: id.to_owned(),
                        at,
                    });
                } else if text.contains("\"type\":\"ping\"") {
                    ws.send(Message::text(r#"{"type":"pong"}"#)).await?;
                } else if !text.contains("\"type\":\"pong\"") {
                    anyhow::bail!("subscriber {index} got {text}");
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// Collects receipts and answers when an assessment has reached every subscriber.
struct Collector {
    receipts: mpsc::UnboundedReceiver<Receipt>,
    live: Vec<bool>,
    live_count: usize,
    by_assessment: HashMap<String, Vec<Instant>>,
}

impl Collector {
    fn take(&mut self, r: Receipt) {
        if !self.live[r.subscriber] {
            self.live[r.subscriber] = true;
            self.live_count += 1;
        }
        self.by_assessment
            .entry(r.assessment)
            .or_default()
            .push(r.at);
    }

    /// Waits until every subscriber has received something, or `timeout` passes.
    async fn all_live_within(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.live_count < self.live.len() {
            match tokio::time::timeout_at(deadline, self.receipts.recv()).await {
                Ok(Some(r)) => self.take(r),
                Ok(None) => anyhow::bail!("every subscriber has gone"),
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Waits until `assessment` has reached every subscriber; returns the receipt times.
    async fn all_received(&mut self, assessment: &str) -> anyhow::Result<Vec<Instant>> {
        let n = self.live.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while self.by_assessment.get(assessment).map_or(0, Vec::len) < n {
            match tokio::time::timeout_at(deadline, self.receipts.recv()).await {
                Ok(Some(r)) => self.take(r),
                Ok(None) => anyhow::bail!("every subscriber has gone"),
                Err(_) => anyhow::bail!(
                    "{} of {n} subscribers received {assessment} within 120 s",
                    self.by_assessment.get(assessment).map_or(0, Vec::len)
                ),
            }
        }
        let times = self.by_assessment.remove(assessment).unwrap_or_default();
        anyhow::ensure!(times.len() == n, "{assessment} delivered twice to someone");
        Ok(times)
    }
}

/// Connects `subscribers` to `server` (the server, or the floor in its place), proves them
/// live, and times `rounds` assessments from each answer to every receipt.
async fn one_level(
    server: Server,
    token: &str,
    commitment: &str,
    subscribers: usize,
    rounds: usize,
) -> anyhow::Result<Value> {
    let idle = server.memory()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let token: Arc<str> = token.into();
    let connecting = Arc::new(Semaphore::new(64));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..subscribers {
        tasks.spawn(subscriber(
            server.addr,
            token.clone(),
            i,
            tx.clone(),
            connecting.clone(),
        ));
    }
    drop(tx);
    let mut collector = Collector {
        receipts: rx,
        live: vec![false; subscribers],
        live_count: 0,
        by_assessment: HashMap::new(),
    };
    let mut client = Client::connect(server.addr, Some(token.as_ref())).await?;
    // Warm up until every subscriber is provably live.
    let mut n = 0;
    loop {
        if let Some(Err(e)) = tasks
            .try_join_next()
            .map(|r| r.map_err(anyhow::Error::from)?)
        {
            return Err(e.context("a subscriber failed while connecting"));
        }
        assessed_id(&client.post(assess_body(commitment, n)).await?)?;
        n += 1;
        if collector.all_live_within(Duration::from_secs(2)).await? {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {subscribers} subscribers live after 300 s",
            collector.live_count
        );
    }
    let connected_in = started.elapsed();
    collector.by_assessment.clear();
    // Drain what the warm-up left in flight: the next assessment's receipts start clean.
    let mut latencies = Latencies::with_capacity(subscribers * rounds);
    let mut answer_ms = Latencies::with_capacity(rounds);
    let cpu_before = server.cpu_seconds()?;
    for _ in 0..rounds {
        let sent = Instant::now();
        let data = client.post(assess_body(commitment, n)).await?;
        let answered = Instant::now();
        n += 1;
        answer_ms.push(answered - sent);
        let id = assessed_id(&data)?.to_owned();
        for at in collector.all_received(&id).await? {
            latencies.push(at.saturating_duration_since(answered));
        }
    }
    // The server's CPU over the rounds (each round one mutation and its deliveries).
    let cpu_us_per_delivery =
        (server.cpu_seconds()? - cpu_before) * 1e6 / latencies.len().max(1) as f64;
    let memory = server.memory()?;
    tasks.abort_all();
    server.stop().await?;
    Ok(json!({
        "subscribers": subscribers,
        "rounds": rounds,
        "deliveries": latencies.len(),
        "connect_and_prove_live_secs": (connected_in.as_secs_f64() * 10.0).round() / 10.0,
        "mutation_answer": answer_ms.summary(),
        "answer_to_receipt": latencies.summary(),
        "server_cpu_us_per_delivery": (cpu_us_per_delivery * 10.0).round() / 10.0,
        "server_rss_mib": { "idle": idle.rss_mib, "with_subscribers": memory.rss_mib, "peak": memory.peak_rss_mib },
    }))
}

pub async fn run(server_url: &str, args: &FanoutArgs) -> anyhow::Result<Value> {
    with_database(server_url, 4, async |db| {
        let token = admin_token(db).await?;
        let commitment = {
            let server = Server::start(&db.url, &[]).await?;
            let mut setup = Client::connect(server.addr, Some(&token)).await?;
            let id = register_commitments(&mut setup, "fanout", 1).await?.remove(0);
            server.stop().await?;
            id
        };
        let mut levels = Vec::new();
        for &n in &args.subscribers {
            let server =
                Server::start(&db.url, &[("WS_MAX_CONNECTIONS", (n + 16).to_string())]).await?;
            let mut level = one_level(server, &token, &commitment, n, args.rounds).await?;
            let floor = one_level(Server::start_floor().await?, &token, &commitment, n, args.rounds)
                .await
                .context("the floor")?;
            let p99 = |l: &Value| l["answer_to_receipt"]["p99_ms"].as_f64().unwrap_or(f64::NAN);
            // The floor sends while it answers, so with few subscribers every receipt can come
            // before the answer (0 ms): then there is no ratio to give.
            level["p99_over_floor"] = match p99(&floor) {
                floor_p99 if floor_p99 > 0.0 => json!(ratio(p99(&level), floor_p99)),
                _ => Value::Null,
            };
            level["floor"] = json!({
                "deliveries": floor["deliveries"],
                "answer_to_receipt": floor["answer_to_receipt"],
                "cpu_us_per_delivery": floor["server_cpu_us_per_delivery"],
                "rss_mib": floor["server_rss_mib"],
            });
            levels.push(level);
        }
        Ok(json!({
            "scenario": "fanout",
            "measure": "from the mutation's HTTP answer to each subscriber's receipt (0 when the receipt came first)",
            "floor": "the same subscribers and rounds against a process that only acknowledges them and sends each one shared message of the same shape and size per assessment, answering each POST at once (src/bin/bench/floor.rs)",
            "levels": levels,
        }))
    })
    .await
}
