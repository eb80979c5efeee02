//! Tracking: the health inputs that move an instance's priority or put it in
//! FAULT (keepalived's `track_script`, `track_file`, `track_interface`), and
//! the rules for running scripts that [`super::notify`] shares.
//!
//! - Pure half: [`TrackState`] (what is known: each script up or down after
//!   rise/fall counting, each file's value, each link's state) and
//!   [`instance_effect`] (keepalived's rules turning that into FAULT, an
//!   effective priority and the reasons shown by `baton status`). No IO.
//! - IO half: [`Tracker`] runs every tracked `vrrp_script` every `interval`
//!   and polls every tracked file, and reports changes as [`TrackEvent`]s.
//!   Interfaces are not watched here: the daemon feeds netlink's link
//!   states into its [`TrackState`].
//! - Shared with notify: [`split_command`], [`ScriptCommand`] (who runs it,
//!   `enable_script_security`), [`run_to_completion`] (timeout, then the
//!   whole process group is killed).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::model::{Config, Global, Instance, VrrpScript};

// ---------------------------------------------------------------------------
// Pure half: state and keepalived's weighting rules.
// ---------------------------------------------------------------------------

/// What the tracker reports: only changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEvent {
    /// A `vrrp_script` changed state after `rise` successes or `fall`
    /// failures in a row.
    Script { name: String, up: bool },
    /// A `track_file`'s value changed.
    File { name: String, value: i64 },
}

/// One script's rise/fall counter.
///
/// A script starts up (or down with `init_fail`); it goes down after `fall`
/// consecutive failures and up after `rise` consecutive successes. A result
/// that agrees with the current state resets the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatus {
    up: bool,
    rise: u32,
    fall: u32,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl ScriptStatus {
    pub fn new(script: &VrrpScript) -> Self {
        ScriptStatus {
            up: !script.init_fail,
            rise: script.rise.max(1),
            fall: script.fall.max(1),
            streak: 0,
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Counts one run's result; the new state when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = success;
        self.streak = 0;
        Some(self.up)
    }
}

/// Everything known about tracked things, as the daemon sees it.
///
/// Scripts start as their config says (up, or down with `init_fail`), files
/// at 0 (a missing file reads as 0), interfaces unknown (counted as down
/// until the daemon reports them: keepalived faults on a tracked interface
/// that does not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackState {
    scripts: BTreeMap<String, ScriptStatus>,
    files: BTreeMap<String, i64>,
    interfaces: BTreeMap<String, bool>,
}

impl TrackState {
    pub fn new(config: &Config) -> Self {
        TrackState {
            scripts: config
                .vrrp_scripts
                .iter()
                .map(|s| (s.name.clone(), ScriptStatus::new(s)))
                .collect(),
            files: config
                .track_files
                .iter()
                .map(|f| (f.name.clone(), 0))
                .collect(),
            interfaces: BTreeMap::new(),
        }
    }

    /// Whether the script called `name` is up; `None` for an unknown name.
    pub fn script_up(&self, name: &str) -> Option<bool> {
        self.scripts.get(name).map(ScriptStatus::up)
    }

    /// Counts one run of a script (rise/fall); the new state when it
    /// changed. Unknown names are ignored.
    pub fn record_script_result(&mut self, name: &str, success: bool) -> Option<bool> {
        self.scripts.get_mut(name)?.record(success)
    }

    /// Sets a script's state (as reported by [`TrackEvent::Script`]);
    /// whether it changed. Unknown names are ignored.
    pub fn set_script(&mut self, name: &str, up: bool) -> bool {
        match self.scripts.get_mut(name) {
            Some(s) if s.up != up => {
                s.up = up;
                s.streak = 0;
                true
            }
            _ => false,
        }
    }

    /// A file's last value (0 when unknown or unread).
    pub fn file_value(&self, name: &str) -> i64 {
        self.files.get(name).copied().unwrap_or(0)
    }

    /// Sets a file's value; whether it changed.
    pub fn set_file(&mut self, name: &str, value: i64) -> bool {
        self.files.insert(name.to_string(), value) != Some(value)
    }

    /// A link's state; `None` when never reported.
    pub fn interface_up(&self, name: &str) -> Option<bool> {
        self.interfaces.get(name).copied()
    }

    /// Sets a link's state (from netlink); whether it changed.
    pub fn set_interface(&mut self, name: &str, up: bool) -> bool {
        self.interfaces.insert(name.to_string(), up) != Some(up)
    }

    /// Applies a tracker event; whether anything changed.
    pub fn apply(&mut self, event: &TrackEvent) -> bool {
        match event {
            TrackEvent::Script { name, up } => self.set_script(name, *up),
            TrackEvent::File { name, value } => self.set_file(name, *value),
        }
    }
}

/// What tracking does to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Something tracked with weight 0 failed (or a file went below -253).
    pub fault: bool,
    /// The priority to advertise: base plus weights, 1..=254; 255 for an
    /// address owner.
    pub priority: u8,
    /// Each tracked thing in its bad state, for logs and `baton status`:
    /// `script chk_haproxy failed`, `interface eth1 down`,
    /// `file /run/x = -300`.
    pub reasons: Vec<String>,
}

/// What one up/down input contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contribution {
    Fault,
    Add(i64),
}

/// keepalived's rule for a tracked thing that is up or down with a weight
/// (keepalived.conf(5), track_interface / vrrp_script / track_bfd):
///
/// - weight 0: FAULT while down; with `reverse`, FAULT while up.
/// - a positive weight is added while up, a negative one while down;
///   `reverse` negates the weight but keeps when it applies ("positive
///   weights are added/subtracted when up, negative weights are
///   subtracted/added when down").
fn weigh(up: bool, weight: i32, reverse: bool) -> Contribution {
    let signed = if reverse {
        -i64::from(weight)
    } else {
        i64::from(weight)
    };
    match weight {
        0 if up == reverse => Contribution::Fault,
        0 => Contribution::Add(0),
        w if w > 0 && up => Contribution::Add(signed),
        w if w < 0 && !up => Contribution::Add(signed),
        _ => Contribution::Add(0),
    }
}

/// The lowest `track_file` result (value times weight) that is added to the
/// priority; anything lower is a FAULT (keepalived: "less than -253").
pub const FILE_FAULT_BELOW: i64 = -253;

/// keepalived's `track_file` rule: weight 0: a non-zero value is a FAULT
/// (with `reverse`, a zero value is). Otherwise value × weight (negated
/// with `reverse`) is added; below -253 is a FAULT.
fn weigh_file(value: i64, weight: i32, reverse: bool) -> Contribution {
    if weight == 0 {
        return if (value != 0) != reverse {
            Contribution::Fault
        } else {
            Contribution::Add(0)
        };
    }
    let mut result = value.saturating_mul(i64::from(weight));
    if reverse {
        result = result.saturating_neg();
    }
    if result < FILE_FAULT_BELOW {
        Contribution::Fault
    } else {
        Contribution::Add(result)
    }
}

/// Applies keepalived's tracking rules to one instance.
///
/// A per-instance weight (`track_script { NAME weight W }`) replaces the
/// script's or file's own; `reverse` on either the reference or the script /
/// file applies (the model cannot say `noreverse`). A reference to a script
/// or file the config lacks (a checked config has none) counts for nothing
/// and is named in `reasons`.
pub fn instance_effect(inst: &Instance, config: &Config, state: &TrackState) -> Effect {
    let mut fault = false;
    let mut sum: i64 = 0;
    let mut reasons = Vec::new();
    let mut count = |c: Contribution| match c {
        Contribution::Fault => fault = true,
        Contribution::Add(n) => sum = sum.saturating_add(n),
    };

    for t in &inst.track_interfaces {
        let up = state.interface_up(&t.name);
        count(weigh(up.unwrap_or(false), t.weight, t.reverse));
        match up {
            None => reasons.push(format!("interface {} not found", t.name)),
            Some(false) if !t.reverse => reasons.push(format!("interface {} down", t.name)),
            Some(true) if t.reverse => reasons.push(format!("interface {} up (reverse)", t.name)),
            Some(_) => {}
        }
    }

    for t in &inst.track_scripts {
        let (Some(script), Some(up)) = (config.vrrp_script(&t.name), state.script_up(&t.name))
        else {
            reasons.push(format!("script {} is not configured", t.name));
            continue;
        };
        let weight = t.weight_override.unwrap_or(script.weight);
        let reverse = t.reverse || script.weight_reverse;
        count(weigh(up, weight, reverse));
        if !up && !reverse {
            reasons.push(format!("script {} failed", t.name));
        } else if up && reverse {
            reasons.push(format!("script {} succeeded (reverse)", t.name));
        }
    }

    for t in &inst.track_files {
        let Some(file) = config.track_file(&t.name) else {
            reasons.push(format!("file {} is not configured", t.name));
            continue;
        };
        let value = state.file_value(&t.name);
        let weight = t.weight_override.unwrap_or(file.weight);
        let reverse = t.reverse || file.reverse;
        let c = weigh_file(value, weight, reverse);
        count(c);
        let bad = match c {
            Contribution::Fault => true,
            Contribution::Add(n) => n < 0,
        };
        if bad {
            reasons.push(format!("file {} = {value}", file.path.display()));
        }
    }

    // Bounded first: the model's addition would overflow on extreme file
    // values, and anything beyond ±1000 clamps the same.
    Effect {
        fault,
        priority: inst.effective_priority(sum.clamp(-1000, 1000)),
        reasons,
    }
}

/// A `track_file`'s value: the integer its text starts with (after
/// whitespace, with an optional sign), as keepalived reads it; `None` when
/// it does not start with one. Values beyond i64 saturate.
pub fn parse_track_value(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits[..end].bytes() {
        let d = i64::from(b - b'0');
        value = value.saturating_mul(10);
        value = if negative {
            value.saturating_sub(d)
        } else {
            value.saturating_add(d)
        };
    }
    Some(value)
}

/// Reads a tracked file: its value, and a problem to log when it could not
/// be read or holds no number (the value is then 0). A missing file is not
/// a problem: keepalived reads it as 0.
pub fn read_track_file(path: &Path) -> (i64, Option<String>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (0, None),
        Err(e) => return (0, Some(format!("{}: {e}; value 0", path.display()))),
    };
    // A FIFO or device could block the read for ever.
    if !meta.is_file() {
        return (
            0,
            Some(format!("{}: not a regular file; value 0", path.display())),
        );
    }
    let mut text = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut text));
    if let Err(e) = read {
        return (0, Some(format!("{}: {e}; value 0", path.display())));
    }
    match parse_track_value(&String::from_utf8_lossy(&text)) {
        Some(v) => (v, None),
        None if text.iter().all(u8::is_ascii_whitespace) => (0, None),
        None => (
            0,
            Some(format!(
                "{}: does not start with a number; value 0",
                path.display()
            )),
        ),
    }
}

// ---------------------------------------------------------------------------
// Running scripts (shared with notify).
// ---------------------------------------------------------------------------

/// Splits a command line by the model's rule: words are separated by
/// whitespace; a single-quoted part is taken as is, spaces included, without
/// its quotes (`/bin/x 'a b' c` → `/bin/x`, `a b`, `c`). No other quoting,
/// no expansion: there is no shell. An unclosed quote runs to the end.
pub fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The user and group a script runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// Resolves `user`, `user:group` (or keepalived's `user group`); the group
/// defaults to the user's own.
pub fn resolve_user(spec: &str) -> Result<RunAs, String> {
    let mut parts = spec
        .split(|c: char| c == ':' || c.is_whitespace())
        .filter(|p| !p.is_empty());
    let Some(user_name) = parts.next() else {
        return Err("empty user name".into());
    };
    let user = match User::from_name(user_name) {
        Ok(Some(u)) => u,
        Ok(None) => return Err(format!("no user is called \"{user_name}\"")),
        Err(e) => return Err(format!("user \"{user_name}\": {e}")),
    };
    let gid = match parts.next() {
        None => user.gid,
        Some(group_name) => match Group::from_name(group_name) {
            Ok(Some(g)) => g.gid,
            Ok(None) => return Err(format!("no group is called \"{group_name}\"")),
            Err(e) => return Err(format!("group \"{group_name}\": {e}")),
        },
    };
    Ok(RunAs {
        user: user.name,
        uid: user.uid,
        gid,
    })
}

/// The user a script runs as, as keepalived chooses it: the script's own
/// `user`, else `script_user`, else `keepalived_script` when that user
/// exists, else `None` (the agent's own user).
pub fn script_user_spec(own: Option<&str>, global: &Global) -> Option<String> {
    own.map(str::to_string)
        .or_else(|| global.script_user.clone())
        .or_else(|| {
            matches!(User::from_name("keepalived_script"), Ok(Some(_)))
                .then(|| "keepalived_script".to_string())
        })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The file `exec` would run for a command's first word: as given when it
/// has a `/`, else the first executable of that name in `$PATH`.
pub fn resolve_program(word: &str) -> Result<PathBuf, String> {
    if word.is_empty() {
        return Err("empty command".into());
    }
    if word.contains('/') {
        return Ok(PathBuf::from(word));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(word);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!("\"{word}\" is not found in PATH ({path})"))
}

/// Why a file or directory would let a non-root user change what root runs.
fn insecure_reason(uid: u32, mode: u32) -> Option<String> {
    if uid != 0 {
        let owner = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| format!("\"{}\"", u.name))
            .unwrap_or_else(|| format!("uid {uid}"));
        return Some(format!("is owned by {owner}"));
    }
    if mode & 0o002 != 0 {
        return Some(format!(
            "is writable by everyone (mode {:04o})",
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 {
        return Some(format!(
            "is writable by its group (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

/// Every path whose owner and mode decide who can change `program`: the
/// file and each directory above it, both as named and after symlinks are
/// resolved.
fn guarding_paths(program: &Path) -> Vec<PathBuf> {
    let absolute = if program.is_absolute() {
        program.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(program))
            .unwrap_or_else(|_| program.to_path_buf())
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let canonical = std::fs::canonicalize(&absolute).ok();
    for start in std::iter::once(absolute.as_path()).chain(canonical.as_deref()) {
        for p in start.ancestors() {
            if !p.as_os_str().is_empty() && seen.insert(p.to_path_buf()) {
                out.push(p.to_path_buf());
            }
        }
    }
    out
}

/// `enable_script_security`: refuses a command that would run as root while
/// its program file, or any directory above it, is owned by a non-root user
/// or writable by a group or by everyone. `user` is who it runs as (`user`
/// or `user:group`; `None`: the agent's own user). The program is found
/// through `$PATH` as `exec` finds it.
pub fn check_script_security(command: &str, user: Option<&str>) -> Result<(), String> {
    let words = split_command(command);
    let Some(first) = words.first() else {
        return Err("empty command".into());
    };
    let program = resolve_program(first)?;
    let uid = match user {
        Some(spec) => resolve_user(spec)?.uid,
        None => nix::unistd::geteuid(),
    };
    check_program_security(&program, uid)
}

fn check_program_security(program: &Path, uid: Uid) -> Result<(), String> {
    if !uid.is_root() {
        return Ok(());
    }
    for p in guarding_paths(program) {
        let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(why) = insecure_reason(meta.uid(), meta.mode()) {
            return Err(format!(
                "refusing to run {} as root: {} {why}; a non-root user could change \
                 what root runs (make the file and every directory above it owned by \
                 root and not group/other-writable, or set a non-root script_user)",
                program.display(),
                p.display()
            ));
        }
    }
    Ok(())
}

/// A command ready to run: split, its program found, its user resolved, and
/// checked under `enable_script_security`.
#[derive(Debug, Clone)]
pub struct ScriptCommand {
    /// The command line as configured (for logs).
    pub text: String,
    /// The file that runs (found through `$PATH`).
    pub program: PathBuf,
    /// The words as configured, the first one included.
    pub argv: Vec<String>,
    /// `None`: the agent's own user.
    pub run_as: Option<RunAs>,
    /// Without `enable_script_security`, what the check would have refused
    /// (to log as a warning).
    pub security_warning: Option<String>,
}

impl ScriptCommand {
    /// Prepares `command` to run as `user` (see [`script_user_spec`]).
    /// Refused (with the reason) when it is empty, not found, its user does
    /// not exist, or `enable_script_security` forbids it.
    pub fn prepare(command: &str, user: Option<&str>, global: &Global) -> Result<Self, String> {
        let argv = split_command(command);
        let Some(first) = argv.first() else {
            return Err("empty command".into());
        };
        let program = resolve_program(first)?;
        let run_as = user.map(resolve_user).transpose()?;
        let uid = run_as
            .as_ref()
            .map(|r| r.uid)
            .unwrap_or_else(nix::unistd::geteuid);
        let security_warning = match check_program_security(&program, uid) {
            Ok(()) => None,
            Err(e) if global.enable_script_security => return Err(e),
            Err(e) => Some(e),
        };
        Ok(ScriptCommand {
            text: command.to_string(),
            program,
            argv,
            run_as,
            security_warning,
        })
    }
}

/// Process groups of running scripts, so that they can be killed from
/// outside the task that waits for them (`Tracker::stop`, notifier close).
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Mutex<HashSet<i32>>>);

impl Running {
    fn with<R>(&self, f: impl FnOnce(&mut HashSet<i32>) -> R) -> R {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut set)
    }

    /// SIGKILLs every running script's process group.
    pub fn kill_all(&self) {
        for pgid in self.with(std::mem::take) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }

    /// How many scripts are running.
    pub fn len(&self) -> usize {
        self.with(|s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A started script, its process group registered in [`Running`]. Dropped
/// unreaped (its task cancelled), it kills the group.
pub struct Started {
    pub child: tokio::process::Child,
    pgid: i32,
    running: Running,
    armed: bool,
}

impl Started {
    /// The process (and process group) id.
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Waits for the script to end by itself, then forgets its group
    /// (what it left running in the background is its business).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await;
        if status.is_ok() {
            self.disarm();
        }
        status
    }

    /// Kills the whole process group and reaps the script.
    pub async fn kill(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let _ = self.child.wait().await;
        self.disarm();
    }

    fn disarm(&mut self) {
        if self.armed {
            self.armed = false;
            let pgid = self.pgid;
            self.running.with(|s| s.remove(&pgid));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            self.disarm();
        }
    }
}

/// Starts a prepared command with `extra` arguments after its own, in its
/// own process group, as its user, with no stdin/stdout/stderr.
pub fn start(cmd: &ScriptCommand, extra: &[String], running: &Running) -> Result<Started, String> {
    let mut c = tokio::process::Command::new(&cmd.program);
    if let Some(argv0) = cmd.argv.first() {
        c.arg0(argv0);
    }
    c.args(cmd.argv.iter().skip(1))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Some(r) = &cmd.run_as {
        c.uid(r.uid.as_raw()).gid(r.gid.as_raw());
    }
    let child = c
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd.program.display()))?;
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return Err(format!("{}: no process id", cmd.program.display()));
    };
    running.with(|s| s.insert(pid));
    Ok(Started {
        child,
        pgid: pid,
        running: running.clone(),
        armed: true,
    })
}

/// How a script run ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    /// Ran past its timeout; its process group was killed.
    TimedOut(Duration),
    /// Could not be started or waited for.
    Failed(String),
}

impl Outcome {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(s) if s.success())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(s) => {
                match (s.code(), std::os::unix::process::ExitStatusExt::signal(s)) {
                    (Some(code), _) => write!(f, "exited with status {code}"),
                    (None, Some(sig)) => write!(f, "killed by signal {sig}"),
                    (None, None) => write!(f, "ended ({s})"),
                }
            }
            Outcome::TimedOut(t) => write!(
                f,
                "timed out after {}; killed",
                humantime::format_duration(*t)
            ),
            Outcome::Failed(e) => f.write_str(e),
        }
    }
}

/// Runs a prepared command to its end, or kills its process group after
/// `timeout`. Never blocks the thread.
pub async fn run_to_completion(
    cmd: &ScriptCommand,
    extra: &[String],
    timeout: Duration,
    running: &Running,
) -> Outcome {
    let mut started = match start(cmd, extra, running) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    match tokio::time::timeout(timeout, started.wait()).await {
        Ok(Ok(status)) => Outcome::Exited(status),
        Ok(Err(e)) => {
            started.kill().await;
            Outcome::Failed(format!("waiting for {}: {e}", cmd.program.display()))
        }
        Err(_) => {
            started.kill().await;
            Outcome::TimedOut(timeout)
        }
    }
}

// ---------------------------------------------------------------------------
// IO half: the tracker.
// ---------------------------------------------------------------------------

/// Tunables of the [`Tracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerOptions {
    /// How often tracked files are re-read (polled; no inotify).
    pub file_poll: Duration,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            file_poll: Duration::from_secs(1),
        }
    }
}

/// Runs the tracked scripts and polls the tracked files; reports changes.
/// Dropping it (or [`Tracker::stop`]) ends its tasks and kills running
/// scripts.
#[derive(Debug)]
pub struct Tracker {
    tasks: Vec<JoinHandle<()>>,
    running: Running,
}

impl Tracker {
    /// Starts tracking for `config` with default options.
    pub fn start(config: &Config) -> (Tracker, mpsc::Receiver<TrackEvent>) {
        Self::start_with(config, TrackerOptions::default())
    }

    /// Starts one task per script that some instance tracks (run every
    /// `interval`, the first run at once) and one task polling the files
    /// some instance tracks. Files are read once before this returns: a
    /// value other than 0 (the start value of [`TrackState`]) is already
    /// queued as an event. Must be called inside a tokio runtime.
    pub fn start_with(
        config: &Config,
        options: TrackerOptions,
    ) -> (Tracker, mpsc::Receiver<TrackEvent>) {
        let tracked_scripts: BTreeSet<&str> = config
            .instances
            .iter()
            .flat_map(|i| i.track_scripts.iter().map(|t| t.name.as_str()))
            .collect();
        let tracked_files: BTreeSet<&str> = config
            .instances
            .iter()
            .flat_map(|i| i.track_files.iter().map(|t| t.name.as_str()))
            .collect();
        let files: Vec<(String, PathBuf)> = config
            .track_files
            .iter()
            .filter(|f| tracked_files.contains(f.name.as_str()))
            .map(|f| (f.name.clone(), f.path.clone()))
            .collect();

        let (tx, rx) = mpsc::channel(64 + files.len());
        let running = Running::default();
        let mut tasks = Vec::new();

        for script in config
            .vrrp_scripts
            .iter()
            .filter(|s| tracked_scripts.contains(s.name.as_str()))
        {
            tasks.push(tokio::spawn(script_loop(
                script.clone(),
                config.global.clone(),
                tx.clone(),
                running.clone(),
            )));
        }

        if !files.is_empty() {
            let mut last = Vec::with_capacity(files.len());
            let mut problems = Vec::with_capacity(files.len());
            for (name, path) in &files {
                let (value, problem) = read_track_file(path);
                if let Some(p) = &problem {
                    warn!("track_file {name}: {p}");
                }
                if value != 0 {
                    info!("track_file {name}: {} = {value}", path.display());
                    let _ = tx.try_send(TrackEvent::File {
                        name: name.clone(),
                        value,
                    });
                }
                last.push(value);
                problems.push(problem);
            }
            tasks.push(tokio::spawn(file_loop(
                files,
                last,
                problems,
                options.file_poll.max(Duration::from_millis(10)),
                tx,
            )));
        }

        (Tracker { tasks, running }, rx)
    }

    /// Ends the tracking tasks and kills the scripts that are running.
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.running.kill_all();
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn script_loop(
    script: VrrpScript,
    global: Global,
    tx: mpsc::Sender<TrackEvent>,
    running: Running,
) {
    let name = &script.name;
    let mut status = ScriptStatus::new(&script);
    let interval = if script.interval.is_zero() {
        VrrpScript::DEFAULT_INTERVAL
    } else {
        script.interval
    };
    let timeout = script.timeout.filter(|t| !t.is_zero()).unwrap_or(interval);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut security_warned = false;
    // Logged when it changes, not at every run.
    let mut last_note: Option<String> = None;
    let mut note = |text: Option<String>, refused: bool| {
        if text != last_note {
            if let Some(t) = &text {
                if refused {
                    error!("VRRP_Script({name}) {t}");
                } else {
                    warn!("VRRP_Script({name}) {t}");
                }
            }
            last_note = text;
        }
    };
    loop {
        ticker.tick().await;
        let user = script_user_spec(script.user.as_deref(), &global);
        let success = match ScriptCommand::prepare(&script.script, user.as_deref(), &global) {
            Err(e) => {
                note(Some(format!("not run: {e}; counted as a failure")), true);
                false
            }
            Ok(cmd) => {
                let outcome = run_to_completion(&cmd, &[], timeout, &running).await;
                let ok = outcome.success();
                if let Some(w) = cmd.security_warning.filter(|_| !security_warned) {
                    warn!("VRRP_Script({name}) {w} (enable_script_security would refuse it)");
                    security_warned = true;
                }
                note((!ok).then(|| format!("`{}` {outcome}", cmd.text)), false);
                ok
            }
        };
        if let Some(up) = status.record(success) {
            if up {
                info!("VRRP_Script({name}) succeeded");
            } else {
                warn!("VRRP_Script({name}) failed");
            }
            let event = TrackEvent::Script {
                name: name.clone(),
                up,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

async fn file_loop(
    files: Vec<(String, PathBuf)>,
    mut last: Vec<i64>,
    mut problems: Vec<Option<String>>,
    period: Duration,
    tx: mpsc::Sender<TrackEvent>,
) {
    let paths: Arc<Vec<PathBuf>> = Arc::new(files.iter().map(|(_, p)| p.clone()).collect());
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        // A stuck file system must not stall the agent's thread.
        let p = Arc::clone(&paths);
        let Ok(reads) = tokio::task::spawn_blocking(move || {
            p.iter().map(|p| read_track_file(p)).collect::<Vec<_>>()
        })
        .await
        else {
            continue;
        };
        for (i, (value, problem)) in reads.into_iter().enumerate() {
            let (Some((name, path)), Some(prev), Some(prev_problem)) =
                (files.get(i), last.get_mut(i), problems.get_mut(i))
            else {
                continue;
            };
            if problem != *prev_problem {
                if let Some(p) = &problem {
                    warn!("track_file {name}: {p}");
                }
                *prev_problem = problem;
            }
            if value != *prev {
                *prev = value;
                info!("track_file {name}: {} = {value}", path.display());
                let event = TrackEvent::File {
                    name: name.clone(),
                    value,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{TrackFile, TrackInterface, TrackRef};

    fn script(name: &str, weight: i32) -> VrrpScript {
        let mut s = VrrpScript::new(name, "/bin/true");
        s.weight = weight;
        s
    }

    fn config_with(inst: Instance, scripts: Vec<VrrpScript>, files: Vec<TrackFile>) -> Config {
        let mut c = Config::new("lb1");
        c.instances.push(inst);
        c.vrrp_scripts = scripts;
        c.track_files = files;
        c
    }

    fn file(name: &str, weight: i32, reverse: bool) -> TrackFile {
        TrackFile {
            name: name.into(),
            path: PathBuf::from(format!("/run/{name}")),
            weight,
            reverse,
        }
    }

    fn effect(c: &Config, s: &TrackState) -> Effect {
        instance_effect(&c.instances[0], c, s)
    }

    #[test]
    fn rise_and_fall_are_counted_in_a_row() {
        let mut s = script("chk", 0);
        s.rise = 3;
        s.fall = 2;
        let mut st = ScriptStatus::new(&s);
        assert!(st.up());
        assert_eq!(st.record(false), None);
        assert_eq!(st.record(true), None, "a success resets the failures");
        assert_eq!(st.record(false), None);
        assert_eq!(st.record(false), Some(false), "second failure in a row");
        assert_eq!(st.record(false), None, "already down");
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(false), None, "a failure resets the successes");
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), Some(true), "third success in a row");
        assert!(st.up());
    }

    #[test]
    fn init_fail_starts_down_and_needs_rise() {
        let mut s = script("chk", 0);
        s.init_fail = true;
        s.rise = 2;
        let mut st = ScriptStatus::new(&s);
        assert!(!st.up());
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), Some(true));

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk"));
        let c = config_with(inst, vec![s], vec![]);
        let mut state = TrackState::new(&c);
        assert_eq!(state.script_up("chk"), Some(false));
        assert!(
            effect(&c, &state).fault,
            "init_fail + weight 0 starts in FAULT"
        );
        assert_eq!(state.record_script_result("chk", true), None);
        assert_eq!(state.record_script_result("chk", true), Some(true));
        assert!(!effect(&c, &state).fault);
    }

    #[test]
    fn rise_and_fall_of_zero_count_as_one() {
        let mut s = script("chk", 0);
        s.rise = 0;
        s.fall = 0;
        let mut st = ScriptStatus::new(&s);
        assert_eq!(st.record(false), Some(false));
        assert_eq!(st.record(true), Some(true));
    }

    #[test]
    fn weight_zero_failing_means_fault() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk_haproxy"));
        inst.track_interfaces.push(TrackInterface::new("eth1"));
        let c = config_with(inst, vec![script("chk_haproxy", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_interface("eth1", true);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 100));
        assert!(e.reasons.is_empty(), "{:?}", e.reasons);

        state.set_script("chk_haproxy", false);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["script chk_haproxy failed"]);

        state.set_script("chk_haproxy", true);
        state.set_interface("eth1", false);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth1 down"]);
    }

    #[test]
    fn unreported_interface_is_down() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_interfaces.push(TrackInterface::new("eth9"));
        let c = config_with(inst, vec![], vec![]);
        let e = effect(&c, &TrackState::new(&c));
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth9 not found"]);
    }

    #[test]
    fn weight_zero_reverse_faults_while_up() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: None,
            reverse: true,
        });
        inst.track_interfaces.push(TrackInterface {
            name: "eth1".into(),
            weight: 0,
            reverse: true,
        });
        let c = config_with(inst, vec![script("chk", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_interface("eth1", false);
        let e = effect(&c, &state);
        assert!(e.fault, "script up + reverse");
        assert_eq!(e.reasons, ["script chk succeeded (reverse)"]);
        state.set_script("chk", false);
        assert!(!effect(&c, &state).fault);
        state.set_interface("eth1", true);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth1 up (reverse)"]);
    }

    #[test]
    fn positive_negative_and_reverse_weights() {
        // (weight, reverse, priority while up, priority while down)
        for (weight, reverse, up, down) in [
            (10, false, 110, 100),
            (-10, false, 100, 90),
            (10, true, 90, 100),
            (-10, true, 100, 110),
        ] {
            let mut s = script("chk", weight);
            s.weight_reverse = reverse;
            let mut inst = Instance::new("VI_1", "eth0", 1);
            inst.track_scripts.push(TrackRef::new("chk"));
            let c = config_with(inst, vec![s], vec![]);
            let mut state = TrackState::new(&c);
            let e = effect(&c, &state);
            assert_eq!((e.fault, e.priority), (false, up), "{weight} {reverse} up");
            state.set_script("chk", false);
            let e = effect(&c, &state);
            assert_eq!(
                (e.fault, e.priority),
                (false, down),
                "{weight} {reverse} down"
            );

            // The same rule for interfaces.
            let mut inst = Instance::new("VI_1", "eth0", 1);
            inst.track_interfaces.push(TrackInterface {
                name: "eth1".into(),
                weight,
                reverse,
            });
            let c = config_with(inst, vec![], vec![]);
            let mut state = TrackState::new(&c);
            state.set_interface("eth1", true);
            assert_eq!(
                effect(&c, &state).priority,
                up,
                "iface {weight} {reverse} up"
            );
            state.set_interface("eth1", false);
            assert_eq!(
                effect(&c, &state).priority,
                down,
                "iface {weight} {reverse} down"
            );
        }
    }

    #[test]
    fn override_replaces_the_script_weight_and_reverse_on_the_ref_counts() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: Some(-30),
            reverse: false,
        });
        let c = config_with(inst, vec![script("chk", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("chk", false);
        let e = effect(&c, &state);
        assert_eq!(
            (e.fault, e.priority),
            (false, 70),
            "override -30, not weight 0"
        );

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: None,
            reverse: true,
        });
        let c = config_with(inst, vec![script("chk", 20)], vec![]);
        let state = TrackState::new(&c);
        assert_eq!(
            effect(&c, &state).priority,
            80,
            "weight 20 reversed while up"
        );
    }

    #[test]
    fn weights_add_up_and_clamp() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 250;
        for n in ["a", "b"] {
            inst.track_scripts.push(TrackRef::new(n));
        }
        let c = config_with(inst, vec![script("a", 3), script("b", 4)], vec![]);
        let state = TrackState::new(&c);
        assert_eq!(effect(&c, &state).priority, 254, "250 + 7 clamps to 254");

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 5;
        for n in ["a", "b"] {
            inst.track_scripts.push(TrackRef::new(n));
        }
        let c = config_with(inst, vec![script("a", -3), script("b", -4)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("a", false);
        assert_eq!(effect(&c, &state).priority, 2);
        state.set_script("b", false);
        let e = effect(&c, &state);
        assert_eq!(e.priority, 1, "5 - 7 clamps to 1");
        assert_eq!(e.reasons, ["script a failed", "script b failed"]);
    }

    #[test]
    fn address_owner_keeps_255() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 255;
        inst.track_scripts.push(TrackRef::new("chk"));
        inst.track_scripts.push(TrackRef::new("gate"));
        let c = config_with(inst, vec![script("chk", -50), script("gate", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("chk", false);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 255));
        state.set_script("gate", false);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (true, 255), "an owner still faults");
    }

    #[test]
    fn track_file_value_times_weight_and_fault_threshold() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 2, false)]);
        let mut state = TrackState::new(&c);
        assert_eq!(effect(&c, &state).priority, 100, "missing/unread = 0");
        state.set_file("x", 5);
        assert_eq!(effect(&c, &state).priority, 110);
        state.set_file("x", -20);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 60));
        assert_eq!(e.reasons, ["file /run/x = -20"]);
        // -126 * 2 = -252, -127 * 2 = -254.
        state.set_file("x", -126);
        assert_eq!(
            effect(&c, &state),
            Effect {
                fault: false,
                priority: 1,
                reasons: vec!["file /run/x = -126".into()]
            }
        );
        state.set_file("x", -127);
        assert!(effect(&c, &state).fault, "-254 is a fault");

        // Exactly -253 is not; -254 is.
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", -253);
        assert!(!effect(&c, &state).fault);
        state.set_file("x", -300);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["file /run/x = -300"]);
        state.set_file("x", i64::MIN);
        assert!(effect(&c, &state).fault, "saturates, no overflow");
        state.set_file("x", i64::MAX);
        assert_eq!(effect(&c, &state).priority, 254);
    }

    #[test]
    fn track_file_weight_zero_reverse_and_override() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 0, false)]);
        let mut state = TrackState::new(&c);
        assert!(!effect(&c, &state).fault);
        state.set_file("x", 1);
        assert!(effect(&c, &state).fault, "weight 0: non-zero is a fault");

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 0, true)]);
        let mut state = TrackState::new(&c);
        assert!(
            effect(&c, &state).fault,
            "weight 0 reverse: zero is a fault"
        );
        state.set_file("x", 3);
        assert!(!effect(&c, &state).fault);

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef {
            name: "x".into(),
            weight_override: Some(-10),
            reverse: false,
        });
        let c = config_with(inst, vec![], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", 3);
        assert_eq!(effect(&c, &state).priority, 70);

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 10, true)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", 3);
        assert_eq!(effect(&c, &state).priority, 70, "reverse negates");
    }

    #[test]
    fn events_apply_to_the_state() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk"));
        let c = config_with(inst, vec![script("chk", 0)], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        assert!(state.apply(&TrackEvent::Script {
            name: "chk".into(),
            up: false
        }));
        assert!(!state.apply(&TrackEvent::Script {
            name: "chk".into(),
            up: false
        }));
        assert!(!state.apply(&TrackEvent::Script {
            name: "nope".into(),
            up: false
        }));
        assert!(state.apply(&TrackEvent::File {
            name: "x".into(),
            value: 4
        }));
        assert_eq!(state.file_value("x"), 4);
        assert!(!state.apply(&TrackEvent::File {
            name: "x".into(),
            value: 4
        }));
    }

    #[test]
    fn unknown_references_do_not_panic() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("ghost"));
        inst.track_files.push(TrackRef::new("phantom"));
        let c = config_with(inst, vec![], vec![]);
        let e = effect(&c, &TrackState::new(&c));
        assert_eq!((e.fault, e.priority), (false, 100));
        assert_eq!(e.reasons.len(), 2);
    }

    #[test]
    fn track_values_parse_like_keepalived() {
        assert_eq!(parse_track_value("42\n"), Some(42));
        assert_eq!(parse_track_value("  -300 trailing"), Some(-300));
        assert_eq!(parse_track_value("+7"), Some(7));
        assert_eq!(parse_track_value("12abc"), Some(12));
        assert_eq!(parse_track_value(""), None);
        assert_eq!(parse_track_value("-"), None);
        assert_eq!(parse_track_value("abc 5"), None);
        assert_eq!(parse_track_value("99999999999999999999999"), Some(i64::MAX));
        assert_eq!(
            parse_track_value("-99999999999999999999999"),
            Some(i64::MIN)
        );
        assert_eq!(
            read_track_file(Path::new("/nonexistent/baton/x")),
            (0, None)
        );
    }

    #[test]
    fn commands_split_by_the_model_rule() {
        assert_eq!(split_command("/bin/x a  b"), ["/bin/x", "a", "b"]);
        assert_eq!(split_command("/bin/x 'a b' c"), ["/bin/x", "a b", "c"]);
        assert_eq!(split_command("  /bin/x ''  "), ["/bin/x", ""]);
        assert_eq!(
            split_command("/bin/x 'unclosed arg"),
            ["/bin/x", "unclosed arg"]
        );
        assert_eq!(split_command("/bin/x \"a b\""), ["/bin/x", "\"a", "b\""]);
        assert!(split_command("   ").is_empty());
    }

    #[test]
    fn insecure_modes_are_named() {
        assert_eq!(insecure_reason(0, 0o100755), None);
        assert!(insecure_reason(0, 0o100777).unwrap().contains("everyone"));
        assert!(insecure_reason(0, 0o100775).unwrap().contains("group"));
        assert!(insecure_reason(65534, 0o100755)
            .unwrap()
            .contains("owned by"));
        assert!(check_script_security("", None).is_err());
        assert!(check_script_security("no-such-program-baton", None)
            .unwrap_err()
            .contains("not found in PATH"));
    }
}
