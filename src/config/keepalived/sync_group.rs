//! `vrrp_sync_group NAME { }`: instances that change state together, and
//! the group's notify scripts.

use super::instance::track_item;
use super::reader::{Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::{SyncGroup, TrackInterface};

/// A sync group being read.
struct GroupBlock {
    ctx: String,
    p: String,
    group: SyncGroup,
}

impl Block for GroupBlock {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

/// `vrrp_sync_group NAME { }`.
pub(super) fn read(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let Some(name) = r.block_name(s) else {
        return;
    };
    let ctx = format!("vrrp_sync_group \"{}\": ", name.text);
    let Some(items) = r.block_of(&ctx, s) else {
        return;
    };
    let p = format!("sync_group[{}]", r.config.sync_groups.len());
    r.record(&p, s.at());
    r.record(&format!("{p}.name"), name.at);
    let mut b = GroupBlock {
        ctx,
        p,
        group: SyncGroup {
            name: name.text.clone(),
            instances: Vec::new(),
            ..SyncGroup::default()
        },
    };
    r.keywords(&KEYWORDS, &mut b, items);
    r.config.sync_groups.push(b.group);
}

const KEYWORDS: Keywords<GroupBlock> = Keywords {
    known: &[
        ("group", group),
        ("notify_master", notify),
        ("notify_backup", notify),
        ("notify_fault", notify),
        ("notify_stop", notify),
        ("notify", notify),
        ("track_interface", track_interface),
        ("track_script", track_script_or_file),
        ("track_file", track_script_or_file),
        ("sync_group_tracking_weight", tracking_weight),
        ("global_tracking", tracking_weight),
    ],
    unsupported: &[
        "track_process",
        "track_bfd",
        "notify_deleted",
        "notify_priority_changes",
        "smtp_alert",
    ],
};

/// `group { NAME... }`: the instances, any number a line.
fn group(r: &mut Reader, b: &mut GroupBlock, item: &Stmt) {
    let p = &b.p;
    r.record(&format!("{p}.instances"), item.at());
    let Some(lines) = r.block_of(&b.ctx, item) else {
        return;
    };
    for w in lines.iter().flat_map(|l| l.words.iter()) {
        let path = format!("{p}.instances[{}]", b.group.instances.len());
        r.record(&path, w.at);
        b.group.instances.push(w.text.clone());
    }
}

/// `track_interface { NAME [weight W] [reverse] }`: for every member.
fn track_interface(r: &mut Reader, b: &mut GroupBlock, item: &Stmt) {
    let Some(lines) = r.block_of(&b.ctx, item) else {
        return;
    };
    for line in lines {
        if let Some(t) = track_item(r, &b.ctx, item.key(), line) {
            let path = format!(
                "{}.track_interfaces[{}]",
                b.p,
                b.group.track_interfaces.len()
            );
            r.record(&path, line.at());
            b.group.track_interfaces.push(TrackInterface {
                name: t.name,
                weight: t.weight_override.unwrap_or(0),
                reverse: t.reverse,
            });
        }
    }
}

/// `track_script { }` and `track_file { }`: for every member.
fn track_script_or_file(r: &mut Reader, b: &mut GroupBlock, item: &Stmt) {
    let key = item.key();
    let Some(lines) = r.block_of(&b.ctx, item) else {
        return;
    };
    for line in lines {
        if let Some(t) = track_item(r, &b.ctx, key, line) {
            let (list, model_key) = if key == "track_script" {
                (&mut b.group.track_scripts, "track_scripts")
            } else {
                (&mut b.group.track_files, "track_files")
            };
            let path = format!("{}.{model_key}[{}]", b.p, list.len());
            list.push(t);
            r.record(&path, line.at());
        }
    }
}

/// `sync_group_tracking_weight` (and its deprecated name
/// `global_tracking`): the members' weighted tracking counts.
fn tracking_weight(r: &mut Reader, b: &mut GroupBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    if item.key() == "global_tracking" {
        r.warn(
            item.at(),
            format!(
                "{}global_tracking is deprecated (keepalived); read as \
                 sync_group_tracking_weight",
                b.ctx
            ),
        );
    }
    b.group.tracking_weight = true;
    r.record(&format!("{}.tracking_weight", b.p), item.at());
}

fn notify(r: &mut Reader, b: &mut GroupBlock, item: &Stmt) {
    r.notify(&b.ctx, &b.p, item, &mut b.group.notify);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_table() {
        check_table(&KEYWORDS, |k| format!("vrrp_sync_group G {{\n {k}\n}}\n"));
    }
}
