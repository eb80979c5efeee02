//! What a reload (SIGHUP, `baton reload`) does, decided from the old and
//! the new configuration alone.
//!
//! Instances, by name:
//! - unchanged: keep running untouched (a master stays master, no VIP
//!   flap);
//! - changed in what a running instance can take (priority, preemption,
//!   VIPs, advert interval, password, unicast peers, tracking, notify,
//!   GARP schedule, lease, virtual routes and rules...): reconfigured in
//!   place. A master stays master and adds or removes only the VIPs,
//!   routes and rules that differ;
//! - changed in what makes it another virtual router or needs other
//!   sockets (VRID, version, interface, address family, `unicast_src`,
//!   `mcast_src`, multicast vs unicast, VMAC, auth type): restarted
//!   (priority 0 from a master, then a fresh start);
//! - removed: stopped, its VIPs released; new: started.
//!
//! The cluster: peers added and removed by name (a peer whose address
//! changed is removed and added), the key file re-read by the shell (a new
//! key is rotated in with a grace period for the old one), `[[sync]]`
//! entries added and removed. `[cluster]` added starts the channel (and
//! data sync with it), removed stops both (the instances go on with VRRP
//! alone); a new `listen` rebinds the listener (connections up stay up);
//! the first `[[sync]]` entry starts data sync, removing the last stops
//! it. Only a new `[cluster] node` (the name peers know this node by, and
//! check its key proof against) refuses the whole reload:
//! [`ReloadPlan::refused`].

use std::fmt;

use crate::config::model::{Config, Instance};

/// The outcome of comparing two configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Identical in both: left alone.
    pub keep: Vec<String>,
    /// Changed only in what the running instance can take in place.
    pub reconfigure: Vec<String>,
    /// Changed in a way that needs a restart, with why (they are in
    /// `stop` and `start` too).
    pub restart: Vec<(String, String)>,
    /// New in the configuration (in `start` too).
    pub add: Vec<String>,
    /// Gone from the configuration (in `stop` too).
    pub remove: Vec<String>,
    /// Running now and stopped by the reload (removed or restarted).
    pub stop: Vec<String>,
    /// Started by the reload (new, or restarted with new settings).
    pub start: Vec<String>,
    /// The tracked scripts or files changed: the tracker starts over
    /// (states that survive are carried over).
    pub tracking_changed: bool,
    /// Cluster peers new in the configuration (name, or changed address).
    pub peers_added: Vec<String>,
    /// Cluster peers gone (or whose address changed).
    pub peers_removed: Vec<String>,
    /// `[cluster]` settings besides peers and key that changed and are
    /// applied in place (heartbeat interval, selection, order...).
    pub cluster_changed: bool,
    /// `[[sync]]` entries new, by name.
    pub sync_added: Vec<String>,
    /// `[[sync]]` entries gone, by name.
    pub sync_removed: Vec<String>,
    /// `[[sync]]` entries whose settings changed, by name.
    pub sync_changed: Vec<String>,
    /// `[cluster]` is new: the channel starts (and data sync, with entries).
    pub cluster_started: bool,
    /// `[cluster]` is gone: the channel and data sync stop.
    pub cluster_stopped: bool,
    /// `[cluster] listen` changed: the listener is rebound (old, new).
    pub listen_changed: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// The first `[[sync]]` entry (with the cluster running before and
    /// after): data sync starts.
    pub sync_started: bool,
    /// The last `[[sync]]` entry is gone (or the cluster is): data sync stops.
    pub sync_stopped: bool,
    /// Why the reload cannot be applied at all (a restart is needed).
    pub refused: Option<String>,
}

/// The settings of an instance that a running one cannot change: another
/// virtual router, or other sockets. Whatever is not listed here (and any
/// setting added later is not, until someone makes sure) is compared as a
/// whole by [`restart_reason`], so an unknown difference restarts.
fn in_place_fields_of(from: &Instance, mut to: Instance) -> Instance {
    // Everything a running instance takes in place, copied from `from`:
    // what remains different needs a restart.
    to.priority = from.priority;
    to.preempt = from.preempt;
    to.preempt_delay = from.preempt_delay;
    to.advert_interval = from.advert_interval;
    to.virtual_ips = from.virtual_ips.clone();
    to.virtual_ips_excluded = from.virtual_ips_excluded.clone();
    to.auth_pass = from.auth_pass.clone();
    to.v3_checksum_as_v2 = from.v3_checksum_as_v2;
    to.garp = from.garp.clone();
    to.track_interfaces = from.track_interfaces.clone();
    to.track_scripts = from.track_scripts.clone();
    to.track_files = from.track_files.clone();
    to.initial_state = from.initial_state;
    to.notify = from.notify.clone();
    to.strict_mode = from.strict_mode;
    to.vip_lease = from.vip_lease;
    to.release_delay = from.release_delay;
    to.virtual_routes = from.virtual_routes.clone();
    to.virtual_rules = from.virtual_rules.clone();
    if from.unicast_peers.is_empty() == to.unicast_peers.is_empty() {
        // The same socket either way (multicast, or unicast from one
        // source): only the destinations differ.
        to.unicast_peers = from.unicast_peers.clone();
    }
    to
}

/// Why `old` cannot become `new` in place, or None when it can.
pub fn restart_reason(old: &Instance, new: &Instance) -> Option<String> {
    let mut why = Vec::new();
    if old.mode != new.mode {
        why.push("mode");
    }
    if old.vrid != new.vrid {
        why.push("vrid");
    }
    if old.version != new.version {
        why.push("version");
    }
    if old.interface != new.interface {
        why.push("interface");
    }
    if old.family() != new.family() {
        why.push("address family");
    }
    if old.unicast_src != new.unicast_src {
        why.push("unicast_src");
    }
    if old.mcast_src != new.mcast_src {
        why.push("mcast_src");
    }
    if old.unicast_peers.is_empty() != new.unicast_peers.is_empty() {
        why.push("multicast/unicast");
    }
    if why.is_empty() && in_place_fields_of(old, new.clone()) != *old {
        why.push("settings that need new sockets");
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Decide what a reload from `old` to `new` does (see the module docs).
pub fn plan_reload(old: &Config, new: &Config) -> ReloadPlan {
    let mut plan = ReloadPlan {
        tracking_changed: old.vrrp_scripts != new.vrrp_scripts
            || old.track_files != new.track_files
            // What is tracked (by instances or sync groups) decides what
            // the tracker runs.
            || old.tracked_script_names() != new.tracked_script_names()
            || old.tracked_file_names() != new.tracked_file_names(),
        ..ReloadPlan::default()
    };
    // A route-mode instance runs on the heartbeat (super::route_interval):
    // a new one changes it in place.
    let timing_changed = super::route_interval(old) != super::route_interval(new);
    for n in &new.instances {
        match old.instance(&n.name) {
            Some(o) if o == n && !(n.is_route() && timing_changed) => {
                plan.keep.push(n.name.clone())
            }
            Some(o) => match restart_reason(o, n) {
                None => plan.reconfigure.push(n.name.clone()),
                Some(why) => {
                    plan.restart.push((n.name.clone(), why));
                    plan.start.push(n.name.clone());
                }
            },
            None => {
                plan.add.push(n.name.clone());
                plan.start.push(n.name.clone());
            }
        }
    }
    for o in &old.instances {
        if new.instance(&o.name).is_none() {
            plan.remove.push(o.name.clone());
        }
        if !plan.keep.contains(&o.name) && !plan.reconfigure.contains(&o.name) {
            plan.stop.push(o.name.clone());
        }
    }
    plan_cluster(&mut plan, old, new);
    plan
}

fn plan_cluster(plan: &mut ReloadPlan, old: &Config, new: &Config) {
    let sync_diff = |plan: &mut ReloadPlan| {
        for e in &new.sync {
            match old.sync.iter().find(|x| x.name == e.name) {
                None => plan.sync_added.push(e.name.clone()),
                Some(x) if x != e => plan.sync_changed.push(e.name.clone()),
                Some(_) => {}
            }
        }
        for e in &old.sync {
            if !new.sync.iter().any(|x| x.name == e.name) {
                plan.sync_removed.push(e.name.clone());
            }
        }
    };
    let (o, n) = match (&old.cluster, &new.cluster) {
        (None, None) => return,
        (Some(o), Some(n)) => (o, n),
        (None, Some(n)) => {
            plan.cluster_started = true;
            plan.peers_added = n.peers.iter().map(|p| p.name.clone()).collect();
            sync_diff(plan);
            plan.sync_started = !new.sync.is_empty();
            return;
        }
        (Some(o), None) => {
            plan.cluster_stopped = true;
            plan.peers_removed = o.peers.iter().map(|p| p.name.clone()).collect();
            sync_diff(plan);
            plan.sync_stopped = !old.sync.is_empty();
            return;
        }
    };
    if o.node != n.node {
        plan.refused = Some(format!(
            "[cluster] node changed ({} -> {}): this is the name peers know \
             this node by and check its key proof against, so it is not \
             changed at runtime; restart baton (and reload the peers with \
             the new name)",
            o.node, n.node
        ));
        return;
    }
    if o.listen != n.listen {
        plan.listen_changed = Some((o.listen, n.listen));
    }
    for p in &n.peers {
        if !o.peers.contains(p) {
            plan.peers_added.push(p.name.clone());
        }
    }
    for p in &o.peers {
        if !n.peers.contains(p) {
            plan.peers_removed.push(p.name.clone());
        }
    }
    let rest = |c: &crate::config::model::Cluster| {
        (
            c.heartbeat_interval,
            c.selection,
            c.order.clone(),
            c.sync_instance.clone(),
            c.accept_foreign_adverts,
            c.check_peer_source,
        )
    };
    plan.cluster_changed = rest(o) != rest(n);
    sync_diff(plan);
    plan.sync_started = old.sync.is_empty() && !new.sync.is_empty();
    plan.sync_stopped = !old.sync.is_empty() && new.sync.is_empty();
}

impl ReloadPlan {
    /// Whether the sync core must take new entries.
    pub fn sync_entries_changed(&self) -> bool {
        !(self.sync_added.is_empty()
            && self.sync_removed.is_empty()
            && self.sync_changed.is_empty())
    }

    /// Whether the channel's peer list changes.
    pub fn peers_changed(&self) -> bool {
        !(self.peers_added.is_empty() && self.peers_removed.is_empty())
    }
}

/// What was done, one line per kind, for the log and `baton reload`.
impl fmt::Display for ReloadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        writeln!(f, "instances kept: {}", list(&self.keep))?;
        writeln!(f, "instances reconfigured: {}", list(&self.reconfigure))?;
        let restarted: Vec<String> = self
            .restart
            .iter()
            .map(|(n, why)| format!("{n} ({why})"))
            .collect();
        writeln!(f, "instances restarted: {}", list(&restarted))?;
        writeln!(f, "instances added: {}", list(&self.add))?;
        writeln!(f, "instances removed: {}", list(&self.remove))?;
        writeln!(f, "peers added: {}", list(&self.peers_added))?;
        writeln!(f, "peers removed: {}", list(&self.peers_removed))?;
        writeln!(f, "sync entries added: {}", list(&self.sync_added))?;
        writeln!(f, "sync entries removed: {}", list(&self.sync_removed))?;
        if !self.sync_changed.is_empty() {
            writeln!(f, "sync entries changed: {}", list(&self.sync_changed))?;
        }
        if self.cluster_started {
            writeln!(f, "cluster channel started")?;
        }
        if self.cluster_stopped {
            writeln!(f, "cluster channel stopped")?;
        }
        if let Some((o, n)) = self.listen_changed {
            writeln!(f, "cluster listen rebound: {o} -> {n}")?;
        }
        if self.sync_started {
            writeln!(f, "data sync started")?;
        }
        if self.sync_stopped {
            writeln!(f, "data sync stopped")?;
        }
        if self.cluster_changed {
            writeln!(f, "cluster settings changed")?;
        }
        if self.tracking_changed {
            writeln!(f, "tracking restarted")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(name: &str, priority: u8) -> Instance {
        let mut i = Instance::new(name, "eth0", 51);
        i.priority = priority;
        i.virtual_ips.push("10.0.0.100/24".parse().expect("a VIP"));
        i
    }

    fn config(instances: Vec<Instance>) -> Config {
        let mut c = Config::new("lb1");
        c.instances = instances;
        c
    }

    #[test]
    fn unchanged_soft_hard_new_and_removed() {
        let old = config(vec![
            inst("KEEP", 100),
            inst("SOFT", 100),
            {
                let mut i = inst("HARD", 100);
                i.vrid = 52;
                i
            },
            inst("GONE", 100),
        ]);
        let new = config(vec![
            inst("KEEP", 100),
            inst("SOFT", 150),
            {
                let mut i = inst("HARD", 100);
                i.vrid = 53;
                i
            },
            inst("NEW", 100),
        ]);
        let p = plan_reload(&old, &new);
        assert_eq!(p.keep, ["KEEP"]);
        assert_eq!(p.reconfigure, ["SOFT"]);
        assert_eq!(p.start, ["HARD", "NEW"]);
        assert_eq!(p.stop, ["HARD", "GONE"]);
        assert_eq!(p.restart, [("HARD".to_string(), "vrid".to_string())]);
        assert_eq!(p.add, ["NEW"]);
        assert_eq!(p.remove, ["GONE"]);
        assert!(!p.tracking_changed);
        assert!(p.refused.is_none());
    }

    #[test]
    fn a_new_interface_or_multicast_to_unicast_needs_a_restart() {
        let old = config(vec![inst("A", 100), inst("B", 100)]);
        let mut a = inst("A", 100);
        a.interface = "eth1".into();
        let mut b = inst("B", 100);
        b.unicast_peers
            .push("10.0.0.2".parse().expect("an address"));
        let p = plan_reload(&old, &config(vec![a, b]));
        assert!(p.keep.is_empty() && p.reconfigure.is_empty());
        assert_eq!(p.stop, ["A", "B"]);
        assert_eq!(p.start, ["A", "B"]);
        assert_eq!(p.restart[0].1, "interface");
        assert_eq!(p.restart[1].1, "multicast/unicast");
    }

    /// What keepalived users change most (VIPs, priority, interval,
    /// password, unicast peers, tracking) never restarts an instance.
    #[test]
    fn vips_interval_auth_peers_and_tracking_change_in_place() {
        let mut base = inst("A", 100);
        base.unicast_peers
            .push("10.0.0.2".parse().expect("an address"));
        let old = config(vec![base.clone()]);
        let mut n = base;
        n.virtual_ips.push("10.0.0.101/24".parse().expect("a VIP"));
        n.advert_interval = std::time::Duration::from_millis(500);
        n.auth_pass = Some("secret".into());
        n.unicast_peers = vec!["10.0.0.3".parse().expect("an address")];
        n.track_interfaces
            .push(crate::config::model::TrackInterface::new("eth9"));
        n.priority = 120;
        let p = plan_reload(&old, &config(vec![n]));
        assert_eq!(p.reconfigure, ["A"], "{p:?}");
        assert!(p.stop.is_empty() && p.start.is_empty() && p.restart.is_empty());
    }

    #[test]
    fn another_family_needs_a_restart() {
        let old = config(vec![inst("A", 100)]);
        let mut a = inst("A", 100);
        a.virtual_ips = vec!["fe80::100/64".parse().expect("a VIP")];
        let p = plan_reload(&old, &config(vec![a]));
        assert_eq!(p.restart[0].1, "address family");
    }

    #[test]
    fn tracking_changes_are_noticed() {
        let old = config(vec![inst("A", 100)]);
        let mut new = old.clone();
        new.vrrp_scripts
            .push(crate::config::model::VrrpScript::new("chk", "/bin/true"));
        let p = plan_reload(&old, &new);
        assert!(p.tracking_changed);
        assert_eq!(p.keep, ["A"]);
    }

    fn clustered(peers: &[&str]) -> Config {
        let mut c = config(vec![inst("A", 100)]);
        c.cluster = Some(crate::config::model::Cluster {
            node: "lb1".into(),
            listen: "10.0.0.1:7480".parse().expect("addr"),
            peers: peers.iter().map(|p| p.parse().expect("a peer")).collect(),
            key_file: "/etc/baton/cluster.key".into(),
            heartbeat_interval: std::time::Duration::from_millis(100),
            selection: crate::config::model::Selection::Priority,
            order: Vec::new(),
            sync_instance: None,
            accept_foreign_adverts: false,
            check_peer_source: true,
            key_grace: crate::config::model::Cluster::DEFAULT_KEY_GRACE,
        });
        c
    }

    #[test]
    fn peers_added_removed_and_moved() {
        let old = clustered(&["lb2=10.0.0.2:7480", "lb3=10.0.0.3:7480"]);
        let new = clustered(&["lb3=10.0.0.33:7480", "lb4=10.0.0.4:7480"]);
        let p = plan_reload(&old, &new);
        assert_eq!(p.peers_added, ["lb3", "lb4"]);
        assert_eq!(p.peers_removed, ["lb2", "lb3"]);
        assert!(p.refused.is_none());
        assert!(!p.cluster_changed);
        let text = p.to_string();
        assert!(text.contains("peers added: lb3, lb4"), "{text}");
        assert!(text.contains("instances kept: A"), "{text}");
    }

    #[test]
    fn sync_entries_added_and_removed() {
        let entry = |n: &str| crate::config::model::SyncEntry {
            name: n.into(),
            path: format!("/etc/{n}").into(),
            on_change: None,
            mode: None,
            owner: None,
            max_size: crate::config::model::SyncEntry::DEFAULT_MAX_SIZE,
        };
        let mut old = clustered(&["lb2=10.0.0.2:7480"]);
        old.sync = vec![entry("a"), entry("b")];
        let mut new = old.clone();
        new.sync = vec![entry("b"), entry("c")];
        let p = plan_reload(&old, &new);
        assert_eq!(p.sync_added, ["c"]);
        assert_eq!(p.sync_removed, ["a"]);
        assert!(p.refused.is_none());
    }

    #[test]
    fn only_a_new_node_name_refuses_the_reload() {
        let old = clustered(&["lb2=10.0.0.2:7480"]);
        let mut moved = old.clone();
        if let Some(c) = &mut moved.cluster {
            c.listen = "10.0.0.9:7480".parse().expect("addr");
        }
        let p = plan_reload(&old, &moved);
        assert!(p.refused.is_none(), "{p:?}");
        assert!(p
            .to_string()
            .contains("listen rebound: 10.0.0.1:7480 -> 10.0.0.9:7480"));
        let mut renamed = old.clone();
        if let Some(c) = &mut renamed.cluster {
            c.node = "lb9".into();
        }
        assert!(plan_reload(&old, &renamed)
            .refused
            .is_some_and(|r| r.contains("node changed (lb1 -> lb9)")));
        let plain = config(vec![inst("A", 100)]);
        let up = plan_reload(&plain, &old);
        assert!(up.refused.is_none() && up.cluster_started && !up.cluster_stopped);
        assert_eq!(up.peers_added, ["lb2"]);
        assert_eq!(up.keep, ["A"]);
        let down = plan_reload(&old, &plain);
        assert!(down.refused.is_none() && down.cluster_stopped && !down.cluster_started);
        assert_eq!(down.peers_removed, ["lb2"]);
    }

    #[test]
    fn the_first_and_the_last_sync_entry_start_and_stop_data_sync() {
        let entry = crate::config::model::SyncEntry {
            name: "a".into(),
            path: "/etc/a".into(),
            on_change: None,
            mode: None,
            owner: None,
            max_size: crate::config::model::SyncEntry::DEFAULT_MAX_SIZE,
        };
        let bare = clustered(&["lb2=10.0.0.2:7480"]);
        let mut with = bare.clone();
        with.sync = vec![entry];
        let p = plan_reload(&bare, &with);
        assert!(p.refused.is_none() && p.sync_started && !p.sync_stopped);
        assert_eq!(p.sync_added, ["a"]);
        let p = plan_reload(&with, &bare);
        assert!(p.refused.is_none() && p.sync_stopped && !p.sync_started);
        assert_eq!(p.sync_removed, ["a"]);
        // The cluster and its entries at once.
        let mut plain = with.clone();
        plain.cluster = None;
        plain.sync.clear();
        let p = plan_reload(&plain, &with);
        assert!(p.cluster_started && p.sync_started, "{p:?}");
        let p = plan_reload(&with, &plain);
        assert!(p.cluster_stopped && p.sync_stopped, "{p:?}");
    }

    #[test]
    fn a_sync_group_tracking_a_script_is_a_tracking_change() {
        let mut old = config(vec![inst("A", 100)]);
        old.vrrp_scripts
            .push(crate::config::model::VrrpScript::new("chk", "/bin/true"));
        old.sync_groups.push(crate::config::model::SyncGroup {
            name: "G".into(),
            instances: vec!["A".into()],
            ..Default::default()
        });
        let mut new = old.clone();
        new.sync_groups[0]
            .track_scripts
            .push(crate::config::model::TrackRef::new("chk"));
        let p = plan_reload(&old, &new);
        assert!(p.tracking_changed, "the tracker must start running chk");
        assert_eq!(p.keep, ["A"]);
    }
}
