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

use crate::wire::vrrp::{ChecksumKind, Repr};

/// Receive counters: accepted adverts and drops per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RxStats {
    pub accepted: u64,
    /// v3 over IPv4 adverts whose checksum included the pseudo-header
    /// (keepalived's default).
    pub v3_checksum_pseudo_header: u64,
    /// v3 over IPv4 adverts checksummed as v2 (RFC 9568 reading).
    pub v3_checksum_plain: u64,
    /// Dropped packets by reason (`bad_ttl`, `bad_checksum`, `unknown_vrid`...).
    pub dropped: BTreeMap<String, u64>,
    /// v3 IPv6 adverts accepted although their first address is not
    /// link-local (RFC 5798 5.2.9; keepalived sends them when configured so).
    #[serde(default)]
    pub v6_first_not_link_local: u64,
}

impl RxStats {
    pub fn count(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_insert(0) += 1;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the instance at this index.
    Accepted(usize),
    /// Dropped; counted under this reason (on the instance if the VRID matched
    /// one, else on the interface-wide counters).
    Dropped(String),
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
    let verdict: Result<(Repr, ChecksumKind), String> = if pkt.ttl != 255 {
        Err("bad_ttl".to_string())
    } else {
        Repr::parse_lenient(pkt.payload, pkt.src, pkt.dst).map_err(|e| e.reason().to_string())
    };
    let stats_for = |instances: &mut [I], unmatched: &mut RxStats, reason: &str| {
        match target {
            Some(i) => instances[i].borrow_mut().stats_mut().count(reason),
            None => unmatched.count(reason),
        };
    };
    match (verdict, target) {
        (Err(reason), _) => {
            stats_for(instances, unmatched, &reason);
            Delivery::Dropped(reason)
        }
        (Ok(_), None) => {
            unmatched.count("unknown_vrid");
            Delivery::Dropped("unknown_vrid".into())
        }
        (Ok((repr, checksum)), Some(i)) => {
            match instances[i]
                .borrow_mut()
                .handle_advert(now, pkt.src, &repr, checksum)
            {
                Ok(()) => Delivery::Accepted(i),
                Err(r) => Delivery::Dropped(r.reason().into()),
            }
        }
    }
}
