//! Rate limits per client address and per token (DESIGN §12): `RATE_LIMIT_PER_IP` and
//! `RATE_LIMIT_PER_TOKEN` requests per second each, in bursts of the same size.
//!
//! Every request counts against its client's address; one that presents a bearer token
//! counts against that token too, so a token shared out over many addresses gets no more than
//! its own budget. An IPv6 client is limited by its /64 (one host's usual allocation), so
//! that walking through the addresses of one network buys nothing. The client's address is
//! the peer's, or, when the peer is a proxy listed in `TRUSTED_PROXIES`, the address that
//! proxy (and any trusted proxy before it) names in `X-Forwarded-For`.
//!
//! The limiter is GCRA (the generic cell rate algorithm): one instant per key, the
//! theoretical arrival time of its next request, so memory is a map entry per client seen in
//! the last second and a check is a hash lookup. Entries whose time has passed are dropped
//! as the map grows.
//!
//! Over a limit, HTTP requests are answered 429 with `Retry-After` (whole seconds) and the
//! GraphQL error code `RATE_LIMITED`; on a WebSocket, a `subscribe` over the limit is refused
//! with that code for its id alone, and other messages over it are dropped. `/healthz`,
//! `/readyz`, `/health` and `/metrics` are never limited: probes and scrapers must not be
//! turned away by traffic they are meant to watch.

use super::{AppState, error_response};
use crate::auth::bearer;
use crate::graphql::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A client address (an IPv6 one cut to its /64).
    Address(IpAddr),
    /// The SHA-256 of a presented token (the token itself is not kept).
    Token([u8; 32]),
}

impl Key {
    /// The key of a client address.
    pub fn address(ip: IpAddr) -> Self {
        Key::Address(group(ip))
    }

    /// The key of a presented token.
    pub fn token(token: &str) -> Self {
        Key::Token(Sha256::digest(token.as_bytes()).into())
    }

    fn scope(&self) -> &'static str {
        match self {
            Key::Address(_) => "address",
            Key::Token(_) => "token",
        }
    }
}

/// An address as limited: IPv4 (also when written IPv4-mapped) as it is, IPv6 by its /64.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// One rate: an emission interval and how far ahead of now a key's time may run.
#[derive(Debug, Clone, Copy)]
struct Rate {
    interval: Duration,
    tolerance: Duration,
}

impl Rate {
    /// `per_second` requests a second in bursts of as many; `None` for 0 (no limit).
    fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| {
            let interval = Duration::from_secs(1) / per_second;
            Rate {
                interval,
                tolerance: interval * (per_second - 1),
            }
        })
    }
}

/// Limits per address and per token, shared by every connection of the process.
#[derive(Debug)]
pub struct RateLimiter {
    per_address: Option<Rate>,
    per_token: Option<Rate>,
    trusted: Vec<Cidr>,
    state: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Each key's theoretical arrival time.
    next: HashMap<Key, Instant>,
    /// The size at which expired entries are next swept out.
    sweep_at: usize,
}

/// The least size at which the table is swept.
const SWEEP_FLOOR: usize = 4096;

impl RateLimiter {
    /// A limiter of `per_address` and `per_token` requests a second (0: no limit), taking
    /// `X-Forwarded-For` from the proxies in `trusted`.
    pub fn new(per_address: u32, per_token: u32, trusted: Vec<Cidr>) -> Self {
        RateLimiter {
            per_address: Rate::new(per_address),
            per_token: Rate::new(per_token),
            trusted,
            state: Mutex::new(Table {
                next: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
        }
    }

    /// Whether any limit applies.
    pub fn enabled(&self) -> bool {
        self.per_address.is_some() || self.per_token.is_some()
    }

    /// Counts one request against every key in `keys` at `now`: `Ok` if every one allows
    /// it (and then each is charged), else how long until all of them would. A request
    /// refused is charged to none, so a client that keeps trying too fast is not locked out
    /// for longer than its own rate says.
    pub fn check(&self, keys: &[Key], now: Instant) -> Result<(), Duration> {
        let mut table = self.state.lock().expect("rate limiter lock");
        let mut wait = Duration::ZERO;
        let mut charged: [Option<(Key, Instant)>; 2] = [None, None];
        for (slot, key) in keys.iter().take(2).enumerate() {
            let Some(rate) = self.rate(key) else { continue };
            let at = table.next.get(key).copied().unwrap_or(now).max(now);
            let ahead = at - now;
            if ahead > rate.tolerance {
                wait = wait.max(ahead - rate.tolerance);
                metrics::counter!("http_rate_limited_total", "scope" => key.scope()).increment(1);
            }
            charged[slot] = Some((*key, at + rate.interval));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, at) in charged.into_iter().flatten() {
            table.next.insert(key, at);
        }
        if table.next.len() >= table.sweep_at {
            table.next.retain(|_, at| *at > now);
            table.sweep_at = (table.next.len() * 2).max(SWEEP_FLOOR);
        }
        Ok(())
    }

    fn rate(&self, key: &Key) -> Option<Rate> {
        match key {
            Key::Address(_) => self.per_address,
            Key::Token(_) => self.per_token,
        }
    }

    /// The client's address: the peer's, or, from a trusted proxy, the right-most address in
    /// `X-Forwarded-For` that is not itself a trusted proxy (each trusted hop vouches for
    /// the one before it; the first untrusted one could have written anything to its left).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.is_trusted(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        for hop in hops.into_iter().rev() {
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The keys a request is counted against.
    pub fn keys(&self, client: Option<IpAddr>, token: Option<&str>) -> Vec<Key> {
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = client.filter(|_| self.per_address.is_some()) {
            keys.push(Key::address(ip));
        }
        if let Some(t) = token.filter(|_| self.per_token.is_some()) {
            keys.push(Key::token(t));
        }
        keys
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// A block of addresses: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                mask(u128::from(u32::from(n)), self.prefix, 32)
                    == mask(u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                mask(u128::from(n), self.prefix, 128) == mask(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// `value` (of `bits` bits) with all but its first `prefix` bits cleared.
fn mask(value: u128, prefix: u8, bits: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value >> (bits - prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an address or a CIDR block"))?,
        );
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

/// Reads `TRUSTED_PROXIES`: CIDR blocks or addresses separated by commas or spaces.
pub fn parse_trusted(list: &str) -> Result<Vec<Cidr>, String> {
    list.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|e| format!("TRUSTED_PROXIES: {e}")))
        .collect()
}

/// Routes that are never limited.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/health" | "/metrics")
}

/// The answer to a request over a limit: 429, `Retry-After` in whole seconds (at least 1),
/// and the error coded `RATE_LIMITED`.
pub fn too_many(wait: Duration) -> Response {
    let secs = retry_after_secs(wait);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        ApiError::RateLimited {
            retry_after_secs: secs,
        },
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// A wait in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The peer address axum recorded for the connection, if any.
pub fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Middleware: counts each request against its client and token, or answers 429.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limiter = &state.limiter;
    if !limiter.enabled() || exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let client = peer(&request).map(|p| limiter.client_address(p, request.headers()));
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let keys = limiter.keys(client, token);
    if let Err(wait) = limiter.check(&keys, Instant::now()) {
        return too_many(wait);
    }
    let mut request = request;
    if let Some(ip) = client {
        request.extensions_mut().insert(ClientAddress(ip));
    }
    next.run(request).await
}

/// The client address a request was counted against, for handlers that go on counting (the
/// WebSocket's messages).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// The limits of one WebSocket connection: its client's address from the upgrade, and the
/// token its `connection_init` presents, once it has.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    limiter: Arc<RateLimiter>,
    client: Option<IpAddr>,
    token: Arc<Mutex<Option<String>>>,
}

impl ConnectionLimit {
    /// The limits of a connection from `client`, starting with the upgrade's token.
    pub fn new(limiter: Arc<RateLimiter>, client: Option<IpAddr>, token: Option<String>) -> Self {
        ConnectionLimit {
            limiter,
            client,
            token: Arc::new(Mutex::new(token)),
        }
    }

    /// Records the token the connection authenticated with.
    pub fn set_token(&self, token: Option<String>) {
        *self.token.lock().expect("token lock") = token;
    }

    /// Counts one message: `Ok`, or how long until it would be allowed.
    pub fn admit(&self) -> Result<(), Duration> {
        if !self.limiter.enabled() {
            return Ok(());
        }
        let token = self.token.lock().expect("token lock").clone();
        let keys = self.limiter.keys(self.client, token.as_deref());
        self.limiter.check(&keys, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_of_the_rate_passes_then_one_more_waits_one_interval() {
        let limiter = RateLimiter::new(10, 0, vec![]);
        let keys = [Key::address(ip("192.0.2.1"))];
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(limiter.check(&keys, t0).is_ok(), "request {i} of the burst");
        }
        let wait = limiter.check(&keys, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Refusals are not charged: still one interval to wait.
        assert_eq!(
            limiter.check(&keys, t0).unwrap_err(),
            Duration::from_millis(100)
        );
        assert!(limiter.check(&keys, t0 + wait).is_ok());
        assert!(limiter.check(&keys, t0 + wait).is_err());
        // After a full second idle, a whole burst again.
        let later = t0 + Duration::from_secs(2);
        for _ in 0..10 {
            assert!(limiter.check(&keys, later).is_ok());
        }
        assert!(limiter.check(&keys, later).is_err());
    }

    #[test]
    fn a_steady_client_at_its_rate_is_never_refused() {
        let limiter = RateLimiter::new(50, 0, vec![]);
        let keys = [Key::address(ip("192.0.2.1"))];
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(20) * i;
            assert!(limiter.check(&keys, at).is_ok(), "request {i}");
        }
    }

    #[test]
    fn clients_are_limited_apart_and_a_refusal_charges_no_key() {
        let limiter = RateLimiter::new(2, 3, vec![]);
        let t0 = Instant::now();
        let a = Key::address(ip("192.0.2.1"));
        let b = Key::address(ip("192.0.2.2"));
        let token = Key::token("ct_shared");
        assert!(limiter.check(&[a, token], t0).is_ok());
        assert!(limiter.check(&[a, token], t0).is_ok());
        // a is spent; the token is not, and is not charged by the refusal.
        assert!(limiter.check(&[a, token], t0).is_err());
        assert!(limiter.check(&[b, token], t0).is_ok());
        // The token's third and last of the burst, from a second address.
        assert!(limiter.check(&[b], t0).is_ok());
        assert!(limiter.check(&[b], t0).is_err());
        let c = Key::address(ip("192.0.2.3"));
        assert!(limiter.check(&[c, token], t0).is_err());
        assert!(limiter.check(&[c], t0).is_ok());
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            Key::address(ip("2001:db8:1:2:aaaa::1")),
            Key::address(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            Key::address(ip("2001:db8:1:2::1")),
            Key::address(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Key::address(ip("::ffff:192.0.2.7")),
            Key::address(ip("192.0.2.7"))
        );
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = parse_trusted("10.0.0.0/8, 127.0.0.1").unwrap();
        let limiter = RateLimiter::new(1, 0, trusted);
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "198.51.100.9, 203.0.113.5".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "10.1.2.3".parse().unwrap());
        // From an untrusted peer the header is ignored.
        assert_eq!(
            limiter.client_address(ip("192.0.2.1"), &headers),
            ip("192.0.2.1")
        );
        // From a trusted one: right to left past trusted hops to the first untrusted one;
        // what it claims to its left is not believed.
        assert_eq!(
            limiter.client_address(ip("127.0.0.1"), &headers),
            ip("203.0.113.5")
        );
        assert_eq!(
            limiter.client_address(ip("::ffff:127.0.0.1"), &headers),
            ip("203.0.113.5")
        );
        // A malformed hop stops the walk at the last proxy that is trusted.
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "203.0.113.5, garbage".parse().unwrap());
        assert_eq!(limiter.client_address(ip("10.0.0.1"), &bad), ip("10.0.0.1"));
        // Ports are allowed; with no header the peer is the client.
        let mut ported = HeaderMap::new();
        ported.insert("x-forwarded-for", "[2001:db8::5]:443".parse().unwrap());
        assert_eq!(
            limiter.client_address(ip("10.0.0.1"), &ported),
            ip("2001:db8::5")
        );
        assert_eq!(
            limiter.client_address(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_proxy_lists_are_checked() {
        let list = parse_trusted("192.168.0.0/16 fd00::/8,::1").unwrap();
        assert!(list[0].contains(ip("192.168.44.1")));
        assert!(!list[0].contains(ip("192.169.0.1")));
        assert!(list[1].contains(ip("fd12::1")));
        assert!(!list[1].contains(ip("fe80::1")));
        assert!(list[2].contains(ip("::1")));
        assert!(!list[2].contains(ip("127.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!(
            parse_trusted("10.0.0.0/33")
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!(
            parse_trusted("proxy.local")
                .unwrap_err()
                .contains("proxy.local")
        );
        assert_eq!(parse_trusted("").unwrap(), vec![]);
    }

    #[test]
    fn waits_round_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn the_table_forgets_clients_whose_time_has_passed() {
        let limiter = RateLimiter::new(1, 0, vec![]);
        let t0 = Instant::now();
        for i in 0..(SWEEP_FLOOR as u32 + 10) {
            let key = Key::address(IpAddr::V4(std::net::Ipv4Addr::from(i)));
            limiter
                .check(&[key], t0 + Duration::from_secs(2) * i)
                .unwrap();
        }
        let table = limiter.state.lock().unwrap();
        assert!(table.next.len() < 20, "{} entries kept", table.next.len());
    }
}
