//! Where webhooks may be sent. An admin types the URL, so without a rule it could name a service
//! inside the network LangGuard runs in (`https://10.0.0.5/…`, any port on localhost), and the
//! delivery log would tell what answered there. So loopback, private, link-local, shared
//! (CGNAT), unique-local and other non-public addresses are refused — checked on the addresses
//! the host name resolves to, by the resolver the connection itself uses, so the address that
//! was checked is the address connected to (no DNS rebinding between the two) — unless an admin
//! allows them with `LANGGUARD_WEBHOOK_ALLOW_PRIVATE` (`true`, or a list of CIDRs).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An address or a CIDR (`10.0.0.0/8`, `127.0.0.1`) from a setting.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1)"))
}

/// Which non-public addresses webhooks may reach.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetPolicy {
    /// Every address (`LANGGUARD_WEBHOOK_ALLOW_PRIVATE=true`).
    pub allow_private: bool,
    /// These networks besides the public internet.
    pub allowed: Vec<IpNet>,
}

/// A webhook target refused, and why, in words that reveal nothing about what listens there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "webhooks may not be sent to {class} addresses ({host} is one); an admin can allow them \
     with LANGGUARD_WEBHOOK_ALLOW_PRIVATE"
)]
pub struct Refused {
    pub host: String,
    pub class: &'static str,
}

impl TargetPolicy {
    /// `LANGGUARD_WEBHOOK_ALLOW_PRIVATE`: `true`/`false`, or CIDRs and addresses, comma-separated.
    pub fn parse(setting: &str) -> Result<Self, String> {
        match setting.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" => Ok(Self::default()),
            "true" | "1" | "yes" => Ok(Self {
                allow_private: true,
                allowed: Vec::new(),
            }),
            _ => {
                let allowed = setting
                    .split(',')
                    .map(parse_network)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self {
                    allow_private: false,
                    allowed,
                })
            }
        }
    }

    /// Whether a webhook may connect to `ip`.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let ip = ip.to_canonical();
        match non_public(ip) {
            Some(class) if !self.allow_private && !self.allowed.iter().any(|n| n.contains(&ip)) => {
                Err(Refused {
                    host: host.to_owned(),
                    class,
                })
            }
            _ => Ok(()),
        }
    }

    /// The checks a URL allows before any lookup: an address written in it, or `localhost`.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    self.check(&name, IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }
}

/// The kind of non-public address `ip` is, if it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (0, _, _) => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        (192, 0, 0) => "reserved",
        (198, 18..=19, _) => "benchmarking",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // IPv4 inside IPv6 reaches that IPv4 address on networks that translate it: NAT64
    // (64:ff9b::/96 and the local-use 64:ff9b:1::/48), SIIT (::ffff:0:0/96), IPv4-compatible
    // (::/96) and 6to4 (2002::/16, the address in the next 32 bits).
    let embedded = match segments {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 1, _, _, _, hi, lo] => Some(v4(hi, lo)),
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] if !ip.is_loopback() && !ip.is_unspecified() => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    };
    if let Some(v4) = embedded {
        return non_public_v4(v4);
    }
    Some(match segments[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        s if s & 0xfe00 == 0xfc00 => "unique-local",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local",
        _ if ip.is_multicast() => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        _ => return None,
    })
}

/// How host names are looked up: the system's resolver, or fixed answers (tests).
#[derive(Debug, Clone, Default)]
pub enum Lookup {
    #[default]
    System,
    Fixed(HashMap<String, Vec<IpAddr>>),
}

impl Lookup {
    async fn addresses(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        match self {
            Lookup::System => Ok(tokio::net::lookup_host((name, 0))
                .await?
                .map(|a| a.ip())
                .collect()),
            Lookup::Fixed(answers) => answers
                .get(name)
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host")),
        }
    }
}

/// The resolver the webhook client connects through: it answers only addresses the policy
/// allows, so the connection goes nowhere else.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: TargetPolicy,
    pub lookup: Lookup,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = this.lookup.addresses(&host).await.map_err(|_| {
                Box::new(Unresolved(host.clone())) as Box<dyn std::error::Error + Send + Sync>
            })?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|ip| match this.policy.check(&host, *ip) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as _),
                (true, None) => Err(Box::new(Unresolved(host)) as _),
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("the receiver's host name {0} does not resolve")]
pub struct Unresolved(String);

/// A webhook client: no proxies (they would connect for us, unchecked), no redirects (they
/// could lead anywhere), and the guarded resolver.
pub fn client(policy: &TargetPolicy, lookup: &Lookup) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
            lookup: lookup.clone(),
        }))
        .user_agent(concat!("LangGuard/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What a failed delivery says: what failed, never the operating system's words (which would
/// tell a port that refuses from one that doesn't answer).
pub fn describe(error: &reqwest::Error, timeout: std::time::Duration) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        if let Some(unresolved) = e.downcast_ref::<Unresolved>() {
            return unresolved.to_string();
        }
        source = e.source();
    }
    if error.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if error.is_connect() {
        "could not connect to the receiver".to_owned()
    } else {
        "the receiver's answer could not be read".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn every_non_public_class_is_refused_and_public_addresses_pass() {
        let policy = TargetPolicy::default();
        for (address, class) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.5", "private"),
            ("172.16.3.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.254", "shared (CGNAT)"),
            ("fd00::1", "unique-local"),
            ("fc00::1", "unique-local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:10.0.0.5", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a00:5", "private"),
            ("64:ff9b:1::a00:5", "private"),
            ("::ffff:0:a00:5", "private"),
            ("2002:a00:5::1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
        ] {
            let refused = policy.check("h", ip(address)).expect_err(address);
            assert_eq!(refused.class, class, "{address}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "172.32.0.1",
        ] {
            assert!(policy.check("h", ip(public)).is_ok(), "{public}");
        }
    }

    #[test]
    fn an_admin_can_allow_all_private_addresses_or_some() {
        let all = TargetPolicy::parse("true").expect("parses");
        assert!(all.check("h", ip("10.0.0.5")).is_ok());
        let some = TargetPolicy::parse("10.1.0.0/16, 127.0.0.1").expect("parses");
        assert!(some.check("h", ip("10.1.2.3")).is_ok());
        assert!(some.check("h", ip("127.0.0.1")).is_ok());
        assert!(some.check("h", ip("10.2.0.1")).is_err());
        assert_eq!(
            TargetPolicy::parse("false").expect("parses"),
            TargetPolicy::default()
        );
        assert!(TargetPolicy::parse("10.0.0.0/99").is_err());
    }

    #[test]
    fn urls_naming_an_address_or_localhost_are_checked_before_any_lookup() {
        let policy = TargetPolicy::default();
        for url in [
            "https://10.0.0.5/hook",
            "https://[::1]:8443/hook",
            "http://localhost:9000/",
            "https://LOCALHOST./x",
            "https://api.localhost/x",
            "https://0x7f000001/x",
            "https://2130706433/x",
        ] {
            let url = url::Url::parse(url).expect("url");
            assert!(policy.check_url(&url).is_err(), "{url}");
        }
        let url = url::Url::parse("https://hooks.example.com/x").expect("url");
        assert!(policy.check_url(&url).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_answers_only_allowed_addresses() {
        let lookup = Lookup::Fixed(HashMap::from([
            ("rebind.example".to_owned(), vec![ip("10.0.0.5")]),
            (
                "mixed.example".to_owned(),
                vec![ip("127.0.0.1"), ip("1.1.1.1")],
            ),
        ]));
        let resolver = GuardedResolver {
            policy: TargetPolicy::default(),
            lookup,
        };
        let refused = resolver
            .resolve("rebind.example".parse().expect("name"))
            .await
            .err()
            .expect("refused");
        assert!(refused.to_string().contains("private"), "{refused}");
        let addrs: Vec<SocketAddr> = resolver
            .resolve("mixed.example".parse().expect("name"))
            .await
            .expect("one public address")
            .collect();
        assert_eq!(addrs, vec![SocketAddr::new(ip("1.1.1.1"), 0)]);
    }
}
