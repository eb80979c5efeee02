//! `vrrp_script NAME { }` (a health-check script) and `track_file NAME { }`
//! / `vrrp_track_file NAME { }` (a file holding a weight).

use std::path::PathBuf;

use super::reader::{join_command, Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::{TrackFile, VrrpScript};

/// A vrrp_script being read.
struct ScriptBlock {
    ctx: String,
    p: String,
    script: VrrpScript,
}

impl Block for ScriptBlock {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

/// `vrrp_script NAME { }`.
pub(super) fn read_vrrp_script(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let Some(name) = r.block_name(s) else {
        return;
    };
    let ctx = format!("vrrp_script \"{}\": ", name.text);
    let Some(items) = r.block_of(&ctx, s) else {
        return;
    };
    let p = format!("vrrp_script[{}]", r.config.vrrp_scripts.len());
    r.record(&p, s.at());
    r.record(&format!("{p}.name"), name.at);
    let mut b = ScriptBlock {
        ctx,
        p,
        script: VrrpScript::new(name.text.clone(), ""),
    };
    r.keywords(&SCRIPT_KEYWORDS, &mut b, items);
    // Without `script` keepalived removes the block with a warning; so does
    // `tolerate` (the script stays empty until then).
    r.config.vrrp_scripts.push(b.script);
}

const SCRIPT_KEYWORDS: Keywords<ScriptBlock> = Keywords {
    known: &[
        ("script", script),
        ("interval", interval),
        ("timeout", timeout),
        ("weight", script_weight),
        ("rise", rise_or_fall),
        ("fall", rise_or_fall),
        ("user", user),
        ("init_fail", init_fail),
    ],
    unsupported: &[],
};

fn script(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    if item.args().is_empty() {
        r.warn(item.at(), format!("{}script: needs a command", b.ctx));
    } else {
        b.script.script = join_command(item.args());
        r.record(&format!("{}.script", b.p), item.args()[0].at);
    }
}

fn interval(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.script.interval = d;
        r.record(&format!("{}.interval", b.p), at);
    }
}

fn timeout(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    if let Some((d, at)) = r.timer(&b.ctx, item) {
        b.script.timeout = Some(d);
        r.record(&format!("{}.timeout", b.p), at);
    }
}

/// `weight W [reverse|noreverse|no_reverse]`.
fn script_weight(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    let ctx = &b.ctx;
    let args = item.args();
    match args.first().map(|w| (w.text.parse::<i32>(), w)) {
        Some((Ok(n), w)) => {
            b.script.weight = n;
            r.record(&format!("{}.weight", b.p), w.at);
            match args.get(1).map(|w| (w.text.as_str(), w)) {
                None => {}
                Some(("reverse", _)) => b.script.weight_reverse = true,
                Some(("noreverse" | "no_reverse", _)) => {}
                Some((other, w)) => r.warn(
                    w.at,
                    format!("{ctx}weight: \"{other}\" is not reverse; ignored"),
                ),
            }
        }
        Some((Err(_), w)) => r.warn(
            w.at,
            format!("{ctx}weight: \"{}\" is not an integer; ignored", w.text),
        ),
        None => r.warn(item.at(), format!("{ctx}weight: needs a value; ignored")),
    }
}

fn rise_or_fall(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    if let Some((n, at)) = r.u32_value(&b.ctx, item) {
        if item.key() == "rise" {
            b.script.rise = n;
        } else {
            b.script.fall = n;
        }
        r.record(&format!("{}.{}", b.p, item.key()), at);
    }
}

fn user(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    if let Some(user) = r.user(&b.ctx, item) {
        b.script.user = Some(user);
        r.record(&format!("{}.user", b.p), item.at());
    }
}

fn init_fail(r: &mut Reader, b: &mut ScriptBlock, item: &Stmt) {
    r.no_value(&b.ctx, item);
    b.script.init_fail = true;
    r.record(&format!("{}.init_fail", b.p), item.at());
}

/// A track_file being read.
struct TrackFileBlock {
    ctx: String,
    p: String,
    file: TrackFile,
    has_file: bool,
}

impl Block for TrackFileBlock {
    fn ctx(&self) -> &str {
        &self.ctx
    }
}

/// `track_file NAME { }` and `vrrp_track_file NAME { }`.
pub(super) fn read_track_file(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let Some(name) = r.block_name(s) else {
        return;
    };
    let ctx = format!("track_file \"{}\": ", name.text);
    let Some(items) = r.block_of(&ctx, s) else {
        return;
    };
    let p = format!("track_file[{}]", r.config.track_files.len());
    r.record(&p, s.at());
    r.record(&format!("{p}.name"), name.at);
    let mut b = TrackFileBlock {
        ctx,
        p,
        file: TrackFile {
            name: name.text.clone(),
            path: PathBuf::new(),
            weight: 1,
            reverse: false,
        },
        has_file: false,
    };
    r.keywords(&TRACK_FILE_KEYWORDS, &mut b, items);
    if !b.has_file {
        r.error(s.at(), format!("{}file is missing", b.ctx));
        r.origins.mark_reported(format!("{}.path", b.p));
    }
    r.config.track_files.push(b.file);
}

const TRACK_FILE_KEYWORDS: Keywords<TrackFileBlock> = Keywords {
    known: &[("file", file), ("weight", file_weight)],
    unsupported: &["init_file"],
};

fn file(r: &mut Reader, b: &mut TrackFileBlock, item: &Stmt) {
    if let Some(w) = r.single(&b.ctx, item) {
        b.file.path = PathBuf::from(&w.text);
        b.has_file = true;
        r.record(&format!("{}.path", b.p), w.at);
    }
}

/// `weight W [reverse]`.
fn file_weight(r: &mut Reader, b: &mut TrackFileBlock, item: &Stmt) {
    let ctx = &b.ctx;
    let args = item.args();
    match args.first().map(|w| (w.text.parse::<i32>(), w)) {
        Some((Ok(n), w)) => {
            b.file.weight = n;
            r.record(&format!("{}.weight", b.p), w.at);
            b.file.reverse = args.get(1).is_some_and(|w| w.text == "reverse");
        }
        Some((Err(_), w)) => r.warn(
            w.at,
            format!("{ctx}weight: \"{}\" is not an integer; ignored", w.text),
        ),
        None => r.warn(item.at(), format!("{ctx}weight: needs a value; ignored")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_tables() {
        check_table(&SCRIPT_KEYWORDS, |k| {
            format!("vrrp_script s {{\n script x\n {k}\n}}\n")
        });
        check_table(&TRACK_FILE_KEYWORDS, |k| {
            format!("track_file f {{\n file x\n {k}\n}}\n")
        });
    }
}
