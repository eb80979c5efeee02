//! `sync [NAME] { path ... }`: a file kept in sync by the cluster channel
//! (an extension; keepalived does not have it).

use std::path::PathBuf;

use super::reader::{join_command, Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::SyncEntry;
use crate::config::value::{parse_octal_mode, parse_size};

/// A sync entry being read.
struct SyncBlock {
    ctx: String,
    p: String,
    path: Option<String>,
    on_change: Option<String>,
    mode: Option<u32>,
    owner: Option<String>,
    max_size: u64,
}

impl Block for SyncBlock {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

/// `sync [NAME] { }`.
pub(super) fn read(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let given_name = s.args().first().map(|w| w.text.clone());
    let ctx = match &given_name {
        Some(n) => format!("sync \"{n}\": "),
        None => "sync: ".to_string(),
    };
    let Some(items) = r.block_of(&ctx, s) else {
        return;
    };
    let p = format!("sync[{}]", r.config.sync.len());
    r.record(&p, s.at());
    let mut b = SyncBlock {
        ctx,
        p,
        path: None,
        on_change: None,
        mode: None,
        owner: None,
        max_size: SyncEntry::DEFAULT_MAX_SIZE,
    };
    r.keywords(&KEYWORDS, &mut b, items);
    let SyncBlock {
        ctx,
        p,
        path,
        on_change,
        mode,
        owner,
        max_size,
    } = b;
    if path.is_none() {
        r.error(s.at(), format!("{ctx}path is missing"));
        r.origins.mark_reported(format!("{p}.path"));
        r.origins.mark_reported(format!("{p}.name"));
    }
    let path = path.unwrap_or_default();
    if given_name.is_some() {
        r.record(&format!("{p}.name"), s.args()[0].at);
    }
    r.config.sync.push(SyncEntry {
        name: given_name.unwrap_or_else(|| path.clone()),
        path: PathBuf::from(path),
        on_change,
        mode,
        owner,
        max_size,
    });
}

const KEYWORDS: Keywords<SyncBlock> = Keywords {
    known: &[
        ("path", path),
        ("on_change", on_change),
        ("mode", mode),
        ("owner", owner),
        ("max_size", max_size),
    ],
    unsupported: &[],
};

fn path(r: &mut Reader, b: &mut SyncBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        b.path = Some(w.text.clone());
        r.record(&format!("{}.path", b.p), w.at);
    }
}

fn on_change(r: &mut Reader, b: &mut SyncBlock, item: &Stmt) {
    if !item.args().is_empty() {
        b.on_change = Some(join_command(item.args()));
        r.record(&format!("{}.on_change", b.p), item.args()[0].at);
    }
}

fn owner(r: &mut Reader, b: &mut SyncBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        b.owner = Some(w.text.clone());
        r.record(&format!("{}.owner", b.p), w.at);
    }
}

fn mode(r: &mut Reader, b: &mut SyncBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        match parse_octal_mode(&w.text) {
            Some(m) => {
                b.mode = Some(m);
                r.record(&format!("{}.mode", b.p), w.at);
            }
            _ => r.warn(
                w.at,
                format!(
                    "{}mode: \"{}\" is not an octal file mode such as 0640; ignored",
                    b.ctx, w.text
                ),
            ),
        }
    }
}

fn max_size(r: &mut Reader, b: &mut SyncBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        match parse_size(&w.text) {
            Some(n) => {
                b.max_size = n;
                r.record(&format!("{}.max_size", b.p), w.at);
            }
            None => r.warn(
                w.at,
                format!(
                    "{}max_size: \"{}\" is not a size such as 65536, 64KiB or 1MiB; ignored",
                    b.ctx, w.text
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_table() {
        check_table(&KEYWORDS, |k| format!("sync {{\n {k}\n}}\n"));
    }
}
