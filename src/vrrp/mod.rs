//! The VRRP protocol core (sans-IO): one [`Instance`] per virtual router,
//! timer arithmetic, and the receive path shared by the daemon and the
//! simulator (TTL check, parse, VRID dispatch, per-reason counters).

mod drop;
pub mod instance;
pub mod timers;

use std::borrow::BorrowMut;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

pub use drop::DropReason;
pub use instance::{
    Action, ClusterGates, ClusterReason, GarpSchedule, Instance, InstanceConfig, Reason, Rejected,
    State,
};

use crate::wire::vrrp::{Advert, ChecksumKind};

/// Receive counters: accepted adverts and drops per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RxStats {
    pub accepted: u64,
    /// v3 over IPv4 adverts whose checksum included the pseudo-header
    /// (keepalived's default).
    pub v3_checksum_pseudo_header: u64,
    /// v3 over IPv4 adverts checksummed as v2 (RFC 9568 reading).
    pub v3_checksum_plain: u64,
    /// Dropped packets by reason, keyed by [`DropReason::as_str`] (`bad_ttl`,
    /// `bad_checksum`, `unknown_vrid`...). Kept as strings so that the JSON
    /// of `baton status --json` stays a plain name-to-count map and a client
    /// reads the counters of a daemon that knows more reasons than it does.
    /// Written through [`RxStats::count`] only.
    pub dropped: BTreeMap<String, u64>,
    /// v3 IPv6 adverts accepted although their first address is not
    /// link-local (RFC 5798 5.2.9; keepalived sends them when configured so).
    #[serde(default)]
    pub v6_first_not_link_local: u64,
}

impl RxStats {
    /// Count one packet dropped for `reason`.
    pub fn count(&mut self, reason: DropReason) {
        let name = reason.as_str();
        match self.dropped.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                self.dropped.insert(name.to_owned(), 1);
            }
        }
    }

    /// Packets dropped for `reason` so far.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.as_str()).copied().unwrap_or(0)
    }

    pub fn accept(&mut self, checksum: ChecksumKind) {
        self.accepted += 1;
        match checksum {
            ChecksumKind::Standard => {}
            ChecksumKind::V3WithPseudoHeader => self.v3_checksum_pseudo_header += 1,
            ChecksumKind::V3WithoutPseudoHeader => self.v3_checksum_plain += 1,
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// One received VRRP packet as the socket layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The VRRP message (IP payload, cut to the IP length).
    pub payload: &'a [u8],
}

/// What became of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the instance at this index.
    Accepted(usize),
    /// Dropped; counted under this reason (on the instance if the VRID matched
    /// one, else on the interface-wide counters).
    Dropped(DropReason),
}

/// The receive path: TTL check (RFC 5798 7.1: hop limit must be 255), parse,
/// find the instance by VRID and address family, hand the advert over.
/// Every drop is counted, on the instance the VRID names where there is one.
/// `instances` are those on the receiving interface.
pub fn dispatch<I: BorrowMut<Instance>>(
    now: Instant,
    instances: &mut [I],
    unmatched: &mut RxStats,
    pkt: Received<'_>,
) -> Delivery {
    let family_v4 = pkt.src.is_ipv4();
    let target = pkt.payload.get(1).and_then(|&vrid| {
        instances.iter().position(|i| {
            let i = i.borrow();
            i.vrid() == vrid && i.local_addr().is_ipv4() == family_v4
        })
    });
    let verdict: Result<(Advert, ChecksumKind), DropReason> = if pkt.ttl != 255 {
        Err(DropReason::BadTtl)
    } else {
        Advert::parse_lenient(pkt.payload, pkt.src, pkt.dst).map_err(DropReason::from)
    };
    match (verdict, target) {
        (Err(reason), Some(i)) => {
            instances[i].borrow_mut().stats_mut().count(reason);
            Delivery::Dropped(reason)
        }
        (Err(reason), None) => {
            unmatched.count(reason);
            Delivery::Dropped(reason)
        }
        (Ok(_), None) => {
            unmatched.count(DropReason::UnknownVrid);
            Delivery::Dropped(DropReason::UnknownVrid)
        }
        (Ok((repr, checksum)), Some(i)) => {
            // handle_advert counts its own verdict, accepted or rejected.
            match instances[i]
                .borrow_mut()
                .handle_received(now, pkt.src, &repr, checksum)
            {
                Ok(()) => Delivery::Accepted(i),
                Err(r) => Delivery::Dropped(r.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vrrp::{Repr, V3Checksum, Version};
    use std::net::Ipv4Addr;

    const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn advert(vrid: u8, src: IpAddr) -> Vec<u8> {
        Repr {
            version: Version::V3,
            vrid,
            priority: 100,
            interval_cs: 100,
            addresses: vec![ip(100)],
            auth: None,
        }
        .to_bytes(src, GROUP, V3Checksum::WithPseudoHeader)
        .unwrap()
    }

    fn rx(ttl: u8, src: IpAddr, payload: &[u8]) -> Received<'_> {
        Received {
            src,
            dst: GROUP,
            ttl,
            payload,
        }
    }

    #[test]
    fn serialised_stats_are_unchanged() {
        let mut s = RxStats::default();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"accepted":0,"v3_checksum_pseudo_header":0,"v3_checksum_plain":0,"dropped":{},"v6_first_not_link_local":0}"#
        );
        s.accept(ChecksumKind::Standard);
        s.accept(ChecksumKind::V3WithPseudoHeader);
        s.count(DropReason::UnknownVrid);
        s.count(DropReason::BadTtl);
        s.count(DropReason::BadTtl);
        s.count(DropReason::BadChecksum);
        s.count(DropReason::AuthMismatch);
        // As the string-keyed counters serialised before the typed reasons.
        let json = r#"{"accepted":2,"v3_checksum_pseudo_header":1,"v3_checksum_plain":0,"dropped":{"auth_mismatch":1,"bad_checksum":1,"bad_ttl":2,"unknown_vrid":1},"v6_first_not_link_local":0}"#;
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
        let back: RxStats = serde_json::from_str(json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.drops(DropReason::BadTtl), 2);
        assert_eq!(back.drops(DropReason::OwnAddress), 0);
        assert_eq!(back.dropped_total(), 5);
    }

    #[test]
    fn dispatch_counts_each_drop_where_the_vrid_points() {
        let t0 = Instant::now();
        let mut instances = vec![Instance::new(
            InstanceConfig::new("VI_1", 51, 100, vec![ip(100)]),
            ip(1),
        )];
        let mut unmatched = RxStats::default();
        let good = advert(51, ip(2));
        let other_vrid = advert(52, ip(2));
        let mut corrupt = good.clone();
        corrupt[2] ^= 1; // the priority: the checksum no longer matches
        let own = advert(51, ip(1));

        let mut run = |pkt: Received<'_>| dispatch(t0, &mut instances, &mut unmatched, pkt);
        assert_eq!(run(rx(255, ip(2), &good)), Delivery::Accepted(0));
        assert_eq!(
            run(rx(254, ip(2), &good)),
            Delivery::Dropped(DropReason::BadTtl)
        );
        assert_eq!(
            run(rx(1, ip(2), &other_vrid)),
            Delivery::Dropped(DropReason::BadTtl)
        );
        assert_eq!(
            run(rx(255, ip(2), &corrupt)),
            Delivery::Dropped(DropReason::BadChecksum)
        );
        assert_eq!(
            run(rx(255, ip(2), &other_vrid)),
            Delivery::Dropped(DropReason::UnknownVrid)
        );
        assert_eq!(
            run(rx(255, ip(1), &own)),
            Delivery::Dropped(DropReason::OwnAddress)
        );
        assert_eq!(
            run(rx(255, ip(2), &[])),
            Delivery::Dropped(DropReason::Truncated)
        );

        assert_eq!(
            serde_json::to_string(instances[0].stats()).unwrap(),
            r#"{"accepted":1,"v3_checksum_pseudo_header":1,"v3_checksum_plain":0,"dropped":{"bad_checksum":1,"bad_ttl":1,"own_address":1},"v6_first_not_link_local":0}"#
        );
        assert_eq!(
            serde_json::to_string(&unmatched).unwrap(),
            r#"{"accepted":0,"v3_checksum_pseudo_header":0,"v3_checksum_plain":0,"dropped":{"bad_ttl":1,"truncated":1,"unknown_vrid":1},"v6_first_not_link_local":0}"#
        );
    }
}
