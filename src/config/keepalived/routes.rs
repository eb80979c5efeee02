//! Routes and rules: the lines of `virtual_routes { }` / `virtual_rules { }`
//! in an instance and of the top-level `static_ipaddress { }`,
//! `static_routes { }` and `static_rules { }` blocks, each line parsed by
//! [`crate::config::route`] with errors pointing at the offending word.

use super::reader::{Reader, Top};
use super::tree::Stmt;
use super::At;
use crate::config::route::{Route, Rule, WordError, DEFAULT_RULE_PRIORITY};

impl Reader {
    /// The route of one line; an error (and None) when baton cannot take it.
    pub(super) fn route_line(&mut self, ctx: &str, key: &str, line: &Stmt) -> Option<(Route, At)> {
        let words: Vec<&str> = line.words.iter().map(|w| w.text.as_str()).collect();
        match Route::parse_words(&words) {
            Ok(route) => Some((route, line.at())),
            Err(e) => {
                self.word_error(ctx, key, line, &e);
                None
            }
        }
    }

    /// The rule of one line. A rule without a priority gets keepalived's
    /// (16384) with keepalived's warning.
    pub(super) fn rule_line(&mut self, ctx: &str, key: &str, line: &Stmt) -> Option<(Rule, At)> {
        let words: Vec<&str> = line.words.iter().map(|w| w.text.as_str()).collect();
        match Rule::parse_words(&words) {
            Ok(mut rule) => {
                if rule.priority.is_none() {
                    self.warn(
                        line.at(),
                        format!(
                            "{ctx}{key}: rule has no preference specified - setting to \
                             {DEFAULT_RULE_PRIORITY} (as keepalived). This is probably not \
                             what you want"
                        ),
                    );
                    rule.priority = Some(DEFAULT_RULE_PRIORITY);
                }
                Some((rule, line.at()))
            }
            Err(e) => {
                self.word_error(ctx, key, line, &e);
                None
            }
        }
    }

    fn word_error(&mut self, ctx: &str, key: &str, line: &Stmt, e: &WordError) {
        // Past the last word (something missing): point at the line.
        let at = line.words.get(e.word).map_or(line.at(), |w| w.at);
        self.error(at, format!("{ctx}{key}: {}", e.message));
    }
}

/// `static_ipaddress { }`: addresses configured for as long as baton runs.
pub(super) fn static_ipaddress(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let key = s.key();
    r.record("global.static_ips", s.at());
    let Some(lines) = r.block_of("", s) else {
        return;
    };
    for line in lines {
        for (vip, at) in r.vips("", key, line) {
            let path = format!("global.static_ips[{}]", r.config.static_ips.len());
            r.record(&path, at);
            r.config.static_ips.push(vip);
        }
    }
}

/// `static_routes { }`.
pub(super) fn static_routes(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let key = s.key();
    r.record("global.static_routes", s.at());
    let Some(lines) = r.block_of("", s) else {
        return;
    };
    for line in lines {
        if let Some((route, at)) = r.route_line("", key, line) {
            let path = format!("global.static_routes[{}]", r.config.static_routes.len());
            r.record(&path, at);
            r.config.static_routes.push(route);
        }
    }
}

/// `static_rules { }`.
pub(super) fn static_rules(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let key = s.key();
    r.record("global.static_rules", s.at());
    let Some(lines) = r.block_of("", s) else {
        return;
    };
    for line in lines {
        if let Some((rule, at)) = r.rule_line("", key, line) {
            let path = format!("global.static_rules[{}]", r.config.static_rules.len());
            r.record(&path, at);
            r.config.static_rules.push(rule);
        }
    }
}
