//! The baton.toml reader.
//!
//! The text is parsed by the `toml` crate into its spanned document tree
//! (`DeTable`), which this module walks by hand instead of deriving serde
//! structs: a derived `deny_unknown_fields` struct stops at the first
//! unknown key or mistyped value, while the walk reports every one of them,
//! each at its own line and column and naming its key. Unknown keys are
//! errors all the same (with a "did you mean" hint, keepalived names
//! included).
//!
//! The walk checks what one value alone can tell (types, syntax of
//! addresses and durations, ranges that the model's integer types impose)
//! and records where every value came from in [`Origins`]; the rules that
//! relate values to each other live in [`super::check`], shared with the
//! keepalived.conf reader.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ::toml::de::{DeTable, DeValue};
use ::toml::Spanned;

use super::check;
#[cfg(test)]
use super::diag::edit_distance;
use super::diag::{did_you_mean, Diagnostic, Diagnostics, LineIndex, Origins, Pos};
use super::model::AuthType;
use super::model::{
    Cluster, Config, Garp, Global, Instance, Mode, Notify, Peer, Selection, SyncEntry, SyncGroup,
    TrackFile, TrackInterface, TrackRef, Version, Vip, VrrpScript,
};
use super::route::{Route, Rule};
use super::value::{
    parse_duration_with_unit, parse_initial_state, parse_octal_mode, parse_selection, parse_size,
};
use super::{Defaults, Loaded};

const TOP_KEYS: &[&str] = &[
    "global",
    "cluster",
    "instance",
    "sync",
    "sync_group",
    "vrrp_script",
    "track_file",
];
const GLOBAL_KEYS: &[&str] = &[
    "router_id",
    "control_socket",
    "state_dir",
    "notify_fifo",
    "notify_fifo_script",
    "script_user",
    "enable_script_security",
    "startup_delay",
    "metrics_listen",
    "static_ips",
    "static_routes",
    "static_rules",
    "mcast_group4",
    "mcast_group6",
    "net_namespace",
    "skip_check_adv_addr",
    "max_auto_priority",
    "min_auto_priority_delay",
    "rt_priority",
    "rlimit_rttime",
];
const INSTANCE_KEYS: &[&str] = &[
    "name",
    "interface",
    "vrid",
    "priority",
    "version",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "virtual_ips",
    "unicast_src",
    "unicast_peers",
    "auth_pass",
    "auth_type",
    "v3_checksum_as_v2",
    "garp",
    "track_interfaces",
    "initial_state",
    "mcast_src",
    "track_scripts",
    "track_files",
    "notify",
    "virtual_ips_excluded",
    "use_vmac",
    "vmac_xmit_base",
    "virtual_routes",
    "virtual_rules",
    "strict_mode",
    "vip_lease",
    "dont_track_primary",
    "skip_check_adv_addr",
    "mode",
    "release_delay",
];
/// Keys about VRRP packets, refused in route mode (there are none): each
/// would otherwise be accepted and do nothing.
const VRRP_ONLY_KEYS: &[&str] = &[
    "vrid",
    "version",
    "advert_interval",
    "unicast_src",
    "unicast_peers",
    "mcast_src",
    "auth_pass",
    "auth_type",
    "v3_checksum_as_v2",
    "garp",
    "use_vmac",
    "vmac_xmit_base",
    "skip_check_adv_addr",
    "dont_track_primary",
];
const GARP_KEYS: &[&str] = &[
    "master_delay",
    "master_repeat",
    "master_refresh",
    "master_refresh_repeat",
    "interval",
    "na_interval",
    "lower_prio_delay",
    "lower_prio_repeat",
];
const NOTIFY_KEYS: &[&str] = &["master", "backup", "fault", "stop", "generic"];
const TRACK_KEYS: &[&str] = &["name", "weight", "reverse"];
const VRRP_SCRIPT_KEYS: &[&str] = &[
    "name",
    "script",
    "interval",
    "timeout",
    "weight",
    "weight_reverse",
    "rise",
    "fall",
    "user",
    "init_fail",
];
const TRACK_FILE_KEYS: &[&str] = &["name", "path", "weight", "reverse"];
const CLUSTER_KEYS: &[&str] = &[
    "node",
    "listen",
    "peers",
    "key_file",
    "heartbeat_interval",
    "selection",
    "order",
    "sync_instance",
    "accept_foreign_adverts",
    "check_peer_source",
    "key_grace",
];
const SYNC_KEYS: &[&str] = &["name", "path", "on_change", "mode", "owner", "max_size"];
const SYNC_GROUP_KEYS: &[&str] = &[
    "name",
    "instances",
    "notify",
    "track_interfaces",
    "track_scripts",
    "track_files",
    "tracking_weight",
];

/// keepalived.conf names that people will type out of habit.
const KEEPALIVED_NAMES: &[(&str, &str)] = &[
    ("virtual_router_id", "vrid"),
    ("advert_int", "advert_interval"),
    ("virtual_ipaddress", "virtual_ips"),
    ("unicast_src_ip", "unicast_src"),
    ("unicast_peer", "unicast_peers"),
    ("track_interface", "track_interfaces"),
    ("track_script", "track_scripts"),
    ("track_file", "track_files"),
    ("mcast_src_ip", "mcast_src"),
    ("virtual_ipaddress_excluded", "virtual_ips_excluded"),
    ("notify_master", "notify.master"),
    ("notify_backup", "notify.backup"),
    ("notify_fault", "notify.fault"),
    ("notify_stop", "notify.stop"),
    ("vrrp_notify_fifo", "notify_fifo"),
    ("vrrp_notify_fifo_script", "notify_fifo_script"),
    ("vrrp_startup_delay", "startup_delay"),
    ("garp_lower_prio_delay", "garp.lower_prio_delay"),
    ("garp_lower_prio_repeat", "garp.lower_prio_repeat"),
    ("vrrp_strict", "strict_mode"),
    ("vrrp_mcast_group4", "mcast_group4"),
    ("vrrp_mcast_group6", "mcast_group6"),
    ("vrrp_skip_check_adv_addr", "skip_check_adv_addr"),
    ("vrrp_rt_priority", "rt_priority"),
    ("vrrp_rlimit_rttime", "rlimit_rttime"),
    ("state", "initial_state"),
    ("nopreempt", "preempt = false"),
    ("authentication", "auth_pass"),
    ("garp_master_delay", "garp.master_delay"),
    ("garp_master_repeat", "garp.master_repeat"),
    ("garp_master_refresh", "garp.master_refresh"),
    ("garp_master_refresh_repeat", "garp.master_refresh_repeat"),
    ("garp_interval", "garp.interval"),
    ("global_defs", "[global]"),
    ("vrrp_instance", "[[instance]]"),
    ("vrrp_sync_group", "[[sync_group]]"),
    ("group", "instances"),
    ("sync_group_tracking_weight", "tracking_weight"),
];

/// Reads a baton.toml text. `file` is only used in diagnostics. The router
/// id defaults to [`Defaults::default`]'s; use [`parse_toml_with`] to give the
/// host name.
pub fn parse_toml(text: &str, file: &Path) -> Result<Config, Diagnostics> {
    parse_toml_with(text, file, &Defaults::default()).map(|loaded| loaded.config)
}

/// Reads and checks a baton.toml text. On success the config comes with the
/// warnings; on failure every error and warning found is returned, in file
/// order.
pub fn parse_toml_with(
    text: &str,
    file: &Path,
    defaults: &Defaults,
) -> Result<Loaded, Diagnostics> {
    let mut reader = Reader {
        file,
        text,
        lines: LineIndex::new(text),
        diags: Diagnostics::new(),
        origins: Origins::new(file),
    };
    let config = reader.document(defaults);
    let mut diags = reader.diags;
    if let Some(config) = &config {
        diags.extend(check::check(config, &reader.origins));
    }
    diags.sort();
    match config {
        Some(config) if !diags.has_errors() => Ok(Loaded {
            config,
            warnings: diags,
            origins: reader.origins,
        }),
        _ => Err(diags),
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

struct Reader<'t> {
    file: &'t Path,
    text: &'t str,
    lines: LineIndex<'t>,
    diags: Diagnostics,
    origins: Origins,
}

impl<'t> Reader<'t> {
    fn pos(&self, span: &Range<usize>) -> Pos {
        self.lines.pos(span.start)
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let pos = self.pos(span);
        self.diags.push(Diagnostic::error(self.file, pos, message));
    }

    /// The whole file; `None` when it is not valid TOML. A value that could
    /// not be read is left at its default (or an empty placeholder) and its
    /// path marked in [`Origins`] as reported, so that the checks still run
    /// on everything else without repeating the finding.
    fn document(&mut self, defaults: &Defaults) -> Option<Config> {
        let (doc, syntax_errors) = DeTable::parse_recoverable(self.text);
        if !syntax_errors.is_empty() {
            for e in syntax_errors {
                let span = e.span().unwrap_or(0..0);
                let mut message = format!("TOML syntax: {}", e.message());
                if e.message() == "duplicate key" {
                    if let Some(key) = self.text.get(span.clone()) {
                        message = format!("TOML syntax: duplicate key {key}");
                    }
                }
                self.error(&span, message);
            }
            return None;
        }
        let root = doc.get_ref();
        for (key, _) in root.iter() {
            let name = key.get_ref().as_ref();
            if !TOP_KEYS.contains(&name) {
                let hint = suggestion(name, TOP_KEYS);
                self.error(
                    &key.span(),
                    format!(
                        "unknown section or key \"{name}\"{hint}; the file has [global], \
                         [cluster], [[instance]], [[sync]] and [[sync_group]]"
                    ),
                );
            }
        }

        let mut config = Config::new(defaults.router_id.clone());
        if let Some(value) = root.get("global") {
            if let Some(mut section) = self.table_section(value, "global", "global", GLOBAL_KEYS) {
                self.global(&mut section, &mut config.global);
                self.statics(&mut section, &mut config);
                section.commit(&mut self.origins, "global");
            }
        }
        for (index, value) in self.array_sections(root, "instance") {
            let what = format!("instance #{}", index + 1);
            let Some(mut section) = self.table_section(value, &what, "instance", INSTANCE_KEYS)
            else {
                continue;
            };
            let instance = self.instance(&mut section);
            let path = format!("instance[{}]", config.instances.len());
            section.commit(&mut self.origins, &path);
            config.instances.push(instance);
        }
        if let Some(value) = root.get("cluster") {
            if let Some(mut section) = self.table_section(value, "cluster", "cluster", CLUSTER_KEYS)
            {
                let cluster = self.cluster(&mut section, &config.global.router_id);
                section.commit(&mut self.origins, "cluster");
                config.cluster = Some(cluster);
            }
        }
        for (index, value) in self.array_sections(root, "sync") {
            let what = format!("sync #{}", index + 1);
            let Some(mut section) = self.table_section(value, &what, "sync", SYNC_KEYS) else {
                continue;
            };
            let entry = self.sync_entry(&mut section);
            let path = format!("sync[{}]", config.sync.len());
            section.commit(&mut self.origins, &path);
            config.sync.push(entry);
        }
        for (index, value) in self.array_sections(root, "vrrp_script") {
            let what = format!("vrrp_script #{}", index + 1);
            let Some(mut section) =
                self.table_section(value, &what, "vrrp_script", VRRP_SCRIPT_KEYS)
            else {
                continue;
            };
            let script = self.vrrp_script(&mut section);
            let path = format!("vrrp_script[{}]", config.vrrp_scripts.len());
            section.commit(&mut self.origins, &path);
            config.vrrp_scripts.push(script);
        }
        for (index, value) in self.array_sections(root, "track_file") {
            let what = format!("track_file #{}", index + 1);
            let Some(mut section) = self.table_section(value, &what, "track_file", TRACK_FILE_KEYS)
            else {
                continue;
            };
            let file = self.track_file(&mut section);
            let path = format!("track_file[{}]", config.track_files.len());
            section.commit(&mut self.origins, &path);
            config.track_files.push(file);
        }
        for (index, value) in self.array_sections(root, "sync_group") {
            let what = format!("sync_group #{}", index + 1);
            let Some(mut section) = self.table_section(value, &what, "sync_group", SYNC_GROUP_KEYS)
            else {
                continue;
            };
            let group = self.sync_group(&mut section);
            let path = format!("sync_group[{}]", config.sync_groups.len());
            section.commit(&mut self.origins, &path);
            config.sync_groups.push(group);
        }
        Some(config)
    }

    /// The elements of an array of tables `[[key]]`.
    fn array_sections<'a, 'i>(
        &mut self,
        root: &'a DeTable<'i>,
        key: &str,
    ) -> Vec<(usize, &'a Value<'i>)> {
        let Some(value) = root.get(key) else {
            return Vec::new();
        };
        match value.get_ref() {
            DeValue::Array(items) => items.iter().enumerate().collect(),
            other => {
                self.error(
                    &value.span(),
                    format!(
                        "{key}: expected an array of tables ([[{key}]]), found {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn table_section<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        what: &str,
        toml_name: &str,
        known: &'static [&'static str],
    ) -> Option<Section<'a, 'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(Section {
                table,
                header: value.span(),
                what: what.to_string(),
                known,
                origins: vec![(String::new(), self.pos(&value.span()))],
                reported: Vec::new(),
            }),
            other => {
                self.error(
                    &value.span(),
                    format!("{toml_name}: expected a table, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn global(&mut self, s: &mut Section, global: &mut Global) {
        s.unknown_keys(self);
        if let Some(id) = s.string(self, "router_id") {
            global.router_id = id;
        }
        if let Some(path) = s.string(self, "control_socket") {
            global.control_socket = PathBuf::from(path);
        }
        if let Some(path) = s.string(self, "state_dir") {
            global.state_dir = PathBuf::from(path);
        }
        global.notify_fifo = s.string(self, "notify_fifo").map(PathBuf::from);
        global.notify_fifo_script = s.string(self, "notify_fifo_script");
        global.script_user = s.string(self, "script_user");
        if let Some(b) = s.boolean(self, "enable_script_security") {
            global.enable_script_security = b;
        }
        if let Some(d) = s.duration(self, "startup_delay") {
            global.startup_delay = d;
        }
        if let Some(a) = s.parsed::<std::net::SocketAddr>(self, "metrics_listen", "IP:PORT") {
            global.metrics_listen = Some(a);
        }
        if let Some(a) = s.parsed::<std::net::Ipv4Addr>(self, "mcast_group4", "an IPv4 address") {
            global.mcast_group4 = a;
        }
        if let Some(a) = s.parsed::<std::net::Ipv6Addr>(self, "mcast_group6", "an IPv6 address") {
            global.mcast_group6 = a;
        }
        global.net_namespace = s.string(self, "net_namespace");
        if let Some(b) = s.boolean(self, "skip_check_adv_addr") {
            global.skip_check_adv_addr = b;
        }
        if let Some(n) = s.int_u8(self, "max_auto_priority", "0..=99") {
            global.max_auto_priority = n;
        }
        if let Some(d) = s.duration(self, "min_auto_priority_delay") {
            global.min_auto_priority_delay = d;
        }
        global.rt_priority = s.int_u8(self, "rt_priority", "1..=99");
        global.rlimit_rttime = s.int_u32(self, "rlimit_rttime").map(u64::from);
    }

    /// `static_ips`, `static_routes`, `static_rules` of `[global]`.
    fn statics(&mut self, s: &mut Section, config: &mut Config) {
        if let Some(vips) = s.parsed_list::<Vip>(self, "static_ips", "an address") {
            config.static_ips = vips;
        }
        if let Some(routes) = s.parsed_list::<Route>(self, "static_routes", "a route") {
            config.static_routes = routes;
        }
        if let Some(rules) = s.parsed_list::<Rule>(self, "static_rules", "a rule") {
            config.static_rules = rules;
        }
    }

    fn vrrp_script(&mut self, s: &mut Section) -> VrrpScript {
        let name = s
            .required(self, "name")
            .and_then(|_| s.string(self, "name"));
        if let Some(name) = &name {
            s.what = format!("vrrp_script \"{name}\"");
        }
        s.unknown_keys(self);
        let command = s
            .required(self, "script")
            .and_then(|_| s.string(self, "script"));
        let mut script = VrrpScript::new(name.unwrap_or_default(), command.unwrap_or_default());
        if let Some(d) = s.duration(self, "interval") {
            script.interval = d;
        }
        script.timeout = s.duration(self, "timeout");
        if let Some(w) = s.int_i32(self, "weight") {
            script.weight = w;
        }
        if let Some(b) = s.boolean(self, "weight_reverse") {
            script.weight_reverse = b;
        }
        if let Some(n) = s.int_u32(self, "rise") {
            script.rise = n;
        }
        if let Some(n) = s.int_u32(self, "fall") {
            script.fall = n;
        }
        script.user = s.string(self, "user");
        if let Some(b) = s.boolean(self, "init_fail") {
            script.init_fail = b;
        }
        script
    }

    fn track_file(&mut self, s: &mut Section) -> TrackFile {
        let name = s
            .required(self, "name")
            .and_then(|_| s.string(self, "name"));
        if let Some(name) = &name {
            s.what = format!("track_file \"{name}\"");
        }
        s.unknown_keys(self);
        let path = s
            .required(self, "path")
            .and_then(|_| s.string(self, "path"));
        TrackFile {
            name: name.unwrap_or_default(),
            path: PathBuf::from(path.unwrap_or_default()),
            weight: s.int_i32(self, "weight").unwrap_or(1),
            reverse: s.boolean(self, "reverse").unwrap_or(false),
        }
    }

    fn notify(&mut self, s: &mut Section, notify: &mut Notify) {
        s.unknown_keys(self);
        notify.master = s.string(self, "master");
        notify.backup = s.string(self, "backup");
        notify.fault = s.string(self, "fault");
        notify.stop = s.string(self, "stop");
        notify.generic = s.string(self, "generic");
    }

    fn instance(&mut self, s: &mut Section) -> Instance {
        let name = s
            .required(self, "name")
            .and_then(|_| s.string(self, "name"));
        if let Some(name) = &name {
            s.what = format!("instance \"{name}\"");
        }
        s.unknown_keys(self);
        let mut mode = Mode::Arp;
        if let Some((text, span)) = s.string_spanned(self, "mode") {
            match text.as_str() {
                "arp" => {}
                "route" => mode = Mode::Route,
                _ => s.error(
                    self,
                    &span,
                    "mode",
                    format!("\"{text}\" is not \"arp\" or \"route\""),
                ),
            }
        }
        if mode == Mode::Route {
            return self.route_instance(s, name.unwrap_or_default());
        }
        let interface = s
            .required(self, "interface")
            .and_then(|_| s.string(self, "interface"));
        let vrid = s
            .required(self, "vrid")
            .and_then(|_| s.int_u8(self, "vrid", "1..=255"));
        let mut instance = Instance::new(
            name.unwrap_or_default(),
            interface.unwrap_or_default(),
            vrid.unwrap_or(0),
        );
        if let Some((version, span)) = s.integer(self, "version") {
            match version {
                2 => instance.version = Version::V2,
                3 => instance.version = Version::V3,
                other => s.error(self, &span, "version", format!("{other} is not 2 or 3")),
            }
        }
        if let Some(d) = s.duration(self, "advert_interval") {
            instance.advert_interval = d;
        }
        instance.unicast_src = s.parsed::<IpAddr>(self, "unicast_src", "an IP address");
        if let Some(peers) = s.parsed_list::<IpAddr>(self, "unicast_peers", "an IP address") {
            instance.unicast_peers = peers;
        }
        instance.auth_pass = s.string(self, "auth_pass");
        if let Some((text, span)) = s.string_spanned(self, "auth_type") {
            match text.as_str() {
                "pass" => instance.auth_type = AuthType::Pass,
                "ah" => instance.auth_type = AuthType::Ah,
                _ => s.error(
                    self,
                    &span,
                    "auth_type",
                    format!("\"{text}\" is not \"pass\" or \"ah\""),
                ),
            }
        }
        if let Some(b) = s.boolean(self, "v3_checksum_as_v2") {
            instance.v3_checksum_as_v2 = b;
        }
        if let Some(mut garp) = s.sub_table(self, "garp", GARP_KEYS) {
            self.garp(&mut garp, &mut instance.garp);
            s.adopt(garp, "garp");
        }
        instance.mcast_src = s.parsed::<IpAddr>(self, "mcast_src", "an IP address");
        if let Some(b) = s.boolean(self, "dont_track_primary") {
            instance.dont_track_primary = b;
        }
        instance.skip_check_adv_addr = s.boolean(self, "skip_check_adv_addr");
        if let Some(value) = s.value(self, "use_vmac") {
            match value.get_ref() {
                DeValue::Boolean(b) => instance.use_vmac = *b,
                DeValue::String(name) => {
                    instance.use_vmac = true;
                    instance.vmac_interface = Some(name.to_string());
                }
                _ => s.mistyped(self, "use_vmac", value, "true, false or an interface name"),
            }
        }
        if let Some(b) = s.boolean(self, "vmac_xmit_base") {
            instance.vmac_xmit_base = b;
        }
        if let Some(value) = s.value(self, "release_delay") {
            let span = value.span();
            s.error(
                self,
                &span,
                "release_delay",
                "only in route mode (mode = \"route\")".into(),
            );
        }
        self.instance_common(s, &mut instance);
        instance
    }

    /// A route-mode instance: no VRID and nothing else about VRRP packets
    /// (each such key is refused where it stands); the interface defaults
    /// to `lo`.
    fn route_instance(&mut self, s: &mut Section, name: String) -> Instance {
        let mut instance = Instance::new_route(name);
        for key in VRRP_ONLY_KEYS {
            if let Some(value) = s.value(self, key) {
                let span = value.span();
                s.error(
                    self,
                    &span,
                    key,
                    "route mode sends no VRRP packets (the cluster channel elects the \
                     holder); remove it or use mode = \"arp\""
                        .into(),
                );
            }
        }
        if let Some(interface) = s.string(self, "interface") {
            instance.interface = interface;
        }
        if let Some(d) = s.duration(self, "release_delay") {
            instance.release_delay = d;
        }
        self.instance_common(s, &mut instance);
        instance
    }

    /// The keys both modes share.
    fn instance_common(&mut self, s: &mut Section, instance: &mut Instance) {
        if let Some(priority) = s.int_u8(self, "priority", "1..=255") {
            instance.priority = priority;
        }
        if let Some(b) = s.boolean(self, "preempt") {
            instance.preempt = b;
        }
        if let Some(d) = s.duration(self, "preempt_delay") {
            instance.preempt_delay = d;
        }
        if let Some(vips) = s.parsed_list::<Vip>(self, "virtual_ips", "a virtual address") {
            instance.virtual_ips = vips;
        }
        if let Some(items) = s.track_interfaces(self) {
            instance.track_interfaces = items;
        }
        if let Some(items) = s.track_list(self, "track_scripts") {
            instance.track_scripts = items;
        }
        if let Some(items) = s.track_list(self, "track_files") {
            instance.track_files = items;
        }
        if let Some(mut notify) = s.sub_table(self, "notify", NOTIFY_KEYS) {
            self.notify(&mut notify, &mut instance.notify);
            s.adopt(notify, "notify");
        }
        if let Some(vips) = s.parsed_list::<Vip>(self, "virtual_ips_excluded", "a virtual address")
        {
            instance.virtual_ips_excluded = vips;
        }
        if let Some(routes) = s.parsed_list::<Route>(self, "virtual_routes", "a route") {
            instance.virtual_routes = routes;
        }
        if let Some(rules) = s.parsed_list::<Rule>(self, "virtual_rules", "a rule") {
            instance.virtual_rules = rules;
        }
        if let Some(b) = s.boolean(self, "strict_mode") {
            instance.strict_mode = b;
        }
        if let Some(lease) = s.vip_lease(self) {
            instance.vip_lease = lease;
        }
        if let Some((text, span)) = s.string_spanned(self, "initial_state") {
            match parse_initial_state(&text) {
                Some(state) => instance.initial_state = Some(state),
                None => s.error(
                    self,
                    &span,
                    "initial_state",
                    format!("\"{text}\" is not \"backup\" or \"master\""),
                ),
            }
        }
    }

    fn garp(&mut self, s: &mut Section, garp: &mut Garp) {
        s.unknown_keys(self);
        if let Some(d) = s.duration(self, "master_delay") {
            garp.master_delay = d;
        }
        if let Some(n) = s.int_u32(self, "master_repeat") {
            garp.master_repeat = n;
        }
        if let Some(d) = s.duration(self, "master_refresh") {
            // keepalived's convention: 0 turns the refresh off.
            garp.master_refresh = (!d.is_zero()).then_some(d);
        }
        if let Some(n) = s.int_u32(self, "master_refresh_repeat") {
            garp.master_refresh_repeat = n;
        }
        if let Some(d) = s.duration(self, "interval") {
            garp.interval = d;
        }
        if let Some(d) = s.duration(self, "na_interval") {
            garp.na_interval = d;
        }
        garp.lower_prio_delay = s.duration(self, "lower_prio_delay");
        garp.lower_prio_repeat = s.int_u32(self, "lower_prio_repeat");
    }

    fn cluster(&mut self, s: &mut Section, router_id: &str) -> Cluster {
        s.unknown_keys(self);
        let node = s
            .string(self, "node")
            .unwrap_or_else(|| router_id.to_string());
        let listen = s
            .required(self, "listen")
            .and_then(|_| s.parsed::<SocketAddr>(self, "listen", "IP:PORT"));
        let key_file = s
            .required(self, "key_file")
            .and_then(|_| s.string(self, "key_file"));
        let peers = s
            .parsed_list::<Peer>(self, "peers", "a peer")
            .unwrap_or_default();
        let heartbeat_interval = s
            .duration(self, "heartbeat_interval")
            .unwrap_or(Cluster::DEFAULT_HEARTBEAT_INTERVAL);
        let mut selection = Selection::Priority;
        if let Some((text, span)) = s.string_spanned(self, "selection") {
            match parse_selection(&text) {
                Some(chosen) => selection = chosen,
                None => s.error(
                    self,
                    &span,
                    "selection",
                    format!("\"{text}\" is not \"priority\" or \"order\""),
                ),
            }
        }
        let order = s.string_list(self, "order").unwrap_or_default();
        let sync_instance = s.string(self, "sync_instance");
        let accept_foreign_adverts = s.boolean(self, "accept_foreign_adverts").unwrap_or(false);
        let check_peer_source = s.boolean(self, "check_peer_source").unwrap_or(true);
        let key_grace = s
            .duration(self, "key_grace")
            .unwrap_or(Cluster::DEFAULT_KEY_GRACE);
        Cluster {
            node,
            // Placeholders for what was reported missing or malformed.
            listen: listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            peers,
            key_file: PathBuf::from(key_file.unwrap_or_default()),
            heartbeat_interval,
            selection,
            order,
            sync_instance,
            accept_foreign_adverts,
            check_peer_source,
            key_grace,
        }
    }

    fn sync_entry(&mut self, s: &mut Section) -> SyncEntry {
        let path = s
            .required(self, "path")
            .and_then(|_| s.string(self, "path"));
        let name = s.string(self, "name");
        if let Some(name) = name.as_ref().or(path.as_ref()) {
            s.what = format!("sync \"{name}\"");
        }
        if name.is_none() && path.is_none() {
            // The name would come from the path, already reported.
            s.reported.push("name".to_string());
        }
        s.unknown_keys(self);
        let on_change = s.string(self, "on_change");
        let mode = s.mode(self, "mode");
        let owner = s.string(self, "owner");
        let max_size = s
            .size(self, "max_size")
            .unwrap_or(SyncEntry::DEFAULT_MAX_SIZE);
        let path = path.unwrap_or_default();
        SyncEntry {
            name: name.unwrap_or_else(|| path.clone()),
            path: PathBuf::from(path),
            on_change,
            mode,
            owner,
            max_size,
        }
    }

    fn sync_group(&mut self, s: &mut Section) -> SyncGroup {
        let name = s
            .required(self, "name")
            .and_then(|_| s.string(self, "name"));
        if let Some(name) = &name {
            s.what = format!("sync_group \"{name}\"");
        }
        s.unknown_keys(self);
        let instances = s
            .required(self, "instances")
            .and_then(|_| s.string_list(self, "instances"));
        let mut notify = Notify::default();
        if let Some(mut sub) = s.sub_table(self, "notify", NOTIFY_KEYS) {
            self.notify(&mut sub, &mut notify);
            s.adopt(sub, "notify");
        }
        let mut group = SyncGroup {
            name: name.unwrap_or_default(),
            instances: instances.unwrap_or_default(),
            notify,
            ..SyncGroup::default()
        };
        if let Some(items) = s.track_interfaces(self) {
            group.track_interfaces = items;
        }
        if let Some(items) = s.track_list(self, "track_scripts") {
            group.track_scripts = items;
        }
        if let Some(items) = s.track_list(self, "track_files") {
            group.track_files = items;
        }
        if let Some(b) = s.boolean(self, "tracking_weight") {
            group.tracking_weight = b;
        }
        group
    }
}

/// One TOML table being read. Every message it makes starts with `what`
/// (`instance "VI_1"`) and the key; every value read is recorded in
/// `origins`, relative to the section, until [`Section::commit`].
struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    header: Range<usize>,
    what: String,
    known: &'static [&'static str],
    origins: Vec<(String, Pos)>,
    /// Keys whose problem is already reported (relative paths).
    reported: Vec<String>,
}

impl<'a, 'i> Section<'a, 'i> {
    fn commit(self, origins: &mut Origins, prefix: &str) {
        let join = |rel: &str| {
            if rel.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{rel}")
            }
        };
        for (rel, pos) in &self.origins {
            origins.record(join(rel), *pos);
        }
        for rel in &self.reported {
            origins.mark_reported(join(rel));
        }
    }

    /// Takes over the positions recorded by a sub-table read as `key`.
    fn adopt(&mut self, sub: Section, key: &str) {
        let join = |rel: &str| {
            if rel.is_empty() {
                key.to_string()
            } else {
                format!("{key}.{rel}")
            }
        };
        for (rel, pos) in &sub.origins {
            self.origins.push((join(rel), *pos));
        }
        for rel in &sub.reported {
            self.reported.push(join(rel));
        }
    }

    /// Reports a problem with `key`'s value; the checks then leave that key
    /// alone.
    fn error(&mut self, r: &mut Reader, span: &Range<usize>, key: &str, message: String) {
        r.error(span, format!("{}: {key}: {message}", self.what));
        self.reported.push(key.to_string());
    }

    /// Reports every key not in `known`; returns how many. Unknown keys do
    /// not make the values read beside them wrong.
    fn unknown_keys(&self, r: &mut Reader) -> usize {
        let mut count = 0;
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !self.known.contains(&name) {
                let hint = suggestion(name, self.known);
                r.error(
                    &key.span(),
                    format!("{}: unknown key \"{name}\"{hint}", self.what),
                );
                count += 1;
            }
        }
        count
    }

    /// `Some(())` when `key` is present; an error at the header otherwise.
    fn required(&mut self, r: &mut Reader, key: &str) -> Option<()> {
        if self.table.get(key).is_some() {
            Some(())
        } else {
            r.error(
                &self.header,
                format!("{}: missing key \"{key}\"", self.what),
            );
            self.reported.push(key.to_string());
            None
        }
    }

    fn value(&mut self, r: &Reader, key: &str) -> Option<&'a Value<'i>> {
        let value = self.table.get(key)?;
        self.origins.push((key.to_string(), r.pos(&value.span())));
        Some(value)
    }

    fn mistyped(&mut self, r: &mut Reader, key: &str, value: &Value, expected: &str) {
        self.error(
            r,
            &value.span(),
            key,
            format!("expected {expected}, found {}", describe(value.get_ref())),
        );
    }

    fn string_spanned(&mut self, r: &mut Reader, key: &str) -> Option<(String, Range<usize>)> {
        let value = self.value(r, key)?;
        match value.get_ref() {
            DeValue::String(s) => Some((s.to_string(), value.span())),
            _ => {
                self.mistyped(r, key, value, "a string");
                None
            }
        }
    }

    fn string(&mut self, r: &mut Reader, key: &str) -> Option<String> {
        self.string_spanned(r, key).map(|(s, _)| s)
    }

    fn parsed<T: FromStr>(&mut self, r: &mut Reader, key: &str, expected: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        let (text, span) = self.string_spanned(r, key)?;
        match parse_with_reason::<T>(&text, expected) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.error(r, &span, key, reason);
                None
            }
        }
    }

    fn boolean(&mut self, r: &mut Reader, key: &str) -> Option<bool> {
        let value = self.value(r, key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.mistyped(r, key, value, "true or false");
                None
            }
        }
    }

    fn integer(&mut self, r: &mut Reader, key: &str) -> Option<(i128, Range<usize>)> {
        let value = self.value(r, key)?;
        match value.get_ref() {
            DeValue::Integer(n) => match i128::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => Some((n, value.span())),
                Err(_) => {
                    self.error(r, &value.span(), key, format!("{n} is too large"));
                    None
                }
            },
            _ => {
                self.mistyped(r, key, value, "an integer");
                None
            }
        }
    }

    /// An integer that fits in a `u8`; `range` is the documented range (the
    /// checker enforces its lower bound).
    fn int_u8(&mut self, r: &mut Reader, key: &str, range: &str) -> Option<u8> {
        let (n, span) = self.integer(r, key)?;
        match u8::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(r, &span, key, format!("{n} is out of range {range}"));
                None
            }
        }
    }

    fn int_u32(&mut self, r: &mut Reader, key: &str) -> Option<u32> {
        let (n, span) = self.integer(r, key)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    r,
                    &span,
                    key,
                    format!("{n} is out of range 0..={}", u32::MAX),
                );
                None
            }
        }
    }

    fn int_i32(&mut self, r: &mut Reader, key: &str) -> Option<i32> {
        let (n, span) = self.integer(r, key)?;
        match i32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(r, &span, key, format!("{n} is out of range"));
                None
            }
        }
    }

    /// An array whose elements are names (`"eth1"`) or tables
    /// (`{ name = "eth1", weight = -10, reverse = true }`), each element's
    /// position recorded as `key[i]`.
    /// `track_interfaces`: interfaces and their weights (0 when not given).
    fn track_interfaces(&mut self, r: &mut Reader) -> Option<Vec<TrackInterface>> {
        let items = self.track_list(r, "track_interfaces")?;
        Some(
            items
                .into_iter()
                .map(|t| TrackInterface {
                    name: t.name,
                    weight: t.weight_override.unwrap_or(0),
                    reverse: t.reverse,
                })
                .collect(),
        )
    }

    fn track_list(&mut self, r: &mut Reader, key: &str) -> Option<Vec<TrackRef>> {
        let value = self.value(r, key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.mistyped(
                r,
                key,
                value,
                "an array of names or { name, weight, reverse } tables",
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            self.origins
                .push((format!("{key}[{i}]"), r.pos(&item.span())));
            match item.get_ref() {
                DeValue::String(name) => out.push(TrackRef::new(name.to_string())),
                DeValue::Table(table) => match self.track_table(r, key, table, &item.span()) {
                    Some(t) => out.push(t),
                    None => ok = false,
                },
                other => {
                    self.error(
                        r,
                        &item.span(),
                        key,
                        format!("expected a name or a table, found {}", describe(other)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn track_table(
        &mut self,
        r: &mut Reader,
        key: &str,
        table: &DeTable,
        span: &Range<usize>,
    ) -> Option<TrackRef> {
        let mut ok = true;
        for (k, _) in table.iter() {
            let name = k.get_ref().as_ref();
            if !TRACK_KEYS.contains(&name) {
                let hint = suggestion(name, TRACK_KEYS);
                self.error(r, &k.span(), key, format!("unknown key \"{name}\"{hint}"));
                ok = false;
            }
        }
        let name = match table.get("name").map(|v| (v.get_ref(), v.span())) {
            Some((DeValue::String(s), _)) => Some(s.to_string()),
            Some((other, sp)) => {
                let m = format!("name: expected a string, found {}", describe(other));
                self.error(r, &sp, key, m);
                None
            }
            None => {
                self.error(r, span, key, "missing key \"name\"".to_string());
                None
            }
        };
        let weight = match table.get("weight").map(|v| (v.get_ref(), v.span())) {
            None => Some(None),
            Some((DeValue::Integer(n), sp)) => {
                match i128::from_str_radix(n.as_str(), n.radix())
                    .ok()
                    .and_then(|n| i32::try_from(n).ok())
                {
                    Some(w) => Some(Some(w)),
                    None => {
                        self.error(r, &sp, key, format!("weight: {n} is out of range"));
                        None
                    }
                }
            }
            Some((other, sp)) => {
                let m = format!("weight: expected an integer, found {}", describe(other));
                self.error(r, &sp, key, m);
                None
            }
        };
        let reverse = match table.get("reverse").map(|v| (v.get_ref(), v.span())) {
            None => Some(false),
            Some((DeValue::Boolean(b), _)) => Some(*b),
            Some((other, sp)) => {
                let m = format!("reverse: expected true or false, found {}", describe(other));
                self.error(r, &sp, key, m);
                None
            }
        };
        match (ok, name, weight, reverse) {
            (true, Some(name), Some(weight_override), Some(reverse)) => Some(TrackRef {
                name,
                weight_override,
                reverse,
            }),
            _ => None,
        }
    }

    fn duration(&mut self, r: &mut Reader, key: &str) -> Option<Duration> {
        let value = self.value(r, key)?;
        let DeValue::String(text) = value.get_ref() else {
            self.mistyped(
                r,
                key,
                value,
                "a duration string such as \"1s\" or \"100ms\"",
            );
            return None;
        };
        match parse_duration_with_unit(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    r,
                    &value.span(),
                    key,
                    format!("\"{text}\" is not a duration such as \"1s\" or \"100ms\" ({e})"),
                );
                None
            }
        }
    }

    /// `vip_lease`: "auto" (Some(None)), whole seconds as an integer, or a
    /// duration string ("0", "3s"); the checker holds it to whole seconds.
    fn vip_lease(&mut self, r: &mut Reader) -> Option<Option<Duration>> {
        const KEY: &str = "vip_lease";
        let value = self.value(r, KEY)?;
        match value.get_ref() {
            DeValue::String(text) if &**text == "auto" => Some(None),
            DeValue::String(text) => match parse_duration_with_unit(text) {
                Ok(d) => Some(Some(d)),
                Err(e) => {
                    self.error(
                        r,
                        &value.span(),
                        KEY,
                        format!("\"{text}\" is not \"auto\" or a duration such as \"3s\" ({e})"),
                    );
                    None
                }
            },
            DeValue::Integer(n) => match u64::from_str_radix(n.as_str(), n.radix()) {
                Ok(secs) => Some(Some(Duration::from_secs(secs))),
                Err(_) => {
                    self.error(
                        r,
                        &value.span(),
                        KEY,
                        format!("{n} is not a number of seconds (0 or more)"),
                    );
                    None
                }
            },
            _ => {
                self.mistyped(
                    r,
                    KEY,
                    value,
                    "\"auto\", seconds, or a duration such as \"3s\"",
                );
                None
            }
        }
    }

    /// An array of strings, each element's position recorded as `key[i]`.
    fn strings_spanned(
        &mut self,
        r: &mut Reader,
        key: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let value = self.value(r, key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.mistyped(r, key, value, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => {
                    self.origins
                        .push((format!("{key}[{i}]"), r.pos(&item.span())));
                    out.push((s.to_string(), item.span()));
                }
                other => {
                    self.error(
                        r,
                        &item.span(),
                        key,
                        format!("expected a string, found {}", describe(other)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn string_list(&mut self, r: &mut Reader, key: &str) -> Option<Vec<String>> {
        self.strings_spanned(r, key)
            .map(|items| items.into_iter().map(|(s, _)| s).collect())
    }

    fn parsed_list<T: FromStr>(
        &mut self,
        r: &mut Reader,
        key: &str,
        expected: &str,
    ) -> Option<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        let items = self.strings_spanned(r, key)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (text, span) in items {
            match parse_with_reason::<T>(&text, expected) {
                Ok(v) => out.push(v),
                Err(reason) => {
                    self.error(r, &span, key, reason);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn sub_table(
        &mut self,
        r: &mut Reader,
        key: &str,
        known: &'static [&'static str],
    ) -> Option<Section<'a, 'i>> {
        let value = self.value(r, key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(Section {
                table,
                header: value.span(),
                what: format!("{}: {key}", self.what),
                known,
                origins: Vec::new(),
                reported: Vec::new(),
            }),
            _ => {
                self.mistyped(r, key, value, "a table");
                None
            }
        }
    }

    /// File permission bits: an octal string ("0640") or a TOML octal
    /// integer (0o640). A decimal integer is refused: 640 is not 0o640.
    fn mode(&mut self, r: &mut Reader, key: &str) -> Option<u32> {
        let value = self.value(r, key)?;
        let parsed = match value.get_ref() {
            DeValue::String(s) => parse_octal_mode(s),
            DeValue::Integer(n) if n.radix() == 8 => u32::from_str_radix(n.as_str(), 8).ok(),
            _ => None,
        };
        match parsed {
            Some(mode) if mode <= 0o7777 => Some(mode),
            _ => {
                let text = source_text(r, value);
                self.error(
                    r,
                    &value.span(),
                    key,
                    format!(
                        "{text} is not a file mode: write it in octal, as \"0640\" or 0o640, at most 7777"
                    ),
                );
                None
            }
        }
    }

    /// A size in bytes: an integer, or a string with a binary unit
    /// ("64KiB", "1MiB", "1GiB").
    fn size(&mut self, r: &mut Reader, key: &str) -> Option<u64> {
        let value = self.value(r, key)?;
        let parsed = match value.get_ref() {
            DeValue::Integer(n) => u64::from_str_radix(n.as_str(), n.radix()).ok(),
            DeValue::String(s) => parse_size(s),
            _ => None,
        };
        if parsed.is_none() {
            let text = source_text(r, value);
            self.error(
                r,
                &value.span(),
                key,
                format!(
                    "{text} is not a size: bytes as an integer, or a string such as \"64KiB\" or \"1MiB\""
                ),
            );
        }
        parsed
    }
}

/// The source text of a value, for messages.
fn source_text(r: &Reader, value: &Value) -> String {
    r.text.get(value.span()).unwrap_or("value").to_string()
}

fn parse_with_reason<T: FromStr>(text: &str, expected: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>().map_err(|e| {
        let reason = e.to_string();
        // baton's own parse errors quote what they refuse; std's do not.
        if reason.contains('"') {
            reason
        } else {
            format!("\"{text}\" is not {expected} ({reason})")
        }
    })
}

fn describe(value: &DeValue) -> String {
    match value {
        DeValue::String(s) => format!("string \"{s}\""),
        DeValue::Integer(n) => format!("integer {n}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// ` (did you mean "x"?)` for a near miss or a keepalived name; empty
/// otherwise.
fn suggestion(name: &str, known: &[&str]) -> String {
    if let Some((_, ours)) = KEEPALIVED_NAMES.iter().find(|(k, _)| *k == name) {
        let available = ours
            .split(['.', ' ', '[', ']'])
            .find(|w| !w.is_empty())
            .is_some_and(|first| known.contains(&first));
        if available {
            return format!(" (keepalived's \"{name}\" is \"{ours}\" here)");
        }
    }
    did_you_mean(name, known.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_toml(text, Path::new("t.toml")) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(d) => d.errors().map(|d| d.to_string()).collect(),
        }
    }

    const BASE: &str = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1/24\"]\n";

    #[test]
    fn sync_instance_and_the_sync_defaults() {
        let cluster = "[cluster]\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\npeers = [\"b=192.0.2.12:7480\"]\n";
        let text =
            format!("{cluster}sync_instance = \"VI_1\"\n{BASE}[[sync]]\npath = \"/etc/a\"\n");
        let c = parse_toml(&text, Path::new("t.toml")).unwrap();
        assert_eq!(c.cluster.unwrap().sync_instance.as_deref(), Some("VI_1"));
        assert_eq!(c.sync[0].max_size, 16 << 20);
        let text = format!("{cluster}sync_instance = \"VI_9\"\n{BASE}");
        assert_eq!(
            errors(&text),
            ["t.toml:5:17: error: cluster: sync_instance: no instance named \"VI_9\""]
        );
    }

    #[test]
    fn minimal_defaults() {
        let c = parse_toml(BASE, Path::new("t.toml")).unwrap();
        let i = &c.instances[0];
        assert_eq!(i.priority, 100);
        assert_eq!(i.version, Version::V3);
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert!(i.preempt);
        assert_eq!(i.garp, Garp::default());
        assert_eq!(c.global.router_id, Defaults::default().router_id);
        assert!(c.cluster.is_none());
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("vrid", "vrid"), 0);
        assert_eq!(edit_distance("vird", "vrid"), 2);
        assert_eq!(edit_distance("priorty", "priority"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggestion("priorty", INSTANCE_KEYS),
            " (did you mean \"priority\"?)"
        );
        assert_eq!(
            suggestion("advert_int", INSTANCE_KEYS),
            " (keepalived's \"advert_int\" is \"advert_interval\" here)"
        );
        assert_eq!(suggestion("zzzzzz", INSTANCE_KEYS), "");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1MB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999GiB"), None);
    }

    #[test]
    fn integer_overflow_is_an_error_not_a_panic() {
        let text = BASE.replace("vrid = 51", "vrid = 0x7fffffffffffffff");
        assert_eq!(
            errors(&text),
            ["t.toml:4:8: error: instance \"VI_1\": vrid: 9223372036854775807 is out of range 1..=255"]
        );
    }

    #[test]
    fn every_key_is_in_the_full_example_and_the_man_page() {
        let example = include_str!("../../conf/baton.toml");
        let man = include_str!("../../man/baton.conf.5");
        let sections = [
            GLOBAL_KEYS,
            INSTANCE_KEYS,
            GARP_KEYS,
            CLUSTER_KEYS,
            SYNC_KEYS,
            SYNC_GROUP_KEYS,
            NOTIFY_KEYS,
            VRRP_SCRIPT_KEYS,
            TRACK_FILE_KEYS,
        ];
        for key in sections.concat() {
            if key == "garp" || key == "notify" {
                continue; // the sub-tables, checked below
            }
            assert!(
                example.contains(&format!("\n{key} =")) || example.contains(&format!("# {key} =")),
                "conf/baton.toml lacks {key}"
            );
            assert!(
                man.contains(&format!(".BR {key} ")),
                "baton.conf.5 lacks {key}"
            );
        }
        for section in [
            "[global]",
            "[cluster]",
            "[[instance]]",
            "[instance.garp]",
            "[[sync]]",
            "[[sync_group]]",
            "[instance.notify]",
            "[[vrrp_script]]",
            "[[track_file]]",
        ] {
            assert!(example.contains(section), "conf/baton.toml lacks {section}");
            assert!(
                man.contains(&format!(".SH \"{section}\""))
                    || man.contains(&format!(".SS \"{section}\"")),
                "baton.conf.5 lacks {section}"
            );
        }
    }

    #[test]
    fn integer_forms() {
        let text = BASE.replace("vrid = 51", "vrid = 0x33");
        assert_eq!(
            parse_toml(&text, Path::new("t")).unwrap().instances[0].vrid,
            51
        );
    }
}
