//! The receive path of VRRP adverts, as the daemon runs it: the IPv4
//! header a raw socket hands over (`agent::socket::parse_ipv4_header`), or
//! IPv6's control messages (`received_v6`, and `received_v6_raw` on the
//! same messages as the kernel lays them out, which must agree), then
//! `vrrp::dispatch` into the
//! instances of one interface (TTL check, parse, VRID lookup, the
//! instance's own checks and state machine).
//!
//! Input: a flags byte (bit 0: IPv6; bit 1: IPv6 hop limit out of range;
//! bit 2: keep the VRRP checksum as it is, else fill in a valid one), then
//! - IPv4: the datagram as received;
//! - IPv6: source (16), hop limit (1), a byte (0: no packet info, else the
//!   destination (16) follows), the VRRP message.
//!
//! Checked: the header's fields agree with `wire::ip::parse_ipv4` where
//! that accepts (it also checks the header checksum); the payload lies in
//! the buffer; every packet is counted exactly once; only TTL 255 is
//! accepted, by the instance its VRID names.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use baton::agent::socket::{parse_ipv4_header, received_v6, received_v6_raw};
use baton::vrrp::{dispatch, Delivery, Instance, InstanceConfig, RxStats};
use baton::wire::vrrp::Version;
use baton_fuzz::fix_vrrp_checksum;
use libfuzzer_sys::fuzz_target;
use nix::sys::socket::ControlMessageOwned;

/// The control messages as the kernel lays them out: per message a size_t
/// length, level and type, the data, padding to a size_t.
fn raw_control(cmsgs: &[ControlMessageOwned]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmsgs {
        let (kind, data): (i32, Vec<u8>) = match c {
            ControlMessageOwned::Ipv6HopLimit(h) => (libc::IPV6_HOPLIMIT, h.to_ne_bytes().to_vec()),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                let mut d = info.ipi6_addr.s6_addr.to_vec();
                d.extend_from_slice(&info.ipi6_ifindex.to_ne_bytes());
                (libc::IPV6_PKTINFO, d)
            }
            _ => continue,
        };
        let word = std::mem::size_of::<usize>();
        out.extend_from_slice(&(word + 8 + data.len()).to_ne_bytes());
        out.extend_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().next_multiple_of(word), 0);
    }
    out
}

fn instances(now: Instant) -> Vec<Instance> {
    let v4 = |d| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d));
    let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
    let mut v2 = InstanceConfig::new("v2", 52, 100, vec![v4(52)]);
    v2.version = Version::V2;
    v2.auth = Some(*b"secret\0\0");
    let mut strict = InstanceConfig::new("v6s", 55, 200, vec![v6("fe80::55")]);
    strict.strict = true;
    let mut list = vec![
        Instance::new(InstanceConfig::new("v4", 51, 150, vec![v4(51)]), v4(1)),
        Instance::new(v2, v4(1)),
        Instance::new(
            InstanceConfig::new("v6", 54, 150, vec![v6("fe80::54"), v6("fd00::54")]),
            v6("fe80::1"),
        ),
        Instance::new(strict, v6("fe80::1")),
    ];
    for i in &mut list {
        i.startup(now);
        while i.poll_action().is_some() {}
    }
    list
}

fn counted(s: &RxStats) -> u64 {
    s.accepted + s.dropped_total()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (src, dst, ttl, mut payload) = if flags & 1 == 0 {
        let Ok(h) = parse_ipv4_header(rest) else {
            return;
        };
        assert!(h.payload.start >= 20 && h.payload.start <= h.payload.end);
        assert!(h.payload.end <= rest.len());
        if let Ok((w, wp)) = baton::wire::ip::parse_ipv4(rest) {
            assert_eq!((w.src, w.dst, w.ttl), (h.src, h.dst, h.ttl));
            assert_eq!(wp, &rest[h.payload.clone()]);
        }
        (
            IpAddr::V4(h.src),
            IpAddr::V4(h.dst),
            h.ttl,
            rest[h.payload].to_vec(),
        )
    } else {
        let Some(src) = rest.get(..16) else { return };
        let src: [u8; 16] = src.try_into().unwrap();
        let Some(&hops) = rest.get(16) else { return };
        let Some(&has_info) = rest.get(17) else {
            return;
        };
        let mut at = 18;
        let mut cmsgs = Vec::new();
        let hops = if flags & 2 != 0 {
            256 + i32::from(hops)
        } else {
            i32::from(hops)
        };
        cmsgs.push(ControlMessageOwned::Ipv6HopLimit(hops));
        if has_info != 0 {
            let Some(d) = rest.get(18..34) else { return };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: d.try_into().unwrap(),
                },
                ipi6_ifindex: 2,
            };
            cmsgs.push(ControlMessageOwned::Ipv6PacketInfo(info));
            at = 34;
        }
        let payload = &rest[at..];
        // The daemon's batch receive parses the kernel's layout itself:
        // the same messages laid out so must say the same.
        let raw = raw_control(&cmsgs);
        let r = received_v6(Some(Ipv6Addr::from(src)), payload.len(), cmsgs);
        let r_raw = received_v6_raw(Some(Ipv6Addr::from(src)), payload.len(), &raw);
        assert_eq!(r, r_raw, "the two parses of the control messages agree");
        assert_eq!(r.payload, 0..payload.len());
        assert!(
            flags & 2 == 0 || r.ttl == 0,
            "an out-of-range hop limit is no TTL"
        );
        (r.src, r.dst, r.ttl, payload.to_vec())
    };
    if flags & 4 == 0 {
        fix_vrrp_checksum(&mut payload, src, dst, true);
    }

    let now = Instant::now();
    let mut list = instances(now);
    let mut unmatched = RxStats::default();
    let pkt = baton::vrrp::Received {
        src,
        dst,
        ttl,
        payload: &payload,
    };
    let delivery = dispatch(now, &mut list, &mut unmatched, pkt);
    let total: u64 = list.iter().map(|i| counted(i.stats())).sum::<u64>() + counted(&unmatched);
    assert_eq!(total, 1, "each packet is counted exactly once");
    if let Delivery::Accepted(i) = delivery {
        assert_eq!(ttl, 255);
        assert_eq!(Some(&list[i].vrid()), payload.get(1));
        assert_eq!(list[i].local_addr().is_ipv4(), src.is_ipv4());
        assert_eq!(list[i].stats().accepted, 1);
    }
    for i in &mut list {
        while i.poll_action().is_some() {}
    }
});
