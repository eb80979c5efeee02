//! `vrrp_sync_group NAME { }`: instances that change state together, and
//! the group's notify scripts.

use super::reader::{Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::{Notify, SyncGroup};

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
            notify: Notify::default(),
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
    ],
    unsupported: &[
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
