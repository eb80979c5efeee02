//! Running scripts, shared by tracking, notify and data sync's on_change:
//! the command-line rule ([`split_command`]), who runs a script
//! ([`resolve_user`], `script_user`), keepalived's `enable_script_security`
//! checks, and starting a script in its own process group with a timeout
//! after which the whole group is killed ([`run_to_completion`]).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Group, Pid, Uid, User};

use crate::config::model::Global;

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

// ---------------------------------------------------------------------------
// Users, resolved when the configuration is loaded.
// ---------------------------------------------------------------------------

/// The answers of the name service (users and groups) for every user a
/// configuration names, looked up when it is loaded, off the protocol
/// thread: a look-up may go to LDAP or NIS and hang, and scripts start on
/// the protocol thread. Installed with [`UserTable::install`]; a name
/// missing from the installed table is looked up on the spot (and logged).
#[derive(Debug, Clone, Default)]
pub struct UserTable {
    users: std::collections::HashMap<String, Result<RunAs, String>>,
    keepalived_script: bool,
}

static USERS: Mutex<Option<UserTable>> = Mutex::new(None);

impl UserTable {
    /// Look up every user `config` names: `script_user`, each script's
    /// `user`, each synced file's `owner`, and whether `keepalived_script`
    /// exists. Blocking (the name service): call it where blocking is fine.
    pub fn resolve(config: &crate::config::model::Config) -> UserTable {
        let specs = config
            .global
            .script_user
            .iter()
            .chain(config.vrrp_scripts.iter().filter_map(|s| s.user.as_ref()))
            .chain(config.sync.iter().filter_map(|s| s.owner.as_ref()));
        let mut users = std::collections::HashMap::new();
        for spec in specs {
            users
                .entry(spec.clone())
                .or_insert_with(|| lookup_user(spec));
        }
        // Only a configuration that runs commands needs the default user;
        // asking the name service otherwise loads its modules (libnss_*,
        // about 0.3 MB) into a daemon that never uses them.
        let runs_commands = !config.vrrp_scripts.is_empty()
            || config.global.notify_fifo_script.is_some()
            || config.instances.iter().any(|i| !i.notify.is_empty())
            || config.sync_groups.iter().any(|g| !g.notify.is_empty())
            || config.sync.iter().any(|s| s.on_change.is_some());
        UserTable {
            users,
            keepalived_script: runs_commands
                && matches!(User::from_name("keepalived_script"), Ok(Some(_))),
        }
    }

    /// Make this table the one [`resolve_user`] and [`script_user_spec`]
    /// answer from.
    pub fn install(self) {
        *USERS.lock().unwrap_or_else(|e| e.into_inner()) = Some(self);
    }

    fn with<R>(f: impl FnOnce(Option<&UserTable>) -> R) -> R {
        f(USERS.lock().unwrap_or_else(|e| e.into_inner()).as_ref())
    }
}

/// Resolves `user`, `user:group` (or keepalived's `user group`); the group
/// defaults to the user's own. From the installed [`UserTable`] when it
/// has the name (no name-service call), else looked up now.
pub fn resolve_user(spec: &str) -> Result<RunAs, String> {
    if let Some(known) = UserTable::with(|t| t.and_then(|t| t.users.get(spec).cloned())) {
        return known;
    }
    if UserTable::with(|t| t.is_some()) {
        tracing::debug!("user \"{spec}\" was not resolved at load; looking it up now");
    }
    lookup_user(spec)
}

/// The name-service look-up behind [`resolve_user`].
fn lookup_user(spec: &str) -> Result<RunAs, String> {
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
            let exists = UserTable::with(|t| t.map(|t| t.keepalived_script))
                .unwrap_or_else(|| matches!(User::from_name("keepalived_script"), Ok(Some(_))));
            exists.then(|| "keepalived_script".to_string())
        })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The file `exec` would run for a command's first word: as given when it
/// has a `/` (and is an executable regular file), else the first
/// executable of that name in `$PATH`.
pub fn resolve_program(word: &str) -> Result<PathBuf, String> {
    if word.is_empty() {
        return Err("empty command".into());
    }
    if word.contains('/') {
        return match std::fs::metadata(word) {
            Ok(m) if m.is_file() && m.mode() & 0o111 != 0 => Ok(PathBuf::from(word)),
            Ok(_) => Err(format!("{word} is not an executable file")),
            Err(e) => Err(format!("{word}: {e}")),
        };
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
/// Why a path lets a non-root user change what root runs, if it does.
/// As keepalived's `check_script_secure`: a sticky directory (like /tmp) is
/// safe even if everyone may write it (nobody can replace another's file),
/// and a group-writable path is safe when its group is root.
fn insecure_reason(uid: u32, gid: u32, mode: u32, is_dir: bool) -> Option<String> {
    let sticky_dir = is_dir && mode & 0o1000 != 0;
    if uid != 0 {
        let owner = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| format!("\"{}\"", u.name))
            .unwrap_or_else(|| format!("uid {uid}"));
        return Some(format!("is owned by {owner}"));
    }
    if mode & 0o002 != 0 && !sticky_dir {
        return Some(format!(
            "is writable by everyone (mode {:04o})",
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 && gid != 0 && !sticky_dir {
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
        if let Some(why) = insecure_reason(meta.uid(), meta.gid(), meta.mode(), meta.is_dir()) {
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
    start_with_env(cmd, extra, &[], running)
}

/// As [`start`], with these variables added to the script's environment.
pub fn start_with_env(
    cmd: &ScriptCommand,
    extra: &[String],
    env: &[(&str, String)],
    running: &Running,
) -> Result<Started, String> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
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
    run_to_completion_with_env(cmd, extra, &[], timeout, running).await
}

/// As [`run_to_completion`], with these variables added to the
/// environment (data sync's `BATON_SYNC_NAME`, `BATON_SYNC_VERSION`).
pub async fn run_to_completion_with_env(
    cmd: &ScriptCommand,
    extra: &[String],
    env: &[(&str, String)],
    timeout: Duration,
    running: &Running,
) -> Outcome {
    let mut started = match start_with_env(cmd, extra, env, running) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_named_by_the_configuration_are_answered_from_the_table() {
        let mut config = crate::config::model::Config::new("t");
        config.global.script_user = Some("root".into());
        let mut table = UserTable::resolve(&config);
        assert_eq!(
            table.users.get("root").cloned().unwrap().unwrap().uid,
            Uid::from_raw(0)
        );
        // A user the name service does not know, planted in the table: the
        // answer comes from the table, so no look-up happened.
        let ghost = RunAs {
            user: "baton-ghost-user".into(),
            uid: Uid::from_raw(4242),
            gid: Gid::from_raw(4242),
        };
        table
            .users
            .insert("baton-ghost-user".into(), Ok(ghost.clone()));
        table.install();
        assert_eq!(resolve_user("baton-ghost-user"), Ok(ghost));
        // A name missing from the table is looked up on the spot.
        assert!(resolve_user("baton-no-such-user-at-all").is_err());
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
        assert_eq!(insecure_reason(0, 0, 0o100755, false), None);
        assert!(insecure_reason(0, 0, 0o100777, false)
            .unwrap()
            .contains("everyone"));
        assert!(insecure_reason(0, 100, 0o100775, false)
            .unwrap()
            .contains("group"));
        // keepalived's exemptions: root's group, sticky directories (/tmp).
        assert_eq!(insecure_reason(0, 0, 0o100775, false), None);
        assert_eq!(insecure_reason(0, 0, 0o41777, true), None);
        assert!(insecure_reason(0, 0, 0o40777, true)
            .unwrap()
            .contains("everyone"));
        assert!(insecure_reason(65534, 0, 0o100755, false)
            .unwrap()
            .contains("owned by"));
        assert!(check_script_security("", None).is_err());
        assert!(check_script_security("no-such-program-baton", None)
            .unwrap_err()
            .contains("not found in PATH"));
    }
}
