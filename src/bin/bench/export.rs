//! `export`: `GET /export/events.csv` of ever larger slices of a large log, each from a fresh
//! server whose resident memory (now and at its peak) is read after it, then five full
//! exports from one server; against PostgreSQL's own `COPY … TO STDOUT (FORMAT csv)` of the
//! same rows in the same run. A peak that stays flat from the smallest slice to the largest
//! shows that the export streams; the ratio shows what the streaming costs.

use crate::rebuild::write_commitment;
use crate::support::{Server, ratio, round2, with_database};
use anyhow::Context;
use bytes::Bytes;
use commitment_tracker::store::cursor::EventCursor;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpStream;

pub struct ExportArgs {
    pub events: usize,
}

/// GETs `path`, reading the body as it arrives without keeping it: (bytes, lines).
async fn download(addr: SocketAddr, path: &str) -> anyhow::Result<(usize, usize)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(response.status() == 200, "HTTP {}", response.status());
    let mut body = response.into_body();
    let (mut bytes, mut lines) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len();
            lines += data.iter().filter(|b| **b == b'\n').count();
        }
    }
    Ok((bytes, lines))
}

pub async fn run(server_url: &str, args: &ExportArgs) -> anyhow::Result<Value> {
    with_database(server_url, 4, async |db| {
        let per = 200;
        let mut written = 0;
        let mut i = 0;
        while written < args.events {
            written += write_commitment(db, i, per.min(args.events - written).max(3)).await?;
            i += 1;
        }
        sqlx::query("vacuum analyze events").execute(&db.pool).await?;
        let cursors: Vec<(i64, i64)> =
            sqlx::query_as("select transaction_id, position from events order by transaction_id, position")
                .fetch_all(&db.pool)
                .await?;

        // The ceiling: PostgreSQL writing the same rows as CSV itself.
        let t = Instant::now();
        let mut copied = 0usize;
        {
            let mut conn = db.pool.acquire().await?;
            let mut out = conn
                .copy_out_raw(
                    "copy (select position, transaction_id, event_id, stream_id, stream_type, version,
                                  event_type, schema_version, occurred_at, recorded_at, metadata,
                                  payload, encode(hash, 'hex'), encode(previous_hash, 'hex')
                           from events order by transaction_id, position)
                     to stdout (format csv, header)",
                )
                .await?;
            while let Some(chunk) = out.try_next().await? {
                copied += chunk.len();
            }
        }
        let copy_secs = t.elapsed().as_secs_f64();

        let mut slices = Vec::new();
        let mut full_rate = 0.0;
        let mut idle = Vec::new();
        for size in [1_000usize, 10_000, 100_000, 1_000_000, written] {
            // A server of its own for each slice, so that each peak is that slice's.
            let server = Server::start(&db.url, &[("RATE_LIMIT_PER_IP", "0".into())]).await?;
            idle.push(server.memory()?.rss_mib);
            let size = size.min(written);
            if slices.iter().any(|s: &Value| s["events"] == size) {
                continue;
            }
            let path = if size == written {
                "/export/events.csv".to_owned()
            } else {
                let (transaction_id, position) = cursors[written - size - 1];
                let after = EventCursor { transaction_id, position }.encode();
                format!("/export/events.csv?after={after}")
            };
            let t = Instant::now();
            let (bytes, lines) = download(server.addr, &path).await?;
            let secs = t.elapsed().as_secs_f64();
            anyhow::ensure!(lines == size + 1, "{path}: {lines} lines for {size} events");
            let memory = server.memory()?;
            if size == written {
                full_rate = size as f64 / secs;
            }
            slices.push(json!({
                "events": size,
                "mib": round2(bytes as f64 / 1048576.0),
                "secs": round2(secs),
                "events_per_sec": (size as f64 / secs).round(),
                "server_rss_mib": memory.rss_mib,
                "server_peak_rss_mib": memory.peak_rss_mib,
            }));
            server.stop().await.context("stop the server")?;
        }
        // One server exporting the whole log again and again: what it settles at.
        let server = Server::start(&db.url, &[("RATE_LIMIT_PER_IP", "0".into())]).await?;
        let mut repeated = Vec::new();
        for _ in 0..5 {
            let (_, lines) = download(server.addr, "/export/events.csv").await?;
            anyhow::ensure!(lines == written + 1, "{lines} lines for {written} events");
            let m = server.memory()?;
            repeated.push(json!([m.rss_mib, m.peak_rss_mib]));
        }
        server.stop().await.context("stop the server")?;
        let copy_rate = written as f64 / copy_secs;
        Ok(json!({
            "scenario": "export",
            "events": written,
            "server_idle_rss_mib": idle,
            "slices": slices,
            "five_full_exports_on_one_server_rss_and_peak_mib": repeated,
            "ceiling": {
                "what": "COPY (select … order by transaction_id, position) TO STDOUT (FORMAT csv) of the same rows, read by the benchmark",
                "mib": round2(copied as f64 / 1048576.0),
                "secs": round2(copy_secs),
                "events_per_sec": copy_rate.round(),
            },
            "ratio": ratio(full_rate, copy_rate),
        }))
    })
    .await
}
