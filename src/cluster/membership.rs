//! Who is in the cluster, who is alive, and who is next: the peer table fed
//! by connection events and heartbeats, and the selection policy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::message::InstanceBeat;
use crate::vrrp::instance::addr_greater;
use crate::vrrp::State;

/// The control-node selection policy (method step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// VRRP's rule: highest effective priority, then highest address.
    Priority,
    /// A configured succession list; nodes not on it come after, by priority.
    Order(Vec<String>),
}

/// What one node (this one or a peer) reports for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: String,
    pub state: State,
    pub priority: u8,
    pub address: Option<IpAddr>,
}

impl Policy {
    /// Does `a` take precedence over `b` as master of an instance?
    pub fn prefers(&self, a: &Candidate, b: &Candidate) -> bool {
        if let Policy::Order(order) = self {
            let pos = |n: &str| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
            let (pa, pb) = (pos(&a.node), pos(&b.node));
            if pa != pb {
                return pa < pb;
            }
        }
        if a.priority != b.priority {
            return a.priority > b.priority;
        }
        match (a.address, b.address) {
            (Some(x), Some(y)) if x != y => addr_greater(x, y),
            _ => a.node > b.node,
        }
    }

    /// Eligible candidates (not faulted, not stopped), best first.
    pub fn rank(&self, candidates: &[Candidate]) -> Vec<String> {
        let mut eligible: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| matches!(c.state, State::Backup | State::Master))
            .collect();
        // Insertion sort with the policy's order: n is tiny (cluster size).
        let mut sorted: Vec<&Candidate> = Vec::with_capacity(eligible.len());
        for c in eligible.drain(..) {
            let at = sorted
                .iter()
                .position(|s| self.prefers(c, s))
                .unwrap_or(sorted.len());
            sorted.insert(at, c);
        }
        sorted.into_iter().map(|c| c.node.clone()).collect()
    }
}

/// One peer as this node sees it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub connected: bool,
    /// When the connection last came up.
    pub since: Option<Instant>,
    pub last_heard: Option<Instant>,
    /// Its instances, from its last heartbeat, by name.
    pub instances: BTreeMap<String, InstanceBeat>,
    /// Heartbeats received from it.
    pub heartbeats: u64,
    /// Its last heartbeat stamp and when it arrived (echoed back to it).
    pub stamp: Option<(u64, Instant)>,
    /// The round-trip time last measured through its echo of our stamp.
    pub rtt: Option<Duration>,
    /// Its last connection closed without a goodbye (its kernel closed
    /// it: the process died); cleared when it connects again.
    pub died: bool,
}

/// The peer table.
#[derive(Debug, Clone)]
pub struct Membership {
    peers: BTreeMap<String, Peer>,
    /// A peer not heard from for this long is dead even if its connection
    /// has not closed yet.
    pub dead_after: Duration,
    /// A master heard within this long vouches for itself: VRRP silence
    /// alone does not unseat it.
    pub vouch_window: Duration,
}

impl Membership {
    pub fn new(peers: &[String], heartbeat: Duration) -> Self {
        Membership {
            peers: peers.iter().map(|p| (p.clone(), Peer::default())).collect(),
            dead_after: heartbeat * 3,
            vouch_window: heartbeat * 3 / 2,
        }
    }

    /// A reload's new peer list: newcomers start unknown (down), those gone
    /// are forgotten, the others keep what is known of them.
    pub fn set_peers(&mut self, peers: &[String], heartbeat: Duration) {
        self.peers.retain(|name, _| peers.contains(name));
        for p in peers {
            self.peers.entry(p.clone()).or_default();
        }
        self.dead_after = heartbeat * 3;
        self.vouch_window = heartbeat * 3 / 2;
    }

    pub fn is_peer(&self, name: &str) -> bool {
        self.peers.contains_key(name)
    }

    pub fn peers(&self) -> impl Iterator<Item = (&String, &Peer)> {
        self.peers.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Peer> {
        self.peers.get(name)
    }

    pub fn connected(&mut self, now: Instant, name: &str) {
        if let Some(p) = self.peers.get_mut(name) {
            p.connected = true;
            p.since = Some(now);
            p.died = false;
        }
    }

    /// The peer's connection closed without a goodbye: its process died.
    pub fn died(&mut self, name: &str) {
        self.disconnected(name);
        if let Some(p) = self.peers.get_mut(name) {
            p.died = true;
        }
    }

    /// Whether the peer's process died (see [`Peer::died`]).
    pub fn has_died(&self, name: &str) -> bool {
        self.peers.get(name).is_some_and(|p| p.died)
    }

    pub fn disconnected(&mut self, name: &str) {
        if let Some(p) = self.peers.get_mut(name) {
            p.connected = false;
            p.since = None;
            // A stamp from the old connection says nothing about the next.
            p.stamp = None;
            p.rtt = None;
        }
    }

    pub fn heartbeat(&mut self, now: Instant, name: &str, instances: Vec<InstanceBeat>) {
        if let Some(p) = self.peers.get_mut(name) {
            p.last_heard = Some(now);
            p.heartbeats += 1;
            p.instances = instances.into_iter().map(|b| (b.name.clone(), b)).collect();
        }
    }

    /// Record a peer's heartbeat stamp, and the round trip its echo of
    /// ours shows: `now_us` less our stamp less the time it held it. An
    /// echo from the future or held longer than the trip is ignored.
    pub fn stamps(
        &mut self,
        now: Instant,
        name: &str,
        stamp: Option<u64>,
        echo: Option<(u64, u64)>,
        now_us: u64,
    ) {
        let Some(p) = self.peers.get_mut(name) else {
            return;
        };
        p.stamp = stamp.map(|s| (s, now));
        if let Some((ours, held_us)) = echo {
            if let Some(rtt) = now_us
                .checked_sub(ours)
                .and_then(|d| d.checked_sub(held_us))
            {
                p.rtt = Some(Duration::from_micros(rtt));
            }
        }
    }

    fn heard_within(&self, now: Instant, name: &str, window: Duration) -> bool {
        self.peers.get(name).is_some_and(|p| {
            p.connected
                && p.last_heard
                    .is_some_and(|t| now.saturating_duration_since(t) <= window)
        })
    }

    /// Connected and heard from recently.
    pub fn alive(&self, now: Instant, name: &str) -> bool {
        self.heard_within(now, name, self.dead_after)
    }

    /// Heard from within the vouch window.
    pub fn vouched(&self, now: Instant, name: &str) -> bool {
        self.heard_within(now, name, self.vouch_window)
    }

    /// The instant at which a peer's liveness or vouching next lapses, so
    /// the core can re-evaluate then.
    pub fn next_lapse(&self, now: Instant) -> Option<Instant> {
        self.peers
            .values()
            .filter(|p| p.connected)
            .filter_map(|p| p.last_heard)
            .flat_map(|t| [t + self.vouch_window, t + self.dead_after])
            .filter(|t| *t > now)
            .min()
    }

    /// A live peer's beat for an instance.
    pub fn beat(&self, now: Instant, name: &str, instance: &str) -> Option<&InstanceBeat> {
        if !self.alive(now, name) {
            return None;
        }
        self.peers.get(name)?.instances.get(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: &str, state: State, priority: u8, last: u8) -> Candidate {
        Candidate {
            node: node.into(),
            state,
            priority,
            address: Some(IpAddr::from([10, 0, 0, last])),
        }
    }

    #[test]
    fn priority_policy_ranks_by_priority_then_address_and_skips_faults() {
        let p = Policy::Priority;
        let r = p.rank(&[
            c("a", State::Backup, 100, 1),
            c("b", State::Backup, 200, 2),
            c("c", State::Backup, 100, 3),
            c("d", State::Fault, 250, 4),
        ]);
        assert_eq!(r, vec!["b", "c", "a"]);
    }

    #[test]
    fn order_policy_follows_the_list_then_priority() {
        let p = Policy::Order(vec!["c".into(), "a".into()]);
        let r = p.rank(&[
            c("a", State::Backup, 100, 1),
            c("b", State::Backup, 250, 2),
            c("c", State::Backup, 50, 3),
        ]);
        assert_eq!(r, vec!["c", "a", "b"]);
    }

    #[test]
    fn liveness_needs_connection_and_recent_heartbeat() {
        let t0 = Instant::now();
        let mut m = Membership::new(&["b".to_string()], Duration::from_millis(100));
        assert!(!m.alive(t0, "b"));
        m.connected(t0, "b");
        assert!(!m.alive(t0, "b"), "not before its first heartbeat");
        m.heartbeat(t0, "b", vec![]);
        assert!(m.alive(t0, "b") && m.vouched(t0, "b"));
        assert!(!m.vouched(t0 + Duration::from_millis(151), "b"));
        assert!(m.alive(t0 + Duration::from_millis(300), "b"));
        assert!(!m.alive(t0 + Duration::from_millis(301), "b"));
        m.disconnected("b");
        assert!(!m.alive(t0, "b"));
        assert!(!m.is_peer("zz"));
    }

    #[test]
    fn echoes_give_the_round_trip_and_bogus_ones_are_ignored() {
        let t0 = Instant::now();
        let mut m = Membership::new(&["b".to_string()], Duration::from_millis(100));
        m.connected(t0, "b");
        // Our stamp 1000 us, held 300 us by the peer, back at 1900 us.
        m.stamps(t0, "b", Some(5), Some((1000, 300)), 1900);
        let p = m.get("b").unwrap();
        assert_eq!(p.rtt, Some(Duration::from_micros(600)));
        assert_eq!(p.stamp, Some((5, t0)));
        // From the future, or held longer than the trip: ignored.
        m.stamps(t0, "b", None, Some((5000, 0)), 1900);
        m.stamps(t0, "b", None, Some((1000, 2000)), 1900);
        assert_eq!(m.get("b").unwrap().rtt, Some(Duration::from_micros(600)));
        assert_eq!(m.get("b").unwrap().stamp, None);
        m.disconnected("b");
        assert_eq!(m.get("b").unwrap().rtt, None);
    }
}
