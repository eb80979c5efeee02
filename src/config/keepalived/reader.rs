//! Stage 3, keywords: the statements read into the [`Config`] model.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::lexer::Word;
use super::tree::Stmt;
use super::At;
use crate::config::diag::{Diagnostic, Diagnostics, Origins};
use crate::config::model::{
    Cluster, Config, Garp, InitialState, Instance, Notify, Peer, Selection, SyncEntry, SyncGroup,
    TrackFile, TrackInterface, TrackRef, Version, Vip, VrrpScript,
};

/// Top-level blocks of what baton is not: skipped, one warning each.
const SKIPPED_BLOCKS: &[&str] = &[
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "track_group",
    "garp_group",
    "vrrp_track_process",
    "bfd_instance",
    "vrrp_garp_delay_group",
];

/// Top-level keywords (outside global_defs) baton does not use.
const TOP_UNSUPPORTED: &[&str] = &[
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
];

const TOP_KEYWORDS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "track_file",
    "vrrp_track_file",
    "cluster",
    "sync",
    "include",
];

const GLOBAL_KEYWORDS: &[&str] = &[
    "router_id",
    "vrrp_version",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_min_garp",
    "vrrp_strict",
    "script_user",
    "enable_script_security",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_startup_delay",
];

/// global_defs keywords of keepalived 2.2 that baton does not use (SMTP,
/// LVS, SNMP, DBus, firewalls, process tuning, ...).
const GLOBAL_UNSUPPORTED: &[&str] = &[
    "net_namespace",
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
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
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
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "bfd_rt_priority",
    "vrrp_rlimit_rttime",
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

const INSTANCE_KEYWORDS: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "authentication",
    "track_interface",
    "track_script",
    "track_file",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_interval",
    "gna_interval",
    "use_vmac",
    "virtual_routes",
    "virtual_rules",
    "strict_mode",
];

/// vrrp_instance keywords of keepalived 2.2 that baton does not implement.
const INSTANCE_UNSUPPORTED: &[&str] = &[
    "vrf",
    "use_vmac_addr",
    "vmac_xmit_base",
    "use_ipvlan",
    "native_ipv6",
    "dont_track_primary",
    "track_process",
    "track_bfd",
    "mcast_dst_ip",
    "track_src_ip",
    "check_unicast_src",
    "unicast_fault_no_peer",
    "unicast_ttl",
    "old_unicast_checksum",
    "garp_extra_if",
    "garp_extra_if_vmac",
    "down_timer_adverts",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "promote_secondaries",
    "accept",
    "no_accept",
    "skip_check_adv_addr",
    "debug",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "notify_priority_changes",
    "smtp_alert",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "lvs_sync_daemon_interface",
];

const SCRIPT_KEYWORDS: &[&str] = &[
    "script",
    "interval",
    "timeout",
    "weight",
    "rise",
    "fall",
    "user",
    "init_fail",
];
const GROUP_KEYWORDS: &[&str] = &[
    "group",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
];
const GROUP_UNSUPPORTED: &[&str] = &[
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_bfd",
    "notify_deleted",
    "notify_priority_changes",
    "smtp_alert",
    "global_tracking",
    "sync_group_tracking_weight",
];
const TRACK_FILE_KEYWORDS: &[&str] = &["file", "weight"];
const CLUSTER_KEYWORDS: &[&str] = &[
    "node",
    "listen",
    "peers",
    "key_file",
    "heartbeat_interval",
    "selection",
    "order",
    "sync_instance",
];
const SYNC_KEYWORDS: &[&str] = &["path", "on_change", "mode", "owner", "max_size"];

/// Options of a virtual address that baton takes (each with a value).
const VIP_OPTIONS: &[&str] = &["dev", "brd", "broadcast", "label", "scope"];
/// Options of a virtual address that baton does not implement.
const VIP_UNSUPPORTED_WITH_VALUE: &[&str] = &["peer", "preferred_lft", "track_group"];
const VIP_UNSUPPORTED_FLAGS: &[&str] = &[
    "home",
    "-nodad",
    "nodad",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "no_track",
    "use_vmac",
];

/// What global_defs sets for every instance.
#[derive(Debug, Clone)]
pub(super) struct GlobalDefaults {
    version: Version,
    garp: Garp,
    strict: bool,
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

/// Reads the statements into the model, with the findings on the way.
pub(super) struct Reader {
    pub(super) origins: Origins,
    pub(super) diags: Diagnostics,
    pub(super) config: Config,
    pub(super) globals: GlobalDefaults,
}

impl Reader {
    fn warn(&mut self, at: At, message: impl Into<String>) {
        let file = self.origins.path_of(at.file).to_path_buf();
        self.diags.push(Diagnostic::warning(&file, at.pos, message));
    }

    fn error(&mut self, at: At, message: impl Into<String>) {
        let file = self.origins.path_of(at.file).to_path_buf();
        self.diags.push(Diagnostic::error(&file, at.pos, message));
    }

    fn record(&mut self, path: &str, at: At) {
        self.origins.record_in(path, at.file, at.pos);
    }

    fn unknown(&mut self, ctx: &str, s: &Stmt, known: &[&str]) {
        let key = s.key();
        let hint = did_you_mean(key, known);
        let block = if s.block.is_some() {
            " (its block is skipped)"
        } else {
            ""
        };
        self.warn(
            s.at(),
            format!("{ctx}unknown keyword \"{key}\"{hint}; ignored{block}"),
        );
    }

    fn unsupported(&mut self, ctx: &str, s: &Stmt) {
        let what = if s.block.is_some() {
            "block is skipped"
        } else {
            "keyword is ignored"
        };
        self.warn(
            s.at(),
            format!("{ctx}\"{}\" is not supported by baton; the {what}", s.key()),
        );
    }

    /// The one value of a keyword; extra words are reported.
    fn single<'s>(&mut self, ctx: &str, s: &'s Stmt) -> Option<&'s Word> {
        match s.args() {
            [] => {
                self.warn(s.at(), format!("{ctx}{}: needs a value; ignored", s.key()));
                None
            }
            [value] => Some(value),
            [value, extra, ..] => {
                self.warn(
                    extra.at,
                    format!(
                        "{ctx}{}: takes one value; \"{}\" and what follows are ignored",
                        s.key(),
                        extra.text
                    ),
                );
                Some(value)
            }
        }
    }

    /// No value expected (a flag such as `nopreempt`).
    fn no_value(&mut self, ctx: &str, s: &Stmt) {
        if let Some(extra) = s.args().first() {
            self.warn(
                extra.at,
                format!(
                    "{ctx}{}: takes no value; \"{}\" is ignored",
                    s.key(),
                    extra.text
                ),
            );
        }
    }

    /// An integer in `range`, reported as a warning otherwise.
    fn integer(
        &mut self,
        ctx: &str,
        s: &Stmt,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<(i64, At)> {
        let w = self.single(ctx, s)?;
        match w.text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some((n, w.at)),
            _ => {
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{}: \"{}\" is not an integer in {}..={}; ignored",
                        s.key(),
                        w.text,
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    fn u32_value(&mut self, ctx: &str, s: &Stmt) -> Option<(u32, At)> {
        self.integer(ctx, s, 0..=i64::from(u32::MAX))
            .and_then(|(n, at)| u32::try_from(n).ok().map(|n| (n, at)))
    }

    /// A keepalived timer: seconds, possibly fractional (`2.5`).
    fn timer(&mut self, ctx: &str, s: &Stmt) -> Option<(Duration, At)> {
        let w = self.single(ctx, s)?;
        match parse_seconds(&w.text) {
            Some(d) => Some((d, w.at)),
            None => {
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{}: \"{}\" is not a number of seconds; ignored",
                        s.key(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// A duration given as seconds (`0.1`) or with a unit (`100ms`), for the
    /// baton extension blocks.
    fn duration(&mut self, ctx: &str, s: &Stmt) -> Option<(Duration, At)> {
        let w = self.single(ctx, s)?;
        match parse_seconds(&w.text).or_else(|| humantime::parse_duration(&w.text).ok()) {
            Some(d) => Some((d, w.at)),
            None => {
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{}: \"{}\" is not a duration (\"0.1\" seconds or \"100ms\"); ignored",
                        s.key(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// `<BOOL>` (on|off|true|false|yes|no), true when left out.
    fn flag(&mut self, ctx: &str, s: &Stmt) -> Option<bool> {
        let Some(w) = s.args().first() else {
            return Some(true);
        };
        if let Some(extra) = s.args().get(1) {
            self.warn(
                extra.at,
                format!(
                    "{ctx}{}: takes one value; \"{}\" is ignored",
                    s.key(),
                    extra.text
                ),
            );
        }
        match w.text.as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            other => {
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{}: \"{other}\" is not on, off, true, false, yes or no; ignored",
                        s.key()
                    ),
                );
                None
            }
        }
    }

    fn ip(&mut self, ctx: &str, s: &Stmt) -> Option<(IpAddr, At)> {
        let w = self.single(ctx, s)?;
        match w.text.parse::<IpAddr>() {
            Ok(a) => Some((a, w.at)),
            Err(_) => {
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{}: \"{}\" is not an IP address; ignored",
                        s.key(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// A command and an optional `user [group]` after it (notify scripts):
    /// baton runs every script as `script_user`, so a per-script user is
    /// reported.
    fn command(&mut self, ctx: &str, s: &Stmt) -> Option<(String, At)> {
        let Some(first) = s.args().first() else {
            self.warn(
                s.at(),
                format!("{ctx}{}: needs a command; ignored", s.key()),
            );
            return None;
        };
        if let Some(user) = s.args().get(1) {
            self.warn(
                user.at,
                format!(
                    "{ctx}{}: \"{}\" would be the user to run it as; a per-script user is \
                     not supported by baton (scripts run as script_user); quote the command \
                     if this is an argument",
                    s.key(),
                    user.text
                ),
            );
        }
        Some((first.text.clone(), first.at))
    }

    pub(super) fn document(&mut self, tree: &[Stmt]) {
        // global_defs first: its defaults apply to every instance, wherever
        // it is in the file.
        for s in tree.iter().filter(|s| s.key() == "global_defs") {
            self.global_defs(s);
        }
        for s in tree {
            match s.key() {
                "global_defs" => {}
                "vrrp_instance" => self.instance(s),
                "vrrp_script" => self.vrrp_script(s),
                "vrrp_sync_group" => self.sync_group(s),
                "track_file" | "vrrp_track_file" => self.track_file(s),
                "cluster" => self.cluster(s),
                "sync" => self.sync(s),
                key if SKIPPED_BLOCKS.contains(&key) => {
                    self.warn(
                        s.at(),
                        format!(
                            "\"{key}\" is skipped: baton is keepalived's VRRP side only \
                             (no LVS, checkers, BFD or static addresses)"
                        ),
                    );
                }
                key if TOP_UNSUPPORTED.contains(&key) => self.unsupported("", s),
                _ => self.unknown("", s, TOP_KEYWORDS),
            }
        }
    }

    /// The block of `s`, or a warning that it has none.
    fn block_of<'s>(&mut self, ctx: &str, s: &'s Stmt) -> Option<&'s [Stmt]> {
        match &s.block {
            Some(items) => Some(items),
            None => {
                self.warn(
                    s.at(),
                    format!("{ctx}{}: expects a {{ }} block; ignored", s.key()),
                );
                None
            }
        }
    }

    fn global_defs(&mut self, s: &Stmt) {
        let ctx = "global_defs: ";
        self.record("global", s.at());
        let Some(items) = self.block_of("", s) else {
            return;
        };
        for item in items {
            let key = item.key();
            match key {
                "router_id" => {
                    if let Some(w) = self.single(ctx, item) {
                        self.config.global.router_id = w.text.clone();
                        self.record("global.router_id", w.at);
                    }
                }
                "vrrp_version" => {
                    if let Some((n, _)) = self.integer(ctx, item, 2..=3) {
                        self.globals.version = if n == 2 { Version::V2 } else { Version::V3 };
                    }
                }
                "vrrp_garp_master_delay" => {
                    if let Some((d, _)) = self.timer(ctx, item) {
                        self.globals.garp.master_delay = d;
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some((n, _)) = self.u32_value(ctx, item) {
                        self.globals.garp.master_repeat = n;
                    }
                }
                "vrrp_garp_lower_prio_delay" => {
                    if let Some((d, _)) = self.timer(ctx, item) {
                        self.globals.garp.lower_prio_delay = Some(d);
                    }
                }
                "vrrp_garp_lower_prio_repeat" => {
                    if let Some((n, _)) = self.u32_value(ctx, item) {
                        self.globals.garp.lower_prio_repeat = Some(n);
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some((d, _)) = self.timer(ctx, item) {
                        self.globals.garp.master_refresh = (!d.is_zero()).then_some(d);
                    }
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some((n, _)) = self.u32_value(ctx, item) {
                        self.globals.garp.master_refresh_repeat = n;
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some((d, _)) = self.timer(ctx, item) {
                        self.globals.garp.interval = d;
                    }
                }
                "vrrp_gna_interval" => {
                    if let Some((d, _)) = self.timer(ctx, item) {
                        self.globals.garp.na_interval = d;
                    }
                }
                "vrrp_min_garp" => {
                    if self.flag(ctx, item) == Some(true) {
                        // One packet, no second burst.
                        self.globals.garp.master_repeat = 1;
                        self.globals.garp.master_delay = Duration::ZERO;
                    }
                }
                "vrrp_strict" => {
                    self.no_value(ctx, item);
                    self.globals.strict = true;
                }
                "script_user" => {
                    if let Some(user) = self.user(ctx, item) {
                        self.config.global.script_user = Some(user);
                        self.record("global.script_user", item.at());
                    }
                }
                "enable_script_security" => {
                    self.no_value(ctx, item);
                    self.config.global.enable_script_security = true;
                    self.record("global.enable_script_security", item.at());
                }
                "notify_fifo" | "vrrp_notify_fifo" => {
                    if let Some((path, at)) = self.command(ctx, item) {
                        self.config.global.notify_fifo = Some(PathBuf::from(path));
                        self.record("global.notify_fifo", at);
                    }
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" => {
                    if let Some((command, at)) = self.command(ctx, item) {
                        self.config.global.notify_fifo_script = Some(command);
                        self.record("global.notify_fifo_script", at);
                    }
                }
                "vrrp_startup_delay" => {
                    if let Some((d, at)) = self.timer(ctx, item) {
                        self.config.global.startup_delay = d;
                        self.record("global.startup_delay", at);
                    }
                }
                key if GLOBAL_UNSUPPORTED.contains(&key) => self.unsupported(ctx, item),
                _ => self.unknown(ctx, item, GLOBAL_KEYWORDS),
            }
        }
    }

    /// `user USERNAME [GROUPNAME]` as `user` or `user:group`.
    fn user(&mut self, ctx: &str, s: &Stmt) -> Option<String> {
        match s.args() {
            [] => {
                self.warn(
                    s.at(),
                    format!("{ctx}{}: needs a user name; ignored", s.key()),
                );
                None
            }
            [user] => Some(user.text.clone()),
            [user, group] => Some(format!("{}:{}", user.text, group.text)),
            [user, group, extra, ..] => {
                self.warn(
                    extra.at,
                    format!(
                        "{ctx}{}: \"{}\" and what follows are ignored",
                        s.key(),
                        extra.text
                    ),
                );
                Some(format!("{}:{}", user.text, group.text))
            }
        }
    }

    /// The name after a block keyword (`vrrp_instance VI_1 {`).
    fn block_name(&mut self, s: &Stmt) -> Option<Word> {
        match s.args() {
            [] => {
                self.error(s.at(), format!("{}: needs a name", s.key()));
                None
            }
            [name, rest @ ..] => {
                if let Some(extra) = rest.first() {
                    self.warn(
                        extra.at,
                        format!(
                            "{} \"{}\": \"{}\" after the name is ignored",
                            s.key(),
                            name.text,
                            extra.text
                        ),
                    );
                }
                Some(name.clone())
            }
        }
    }

    fn instance(&mut self, s: &Stmt) {
        let Some(name) = self.block_name(s) else {
            return;
        };
        let ctx = format!("vrrp_instance \"{}\": ", name.text);
        let Some(items) = s.block.as_deref() else {
            self.error(s.at(), format!("{ctx}expects a {{ }} block"));
            return;
        };
        let p = format!("instance[{}]", self.config.instances.len());
        self.record(&p, s.at());
        self.record(&format!("{p}.name"), name.at);
        let mut inst = Instance::new(name.text.clone(), "", 0);
        inst.version = self.globals.version;
        inst.garp = self.globals.garp.clone();
        inst.strict_mode = self.globals.strict;
        let mut version_given = false;
        let mut vrid_given = false;
        let mut interface_given = false;
        for item in items {
            let key = item.key();
            let at = item.at();
            match key {
                "state" => {
                    if let Some(w) = self.single(&ctx, item) {
                        match w.text.to_ascii_uppercase().as_str() {
                            "MASTER" => inst.initial_state = Some(InitialState::Master),
                            "BACKUP" => inst.initial_state = Some(InitialState::Backup),
                            _ => self.warn(
                                w.at,
                                format!(
                                    "{ctx}state: \"{}\" is not MASTER or BACKUP; ignored",
                                    w.text
                                ),
                            ),
                        }
                        self.record(&format!("{p}.initial_state"), w.at);
                    }
                }
                "interface" => {
                    if let Some(w) = self.single(&ctx, item) {
                        inst.interface = w.text.clone();
                        interface_given = true;
                        self.record(&format!("{p}.interface"), w.at);
                    }
                }
                "virtual_router_id" => {
                    vrid_given = true;
                    match item.args().first().map(|w| (w.text.parse::<u8>(), w)) {
                        Some((Ok(n), w)) if n >= 1 && item.args().len() == 1 => {
                            inst.vrid = n;
                            self.record(&format!("{p}.vrid"), w.at);
                        }
                        Some((_, w)) => {
                            self.error(
                                w.at,
                                format!(
                                    "{ctx}virtual_router_id: \"{}\" is not one number in 1..=255",
                                    item.args()
                                        .iter()
                                        .map(|w| w.text.as_str())
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                ),
                            );
                            self.origins.mark_reported(format!("{p}.vrid"));
                        }
                        None => {
                            self.error(
                                at,
                                format!("{ctx}virtual_router_id: needs a number in 1..=255"),
                            );
                            self.origins.mark_reported(format!("{p}.vrid"));
                        }
                    }
                }
                "priority" => {
                    if let Some((n, at)) = self.integer(&ctx, item, 1..=255) {
                        inst.priority = u8::try_from(n).unwrap_or(Instance::DEFAULT_PRIORITY);
                        self.record(&format!("{p}.priority"), at);
                    }
                }
                "advert_int" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.advert_interval = d;
                        self.record(&format!("{p}.advert_interval"), at);
                    }
                }
                "version" => {
                    if let Some((n, at)) = self.integer(&ctx, item, 2..=3) {
                        inst.version = if n == 2 { Version::V2 } else { Version::V3 };
                        version_given = true;
                        self.record(&format!("{p}.version"), at);
                    }
                }
                "nopreempt" => {
                    self.no_value(&ctx, item);
                    inst.preempt = false;
                    self.record(&format!("{p}.preempt"), at);
                }
                "preempt" => {
                    self.no_value(&ctx, item);
                    inst.preempt = true;
                    self.record(&format!("{p}.preempt"), at);
                }
                "preempt_delay" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.preempt_delay = d;
                        self.record(&format!("{p}.preempt_delay"), at);
                    }
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let excluded = key == "virtual_ipaddress_excluded";
                    let model_key = if excluded {
                        "virtual_ips_excluded"
                    } else {
                        "virtual_ips"
                    };
                    self.record(&format!("{p}.{model_key}"), at);
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for line in lines {
                        for (vip, vip_at) in self.vips(&ctx, key, line) {
                            let list = if excluded {
                                &mut inst.virtual_ips_excluded
                            } else {
                                &mut inst.virtual_ips
                            };
                            self.origins.record_in(
                                format!("{p}.{model_key}[{}]", list.len()),
                                vip_at.file,
                                vip_at.pos,
                            );
                            list.push(vip);
                        }
                    }
                }
                "unicast_src_ip" => {
                    if let Some((a, at)) = self.ip(&ctx, item) {
                        inst.unicast_src = Some(a);
                        self.record(&format!("{p}.unicast_src"), at);
                    }
                }
                "mcast_src_ip" => {
                    if let Some((a, at)) = self.ip(&ctx, item) {
                        inst.mcast_src = Some(a);
                        self.record(&format!("{p}.mcast_src"), at);
                    }
                }
                "unicast_peer" => {
                    self.record(&format!("{p}.unicast_peers"), at);
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for line in lines {
                        for (peer, peer_at) in self.peers(&ctx, line) {
                            let path = format!("{p}.unicast_peers[{}]", inst.unicast_peers.len());
                            self.record(&path, peer_at);
                            inst.unicast_peers.push(peer);
                        }
                    }
                }
                "authentication" => self.authentication(&ctx, &p, item, &mut inst),
                "track_interface" => {
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for line in lines {
                        if let Some(t) = self.track_item(&ctx, key, line) {
                            let path =
                                format!("{p}.track_interfaces[{}]", inst.track_interfaces.len());
                            self.record(&path, line.at());
                            inst.track_interfaces.push(TrackInterface {
                                name: t.name,
                                weight: t.weight_override.unwrap_or(0),
                                reverse: t.reverse,
                            });
                        }
                    }
                }
                "track_script" | "track_file" => {
                    let model_key = if key == "track_script" {
                        "track_scripts"
                    } else {
                        "track_files"
                    };
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for line in lines {
                        if let Some(t) = self.track_item(&ctx, key, line) {
                            let list = if key == "track_script" {
                                &mut inst.track_scripts
                            } else {
                                &mut inst.track_files
                            };
                            let path = format!("{p}.{model_key}[{}]", list.len());
                            list.push(t);
                            self.record(&path, line.at());
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    self.notify(&ctx, &p, item, &mut inst.notify);
                }
                "garp_master_delay" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.garp.master_delay = d;
                        self.record(&format!("{p}.garp.master_delay"), at);
                    }
                }
                "garp_master_repeat" => {
                    if let Some((n, at)) = self.u32_value(&ctx, item) {
                        inst.garp.master_repeat = n;
                        self.record(&format!("{p}.garp.master_repeat"), at);
                    }
                }
                "garp_lower_prio_delay" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.garp.lower_prio_delay = Some(d);
                        self.record(&format!("{p}.garp.lower_prio_delay"), at);
                    }
                }
                "garp_lower_prio_repeat" => {
                    if let Some((n, at)) = self.u32_value(&ctx, item) {
                        inst.garp.lower_prio_repeat = Some(n);
                        self.record(&format!("{p}.garp.lower_prio_repeat"), at);
                    }
                }
                "garp_master_refresh" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.garp.master_refresh = (!d.is_zero()).then_some(d);
                        self.record(&format!("{p}.garp.master_refresh"), at);
                    }
                }
                "garp_master_refresh_repeat" => {
                    if let Some((n, at)) = self.u32_value(&ctx, item) {
                        inst.garp.master_refresh_repeat = n;
                        self.record(&format!("{p}.garp.master_refresh_repeat"), at);
                    }
                }
                "garp_interval" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.garp.interval = d;
                        self.record(&format!("{p}.garp.interval"), at);
                    }
                }
                "gna_interval" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        inst.garp.na_interval = d;
                        self.record(&format!("{p}.garp.na_interval"), at);
                    }
                }
                "use_vmac" => {
                    inst.use_vmac = true;
                    self.record(&format!("{p}.use_vmac"), at);
                    let mut args = item.args().iter();
                    if let Some(first) = args.next() {
                        if looks_like_mac(&first.text) {
                            self.warn(first.at, format!("{ctx}use_vmac: a MAC address is not supported by baton; ignored"));
                        } else {
                            inst.vmac_interface = Some(first.text.clone());
                            if let Some(mac) = args.next() {
                                self.warn(mac.at, format!("{ctx}use_vmac: a MAC address is not supported by baton; ignored"));
                            }
                        }
                    }
                }
                "virtual_routes" | "virtual_rules" => {
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for line in lines {
                        let text = join_command(&line.words);
                        let list = if key == "virtual_routes" {
                            &mut inst.virtual_routes
                        } else {
                            &mut inst.virtual_rules
                        };
                        let path = format!("{p}.{key}[{}]", list.len());
                        list.push(text);
                        self.record(&path, line.at());
                    }
                }
                "strict_mode" => {
                    if let Some(b) = self.flag(&ctx, item) {
                        inst.strict_mode = b;
                        self.record(&format!("{p}.strict_mode"), at);
                    }
                }
                key if INSTANCE_UNSUPPORTED.contains(&key) => self.unsupported(&ctx, item),
                _ => self.unknown(&ctx, item, INSTANCE_KEYWORDS),
            }
        }
        if !vrid_given {
            self.error(s.at(), format!("{ctx}virtual_router_id is missing"));
            self.origins.mark_reported(format!("{p}.vrid"));
        }
        if !interface_given {
            self.error(
                s.at(),
                format!(
                    "{ctx}interface is missing (baton needs the interface even in unicast mode)"
                ),
            );
            self.origins.mark_reported(format!("{p}.interface"));
        }
        if !version_given && inst.family() == crate::config::model::Family::V6 {
            // keepalived: IPv6 instances always use version 3.
            inst.version = Version::V3;
        }
        self.config.instances.push(inst);
    }

    fn authentication(&mut self, ctx: &str, p: &str, s: &Stmt, inst: &mut Instance) {
        let Some(items) = self.block_of(ctx, s) else {
            return;
        };
        let mut kind: Option<Word> = None;
        let mut pass: Option<Word> = None;
        for item in items {
            match item.key() {
                "auth_type" => kind = self.single(ctx, item).cloned(),
                "auth_pass" => pass = self.single(ctx, item).cloned(),
                _ => self.unknown(ctx, item, &["auth_type", "auth_pass"]),
            }
        }
        match kind.as_ref().map(|w| w.text.as_str()) {
            Some("PASS") | None => {}
            Some("AH") => {
                let at = kind.as_ref().map_or(s.at(), |w| w.at);
                self.error(
                    at,
                    format!(
                        "{ctx}authentication: auth_type AH is not supported by baton (only PASS)"
                    ),
                );
                self.origins.mark_reported(format!("{p}.auth_pass"));
                return;
            }
            Some(other) => {
                let at = kind.as_ref().map_or(s.at(), |w| w.at);
                self.error(
                    at,
                    format!("{ctx}authentication: auth_type \"{other}\" is not PASS or AH"),
                );
                self.origins.mark_reported(format!("{p}.auth_pass"));
                return;
            }
        }
        let Some(pass) = pass else {
            self.warn(
                s.at(),
                format!("{ctx}authentication: no auth_pass; ignored"),
            );
            return;
        };
        let mut text = pass.text.clone();
        if text.len() > 8 {
            // keepalived uses the first eight characters.
            let mut cut = 8;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            self.warn(
                pass.at,
                format!("{ctx}authentication: auth_pass is longer than 8 bytes; only \"{text}\" is used, as keepalived does"),
            );
        }
        inst.auth_pass = Some(text);
        self.record(&format!("{p}.auth_pass"), pass.at);
    }

    fn notify(&mut self, ctx: &str, p: &str, s: &Stmt, notify: &mut Notify) {
        let Some((command, at)) = self.command(ctx, s) else {
            return;
        };
        let (slot, key) = match s.key() {
            "notify_master" => (&mut notify.master, "master"),
            "notify_backup" => (&mut notify.backup, "backup"),
            "notify_fault" => (&mut notify.fault, "fault"),
            "notify_stop" => (&mut notify.stop, "stop"),
            _ => (&mut notify.generic, "generic"),
        };
        *slot = Some(command);
        self.record(&format!("{p}.notify.{key}"), at);
    }

    /// The addresses of one line of a virtual_ipaddress block (usually one;
    /// several when a block is written on one line).
    fn vips(&mut self, ctx: &str, key: &str, line: &Stmt) -> Vec<(Vip, At)> {
        let mut out = Vec::new();
        let mut current: Option<(Vec<&str>, At)> = None;
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            let text = w.text.as_str();
            if VIP_OPTIONS.contains(&text) && current.is_some() {
                if let Some((parts, _)) = current.as_mut() {
                    parts.push(text);
                    if let Some(value) = words.next() {
                        parts.push(&value.text);
                    }
                }
            } else if VIP_UNSUPPORTED_WITH_VALUE.contains(&text) {
                let value = words.next().map_or("", |v| v.text.as_str());
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{key}: option \"{text} {value}\" is not supported by baton; ignored"
                    ),
                );
            } else if VIP_UNSUPPORTED_FLAGS.contains(&text) {
                self.warn(
                    w.at,
                    format!("{ctx}{key}: option \"{text}\" is not supported by baton; ignored"),
                );
            } else {
                if let Some(done) = current.take() {
                    out.extend(self.vip(ctx, key, done));
                }
                current = Some((vec![text], w.at));
            }
        }
        if let Some(done) = current {
            out.extend(self.vip(ctx, key, done));
        }
        out
    }

    fn vip(&mut self, ctx: &str, key: &str, (parts, at): (Vec<&str>, At)) -> Option<(Vip, At)> {
        let text = parts.join(" ");
        match text.parse::<Vip>() {
            Ok(vip) => Some((vip, at)),
            Err(e) => {
                self.warn(at, format!("{ctx}{key}: {e}; the address is ignored"));
                None
            }
        }
    }

    /// The peers of one line of a unicast_peer block.
    fn peers(&mut self, ctx: &str, line: &Stmt) -> Vec<(IpAddr, At)> {
        let mut out = Vec::new();
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            match w.text.as_str() {
                "min_ttl" | "max_ttl" => {
                    words.next();
                    self.warn(
                        w.at,
                        format!(
                            "{ctx}unicast_peer: {} is not supported by baton; ignored",
                            w.text
                        ),
                    );
                }
                text => match text.parse::<IpAddr>() {
                    Ok(a) => out.push((a, w.at)),
                    Err(_) => self.warn(
                        w.at,
                        format!("{ctx}unicast_peer: \"{text}\" is not an IP address; ignored"),
                    ),
                },
            }
        }
        out
    }

    /// `NAME [weight W] [reverse|noreverse|no_reverse]`.
    fn track_item(&mut self, ctx: &str, key: &str, line: &Stmt) -> Option<TrackRef> {
        let mut words = line.words.iter();
        let name = words.next()?;
        let mut t = TrackRef::new(name.text.clone());
        while let Some(w) = words.next() {
            match w.text.as_str() {
                "weight" => match words.next().map(|v| (v.text.parse::<i32>(), v)) {
                    Some((Ok(n), _)) => t.weight_override = Some(n),
                    Some((Err(_), v)) => self.warn(
                        v.at,
                        format!(
                            "{ctx}{key}: {}: weight \"{}\" is not an integer; ignored",
                            name.text, v.text
                        ),
                    ),
                    None => self.warn(
                        w.at,
                        format!("{ctx}{key}: {}: weight needs a value; ignored", name.text),
                    ),
                },
                "reverse" => t.reverse = true,
                "noreverse" | "no_reverse" => t.reverse = false,
                other => self.warn(
                    w.at,
                    format!(
                        "{ctx}{key}: {}: \"{other}\" is not weight, reverse or noreverse; ignored \
                         (one name per line)",
                        name.text
                    ),
                ),
            }
        }
        Some(t)
    }

    fn vrrp_script(&mut self, s: &Stmt) {
        let Some(name) = self.block_name(s) else {
            return;
        };
        let ctx = format!("vrrp_script \"{}\": ", name.text);
        let Some(items) = self.block_of(&ctx, s) else {
            return;
        };
        let p = format!("vrrp_script[{}]", self.config.vrrp_scripts.len());
        self.record(&p, s.at());
        self.record(&format!("{p}.name"), name.at);
        let mut script = VrrpScript::new(name.text.clone(), "");
        let mut has_script = false;
        for item in items {
            let at = item.at();
            match item.key() {
                "script" => {
                    if item.args().is_empty() {
                        self.warn(at, format!("{ctx}script: needs a command"));
                    } else {
                        script.script = join_command(item.args());
                        has_script = true;
                        self.record(&format!("{p}.script"), item.args()[0].at);
                    }
                }
                "interval" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        script.interval = d;
                        self.record(&format!("{p}.interval"), at);
                    }
                }
                "timeout" => {
                    if let Some((d, at)) = self.timer(&ctx, item) {
                        script.timeout = Some(d);
                        self.record(&format!("{p}.timeout"), at);
                    }
                }
                "weight" => {
                    let args = item.args();
                    match args.first().map(|w| (w.text.parse::<i32>(), w)) {
                        Some((Ok(n), w)) => {
                            script.weight = n;
                            self.record(&format!("{p}.weight"), w.at);
                            match args.get(1).map(|w| (w.text.as_str(), w)) {
                                None => {}
                                Some(("reverse", _)) => script.weight_reverse = true,
                                Some(("noreverse" | "no_reverse", _)) => {}
                                Some((other, w)) => self.warn(
                                    w.at,
                                    format!("{ctx}weight: \"{other}\" is not reverse; ignored"),
                                ),
                            }
                        }
                        Some((Err(_), w)) => self.warn(
                            w.at,
                            format!("{ctx}weight: \"{}\" is not an integer; ignored", w.text),
                        ),
                        None => self.warn(at, format!("{ctx}weight: needs a value; ignored")),
                    }
                }
                "rise" | "fall" => {
                    if let Some((n, at)) = self.u32_value(&ctx, item) {
                        if item.key() == "rise" {
                            script.rise = n;
                        } else {
                            script.fall = n;
                        }
                        self.record(&format!("{p}.{}", item.key()), at);
                    }
                }
                "user" => {
                    if let Some(user) = self.user(&ctx, item) {
                        script.user = Some(user);
                        self.record(&format!("{p}.user"), at);
                    }
                }
                "init_fail" => {
                    self.no_value(&ctx, item);
                    script.init_fail = true;
                    self.record(&format!("{p}.init_fail"), at);
                }
                _ => self.unknown(&ctx, item, SCRIPT_KEYWORDS),
            }
        }
        if !has_script {
            self.error(s.at(), format!("{ctx}script is missing"));
            self.origins.mark_reported(format!("{p}.script"));
        }
        self.config.vrrp_scripts.push(script);
    }

    fn track_file(&mut self, s: &Stmt) {
        let Some(name) = self.block_name(s) else {
            return;
        };
        let ctx = format!("track_file \"{}\": ", name.text);
        let Some(items) = self.block_of(&ctx, s) else {
            return;
        };
        let p = format!("track_file[{}]", self.config.track_files.len());
        self.record(&p, s.at());
        self.record(&format!("{p}.name"), name.at);
        let mut file = TrackFile {
            name: name.text.clone(),
            path: PathBuf::new(),
            weight: 1,
            reverse: false,
        };
        let mut has_file = false;
        for item in items {
            match item.key() {
                "file" => {
                    if let Some(w) = self.single(&ctx, item) {
                        file.path = PathBuf::from(&w.text);
                        has_file = true;
                        self.record(&format!("{p}.path"), w.at);
                    }
                }
                "weight" => {
                    let args = item.args();
                    match args.first().map(|w| (w.text.parse::<i32>(), w)) {
                        Some((Ok(n), w)) => {
                            file.weight = n;
                            self.record(&format!("{p}.weight"), w.at);
                            file.reverse = args.get(1).is_some_and(|w| w.text == "reverse");
                        }
                        Some((Err(_), w)) => self.warn(
                            w.at,
                            format!("{ctx}weight: \"{}\" is not an integer; ignored", w.text),
                        ),
                        None => {
                            self.warn(item.at(), format!("{ctx}weight: needs a value; ignored"))
                        }
                    }
                }
                "init_file" => self.unsupported(&ctx, item),
                _ => self.unknown(&ctx, item, TRACK_FILE_KEYWORDS),
            }
        }
        if !has_file {
            self.error(s.at(), format!("{ctx}file is missing"));
            self.origins.mark_reported(format!("{p}.path"));
        }
        self.config.track_files.push(file);
    }

    fn sync_group(&mut self, s: &Stmt) {
        let Some(name) = self.block_name(s) else {
            return;
        };
        let ctx = format!("vrrp_sync_group \"{}\": ", name.text);
        let Some(items) = self.block_of(&ctx, s) else {
            return;
        };
        let p = format!("sync_group[{}]", self.config.sync_groups.len());
        self.record(&p, s.at());
        self.record(&format!("{p}.name"), name.at);
        let mut group = SyncGroup {
            name: name.text.clone(),
            instances: Vec::new(),
            notify: Notify::default(),
        };
        for item in items {
            match item.key() {
                "group" => {
                    self.record(&format!("{p}.instances"), item.at());
                    let Some(lines) = self.block_of(&ctx, item) else {
                        continue;
                    };
                    for w in lines.iter().flat_map(|l| l.words.iter()) {
                        let path = format!("{p}.instances[{}]", group.instances.len());
                        self.record(&path, w.at);
                        group.instances.push(w.text.clone());
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    self.notify(&ctx, &p, item, &mut group.notify);
                }
                key if GROUP_UNSUPPORTED.contains(&key) => self.unsupported(&ctx, item),
                _ => self.unknown(&ctx, item, GROUP_KEYWORDS),
            }
        }
        self.config.sync_groups.push(group);
    }

    /// `cluster { }`: baton's cluster channel (an extension; keepalived does
    /// not have it).
    fn cluster(&mut self, s: &Stmt) {
        let ctx = "cluster: ";
        let Some(items) = self.block_of("", s) else {
            return;
        };
        self.record("cluster", s.at());
        let mut node = None;
        let mut listen = None;
        let mut key_file = None;
        let mut peers = Vec::new();
        let mut order = Vec::new();
        let mut heartbeat = Cluster::DEFAULT_HEARTBEAT_INTERVAL;
        let mut selection = Selection::Priority;
        let mut sync_instance = None;
        for item in items {
            let at = item.at();
            match item.key() {
                "node" => {
                    if let Some(w) = self.single(ctx, item) {
                        node = Some(w.text.clone());
                        self.record("cluster.node", w.at);
                    }
                }
                "listen" => {
                    if let Some(w) = self.single(ctx, item) {
                        match w.text.parse::<SocketAddr>() {
                            Ok(a) => {
                                listen = Some(a);
                                self.record("cluster.listen", w.at);
                            }
                            Err(_) => {
                                self.error(
                                    w.at,
                                    format!(
                                        "{ctx}listen: \"{}\" is not IP:PORT (IPv6: [ADDR]:PORT)",
                                        w.text
                                    ),
                                );
                                self.origins.mark_reported("cluster.listen");
                            }
                        }
                    }
                }
                "key_file" => {
                    if let Some(w) = self.single(ctx, item) {
                        key_file = Some(PathBuf::from(&w.text));
                        self.record("cluster.key_file", w.at);
                    }
                }
                "heartbeat_interval" => {
                    if let Some((d, at)) = self.duration(ctx, item) {
                        heartbeat = d;
                        self.record("cluster.heartbeat_interval", at);
                    }
                }
                "sync_instance" => {
                    if let Some(w) = self.single(ctx, item) {
                        sync_instance = Some(w.text.clone());
                        self.record("cluster.sync_instance", w.at);
                    }
                }
                "selection" => {
                    if let Some(w) = self.single(ctx, item) {
                        match w.text.as_str() {
                            "priority" => selection = Selection::Priority,
                            "order" => selection = Selection::Order,
                            other => self.warn(
                                w.at,
                                format!(
                                    "{ctx}selection: \"{other}\" is not priority or order; ignored"
                                ),
                            ),
                        }
                        self.record("cluster.selection", w.at);
                    }
                }
                "peers" | "order" => {
                    self.record(&format!("cluster.{}", item.key()), at);
                    let words: Vec<&Word> = item
                        .args()
                        .iter()
                        .chain(item.items().iter().flat_map(|l| l.words.iter()))
                        .collect();
                    for w in words {
                        if item.key() == "order" {
                            self.record(&format!("cluster.order[{}]", order.len()), w.at);
                            order.push(w.text.clone());
                            continue;
                        }
                        match w.text.parse::<Peer>() {
                            Ok(peer) => {
                                self.record(&format!("cluster.peers[{}]", peers.len()), w.at);
                                peers.push(peer);
                            }
                            Err(e) => self.error(w.at, format!("{ctx}peers: {e}")),
                        }
                    }
                }
                _ => self.unknown(ctx, item, CLUSTER_KEYWORDS),
            }
        }
        if listen.is_none() && !self.origins.is_reported("cluster.listen") {
            self.error(s.at(), format!("{ctx}listen is missing"));
            self.origins.mark_reported("cluster.listen");
        }
        if key_file.is_none() {
            self.error(s.at(), format!("{ctx}key_file is missing"));
            self.origins.mark_reported("cluster.key_file");
        }
        self.config.cluster = Some(Cluster {
            node: node.unwrap_or_else(|| self.config.global.router_id.clone()),
            listen: listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            peers,
            key_file: key_file.unwrap_or_default(),
            heartbeat_interval: heartbeat,
            selection,
            order,
            sync_instance,
        });
    }

    /// `sync [NAME] { path ... }`: a file kept in sync by the cluster channel
    /// (an extension).
    fn sync(&mut self, s: &Stmt) {
        let given_name = s.args().first().map(|w| w.text.clone());
        let ctx = match &given_name {
            Some(n) => format!("sync \"{n}\": "),
            None => "sync: ".to_string(),
        };
        let Some(items) = self.block_of(&ctx, s) else {
            return;
        };
        let p = format!("sync[{}]", self.config.sync.len());
        self.record(&p, s.at());
        let mut path = None;
        let mut on_change = None;
        let mut mode = None;
        let mut owner = None;
        let mut max_size = SyncEntry::DEFAULT_MAX_SIZE;
        for item in items {
            match item.key() {
                "path" => {
                    if let Some(w) = self.single(&ctx, item) {
                        path = Some(w.text.clone());
                        self.record(&format!("{p}.path"), w.at);
                    }
                }
                "on_change" => {
                    if !item.args().is_empty() {
                        on_change = Some(join_command(item.args()));
                        self.record(&format!("{p}.on_change"), item.args()[0].at);
                    }
                }
                "owner" => {
                    if let Some(w) = self.single(&ctx, item) {
                        owner = Some(w.text.clone());
                        self.record(&format!("{p}.owner"), w.at);
                    }
                }
                "mode" => {
                    if let Some(w) = self.single(&ctx, item) {
                        match u32::from_str_radix(&w.text, 8) {
                            Ok(m) if m <= 0o7777 && !w.text.starts_with('+') => {
                                mode = Some(m);
                                self.record(&format!("{p}.mode"), w.at);
                            }
                            _ => self.warn(w.at, format!("{ctx}mode: \"{}\" is not an octal file mode such as 0640; ignored", w.text)),
                        }
                    }
                }
                "max_size" => {
                    if let Some(w) = self.single(&ctx, item) {
                        match crate::config::toml::parse_size(&w.text) {
                            Some(n) => {
                                max_size = n;
                                self.record(&format!("{p}.max_size"), w.at);
                            }
                            None => self.warn(w.at, format!("{ctx}max_size: \"{}\" is not a size such as 65536, 64KiB or 1MiB; ignored", w.text)),
                        }
                    }
                }
                _ => self.unknown(&ctx, item, SYNC_KEYWORDS),
            }
        }
        if path.is_none() {
            self.error(s.at(), format!("{ctx}path is missing"));
            self.origins.mark_reported(format!("{p}.path"));
            self.origins.mark_reported(format!("{p}.name"));
        }
        let path = path.unwrap_or_default();
        if given_name.is_some() {
            self.record(&format!("{p}.name"), s.args()[0].at);
        }
        self.config.sync.push(SyncEntry {
            name: given_name.unwrap_or_else(|| path.clone()),
            path: PathBuf::from(path),
            on_change,
            mode,
            owner,
            max_size,
        });
    }
}

/// Words back into a command line: a word with a space or a quote is put in
/// single quotes (keepalived's convention for script arguments).
fn join_command(words: &[Word]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if words.len() > 1 && w.text.contains(char::is_whitespace) && !w.text.contains('\'') {
            out.push('\'');
            out.push_str(&w.text);
            out.push('\'');
        } else {
            out.push_str(&w.text);
        }
    }
    out
}

fn looks_like_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    (5..=6).contains(&parts.len())
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Seconds, possibly fractional (`1`, `0.01`, `2.71828`); at most 9
/// fractional digits count.
fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u32;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - u32::try_from(i).unwrap_or(8));
    }
    Some(Duration::new(secs, nanos))
}

/// ` (did you mean "x"?)` for a near miss; empty otherwise.
fn did_you_mean(name: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (crate::config::toml::edit_distance(name, k), *k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 2.max(name.len() / 4) => format!(" (did you mean \"{k}\"?)"),
        _ => String::new(),
    }
}
