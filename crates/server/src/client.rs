//! Who a request comes from. Behind a reverse proxy every request arrives from the proxy, so
//! the address a client had is in `Forwarded` / `X-Forwarded-For` — but anyone can send those
//! headers, so they are believed only from the proxies named in `LANGGUARD_TRUSTED_PROXIES`,
//! and then only up to the first address that is not one of them (the right-most untrusted
//! hop: what a client puts further left is its own say-so).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::AppState;

/// Which header a trusted proxy sets: it must be the one the proxy overwrites or appends to,
/// or a client could write the other itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

impl std::str::FromStr for ForwardedHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!(
                "{other:?} is not a header a proxy names clients in; use x-forwarded-for or forwarded"
            )),
        }
    }
}

/// The client's address, as far as it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::Unavailable("the connection's address is unknown".into()))?;
        Ok(ClientAddr(client_address(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
            state.config.client_ip_header,
        )))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
/// forwarded address that is not a trusted proxy.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_hops(headers, header).into_iter().rev() {
        // An entry that isn't an address ends the walk: the nearest good one answers.
        let Some(hop) = hop else { break };
        client = hop.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// The forwarded-for addresses of `header`, nearest proxy last. `None` marks an entry that is
/// not an address (`unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect()
    };
    match header {
        ForwardedHeader::Forwarded => values("forwarded")
            .into_iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
            })
            .collect(),
        ForwardedHeader::XForwardedFor => values("x-forwarded-for")
            .into_iter()
            .map(|hop| parse_node(hop.trim()))
            .collect(),
    }
}

/// The key sign-in throttling counts an address under: IPv6 clients get a /64 each (one
/// customer's network), or a single client could walk through 2^64 addresses.
pub fn throttle_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

/// Parses `LANGGUARD_TRUSTED_PROXIES` entries: CIDRs or single addresses.
pub use langguard_ops::webhook_target::parse_network as parse_trusted_proxy;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let xff = ForwardedHeader::XForwardedFor;
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let direct = client_address(ip("198.51.100.7"), &spoofed, &[], xff);
        assert_eq!(direct, ip("198.51.100.7"));
        let proxies = [parse_trusted_proxy("10.0.0.0/8").expect("cidr")];
        let untrusted = client_address(ip("198.51.100.7"), &spoofed, &proxies, xff);
        assert_eq!(untrusted, ip("198.51.100.7"));
        let proxied = client_address(ip("10.1.2.3"), &spoofed, &proxies, xff);
        assert_eq!(proxied, ip("203.0.113.9"));
        // The header the proxy doesn't set is the client's own say-so: ignored.
        let both = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let by_xff = client_address(ip("10.1.2.3"), &both, &proxies, xff);
        assert_eq!(by_xff, ip("203.0.113.9"));
        let by_forwarded =
            client_address(ip("10.1.2.3"), &both, &proxies, ForwardedHeader::Forwarded);
        assert_eq!(by_forwarded, ip("1.2.3.4"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let xff = ForwardedHeader::XForwardedFor;
        let proxies = [
            parse_trusted_proxy("10.0.0.0/8").expect("cidr"),
            parse_trusted_proxy("127.0.0.1").expect("address"),
        ];
        // The client claims 1.1.1.1; its real address was appended by our proxies.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &proxies, xff),
            ip("203.0.113.9")
        );
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
        )]);
        let client = client_address(ip("10.0.0.1"), &h, &proxies, ForwardedHeader::Forwarded);
        assert_eq!(client, ip("2001:db8::7"));
        // Garbage stops the walk at the nearest good hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies, xff),
            ip("10.0.0.2")
        );
        // IPv4-mapped peers are their IPv4 selves.
        let mapped = client_address(ip("::ffff:198.51.100.7"), &HeaderMap::new(), &proxies, xff);
        assert_eq!(mapped, ip("198.51.100.7"));
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
    }

    #[test]
    fn ipv6_clients_are_throttled_per_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:bbbb::9")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(throttle_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(throttle_key(ip("198.51.100.7")), "198.51.100.7");
    }
}
