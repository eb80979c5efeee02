//! The keepalived.conf reader.
//!
//! Three stages, as keepalived reads its file (the syntax is learnt from
//! keepalived.conf(5), not from keepalived's code):
//!
//! 1. Lines: comments (`#`, `!`, outside quotes) are cut, `@id` / `@^id`
//!    conditional lines kept or dropped by the config id, `$NAME=VALUE`
//!    parameters defined (multi-line with a trailing `\`) and substituted
//!    (`$NAME` before a space or the end, `${NAME}`, recursively), and
//!    `include PATTERN` lines replaced by the files they match (relative to
//!    the including file; `*`, `?` and `[...]` wildcards).
//! 2. Words and blocks: quoted strings (`"` or `'`, with shell-like
//!    escapes), `{` on the keyword's line or on the next one.
//! 3. Keywords: every VRRP-side keyword of keepalived 2.2 is either read into
//!    the [`Config`] model or reported as not supported; blocks of what baton
//!    is not (LVS, checkers, BFD, static routes) are skipped with one warning
//!    each. Unknown keywords and unreadable values are warnings with
//!    `file:line:col` (errors with [`super::Options::strict`]), never
//!    silently ignored. Values a config cannot do without (an instance's
//!    `virtual_router_id`, `interface`) are errors.
//!
//! Positions are recorded in [`Origins`] with the file each came from, so the
//! shared checks of [`super::check`] point at keepalived.conf lines, in
//! included files too. Reading included files goes through [`Files`], so
//! tests and fuzzers need no file system.
//!
//! This module holds the entry points and the glue between the stages; each
//! stage has its file: `lines.rs`, `lexer.rs` and `tree.rs`, then `reader.rs`
//! for the keywords, with one file for each kind of block: `global.rs`,
//! `instance.rs` (and `vips.rs` for its address blocks), `script.rs`
//! (vrrp_script, track_file), `sync_group.rs`, and baton's extensions
//! `cluster.rs` and `sync.rs`.

mod cluster;
mod global;
mod instance;
mod lexer;
mod lines;
mod reader;
mod routes;
mod script;
mod sync;
mod sync_group;
mod tolerate;
mod tree;
mod vips;

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use super::check;
use super::diag::{Diagnostics, FileId, Origins, Pos};
use super::model::Config;
use super::{Loaded, Options};
use global::GlobalDefaults;
use lexer::tokenize;
use lines::Lines;
use reader::Reader;
use tree::Tree;

/// Where the reader gets included files from.
pub trait Files {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The names of a directory's entries (any order).
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>>;
}

/// The file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFiles;

impl Files for RealFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

/// Files held in memory, by path (for tests and fuzzing).
#[derive(Debug, Clone, Default)]
pub struct MemFiles(pub BTreeMap<PathBuf, String>);

impl Files for MemFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(&lexical(path))
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let dir = lexical(dir);
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|p| p.strip_prefix(&dir).ok())
            .filter_map(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        names.dedup();
        Ok(names)
    }
}

/// `a/b/../c` as `a/c` (no symbolic links in memory).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads and checks a keepalived.conf text; `file` names it in diagnostics
/// and anchors relative `include`s. Included files are read from the file
/// system.
pub fn parse_keepalived(text: &str, file: &Path, options: &Options) -> Result<Loaded, Diagnostics> {
    parse_keepalived_in(text, file, options, &RealFiles)
}

/// [`parse_keepalived`] with included files read from `files`.
pub fn parse_keepalived_in(
    text: &str,
    file: &Path,
    options: &Options,
    files: &dyn Files,
) -> Result<Loaded, Diagnostics> {
    let mut origins = Origins::new(file);
    let mut diags = Diagnostics::new();
    let config_id = options
        .config_id
        .clone()
        .unwrap_or_else(|| options.defaults.router_id.clone());
    let lines = {
        let mut pre = Lines {
            files,
            config_id: &config_id,
            all_config: options.all_config,
            origins: &mut origins,
            diags: &mut diags,
            params: HashMap::new(),
            stack: Vec::new(),
            out: Vec::new(),
        };
        pre.file(file, text, FileId(0));
        pre.out
    };
    let mut tokens = Vec::new();
    for line in &lines {
        tokenize(line, &mut tokens, &origins, &mut diags);
    }
    let tree = Tree {
        tokens: &tokens,
        next: 0,
        origins: &origins,
        diags: &mut diags,
    }
    .build();
    let mut reader = Reader {
        origins,
        diags,
        config: Config::new(options.defaults.router_id.clone()),
        globals: GlobalDefaults::default(),
    };
    reader.document(&tree);
    let Reader {
        mut config,
        origins,
        mut diags,
        ..
    } = reader;
    tolerate::tolerate(&mut config, &origins, &mut diags);
    diags.extend(check::check(&config, &origins));
    sort_by_file(&mut diags, &origins);
    let result = if diags.has_errors() {
        Err(diags)
    } else {
        Ok(Loaded {
            config,
            warnings: diags,
            origins,
        })
    };
    if options.strict {
        super::strictly(result)
    } else {
        result
    }
}

/// Orders findings by file (the main file, then included files in the order
/// they were read), then position.
fn sort_by_file(diags: &mut Diagnostics, origins: &Origins) {
    let mut rank: HashMap<PathBuf, u32> = HashMap::new();
    let mut id = 0u32;
    loop {
        let path = origins.path_of(FileId(id));
        if id > 0 && path == origins.file {
            break;
        }
        rank.insert(path.to_path_buf(), id);
        id += 1;
    }
    diags.0.sort_by_key(|d| {
        (
            rank.get(&d.file).copied().unwrap_or(u32::MAX),
            d.line,
            d.col,
        )
    });
}

/// A position in one of the files read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    file: FileId,
    pos: Pos,
}

/// For the keyword tables' tests in the block files.
#[cfg(test)]
mod table_tests {
    use std::path::Path;

    use super::reader::Keywords;
    use super::{parse_keepalived_in, MemFiles};
    use crate::config::Options;

    /// Every finding of the reader on `text`, as text.
    pub(super) fn findings(text: &str) -> Vec<String> {
        let result = parse_keepalived_in(
            text,
            Path::new("k.conf"),
            &Options::default(),
            &MemFiles::default(),
        );
        let diags = match result {
            Ok(loaded) => loaded.warnings,
            Err(diags) => diags,
        };
        diags.iter().map(|d| d.to_string()).collect()
    }

    /// The table's names are distinct keywords, none of them also listed as
    /// not supported; with `wrap` putting a keyword line in its block, every
    /// name reaches its handler (it is not reported unknown or not
    /// supported) and every unsupported one is reported as such.
    pub(super) fn check_table<B>(table: &Keywords<B>, wrap: impl Fn(&str) -> String) {
        let names: Vec<&str> = table.names().collect();
        let all = [names.as_slice(), table.unsupported].concat();
        for (i, name) in all.iter().enumerate() {
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name:?} is not a keyword"
            );
            assert!(!all[..i].contains(name), "{name} is listed twice");
        }
        // Every keyword baton reads is in baton.conf(5): the page cannot
        // drift from the reader.
        let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/baton.conf.5"))
            .expect("man/baton.conf.5");
        let undocumented: Vec<&&str> = names
            .iter()
            .filter(|n| !man.contains(&n.replace('_', "\\_")) && !man.contains(**n))
            .collect();
        assert!(
            undocumented.is_empty(),
            "keepalived.conf keywords missing from man/baton.conf.5: {undocumented:?}"
        );
        for name in names {
            assert!(table.handler(name).is_some());
            let found = findings(&wrap(name));
            assert!(
                !found
                    .iter()
                    .any(|f| f.contains(&format!("keyword \"{name}\""))
                        || f.contains(&format!("\"{name}\" is not supported"))),
                "{name} is not read: {found:?}"
            );
        }
        for name in table.unsupported {
            let found = findings(&wrap(name));
            assert!(
                found
                    .iter()
                    .any(|f| f.contains(&format!("\"{name}\" is not supported by baton"))),
                "{name} is not reported as not supported: {found:?}"
            );
        }
    }
}
