//! The address ranges a webhook may not reach: every range of IANA's
//! special-purpose address registries (IPv4 and IPv6) that is not
//! globally reachable, plus multicast, broadcast and the deprecated IPv6
//! site-local range. IPv4 addresses carried inside IPv6 transition forms
//! (IPv4-compatible `::a.b.c.d`, IPv4-mapped `::ffff:a.b.c.d`,
//! IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`, Teredo `2001::/32`) are unwrapped and checked as IPv4:
//! `[64:ff9b::127.0.0.1]` reaches loopback through a NAT64 gateway.
//!
//! Sources: <https://www.iana.org/assignments/iana-ipv4-special-registry>
//! and <https://www.iana.org/assignments/iana-ipv6-special-registry>.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use crate::domain::Cidr;

/// Not globally reachable: (range, what it is).
const FORBIDDEN: &[(&str, &str)] = &[
    // IPv4 special-purpose registry, "Globally Reachable: False".
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private-use"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private-use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.168.0.0/16", "private-use"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("255.255.255.255/32", "limited broadcast"),
    ("240.0.0.0/4", "reserved"),
    // Not in the registry, never a webhook receiver.
    ("224.0.0.0/4", "multicast"),
    // IPv6 special-purpose registry, "Globally Reachable: False".
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    // Deprecated (RFC 3879) but still routed inside some sites.
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Globally reachable exceptions inside the ranges above.
const GLOBAL: &[&str] = &[
    "192.0.0.9/32",    // Port Control Protocol anycast
    "192.0.0.10/32",   // Traversal Using Relays around NAT anycast
    "2001:1::1/128",   // Port Control Protocol anycast
    "2001:1::2/128",   // Traversal Using Relays around NAT anycast
    "2001:1::3/128",   // DNS-SD service registration protocol anycast
    "2001:3::/32",     // AMT
    "2001:4:112::/48", // AS112-v6
    "2001:20::/28",    // ORCHIDv2
    "2001:30::/28",    // Drone remote ID protocol entity tags
];

/// The tables above, parsed once.
struct Table {
    forbidden: Vec<(Cidr, &'static str)>,
    global: Vec<Cidr>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let parse = |s: &str| s.parse::<Cidr>().expect("a valid range in the table");
    Table {
        forbidden: FORBIDDEN
            .iter()
            .map(|(r, what)| (parse(r), *what))
            .collect(),
        global: GLOBAL.iter().map(|r| parse(r)).collect(),
    }
});

/// Why `ip` may not be a webhook target (what range it is in), or `None`
/// when it is globally reachable. IPv4 inside IPv6 is judged as IPv4.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    let Table { forbidden, global } = &*TABLE;
    if let IpAddr::V6(v6) = ip
        && let Some(inner) = embedded_ipv4(v6)
        && let Some(what) = forbidden_range(IpAddr::V4(inner))
    {
        return Some(what);
    }
    let ip = ip.to_canonical();
    if global.iter().any(|c| c.contains(ip)) {
        return None;
    }
    forbidden
        .iter()
        .find(|(c, _)| c.contains(ip))
        .map(|(_, what)| *what)
}

/// The IPv4 address an IPv6 transition form carries, if any. The
/// loopback and unspecified addresses (`::1`, `::`) are not IPv4-compatible
/// forms: they are judged as IPv6.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = v6.to_bits();
    let low32 = Ipv4Addr::from_bits(bits as u32);
    let s = v6.segments();
    match s {
        // ::a.b.c.d (IPv4-compatible, deprecated), not :: or ::1.
        [0, 0, 0, 0, 0, 0, _, _] if bits > 1 => Some(low32),
        // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (translated).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32),
        // 64:ff9b::a.b.c.d, the NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        // 2002:AABB:CCDD::/48, 6to4.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from_bits((u32::from(hi) << 16) | u32::from(lo))),
        // 2001:0:server:server:flags:port:client:client, Teredo; the
        // client's address is stored inverted.
        [0x2001, 0, ..] => Some(Ipv4Addr::from_bits(!(bits as u32))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One example of every range, and how it is refused.
    #[test]
    fn every_special_purpose_range_is_refused() {
        let cases: &[(&str, &str)] = &[
            ("0.0.0.1", "\"this network\""),
            ("0.0.0.0", "\"this network\""),
            ("10.1.2.3", "private-use"),
            ("100.64.0.1", "shared address space (carrier-grade NAT)"),
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("172.16.0.1", "private-use"),
            ("192.0.0.1", "IETF protocol assignments"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("192.0.2.1", "documentation (TEST-NET-1)"),
            ("192.168.1.1", "private-use"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.51.100.1", "documentation (TEST-NET-2)"),
            ("203.0.113.1", "documentation (TEST-NET-3)"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "limited broadcast"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("64:ff9b:1::1", "local-use IPv4/IPv6 translation"),
            ("100::1", "discard-only"),
            ("100:0:0:1::1", "dummy prefix"),
            ("2001:2::1", "IETF protocol assignments"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("5f00::1", "segment routing (SRv6) SIDs"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            // IPv4 inside IPv6: unwrapped, then judged as IPv4.
            ("::127.0.0.1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:0:127.0.0.1", "loopback"),
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private-use"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private-use"),
            // Teredo: server 8.8.8.8, client 127.0.0.1 (stored inverted).
            ("2001:0:808:808:0:0:80ff:fffe", "loopback"),
            // Teredo with public addresses is still in 2001::/23.
            ("2001:0:808:808:0:0:f7f7:f7f7", "IETF protocol assignments"),
        ];
        for (ip, why) in cases {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_range(parsed), Some(*why), "{ip}");
        }
    }

    #[test]
    fn globally_reachable_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "192.0.0.9",
            "192.0.0.10",
            "198.20.0.1",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "2001:1::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden_range(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
