//! The file side of data sync: reading synced files, noticing changes,
//! writing new versions atomically, keeping conflict copies, and the state
//! file that remembers each entry's version across restarts.
//!
//! One worker thread owns all of it, so file IO never blocks the event
//! loop and a write is never mistaken for a local edit (the worker records
//! what it wrote before it polls again). Changes are noticed by polling
//! every [`POLL_INTERVAL`] (200 ms): the file's device, inode, size, mtime
//! and ctime; the content is read and hashed only when one of those moved.
//! Polling, not inotify, because it needs nothing from the kernel, follows
//! editors that replace a file by rename, and sees a file that does not
//! exist yet or whose directory is replaced.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::sync::{digest, Content, Digest, Observed, Persisted};
use crate::cluster::SyncVersion;

/// How often the worker looks at the synced files.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One synced file as the worker needs it.
#[derive(Debug, Clone)]
pub struct FsEntry {
    pub name: String,
    pub path: PathBuf,
    pub mode: Option<u32>,
    /// Owner (uid, gid) given to the written file.
    pub owner: Option<(u32, u32)>,
    pub max_size: u64,
}

/// Open `path` for reading without following a symbolic link at its last
/// component and only if it is a regular file: a symlink, FIFO, device,
/// socket or directory is refused with an error that says what it is (a
/// FIFO is never waited on and a device never read). Ok(None): missing.
pub fn open_regular(path: &Path) -> io::Result<Option<File>> {
    // Looked at first so that a device or FIFO is not even opened; the
    // fstat after the open closes the race with a swap in between.
    match fs::symlink_metadata(path) {
        Ok(m) => refuse_unless_regular(&m)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused("a symbolic link (not followed)"))
        }
        Err(e) => return Err(e),
    };
    refuse_unless_regular(&f.metadata()?)?;
    Ok(Some(f))
}

fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file; refused"),
    )
}

fn refuse_unless_regular(m: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_symlink() {
        "a symbolic link (not followed)"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "something else"
    };
    Err(refused(what))
}

/// Read a file whole, unless it is missing or larger than `max`. A path
/// that is not a regular file (a symlink included) is an error.
pub fn read_file(path: &Path, max: u64) -> io::Result<Observed> {
    let Some(f) = open_regular(path)? else {
        return Ok(Observed::Missing);
    };
    let len = f.metadata()?.len();
    if len > max {
        return Ok(Observed::TooLarge(len));
    }
    let mut buf = Vec::with_capacity(len as usize);
    // One byte more than allowed tells a file that grew while read.
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Ok(Observed::TooLarge(buf.len() as u64));
    }
    Ok(Observed::Content(Content::new(buf)))
}

/// A new file for writing at an unpredictable name in `dir`, made by this
/// call (`O_CREAT|O_EXCL|O_NOFOLLOW`: nothing planted there is followed,
/// truncated or reused), mode 0600.
fn create_temp(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{}.baton-{}.tmp",
            file_name.to_string_lossy(),
            random_hex()?
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// 16 hex digits from the kernel's random source.
fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Replace `path` with `content` atomically: a temporary file in the same
/// directory (unpredictable name, created exclusively, never through a
/// symlink, 0600 until it gets its mode), written and fsynced, renamed
/// over the file, then the directory fsynced. A symlink at `path` is
/// replaced, never followed. `mode` None keeps the current file's
/// permission bits (0644 for a new file). On any error the old file is
/// untouched and the temporary file is removed.
pub fn write_atomic(path: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic_owned(path, content, mode, None)
}

/// A private file (0600) written as [`write_atomic`] does, its directory
/// created (0700) if missing: the state files (`sync-state.json`, the VIP
/// ledger).
pub fn write_private(path: &Path, content: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    write_atomic(path, content, Some(0o600))
}

/// Read a private state file written by [`write_private`]: None when it is
/// missing, Err when it is not a regular file (never followed) or larger
/// than `max`.
pub fn read_private(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    match read_file(path, max)? {
        Observed::Content(c) => Ok(Some(c.bytes.to_vec())),
        Observed::Missing => Ok(None),
        Observed::TooLarge(n) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n} bytes, more than {max}"),
        )),
    }
}

/// As [`write_atomic`], and the file gets `owner` (uid, gid) before it
/// replaces the old one (so it is never visible with the wrong owner).
pub fn write_atomic_owned(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = parent(path)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mode = match mode {
        Some(m) => m,
        // The mode of what is there, never of what a symlink points to.
        None => match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => m.permissions().mode() & 0o7777,
            _ => 0o644,
        },
    };
    let (tmp, mut f) = create_temp(&dir, file_name)?;
    let result = (|| {
        f.write_all(content)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        // Created 0600; the final mode is set last (chown may have cleared
        // set-id bits).
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    drop(f);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn parent(path: &Path) -> io::Result<PathBuf> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p.to_path_buf()),
        _ => Ok(PathBuf::from(".")),
    }
}

/// Keep the current content of `path` beside it as
/// `<path>.conflict-<epoch>` (`.conflict-<epoch>.N` when that exists).
pub fn keep_conflict(path: &Path, content: &[u8], epoch: u64) -> io::Result<PathBuf> {
    let base = format!("{}.conflict-{epoch}", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    // symlink_metadata: a dangling symlink is a taken name too.
    while fs::symlink_metadata(&candidate).is_ok() {
        if n > 999 {
            return Err(io::Error::other(format!(
                "{base}: too many conflict copies"
            )));
        }
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    write_atomic(&candidate, content, Some(0o600))?;
    Ok(candidate)
}

/// Write a version: keep the current file as a conflict copy when it is
/// neither the new content nor `keep_unless`, then replace it. Returns the
/// conflict copy's path, if one was kept.
pub fn apply_version(
    entry: &FsEntry,
    content: &[u8],
    keep_unless: Option<Digest>,
    conflict_epoch: u64,
) -> io::Result<Option<PathBuf>> {
    let new = digest(content);
    let kept = match read_file(&entry.path, entry.max_size)? {
        Observed::Content(old) => {
            let (d, old) = (old.digest, old.bytes);
            if d != new && Some(d) != keep_unless {
                Some(keep_conflict(&entry.path, &old, conflict_epoch)?)
            } else {
                None
            }
        }
        // Too large to be any synced version: always kept.
        Observed::TooLarge(_) => {
            let mut old = Vec::new();
            if let Some(mut f) = open_regular(&entry.path)? {
                f.read_to_end(&mut old)?;
            }
            Some(keep_conflict(&entry.path, &old, conflict_epoch)?)
        }
        Observed::Missing => None,
    };
    write_atomic_owned(&entry.path, content, entry.mode, entry.owner)?;
    Ok(kept)
}

/// The state file: each entry's version, by name.
pub fn load_state(path: &Path) -> BTreeMap<String, Persisted> {
    match read_private(path, STATE_FILE_MAX) {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Ok(None) => BTreeMap::new(),
        Err(e) => {
            tracing::warn!("sync: state file {}: {e}; not used", path.display());
            BTreeMap::new()
        }
    }
}

/// The largest state file read back (far above any real one).
pub const STATE_FILE_MAX: u64 = 16 << 20;

pub fn save_state(path: &Path, state: &BTreeMap<String, Persisted>) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    write_private(path, &bytes)
}

/// From the worker to the event loop.
#[derive(Debug)]
pub enum FsEvent {
    /// The file changed (or was read for the first time).
    Observed { name: String, observed: Observed },
    /// A `Write` finished: Ok(conflict copy kept, if any) or the error.
    Written {
        name: String,
        version: SyncVersion,
        result: Result<Option<String>, String>,
    },
}

/// From the event loop to the worker.
#[derive(Debug)]
pub enum FsCommand {
    Write {
        name: String,
        version: SyncVersion,
        content: Arc<[u8]>,
        keep_unless: Option<Digest>,
        conflict_epoch: u64,
    },
    /// Store the state file (written in order with the writes).
    SaveState(BTreeMap<String, Persisted>),
    /// A reload's entries: new ones are read at the next poll, gone ones
    /// are no longer watched (their files stay as they are).
    SetEntries(Vec<FsEntry>),
}

/// What reaches the worker thread: the event loop's commands, and the
/// watcher's word that something happened in a directory it watches.
#[derive(Debug)]
enum Msg {
    Cmd(FsCommand),
    /// Entries (by index) whose directory saw an event naming their file.
    Touched(Vec<(usize, Notice)>),
}

/// The worker's handle; dropping it stops the thread (and the watcher).
pub struct Worker {
    tx: Arc<std_mpsc::Sender<Msg>>,
}

impl Worker {
    /// Start the worker: it reads every file at once (an `Observed` per
    /// entry), then follows changes (inotify, and the poll beside it).
    pub fn start(
        entries: Vec<FsEntry>,
        state_file: PathBuf,
    ) -> io::Result<(Worker, mpsc::UnboundedReceiver<FsEvent>)> {
        Self::start_polling(entries, state_file, POLL_INTERVAL)
    }

    fn start_polling(
        entries: Vec<FsEntry>,
        state_file: PathBuf,
        poll: Duration,
    ) -> io::Result<(Worker, mpsc::UnboundedReceiver<FsEvent>)> {
        let (tx, cmds) = std_mpsc::channel();
        let (events, rx) = mpsc::unbounded_channel();
        // The watcher holds the sender weakly: dropping the handle closes
        // the channel, which ends the worker, which ends the watcher.
        let tx = Arc::new(tx);
        let weak = Arc::downgrade(&tx);
        std::thread::Builder::new()
            .name("baton-syncfs".into())
            .spawn(move || worker(entries, state_file, cmds, weak, events, poll))?;
        Ok((Worker { tx }, rx))
    }

    pub fn send(&self, cmd: FsCommand) {
        let _ = self.tx.send(Msg::Cmd(cmd));
    }
}

/// What identifies a file's current content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    // The path itself: a symlink is stamped (and refused), not followed.
    let m = fs::symlink_metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// Start watching `entries` (a new watcher; the one whose token is
/// dropped ends within its poll timeout).
fn watch_entries(entries: &[FsEntry], tx: &Weak<std_mpsc::Sender<Msg>>) -> Arc<()> {
    let alive = Arc::new(());
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    match watch::start(&paths, tx.clone(), Arc::downgrade(&alive)) {
        Ok(unwatched) => {
            for i in unwatched {
                tracing::info!(
                    "sync {}: no change events for {} (its directory cannot be \
                     watched); polled every {POLL_INTERVAL:?}",
                    entries[i].name,
                    entries[i].path.display()
                );
            }
        }
        Err(e) => tracing::warn!(
            "sync: inotify unavailable ({e}); files are polled every {POLL_INTERVAL:?}"
        ),
    }
    alive
}

fn worker(
    mut entries: Vec<FsEntry>,
    state_file: PathBuf,
    cmds: std_mpsc::Receiver<Msg>,
    tx: Weak<std_mpsc::Sender<Msg>>,
    events: mpsc::UnboundedSender<FsEvent>,
    poll: Duration,
) {
    let mut _watching = watch_entries(&entries, &tx);
    // None: never looked; Some(None): missing or unreadable.
    let mut seen: BTreeMap<String, Option<Stamp>> = BTreeMap::new();
    // What the event loop last heard of each file (or what was written):
    // a read that finds the same is not reported again (the events of the
    // worker's own writes, an attribute change).
    let mut told: BTreeMap<String, Told> = BTreeMap::new();
    let mut pace = Pacer::new(entries.len());
    // Every entry is read once at start.
    let start = std::time::Instant::now();
    for i in 0..entries.len() {
        pace.touched(i, start, Notice::Settled);
    }
    let mut next_poll = start + poll;
    loop {
        let now = std::time::Instant::now();
        let wake = pace.next_due().map_or(next_poll, |d| d.min(next_poll));
        match cmds.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Msg::Cmd(FsCommand::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            })) => {
                let Some(entry) = entries.iter().find(|e| e.name == name) else {
                    continue;
                };
                let result = apply_version(entry, &content, keep_unless, conflict_epoch)
                    .map(|kept| kept.map(|p| p.display().to_string()))
                    .map_err(|e| format!("{}: {e}", entry.path.display()));
                if result.is_ok() {
                    seen.insert(name.clone(), stamp(&entry.path));
                    told.insert(name.clone(), Told::Content(digest(&content)));
                }
                let ev = FsEvent::Written {
                    name,
                    version,
                    result,
                };
                if events.send(ev).is_err() {
                    return;
                }
            }
            Ok(Msg::Cmd(FsCommand::SetEntries(new))) => {
                // A moved file is read afresh; a gone one is forgotten.
                seen.retain(|name, _| {
                    let old = entries.iter().find(|e| &e.name == name).map(|e| &e.path);
                    let now = new.iter().find(|e| &e.name == name).map(|e| &e.path);
                    now.is_some() && old == now
                });
                told.retain(|name, _| new.iter().any(|e| &e.name == name));
                entries = new;
                // Indices changed: a new watcher and pacer; every entry is
                // looked at now (unchanged stamps are skipped).
                _watching = watch_entries(&entries, &tx);
                pace = Pacer::new(entries.len());
                next_poll = std::time::Instant::now();
            }
            Ok(Msg::Cmd(FsCommand::SaveState(state))) => {
                if let Err(e) = save_state(&state_file, &state) {
                    tracing::warn!("sync: state file {}: {e}", state_file.display());
                }
            }
            Ok(Msg::Touched(which)) => {
                let now = std::time::Instant::now();
                for (i, notice) in which {
                    pace.touched(i, now, notice);
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = std::time::Instant::now();
        // The poll: a stamp that moved counts as an event (the safety net
        // for filesystems and writers that inotify does not see).
        if now >= next_poll {
            next_poll = now + poll;
            for (i, e) in entries.iter().enumerate() {
                if !pace.pending(i) && seen.get(&e.name) != Some(&stamp(&e.path)) {
                    pace.touched(i, now, Notice::Polled);
                }
            }
        }
        for (i, forced) in pace.due(now) {
            let e = &entries[i];
            let before = stamp(&e.path);
            // An event forces a read even when the stamp did not move: two
            // same-size writes within one kernel clock tick look alike.
            if !forced && seen.get(&e.name) == Some(&before) {
                continue;
            }
            let observed = match read_file(&e.path, e.max_size) {
                Ok(o) => o,
                Err(err) => {
                    tracing::warn!("sync {}: cannot read {}: {err}", e.name, e.path.display());
                    seen.insert(e.name.clone(), before);
                    continue;
                }
            };
            // Changed while read (a writer still at work): look again
            // shortly rather than sync a torn copy.
            if stamp(&e.path) != before {
                pace.touched(i, now, Notice::Busy);
                continue;
            }
            seen.insert(e.name.clone(), before);
            pace.read(i, now);
            let sig = Told::of(&observed);
            if told.get(&e.name) == Some(&sig) {
                continue;
            }
            told.insert(e.name.clone(), sig);
            let ev = FsEvent::Observed {
                name: e.name.clone(),
                observed,
            };
            if events.send(ev).is_err() {
                return;
            }
        }
    }
}

/// The gist of an `Observed`, to tell a real change from a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Missing,
    Content(Digest),
    TooLarge(u64),
}

impl Told {
    fn of(o: &Observed) -> Told {
        match o {
            Observed::Missing => Told::Missing,
            Observed::Content(c) => Told::Content(c.digest),
            Observed::TooLarge(n) => Told::TooLarge(*n),
        }
    }
}

/// After a read, further changes within this time make the entry "hot".
pub const HOT_FOR: Duration = Duration::from_millis(100);
/// A hot entry is read once its writes have been quiet this long...
pub const QUIET: Duration = Duration::from_millis(50);
/// ...or, under writes that never pause, this long after the first.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// When to read each entry after it changed: at once when it has been
/// quiet (a single edit reaches the peers in milliseconds), but a burst of
/// writes is read when it pauses or every [`MAX_DELAY`], so a thousand
/// writes in a second make a handful of versions, not a thousand.
#[derive(Debug)]
struct Pacer {
    slots: Vec<Pace>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Pace {
    /// First unread change; whether an event (not the poll) saw one; and
    /// whether the writer is done (closed or renamed the file in, or the
    /// poll saw it) rather than still at work (created, modified).
    pending: Option<Pending>,
    /// The latest change, and whether it left the file settled.
    last_change: Option<std::time::Instant>,
    last_settled: bool,
    /// The last read that found the file settled.
    last_read: Option<std::time::Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    since: std::time::Instant,
    forced: bool,
    settled: bool,
}

/// What a change notice says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// The writer closed it, renamed it in, or removed it: read it.
    Settled,
    /// Created, written, attributes changed: a writer may still be at
    /// work (an empty file between `O_TRUNC` and the write); read once
    /// it has been quiet for [`QUIET`].
    Busy,
    /// The poll saw the stamp move (read, unless the stamp is the same).
    Polled,
}

impl Pacer {
    fn new(n: usize) -> Pacer {
        Pacer {
            slots: vec![Pace::default(); n],
        }
    }

    fn touched(&mut self, i: usize, now: std::time::Instant, notice: Notice) {
        let Some(p) = self.slots.get_mut(i) else {
            return;
        };
        let forced = notice != Notice::Polled;
        let settled = notice != Notice::Busy;
        p.pending = Some(match p.pending {
            Some(q) => Pending {
                since: q.since,
                forced: q.forced || forced,
                settled: q.settled || settled,
            },
            None => Pending {
                since: now,
                forced,
                settled,
            },
        });
        p.last_change = Some(now);
        p.last_settled = settled;
    }

    fn pending(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|p| p.pending.is_some())
    }

    fn read(&mut self, i: usize, now: std::time::Instant) {
        if let Some(p) = self.slots.get_mut(i) {
            p.last_read = Some(now);
        }
    }

    fn due_at(p: &Pace) -> Option<std::time::Instant> {
        let q = p.pending?;
        let hot = p.last_read.is_some_and(|r| q.since < r + HOT_FOR);
        if q.settled && !hot {
            return Some(q.since);
        }
        let quiet = p.last_change.unwrap_or(q.since) + QUIET;
        // Under writes that never pause, read between two writes (the
        // last notice a close), or at worst after twice MAX_DELAY.
        let max = if p.last_settled {
            MAX_DELAY
        } else {
            MAX_DELAY * 2
        };
        Some(quiet.min(q.since + max))
    }

    fn next_due(&self) -> Option<std::time::Instant> {
        self.slots.iter().filter_map(Self::due_at).min()
    }

    /// The entries to read now (index, whether an event asked), cleared.
    fn due(&mut self, now: std::time::Instant) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for (i, p) in self.slots.iter_mut().enumerate() {
            if Self::due_at(p).is_some_and(|d| d <= now) {
                out.push((i, p.pending.take().is_some_and(|q| q.forced)));
            }
        }
        out
    }
}

/// Change events: inotify on each synced file's directory (so a file
/// replaced by rename, created or removed is seen, not only one written in
/// place), on a thread of its own that wakes the worker.
mod watch {
    use std::collections::BTreeMap;
    use std::ffi::OsString;
    use std::os::fd::AsFd;
    use std::path::PathBuf;
    use std::sync::{mpsc, Weak};

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

    use super::{Msg, Notice};

    /// Watch the directories of `paths`; events naming one of the files
    /// become `Msg::Touched`. The thread ends when `alive` is gone (the
    /// worker stopped). Ok(indices of entries without a watch).
    pub(super) fn start(
        paths: &[PathBuf],
        tx: Weak<mpsc::Sender<Msg>>,
        alive: Weak<()>,
    ) -> std::io::Result<Vec<usize>> {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mask = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_ONLYDIR;
        // Per watch: the file names in that directory, and their entries.
        let mut names: BTreeMap<WatchDescriptor, Vec<(OsString, usize)>> = BTreeMap::new();
        let mut unwatched = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                unwatched.push(i);
                continue;
            };
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            match ino.add_watch(dir, mask) {
                Ok(wd) => names.entry(wd).or_default().push((name.to_owned(), i)),
                Err(_) => unwatched.push(i),
            }
        }
        std::thread::Builder::new()
            .name("baton-syncwatch".into())
            .spawn(move || run(ino, names, tx, alive))?;
        Ok(unwatched)
    }

    fn run(
        ino: Inotify,
        names: BTreeMap<WatchDescriptor, Vec<(OsString, usize)>>,
        tx: Weak<mpsc::Sender<Msg>>,
        alive: Weak<()>,
    ) {
        loop {
            if alive.strong_count() == 0 {
                return;
            }
            let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(500u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            let events = match ino.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let mut touched: Vec<(usize, Notice)> = Vec::new();
            let settled = AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_Q_OVERFLOW;
            for ev in events {
                let notice = if ev.mask.intersects(settled) {
                    Notice::Settled
                } else {
                    Notice::Busy
                };
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost: every file may have changed.
                    touched = names
                        .values()
                        .flatten()
                        .map(|(_, i)| (*i, Notice::Settled))
                        .collect();
                    continue;
                }
                let Some(files) = names.get(&ev.wd) else {
                    continue;
                };
                for (name, i) in files {
                    // No name: the directory itself changed.
                    if ev.name.as_ref().is_none_or(|n| n == name) {
                        touched.push((*i, notice));
                    }
                }
            }
            if touched.is_empty() {
                continue;
            }
            let Some(tx) = tx.upgrade() else {
                return;
            };
            if tx.send(Msg::Touched(touched)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-syncfs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entry(name: &str, path: &Path) -> FsEntry {
        FsEntry {
            name: name.into(),
            path: path.to_path_buf(),
            mode: None,
            owner: None,
            max_size: 1 << 20,
        }
    }

    /// The next `Observed` content within `wait`, if any.
    fn next_content(rx: &mut mpsc::UnboundedReceiver<FsEvent>, wait: Duration) -> Option<Vec<u8>> {
        let end = std::time::Instant::now() + wait;
        while std::time::Instant::now() < end {
            match rx.try_recv() {
                Ok(FsEvent::Observed {
                    observed: Observed::Content(c),
                    ..
                }) => return Some(c.bytes.to_vec()),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        None
    }

    /// A worker on `f` (first holding `first`) with the poll out of the
    /// way, once it has reported the file's first reading.
    fn watched_without_poll(
        d: &Path,
        f: &Path,
        first: &[u8],
    ) -> (Worker, mpsc::UnboundedReceiver<FsEvent>) {
        fs::write(f, first).unwrap();
        let (w, mut rx) = Worker::start_polling(
            vec![entry("f", f)],
            d.join("state"),
            Duration::from_secs(3600),
        )
        .unwrap();
        assert!(next_content(&mut rx, Duration::from_secs(5)).is_some());
        (w, rx)
    }

    /// With the poll out of the way (an hour), only inotify can tell the
    /// worker: edits in place, a file replaced by rename, and a file
    /// created after start are all seen.
    #[test]
    fn changes_are_seen_by_events_without_the_poll() {
        let d = tmpdir("events");
        let f = d.join("f");
        fs::write(&f, b"one").unwrap();
        let (_w, mut rx) = Worker::start_polling(
            vec![entry("f", &f), entry("g", &d.join("g"))],
            d.join("state"),
            Duration::from_secs(3600),
        )
        .unwrap();
        let wait = Duration::from_secs(5);
        assert_eq!(next_content(&mut rx, wait).as_deref(), Some(&b"one"[..]));
        fs::write(&f, b"two").unwrap();
        assert_eq!(next_content(&mut rx, wait).as_deref(), Some(&b"two"[..]));
        fs::write(d.join("tmp"), b"three").unwrap();
        fs::rename(d.join("tmp"), &f).unwrap();
        assert_eq!(next_content(&mut rx, wait).as_deref(), Some(&b"three"[..]));
        fs::write(d.join("g"), b"new file").unwrap();
        assert_eq!(
            next_content(&mut rx, wait).as_deref(),
            Some(&b"new file"[..])
        );
        let _ = fs::remove_dir_all(&d);
    }

    /// A directory that cannot be watched (missing at start) is still
    /// followed by the poll.
    #[test]
    fn an_unwatched_directory_falls_back_to_the_poll() {
        let d = tmpdir("fallback");
        let f = d.join("later").join("f");
        let (_w, mut rx) = Worker::start_polling(
            vec![entry("f", &f)],
            d.join("state"),
            Duration::from_millis(20),
        )
        .unwrap();
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, b"polled").unwrap();
        assert_eq!(
            next_content(&mut rx, Duration::from_secs(5)).as_deref(),
            Some(&b"polled"[..])
        );
        let _ = fs::remove_dir_all(&d);
    }

    /// A thousand writes within about a second become a handful of reads,
    /// the last of them the final content.
    #[test]
    fn a_burst_of_writes_is_read_a_few_times_ending_with_the_last() {
        let d = tmpdir("burst");
        let f = d.join("f");
        let (_w, mut rx) = watched_without_poll(&d, &f, b"start");
        let start = std::time::Instant::now();
        for i in 0..1000u32 {
            fs::write(&f, format!("write {i:04}")).unwrap();
            std::thread::sleep(Duration::from_micros(900));
        }
        // Writes that never pause are read every MAX_DELAY: on a loaded
        // host the loop takes longer than its nominal second.
        let bound = 4 + (start.elapsed().as_millis() / MAX_DELAY.as_millis()) as usize;
        let mut reads = Vec::new();
        while let Some(c) = next_content(&mut rx, Duration::from_secs(2)) {
            reads.push(String::from_utf8(c).unwrap());
        }
        assert_eq!(
            reads.last().map(String::as_str),
            Some("write 0999"),
            "{reads:?}"
        );
        assert!(
            reads.len() <= bound,
            "{} reads for one burst: {reads:?}",
            reads.len()
        );
    }

    #[test]
    fn the_pacer_reads_a_quiet_file_at_once_and_a_busy_one_when_it_pauses() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut p = Pacer::new(1);
        p.touched(0, ms(0), Notice::Settled);
        assert_eq!(p.due(ms(0)), vec![(0, true)]);
        p.read(0, ms(0));
        // Hot: another change 5 ms later waits for a quiet QUIET.
        p.touched(0, ms(5), Notice::Polled);
        assert!(p.due(ms(20)).is_empty());
        p.touched(0, ms(30), Notice::Settled);
        assert_eq!(p.next_due(), Some(ms(30) + QUIET));
        assert_eq!(p.due(ms(30) + QUIET), vec![(0, true)]);
        p.read(0, ms(80));
        // Never quiet: read at MAX_DELAY after the first change.
        let mut t = 100;
        p.touched(0, ms(t), Notice::Polled);
        while t < 100 + MAX_DELAY.as_millis() as u64 {
            t += 10;
            p.touched(0, ms(t), Notice::Polled);
            if t < 100 + MAX_DELAY.as_millis() as u64 {
                assert!(p.due(ms(t)).is_empty(), "read at {t} ms");
            }
        }
        assert_eq!(p.due(ms(100) + MAX_DELAY), vec![(0, false)]);
        // Quiet again for HOT_FOR: the next change is read at once.
        p.read(0, ms(600));
        p.touched(0, ms(600) + HOT_FOR, Notice::Polled);
        assert_eq!(p.due(ms(600) + HOT_FOR), vec![(0, false)]);
        // A file being written (created, truncated, modified) is read only
        // once it is quiet, even when it was quiet before; a close or a
        // rename in settles it at once.
        p.read(0, ms(1000));
        let t = ms(1000) + HOT_FOR;
        p.touched(0, t, Notice::Busy);
        assert!(p.due(t).is_empty());
        assert_eq!(p.due(t + QUIET), vec![(0, true)]);
        p.touched(0, t + HOT_FOR * 3, Notice::Busy);
        p.touched(0, t + HOT_FOR * 3, Notice::Settled);
        assert_eq!(p.due(t + HOT_FOR * 3), vec![(0, true)]);
    }

    /// A writer that truncates, then writes (`std::fs::write`) is never
    /// read in between: no empty version is reported.
    #[test]
    fn a_truncate_then_write_is_not_read_half_done() {
        let d = tmpdir("trunc");
        let f = d.join("f");
        let (_w, mut rx) = watched_without_poll(&d, &f, b"first");
        for i in 0..20 {
            std::thread::sleep(HOT_FOR * 2);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&f)
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
            file.write_all(format!("content {i}").as_bytes()).unwrap();
            drop(file);
            let got = next_content(&mut rx, Duration::from_secs(5)).unwrap();
            assert_eq!(got, format!("content {i}").as_bytes(), "round {i}");
        }
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn atomic_write_sets_the_mode_and_leaves_no_temp_file() {
        let d = tmpdir("write");
        let p = d.join("f.cfg");
        write_atomic(&p, b"one", Some(0o640)).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        write_atomic(&p, b"two", None).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640,
            "kept"
        );
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
        let d = tmpdir("fail");
        // The target is a non-empty directory: the rename fails.
        let p = d.join("target");
        fs::create_dir_all(p.join("inside")).unwrap();
        assert!(write_atomic(&p, b"new", None).is_err());
        assert!(p.join("inside").is_dir());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "temp file removed");
        // A directory that does not exist: nothing is created.
        assert!(write_atomic(&d.join("no/such/dir/f"), b"x", None).is_err());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn atomic_write_gives_the_owner() {
        if !nix::unistd::geteuid().is_root() {
            // Only root may give files away; the owner-less path is tested
            // above. (CI runs as root.)
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root"
            );
            return;
        }
        let d = tmpdir("owner");
        let p = d.join("f");
        write_atomic_owned(&p, b"x", Some(0o640), Some((65534, 65534))).unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn conflict_copies_are_kept_unless_the_file_is_the_last_synced_one() {
        let d = tmpdir("conflict");
        let entry = FsEntry {
            name: "f".into(),
            path: d.join("f"),
            mode: None,
            owner: None,
            max_size: 1 << 20,
        };
        fs::write(&entry.path, b"synced").unwrap();
        let kept = apply_version(&entry, b"v2", Some(digest(b"synced")), 1).unwrap();
        assert_eq!(kept, None);
        fs::write(&entry.path, b"local edit").unwrap();
        let kept = apply_version(&entry, b"v3", Some(digest(b"v2")), 1).unwrap();
        assert_eq!(kept.as_deref(), Some(d.join("f.conflict-1").as_path()));
        assert_eq!(fs::read(d.join("f.conflict-1")).unwrap(), b"local edit");
        fs::write(&entry.path, b"another edit").unwrap();
        let kept = apply_version(&entry, b"v4", None, 1).unwrap();
        assert_eq!(kept.as_deref(), Some(d.join("f.conflict-1.1").as_path()));
        assert_eq!(fs::read(&entry.path).unwrap(), b"v4");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn read_refuses_files_above_the_limit() {
        let d = tmpdir("read");
        let p = d.join("f");
        assert_eq!(read_file(&p, 10).unwrap(), Observed::Missing);
        fs::write(&p, [7u8; 11]).unwrap();
        assert_eq!(read_file(&p, 10).unwrap(), Observed::TooLarge(11));
        assert_eq!(
            read_file(&p, 11).unwrap(),
            Observed::Content(Content::new(vec![7; 11]))
        );
        let _ = fs::remove_dir_all(&d);
    }

    /// A file outside the synced directory that a planted symlink points
    /// at, with known content.
    fn victim(d: &Path) -> PathBuf {
        let v = d.join("victim");
        fs::write(&v, b"precious").unwrap();
        fs::set_permissions(&v, fs::Permissions::from_mode(0o644)).unwrap();
        v
    }

    fn untouched(v: &Path) {
        assert_eq!(fs::read(v).unwrap(), b"precious", "symlink target changed");
        assert_eq!(
            fs::metadata(v).unwrap().permissions().mode() & 0o7777,
            0o644,
            "symlink target's mode changed"
        );
    }

    #[test]
    fn a_symlink_at_the_old_temporary_name_is_not_followed() {
        let d = tmpdir("tmplink");
        let v = victim(&d);
        let p = d.join("f.cfg");
        let old_tmp = d.join(format!(".f.cfg.baton-{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&v, &old_tmp).unwrap();
        write_atomic(&p, b"new", Some(0o640)).unwrap();
        untouched(&v);
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
        assert!(fs::symlink_metadata(&old_tmp).unwrap().is_symlink());
        // The state file and the private writer too.
        let state = d.join("sync-state.json");
        let old_tmp = d.join(format!(".sync-state.json.baton-{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&v, &old_tmp).unwrap();
        save_state(&state, &BTreeMap::new()).unwrap();
        untouched(&v);
        assert_eq!(
            fs::symlink_metadata(&state).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn temporary_names_are_unpredictable_and_created_exclusively() {
        let d = tmpdir("tmpname");
        let (a, fa) = create_temp(&d, std::ffi::OsStr::new("f")).unwrap();
        let (b, _fb) = create_temp(&d, std::ffi::OsStr::new("f")).unwrap();
        assert_ne!(a, b);
        assert_eq!(fa.metadata().unwrap().permissions().mode() & 0o7777, 0o600);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        let suffix = name
            .strip_prefix(".f.baton-")
            .and_then(|n| n.strip_suffix(".tmp"))
            .unwrap();
        assert_eq!(suffix.len(), 16);
        assert!(suffix.bytes().all(|c| c.is_ascii_hexdigit()));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let d = tmpdir("targetlink");
        let v = victim(&d);
        let p = d.join("f.cfg");
        std::os::unix::fs::symlink(&v, &p).unwrap();
        // The mode is not taken from what the symlink points to.
        write_atomic(&p, b"new", None).unwrap();
        untouched(&v);
        let m = fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.permissions().mode() & 0o7777, 0o644);
        assert_eq!(fs::read(&p).unwrap(), b"new");
        // A synced version onto a symlink is refused (the reader will not
        // read through it either) and nothing moves.
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&v, &p).unwrap();
        let entry = FsEntry {
            name: "f".into(),
            path: p.clone(),
            mode: Some(0o600),
            owner: None,
            max_size: 1 << 20,
        };
        let err = apply_version(&entry, b"v2", None, 1).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        untouched(&v);
        assert!(fs::symlink_metadata(&p).unwrap().is_symlink());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn the_reader_refuses_symlinks_fifos_devices_and_directories() {
        let d = tmpdir("nonregular");
        let v = victim(&d);
        let link = d.join("link");
        std::os::unix::fs::symlink(&v, &link).unwrap();
        let err = read_file(&link, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(read_private(&link, 1 << 20).is_err());
        // A FIFO without a writer: refused at once, not waited on.
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_file(&fifo, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        // A symlink to the FIFO as well.
        let fifo_link = d.join("fifo-link");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        assert!(read_file(&fifo_link, 1 << 20).is_err());
        let err = read_file(&d, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        if nix::unistd::geteuid().is_root() {
            // A character device like /dev/zero (1, 5): never read.
            let dev = d.join("zero");
            nix::sys::stat::mknod(
                &dev,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, 5),
            )
            .unwrap();
            let err = read_file(&dev, 1 << 20).unwrap_err();
            assert!(err.to_string().contains("device"), "{err}");
        }
        untouched(&v);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlinked_state_file_is_not_read() {
        let d = tmpdir("statelink");
        let v = d.join("victim.json");
        let mut planted = BTreeMap::new();
        planted.insert(
            "f".to_string(),
            Persisted {
                version: SyncVersion {
                    epoch: 7,
                    counter: 7,
                },
                digest: "x".into(),
                produced: true,
                committed: None,
            },
        );
        save_state(&v, &planted).unwrap();
        assert_eq!(load_state(&v).len(), 1, "a real state file is read");
        let state = d.join("sync-state.json");
        std::os::unix::fs::symlink(&v, &state).unwrap();
        assert!(load_state(&state).is_empty(), "read through a symlink");
        let _ = fs::remove_dir_all(&d);
    }
}
