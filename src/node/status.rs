//! What `baton status` shows: the node's state projected into plain,
//! serialisable structs (the control socket's JSON). Built by
//! [`super::Node::status`]; the shell adds what only it knows (pid, config
//! file, the transport's view of each peer).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::vrrp::{RxStats, State};

/// The version of `baton status --json` (dist/status.schema.json): it
/// changes when a field is removed, renamed or changes meaning; fields may
/// be added within a version (clients ignore what they do not know).
pub const STATUS_SCHEMA_VERSION: u32 = 1;

fn schema_v1() -> u32 {
    1
}

/// What `baton status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// [`STATUS_SCHEMA_VERSION`]: dist/status.schema.json describes it.
    #[serde(default = "schema_v1")]
    pub schema_version: u32,
    pub router_id: String,
    pub pid: u32,
    pub config_file: String,
    pub instances: Vec<InstanceStatus>,
    /// Drops that no instance could own (unknown VRID, too short to tell).
    pub interfaces: Vec<InterfaceStatus>,
    /// The cluster channel, when configured.
    #[serde(default)]
    pub cluster: Option<ClusterStatus>,
    /// The process: start time and reloads (filled in by the shell).
    #[serde(default)]
    pub process: ProcessStatus,
}

/// The agent process as `baton status` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// When the agent started, in seconds since the Unix epoch.
    pub start_time_unix: f64,
    /// Configuration reloads applied, and reloads refused (the running
    /// configuration kept).
    pub reloads: u64,
    pub reload_failures: u64,
    /// Whether the last reload was applied (None: none yet).
    pub last_reload_ok: Option<bool>,
}

/// The cluster as this node sees it: every peer, and per instance the
/// epoch, the master and an operator's pin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node: String,
    pub peers: Vec<crate::cluster::PeerView>,
    pub instances: Vec<ClusterInstanceStatus>,
    pub stale_ignored: u64,
    /// Peer messages refused by reason (`not_the_sender`,
    /// `epoch_out_of_range`, `version_out_of_range`).
    #[serde(default)]
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Transport view per peer: connection and rejected frames by reason.
    pub channel: Vec<ChannelPeerStatus>,
    /// Connections refused before they named a configured peer, by reason
    /// (`unknown_peer`, `no_hello`, `hello_timeout`, `too_many_unproven`,
    /// frame errors of the Hello).
    #[serde(default)]
    pub rejected_unknown: std::collections::BTreeMap<String, u64>,
    /// Data sync: per `[[sync]]` entry, this node's and each peer's
    /// version and the committed one.
    #[serde(default)]
    pub sync: Vec<crate::cluster::sync::SyncView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterInstanceStatus {
    pub name: String,
    pub epoch: u64,
    pub master: Option<String>,
    pub pinned: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelPeerStatus {
    pub name: String,
    pub addr: String,
    pub connected: bool,
    pub rejected: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    /// "arp" (VRRP) or "route" (see [`crate::config::model::Mode`]).
    #[serde(default = "arp")]
    pub mode: String,
    /// 0 in route mode (no VRRP).
    pub vrid: u8,
    pub version: u8,
    pub state: State,
    pub base_priority: u8,
    pub effective_priority: u8,
    pub local_address: Option<IpAddr>,
    /// The current master as last heard (this node when MASTER).
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub advert_interval_ms: u64,
    pub master_adver_interval_ms: u64,
    pub virtual_ips: Vec<String>,
    pub holds_vips: bool,
    pub became_master: u64,
    pub faults: Vec<String>,
    pub rx: RxStats,
    /// What this node did for the instance (adverts, VIPs, GARP/NA,
    /// transitions).
    #[serde(default)]
    pub tx: TxStats,
    /// How long ago the instance last changed state (None: never).
    #[serde(default)]
    pub last_transition_ms: Option<u64>,
}

/// Per instance: what the node core asked the shell to do, counted where
/// the effect is produced (so the simulator counts the same).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStats {
    /// Adverts handed to the socket (one per destination: the group, or
    /// each unicast peer).
    pub adverts_sent: u64,
    /// Times the VIPs were added (refreshes of a lease not counted).
    pub vip_adds: u64,
    pub vip_removes: u64,
    /// Gratuitous ARPs / unsolicited NAs scheduled: one per VIP per repeat.
    pub garp_sent: u64,
    /// State changes keyed `FROM->TO` (`BACKUP->MASTER`).
    pub transitions: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub family: String,
    pub rx: RxStats,
}

fn arp() -> String {
    "arp".into()
}

/// The node's state as `baton status` shows it (see [`super::Node::status`]).
pub(super) fn project(node: &super::Node, now: std::time::Instant) -> Status {
    let instances = node
        .slots
        .iter()
        .map(|s| InstanceStatus {
            name: s.cfg.name.clone(),
            interface: node.ifaces[s.iface.0].name.clone(),
            mode: s.cfg.mode.as_str().into(),
            vrid: s.cfg.vrid,
            version: match s.cfg.version {
                crate::wire::vrrp::Version::V2 => 2,
                crate::wire::vrrp::Version::V3 => 3,
            },
            state: s.core.state(),
            base_priority: s.cfg.priority,
            effective_priority: s.core.priority(),
            // Route mode has no VRRP address (the cluster's view names
            // the holder).
            local_address: (!s.cfg.is_route()).then(|| s.core.local_addr()),
            master: s.core.master().filter(|_| !s.cfg.is_route()).map(|m| m.0),
            master_priority: s.core.master().filter(|_| !s.cfg.is_route()).map(|m| m.1),
            advert_interval_ms: s.core.config().advert_interval.as_millis() as u64,
            master_adver_interval_ms: s.core.master_adver_interval().as_millis() as u64,
            virtual_ips: s
                .cfg
                .virtual_ips
                .iter()
                .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                .collect(),
            holds_vips: s.holds_vips,
            became_master: s.core.times_became_master(),
            faults: s.health.clone(),
            rx: s.core.stats().clone(),
            tx: s.tx.clone(),
            last_transition_ms: s
                .last_transition
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        })
        .collect();
    let mut interfaces = Vec::new();
    for f in &node.ifaces {
        for (family, rx) in [("ipv4", &f.unmatched4), ("ipv6", &f.unmatched6)] {
            interfaces.push(InterfaceStatus {
                name: f.name.clone(),
                family: family.into(),
                rx: rx.clone(),
            });
        }
    }
    let cluster = node.cluster.as_ref().map(|c| ClusterStatus {
        node: c.node().to_string(),
        peers: c.peer_views(now),
        instances: node
            .slots
            .iter()
            .map(|s| ClusterInstanceStatus {
                name: s.cfg.name.clone(),
                epoch: c.epoch(&s.cfg.name),
                master: c.master(now, &s.cfg.name),
                pinned: c.pinned(now, &s.cfg.name),
            })
            .collect(),
        stale_ignored: c.stale_ignored,
        refused: node.refused.clone(),
        channel: Vec::new(),
        rejected_unknown: Default::default(),
        sync: node.sync.as_ref().map_or(Vec::new(), |s| s.core.views(now)),
    });
    Status {
        schema_version: STATUS_SCHEMA_VERSION,
        router_id: node.config.global.router_id.clone(),
        pid: 0,
        config_file: String::new(),
        instances,
        interfaces,
        cluster,
        process: ProcessStatus::default(),
    }
}
