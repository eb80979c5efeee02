//! `vrrp_instance NAME { }`: one VRRP instance, keyword by keyword, and its
//! `authentication { }` block. The address lists inside it are read by
//! `vips.rs`.

use super::lexer::Word;
use super::reader::{Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::AuthType;
use crate::config::model::{Family, Instance, TrackInterface, TrackRef, Version};
use crate::config::value::parse_initial_state;

/// An instance being read.
pub(super) struct InstanceBlock {
    /// `vrrp_instance "VI_1": `
    ctx: String,
    /// Its path in the model's [`crate::config::Origins`]: `instance[0]`.
    p: String,
    inst: Instance,
    version_given: bool,
    vrid_given: bool,
    interface_given: bool,
}

impl Block for InstanceBlock {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

/// `vrrp_instance NAME { }`.
pub(super) fn read(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let Some(name) = r.block_name(s) else {
        return;
    };
    let ctx = format!("vrrp_instance \"{}\": ", name.text);
    let Some(items) = s.block.as_deref() else {
        r.error(s.at(), format!("{ctx}expects a {{ }} block"));
        return;
    };
    let p = format!("instance[{}]", r.config.instances.len());
    r.record(&p, s.at());
    r.record(&format!("{p}.name"), name.at);
    let mut inst = Instance::new(name.text.clone(), "", 0);
    inst.version = r.globals.version;
    inst.garp = r.globals.garp.clone();
    inst.strict_mode = r.globals.strict;
    let mut b = InstanceBlock {
        ctx,
        p,
        inst,
        version_given: false,
        vrid_given: false,
        interface_given: false,
    };
    r.keywords(&KEYWORDS, &mut b, items);
    let InstanceBlock {
        ctx,
        p,
        mut inst,
        version_given,
        vrid_given,
        interface_given,
    } = b;
    if !vrid_given {
        r.error(s.at(), format!("{ctx}virtual_router_id is missing"));
        r.origins.mark_reported(format!("{p}.vrid"));
    }
    if !interface_given {
        r.error(
            s.at(),
            format!("{ctx}interface is missing (baton needs the interface even in unicast mode)"),
        );
        r.origins.mark_reported(format!("{p}.interface"));
    }
    if !version_given && inst.family() == Family::V6 {
        // keepalived: IPv6 instances always use version 3.
        inst.version = Version::V3;
    }
    r.config.instances.push(inst);
}

const KEYWORDS: Keywords<InstanceBlock> = Keywords {
    known: &[
        ("state", state),
        ("interface", interface),
        ("virtual_router_id", virtual_router_id),
        ("priority", priority),
        ("advert_int", advert_int),
        ("version", version),
        ("nopreempt", nopreempt),
        ("preempt", preempt),
        ("preempt_delay", preempt_delay),
        ("virtual_ipaddress", virtual_ipaddress),
        ("virtual_ipaddress_excluded", virtual_ipaddress),
        ("unicast_src_ip", unicast_src_ip),
        ("mcast_src_ip", mcast_src_ip),
        ("unicast_peer", unicast_peer),
        ("authentication", authentication),
        ("track_interface", track_interface),
        ("track_script", track_script_or_file),
        ("track_file", track_script_or_file),
        ("notify_master", notify),
        ("notify_backup", notify),
        ("notify_fault", notify),
        ("notify_stop", notify),
        ("notify", notify),
        ("garp_master_delay", garp_master_delay),
        ("garp_master_repeat", garp_master_repeat),
        ("garp_lower_prio_delay", garp_lower_prio_delay),
        ("garp_lower_prio_repeat", garp_lower_prio_repeat),
        ("garp_master_refresh", garp_master_refresh),
        ("garp_master_refresh_repeat", garp_master_refresh_repeat),
        ("garp_interval", garp_interval),
        ("gna_interval", gna_interval),
        ("use_vmac", use_vmac),
        ("vmac_xmit_base", vmac_xmit_base),
        ("virtual_routes", virtual_routes_or_rules),
        ("virtual_rules", virtual_routes_or_rules),
        ("strict_mode", strict_mode),
        ("dont_track_primary", dont_track_primary),
        ("skip_check_adv_addr", skip_check_adv_addr),
        ("check_unicast_src", check_unicast_src),
        // baton extension: the VIPs' valid lifetime.
        ("vip_lease", vip_lease),
    ],
    unsupported: UNSUPPORTED,
};

fn state(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        match parse_initial_state(&w.text) {
            Some(state) => b.inst.initial_state = Some(state),
            None => r.warn(
                w.at,
                format!(
                    "{}state: \"{}\" is not MASTER or BACKUP; ignored",
                    b.ctx, w.text
                ),
            ),
        }
        r.record(&format!("{}.initial_state", b.p), w.at);
    }
}

fn interface(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        b.inst.interface = w.text.clone();
        b.interface_given = true;
        r.record(&format!("{}.interface", b.p), w.at);
    }
}

fn virtual_router_id(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let (ctx, p) = (&b.ctx, &b.p);
    b.vrid_given = true;
    match item.args().first().map(|w| (w.text.parse::<u8>(), w)) {
        Some((Ok(n), w)) if n >= 1 && item.args().len() == 1 => {
            b.inst.vrid = n;
            r.record(&format!("{p}.vrid"), w.at);
        }
        Some((_, w)) => {
            r.error(
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
            r.origins.mark_reported(format!("{p}.vrid"));
        }
        None => {
            r.error(
                item.at(),
                format!("{ctx}virtual_router_id: needs a number in 1..=255"),
            );
            r.origins.mark_reported(format!("{p}.vrid"));
        }
    }
}

fn priority(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((n, at)) = r.integer(&b.ctx, item, 1..=255) {
        b.inst.priority = u8::try_from(n).unwrap_or(Instance::DEFAULT_PRIORITY);
        r.record(&format!("{}.priority", b.p), at);
    }
}

fn advert_int(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.advert_interval = d;
        r.record(&format!("{}.advert_interval", b.p), at);
    }
}

fn version(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((n, at)) = r.integer(&b.ctx, item, 2..=3) {
        b.inst.version = if n == 2 { Version::V2 } else { Version::V3 };
        b.version_given = true;
        r.record(&format!("{}.version", b.p), at);
    }
}

fn nopreempt(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    b.inst.preempt = false;
    r.record(&format!("{}.preempt", b.p), item.at());
}

fn preempt(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    b.inst.preempt = true;
    r.record(&format!("{}.preempt", b.p), item.at());
}

fn preempt_delay(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.preempt_delay = d;
        r.record(&format!("{}.preempt_delay", b.p), at);
    }
}

/// `virtual_ipaddress { }` and `virtual_ipaddress_excluded { }`.
fn virtual_ipaddress(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let (ctx, p, key) = (&b.ctx, &b.p, item.key());
    let excluded = key == "virtual_ipaddress_excluded";
    let model_key = if excluded {
        "virtual_ips_excluded"
    } else {
        "virtual_ips"
    };
    r.record(&format!("{p}.{model_key}"), item.at());
    let Some(lines) = r.block_of(ctx, item) else {
        return;
    };
    for line in lines {
        for (vip, vip_at) in r.vips(ctx, key, line) {
            let list = if excluded {
                &mut b.inst.virtual_ips_excluded
            } else {
                &mut b.inst.virtual_ips
            };
            r.origins.record_in(
                format!("{p}.{model_key}[{}]", list.len()),
                vip_at.file,
                vip_at.pos,
            );
            list.push(vip);
        }
    }
}

fn unicast_src_ip(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((a, at)) = r.ip(&b.ctx, item) {
        b.inst.unicast_src = Some(a);
        r.record(&format!("{}.unicast_src", b.p), at);
    }
}

fn mcast_src_ip(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((a, at)) = r.ip(&b.ctx, item) {
        b.inst.mcast_src = Some(a);
        r.record(&format!("{}.mcast_src", b.p), at);
    }
}

fn unicast_peer(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let (ctx, p) = (&b.ctx, &b.p);
    r.record(&format!("{p}.unicast_peers"), item.at());
    let Some(lines) = r.block_of(ctx, item) else {
        return;
    };
    for line in lines {
        for (peer, peer_at) in r.peers(ctx, line) {
            let path = format!("{p}.unicast_peers[{}]", b.inst.unicast_peers.len());
            r.record(&path, peer_at);
            b.inst.unicast_peers.push(peer);
        }
    }
}

fn track_interface(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let (ctx, p) = (&b.ctx, &b.p);
    let Some(lines) = r.block_of(ctx, item) else {
        return;
    };
    for line in lines {
        if let Some(t) = track_item(r, ctx, item.key(), line) {
            let path = format!("{p}.track_interfaces[{}]", b.inst.track_interfaces.len());
            r.record(&path, line.at());
            b.inst.track_interfaces.push(TrackInterface {
                name: t.name,
                weight: t.weight_override.unwrap_or(0),
                reverse: t.reverse,
            });
        }
    }
}

/// `track_script { }` and `track_file { }`.
fn track_script_or_file(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let (ctx, p, key) = (&b.ctx, &b.p, item.key());
    let model_key = if key == "track_script" {
        "track_scripts"
    } else {
        "track_files"
    };
    let Some(lines) = r.block_of(ctx, item) else {
        return;
    };
    for line in lines {
        if let Some(t) = track_item(r, ctx, key, line) {
            let list = if key == "track_script" {
                &mut b.inst.track_scripts
            } else {
                &mut b.inst.track_files
            };
            let path = format!("{p}.{model_key}[{}]", list.len());
            list.push(t);
            r.record(&path, line.at());
        }
    }
}

fn notify(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    r.notify(&b.ctx, &b.p, item, &mut b.inst.notify);
}

fn garp_master_delay(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.garp.master_delay = d;
        r.record(&format!("{}.garp.master_delay", b.p), at);
    }
}

fn garp_master_repeat(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((n, at)) = r.u32_value(&b.ctx, item) {
        b.inst.garp.master_repeat = n;
        r.record(&format!("{}.garp.master_repeat", b.p), at);
    }
}

fn garp_lower_prio_delay(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.garp.lower_prio_delay = Some(d);
        r.record(&format!("{}.garp.lower_prio_delay", b.p), at);
    }
}

fn garp_lower_prio_repeat(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((n, at)) = r.u32_value(&b.ctx, item) {
        b.inst.garp.lower_prio_repeat = Some(n);
        r.record(&format!("{}.garp.lower_prio_repeat", b.p), at);
    }
}

fn garp_master_refresh(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.garp.master_refresh = (!d.is_zero()).then_some(d);
        r.record(&format!("{}.garp.master_refresh", b.p), at);
    }
}

fn garp_master_refresh_repeat(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((n, at)) = r.u32_value(&b.ctx, item) {
        b.inst.garp.master_refresh_repeat = n;
        r.record(&format!("{}.garp.master_refresh_repeat", b.p), at);
    }
}

fn garp_interval(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.garp.interval = d;
        r.record(&format!("{}.garp.interval", b.p), at);
    }
}

fn gna_interval(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.inst.garp.na_interval = d;
        r.record(&format!("{}.garp.na_interval", b.p), at);
    }
}

fn use_vmac(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let ctx = &b.ctx;
    b.inst.use_vmac = true;
    r.record(&format!("{}.use_vmac", b.p), item.at());
    let mut args = item.args().iter();
    if let Some(first) = args.next() {
        if looks_like_mac(&first.text) {
            r.warn(
                first.at,
                format!("{ctx}use_vmac: a MAC address is not supported by baton; ignored"),
            );
        } else {
            b.inst.vmac_interface = Some(first.text.clone());
            if let Some(mac) = args.next() {
                r.warn(
                    mac.at,
                    format!("{ctx}use_vmac: a MAC address is not supported by baton; ignored"),
                );
            }
        }
    }
}

fn vmac_xmit_base(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    b.inst.vmac_xmit_base = true;
    r.record(&format!("{}.vmac_xmit_base", b.p), item.at());
}

/// `virtual_routes { }` and `virtual_rules { }`: one route or rule a line.
fn virtual_routes_or_rules(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let key = item.key();
    let Some(lines) = r.block_of(&b.ctx, item) else {
        return;
    };
    for line in lines {
        if key == "virtual_routes" {
            if let Some((route, at)) = r.route_line(&b.ctx, key, line) {
                let path = format!("{}.{key}[{}]", b.p, b.inst.virtual_routes.len());
                b.inst.virtual_routes.push(route);
                r.record(&path, at);
            }
        } else if let Some((rule, at)) = r.rule_line(&b.ctx, key, line) {
            let path = format!("{}.{key}[{}]", b.p, b.inst.virtual_rules.len());
            b.inst.virtual_rules.push(rule);
            r.record(&path, at);
        }
    }
}

/// keepalived's `check_unicast_src`: baton always drops adverts from
/// outside `unicast_peer` (counted as `unknown_unicast_src`); the keyword is
/// accepted and turning it off is refused with a warning.
fn check_unicast_src(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if r.flag(&b.ctx, item) == Some(false) {
        r.warn(
            item.at(),
            format!(
                "{}check_unicast_src off: baton always checks the source of unicast adverts",
                b.ctx
            ),
        );
    }
}

fn dont_track_primary(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    b.inst.dont_track_primary = true;
    r.record(&format!("{}.dont_track_primary", b.p), item.at());
}

fn skip_check_adv_addr(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some(on) = r.flag(&b.ctx, item) {
        b.inst.skip_check_adv_addr = Some(on);
        r.record(&format!("{}.skip_check_adv_addr", b.p), item.at());
    }
}

fn strict_mode(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    if let Some(on) = r.flag(&b.ctx, item) {
        b.inst.strict_mode = on;
        r.record(&format!("{}.strict_mode", b.p), item.at());
    }
}

/// `vip_lease auto|SECONDS|DURATION` (a baton extension; keepalived has
/// no lease: 0).
fn vip_lease(r: &mut Reader, b: &mut InstanceBlock, item: &Stmt) {
    let auto = item.args().len() == 1 && item.args()[0].text == "auto";
    if auto {
        b.inst.vip_lease = None;
        r.record(&format!("{}.vip_lease", b.p), item.at());
    } else if let Some((d, at)) = r.duration(&b.ctx, item) {
        b.inst.vip_lease = Some(d);
        r.record(&format!("{}.vip_lease", b.p), at);
    }
}

/// `authentication { auth_type PASS auth_pass SECRET }`.
fn authentication(r: &mut Reader, b: &mut InstanceBlock, s: &Stmt) {
    let (ctx, p) = (&b.ctx, &b.p);
    let Some(items) = r.block_of(ctx, s) else {
        return;
    };
    let mut auth = Auth {
        ctx: ctx.clone(),
        kind: None,
        pass: None,
    };
    r.keywords(&AUTH_KEYWORDS, &mut auth, items);
    let Auth { kind, pass, .. } = auth;
    let auth_type = match kind.as_ref().map(|w| w.text.as_str()) {
        Some("PASS") | None => AuthType::Pass,
        Some("AH") => AuthType::Ah,
        Some(other) => {
            let at = kind.as_ref().map_or(s.at(), |w| w.at);
            r.error(
                at,
                format!("{ctx}authentication: auth_type \"{other}\" is not PASS or AH"),
            );
            r.origins.mark_reported(format!("{p}.auth_pass"));
            return;
        }
    };
    let Some(pass) = pass else {
        r.warn(
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
        r.warn(
            pass.at,
            format!("{ctx}authentication: auth_pass is longer than 8 bytes; only \"{text}\" is used, as keepalived does"),
        );
    }
    b.inst.auth_pass = Some(text);
    b.inst.auth_type = auth_type;
    r.record(&format!("{p}.auth_pass"), pass.at);
}

/// An authentication block being read (its messages start with the
/// instance's).
struct Auth {
    ctx: String,
    kind: Option<Word>,
    pass: Option<Word>,
}

impl Block for Auth {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

const AUTH_KEYWORDS: Keywords<Auth> = Keywords {
    known: &[
        ("auth_type", |r, a, item| {
            a.kind = r.single(&a.ctx, item).cloned()
        }),
        ("auth_pass", |r, a, item| {
            a.pass = r.single(&a.ctx, item).cloned()
        }),
    ],
    unsupported: &[],
};

/// `NAME [weight W] [reverse|noreverse|no_reverse]`.
pub(super) fn track_item(r: &mut Reader, ctx: &str, key: &str, line: &Stmt) -> Option<TrackRef> {
    let mut words = line.words.iter();
    let name = words.next()?;
    let mut t = TrackRef::new(name.text.clone());
    while let Some(w) = words.next() {
        match w.text.as_str() {
            "weight" => match words.next().map(|v| (v.text.parse::<i32>(), v)) {
                Some((Ok(n), _)) => t.weight_override = Some(n),
                Some((Err(_), v)) => r.warn(
                    v.at,
                    format!(
                        "{ctx}{key}: {}: weight \"{}\" is not an integer; ignored",
                        name.text, v.text
                    ),
                ),
                None => r.warn(
                    w.at,
                    format!("{ctx}{key}: {}: weight needs a value; ignored", name.text),
                ),
            },
            "reverse" => t.reverse = true,
            "noreverse" | "no_reverse" => t.reverse = false,
            other => r.warn(
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

fn looks_like_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    (5..=6).contains(&parts.len())
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// vrrp_instance keywords of keepalived 2.2 that baton does not implement.
const UNSUPPORTED: &[&str] = &[
    "vrf",
    "use_vmac_addr",
    "use_ipvlan",
    "native_ipv6",
    "track_process",
    "track_bfd",
    "mcast_dst_ip",
    "track_src_ip",
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
    "debug",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "notify_priority_changes",
    "smtp_alert",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "lvs_sync_daemon_interface",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_table() {
        check_table(&KEYWORDS, |k| {
            format!("vrrp_instance V {{\n interface e\n virtual_router_id 1\n {k}\n}}\n")
        });
        check_table(&AUTH_KEYWORDS, |k| {
            format!(
                "vrrp_instance V {{\n interface e\n virtual_router_id 1\n \
                 authentication {{\n {k}\n }}\n}}\n"
            )
        });
    }
}
