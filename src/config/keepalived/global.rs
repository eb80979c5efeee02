//! `global_defs { }`: the router id, script security, the notify FIFO, and
//! the defaults (VRRP version, gratuitous ARP, strict mode) that every
//! instance starts from.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::{Garp, Version};

/// What global_defs sets for every instance.
#[derive(Debug, Clone)]
pub(super) struct GlobalDefaults {
    pub(super) version: Version,
    pub(super) garp: Garp,
    pub(super) strict: bool,
}

impl Default for GlobalDefaults {
    fn default() -> Self {
        GlobalDefaults {
            // keepalived's default; IPv6 instances use 3.
            version: Version::V2,
            garp: Garp::default(),
            strict: false,
        }
    }
}

/// global_defs sets the reader's [`Reader::config`] and
/// [`Reader::globals`]; it has no state of its own.
struct Global;

impl Block for Global {
    fn ctx(&self) -> &str {
        "global_defs: "
    }
}

/// `global_defs { }`.
pub(super) fn read(r: &mut Reader, _: &mut Top, s: &Stmt) {
    r.record("global", s.at());
    let Some(items) = r.block_of("", s) else {
        return;
    };
    r.keywords(&KEYWORDS, &mut Global, items);
}

const KEYWORDS: Keywords<Global> = Keywords {
    known: &[
        ("router_id", router_id),
        ("vrrp_check_unicast_src", vrrp_check_unicast_src),
        ("vrrp_version", vrrp_version),
        ("vrrp_garp_master_delay", garp_master_delay),
        ("vrrp_garp_master_repeat", garp_master_repeat),
        ("vrrp_garp_lower_prio_delay", garp_lower_prio_delay),
        ("vrrp_garp_lower_prio_repeat", garp_lower_prio_repeat),
        ("vrrp_garp_master_refresh", garp_master_refresh),
        (
            "vrrp_garp_master_refresh_repeat",
            garp_master_refresh_repeat,
        ),
        ("vrrp_garp_interval", garp_interval),
        ("vrrp_gna_interval", gna_interval),
        ("vrrp_min_garp", min_garp),
        ("vrrp_strict", strict),
        ("script_user", script_user),
        ("enable_script_security", enable_script_security),
        ("notify_fifo", notify_fifo),
        ("notify_fifo_script", notify_fifo_script),
        ("vrrp_notify_fifo", notify_fifo),
        ("vrrp_notify_fifo_script", notify_fifo_script),
        ("vrrp_startup_delay", startup_delay),
        // baton's extension.
        ("metrics_listen", metrics_listen),
        ("vrrp_mcast_group4", mcast_group4),
        ("vrrp_mcast_group6", mcast_group6),
        ("net_namespace", net_namespace),
        ("vrrp_skip_check_adv_addr", skip_check_adv_addr),
        ("max_auto_priority", max_auto_priority),
        ("min_auto_priority_delay", min_auto_priority_delay),
        ("vrrp_rt_priority", rt_priority),
        ("vrrp_rlimit_rttime", rlimit_rttime),
    ],
    unsupported: UNSUPPORTED,
};

/// As `check_unicast_src` in every instance: always on in baton.
fn vrrp_check_unicast_src(r: &mut Reader, _: &mut Global, item: &Stmt) {
    if r.flag("global_defs: ", item) == Some(false) {
        r.warn(
            item.at(),
            "global_defs: vrrp_check_unicast_src off: baton always checks the source of unicast adverts"
                .to_string(),
        );
    }
}

fn router_id(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some(w) = r.single(g.ctx(), item) {
        r.config.global.router_id = w.text.clone();
        r.record("global.router_id", w.at);
    }
}

fn vrrp_version(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, _)) = r.integer(g.ctx(), item, 2..=3) {
        r.globals.version = if n == 2 { Version::V2 } else { Version::V3 };
    }
}

fn garp_master_delay(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, _)) = r.timer(g.ctx(), item) {
        r.globals.garp.master_delay = d;
    }
}

fn garp_master_repeat(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, _)) = r.u32_value(g.ctx(), item) {
        r.globals.garp.master_repeat = n;
    }
}

fn garp_lower_prio_delay(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, _)) = r.timer(g.ctx(), item) {
        r.globals.garp.lower_prio_delay = Some(d);
    }
}

fn garp_lower_prio_repeat(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, _)) = r.u32_value(g.ctx(), item) {
        r.globals.garp.lower_prio_repeat = Some(n);
    }
}

fn garp_master_refresh(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, _)) = r.timer(g.ctx(), item) {
        r.globals.garp.master_refresh = (!d.is_zero()).then_some(d);
    }
}

fn garp_master_refresh_repeat(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, _)) = r.u32_value(g.ctx(), item) {
        r.globals.garp.master_refresh_repeat = n;
    }
}

fn garp_interval(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, _)) = r.timer(g.ctx(), item) {
        r.globals.garp.interval = d;
    }
}

fn gna_interval(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, _)) = r.timer(g.ctx(), item) {
        r.globals.garp.na_interval = d;
    }
}

fn min_garp(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if r.flag(g.ctx(), item) == Some(true) {
        // One packet, no second burst.
        r.globals.garp.master_repeat = 1;
        r.globals.garp.master_delay = Duration::ZERO;
    }
}

fn strict(r: &mut Reader, g: &mut Global, item: &Stmt) {
    r.no_value(g.ctx(), item);
    r.globals.strict = true;
}

fn script_user(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some(user) = r.user(g.ctx(), item) {
        r.config.global.script_user = Some(user);
        r.record("global.script_user", item.at());
    }
}

fn enable_script_security(r: &mut Reader, g: &mut Global, item: &Stmt) {
    r.no_value(g.ctx(), item);
    r.config.global.enable_script_security = true;
    r.record("global.enable_script_security", item.at());
}

fn notify_fifo(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((path, at)) = r.command(g.ctx(), item) {
        r.config.global.notify_fifo = Some(PathBuf::from(path));
        r.record("global.notify_fifo", at);
    }
}

fn notify_fifo_script(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((command, at)) = r.command(g.ctx(), item) {
        r.config.global.notify_fifo_script = Some(command);
        r.record("global.notify_fifo_script", at);
    }
}

fn startup_delay(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((d, at)) = r.timer(g.ctx(), item) {
        r.config.global.startup_delay = d;
        r.record("global.startup_delay", at);
    }
}

/// `metrics_listen ADDR:PORT` (baton's extension): the Prometheus endpoint.
fn metrics_listen(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some(w) = r.single(g.ctx(), item) {
        match w.text.parse::<std::net::SocketAddr>() {
            Ok(a) => {
                r.config.global.metrics_listen = Some(a);
                r.record("global.metrics_listen", w.at);
            }
            Err(_) => r.error(
                w.at,
                format!(
                    "global_defs: metrics_listen: \"{}\" is not IP:PORT (IPv6: [ADDR]:PORT)",
                    w.text
                ),
            ),
        }
    }
}

fn mcast_group4(r: &mut Reader, g: &mut Global, item: &Stmt) {
    match r.ip(g.ctx(), item) {
        Some((IpAddr::V4(a), at)) if a.is_multicast() => {
            r.config.global.mcast_group4 = a;
            r.record("global.mcast_group4", at);
        }
        Some((a, at)) => r.warn(
            at,
            format!(
                "global_defs: vrrp_mcast_group4: {a} is not an IPv4 multicast address; ignored"
            ),
        ),
        None => {}
    }
}

fn mcast_group6(r: &mut Reader, g: &mut Global, item: &Stmt) {
    match r.ip(g.ctx(), item) {
        // keepalived: IPv6 groups must be link-local scope (ffX2::).
        Some((IpAddr::V6(a), at)) if a.is_multicast() && a.segments()[0] & 0x000f == 2 => {
            r.config.global.mcast_group6 = a;
            r.record("global.mcast_group6", at);
        }
        Some((a, at)) => r.warn(
            at,
            format!(
                "global_defs: vrrp_mcast_group6: {a} is not a link-local IPv6 multicast \
                 address (ffX2::); ignored"
            ),
        ),
        None => {}
    }
}

/// `net_namespace NAME` (in global_defs or at the top of the file).
pub(super) fn read_net_namespace(r: &mut Reader, ctx: &str, item: &Stmt) {
    if let Some(w) = r.single(ctx, item) {
        let name = w.text.clone();
        let at = w.at;
        r.config.global.net_namespace = Some(name);
        r.record("global.net_namespace", at);
    }
}

fn net_namespace(r: &mut Reader, g: &mut Global, item: &Stmt) {
    read_net_namespace(r, g.ctx(), item);
}

fn skip_check_adv_addr(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some(on) = r.flag(g.ctx(), item) {
        r.config.global.skip_check_adv_addr = on;
        r.record("global.skip_check_adv_addr", item.at());
    }
}

/// `max_auto_priority [N]`: N in -1..=99, the maximum when left out; -1
/// (keepalived: "no startup notice") is 0 here.
fn max_auto_priority(r: &mut Reader, g: &mut Global, item: &Stmt) {
    let max = crate::config::model::Global::MAX_RT_PRIORITY;
    if item.args().is_empty() {
        r.config.global.max_auto_priority = max;
        r.record("global.max_auto_priority", item.at());
        return;
    }
    if let Some((n, at)) = r.integer(g.ctx(), item, -1..=i64::from(max)) {
        r.config.global.max_auto_priority = u8::try_from(n).unwrap_or(0);
        r.record("global.max_auto_priority", at);
    }
}

/// `min_auto_priority_delay USECS` (1..=10000000).
fn min_auto_priority_delay(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, at)) = r.integer(g.ctx(), item, 1..=10_000_000) {
        r.config.global.min_auto_priority_delay = Duration::from_micros(n.unsigned_abs());
        r.record("global.min_auto_priority_delay", at);
    }
}

/// `vrrp_rt_priority N` (1..=99).
fn rt_priority(r: &mut Reader, g: &mut Global, item: &Stmt) {
    let max = crate::config::model::Global::MAX_RT_PRIORITY;
    if let Some((n, at)) = r.integer(g.ctx(), item, 1..=i64::from(max)) {
        r.config.global.rt_priority = u8::try_from(n).ok();
        r.record("global.rt_priority", at);
    }
}

/// `vrrp_rlimit_rttime USECS` (at least 2, as keepalived).
fn rlimit_rttime(r: &mut Reader, g: &mut Global, item: &Stmt) {
    if let Some((n, at)) = r.integer(g.ctx(), item, 2..=i64::from(u32::MAX)) {
        r.config.global.rlimit_rttime = Some(n.unsigned_abs());
        r.record("global.rlimit_rttime", at);
    }
}

/// global_defs keywords of keepalived 2.2 that baton does not use (SMTP,
/// LVS, SNMP, DBus, firewalls, process tuning, ...).
const UNSUPPORTED: &[&str] = &[
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
    "tmp_config_directory",
    "config_save_dir",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "checker_log_all_failures",
    "no_email_faults",
    "default_interface",
    "lvs_sync_daemon",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "vrrp_down_timer_adverts",
    "vrrp_garp_extra_if",
    "vrrp_garp_extra_if_vmac",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "nftables",
    "nftables_priority",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "vrrp_iptables",
    "vrrp_ipsets",
    "disable_local_igmp",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "checker_rt_priority",
    "bfd_rt_priority",
    "checker_rlimit_rttime",
    "bfd_rlimit_rttime",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "snmp_socket",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "enable_dbus",
    "dbus_service_name",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "fifo_write_vrrp_states_on_reload",
    "dynamic_interfaces",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "rs_init_notifies",
    "no_checker_emails",
    "umask",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "random_seed",
    "reload_check_config",
    "include_check",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "data_use_instance",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_table() {
        check_table(&KEYWORDS, |k| format!("global_defs {{\n {k}\n}}\n"));
    }
}
