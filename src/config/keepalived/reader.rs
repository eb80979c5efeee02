//! Stage 3, keywords: the [`Reader`] that reads the statements into the
//! [`Config`] model, its helpers for the values every block reads (one word,
//! integers, timers, flags, commands...), the keyword tables ([`Keywords`])
//! that give every keyword its handler, and the top level of the file. Each
//! kind of block has its file beside this one.

use std::net::IpAddr;
use std::time::Duration;

use super::global::GlobalDefaults;
use super::lexer::Word;
use super::tree::Stmt;
use super::{cluster, global, instance, routes, script, sync, sync_group, At};
use crate::config::diag::{did_you_mean, Diagnostic, Diagnostics, Origins};
use crate::config::model::{Config, Notify};
use crate::config::value::{parse_flag, parse_seconds, parse_seconds_or_unit};

/// A keyword's handler: reads one statement of a block of kind `B` into
/// the block's state (and the reader).
pub(super) type Handler<B> = fn(&mut Reader, &mut B, &Stmt);

/// The keywords of one kind of block, each with its handler, and the
/// keywords of keepalived that baton knows but does not implement (reported
/// as not supported). The names of `known` are also what an unknown
/// keyword's "did you mean" is looked for in, in this order, so the two
/// cannot drift apart.
pub(super) struct Keywords<B: 'static> {
    pub(super) known: &'static [(&'static str, Handler<B>)],
    pub(super) unsupported: &'static [&'static str],
}

impl<B> Keywords<B> {
    /// The handler of `key`, if baton reads it.
    pub(super) fn handler(&self, key: &str) -> Option<Handler<B>> {
        self.known
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, handler)| *handler)
    }

    /// The keywords read, in the table's order.
    pub(super) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.known.iter().map(|(name, _)| *name)
    }
}

/// The state of a block being read.
pub(super) trait Block {
    /// What every message about the block starts with
    /// (`vrrp_instance "VI_1": `).
    fn ctx(&self) -> &str;
}

/// The top level of the file.
pub(super) struct Top;

impl Block for Top {
    fn ctx(&self) -> &str {
        ""
    }
}

pub(super) const TOP: Keywords<Top> = Keywords {
    known: &[
        ("global_defs", global_defs),
        ("vrrp_instance", instance::read),
        ("vrrp_script", script::read_vrrp_script),
        ("vrrp_sync_group", sync_group::read),
        ("track_file", script::read_track_file),
        ("vrrp_track_file", script::read_track_file),
        ("cluster", cluster::read),
        ("sync", sync::read),
        ("include", include),
        ("static_ipaddress", routes::static_ipaddress),
        ("static_routes", routes::static_routes),
        ("static_rules", routes::static_rules),
        ("net_namespace", net_namespace),
    ],
    unsupported: TOP_UNSUPPORTED,
};

/// keepalived also takes `net_namespace` outside global_defs.
fn net_namespace(r: &mut Reader, _: &mut Top, s: &Stmt) {
    global::read_net_namespace(r, "", s);
}

/// Read before everything else, by [`Reader::document`].
fn global_defs(_: &mut Reader, _: &mut Top, _: &Stmt) {}

/// An `include` that reaches the keywords (quoted, or after a brace on its
/// line): `lines.rs` reads the ones that start a line. Reported as unknown,
/// as it always was.
fn include(r: &mut Reader, top: &mut Top, s: &Stmt) {
    r.unknown(top.ctx(), s, TOP.names());
}

/// Top-level blocks of what baton is not: skipped, one warning each.
pub(super) const SKIPPED_BLOCKS: &[&str] = &[
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "linkbeat_interfaces",
    "track_group",
    "garp_group",
    "vrrp_track_process",
    "bfd_instance",
    "vrrp_garp_delay_group",
];

/// Top-level keywords (outside global_defs) baton does not use.
pub(super) const TOP_UNSUPPORTED: &[&str] = &[
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
];

/// Reads the statements into the model, with the findings on the way.
pub(super) struct Reader {
    pub(super) origins: Origins,
    pub(super) diags: Diagnostics,
    pub(super) config: Config,
    pub(super) globals: GlobalDefaults,
}

impl Reader {
    pub(super) fn document(&mut self, tree: &[Stmt]) {
        // global_defs first: its defaults apply to every instance, wherever
        // it is in the file.
        for s in tree.iter().filter(|s| s.key() == "global_defs") {
            global::read(self, &mut Top, s);
        }
        for s in tree {
            let key = s.key();
            if let Some(handler) = TOP.handler(key) {
                handler(self, &mut Top, s);
            } else if SKIPPED_BLOCKS.contains(&key) {
                self.warn(
                    s.at(),
                    format!(
                        "\"{key}\" is skipped: baton is keepalived's VRRP side only \
                         (no LVS, checkers or BFD)"
                    ),
                );
            } else {
                self.not_read(&TOP, "", s);
            }
        }
    }

    /// Reads the statements of a block, each by its keyword's handler.
    pub(super) fn keywords<B: Block>(
        &mut self,
        table: &Keywords<B>,
        block: &mut B,
        items: &[Stmt],
    ) {
        for item in items {
            match table.handler(item.key()) {
                Some(handler) => handler(self, block, item),
                None => self.not_read(table, block.ctx(), item),
            }
        }
    }

    /// A keyword without a handler: not supported, or unknown.
    fn not_read<B>(&mut self, table: &Keywords<B>, ctx: &str, s: &Stmt) {
        if table.unsupported.contains(&s.key()) {
            self.unsupported(ctx, s);
        } else {
            self.unknown(ctx, s, table.names());
        }
    }

    pub(super) fn warn(&mut self, at: At, message: impl Into<String>) {
        let file = self.origins.path_of(at.file).to_path_buf();
        self.diags.push(Diagnostic::warning(&file, at.pos, message));
    }

    pub(super) fn error(&mut self, at: At, message: impl Into<String>) {
        let file = self.origins.path_of(at.file).to_path_buf();
        self.diags.push(Diagnostic::error(&file, at.pos, message));
    }

    pub(super) fn record(&mut self, path: &str, at: At) {
        self.origins.record_in(path, at.file, at.pos);
    }

    pub(super) fn unknown<'k>(
        &mut self,
        ctx: &str,
        s: &Stmt,
        known: impl IntoIterator<Item = &'k str>,
    ) {
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

    pub(super) fn unsupported(&mut self, ctx: &str, s: &Stmt) {
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
    pub(super) fn single<'s>(&mut self, ctx: &str, s: &'s Stmt) -> Option<&'s Word> {
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
    pub(super) fn no_value(&mut self, ctx: &str, s: &Stmt) {
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
    pub(super) fn integer(
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

    pub(super) fn u32_value(&mut self, ctx: &str, s: &Stmt) -> Option<(u32, At)> {
        self.integer(ctx, s, 0..=i64::from(u32::MAX))
            .and_then(|(n, at)| u32::try_from(n).ok().map(|n| (n, at)))
    }

    /// A keepalived timer: seconds, possibly fractional (`2.5`).
    pub(super) fn timer(&mut self, ctx: &str, s: &Stmt) -> Option<(Duration, At)> {
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
    pub(super) fn duration(&mut self, ctx: &str, s: &Stmt) -> Option<(Duration, At)> {
        let w = self.single(ctx, s)?;
        match parse_seconds_or_unit(&w.text) {
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
    pub(super) fn flag(&mut self, ctx: &str, s: &Stmt) -> Option<bool> {
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
        let flag = parse_flag(&w.text);
        if flag.is_none() {
            self.warn(
                w.at,
                format!(
                    "{ctx}{}: \"{}\" is not on, off, true, false, yes or no; ignored",
                    s.key(),
                    w.text
                ),
            );
        }
        flag
    }

    pub(super) fn ip(&mut self, ctx: &str, s: &Stmt) -> Option<(IpAddr, At)> {
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
    pub(super) fn command(&mut self, ctx: &str, s: &Stmt) -> Option<(String, At)> {
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

    /// The block of `s`, or a warning that it has none.
    pub(super) fn block_of<'s>(&mut self, ctx: &str, s: &'s Stmt) -> Option<&'s [Stmt]> {
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

    /// `user USERNAME [GROUPNAME]` as `user` or `user:group`.
    pub(super) fn user(&mut self, ctx: &str, s: &Stmt) -> Option<String> {
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
    pub(super) fn block_name(&mut self, s: &Stmt) -> Option<Word> {
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

    pub(super) fn notify(&mut self, ctx: &str, p: &str, s: &Stmt, notify: &mut Notify) {
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
}

/// Words back into a command line: a word with a space or a quote is put in
/// single quotes (keepalived's convention for script arguments).
pub(super) fn join_command(words: &[Word]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::{check_table, findings};

    const NO_INSTANCE: &str = "k.conf: warning: no instance: this node runs no virtual router";

    #[test]
    fn top_keyword_table() {
        check_table(&TOP, |k| format!("{k}\n"));
        for name in SKIPPED_BLOCKS {
            assert!(TOP.handler(name).is_none() && !TOP_UNSUPPORTED.contains(name));
        }
    }

    #[test]
    fn unknown_keywords_are_suggested_from_the_table() {
        assert_eq!(
            findings("vrrp_instanse V { }\n"),
            [
                NO_INSTANCE,
                "k.conf:1:1: warning: unknown keyword \"vrrp_instanse\" (did you mean \"vrrp_instance\"?); ignored (its block is skipped)",
            ]
        );
        let found = findings("global_defs {\n router_di x\n smtp_server y\n}\n");
        assert_eq!(
            found,
            [
                NO_INSTANCE,
                "k.conf:2:2: warning: global_defs: unknown keyword \"router_di\" (did you mean \"router_id\"?); ignored",
                "k.conf:3:2: warning: global_defs: \"smtp_server\" is not supported by baton; the keyword is ignored",
            ]
        );
    }

    #[test]
    fn a_quoted_include_is_an_unknown_keyword_as_before() {
        assert_eq!(
            findings("\"include\" x\n"),
            [
                NO_INSTANCE,
                "k.conf:1:1: warning: unknown keyword \"include\" (did you mean \"include\"?); ignored",
            ]
        );
    }
}
