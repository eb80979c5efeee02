//! One baton node, sans-IO: the only place where the VRRP instances, the
//! cluster core, the data-sync core, sync groups and tracking meet.
//!
//! Both the daemon ([`crate::agent::runtime`]) and the simulator
//! ([`crate::sim`]) drive a [`Node`] the same way, so every rule the daemon
//! follows is simulated:
//!
//! ```text
//!   shell (agent or sim)                      Node
//!   ---------------------                     -----------------------------
//!   packet, link, track result,   handle()    instances  <-> sync groups
//!   peer up/down, message, data,  ------->        ^ |
//!   file event, operator request,                 | v  state, priority
//!   timer                                     cluster core (takeover,
//!                                 poll_effect()   step down, gates)
//!   adverts, VIPs, GARP/NA,       <-------        |
//!   frames, file writes, notify,                  v  role, epoch
//!   replies, log lines                        sync core
//!                                 next_deadline()
//! ```
//!
//! A driver calls, in this order: [`Node::handle`] with one input and the
//! current time, then [`Node::poll_effect`] until it returns `None`,
//! carrying out each effect in the order given, then sleeps until
//! [`Node::next_deadline`] (or the next input) and hands in
//! [`Input::Timeout`]. Effects are data; the node never does IO and never
//! reads the clock.
//!
//! Inside one `handle`, the cores talk to each other until all are quiet:
//! an instance's state change is told to the cluster core and to its sync
//! group; the cluster core's takeovers, step-downs and gates steer the
//! instances (quinn's endpoint events, here internal); the sync core's role
//! follows the master of the sync instance, read once the VRRP and cluster
//! cores are quiet (a takeover's epoch is raised when its state change is
//! drained).

pub mod convert;
pub mod reload;
pub mod status;
pub mod track;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::sync::{Digest, Observed, Persisted};
use crate::cluster::{
    Cluster, ClusterAction, LocalInstance, Message, OperatorError, SyncAction, SyncConfig,
    SyncCore, SyncVersion,
};
use crate::config::model::{self, Config, Notify, Vip};
use crate::vrrp::{self, Action, ClusterReason, Reason, Received, RxStats, State};
use crate::wire::ah;
use crate::wire::vrrp::V3Checksum;

pub use convert::core_config;
pub use reload::{plan_reload, ReloadPlan};
pub use status::Status;
use track::{TrackEvent, TrackState};

/// The VRRP multicast groups (RFC 5798 5.1.1.2, 5.1.2.2).
pub const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
pub const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

/// An instance of this node, stable for as long as it runs (a reload that
/// restarts an instance gives it a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(pub u32);

/// An interface the node's instances run on, in the order the shell
/// registered them ([`Node::add_interface`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceId(pub usize);

/// Log levels of [`Effect::Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// One thing that happened to the node.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// A VRRP packet as a socket read it: `multicast_socket` when it came
    /// in on the multicast socket (which sees unicast adverts too, and vice
    /// versa: each packet is taken from its own kind of socket only);
    /// `ttl` is the IPv4 TTL or IPv6 hop limit.
    Packet {
        iface: IfaceId,
        multicast_socket: bool,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &'a [u8],
    },
    /// A whole IPv4 datagram from an AH socket (IP protocol 51, keepalived's
    /// `auth_type AH`), IPv4 header included; `multicast_socket` as for
    /// [`Input::Packet`].
    AhPacket {
        iface: IfaceId,
        multicast_socket: bool,
        packet: &'a [u8],
    },
    /// A link went up or down: an instance's own interface, or a tracked one.
    Link { name: &'a str, up: bool },
    /// A tracked script or file changed.
    Track(TrackEvent),
    /// A cluster-channel connection to `peer` was established (proven).
    PeerUp { peer: &'a str },
    /// The connection to `peer` closed. `died`: its kernel closed the
    /// live, proven connection without a goodbye (Close frame) first, so
    /// its process is gone ([`crate::agent::channel::ChannelEvent::Down`]).
    PeerDown { peer: &'a str, died: bool },
    /// An authenticated message from `peer`.
    Message { peer: &'a str, msg: Message },
    /// An authenticated data frame (sync chunk) from `peer`.
    Data { peer: &'a str, bytes: &'a [u8] },
    /// A synced file was read (it changed, or was read the first time).
    FileObserved { name: &'a str, observed: Observed },
    /// A [`Effect::WriteFile`] finished: Ok(the conflict copy kept, if any).
    FileWritten {
        name: &'a str,
        version: SyncVersion,
        result: Result<Option<String>, String>,
    },
    /// An operator's `baton switchover NAME --to NODE [--unicast]`, or
    /// `--clear`; answered by [`Effect::Reply`] with the same `id`.
    Switchover {
        id: u64,
        instance: &'a str,
        to: Option<&'a str>,
        unicast: bool,
        clear: bool,
    },
    /// A deadline from [`Node::next_deadline`] has come.
    Timeout,
}

/// Something the shell must carry out, in the order given.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send an advert (IP payload) from the instance's socket to `dst` (the
    /// multicast group or one unicast peer).
    SendAdvert {
        instance: InstanceId,
        dst: IpAddr,
        bytes: Vec<u8>,
    },
    /// Send an AH advert: a whole IPv4 datagram (protocol 51, header
    /// included) from the instance's AH socket to `dst`.
    SendAhAdvert {
        instance: InstanceId,
        dst: IpAddr,
        packet: Vec<u8>,
    },
    /// Configure the instance's VIPs and excluded addresses (each on its
    /// `dev`, or on the instance's interface), with `lease` as their valid
    /// and preferred lifetime (zero: forever).
    AddVips {
        instance: InstanceId,
        name: String,
        iface: IfaceId,
        vips: Vec<Vip>,
        lease: Duration,
        /// Route mode: the addresses' route metric, `255 - priority`
        /// ([`route_metric`]), which FRR announces as the MED.
        metric: Option<u32>,
    },
    /// Add them again with a fresh `lease` (a replace: the addresses stay,
    /// the kernel restarts their lifetime). Comes every third of the lease
    /// while the instance is MASTER.
    RefreshVips {
        instance: InstanceId,
        name: String,
        iface: IfaceId,
        vips: Vec<Vip>,
        lease: Duration,
        /// As for [`Effect::AddVips`]; a new one (the priority changed)
        /// replaces the old.
        metric: Option<u32>,
        /// The metric is not the one the addresses have: delete and add
        /// them (zebra does not notice a metric changed in place).
        readd: bool,
    },
    /// Remove them.
    RemoveVips {
        instance: InstanceId,
        name: String,
        iface: IfaceId,
        vips: Vec<Vip>,
    },
    /// Add the instance's virtual routes and rules (keepalived's
    /// `virtual_routes`, `virtual_rules`). Comes right after its
    /// [`Effect::AddVips`], so a route may use a VIP as its source.
    AddRoutes {
        instance: InstanceId,
        name: String,
        routes: Vec<model::Route>,
        rules: Vec<model::Rule>,
    },
    /// Remove them. Comes right before its [`Effect::RemoveVips`].
    RemoveRoutes {
        instance: InstanceId,
        name: String,
        routes: Vec<model::Route>,
        rules: Vec<model::Rule>,
    },
    /// Send `count` gratuitous ARPs / unsolicited NAs for every advertised
    /// VIP on `iface`, `gap` apart (vrrp_garp_interval / vrrp_gna_interval).
    SendGarp {
        instance: InstanceId,
        iface: IfaceId,
        count: u32,
        vips: Vec<IpAddr>,
        gap: Duration,
    },
    /// An instance changed state: log it, run its notify scripts. Comes
    /// after the transition's own effects (VIPs added or removed).
    StateChanged {
        instance: InstanceId,
        name: String,
        from: State,
        to: State,
        reason: Reason,
        priority: u8,
        notify: Notify,
    },
    /// Every member of a sync group is now in `state`: the group's notify.
    GroupStateChanged {
        group: String,
        state: State,
        notify: Notify,
    },
    /// A cluster-channel message to one peer.
    Send { peer: String, msg: Message },
    /// A cluster-channel message to every connected peer.
    Broadcast(Message),
    /// A data frame (sync chunk) to one peer.
    SendData { peer: String, bytes: Vec<u8> },
    /// Replace a synced file atomically (see [`SyncAction::Write`]); answer
    /// with [`Input::FileWritten`].
    WriteFile {
        name: String,
        version: SyncVersion,
        content: Arc<[u8]>,
        keep_unless: Option<Digest>,
        conflict_epoch: u64,
    },
    /// A new version of a synced file was applied: run its `on_change`.
    RunOnChange {
        name: String,
        version: SyncVersion,
        command: String,
    },
    /// Store the data-sync state (all entries), read back at the next start
    /// ([`Node::enable_sync`]).
    SaveSyncState(BTreeMap<String, Persisted>),
    /// The answer to an operator request.
    Reply {
        id: u64,
        result: Result<String, OperatorError>,
    },
    /// A line for the log.
    Log { level: Level, message: String },
}

/// One configured instance and its VRRP core.
#[derive(Debug)]
struct Slot {
    id: InstanceId,
    cfg: model::Instance,
    core: vrrp::Instance,
    iface: IfaceId,
    holds_vips: bool,
    /// Why the instance is faulted or its priority lowered, for status.
    health: Vec<String>,
    tx: status::TxStats,
    last_transition: Option<Instant>,
    /// Route mode: the metric the VIPs were last added with.
    metric_sent: Option<u32>,
    /// Route mode: a holder that another node replaced lets go of its
    /// VIPs in two steps of `release_delay`: still announced (the routers
    /// learn the new holder's route meanwhile), then with
    /// [`RELEASE_METRIC`] (withdrawn, still answering), then removed.
    release_at: Option<Instant>,
    /// The second step has begun.
    release_demoted: bool,
}

/// The route metric a route-mode holder gives its VIPs while it lets go
/// (the priority 0 of route mode): the shipped FRR configuration stops
/// announcing a VIP with it, and MED-comparing routers rank it last.
pub const RELEASE_METRIC: u32 = 255;

/// The route metric of a route-mode instance's VIPs: `255 - priority`, so
/// the best node announces the lowest MED (0 for an owner, 254 for
/// priority 1). 255 is left for a holder letting go.
pub fn route_metric(priority: u8) -> u32 {
    255 - u32::from(priority)
}

/// An instance's VIPs and excluded addresses: what is added and removed.
fn all_vips(cfg: &model::Instance) -> Vec<Vip> {
    cfg.virtual_ips
        .iter()
        .chain(&cfg.virtual_ips_excluded)
        .cloned()
        .collect()
}

fn slot_metric(s: &Slot) -> Option<u32> {
    s.cfg.is_route().then(|| route_metric(s.core.priority()))
}

#[derive(Debug)]
struct Iface {
    name: String,
    up: bool,
    unmatched4: RxStats,
    unmatched6: RxStats,
}

/// Data sync beside the cluster core.
#[derive(Debug)]
struct SyncSide {
    core: SyncCore,
    /// The control node is the master of this instance.
    instance: String,
    persisted: BTreeMap<String, Persisted>,
}

/// One baton node (see the module docs).
#[derive(Debug)]
pub struct Node {
    config: Config,
    ifaces: Vec<Iface>,
    slots: Vec<Slot>,
    next_id: u32,
    cluster: Option<Cluster>,
    sync: Option<SyncSide>,
    track: TrackState,
    /// The last state each sync group was notified in.
    group_states: BTreeMap<String, State>,
    started: bool,
    effects: VecDeque<Effect>,
    /// Peer messages refused before any core saw them, by reason.
    refused: BTreeMap<String, u64>,
    /// Per instance: the VRRP addresses cluster members reported (kept:
    /// a member whose channel is down still speaks VRRP).
    member_addrs: BTreeMap<String, std::collections::BTreeSet<IpAddr>>,
    /// Where the instance for (interface, IPv4?, VRID) was last found in
    /// `slots`: a hint checked on every use (slots come and go), so a
    /// packet finds its instance without scanning them all.
    slot_hint: SlotHints,
    /// [`Node::next_deadline`] as last computed (None: not known). Cleared
    /// by every change but a packet's on the quick path, which moves it
    /// itself (one instance's deadline changed).
    deadline_memo: std::cell::Cell<Option<Option<Instant>>>,
    /// Every queue drained (the last [`Node::pump`] ran after the last
    /// change): a packet then needs to look at its own instance only.
    settled: bool,
    /// The instances' deadlines for the quick path, which moves one at a
    /// time and must know the earliest of all without a walk.
    deadlines: DeadlineHeap,
}

/// Every instance's deadline in a min-heap of (deadline, slot), for the
/// quick path: an advert moves one instance's deadline (a backup's
/// master-down timer, usually the earliest of all, since the advert that
/// pushes it back is the oldest one's successor), and the new earliest is
/// found in O(log n) instead of a walk over every instance. Built by one
/// walk when the quick path first needs it after a change; an entry whose
/// slot has moved on since is stale and dropped once it reaches the top.
#[derive(Debug, Default)]
struct DeadlineHeap {
    /// Built since the last change outside the quick path.
    valid: bool,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Each slot's deadline as the heap knows it.
    keys: Vec<Option<Instant>>,
}

impl DeadlineHeap {
    fn rebuild(&mut self, slots: &[Slot]) {
        self.keys.clear();
        self.keys
            .extend(slots.iter().map(|s| s.core.next_deadline()));
        self.heap.clear();
        let entries = self.keys.iter().enumerate();
        self.heap
            .extend(entries.filter_map(|(i, k)| k.map(|d| Reverse((d, i)))));
        self.valid = true;
    }

    /// Slot `i`'s deadline is now `d`.
    fn set(&mut self, slots: &[Slot], i: usize, d: Option<Instant>) {
        if !self.valid {
            return self.rebuild(slots);
        }
        self.keys[i] = d;
        if let Some(d) = d {
            self.heap.push(Reverse((d, i)));
        }
        // Stale entries below the top: start again before they pile up.
        if self.heap.len() > 4 * self.keys.len() + 64 {
            self.rebuild(slots);
        }
    }

    /// The earliest deadline of all slots.
    fn earliest(&mut self) -> Option<Instant> {
        while let Some(&Reverse((d, i))) = self.heap.peek() {
            if self.keys.get(i) == Some(&Some(d)) {
                return Some(d);
            }
            self.heap.pop();
        }
        None
    }
}

/// What the cluster core knows of a local instance.
fn local_instance(s: &Slot) -> LocalInstance {
    let route = s.cfg.is_route();
    LocalInstance {
        name: s.cfg.name.clone(),
        state: s.core.state(),
        priority: s.core.priority(),
        // Route mode has no VRRP address: ties go by node name.
        address: (!route).then(|| s.core.local_addr()),
        route,
        advert_interval: s.cfg.advert_interval,
        preempt: s.cfg.preempt,
        preempt_delay: s.cfg.preempt_delay,
    }
}

impl Node {
    // -- Building a node -------------------------------------------------

    /// A node for `config`, with no interfaces and no instances yet: the
    /// shell adds them ([`Node::add_interface`], [`Node::add_instance`]),
    /// then the cluster and sync cores, then calls [`Node::start`].
    pub fn new(config: Config) -> Self {
        Node {
            track: TrackState::new(&config),
            config,
            ifaces: Vec::new(),
            slots: Vec::new(),
            next_id: 1,
            cluster: None,
            sync: None,
            group_states: BTreeMap::new(),
            started: false,
            effects: VecDeque::new(),
            refused: BTreeMap::new(),
            member_addrs: BTreeMap::new(),
            slot_hint: SlotHints::default(),
            deadline_memo: std::cell::Cell::new(None),
            settled: false,
            deadlines: DeadlineHeap::default(),
        }
    }

    /// Register an interface (once per name) with its link state.
    pub fn add_interface(&mut self, name: &str, up: bool) -> IfaceId {
        if let Some(i) = self.iface_id(name) {
            return i;
        }
        self.ifaces.push(Iface {
            name: name.to_string(),
            up,
            unmatched4: RxStats::default(),
            unmatched6: RxStats::default(),
        });
        IfaceId(self.ifaces.len() - 1)
    }

    pub fn iface_id(&self, name: &str) -> Option<IfaceId> {
        self.ifaces.iter().position(|f| f.name == name).map(IfaceId)
    }

    /// Add an instance of the configuration on `iface`, sending from
    /// `local` (its primary address there, or `unicast_src`). It starts
    /// with the node ([`Node::start`]), or at once when the node runs.
    pub fn add_instance(
        &mut self,
        now: Instant,
        cfg: model::Instance,
        iface: IfaceId,
        local: IpAddr,
    ) -> InstanceId {
        self.unsettle();
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        let mut core = vrrp::Instance::new(self.core_config(&cfg), local);
        if !self.ifaces[iface.0].up && !cfg.dont_track_primary {
            core.set_fault(now, true);
        }
        self.slots.push(Slot {
            id,
            cfg,
            core,
            iface,
            holds_vips: false,
            health: Vec::new(),
            tx: status::TxStats::default(),
            last_transition: None,
            metric_sent: None,
            release_at: None,
            release_demoted: false,
        });
        self.update_members(self.slots.len() - 1);
        if let Some(c) = &mut self.cluster {
            // Added by a reload: peers hear of it at once.
            let local = local_instance(&self.slots[self.slots.len() - 1]);
            c.upsert_local(now, local);
        }
        if self.started {
            self.refresh_health(now);
            if let Some(s) = self.slots.last_mut() {
                s.core.startup(now);
            }
            self.pump(now);
        }
        id
    }

    /// Run the cluster core (the configuration's `[cluster]`) for the
    /// instances added so far.
    pub fn enable_cluster(&mut self, now: Instant) {
        self.unsettle();
        let Some(cfg) = convert::cluster_config(&self.config) else {
            return;
        };
        let locals = self.slots.iter().map(local_instance).collect();
        self.cluster = Some(Cluster::new(cfg, locals, now));
        for i in 0..self.slots.len() {
            self.update_members(i);
        }
        if self.started {
            // Added by a reload: the running instances' states reach the
            // new core at once.
            self.refresh_health(now);
            self.pump(now);
        }
    }

    /// Stop the cluster core and data sync (a reload removed `[cluster]`):
    /// every instance goes on as plain RFC VRRP (no gates, hears anyone),
    /// keeping its state.
    pub fn disable_cluster(&mut self) {
        self.unsettle();
        self.disable_sync();
        if self.cluster.take().is_none() {
            return;
        }
        self.member_addrs.clear();
        for s in &mut self.slots {
            s.core.set_gates(vrrp::ClusterGates::default());
            s.core.set_members(None);
        }
        self.log(
            Level::Info,
            "cluster core stopped: the instances run on VRRP alone".into(),
        );
    }

    /// Stop data sync (a reload removed the last `[[sync]]` entry): the
    /// files stay as they are.
    pub fn disable_sync(&mut self) {
        self.unsettle();
        if self.sync.take().is_some() {
            self.log(Level::Info, "data sync stopped".into());
        }
    }

    /// Which routers instance `i` hears with the cluster channel on: the
    /// configured peers' addresses, every VRRP address a member reported,
    /// and its unicast peers; anyone when `accept_foreign_adverts` is set
    /// (a mixed cluster with keepalived or FRR) or without the channel.
    fn update_members(&mut self, i: usize) {
        let Some(cc) = self.config.cluster.as_ref() else {
            return;
        };
        if cc.accept_foreign_adverts || self.cluster.is_none() {
            self.slots[i].core.set_members(None);
            return;
        }
        let slot = &self.slots[i];
        let mut members: std::collections::BTreeSet<IpAddr> =
            cc.peers.iter().map(|p| p.addr.ip()).collect();
        members.extend(slot.cfg.unicast_peers.iter().copied());
        if let Some(learned) = self.member_addrs.get(&slot.cfg.name) {
            members.extend(learned.iter().copied());
        }
        self.slots[i]
            .core
            .set_members(Some(members.into_iter().collect()));
    }

    /// Run data sync (the configuration's `[[sync]]` entries) from the
    /// state stored by an earlier run; `chunk_size` overrides the default.
    /// Needs the cluster core. Returns the instance whose master is the
    /// control node.
    pub fn enable_sync(
        &mut self,
        persisted: BTreeMap<String, Persisted>,
        chunk_size: Option<usize>,
    ) -> Option<String> {
        self.unsettle();
        let cc = self.config.cluster.as_ref()?;
        if self.config.sync.is_empty() {
            return None;
        }
        let instance = convert::sync_instance(&self.config)?;
        let peers = cc.peers.iter().map(|p| p.name.clone()).collect();
        let mut sc = SyncConfig::new(&cc.node, peers, convert::sync_specs(&self.config));
        if let Some(c) = chunk_size {
            sc.chunk_size = c;
        }
        let mut core = SyncCore::new(sc);
        for (name, p) in &persisted {
            core.restore(name, p);
        }
        self.sync = Some(SyncSide {
            core,
            instance: instance.clone(),
            persisted,
        });
        Some(instance)
    }

    /// Data sync started by a reload learns which peers are connected
    /// already (their `PeerUp` came before it existed).
    pub fn sync_connected(&mut self, now: Instant, peers: &[String]) {
        self.unsettle();
        if let Some(s) = &mut self.sync {
            for p in peers {
                s.core.connected(now, p);
            }
        }
        self.pump(now);
    }

    /// Leave INITIALIZE: every instance starts (after health is known).
    pub fn start(&mut self, now: Instant) {
        self.unsettle();
        self.started = true;
        self.refresh_health(now);
        for s in &mut self.slots {
            s.core.startup(now);
        }
        self.pump(now);
    }

    // -- Driving it ------------------------------------------------------

    /// Take one input; then drain [`Node::poll_effect`].
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        let quick = self.settled && self.cluster.is_none() && self.sync.is_none();
        let input = match input {
            Input::Packet {
                iface,
                multicast_socket,
                src,
                dst,
                ttl,
                payload,
            } if quick => {
                self.on_packet_quick(now, iface, multicast_socket, src, dst, ttl, payload);
                return;
            }
            other => other,
        };
        self.unsettle();
        match input {
            Input::Packet {
                iface,
                multicast_socket,
                src,
                dst,
                ttl,
                payload,
            } => {
                self.on_packet(now, iface, multicast_socket, src, dst, ttl, payload);
            }
            Input::AhPacket {
                iface,
                multicast_socket,
                packet,
            } => self.on_ah_packet(now, iface, multicast_socket, packet),
            Input::Link { name, up } => self.on_link(now, name, up),
            Input::Track(ev) => {
                if self.track.apply(&ev) {
                    self.refresh_health(now);
                }
            }
            Input::PeerUp { peer } => {
                if let Some(c) = &mut self.cluster {
                    c.connected(now, peer);
                }
                if let Some(s) = &mut self.sync {
                    s.core.connected(now, peer);
                }
            }
            Input::PeerDown { peer, died } => {
                if let Some(c) = &mut self.cluster {
                    if died {
                        c.died(now, peer);
                    } else {
                        c.disconnected(now, peer);
                    }
                }
                if let Some(s) = &mut self.sync {
                    s.core.disconnected(now, peer);
                }
            }
            Input::Message { peer, msg } => {
                if let Some(why) = msg.refusal(peer) {
                    *self.refused.entry(why.to_string()).or_insert(0) += 1;
                    let kind = msg.kind();
                    self.log(
                        Level::Warn,
                        format!("cluster: {kind} from {peer} refused ({why})"),
                    );
                } else if is_sync_message(&msg) {
                    if let Some(s) = &mut self.sync {
                        s.core.handle_message(now, peer, msg);
                    }
                } else if let Some(c) = &mut self.cluster {
                    c.handle_message(now, peer, msg);
                }
            }
            Input::Data { peer, bytes } => {
                if let Some(s) = &mut self.sync {
                    s.core.handle_data(now, peer, bytes);
                }
            }
            Input::FileObserved { name, observed } => {
                if let Some(s) = &mut self.sync {
                    s.core.local_file(now, name, observed);
                }
            }
            Input::FileWritten {
                name,
                version,
                result,
            } => {
                if let Some(s) = &mut self.sync {
                    s.core.write_done(now, name, version, result);
                }
            }
            Input::Switchover {
                id,
                instance,
                to,
                unicast,
                clear,
            } => {
                // Moving one member of a sync group moves the group: ask
                // for its leader.
                let leader = self.group_leader(instance).map(str::to_string);
                let instance = leader.as_deref().unwrap_or(instance);
                let result = match (&mut self.cluster, to) {
                    (None, _) => Err(OperatorError::NoCluster),
                    (Some(c), _) if clear => c.clear_pin(now, instance),
                    (Some(c), Some(to)) => {
                        // Answered by the cluster core when it is done.
                        c.request_switchover(now, instance, to, unicast, id);
                        self.pump(now);
                        return;
                    }
                    (Some(_), None) => Err(OperatorError::MissingTarget),
                };
                self.effects.push_back(Effect::Reply { id, result });
            }
            Input::Timeout => self.on_timers(now),
        }
        self.pump(now);
    }

    /// Whether effects wait to be carried out ([`Node::poll_effect`]).
    #[must_use]
    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// The next effect to carry out, in order.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When the node next needs [`Input::Timeout`].
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(d) = self.deadline_memo.get() {
            debug_assert_eq!(d, self.walk_deadlines(), "stale deadline memo");
            return d;
        }
        let d = self.walk_deadlines();
        self.deadline_memo.set(Some(d));
        d
    }

    /// A change is coming that may move any deadline or queue an action.
    fn unsettle(&mut self) {
        self.settled = false;
        self.deadline_memo.set(None);
        self.deadlines.valid = false;
    }

    fn walk_deadlines(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.core.next_deadline())
            .chain(self.slots.iter().filter_map(|s| s.release_at))
            .chain(self.cluster.as_ref().and_then(Cluster::next_deadline))
            .chain(self.sync.as_ref().and_then(|s| s.core.next_deadline()))
            .min()
    }

    /// A graceful stop's first half with the cluster channel: hand every
    /// instance this node masters to its successor (make-before-break).
    /// Returns their names; the shell keeps driving the node until none of
    /// them is master ([`Node::masters_any`]) or its patience ends, then
    /// calls [`Node::shutdown`].
    pub fn hand_off(&mut self, now: Instant) -> Vec<String> {
        self.unsettle();
        let handed = match &mut self.cluster {
            Some(c) => c.hand_off_all(now),
            None => Vec::new(),
        };
        self.pump(now);
        handed
    }

    /// Whether any of `names` is MASTER here.
    pub fn masters_any(&self, names: &[String]) -> bool {
        self.slots
            .iter()
            .any(|s| names.contains(&s.cfg.name) && s.core.state() == State::Master)
    }

    /// Stop every instance (priority 0 from masters, VIPs removed).
    pub fn shutdown(&mut self, now: Instant) {
        self.unsettle();
        for s in &mut self.slots {
            s.core.shutdown(now);
        }
        self.pump(now);
        for i in 0..self.slots.len() {
            self.release_now(i);
        }
    }

    /// Route mode: some instance of `names` still lets go of its VIPs
    /// (a stopping node waits for it, as for its handover).
    pub fn releasing_any(&self, names: &[String]) -> bool {
        self.slots
            .iter()
            .any(|s| s.release_at.is_some() && names.contains(&s.cfg.name))
    }

    /// End a route-mode release now: remove the VIPs.
    fn release_now(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.release_demoted = false;
        if slot.release_at.take().is_none() {
            return;
        }
        self.unsettle();
        let slot = &mut self.slots[i];
        slot.holds_vips = false;
        slot.tx.vip_removes += 1;
        let vips = all_vips(&slot.cfg);
        self.effects.push_back(Effect::RemoveVips {
            instance: slot.id,
            name: slot.cfg.name.clone(),
            iface: slot.iface,
            vips,
        });
    }

    // -- Reload ----------------------------------------------------------

    /// Apply the part of a reload the node can do alone: stop what
    /// `plan.stop` names (their ids are returned, for the shell to close
    /// their sockets), reconfigure what `plan.reconfigure` names in place,
    /// take the new configuration and carry tracking state over. The shell
    /// then adds `plan.start` with [`Node::add_instance`].
    pub fn reload(&mut self, now: Instant, new: Config, plan: &ReloadPlan) -> Vec<InstanceId> {
        self.unsettle();
        for name in &plan.reconfigure {
            let Some(n) = new.instance(name) else {
                continue;
            };
            let Some(i) = self.slots.iter().position(|s| &s.cfg.name == name) else {
                continue;
            };
            self.reconfigure_slot(now, i, n, &new);
        }
        let mut stopped = Vec::new();
        let mut i = 0;
        while i < self.slots.len() {
            if !plan.stop.contains(&self.slots[i].cfg.name) {
                i += 1;
                continue;
            }
            self.slots[i].core.shutdown(now);
            while let Some(a) = self.slots[i].core.poll_action() {
                self.on_instance_action(now, i, a);
            }
            self.release_now(i);
            let slot = self.slots.remove(i);
            if plan.remove.contains(&slot.cfg.name) {
                self.log(Level::Info, format!("({}) removed", slot.cfg.name));
                if let Some(c) = &mut self.cluster {
                    c.remove_local(now, &slot.cfg.name);
                }
            }
            stopped.push(slot.id);
        }
        if plan.tracking_changed {
            // What survives keeps its state: a failing check must not look
            // good again just because the file was re-read.
            let mut state = TrackState::new(&new);
            state.carry_over(&self.track);
            self.track = state;
        }
        self.config = new;
        if plan.cluster_stopped {
            self.disable_cluster();
        } else if plan.sync_stopped {
            self.disable_sync();
        }
        self.reload_cluster(now, plan);
        self.refresh_health(now);
        self.pump(now);
        stopped
    }

    /// Change a running instance in place: a master keeps its state and
    /// adds or removes only the addresses that differ (added first: the
    /// advert and GARP that follow carry the new list).
    fn reconfigure_slot(&mut self, now: Instant, i: usize, n: &model::Instance, new: &Config) {
        let name = n.name.clone();
        let old = self.slots[i].cfg.clone();
        if !self.slots[i].core.reconfigure(now, core_config_in(n, new)) {
            return;
        }
        let key = |v: &Vip| (v.addr, v.prefix_len, v.dev.clone());
        let (was, now_all) = (all_vips(&old), all_vips(n));
        // A changed label or scope is a replace of the same address.
        let added: Vec<Vip> = now_all
            .iter()
            .filter(|v| !was.contains(v))
            .cloned()
            .collect();
        let removed: Vec<Vip> = was
            .iter()
            .filter(|v| !now_all.iter().any(|w| key(w) == key(v)))
            .cloned()
            .collect();
        // A master's routes and rules change in place too: the ones gone
        // out before the VIPs change, the new ones in after the new VIPs
        // (a route may name a VIP as its source).
        let routes_out = (
            missing(&old.virtual_routes, &n.virtual_routes),
            missing(&old.virtual_rules, &n.virtual_rules),
        );
        let routes_in = (
            missing(&n.virtual_routes, &old.virtual_routes),
            missing(&n.virtual_rules, &old.virtual_rules),
        );
        let slot = &mut self.slots[i];
        let (id, iface) = (slot.id, slot.iface);
        let lease = slot.core.config().vip_lease;
        let metric = slot_metric(slot);
        if slot.holds_vips && (!routes_out.0.is_empty() || !routes_out.1.is_empty()) {
            self.effects.push_back(Effect::RemoveRoutes {
                instance: id,
                name: name.clone(),
                routes: routes_out.0,
                rules: routes_out.1,
            });
        }
        if slot.holds_vips && !added.is_empty() {
            self.effects.push_back(Effect::AddVips {
                instance: id,
                name: name.clone(),
                iface,
                vips: added.clone(),
                lease,
                metric,
            });
        }
        if slot.holds_vips && (!routes_in.0.is_empty() || !routes_in.1.is_empty()) {
            self.effects.push_back(Effect::AddRoutes {
                instance: id,
                name: name.clone(),
                routes: routes_in.0,
                rules: routes_in.1,
            });
        }
        if slot.holds_vips && !removed.is_empty() {
            self.effects.push_back(Effect::RemoveVips {
                instance: id,
                name: name.clone(),
                iface,
                vips: removed.clone(),
            });
        }
        slot.cfg = n.clone();
        let mut what = String::new();
        if !added.is_empty() || !removed.is_empty() {
            let list = |v: &[Vip]| {
                v.iter()
                    .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            what = format!(": VIPs +[{}] -[{}]", list(&added), list(&removed));
        }
        let state = slot.core.state();
        self.log(
            Level::Info,
            format!("({name}) reconfigured in place, still {state:?}{what}"),
        );
        if let Some(c) = &mut self.cluster {
            let local = local_instance(&self.slots[i]);
            c.upsert_local(now, local);
        }
        self.update_members(i);
    }

    /// The cluster and sync cores take a reload's peers, settings and
    /// entries (the configuration is the new one already).
    fn reload_cluster(&mut self, now: Instant, plan: &ReloadPlan) {
        if plan.peers_changed() || plan.cluster_changed {
            if let (Some(c), Some(cfg)) = (&mut self.cluster, convert::cluster_config(&self.config))
            {
                c.reconfigure(now, cfg);
            }
            for i in 0..self.slots.len() {
                self.update_members(i);
            }
        }
        if !(plan.peers_changed() || plan.sync_entries_changed() || plan.cluster_changed) {
            return;
        }
        let (Some(s), Some(cc)) = (&mut self.sync, self.config.cluster.as_ref()) else {
            return;
        };
        let peers = cc.peers.iter().map(|p| p.name.clone()).collect();
        s.core
            .reconfigure(now, peers, convert::sync_specs(&self.config));
        for name in &plan.sync_added {
            if let Some(p) = s.persisted.get(name) {
                s.core.restore(name, p);
            }
        }
        if let Some(instance) = convert::sync_instance(&self.config) {
            s.instance = instance;
        }
    }

    // -- Queries ---------------------------------------------------------

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration of a running instance.
    pub fn instance_config(&self, id: InstanceId) -> Option<&model::Instance> {
        self.slot(id).map(|s| &s.cfg)
    }

    /// A running instance's VRRP core.
    pub fn instance(&self, id: InstanceId) -> Option<&vrrp::Instance> {
        self.slot(id).map(|s| &s.core)
    }

    /// The interface an instance runs on.
    pub fn instance_iface(&self, id: InstanceId) -> Option<IfaceId> {
        self.slot(id).map(|s| s.iface)
    }

    /// The running instances, in configuration order.
    pub fn instance_ids(&self) -> Vec<InstanceId> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// The instance called `name`.
    pub fn instance_by_name(&self, name: &str) -> Option<InstanceId> {
        self.slots.iter().find(|s| s.cfg.name == name).map(|s| s.id)
    }

    /// Whether the instance's VIPs are configured (as far as the node has
    /// asked for it).
    pub fn holds_vips(&self, id: InstanceId) -> bool {
        self.slot(id).is_some_and(|s| s.holds_vips)
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    pub fn sync(&self) -> Option<&SyncCore> {
        self.sync.as_ref().map(|s| &s.core)
    }

    pub fn track(&self) -> &TrackState {
        &self.track
    }

    /// Zero the receive counters of every instance and interface
    /// (keepalived's STATS_CLEAR signal). Roles and epochs are untouched.
    pub fn clear_stats(&mut self) {
        for s in &mut self.slots {
            *s.core.stats_mut() = RxStats::default();
            s.tx = status::TxStats::default();
        }
        for f in &mut self.ifaces {
            f.unmatched4 = RxStats::default();
            f.unmatched6 = RxStats::default();
        }
    }

    /// Drops that no instance of the interface could own, IPv4 and IPv6.
    pub fn unmatched(&self, iface: IfaceId) -> (&RxStats, &RxStats) {
        let f = &self.ifaces[iface.0];
        (&f.unmatched4, &f.unmatched6)
    }

    /// What `baton status` shows, less what only the shell knows (`pid`,
    /// `config_file`, the transport's view of each peer): those are left
    /// empty for the shell to fill in.
    pub fn status(&self, now: Instant) -> Status {
        status::project(self, now)
    }

    /// Whether `dst` is the multicast group adverts go to
    /// (`vrrp_mcast_group4` / `vrrp_mcast_group6`).
    fn is_group(&self, dst: IpAddr) -> bool {
        let g = &self.config.global;
        match dst {
            IpAddr::V4(a) => a == g.mcast_group4,
            IpAddr::V6(a) => a == g.mcast_group6,
        }
    }

    /// [`core_config`] with the global defaults applied.
    fn core_config(&self, cfg: &model::Instance) -> vrrp::InstanceConfig {
        core_config_in(cfg, &self.config)
    }

    fn slot(&self, id: InstanceId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    fn log(&mut self, level: Level, message: String) {
        self.effects.push_back(Effect::Log { level, message });
    }

    // -- Inputs ----------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn on_packet(
        &mut self,
        now: Instant,
        iface: IfaceId,
        multicast_socket: bool,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Option<(usize, Option<Instant>)> {
        if multicast_socket != self.is_group(dst) {
            return None;
        }
        let f = self.ifaces.get_mut(iface.0)?;
        let v4 = src.is_ipv4();
        // The TTL / hop-limit 255 rule is checked on multicast only: a
        // routed unicast advert arrives with less (keepalived's default).
        let pkt = Received {
            src,
            dst,
            ttl: if multicast_socket { ttl } else { 255 },
            payload,
        };
        // The one instance the VRID names (the config refuses a second one
        // on the same interface and family), found without a scan.
        let target = payload
            .get(1)
            .and_then(|&vrid| find_slot(&self.slots, &mut self.slot_hint, iface, v4, vrid));
        let unmatched = if v4 {
            &mut f.unmatched4
        } else {
            &mut f.unmatched6
        };
        let before = target.map(|i| (i, self.slots[i].core.next_deadline()));
        let cores: &mut [vrrp::Instance] = match target {
            Some(i) => std::slice::from_mut(&mut self.slots[i].core),
            None => &mut [],
        };
        if let vrrp::Delivery::Dropped(reason) = vrrp::dispatch(now, cores, unmatched, pkt) {
            let message = format!("{}: dropped VRRP packet from {src}: {reason}", f.name);
            self.log(Level::Debug, message);
        }
        before
    }

    /// A packet while everything is settled and there is neither cluster
    /// nor sync core: only the instance it reached can have changed, so
    /// only its actions are drained and only its deadline is looked at
    /// (a backup hearing hundreds of masters walks no list per advert).
    /// Anything it does (a state change, an advert) takes the full path.
    #[allow(clippy::too_many_arguments)]
    fn on_packet_quick(
        &mut self,
        now: Instant,
        iface: IfaceId,
        multicast_socket: bool,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) {
        let memo = self.deadline_memo.get();
        let Some((i, old)) = self.on_packet(now, iface, multicast_socket, src, dst, ttl, payload)
        else {
            return;
        };
        let mut acted = false;
        while let Some(action) = self.slots[i].core.poll_action() {
            if !acted {
                acted = true;
                self.unsettle();
            }
            self.on_instance_action(now, i, action);
        }
        if acted {
            self.pump(now);
            return;
        }
        let new = self.slots[i].core.next_deadline();
        if new == old && memo.is_some() {
            return;
        }
        // Neither cluster nor sync core here: the instances' earliest
        // deadline is the node's.
        self.deadlines.set(&self.slots, i, new);
        self.deadline_memo.set(Some(self.deadlines.earliest()));
    }
}

/// Where the instance for (interface, family, VRID) was last found: per
/// interface, a slot number (plus one; 0: none) for each of the 256 IPv4
/// and 256 IPv6 VRIDs. A lookup is an index, no hash and no scan.
#[derive(Debug, Default)]
struct SlotHints(Vec<[u16; 512]>);

impl SlotHints {
    fn entry(&mut self, iface: IfaceId, v4: bool, vrid: u8) -> &mut u16 {
        if self.0.len() <= iface.0 {
            self.0.resize(iface.0 + 1, [0; 512]);
        }
        &mut self.0[iface.0][usize::from(v4) * 256 + usize::from(vrid)]
    }
}

/// The slot of the instance for (`iface`, family, `vrid`): the hint when it
/// still points at it, else a scan that renews the hint. An unknown VRID
/// scans every time (and finds nothing), as it did before the hint.
fn find_slot(
    slots: &[Slot],
    hints: &mut SlotHints,
    iface: IfaceId,
    v4: bool,
    vrid: u8,
) -> Option<usize> {
    let is =
        |s: &Slot| s.iface == iface && s.core.vrid() == vrid && s.core.local_addr().is_ipv4() == v4;
    let hint = hints.entry(iface, v4, vrid);
    if let Some(i) = usize::from(*hint).checked_sub(1) {
        if slots.get(i).is_some_and(is) {
            return Some(i);
        }
    }
    let found = slots.iter().position(is);
    // More than 65,534 slots: no hint, a scan each time.
    *hint = found.and_then(|i| u16::try_from(i + 1).ok()).unwrap_or(0);
    found
}

impl Node {
    /// An AH datagram: structure and TTL here, the ICV, SPI and sequence
    /// number in the instance its VRID names (which holds key and counter).
    fn on_ah_packet(
        &mut self,
        now: Instant,
        iface: IfaceId,
        multicast_socket: bool,
        packet: &[u8],
    ) {
        let Some(f) = self.ifaces.get_mut(iface.0) else {
            return;
        };
        let parsed = match ah::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                let reason = match &e {
                    ah::AhError::Ip(w) => vrrp::DropReason::from(w),
                    ah::AhError::NotVrrp { .. } => vrrp::DropReason::AhNotVrrp,
                };
                f.unmatched4.count(reason);
                let message = format!("{}: dropped AH packet: {e}", f.name);
                self.log(Level::Debug, message);
                return;
            }
        };
        if multicast_socket != (IpAddr::V4(parsed.dst) == GROUP4) {
            return;
        }
        let vrid = parsed.vrrp.get(1).copied();
        let slot = vrid
            .and_then(|v| find_slot(&self.slots, &mut self.slot_hint, iface, true, v))
            .map(|i| &mut self.slots[i]);
        let Some(slot) = slot else {
            f.unmatched4.count(vrrp::DropReason::UnknownVrid);
            return;
        };
        let verdict = if multicast_socket && parsed.ttl != 255 {
            slot.core.stats_mut().count(vrrp::DropReason::BadTtl);
            Err(vrrp::DropReason::BadTtl)
        } else {
            let unicast = !slot.cfg.unicast_peers.is_empty();
            slot.core.handle_ah_advert(now, &parsed, unicast)
        };
        if let Err(reason) = verdict {
            let message = format!(
                "({}) dropped AH advert from {} (sequence {}): {reason}",
                slot.cfg.name, parsed.src, parsed.seq
            );
            self.log(Level::Debug, message);
        }
    }

    fn on_link(&mut self, now: Instant, name: &str, up: bool) {
        let tracked = self.config.tracked_interface_names().contains(name);
        // The first report of a tracked link is its initial state, not news.
        let known = self.track.interface_up(name).is_some();
        let changed_track = tracked && self.track.set_interface(name, up);
        let changed_own = match self.ifaces.iter_mut().find(|f| f.name == name) {
            Some(f) if f.up != up => {
                f.up = up;
                true
            }
            _ => false,
        };
        if !(changed_own || changed_track) {
            return;
        }
        if changed_own || known {
            if up {
                self.log(Level::Info, format!("Netlink reports {name} up"));
            } else {
                self.log(Level::Warn, format!("Netlink reports {name} down"));
            }
        }
        self.refresh_health(now);
    }

    fn on_timers(&mut self, now: Instant) {
        let lease_due = self.slots.iter().any(|s| s.core.lease_refresh_due(now));
        for s in &mut self.slots {
            // Masters whose advert is due within its slack go along.
            let due = s.core.next_deadline().is_some_and(|d| d <= now);
            if due || s.core.advert_due_within_slack(now) {
                s.core.handle_timeout(now);
            }
            // And so do the lease refreshes that are nearly due.
            if lease_due {
                s.core.refresh_lease_early(now);
            }
        }
        for i in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if s.release_at.is_none_or(|d| d > now) {
                continue;
            }
            if s.release_demoted {
                self.release_now(i);
            } else {
                s.release_demoted = true;
                s.release_at = Some(now + s.cfg.release_delay);
                let readd = s.metric_sent != Some(RELEASE_METRIC);
                s.metric_sent = Some(RELEASE_METRIC);
                let effect = Effect::RefreshVips {
                    instance: s.id,
                    name: s.cfg.name.clone(),
                    iface: s.iface,
                    vips: all_vips(&s.cfg),
                    lease: s.core.config().vip_lease,
                    metric: Some(RELEASE_METRIC),
                    readd,
                };
                self.effects.push_back(effect);
            }
        }
        if let Some(c) = &mut self.cluster {
            if c.next_deadline().is_some_and(|d| d <= now) {
                c.handle_timeout(now);
            }
        }
        if let Some(s) = &mut self.sync {
            if s.core.next_deadline().is_some_and(|d| d <= now) {
                s.core.handle_timeout(now);
            }
        }
    }

    /// Recompute every instance's fault and effective priority from its own
    /// interface, its tracked scripts, interfaces and files (method step 6:
    /// the node's own fault removes the VIPs at once), and its sync group
    /// (one member's fault faults them all, as keepalived).
    fn refresh_health(&mut self, now: Instant) {
        let own: Vec<(bool, u8, Vec<String>)> = self
            .slots
            .iter()
            .map(|s| {
                let effect = track::instance_effect(&s.cfg, &self.config, &self.track);
                let f = &self.ifaces[s.iface.0];
                let mut reasons = effect.reasons;
                // dont_track_primary: the own interface counts for nothing.
                let own_down = !f.up && !s.cfg.dont_track_primary;
                if own_down {
                    reasons.insert(0, format!("interface {} down", f.name));
                }
                (own_down || effect.fault, effect.priority, reasons)
            })
            .collect();
        for i in 0..self.slots.len() {
            let (mut fault, priority, mut reasons) = own[i].clone();
            let name = self.slots[i].cfg.name.clone();
            if let Some(group) = self
                .config
                .sync_groups
                .iter()
                .find(|g| g.instances.contains(&name))
            {
                for (j, other) in self.slots.iter().enumerate() {
                    if j != i && group.instances.contains(&other.cfg.name) && own[j].0 {
                        fault = true;
                        reasons.push(format!(
                            "sync group {}: {} faulted",
                            group.name, other.cfg.name
                        ));
                    }
                }
            }
            let slot = &mut self.slots[i];
            if slot.health != reasons {
                for r in reasons.iter().filter(|r| !slot.health.contains(r)) {
                    self.effects.push_back(Effect::Log {
                        level: Level::Warn,
                        message: format!("({name}) {r}"),
                    });
                }
                slot.health = reasons;
            }
            slot.core.set_fault(now, fault);
            slot.core.set_priority(now, priority);
            let (state, prio) = (slot.core.state(), slot.core.priority());
            if let Some(c) = &mut self.cluster {
                c.local_update(now, &name, state, prio);
            }
        }
    }

    // -- The cores talking to each other ---------------------------------

    /// Drain every core until all are quiet: VRRP and cluster first, data
    /// sync once they are.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut did = false;
            for i in 0..self.slots.len() {
                while let Some(action) = self.slots[i].core.poll_action() {
                    did = true;
                    self.on_instance_action(now, i, action);
                }
            }
            while let Some(action) = self.cluster.as_mut().and_then(Cluster::poll_action) {
                did = true;
                self.on_cluster_action(now, action);
            }
            if did {
                continue;
            }
            self.sync_role(now);
            while let Some(action) = self.sync.as_mut().and_then(|s| s.core.poll_action()) {
                did = true;
                self.on_sync_action(action);
            }
            if !did {
                if let Some(s) = &mut self.sync {
                    s.core.note_lag(now);
                }
                self.settled = true;
                return;
            }
        }
    }

    fn on_instance_action(&mut self, now: Instant, i: usize, action: Action) {
        let slot = &mut self.slots[i];
        let id = slot.id;
        match action {
            // Route mode: no VRRP packets, no ARP; the routing daemon
            // announces the addresses. An advert is due at every interval
            // and at once when the priority changes: the holder's metric
            // (the MED) follows the priority then.
            Action::SendAdvert(_) if slot.cfg.is_route() => {
                let metric = slot_metric(slot);
                if slot.holds_vips && metric != slot.metric_sent {
                    self.on_instance_action(now, i, Action::RefreshVips);
                }
            }
            Action::SendGarp { .. } if slot.cfg.is_route() => {}
            // Route mode, replaced by another holder (still BACKUP: not a
            // stop, not a fault): let go in two steps (see `release_at`), so
            // the routers move to the new holder while this one answers.
            Action::RemoveVips
                if slot.cfg.is_route()
                    && slot.core.state() == State::Backup
                    && slot.holds_vips
                    && !slot.cfg.release_delay.is_zero() =>
            {
                slot.release_at = Some(now + slot.cfg.release_delay);
                slot.release_demoted = false;
            }
            Action::SendAdvert(repr) => {
                let src = slot.core.local_addr();
                let mode = if slot.cfg.v3_checksum_as_v2 {
                    V3Checksum::WithoutPseudoHeader
                } else {
                    V3Checksum::WithPseudoHeader
                };
                let g = &self.config.global;
                let group = if src.is_ipv4() {
                    IpAddr::V4(g.mcast_group4)
                } else {
                    IpAddr::V6(g.mcast_group6)
                };
                let dsts: Vec<IpAddr> = if slot.cfg.unicast_peers.is_empty() {
                    vec![group]
                } else {
                    slot.cfg.unicast_peers.clone()
                };
                if let (Some(key), IpAddr::V4(src4)) = (slot.core.ah_key().copied(), src) {
                    let stamp = slot.core.next_ah_stamp();
                    let unicast = !slot.cfg.unicast_peers.is_empty();
                    for dst in dsts {
                        let IpAddr::V4(dst4) = dst else { continue };
                        let built = ah::vrrp_message(&repr, src4, dst4).and_then(|vrrp| {
                            ah::emit(&key, src4, dst4, 255, stamp, unicast, &vrrp)
                        });
                        match built {
                            Ok(packet) => self.effects.push_back(Effect::SendAhAdvert {
                                instance: id,
                                dst,
                                packet,
                            }),
                            Err(e) => {
                                let message =
                                    format!("({}) cannot build AH advert: {e}", slot.cfg.name);
                                self.effects.push_back(Effect::Log {
                                    level: Level::Error,
                                    message,
                                });
                            }
                        }
                    }
                    return;
                }
                for dst in dsts {
                    match repr.to_bytes(src, dst, mode) {
                        Ok(bytes) => {
                            slot.tx.adverts_sent += 1;
                            self.effects.push_back(Effect::SendAdvert {
                                instance: id,
                                dst,
                                bytes,
                            })
                        }
                        Err(e) => {
                            let message = format!("({}) cannot build advert: {e}", slot.cfg.name);
                            self.effects.push_back(Effect::Log {
                                level: Level::Error,
                                message,
                            });
                        }
                    }
                }
            }
            Action::AddVips | Action::RefreshVips | Action::RemoveVips => {
                if action != Action::RefreshVips {
                    // Taken back while letting go, or removed for good.
                    slot.release_at = None;
                }
                slot.holds_vips = action != Action::RemoveVips;
                match action {
                    Action::AddVips => slot.tx.vip_adds += 1,
                    Action::RemoveVips => slot.tx.vip_removes += 1,
                    _ => {}
                }
                let (name, iface) = (slot.cfg.name.clone(), slot.iface);
                let lease = slot.core.config().vip_lease;
                let metric = slot_metric(slot);
                let readd = action == Action::RefreshVips && slot.metric_sent != metric;
                slot.metric_sent = metric;
                let vips = all_vips(&slot.cfg);
                let has_routes =
                    !slot.cfg.virtual_routes.is_empty() || !slot.cfg.virtual_rules.is_empty();
                let (routes, rules) = (
                    slot.cfg.virtual_routes.clone(),
                    slot.cfg.virtual_rules.clone(),
                );
                // Routes go after the VIPs they may use and before them.
                if action == Action::RemoveVips && has_routes {
                    self.effects.push_back(Effect::RemoveRoutes {
                        instance: id,
                        name: name.clone(),
                        routes: routes.clone(),
                        rules: rules.clone(),
                    });
                }
                let added = action == Action::AddVips;
                let add_routes = Effect::AddRoutes {
                    instance: id,
                    name: name.clone(),
                    routes,
                    rules,
                };
                self.effects.push_back(match action {
                    Action::AddVips => Effect::AddVips {
                        instance: id,
                        name,
                        iface,
                        vips,
                        lease,
                        metric,
                    },
                    Action::RefreshVips => Effect::RefreshVips {
                        instance: id,
                        name,
                        iface,
                        vips,
                        lease,
                        metric,
                        readd,
                    },
                    _ => Effect::RemoveVips {
                        instance: id,
                        name,
                        iface,
                        vips,
                    },
                });
                if added && has_routes {
                    self.effects.push_back(add_routes);
                }
            }
            Action::SendGarp { count } => {
                let gap = if slot.core.local_addr().is_ipv4() {
                    slot.cfg.garp.interval
                } else {
                    slot.cfg.garp.na_interval
                };
                slot.tx.garp_sent += u64::from(count) * slot.cfg.virtual_ips.len() as u64;
                self.effects.push_back(Effect::SendGarp {
                    instance: id,
                    iface: slot.iface,
                    count,
                    vips: slot.cfg.virtual_ips.iter().map(|v| v.addr).collect(),
                    gap,
                });
            }
            Action::StateChange { from, to, reason } => {
                *slot
                    .tx
                    .transitions
                    .entry(format!("{from}->{to}"))
                    .or_default() += 1;
                slot.last_transition = Some(now);
                let name = slot.cfg.name.clone();
                let priority = slot.core.priority();
                self.effects.push_back(Effect::StateChanged {
                    instance: id,
                    name: name.clone(),
                    from,
                    to,
                    reason,
                    priority,
                    notify: slot.cfg.notify.clone(),
                });
                if let Some(c) = &mut self.cluster {
                    c.local_update(now, &name, to, priority);
                }
                self.follow_sync_group(now, i, from, to);
            }
        }
    }

    /// The leader of `instance`'s sync group (its first member), when
    /// `instance` is another member and the cluster channel runs.
    fn group_leader(&self, instance: &str) -> Option<&str> {
        self.cluster.as_ref()?;
        self.config
            .sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
            .and_then(|g| g.instances.first())
            .filter(|lead| *lead != instance)
            .map(String::as_str)
    }

    /// Whether another member of `instance`'s sync group yields to a
    /// router VRRP prefers.
    fn group_yields(&self, now: Instant, instance: &str) -> bool {
        let Some(group) = self
            .config
            .sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
        else {
            return false;
        };
        self.slots.iter().any(|s| {
            s.cfg.name != instance
                && group.instances.contains(&s.cfg.name)
                && s.core.yields_to_foreign_master(now)
        })
    }

    /// keepalived's sync groups: a member that becomes master pulls the
    /// others up; one that yields to another master takes the others down.
    fn follow_sync_group(&mut self, now: Instant, i: usize, from: State, to: State) {
        let name = &self.slots[i].cfg.name;
        let Some(group) = self
            .config
            .sync_groups
            .iter()
            .find(|g| g.instances.contains(name))
        else {
            return;
        };
        let why = ClusterReason::SyncGroup;
        for (j, slot) in self.slots.iter_mut().enumerate() {
            if j == i || !group.instances.contains(&slot.cfg.name) {
                continue;
            }
            match (from, to) {
                (_, State::Master) => {
                    slot.core.take_over(now, why, None);
                }
                (State::Master, State::Backup) => {
                    slot.core.step_down(now, why, None);
                }
                _ => {}
            }
        }
        // The group's own notification, once all members agree.
        let mut states = self
            .slots
            .iter()
            .filter(|s| group.instances.contains(&s.cfg.name))
            .map(|s| s.core.state());
        if let Some(first) = states.next() {
            if states.all(|s| s == first) && self.group_states.get(&group.name) != Some(&first) {
                self.group_states.insert(group.name.clone(), first);
                self.effects.push_back(Effect::GroupStateChanged {
                    group: group.name.clone(),
                    state: first,
                    notify: group.notify.clone(),
                });
            }
        }
    }

    fn on_cluster_action(&mut self, now: Instant, action: ClusterAction) {
        fn find<'a>(slots: &'a mut [Slot], name: &str) -> Option<&'a mut Slot> {
            slots.iter_mut().find(|s| s.cfg.name == name)
        }
        match action {
            ClusterAction::Send { peer, msg } => self.effects.push_back(Effect::Send { peer, msg }),
            ClusterAction::Broadcast(msg) => self.effects.push_back(Effect::Broadcast(msg)),
            // A sync group moves as one among baton peers: its first
            // member leads, the others follow it (below), never the
            // cluster core on their own; two members elected on two nodes
            // would pull each other up and down for ever.
            ClusterAction::TakeOver { ref instance, .. }
            | ClusterAction::StepDown { ref instance, .. }
                if self.group_leader(instance).is_some() => {}
            // Nor does a leader preempt while another member of its group
            // yields to a router VRRP prefers (see
            // `Instance::yields_to_foreign_master`): it would pull that
            // member over it, and lose it again at its next advert.
            ClusterAction::TakeOver {
                ref instance,
                why: ClusterReason::Preempt,
                ..
            } if self.group_yields(now, instance) => {}
            ClusterAction::TakeOver {
                instance,
                why,
                unless_heard_since,
            } => {
                if let Some(s) = find(&mut self.slots, &instance) {
                    s.core.take_over(now, why, unless_heard_since);
                }
            }
            ClusterAction::StepDown {
                instance,
                why,
                new_master,
            } => {
                if let Some(s) = find(&mut self.slots, &instance) {
                    s.core.step_down(now, why, new_master);
                }
            }
            ClusterAction::SetGates {
                instance,
                mut gates,
            } => {
                if self.group_leader(&instance).is_some() {
                    // A follower never promotes itself: its leader pulls it.
                    gates.defer_master_down = true;
                }
                let known = self.member_addrs.entry(instance.clone()).or_default();
                let before = known.len();
                known.extend(gates.peers.iter().copied());
                let learned = known.len() != before;
                if let Some(i) = self.slots.iter().position(|s| s.cfg.name == instance) {
                    self.slots[i].core.set_gates(gates);
                    if learned {
                        self.update_members(i);
                    }
                }
            }
            ClusterAction::SwitchoverDone { id, result } => {
                self.effects.push_back(Effect::Reply { id, result })
            }
        }
    }

    /// The control node for data sync is the master of the sync instance.
    fn sync_role(&mut self, now: Instant) {
        let Some(s) = &mut self.sync else {
            return;
        };
        let master = self
            .slots
            .iter()
            .any(|sl| sl.cfg.name == s.instance && sl.core.state() == State::Master);
        let epoch = self.cluster.as_ref().map_or(0, |c| c.epoch(&s.instance));
        s.core.set_role(now, master, epoch);
    }

    fn on_sync_action(&mut self, action: SyncAction) {
        let effect = match action {
            SyncAction::Send { peer, msg } => Effect::Send { peer, msg },
            SyncAction::Broadcast(msg) => Effect::Broadcast(msg),
            SyncAction::SendData { peer, bytes } => Effect::SendData { peer, bytes },
            SyncAction::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            } => Effect::WriteFile {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            },
            SyncAction::RunOnChange { name, version } => {
                let command = self
                    .config
                    .sync
                    .iter()
                    .find(|e| e.name == name)
                    .and_then(|e| e.on_change.clone());
                match command {
                    Some(command) => Effect::RunOnChange {
                        name,
                        version,
                        command,
                    },
                    None => return,
                }
            }
            SyncAction::Persist { name, state } => {
                let Some(s) = &mut self.sync else {
                    return;
                };
                s.persisted.insert(name, state);
                Effect::SaveSyncState(s.persisted.clone())
            }
            SyncAction::Warn(message) => Effect::Log {
                level: Level::Warn,
                message,
            },
            SyncAction::Info(message) => Effect::Log {
                level: Level::Info,
                message,
            },
        };
        self.effects.push_back(effect);
    }
}

fn is_sync_message(msg: &Message) -> bool {
    matches!(
        msg,
        Message::SyncOffer { .. }
            | Message::SyncHave { .. }
            | Message::SyncRequest { .. }
            | Message::SyncAck { .. }
    )
}

/// What of `a` is not in `b`.
pub(crate) fn missing<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// [`core_config`] with the node's defaults applied: the global
/// `skip_check_adv_addr`, and a route-mode instance's timing.
fn core_config_in(cfg: &model::Instance, config: &Config) -> vrrp::InstanceConfig {
    let mut c = core_config(cfg);
    c.skip_check_adv_addr = cfg
        .skip_check_adv_addr
        .unwrap_or(config.global.skip_check_adv_addr);
    if cfg.is_route() {
        c.advert_interval = route_interval(config);
    }
    c
}

/// A route-mode instance has no adverts: its core runs on the cluster's
/// heartbeat interval instead (in whole centiseconds, at least one), which
/// sets the first election's wait (three of them plus the skew) and how
/// often a deferred takeover looks again.
pub fn route_interval(config: &Config) -> Duration {
    let hb = config
        .cluster
        .as_ref()
        .map_or(model::Cluster::DEFAULT_HEARTBEAT_INTERVAL, |c| {
            c.heartbeat_interval
        });
    Duration::from_millis((hb.as_millis() / 10).max(1) as u64 * 10)
}

#[cfg(test)]
mod route_tests {
    use super::*;

    /// Route mode: the holder's VIPs carry 255 - priority as their metric
    /// (FRR's MED), and a new priority replaces it; no advert or GARP ever
    /// leaves.
    #[test]
    fn a_route_holder_s_metric_follows_its_priority() {
        let mut cfg = model::Instance::new_route("RT");
        cfg.priority = 150;
        cfg.virtual_ips = vec!["10.99.0.100/32".parse().unwrap()];
        let mut config = Config::new("n1");
        config.instances.push(cfg.clone());
        let mut node = Node::new(config.clone());
        let t0 = Instant::now();
        let lo = node.add_interface("lo", true);
        node.add_instance(t0, cfg.clone(), lo, "0.0.0.0".parse().unwrap());
        node.start(t0);
        let mut now = t0;
        let mut metrics = Vec::new();
        let drain = |node: &mut Node, metrics: &mut Vec<(&'static str, Option<u32>)>| {
            while let Some(e) = node.poll_effect() {
                match e {
                    Effect::AddVips { metric, .. } => metrics.push(("add", metric)),
                    Effect::RefreshVips { metric, .. } => metrics.push(("refresh", metric)),
                    Effect::SendAdvert { .. }
                    | Effect::SendAhAdvert { .. }
                    | Effect::SendGarp { .. } => panic!("route mode sent VRRP or ARP: {e:?}"),
                    _ => {}
                }
            }
        };
        while now < t0 + Duration::from_secs(2) {
            now = node
                .next_deadline()
                .unwrap_or(now)
                .max(now + Duration::from_millis(1));
            node.handle(now, Input::Timeout);
            drain(&mut node, &mut metrics);
        }
        assert_eq!(node.instance(InstanceId(1)).unwrap().state(), State::Master);
        assert_eq!(metrics.first(), Some(&("add", Some(105))), "{metrics:?}");
        let mut new = config.clone();
        new.instances[0].priority = 200;
        let plan = reload::plan_reload(&config, &new);
        assert_eq!(plan.reconfigure, ["RT"]);
        let before = metrics.len();
        assert!(metrics.iter().all(|m| m.1 == Some(105)), "{metrics:?}");
        node.reload(now, new, &plan);
        drain(&mut node, &mut metrics);
        assert_eq!(metrics[before..], [("refresh", Some(55))], "{metrics:?}");
        // Lease refreshes keep it.
        let until = now + Duration::from_secs(3);
        while now < until {
            now = node
                .next_deadline()
                .unwrap_or(until)
                .max(now + Duration::from_millis(1));
            node.handle(now, Input::Timeout);
            drain(&mut node, &mut metrics);
        }
        assert!(metrics.len() > before + 3, "{metrics:?}");
        assert!(
            metrics[before..]
                .iter()
                .all(|m| *m == ("refresh", Some(55))),
            "{metrics:?}"
        );
    }

    /// The kinds of the effects queued, in order.
    fn kinds(node: &mut Node) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some(e) = node.poll_effect() {
            out.push(match e {
                Effect::AddVips { .. } => "AddVips",
                Effect::RemoveVips { .. } => "RemoveVips",
                Effect::AddRoutes { routes, rules, .. } => {
                    assert_eq!((routes.len(), rules.len()), (1, 1));
                    "AddRoutes"
                }
                Effect::RemoveRoutes { .. } => "RemoveRoutes",
                _ => continue,
            });
        }
        out
    }

    fn node(routes: bool) -> Node {
        let mut cfg = model::Instance::new("VI_1", "eth0", 7);
        cfg.priority = model::Instance::OWNER_PRIORITY;
        cfg.virtual_ips = vec!["10.0.0.100/24".parse().unwrap()];
        if routes {
            cfg.virtual_routes = vec!["10.99.0.0/24 via 10.0.0.1 table 100".parse().unwrap()];
            cfg.virtual_rules = vec!["from 10.0.0.100 table 100 priority 100".parse().unwrap()];
        }
        let mut config = Config::new("n1");
        config.instances.push(cfg.clone());
        let mut node = Node::new(config);
        let now = Instant::now();
        let iface = node.add_interface("eth0", true);
        node.add_instance(now, cfg, iface, "10.0.0.1".parse().unwrap());
        node
    }

    #[test]
    fn routes_follow_the_vips_in_and_precede_them_out() {
        let mut node = node(true);
        let now = Instant::now();
        node.start(now);
        assert_eq!(kinds(&mut node), ["AddVips", "AddRoutes"]);
        node.shutdown(now);
        assert_eq!(kinds(&mut node), ["RemoveRoutes", "RemoveVips"]);
    }

    #[test]
    fn a_reload_changes_a_master_s_routes_in_place() {
        let mut node = node(true);
        let now = Instant::now();
        node.start(now);
        let _ = kinds(&mut node);
        let mut new = node.config().clone();
        let kept = new.instances[0].virtual_routes[0].clone();
        new.instances[0].virtual_routes =
            vec![kept.clone(), "10.98.0.0/24 via 10.0.0.1".parse().unwrap()];
        new.instances[0].virtual_rules.clear();
        let plan = plan_reload(node.config(), &new);
        assert_eq!(plan.reconfigure, ["VI_1"]);
        let _ = node.reload(now, new, &plan);
        let mut seen = Vec::new();
        while let Some(e) = node.poll_effect() {
            match e {
                Effect::RemoveRoutes { routes, rules, .. } => {
                    assert!(routes.is_empty());
                    assert_eq!(rules.len(), 1);
                    seen.push("RemoveRoutes");
                }
                Effect::AddRoutes { routes, rules, .. } => {
                    assert_eq!(routes.len(), 1);
                    assert_ne!(routes[0], kept);
                    assert!(rules.is_empty());
                    seen.push("AddRoutes");
                }
                Effect::AddVips { .. } | Effect::RemoveVips { .. } => seen.push("vips"),
                _ => {}
            }
        }
        assert_eq!(seen, ["RemoveRoutes", "AddRoutes"]);
    }

    #[test]
    fn no_routes_no_route_effects() {
        let mut node = node(false);
        let now = Instant::now();
        node.start(now);
        assert_eq!(kinds(&mut node), ["AddVips"]);
        node.shutdown(now);
        assert_eq!(kinds(&mut node), ["RemoveVips"]);
    }
}

#[cfg(test)]
mod dispatch_tests {
    use super::*;
    use crate::wire::vrrp::{Repr, V3Checksum, Version};

    /// Packets an instance saw, whatever their verdict.
    fn seen(s: &RxStats) -> u64 {
        s.accepted + s.dropped.values().sum::<u64>()
    }

    /// A priority-200 master's advert from 10.0.0.2 for `vrid`, carrying
    /// `address`, every `interval_cs` centiseconds.
    fn advert_from(vrid: u8, interval_cs: u16, address: &str) -> Vec<u8> {
        Repr {
            version: Version::V3,
            vrid,
            priority: 200,
            interval_cs,
            addresses: vec![address.parse().unwrap()],
            auth: None,
        }
        .to_bytes(
            "10.0.0.2".parse().unwrap(),
            GROUP4,
            V3Checksum::WithPseudoHeader,
        )
        .unwrap()
    }

    fn advert(vrid: u8) -> Vec<u8> {
        advert_from(vrid, 100, "10.0.0.100")
    }

    /// An advert with the instance's own address list (accepted).
    fn own_advert(vrid: u8, interval_cs: u16) -> Vec<u8> {
        advert_from(vrid, interval_cs, &format!("10.0.{vrid}.100"))
    }

    fn deliver_bytes(node: &mut Node, now: Instant, bytes: &[u8]) {
        node.handle(
            now,
            Input::Packet {
                iface: IfaceId(0),
                multicast_socket: true,
                src: "10.0.0.2".parse().unwrap(),
                dst: GROUP4,
                ttl: 255,
                payload: bytes,
            },
        );
    }

    fn deliver(node: &mut Node, now: Instant, vrid: u8) {
        deliver_bytes(node, now, &advert(vrid));
    }

    /// A started node with instances VI_`vrid` on eth0 for each of
    /// `vrids` (VIP 10.0.VRID.100/24, from 10.0.0.1), at `interval` when
    /// given; and its configuration.
    fn backups(
        vrids: impl IntoIterator<Item = u8>,
        interval: Option<Duration>,
        t0: Instant,
    ) -> (Config, Node) {
        let mut config = Config::new("n1");
        for vrid in vrids {
            let mut cfg = model::Instance::new(format!("VI_{vrid}"), "eth0", vrid);
            cfg.virtual_ips = vec![format!("10.0.{vrid}.100/24").parse().unwrap()];
            if let Some(iv) = interval {
                cfg.advert_interval = iv;
            }
            config.instances.push(cfg);
        }
        let mut node = Node::new(config.clone());
        let iface = node.add_interface("eth0", true);
        for cfg in &config.instances {
            node.add_instance(t0, cfg.clone(), iface, "10.0.0.1".parse().unwrap());
        }
        node.start(t0);
        (config, node)
    }

    fn by_vrid(node: &Node, vrid: u8) -> u64 {
        let slot = node.slots.iter().find(|s| s.core.vrid() == vrid).unwrap();
        seen(slot.core.stats())
    }

    /// A packet reaches the instance its VRID names, also after instances
    /// before it went away (the slot hint then points past or beside it),
    /// and a removed VRID's packet counts as unknown on the interface.
    #[test]
    fn packets_find_their_instance_after_slots_move() {
        let now = Instant::now();
        let (config, mut node) = backups([1, 2, 3], None, now);
        for vrid in [3, 1, 2, 3] {
            deliver(&mut node, now, vrid);
        }
        assert_eq!(
            [1, 2, 3].map(|v| by_vrid(&node, v)),
            [1, 1, 2],
            "each packet to its VRID"
        );
        let mut new = config.clone();
        new.instances.remove(0);
        let plan = plan_reload(node.config(), &new);
        let _ = node.reload(now, new, &plan);
        // VRID 2 moved from slot 1 to slot 0, VRID 3 from 2 to 1: the
        // hints point at the wrong instance or past the end.
        deliver(&mut node, now, 2);
        assert_eq!([2, 3].map(|v| by_vrid(&node, v)), [2, 2]);
        deliver(&mut node, now, 3);
        assert_eq!([2, 3].map(|v| by_vrid(&node, v)), [2, 3]);
        let unknown = |node: &Node| {
            node.ifaces[0]
                .unmatched4
                .dropped
                .get("unknown_vrid")
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(unknown(&node), 0);
        deliver(&mut node, now, 1);
        assert_eq!(unknown(&node), 1, "VRID 1 is gone");
        assert_eq!([2, 3].map(|v| by_vrid(&node, v)), [2, 3]);
    }

    /// Backups hearing adverts take the quick path (their actions only,
    /// the deadline moved in place), and the deadline it keeps is the one
    /// a walk over every instance finds: also when the packet reached the
    /// instance holding the earliest deadline, and at various times.
    #[test]
    fn the_quick_path_keeps_the_deadline_a_walk_finds() {
        let t0 = Instant::now();
        let (_, mut node) = backups(1..=5, None, t0);
        while node.poll_effect().is_some() {}
        assert_eq!(node.next_deadline(), node.walk_deadlines());
        let mut quick = 0;
        for (k, vrid) in [1, 2, 3, 4, 5, 1, 1, 5, 3, 2, 9, 4].into_iter().enumerate() {
            let now = t0 + Duration::from_millis(7 * k as u64 + 1);
            // The memo is known before the packet, as the loop asks for it.
            let _ = node.next_deadline();
            quick += usize::from(node.settled);
            deliver(&mut node, now, vrid);
            let memo = node.deadline_memo.get();
            assert_eq!(
                memo.unwrap_or_else(|| node.walk_deadlines()),
                node.walk_deadlines(),
                "after the advert for VRID {vrid}"
            );
        }
        assert!(quick >= 10, "the quick path was taken {quick} times");
    }

    /// 100 masters at 10 ms whose periods drifted apart (each took over at
    /// its own moment, spread over an interval) send in a few groups per
    /// interval, not on 100 wake-ups: an advert due within a twentieth of
    /// the interval goes along with the others; each keeps its period
    /// within that slack.
    #[test]
    fn masters_out_of_phase_send_their_adverts_in_groups() {
        let n = 100u8;
        let interval = Duration::from_millis(10);
        let t0 = Instant::now();
        let (_, mut node) = backups(1..=n, Some(interval), t0);
        while node.poll_effect().is_some() {}
        // Each hears a master once, at its own moment: they take over
        // out of phase when its adverts stop.
        for vrid in 1..=n {
            let at = t0 + Duration::from_micros(100 * u64::from(vrid));
            deliver_bytes(&mut node, at, &own_advert(vrid, 1));
            while node.poll_effect().is_some() {}
        }
        // Drive the timers as the loop does; from 100 ms on, count the
        // wake-ups and each instance's advert times.
        let measure_from = t0 + Duration::from_millis(100);
        let end = t0 + Duration::from_millis(300);
        let mut wakes = 0;
        let mut sent: BTreeMap<InstanceId, Vec<Instant>> = BTreeMap::new();
        while let Some(at) = node.next_deadline().filter(|d| *d < end) {
            node.handle(at, Input::Timeout);
            let mut any = false;
            while let Some(e) = node.poll_effect() {
                if let Effect::SendAdvert { instance, .. } = e {
                    any = true;
                    if at >= measure_from {
                        sent.entry(instance).or_default().push(at);
                    }
                }
            }
            wakes += usize::from(any && at >= measure_from);
        }
        assert_eq!(sent.len(), usize::from(n), "every instance is master");
        // 20 intervals: at most 21 groups each, not 100.
        assert!(wakes <= 20 * 21, "{wakes} wake-ups sent adverts in 200 ms");
        let slack = interval / 20;
        for (id, times) in &sent {
            assert!(times.len() >= 19, "{id:?}: {} adverts", times.len());
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                assert!(
                    gap + slack >= interval && gap <= interval + slack,
                    "{id:?}: adverts {gap:?} apart"
                );
            }
        }
    }

    /// 60 masters at 100 ms that took over out of phase (spread over a
    /// whole 1 s lease) refresh their leases in one group per period once
    /// the groups have merged, not on 60 wake-ups: a refresh due within
    /// half its period goes along with one that is due. None is ever late
    /// (at most a period after the one before), none comes sooner than half
    /// a period, and the count stays about one per period.
    #[test]
    fn masters_out_of_phase_refresh_their_leases_in_one_group() {
        let n = 60u8;
        let interval = Duration::from_millis(100);
        let t0 = Instant::now();
        let (_, mut node) = backups(1..=n, Some(interval), t0);
        let period = Duration::from_secs(1) / 3;
        // Each instance's last add or refresh while master, its refresh
        // count and when it became master; every refresh's time.
        let mut last: BTreeMap<InstanceId, Instant> = BTreeMap::new();
        let mut count: BTreeMap<InstanceId, (usize, Instant)> = BTreeMap::new();
        let mut wakes = std::collections::BTreeSet::new();
        let mut record = |node: &mut Node, at: Instant| {
            while let Some(e) = node.poll_effect() {
                match e {
                    Effect::AddVips { instance, .. } => {
                        last.insert(instance, at);
                        count.insert(instance, (0, at));
                    }
                    Effect::RemoveVips { instance, .. } => {
                        last.remove(&instance);
                    }
                    Effect::RefreshVips { instance, .. } => {
                        let before = last.insert(instance, at).expect("refresh while master");
                        let gap = at - before;
                        assert!(
                            gap <= period,
                            "{instance:?}: refreshed {gap:?} after the last"
                        );
                        assert!(
                            gap >= period / 2,
                            "{instance:?}: refreshed {gap:?} after the last"
                        );
                        count.get_mut(&instance).unwrap().0 += 1;
                        wakes.insert(at);
                    }
                    _ => {}
                }
            }
        };
        let mut run_until = |node: &mut Node, until: Instant| {
            while let Some(d) = node.next_deadline().filter(|d| *d < until) {
                node.handle(d, Input::Timeout);
                record(node, d);
            }
        };
        // Each hears a master once, at its own moment over a second: they
        // take over out of phase when its adverts stop.
        for vrid in 1..=n {
            let at = t0 + Duration::from_millis(1000 * u64::from(vrid) / u64::from(n));
            run_until(&mut node, at);
            deliver_bytes(&mut node, at, &own_advert(vrid, 10));
            run_until(&mut node, at);
        }
        let end = t0 + Duration::from_secs(5);
        run_until(&mut node, end);
        assert_eq!(last.len(), usize::from(n), "every instance is master");
        for (id, at) in &last {
            assert!(end - *at <= period, "{id:?}: no refresh since {at:?}");
        }
        for (id, (refreshes, since)) in &count {
            // About 3 a second: pulled early now and then while the groups
            // merge, not every time.
            let span = (end - *since).as_secs_f64();
            assert!(
                (*refreshes as f64) < span * 3.0 * 1.25,
                "{id:?}: {refreshes} refreshes in {span:.2} s"
            );
        }
        // From 2 s on, one group per period (a second one for a moment
        // while two merge, at most).
        let late = wakes
            .iter()
            .filter(|t| **t >= t0 + Duration::from_secs(2))
            .count();
        assert!(late <= 3 * 3 + 2, "{late} refresh wake-ups in the last 3 s");
    }

    /// A backup hearing its masters in turn: each advert pushes back the
    /// earliest deadline of all (its instance's master-down timer), and the
    /// quick path still knows the next earliest without a walk (the memo
    /// stays known), equal to what a walk finds, with a bounded heap.
    #[test]
    fn adverts_in_turn_keep_the_earliest_deadline_known_without_a_walk() {
        let n = 20u8;
        let t0 = Instant::now();
        let (_, mut node) = backups(1..=n, None, t0);
        while node.poll_effect().is_some() {}
        // Adverts with each instance's own address list (accepted).
        let heard = |node: &mut Node, now: Instant, vrid: u8| {
            deliver_bytes(node, now, &own_advert(vrid, 100));
        };
        // A first round: each instance learns its master.
        for vrid in 1..=n {
            heard(&mut node, t0, vrid);
            while node.poll_effect().is_some() {}
        }
        let mut known = 0;
        for round in 1..200u64 {
            for vrid in 1..=n {
                let now = t0 + Duration::from_millis(round * 1000 + u64::from(vrid) * 40);
                let _ = node.next_deadline();
                heard(&mut node, now, vrid);
                let memo = node.deadline_memo.get();
                known += usize::from(memo.is_some());
                assert_eq!(
                    memo.unwrap_or_else(|| node.walk_deadlines()),
                    node.walk_deadlines(),
                    "round {round}, VRID {vrid}"
                );
                assert!(node.deadlines.heap.len() <= 4 * usize::from(n) + 64);
            }
        }
        assert_eq!(known, 199 * usize::from(n), "a walk was needed");
        for vrid in 1..=n {
            let slot = node.slots.iter().find(|s| s.core.vrid() == vrid).unwrap();
            assert_eq!(slot.core.stats().accepted, 200, "VRID {vrid}");
        }
    }
}
