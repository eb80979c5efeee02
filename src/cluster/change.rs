//! The cluster core: the method's config-change exchanges on top of
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
//!   the one successor the selection policy names. A master whose process
//!   died (its kernel closed the live connection with no goodbye: see
//!   [`Cluster::died`]) is replaced by that successor without waiting for
//!   VRRP silence. The others wait for its TAKEOVER, then proceed in policy
//!   order, with plain VRRP timers as the last resort.
//! - Against routers that are not baton peers (keepalived, FRR, a baton
//!   without the channel), plain RFC VRRP applies, unchanged.
//!
//! This file owns the state ([`Cluster`]: membership, per-instance epochs,
//! pins and bookkeeping, pending operator requests), the inputs, the
//! message flows, and applying decisions (queueing [`ClusterAction`]s). The
//! per-instance decisions themselves are pure functions of a view, in
//! `cluster/decide.rs`; operator errors are [`super::error::OperatorError`].

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::decide::{self, Decision, PeerBeat, Preempt, Successor, Target, Track, View};
use super::error::OperatorError;
use super::membership::{Candidate, Membership, Policy};
use super::message::{Echo, InstanceBeat, Message};
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
    /// Route mode: no VRRP at all, the channel alone tells whether the
    /// master lives ([`crate::config::model::Mode::Route`]).
    pub route: bool,
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
        result: Result<String, OperatorError>,
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
    /// Announce our next takeover as an operator's (pinned) choice.
    announce_pinned: bool,
    /// The master as last seen, its loss, successor and preempt timing, and
    /// the gates: what one evaluation hands to the next.
    track: Track,
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
    /// Origin of the heartbeat stamps (see [`Message::Heartbeat`]).
    clock_origin: Instant,
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
            clock_origin: now,
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
        self.view(now, instance)?.pin()
    }
    /// The live master of an instance as the channel sees it.
    pub fn master(&self, now: Instant, instance: &str) -> Option<String> {
        self.current_master(now, instance).map(|c| c.node)
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        self.actions.pop_front()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d = vec![self.next_heartbeat];
        d.extend(self.members.next_lapse(self.last_now));
        d.extend(self.pending.values().map(|p| p.deadline));
        for (name, c) in &self.ctl {
            if let (Some(due), false) = (c.track.takeover_due, c.track.takeover_tried) {
                d.push(due);
            }
            if let (Some(since), Some(l)) = (c.track.preempt_since, self.local.get(name)) {
                d.push(since + l.preempt_delay);
            }
        }
        d.into_iter().min()
    }

    // ---- reload -------------------------------------------------------

    /// A reload's new settings (peers, heartbeat, selection): the peers
    /// that stay keep their state; operator requests aimed at a peer that
    /// is gone fail. Peers hear our heartbeat at once.
    pub fn reconfigure(&mut self, now: Instant, cfg: ClusterConfig) {
        self.members.set_peers(&cfg.peers, cfg.heartbeat_interval);
        let gone: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| !cfg.peers.contains(&p.target) && p.target != cfg.node)
            .map(|(id, _)| *id)
            .collect();
        self.cfg = cfg;
        for id in gone {
            let target = self.pending.get(&id).map(|p| p.target.clone());
            if let Some(target) = target {
                self.finish(id, Err(OperatorError::TargetLeft { target }));
            }
        }
        self.announce(now);
    }

    /// A reload added a local instance, or changed one in place (its
    /// state and epochs are kept). Peers hear of it at once.
    pub fn upsert_local(&mut self, now: Instant, instance: LocalInstance) {
        self.ctl.entry(instance.name.clone()).or_default();
        self.local.insert(instance.name.clone(), instance);
        self.announce(now);
    }

    /// A reload removed a local instance (after it stopped). Peers hear of
    /// it at once: their view of this node no longer has it.
    pub fn remove_local(&mut self, now: Instant, instance: &str) {
        self.local.remove(instance);
        self.ctl.remove(instance);
        self.announce(now);
    }

    /// Broadcast a heartbeat now (and evaluate).
    fn announce(&mut self, now: Instant) {
        let hb = self.heartbeat_msg(now);
        self.actions.push_back(ClusterAction::Broadcast(hb));
        self.evaluate(now);
    }

    // ---- inputs -------------------------------------------------------

    pub fn connected(&mut self, now: Instant, peer: &str) {
        self.members.connected(now, peer);
        // Tell the newcomer where we stand at once.
        let hb = self.heartbeat_msg(now);
        self.actions.push_back(ClusterAction::Send {
            peer: peer.to_string(),
            msg: hb,
        });
        self.evaluate(now);
    }

    /// The connection to `peer` closed: a goodbye came first, or we closed
    /// it (silence, an error, a reload), or it was replaced. Says nothing
    /// of the peer's process: a master lost this way is replaced only once
    /// it is silent on VRRP for an advert interval too.
    pub fn disconnected(&mut self, now: Instant, peer: &str) {
        self.members.disconnected(peer);
        self.peer_gone(now, peer);
    }

    /// The peer's kernel closed its live connection without a goodbye
    /// first: the process died (every deliberate close says goodbye). A
    /// master lost this way is replaced at once by the successor, without
    /// waiting for VRRP silence.
    pub fn died(&mut self, now: Instant, peer: &str) {
        self.members.died(peer);
        self.peer_gone(now, peer);
    }

    fn peer_gone(&mut self, now: Instant, peer: &str) {
        let failed: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.target == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            let target = peer.to_string();
            self.finish(id, Err(OperatorError::TargetLeft { target }));
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
            c.epoch = c.epoch.saturating_add(1);
            c.own_epoch = c.epoch;
            c.track.master_lost_at = None;
            c.track.lost_master = None;
            c.track.preempt_since = None;
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
            let hb = self.heartbeat_msg(now);
            self.actions.push_back(ClusterAction::Broadcast(hb));
        }
        self.evaluate(now);
    }

    pub fn handle_message(&mut self, now: Instant, peer: &str, msg: Message) {
        if !self.members.is_peer(peer) {
            return;
        }
        match msg {
            Message::Heartbeat {
                node,
                instances,
                stamp,
                echo,
            } => {
                if node != peer {
                    return;
                }
                let ours = echo
                    .iter()
                    .find(|e| e.node == self.cfg.node)
                    .map(|e| (e.stamp, e.held_us));
                let now_us = self.stamp(now);
                self.members.stamps(now, peer, stamp, ours, now_us);
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
                    self.finish(id, Err(OperatorError::Refused(reason)));
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
            Message::SyncOffer { .. }
            | Message::SyncHave { .. }
            | Message::SyncRequest { .. }
            | Message::SyncAck { .. } => {
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
            let instance = instance.to_string();
            let err = OperatorError::UnknownInstance { instance };
            self.done(id, Err(err));
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
                None => {
                    let instance = instance.to_string();
                    self.done(id, Err(OperatorError::NoMaster { instance }))
                }
            }
        }
        self.evaluate(now);
    }

    /// `baton switchover NAME --clear`: the operator's choice ends.
    pub fn clear_pin(&mut self, now: Instant, instance: &str) -> Result<String, OperatorError> {
        let Some(c) = self.ctl.get_mut(instance) else {
            let instance = instance.to_string();
            return Err(OperatorError::UnknownInstance { instance });
        };
        c.epoch = c.epoch.saturating_add(1);
        let was = c.pinned.take();
        let epoch = c.epoch;
        // A switchover asked for here and not done yet is called off: the
        // operator's later word wins, and no "done" may follow it.
        let cancelled: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.instance == instance && p.requester.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in cancelled {
            let instance = instance.to_string();
            self.finish(id, Err(OperatorError::Cancelled { instance }));
        }
        let msg = Message::ClearPin {
            instance: instance.to_string(),
            epoch,
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
            let successor = self
                .view(now, &name)
                .and_then(|v| decide::handoff_target(&v));
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
            let hb = self.heartbeat_msg(now);
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
            self.finish(id, Err(OperatorError::Timeout { target }));
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
        let i_am_master = me.as_ref().is_some_and(|m| m.state == State::Master);
        let sender_wins =
            decide::takeover_wins(me.as_ref().map(|m| (m, c.own_epoch)), &sender, epoch);
        c.epoch = epoch;
        if !sender_wins {
            return;
        }
        let node = sender.node.as_str();
        c.pinned = if pinned { Some(node.to_string()) } else { None };
        c.track.master_lost_at = None;
        c.track.lost_master = None;
        c.track.last_master = Some(node.to_string());
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
        let seen = if !self.members.is_peer(target) {
            Target::Unknown
        } else if !self.members.alive(now, target) {
            Target::Dead
        } else {
            Target::Live(self.members.beat(now, target, instance).map(|b| b.state))
        };
        let me = self.cfg.node.as_str();
        let mine = self.local_state(instance);
        if let Err(e) = decide::check_switchover(me, mine, instance, target, seen) {
            match requester {
                Some(peer) => self.actions.push_back(ClusterAction::Send {
                    peer,
                    msg: Message::SwitchoverRefused {
                        id,
                        reason: e.to_string(),
                    },
                }),
                None => self.done(id, Err(e)),
            }
            return;
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
            let ok = format!("{node} is master of {instance} (epoch {epoch})");
            self.finish(id, Ok(ok));
        }
    }

    fn finish(&mut self, id: u64, result: Result<String, OperatorError>) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        match (p.requester, result) {
            (None, result) => self.done(id, result),
            // A remote requester sees success in the TAKEOVER broadcast.
            (Some(_), Ok(_)) => {}
            (Some(peer), Err(e)) => self.actions.push_back(ClusterAction::Send {
                peer,
                msg: Message::SwitchoverRefused {
                    id,
                    reason: e.to_string(),
                },
            }),
        }
    }

    /// Tell the local operator the outcome of request `id`.
    fn done(&mut self, id: u64, result: Result<String, OperatorError>) {
        self.actions
            .push_back(ClusterAction::SwitchoverDone { id, result });
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

    /// The live peers that report `instance`, in name order.
    fn live_peers(&self, now: Instant, instance: &str) -> Vec<PeerBeat> {
        self.members
            .peers()
            .filter_map(|(name, _)| {
                let beat = self.members.beat(now, name, instance)?;
                Some(PeerBeat {
                    node: name.clone(),
                    vouched: self.members.vouched(now, name),
                    beat: beat.clone(),
                })
            })
            .collect()
    }

    /// Everything one evaluation of a local instance looks at, built here
    /// only. None if `instance` is not configured on this node.
    fn view(&self, now: Instant, instance: &str) -> Option<View> {
        let local = self.local.get(instance)?.clone();
        let c = self.ctl.get(instance);
        Some(View {
            now,
            node: self.cfg.node.clone(),
            local,
            own_epoch: c.map_or(0, |c| c.own_epoch),
            pinned: c.and_then(|c| c.pinned.clone()),
            peers: self.live_peers(now, instance),
            died: self
                .members
                .peers()
                .filter(|(name, _)| self.members.has_died(name))
                .map(|(name, _)| name.clone())
                .collect(),
            policy: self.cfg.policy.clone(),
            heartbeat_interval: self.cfg.heartbeat_interval,
            leaving: self.leaving,
            track: c.map(|c| c.track.clone()).unwrap_or_default(),
        })
    }

    /// The live master with the greatest (epoch, priority, address), this
    /// node included. Peers must be vouched for (heard recently).
    fn current_master(&self, now: Instant, instance: &str) -> Option<Candidate> {
        match self.view(now, instance) {
            Some(v) => v.master(),
            // Not configured here: the peers' word only.
            None => decide::live_master(None, &self.live_peers(now, instance)),
        }
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

    /// Build the view, decide, apply.
    fn evaluate_instance(&mut self, now: Instant, name: &str) {
        let Some(view) = self.view(now, name) else {
            return;
        };
        let decision = decide::decide(&view);
        self.apply(name, decision);
    }

    /// Record a decision and queue its actions.
    fn apply(&mut self, name: &str, d: Decision) {
        let instance = || name.to_string();
        let c = self.ctl.entry(instance()).or_default();
        if d.pin_lapsed {
            // The pinned node failed or faulted: the operator's choice lapses.
            c.pinned = None;
        }
        if let Successor::TakeOver { lost, died, .. } = d.successor {
            // A dead master sends nothing more: an advert it sent before it
            // died, read after its connection closed, must not cancel this.
            self.actions.push_back(ClusterAction::TakeOver {
                instance: instance(),
                why: ClusterReason::SelectedSuccessor,
                unless_heard_since: (!died).then_some(lost),
            });
        }
        if d.preempt == Preempt::Now {
            self.actions.push_back(ClusterAction::TakeOver {
                instance: instance(),
                why: ClusterReason::Preempt,
                unless_heard_since: None,
            });
        }
        if let Some(s) = d.step_down {
            self.actions.push_back(ClusterAction::StepDown {
                instance: instance(),
                why: ClusterReason::SplitBrain,
                new_master: s.new_master,
            });
        }
        if d.track.gates != c.track.gates {
            self.actions.push_back(ClusterAction::SetGates {
                instance: instance(),
                gates: d.track.gates.clone(),
            });
        }
        c.track = d.track;
    }

    /// Our heartbeat clock: microseconds since this core started.
    fn stamp(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.clock_origin).as_micros() as u64
    }

    fn heartbeat_msg(&self, now: Instant) -> Message {
        Message::Heartbeat {
            stamp: Some(self.stamp(now)),
            echo: self
                .members
                .peers()
                .filter(|(_, p)| p.connected)
                .filter_map(|(name, p)| {
                    let (stamp, heard) = p.stamp?;
                    Some(Echo {
                        node: name.clone(),
                        stamp,
                        held_us: now.saturating_duration_since(heard).as_micros() as u64,
                    })
                })
                .collect(),
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
                heartbeats: p.heartbeats,
                rtt_us: p.rtt.map(|d| d.as_micros() as u64),
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
    /// Heartbeats received from the peer since this node started.
    #[serde(default)]
    pub heartbeats: u64,
    /// The last round-trip time measured with the peer (None: not yet, or
    /// an older peer that does not echo stamps).
    #[serde(default)]
    pub rtt_us: Option<u64>,
}
