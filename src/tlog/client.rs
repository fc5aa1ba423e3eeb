//! The log's small HTTP/1.1 client: `log audit` fetching checkpoints and tiles, and the log
//! posting checkpoints to its witnesses. Plain `http://` only (no TLS stack in the binary):
//! reach an `https://` peer through a local TLS proxy.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// An answer: status, content type and body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: hyper::StatusCode,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
    /// The `Retry-After` of a 429 or 503, in seconds.
    pub retry_after: Option<u64>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct RequestError {
    /// The URL requested.
    pub url: String,
    /// What failed.
    pub reason: String,
}

/// Sends `GET url` (or `POST url` with `body`) and reads the whole answer, within `timeout`.
pub async fn request(
    url: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<Answer, RequestError> {
    let fail = |reason: String| RequestError {
        url: url.to_owned(),
        reason,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail(
            "only http:// URLs are supported; reach an https:// peer through a local TLS proxy"
                .into(),
        ));
    }
    let host = uri.host().ok_or_else(|| fail("no host".into()))?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.as_str().to_owned());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(connection);
        let builder = hyper::Request::builder()
            .uri(path)
            .header(hyper::header::HOST, authority);
        let request = match body {
            Some(body) => builder
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(body)),
            None => builder
                .method(hyper::Method::GET)
                .body(Full::new(Bytes::new())),
        }
        .map_err(|e| fail(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            body,
            retry_after,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {} s", timeout.as_secs_f64())))?
}

/// Most times a rate-limited request is retried.
const RATE_LIMIT_RETRIES: u32 = 20;

/// The longest `Retry-After` honoured; a longer one is an error.
const LONGEST_RETRY_AFTER: u64 = 60;

/// `GET url`, and the body of a 200 answer; any other status is an error quoting the body.
/// A 429 (rate limited) is retried after the `Retry-After` it names.
pub async fn get_ok(url: &str, timeout: Duration) -> Result<Bytes, RequestError> {
    let mut answer = request(url, None, timeout).await?;
    for _ in 0..RATE_LIMIT_RETRIES {
        let wait = match answer.retry_after {
            Some(secs) if answer.status == hyper::StatusCode::TOO_MANY_REQUESTS => secs,
            _ => break,
        };
        if wait > LONGEST_RETRY_AFTER {
            break;
        }
        tracing::debug!(url, wait, "rate limited; waiting as asked");
        tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
        answer = request(url, None, timeout).await?;
    }
    if answer.status != hyper::StatusCode::OK {
        return Err(RequestError {
            url: url.to_owned(),
            reason: format!(
                "{}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body).trim()
            ),
        });
    }
    Ok(answer.body)
}
