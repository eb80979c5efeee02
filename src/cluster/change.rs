//! The cluster core: the seed's config-change exchanges on top of
//! membership. Sans-IO: fed connection events, messages, local VRRP state
//! changes, operator requests and the time; drained of actions.
//!
//! Who decides what, with the channel on:
//! - Between baton peers the election is the cluster's. VRRP adverts from a
//!   live baton peer prove liveness only ([`ClusterGates`]); promotion,
//!   preemption and split-brain resolution happen here, each announced with
//!   a TAKEOVER that carries a raised epoch, make-before-break (the new
//!   master adds its VIPs before the old one removes them).
//! - Dual-path failure detection: a master that is alive on the channel is
//!   never unseated by VRRP silence; a master whose connection closed and
//!   that is silent on VRRP for one advert interval is replaced at once by
//!   the one successor the selection policy names. The others wait for its
//!   TAKEOVER, then proceed in policy order, with plain VRRP timers as the
//!   last resort.
//! - Against routers that are not baton peers (keepalived, FRR, a baton
//!   without the channel), plain RFC VRRP applies, unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::membership::{Candidate, Membership, Policy};
use super::message::{InstanceBeat, Message};
use crate::vrrp::{ClusterGates, ClusterReason, State};

/// Static settings of the core.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node: String,
    pub peers: Vec<String>,
    pub heartbeat_interval: Duration,
    pub policy: Policy,
    /// How long an operator's switchover may take before it is reported failed.
    pub switchover_timeout: Duration,
}

/// What the core knows of one local VRRP instance.
#[derive(Debug, Clone)]
pub struct LocalInstance {
    pub name: String,
    pub state: State,
    pub priority: u8,
    pub address: Option<IpAddr>,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
}

/// An effect for the IO shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAction {
    Send {
        peer: String,
        msg: Message,
    },
    Broadcast(Message),
    /// Make the local VRRP instance master now (see `Instance::take_over`).
    TakeOver {
        instance: String,
        why: ClusterReason,
        unless_heard_since: Option<Instant>,
    },
    /// Make the local VRRP instance step down (see `Instance::step_down`).
    StepDown {
        instance: String,
        why: ClusterReason,
        new_master: Option<IpAddr>,
    },
    /// New gates for the local VRRP instance.
    SetGates {
        instance: String,
        gates: ClusterGates,
    },
    /// The outcome of an operator request made on this node.
    SwitchoverDone {
        id: u64,
        result: Result<String, String>,
    },
}

#[derive(Debug, Clone, Default)]
struct Ctl {
    /// The highest takeover epoch known for the instance.
    epoch: u64,
    /// The epoch under which this node became master (while it is).
    own_epoch: u64,
    /// The node an operator pinned the instance to.
    pinned: Option<String>,
    /// The last node seen as the live master, and when it stopped being one
    /// (left the channel, went silent, or reported another state).
    last_master: Option<String>,
    master_lost_at: Option<Instant>,
    /// Our own successor takeover has been attempted for this loss.
    takeover_tried: bool,
    /// When our successor takeover is due (policy rank after the loss).
    takeover_due: Option<Instant>,
    /// When we first saw a master we take precedence over (preempt_delay).
    preempt_since: Option<Instant>,
    /// Announce our next takeover as an operator's (pinned) choice.
    announce_pinned: bool,
    gates: ClusterGates,
}

#[derive(Debug, Clone)]
struct Pending {
    instance: String,
    target: String,
    epoch_at_request: u64,
    deadline: Instant,
    /// Whom to tell the outcome: None = the local operator.
    requester: Option<String>,
}

/// The cluster core of one node.
#[derive(Debug)]
pub struct Cluster {
    cfg: ClusterConfig,
    members: Membership,
    local: BTreeMap<String, LocalInstance>,
    ctl: BTreeMap<String, Ctl>,
    pending: BTreeMap<u64, Pending>,
    next_heartbeat: Instant,
    /// The time of the latest input, for deadline arithmetic.
    last_now: Instant,
    actions: VecDeque<ClusterAction>,
    /// Stale messages ignored (epoch lower than known), for status.
    pub stale_ignored: u64,
    /// This node is stopping: it hands over and never competes again.
    leaving: bool,
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, instances: Vec<LocalInstance>, now: Instant) -> Self {
        let members = Membership::new(&cfg.peers, cfg.heartbeat_interval);
        let ctl = instances
            .iter()
            .map(|i| (i.name.clone(), Ctl::default()))
            .collect();
        Cluster {
            members,
            local: instances.into_iter().map(|i| (i.name.clone(), i)).collect(),
            ctl,
            pending: BTreeMap::new(),
            next_heartbeat: now,
            last_now: now,
            actions: VecDeque::new(),
            stale_ignored: 0,
            leaving: false,
            cfg,
        }
    }

    pub fn node(&self) -> &str {
        &self.cfg.node
    }
    pub fn members(&self) -> &Membership {
        &self.members
    }
    pub fn epoch(&self, instance: &str) -> u64 {
        self.ctl.get(instance).map_or(0, |c| c.epoch)
    }
    /// The node the instance is pinned to by an operator, if the pin holds.
    pub fn pinned(&self, now: Instant, instance: &str) -> Option<String> {
        self.effective_pin(now, instance)
    }
    /// The live master of an instance as the channel sees it.
    pub fn master(&self, now: Instant, instance: &str) -> Option<String> {
        self.current_master(now, instance).map(|c| c.node)
    }

    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        self.actions.pop_front()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d = vec![self.next_heartbeat];
        d.extend(self.members.next_lapse(self.last_now));
        d.extend(self.pending.values().map(|p| p.deadline));
        for (name, c) in &self.ctl {
            if let (Some(due), false) = (c.takeover_due, c.takeover_tried) {
                d.push(due);
            }
            if let (Some(since), Some(l)) = (c.preempt_since, self.local.get(name)) {
                d.push(since + l.preempt_delay);
            }
        }
        d.into_iter().min()
    }

    // ---- inputs -------------------------------------------------------

    pub fn connected(&mut self, now: Instant, peer: &str) {
        self.members.connected(now, peer);
        // Tell the newcomer where we stand at once.
        let hb = self.heartbeat_msg();
        self.actions.push_back(ClusterAction::Send {
            peer: peer.to_string(),
            msg: hb,
        });
        self.evaluate(now);
    }

    pub fn disconnected(&mut self, now: Instant, peer: &str) {
        self.members.disconnected(peer);
        let failed: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.target == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            self.finish(
                id,
                Err(format!("{peer} left the cluster before taking over")),
            );
        }
        self.evaluate(now);
    }

    /// The local VRRP instance changed state or priority.
    pub fn local_update(&mut self, now: Instant, instance: &str, state: State, priority: u8) {
        let Some(l) = self.local.get_mut(instance) else {
            return;
        };
        let was = l.state;
        l.state = state;
        l.priority = priority;
        if state == State::Master && was != State::Master {
            let c = self.ctl.entry(instance.to_string()).or_default();
            c.epoch += 1;
            c.own_epoch = c.epoch;
            c.master_lost_at = None;
            c.preempt_since = None;
            let pinned = std::mem::take(&mut c.announce_pinned);
            if pinned {
                c.pinned = Some(self.cfg.node.clone());
            } else if c.pinned.as_deref() != Some(self.cfg.node.as_str()) {
                c.pinned = None;
            }
            let msg = Message::Takeover {
                instance: instance.to_string(),
                node: self.cfg.node.clone(),
                epoch: c.epoch,
                pinned,
                priority,
                address: l.address,
            };
            self.actions.push_back(ClusterAction::Broadcast(msg));
            let me = self.cfg.node.clone();
            self.complete_pending(instance, &me, c_epoch(&self.ctl, instance));
        }
        if state != was {
            let hb = self.heartbeat_msg();
            self.actions.push_back(ClusterAction::Broadcast(hb));
        }
        self.evaluate(now);
    }

    pub fn handle_message(&mut self, now: Instant, peer: &str, msg: Message) {
        if !self.members.is_peer(peer) {
            return;
        }
        match msg {
            Message::Heartbeat { node, instances } => {
                if node != peer {
                    return;
                }
                for b in &instances {
                    if let Some(c) = self.ctl.get_mut(&b.name) {
                        if b.epoch > c.epoch {
                            c.epoch = b.epoch;
                            c.pinned = b.pinned.clone();
                        }
                    }
                }
                self.members.heartbeat(now, peer, instances);
            }
            Message::Takeover {
                instance,
                node,
                epoch,
                pinned,
                priority,
                address,
            } => {
                let sender = Candidate {
                    node,
                    state: State::Master,
                    priority,
                    address,
                };
                self.on_takeover(now, &instance, sender, epoch, pinned)
            }
            Message::Switchover {
                instance,
                target,
                epoch,
                ..
            } => self.on_switchover(now, &instance, &target, epoch, true),
            Message::Handoff {
                instance,
                target,
                epoch,
                pin,
                ..
            } => self.on_switchover(now, &instance, &target, epoch, pin),
            Message::SwitchoverRequest {
                instance,
                target,
                unicast,
                id,
                from,
            } => {
                if from == peer {
                    self.serve_request(
                        now,
                        &instance,
                        &target,
                        unicast,
                        id,
                        Some(peer.to_string()),
                    );
                }
            }
            Message::SwitchoverRefused { id, reason } => {
                if self.pending.get(&id).is_some_and(|p| p.requester.is_none()) {
                    self.finish(id, Err(reason));
                }
            }
            Message::ClearPin { instance, epoch } => {
                if let Some(c) = self.ctl.get_mut(&instance) {
                    if epoch > c.epoch {
                        c.epoch = epoch;
                        c.pinned = None;
                    } else {
                        self.stale_ignored += 1;
                    }
                }
            }
            // Data sync has its own core (`cluster::sync`).
            Message::SyncOffer { .. } | Message::SyncHave { .. } | Message::SyncRequest { .. } => {
                return;
            }
        }
        self.evaluate(now);
    }

    /// An operator asked, on this node, to move `instance` to `target`
    /// (`unicast`: HANDOFF to the target only). Answered later with
    /// `SwitchoverDone { id }`.
    pub fn request_switchover(
        &mut self,
        now: Instant,
        instance: &str,
        target: &str,
        unicast: bool,
        id: u64,
    ) {
        if !self.local.contains_key(instance) {
            let err = format!("no instance named {instance}");
            self.actions.push_back(ClusterAction::SwitchoverDone {
                id,
                result: Err(err),
            });
            return;
        }
        let me = self.cfg.node.clone();
        if self.local_state(instance) == Some(State::Master) {
            self.serve_request(now, instance, target, unicast, id, None);
        } else {
            match self.current_master(now, instance) {
                Some(m) => {
                    self.pending.insert(
                        id,
                        Pending {
                            instance: instance.to_string(),
                            target: target.to_string(),
                            epoch_at_request: self.epoch(instance),
                            deadline: now + self.cfg.switchover_timeout,
                            requester: None,
                        },
                    );
                    self.actions.push_back(ClusterAction::Send {
                        peer: m.node,
                        msg: Message::SwitchoverRequest {
                            instance: instance.to_string(),
                            target: target.to_string(),
                            unicast,
                            id,
                            from: me,
                        },
                    });
                }
                None => self.actions.push_back(ClusterAction::SwitchoverDone {
                    id,
                    result: Err(format!("no live master of {instance} on the channel")),
                }),
            }
        }
        self.evaluate(now);
    }

    /// `baton switchover NAME --clear`: the operator's choice ends.
    pub fn clear_pin(&mut self, now: Instant, instance: &str) -> Result<String, String> {
        let Some(c) = self.ctl.get_mut(instance) else {
            return Err(format!("no instance named {instance}"));
        };
        c.epoch += 1;
        let was = c.pinned.take();
        let msg = Message::ClearPin {
            instance: instance.to_string(),
            epoch: c.epoch,
        };
        self.actions.push_back(ClusterAction::Broadcast(msg));
        self.evaluate(now);
        Ok(match was {
            Some(n) => format!("{instance}: pin to {n} cleared; normal preemption resumes"),
            None => format!("{instance}: no pin was set"),
        })
    }

    /// A graceful stop: for every instance this node is master of, hand it
    /// to the successor the policy names (HANDOFF, not pinned). Returns the
    /// instances handed off; the caller waits for their step-down (or a
    /// timeout) before the VRRP shutdown.
    pub fn hand_off_all(&mut self, now: Instant) -> Vec<String> {
        self.leaving = true;
        let mut handed = Vec::new();
        let names: Vec<String> = self.local.keys().cloned().collect();
        for name in names {
            if self.local_state(&name) != Some(State::Master) {
                continue;
            }
            let me = self.cfg.node.clone();
            let successor = self.ranking(now, &name).into_iter().find(|n| *n != me);
            if let Some(target) = successor {
                let epoch = self.epoch(&name) + 1;
                self.actions.push_back(ClusterAction::Send {
                    peer: target.clone(),
                    msg: Message::Handoff {
                        instance: name.clone(),
                        target,
                        epoch,
                        id: 0,
                        pin: false,
                    },
                });
                handed.push(name);
            }
        }
        handed
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_heartbeat {
            let hb = self.heartbeat_msg();
            self.actions.push_back(ClusterAction::Broadcast(hb));
            self.next_heartbeat = now + self.cfg.heartbeat_interval;
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let target = self.pending[&id].target.clone();
            self.finish(
                id,
                Err(format!("timed out waiting for {target} to take over")),
            );
        }
        self.evaluate(now);
    }

    // ---- flows --------------------------------------------------------

    fn on_takeover(
        &mut self,
        _now: Instant,
        instance: &str,
        sender: Candidate,
        epoch: u64,
        pinned: bool,
    ) {
        let me = self.me_candidate(instance);
        let Some(c) = self.ctl.get_mut(instance) else {
            return;
        };
        if epoch < c.epoch {
            self.stale_ignored += 1;
            return;
        }
        // Two takeovers under one epoch (two nodes acted on the same view):
        // the one with precedence (priority, then address) wins; the other
        // steps down. A newer epoch always wins.
        let i_am_master = me.as_ref().is_some_and(|m| m.state == State::Master);
        let sender_wins = !i_am_master
            || epoch > c.own_epoch
            || me
                .as_ref()
                .is_some_and(|m| Policy::Priority.prefers(&sender, m));
        c.epoch = epoch;
        if !sender_wins {
            return;
        }
        let node = sender.node.as_str();
        c.pinned = if pinned { Some(node.to_string()) } else { None };
        c.master_lost_at = None;
        c.last_master = Some(node.to_string());
        self.complete_pending(instance, node, epoch);
        if node != self.cfg.node && i_am_master {
            let addr = sender.address.or_else(|| self.peer_address(instance, node));
            self.actions.push_back(ClusterAction::StepDown {
                instance: instance.to_string(),
                why: ClusterReason::NewerMaster,
                new_master: addr,
            });
        }
    }

    fn on_switchover(&mut self, now: Instant, instance: &str, target: &str, epoch: u64, pin: bool) {
        let Some(c) = self.ctl.get_mut(instance) else {
            return;
        };
        if epoch <= c.epoch {
            self.stale_ignored += 1;
            return;
        }
        if target != self.cfg.node {
            return;
        }
        c.announce_pinned = pin;
        let _ = now;
        self.actions.push_back(ClusterAction::TakeOver {
            instance: instance.to_string(),
            why: if pin {
                ClusterReason::Switchover
            } else {
                ClusterReason::Handoff
            },
            unless_heard_since: None,
        });
    }

    /// The master's side of a request (from a peer, or from its own operator).
    fn serve_request(
        &mut self,
        now: Instant,
        instance: &str,
        target: &str,
        unicast: bool,
        id: u64,
        requester: Option<String>,
    ) {
        let refuse = |this: &mut Self, reason: String| match &requester {
            Some(peer) => this.actions.push_back(ClusterAction::Send {
                peer: peer.clone(),
                msg: Message::SwitchoverRefused { id, reason },
            }),
            None => this.actions.push_back(ClusterAction::SwitchoverDone {
                id,
                result: Err(reason),
            }),
        };
        if self.local_state(instance) != Some(State::Master) {
            return refuse(
                self,
                format!("{} is not master of {instance}", self.cfg.node),
            );
        }
        if target == self.cfg.node {
            return refuse(self, format!("{target} is already master of {instance}"));
        }
        if !self.members.is_peer(target) {
            return refuse(self, format!("unknown node {target}"));
        }
        if !self.members.alive(now, target) {
            return refuse(self, format!("{target} is not alive on the channel"));
        }
        match self.members.beat(now, target, instance).map(|b| b.state) {
            Some(State::Backup) => {}
            Some(s) => return refuse(self, format!("{target} is {s} for {instance}, not BACKUP")),
            None => return refuse(self, format!("{target} has no instance {instance}")),
        }
        let epoch = self.epoch(instance) + 1;
        self.pending.insert(
            id,
            Pending {
                instance: instance.to_string(),
                target: target.to_string(),
                epoch_at_request: epoch - 1,
                deadline: now + self.cfg.switchover_timeout,
                requester,
            },
        );
        let (instance, target) = (instance.to_string(), target.to_string());
        if unicast {
            self.actions.push_back(ClusterAction::Send {
                peer: target.clone(),
                msg: Message::Handoff {
                    instance,
                    target,
                    epoch,
                    id,
                    pin: true,
                },
            });
        } else {
            self.actions
                .push_back(ClusterAction::Broadcast(Message::Switchover {
                    instance,
                    target,
                    epoch,
                    id,
                }));
        }
    }

    fn complete_pending(&mut self, instance: &str, node: &str, epoch: u64) {
        let done: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                p.instance == instance && p.target == node && epoch > p.epoch_at_request
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.finish(
                id,
                Ok(format!("{node} is master of {instance} (epoch {epoch})")),
            );
        }
    }

    fn finish(&mut self, id: u64, result: Result<String, String>) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        match (p.requester, result) {
            (None, result) => self
                .actions
                .push_back(ClusterAction::SwitchoverDone { id, result }),
            // A remote requester sees success in the TAKEOVER broadcast.
            (Some(_), Ok(_)) => {}
            (Some(peer), Err(reason)) => self.actions.push_back(ClusterAction::Send {
                peer,
                msg: Message::SwitchoverRefused { id, reason },
            }),
        }
    }

    // ---- derived views ------------------------------------------------

    fn local_state(&self, instance: &str) -> Option<State> {
        self.local.get(instance).map(|l| l.state)
    }

    fn peer_address(&self, instance: &str, node: &str) -> Option<IpAddr> {
        self.members
            .get(node)?
            .instances
            .get(instance)
            .and_then(|b| b.address)
    }

    fn me_candidate(&self, instance: &str) -> Option<Candidate> {
        let l = self.local.get(instance)?;
        Some(Candidate {
            node: self.cfg.node.clone(),
            state: l.state,
            priority: l.priority,
            address: l.address,
        })
    }

    /// This node and every live peer, as candidates for `instance`.
    fn candidates(&self, now: Instant, instance: &str) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self.me_candidate(instance).into_iter().collect();
        for (name, _) in self.members.peers() {
            if let Some(b) = self.members.beat(now, name, instance) {
                out.push(Candidate {
                    node: name.clone(),
                    state: b.state,
                    priority: b.priority,
                    address: b.address,
                });
            }
        }
        out
    }

    fn ranking(&self, now: Instant, instance: &str) -> Vec<String> {
        self.cfg.policy.rank(&self.candidates(now, instance))
    }

    /// The live master with the greatest (epoch, priority, address), this
    /// node included. Peers must be vouched for (heard recently).
    fn current_master(&self, now: Instant, instance: &str) -> Option<Candidate> {
        let mut best: Option<(u64, Candidate)> = None;
        let mut consider = |epoch: u64, c: Candidate| {
            let better = match &best {
                None => true,
                Some((e, b)) => epoch > *e || (epoch == *e && Policy::Priority.prefers(&c, b)),
            };
            if better {
                best = Some((epoch, c));
            }
        };
        if let Some(me) = self.me_candidate(instance) {
            if me.state == State::Master {
                consider(self.ctl.get(instance).map_or(0, |c| c.own_epoch), me);
            }
        }
        for (name, _) in self.members.peers() {
            if !self.members.vouched(now, name) {
                continue;
            }
            if let Some(b) = self.members.beat(now, name, instance) {
                if b.state == State::Master {
                    consider(
                        b.epoch,
                        Candidate {
                            node: name.clone(),
                            state: b.state,
                            priority: b.priority,
                            address: b.address,
                        },
                    );
                }
            }
        }
        best.map(|(_, c)| c)
    }

    fn effective_pin(&self, now: Instant, instance: &str) -> Option<String> {
        let pinned = self.ctl.get(instance)?.pinned.clone()?;
        let holds = if pinned == self.cfg.node {
            self.local_state(instance) != Some(State::Fault)
        } else {
            self.members
                .beat(now, &pinned, instance)
                .is_some_and(|b| b.state != State::Fault)
        };
        holds.then_some(pinned)
    }

    /// How long each successor after the first waits for the one before it.
    fn grace(&self, instance: &str) -> Duration {
        let interval = self
            .local
            .get(instance)
            .map_or(Duration::from_secs(1), |l| l.advert_interval);
        (self.cfg.heartbeat_interval * 3).max(interval * 2)
    }

    /// Re-derive everything after any input: master loss and successor
    /// takeover, preemption, split brain, and the gates of each instance.
    fn evaluate(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        let names: Vec<String> = self.local.keys().cloned().collect();
        for name in names {
            self.evaluate_instance(now, &name);
        }
    }

    fn evaluate_instance(&mut self, now: Instant, name: &str) {
        let me = self.cfg.node.clone();
        let Some(local) = self.local.get(name).cloned() else {
            return;
        };
        let master = self.current_master(now, name);
        let pin = self.effective_pin(now, name);
        let ranking = self.ranking(now, name);
        let grace = self.grace(name);
        let peer_addrs: Vec<IpAddr> = self
            .members
            .peers()
            .filter(|(n, _)| self.members.alive(now, n))
            .filter_map(|(n, _)| self.peer_address(name, n))
            .collect();
        let mut actions = Vec::new();
        let c = self.ctl.entry(name.to_string()).or_default();
        if c.pinned.is_some() && pin.is_none() {
            // The pinned node failed or faulted: the operator's choice lapses.
            c.pinned = None;
        }

        // Track the master and notice its loss.
        match &master {
            Some(m) => {
                c.last_master = Some(m.node.clone());
                c.master_lost_at = None;
                c.takeover_tried = false;
            }
            None => {
                if c.last_master.take().is_some() && c.master_lost_at.is_none() {
                    c.master_lost_at = Some(now);
                    c.takeover_tried = false;
                }
            }
        }

        // Successor takeover, in policy order.
        let mut waiting_for_successor = false;
        c.takeover_due = None;
        if let (Some(lost), None) = (c.master_lost_at, &master) {
            if local.state == State::Backup && !self.leaving {
                let rank = ranking.iter().position(|n| *n == me).unwrap_or(64);
                let interval = local.advert_interval;
                let due = lost + interval + grace * rank.min(64) as u32;
                c.takeover_due = Some(due);
                if now >= due && !c.takeover_tried {
                    c.takeover_tried = true;
                    actions.push(ClusterAction::TakeOver {
                        instance: name.to_string(),
                        why: ClusterReason::SelectedSuccessor,
                        unless_heard_since: Some(lost),
                    });
                } else if now < due {
                    waiting_for_successor = true;
                }
            }
        }

        // Preemption between baton peers.
        let mut preempt_now = false;
        let may_preempt = local.preempt && !self.leaving;
        if let (Some(m), State::Backup, true, None) = (&master, local.state, may_preempt, &pin) {
            let mine = Candidate {
                node: me.clone(),
                state: local.state,
                priority: local.priority,
                address: local.address,
            };
            // Only the best live candidate preempts: with several nodes
            // above the master, all of them taking over at once would
            // contend and leave gaps.
            let best = ranking.first().is_some_and(|n| *n == me);
            if best && self.cfg.policy.prefers(&mine, m) {
                let since = *c.preempt_since.get_or_insert(now);
                preempt_now = now >= since + local.preempt_delay;
            } else {
                c.preempt_since = None;
            }
        } else {
            c.preempt_since = None;
        }
        if preempt_now {
            c.preempt_since = None;
            actions.push(ClusterAction::TakeOver {
                instance: name.to_string(),
                why: ClusterReason::Preempt,
                unless_heard_since: None,
            });
        }

        // Split brain: another live master with precedence.
        if local.state == State::Master {
            if let Some(m) = master.as_ref().filter(|m| m.node != me) {
                actions.push(ClusterAction::StepDown {
                    instance: name.to_string(),
                    why: ClusterReason::SplitBrain,
                    new_master: m.address,
                });
            }
        }

        // Gates for the VRRP instance.
        let pinned_elsewhere = pin.as_ref().is_some_and(|p| *p != me);
        let gates = ClusterGates {
            peers: peer_addrs,
            defer_master_down: master.as_ref().is_some_and(|m| m.node != me)
                || waiting_for_successor
                || pinned_elsewhere,
        };
        if gates != c.gates {
            c.gates = gates.clone();
            actions.push(ClusterAction::SetGates {
                instance: name.to_string(),
                gates,
            });
        }
        self.actions.extend(actions);
    }

    fn heartbeat_msg(&self) -> Message {
        Message::Heartbeat {
            node: self.cfg.node.clone(),
            instances: self
                .local
                .values()
                .map(|l| {
                    let c = self.ctl.get(&l.name);
                    // A master reports the epoch it took over under (split
                    // brain compares those); others the highest they know.
                    let epoch = match (l.state, c) {
                        (State::Master, Some(c)) => c.own_epoch,
                        (_, Some(c)) => c.epoch,
                        (_, None) => 0,
                    };
                    InstanceBeat {
                        name: l.name.clone(),
                        state: l.state,
                        priority: l.priority,
                        address: l.address,
                        epoch,
                        pinned: c.and_then(|c| c.pinned.clone()),
                    }
                })
                .collect(),
        }
    }

    /// Peers for `baton status`.
    pub fn peer_views(&self, now: Instant) -> Vec<PeerView> {
        self.members
            .peers()
            .map(|(name, p)| PeerView {
                name: name.clone(),
                connected: p.connected,
                alive: self.members.alive(now, name),
                last_heard_ms: p
                    .last_heard
                    .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                instances: p.instances.values().cloned().collect(),
            })
            .collect()
    }
}

fn c_epoch(ctl: &BTreeMap<String, Ctl>, instance: &str) -> u64 {
    ctl.get(instance).map_or(0, |c| c.epoch)
}

/// A peer as `baton status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerView {
    pub name: String,
    pub connected: bool,
    pub alive: bool,
    pub last_heard_ms: Option<u64>,
    pub instances: Vec<InstanceBeat>,
}
