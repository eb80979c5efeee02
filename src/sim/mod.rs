//! Deterministic simulator: N nodes, each with VRRP instances and
//! optionally the cluster channel, on one virtual LAN with virtual time,
//! per-link delay, seeded loss, partitions, crashes and restarts.
//!
//! It drives the very same cores as the daemon: [`Instance`] through the
//! same receive path ([`crate::vrrp::dispatch`]) with real packet bytes
//! (emitted and parsed by [`crate::wire`]), and [`Cluster`] with the same
//! action plumbing, so a protocol scenario can be checked in milliseconds
//! and replayed exactly from its seed.
//!
//! The channel is modelled at the message level: connections come up a
//! moment after both ends are up and can reach each other, go down a moment
//! after a crash (the kernel closes the socket) or `dead_after` after a
//! partition (idle timeout), and messages can be lost, duplicated or
//! reordered on purpose to show the core copes.
//!
//! Data sync ([`SyncCore`]) runs on the same modelled connections: Data
//! frames take link time in proportion to their size (`set_bandwidth`) and
//! stay in order with the messages of their connection; each node's files
//! are bytes in memory, kept across crashes with the state the core asked
//! to persist.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::cluster::sync::{self, Observed, Persisted, SyncSpec};
use crate::cluster::{
    Cluster, ClusterAction, ClusterConfig, LocalInstance, Message, Policy, SyncAction, SyncConfig,
    SyncCore, SyncVersion,
};
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

/// Message-level faults of the channel (TCP never loses or reorders within
/// a connection; these stand for broken or hostile paths).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelFaults {
    pub loss: f64,
    pub duplicate: f64,
    /// Percent of messages delayed by up to `reorder_window` extra.
    pub reorder: f64,
    pub reorder_window: Duration,
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
    /// Bumped on every crash so anything in flight to an old incarnation
    /// is not delivered to the new one.
    incarnation: u64,
    link_delay: Duration,
    partition: u32,
    unmatched: RxStats,
    adverts_sent: u64,
    cluster: Option<Cluster>,
    /// Channel connection to each node, as this node sees it.
    links: Vec<bool>,
    switchovers: Vec<(u64, Result<String, String>)>,
    frames_sent: u64,
    sync: SimSync,
}

/// A node's data-sync side: its core and what the IO shell would own.
#[derive(Debug, Default)]
struct SimSync {
    core: Option<SyncCore>,
    /// The files on disk, by entry name (kept across crashes).
    files: BTreeMap<String, Vec<u8>>,
    /// What the core asked to persist (kept across crashes).
    persisted: BTreeMap<String, Persisted>,
    on_change: Vec<(String, SyncVersion)>,
    /// Copies kept aside: (file name, content).
    conflicts: Vec<(String, Vec<u8>)>,
    log: Vec<String>,
    fail_writes: bool,
    data_received: u64,
    corrupt_next: bool,
}

impl Node {
    fn local_addr(&self, cfg: &InstanceConfig) -> IpAddr {
        match cfg.vips.first() {
            Some(IpAddr::V6(_)) => IpAddr::V6(self.addr6),
            _ => IpAddr::V4(self.addr4),
        }
    }
}

#[derive(Debug)]
enum Payload {
    Data {
        from: NodeId,
        bytes: Vec<u8>,
    },
    Vrrp {
        src: IpAddr,
        dst: IpAddr,
        bytes: Vec<u8>,
    },
    Chan {
        from: NodeId,
        msg: Message,
    },
    ConnUp {
        peer: NodeId,
    },
    ConnDown {
        peer: NodeId,
    },
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeId,
    incarnation: u64,
    payload: Payload,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The cluster settings of a simulation.
#[derive(Debug, Clone)]
struct ChannelSetup {
    heartbeat: Duration,
    policy: Policy,
    delay: Duration,
    faults: ChannelFaults,
}

#[derive(Debug, Clone)]
struct SyncSetup {
    instance: String,
    entries: Vec<SyncSpec>,
    chunk_size: usize,
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
    /// Percent of VRRP packets lost, per receiver.
    loss: f64,
    events: Vec<Event>,
    /// Emit v3-over-IPv4 checksums this way (receivers accept both).
    v3_checksum: V3Checksum,
    channel: Option<ChannelSetup>,
    next_id: u64,
    sync: Option<SyncSetup>,
    /// Bytes per second of each channel connection (Data frames queue).
    bandwidth: u64,
    /// Per (from, to): when the connection has sent everything queued.
    busy_until: BTreeMap<(NodeId, NodeId), Instant>,
}

const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
/// How long a TCP connection takes to come up in the simulation.
const CONNECT_DELAY: Duration = Duration::from_millis(1);
/// How long after a crash the peers see the connection close (FIN/RST).
const CLOSE_DELAY: Duration = Duration::from_millis(1);
/// Reconnect backoff after a partition heals.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

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
            channel: None,
            next_id: 1,
            sync: None,
            bandwidth: 125_000_000,
            busy_until: BTreeMap::new(),
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
            cluster: None,
            links: Vec::new(),
            switchovers: Vec::new(),
            frames_sent: 0,
            sync: SimSync::default(),
        });
        self.nodes.len() - 1
    }

    /// Run the cluster channel between all nodes (call before starting them).
    pub fn enable_cluster(&mut self, heartbeat: Duration, policy: Policy) {
        self.channel = Some(ChannelSetup {
            heartbeat,
            policy,
            delay: Duration::from_micros(200),
            faults: ChannelFaults::default(),
        });
    }

    /// Keep files in sync between all nodes (call after `enable_cluster`,
    /// before starting them): `entries` are (name, max_size); the control
    /// node is the master of `instance`.
    pub fn enable_sync(&mut self, instance: &str, entries: &[(&str, u64)]) {
        self.sync = Some(SyncSetup {
            instance: instance.to_string(),
            entries: entries
                .iter()
                .map(|(n, m)| SyncSpec {
                    name: n.to_string(),
                    max_size: *m,
                })
                .collect(),
            chunk_size: sync::DEFAULT_CHUNK_SIZE,
        });
    }

    pub fn set_sync_chunk_size(&mut self, bytes: usize) {
        if let Some(s) = &mut self.sync {
            s.chunk_size = bytes;
        }
    }

    /// Bytes per second of a channel connection (default 1 Gbit/s).
    pub fn set_bandwidth(&mut self, bytes_per_sec: u64) {
        self.bandwidth = bytes_per_sec.max(1);
    }

    /// An operator (or a deploy tool) writes a synced file on node `id`
    /// (also while the node is down: it sees the file when it starts).
    pub fn edit_file(&mut self, id: NodeId, name: &str, content: &[u8]) {
        let now = self.now;
        let node = &mut self.nodes[id];
        node.sync.files.insert(name.to_string(), content.to_vec());
        if node.up {
            if let Some(core) = &mut node.sync.core {
                core.local_file(now, name, Observed::Content(content.to_vec()));
            }
            self.pump(id);
        }
    }

    pub fn file(&self, id: NodeId, name: &str) -> Option<&[u8]> {
        self.nodes[id].sync.files.get(name).map(Vec::as_slice)
    }
    pub fn sync(&self, id: NodeId) -> Option<&SyncCore> {
        self.nodes[id].sync.core.as_ref()
    }
    /// The on_change runs of node `id`, in order.
    pub fn on_changes(&self, id: NodeId) -> &[(String, SyncVersion)] {
        &self.nodes[id].sync.on_change
    }
    /// Conflict copies node `id` kept: (file name, content).
    pub fn conflicts(&self, id: NodeId) -> &[(String, Vec<u8>)] {
        &self.nodes[id].sync.conflicts
    }
    /// Warnings and notes the sync core of node `id` logged.
    pub fn sync_log(&self, id: NodeId) -> &[String] {
        &self.nodes[id].sync.log
    }
    pub fn set_fail_writes(&mut self, id: NodeId, fail: bool) {
        self.nodes[id].sync.fail_writes = fail;
    }
    /// Data frames delivered to node `id`.
    pub fn data_received(&self, id: NodeId) -> u64 {
        self.nodes[id].sync.data_received
    }
    /// Flip a byte of the next Data frame delivered to node `id` (a path
    /// that corrupts what it carries; the channel's MAC would catch it, so
    /// this stands for a sender's bug: the digest must catch it).
    pub fn corrupt_next_data(&mut self, id: NodeId) {
        self.nodes[id].sync.corrupt_next = true;
    }

    pub fn set_channel_faults(&mut self, faults: ChannelFaults) {
        if let Some(c) = &mut self.channel {
            c.faults = faults;
        }
    }

    /// Start (or restart after a crash) a node: fresh cores from its
    /// configuration, then startup; channel connections come up shortly.
    pub fn start(&mut self, id: NodeId) {
        let now = self.now;
        let n = self.nodes.len();
        let node = &mut self.nodes[id];
        node.instances = node
            .configs
            .iter()
            .map(|c| Instance::new(c.clone(), node.local_addr(c)))
            .collect();
        node.holds_vips = vec![false; node.instances.len()];
        node.links = vec![false; n];
        node.up = true;
        if let Some(ch) = &self.channel {
            let names: Vec<String> = (0..n).map(|i| self.nodes[i].name.clone()).collect();
            let node = &mut self.nodes[id];
            let locals = node
                .instances
                .iter()
                .map(|i| LocalInstance {
                    name: i.name().to_string(),
                    state: i.state(),
                    priority: i.priority(),
                    address: Some(i.local_addr()),
                    advert_interval: i.config().advert_interval,
                    preempt: i.config().preempt,
                    preempt_delay: i.config().preempt_delay,
                })
                .collect();
            let cfg = ClusterConfig {
                node: node.name.clone(),
                peers: names.iter().filter(|p| **p != node.name).cloned().collect(),
                heartbeat_interval: ch.heartbeat,
                policy: ch.policy.clone(),
                switchover_timeout: Duration::from_secs(3),
            };
            node.cluster = Some(Cluster::new(cfg, locals, now));
            if let Some(ss) = &self.sync {
                let peers = names.iter().filter(|p| **p != node.name).cloned().collect();
                let mut sc = SyncConfig::new(&node.name, peers, ss.entries.clone());
                sc.chunk_size = ss.chunk_size;
                let mut core = SyncCore::new(sc);
                for (name, p) in &node.sync.persisted {
                    core.restore(name, p);
                }
                for e in &ss.entries {
                    let seen = match node.sync.files.get(&e.name) {
                        Some(c) => Observed::Content(c.clone()),
                        None => Observed::Missing,
                    };
                    core.local_file(now, &e.name, seen);
                }
                node.sync.core = Some(core);
            }
            for peer in 0..n {
                if peer != id && self.reachable(id, peer) {
                    self.schedule(id, now + CONNECT_DELAY, Payload::ConnUp { peer });
                    self.schedule(peer, now + CONNECT_DELAY, Payload::ConnUp { peer: id });
                }
            }
        }
        for i in 0..self.nodes[id].instances.len() {
            self.nodes[id].instances[i].startup(now);
        }
        self.pump(id);
    }

    pub fn start_all(&mut self) {
        for id in 0..self.nodes.len() {
            self.start(id);
        }
    }

    fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        self.nodes[a].up && self.nodes[b].up && self.nodes[a].partition == self.nodes[b].partition
    }

    /// The process dies: no priority 0, nothing more is sent; its channel
    /// connections close (peers notice at once). The VIPs go with the
    /// machine (a crashed host answers for nothing).
    pub fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let links = std::mem::take(&mut self.nodes[id].links);
        for (peer, up) in links.into_iter().enumerate() {
            if up {
                self.schedule(peer, now + CLOSE_DELAY, Payload::ConnDown { peer: id });
            }
        }
        let node = &mut self.nodes[id];
        node.up = false;
        node.incarnation += 1;
        node.instances.clear();
        node.holds_vips.clear();
        node.cluster = None;
        node.sync.core = None;
        // What the dead process had not yet handed to the kernel is lost.
        self.queue.retain(|Reverse(p)| {
            !(matches!(p.payload, Payload::Data { from, .. } if from == id) && p.at > now)
        });
    }

    /// Graceful stop: every instance shuts down (priority 0 from masters).
    pub fn stop(&mut self, id: NodeId) {
        let now = self.now;
        for i in 0..self.nodes[id].instances.len() {
            self.nodes[id].instances[i].shutdown(now);
        }
        self.pump(id);
        self.crash(id);
    }

    /// A graceful stop's first half with the channel: hand every mastered
    /// instance to its successor. Run the simulation, then `stop`.
    pub fn begin_handoff(&mut self, id: NodeId) -> Vec<String> {
        let now = self.now;
        let handed = match &mut self.nodes[id].cluster {
            Some(c) => c.hand_off_all(now),
            None => Vec::new(),
        };
        self.pump(id);
        handed
    }

    /// An operator's `baton switchover INSTANCE --to TARGET` on node `id`.
    pub fn switchover(&mut self, id: NodeId, instance: &str, target: &str, unicast: bool) -> u64 {
        let now = self.now;
        let rid = self.next_id;
        self.next_id += 1;
        if let Some(c) = &mut self.nodes[id].cluster {
            c.request_switchover(now, instance, target, unicast, rid);
        }
        self.pump(id);
        rid
    }

    pub fn clear_pin(&mut self, id: NodeId, instance: &str) -> Result<String, String> {
        let now = self.now;
        let r = match &mut self.nodes[id].cluster {
            Some(c) => c.clear_pin(now, instance),
            None => Err("no cluster".into()),
        };
        self.pump(id);
        r
    }

    pub fn switchover_result(&self, id: NodeId, rid: u64) -> Option<Result<String, String>> {
        self.nodes[id]
            .switchovers
            .iter()
            .find(|(i, _)| *i == rid)
            .map(|(_, r)| r.clone())
    }

    pub fn cluster(&self, id: NodeId) -> Option<&Cluster> {
        self.nodes[id].cluster.as_ref()
    }

    /// Channel messages node `id` has sent.
    pub fn frames_sent(&self, id: NodeId) -> u64 {
        self.nodes[id].frames_sent
    }

    pub fn set_priority(&mut self, id: NodeId, inst: usize, priority: u8) {
        let now = self.now;
        self.nodes[id].instances[inst].set_priority(now, priority);
        self.notify_cluster(id, inst);
        self.pump(id);
    }

    pub fn set_fault(&mut self, id: NodeId, inst: usize, fault: bool) {
        let now = self.now;
        self.nodes[id].instances[inst].set_fault(now, fault);
        self.pump(id);
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
    /// Nodes not named stay in group 0. Channel connections across the cut
    /// time out after `dead_after` (3 heartbeats).
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for (g, members) in groups.iter().enumerate() {
            for &id in members.iter() {
                self.nodes[id].partition = g as u32;
            }
        }
        self.cut_unreachable_links();
    }

    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.partition = 0;
        }
        let now = self.now;
        let n = self.nodes.len();
        if self.channel.is_some() {
            for a in 0..n {
                for b in 0..n {
                    let linked = self.nodes[a].links.get(b).copied().unwrap_or(false);
                    if a != b && self.reachable(a, b) && !linked {
                        self.schedule(a, now + RECONNECT_DELAY, Payload::ConnUp { peer: b });
                    }
                }
            }
        }
    }

    fn cut_unreachable_links(&mut self) {
        let Some(ch) = &self.channel else {
            return;
        };
        let timeout = ch.heartbeat * 3;
        let now = self.now;
        let n = self.nodes.len();
        for a in 0..n {
            for b in 0..n {
                let linked = self.nodes[a].links.get(b).copied().unwrap_or(false);
                if a != b && linked && !self.reachable(a, b) {
                    self.schedule(a, now + timeout, Payload::ConnDown { peer: b });
                }
            }
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
            match self.next_event_time() {
                Some(t) if t <= deadline => self.step(t),
                _ => {
                    self.now = deadline.max(self.now);
                    return stop(self);
                }
            }
        }
    }

    /// Run for `d`, calling `check` after every step (for invariants that
    /// must hold at every instant, like "some node holds the VIP").
    pub fn run_checking(&mut self, d: Duration, mut check: impl FnMut(&Sim)) {
        let deadline = self.now + d;
        self.run_until(deadline, |s| {
            check(s);
            false
        });
    }

    fn next_event_time(&self) -> Option<Instant> {
        let packet = self.queue.peek().map(|Reverse(p)| p.at);
        let timer = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .flat_map(|n| {
                n.instances
                    .iter()
                    .filter_map(Instance::next_deadline)
                    .chain(n.cluster.as_ref().and_then(Cluster::next_deadline))
                    .chain(n.sync.core.as_ref().and_then(SyncCore::next_deadline))
            })
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
                }
            }
            if let Some(c) = &mut self.nodes[id].cluster {
                if c.next_deadline().is_some_and(|d| d <= now) {
                    c.handle_timeout(now);
                }
            }
            if let Some(c) = &mut self.nodes[id].sync.core {
                if c.next_deadline().is_some_and(|d| d <= now) {
                    c.handle_timeout(now);
                }
            }
            self.pump(id);
        }
    }

    fn schedule(&mut self, to: NodeId, at: Instant, payload: Payload) {
        self.seq += 1;
        let incarnation = self.nodes[to].incarnation;
        self.queue.push(Reverse(InFlight {
            at,
            seq: self.seq,
            to,
            incarnation,
            payload,
        }));
    }

    fn deliver(&mut self, p: InFlight) {
        let now = self.now;
        let to = p.to;
        let node = &mut self.nodes[to];
        if !node.up || node.incarnation != p.incarnation {
            return;
        }
        match p.payload {
            Payload::Vrrp { src, dst, bytes } => {
                let pkt = Received {
                    src,
                    dst,
                    ttl: 255,
                    payload: &bytes,
                };
                vrrp::dispatch(now, &mut node.instances, &mut node.unmatched, pkt);
            }
            Payload::Chan { from, msg } => {
                let linked = node.links.get(from).copied().unwrap_or(false);
                let from_name = self.nodes[from].name.clone();
                let node = &mut self.nodes[to];
                if linked {
                    if matches!(
                        msg,
                        Message::SyncOffer { .. }
                            | Message::SyncHave { .. }
                            | Message::SyncRequest { .. }
                    ) {
                        if let Some(c) = &mut node.sync.core {
                            c.handle_message(now, &from_name, msg);
                        }
                    } else if let Some(c) = &mut node.cluster {
                        c.handle_message(now, &from_name, msg);
                    }
                }
            }
            Payload::Data { from, mut bytes } => {
                let linked = node.links.get(from).copied().unwrap_or(false);
                let from_name = self.nodes[from].name.clone();
                let node = &mut self.nodes[to];
                if linked {
                    node.sync.data_received += 1;
                    if std::mem::take(&mut node.sync.corrupt_next) {
                        if let Some(b) = bytes.last_mut() {
                            *b ^= 0x55;
                        }
                    }
                    if let Some(c) = &mut node.sync.core {
                        c.handle_data(now, &from_name, &bytes);
                    }
                }
            }
            Payload::ConnUp { peer } => {
                if !self.reachable(to, peer) || self.nodes[to].links.get(peer) == Some(&true) {
                    return;
                }
                let peer_name = self.nodes[peer].name.clone();
                let node = &mut self.nodes[to];
                node.links[peer] = true;
                if let Some(c) = &mut node.cluster {
                    c.connected(now, &peer_name);
                }
                if let Some(c) = &mut node.sync.core {
                    c.connected(now, &peer_name);
                }
            }
            Payload::ConnDown { peer } => {
                if self.nodes[to].links.get(peer) != Some(&true) {
                    return;
                }
                // A partition that healed before the idle timeout keeps the
                // connection.
                if self.nodes[peer].up && self.reachable(to, peer) {
                    return;
                }
                let peer_name = self.nodes[peer].name.clone();
                let node = &mut self.nodes[to];
                node.links[peer] = false;
                if let Some(c) = &mut node.cluster {
                    c.disconnected(now, &peer_name);
                }
                if let Some(c) = &mut node.sync.core {
                    c.disconnected(now, &peer_name);
                }
            }
        }
        self.pump(to);
    }

    /// Tell the cluster core about an instance's current state and priority.
    fn notify_cluster(&mut self, id: NodeId, inst: usize) {
        let now = self.now;
        let node = &mut self.nodes[id];
        let (name, state, prio) = {
            let i = &node.instances[inst];
            (i.name().to_string(), i.state(), i.priority())
        };
        if let Some(c) = &mut node.cluster {
            c.local_update(now, &name, state, prio);
        }
    }

    /// Carry out every pending action of node `id`'s cores until none is
    /// left: VRRP adverts go on the wire, VIP and state changes are
    /// recorded and reported to the cluster core, whose actions steer the
    /// VRRP instances and send messages.
    fn pump(&mut self, id: NodeId) {
        loop {
            let mut did = false;
            for inst in 0..self.nodes[id].instances.len() {
                while let Some(action) = self.nodes[id].instances[inst].poll_action() {
                    did = true;
                    self.apply_vrrp(id, inst, action);
                }
            }
            while let Some(action) = self.nodes[id]
                .cluster
                .as_mut()
                .and_then(Cluster::poll_action)
            {
                did = true;
                self.apply_cluster(id, action);
            }
            if did {
                continue;
            }
            // The role is read once the VRRP and cluster cores are quiet: a
            // takeover's epoch is raised when its state change is drained.
            self.sync_role(id);
            while let Some(action) = self.nodes[id]
                .sync
                .core
                .as_mut()
                .and_then(SyncCore::poll_action)
            {
                did = true;
                self.apply_sync(id, action);
            }
            if !did {
                return;
            }
        }
    }

    fn apply_vrrp(&mut self, id: NodeId, inst: usize, action: Action) {
        match action {
            Action::SendAdvert(repr) => self.broadcast_advert(id, inst, &repr),
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
                self.notify_cluster(id, inst);
            }
        }
    }

    fn apply_cluster(&mut self, id: NodeId, action: ClusterAction) {
        let now = self.now;
        let find = |node: &Node, name: &str| node.instances.iter().position(|i| i.name() == name);
        match action {
            ClusterAction::Send { peer, msg } => {
                if let Some(to) = self.nodes.iter().position(|n| n.name == peer) {
                    self.send_frame(id, to, msg);
                }
            }
            ClusterAction::Broadcast(msg) => {
                for to in 0..self.nodes.len() {
                    if to != id && self.nodes[id].links.get(to) == Some(&true) {
                        self.send_frame(id, to, msg.clone());
                    }
                }
            }
            ClusterAction::TakeOver {
                instance,
                why,
                unless_heard_since,
            } => {
                if let Some(i) = find(&self.nodes[id], &instance) {
                    self.nodes[id].instances[i].take_over(now, why, unless_heard_since);
                }
            }
            ClusterAction::StepDown {
                instance,
                why,
                new_master,
            } => {
                if let Some(i) = find(&self.nodes[id], &instance) {
                    self.nodes[id].instances[i].step_down(now, why, new_master);
                }
            }
            ClusterAction::SetGates { instance, gates } => {
                if let Some(i) = find(&self.nodes[id], &instance) {
                    self.nodes[id].instances[i].set_gates(gates);
                }
            }
            ClusterAction::SwitchoverDone { id: rid, result } => {
                self.nodes[id].switchovers.push((rid, result));
            }
        }
    }

    /// The control node is the local MASTER of the sync instance.
    fn sync_role(&mut self, id: NodeId) {
        let Some(ss) = &self.sync else {
            return;
        };
        let now = self.now;
        let node = &mut self.nodes[id];
        let master = node
            .instances
            .iter()
            .any(|i| i.name() == ss.instance && i.state() == State::Master);
        let epoch = node.cluster.as_ref().map_or(0, |c| c.epoch(&ss.instance));
        if let Some(core) = &mut node.sync.core {
            core.set_role(now, master, epoch);
        }
    }

    fn apply_sync(&mut self, id: NodeId, action: SyncAction) {
        let now = self.now;
        match action {
            SyncAction::Send { peer, msg } => {
                if let Some(to) = self.nodes.iter().position(|n| n.name == peer) {
                    self.send_frame(id, to, msg);
                }
            }
            SyncAction::Broadcast(msg) => {
                for to in 0..self.nodes.len() {
                    if to != id && self.nodes[id].links.get(to) == Some(&true) {
                        self.send_frame(id, to, msg.clone());
                    }
                }
            }
            SyncAction::SendData { peer, bytes } => {
                if let Some(to) = self.nodes.iter().position(|n| n.name == peer) {
                    self.send_data(id, to, bytes);
                }
            }
            SyncAction::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            } => {
                let s = &mut self.nodes[id].sync;
                let result = if s.fail_writes {
                    Err("simulated write failure".to_string())
                } else {
                    let mut kept = None;
                    if let Some(old) = s.files.get(&name) {
                        let d = sync::digest(old);
                        if d != sync::digest(&content) && Some(d) != keep_unless {
                            let file = format!("{name}.conflict-{conflict_epoch}");
                            s.conflicts.push((file.clone(), old.clone()));
                            kept = Some(file);
                        }
                    }
                    s.files.insert(name.clone(), content.to_vec());
                    Ok(kept)
                };
                if let Some(core) = &mut s.core {
                    core.write_done(now, &name, version, result);
                }
            }
            SyncAction::RunOnChange { name, version } => {
                self.nodes[id].sync.on_change.push((name, version));
            }
            SyncAction::Persist { name, state } => {
                self.nodes[id].sync.persisted.insert(name, state);
            }
            SyncAction::Warn(m) | SyncAction::Info(m) => self.nodes[id].sync.log.push(m),
        }
    }

    /// When a frame of `len` bytes sent now on (from, to) arrives: after the
    /// link delay and everything queued before it on that connection.
    fn link_slot(&mut self, from: NodeId, to: NodeId, len: usize, delay: Duration) -> Instant {
        let busy = self.busy_until.get(&(from, to)).copied();
        let start = busy.map_or(self.now + delay, |b| b.max(self.now + delay));
        let at = start + Duration::from_nanos(len as u64 * 1_000_000_000 / self.bandwidth);
        self.busy_until.insert((from, to), at);
        at
    }

    fn send_data(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>) {
        let Some(ch) = self.channel.clone() else {
            return;
        };
        if self.nodes[from].links.get(to) != Some(&true) {
            return;
        }
        self.nodes[from].frames_sent += 1;
        if !self.reachable(from, to) {
            return;
        }
        let at = self.link_slot(from, to, bytes.len(), ch.delay);
        self.schedule(to, at, Payload::Data { from, bytes });
    }

    fn send_frame(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let Some(ch) = self.channel.clone() else {
            return;
        };
        if self.nodes[from].links.get(to) != Some(&true) {
            return;
        }
        self.nodes[from].frames_sent += 1;
        // A partitioned pair's connection is still "up" until it times out,
        // but nothing gets through.
        if !self.reachable(from, to) || self.rng.chance(ch.faults.loss) {
            return;
        }
        let copies = if self.rng.chance(ch.faults.duplicate) {
            2
        } else {
            1
        };
        // Behind any Data frames queued on the connection (TCP keeps order).
        let queued = self
            .busy_until
            .get(&(from, to))
            .copied()
            .filter(|b| *b > self.now + ch.delay);
        for _ in 0..copies {
            let mut at = queued.unwrap_or(self.now + ch.delay);
            if self.rng.chance(ch.faults.reorder) {
                let w = ch.faults.reorder_window.as_micros().max(1) as u64;
                at += Duration::from_micros(self.rng.next_u64() % w);
            }
            self.schedule(
                to,
                at,
                Payload::Chan {
                    from,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn broadcast_advert(&mut self, from: NodeId, inst: usize, repr: &crate::wire::vrrp::Repr) {
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
            let at = self.now + self.delay + sender_delay + rx.link_delay;
            self.schedule(
                to,
                at,
                Payload::Vrrp {
                    src,
                    dst,
                    bytes: bytes.clone(),
                },
            );
        }
    }
}
