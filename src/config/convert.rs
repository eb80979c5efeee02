//! [`Config`] back to baton.toml text: `baton convert -f keepalived.conf`.
//!
//! The output reads back (with [`super::toml`]) to an equal [`Config`]:
//! every value that has no default, or differs from it, is written.

use std::fmt::Write as _;
use std::time::Duration;

use humantime::format_duration;

use super::model::{
    Cluster, Config, Garp, Global, InitialState, Instance, Notify, Selection, TrackInterface,
    TrackRef, Version, Vip,
};

/// The baton.toml equivalent of `config`.
pub fn to_toml(config: &Config) -> String {
    let mut out = Out(String::new());
    let g = &config.global;
    out.line("[global]");
    out.kv("router_id", &string(&g.router_id));
    out.kv(
        "control_socket",
        &string(&g.control_socket.to_string_lossy()),
    );
    out.kv("state_dir", &string(&g.state_dir.to_string_lossy()));
    if let Some(fifo) = &g.notify_fifo {
        out.kv("notify_fifo", &string(&fifo.to_string_lossy()));
    }
    out.opt("notify_fifo_script", g.notify_fifo_script.as_deref());
    out.opt("script_user", g.script_user.as_deref());
    if g.enable_script_security {
        out.kv("enable_script_security", "true");
    }
    if !g.startup_delay.is_zero() {
        out.kv("startup_delay", &duration(g.startup_delay));
    }
    if let Some(a) = g.metrics_listen {
        out.kv("metrics_listen", &string(&a.to_string()));
    }
    if !config.static_ips.is_empty() {
        out.kv("static_ips", &vips(&config.static_ips));
    }
    if !config.static_routes.is_empty() {
        out.kv("static_routes", &displayed(&config.static_routes));
    }
    if !config.static_rules.is_empty() {
        out.kv("static_rules", &displayed(&config.static_rules));
    }
    if g.mcast_group4 != Global::DEFAULT_MCAST_GROUP4 {
        out.kv("mcast_group4", &string(&g.mcast_group4.to_string()));
    }
    if g.mcast_group6 != Global::DEFAULT_MCAST_GROUP6 {
        out.kv("mcast_group6", &string(&g.mcast_group6.to_string()));
    }
    out.opt("net_namespace", g.net_namespace.as_deref());
    if g.skip_check_adv_addr {
        out.kv("skip_check_adv_addr", "true");
    }
    if g.max_auto_priority != 0 {
        out.kv("max_auto_priority", &g.max_auto_priority.to_string());
    }
    if g.min_auto_priority_delay != Global::DEFAULT_MIN_AUTO_PRIORITY_DELAY {
        out.kv(
            "min_auto_priority_delay",
            &duration(g.min_auto_priority_delay),
        );
    }
    if let Some(p) = g.rt_priority {
        out.kv("rt_priority", &p.to_string());
    }
    if let Some(n) = g.rlimit_rttime {
        out.kv("rlimit_rttime", &n.to_string());
    }

    if let Some(c) = &config.cluster {
        out.line("");
        out.line("[cluster]");
        out.kv("node", &string(&c.node));
        out.kv("listen", &string(&c.listen.to_string()));
        out.kv("peers", &strings(c.peers.iter().map(|p| p.to_string())));
        out.kv("key_file", &string(&c.key_file.to_string_lossy()));
        out.kv("heartbeat_interval", &duration(c.heartbeat_interval));
        let selection = match c.selection {
            Selection::Priority => "priority",
            Selection::Order => "order",
        };
        out.kv("selection", &string(selection));
        if !c.order.is_empty() {
            out.kv("order", &strings(c.order.iter().cloned()));
        }
        if let Some(i) = &c.sync_instance {
            out.kv("sync_instance", &string(i));
        }
        if c.accept_foreign_adverts {
            out.kv("accept_foreign_adverts", "true");
        }
        if !c.check_peer_source {
            out.kv("check_peer_source", "false");
        }
        if c.key_grace != Cluster::DEFAULT_KEY_GRACE {
            out.kv("key_grace", &duration(c.key_grace));
        }
    }

    for s in &config.vrrp_scripts {
        out.line("");
        out.line("[[vrrp_script]]");
        out.kv("name", &string(&s.name));
        out.kv("script", &string(&s.script));
        out.kv("interval", &duration(s.interval));
        if let Some(t) = s.timeout {
            out.kv("timeout", &duration(t));
        }
        out.kv("weight", &s.weight.to_string());
        if s.weight_reverse {
            out.kv("weight_reverse", "true");
        }
        out.kv("rise", &s.rise.to_string());
        out.kv("fall", &s.fall.to_string());
        out.opt("user", s.user.as_deref());
        if s.init_fail {
            out.kv("init_fail", "true");
        }
    }

    for f in &config.track_files {
        out.line("");
        out.line("[[track_file]]");
        out.kv("name", &string(&f.name));
        out.kv("path", &string(&f.path.to_string_lossy()));
        out.kv("weight", &f.weight.to_string());
        if f.reverse {
            out.kv("reverse", "true");
        }
    }

    for i in &config.instances {
        instance(&mut out, i);
    }

    for group in &config.sync_groups {
        out.line("");
        out.line("[[sync_group]]");
        out.kv("name", &string(&group.name));
        out.kv("instances", &strings(group.instances.iter().cloned()));
        if !group.track_interfaces.is_empty() {
            out.kv(
                "track_interfaces",
                &track_list(&interface_refs(&group.track_interfaces)),
            );
        }
        if !group.track_scripts.is_empty() {
            out.kv("track_scripts", &track_list(&group.track_scripts));
        }
        if !group.track_files.is_empty() {
            out.kv("track_files", &track_list(&group.track_files));
        }
        if group.tracking_weight {
            out.kv("tracking_weight", "true");
        }
        notify(&mut out, "sync_group", &group.notify);
    }

    for entry in &config.sync {
        out.line("");
        out.line("[[sync]]");
        out.kv("name", &string(&entry.name));
        out.kv("path", &string(&entry.path.to_string_lossy()));
        out.opt("on_change", entry.on_change.as_deref());
        if let Some(mode) = entry.mode {
            out.kv("mode", &string(&format!("0{mode:o}")));
        }
        out.opt("owner", entry.owner.as_deref());
        out.kv("max_size", &entry.max_size.to_string());
    }
    out.0
}

fn instance(out: &mut Out, i: &Instance) {
    out.line("");
    out.line("[[instance]]");
    out.kv("name", &string(&i.name));
    out.kv("interface", &string(&i.interface));
    out.kv("vrid", &i.vrid.to_string());
    out.kv("priority", &i.priority.to_string());
    let version = match i.version {
        Version::V2 => "2",
        Version::V3 => "3",
    };
    out.kv("version", version);
    out.kv("advert_interval", &duration(i.advert_interval));
    out.kv("preempt", &i.preempt.to_string());
    if !i.preempt_delay.is_zero() {
        out.kv("preempt_delay", &duration(i.preempt_delay));
    }
    out.kv("virtual_ips", &vips(&i.virtual_ips));
    if !i.virtual_ips_excluded.is_empty() {
        out.kv("virtual_ips_excluded", &vips(&i.virtual_ips_excluded));
    }
    if let Some(src) = &i.unicast_src {
        out.kv("unicast_src", &string(&src.to_string()));
    }
    if let Some(src) = &i.mcast_src {
        out.kv("mcast_src", &string(&src.to_string()));
    }
    if !i.unicast_peers.is_empty() {
        out.kv(
            "unicast_peers",
            &strings(i.unicast_peers.iter().map(|p| p.to_string())),
        );
    }
    out.opt("auth_pass", i.auth_pass.as_deref());
    if i.auth_type == crate::config::model::AuthType::Ah {
        out.kv("auth_type", "\"ah\"");
    }
    if i.v3_checksum_as_v2 {
        out.kv("v3_checksum_as_v2", "true");
    }
    if !i.track_interfaces.is_empty() {
        out.kv(
            "track_interfaces",
            &track_list(&interface_refs(&i.track_interfaces)),
        );
    }
    if !i.track_scripts.is_empty() {
        out.kv("track_scripts", &track_list(&i.track_scripts));
    }
    if !i.track_files.is_empty() {
        out.kv("track_files", &track_list(&i.track_files));
    }
    if let Some(state) = i.initial_state {
        let state = match state {
            InitialState::Backup => "backup",
            InitialState::Master => "master",
        };
        out.kv("initial_state", &string(state));
    }
    match (&i.vmac_interface, i.use_vmac) {
        (Some(name), true) => out.kv("use_vmac", &string(name)),
        (None, true) => out.kv("use_vmac", "true"),
        _ => {}
    }
    if i.vmac_xmit_base {
        out.kv("vmac_xmit_base", "true");
    }
    if !i.virtual_routes.is_empty() {
        out.kv("virtual_routes", &displayed(&i.virtual_routes));
    }
    if !i.virtual_rules.is_empty() {
        out.kv("virtual_rules", &displayed(&i.virtual_rules));
    }
    if i.strict_mode {
        out.kv("strict_mode", "true");
    }
    if i.dont_track_primary {
        out.kv("dont_track_primary", "true");
    }
    if let Some(b) = i.skip_check_adv_addr {
        out.kv("skip_check_adv_addr", if b { "true" } else { "false" });
    }
    if let Some(lease) = i.vip_lease {
        out.kv("vip_lease", &lease.as_secs().to_string());
    }
    garp(out, &i.garp);
    notify(out, "instance", &i.notify);
}

fn garp(out: &mut Out, garp: &Garp) {
    if *garp == Garp::default() {
        return;
    }
    out.line("[instance.garp]");
    out.kv("master_delay", &duration(garp.master_delay));
    out.kv("master_repeat", &garp.master_repeat.to_string());
    out.kv(
        "master_refresh",
        &duration(garp.master_refresh.unwrap_or(Duration::ZERO)),
    );
    out.kv(
        "master_refresh_repeat",
        &garp.master_refresh_repeat.to_string(),
    );
    out.kv("interval", &duration(garp.interval));
    out.kv("na_interval", &duration(garp.na_interval));
    if let Some(d) = garp.lower_prio_delay {
        out.kv("lower_prio_delay", &duration(d));
    }
    if let Some(n) = garp.lower_prio_repeat {
        out.kv("lower_prio_repeat", &n.to_string());
    }
}

fn notify(out: &mut Out, table: &str, notify: &Notify) {
    if notify.is_empty() {
        return;
    }
    out.line(&format!("[{table}.notify]"));
    out.opt("master", notify.master.as_deref());
    out.opt("backup", notify.backup.as_deref());
    out.opt("fault", notify.fault.as_deref());
    out.opt("stop", notify.stop.as_deref());
    out.opt("generic", notify.generic.as_deref());
}

struct Out(String);

impl Out {
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }

    fn kv(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.0, "{key} = {value}");
    }

    fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.kv(key, &string(v));
        }
    }
}

fn duration(d: Duration) -> String {
    string(&format_duration(d).to_string())
}

fn displayed<T: std::fmt::Display>(list: &[T]) -> String {
    strings(list.iter().map(|v| v.to_string()))
}

fn vips(list: &[Vip]) -> String {
    strings(list.iter().map(|v| v.to_string()))
}

/// Tracked interfaces written as track references (weight 0 left out).
fn interface_refs(interfaces: &[TrackInterface]) -> Vec<TrackRef> {
    interfaces
        .iter()
        .map(|t| TrackRef {
            name: t.name.clone(),
            weight_override: (t.weight != 0).then_some(t.weight),
            reverse: t.reverse,
        })
        .collect()
}

fn track_list(refs: &[TrackRef]) -> String {
    let items: Vec<String> = refs
        .iter()
        .map(|t| {
            if t.weight_override.is_none() && !t.reverse {
                return string(&t.name);
            }
            let mut item = format!("{{ name = {}", string(&t.name));
            if let Some(w) = t.weight_override {
                let _ = write!(item, ", weight = {w}");
            }
            if t.reverse {
                item.push_str(", reverse = true");
            }
            item.push_str(" }");
            item
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn strings(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.map(|s| string(&s)).collect();
    format!("[{}]", items.join(", "))
}

/// A TOML basic string.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape() {
        assert_eq!(string("a\"b\\c\n\u{7}"), "\"a\\\"b\\\\c\\n\\u0007\"");
    }
}
