//! Notifications of state changes: the `notify_*` scripts, the generic
//! `notify` script and the notify FIFO, delivered strictly in the order the
//! changes happened.
//!
//! keepalived starts notify scripts without waiting for them, so two quick
//! transitions can reach the outside world in the wrong order. Here one task
//! takes events from an unbounded queue and handles each to its end (FIFO
//! line, specific script, generic script; each script killed after a
//! timeout) before it looks at the next. Callers never wait.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::Mode;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::script::{run_to_completion, script_user_spec, start, Running, ScriptCommand};
use crate::config::model::{Global, Notify};
use crate::vrrp::State;

/// How long a notify script may run before its process group is killed.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long, after `notify_fifo_script` starts, a FIFO without a reader is
/// waited for (the script needs a moment to open it).
const FIFO_READER_GRACE: Duration = Duration::from_secs(2);

/// How long a full FIFO (a slow reader) is waited for before a line is
/// dropped.
const FIFO_FULL_WAIT: Duration = Duration::from_secs(1);

/// Whose state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instance,
    Group,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Instance => "INSTANCE",
            Kind::Group => "GROUP",
        }
    }
}

/// One state change to deliver.
#[derive(Debug)]
struct Job {
    kind: Kind,
    name: String,
    /// `MASTER`, `BACKUP`, `FAULT`, `STOP`.
    state: &'static str,
    priority: u8,
    /// (`notify_master`, its command line).
    specific: Option<(&'static str, String)>,
    generic: Option<String>,
}

/// The state word of keepalived's notify arguments and FIFO lines, and the
/// specific script for it. INIT is reached by stopping: `STOP`.
fn state_word(state: State) -> &'static str {
    match state {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

fn specific_script(notify: &Notify, state: State) -> Option<(&'static str, String)> {
    let (key, cmd) = match state {
        State::Master => ("notify_master", &notify.master),
        State::Backup => ("notify_backup", &notify.backup),
        State::Fault => ("notify_fault", &notify.fault),
        State::Initialize => ("notify_stop", &notify.stop),
    };
    cmd.clone().map(|c| (key, c))
}

/// keepalived's FIFO line: `INSTANCE "VI_1" MASTER 100` and a newline.
pub fn fifo_line(kind_word: &str, name: &str, state_word: &str, priority: u8) -> String {
    format!("{kind_word} \"{name}\" {state_word} {priority}\n")
}

/// Delivers notifications in order; see the module doc. Keep one for the
/// agent's life (notify commands come with each call, so a reload needs no
/// new one) and call [`Notifier::close`] on shutdown so that the
/// `notify_stop` scripts run before the agent exits.
#[derive(Debug)]
pub struct Notifier {
    queue: Option<mpsc::UnboundedSender<Job>>,
    worker: Option<JoinHandle<()>>,
    /// The `notify_fifo_script` process group.
    fifo_script: Running,
    fifo_script_task: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Starts the delivery task; creates `notify_fifo` (mode 0600) if it is
    /// missing and starts `notify_fifo_script` with the FIFO's path as its
    /// last argument. Must be called inside a tokio runtime.
    pub fn new(global: &Global) -> Notifier {
        Self::with_timeout(global, DEFAULT_SCRIPT_TIMEOUT)
    }

    /// [`Notifier::new`] with another timeout for each notify script.
    pub fn with_timeout(global: &Global, script_timeout: Duration) -> Notifier {
        let fifo_script = Running::default();
        let mut fifo_script_task = None;
        let mut fifo = None;
        match (&global.notify_fifo, &global.notify_fifo_script) {
            (None, Some(_)) => {
                warn!("notify_fifo_script is set without notify_fifo; not started");
            }
            (None, None) => {}
            (Some(path), script) => match ensure_fifo(path) {
                Err(e) => error!("notify_fifo {}: {e}; no FIFO notifications", path.display()),
                Ok(()) => {
                    let mut writer = FifoWriter::new(path.clone());
                    if let Some(cmd) = script {
                        if let Some(task) = start_fifo_script(cmd, path, global, &fifo_script) {
                            fifo_script_task = Some(task);
                            writer.grace_until = Some(Instant::now() + FIFO_READER_GRACE);
                        }
                    }
                    fifo = Some(writer);
                }
            },
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = tokio::spawn(deliver(rx, global.clone(), fifo, script_timeout));
        Notifier {
            queue: Some(tx),
            worker: Some(worker),
            fifo_script,
            fifo_script_task,
        }
    }

    /// An instance changed state: `notify_master` / `_backup` / `_fault` /
    /// `_stop` (INIT, reached by stopping, is STOP), then `notify` with
    /// `INSTANCE NAME STATE PRIORITY`, and a FIFO line. Never waits.
    pub fn state_change(&self, instance_name: &str, notify: &Notify, state: State, priority: u8) {
        self.push(Job {
            kind: Kind::Instance,
            name: instance_name.to_string(),
            state: state_word(state),
            priority,
            specific: specific_script(notify, state),
            generic: notify.generic.clone(),
        });
    }

    /// A sync group changed state: as [`Notifier::state_change`] with
    /// `GROUP` and priority 0. STOP applies to instances only (keepalived),
    /// so INIT is not notified for a group.
    pub fn group_state_change(&self, group_name: &str, notify: &Notify, state: State) {
        if state == State::Initialize {
            debug!("({group_name}) group stopped; STOP is notified for instances only");
            return;
        }
        self.push(Job {
            kind: Kind::Group,
            name: group_name.to_string(),
            state: state_word(state),
            priority: 0,
            specific: specific_script(notify, state),
            generic: notify.generic.clone(),
        });
    }

    fn push(&self, job: Job) {
        let sent = self.queue.as_ref().map(|q| q.send(job));
        if !matches!(sent, Some(Ok(()))) {
            error!("notifier is not running; notification dropped");
        }
    }

    /// Delivers everything queued (each script still bounded by its
    /// timeout), then kills `notify_fifo_script`.
    pub async fn close(mut self) {
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
        self.fifo_script.kill_all();
        if let Some(task) = self.fifo_script_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Notifier {
    /// Without [`Notifier::close`], what is queued is still delivered while
    /// the runtime lives; the FIFO script is killed now.
    fn drop(&mut self) {
        self.fifo_script.kill_all();
    }
}

/// Creates the FIFO (0600) if missing, then checks it with
/// [`check_fifo`]: a symlink, anything but a FIFO, or a FIFO that another
/// user owns or that others may write is refused.
fn ensure_fifo(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => check_fifo(&m)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // mkfifo never follows a symlink (EEXIST).
            nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
                .map_err(|e| format!("cannot create the FIFO: {e}"))?;
            info!("notify_fifo {}: created", path.display());
        }
        Err(e) => return Err(e.to_string()),
    }
    // Again on an fd of the path itself (O_PATH opens nothing: no reader
    // is needed and no device is touched), so a swap in between is seen.
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| e.to_string())?;
    check_fifo(&f.metadata().map_err(|e| e.to_string())?)
}

/// What the notify FIFO must be: a FIFO (a symlink is never followed),
/// owned by root or by this agent's user, not writable by group or others
/// (who could otherwise feed its reader false state changes or replace it).
fn check_fifo(m: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let t = m.file_type();
    if t.is_symlink() {
        return Err("is a symbolic link (not followed); refused".into());
    }
    if !t.is_fifo() {
        return Err("exists and is not a FIFO; refused".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if m.uid() != 0 && m.uid() != euid {
        return Err(format!(
            "is owned by uid {}, not root or this agent; refused",
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "is writable by group or others (mode {:04o}); refused",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

fn start_fifo_script(
    cmd: &str,
    fifo: &Path,
    global: &Global,
    running: &Running,
) -> Option<JoinHandle<()>> {
    let user = script_user_spec(None, global);
    let prepared = match ScriptCommand::prepare(cmd, user.as_deref(), global) {
        Ok(p) => p,
        Err(e) => {
            error!("notify_fifo_script: {e}; not started");
            return None;
        }
    };
    if let Some(w) = &prepared.security_warning {
        warn!(
            "notify_fifo_script: {} (enable_script_security would refuse it)",
            w.replacen("refusing to run", "would refuse to run", 1)
        );
    }
    let extra = [fifo.to_string_lossy().into_owned()];
    let mut started = match start(&prepared, &extra, running) {
        Ok(s) => s,
        Err(e) => {
            error!("notify_fifo_script: {e}");
            return None;
        }
    };
    info!("notify_fifo_script `{cmd}` started (pid {})", started.pid());
    Some(tokio::spawn(async move {
        match started.wait().await {
            Ok(status) if status.success() => info!("notify_fifo_script `{}` ended", prepared.text),
            Ok(status) => warn!("notify_fifo_script `{}` ended: {status}", prepared.text),
            Err(e) => warn!("notify_fifo_script `{}`: {e}", prepared.text),
        }
    }))
}

/// The delivery task: one job at a time, to its end.
async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Job>,
    global: Global,
    mut fifo: Option<FifoWriter>,
    timeout: Duration,
) {
    let running = Running::default();
    while let Some(job) = rx.recv().await {
        if let Some(f) = fifo.as_mut() {
            f.write_line(&fifo_line(
                job.kind.word(),
                &job.name,
                job.state,
                job.priority,
            ))
            .await;
        }
        if let Some((key, cmd)) = &job.specific {
            run_notify(&global, &job.name, key, cmd, &[], timeout, &running).await;
        }
        if let Some(cmd) = &job.generic {
            let extra = [
                job.kind.word().to_string(),
                job.name.clone(),
                job.state.to_string(),
                job.priority.to_string(),
            ];
            run_notify(&global, &job.name, "notify", cmd, &extra, timeout, &running).await;
        }
    }
}

async fn run_notify(
    global: &Global,
    name: &str,
    key: &str,
    cmd: &str,
    extra: &[String],
    timeout: Duration,
    running: &Running,
) {
    let user = script_user_spec(None, global);
    let prepared = match ScriptCommand::prepare(cmd, user.as_deref(), global) {
        Ok(p) => p,
        Err(e) => {
            error!("({name}) {key}: {e}; not run");
            return;
        }
    };
    if let Some(w) = &prepared.security_warning {
        if first_warning(&format!("{key} {cmd}")) {
            warn!(
                "({name}) {key}: {} (enable_script_security would refuse it; said once)",
                w.replacen("refusing to run", "would refuse to run", 1)
            );
        }
    }
    let outcome = run_to_completion(&prepared, extra, timeout, running).await;
    if !outcome.success() {
        warn!("({name}) {key} `{cmd}` {outcome}");
    }
}

/// Writes lines to the notify FIFO without ever blocking: opened
/// non-blocking for writing (which fails when no one reads it), kept open
/// while a reader is there. A line that cannot be written is dropped; the
/// first drop of a run is logged.
#[derive(Debug)]
struct FifoWriter {
    path: PathBuf,
    file: Option<std::fs::File>,
    complained: bool,
    /// Until then, a missing reader is waited for (the FIFO script starts).
    grace_until: Option<Instant>,
}

impl FifoWriter {
    fn new(path: PathBuf) -> Self {
        FifoWriter {
            path,
            file: None,
            complained: false,
            grace_until: None,
        }
    }

    fn complain(&mut self, why: &str) {
        if !self.complained {
            warn!(
                "notify_fifo {}: {why}; notifications are dropped until it can be written",
                self.path.display()
            );
            self.complained = true;
        }
    }

    /// Opens the FIFO for writing, never through a symlink, and only if
    /// [`check_fifo`] accepts it (looked at before the open, so nothing
    /// else is opened, and on the open fd).
    async fn open(&mut self) -> io::Result<std::fs::File> {
        let refused = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        loop {
            check_fifo(&std::fs::symlink_metadata(&self.path)?).map_err(refused)?;
            let r = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
                .open(&self.path)
                .and_then(|f| {
                    check_fifo(&f.metadata()?).map_err(refused)?;
                    Ok(f)
                });
            match r {
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => match self.grace_until {
                    Some(until) if Instant::now() < until => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    _ => return Err(e),
                },
                other => return other,
            }
        }
    }

    async fn write_line(&mut self, line: &str) {
        // Twice: a reader that went away and came back is found again.
        for _ in 0..2 {
            let mut file = match self.file.take() {
                Some(f) => f,
                None => match self.open().await {
                    Ok(f) => f,
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                        self.complain("no process reads it");
                        return;
                    }
                    Err(e) => {
                        self.complain(&e.to_string());
                        return;
                    }
                },
            };
            match write_nonblocking(&mut file, line.as_bytes()).await {
                Ok(()) => {
                    if self.complained {
                        info!("notify_fifo {}: written again", self.path.display());
                        self.complained = false;
                    }
                    self.file = Some(file);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => continue,
                Err(e) => {
                    self.complain(&e.to_string());
                    return;
                }
            }
        }
        self.complain("no process reads it");
    }
}

/// Writes all of `bytes` to a non-blocking file, waiting a little while it
/// is full. Lines are short (below PIPE_BUF), so each is written whole.
async fn write_nonblocking(file: &mut std::fs::File, bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + FIFO_FULL_WAIT;
    let mut rest = bytes;
    while !rest.is_empty() {
        match file.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the reader is not keeping up (FIFO full)",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// True the first time `what` is seen in this process: an insecure notify
/// script is reported once, not at every notification.
fn first_warning(what: &str) -> bool {
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<std::collections::BTreeSet<String>>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
        .lock()
        .map(|mut s| s.insert(what.to_string()))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_lines_are_keepalived_s() {
        assert_eq!(
            fifo_line("INSTANCE", "VI_1", "MASTER", 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            fifo_line("GROUP", "G1", "BACKUP", 0),
            "GROUP \"G1\" BACKUP 0\n"
        );
    }

    #[test]
    fn states_pick_their_script() {
        let n = Notify {
            master: Some("m".into()),
            backup: Some("b".into()),
            fault: Some("f".into()),
            stop: Some("s".into()),
            generic: None,
        };
        for (state, key, cmd, word) in [
            (State::Master, "notify_master", "m", "MASTER"),
            (State::Backup, "notify_backup", "b", "BACKUP"),
            (State::Fault, "notify_fault", "f", "FAULT"),
            (State::Initialize, "notify_stop", "s", "STOP"),
        ] {
            assert_eq!(specific_script(&n, state), Some((key, cmd.to_string())));
            assert_eq!(state_word(state), word);
        }
        assert_eq!(specific_script(&Notify::default(), State::Master), None);
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mkfifo_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).unwrap();
        // chmod: the umask does not narrow it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes one line through a FifoWriter at `path`; true if written.
    fn write_one(path: &Path) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut w = FifoWriter::new(path.to_path_buf());
            w.write_line("INSTANCE \"VI_1\" MASTER 100\n").await;
            !w.complained
        })
    }

    #[test]
    fn a_symlink_at_notify_fifo_is_refused_and_not_written_through() {
        let d = tmpdir("link");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = d.join("notify.fifo");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = ensure_fifo(&path).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        // The writer too (the symlink planted after the start).
        assert!(!write_one(&path));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A symlink to a good FIFO with a reader: still not followed.
        let real = d.join("real.fifo");
        mkfifo_mode(&real, 0o600);
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&real)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        assert!(ensure_fifo(&path).is_err());
        assert!(!write_one(&path));
        assert!(write_one(&real), "the FIFO itself is written");
        drop(reader);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_regular_file_at_notify_fifo_is_refused_and_untouched() {
        let d = tmpdir("regular");
        let path = d.join("notify.fifo");
        std::fs::write(&path, b"precious").unwrap();
        let err = ensure_fifo(&path).unwrap_err();
        assert!(err.contains("not a FIFO"), "{err}");
        assert!(!write_one(&path));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_fifo_others_may_write_or_own_is_refused() {
        let d = tmpdir("perm");
        let good = d.join("good.fifo");
        assert_eq!(ensure_fifo(&good), Ok(()), "created");
        assert_eq!(ensure_fifo(&good), Ok(()), "accepted as it is");
        let open = d.join("open.fifo");
        mkfifo_mode(&open, 0o666);
        let err = ensure_fifo(&open).unwrap_err();
        assert!(err.contains("writable by group or others"), "{err}");
        let group = d.join("group.fifo");
        mkfifo_mode(&group, 0o620);
        assert!(ensure_fifo(&group).is_err());
        // With a reader there, the writer still refuses it.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&open)
            .unwrap();
        assert!(!write_one(&open));
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut &reader, &mut buf);
        assert!(!matches!(n, Ok(n) if n > 0), "nothing written to it");
        drop(reader);
        if nix::unistd::geteuid().is_root() {
            let theirs = d.join("theirs.fifo");
            mkfifo_mode(&theirs, 0o600);
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let err = ensure_fifo(&theirs).unwrap_err();
            assert!(err.contains("owned by uid 65534"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
