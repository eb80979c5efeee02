//! Diagnostics (`file:line:col: error: message`) and the source positions
//! that readers record beside the model so that validation can point at the
//! offending value.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    /// Something keepalived passes over in silence (a duplicate VIP, an
    /// include that matches nothing): said, but not a problem for `-t`.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One finding about a config file. `line` and `col` are 1-based (`col`
/// counts characters); 0 means "no position" (e.g. the file is unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(file, pos, Severity::Error, message)
    }

    pub fn warning(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(file, pos, Severity::Warning, message)
    }

    pub fn note(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(file, pos, Severity::Note, message)
    }

    fn new(file: &Path, pos: Pos, severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            severity,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.col)?;
        }
        write!(f, " {}: {}", self.severity, self.message)
    }
}

/// Findings in file order, one per line when displayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Warnings proper (not notes): what keepalived's `-t` would report.
    pub fn has_warnings(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Warning)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Orders by file position (position-less first); keeps the order of
    /// findings at one position.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|d| (d.line, d.col));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A 1-based line and column; `Pos::NONE` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const NONE: Pos = Pos { line: 0, col: 0 };

    pub fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

/// Where each part of a [`super::Config`] came from, keyed by a path into the
/// model: `global.state_dir`, `instance[0]` (the instance's header),
/// `instance[0].advert_interval`, `instance[0].virtual_ips[1]`,
/// `instance[0].garp.master_repeat`, `cluster.peers[2]`, `sync[1].path`,
/// `sync_group[0].instances[1]`. Indexes are positions in the model's vectors.
/// A lookup falls back to the nearest recorded parent, so a value that took
/// its default is reported at its section.
///
/// A reader also marks the paths whose problem it has already reported (a
/// value it could not read and replaced by a placeholder); findings of the
/// checks about those paths, or anything under them, are not repeated.
///
/// A config read from several files (keepalived.conf's `include`) records
/// positions with [`Origins::record_in`] and a [`FileId`] from
/// [`Origins::add_file`]; [`Origins::file`] is the main file, id 0.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub file: PathBuf,
    includes: Vec<PathBuf>,
    positions: HashMap<String, (FileId, Pos)>,
    reported: HashSet<String>,
}

/// A file of an [`Origins`]: 0 is the main file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

impl Origins {
    pub fn new(file: &Path) -> Self {
        Origins {
            file: file.to_path_buf(),
            includes: Vec::new(),
            positions: HashMap::new(),
            reported: HashSet::new(),
        }
    }

    /// Registers another file (an included one); the same path gets the
    /// same id.
    pub fn add_file(&mut self, path: &Path) -> FileId {
        if path == self.file {
            return FileId(0);
        }
        let index = match self.includes.iter().position(|p| p == path) {
            Some(i) => i,
            None => {
                self.includes.push(path.to_path_buf());
                self.includes.len() - 1
            }
        };
        FileId(u32::try_from(index + 1).unwrap_or(u32::MAX))
    }

    /// The path of a file id; the main file for an unknown id.
    pub fn path_of(&self, id: FileId) -> &Path {
        match id.0 {
            0 => &self.file,
            n => usize::try_from(n - 1)
                .ok()
                .and_then(|i| self.includes.get(i))
                .unwrap_or(&self.file),
        }
    }

    /// Where `path` (or its nearest recorded parent) came from: the file and
    /// the position.
    pub fn locate(&self, path: &str) -> (FileId, Pos) {
        let mut path = path;
        loop {
            if let Some(found) = self.positions.get(path) {
                return *found;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return (FileId(0), Pos::NONE),
            }
        }
    }

    pub fn record_in(&mut self, path: impl Into<String>, file: FileId, pos: Pos) {
        self.positions.insert(path.into(), (file, pos));
    }

    pub fn mark_reported(&mut self, path: impl Into<String>) {
        self.reported.insert(path.into());
    }

    /// Whether `path` or one of its parents was marked reported.
    pub fn is_reported(&self, path: &str) -> bool {
        let mut path = path;
        loop {
            if self.reported.contains(path) {
                return true;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return false,
            }
        }
    }

    pub fn record(&mut self, path: impl Into<String>, pos: Pos) {
        self.positions.insert(path.into(), (FileId(0), pos));
    }

    /// The position of `path` or of its nearest recorded parent.
    pub fn at(&self, path: &str) -> Pos {
        self.locate(path).1
    }

    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let (file, pos) = self.locate(path);
        Diagnostic::error(self.path_of(file), pos, message)
    }

    pub fn warning(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let (file, pos) = self.locate(path);
        Diagnostic::warning(self.path_of(file), pos, message)
    }

    pub fn note(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let (file, pos) = self.locate(path);
        Diagnostic::note(self.path_of(file), pos, message)
    }
}

/// Turns byte offsets of a text into 1-based line and column (in characters).
#[derive(Debug, Clone)]
pub struct LineIndex<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    /// Offsets past the end map to the end; offsets inside a character to
    /// that character.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .text
            .get(start..)
            .unwrap_or("")
            .char_indices()
            .take_while(|(i, _)| start + i < offset)
            .count();
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }
}

/// ` (did you mean "x"?)` when one of `known` is near `name` (the first of
/// the nearest); empty otherwise. Both readers' unknown-keyword messages.
pub(super) fn did_you_mean<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    let best = known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 2.max(name.len() / 4) => format!(" (did you mean \"{k}\"?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance, by characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let idx = LineIndex::new("ab\ncdé f\n\nx");
        assert_eq!(idx.pos(0), Pos::new(1, 1));
        assert_eq!(idx.pos(1), Pos::new(1, 2));
        assert_eq!(idx.pos(2), Pos::new(1, 3));
        assert_eq!(idx.pos(3), Pos::new(2, 1));
        // 'é' is two bytes: ' ' after it is the 4th character.
        assert_eq!(idx.pos(7), Pos::new(2, 4));
        assert_eq!(idx.pos(10), Pos::new(3, 1));
        assert_eq!(idx.pos(11), Pos::new(4, 1));
        assert_eq!(idx.pos(999), Pos::new(4, 2));
    }

    #[test]
    fn origins_fall_back_to_parents() {
        let mut o = Origins::new(Path::new("f"));
        o.record("instance[1]", Pos::new(7, 1));
        o.record("instance[1].vrid", Pos::new(9, 8));
        assert_eq!(o.at("instance[1].vrid"), Pos::new(9, 8));
        assert_eq!(o.at("instance[1].virtual_ips[3]"), Pos::new(7, 1));
        assert_eq!(o.at("instance[2].vrid"), Pos::NONE);
        o.mark_reported("instance[1].virtual_ips");
        assert!(o.is_reported("instance[1].virtual_ips[2]"));
        assert!(o.is_reported("instance[1].virtual_ips"));
        assert!(!o.is_reported("instance[1]"));
        assert!(!o.is_reported("instance[1].virtual"));
        let inc = o.add_file(Path::new("inc.conf"));
        assert_eq!(inc, FileId(1));
        assert_eq!(o.add_file(Path::new("inc.conf")), inc);
        assert_eq!(o.add_file(Path::new("f")), FileId(0));
        o.record_in("instance[1].priority", inc, Pos::new(2, 3));
        let d = o.error("instance[1].priority", "x");
        assert_eq!(d.to_string(), "inc.conf:2:3: error: x");
    }

    #[test]
    fn display() {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::error(
            Path::new("a.toml"),
            Pos::new(3, 4),
            "bad",
        ));
        d.push(Diagnostic::warning(Path::new("a.toml"), Pos::NONE, "meh"));
        assert_eq!(
            d.to_string(),
            "a.toml:3:4: error: bad\na.toml: warning: meh"
        );
        assert!(d.has_errors());
    }
}
