//! Validation of a [`Config`], whichever reader built it.
//!
//! Every rule here relates values to each other or to the protocol's limits;
//! a reader has already refused what a single value tells on its own (a
//! malformed address, a mistyped key). Positions come from the [`Origins`]
//! the reader recorded; a finding about a value that took its default is
//! reported at its section.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use humantime::format_duration;

use super::diag::{Diagnostics, Origins};
use super::model::AuthType;
use super::model::{
    Cluster, Config, Family, Garp, Global, Instance, Notify, Route, Rule, Selection, SyncEntry,
    TrackFile, TrackInterface, TrackRef, Version, Vip, VrrpScript,
};

/// v3: Max Adver Int is 12 bits of centiseconds.
const V3_MIN_INTERVAL: Duration = Duration::from_millis(10);
const V3_MAX_INTERVAL: Duration = Duration::from_millis(40_950);
/// v2: Adver Int is 8 bits of seconds.
const V2_MAX_INTERVAL_SECS: u64 = 255;
const MAX_AUTH_PASS: usize = 8;
/// Linux IFNAMSIZ - 1.
const MAX_IFNAME: usize = 15;
/// keepalived's range for interface and script weights.
const MAX_WEIGHT: i32 = 253;
/// keepalived's range for a track_file weight given by an instance.
const MAX_FILE_WEIGHT: i32 = TrackFile::MAX_WEIGHT;
/// How much of an overlong name a message shows.
const SHOWN_NAME: usize = 40;

/// Every finding (errors and warnings) about `config`, in file order.
pub fn check(config: &Config, origins: &Origins) -> Diagnostics {
    let mut c = Checker {
        origins,
        diags: Diagnostics::new(),
    };
    c.global(&config.global);
    c.statics(config);
    if config.instances.is_empty() {
        c.warn(
            "",
            "no instance: this node runs no virtual router".to_string(),
        );
    }
    for (i, instance) in config.instances.iter().enumerate() {
        c.instance(i, instance);
    }
    c.across_instances(&config.instances);
    c.route_mode(config);
    c.vrrp_scripts(config);
    c.tracking(config);
    c.sync_groups(config);
    if let Some(cluster) = &config.cluster {
        c.cluster(cluster);
    }
    c.sync(&config.sync);
    c.sync_control(config);
    c.diags.sort();
    c.diags
}

struct Checker<'o> {
    origins: &'o Origins,
    diags: Diagnostics,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, message: String) {
        if !self.origins.is_reported(path) {
            self.diags.push(self.origins.error(path, message));
        }
    }

    fn warn(&mut self, path: &str, message: String) {
        if !self.origins.is_reported(path) {
            self.diags.push(self.origins.warning(path, message));
        }
    }

    /// A duration past its bound: `WHAT: KEY: VALUE is more than MAX`.
    fn duration_at_most(&mut self, path: &str, what: &str, key: &str, d: Duration, max: Duration) {
        if d > max {
            self.err(
                path,
                format!(
                    "{what}: {key}: {} is more than {}",
                    format_duration(d),
                    format_duration(max)
                ),
            );
        }
    }

    /// A count past its bound: `WHAT: KEY: N is more than MAX`.
    fn count_at_most(&mut self, path: &str, what: &str, key: &str, n: u32, max: u32) {
        if n > max {
            self.err(path, format!("{what}: {key}: {n} is more than {max}"));
        }
    }

    /// A name longer than `max` bytes: `WHAT: KEY: "NAME" is N bytes long,
    /// at most MAX (WHY)`. True when it is.
    fn name_too_long(
        &mut self,
        path: &str,
        what: &str,
        key: &str,
        name: &str,
        max: usize,
        why: &str,
    ) -> bool {
        if name.len() <= max {
            return false;
        }
        self.err(
            path,
            format!(
                "{what}: {key}: \"{}\" is {} bytes long, at most {max} ({why})",
                shown(name),
                name.len()
            ),
        );
        true
    }

    /// "line N" of a model path, for messages that point at a second place.
    fn line_of(&self, path: &str) -> String {
        match self.origins.at(path).line {
            0 => String::new(),
            n => format!(" (line {n})"),
        }
    }

    fn global(&mut self, g: &Global) {
        self.global_keys(g);
        if g.router_id.trim().is_empty() {
            self.err(
                "global.router_id",
                "global: router_id: must not be empty".into(),
            );
        }
        if let Some(m) = g.metrics_listen.filter(|m| m.port() == 0) {
            self.err(
                "global.metrics_listen",
                format!("global: metrics_listen: {m}: port 0 is not a port"),
            );
        }
        for (key, path) in [
            ("control_socket", &g.control_socket),
            ("state_dir", &g.state_dir),
        ] {
            if !path.is_absolute() {
                self.err(
                    &format!("global.{key}"),
                    format!(
                        "global: {key}: \"{}\" is not an absolute path",
                        path.display()
                    ),
                );
            }
        }
        if let Some(path) = &g.notify_fifo {
            if !path.is_absolute() {
                self.err(
                    "global.notify_fifo",
                    format!(
                        "global: notify_fifo: \"{}\" is not an absolute path",
                        path.display()
                    ),
                );
            }
        } else if g.notify_fifo_script.is_some() {
            self.warn(
                "global.notify_fifo_script",
                "global: notify_fifo_script: has no effect without notify_fifo".into(),
            );
        }
        for (key, value) in [
            ("notify_fifo_script", &g.notify_fifo_script),
            ("script_user", &g.script_user),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                self.err(
                    &format!("global.{key}"),
                    format!("global: {key}: must not be empty (leave it out instead)"),
                );
            }
        }
        self.duration_at_most(
            "global.startup_delay",
            "global",
            "startup_delay",
            g.startup_delay,
            Global::MAX_STARTUP_DELAY,
        );
    }

    fn notify(&mut self, p: &str, what: &str, notify: &Notify) {
        for (key, command) in [
            ("master", &notify.master),
            ("backup", &notify.backup),
            ("fault", &notify.fault),
            ("stop", &notify.stop),
            ("generic", &notify.generic),
        ] {
            if command.as_deref().is_some_and(|c| c.trim().is_empty()) {
                self.err(
                    &format!("{p}.notify.{key}"),
                    format!("{what}: notify: {key}: must not be empty (leave it out instead)"),
                );
            }
        }
    }

    fn vrrp_scripts(&mut self, config: &Config) {
        let mut names = HashSet::new();
        for (k, script) in config.vrrp_scripts.iter().enumerate() {
            let p = format!("vrrp_script[{k}]");
            let what = format!("vrrp_script \"{}\"", script.name);
            if script.name.trim().is_empty() {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: must not be empty"),
                );
            } else if !names.insert(script.name.as_str()) {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: already used by another vrrp_script"),
                );
            }
            if script.script.trim().is_empty() {
                self.err(
                    &format!("{p}.script"),
                    format!("{what}: script: must not be empty"),
                );
            }
            if script.interval.is_zero() {
                self.err(
                    &format!("{p}.interval"),
                    format!("{what}: interval: must not be 0"),
                );
            }
            self.duration_at_most(
                &format!("{p}.interval"),
                &what,
                "interval",
                script.interval,
                VrrpScript::MAX_INTERVAL,
            );
            if let Some(timeout) = script.timeout {
                if timeout.is_zero() {
                    self.err(
                        &format!("{p}.timeout"),
                        format!("{what}: timeout: must not be 0"),
                    );
                }
                self.duration_at_most(
                    &format!("{p}.timeout"),
                    &what,
                    "timeout",
                    timeout,
                    VrrpScript::MAX_TIMEOUT,
                );
            }
            if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&script.weight) {
                self.err(
                    &format!("{p}.weight"),
                    format!(
                        "{what}: weight: {} is out of range -{MAX_WEIGHT}..={MAX_WEIGHT}",
                        script.weight
                    ),
                );
            }
            for (key, n) in [("rise", script.rise), ("fall", script.fall)] {
                if n == 0 {
                    self.err(
                        &format!("{p}.{key}"),
                        format!("{what}: {key}: must be at least 1"),
                    );
                }
                self.count_at_most(
                    &format!("{p}.{key}"),
                    &what,
                    key,
                    n,
                    VrrpScript::MAX_RISE_FALL,
                );
            }
            if script.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
                self.err(
                    &format!("{p}.user"),
                    format!("{what}: user: must not be empty"),
                );
            }
        }
        let mut names = HashSet::new();
        for (k, file) in config.track_files.iter().enumerate() {
            let p = format!("track_file[{k}]");
            let what = format!("track_file \"{}\"", file.name);
            if file.name.trim().is_empty() {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: must not be empty"),
                );
            } else if !names.insert(file.name.as_str()) {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: already used by another track_file"),
                );
            }
            if !file.path.is_absolute() {
                self.err(
                    &format!("{p}.path"),
                    format!(
                        "{what}: path: \"{}\" is not an absolute path",
                        file.path.display()
                    ),
                );
            }
            if !(-MAX_FILE_WEIGHT..=MAX_FILE_WEIGHT).contains(&file.weight) {
                self.err(
                    &format!("{p}.weight"),
                    format!(
                        "{what}: weight: {} is out of range -{MAX_FILE_WEIGHT}..={MAX_FILE_WEIGHT}",
                        file.weight
                    ),
                );
            }
        }
    }

    /// The multicast groups, the namespace and the scheduling keys.
    fn global_keys(&mut self, g: &Global) {
        if !g.mcast_group4.is_multicast() {
            self.err(
                "global.mcast_group4",
                format!(
                    "global: mcast_group4: {} is not an IPv4 multicast address",
                    g.mcast_group4
                ),
            );
        }
        if !g.mcast_group6.is_multicast() || g.mcast_group6.segments()[0] & 0x000f != 2 {
            self.err(
                "global.mcast_group6",
                format!(
                    "global: mcast_group6: {} is not a link-local IPv6 multicast address (ffX2::)",
                    g.mcast_group6
                ),
            );
        }
        if let Some(ns) = &g.net_namespace {
            if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
                self.err(
                    "global.net_namespace",
                    format!("global: net_namespace: \"{ns}\" is not a namespace name"),
                );
            }
        }
        let max = Global::MAX_RT_PRIORITY;
        if g.max_auto_priority > max {
            self.err(
                "global.max_auto_priority",
                format!(
                    "global: max_auto_priority: {} is out of range 0..={max}",
                    g.max_auto_priority
                ),
            );
        }
        if let Some(p) = g.rt_priority.filter(|p| !(1..=max).contains(p)) {
            self.err(
                "global.rt_priority",
                format!("global: rt_priority: {p} is out of range 1..={max}"),
            );
        }
        let d = g.min_auto_priority_delay;
        if d < Duration::from_micros(1) || d > Duration::from_secs(10) {
            self.err(
                "global.min_auto_priority_delay",
                format!(
                    "global: min_auto_priority_delay: {} is out of range 1us..=10s",
                    format_duration(d)
                ),
            );
        }
        if let Some(n) = g.rlimit_rttime.filter(|n| *n < 2) {
            self.err(
                "global.rlimit_rttime",
                format!("global: rlimit_rttime: {n} is below 2 (microseconds)"),
            );
        }
    }

    /// What instances track: names that exist, weights in range.
    fn tracking(&mut self, config: &Config) {
        for (i, inst) in config.instances.iter().enumerate() {
            let p = format!("instance[{i}]");
            let what = format!("instance \"{}\"", inst.name);
            self.tracked(
                config,
                &p,
                &what,
                (
                    &inst.track_interfaces,
                    &inst.track_scripts,
                    &inst.track_files,
                ),
            );
        }
        self.member_weights(config);
        for (g, group) in config.sync_groups.iter().enumerate() {
            let p = format!("sync_group[{g}]");
            let what = format!("sync_group \"{}\"", group.name);
            self.tracked(
                config,
                &p,
                &what,
                (
                    &group.track_interfaces,
                    &group.track_scripts,
                    &group.track_files,
                ),
            );
        }
    }

    /// keepalived ignores the weights of a sync group member's own
    /// tracking unless the group has `sync_group_tracking_weight`: say so
    /// for each entry whose meaning that changes.
    fn member_weights(&mut self, config: &Config) {
        for (i, inst) in config.instances.iter().enumerate() {
            let Some(group) = config.sync_group_of(&inst.name) else {
                continue;
            };
            if group.tracking_weight {
                continue;
            }
            let what = format!("instance \"{}\"", inst.name);
            let why = format!(
                "in sync_group \"{}\" (as keepalived; tracking_weight / \
                 sync_group_tracking_weight keeps it)",
                group.name
            );
            for (j, t) in inst.track_interfaces.iter().enumerate() {
                if t.weight != 0 {
                    self.warn(
                        &format!("instance[{i}].track_interfaces[{j}]"),
                        format!(
                            "{what}: track_interfaces: \"{}\": weight {} counts as 0 (FAULT) {why}",
                            t.name, t.weight
                        ),
                    );
                }
            }
            let scripts = config.vrrp_scripts.iter().map(|s| (&s.name, s.weight));
            let files = config.track_files.iter().map(|f| (&f.name, f.weight));
            let own: HashMap<&String, i32> = scripts.collect();
            for (j, t) in inst.track_scripts.iter().enumerate() {
                let w = t.weight_override.or(own.get(&t.name).copied()).unwrap_or(0);
                if w != 0 {
                    self.warn(
                        &format!("instance[{i}].track_scripts[{j}]"),
                        format!(
                            "{what}: track_scripts: \"{}\" (weight {w}) is ignored {why}",
                            t.name
                        ),
                    );
                }
            }
            let own: HashMap<&String, i32> = files.collect();
            for (j, t) in inst.track_files.iter().enumerate() {
                let w = t.weight_override.or(own.get(&t.name).copied()).unwrap_or(0);
                let message = match w {
                    0 => continue,
                    1 => format!(
                        "{what}: track_files: \"{}\": weight 1 counts as 0 (FAULT) {why}",
                        t.name
                    ),
                    w => format!(
                        "{what}: track_files: \"{}\" (weight {w}) is ignored {why}",
                        t.name
                    ),
                };
                self.warn(&format!("instance[{i}].track_files[{j}]"), message);
            }
        }
    }

    /// One instance's or sync group's tracked interfaces, scripts, files.
    #[allow(clippy::type_complexity)]
    fn tracked(
        &mut self,
        config: &Config,
        p: &str,
        what: &str,
        (interfaces, track_scripts, track_files): (&[TrackInterface], &[TrackRef], &[TrackRef]),
    ) {
        {
            let mut seen = HashSet::new();
            for (j, t) in interfaces.iter().enumerate() {
                let path = format!("{p}.track_interfaces[{j}]");
                let name = &t.name;
                if let Some(reason) = bad_ifname(name) {
                    self.err(
                        &path,
                        format!("{what}: track_interfaces: \"{name}\" {reason}"),
                    );
                } else if !seen.insert(name) {
                    self.err(
                        &path,
                        format!("{what}: track_interfaces: \"{name}\" is listed twice"),
                    );
                }
                if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&t.weight) {
                    self.err(
                        &path,
                        format!(
                            "{what}: track_interfaces: \"{name}\": weight {} is out of range \
                             -{MAX_WEIGHT}..={MAX_WEIGHT}",
                            t.weight
                        ),
                    );
                }
            }
            let scripts: HashSet<&str> = config
                .vrrp_scripts
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            let files: HashSet<&str> = config.track_files.iter().map(|f| f.name.as_str()).collect();
            self.track_refs(
                p,
                what,
                "track_scripts",
                track_scripts,
                &scripts,
                MAX_WEIGHT,
            );
            self.track_refs(p, what, "track_files", track_files, &files, MAX_FILE_WEIGHT);
        }
    }

    fn track_refs(
        &mut self,
        p: &str,
        what: &str,
        key: &str,
        refs: &[TrackRef],
        known: &HashSet<&str>,
        max: i32,
    ) {
        let kind = if key == "track_scripts" {
            "vrrp_script"
        } else {
            "track_file"
        };
        let mut seen = HashSet::new();
        for (j, t) in refs.iter().enumerate() {
            let path = format!("{p}.{key}[{j}]");
            let name = &t.name;
            if !known.contains(name.as_str()) {
                self.err(
                    &path,
                    format!("{what}: {key}: no {kind} is called \"{name}\""),
                );
            } else if !seen.insert(name) {
                self.err(&path, format!("{what}: {key}: \"{name}\" is listed twice"));
            }
            if let Some(w) = t.weight_override {
                if !(-max..=max).contains(&w) {
                    self.err(
                        &path,
                        format!(
                            "{what}: {key}: \"{name}\": weight {w} is out of range -{max}..={max}"
                        ),
                    );
                }
            }
        }
    }

    fn instance(&mut self, i: usize, inst: &Instance) {
        let p = format!("instance[{i}]");
        let what = if inst.name.is_empty() {
            format!("instance #{}", i + 1)
        } else {
            format!("instance \"{}\"", shown(&inst.name))
        };
        if inst.name.trim().is_empty() {
            self.err(
                &format!("{p}.name"),
                format!("{what}: name: must not be empty"),
            );
        }
        self.name_too_long(
            &format!("{p}.name"),
            &what,
            "name",
            &inst.name,
            Instance::MAX_NAME_LEN,
            "it travels in cluster messages",
        );
        if let Some(reason) = bad_ifname(&inst.interface) {
            self.err(
                &format!("{p}.interface"),
                format!("{what}: interface: \"{}\" {reason}", inst.interface),
            );
        }
        if inst.vrid == 0 && !inst.is_route() {
            self.err(
                &format!("{p}.vrid"),
                format!("{what}: vrid: 0 is out of range 1..=255"),
            );
        }
        if inst.priority == 0 {
            self.err(
                &format!("{p}.priority"),
                format!(
                    "{what}: priority: 0 is out of range 1..=255 \
                     (0 is what a master sends when it gives up)"
                ),
            );
        }
        self.advert_interval(&p, &what, inst);
        if inst.preempt_delay > Instance::MAX_PREEMPT_DELAY {
            self.err(
                &format!("{p}.preempt_delay"),
                format!(
                    "{what}: preempt_delay: {} is more than {}",
                    format_duration(inst.preempt_delay),
                    format_duration(Instance::MAX_PREEMPT_DELAY)
                ),
            );
        }
        if let Some(lease) = inst.vip_lease {
            let path = format!("{p}.vip_lease");
            if lease > Instance::MAX_VIP_LEASE {
                self.err(
                    &path,
                    format!(
                        "{what}: vip_lease: {} is more than {} (0 keeps the VIPs for good)",
                        format_duration(lease),
                        format_duration(Instance::MAX_VIP_LEASE)
                    ),
                );
            } else if lease.subsec_nanos() != 0 {
                self.err(
                    &path,
                    format!(
                        "{what}: vip_lease: {} is not whole seconds (the kernel counts \
                         address lifetimes in seconds)",
                        format_duration(lease)
                    ),
                );
            }
        }
        if let Some(pass) = &inst.auth_pass {
            let path = format!("{p}.auth_pass");
            if self.origins.is_reported(&format!("{p}.version")) {
                // The rules depend on the version, which is unknown.
            } else if inst.version != Version::V2 {
                self.err(
                    &path,
                    format!(
                        "{what}: auth_pass: only version 2 has authentication \
                         (RFC 5798 removed it); set version = 2 or remove auth_pass"
                    ),
                );
            } else if pass.is_empty() {
                self.err(&path, format!("{what}: auth_pass: must not be empty"));
            } else if pass.len() > MAX_AUTH_PASS {
                self.err(
                    &path,
                    format!(
                        "{what}: auth_pass: {} bytes long, at most {MAX_AUTH_PASS}",
                        pass.len()
                    ),
                );
            }
        }
        if inst.auth_type == AuthType::Ah {
            let path = format!("{p}.auth_type");
            if inst.auth_pass.is_none() {
                self.err(
                    &path,
                    format!("{what}: auth_type ah: needs auth_pass (the key of the AH ICV)"),
                );
            } else if inst.virtual_ips.iter().any(|v| v.addr.is_ipv6()) {
                self.err(
                    &path,
                    format!("{what}: auth_type ah: IPv4 only (keepalived's AH has no IPv6 form)"),
                );
            } else if inst.use_vmac {
                self.err(
                    &path,
                    format!("{what}: auth_type ah: not supported with use_vmac by baton yet"),
                );
            }
        }
        self.virtual_ips(&p, &what, inst);
        self.unicast(&p, &what, inst);
        self.notify(&p, &what, &inst.notify);
        if let Some(name) = &inst.vmac_interface {
            if let Some(reason) = bad_ifname(name) {
                self.err(
                    &format!("{p}.use_vmac"),
                    format!("{what}: use_vmac: \"{name}\" {reason}"),
                );
            }
            if inst.use_vmac && *name == inst.interface {
                self.err(
                    &format!("{p}.use_vmac"),
                    format!("{what}: use_vmac: \"{name}\" is the instance's own interface"),
                );
            }
        }
        if inst.vmac_xmit_base && !inst.use_vmac {
            self.warn(
                &format!("{p}.vmac_xmit_base"),
                format!("{what}: vmac_xmit_base without use_vmac has no effect"),
            );
        }
        if inst.use_vmac && !inst.vmac_xmit_base && !inst.unicast_peers.is_empty() {
            self.warn(
                &format!("{p}.use_vmac"),
                format!(
                    "{what}: use_vmac with unicast peers: adverts leave by the base \
                     interface (as with vmac_xmit_base)"
                ),
            );
        }
        self.routes(&p, &what, "virtual_routes", &inst.virtual_routes);
        self.rules(&p, &what, "virtual_rules", &inst.virtual_rules);
        self.garp(&p, &what, &inst.garp);
        if !inst.preempt && !inst.preempt_delay.is_zero() {
            self.warn(
                &format!("{p}.preempt_delay"),
                format!("{what}: preempt_delay: has no effect with preempt = false"),
            );
        }
        if !inst.preempt && inst.address_owner() {
            self.warn(
                &format!("{p}.preempt"),
                format!(
                    "{what}: preempt: priority 255 (address owner) always preempts; \
                     preempt = false is ignored"
                ),
            );
        }
        if inst.v3_checksum_as_v2 && (inst.version != Version::V3 || inst.family() != Family::V4) {
            self.warn(
                &format!("{p}.v3_checksum_as_v2"),
                format!("{what}: v3_checksum_as_v2: only affects version 3 over IPv4"),
            );
        }
    }

    fn garp(&mut self, p: &str, what: &str, garp: &Garp) {
        let what = format!("{what}: garp");
        for (key, n) in [
            ("master_repeat", Some(garp.master_repeat)),
            ("master_refresh_repeat", Some(garp.master_refresh_repeat)),
            ("lower_prio_repeat", garp.lower_prio_repeat),
        ] {
            let Some(n) = n else { continue };
            let path = format!("{p}.garp.{key}");
            if n == 0 && key != "lower_prio_repeat" {
                self.err(&path, format!("{what}: {key}: must be at least 1"));
            }
            self.count_at_most(&path, &what, key, n, Garp::MAX_REPEAT);
        }
        for (key, d, max) in [
            ("master_delay", Some(garp.master_delay), Garp::MAX_DELAY),
            ("lower_prio_delay", garp.lower_prio_delay, Garp::MAX_DELAY),
            ("master_refresh", garp.master_refresh, Garp::MAX_REFRESH),
            ("interval", Some(garp.interval), Garp::MAX_INTERVAL),
            ("na_interval", Some(garp.na_interval), Garp::MAX_INTERVAL),
        ] {
            if let Some(d) = d {
                self.duration_at_most(&format!("{p}.garp.{key}"), &what, key, d, max);
            }
        }
    }

    fn advert_interval(&mut self, p: &str, what: &str, inst: &Instance) {
        if self.origins.is_reported(&format!("{p}.version")) {
            return; // the rules depend on the version, which is unknown
        }
        let d = inst.advert_interval;
        let path = format!("{p}.advert_interval");
        let shown = format_duration(d);
        match inst.version {
            Version::V3 => {
                if !(V3_MIN_INTERVAL..=V3_MAX_INTERVAL).contains(&d) {
                    self.err(
                        &path,
                        format!(
                            "{what}: advert_interval: {shown} is out of range 10ms..=40s 950ms \
                             (version 3)"
                        ),
                    );
                } else if d.as_nanos() % V3_MIN_INTERVAL.as_nanos() != 0 {
                    self.err(
                        &path,
                        format!("{what}: advert_interval: {shown} is not a multiple of 10ms"),
                    );
                }
            }
            Version::V2 => {
                if d.subsec_nanos() != 0 {
                    self.err(
                        &path,
                        format!(
                            "{what}: advert_interval: {shown} is not whole seconds \
                             (version 2 counts in seconds)"
                        ),
                    );
                } else if !(1..=V2_MAX_INTERVAL_SECS).contains(&d.as_secs()) {
                    self.err(
                        &path,
                        format!(
                            "{what}: advert_interval: {shown} is out of range 1s..=255s (version 2)"
                        ),
                    );
                }
            }
        }
    }

    fn virtual_ips(&mut self, p: &str, what: &str, inst: &Instance) {
        let Some(first) = inst.virtual_ips.first() else {
            self.err(
                &format!("{p}.virtual_ips"),
                format!("{what}: virtual_ips: at least one virtual address is needed"),
            );
            return;
        };
        let family = first.family();
        let mut seen = HashSet::new();
        let mut v2_v6_reported = false;
        for (j, vip) in inst.virtual_ips.iter().enumerate() {
            let path = format!("{p}.virtual_ips[{j}]");
            if let Some(reason) = bad_host_address(&vip.addr) {
                self.err(&path, format!("{what}: virtual_ips: {} {reason}", vip.addr));
            }
            // Route mode has no VRRP family: one holder, both families.
            if vip.family() != family && !inst.is_route() {
                self.err(
                    &path,
                    format!(
                        "{what}: virtual_ips: {vip} is {} but {first} is {family}: \
                         one instance has one address family (use two instances)",
                        vip.family()
                    ),
                );
            } else if vip.family() == Family::V6 && inst.version == Version::V2 && !v2_v6_reported {
                v2_v6_reported = true;
                self.err(
                    &path,
                    format!(
                        "{what}: virtual_ips: {vip} is IPv6, which version 2 does not carry; \
                         use version = 3"
                    ),
                );
            }
            if !seen.insert(vip.addr) {
                self.err(
                    &path,
                    format!("{what}: virtual_ips: {} is listed twice", vip.addr),
                );
            }
            self.vip_options(&path, what, "virtual_ips", vip);
        }
        for (j, vip) in inst.virtual_ips_excluded.iter().enumerate() {
            let path = format!("{p}.virtual_ips_excluded[{j}]");
            if let Some(reason) = bad_host_address(&vip.addr) {
                self.err(
                    &path,
                    format!("{what}: virtual_ips_excluded: {} {reason}", vip.addr),
                );
            }
            if !seen.insert(vip.addr) {
                self.err(
                    &path,
                    format!(
                        "{what}: virtual_ips_excluded: {} is listed twice (or is also in virtual_ips)",
                        vip.addr
                    ),
                );
            }
            self.vip_options(&path, what, "virtual_ips_excluded", vip);
        }
    }

    /// `static_ips` need their interface (keepalived's default_interface
    /// is not taken); routes and rules are checked as an instance's.
    fn statics(&mut self, config: &Config) {
        for (j, vip) in config.static_ips.iter().enumerate() {
            let path = format!("global.static_ips[{j}]");
            if vip.dev.is_none() {
                self.err(
                    &path,
                    format!("global: static_ips: {vip}: needs dev (the interface it goes on)"),
                );
            }
            self.vip_options(&path, "global", "static_ips", vip);
        }
        self.routes("global", "global", "static_routes", &config.static_routes);
        self.rules("global", "global", "static_rules", &config.static_rules);
    }

    fn routes(&mut self, p: &str, what: &str, key: &str, routes: &[Route]) {
        for (j, route) in routes.iter().enumerate() {
            if let Some(dev) = &route.dev {
                if let Some(reason) = bad_ifname(dev) {
                    self.err(
                        &format!("{p}.{key}[{j}]"),
                        format!("{what}: {key}: {route}: dev \"{dev}\" {reason}"),
                    );
                }
            }
        }
    }

    fn rules(&mut self, p: &str, what: &str, key: &str, rules: &[Rule]) {
        for (j, rule) in rules.iter().enumerate() {
            let path = format!("{p}.{key}[{j}]");
            if rule.priority.is_none() {
                self.err(
                    &path,
                    format!(
                        "{what}: {key}: \"{rule}\" needs a priority (rules added and removed \
                         as states change would otherwise land in any order)"
                    ),
                );
            }
            for name in rule.iif.iter().chain(&rule.oif) {
                if let Some(reason) = bad_ifname(name) {
                    self.err(&path, format!("{what}: {key}: {rule}: \"{name}\" {reason}"));
                }
            }
        }
    }

    fn vip_options(&mut self, path: &str, what: &str, key: &str, vip: &Vip) {
        if let Some(dev) = &vip.dev {
            if let Some(reason) = bad_ifname(dev) {
                self.err(
                    path,
                    format!("{what}: {key}: {vip}: dev \"{dev}\" {reason}"),
                );
            }
        }
        if let Some(brd) = &vip.brd {
            if vip.family() != Family::V4 || Family::of(brd) != Family::V4 {
                self.err(
                    path,
                    format!("{what}: {key}: {vip}: brd is for IPv4 addresses only"),
                );
            }
        }
        if let Some(label) = &vip.label {
            if vip.family() != Family::V4 {
                self.err(
                    path,
                    format!("{what}: {key}: {vip}: label is for IPv4 addresses only"),
                );
            } else if label.len() > MAX_IFNAME {
                self.err(
                    path,
                    format!("{what}: {key}: {vip}: label \"{label}\" is longer than 15 bytes"),
                );
            }
        }
    }

    fn unicast(&mut self, p: &str, what: &str, inst: &Instance) {
        let family = (!inst.virtual_ips.is_empty()).then(|| inst.family());
        let check_addr = |c: &mut Self, path: &str, key: &str, addr: &IpAddr| {
            if let Some(reason) = bad_host_address(addr) {
                c.err(path, format!("{what}: {key}: {addr} {reason}"));
            } else if let Some(family) = family {
                if Family::of(addr) != family {
                    c.err(
                        path,
                        format!(
                            "{what}: {key}: {addr} is {} but the virtual addresses are {family}",
                            Family::of(addr)
                        ),
                    );
                }
            }
        };
        if let Some(src) = &inst.mcast_src {
            check_addr(self, &format!("{p}.mcast_src"), "mcast_src", src);
            if !inst.unicast_peers.is_empty() {
                self.warn(
                    &format!("{p}.mcast_src"),
                    format!(
                        "{what}: mcast_src: has no effect with unicast_peers (use unicast_src)"
                    ),
                );
            }
        }
        if let Some(src) = &inst.unicast_src {
            check_addr(self, &format!("{p}.unicast_src"), "unicast_src", src);
            if inst.unicast_peers.is_empty() {
                self.warn(
                    &format!("{p}.unicast_src"),
                    format!("{what}: unicast_src: has no effect without unicast_peers"),
                );
            }
        }
        let mut seen = HashSet::new();
        for (j, peer) in inst.unicast_peers.iter().enumerate() {
            let path = format!("{p}.unicast_peers[{j}]");
            check_addr(self, &path, "unicast_peers", peer);
            if !seen.insert(peer) {
                self.err(
                    &path,
                    format!("{what}: unicast_peers: {peer} is listed twice"),
                );
            }
            if Some(peer) == inst.unicast_src.as_ref() {
                self.err(
                    &path,
                    format!("{what}: unicast_peers: {peer} is this node's unicast_src"),
                );
            }
        }
    }

    fn across_instances(&mut self, instances: &[Instance]) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut routers: HashMap<(&str, u8, Family), usize> = HashMap::new();
        for (i, inst) in instances.iter().enumerate() {
            let p = format!("instance[{i}]");
            if let Some(&first) = names.get(inst.name.as_str()) {
                let line = self.line_of(&format!("instance[{first}]"));
                self.err(
                    &format!("{p}.name"),
                    format!(
                        "instance \"{}\": name: already used by another instance{line}",
                        inst.name
                    ),
                );
            } else {
                names.insert(&inst.name, i);
            }
            if inst.vrid == 0 || inst.virtual_ips.is_empty() {
                continue;
            }
            let key = (inst.interface.as_str(), inst.vrid, inst.family());
            if let Some(&first) = routers.get(&key) {
                let line = self.line_of(&format!("instance[{first}]"));
                self.err(
                    &format!("{p}.vrid"),
                    format!(
                        "instance \"{}\": vrid: {} on {} ({}) is already used by instance \"{}\"{line}",
                        inst.name, inst.vrid, inst.interface, key.2, instances[first].name
                    ),
                );
            } else {
                routers.insert(key, i);
            }
        }
    }

    /// Route mode: the channel elects, so `[cluster]` is required; a VIP
    /// wider than one host would make the holder answer for (and FRR
    /// announce) its whole subnet.
    fn route_mode(&mut self, config: &Config) {
        for (i, inst) in config.instances.iter().enumerate() {
            if !inst.is_route() {
                continue;
            }
            let p = format!("instance[{i}]");
            let what = format!("instance \"{}\"", shown(&inst.name));
            let lease = crate::node::convert::vip_lease(inst);
            if inst.release_delay > Instance::MAX_RELEASE_DELAY {
                self.err(
                    &format!("{p}.release_delay"),
                    format!(
                        "{what}: release_delay: {} is more than {}",
                        format_duration(inst.release_delay),
                        format_duration(Instance::MAX_RELEASE_DELAY)
                    ),
                );
            } else if !lease.is_zero() && inst.release_delay * 3 >= lease * 2 {
                // The first step runs on what is left of the lease since
                // its last refresh (at least two thirds of it).
                self.err(
                    &format!("{p}.release_delay"),
                    format!(
                        "{what}: release_delay: {} is not less than two thirds of the VIP \
                         lease ({}): the VIPs would expire while being released",
                        format_duration(inst.release_delay),
                        format_duration(lease)
                    ),
                );
            }
            if config.cluster.is_none() {
                self.err(
                    &format!("{p}.mode"),
                    format!(
                        "{what}: mode: route mode needs [cluster]: the cluster channel \
                         elects the holder (there are no VRRP packets)"
                    ),
                );
            }
            for (j, vip) in inst.virtual_ips.iter().enumerate() {
                let host = if vip.addr.is_ipv4() { 32 } else { 128 };
                if vip.prefix_len != host {
                    self.warn(
                        &format!("{p}.virtual_ips[{j}]"),
                        format!(
                            "{what}: virtual_ips: {}/{} in route mode: the holder answers \
                             for the whole /{} and FRR announces it; a host route \
                             (/{host}) is what moves",
                            vip.addr, vip.prefix_len, vip.prefix_len
                        ),
                    );
                }
            }
        }
    }

    fn sync_groups(&mut self, config: &Config) {
        let known: HashSet<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
        let mut group_names = HashSet::new();
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        for (g, group) in config.sync_groups.iter().enumerate() {
            let p = format!("sync_group[{g}]");
            let what = format!("sync_group \"{}\"", group.name);
            if group.name.trim().is_empty() {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: must not be empty"),
                );
            } else if !group_names.insert(group.name.as_str()) {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: already used by another sync_group"),
                );
            }
            self.notify(&p, &what, &group.notify);
            if group.instances.is_empty() {
                self.err(
                    &format!("{p}.instances"),
                    format!("{what}: instances: must name at least one instance"),
                );
            }
            for (j, name) in group.instances.iter().enumerate() {
                let path = format!("{p}.instances[{j}]");
                if !known.contains(name.as_str()) {
                    self.err(
                        &path,
                        format!("{what}: instances: no instance is called \"{name}\""),
                    );
                } else if let Some(other) = member_of.insert(name, &group.name) {
                    self.err(
                        &path,
                        format!(
                            "{what}: instances: \"{name}\" is already in sync_group \"{other}\""
                        ),
                    );
                }
            }
        }
    }

    fn cluster(&mut self, c: &Cluster) {
        const WHY: &str = "what a cluster Hello carries";
        if c.node.trim().is_empty() {
            self.err("cluster.node", "cluster: node: must not be empty".into());
        }
        self.name_too_long(
            "cluster.node",
            "cluster",
            "node",
            &c.node,
            Cluster::MAX_NODE_NAME_LEN,
            WHY,
        );
        if c.listen.port() == 0 {
            self.err(
                "cluster.listen",
                format!("cluster: listen: {}: port 0 is not a port", c.listen),
            );
        }
        if !c.key_file.is_absolute() {
            self.err(
                "cluster.key_file",
                format!(
                    "cluster: key_file: \"{}\" is not an absolute path",
                    c.key_file.display()
                ),
            );
        }
        if c.heartbeat_interval < Cluster::MIN_HEARTBEAT_INTERVAL {
            self.err(
                "cluster.heartbeat_interval",
                format!(
                    "cluster: heartbeat_interval: {} is less than 10ms",
                    format_duration(c.heartbeat_interval)
                ),
            );
        }
        self.duration_at_most(
            "cluster.heartbeat_interval",
            "cluster",
            "heartbeat_interval",
            c.heartbeat_interval,
            Cluster::MAX_HEARTBEAT_INTERVAL,
        );
        self.duration_at_most(
            "cluster.key_grace",
            "cluster",
            "key_grace",
            c.key_grace,
            Cluster::MAX_KEY_GRACE,
        );
        if c.peers.is_empty() {
            self.warn(
                "cluster.peers",
                "cluster: peers: none: the channel has nobody to talk to".into(),
            );
        }
        let mut names: HashSet<&str> = HashSet::new();
        let mut addrs = HashSet::new();
        for (j, peer) in c.peers.iter().enumerate() {
            let path = format!("cluster.peers[{j}]");
            if self.name_too_long(
                &path,
                "cluster",
                "peers",
                &peer.name,
                Cluster::MAX_NODE_NAME_LEN,
                WHY,
            ) {
                continue;
            }
            if peer.name == c.node {
                self.err(
                    &path,
                    format!(
                        "cluster: peers: \"{}\" is this node (node = \"{}\"); \
                         list only the other nodes",
                        peer.name, c.node
                    ),
                );
            } else if !names.insert(&peer.name) {
                self.err(
                    &path,
                    format!(
                        "cluster: peers: node name \"{}\" is listed twice",
                        peer.name
                    ),
                );
            }
            if peer.addr.port() == 0 || peer.addr.ip().is_unspecified() {
                self.err(
                    &path,
                    format!(
                        "cluster: peers: {}: {} is not a reachable address",
                        peer.name, peer.addr
                    ),
                );
            } else if peer.addr == c.listen {
                self.err(
                    &path,
                    format!(
                        "cluster: peers: {}: {} is this node's listen address",
                        peer.name, peer.addr
                    ),
                );
            } else if !addrs.insert(peer.addr) {
                self.err(
                    &path,
                    format!(
                        "cluster: peers: {}: {} is listed twice",
                        peer.name, peer.addr
                    ),
                );
            }
        }
        let mut ordered = HashSet::new();
        for (j, name) in c.order.iter().enumerate() {
            let path = format!("cluster.order[{j}]");
            if *name != c.node && !names.contains(name.as_str()) {
                self.err(
                    &path,
                    format!("cluster: order: \"{name}\" is neither this node nor a peer"),
                );
            } else if !ordered.insert(name) {
                self.err(&path, format!("cluster: order: \"{name}\" is listed twice"));
            }
        }
        match c.selection {
            Selection::Order if c.order.is_empty() => self.err(
                "cluster.selection",
                "cluster: selection: \"order\" needs an order list (order = [\"lb1\", \"lb2\"])"
                    .into(),
            ),
            Selection::Priority if !c.order.is_empty() => self.warn(
                "cluster.order",
                "cluster: order: only used with selection = \"order\"".into(),
            ),
            _ => {}
        }
    }

    /// Which node controls data sync: the master of `sync_instance`.
    fn sync_control(&mut self, config: &Config) {
        let Some(cluster) = &config.cluster else {
            if !config.sync.is_empty() {
                self.warn(
                    "sync[0]",
                    "sync: files are synced over the cluster channel; without [cluster] they are not synced".into(),
                );
            }
            return;
        };
        match &cluster.sync_instance {
            Some(name) if config.instance(name).is_none() => self.err(
                "cluster.sync_instance",
                format!("cluster: sync_instance: no instance named \"{name}\""),
            ),
            None if !config.sync.is_empty() && config.instances.is_empty() => self.err(
                "sync[0]",
                "sync: needs an instance whose master is the control node".into(),
            ),
            _ => {}
        }
    }

    fn sync(&mut self, entries: &[SyncEntry]) {
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for (k, entry) in entries.iter().enumerate() {
            let p = format!("sync[{k}]");
            let what = format!("sync \"{}\"", shown(&entry.name));
            self.name_too_long(
                &format!("{p}.name"),
                &what,
                "name",
                &entry.name,
                SyncEntry::MAX_NAME_LEN,
                "it travels in sync messages; give a long path a shorter name",
            );
            if entry.name.trim().is_empty() {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: must not be empty"),
                );
            } else if !names.insert(entry.name.as_str()) {
                self.err(
                    &format!("{p}.name"),
                    format!("{what}: name: already used by another [[sync]] entry"),
                );
            }
            if !entry.path.is_absolute() {
                self.err(
                    &format!("{p}.path"),
                    format!(
                        "{what}: path: \"{}\" is not an absolute path",
                        entry.path.display()
                    ),
                );
            } else if !paths.insert(entry.path.as_path()) {
                self.err(
                    &format!("{p}.path"),
                    format!(
                        "{what}: path: \"{}\" is already synced by another entry",
                        entry.path.display()
                    ),
                );
            }
            if entry
                .on_change
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                self.err(
                    &format!("{p}.on_change"),
                    format!("{what}: on_change: must not be empty (leave it out instead)"),
                );
            }
            if let Some(mode) = entry.mode {
                if mode > 0o7777 {
                    self.err(
                        &format!("{p}.mode"),
                        format!("{what}: mode: at most 7777 (octal)"),
                    );
                } else if mode & SyncEntry::SPECIAL_MODE_BITS != 0 {
                    self.err(
                        &format!("{p}.mode"),
                        format!(
                            "{what}: mode: {mode:04o} sets setuid, setgid or sticky; \
                             a synced file may have at most 0777"
                        ),
                    );
                }
            }
            if let Some(owner) = &entry.owner {
                let parts: Vec<&str> = owner.split(':').collect();
                if parts.len() > 2 || parts.iter().any(|w| w.is_empty() || w.contains(' ')) {
                    self.err(
                        &format!("{p}.owner"),
                        format!("{what}: owner: \"{owner}\" is not USER or USER:GROUP"),
                    );
                }
            }
            if !(1..=SyncEntry::MAX_MAX_SIZE).contains(&entry.max_size) {
                self.err(
                    &format!("{p}.max_size"),
                    format!(
                        "{what}: max_size: {} bytes is out of range 1..=1GiB",
                        entry.max_size
                    ),
                );
            }
        }
    }
}

/// `name`, cut to [`SHOWN_NAME`] characters with "..." when longer.
fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_NAME) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_string(),
    }
}

/// Why `name` cannot be a Linux interface name (the kernel's
/// `dev_valid_name`), if it cannot.
fn bad_ifname(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_IFNAME {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not an interface name")
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        Some("contains '/', ':' or a space")
    } else {
        None
    }
}

/// Why `addr` cannot be a node's or a virtual router's address, if it cannot.
fn bad_host_address(addr: &IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("is the unspecified address")
    } else if addr.is_multicast() {
        Some("is a multicast address")
    } else if addr.is_loopback() {
        Some("is a loopback address")
    } else if matches!(addr, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("is the broadcast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Peer, SyncEntry, SyncGroup};
    use std::path::{Path, PathBuf};

    fn origins() -> Origins {
        Origins::new(Path::new("t"))
    }

    fn messages(config: &Config) -> Vec<String> {
        check(config, &origins())
            .errors()
            .map(|d| d.message.clone())
            .collect()
    }

    fn config() -> Config {
        let mut c = Config::new("lb1");
        let mut i = Instance::new("VI_1", "eth0", 51);
        i.virtual_ips.push("192.0.2.1/24".parse().unwrap());
        c.instances.push(i);
        c
    }

    #[test]
    fn a_good_config_passes() {
        assert_eq!(messages(&config()), Vec::<String>::new());
    }

    #[test]
    fn zeroes_from_any_reader_are_refused() {
        let mut c = config();
        c.instances[0].vrid = 0;
        c.instances[0].priority = 0;
        let m = messages(&c);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("vrid: 0 is out of range"));
        assert!(m[1].contains("priority: 0 is out of range"));
    }

    #[test]
    fn v3_intervals() {
        for (ms, ok) in [
            (10, true),
            (9, false),
            (15, false),
            (40_950, true),
            (40_960, false),
        ] {
            let mut c = config();
            c.instances[0].advert_interval = Duration::from_millis(ms);
            assert_eq!(messages(&c).is_empty(), ok, "{ms} ms");
        }
    }

    #[test]
    fn v2_intervals() {
        for (ms, ok) in [
            (1000, true),
            (255_000, true),
            (256_000, false),
            (1500, false),
            (100, false),
        ] {
            let mut c = config();
            c.instances[0].version = Version::V2;
            c.instances[0].advert_interval = Duration::from_millis(ms);
            assert_eq!(messages(&c).is_empty(), ok, "{ms} ms");
        }
    }

    #[test]
    fn bad_addresses() {
        let mut c = config();
        c.instances[0].virtual_ips = vec![
            "0.0.0.0/24".parse().unwrap(),
            "224.0.0.18".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
        ];
        assert_eq!(messages(&c).len(), 3);
    }

    #[test]
    fn cluster_rules() {
        let mut c = config();
        c.cluster = Some(Cluster {
            node: "lb1".into(),
            listen: "192.0.2.11:7480".parse().unwrap(),
            peers: vec![
                "lb2=192.0.2.12:7480".parse::<Peer>().unwrap(),
                "lb2=192.0.2.13:7480".parse().unwrap(),
                "lb1=192.0.2.14:7480".parse().unwrap(),
            ],
            key_file: PathBuf::from("/etc/baton/cluster.key"),
            heartbeat_interval: Duration::from_millis(5),
            selection: Selection::Order,
            order: vec!["lb1".into(), "lb9".into()],
            sync_instance: Some("VI_9".into()),
            accept_foreign_adverts: false,
            check_peer_source: true,
            key_grace: Cluster::DEFAULT_KEY_GRACE,
        });
        let m = messages(&c);
        assert_eq!(m.len(), 5, "{m:?}");
    }

    #[test]
    fn sync_rules() {
        let mut c = config();
        let entry = SyncEntry {
            name: "a".into(),
            path: PathBuf::from("/etc/a"),
            on_change: None,
            mode: None,
            owner: None,
            max_size: SyncEntry::DEFAULT_MAX_SIZE,
        };
        let mut bad_owner = entry.clone();
        bad_owner.name = "b".into();
        bad_owner.path = PathBuf::from("/etc/b");
        bad_owner.owner = Some("www:data:x".into());
        let d = check(
            &Config {
                sync: vec![bad_owner],
                ..config()
            },
            &Origins::default(),
        );
        assert!(d.to_string().contains("is not USER or USER:GROUP"), "{d}");
        c.sync = vec![entry.clone(), entry];
        c.sync_groups = vec![SyncGroup {
            name: "G".into(),
            instances: vec!["VI_1".into(), "VI_9".into()],
            ..Default::default()
        }];
        let m = messages(&c);
        assert_eq!(m.len(), 3, "{m:?}");
    }

    #[test]
    fn tracking_rules() {
        use crate::config::model::{TrackInterface, VrrpScript};
        let mut c = config();
        let mut script = VrrpScript::new("chk", "/bin/true");
        script.weight = 300;
        script.rise = 0;
        c.vrrp_scripts.push(script);
        let i = &mut c.instances[0];
        i.track_scripts.push(TrackRef::new("chk"));
        i.track_scripts.push(TrackRef::new("nope"));
        i.track_files.push(TrackRef {
            name: "f".into(),
            weight_override: Some(255),
            reverse: false,
        });
        let mut eth1 = TrackInterface::new("eth1");
        eth1.weight = -254;
        i.track_interfaces.push(eth1);
        i.notify.master = Some(" ".into());
        let m = messages(&c);
        assert_eq!(m.len(), 7, "{m:#?}");
    }

    #[test]
    fn interface_names() {
        assert!(bad_ifname("eth0").is_none());
        assert!(bad_ifname("bond0.100").is_none());
        assert!(bad_ifname("").is_some());
        assert!(bad_ifname("a234567890123456").is_some());
        assert!(bad_ifname("eth0:1").is_some());
        assert!(bad_ifname("a b").is_some());
    }
}
