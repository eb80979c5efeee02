//! The state machine of one virtual router (RFC 5798 section 6, RFC 3768
//! where v2 differs, with the RFC 9568 corrections).
//!
//! Driven like quinn-proto: feed it events with the current time
//! (`startup`, `handle_advert`, `handle_timeout`, `set_fault`,
//! `set_priority`, `shutdown`), then drain `poll_action` and sleep until
//! `next_deadline`. It never does IO and never reads the clock.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::timers;
use super::{DropReason, RxStats};
use crate::wire::ah::{self, SeqCounter};
use crate::wire::vrrp::{Advert, ChecksumKind, Repr, Version};

/// The RFC states, with keepalived's FAULT added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Not running (before startup, after shutdown).
    Initialize,
    Backup,
    Master,
    /// The node's own fault: a tracked interface or script is down. No VIPs,
    /// no adverts, adverts from others ignored.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why a transition happened; carried to logs and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Startup into BACKUP, or recovery from FAULT.
    Startup,
    /// Priority 255: the address owner takes over at once.
    AddressOwner,
    /// No advert from a master for Master_Down_Interval.
    MasterDown,
    /// A master with a higher priority, or equal priority and a higher address.
    PreferredMaster(IpAddr),
    /// The node's own fault began.
    Fault,
    /// Shut down by the operator or the daemon.
    Shutdown,
    /// As master, this node ran nothing for longer than the master-down
    /// interval (SIGSTOP, a stalled host): the backups have taken over and
    /// its VIP lease has run out, so it listens again instead of claiming
    /// the VIPs back.
    Stalled,
    /// The cluster channel decided (selected successor, switchover,
    /// preemption, split-brain resolution).
    Cluster(ClusterReason),
}

/// Why the cluster layer moved an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterReason {
    /// The master's node left the channel and went silent on VRRP; this
    /// node is the one the selection policy names.
    SelectedSuccessor,
    /// An operator's switchover or handoff named this node.
    Switchover,
    /// This node has precedence over the current master (preempt).
    Preempt,
    /// Another node took over with a newer epoch.
    NewerMaster,
    /// Two masters met on the channel; the other has precedence.
    SplitBrain,
    /// This node is stopping and handed the VIPs over.
    Handoff,
    /// Another member of the instance's sync group moved (keepalived's
    /// `vrrp_sync_group`: members fail over together).
    SyncGroup,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address owner (priority 255)"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::PreferredMaster(a) => write!(f, "preferred master {a}"),
            Reason::Fault => f.write_str("fault"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Stalled => f.write_str("stalled longer than master down, replaced"),
            Reason::Cluster(ClusterReason::SyncGroup) => f.write_str("sync group"),
            Reason::Cluster(c) => write!(f, "cluster: {c:?}"),
        }
    }
}

/// How long after a reassertion (a lower-priority master's advert heard as
/// master) the GARPs go out once more: after that master's own GARPs, which
/// leave once it has added the VIPs, i.e. after the advert we answered.
/// Without it the clients may end on the MAC of a router that yields a
/// moment later (a brief dual master at 10 ms adverts on a loaded host).
pub const REASSERT_GARP_AGAIN: Duration = Duration::from_millis(20);

/// When gratuitous ARPs / unsolicited NAs are sent while master.
/// Defaults are keepalived's: 5 at once, 5 more after 5 s, no refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpSchedule {
    /// Packets per VIP in each burst (`garp_master_repeat`).
    pub repeat: u32,
    /// Delay of the second burst after becoming master (`garp_master_delay`);
    /// zero means no second burst.
    pub delay: Duration,
    /// Period of refresh bursts while master (`garp_master_refresh`); zero is off.
    pub refresh: Duration,
    /// Packets per VIP in a refresh burst (`garp_master_refresh_repeat`).
    pub refresh_repeat: u32,
    /// Packets per VIP when, as master, we hear a lower-priority router
    /// claim mastership (`garp_lower_prio_repeat`): the clients may have
    /// followed its GARPs, so announce ours again.
    pub lower_prio_repeat: u32,
    /// At most one such burst per this long (`garp_lower_prio_delay`).
    pub lower_prio_delay: Duration,
}

impl Default for GarpSchedule {
    fn default() -> Self {
        GarpSchedule {
            repeat: 5,
            delay: Duration::from_secs(5),
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// What the core needs to know about one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    /// Base priority: 1..=254, or 255 for the address owner.
    pub priority: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    /// How long a lower-priority master is tolerated before preempting it.
    pub preempt_delay: Duration,
    /// The virtual addresses, as carried in adverts.
    pub vips: Vec<IpAddr>,
    /// v2 simple-text password (zero padded), if any.
    pub auth: Option<[u8; 8]>,
    /// `auth` is the key of keepalived's IPsec AH ([`crate::wire::ah`]),
    /// not a password in the advert.
    pub ah: bool,
    pub garp: GarpSchedule,
    /// Strict RFC receive checks (keepalived's `vrrp_strict`): a v3 IPv6
    /// advert must start with a link-local address.
    pub strict: bool,
    /// Accept adverts only from these addresses (the unicast peers, as
    /// keepalived's `check_unicast_src`); empty: from anyone.
    pub allowed_sources: Vec<IpAddr>,
    /// The valid lifetime the VIPs are added with, refreshed every
    /// [`timers::vip_lease_refresh`] while MASTER; zero: forever.
    pub vip_lease: Duration,
    /// Check an advert's address list only when it comes from another
    /// router than the last one heard (keepalived's `skip_check_adv_addr`);
    /// otherwise every advert's list is checked.
    pub skip_check_adv_addr: bool,
}

impl InstanceConfig {
    /// A v3 instance with keepalived's defaults, for tests and examples.
    pub fn new(name: &str, vrid: u8, priority: u8, vips: Vec<IpAddr>) -> Self {
        InstanceConfig {
            name: name.to_string(),
            vrid,
            version: Version::V3,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips,
            auth: None,
            ah: false,
            garp: GarpSchedule::default(),
            strict: false,
            allowed_sources: Vec::new(),
            vip_lease: Duration::ZERO,
            skip_check_adv_addr: false,
        }
    }
}

impl InstanceConfig {
    /// Whether `new` differs from this configuration only in what an
    /// instance can change in place ([`Instance::reconfigure`]): all but
    /// its name, VRID, version and address family (a different virtual
    /// router, or another socket).
    pub fn reconfigurable_to(&self, new: &InstanceConfig) -> bool {
        let family = |c: &InstanceConfig| c.vips.first().map(IpAddr::is_ipv4);
        let hard = |c: &InstanceConfig| (c.name.clone(), c.vrid, c.version, family(c), c.ah);
        hard(self) == hard(new)
    }
}

/// An effect the IO shell must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement (to the multicast group or the unicast peers).
    SendAdvert(Repr),
    /// Configure every VIP on the interface (with the lease, if any).
    AddVips,
    /// Add every VIP again with a fresh lease (a replace: the addresses stay).
    RefreshVips,
    /// Remove every VIP from the interface.
    RemoveVips,
    /// Send `count` gratuitous ARPs / unsolicited NAs for every VIP.
    SendGarp { count: u32 },
    /// The state changed; log it and run notify scripts. Emitted after the
    /// effects of the transition (VIPs added or removed).
    StateChange {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// Why an advert that parsed was still not accepted by this instance.
/// Counted under its [`DropReason`] (`DropReason::from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// v2 vs v3 mismatch with the configured version.
    VersionMismatch,
    /// v2: the simple-text password differs (or one side has none).
    AuthMismatch,
    /// v2: the advert interval differs from ours (RFC 3768 7.1 says discard).
    IntervalMismatch,
    /// Our own address as source: a loop or a duplicate address.
    OwnAddress,
    /// A unicast instance heard a router that is not one of its peers.
    UnknownUnicastSource,
    /// With the cluster channel: a router that is not a cluster member.
    Foreign,
    /// The advert's address list is not ours: another count, or one of
    /// our addresses missing (keepalived drops it, "ip address associated
    /// with VRID not present in MASTER advert").
    AddressList,
}

/// One virtual router.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    /// This node's primary address on the interface: advert source and
    /// tie-breaker.
    local_addr: IpAddr,
    state: State,
    priority: u8,
    fault: bool,
    /// The interval the current master advertises (v3 learns it).
    master_adver_interval: Duration,
    master: Option<(IpAddr, u8)>,
    master_down_at: Option<Instant>,
    adver_at: Option<Instant>,
    garp_repeat_at: Option<Instant>,
    /// The second reassertion burst after a lower-priority master's
    /// advert ([`REASSERT_GARP_AGAIN`] after the first).
    reassert_garp_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    /// When the VIP lease is next refreshed (MASTER with a lease).
    lease_refresh_at: Option<Instant>,
    /// When we first tolerated a lower-priority master (preempt_delay).
    lower_master_since: Option<Instant>,
    actions: VecDeque<Action>,
    stats: RxStats,
    became_master: u64,
    /// The address list carried in adverts.
    advert_addresses: Vec<IpAddr>,
    /// When the last advert from a master was accepted (backup side).
    last_master_advert: Option<Instant>,
    /// When we last re-announced our VIPs after a lower-priority advert.
    last_lower_prio_garp: Option<Instant>,
    gates: ClusterGates,
    /// With the cluster channel (and foreign adverts refused): the only
    /// routers heard; None: anyone.
    members: Option<Vec<IpAddr>>,
    /// AH: the sequence number counter (sending and receiving).
    ah_seq: SeqCounter,
    /// AH: the IPv4 identification of the last advert (never 0).
    ip_id: u16,
}

/// How the cluster channel steers the VRRP rules for baton peers. With the
/// default (no peers, nothing deferred) the instance is plain RFC VRRP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterGates {
    /// Addresses of baton peers in this virtual router. Their adverts prove
    /// liveness only: as backup we accept them whatever their priority (no
    /// VRRP preemption), as master we never yield to them. Election among
    /// baton peers is the cluster's (with epochs); VRRP rules still apply to
    /// every other router (keepalived, FRR).
    pub peers: Vec<IpAddr>,
    /// Do not promote on master-down: the master is alive on the channel, or
    /// another node is the selected successor. Re-checked every interval.
    pub defer_master_down: bool,
}

impl Instance {
    pub fn new(cfg: InstanceConfig, local_addr: IpAddr) -> Self {
        let priority = cfg.priority;
        let interval = cfg.advert_interval;
        // Adverts carry exactly the configured list, in order, as keepalived
        // does: a peer compares the count (and keepalived drops a mismatch).
        let cfg_vips = cfg.vips.clone();
        Instance {
            cfg,
            local_addr,
            state: State::Initialize,
            priority,
            fault: false,
            master_adver_interval: interval,
            master: None,
            master_down_at: None,
            adver_at: None,
            garp_repeat_at: None,
            reassert_garp_at: None,
            garp_refresh_at: None,
            lease_refresh_at: None,
            lower_master_since: None,
            actions: VecDeque::new(),
            stats: RxStats::default(),
            became_master: 0,
            advert_addresses: cfg_vips,
            last_master_advert: None,
            last_lower_prio_garp: None,
            gates: ClusterGates::default(),
            members: None,
            ah_seq: SeqCounter::default(),
            ip_id: 0,
        }
    }

    /// The AH key, when adverts are authenticated with AH.
    pub fn ah_key(&self) -> Option<&[u8; ah::KEY_LEN]> {
        match (self.cfg.ah, self.cfg.version, &self.cfg.auth) {
            (true, Version::V2, Some(key)) => Some(key),
            _ => None,
        }
    }

    /// The IPv4 identification and AH sequence number of the next advert
    /// (one per advert sent, whatever the number of destinations).
    pub fn next_ah_stamp(&mut self) -> ah::Stamp {
        self.ip_id = self.ip_id.wrapping_add(1).max(1);
        ah::Stamp {
            id: self.ip_id,
            seq: self.ah_seq.next_send(),
        }
    }

    /// The last AH sequence number sent or accepted.
    pub fn ah_sequence(&self) -> u32 {
        self.ah_seq.current()
    }

    /// An advert that came in an AH header, its structure and TTL already
    /// checked: verified (ICV, SPI, sequence number, as keepalived, in that
    /// order) and then handled as [`Instance::handle_advert`]. Counts its
    /// own verdict.
    pub fn handle_ah_advert(
        &mut self,
        now: Instant,
        p: &ah::Parsed<'_>,
        unicast: bool,
    ) -> Result<(), DropReason> {
        let src = IpAddr::V4(p.src);
        // A unicast stranger is refused before its sequence number is
        // looked at: with the key, it could otherwise push the counter up
        // and have every real peer's advert dropped as a replay.
        // (keepalived checks the source last, and only with
        // `check_unicast_src`.)
        let stranger =
            !self.cfg.allowed_sources.is_empty() && !self.cfg.allowed_sources.contains(&src);
        let verdict = match self.ah_key().copied() {
            _ if stranger => Err(DropReason::UnknownUnicastSrc),
            None => Err(DropReason::AuthMismatch),
            Some(key) if !ah::verify(&key, p, unicast) => Err(DropReason::AhBadIcv),
            Some(_) if p.spi != p.src => Err(DropReason::AhBadSpi),
            Some(_) if !self.ah_seq.accept(p.seq) => Err(DropReason::AhReplay),
            Some(_) => Ok(()),
        };
        if let Err(reason) = verdict {
            self.stats.count(reason);
            return Err(reason);
        }
        let (adv, checksum) = match Advert::parse_ah(p.vrrp, src, IpAddr::V4(p.dst)) {
            Ok(parsed) => parsed,
            Err(e) => {
                let reason = DropReason::from(e);
                self.stats.count(reason);
                return Err(reason);
            }
        };
        let was_master = self.state == State::Master;
        let lower = adv.priority < self.priority
            || (adv.priority == self.priority && addr_greater(self.local_addr, src));
        self.handle_advert_checked(now, src, &adv, checksum, true)
            .map_err(DropReason::from)?;
        if was_master && lower {
            self.ah_seq.follow_lower(p.seq);
        } else {
            self.ah_seq.clear_cycle();
        }
        Ok(())
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }
    pub fn name(&self) -> &str {
        &self.cfg.name
    }
    pub fn vrid(&self) -> u8 {
        self.cfg.vrid
    }
    pub fn state(&self) -> State {
        self.state
    }
    /// Effective priority (base adjusted by tracking).
    pub fn priority(&self) -> u8 {
        self.priority
    }
    pub fn local_addr(&self) -> IpAddr {
        self.local_addr
    }
    pub fn is_faulted(&self) -> bool {
        self.fault
    }
    /// The master as last heard: its address and priority.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }
    pub fn stats(&self) -> &RxStats {
        &self.stats
    }
    pub fn stats_mut(&mut self) -> &mut RxStats {
        &mut self.stats
    }
    /// How many times this instance became master since it was created.
    pub fn times_became_master(&self) -> u64 {
        self.became_master
    }

    pub fn gates(&self) -> &ClusterGates {
        &self.gates
    }

    /// Set how the cluster steers this instance (see [`ClusterGates`]).
    /// Hear only these routers (the cluster's members), or anyone (None).
    pub fn set_members(&mut self, members: Option<Vec<IpAddr>>) {
        self.members = members;
    }

    pub fn set_gates(&mut self, gates: ClusterGates) {
        self.gates = gates;
    }

    /// When the last advert from a master was accepted while backup.
    pub fn last_master_advert(&self) -> Option<Instant> {
        self.last_master_advert
    }

    /// The cluster chose this node: become master now (unless faulted or
    /// stopped). With `unless_heard_since`, only if no master advert was
    /// accepted after that instant (the master must be silent on VRRP too).
    /// Returns whether it took over.
    pub fn take_over(
        &mut self,
        now: Instant,
        why: ClusterReason,
        unless_heard_since: Option<Instant>,
    ) -> bool {
        if self.state != State::Backup {
            return false;
        }
        if let (Some(since), Some(heard)) = (unless_heard_since, self.last_master_advert) {
            if heard >= since {
                return false;
            }
        }
        if why == ClusterReason::Preempt && self.yields_to_foreign_master(now) {
            return false;
        }
        self.become_master(now, State::Backup, Reason::Cluster(why));
        true
    }

    /// The cluster says another node is master now: remove the VIPs and go
    /// backup (after a make-before-break takeover the new master already
    /// holds them). Returns whether anything changed.
    /// A router the cluster does not speak for (keepalived, FRR, or a
    /// baton peer whose channel is down) that plain VRRP prefers to us is
    /// master and alive: the cluster must not preempt it, or the two rules
    /// would take the VIPs back and forth at every advert.
    pub fn yields_to_foreign_master(&self, now: Instant) -> bool {
        let Some((addr, priority)) = self.master else {
            return false;
        };
        let preferred = priority > self.priority
            || (priority == self.priority && addr_greater(addr, self.local_addr));
        let alive = self
            .last_master_advert
            .is_some_and(|t| now < t + self.master_down_interval());
        preferred && alive && !self.gates.peers.contains(&addr)
    }

    pub fn step_down(
        &mut self,
        now: Instant,
        why: ClusterReason,
        new_master: Option<IpAddr>,
    ) -> bool {
        if self.state != State::Master {
            return false;
        }
        self.leave_master(now, false);
        self.state = State::Backup;
        self.master = new_master.map(|a| (a, 0));
        self.last_master_advert = Some(now);
        self.master_down_at = Some(now + self.master_down_interval());
        self.push_change(State::Master, State::Backup, Reason::Cluster(why));
        true
    }

    /// Apply a new configuration in place when only "soft" settings changed
    /// (priority, preempt, preempt_delay, GARP schedule): the instance keeps
    /// its state, so a master stays master. Returns false, changing
    /// nothing, when anything else differs (the caller restarts it).
    pub fn reconfigure(&mut self, now: Instant, new: InstanceConfig) -> bool {
        if !self.cfg.reconfigurable_to(&new) {
            return false;
        }
        let old_base = self.cfg.priority;
        let tracked_delta = i16::from(self.priority) - i16::from(old_base);
        let lease_changed = self.cfg.vip_lease != new.vip_lease;
        let vips_changed = self.cfg.vips != new.vips;
        let interval_changed = self.cfg.advert_interval != new.advert_interval;
        let auth_changed = self.cfg.auth != new.auth;
        self.cfg = new;
        if lease_changed && self.state == State::Master {
            // The addresses take the new lifetime (or lose theirs) now.
            self.actions.push_back(Action::RefreshVips);
            self.lease_refresh_at = self.next_lease_refresh(now);
        }
        if vips_changed {
            // The node adds and removes just the difference (it knows the
            // addresses' settings); the adverts carry the new list.
            self.advert_addresses = self.cfg.vips.clone();
        }
        if interval_changed {
            match self.state {
                State::Master => self.master_adver_interval = self.cfg.advert_interval,
                State::Backup => {
                    // v2 requires the same interval on both ends; v3 goes on
                    // learning the master's. A fresh master-down interval:
                    // never sooner than the old rule would have fired.
                    if self.cfg.version == Version::V2 || self.master.is_none() {
                        self.master_adver_interval = self.cfg.advert_interval;
                    }
                    let fresh = now + self.master_down_interval();
                    self.master_down_at = self.master_down_at.map(|d| d.max(fresh));
                }
                State::Initialize | State::Fault => {
                    self.master_adver_interval = self.cfg.advert_interval
                }
            }
        }
        let wanted = (i16::from(self.cfg.priority) + tracked_delta).clamp(0, 255) as u8;
        let before = self.actions.len();
        self.set_priority(now, wanted);
        let advertised = self.actions.len() > before;
        if self.state == State::Master
            && !advertised
            && (vips_changed || interval_changed || auth_changed)
        {
            // Tell the backups the new list / interval / password at once.
            self.send_advert_now(now);
        }
        if vips_changed && self.state == State::Master {
            self.actions.push_back(Action::SendGarp {
                count: self.cfg.garp.repeat,
            });
        }
        true
    }

    /// The address changed under us (DHCP, operator): adverts use the new one.
    pub fn set_local_addr(&mut self, addr: IpAddr) {
        self.local_addr = addr;
        if self.state == State::Master {
            self.master = Some((addr, self.priority));
        }
    }

    /// The advertisement this instance sends with the given priority.
    pub fn advert(&self, priority: u8) -> Repr {
        Repr {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: timers::centiseconds(self.cfg.advert_interval) as u16,
            addresses: self.advert_addresses.clone(),
            auth: match self.cfg.version {
                Version::V2 => self.cfg.auth,
                Version::V3 => None,
            },
        }
    }

    /// The next effect to carry out, in order; `None` once all are drained.
    #[must_use = "an action popped and not carried out is lost"]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest instant at which `handle_timeout` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.master_down_at,
            self.adver_at,
            self.garp_repeat_at,
            self.reassert_garp_at,
            self.garp_refresh_at,
            self.lease_refresh_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(self.cfg.version, self.priority, self.master_adver_interval)
    }

    fn skew_time(&self) -> Duration {
        timers::skew_time(self.cfg.version, self.priority, self.master_adver_interval)
    }

    /// RFC 5798 6.4.1: leave Initialize.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.enter_running_state(now, State::Initialize, Reason::Startup);
    }

    fn enter_running_state(&mut self, now: Instant, from: State, reason: Reason) {
        if self.fault {
            self.state = State::Fault;
            self.push_change(from, State::Fault, Reason::Fault);
        } else if self.priority == 255 {
            self.become_master(now, from, Reason::AddressOwner);
        } else {
            self.state = State::Backup;
            self.master_adver_interval = self.cfg.advert_interval;
            self.master = None;
            self.master_down_at = Some(now + self.master_down_interval());
            self.push_change(from, State::Backup, reason);
        }
    }

    /// Stop the instance: a master sends priority 0 so a backup takes over
    /// after its skew time, and removes its VIPs.
    pub fn shutdown(&mut self, now: Instant) {
        let from = self.state;
        match from {
            State::Initialize => return,
            State::Master => self.leave_master(now, true),
            State::Backup | State::Fault => {}
        }
        self.clear_timers();
        self.state = State::Initialize;
        self.push_change(from, State::Initialize, Reason::Shutdown);
    }

    /// The node's own fault began or ended (method step 6).
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        if self.fault == fault {
            return;
        }
        self.fault = fault;
        let from = self.state;
        match (from, fault) {
            (State::Initialize, _) => {}
            (_, true) => {
                if from == State::Master {
                    self.leave_master(now, true);
                }
                self.clear_timers();
                self.state = State::Fault;
                self.master = None;
                self.push_change(from, State::Fault, Reason::Fault);
            }
            (State::Fault, false) => self.enter_running_state(now, State::Fault, Reason::Startup),
            (_, false) => {}
        }
    }

    /// Set the effective priority (base priority adjusted by tracking).
    /// An address owner stays at 255; others are clamped to 1..=254.
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        self.check_stalled(now);
        let priority = if self.cfg.priority == 255 {
            255
        } else {
            priority.clamp(1, 254)
        };
        if priority == self.priority {
            return;
        }
        self.priority = priority;
        if self.state == State::Master {
            // Tell the others now rather than at the next interval, so a
            // preempting backup does not wait for it.
            self.master = Some((self.local_addr, priority));
            self.send_advert_now(now);
        }
    }

    /// An advert for our VRID, already checked by the wire parser and the
    /// TTL check.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        adv: &Repr,
        checksum: ChecksumKind,
    ) -> Result<(), Rejected> {
        self.handle_advert_checked(now, src, &adv.as_advert(), checksum, false)
    }

    /// [`Instance::handle_advert`] for an advert as the receive path
    /// parsed it (its address list still the packet's bytes).
    pub fn handle_received(
        &mut self,
        now: Instant,
        src: IpAddr,
        adv: &Advert<'_>,
        checksum: ChecksumKind,
    ) -> Result<(), Rejected> {
        self.handle_advert_checked(now, src, adv, checksum, false)
    }

    fn handle_advert_checked(
        &mut self,
        now: Instant,
        src: IpAddr,
        adv: &Advert<'_>,
        checksum: ChecksumKind,
        under_ah: bool,
    ) -> Result<(), Rejected> {
        let verdict = self
            .check_advert(src, adv, under_ah)
            .and_then(|()| self.check_addresses(src, adv));
        match verdict {
            Err(r) => self.stats.count(DropReason::from(r)),
            Ok(()) => self.stats.accept(checksum),
        }
        verdict?;
        self.check_stalled(now);
        match self.state {
            State::Initialize | State::Fault => {}
            State::Backup => self.backup_receive(now, src, adv),
            State::Master => self.master_receive(now, src, adv),
        }
        Ok(())
    }

    fn check_advert(&self, src: IpAddr, adv: &Advert<'_>, under_ah: bool) -> Result<(), Rejected> {
        if adv.version != self.cfg.version {
            return Err(Rejected::VersionMismatch);
        }
        if src == self.local_addr {
            return Err(Rejected::OwnAddress);
        }
        if !self.cfg.allowed_sources.is_empty() && !self.cfg.allowed_sources.contains(&src) {
            return Err(Rejected::UnknownUnicastSource);
        }
        if self.members.as_ref().is_some_and(|m| !m.contains(&src)) {
            return Err(Rejected::Foreign);
        }
        if self.cfg.version == Version::V2 {
            // An AH instance hears AH adverts only (keepalived: "No AH
            // header but auth type is AH"), and the others none.
            let auth_ok = if self.cfg.ah {
                under_ah
            } else {
                !under_ah && adv.auth == self.cfg.auth
            };
            if !auth_ok {
                return Err(Rejected::AuthMismatch);
            }
            if u64::from(adv.interval_cs) != timers::centiseconds(self.cfg.advert_interval) {
                return Err(Rejected::IntervalMismatch);
            }
        }
        Ok(())
    }

    /// keepalived's check of the advertised address list (RFC 3768 7.1
    /// "MAY verify"): the count and every one of our addresses must match.
    /// With `skip_check_adv_addr` an advert from the master this backup
    /// follows (whose list was checked when it was accepted as master:
    /// keepalived's `master_saddr`) is not checked again.
    fn check_addresses(&self, src: IpAddr, adv: &Advert<'_>) -> Result<(), Rejected> {
        let from_master = self.state == State::Backup && self.master.is_some_and(|(m, _)| m == src);
        if self.cfg.skip_check_adv_addr && from_master {
            return Ok(());
        }
        let ours = &self.cfg.vips;
        if adv.addresses.len() != ours.len() || ours.iter().any(|a| !adv.addresses.contains(a)) {
            return Err(Rejected::AddressList);
        }
        Ok(())
    }

    fn learn_interval(&mut self, adv: &Advert<'_>) {
        if self.cfg.version == Version::V3 && adv.interval_cs > 0 {
            self.master_adver_interval = Duration::from_millis(u64::from(adv.interval_cs) * 10);
        }
    }

    fn backup_receive(&mut self, now: Instant, src: IpAddr, adv: &Advert<'_>) {
        if adv.priority == 0 {
            // The master is leaving: take over after our skew time only.
            self.master = None;
            self.master_down_at = Some(now + self.skew_time());
            return;
        }
        let accept =
            !self.cfg.preempt || adv.priority >= self.priority || self.tolerate_lower_master(now);
        if accept {
            if adv.priority >= self.priority {
                self.lower_master_since = None;
            }
            self.learn_interval(adv);
            self.master = Some((src, adv.priority));
            self.last_master_advert = Some(now);
            self.master_down_at = Some(now + self.master_down_interval());
        }
        // Otherwise a lower-priority master is ignored: our master-down
        // timer runs out and we preempt it.
    }

    /// preempt_delay: a lower-priority master is accepted for this long
    /// after we first see it.
    fn tolerate_lower_master(&mut self, now: Instant) -> bool {
        if self.cfg.preempt_delay.is_zero() {
            return false;
        }
        let since = *self.lower_master_since.get_or_insert(now);
        now < since + self.cfg.preempt_delay
    }

    fn master_receive(&mut self, now: Instant, src: IpAddr, adv: &Advert<'_>) {
        if self.gates.peers.contains(&src) {
            // Two baton masters: the cluster resolves it (split brain, by
            // epoch, priority, address) and tells the loser to step down.
            // Reasserting here would only start an advert ping-pong.
            return;
        }
        if adv.priority == 0 {
            // Another master is leaving: make sure backups hear us now.
            self.send_advert_now(now);
            return;
        }
        let preferred = adv.priority > self.priority
            || (adv.priority == self.priority && addr_greater(src, self.local_addr));
        if preferred {
            self.leave_master(now, false);
            self.state = State::Backup;
            self.learn_interval(adv);
            self.master = Some((src, adv.priority));
            self.last_master_advert = Some(now);
            self.master_down_at = Some(now + self.master_down_interval());
            self.push_change(State::Master, State::Backup, Reason::PreferredMaster(src));
        } else {
            // A lower-priority router thinks it is master (it just came up,
            // two backups timed out together, a partition healed): reassert
            // at once (RFC 9568), and announce the VIPs again, since the
            // clients may have followed its GARPs.
            self.send_advert_now(now);
            let garp = &self.cfg.garp;
            let due = self
                .last_lower_prio_garp
                .is_none_or(|t| now >= t + garp.lower_prio_delay);
            if due && garp.lower_prio_repeat > 0 {
                self.last_lower_prio_garp = Some(now);
                self.actions.push_back(Action::SendGarp {
                    count: garp.lower_prio_repeat,
                });
                // Its own GARPs follow its VIPs, after the advert we just
                // heard: ours may reach the clients first. Announce again
                // once its burst is out, so ours are the last they hear.
                self.reassert_garp_at = Some(now + REASSERT_GARP_AGAIN);
            }
        }
    }

    /// How early a master's advert may leave to go out with the others
    /// due at the same wake-up: a twentieth of its interval (0.5 ms at
    /// 10 ms). Hundreds of masters whose periods drifted apart (each took
    /// over at its own moment) then send in a few groups per interval
    /// instead of each on a wake-up of its own; each keeps its period (the
    /// next advert is still due one interval after this one was).
    pub fn advert_slack(&self) -> Duration {
        self.cfg.advert_interval / 20
    }

    /// A master whose advert is due by `now` plus [`Instance::advert_slack`]
    /// (the node hands such an instance [`Instance::handle_timeout`] with
    /// one whose timer has come).
    pub fn advert_due_within_slack(&self, now: Instant) -> bool {
        self.state == State::Master
            && self
                .adver_at
                .is_some_and(|t| t <= now + self.advert_slack())
    }

    /// A master whose lease refresh is due by `now`: the node then pulls
    /// along every other master's refresh that is nearly due
    /// ([`Instance::refresh_lease_early`]).
    pub fn lease_refresh_due(&self, now: Instant) -> bool {
        self.state == State::Master && self.lease_refresh_at.is_some_and(|t| t <= now)
    }

    /// Refresh the lease now if it is due within half its period. The node
    /// calls this on every master when one master's refresh comes, so the
    /// refreshes of hundreds of masters (each took over at its own moment)
    /// fall into one netlink batch per period instead of one each: two
    /// groups merge within a period, and once merged each refresh still
    /// comes one period after the last. A pulled refresh is early, never
    /// late, so the lease's margin only grows.
    pub fn refresh_lease_early(&mut self, now: Instant) {
        let slack = timers::vip_lease_refresh(self.cfg.vip_lease) / 2;
        if self.state == State::Master && self.lease_refresh_at.is_some_and(|t| t <= now + slack) {
            self.actions.push_back(Action::RefreshVips);
            self.lease_refresh_at = self.next_lease_refresh(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_stalled(now);
        match self.state {
            State::Backup => {
                if self.master_down_at.is_some_and(|t| t <= now) {
                    if self.gates.defer_master_down {
                        // The cluster vouches for the master (or for the
                        // successor it names): look again one interval on.
                        self.master_down_at = Some(now + self.master_adver_interval);
                    } else {
                        self.become_master(now, State::Backup, Reason::MasterDown);
                    }
                }
            }
            State::Master => {
                if let Some(due) = self.adver_at.filter(|t| *t <= now + self.advert_slack()) {
                    self.send_advert_now(now);
                    // Keep the period: the next advert is due one interval
                    // after this one was due, not after the (late) wake-up,
                    // or every period drifts by the timer's lateness. After
                    // a long stall, restart from now rather than burst.
                    let next = due + self.cfg.advert_interval;
                    if next > now {
                        self.adver_at = Some(next);
                    }
                }
                if self.garp_repeat_at.is_some_and(|t| t <= now) {
                    self.garp_repeat_at = None;
                    self.actions.push_back(Action::SendGarp {
                        count: self.cfg.garp.repeat,
                    });
                }
                if self.reassert_garp_at.is_some_and(|t| t <= now) {
                    self.reassert_garp_at = None;
                    self.actions.push_back(Action::SendGarp {
                        count: self.cfg.garp.lower_prio_repeat,
                    });
                }
                if self.garp_refresh_at.is_some_and(|t| t <= now) {
                    self.garp_refresh_at = Some(now + self.cfg.garp.refresh);
                    self.actions.push_back(Action::SendGarp {
                        count: self.cfg.garp.refresh_repeat,
                    });
                }
                if self.lease_refresh_at.is_some_and(|t| t <= now) {
                    self.actions.push_back(Action::RefreshVips);
                    self.lease_refresh_at = self.next_lease_refresh(now);
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn become_master(&mut self, now: Instant, from: State, reason: Reason) {
        self.clear_timers();
        self.state = State::Master;
        self.ah_seq.become_master();
        self.became_master += 1;
        self.last_lower_prio_garp = None;
        self.master = Some((self.local_addr, self.priority));
        // The advert first: the other backups' master-down timers may be
        // due a millisecond after ours (at 10 ms adverts, 1.96 ms between
        // the skew times of priorities 100 and 50), and adding the VIPs is
        // a netlink round trip. Nobody needs the VIPs to hear the advert;
        // the GARPs, which do, still follow the VIPs.
        self.send_advert_now(now);
        self.actions.push_back(Action::AddVips);
        self.lease_refresh_at = self.next_lease_refresh(now);
        let garp = &self.cfg.garp;
        self.actions
            .push_back(Action::SendGarp { count: garp.repeat });
        if !garp.delay.is_zero() {
            self.garp_repeat_at = Some(now + garp.delay);
        }
        if !garp.refresh.is_zero() {
            self.garp_refresh_at = Some(now + garp.refresh);
        }
        self.push_change(from, State::Master, reason);
    }

    /// The effects of leaving MASTER; the caller sets the new state.
    fn leave_master(&mut self, _now: Instant, send_priority_zero: bool) {
        if send_priority_zero {
            self.actions.push_back(Action::SendAdvert(self.advert(0)));
        }
        self.actions.push_back(Action::RemoveVips);
        self.clear_timers();
        self.master = None;
    }

    fn next_lease_refresh(&self, now: Instant) -> Option<Instant> {
        (!self.cfg.vip_lease.is_zero()).then(|| now + timers::vip_lease_refresh(self.cfg.vip_lease))
    }

    /// The frozen-master rule: a master whose advert was due longer than
    /// a master-down interval ago (and than its lease, and than 1 s) has
    /// been silent for so long that the
    /// backups declared it down and one of them took over (and, with a
    /// lease, its own VIPs have expired). Claiming the VIPs back would be
    /// a second takeover and, meanwhile, two holders: it leaves MASTER
    /// (removing the VIPs from its books), listens as BACKUP, and from
    /// there follows plain VRRP (a preferred router still preempts after
    /// a master-down interval of silence from the others).
    fn check_stalled(&mut self, now: Instant) {
        if self.state != State::Master {
            return;
        }
        let Some(due) = self.adver_at else {
            return;
        };
        // Never less than the lease, nor a second: at small intervals a
        // loaded host is often late by a master-down interval, and with the
        // channel the backups do not take over on silence alone; until the
        // lease runs out the VIPs are still ours.
        let stalled = self
            .master_down_interval()
            .max(self.cfg.vip_lease)
            .max(timers::MIN_VIP_LEASE);
        if now.saturating_duration_since(due) < stalled {
            return;
        }
        self.leave_master(now, false);
        self.state = State::Backup;
        self.master_adver_interval = self.cfg.advert_interval;
        self.master_down_at = Some(now + self.master_down_interval());
        self.push_change(State::Master, State::Backup, Reason::Stalled);
    }

    fn send_advert_now(&mut self, now: Instant) {
        self.actions
            .push_back(Action::SendAdvert(self.advert(self.priority)));
        self.adver_at = Some(now + self.cfg.advert_interval);
    }

    fn clear_timers(&mut self) {
        self.master_down_at = None;
        self.adver_at = None;
        self.garp_repeat_at = None;
        self.reassert_garp_at = None;
        self.garp_refresh_at = None;
        self.lease_refresh_at = None;
        self.lower_master_since = None;
    }

    fn push_change(&mut self, from: State, to: State, reason: Reason) {
        self.actions
            .push_back(Action::StateChange { from, to, reason });
    }
}

/// RFC 5798 6.4.3: addresses compared as unsigned integers in network byte
/// order. Mixed families never compare greater.
pub fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn vip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))
    }

    fn inst(priority: u8) -> Instance {
        Instance::new(
            InstanceConfig::new("VI_1", 51, priority, vec![vip()]),
            ip(1),
        )
    }

    fn adv(priority: u8, interval_cs: u16) -> Repr {
        Repr {
            version: Version::V3,
            vrid: 51,
            priority,
            interval_cs,
            addresses: vec![vip()],
            auth: None,
        }
    }

    fn drain(i: &mut Instance) -> Vec<Action> {
        std::iter::from_fn(|| i.poll_action()).collect()
    }

    fn rx(i: &mut Instance, now: Instant, from: u8, priority: u8) -> Result<(), Rejected> {
        i.handle_advert(now, ip(from), &adv(priority, 100), ChecksumKind::Standard)
    }

    #[test]
    fn startup_goes_backup_with_master_down_timer() {
        let t0 = Instant::now();
        let mut i = inst(200);
        i.startup(t0);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(
            i.next_deadline(),
            Some(t0 + Duration::from_micros(3_218_750))
        );
        assert_eq!(
            drain(&mut i),
            vec![Action::StateChange {
                from: State::Initialize,
                to: State::Backup,
                reason: Reason::Startup
            }]
        );
    }

    #[test]
    fn master_down_makes_master_in_order_advert_vips_garp() {
        let t0 = Instant::now();
        let mut i = inst(200);
        i.startup(t0);
        drain(&mut i);
        let t1 = i.next_deadline().unwrap();
        i.handle_timeout(t1 - Duration::from_millis(1));
        assert_eq!(i.state(), State::Backup, "not before the deadline");
        i.handle_timeout(t1);
        assert_eq!(i.state(), State::Master);
        assert_eq!(
            drain(&mut i),
            vec![
                Action::SendAdvert(adv(200, 100)),
                Action::AddVips,
                Action::SendGarp { count: 5 },
                Action::StateChange {
                    from: State::Backup,
                    to: State::Master,
                    reason: Reason::MasterDown
                },
            ]
        );
        // Next: the advert timer (1 s) before the second GARP burst (5 s).
        assert_eq!(i.next_deadline(), Some(t1 + Duration::from_secs(1)));
        i.handle_timeout(t1 + Duration::from_secs(1));
        assert_eq!(drain(&mut i), vec![Action::SendAdvert(adv(200, 100))]);
        for s in 2..=5 {
            i.handle_timeout(t1 + Duration::from_secs(s));
        }
        let acts = drain(&mut i);
        assert!(acts.contains(&Action::SendGarp { count: 5 }), "{acts:?}");
        assert_eq!(i.times_became_master(), 1);
    }

    #[test]
    fn periodic_adverts_keep_their_period_when_woken_late() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        let due = i.next_deadline().unwrap();
        // Woken 3 ms late: the next advert is still one interval after `due`.
        i.handle_timeout(due + Duration::from_millis(3));
        assert_eq!(drain(&mut i), vec![Action::SendAdvert(adv(200, 100))]);
        assert_eq!(i.next_deadline(), Some(due + Duration::from_secs(1)));
    }

    #[test]
    fn owner_becomes_master_at_once() {
        let t0 = Instant::now();
        let mut i = inst(255);
        i.startup(t0);
        assert_eq!(i.state(), State::Master);
        assert_eq!(drain(&mut i)[1], Action::AddVips);
    }

    #[test]
    fn backup_accepts_higher_and_resets_timer() {
        let t0 = Instant::now();
        let mut i = inst(100);
        i.startup(t0);
        let t1 = t0 + Duration::from_secs(2);
        rx(&mut i, t1, 2, 150).unwrap();
        // v3 priority 100 at 100 cs: skew 609.375 ms, master down 3.609 s.
        assert_eq!(
            i.next_deadline(),
            Some(t1 + Duration::from_micros(3_609_375))
        );
        assert_eq!(i.master(), Some((ip(2), 150)));
    }

    #[test]
    fn priority_zero_gives_skew_time() {
        let t0 = Instant::now();
        let mut i = inst(200);
        i.startup(t0);
        rx(&mut i, t0, 2, 250).unwrap();
        let t1 = t0 + Duration::from_millis(500);
        rx(&mut i, t1, 2, 0).unwrap();
        assert_eq!(i.next_deadline(), Some(t1 + Duration::from_micros(218_750)));
    }

    #[test]
    fn preempt_ignores_lower_master_nopreempt_accepts_it() {
        let t0 = Instant::now();
        let mut i = inst(200);
        i.startup(t0);
        let first = i.next_deadline();
        rx(&mut i, t0 + Duration::from_secs(1), 2, 100).unwrap();
        assert_eq!(i.next_deadline(), first, "lower master ignored");

        let mut cfg = InstanceConfig::new("VI_1", 51, 200, vec![vip()]);
        cfg.preempt = false;
        let mut n = Instance::new(cfg, ip(1));
        n.startup(t0);
        let t1 = t0 + Duration::from_secs(1);
        rx(&mut n, t1, 2, 100).unwrap();
        assert_eq!(
            n.next_deadline(),
            Some(t1 + Duration::from_micros(3_218_750))
        );
    }

    #[test]
    fn preempt_delay_tolerates_lower_master_for_a_while() {
        let t0 = Instant::now();
        let mut cfg = InstanceConfig::new("VI_1", 51, 200, vec![vip()]);
        cfg.preempt_delay = Duration::from_secs(10);
        let mut i = Instance::new(cfg, ip(1));
        i.startup(t0);
        for s in 1..10 {
            let t = t0 + Duration::from_secs(s);
            rx(&mut i, t, 2, 100).unwrap();
            assert_eq!(
                i.next_deadline(),
                Some(t + Duration::from_micros(3_218_750))
            );
        }
        let t = t0 + Duration::from_secs(11);
        rx(&mut i, t, 2, 100).unwrap();
        assert_eq!(
            i.next_deadline(),
            Some(t0 + Duration::from_secs(9) + Duration::from_micros(3_218_750)),
            "after the delay the lower master is ignored"
        );
    }

    fn master(priority: u8, t0: Instant) -> Instance {
        let mut i = inst(priority);
        i.startup(t0);
        let d = i.next_deadline().unwrap();
        i.handle_timeout(d);
        drain(&mut i);
        i
    }

    #[test]
    fn master_yields_to_higher_priority() {
        let t0 = Instant::now();
        let mut i = master(100, t0);
        let t = t0 + Duration::from_secs(5);
        i.handle_advert(t, ip(2), &adv(150, 50), ChecksumKind::Standard)
            .unwrap();
        assert_eq!(i.state(), State::Backup);
        let acts = drain(&mut i);
        assert_eq!(acts[0], Action::RemoveVips);
        // learned 50 cs: 3 * 500 ms + 156 * 500 ms / 256 = 1804.687 ms
        assert_eq!(i.master_adver_interval(), Duration::from_millis(500));
        assert_eq!(
            i.next_deadline(),
            Some(t + Duration::from_micros(1_804_687))
        );
    }

    #[test]
    fn equal_priority_tie_break_on_address() {
        let t0 = Instant::now();
        let mut i = master(100, t0);
        // Lower address with equal priority: we stay and reassert.
        let t = t0 + Duration::from_secs(5);
        let lower = IpAddr::V4(Ipv4Addr::new(9, 255, 255, 255));
        i.handle_advert(t, lower, &adv(100, 100), ChecksumKind::Standard)
            .unwrap();
        assert_eq!(i.state(), State::Master);
        assert_eq!(
            drain(&mut i),
            vec![
                Action::SendAdvert(adv(100, 100)),
                Action::SendGarp { count: 5 }
            ]
        );
        // Higher address (unsigned compare: 10.0.0.200 > 10.0.0.1).
        rx(&mut i, t, 200, 100).unwrap();
        assert_eq!(i.state(), State::Backup);
    }

    #[test]
    fn master_reasserts_on_lower_priority_advert_with_rate_limited_garps() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        let t = t0 + Duration::from_millis(4500);
        rx(&mut i, t, 2, 100).unwrap();
        assert_eq!(
            drain(&mut i),
            vec![
                Action::SendAdvert(adv(200, 100)),
                Action::SendGarp { count: 5 }
            ]
        );
        assert_eq!(i.next_deadline(), Some(t + REASSERT_GARP_AGAIN));
        // A second one soon after: advert only, no GARP storm.
        let t2 = t + Duration::from_millis(10);
        rx(&mut i, t2, 2, 100).unwrap();
        assert_eq!(drain(&mut i), vec![Action::SendAdvert(adv(200, 100))]);
        // The follow-up burst, once, after the other's own GARPs.
        i.handle_timeout(t + REASSERT_GARP_AGAIN);
        assert_eq!(drain(&mut i), vec![Action::SendGarp { count: 5 }]);
        assert_eq!(i.next_deadline(), Some(t2 + Duration::from_secs(1)));
        // After garp_lower_prio_delay, GARPs again (the master's own timers
        // run meanwhile: a master silent that long would have stalled).
        let t3 = t + Duration::from_secs(5);
        while let Some(d) = i.next_deadline().filter(|d| *d <= t3) {
            i.handle_timeout(d);
        }
        drain(&mut i);
        rx(&mut i, t3, 2, 100).unwrap();
        assert!(drain(&mut i).contains(&Action::SendGarp { count: 5 }));
    }

    fn leased(priority: u8, interval_ms: u64, lease_s: u64) -> Instance {
        let mut cfg = InstanceConfig::new("VI_1", 51, priority, vec![vip()]);
        cfg.advert_interval = Duration::from_millis(interval_ms);
        cfg.vip_lease = Duration::from_secs(lease_s);
        Instance::new(cfg, ip(1))
    }

    /// Run every timer up to `until`, returning what they asked for.
    fn run_until(i: &mut Instance, until: Instant) -> Vec<Action> {
        let mut acts = Vec::new();
        while let Some(d) = i.next_deadline().filter(|d| *d <= until) {
            i.handle_timeout(d);
            acts.extend(drain(i));
        }
        acts
    }

    #[test]
    fn a_master_refreshes_its_lease_every_third_and_only_while_master() {
        let t0 = Instant::now();
        let mut i = leased(200, 100, 3);
        i.startup(t0);
        drain(&mut i);
        let up = i.next_deadline().unwrap();
        i.handle_timeout(up);
        assert_eq!(drain(&mut i)[1], Action::AddVips);
        let acts = run_until(&mut i, up + Duration::from_millis(3500));
        let refreshes = acts.iter().filter(|a| **a == Action::RefreshVips).count();
        assert_eq!(refreshes, 3, "one per second of a 3 s lease: {acts:?}");
        // A backup refreshes nothing, and a master that yields stops.
        let t = up + Duration::from_millis(3550);
        rx(&mut i, t, 200, 250).unwrap();
        assert_eq!(i.state(), State::Backup);
        drain(&mut i);
        let acts = run_until(&mut i, t + Duration::from_millis(300));
        assert!(!acts.contains(&Action::RefreshVips), "{acts:?}");
        // Without a lease (forever), no refresh at all.
        let mut f = leased(200, 100, 0);
        f.startup(t0);
        let acts = run_until(&mut f, t0 + Duration::from_secs(5));
        assert!(acts.contains(&Action::AddVips));
        assert!(!acts.contains(&Action::RefreshVips), "{acts:?}");
    }

    #[test]
    fn a_lease_change_on_reload_refreshes_at_once() {
        let t0 = Instant::now();
        let mut i = leased(200, 100, 0);
        i.startup(t0);
        let up = i.next_deadline().unwrap();
        i.handle_timeout(up);
        drain(&mut i);
        let mut cfg = i.config().clone();
        cfg.vip_lease = Duration::from_secs(2);
        assert!(i.reconfigure(up, cfg));
        assert_eq!(drain(&mut i), vec![Action::RefreshVips]);
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn a_master_thawed_after_master_down_listens_instead_of_claiming() {
        let t0 = Instant::now();
        let mut i = leased(100, 100, 1);
        i.startup(t0);
        let up = i.next_deadline().unwrap();
        i.handle_timeout(up);
        drain(&mut i);
        let due = i.adver_at.unwrap();
        // Late by less than master down (361 ms): still master, advert out.
        i.handle_timeout(due + Duration::from_millis(300));
        assert_eq!(i.state(), State::Master);
        assert!(drain(&mut i).contains(&Action::SendAdvert(adv(100, 10))));
        // Frozen for 2 s: its next timer fires far too late.
        let due = i.adver_at.unwrap();
        let thaw = due + Duration::from_secs(2);
        i.handle_timeout(thaw);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(
            drain(&mut i),
            vec![
                Action::RemoveVips,
                Action::StateChange {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::Stalled
                }
            ],
            "no advert, no refresh: the VIPs are dropped from the books"
        );
        // The successor's adverts (equal priority, lower address) keep it
        // backup with preempt on: no second takeover.
        let lower = IpAddr::V4(Ipv4Addr::new(9, 0, 0, 1));
        for k in 0..10u32 {
            let t = thaw + Duration::from_millis(100) * k;
            i.handle_timeout(t);
            i.handle_advert(t, lower, &adv(100, 10), ChecksumKind::Standard)
                .unwrap();
        }
        assert_eq!(i.state(), State::Backup);
        assert!(!drain(&mut i).contains(&Action::AddVips));
    }

    #[test]
    fn a_thawed_master_that_first_reads_a_backlog_advert_does_not_reassert() {
        let t0 = Instant::now();
        let mut i = leased(100, 100, 1);
        i.startup(t0);
        let up = i.next_deadline().unwrap();
        i.handle_timeout(up);
        drain(&mut i);
        // The first thing read after the thaw is the successor's advert
        // (lower address, equal priority): reasserting would make the
        // successor yield, a second takeover.
        let thaw = i.adver_at.unwrap() + Duration::from_secs(2);
        let lower = IpAddr::V4(Ipv4Addr::new(9, 0, 0, 1));
        i.handle_advert(thaw, lower, &adv(100, 10), ChecksumKind::Standard)
            .unwrap();
        assert_eq!(i.state(), State::Backup);
        let acts = drain(&mut i);
        assert!(
            !acts.iter().any(|a| matches!(a, Action::SendAdvert(_))),
            "{acts:?}"
        );
        assert_eq!(i.master(), Some((lower, 100)), "it follows the successor");
    }

    #[test]
    fn shutdown_from_master_sends_priority_zero_then_removes() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        i.shutdown(t0 + Duration::from_secs(6));
        let acts = drain(&mut i);
        assert_eq!(acts[0], Action::SendAdvert(adv(0, 100)));
        assert_eq!(acts[1], Action::RemoveVips);
        assert_eq!(i.state(), State::Initialize);
        assert_eq!(i.next_deadline(), None);
    }

    #[test]
    fn fault_removes_vips_and_recovery_returns_to_backup() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        let t = t0 + Duration::from_secs(6);
        i.set_fault(t, true);
        assert_eq!(i.state(), State::Fault);
        let acts = drain(&mut i);
        assert!(acts.contains(&Action::RemoveVips));
        assert_eq!(i.next_deadline(), None);
        // Adverts are ignored while faulted.
        rx(&mut i, t, 2, 100).unwrap();
        assert_eq!(i.state(), State::Fault);
        i.set_fault(t, false);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(
            i.next_deadline(),
            Some(t + Duration::from_micros(3_218_750))
        );
    }

    #[test]
    fn fault_before_startup_starts_in_fault() {
        let t0 = Instant::now();
        let mut i = inst(100);
        i.set_fault(t0, true);
        i.startup(t0);
        assert_eq!(i.state(), State::Fault);
    }

    #[test]
    fn priority_change_as_master_advertises_at_once_and_clamps() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        let t = t0 + Duration::from_millis(4400);
        i.set_priority(t, 0);
        assert_eq!(i.priority(), 1, "clamped to 1");
        assert_eq!(drain(&mut i), vec![Action::SendAdvert(adv(1, 100))]);
        i.set_priority(t, 255);
        assert_eq!(i.priority(), 254, "only the owner has 255");
    }

    #[test]
    fn reconfigure_changes_priority_in_place_and_refuses_hard_changes() {
        let t0 = Instant::now();
        let mut i = master(200, t0);
        let mut cfg = i.config().clone();
        cfg.priority = 220;
        assert!(i.reconfigure(t0, cfg.clone()));
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.priority(), 220);
        assert_eq!(drain(&mut i), vec![Action::SendAdvert(adv(220, 100))]);
        cfg.vrid = 52;
        assert!(!i.reconfigure(t0, cfg));
        assert_eq!(i.vrid(), 51);
    }

    /// A master that yields to a preferred router's advert at the instant
    /// the cluster marks the master lost must not be made master again by
    /// the successor rule "unless heard since the loss": it just heard one.
    #[test]
    fn a_yield_counts_as_heard_for_the_successor_rule() {
        let t0 = Instant::now();
        let mut i = master(100, t0);
        assert_eq!(rx(&mut i, t0, 2, 150), Ok(()));
        assert_eq!(i.state(), State::Backup);
        assert!(!i.take_over(t0, ClusterReason::SelectedSuccessor, Some(t0)));
        assert_eq!(i.state(), State::Backup);
        let later = t0 + Duration::from_millis(1);
        assert!(i.take_over(later, ClusterReason::SelectedSuccessor, Some(later)));
    }

    #[test]
    fn the_cluster_never_preempts_a_preferred_router_it_does_not_speak_for() {
        let t0 = Instant::now();
        let mut i = inst(100);
        i.startup(t0);
        // A higher-priority router that is no baton peer (keepalived, or a
        // peer whose channel is down) is master and alive.
        assert_eq!(rx(&mut i, t0, 2, 150), Ok(()));
        assert!(i.yields_to_foreign_master(t0));
        assert!(!i.take_over(t0, ClusterReason::Preempt, None));
        assert_eq!(i.state(), State::Backup);
        // Other takeovers still go through (a switchover, a successor).
        let mut j = inst(100);
        j.startup(t0);
        assert_eq!(rx(&mut j, t0, 2, 150), Ok(()));
        assert!(j.take_over(t0, ClusterReason::Switchover, None));
        // A baton peer's adverts prove liveness only: the cluster decides.
        let mut k = inst(100);
        k.startup(t0);
        k.set_gates(ClusterGates {
            peers: vec![ip(2)],
            defer_master_down: false,
        });
        assert_eq!(rx(&mut k, t0, 2, 150), Ok(()));
        assert!(!k.yields_to_foreign_master(t0));
        assert!(k.take_over(t0, ClusterReason::Preempt, None));
        // Once that router is silent for a master-down interval, it no
        // longer holds the cluster back.
        let later = t0 + i.master_down_interval() + Duration::from_millis(1);
        assert!(!i.yields_to_foreign_master(later));
    }

    #[test]
    fn v2_checks_auth_and_interval() {
        let t0 = Instant::now();
        let mut cfg = InstanceConfig::new("VI_1", 51, 100, vec![vip()]);
        cfg.version = Version::V2;
        cfg.auth = Some(*b"secret\0\0");
        let mut i = Instance::new(cfg, ip(1));
        i.startup(t0);
        let mut a = adv(150, 100);
        a.version = Version::V2;
        a.auth = Some(*b"secret\0\0");
        assert_eq!(
            i.handle_advert(t0, ip(2), &a, ChecksumKind::Standard),
            Ok(())
        );
        let mut bad = a.clone();
        bad.auth = Some(*b"wrong\0\0\0");
        assert_eq!(
            i.handle_advert(t0, ip(2), &bad, ChecksumKind::Standard),
            Err(Rejected::AuthMismatch)
        );
        let mut slow = a.clone();
        slow.interval_cs = 200;
        assert_eq!(
            i.handle_advert(t0, ip(2), &slow, ChecksumKind::Standard),
            Err(Rejected::IntervalMismatch)
        );
        let v3 = adv(150, 100);
        assert_eq!(
            i.handle_advert(t0, ip(2), &v3, ChecksumKind::Standard),
            Err(Rejected::VersionMismatch)
        );
        assert_eq!(i.stats().accepted, 1);
        assert_eq!(i.stats().drops(DropReason::AuthMismatch), 1);
        assert_eq!(i.stats().drops(DropReason::IntervalMismatch), 1);
        assert_eq!(i.stats().drops(DropReason::VersionMismatch), 1);
        assert_eq!(i.stats().dropped_total(), 3);
    }

    #[test]
    fn an_advert_with_another_address_list_is_dropped_and_counted() {
        let t0 = Instant::now();
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
        for (addresses, why) in [
            (vec![other], "one of ours missing"),
            (vec![vip(), other], "another count"),
            (vec![], "no address"),
        ] {
            let mut i = inst(100);
            i.startup(t0);
            let mut a = adv(150, 100);
            a.addresses = addresses;
            assert_eq!(
                i.handle_advert(t0, ip(2), &a, ChecksumKind::Standard),
                Err(Rejected::AddressList),
                "{why}"
            );
            assert_eq!(i.master(), None, "{why}: the advert is ignored");
            assert_eq!(i.stats().drops(DropReason::AddrListMismatch), 1, "{why}");
        }
        // Order does not matter: the same set in another order is ours.
        let mut cfg = InstanceConfig::new("VI_1", 51, 100, vec![vip(), ip(101)]);
        cfg.skip_check_adv_addr = false;
        let mut i = Instance::new(cfg, ip(1));
        i.startup(t0);
        let mut a = adv(150, 100);
        a.addresses = vec![ip(101), vip()];
        assert_eq!(
            i.handle_advert(t0, ip(2), &a, ChecksumKind::Standard),
            Ok(())
        );
    }

    #[test]
    fn skip_check_adv_addr_checks_only_a_new_master() {
        let t0 = Instant::now();
        let mut cfg = InstanceConfig::new("VI_1", 51, 100, vec![vip()]);
        cfg.skip_check_adv_addr = true;
        let mut i = Instance::new(cfg, ip(1));
        i.startup(t0);
        let mut wrong = adv(150, 100);
        wrong.addresses = vec![ip(99)];
        // A first advert from .2 is checked.
        assert_eq!(
            i.handle_advert(t0, ip(2), &wrong, ChecksumKind::Standard),
            Err(Rejected::AddressList)
        );
        // Once .2 is the master followed, its adverts are no longer checked.
        assert_eq!(rx(&mut i, t0, 2, 150), Ok(()));
        assert_eq!(
            i.handle_advert(t0, ip(2), &wrong, ChecksumKind::Standard),
            Ok(())
        );
        // Another router is checked again.
        assert_eq!(
            i.handle_advert(t0, ip(3), &wrong, ChecksumKind::Standard),
            Err(Rejected::AddressList)
        );
        assert_eq!(i.stats().drops(DropReason::AddrListMismatch), 2);
    }

    #[test]
    fn address_compare_is_unsigned_big_endian() {
        let a = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 255, 255, 255));
        assert!(addr_greater(a, b));
        assert!(!addr_greater(b, a));
        let c: IpAddr = "fe80::2".parse().unwrap();
        let d: IpAddr = "fe80::10".parse().unwrap();
        assert!(addr_greater(d, c));
        assert!(!addr_greater(a, c), "mixed families never compare greater");
    }

    // --- keepalived's AH (`auth_type AH`): the rules of handle_ah_advert ---

    const AH_KEY: [u8; ah::KEY_LEN] = *b"s3cret\0\0";
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    fn v4(addr: IpAddr) -> Ipv4Addr {
        match addr {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => panic!("IPv4 only"),
        }
    }

    /// A v2 instance at `local`: with `ah`, keepalived's AH keyed by
    /// AH_KEY; without, a PASS password of the same 8 bytes.
    fn v2_inst(priority: u8, local: u8, ah: bool, peers: &[u8]) -> Instance {
        let mut cfg = InstanceConfig::new("VI_1", 51, priority, vec![vip()]);
        cfg.version = Version::V2;
        cfg.auth = Some(AH_KEY);
        cfg.ah = ah;
        cfg.allowed_sources = peers.iter().map(|&p| ip(p)).collect();
        Instance::new(cfg, ip(local))
    }

    fn ah_inst(priority: u8, local: u8) -> Instance {
        v2_inst(priority, local, true, &[])
    }

    fn v2_adv(priority: u8) -> Repr {
        Repr {
            version: Version::V2,
            interval_cs: 100,
            ..adv(priority, 100)
        }
    }

    /// An AH datagram from `from` numbered `seq` (multicast, or unicast to
    /// 10.0.0.1 with a TTL the ICV leaves out).
    fn ah_datagram(from: u8, priority: u8, seq: u32, unicast: bool) -> Vec<u8> {
        let src = v4(ip(from));
        let (dst, ttl) = if unicast {
            (v4(ip(1)), 61)
        } else {
            (GROUP, 255)
        };
        let vrrp = ah::vrrp_message(&v2_adv(priority), src, dst).unwrap();
        let stamp = ah::Stamp { id: 1, seq };
        ah::emit(&AH_KEY, src, dst, ttl, stamp, unicast, &vrrp).unwrap()
    }

    fn ah_rx(
        i: &mut Instance,
        now: Instant,
        from: u8,
        priority: u8,
        seq: u32,
    ) -> Result<(), DropReason> {
        let d = ah_datagram(from, priority, seq, false);
        i.handle_ah_advert(now, &ah::parse(&d).unwrap(), false)
    }

    fn dropped(i: &Instance, what: &str) -> u64 {
        i.stats().dropped.get(what).copied().unwrap_or(0)
    }

    /// Backup to master by its master-down timer, actions drained.
    fn to_master(i: &mut Instance, now: Instant) -> Instant {
        let d = i.next_deadline().unwrap().max(now);
        i.handle_timeout(d);
        assert_eq!(i.state(), State::Master);
        drain(i);
        d
    }

    #[test]
    fn ah_accepts_only_numbers_above_the_counter() {
        let t0 = Instant::now();
        let mut i = ah_inst(100, 1);
        i.startup(t0);
        assert_eq!(ah_rx(&mut i, t0, 2, 200, 5), Ok(()));
        assert_eq!(i.ah_sequence(), 5);
        // The same number again (a replay), then an older one.
        assert_eq!(ah_rx(&mut i, t0, 2, 200, 5), Err(DropReason::AhReplay));
        assert_eq!(ah_rx(&mut i, t0, 2, 200, 3), Err(DropReason::AhReplay));
        assert_eq!(dropped(&i, "ah_replay"), 2);
        assert_eq!(i.ah_sequence(), 5, "a dropped advert moves nothing");
        assert_eq!(ah_rx(&mut i, t0, 2, 200, 6), Ok(()));
        assert_eq!(i.stats().accepted, 2);
        assert_eq!(i.master(), Some((ip(2), 200)));
    }

    #[test]
    fn ah_master_hearing_a_lower_priority_takes_its_number_plus_one() {
        let t0 = Instant::now();
        let mut i = ah_inst(200, 1);
        i.startup(t0);
        let t1 = to_master(&mut i, t0);
        assert_eq!(i.next_ah_stamp().seq, 1);
        assert_eq!(i.next_ah_stamp().seq, 2);
        assert_eq!(ah_rx(&mut i, t1, 2, 100, 10), Ok(()));
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.ah_sequence(), 11);
        assert_eq!(i.next_ah_stamp().seq, 12);
        // A higher priority is followed at its own number, no more.
        assert_eq!(ah_rx(&mut i, t1, 3, 250, 20), Ok(()));
        assert_eq!(i.state(), State::Backup);
        assert_eq!(i.ah_sequence(), 20);
    }

    #[test]
    fn ah_counter_restarts_when_becoming_master_after_it_ran_out() {
        let t0 = Instant::now();
        let mut i = ah_inst(200, 1);
        i.startup(t0);
        let t1 = to_master(&mut i, t0);
        // A lower priority near the end of the numbers: the counter takes
        // 0xFFFF_FFFE and can go no further.
        assert_eq!(ah_rx(&mut i, t1, 2, 100, 0xFFFF_FFFD), Ok(()));
        assert_eq!(i.next_ah_stamp().seq, 0xFFFF_FFFE);
        assert_eq!(i.next_ah_stamp().seq, 0xFFFF_FFFE);
        // Out and back (its link): becoming master again restarts at 1.
        i.set_fault(t1, true);
        i.set_fault(t1, false);
        drain(&mut i);
        to_master(&mut i, t1);
        assert_eq!(i.next_ah_stamp().seq, 1);
        // Not ran out: becoming master keeps the count.
        i.set_fault(t1, true);
        i.set_fault(t1, false);
        to_master(&mut i, t1);
        assert_eq!(i.next_ah_stamp().seq, 2);
    }

    /// Sends `from`'s next advert to `to`, as the node would.
    fn ah_send(from: &mut Instance, to: &mut Instance, now: Instant) -> Result<(), DropReason> {
        let seq = from.next_ah_stamp().seq;
        let IpAddr::V4(src) = from.local_addr() else {
            unreachable!()
        };
        let d = ah_datagram(src.octets()[3], from.priority(), seq, false);
        to.handle_ah_advert(now, &ah::parse(&d).unwrap(), false)
    }

    #[test]
    fn ah_restarted_sender_is_heard_again_once_it_learned_the_peers_number() {
        let t0 = Instant::now();
        let mut a = ah_inst(200, 1);
        let mut b = ah_inst(100, 2);
        a.startup(t0);
        b.startup(t0);
        let mut now = to_master(&mut a, t0);
        for _ in 0..50 {
            assert_eq!(ah_send(&mut a, &mut b, now), Ok(()));
        }
        assert_eq!(b.ah_sequence(), 50);
        // a restarts: its counter starts again at 0, and as master it
        // sends 1, which b (backup) drops.
        let mut a = ah_inst(200, 1);
        a.startup(now);
        now = to_master(&mut a, now);
        assert_eq!(ah_send(&mut a, &mut b, now), Err(DropReason::AhReplay));
        assert_eq!(b.state(), State::Backup);
        // b's master-down timer runs out: b becomes master above 50; a
        // hears a lower priority, takes that number plus one, and sends
        // above it: b accepts and yields.
        now = to_master(&mut b, now);
        assert_eq!(ah_send(&mut b, &mut a, now), Ok(()));
        assert_eq!(a.ah_sequence(), 52);
        assert_eq!(ah_send(&mut a, &mut b, now), Ok(()));
        assert_eq!(b.state(), State::Backup);
        assert_eq!(b.ah_sequence(), 53);
        assert_eq!(dropped(&b, "ah_replay"), 1);
    }

    #[test]
    fn ah_and_plain_instances_refuse_each_others_adverts() {
        let t0 = Instant::now();
        // AH instance, plain advert (even with the right password in it).
        let mut i = ah_inst(100, 1);
        i.startup(t0);
        let plain = Repr {
            auth: Some(AH_KEY),
            ..v2_adv(200)
        };
        let r = i.handle_advert(t0, ip(2), &plain, ChecksumKind::Standard);
        assert_eq!(r, Err(Rejected::AuthMismatch));
        assert_eq!(dropped(&i, "auth_mismatch"), 1);
        assert_eq!(i.master(), None);
        // PASS instance with the same 8 bytes, AH advert.
        let mut p = v2_inst(100, 1, false, &[]);
        p.startup(t0);
        assert_eq!(ah_rx(&mut p, t0, 2, 200, 1), Err(DropReason::AuthMismatch));
        // Instance without authentication, AH advert.
        let mut cfg = InstanceConfig::new("VI_1", 51, 100, vec![vip()]);
        cfg.version = Version::V2;
        let mut n = Instance::new(cfg, ip(1));
        n.startup(t0);
        assert_eq!(ah_rx(&mut n, t0, 2, 200, 1), Err(DropReason::AuthMismatch));
        for x in [&p, &n] {
            assert_eq!(dropped(x, "auth_mismatch"), 1);
            assert_eq!((x.stats().accepted, x.master()), (0, None));
        }
    }

    #[test]
    fn ah_unicast_stranger_is_refused_before_its_number_counts() {
        let t0 = Instant::now();
        let mut i = v2_inst(100, 1, true, &[2]);
        i.startup(t0);
        let rx = |i: &mut Instance, from: u8, seq: u32| {
            let d = ah_datagram(from, 200, seq, true);
            i.handle_ah_advert(t0, &ah::parse(&d).unwrap(), true)
        };
        // Right key, but not a peer: dropped, and the counter untouched.
        assert_eq!(rx(&mut i, 9, 1_000_000), Err(DropReason::UnknownUnicastSrc));
        assert_eq!(dropped(&i, "unknown_unicast_src"), 1);
        assert_eq!(i.ah_sequence(), 0);
        // The peer (TTL 61, left out of the ICV) is heard from 1 on.
        assert_eq!(rx(&mut i, 2, 1), Ok(()));
        assert_eq!(i.master(), Some((ip(2), 200)));
        // A unicast check value does not pass as multicast.
        let d = ah_datagram(2, 200, 2, true);
        let r = i.handle_ah_advert(t0, &ah::parse(&d).unwrap(), false);
        assert_eq!(r, Err(DropReason::AhBadIcv));
    }
}
