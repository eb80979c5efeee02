//! What a reload (SIGHUP, `baton reload`) does to each instance, decided
//! from the old and the new configuration alone.
//!
//! - unchanged: keeps running untouched (a master stays master, no VIP
//!   flap);
//! - only soft settings changed (priority, preemption, GARP schedule) on
//!   the same interface and sockets: reconfigured in place, as keepalived;
//! - removed, or changed in anything else: stopped (priority 0 from a
//!   master); a changed one then starts afresh from the new settings;
//! - new: started.

use super::convert::core_config;
use crate::config::model::{Config, Instance};

/// The outcome of comparing two configurations, by instance name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Identical in both: left alone.
    pub keep: Vec<String>,
    /// Changed only in what the running instance can take in place.
    pub reconfigure: Vec<String>,
    /// Running now and stopped by the reload (removed, or changed in a way
    /// that needs a restart; those are in `start` too).
    pub stop: Vec<String>,
    /// Started by the reload (new, or restarted with new settings).
    pub start: Vec<String>,
    /// The tracked scripts or files changed: the tracker starts over
    /// (states that survive are carried over).
    pub tracking_changed: bool,
}

/// Same interface and sockets, and the VRRP core can take the rest in
/// place.
fn soft_change(old: &Instance, new: &Instance) -> bool {
    old.name == new.name
        && old.interface == new.interface
        && old.unicast_src == new.unicast_src
        && old.unicast_peers == new.unicast_peers
        && old.v3_checksum_as_v2 == new.v3_checksum_as_v2
        && core_config(old).reconfigurable_to(&core_config(new))
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
    for n in &new.instances {
        match old.instance(&n.name) {
            Some(o) if o == n => plan.keep.push(n.name.clone()),
            Some(o) if soft_change(o, n) => plan.reconfigure.push(n.name.clone()),
            _ => plan.start.push(n.name.clone()),
        }
    }
    for o in &old.instances {
        if !plan.keep.contains(&o.name) && !plan.reconfigure.contains(&o.name) {
            plan.stop.push(o.name.clone());
        }
    }
    plan
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
        assert!(!p.tracking_changed);
    }

    #[test]
    fn a_new_interface_or_unicast_peer_needs_a_restart() {
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
