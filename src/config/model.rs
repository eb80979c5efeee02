//! The one typed configuration that the rest of baton uses.
//!
//! Both readers (baton.toml and, later, keepalived.conf) produce a [`Config`];
//! [`super::check`] validates it. The model is format-neutral: plain structs of
//! std types, no serde, no source positions (those live in
//! [`super::diag::Origins`], beside the model).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use super::route::{Prefix, Route, RouteKind, Rule, RuleKind};
pub use crate::wire::vrrp::Version;

/// The longest timer keepalived accepts for its second-counted settings
/// (`UINT_MAX` microseconds, in whole seconds: 1h 11m 34s). baton's bound
/// for the GARP delays and intervals, `vrrp_startup_delay` and a
/// `vrrp_script`'s `interval` and `timeout`, so that every keepalived.conf
/// keepalived accepts is accepted.
pub const MAX_TIMER: Duration = Duration::from_secs(4294);

/// A whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub global: Global,
    pub instances: Vec<Instance>,
    /// VRRP sync groups: instances that change state together.
    pub sync_groups: Vec<SyncGroup>,
    /// The cluster channel; off when `None`.
    pub cluster: Option<Cluster>,
    /// Files kept in sync over the cluster channel.
    pub sync: Vec<SyncEntry>,
    /// Health-check commands that instances track (keepalived's
    /// `vrrp_script`).
    pub vrrp_scripts: Vec<VrrpScript>,
    /// Files holding a number that instances track (keepalived's
    /// `track_file`).
    pub track_files: Vec<TrackFile>,
    /// Addresses added at start and removed at stop, whatever the VRRP
    /// states (keepalived's `static_ipaddress`).
    pub static_ips: Vec<Vip>,
    /// Routes added at start and removed at stop (`static_routes`).
    pub static_routes: Vec<Route>,
    /// Policy rules added at start and removed at stop (`static_rules`).
    pub static_rules: Vec<Rule>,
}

impl Config {
    /// An empty configuration with default globals.
    pub fn new(router_id: impl Into<String>) -> Self {
        Config {
            global: Global::new(router_id),
            instances: Vec::new(),
            sync_groups: Vec::new(),
            cluster: None,
            sync: Vec::new(),
            vrrp_scripts: Vec::new(),
            track_files: Vec::new(),
            static_ips: Vec::new(),
            static_routes: Vec::new(),
            static_rules: Vec::new(),
        }
    }

    /// The instance called `name`, if any.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The `vrrp_script` called `name`, if any.
    pub fn vrrp_script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }

    /// The `track_file` called `name`, if any.
    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|f| f.name == name)
    }

    /// The sync group `instance` belongs to, if any.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }

    /// Every tracked interface's name, of instances and sync groups.
    pub fn tracked_interface_names(&self) -> std::collections::BTreeSet<&str> {
        let inst = self.instances.iter().flat_map(|i| &i.track_interfaces);
        let groups = self.sync_groups.iter().flat_map(|g| &g.track_interfaces);
        inst.chain(groups).map(|t| t.name.as_str()).collect()
    }

    /// Every tracked `vrrp_script`'s name, of instances and sync groups.
    pub fn tracked_script_names(&self) -> std::collections::BTreeSet<&str> {
        let inst = self.instances.iter().flat_map(|i| &i.track_scripts);
        let groups = self.sync_groups.iter().flat_map(|g| &g.track_scripts);
        inst.chain(groups).map(|t| t.name.as_str()).collect()
    }

    /// Every tracked `track_file`'s name, of instances and sync groups.
    pub fn tracked_file_names(&self) -> std::collections::BTreeSet<&str> {
        let inst = self.instances.iter().flat_map(|i| &i.track_files);
        let groups = self.sync_groups.iter().flat_map(|g| &g.track_files);
        inst.chain(groups).map(|t| t.name.as_str()).collect()
    }
}

/// Settings of the whole agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Names this node in logs and in the cluster channel. Default: the short
    /// host name (the reader is given it; see [`super::Defaults`]).
    pub router_id: String,
    pub control_socket: PathBuf,
    pub state_dir: PathBuf,
    /// A FIFO that every state change is written to, one line each:
    /// `INSTANCE "VI_1" MASTER 100` / `GROUP "G1" BACKUP 0` (keepalived's
    /// `vrrp_notify_fifo` format).
    pub notify_fifo: Option<PathBuf>,
    /// A command started once that reads `notify_fifo` (the FIFO's path is
    /// appended as its last argument).
    pub notify_fifo_script: Option<String>,
    /// Who runs scripts: `user` or `user:group`. Default: the user
    /// `keepalived_script` if it exists, else the agent's own user.
    pub script_user: Option<String>,
    /// Refuse to run a script as root when a non-root user could change it.
    pub enable_script_security: bool,
    /// Instances start (leave INIT) this long after the agent does. At most
    /// [`Global::MAX_STARTUP_DELAY`].
    pub startup_delay: Duration,
    /// Serve Prometheus metrics (`GET /metrics`) on this address. None:
    /// no metrics endpoint.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The group adverts are sent to and received on (keepalived's
    /// `vrrp_mcast_group4`). Default 224.0.0.18.
    pub mcast_group4: Ipv4Addr,
    /// The IPv6 group (keepalived's `vrrp_mcast_group6`). Default ff02::12.
    pub mcast_group6: Ipv6Addr,
    /// The network namespace the agent runs in (keepalived's
    /// `net_namespace`; `baton run -s NAME` overrides it).
    pub net_namespace: Option<String>,
    /// The default of every instance's `skip_check_adv_addr`
    /// (keepalived's `vrrp_skip_check_adv_addr`).
    pub skip_check_adv_addr: bool,
    /// Switch to SCHED_RR when the event loop runs late, raising the
    /// realtime priority one step per late turn up to this (keepalived's
    /// `max_auto_priority`; 0: never, the default).
    pub max_auto_priority: u8,
    /// How late the loop must run to count as late (keepalived's
    /// `min_auto_priority_delay`). Default 1 s.
    pub min_auto_priority_delay: Duration,
    /// Start with SCHED_RR at this priority (keepalived's
    /// `vrrp_rt_priority`).
    pub rt_priority: Option<u8>,
    /// RLIMIT_RTTIME in microseconds while realtime (keepalived's
    /// `vrrp_rlimit_rttime`). Default [`Global::DEFAULT_RLIMIT_RTTIME`].
    pub rlimit_rttime: Option<u64>,
}

impl Global {
    pub const DEFAULT_MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    pub const DEFAULT_MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
    pub const DEFAULT_MIN_AUTO_PRIORITY_DELAY: Duration = Duration::from_secs(1);
    /// keepalived's default RLIMIT_RTTIME (10 ms of CPU without blocking).
    pub const DEFAULT_RLIMIT_RTTIME: u64 = 10_000;
    /// sched_get_priority_max(SCHED_RR) on Linux.
    pub const MAX_RT_PRIORITY: u8 = 99;
    pub const DEFAULT_CONTROL_SOCKET: &'static str = "/run/baton/baton.sock";
    pub const DEFAULT_STATE_DIR: &'static str = "/var/lib/baton";
    pub const MAX_STARTUP_DELAY: Duration = MAX_TIMER;

    pub fn new(router_id: impl Into<String>) -> Self {
        Global {
            router_id: router_id.into(),
            control_socket: PathBuf::from(Self::DEFAULT_CONTROL_SOCKET),
            state_dir: PathBuf::from(Self::DEFAULT_STATE_DIR),
            notify_fifo: None,
            notify_fifo_script: None,
            script_user: None,
            enable_script_security: false,
            startup_delay: Duration::ZERO,
            metrics_listen: None,
            mcast_group4: Self::DEFAULT_MCAST_GROUP4,
            mcast_group6: Self::DEFAULT_MCAST_GROUP6,
            net_namespace: None,
            skip_check_adv_addr: false,
            max_auto_priority: 0,
            min_auto_priority_delay: Self::DEFAULT_MIN_AUTO_PRIORITY_DELAY,
            rt_priority: None,
            rlimit_rttime: None,
        }
    }
}

/// Address family of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The state an instance announces it starts in (keepalived's `state`).
/// Accepted for compatibility; the election decides the real state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitialState {
    Backup,
    Master,
}

/// How a VRRPv2 instance authenticates its adverts (with `auth_pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthType {
    /// Simple text password in the advert (auth type 1).
    #[default]
    Pass,
    /// keepalived's IPsec AH: an HMAC-MD5-96 keyed by the password, in an
    /// AH header (IP protocol 51) before the advert. IPv4 only.
    Ah,
}

/// How an instance moves its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// VRRP on one layer-2 segment: adverts, gratuitous ARP / unsolicited NA.
    #[default]
    Arp,
    /// No VRRP: the cluster channel elects the holder, which adds the VIPs
    /// to its interface (default `lo`) for the node's routing daemon (FRR)
    /// to announce; they move by routing, across subnets.
    Route,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Arp => "arp",
            Mode::Route => "route",
        }
    }
}

/// One virtual router (keepalived's `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// At most [`Instance::MAX_NAME_LEN`] bytes (it travels in cluster
    /// messages and notify lines).
    pub name: String,
    pub interface: String,
    /// 1..=255.
    pub vrid: u8,
    /// 1..=255; 255 means this node owns the addresses.
    pub priority: u8,
    pub version: Version,
    /// v3: a multiple of 10 ms in 10 ms..=40.95 s; v2: whole seconds 1..=255.
    pub advert_interval: Duration,
    pub preempt: bool,
    /// At most 1000 s.
    pub preempt_delay: Duration,
    /// At least one; all of one family.
    pub virtual_ips: Vec<Vip>,
    /// Source address of unicast adverts (default: the interface's primary).
    pub unicast_src: Option<IpAddr>,
    /// Source address of multicast adverts (default: the interface's
    /// primary).
    pub mcast_src: Option<IpAddr>,
    /// Unicast mode when non-empty.
    pub unicast_peers: Vec<IpAddr>,
    /// v2 simple text authentication, at most 8 bytes.
    pub auth_pass: Option<String>,
    /// What `auth_pass` is used for.
    pub auth_type: AuthType,
    /// Checksum v3-over-IPv4 adverts as RFC 9568 says (no pseudo-header)
    /// instead of keepalived's default.
    pub v3_checksum_as_v2: bool,
    pub garp: Garp,
    /// Interfaces whose link state changes this instance's priority, or
    /// (weight 0) puts it in FAULT while down.
    pub track_interfaces: Vec<TrackInterface>,
    /// [`Config::vrrp_scripts`] this instance tracks.
    pub track_scripts: Vec<TrackRef>,
    /// [`Config::track_files`] this instance tracks.
    pub track_files: Vec<TrackRef>,
    pub initial_state: Option<InitialState>,
    /// Commands run on state changes.
    pub notify: Notify,
    /// Addresses added and removed with the virtual ones but not carried
    /// in adverts (keepalived's `virtual_ipaddress_excluded`); any family.
    pub virtual_ips_excluded: Vec<Vip>,
    /// Run on a macvlan with the virtual router MAC (keepalived's
    /// `use_vmac`).
    pub use_vmac: bool,
    /// The macvlan's name; default `vrrp.VRID` (IPv4) or `vrrp6.VRID`
    /// (IPv6), as keepalived names it.
    pub vmac_interface: Option<String>,
    /// With `use_vmac`: adverts leave by the base interface, with its own
    /// MAC; the VIPs stay on the macvlan (keepalived's `vmac_xmit_base`).
    pub vmac_xmit_base: bool,
    /// Routes added on becoming master (after the VIPs) and removed on
    /// leaving it (before them): keepalived's `virtual_routes`.
    pub virtual_routes: Vec<Route>,
    /// Policy rules added and removed with the routes (`virtual_rules`).
    pub virtual_rules: Vec<Rule>,
    /// keepalived's `strict_mode` / `vrrp_strict`: RFC-strict behaviour.
    /// Stored; baton's checks are already strict about what the RFCs refuse.
    pub strict_mode: bool,
    /// The instance's own interface going down does not fault it
    /// (keepalived's `dont_track_primary`).
    pub dont_track_primary: bool,
    /// Check an advert's address list only when the master changes
    /// (keepalived's `skip_check_adv_addr`); None: the global default.
    pub skip_check_adv_addr: Option<bool>,
    /// The valid lifetime the VIPs are added with, refreshed while MASTER
    /// (a baton extension): None is "auto" (derived from the master-down
    /// interval, [`crate::vrrp::timers::auto_vip_lease`]); zero is forever
    /// (keepalived's behaviour); otherwise whole seconds up to
    /// [`Instance::MAX_VIP_LEASE`].
    pub vip_lease: Option<Duration>,
    /// ARP (VRRP) or route mode.
    pub mode: Mode,
    /// Route mode: how long a holder replaced by another keeps its VIPs
    /// (with the release metric, unannounced) before it removes them.
    pub release_delay: Duration,
}

impl Instance {
    pub const DEFAULT_PRIORITY: u8 = 100;
    pub const OWNER_PRIORITY: u8 = 255;
    pub const DEFAULT_VERSION: Version = Version::V3;
    pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
    pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
    pub const MAX_NAME_LEN: usize = 64;
    /// Where a route-mode instance puts its VIPs unless told otherwise.
    pub const DEFAULT_ROUTE_INTERFACE: &'static str = "lo";
    /// A route-mode instance's VIP lease unless told otherwise: a holder
    /// killed outright stops answering (and FRR stops announcing) within
    /// this, plus the kernel's one-second rounding.
    pub const DEFAULT_ROUTE_VIP_LEASE: Duration = Duration::from_secs(2);
    /// Route mode's default `release_delay`: a few BGP updates' time.
    pub const DEFAULT_RELEASE_DELAY: Duration = Duration::from_millis(500);
    /// The longest `release_delay` (it must stay below the VIP lease's
    /// refresh, which stops with the holder's role).
    pub const MAX_RELEASE_DELAY: Duration = Duration::from_secs(1);
    /// The longest `vip_lease`: a dead node keeps answering for its VIPs
    /// this long, which past a day is no lease at all (use 0: forever).
    pub const MAX_VIP_LEASE: Duration = Duration::from_secs(86_400);

    /// An instance with every optional setting at its default and no VIPs.
    pub fn new(name: impl Into<String>, interface: impl Into<String>, vrid: u8) -> Self {
        Instance {
            name: name.into(),
            interface: interface.into(),
            vrid,
            priority: Self::DEFAULT_PRIORITY,
            version: Self::DEFAULT_VERSION,
            advert_interval: Self::DEFAULT_ADVERT_INTERVAL,
            preempt: true,
            preempt_delay: Duration::ZERO,
            virtual_ips: Vec::new(),
            unicast_src: None,
            mcast_src: None,
            unicast_peers: Vec::new(),
            auth_pass: None,
            auth_type: AuthType::Pass,
            v3_checksum_as_v2: false,
            garp: Garp::default(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            initial_state: None,
            notify: Notify::default(),
            virtual_ips_excluded: Vec::new(),
            use_vmac: false,
            vmac_interface: None,
            vmac_xmit_base: false,
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            strict_mode: false,
            dont_track_primary: false,
            skip_check_adv_addr: None,
            vip_lease: None,
            mode: Mode::Arp,
            release_delay: Self::DEFAULT_RELEASE_DELAY,
        }
    }

    /// A route-mode instance ([`Mode::Route`]): on `lo`, no VRID.
    pub fn new_route(name: impl Into<String>) -> Self {
        let mut i = Instance::new(name, Self::DEFAULT_ROUTE_INTERFACE, 0);
        i.mode = Mode::Route;
        i
    }

    pub fn is_route(&self) -> bool {
        self.mode == Mode::Route
    }

    /// The family of the virtual addresses (of the first one; a checked
    /// config has one family). IPv4 for an instance without addresses.
    pub fn family(&self) -> Family {
        self.virtual_ips
            .first()
            .map(|v| Family::of(&v.addr))
            .unwrap_or(Family::V4)
    }

    /// Priority 255: this node owns the virtual addresses.
    pub fn address_owner(&self) -> bool {
        self.priority == Self::OWNER_PRIORITY
    }

    /// The priority to advertise given the sum of the weights of what is
    /// tracked (each counted by the rules of [`TrackInterface`],
    /// [`TrackRef`] and [`VrrpScript`]): `priority + weights` clamped to
    /// 1..=254. An address owner (255) keeps 255, as keepalived does.
    pub fn effective_priority(&self, weights: i64) -> u8 {
        if self.address_owner() {
            return Self::OWNER_PRIORITY;
        }
        let p = (i64::from(self.priority) + weights).clamp(1, 254);
        u8::try_from(p).unwrap_or(254)
    }
}

/// A tracked interface. Weight 0: FAULT while the link is down. Otherwise
/// a positive weight is added while the link is up, a negative one added
/// while it is down; `reverse` swaps up and down.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackInterface {
    pub name: String,
    /// -253..=253.
    pub weight: i32,
    pub reverse: bool,
}

impl TrackInterface {
    pub fn new(name: impl Into<String>) -> Self {
        TrackInterface {
            name: name.into(),
            weight: 0,
            reverse: false,
        }
    }
}

/// An instance's reference to a [`VrrpScript`] or [`TrackFile`] by name,
/// optionally overriding its weight (keepalived's `track_script { NAME
/// weight W reverse }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackRef {
    pub name: String,
    /// Replaces the script's or file's own weight. Scripts: -253..=253;
    /// files: -254..=254.
    pub weight_override: Option<i32>,
    /// Swaps the direction of the weight (and, with weight 0, makes a
    /// success the fault).
    pub reverse: bool,
}

impl TrackRef {
    pub fn new(name: impl Into<String>) -> Self {
        TrackRef {
            name: name.into(),
            weight_override: None,
            reverse: false,
        }
    }
}

/// A health-check command run every `interval` (keepalived's `vrrp_script`).
/// It is down after `fall` consecutive failures (a non-zero exit or a
/// timeout) and up after `rise` consecutive successes. Weight 0: an
/// instance tracking it is in FAULT while it is down. A positive weight is
/// added to the priority while it is up, a negative one while it is down;
/// `weight_reverse` swaps up and down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    pub name: String,
    /// The command line. Words are separated by spaces; a word containing
    /// spaces is in single quotes (keepalived's convention). No shell.
    pub script: String,
    /// Not 0; at most [`VrrpScript::MAX_INTERVAL`].
    pub interval: Duration,
    /// Default: `interval`. Not 0; at most [`VrrpScript::MAX_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// -253..=253.
    pub weight: i32,
    pub weight_reverse: bool,
    /// 1..=[`VrrpScript::MAX_RISE_FALL`].
    pub rise: u32,
    /// 1..=[`VrrpScript::MAX_RISE_FALL`].
    pub fall: u32,
    /// `user` or `user:group`; default: [`Global::script_user`].
    pub user: Option<String>,
    /// Start as down (failed) rather than up.
    pub init_fail: bool,
}

impl VrrpScript {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    pub const MAX_INTERVAL: Duration = MAX_TIMER;
    pub const MAX_TIMEOUT: Duration = MAX_TIMER;
    /// keepalived accepts up to `INT_MAX`; a thousand checks in a row is
    /// already more than any health check needs.
    pub const MAX_RISE_FALL: u32 = 1000;

    pub fn new(name: impl Into<String>, script: impl Into<String>) -> Self {
        VrrpScript {
            name: name.into(),
            script: script.into(),
            interval: Self::DEFAULT_INTERVAL,
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        }
    }
}

/// A file holding a number, re-read when it changes (keepalived's
/// `track_file`). Weight 0: a non-zero value means FAULT. Otherwise the
/// value times the weight is added to the priority (negated with
/// `reverse`); below -253 means FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub name: String,
    pub path: PathBuf,
    /// Default 1; -[`TrackFile::MAX_WEIGHT`]..=[`TrackFile::MAX_WEIGHT`].
    pub weight: i32,
    pub reverse: bool,
}

impl TrackFile {
    /// keepalived's range for a track_file weight.
    pub const MAX_WEIGHT: i32 = 254;
}

/// Commands run on state changes, each a command line as
/// [`VrrpScript::script`]. `generic` runs after the specific one with four
/// more arguments: `INSTANCE`|`GROUP`, the name, the new state
/// (`MASTER`, `BACKUP`, `FAULT`, `STOP`) and the priority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    /// On stopping (instances only).
    pub stop: Option<String>,
    pub generic: Option<String>,
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self == &Notify::default()
    }
}

/// A virtual address: `10.0.0.100/24`, `fd00::100/64`, `10.0.0.100` (a host
/// prefix), optionally followed by `dev IFNAME` when it lives on another
/// interface than the instance's, `brd ADDRESS`, `label LABEL` and
/// `scope SCOPE` (as `ip address add`), in any order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub dev: Option<String>,
    /// IPv4 broadcast address (`brd +` / `brd -` are read as the
    /// subnet's host bits set / clear). None: none, as `ip address add`
    /// and keepalived do.
    pub brd: Option<IpAddr>,
    /// IPv4 address label (`eth0:1`), at most 15 bytes.
    pub label: Option<String>,
    /// `host`, `link`, `site`, `global`, `nowhere` or a number 0..=255.
    pub scope: Option<String>,
}

const VIP_SCOPES: &[&str] = &["host", "link", "site", "global", "nowhere"];

impl Vip {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

/// Why a VIP, peer or other textual value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl FromStr for Vip {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let Some(cidr) = words.next() else {
            return Err(ParseError("empty address".into()));
        };
        let (mut dev, mut brd, mut label, mut scope) = (None, None, None, None);
        while let Some(option) = words.next() {
            let slot = match option {
                "dev" => &mut dev,
                "brd" | "broadcast" => &mut brd,
                "label" => &mut label,
                "scope" => &mut scope,
                _ => {
                    return Err(ParseError(format!(
                        "\"{s}\": unknown option \"{option}\" (ADDRESS[/PREFIX] \
                         [dev IFNAME] [brd ADDRESS] [label LABEL] [scope SCOPE])"
                    )))
                }
            };
            match words.next() {
                Some(value) if slot.is_none() => *slot = Some(value.to_string()),
                Some(_) => return Err(ParseError(format!("\"{s}\": {option} given twice"))),
                None => return Err(ParseError(format!("\"{s}\": {option} needs a value"))),
            }
        }

        if let Some(sc) = &scope {
            if !VIP_SCOPES.contains(&sc.as_str()) && sc.parse::<u8>().is_err() {
                return Err(ParseError(format!(
                    "\"{s}\": scope \"{sc}\" is not host, link, site, global, nowhere or 0..255"
                )));
            }
        }
        let (addr_text, prefix_text) = match cidr.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (cidr, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| ParseError(format!("\"{addr_text}\" is not an IP address")))?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix_len = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) && !p.starts_with('+') => n,
                _ => {
                    return Err(ParseError(format!(
                        "\"{cidr}\": prefix length \"{p}\" is not in 1..={max}"
                    )))
                }
            },
        };
        // keepalived's (and ip's) `brd +` / `brd -`: the subnet's host bits
        // set or clear.
        let brd =
            match (brd.as_deref(), addr) {
                (None, _) => None,
                (Some(sign @ ("+" | "-")), IpAddr::V4(a)) => {
                    let mask = u32::MAX
                        .checked_shl(32 - u32::from(prefix_len))
                        .unwrap_or(0);
                    let bits = if sign == "+" {
                        u32::from(a) | !mask
                    } else {
                        u32::from(a) & mask
                    };
                    Some(IpAddr::V4(bits.into()))
                }
                (Some(b), _) => Some(b.parse::<IpAddr>().map_err(|_| {
                    ParseError(format!("\"{s}\": brd \"{b}\" is not an IP address"))
                })?),
            };
        Ok(Vip {
            addr,
            prefix_len,
            dev,
            brd,
            label,
            scope,
        })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(brd) = &self.brd {
            write!(f, " brd {brd}")?;
        }
        if let Some(label) = &self.label {
            write!(f, " label {label}")?;
        }
        if let Some(scope) = &self.scope {
            write!(f, " scope {scope}")?;
        }
        Ok(())
    }
}

/// Gratuitous ARP / unsolicited neighbour advertisement on becoming master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garp {
    /// Delay before the second burst; at most [`Garp::MAX_DELAY`].
    pub master_delay: Duration,
    /// Packets per burst; 1..=[`Garp::MAX_REPEAT`].
    pub master_repeat: u32,
    /// Period of the refresh bursts while master; none by default. At most
    /// [`Garp::MAX_REFRESH`].
    pub master_refresh: Option<Duration>,
    /// Packets per refresh burst; 1..=[`Garp::MAX_REPEAT`].
    pub master_refresh_repeat: u32,
    /// Delay between the ARP packets of a burst; at most
    /// [`Garp::MAX_INTERVAL`].
    pub interval: Duration,
    /// Delay between the neighbour advertisements of a burst (IPv6); at
    /// most [`Garp::MAX_INTERVAL`].
    pub na_interval: Duration,
    /// Delay of the second burst sent by a master that received a lower
    /// priority advert; default (`None`): `master_delay`. At most
    /// [`Garp::MAX_DELAY`].
    pub lower_prio_delay: Option<Duration>,
    /// Packets per burst on receiving a lower priority advert as master;
    /// default (`None`): `master_repeat`. At most [`Garp::MAX_REPEAT`].
    pub lower_prio_repeat: Option<u32>,
}

impl Garp {
    /// keepalived's own limit for `garp_master_delay` and
    /// `garp_lower_prio_delay`.
    pub const MAX_DELAY: Duration = MAX_TIMER;
    /// keepalived's limit for `garp_interval` and `gna_interval` (it logs
    /// anything from 1 s on as "very large").
    pub const MAX_INTERVAL: Duration = MAX_TIMER;
    /// keepalived takes up to `UINT_MAX` seconds; a day between refreshes
    /// is already no refresh to speak of.
    pub const MAX_REFRESH: Duration = Duration::from_secs(86_400);
    /// Packets per burst, for each of the three repeat counts. keepalived
    /// takes up to `UINT_MAX`, which would flood the segment; its default
    /// is 5.
    pub const MAX_REPEAT: u32 = 1000;

    pub fn lower_prio_delay(&self) -> Duration {
        self.lower_prio_delay.unwrap_or(self.master_delay)
    }

    pub fn lower_prio_repeat(&self) -> u32 {
        self.lower_prio_repeat.unwrap_or(self.master_repeat)
    }
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            na_interval: Duration::ZERO,
            lower_prio_delay: None,
            lower_prio_repeat: None,
        }
    }
}

/// A VRRP sync group: its instances move between states together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
    /// Commands run when the group changes state (`stop` is not used).
    pub notify: Notify,
    /// Tracked interfaces, scripts and files of the whole group: each
    /// applies to every member as if listed in the member (keepalived 2.x).
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackRef>,
    pub track_files: Vec<TrackRef>,
    /// Let the members' own weighted tracking count (keepalived's
    /// `sync_group_tracking_weight`). Without it, as keepalived: a member's
    /// weighted track_interface counts as weight 0 (FAULT), its weighted
    /// track_script is ignored, its track_file of the default weight 1
    /// counts as weight 0 and one of any other weight is ignored.
    pub tracking_weight: bool,
}

/// How the cluster channel picks the next master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Selection {
    /// The VRRP rule: effective priority, then primary address.
    Priority,
    /// The configured succession list [`Cluster::order`].
    Order,
}

/// The cluster channel (TCP full mesh between named nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// This node's name. Default: `global.router_id`. At most
    /// [`Cluster::MAX_NODE_NAME_LEN`] bytes.
    pub node: String,
    pub listen: SocketAddr,
    pub peers: Vec<Peer>,
    pub key_file: PathBuf,
    /// 10 ms..=[`Cluster::MAX_HEARTBEAT_INTERVAL`]; default 100 ms.
    pub heartbeat_interval: Duration,
    pub selection: Selection,
    /// Node names, first preferred; used with [`Selection::Order`].
    pub order: Vec<String>,
    /// The instance whose master is the control node for data sync
    /// (`[[sync]]`). Default: the first instance.
    pub sync_instance: Option<String>,
    /// Accept VRRP adverts from routers that are not cluster members
    /// (keepalived or FRR in the same virtual router: a mixed cluster).
    /// Off: such adverts are dropped and counted (`foreign_advert`).
    pub accept_foreign_adverts: bool,
    /// Refuse a Hello whose source address is not the configured address
    /// of the peer it names (`wrong_source`). On by default: a baton node
    /// dials from its listen address. Off for peers behind NAT or that
    /// listen on a wildcard address of a multi-homed host.
    pub check_peer_source: bool,
    /// After a reload brings a new key (the key file changed), the old
    /// key is still accepted from peers for this long, so a rolling key
    /// rotation never splits the cluster. At most [`Cluster::MAX_KEY_GRACE`].
    pub key_grace: Duration,
}

impl Cluster {
    pub const DEFAULT_KEY_GRACE: Duration = Duration::from_secs(600);
    pub const MAX_KEY_GRACE: Duration = Duration::from_secs(7 * 86_400);
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
    pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
    /// A peer is dead after three silent intervals; past 10 s a failed node
    /// would go unnoticed for half a minute.
    pub const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
    /// The longest node or peer name: what a Hello can carry.
    pub const MAX_NODE_NAME_LEN: usize = crate::wire::frame::MAX_NAME_LEN;
}

/// Another node of the cluster: `name=ip:port` (`name=[v6]:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// At most [`Cluster::MAX_NODE_NAME_LEN`] bytes.
    pub name: String,
    pub addr: SocketAddr,
}

impl FromStr for Peer {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((name, addr)) = s.split_once('=') else {
            return Err(ParseError(format!("\"{s}\" is not NAME=IP:PORT")));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError(format!("\"{s}\" has an empty node name")));
        }
        let addr: SocketAddr = addr.trim().parse().map_err(|_| {
            ParseError(format!(
                "\"{}\" is not IP:PORT (IPv6: [ADDR]:PORT)",
                addr.trim()
            ))
        })?;
        Ok(Peer {
            name: name.to_string(),
            addr,
        })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.addr)
    }
}

/// A file kept identical on every node by the cluster channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEntry {
    /// Default: the path. At most [`SyncEntry::MAX_NAME_LEN`] bytes (it
    /// travels in sync messages).
    pub name: String,
    /// Absolute.
    pub path: PathBuf,
    /// Shell command run after a new version is written.
    pub on_change: Option<String>,
    /// Permission bits of the written file; `None` keeps the sender's. At
    /// most 0777: setuid, setgid and sticky ([`SyncEntry::SPECIAL_MODE_BITS`])
    /// are refused.
    pub mode: Option<u32>,
    /// Owner of the written file, `user` or `user:group`; `None` keeps the
    /// current owner (root for a new file).
    pub owner: Option<String>,
    /// Larger files are refused.
    pub max_size: u64,
}

impl SyncEntry {
    pub const DEFAULT_MAX_SIZE: u64 = 16 << 20;
    pub const MAX_MAX_SIZE: u64 = 1 << 30;
    pub const MAX_NAME_LEN: usize = 255;
    /// setuid, setgid and sticky: a synced file must not become a setuid
    /// binary on every node.
    pub const SPECIAL_MODE_BITS: u32 = 0o7000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_forms() {
        let v: Vip = "10.0.0.100/24".parse().unwrap();
        assert_eq!(
            (v.addr.to_string(), v.prefix_len, v.dev),
            ("10.0.0.100".into(), 24, None)
        );
        let v: Vip = "10.0.0.100".parse().unwrap();
        assert_eq!(v.prefix_len, 32);
        let v: Vip = "fd00::100".parse().unwrap();
        assert_eq!(v.prefix_len, 128);
        assert_eq!(v.family(), Family::V6);
        let v: Vip = "fd00::100/64 dev eth1".parse().unwrap();
        assert_eq!(v.dev.as_deref(), Some("eth1"));
        assert_eq!(v.to_string(), "fd00::100/64 dev eth1");
        let v: Vip = "10.0.0.1/24 brd +".parse().unwrap();
        assert_eq!(v.brd, Some("10.0.0.255".parse().unwrap()));
        let v: Vip = "10.0.0.1/24 brd -".parse().unwrap();
        assert_eq!(v.brd, Some("10.0.0.0".parse().unwrap()));
        let v: Vip = "10.0.0.1/24 label eth0:1 scope link brd 10.0.0.255 dev eth0"
            .parse()
            .unwrap();
        assert_eq!(v.label.as_deref(), Some("eth0:1"));
        assert_eq!(v.scope.as_deref(), Some("link"));
        assert_eq!(
            v.to_string(),
            "10.0.0.1/24 dev eth0 brd 10.0.0.255 label eth0:1 scope link"
        );
        assert_eq!(v.to_string().parse::<Vip>().unwrap(), v);
    }

    #[test]
    fn effective_priority_clamps() {
        let mut i = Instance::new("VI_1", "eth0", 51);
        assert_eq!(i.effective_priority(0), 100);
        assert_eq!(i.effective_priority(-500), 1);
        assert_eq!(i.effective_priority(500), 254);
        i.priority = 255;
        assert_eq!(i.effective_priority(-50), 255);
    }

    #[test]
    fn vip_refusals() {
        for bad in [
            "",
            "10.0.0.300",
            "10.0.0.1/33",
            "10.0.0.1/0",
            "10.0.0.1/+8",
            "10.0.0.1/",
            "fd00::1/129",
            "10.0.0.1 dev",
            "10.0.0.1 label",
            "10.0.0.1 dev a b",
            "10.0.0.1 dev a dev b",
            "10.0.0.1 brd x",
            "10.0.0.1 scope galaxy",
            "10.0.0.1 peer 10.0.0.2",
        ] {
            assert!(bad.parse::<Vip>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn peer_forms() {
        let p: Peer = "lb2=10.0.0.12:7480".parse().unwrap();
        assert_eq!(p.name, "lb2");
        assert_eq!(p.addr.port(), 7480);
        let p: Peer = "lb3=[2001:db8::3]:7480".parse().unwrap();
        assert!(p.addr.is_ipv6());
        for bad in ["lb2", "=10.0.0.1:1", "lb2=10.0.0.1", "lb2=2001:db8::3:7480"] {
            assert!(bad.parse::<Peer>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn instance_helpers() {
        let mut i = Instance::new("VI_1", "eth0", 51);
        assert_eq!(i.family(), Family::V4);
        assert!(!i.address_owner());
        i.priority = 255;
        assert!(i.address_owner());
        i.virtual_ips.push("2001:db8::1/64".parse().unwrap());
        assert_eq!(i.family(), Family::V6);
    }
}
