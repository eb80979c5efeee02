//! The configuration model turned into the cores' own configurations:
//! pure, shared by the agent and the simulator so both run the very same
//! cores from the very same config.

use std::time::Duration;

use crate::cluster::sync::SyncSpec;
use crate::cluster::{ClusterConfig, Policy};
use crate::config::model::{self, Config, Selection};
use crate::vrrp::{GarpSchedule, InstanceConfig};

/// How long an operator's switchover may take before it is reported failed.
pub const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The VRRP core's view of a configured instance.
pub fn core_config(cfg: &model::Instance) -> InstanceConfig {
    let auth = cfg.auth_pass.as_ref().map(|p| {
        let mut a = [0u8; 8];
        for (d, s) in a.iter_mut().zip(p.bytes()) {
            *d = s;
        }
        a
    });
    InstanceConfig {
        name: cfg.name.clone(),
        vrid: cfg.vrid,
        version: cfg.version,
        priority: cfg.priority,
        advert_interval: cfg.advert_interval,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        vips: cfg.virtual_ips.iter().map(|v| v.addr).collect(),
        auth,
        ah: cfg.auth_type == model::AuthType::Ah,
        garp: GarpSchedule {
            repeat: cfg.garp.master_repeat,
            delay: cfg.garp.master_delay,
            refresh: cfg.garp.master_refresh.unwrap_or_default(),
            refresh_repeat: cfg.garp.master_refresh_repeat,
            lower_prio_repeat: cfg.garp.lower_prio_repeat(),
            lower_prio_delay: cfg.garp.lower_prio_delay(),
        },
        strict: cfg.strict_mode,
        // With unicast peers, adverts from anyone else are dropped and
        // counted (keepalived's `check_unicast_src`, on by default here).
        allowed_sources: cfg.unicast_peers.clone(),
        vip_lease: vip_lease(cfg),
        // The global default is the node's to apply (Node::core_config).
        skip_check_adv_addr: cfg.skip_check_adv_addr.unwrap_or(false),
    }
}

/// The lease an instance's VIPs get: `vip_lease` as configured (zero is
/// forever), or by default 1.5 master-down intervals in whole seconds
/// ([`crate::vrrp::timers::auto_vip_lease`]).
pub fn vip_lease(cfg: &model::Instance) -> Duration {
    if cfg.is_route() {
        return cfg
            .vip_lease
            .unwrap_or(model::Instance::DEFAULT_ROUTE_VIP_LEASE);
    }
    cfg.vip_lease.unwrap_or_else(|| {
        crate::vrrp::timers::auto_vip_lease(cfg.version, cfg.priority, cfg.advert_interval)
    })
}

/// The cluster core's configuration, when `[cluster]` is on.
pub fn cluster_config(config: &Config) -> Option<ClusterConfig> {
    let cc = config.cluster.as_ref()?;
    let policy = match cc.selection {
        Selection::Priority => Policy::Priority,
        Selection::Order => Policy::Order(cc.order.clone()),
    };
    Some(ClusterConfig {
        node: cc.node.clone(),
        peers: cc.peers.iter().map(|p| p.name.clone()).collect(),
        heartbeat_interval: cc.heartbeat_interval,
        policy,
        switchover_timeout: SWITCHOVER_TIMEOUT,
    })
}

/// The instance whose master is the control node for data sync:
/// `sync_instance`, else the first instance.
pub fn sync_instance(config: &Config) -> Option<String> {
    config
        .cluster
        .as_ref()
        .and_then(|c| c.sync_instance.clone())
        .or_else(|| config.instances.first().map(|i| i.name.clone()))
}

/// The sync core's view of the `[[sync]]` entries.
pub fn sync_specs(config: &Config) -> Vec<SyncSpec> {
    config
        .sync
        .iter()
        .map(|e| SyncSpec {
            name: e.name.clone(),
            max_size: e.max_size,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Instance;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn auth_pass_is_zero_padded_and_vips_keep_their_order() {
        let mut i = Instance::new("VI_1", "eth0", 51);
        i.auth_pass = Some("abc".into());
        for last in [100, 101] {
            i.virtual_ips
                .push(format!("10.0.0.{last}/24").parse().expect("a VIP"));
        }
        let c = core_config(&i);
        assert_eq!(c.auth, Some(*b"abc\0\0\0\0\0"));
        assert_eq!(
            c.vips,
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101))
            ]
        );
        assert_eq!(c.vrid, 51);
    }

    #[test]
    fn no_cluster_section_means_no_cluster_core() {
        let c = Config::new("lb1");
        assert!(cluster_config(&c).is_none());
        assert!(sync_instance(&c).is_none());
    }
}
