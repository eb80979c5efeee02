//! Deterministic simulator: N baton nodes on virtual LANs with virtual
//! time, per-link delay, seeded loss, partitions (symmetric and one-way),
//! link failures, crashes, restarts and frozen processes.
//!
//! Every node is a [`Node`], the very core the daemon runs: configured from
//! the same [`Config`] model, fed real VRRP bytes (emitted and parsed by
//! [`crate::wire`]) through the same receive path, with the same sync
//! groups, tracking rules, unicast and TTL rules and the same order of
//! effects. Only the IO is virtual, so a scenario runs in milliseconds and
//! replays exactly from its seed.
//!
//! - VRRP: each interface name is one LAN segment; multicast adverts reach
//!   every node on it, unicast ones the node owning the destination.
//! - The cluster channel is modelled at the message level: connections come
//!   up a moment after both ends can reach each other, go down a moment
//!   after a crash (the kernel closes the socket) or after the idle timeout
//!   when the path is cut or the peer is frozen; messages can be lost,
//!   duplicated or reordered on purpose to show the cores cope.
//! - Data sync runs on the same connections: data frames take link time in
//!   proportion to their size ([`Sim::set_bandwidth`]) and stay in order
//!   with the messages of their connection; each node's files are bytes in
//!   memory, kept across crashes with the state the node asked to persist.
//!
//! [`dst`] builds seeded fault schedules on top of this and checks the
//! cluster's invariants at every step.

pub mod dst;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::sync::{self, Content, Observed, Persisted};
use crate::cluster::{Cluster, Message, Policy, SyncCore, SyncVersion};
use crate::config::model::{self, Config, Selection, SyncEntry, TrackRef, Vip, VrrpScript};
use crate::node::track::TrackEvent;
use crate::node::{Effect, IfaceId, Input, InstanceId, Node, GROUP4, GROUP6};
use crate::vrrp::{self, Reason, RxStats, State};
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
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
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

/// An instance as the simulator's tests write it: interface `eth0`, each
/// VIP a host address.
pub fn instance(name: &str, vrid: u8, priority: u8, vips: &[IpAddr]) -> model::Instance {
    let mut i = model::Instance::new(name, "eth0", vrid);
    i.priority = priority;
    i.virtual_ips = vips
        .iter()
        .map(|&addr| Vip {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            dev: None,
            brd: None,
            label: None,
            scope: None,
        })
        .collect();
    i
}

/// The name of the health check the simulator adds to every instance, so
/// that [`Sim::set_fault`] goes through the node's real tracking rules.
fn fault_script(instance: &str) -> String {
    format!("sim-health-{instance}")
}

/// A node's data-sync side: what the IO shell would own.
#[derive(Debug, Default)]
struct SimFiles {
    /// The files on disk, by entry name (kept across crashes).
    files: BTreeMap<String, Vec<u8>>,
    /// What the node asked to persist (kept across crashes).
    persisted: BTreeMap<String, Persisted>,
    on_change: Vec<(String, SyncVersion)>,
    /// Copies kept aside: (file name, content).
    conflicts: Vec<(String, Vec<u8>)>,
    fail_writes: bool,
    data_received: u64,
    corrupt_next: bool,
}

#[derive(Debug)]
struct SimNode {
    name: String,
    addr4: Ipv4Addr,
    addr6: Ipv6Addr,
    /// The node's own configuration (without the cluster and sync parts the
    /// simulation adds).
    config: Config,
    /// The running process; None while crashed or stopped.
    node: Option<Node>,
    /// Bumped on every crash so anything in flight to an old incarnation
    /// is not delivered to the new one.
    incarnation: u64,
    /// SIGSTOP: nothing runs; what arrives waits in the kernel's buffers.
    frozen: bool,
    backlog: Vec<InFlight>,
    /// The NIC's link (all its interfaces).
    link_up: bool,
    link_delay: Duration,
    partition: u32,
    adverts_sent: u64,
    /// Channel connection to each node, as this node sees it.
    links: Vec<bool>,
    switchovers: Vec<(u64, Result<String, String>)>,
    frames_sent: u64,
    fs: SimFiles,
    /// Log lines of the node (sync warnings, health reasons...).
    log: Vec<String>,
    /// Group notifications, in order.
    group_events: Vec<(String, State)>,
    /// When the kernel drops each instance's VIPs unless refreshed (the
    /// VIP lease); absent: held for good (no lease) or not held.
    lease_ends: BTreeMap<InstanceId, Instant>,
    /// How long its IO shell takes to add, refresh or remove VIPs (a
    /// netlink round trip): what it sends after them in the same batch of
    /// effects leaves that much later.
    vip_latency: Duration,
}

impl SimNode {
    /// An instance's advert source: `unicast_src`, else the node's address
    /// of the instance's family.
    fn local_addr(&self, inst: &model::Instance) -> IpAddr {
        Self::local_addr_of(self.addr4, self.addr6, inst)
    }

    fn local_addr_of(addr4: Ipv4Addr, addr6: Ipv6Addr, inst: &model::Instance) -> IpAddr {
        match (inst.unicast_src, inst.family()) {
            (Some(a), _) => a,
            (None, model::Family::V4) => IpAddr::V4(addr4),
            (None, model::Family::V6) => IpAddr::V6(addr6),
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
        iface: String,
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
    /// The node's link changed while its process was frozen.
    Link {
        up: bool,
    },
    ConnDown {
        peer: NodeId,
        how: Close,
    },
}

/// How a channel connection ends, as its far end sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// No frame for the idle timeout (a partition, a frozen process, a
    /// dead machine): nothing closes it, and a path healed in time (or a
    /// peer thawed) cancels it.
    Silence,
    /// The other end closed it on purpose (stop, idle timeout, error): a
    /// Close frame, then FIN. Gone whatever the path does now.
    Goodbye,
    /// The other end's process died: its kernel sent FIN (or RST) with no
    /// Close frame before it.
    Died,
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
    /// Routers outside the cluster are heard (a mixed cluster).
    accept_foreign_adverts: bool,
    heartbeat: Duration,
    policy: Policy,
    delay: Duration,
    faults: ChannelFaults,
}

#[derive(Debug, Clone)]
struct SyncSetup {
    instance: String,
    entries: Vec<(String, u64)>,
    chunk_size: usize,
}

/// The virtual network and its nodes.
#[derive(Debug)]
pub struct Sim {
    start: Instant,
    now: Instant,
    rng: Rng,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Base one-way delay of the LAN.
    delay: Duration,
    /// Percent of VRRP packets lost, per receiver.
    loss: f64,
    /// One-way cuts: nothing from the first node reaches the second.
    blocked: BTreeSet<(NodeId, NodeId)>,
    events: Vec<Event>,
    channel: Option<ChannelSetup>,
    next_id: u64,
    sync: Option<SyncSetup>,
    /// Bytes per second of each channel connection (Data frames queue).
    bandwidth: u64,
    /// Per (from, to): when the connection has sent everything queued.
    busy_until: BTreeMap<(NodeId, NodeId), Instant>,
    /// Inputs handed to nodes (a measure of work done).
    steps: u64,
    /// Print every advert, frame and state change to stderr.
    verbose: bool,
    /// Stop running after this many inputs (see [`Sim::set_max_steps`]).
    max_steps: u64,
    /// Time the IO shell of the node whose effects are being carried out
    /// has spent so far on them (see [`Sim::set_vip_latency`]).
    effect_clock: Duration,
}

/// How long a TCP connection takes to come up in the simulation.
const CONNECT_DELAY: Duration = Duration::from_millis(1);
/// How long after a crash the peers see the connection close (FIN/RST).
const CLOSE_DELAY: Duration = Duration::from_millis(1);
/// Reconnect backoff after a cut heals.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Idle timeout of a channel connection, in heartbeats.
const DEAD_AFTER_HEARTBEATS: u32 = 3;

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
            blocked: BTreeSet::new(),
            events: Vec::new(),
            channel: None,
            next_id: 1,
            sync: None,
            bandwidth: 125_000_000,
            busy_until: BTreeMap::new(),
            steps: 0,
            verbose: false,
            max_steps: u64::MAX,
            effect_clock: Duration::ZERO,
        }
    }

    /// Add a node running `instances`; it is not started. Its IPv4 address
    /// is 10.0.0.`host` and its IPv6 address fe80::`host` (the tie-breaker
    /// for equal priorities).
    pub fn add_node(&mut self, name: &str, host: u8, instances: Vec<model::Instance>) -> NodeId {
        let mut config = Config::new(name);
        config.instances = instances;
        self.add_node_config(name, host, config)
    }

    /// Add a node with a whole configuration (sync groups, tracking,
    /// unicast...). Its `[cluster]` and `[[sync]]` come from
    /// [`Sim::enable_cluster`] and [`Sim::enable_sync`].
    pub fn add_node_config(&mut self, name: &str, host: u8, mut config: Config) -> NodeId {
        // Every instance tracks a health check of its own, so that
        // `set_fault` takes the node's real tracking path.
        for i in &mut config.instances {
            let script = fault_script(&i.name);
            i.track_scripts.push(TrackRef::new(script.clone()));
            config
                .vrrp_scripts
                .push(VrrpScript::new(script, "/bin/true"));
        }
        self.nodes.push(SimNode {
            name: name.to_string(),
            addr4: Ipv4Addr::new(10, 0, 0, host),
            addr6: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(host)),
            config,
            node: None,
            incarnation: 0,
            frozen: false,
            backlog: Vec::new(),
            link_up: true,
            link_delay: Duration::ZERO,
            partition: 0,
            adverts_sent: 0,
            links: Vec::new(),
            switchovers: Vec::new(),
            frames_sent: 0,
            fs: SimFiles::default(),
            log: Vec::new(),
            group_events: Vec::new(),
            lease_ends: BTreeMap::new(),
            vip_latency: Duration::ZERO,
        });
        self.nodes.len() - 1
    }

    /// Run the cluster channel between all nodes (call before starting them).
    pub fn enable_cluster(&mut self, heartbeat: Duration, policy: Policy) {
        self.channel = Some(ChannelSetup {
            accept_foreign_adverts: false,
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
            entries: entries.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
            chunk_size: sync::DEFAULT_CHUNK_SIZE,
        });
    }

    pub fn set_sync_chunk_size(&mut self, bytes: usize) {
        if let Some(s) = &mut self.sync {
            s.chunk_size = bytes;
        }
    }

    /// Print every advert delivered, every channel message and every state
    /// change to stderr (replaying a failing seed).
    pub fn set_verbose(&mut self, verbose: bool) {
        self.verbose = verbose;
    }

    /// Stop running once this many inputs were handed to nodes: a message
    /// storm (nodes answering each other without end) then ends the run
    /// instead of eating the machine; [`Sim::exhausted`] tells.
    pub fn set_max_steps(&mut self, max: u64) {
        self.max_steps = max;
    }

    pub fn exhausted(&self) -> bool {
        self.steps > self.max_steps
    }

    /// One-way delay of every channel message (default 200 us); call
    /// after `enable_cluster`.
    pub fn set_channel_delay(&mut self, delay: Duration) {
        if let Some(ch) = &mut self.channel {
            ch.delay = delay;
        }
    }

    /// Bytes per second of a channel connection (default 1 Gbit/s).
    pub fn set_bandwidth(&mut self, bytes_per_sec: u64) {
        self.bandwidth = bytes_per_sec.max(1);
    }

    /// Checksum v3-over-IPv4 adverts this way on every node (receivers
    /// accept both); call before starting them.
    pub fn set_v3_checksum(&mut self, mode: V3Checksum) {
        for n in &mut self.nodes {
            for i in &mut n.config.instances {
                i.v3_checksum_as_v2 = mode == V3Checksum::WithoutPseudoHeader;
            }
        }
    }

    /// The configuration node `id` runs (cluster and sync parts included).
    pub fn effective_config(&self, id: NodeId) -> Config {
        let n = &self.nodes[id];
        let mut config = n.config.clone();
        if let Some(ch) = &self.channel {
            let (selection, order) = match &ch.policy {
                Policy::Priority => (Selection::Priority, Vec::new()),
                Policy::Order(o) => (Selection::Order, o.clone()),
            };
            let port = |addr: Ipv4Addr| SocketAddr::new(IpAddr::V4(addr), 7480);
            config.cluster = Some(model::Cluster {
                node: n.name.clone(),
                listen: port(n.addr4),
                peers: self
                    .nodes
                    .iter()
                    .filter(|p| p.name != n.name)
                    .map(|p| model::Peer {
                        name: p.name.clone(),
                        addr: port(p.addr4),
                    })
                    .collect(),
                key_file: PathBuf::from("/sim/cluster.key"),
                heartbeat_interval: ch.heartbeat,
                selection,
                order,
                sync_instance: self.sync.as_ref().map(|s| s.instance.clone()),
                accept_foreign_adverts: ch.accept_foreign_adverts,
                check_peer_source: true,
                key_grace: crate::config::model::Cluster::DEFAULT_KEY_GRACE,
            });
            if let Some(s) = &self.sync {
                config.sync = s
                    .entries
                    .iter()
                    .map(|(name, max_size)| SyncEntry {
                        name: name.clone(),
                        path: PathBuf::from(format!("/sim/{name}")),
                        on_change: Some("on-change".into()),
                        mode: None,
                        owner: None,
                        max_size: *max_size,
                    })
                    .collect();
            }
        }
        config
    }

    /// An operator (or a deploy tool) writes a synced file on node `id`
    /// (also while the node is down: it sees the file when it starts).
    pub fn edit_file(&mut self, id: NodeId, name: &str, content: &[u8]) {
        self.nodes[id]
            .fs
            .files
            .insert(name.to_string(), content.to_vec());
        if self.runs(id) {
            let observed = Observed::Content(Content::new(content));
            self.input(id, Input::FileObserved { name, observed });
        }
    }

    pub fn file(&self, id: NodeId, name: &str) -> Option<&[u8]> {
        self.nodes[id].fs.files.get(name).map(Vec::as_slice)
    }
    pub fn sync(&self, id: NodeId) -> Option<&SyncCore> {
        self.nodes[id].node.as_ref().and_then(Node::sync)
    }
    /// The on_change runs of node `id`, in order.
    pub fn on_changes(&self, id: NodeId) -> &[(String, SyncVersion)] {
        &self.nodes[id].fs.on_change
    }
    /// Conflict copies node `id` kept: (file name, content).
    pub fn conflicts(&self, id: NodeId) -> &[(String, Vec<u8>)] {
        &self.nodes[id].fs.conflicts
    }
    /// What node `id` logged (sync warnings and notes, health reasons...).
    pub fn sync_log(&self, id: NodeId) -> &[String] {
        &self.nodes[id].log
    }
    pub fn set_fail_writes(&mut self, id: NodeId, fail: bool) {
        self.nodes[id].fs.fail_writes = fail;
    }
    /// Data frames delivered to node `id`.
    pub fn data_received(&self, id: NodeId) -> u64 {
        self.nodes[id].fs.data_received
    }
    /// Flip a byte of the next Data frame delivered to node `id` (a path
    /// that corrupts what it carries; the channel's MAC would catch it, so
    /// this stands for a sender's bug: the digest must catch it).
    pub fn corrupt_next_data(&mut self, id: NodeId) {
        self.nodes[id].fs.corrupt_next = true;
    }

    pub fn set_channel_faults(&mut self, faults: ChannelFaults) {
        if let Some(c) = &mut self.channel {
            c.faults = faults;
        }
    }

    /// Start (or restart after a crash) a node: a fresh process from its
    /// configuration; channel connections come up shortly.
    pub fn start(&mut self, id: NodeId) {
        if self.nodes[id].node.is_some() {
            return;
        }
        let now = self.now;
        let n = self.nodes.len();
        let config = self.effective_config(id);
        let mut node = Node::new(config.clone());
        let sn = &mut self.nodes[id];
        for inst in &config.instances {
            let iface = node.add_interface(&inst.interface, sn.link_up);
            let _ = node.add_instance(now, inst.clone(), iface, sn.local_addr(inst));
        }
        sn.links = vec![false; n];
        sn.frozen = false;
        sn.backlog.clear();
        if config.cluster.is_some() {
            node.enable_cluster(now);
            let chunk = self.sync.as_ref().map(|s| s.chunk_size);
            if node.enable_sync(sn.fs.persisted.clone(), chunk).is_some() {
                for e in &config.sync {
                    let observed = match sn.fs.files.get(&e.name) {
                        Some(c) => Observed::Content(Content::new(c.as_slice())),
                        None => Observed::Missing,
                    };
                    node.handle(
                        now,
                        Input::FileObserved {
                            name: &e.name,
                            observed,
                        },
                    );
                }
            }
        }
        node.start(now);
        self.nodes[id].node = Some(node);
        if self.channel.is_some() {
            for peer in 0..n {
                if peer != id && self.path_open(id, peer) && self.path_open(peer, id) {
                    self.schedule(id, now + CONNECT_DELAY, Payload::ConnUp { peer });
                }
            }
        }
        self.drain(id);
    }

    pub fn start_all(&mut self) {
        for id in 0..self.nodes.len() {
            self.start(id);
        }
    }

    /// Whether node `id`'s process runs and is not frozen.
    fn runs(&self, id: NodeId) -> bool {
        self.nodes[id].node.is_some() && !self.nodes[id].frozen
    }

    /// Whether the machine is up and on the network (its process may be
    /// frozen: the kernel still receives).
    fn attached(&self, id: NodeId) -> bool {
        self.nodes[id].node.is_some() && self.nodes[id].link_up
    }

    /// Whether packets from `a` reach `b` now.
    fn path_open(&self, a: NodeId, b: NodeId) -> bool {
        self.attached(a)
            && self.attached(b)
            && self.nodes[a].partition == self.nodes[b].partition
            && !self.blocked.contains(&(a, b))
    }

    /// The process dies: no priority 0, nothing more is sent; its channel
    /// connections close (peers notice at once). The VIPs go with the
    /// machine (a crashed host answers for nothing).
    pub fn crash(&mut self, id: NodeId) {
        self.end_process(id, Close::Died);
    }

    /// The process is gone; its peers see its connections close `how`.
    fn end_process(&mut self, id: NodeId, how: Close) {
        let now = self.now;
        let links = std::mem::take(&mut self.nodes[id].links);
        for (peer, up) in links.into_iter().enumerate() {
            if up {
                self.schedule(peer, now + CLOSE_DELAY, Payload::ConnDown { peer: id, how });
            }
        }
        let node = &mut self.nodes[id];
        node.node = None;
        node.frozen = false;
        node.backlog.clear();
        node.lease_ends.clear();
        node.incarnation += 1;
        // What the dead process had not yet handed to the kernel is lost.
        self.queue.retain(|Reverse(p)| {
            !(matches!(p.payload, Payload::Data { from, .. } if from == id) && p.at > now)
        });
    }

    /// How long node `id`'s IO shell takes to add, refresh or remove its
    /// VIPs (a netlink round trip; default 0): adverts it sends after
    /// them in the same batch of effects leave that much later. The node
    /// core itself is not held up meanwhile.
    pub fn set_vip_latency(&mut self, id: NodeId, latency: Duration) {
        self.nodes[id].vip_latency = latency;
    }

    /// Graceful stop: every instance shuts down (priority 0 from masters).
    pub fn stop(&mut self, id: NodeId) {
        if self.runs(id) {
            let now = self.now;
            if let Some(n) = &mut self.nodes[id].node {
                n.shutdown(now);
            }
            self.drain(id);
        }
        // The channel says goodbye (Close("shutdown")) before it closes.
        self.end_process(id, Close::Goodbye);
    }

    /// SIGSTOP: the process stops; the machine stays (its VIPs keep
    /// answering). Peers' channel connections time out without heartbeats.
    pub fn freeze(&mut self, id: NodeId) {
        if !self.runs(id) {
            return;
        }
        self.nodes[id].frozen = true;
        if let Some(ch) = &self.channel {
            let timeout = ch.heartbeat * DEAD_AFTER_HEARTBEATS;
            let now = self.now;
            for peer in 0..self.nodes.len() {
                if self.nodes[peer].links.get(id) == Some(&true) {
                    let how = Close::Silence;
                    self.schedule(peer, now + timeout, Payload::ConnDown { peer: id, how });
                }
            }
        }
    }

    /// SIGCONT: the process runs again and reads what waited for it.
    pub fn thaw(&mut self, id: NodeId) {
        if !self.nodes[id].frozen {
            return;
        }
        self.nodes[id].frozen = false;
        let now = self.now;
        let backlog = std::mem::take(&mut self.nodes[id].backlog);
        for mut p in backlog {
            p.at = now;
            self.deliver(p);
        }
        // Peers that gave up on us closed their side.
        if self.channel.is_some() {
            for peer in 0..self.nodes.len() {
                let mine = self.nodes[id].links.get(peer) == Some(&true);
                let theirs = self.nodes[peer].links.get(id) == Some(&true);
                if mine && !theirs {
                    // Their idle timeout closed it with Close("idle").
                    let how = Close::Goodbye;
                    self.schedule(id, now + CLOSE_DELAY, Payload::ConnDown { peer, how });
                }
            }
        }
        self.reconnect_all();
        if self.runs(id) {
            self.input(id, Input::Timeout);
        }
    }

    pub fn is_frozen(&self, id: NodeId) -> bool {
        self.nodes[id].frozen
    }

    /// Whether node `id`'s process is running (frozen or not).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[id].node.is_some()
    }

    /// The node's NIC loses or regains its link: the node sees it (FAULT
    /// on its instances) and nothing passes while it is down.
    pub fn set_link(&mut self, id: NodeId, up: bool) {
        if self.nodes[id].link_up == up {
            return;
        }
        self.nodes[id].link_up = up;
        let names: BTreeSet<String> = self.nodes[id]
            .config
            .instances
            .iter()
            .map(|i| i.interface.clone())
            .collect();
        if self.runs(id) {
            for name in names {
                self.input(id, Input::Link { name: &name, up });
            }
        } else if self.nodes[id].frozen {
            // Netlink queues the news until the process reads again.
            let now = self.now;
            self.schedule(id, now, Payload::Link { up });
        }
        self.cut_closed_paths();
        self.reconnect_all();
    }

    pub fn link_up(&self, id: NodeId) -> bool {
        self.nodes[id].link_up
    }

    /// A graceful stop's first half with the channel: hand every mastered
    /// instance to its successor. Run the simulation, then `stop`.
    pub fn begin_handoff(&mut self, id: NodeId) -> Vec<String> {
        let now = self.now;
        let Some(n) = self.nodes[id].node.as_mut() else {
            return Vec::new();
        };
        let handed = n.hand_off(now);
        self.drain(id);
        handed
    }

    /// An operator's `baton switchover INSTANCE --to TARGET` on node `id`.
    pub fn switchover(&mut self, id: NodeId, instance: &str, target: &str, unicast: bool) -> u64 {
        self.operator(id, instance, Some(target), unicast)
    }

    /// An operator's `baton switchover INSTANCE --clear` on node `id`.
    pub fn clear_pin(&mut self, id: NodeId, instance: &str) -> Result<String, String> {
        let rid = self.operator(id, instance, None, false);
        self.switchover_result(id, rid)
            .unwrap_or_else(|| Err("node not running".into()))
    }

    /// Hand node `id` an operator's request (`to` None: `--clear`); its
    /// answer is found with [`Sim::switchover_result`].
    fn operator(&mut self, id: NodeId, instance: &str, to: Option<&str>, unicast: bool) -> u64 {
        let rid = self.next_id;
        self.next_id += 1;
        let clear = to.is_none();
        self.input(
            id,
            Input::Switchover {
                id: rid,
                instance,
                to,
                unicast,
                clear,
            },
        );
        rid
    }

    pub fn switchover_result(&self, id: NodeId, rid: u64) -> Option<Result<String, String>> {
        self.nodes[id]
            .switchovers
            .iter()
            .find(|(i, _)| *i == rid)
            .map(|(_, r)| r.clone())
    }

    pub fn cluster(&self, id: NodeId) -> Option<&Cluster> {
        self.nodes[id].node.as_ref().and_then(Node::cluster)
    }

    /// Hear VRRP routers that are not cluster members (call after
    /// `enable_cluster`, before starting the nodes).
    pub fn set_accept_foreign_adverts(&mut self, accept: bool) {
        if let Some(c) = &mut self.channel {
            c.accept_foreign_adverts = accept;
        }
    }

    /// A router that is no node of the simulation multicasts this advert
    /// (IP payload) from `src` on `iface`: every node on the LAN hears it.
    pub fn inject_advert(&mut self, iface: &str, src: IpAddr, bytes: Vec<u8>) {
        let dst = if src.is_ipv4() { GROUP4 } else { GROUP6 };
        let at = self.now + self.delay;
        for to in 0..self.nodes.len() {
            if self.attached(to) {
                let payload = Payload::Vrrp {
                    iface: iface.to_string(),
                    src,
                    dst,
                    bytes: bytes.clone(),
                };
                self.schedule(to, at, payload);
            }
        }
    }

    /// Hand node `to` a message as if authenticated peer `from` sent it
    /// (a peer that holds the key but lies).
    pub fn forge_message(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let peer = self.nodes[from].name.clone();
        self.input(to, Input::Message { peer: &peer, msg });
    }

    /// The running node core of `id`.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes[id].node.as_ref()
    }

    /// Channel messages node `id` has sent.
    pub fn frames_sent(&self, id: NodeId) -> u64 {
        self.nodes[id].frames_sent
    }

    /// Change an instance's configured priority, as an operator's reload
    /// would (in place: a master stays master unless it should not).
    pub fn set_priority(&mut self, id: NodeId, inst: usize, priority: u8) {
        let mut new = self.effective_config(id);
        let Some(i) = new.instances.get_mut(inst) else {
            return;
        };
        i.priority = priority;
        if let Some(c) = self.nodes[id].config.instances.get_mut(inst) {
            c.priority = priority;
        }
        self.reload(id, new);
    }

    /// Reload node `id` with `config` (its `[cluster]` and `[[sync]]` are
    /// the simulation's): what the daemon does on SIGHUP.
    pub fn reload(&mut self, id: NodeId, config: Config) {
        if !self.runs(id) {
            return;
        }
        let now = self.now;
        let sn = &mut self.nodes[id];
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        let plan = crate::node::plan_reload(node.config(), &config);
        if plan.refused.is_some() {
            return;
        }
        // Instances added or removed stay so across a restart of the node.
        sn.config.instances = config.instances.clone();
        node.reload(now, config.clone(), &plan);
        if plan.cluster_started {
            node.enable_cluster(now);
        }
        if plan.sync_started {
            let _ = node.enable_sync(std::collections::BTreeMap::new(), None);
        }
        for name in &plan.start {
            let Some(inst) = config.instance(name) else {
                continue;
            };
            let iface = node.add_interface(&inst.interface, sn.link_up);
            let local = SimNode::local_addr_of(sn.addr4, sn.addr6, inst);
            let _ = node.add_instance(now, inst.clone(), iface, local);
        }
        self.drain(id);
    }

    /// A tracked health check of instance `inst` fails (`fault`) or passes
    /// again: the node's tracking rules put the instance in FAULT.
    pub fn set_fault(&mut self, id: NodeId, inst: usize, fault: bool) {
        let Some(name) = self.nodes[id]
            .config
            .instances
            .get(inst)
            .map(|i| i.name.clone())
        else {
            return;
        };
        self.input(
            id,
            Input::Track(TrackEvent::Script {
                name: fault_script(&name),
                up: !fault,
            }),
        );
    }

    /// The `vrrp_script` called `name` on node `id` goes down or up (after
    /// its rise/fall), as the agent's tracker would report it.
    pub fn set_script(&mut self, id: NodeId, name: &str, up: bool) {
        self.input(
            id,
            Input::Track(TrackEvent::Script {
                name: name.to_string(),
                up,
            }),
        );
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

    /// Split the network: nodes in different groups no longer hear each
    /// other. Nodes not named stay in group 0. Channel connections across
    /// the cut time out after the idle timeout (3 heartbeats).
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for (g, members) in groups.iter().enumerate() {
            for &id in members.iter() {
                self.nodes[id].partition = g as u32;
            }
        }
        self.cut_closed_paths();
    }

    /// Nothing from `from` reaches `to` any more (the other way still
    /// works): a one-way cut.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
        self.cut_closed_paths();
    }

    /// Remove every partition and one-way cut.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.partition = 0;
        }
        self.blocked.clear();
        self.reconnect_all();
    }

    /// A new connection between `a` and `b`: both ends come up together
    /// (TCP's handshake), replacing a stale one either end still had; only
    /// between running processes on open paths.
    fn connect(&mut self, a: NodeId, b: NodeId) {
        let open = self.path_open(a, b) && self.path_open(b, a);
        if !open || !self.runs(a) || !self.runs(b) {
            return;
        }
        let (ab, ba) = (
            self.nodes[a].links.get(b) == Some(&true),
            self.nodes[b].links.get(a) == Some(&true),
        );
        if ab && ba {
            return;
        }
        for (x, y, stale) in [(a, b, ab), (b, a, ba)] {
            if stale {
                self.nodes[x].links[y] = false;
                let name = self.nodes[y].name.clone();
                let died = false;
                self.input(x, Input::PeerDown { peer: &name, died });
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            self.nodes[x].links[y] = true;
            let name = self.nodes[y].name.clone();
            self.input(x, Input::PeerUp { peer: &name });
        }
    }

    /// Connections come back (after a backoff) where both ways are open.
    fn reconnect_all(&mut self) {
        if self.channel.is_none() {
            return;
        }
        let now = self.now;
        let n = self.nodes.len();
        for a in 0..n {
            for b in 0..n {
                let linked = self.nodes[a].links.get(b).copied().unwrap_or(false)
                    && self.nodes[b].links.get(a).copied().unwrap_or(false);
                if a < b && !linked && self.path_open(a, b) && self.path_open(b, a) {
                    self.schedule(a, now + RECONNECT_DELAY, Payload::ConnUp { peer: b });
                }
            }
        }
    }

    fn cut_closed_paths(&mut self) {
        let Some(ch) = &self.channel else {
            return;
        };
        let timeout = ch.heartbeat * DEAD_AFTER_HEARTBEATS;
        let now = self.now;
        let n = self.nodes.len();
        for a in 0..n {
            for b in 0..n {
                let linked = self.nodes[a].links.get(b).copied().unwrap_or(false);
                if a != b && linked && !(self.path_open(a, b) && self.path_open(b, a)) {
                    let how = Close::Silence;
                    self.schedule(a, now + timeout, Payload::ConnDown { peer: b, how });
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
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.nodes[id].name
    }
    /// Inputs handed to nodes so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn instance_id(&self, id: NodeId, inst: usize) -> Option<(&Node, InstanceId)> {
        let node = self.nodes[id].node.as_ref()?;
        let name = &self.nodes[id].config.instances.get(inst)?.name;
        Some((node, node.instance_by_name(name)?))
    }

    /// Instance `inst` (in configuration order) of node `id`.
    pub fn instance(&self, id: NodeId, inst: usize) -> Option<&vrrp::Instance> {
        let (node, iid) = self.instance_id(id, inst)?;
        node.instance(iid)
    }
    pub fn state(&self, id: NodeId, inst: usize) -> Option<State> {
        self.instance(id, inst).map(vrrp::Instance::state)
    }
    pub fn adverts_sent(&self, id: NodeId) -> u64 {
        self.nodes[id].adverts_sent
    }
    /// Drops on node `id`'s first interface (IPv4) that no instance owned.
    pub fn unmatched_stats(&self, id: NodeId) -> RxStats {
        self.nodes[id]
            .node
            .as_ref()
            .map(|n| n.unmatched(IfaceId(0)).0.clone())
            .unwrap_or_default()
    }
    /// Group notifications of node `id`, in order.
    pub fn group_events(&self, id: NodeId) -> &[(String, State)] {
        &self.nodes[id].group_events
    }

    /// Nodes whose instance `inst` is MASTER.
    pub fn masters(&self, inst: usize) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&id| self.state(id, inst) == Some(State::Master))
            .collect()
    }

    /// Nodes that have instance `inst`'s VIPs configured (a frozen node
    /// still does, its kernel answers for them, until their lease runs out).
    pub fn vip_holders(&self, inst: usize) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&id| {
                self.instance_id(id, inst).is_some_and(|(node, iid)| {
                    node.holds_vips(iid)
                        && self.nodes[id]
                            .lease_ends
                            .get(&iid)
                            .is_none_or(|end| self.now < *end)
                })
            })
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
            if self.steps > self.max_steps {
                // A message storm: give up rather than run for ever.
                self.now = deadline.max(self.now);
                return false;
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
        let timer = (0..self.nodes.len())
            .filter(|&id| self.runs(id))
            .filter_map(|id| self.nodes[id].node.as_ref().and_then(Node::next_deadline))
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
            let due = self.runs(id)
                && self.nodes[id]
                    .node
                    .as_ref()
                    .and_then(Node::next_deadline)
                    .is_some_and(|d| d <= now);
            if due {
                self.input(id, Input::Timeout);
            }
        }
    }

    /// Hand one input to node `id` and carry out what it asks for.
    fn input(&mut self, id: NodeId, input: Input<'_>) {
        let now = self.now;
        let Some(node) = self.nodes[id].node.as_mut() else {
            return;
        };
        self.steps += 1;
        node.handle(now, input);
        self.drain(id);
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
        let to = p.to;
        if self.nodes[to].node.is_none() || self.nodes[to].incarnation != p.incarnation {
            return;
        }
        if self.nodes[to].frozen {
            // The kernel holds it until the process reads again.
            self.nodes[to].backlog.push(p);
            return;
        }
        match p.payload {
            Payload::Vrrp {
                iface,
                src,
                dst,
                bytes,
            } => {
                let Some(iface) = self.nodes[to]
                    .node
                    .as_ref()
                    .and_then(|n| n.iface_id(&iface))
                else {
                    return;
                };
                let multicast_socket = dst.is_multicast();
                if self.verbose {
                    let priority = bytes.get(2).copied().unwrap_or(0);
                    eprintln!(
                        "{:>9.6?} vrrp {src}->n{to} priority {priority}",
                        self.elapsed()
                    );
                }
                if bytes.first().is_some_and(|b| b >> 4 == 4) {
                    self.input(
                        to,
                        Input::AhPacket {
                            iface,
                            multicast_socket,
                            packet: &bytes,
                        },
                    );
                } else {
                    self.input(
                        to,
                        Input::Packet {
                            iface,
                            multicast_socket,
                            src,
                            dst,
                            ttl: 255,
                            payload: &bytes,
                        },
                    );
                }
            }
            Payload::Chan { from, msg } => {
                if self.nodes[to].links.get(from) == Some(&true) {
                    let peer = self.nodes[from].name.clone();
                    self.input(to, Input::Message { peer: &peer, msg });
                }
            }
            Payload::Data { from, mut bytes } => {
                if self.nodes[to].links.get(from) == Some(&true) {
                    let fs = &mut self.nodes[to].fs;
                    fs.data_received += 1;
                    if std::mem::take(&mut fs.corrupt_next) {
                        if let Some(b) = bytes.last_mut() {
                            *b ^= 0x55;
                        }
                    }
                    let peer = self.nodes[from].name.clone();
                    self.input(
                        to,
                        Input::Data {
                            peer: &peer,
                            bytes: &bytes,
                        },
                    );
                }
            }
            Payload::ConnUp { peer } => self.connect(to, peer),
            Payload::Link { up } => {
                let names: BTreeSet<String> = self.nodes[to]
                    .config
                    .instances
                    .iter()
                    .map(|i| i.interface.clone())
                    .collect();
                for name in names {
                    self.input(to, Input::Link { name: &name, up });
                }
            }
            Payload::ConnDown { peer, how } => {
                if self.nodes[to].links.get(peer) != Some(&true) {
                    return;
                }
                // A cut that healed, or a peer that thawed, before the idle
                // timeout keeps the connection.
                let open = self.path_open(to, peer) && self.path_open(peer, to);
                if how == Close::Silence && self.runs(peer) && open {
                    return;
                }
                self.nodes[to].links[peer] = false;
                let name = self.nodes[peer].name.clone();
                let died = how == Close::Died;
                self.input(to, Input::PeerDown { peer: &name, died });
                let now = self.now;
                // Our close (a goodbye, then FIN) reaches the other end if
                // it still thinks the connection is up.
                if self.nodes[peer].links.get(to) == Some(&true) {
                    let how = Close::Goodbye;
                    self.schedule(peer, now + CLOSE_DELAY, Payload::ConnDown { peer: to, how });
                }
                // The dialer tries again after its backoff.
                self.schedule(to, now + RECONNECT_DELAY, Payload::ConnUp { peer });
            }
        }
    }

    /// Carry out node `id`'s effects, in order, until it has none left.
    fn drain(&mut self, id: NodeId) {
        self.effect_clock = Duration::ZERO;
        loop {
            let Some(effect) = self.nodes[id].node.as_mut().and_then(Node::poll_effect) else {
                return;
            };
            self.apply(id, effect);
        }
    }

    fn apply(&mut self, id: NodeId, effect: Effect) {
        let now = self.now;
        match effect {
            Effect::SendAdvert {
                instance,
                dst,
                bytes,
            } => self.send_advert(id, instance, dst, bytes),
            // Travels as its bytes; told apart on delivery by the IPv4
            // version nibble (a VRRP message starts with 2 or 3).
            Effect::SendAhAdvert {
                instance,
                dst,
                packet,
            } => self.send_advert(id, instance, dst, packet),
            Effect::AddVips {
                instance, lease, ..
            }
            | Effect::RefreshVips {
                instance, lease, ..
            } => {
                self.effect_clock += self.nodes[id].vip_latency;
                let ends = &mut self.nodes[id].lease_ends;
                if lease.is_zero() {
                    ends.remove(&instance);
                } else {
                    ends.insert(instance, now + lease);
                }
            }
            Effect::RemoveVips { instance, .. } => {
                self.effect_clock += self.nodes[id].vip_latency;
                self.nodes[id].lease_ends.remove(&instance);
            }
            // Routes follow the VIPs (same Action); nothing to simulate.
            Effect::AddRoutes { .. } | Effect::RemoveRoutes { .. } => {}
            Effect::SendGarp { .. } => {}
            Effect::StateChanged {
                name,
                from,
                to,
                reason,
                ..
            } => {
                let at = self.elapsed();
                if self.verbose {
                    eprintln!("{at:>9.6?} state n{id} {name} {from} -> {to} ({reason})");
                }
                self.events.push(Event {
                    at,
                    node: id,
                    instance: name,
                    from,
                    to,
                    reason,
                });
            }
            Effect::GroupStateChanged { group, state, .. } => {
                self.nodes[id].group_events.push((group, state));
            }
            Effect::Send { peer, msg } => {
                if let Some(to) = self.nodes.iter().position(|n| n.name == peer) {
                    self.send_frame(id, to, msg);
                }
            }
            Effect::Broadcast(msg) => {
                for to in 0..self.nodes.len() {
                    if to != id && self.nodes[id].links.get(to) == Some(&true) {
                        self.send_frame(id, to, msg.clone());
                    }
                }
            }
            Effect::SendData { peer, bytes } => {
                if let Some(to) = self.nodes.iter().position(|n| n.name == peer) {
                    self.send_data(id, to, bytes);
                }
            }
            Effect::WriteFile {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            } => {
                let fs = &mut self.nodes[id].fs;
                let result = if fs.fail_writes {
                    Err("simulated write failure".to_string())
                } else {
                    let mut kept = None;
                    if let Some(old) = fs.files.get(&name) {
                        let d = sync::digest(old);
                        if d != sync::digest(&content) && Some(d) != keep_unless {
                            let file = format!("{name}.conflict-{conflict_epoch}");
                            fs.conflicts.push((file.clone(), old.clone()));
                            kept = Some(file);
                        }
                    }
                    fs.files.insert(name.clone(), content.to_vec());
                    Ok(kept)
                };
                if let Some(node) = self.nodes[id].node.as_mut() {
                    node.handle(
                        now,
                        Input::FileWritten {
                            name: &name,
                            version,
                            result,
                        },
                    );
                }
            }
            Effect::RunOnChange { name, version, .. } => {
                self.nodes[id].fs.on_change.push((name, version));
            }
            Effect::SaveSyncState(state) => self.nodes[id].fs.persisted = state,
            Effect::Reply { id: rid, result } => {
                let result = result.map_err(|e| e.to_string());
                self.nodes[id].switchovers.push((rid, result));
            }
            Effect::Log { level, message } => {
                if level != crate::node::Level::Debug {
                    self.nodes[id].log.push(message);
                }
            }
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
        if !self.path_open(from, to) {
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
        if self.verbose {
            eprintln!("{:>9.6?} frame n{from}->n{to} {msg:?}", self.elapsed());
        }
        // A cut connection is still "up" until it times out, but nothing
        // gets through.
        if !self.path_open(from, to) || self.rng.chance(ch.faults.loss) {
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

    fn send_advert(&mut self, from: NodeId, instance: InstanceId, dst: IpAddr, bytes: Vec<u8>) {
        let Some((src, iface)) = self.nodes[from].node.as_ref().and_then(|n| {
            Some((
                n.instance(instance)?.local_addr(),
                n.instance_config(instance)?.interface.clone(),
            ))
        }) else {
            return;
        };
        self.nodes[from].adverts_sent += 1;
        let multicast = dst.is_multicast();
        let sender_delay = self.nodes[from].link_delay;
        for to in 0..self.nodes.len() {
            if to == from || !self.path_open(from, to) {
                continue;
            }
            let rx = &self.nodes[to];
            let owns = match dst {
                IpAddr::V4(a) => rx.addr4 == a,
                IpAddr::V6(a) => rx.addr6 == a,
            };
            // A node hears only the group it joined (vrrp_mcast_group4/6).
            let g = &rx.config.global;
            let joined = match dst {
                IpAddr::V4(a) => g.mcast_group4 == a,
                IpAddr::V6(a) => g.mcast_group6 == a,
            };
            if !(multicast && joined || owns) {
                continue;
            }
            if self.rng.chance(self.loss) {
                continue;
            }
            let at = self.now
                + self.effect_clock
                + self.delay
                + sender_delay
                + self.nodes[to].link_delay;
            self.schedule(
                to,
                at,
                Payload::Vrrp {
                    iface: iface.clone(),
                    src,
                    dst,
                    bytes: bytes.clone(),
                },
            );
        }
    }
}
