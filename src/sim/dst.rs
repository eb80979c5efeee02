//! Deterministic simulation testing of whole clusters, in the spirit of
//! FoundationDB's simulator and TigerBeetle's VOPR: one seed picks a
//! cluster (2-5 nodes, 1-3 instances, advert interval, cluster channel or
//! plain VRRP, data sync, unicast, a sync group) and a schedule of faults
//! and operator actions (crash, restart, graceful stop, freeze/thaw, link
//! down/up, symmetric and one-way partitions, link delay, VRRP-only and
//! channel-only loss, duplication and reordering, reloads (unchanged, or
//! with a new priority), health-check failures, switchovers, clears,
//! synced-file writes). The invariants are
//! checked after every simulation step; then every fault is healed and the
//! cluster must settle.
//!
//! Invariants (bounds in terms of the cluster's own timers):
//! - **settled**: after healing, within [`Plan::settle_bound`], exactly one
//!   node holds each instance's VIPs, it is the only MASTER, and with the
//!   channel every node names it as the master; sync-group members agree;
//! - **never zero holders for long**: while a healthy node (running, not
//!   frozen, link up, health check passing) exists for an instance, some
//!   healthy node holds its VIPs again within [`Plan::gap_bound`];
//! - **epochs never go backwards** on a node (within one process life);
//! - **no committed sync version is lost or rolled back**: a node's
//!   committed version never decreases, and after healing every node holds
//!   at least the newest version ever committed, with the same bytes;
//! - **a switchover the CLI reported done is what holds**: when the
//!   requester hears "done", the named node is MASTER and holds the VIPs.
//!
//! A failing seed is replayed with
//! `BATON_SIM_SEED=<seed> cargo test --test sim_dst -- --nocapture replay`,
//! which prints the plan, every action and, on failure, each node's state;
//! `BATON_SIM_VERBOSE=1` adds every advert, channel message and state
//! change.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::{ChannelFaults, NodeId, Rng, Sim};
use crate::cluster::{Policy, SyncVersion};
use crate::config::model::{Config, SyncGroup};
use crate::vrrp::timers::master_down_interval;
use crate::vrrp::State;
use crate::wire::vrrp::Version;

/// What one seed simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    pub nodes: usize,
    pub instances: usize,
    pub advert_interval: Duration,
    pub heartbeat: Duration,
    /// The cluster channel (else plain VRRP).
    pub cluster: bool,
    /// Data sync of one file (needs the cluster channel).
    pub sync: bool,
    /// Unicast adverts to the other nodes instead of multicast.
    pub unicast: bool,
    /// The first two instances form a sync group.
    pub sync_group: bool,
    /// IPv6 VIPs (link-local advert sources) instead of IPv4.
    pub ipv6: bool,
    /// The order selection policy (else priority).
    pub order_policy: bool,
    /// How many actions the schedule has.
    pub actions: usize,
}

impl Plan {
    /// The plan seed `seed` stands for.
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = Rng::new(seed ^ 0x5eed_0fba_7000);
        let nodes = 2 + rng.below(4) as usize;
        let cluster = rng.below(3) != 0;
        let advert_interval = [
            Duration::from_millis(100),
            Duration::from_millis(100),
            Duration::from_millis(300),
            Duration::from_secs(1),
        ][rng.below(4) as usize];
        let instances = 1 + rng.below(3) as usize;
        Plan {
            seed,
            nodes,
            instances,
            advert_interval,
            heartbeat: Duration::from_millis([50, 100, 100][rng.below(3) as usize]),
            cluster,
            sync: cluster && rng.below(2) == 0,
            unicast: rng.below(4) == 0,
            sync_group: instances >= 2 && rng.below(2) == 0,
            ipv6: rng.below(5) == 0,
            order_policy: cluster && rng.below(4) == 0,
            actions: 8 + rng.below(17) as usize,
        }
    }

    /// The longest master-down interval of any instance (lowest priority).
    fn master_down(&self) -> Duration {
        master_down_interval(Version::V3, 1, self.advert_interval)
    }

    /// How long, after every fault is healed, the cluster may take to
    /// settle: a master-down interval for VRRP, plus the channel's
    /// reconnect backoff and a few heartbeats to agree, plus slack for the
    /// preemption and GARP timers of one more round.
    pub fn settle_bound(&self) -> Duration {
        self.master_down() * 2 + self.heartbeat * 6 + Duration::from_millis(500)
    }

    /// The longest a healthy node may go without anyone holding the VIPs:
    /// a master-down interval (VRRP silence) plus the channel's idle
    /// timeout (a frozen master is still connected until then) plus one
    /// advert interval and a few heartbeats of slack for the successor's
    /// turn.
    pub fn gap_bound(&self) -> Duration {
        self.master_down() + self.heartbeat * 6 + self.advert_interval * 2
    }
}

impl Plan {
    /// How long after the cluster settled every node may take to hold the
    /// newest committed version: the sync core's settle timeout on a
    /// takeover plus two retry intervals (a request lost to a connection
    /// that closed is asked again after one).
    pub fn sync_bound(&self) -> Duration {
        let d = crate::cluster::SyncConfig::new("", Vec::new(), Vec::new());
        d.settle_timeout + d.retry_interval * 2 + self.heartbeat * 4
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} nodes, {} instance(s), adverts {:?}, {}{}{}{}{}{}, {} actions",
            self.seed,
            self.nodes,
            self.instances,
            self.advert_interval,
            if self.cluster {
                format!("channel (heartbeat {:?})", self.heartbeat)
            } else {
                "plain VRRP".to_string()
            },
            if self.sync { ", data sync" } else { "" },
            if self.unicast { ", unicast" } else { "" },
            if self.sync_group { ", sync group" } else { "" },
            if self.ipv6 { ", IPv6" } else { "" },
            if self.order_policy {
                ", order policy"
            } else {
                ""
            },
            self.actions
        )
    }
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Crash(NodeId),
    Restart(NodeId),
    /// A graceful stop (handover with the channel, then priority 0).
    Stop(NodeId),
    Freeze(NodeId),
    Thaw(NodeId),
    LinkDown(NodeId),
    LinkUp(NodeId),
    /// These nodes on one side, the rest on the other.
    Partition(Vec<NodeId>),
    /// Nothing from the first reaches the second.
    OneWay(NodeId, NodeId),
    Heal,
    VrrpLoss(u32),
    ChannelFaults {
        loss: u32,
        duplicate: u32,
        reorder: u32,
    },
    /// Reload with a new base priority for one instance.
    Priority(NodeId, usize, u8),
    /// Reload with the same configuration (nothing may move).
    Reload(NodeId),
    /// Extra one-way delay on everything a node sends and receives.
    Delay(NodeId, Duration),
    /// An instance's health check fails (true) or passes again.
    Health(NodeId, usize, bool),
    Switchover {
        on: NodeId,
        instance: usize,
        to: NodeId,
        unicast: bool,
    },
    Clear(NodeId, usize),
    /// An operator writes the synced file where the VIP is: on each node
    /// that is master of the sync instance (two of them in a split brain).
    Write(u32),
    /// Let time pass.
    Wait(Duration),
}

/// What one seed did and found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub violations: Vec<String>,
    /// Every action, with its virtual time.
    pub trace: Vec<String>,
    /// Virtual time simulated.
    pub simulated: Duration,
    /// Inputs handed to node cores.
    pub steps: u64,
}

impl Outcome {
    /// Node-time simulated (nodes x virtual time).
    pub fn node_time(&self) -> Duration {
        self.simulated * self.plan.nodes as u32
    }
}

const FILE: &str = "cfg";

/// A seed needs a few thousand node inputs; a hundred times that is a
/// storm (nodes answering each other without end), reported as such.
const MAX_STEPS: u64 = 1_000_000;

fn instance_name(i: usize) -> String {
    format!("VI_{}", i + 1)
}

fn vip(plan: &Plan, i: usize) -> IpAddr {
    if plan.ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100 + i as u16))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 100 + i as u8))
    }
}

fn node_addr(plan: &Plan, n: NodeId) -> IpAddr {
    let host = n as u16 + 1;
    if plan.ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, host))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host as u8))
    }
}

/// Build the simulation for `plan` (not started).
pub fn build(plan: &Plan) -> Sim {
    let mut sim = Sim::new(plan.seed);
    let mut rng = Rng::new(plan.seed ^ 0xc0f1_6000);
    for n in 0..plan.nodes {
        let mut config = Config::new(format!("n{n}"));
        let mut first_priority = 0;
        for i in 0..plan.instances {
            let mut priority = 50 + rng.below(200) as u8;
            // Sync-group members share a priority on each node, as
            // keepalived's documentation asks (members that disagree on
            // who should be master fight each other).
            if i == 0 {
                first_priority = priority;
            } else if i == 1 && plan.sync_group {
                priority = first_priority;
            }
            let mut inst =
                super::instance(&instance_name(i), 10 + i as u8, priority, &[vip(plan, i)]);
            inst.advert_interval = plan.advert_interval;
            if plan.unicast {
                inst.unicast_peers = (0..plan.nodes)
                    .filter(|&p| p != n)
                    .map(|p| node_addr(plan, p))
                    .collect();
            }
            config.instances.push(inst);
        }
        if plan.sync_group {
            config.sync_groups.push(SyncGroup {
                name: "G1".into(),
                instances: vec![instance_name(0), instance_name(1)],
                ..Default::default()
            });
        }
        sim.add_node_config(&format!("n{n}"), n as u8 + 1, config);
    }
    if plan.cluster {
        let policy = if plan.order_policy {
            let mut order: Vec<String> = (0..plan.nodes).map(|n| format!("n{n}")).collect();
            order.reverse();
            Policy::Order(order)
        } else {
            Policy::Priority
        };
        sim.enable_cluster(plan.heartbeat, policy);
        if plan.sync {
            sim.enable_sync(&instance_name(0), &[(FILE, 1 << 20)]);
        }
    }
    sim
}

/// The world as the schedule left it: what the runner must heal.
#[derive(Debug, Clone)]
struct World {
    crashed: Vec<bool>,
    frozen: Vec<bool>,
    link_down: Vec<bool>,
    sick: Vec<Vec<bool>>,
    /// Process lives, to tell a restart from a node going backwards.
    life: Vec<u64>,
    sync_group: bool,
}

impl World {
    fn new(plan: &Plan) -> World {
        World {
            crashed: vec![false; plan.nodes],
            frozen: vec![false; plan.nodes],
            link_down: vec![false; plan.nodes],
            sick: vec![vec![false; plan.instances]; plan.nodes],
            life: vec![0; plan.nodes],
            sync_group: plan.sync_group,
        }
    }

    /// Running, not frozen, link up, the instance's health check passing
    /// (and, in a sync group, every member's: one member's fault faults
    /// the group).
    fn healthy(&self, n: NodeId, inst: usize) -> bool {
        let sick = if self.sync_group && inst < 2 {
            self.sick[n][0] || self.sick[n][1]
        } else {
            self.sick[n][inst]
        };
        !self.crashed[n] && !self.frozen[n] && !self.link_down[n] && !sick
    }
}

/// Pick the next action (biased towards faults that a real network has).
fn pick(rng: &mut Rng, plan: &Plan, world: &World, version: &mut u32) -> Action {
    let n = rng.below(plan.nodes as u64) as NodeId;
    let inst = rng.below(plan.instances as u64) as usize;
    loop {
        let a = match rng.below(19) {
            0 | 1 if world.crashed[n] => Action::Restart(n),
            0 => Action::Crash(n),
            1 => Action::Stop(n),
            2 if world.frozen[n] => Action::Thaw(n),
            2 => Action::Freeze(n),
            3 if world.link_down[n] => Action::LinkUp(n),
            3 => Action::LinkDown(n),
            4 => {
                let mut side: Vec<NodeId> = (0..plan.nodes).filter(|_| rng.below(2) == 0).collect();
                if side.is_empty() {
                    side.push(n);
                }
                Action::Partition(side)
            }
            5 => {
                let to = (n + 1 + rng.below(plan.nodes as u64 - 1) as usize) % plan.nodes;
                Action::OneWay(n, to)
            }
            6 => Action::Heal,
            7 => Action::VrrpLoss([0, 5, 20, 50][rng.below(4) as usize]),
            8 if plan.cluster => Action::ChannelFaults {
                loss: [0, 2, 10][rng.below(3) as usize],
                duplicate: [0, 5][rng.below(2) as usize],
                reorder: [0, 10][rng.below(2) as usize],
            },
            9 => Action::Priority(n, inst, 50 + rng.below(200) as u8),
            10 => Action::Health(n, inst, !world.sick[n][inst]),
            11 | 12 if plan.cluster => Action::Switchover {
                on: n,
                instance: inst,
                to: rng.below(plan.nodes as u64) as NodeId,
                unicast: rng.below(2) == 0,
            },
            13 if plan.cluster => Action::Clear(n, inst),
            14 | 15 if plan.sync => {
                *version += 1;
                Action::Write(*version)
            }
            16 => Action::Wait(Duration::from_millis(100 + rng.below(3000))),
            17 => Action::Reload(n),
            18 => Action::Delay(
                n,
                Duration::from_millis([0, 1, 20, 50][rng.below(4) as usize]),
            ),
            _ => continue,
        };
        return a;
    }
}

/// The invariants, checked after every step.
struct Checker {
    plan: Plan,
    violations: Vec<String>,
    /// Per (node, life, instance): the highest epoch seen.
    epochs: BTreeMap<(NodeId, u64, usize), u64>,
    /// Per instance: since when no healthy node holds it although a
    /// healthy node exists (None while held or nobody healthy).
    gap_since: Vec<Option<Instant>>,
    /// Per node: the highest committed version seen.
    committed: Vec<Option<SyncVersion>>,
    /// The newest version ever committed anywhere, and its bytes.
    newest_committed: Option<(SyncVersion, Vec<u8>)>,
    /// Switchovers waiting for their answer: (node, request, instance, target).
    pending: Vec<(NodeId, u64, usize, NodeId)>,
    world: World,
}

impl Checker {
    fn new(plan: &Plan) -> Checker {
        Checker {
            plan: plan.clone(),
            violations: Vec::new(),
            epochs: BTreeMap::new(),
            gap_since: vec![None; plan.instances],
            committed: vec![None; plan.nodes],
            newest_committed: None,
            pending: Vec::new(),
            world: World::new(plan),
        }
    }

    fn violation(&mut self, sim: &Sim, what: String) {
        if self.violations.len() < 20 {
            self.violations
                .push(format!("at {:?}: {what}", sim.elapsed()));
        }
    }

    fn check(&mut self, sim: &Sim) {
        let plan = self.plan.clone();
        for inst in 0..plan.instances {
            // Never zero holders for long while someone healthy could hold.
            let healthy: Vec<NodeId> = (0..plan.nodes)
                .filter(|&n| self.world.healthy(n, inst))
                .collect();
            let held = sim
                .vip_holders(inst)
                .into_iter()
                .any(|n| healthy.contains(&n));
            if held || healthy.is_empty() {
                self.gap_since[inst] = None;
            } else {
                let since = *self.gap_since[inst].get_or_insert(sim.now());
                if sim.now() - since > plan.gap_bound() {
                    self.violation(
                        sim,
                        format!(
                            "{}: no healthy holder for {:?} (bound {:?}) though {healthy:?} are healthy",
                            instance_name(inst),
                            sim.now() - since,
                            plan.gap_bound()
                        ),
                    );
                    self.gap_since[inst] = Some(sim.now());
                }
            }
            // Epochs never go backwards within a process life.
            for n in 0..plan.nodes {
                let Some(c) = sim.cluster(n) else {
                    continue;
                };
                let epoch = c.epoch(&instance_name(inst));
                let key = (n, self.world.life[n], inst);
                let seen = self.epochs.entry(key).or_insert(0);
                if epoch < *seen {
                    let was = *seen;
                    self.violation(
                        sim,
                        format!(
                            "n{n} {}: epoch went back from {was} to {epoch}",
                            instance_name(inst)
                        ),
                    );
                }
                let seen = self.epochs.entry(key).or_insert(0);
                *seen = (*seen).max(epoch);
            }
        }
        // Committed sync versions never go back, and the newest is kept.
        if plan.sync {
            for n in 0..plan.nodes {
                let Some(v) = sim.sync(n).and_then(|s| s.committed(FILE)) else {
                    continue;
                };
                if self.committed[n].is_some_and(|c| v < c) {
                    let was = self.committed[n];
                    self.violation(
                        sim,
                        format!("n{n}: committed version went back from {was:?} to {v}"),
                    );
                }
                self.committed[n] = Some(v.max(self.committed[n].unwrap_or(v)));
                let newer = self.newest_committed.as_ref().is_none_or(|(c, _)| v > *c);
                // The bytes of a committed version: the control node's file
                // while its held version is the committed one (a control
                // node's own edit becomes a new version at once).
                let control = sim.sync(n).is_some_and(|s| s.is_control());
                if newer && control && sim.sync(n).and_then(|s| s.version(FILE)) == Some(v) {
                    if let Some(bytes) = sim.file(n, FILE) {
                        self.newest_committed = Some((v, bytes.to_vec()));
                    }
                }
            }
        }
        // A switchover reported done is what holds at that moment.
        let mut still = Vec::new();
        for (on, rid, inst, to) in std::mem::take(&mut self.pending) {
            match sim.switchover_result(on, rid) {
                None => still.push((on, rid, inst, to)),
                Some(Err(_)) => {}
                Some(Ok(m)) => {
                    let master = sim.state(to, inst) == Some(State::Master);
                    let holds = sim.vip_holders(inst).contains(&to);
                    if !(master && holds) {
                        self.violation(
                            sim,
                            format!(
                                "switchover of {} to n{to} reported done ({m}) but n{to} is {:?}, holders {:?}",
                                instance_name(inst),
                                sim.state(to, inst),
                                sim.vip_holders(inst)
                            ),
                        );
                    }
                }
            }
        }
        self.pending = still;
    }

    /// After healing and settling: one holder each, agreement.
    fn check_settled(&mut self, sim: &Sim) {
        let plan = self.plan.clone();
        for inst in 0..plan.instances {
            let name = instance_name(inst);
            let holders = sim.vip_holders(inst);
            let masters = sim.masters(inst);
            if holders.len() != 1 || masters != holders {
                self.violation(
                    sim,
                    format!("{name} did not settle: holders {holders:?}, masters {masters:?}"),
                );
                continue;
            }
            if plan.cluster {
                let now = sim.now();
                let want = sim.node_name(holders[0]).to_string();
                for n in 0..plan.nodes {
                    let seen = sim.cluster(n).and_then(|c| c.master(now, &name));
                    if seen.as_deref() != Some(want.as_str()) {
                        self.violation(
                            sim,
                            format!("n{n} names {seen:?} as master of {name}, not {want}"),
                        );
                    }
                }
            }
        }
        if plan.sync_group {
            for n in 0..plan.nodes {
                let (a, b) = (sim.state(n, 0), sim.state(n, 1));
                if a != b {
                    self.violation(sim, format!("n{n}: sync group members in {a:?} and {b:?}"));
                }
            }
        }
    }

    /// After healing and the data-sync bound: nothing committed is lost.
    fn check_synced(&mut self, sim: &Sim) {
        let plan = self.plan.clone();
        if let (true, Some((v, bytes))) = (plan.sync, self.newest_committed.clone()) {
            for n in 0..plan.nodes {
                let held = sim.sync(n).and_then(|s| s.version(FILE));
                if held.is_none_or(|h| h < v) {
                    self.violation(
                        sim,
                        format!("n{n} holds {held:?}, older than the committed {v}"),
                    );
                } else if held == Some(v) && sim.file(n, FILE) != Some(&bytes[..]) {
                    self.violation(sim, format!("n{n}: the bytes of committed {v} differ"));
                }
            }
        }
    }
}

/// Run seed `seed`: build, start, settle, play the schedule with checks
/// after every step, heal, settle, check. `trace` prints as it goes.
pub fn run_seed(seed: u64, trace: bool) -> Outcome {
    let plan = Plan::from_seed(seed);
    let mut sim = build(&plan);
    sim.set_verbose(trace && std::env::var_os("BATON_SIM_VERBOSE").is_some());
    sim.set_max_steps(MAX_STEPS);
    let mut rng = Rng::new(seed ^ 0xac71_0000);
    let mut log = Vec::new();
    let mut note = |sim: &Sim, line: String| {
        let line = format!("{:>9.3?} {line}", sim.elapsed());
        if trace {
            println!("{line}");
        }
        log.push(line);
    };
    note(&sim, plan.to_string());
    let mut checker = Checker::new(&plan);
    sim.start_all();
    sim.run_for(plan.settle_bound());
    checker.check_settled(&sim);
    let mut version = 0u32;
    for _ in 0..plan.actions {
        let action = pick(&mut rng, &plan, &checker.world, &mut version);
        note(&sim, format!("{action:?}"));
        apply(&mut sim, &mut checker, &action);
        let pause = Duration::from_millis(rng.below(plan.advert_interval.as_millis() as u64 * 8));
        sim.run_checking(pause, |s| checker.check(s));
    }
    // Heal everything, then the cluster must settle.
    note(&sim, "heal everything".into());
    sim.heal();
    sim.set_loss(0.0);
    sim.set_channel_faults(ChannelFaults::default());
    for n in 0..plan.nodes {
        sim.set_link_delay(n, Duration::ZERO);
        apply(&mut sim, &mut checker, &Action::Thaw(n));
        apply(&mut sim, &mut checker, &Action::LinkUp(n));
        for i in 0..plan.instances {
            if checker.world.sick[n][i] {
                apply(&mut sim, &mut checker, &Action::Health(n, i, false));
            }
        }
        if checker.world.crashed[n] {
            apply(&mut sim, &mut checker, &Action::Restart(n));
        }
    }
    sim.run_checking(plan.settle_bound(), |s| checker.check(s));
    checker.check_settled(&sim);
    if plan.sync {
        sim.run_checking(plan.sync_bound(), |s| checker.check(s));
        checker.check_synced(&sim);
    }
    if sim.exhausted() {
        let what = format!("more than {MAX_STEPS} node inputs: a message storm");
        checker.violation(&sim, what);
    }
    for v in &checker.violations {
        note(&sim, format!("VIOLATION {v}"));
    }
    if !checker.violations.is_empty() {
        for n in 0..plan.nodes {
            let line = describe(&sim, &plan, n);
            note(&sim, line);
        }
    }
    Outcome {
        plan,
        violations: checker.violations,
        trace: log,
        simulated: sim.elapsed(),
        steps: sim.steps(),
    }
}

fn apply(sim: &mut Sim, checker: &mut Checker, action: &Action) {
    let w = &mut checker.world;
    match *action {
        Action::Crash(n) => {
            sim.crash(n);
            w.crashed[n] = true;
            w.frozen[n] = false;
        }
        Action::Restart(n) => {
            w.life[n] += 1;
            w.crashed[n] = false;
            checker.committed[n] = None;
            sim.start(n);
            // A restarted process starts with every check passing.
            for i in 0..w.sick[n].len() {
                w.sick[n][i] = false;
            }
        }
        Action::Stop(n) => {
            sim.begin_handoff(n);
            sim.run_checking(Duration::from_millis(500), |s| checker.check(s));
            sim.stop(n);
            checker.world.crashed[n] = true;
            checker.world.frozen[n] = false;
        }
        Action::Freeze(n) => {
            sim.freeze(n);
            w.frozen[n] = sim.is_frozen(n);
        }
        Action::Thaw(n) => {
            sim.thaw(n);
            w.frozen[n] = false;
        }
        Action::LinkDown(n) => {
            sim.set_link(n, false);
            w.link_down[n] = true;
        }
        Action::LinkUp(n) => {
            sim.set_link(n, true);
            w.link_down[n] = false;
        }
        Action::Partition(ref side) => {
            let rest: Vec<NodeId> = (0..sim.nodes()).filter(|n| !side.contains(n)).collect();
            sim.partition(&[&rest, side]);
        }
        Action::OneWay(a, b) => sim.block(a, b),
        Action::Heal => sim.heal(),
        Action::VrrpLoss(p) => sim.set_loss(f64::from(p)),
        Action::ChannelFaults {
            loss,
            duplicate,
            reorder,
        } => sim.set_channel_faults(ChannelFaults {
            loss: f64::from(loss),
            duplicate: f64::from(duplicate),
            reorder: f64::from(reorder),
            reorder_window: Duration::from_millis(20),
        }),
        Action::Reload(n) => {
            let same = sim.effective_config(n);
            sim.reload(n, same);
        }
        Action::Delay(n, d) => sim.set_link_delay(n, d),
        Action::Priority(n, i, p) => {
            // Sync-group members keep sharing their priority.
            let members: &[usize] = if checker.plan.sync_group && i < 2 {
                &[0, 1]
            } else {
                &[i]
            };
            for &m in members {
                sim.set_priority(n, m, p);
            }
        }
        Action::Health(n, i, sick) => {
            if sim.is_up(n) {
                sim.set_fault(n, i, sick);
                w.sick[n][i] = sick;
            }
        }
        Action::Switchover {
            on,
            instance,
            to,
            unicast,
        } => {
            if sim.is_up(on) && !sim.is_frozen(on) {
                let target = sim.node_name(to).to_string();
                let rid = sim.switchover(on, &instance_name(instance), &target, unicast);
                checker.pending.push((on, rid, instance, to));
            }
        }
        Action::Clear(n, i) => {
            if sim.is_up(n) && !sim.is_frozen(n) {
                let _ = sim.clear_pin(n, &instance_name(i));
            }
        }
        Action::Write(v) => {
            for n in sim.masters(0) {
                if sim.is_up(n) && !sim.is_frozen(n) {
                    let content = format!("version {v} written on n{n}\n");
                    sim.edit_file(n, FILE, content.as_bytes());
                }
            }
        }
        Action::Wait(d) => sim.run_checking(d, |s| checker.check(s)),
    }
}

/// One node's state, for a failing seed's trace.
fn describe(sim: &Sim, plan: &Plan, n: NodeId) -> String {
    let now = sim.now();
    let mut out = format!("n{n}:");
    for i in 0..plan.instances {
        let name = instance_name(i);
        let epoch = sim.cluster(n).map(|c| c.epoch(&name));
        let master = sim.cluster(n).and_then(|c| c.master(now, &name));
        out += &format!(
            " {name} {:?} epoch {epoch:?} master {master:?};",
            sim.state(n, i)
        );
    }
    if plan.sync {
        let s = sim.sync(n);
        out += &format!(
            " sync held {:?} committed {:?} control {:?} conflicts {}",
            s.and_then(|s| s.version(FILE)),
            s.and_then(|s| s.committed(FILE)),
            s.map(|s| s.is_control()),
            sim.conflicts(n).len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(plan: &Plan) -> Checker {
        Checker::new(plan)
    }

    fn plan() -> Plan {
        Plan {
            seed: 1,
            nodes: 2,
            instances: 1,
            advert_interval: Duration::from_millis(100),
            heartbeat: Duration::from_millis(100),
            cluster: true,
            sync: false,
            unicast: false,
            sync_group: false,
            ipv6: false,
            order_policy: false,
            actions: 0,
        }
    }

    #[test]
    fn a_healthy_node_left_without_the_vips_is_caught() {
        let plan = plan();
        let mut sim = build(&plan);
        let mut c = checker(&plan);
        sim.start_all();
        sim.run_for(plan.settle_bound());
        c.check_settled(&sim);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        // Both processes die, but the checker is told node 0 is healthy:
        // nobody holds the VIPs while a healthy node exists.
        sim.crash(0);
        sim.crash(1);
        sim.run_checking(plan.gap_bound() * 2, |s| c.check(s));
        assert!(
            c.violations.iter().any(|v| v.contains("no healthy holder")),
            "{:?}",
            c.violations
        );
        c.check_settled(&sim);
        assert!(c.violations.iter().any(|v| v.contains("did not settle")));
    }

    #[test]
    fn a_switchover_reported_done_that_does_not_hold_is_caught() {
        let plan = plan();
        let mut sim = build(&plan);
        let mut c = checker(&plan);
        sim.start_all();
        sim.run_for(plan.settle_bound());
        let master = sim.masters(0)[0];
        let other = 1 - master;
        let rid = sim.switchover(master, "VI_1", &format!("n{other}"), false);
        sim.run_for(Duration::from_secs(1));
        assert!(sim
            .switchover_result(master, rid)
            .is_some_and(|r| r.is_ok()));
        // Claim the request named the old master: the check must object.
        c.pending.push((master, rid, 0, master));
        c.check(&sim);
        assert!(
            c.violations.iter().any(|v| v.contains("reported done")),
            "{:?}",
            c.violations
        );
    }

    #[test]
    fn a_message_storm_ends_the_run_and_is_reported() {
        let plan = plan();
        let mut sim = build(&plan);
        sim.set_max_steps(10);
        sim.start_all();
        sim.run_for(Duration::from_secs(5));
        assert!(sim.exhausted());
        assert!(
            sim.elapsed() >= Duration::from_secs(5),
            "the run still ends"
        );
    }

    #[test]
    fn plans_cover_every_option() {
        let plans: Vec<Plan> = (0..500).map(Plan::from_seed).collect();
        for (what, hit) in [
            ("2 nodes", plans.iter().any(|p| p.nodes == 2)),
            ("5 nodes", plans.iter().any(|p| p.nodes == 5)),
            ("3 instances", plans.iter().any(|p| p.instances == 3)),
            ("plain VRRP", plans.iter().any(|p| !p.cluster)),
            ("sync", plans.iter().any(|p| p.sync)),
            ("unicast", plans.iter().any(|p| p.unicast)),
            ("sync group", plans.iter().any(|p| p.sync_group)),
            ("IPv6", plans.iter().any(|p| p.ipv6)),
            ("order", plans.iter().any(|p| p.order_policy)),
        ] {
            assert!(hit, "no plan with {what}");
        }
    }
}
