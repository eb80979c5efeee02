//! Stage 1, lines: comments cut, `@id` / `@^id` conditions, `$NAME=VALUE`
//! parameters and their substitution, and `include` (with `*`, `?` and
//! `[...]` wildcards) replaced by the lines of the files included.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::lexer::split_words;
use super::{At, Files};
use crate::config::diag::{Diagnostic, Diagnostics, FileId, Origins, Pos};

/// How deep `include`s may nest.
const MAX_INCLUDE_DEPTH: usize = 32;
/// How deep parameter substitutions may nest (`$A` giving `$B` giving ...).
const MAX_SUBSTITUTION_DEPTH: usize = 32;

/// A line after comments, conditions, parameters and includes.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) file: FileId,
    pub(super) line: u32,
    /// Column of the first character of `text`.
    pub(super) col: u32,
    pub(super) text: String,
}

/// Reads a file's lines into [`Line`]s, following its includes.
pub(super) struct Lines<'a> {
    pub(super) files: &'a dyn Files,
    pub(super) config_id: &'a str,
    /// A missing include is an error (`-e`, or the `includet` keyword).
    pub(super) all_config: bool,
    pub(super) origins: &'a mut Origins,
    pub(super) diags: &'a mut Diagnostics,
    pub(super) params: HashMap<String, String>,
    /// The files being read, outermost first.
    pub(super) stack: Vec<PathBuf>,
    pub(super) out: Vec<Line>,
}

impl Lines<'_> {
    fn report(&mut self, at: At, error: bool, message: String) {
        let file = self.origins.path_of(at.file);
        self.diags.push(if error {
            Diagnostic::error(file, at.pos, message)
        } else {
            Diagnostic::warning(file, at.pos, message)
        });
    }

    pub(super) fn file(&mut self, path: &Path, text: &str, id: FileId) {
        self.stack.push(path.to_path_buf());
        let raw: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let mut i = 0;
        while i < raw.len() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let text = strip_comment(raw[i]);
            i += 1;
            let indent = text.len() - text.trim_start().len();
            let at = At {
                file: id,
                pos: Pos::new(number, column(text, indent)),
            };
            // A multi-line definition, possibly behind a condition, takes
            // the following lines up to one that does not end with '\'.
            let (kept, body, body_at) = self.condition(text.trim_start(), at);
            if let Some((name, value)) = definition(body) {
                if value.trim() == "\\" {
                    let mut values = Vec::new();
                    while i < raw.len() {
                        let next = strip_comment(raw[i]);
                        i += 1;
                        match next.trim_end().strip_suffix('\\') {
                            Some(part) => values.push(part.to_string()),
                            None => {
                                values.push(next.to_string());
                                break;
                            }
                        }
                    }
                    if kept {
                        self.params.insert(name.to_string(), values.join("\n"));
                    }
                    continue;
                }
            }
            if kept {
                self.logical(body, body_at, 0);
            }
        }
        self.stack.pop();
    }

    /// `@id rest` / `@^id rest`: whether the line is kept, and its rest.
    fn condition<'t>(&mut self, text: &'t str, at: At) -> (bool, &'t str, At) {
        let Some(after) = text.strip_prefix('@') else {
            return (true, text, at);
        };
        let (negated, after) = match after.strip_prefix('^') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (id, rest) = after.split_at(end);
        if id.is_empty() {
            self.report(
                at,
                false,
                "a conditional line needs an id right after '@' (\"@lb1 priority 150\")".into(),
            );
            return (false, "", at);
        }
        let rest_trimmed = rest.trim_start();
        let skipped = text.len() - rest_trimmed.len();
        let rest_at = At {
            file: at.file,
            pos: Pos::new(at.pos.line, at.pos.col + column(text, skipped) - 1),
        };
        ((id == self.config_id) != negated, rest_trimmed, rest_at)
    }

    /// One logical line: a condition, a definition, a substitution, an
    /// include, or a line for the lexer.
    fn logical(&mut self, text: &str, at: At, depth: usize) {
        if depth > MAX_SUBSTITUTION_DEPTH {
            self.report(
                at,
                true,
                format!("parameter substitution nests more than {MAX_SUBSTITUTION_DEPTH} deep (a parameter that contains itself?)"),
            );
            return;
        }
        let trimmed = text.trim_start();
        let at = At {
            file: at.file,
            pos: Pos::new(
                at.pos.line,
                at.pos.col + column(text, text.len() - trimmed.len()) - 1,
            ),
        };
        let trimmed = trimmed.trim_end();
        if trimmed.is_empty() {
            return;
        }
        if trimmed.starts_with('@') {
            let (kept, rest, rest_at) = self.condition(trimmed, at);
            if kept {
                self.logical(rest, rest_at, depth);
            }
            return;
        }
        if let Some((name, value)) = definition(trimmed) {
            self.params
                .insert(name.to_string(), value.trim().to_string());
            return;
        }
        if trimmed.starts_with("~SEQ") || trimmed.starts_with("~LST") {
            self.report(
                at,
                false,
                "~SEQ and ~LST blocks are not supported by baton; the line is ignored".into(),
            );
            return;
        }
        let substituted = self.substitute(trimmed);
        if substituted != trimmed {
            for part in substituted.split('\n') {
                self.logical(part, at, depth + 1);
            }
            return;
        }
        let first = trimmed
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("");
        if matches!(
            first,
            "include" | "includet" | "includer" | "includem" | "includew" | "includeb" | "includea"
        ) {
            let rest = trimmed[first.len()..].trim();
            self.include(first, rest, at);
            return;
        }
        self.out.push(Line {
            file: at.file,
            line: at.pos.line,
            col: at.pos.col,
            text: trimmed.to_string(),
        });
    }

    fn current_dir(&self) -> PathBuf {
        self.stack
            .last()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// One pass of `$NAME` / `${NAME}` replacement; undefined names stay.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(braced) = after.strip_prefix('{') {
                if let Some(close) = braced.find('}') {
                    let name = &braced[..close];
                    if let Some(value) = self.value_of(name) {
                        out.push_str(&value);
                        rest = &braced[close + 1..];
                        continue;
                    }
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let name = &after[..end];
                let followed_by_space = after[end..].chars().next().is_none_or(char::is_whitespace);
                if followed_by_space {
                    if let Some(value) = self.value_of(name) {
                        out.push_str(&value);
                        rest = &after[end..];
                        continue;
                    }
                }
            }
            out.push('$');
            rest = after;
        }
        out.push_str(rest);
        out
    }

    fn value_of(&self, name: &str) -> Option<String> {
        if !valid_param_name(name) {
            return None;
        }
        match name {
            "_PWD" => Some(self.current_dir().display().to_string()),
            "_INSTANCE" => Some(self.config_id.to_string()),
            "_HASH" => Some("#".into()),
            "_BANG" => Some("!".into()),
            _ => self.params.get(name).cloned(),
        }
    }

    fn include(&mut self, keyword: &str, rest: &str, at: At) {
        let words = split_words(rest);
        let [pattern] = words.as_slice() else {
            self.report(
                at,
                false,
                format!("{keyword}: expects one file name or pattern; the line is ignored"),
            );
            return;
        };
        if pattern.contains('{') {
            self.report(
                at,
                false,
                format!("{keyword}: brace expansion is not supported by baton; \"{pattern}\" is taken literally"),
            );
        }
        let full = self.current_dir().join(pattern);
        let matches = glob(self.files, &full);
        if matches.is_empty() {
            let message = format!("{keyword}: no file matches \"{}\"", full.display());
            if self.all_config || keyword == "includet" {
                self.report(at, true, message);
            } else {
                // keepalived passes over it in silence: a note.
                let file = self.origins.path_of(at.file);
                self.diags.push(Diagnostic::note(file, at.pos, message));
            }
        }
        for path in matches {
            if self.stack.contains(&path) {
                self.report(
                    at,
                    true,
                    format!("{keyword}: \"{}\" includes itself", path.display()),
                );
                continue;
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                self.report(
                    at,
                    true,
                    format!("{keyword}: includes nest more than {MAX_INCLUDE_DEPTH} deep"),
                );
                return;
            }
            match self.files.read(&path) {
                Ok(text) => {
                    let id = self.origins.add_file(&path);
                    self.file(&path, &text, id);
                }
                Err(e) => self.report(
                    at,
                    false,
                    format!("{keyword}: cannot read \"{}\": {e}", path.display()),
                ),
            }
        }
    }
}

/// The 1-based column of byte offset `offset` of `text`.
fn column(text: &str, offset: usize) -> u32 {
    let chars = text.get(..offset).map_or(0, |t| t.chars().count());
    u32::try_from(chars + 1).unwrap_or(u32::MAX)
}

/// The line without its comment (`#` or `!` outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#' | '!') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `$NAME=VALUE`: the name and the (raw) value.
fn definition(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('$')?;
    let (name, value) = rest.split_once('=')?;
    valid_param_name(name).then_some((name, value))
}

/// The existing paths that `pattern` matches, sorted; `*`, `?` and `[...]`
/// in any component. A pattern without wildcards is returned as it is.
fn glob(files: &dyn Files, pattern: &Path) -> Vec<PathBuf> {
    let has_wildcard = |s: &str| s.contains(['*', '?', '[']);
    if !has_wildcard(&pattern.to_string_lossy()) {
        return vec![pattern.to_path_buf()];
    }
    let mut bases = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        match component {
            Component::Normal(_) if has_wildcard(&text) => {
                let mut next = Vec::new();
                for base in &bases {
                    let Ok(mut names) = files.list(base) else {
                        continue;
                    };
                    names.sort();
                    for name in names {
                        // As the shell: a wildcard does not match a leading dot.
                        if name.starts_with('.') && !text.starts_with('.') {
                            continue;
                        }
                        if wildcard_match(&text, &name) {
                            next.push(base.join(&name));
                        }
                    }
                }
                bases = next;
            }
            _ => {
                for base in &mut bases {
                    base.push(component.as_os_str());
                }
            }
        }
    }
    bases.sort();
    bases
}

/// Whether `name` matches `pattern` (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`,
/// `[^a]`).
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last '*' was and what it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class_match(&p[pi..], n[ni]),
            Some(c) if *c == n[ni] => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class at the start of `p` (`[...]`); the class's
/// length when it matches. An unclosed `[` is a literal.
fn class_match(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let start = i;
    let mut found = false;
    while let Some(&x) = p.get(i) {
        if x == ']' && i > start {
            return (found != negated).then_some(i + 1);
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let end = p[i + 2];
            found |= (x..=end).contains(&c);
            i += 3;
        } else {
            found |= x == c;
            i += 1;
        }
    }
    (c == '[').then_some(1)
}
