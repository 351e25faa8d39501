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
        )))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
/// forwarded address that is not a trusted proxy.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_hops(headers).into_iter().rev() {
        // An entry that isn't an address ends the walk: the nearest good one answers.
        let Some(hop) = hop else { break };
        client = hop.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// The forwarded-for addresses, nearest proxy last: RFC 7239 `Forwarded` when present,
/// `X-Forwarded-For` otherwise. `None` marks an entry that is not an address (`unknown`, an
/// obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
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
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1)"))
}

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
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoofed, &[]),
            ip("198.51.100.7")
        );
        let proxies = [parse_trusted_proxy("10.0.0.0/8").expect("cidr")];
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoofed, &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.1.2.3"), &spoofed, &proxies),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = [
            parse_trusted_proxy("10.0.0.0/8").expect("cidr"),
            parse_trusted_proxy("127.0.0.1").expect("address"),
        ];
        // The client claims 1.1.1.1; its real address was appended by our proxies.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &proxies),
            ip("203.0.113.9")
        );
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies),
            ip("2001:db8::7")
        );
        // Garbage stops the walk at the nearest good hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &proxies), ip("10.0.0.2"));
        // IPv4-mapped peers are their IPv4 selves.
        assert_eq!(
            client_address(ip("::ffff:198.51.100.7"), &HeaderMap::new(), &proxies),
            ip("198.51.100.7")
        );
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
    }
}
