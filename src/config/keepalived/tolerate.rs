//! What keepalived 2.2.7 runs with a warning and a fallback, baton runs with
//! the same fallback and a warning (a note where keepalived says nothing;
//! `--strict` makes each an error): a
//! keepalived.conf that keepalived starts must start baton too. Applied to
//! the model read from keepalived.conf before it is checked; baton's own
//! TOML gets no such leniency.
//!
//! | construct | keepalived's fallback |
//! |---|---|
//! | a VIP of the other family than the instance's first | ignored |
//! | a VIP listed twice | kept once (a note: keepalived is silent) |
//! | version 2 with IPv6 VIPs | version 3 (a note: keepalived is silent) |
//! | version 3 with `authentication` | authentication ignored |
//! | version 2 with a fractional `advert_int` | rounded to whole seconds (at least 1) |
//! | `state MASTER` with `nopreempt` | nopreempt cleared |
//! | a `vrrp_script` without `script` | removed, and its `track_script` entries |
//! | a `vrrp_sync_group` without instances | removed |

use std::collections::HashSet;
use std::time::Duration;

use crate::config::diag::{Diagnostics, Origins};
use crate::config::model::AuthType;
use crate::config::model::{Config, Family, InitialState, Version};

/// Apply keepalived's fallbacks to `config`, one warning each.
pub(super) fn tolerate(config: &mut Config, origins: &Origins, diags: &mut Diagnostics) {
    // keepalived says nothing of some: those are notes, not warnings.
    let mut notes: Vec<(String, String)> = Vec::new();
    let mut warn = |path: &str, message: String| diags.push(origins.warning(path, message));
    for (i, inst) in config.instances.iter_mut().enumerate() {
        let p = format!("instance[{i}]");
        let what = format!("({})", inst.name);
        if let Some(first) = inst.virtual_ips.first().cloned() {
            let family = first.family();
            let mut seen = HashSet::new();
            let mut keep = Vec::with_capacity(inst.virtual_ips.len());
            for (j, vip) in inst.virtual_ips.drain(..).enumerate() {
                let path = format!("{p}.virtual_ips[{j}]");
                if vip.family() != family {
                    warn(
                        &path,
                        format!(
                            "{what} address family must match the instance's ({first} is {family}): {vip} ignored"
                        ),
                    );
                } else if !seen.insert(vip.addr) {
                    notes.push((
                        path,
                        format!("{what} {} is listed twice: kept once", vip.addr),
                    ));
                } else {
                    keep.push(vip);
                }
            }
            inst.virtual_ips = keep;
            if family == Family::V6 && inst.version == Version::V2 {
                notes.push((
                    format!("{p}.version"),
                    format!("{what} VRRP version 2 does not carry IPv6: using version 3"),
                ));
                inst.version = Version::V3;
            }
        }
        if inst.version == Version::V3 && inst.auth_pass.is_some() {
            warn(
                &format!("{p}.auth_pass"),
                format!("{what} VRRP version 3 does not support authentication: ignored"),
            );
            inst.auth_pass = None;
            inst.auth_type = AuthType::Pass;
        }
        let d = inst.advert_interval;
        if inst.version == Version::V2 && d.subsec_nanos() != 0 {
            let secs = (d.as_secs_f64().round() as u64).max(1);
            warn(
                &format!("{p}.advert_interval"),
                format!(
                    "{what} VRRPv2 advertisement interval {}s must be whole seconds: rounded to {secs}s",
                    d.as_secs_f64()
                ),
            );
            inst.advert_interval = Duration::from_secs(secs);
        }
        if inst.initial_state == Some(InitialState::Master) && !inst.preempt {
            warn(
                &format!("{p}.preempt"),
                format!("{what} nopreempt does not work with state MASTER: cleared"),
            );
            inst.preempt = true;
        }
    }
    let empty: Vec<String> = config
        .vrrp_scripts
        .iter()
        .filter(|s| s.script.trim().is_empty())
        .map(|s| s.name.clone())
        .collect();
    for (k, s) in config.vrrp_scripts.iter().enumerate() {
        if empty.contains(&s.name) {
            warn(
                &format!("vrrp_script[{k}]"),
                format!("vrrp_script {}: no script set: removed", s.name),
            );
        }
    }
    config.vrrp_scripts.retain(|s| !empty.contains(&s.name));
    for (i, inst) in config.instances.iter_mut().enumerate() {
        let before = inst.track_scripts.len();
        inst.track_scripts.retain(|t| !empty.contains(&t.name));
        if inst.track_scripts.len() != before {
            warn(
                &format!("instance[{i}].track_scripts"),
                format!(
                    "({}) track_script of a removed vrrp_script: ignored",
                    inst.name
                ),
            );
        }
    }
    for (g, group) in config.sync_groups.iter().enumerate() {
        if group.instances.is_empty() {
            warn(
                &format!("sync_group[{g}]"),
                format!("sync group {} has no virtual router: removed", group.name),
            );
        }
    }
    config.sync_groups.retain(|g| !g.instances.is_empty());
    for (path, message) in notes {
        diags.push(origins.note(&path, message));
    }
}
