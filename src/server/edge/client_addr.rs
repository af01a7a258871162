//! Whose request this is: the client's address, also behind a proxy.
//!
//! Every per-address limit (sockets, handshakes, the flood cool-down) and
//! every log line keys on the client's address. Directly connected, that is
//! the TCP peer. Behind a load balancer every peer is the balancer, so the
//! limits would treat all users as one; the balancer names the real client
//! in `X-Forwarded-For` (or RFC 7239's `Forwarded`).
//!
//! Those headers are only as trustworthy as whoever wrote them: any client
//! can send `X-Forwarded-For: 1.2.3.4`. So they are read **only when the TCP
//! peer is one of the configured `trusted-proxies`**, and then from the
//! right: each proxy appends the address it saw, so walking the list
//! backwards past trusted proxies reaches the first address no trusted
//! proxy vouches for — the client. Entries to its left were written by the
//! client itself and are ignored. An entry that is not an address (`unknown`,
//! a typo) stops the walk at the last trusted hop: never guess further left.
//!
//! `X-Forwarded-For` is read if present, `Forwarded` only otherwise: the
//! proxy in front must set the one Banter reads (the tested nginx config
//! sets `X-Forwarded-For`).

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address, as an extension on every request (set by the
/// accept loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// The proxies whose forwarding headers are believed. Empty by default: then
/// the headers are never read.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies { nets }
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.nets.iter().any(|net| net.contains(&addr))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = hop.map(canonical) else {
                break;
            };
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is the
/// IPv4 address, so both spellings share one budget.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarding chain, leftmost (furthest from us) first; `None` for an
/// entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    if !xff.is_empty() {
        return xff
            .into_iter()
            .flat_map(|value| {
                let text = value.to_str().unwrap_or("");
                text.split(',').map(|entry| parse_node(entry.trim()))
            })
            .collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| {
            let text = value.to_str().unwrap_or("");
            text.split(',')
                .map(|element| {
                    element.split(';').find_map(|pair| {
                        let (key, value) = pair.trim().split_once('=')?;
                        key.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| value.trim().trim_matches('"'))
                    })
                })
                .map(|node| node.and_then(parse_node))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One node: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::server::config::parse_trusted;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(entries.iter().map(|e| parse_trusted(e).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_never_read() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(trusted.client(ip("192.0.2.9"), &h), ip("192.0.2.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client wrote "6.6.6.6" itself; nginx appended what it saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.1.2.3")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &h), ip("203.0.113.5"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &h), ip("203.0.113.5"));
        // A trusted proxy that forwards nothing is itself the client.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.5, unknown, 10.1.2.3")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["::1"]);
        let h = headers(&[(
            "forwarded",
            r#"for=198.51.100.17;proto=http, for="[2001:db8:cafe::17]:4711";by=x"#,
        )]);
        assert_eq!(trusted.client(ip("::1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=198.51.100.17:8080")]);
        assert_eq!(trusted.client(ip("::1"), &h), ip("198.51.100.17"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_entries_parse_or_say_why() {
        let trusted = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.5")]);
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &h),
            ip("203.0.113.5")
        );
        assert_eq!(
            parse_trusted("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(parse_trusted("10.0.0.0/33").is_err());
        let err = parse_trusted("proxy.local").unwrap_err();
        assert!(err.contains("not an IP address"), "{err}");
    }
}
