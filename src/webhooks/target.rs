//! Where a webhook may deliver: an `http://` or `https://` address whose host is not, and
//! does not resolve to, a loopback, private, link-local or otherwise internal address, so
//! that nobody can use the server to reach what stands behind its firewall (server-side
//! request forgery). The check runs when a webhook is created and again in the resolver of
//! every delivery, on the addresses actually connected to, so a name that later resolves
//! somewhere internal (DNS rebinding) is refused too. `WEBHOOK_ALLOW_PRIVATE=true` lifts it.

use axum::http::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A webhook address that has passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The address, as given.
    pub uri: Uri,
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute http(s) URL.
    #[error("must be an absolute http:// or https:// URL without user name or password")]
    Malformed,
    /// The host is, or resolves to, an internal address.
    #[error(
        "{0} is a private, loopback or otherwise internal address (set WEBHOOK_ALLOW_PRIVATE=true to allow it)"
    )]
    Private(IpAddr),
    /// The host does not resolve.
    #[error("the host {0} does not resolve")]
    Unresolvable(String),
}

/// Parses a webhook address: absolute, http or https, a host, no user info, at most 2048
/// bytes.
pub fn parse(url: &str) -> Result<Target, TargetError> {
    if url.len() > 2048 {
        return Err(TargetError::Malformed);
    }
    let uri: Uri = url.parse().map_err(|_| TargetError::Malformed)?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let authority = uri.authority().ok_or(TargetError::Malformed)?;
    if !scheme_ok || authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(TargetError::Malformed);
    }
    Ok(Target { uri })
}

/// Checks a target's host as creation does: an address literal against the policy, a name by
/// resolving it and checking every address.
pub async fn check(target: &Target, allow_private: bool) -> Result<(), TargetError> {
    let host = host_of(&target.uri);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return permit(ip, allow_private);
    }
    let addrs = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|_| TargetError::Unresolvable(host.clone()))?;
    let mut any = false;
    for addr in addrs {
        permit(addr.ip(), allow_private)?;
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(TargetError::Unresolvable(host))
    }
}

/// The host of an address, without IPv6 brackets.
pub fn host_of(uri: &Uri) -> String {
    uri.host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// Whether an address may be delivered to.
pub fn permit(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(TargetError::Private(ip))
    }
}

/// True for addresses on the public internet: not unspecified, loopback, private (RFC 1918,
/// unique local), shared (CGNAT), link-local, multicast, broadcast, documentation,
/// benchmarking or reserved. IPv4 inside IPv6 (mapped, compatible, NAT64) is judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::/96).
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) || s[0..6] == [0; 6] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return !v6.is_unspecified() && !v6.is_loopback() && is_public_v4(v4);
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF protocol assignments (Teredo, ORCHID…)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

/// The resolver of every delivery: the system's, with the addresses the policy refuses
/// removed (none left is an error, so nothing is connected to).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| permit(a.ip(), allow_private).is_ok())
                .collect();
            if kept.is_empty() {
                let reason = match all.first() {
                    Some(a) => TargetError::Private(a.ip()).to_string(),
                    None => TargetError::Unresolvable(host).to_string(),
                };
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, reason));
            }
            Ok(kept.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!public(internal), "{internal} must be refused");
        }
        for outside in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(outside), "{outside} must pass");
        }
    }

    #[test]
    fn only_absolute_http_urls_without_credentials_parse() {
        assert!(parse("https://hooks.example.org/in?x=1").is_ok());
        assert!(parse("http://[2606:4700::1111]:8080/").is_ok());
        for bad in [
            "ftp://example.org/",
            "example.org/hook",
            "https://user:pw@example.org/",
            "/relative",
            "",
        ] {
            assert_eq!(parse(bad), Err(TargetError::Malformed), "{bad}");
        }
    }

    #[tokio::test]
    async fn loopback_names_and_literals_are_refused_unless_allowed() {
        let t = parse("http://localhost:9/").unwrap();
        assert!(matches!(
            check(&t, false).await,
            Err(TargetError::Private(_))
        ));
        assert!(check(&t, true).await.is_ok());
        let t = parse("http://[::1]/").unwrap();
        assert!(matches!(
            check(&t, false).await,
            Err(TargetError::Private(_))
        ));
    }
}
