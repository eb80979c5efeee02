//! The cluster core's decisions, as pure functions of a [`View`].
//!
//! `change.rs` gathers everything one evaluation of an instance looks at
//! into a plain [`View`] (this node's instance, the live peers' beats, the
//! recorded epoch and pin, the bookkeeping of the previous evaluation),
//! calls [`decide`], and applies the [`Decision`]: it queues the actions and
//! stores the new [`Track`]. Each step here decides one thing and returns a
//! value; nothing mutates, nothing queues, nothing reads a clock:
//!
//! - [`View::master`]: who the live master is, by (epoch, priority, address);
//! - [`View::pin`]: whether an operator's pin still holds;
//! - [`View::ranking`]: the selection policy's order of succession;
//! - [`watch_master`]: noticing the master's loss;
//! - [`successor`]: whether and when this node takes over a lost master;
//! - [`preempt`]: whether this node preempts a live master;
//! - [`split_brain`]: whether this master steps down for another;
//! - [`gates`]: what the VRRP instance is told ([`ClusterGates`]);
//! - [`takeover_wins`]: which of two takeovers stands (TAKEOVER received);
//! - [`check_switchover`]: whether a master can serve an operator's request;
//! - [`handoff_target`]: whom a stopping master hands over to.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::change::LocalInstance;
use super::error::OperatorError;
use super::membership::{Candidate, Policy};
use super::message::InstanceBeat;
use crate::vrrp::{ClusterGates, State};

/// A live peer's beat for the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBeat {
    pub node: String,
    /// Heard within the vouch window: its claim to be master counts.
    pub vouched: bool,
    pub beat: InstanceBeat,
}

impl PeerBeat {
    fn candidate(&self) -> Candidate {
        Candidate {
            node: self.node.clone(),
            state: self.beat.state,
            priority: self.beat.priority,
            address: self.beat.address,
        }
    }
}

/// The per-instance bookkeeping one evaluation hands to the next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// The last node seen as the live master; taken when it is lost.
    pub last_master: Option<String>,
    /// When the live master was lost (left the channel, went silent, or
    /// reported another state).
    pub master_lost_at: Option<Instant>,
    /// Which node that lost master was.
    pub lost_master: Option<String>,
    /// Our own successor takeover has been attempted for this loss.
    pub takeover_tried: bool,
    /// When our successor takeover is due (policy rank after the loss).
    pub takeover_due: Option<Instant>,
    /// When we first saw a master we take precedence over (preempt_delay).
    pub preempt_since: Option<Instant>,
    /// The gates last handed to the VRRP instance.
    pub gates: ClusterGates,
}

/// Everything one evaluation of one instance looks at.
#[derive(Debug, Clone)]
pub struct View {
    pub now: Instant,
    /// This node's name.
    pub node: String,
    /// This node's instance.
    pub local: LocalInstance,
    /// The epoch this node took over under (while it is master).
    pub own_epoch: u64,
    /// The pin as recorded; it may have lapsed (see [`View::pin`]).
    pub pinned: Option<String>,
    /// The live peers that report the instance, in name order.
    pub peers: Vec<PeerBeat>,
    /// Peers whose process died: their connection closed with no goodbye
    /// (and they have not connected since).
    pub died: Vec<String>,
    pub policy: Policy,
    pub heartbeat_interval: Duration,
    /// This node is stopping: it hands over and never competes again.
    pub leaving: bool,
    pub track: Track,
}

impl View {
    /// This node as a candidate for the instance.
    pub fn me(&self) -> Candidate {
        Candidate {
            node: self.node.clone(),
            state: self.local.state,
            priority: self.local.priority,
            address: self.local.address,
        }
    }

    /// This node and every live peer, as candidates.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut out = vec![self.me()];
        out.extend(self.peers.iter().map(PeerBeat::candidate));
        out
    }

    /// The order of succession under the selection policy (eligible nodes,
    /// best first).
    pub fn ranking(&self) -> Vec<String> {
        self.policy.rank(&self.candidates())
    }

    /// The live master (see [`live_master`]), this node included.
    pub fn master(&self) -> Option<Candidate> {
        live_master(Some((&self.me(), self.own_epoch)), &self.peers)
    }

    /// The node the instance is pinned to, if the pin holds: the pinned node
    /// is this one or a live peer, and its instance is not faulted.
    pub fn pin(&self) -> Option<String> {
        let pinned = self.pinned.as_ref()?;
        let holds = if *pinned == self.node {
            self.local.state != State::Fault
        } else {
            self.peers
                .iter()
                .find(|p| p.node == *pinned)
                .is_some_and(|p| p.beat.state != State::Fault)
        };
        holds.then(|| pinned.clone())
    }

    /// How long each successor after the first waits for the one before it.
    pub fn grace(&self) -> Duration {
        (self.heartbeat_interval * 3).max(self.local.advert_interval * 2)
    }
}

/// The live master with the greatest (epoch, priority, address): `me` (this
/// node and the epoch it took over under) if it is master, and every vouched
/// peer reporting MASTER with the epoch it reports. A newer epoch wins; on
/// equal epochs the higher priority, then the higher address.
pub fn live_master(me: Option<(&Candidate, u64)>, peers: &[PeerBeat]) -> Option<Candidate> {
    let mine = me
        .filter(|(m, _)| m.state == State::Master)
        .map(|(m, e)| (e, m.clone()));
    let theirs = peers
        .iter()
        .filter(|p| p.vouched && p.beat.state == State::Master)
        .map(|p| (p.beat.epoch, p.candidate()));
    let mut best: Option<(u64, Candidate)> = None;
    for (epoch, c) in mine.into_iter().chain(theirs) {
        let better = match &best {
            None => true,
            Some((e, b)) => epoch > *e || (epoch == *e && Policy::Priority.prefers(&c, b)),
        };
        if better {
            best = Some((epoch, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The master as last seen, and its loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub last_master: Option<String>,
    pub lost_at: Option<Instant>,
    /// The master whose loss `lost_at` is.
    pub lost_master: Option<String>,
    pub takeover_tried: bool,
}

/// Track the live master and notice its loss: a live master clears the
/// loss; the first evaluation without the master seen before records it.
pub fn watch_master(prev: &Track, master: Option<&Candidate>, now: Instant) -> Watch {
    match master {
        Some(m) => Watch {
            last_master: Some(m.node.clone()),
            lost_at: None,
            lost_master: None,
            takeover_tried: false,
        },
        None if prev.last_master.is_some() && prev.master_lost_at.is_none() => Watch {
            last_master: None,
            lost_at: Some(now),
            lost_master: prev.last_master.clone(),
            takeover_tried: false,
        },
        None => Watch {
            last_master: None,
            lost_at: prev.master_lost_at,
            lost_master: prev.lost_master.clone(),
            takeover_tried: prev.takeover_tried,
        },
    }
}

/// This node's part in replacing a lost master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// Nothing to do: a master is live, none was lost, this node is not
    /// BACKUP, or it is leaving.
    Idle,
    /// Our turn comes at `due` (one advert interval after the loss, none
    /// if the master's process died, plus a grace per node ranked before
    /// us); until then VRRP's master-down waits.
    Waiting { due: Instant },
    /// Our turn: take over, unless the VRRP instance heard a master since
    /// the loss (`died`: the master's process died; anything heard from
    /// it was sent before, and does not count).
    TakeOver {
        due: Instant,
        lost: Instant,
        died: bool,
    },
    /// Our turn came and the takeover was tried already.
    Tried { due: Instant },
}

impl Successor {
    pub fn due(self) -> Option<Instant> {
        match self {
            Successor::Idle => None,
            Successor::Waiting { due }
            | Successor::TakeOver { due, .. }
            | Successor::Tried { due } => Some(due),
        }
    }
}

/// Successor takeover, in policy order: with the master lost, the node the
/// policy ranks first takes over one and a half advert intervals after the
/// loss (the master must be silent on VRRP too), each next one a grace later (an
/// unranked node comes after 64 graces). A master whose process died (its
/// connection closed with no goodbye) sends nothing more: the first takes
/// over at once, without the advert interval.
pub fn successor(
    v: &View,
    watch: &Watch,
    master: Option<&Candidate>,
    ranking: &[String],
) -> Successor {
    let Some(lost) = watch.lost_at else {
        return Successor::Idle;
    };
    if master.is_some() || v.local.state != State::Backup || v.leaving {
        return Successor::Idle;
    }
    let died = watch
        .lost_master
        .as_ref()
        .is_some_and(|m| v.died.contains(m));
    // Without a death, the master must be silent on VRRP too: one and a
    // half advert intervals, so that an advert due just after the loss and
    // a little late (a loaded host) still counts as heard. In route mode
    // there is no VRRP: one and a half heartbeats more, so the master is
    // taken for lost only once three of its heartbeats are missing.
    let silence = if died {
        Duration::ZERO
    } else if v.local.route {
        v.heartbeat_interval * 3 / 2
    } else {
        v.local.advert_interval * 3 / 2
    };
    let rank = ranking.iter().position(|n| *n == v.node).unwrap_or(64);
    let due = lost + silence + v.grace() * rank.min(64) as u32;
    if v.now < due {
        Successor::Waiting { due }
    } else if watch.takeover_tried {
        Successor::Tried { due }
    } else {
        Successor::TakeOver { due, lost, died }
    }
}

/// Preemption between baton peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preempt {
    /// Not preempting (the delay, if it ran, starts over).
    No,
    /// We take precedence since `since`; the preempt delay runs.
    Delaying { since: Instant },
    /// The delay has run: take over now.
    Now,
}

/// A BACKUP with preempt on, no pin holding, that the policy ranks first
/// among the live candidates and prefers to the live master, preempts once
/// its preempt delay has run. Only the best preempts: with several nodes
/// above the master, all of them taking over at once would contend and
/// leave gaps.
pub fn preempt(
    v: &View,
    master: Option<&Candidate>,
    pin: Option<&str>,
    ranking: &[String],
) -> Preempt {
    let Some(m) = master else {
        return Preempt::No;
    };
    let may = v.local.preempt && !v.leaving;
    if v.local.state != State::Backup || !may || pin.is_some() {
        return Preempt::No;
    }
    let best = ranking.first().is_some_and(|n| *n == v.node);
    if !(best && v.policy.prefers(&v.me(), m)) {
        return Preempt::No;
    }
    let since = v.track.preempt_since.unwrap_or(v.now);
    if v.now >= since + v.local.preempt_delay {
        Preempt::Now
    } else {
        Preempt::Delaying { since }
    }
}

/// This master steps down for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDown {
    pub new_master: Option<IpAddr>,
}

/// Split brain: this node is master, but another live master has
/// precedence by (epoch, priority, address).
pub fn split_brain(v: &View, master: Option<&Candidate>) -> Option<StepDown> {
    if v.local.state != State::Master {
        return None;
    }
    master.filter(|m| m.node != v.node).map(|m| StepDown {
        new_master: m.address,
    })
}

/// The gates for the VRRP instance: the live peers' addresses (their
/// adverts prove liveness only), and whether master-down must wait because
/// another node is master, a successor before us is due, or an operator
/// pinned the instance elsewhere.
pub fn gates(
    v: &View,
    master: Option<&Candidate>,
    pin: Option<&str>,
    successor: Successor,
) -> ClusterGates {
    let waiting = matches!(successor, Successor::Waiting { .. });
    ClusterGates {
        peers: v.peers.iter().filter_map(|p| p.beat.address).collect(),
        defer_master_down: master.is_some_and(|m| m.node != v.node)
            || waiting
            || pin.is_some_and(|p| p != v.node),
    }
}

/// What one evaluation of an instance decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The recorded pin lapsed (its node failed or faulted): forget it.
    pub pin_lapsed: bool,
    pub successor: Successor,
    pub preempt: Preempt,
    pub step_down: Option<StepDown>,
    /// The gates, and the rest of the bookkeeping for the next evaluation.
    pub track: Track,
}

/// Every step, from one view.
pub fn decide(v: &View) -> Decision {
    let master = v.master();
    let pin = v.pin();
    let ranking = v.ranking();
    let watch = watch_master(&v.track, master.as_ref(), v.now);
    let successor = successor(v, &watch, master.as_ref(), &ranking);
    let preempt = preempt(v, master.as_ref(), pin.as_deref(), &ranking);
    let step_down = split_brain(v, master.as_ref());
    let gates = gates(v, master.as_ref(), pin.as_deref(), successor);
    Decision {
        pin_lapsed: v.pinned.is_some() && pin.is_none(),
        successor,
        preempt,
        step_down,
        track: Track {
            last_master: watch.last_master,
            master_lost_at: watch.lost_at,
            lost_master: watch.lost_master,
            takeover_tried: watch.takeover_tried || matches!(successor, Successor::TakeOver { .. }),
            takeover_due: successor.due(),
            preempt_since: match preempt {
                Preempt::Delaying { since } => Some(since),
                Preempt::No | Preempt::Now => None,
            },
            gates,
        },
    }
}

/// Two takeovers under one epoch (two nodes acted on the same view): the
/// one with precedence (priority, then address) stands and the other steps
/// down. A newer epoch than ours always wins, and so does any takeover
/// while this node is not master. `me` is this node with the epoch it took
/// over under; the caller has dropped takeovers older than the epoch known.
pub fn takeover_wins(me: Option<(&Candidate, u64)>, sender: &Candidate, epoch: u64) -> bool {
    match me {
        Some((m, own_epoch)) if m.state == State::Master => {
            epoch > own_epoch || Policy::Priority.prefers(sender, m)
        }
        _ => true,
    }
}

/// A switchover target as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Not a configured peer.
    Unknown,
    /// A peer, not alive on the channel.
    Dead,
    /// A live peer, and the state it reports for the instance (None: it
    /// does not report it).
    Live(Option<State>),
}

/// Can this node (`me`, in `my_state` for `instance`) serve an operator's
/// request to move the instance to `target`?
pub fn check_switchover(
    me: &str,
    my_state: Option<State>,
    instance: &str,
    target: &str,
    seen: Target,
) -> Result<(), OperatorError> {
    let (t, i) = (target.to_string(), instance.to_string());
    if my_state != Some(State::Master) {
        return Err(OperatorError::NotMaster {
            node: me.to_string(),
            instance: i,
        });
    }
    if target == me {
        return Err(OperatorError::AlreadyMaster {
            target: t,
            instance: i,
        });
    }
    match seen {
        Target::Unknown => Err(OperatorError::UnknownNode { target: t }),
        Target::Dead => Err(OperatorError::NotConnected { target: t }),
        Target::Live(Some(State::Backup)) => Ok(()),
        Target::Live(Some(state)) => Err(OperatorError::TargetNotBackup {
            target: t,
            instance: i,
            state,
        }),
        Target::Live(None) => Err(OperatorError::TargetLacksInstance {
            target: t,
            instance: i,
        }),
    }
}

/// The node a stopping master hands over to: the best other candidate.
pub fn handoff_target(v: &View) -> Option<String> {
    v.ranking().into_iter().find(|n| *n != v.node)
}

#[cfg(test)]
mod tests;
