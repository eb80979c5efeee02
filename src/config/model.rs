//! The one typed configuration that the rest of baton uses.
//!
//! Both readers (baton.toml and, later, keepalived.conf) produce a [`Config`];
//! [`super::check`] validates it. The model is format-neutral: plain structs of
//! std types, no serde, no source positions (those live in
//! [`super::diag::Origins`], beside the model).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::wire::vrrp::Version;

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
        }
    }

    /// The instance called `name`, if any.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
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
}

impl Global {
    pub const DEFAULT_CONTROL_SOCKET: &'static str = "/run/baton/baton.sock";
    pub const DEFAULT_STATE_DIR: &'static str = "/var/lib/baton";

    pub fn new(router_id: impl Into<String>) -> Self {
        Global {
            router_id: router_id.into(),
            control_socket: PathBuf::from(Self::DEFAULT_CONTROL_SOCKET),
            state_dir: PathBuf::from(Self::DEFAULT_STATE_DIR),
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

/// One virtual router (keepalived's `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
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
    /// Unicast mode when non-empty.
    pub unicast_peers: Vec<IpAddr>,
    /// v2 simple text authentication, at most 8 bytes.
    pub auth_pass: Option<String>,
    /// Checksum v3-over-IPv4 adverts as RFC 9568 says (no pseudo-header)
    /// instead of keepalived's default.
    pub v3_checksum_as_v2: bool,
    pub garp: Garp,
    /// Interfaces whose link-down puts this instance in FAULT.
    pub track_interfaces: Vec<String>,
    pub initial_state: Option<InitialState>,
}

impl Instance {
    pub const DEFAULT_PRIORITY: u8 = 100;
    pub const OWNER_PRIORITY: u8 = 255;
    pub const DEFAULT_VERSION: Version = Version::V3;
    pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
    pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

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
            unicast_peers: Vec::new(),
            auth_pass: None,
            v3_checksum_as_v2: false,
            garp: Garp::default(),
            track_interfaces: Vec::new(),
            initial_state: None,
        }
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
}

/// A virtual address: `10.0.0.100/24`, `fd00::100/64`, `10.0.0.100` (a host
/// prefix), optionally followed by `dev IFNAME` when it lives on another
/// interface than the instance's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub dev: Option<String>,
}

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
        let dev = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some("dev"), Some(name), None) => Some(name.to_string()),
            _ => {
                return Err(ParseError(format!(
                    "\"{s}\" is not ADDRESS[/PREFIX] [dev IFNAME]"
                )))
            }
        };
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
        Ok(Vip {
            addr,
            prefix_len,
            dev,
        })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}

/// Gratuitous ARP / unsolicited neighbour advertisement on becoming master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garp {
    /// Delay before the second burst.
    pub master_delay: Duration,
    /// Packets per burst.
    pub master_repeat: u32,
    /// Period of the refresh bursts while master; none by default.
    pub master_refresh: Option<Duration>,
    /// Packets per refresh burst.
    pub master_refresh_repeat: u32,
    /// Delay between the packets of a burst.
    pub interval: Duration,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
        }
    }
}

/// A VRRP sync group: its instances move between states together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
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
    /// This node's name. Default: `global.router_id`.
    pub node: String,
    pub listen: SocketAddr,
    pub peers: Vec<Peer>,
    pub key_file: PathBuf,
    /// At least 10 ms; default 100 ms.
    pub heartbeat_interval: Duration,
    pub selection: Selection,
    /// Node names, first preferred; used with [`Selection::Order`].
    pub order: Vec<String>,
}

impl Cluster {
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
    pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
}

/// Another node of the cluster: `name=ip:port` (`name=[v6]:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
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
    /// Default: the path.
    pub name: String,
    /// Absolute.
    pub path: PathBuf,
    /// Shell command run after a new version is written.
    pub on_change: Option<String>,
    /// Permission bits of the written file; `None` keeps the sender's.
    pub mode: Option<u32>,
    /// Larger files are refused.
    pub max_size: u64,
}

impl SyncEntry {
    pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;
    pub const MAX_MAX_SIZE: u64 = 1 << 30;
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
            "10.0.0.1 label x",
            "10.0.0.1 dev a b",
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
