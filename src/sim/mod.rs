//! Deterministic simulator: N nodes, each with VRRP instances, on one
//! virtual LAN with virtual time, per-link delay, seeded loss, partitions,
//! crashes and restarts.
//!
//! It drives the very same [`Instance`] cores and receive path
//! ([`crate::vrrp::dispatch`]) as the daemon, with real packet bytes
//! (emitted and parsed by [`crate::wire`]), so a protocol scenario can be
//! checked in milliseconds and replayed exactly from its seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::vrrp::{self, Action, Instance, InstanceConfig, Reason, Received, RxStats, State};
use crate::wire::vrrp::V3Checksum;

pub type NodeId = usize;

/// A small, fast, seedable PRNG (SplitMix64): deterministic across
/// platforms and runs, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: f64) -> bool {
        percent > 0.0 && (self.next_u64() % 10_000) as f64 / 100.0 < percent
    }
}

/// One transition seen in the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Virtual time since the simulation started.
    pub at: Duration,
    pub node: NodeId,
    pub instance: String,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

#[derive(Debug)]
struct Node {
    name: String,
    addr4: Ipv4Addr,
    addr6: Ipv6Addr,
    configs: Vec<InstanceConfig>,
    instances: Vec<Instance>,
    /// Whether each instance's VIPs are configured on the node.
    holds_vips: Vec<bool>,
    up: bool,
    /// Bumped on every crash so packets in flight to an old incarnation
    /// are not delivered to the new one.
    incarnation: u64,
    link_delay: Duration,
    partition: u32,
    unmatched: RxStats,
    adverts_sent: u64,
}

impl Node {
    fn local_addr(&self, cfg: &InstanceConfig) -> IpAddr {
        match cfg.vips.first() {
            Some(IpAddr::V6(_)) => IpAddr::V6(self.addr6),
            _ => IpAddr::V4(self.addr4),
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeId,
    incarnation: u64,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

/// The virtual LAN.
#[derive(Debug)]
pub struct Sim {
    start: Instant,
    now: Instant,
    rng: Rng,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Base one-way delay of the LAN.
    delay: Duration,
    /// Percent of packets lost, per receiver.
    loss: f64,
    events: Vec<Event>,
    /// Emit v3-over-IPv4 checksums this way (receivers accept both).
    v3_checksum: V3Checksum,
}

const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

impl Sim {
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            rng: Rng::new(seed),
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            delay: Duration::from_micros(100),
            loss: 0.0,
            events: Vec::new(),
            v3_checksum: V3Checksum::WithPseudoHeader,
        }
    }

    /// Add a node; it is not started. Its IPv4 address is 10.0.0.`host` and
    /// its IPv6 address fe80::`host` (the tie-breaker for equal priorities).
    pub fn add_node(&mut self, name: &str, host: u8, configs: Vec<InstanceConfig>) -> NodeId {
        self.nodes.push(Node {
            name: name.to_string(),
            addr4: Ipv4Addr::new(10, 0, 0, host),
            addr6: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(host)),
            configs,
            instances: Vec::new(),
            holds_vips: Vec::new(),
            up: false,
            incarnation: 0,
            link_delay: Duration::ZERO,
            partition: 0,
            unmatched: RxStats::default(),
            adverts_sent: 0,
        });
        self.nodes.len() - 1
    }

    /// Start (or restart after a crash) a node: fresh instances from its
    /// configuration, in Initialize, then startup.
    pub fn start(&mut self, id: NodeId) {
        let now = self.now;
        let node = &mut self.nodes[id];
        node.instances = node
            .configs
            .iter()
            .map(|c| Instance::new(c.clone(), node.local_addr(c)))
            .collect();
        node.holds_vips = vec![false; node.instances.len()];
        node.up = true;
        for i in 0..node.instances.len() {
            self.nodes[id].instances[i].startup(now);
            self.drain(id, i);
        }
    }

    pub fn start_all(&mut self) {
        for id in 0..self.nodes.len() {
            self.start(id);
        }
    }

    /// The process dies: no priority 0, nothing more is sent. The VIPs go
    /// with the machine (a crashed host answers for nothing).
    pub fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[id];
        node.up = false;
        node.incarnation += 1;
        node.instances.clear();
        node.holds_vips.clear();
    }

    /// Graceful stop: every instance shuts down (priority 0 from masters).
    pub fn stop(&mut self, id: NodeId) {
        let now = self.now;
        for i in 0..self.nodes[id].instances.len() {
            self.nodes[id].instances[i].shutdown(now);
            self.drain(id, i);
        }
        self.crash(id);
    }

    pub fn set_priority(&mut self, id: NodeId, inst: usize, priority: u8) {
        let now = self.now;
        self.nodes[id].instances[inst].set_priority(now, priority);
        self.drain(id, inst);
    }

    pub fn set_fault(&mut self, id: NodeId, inst: usize, fault: bool) {
        let now = self.now;
        self.nodes[id].instances[inst].set_fault(now, fault);
        self.drain(id, inst);
    }

    pub fn set_loss(&mut self, percent: f64) {
        self.loss = percent;
    }
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }
    /// Extra delay on everything this node sends and receives.
    pub fn set_link_delay(&mut self, id: NodeId, delay: Duration) {
        self.nodes[id].link_delay = delay;
    }
    pub fn set_v3_checksum(&mut self, mode: V3Checksum) {
        self.v3_checksum = mode;
    }

    /// Split the LAN: nodes in different groups no longer hear each other.
    /// Nodes not named stay in group 0.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for (g, members) in groups.iter().enumerate() {
            for &id in members.iter() {
                self.nodes[id].partition = g as u32;
            }
        }
    }
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.partition = 0;
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }
    /// Virtual time since the simulation began.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
    pub fn events(&self) -> &[Event] {
        &self.events
    }
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.nodes[id].name
    }
    pub fn instance(&self, id: NodeId, inst: usize) -> Option<&Instance> {
        self.nodes[id].instances.get(inst)
    }
    pub fn state(&self, id: NodeId, inst: usize) -> Option<State> {
        self.instance(id, inst).map(Instance::state)
    }
    pub fn adverts_sent(&self, id: NodeId) -> u64 {
        self.nodes[id].adverts_sent
    }
    pub fn unmatched_stats(&self, id: NodeId) -> &RxStats {
        &self.nodes[id].unmatched
    }

    /// Nodes whose instance `inst` is MASTER.
    pub fn masters(&self, inst: usize) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&id| self.state(id, inst) == Some(State::Master))
            .collect()
    }

    /// Nodes that have instance `inst`'s VIPs configured.
    pub fn vip_holders(&self, inst: usize) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&id| self.nodes[id].holds_vips.get(inst) == Some(&true))
            .collect()
    }

    /// Transitions into MASTER, over all nodes and instances.
    pub fn master_transitions(&self) -> usize {
        self.events.iter().filter(|e| e.to == State::Master).count()
    }

    /// Run until `d` of virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, |_| false);
    }

    /// Run until `deadline` or until `stop` holds (checked after every
    /// step); returns whether `stop` held.
    pub fn run_until(&mut self, deadline: Instant, mut stop: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if stop(self) {
                return true;
            }
            let next = self.next_event_time();
            match next {
                Some(t) if t <= deadline => self.step(t),
                _ => {
                    self.now = deadline.max(self.now);
                    return stop(self);
                }
            }
        }
    }

    fn next_event_time(&self) -> Option<Instant> {
        let packet = self.queue.peek().map(|Reverse(p)| p.at);
        let timer = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .flat_map(|n| n.instances.iter().filter_map(Instance::next_deadline))
            .min();
        match (packet, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn step(&mut self, t: Instant) {
        self.now = t.max(self.now);
        let now = self.now;
        while self.queue.peek().is_some_and(|Reverse(p)| p.at <= now) {
            let Reverse(p) = self.queue.pop().expect("peeked");
            self.deliver(p);
        }
        for id in 0..self.nodes.len() {
            if !self.nodes[id].up {
                continue;
            }
            for i in 0..self.nodes[id].instances.len() {
                if self.nodes[id].instances[i]
                    .next_deadline()
                    .is_some_and(|d| d <= now)
                {
                    self.nodes[id].instances[i].handle_timeout(now);
                    self.drain(id, i);
                }
            }
        }
    }

    fn deliver(&mut self, p: InFlight) {
        let now = self.now;
        let node = &mut self.nodes[p.to];
        if !node.up || node.incarnation != p.incarnation {
            return;
        }
        let pkt = Received {
            src: p.src,
            dst: p.dst,
            ttl: 255,
            payload: &p.bytes,
        };
        if let vrrp::Delivery::Accepted(i) =
            vrrp::dispatch(now, &mut node.instances, &mut node.unmatched, pkt)
        {
            self.drain(p.to, i);
        }
    }

    /// Carry out an instance's actions: adverts go on the wire, VIP and
    /// state changes are recorded.
    fn drain(&mut self, id: NodeId, inst: usize) {
        while let Some(action) = self.nodes[id].instances[inst].poll_action() {
            match action {
                Action::SendAdvert(repr) => self.broadcast(id, inst, &repr),
                Action::AddVips => self.nodes[id].holds_vips[inst] = true,
                Action::RemoveVips => self.nodes[id].holds_vips[inst] = false,
                Action::SendGarp { .. } => {}
                Action::StateChange { from, to, reason } => {
                    let at = self.elapsed();
                    let instance = self.nodes[id].instances[inst].name().to_string();
                    self.events.push(Event {
                        at,
                        node: id,
                        instance,
                        from,
                        to,
                        reason,
                    });
                }
            }
        }
    }

    fn broadcast(&mut self, from: NodeId, inst: usize, repr: &crate::wire::vrrp::Repr) {
        let sender = &self.nodes[from];
        let src = sender.instances[inst].local_addr();
        let dst = if src.is_ipv4() { GROUP4 } else { GROUP6 };
        let bytes = repr
            .to_bytes(src, dst, self.v3_checksum)
            .expect("an instance only emits adverts its config can represent");
        let (partition, sender_delay) = (sender.partition, sender.link_delay);
        self.nodes[from].adverts_sent += 1;
        for to in 0..self.nodes.len() {
            let rx = &self.nodes[to];
            if to == from || !rx.up || rx.partition != partition {
                continue;
            }
            if self.rng.chance(self.loss) {
                continue;
            }
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + self.delay + sender_delay + rx.link_delay,
                seq: self.seq,
                to,
                incarnation: rx.incarnation,
                src,
                dst,
                bytes: bytes.clone(),
            }));
        }
    }
}
