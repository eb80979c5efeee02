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
use std::sync::Arc;
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

/// The worker's handle; dropping it stops the thread.
pub struct Worker {
    tx: std_mpsc::Sender<FsCommand>,
}

impl Worker {
    /// Start the worker: it reads every file at once (an `Observed` per
    /// entry), then polls.
    pub fn start(
        entries: Vec<FsEntry>,
        state_file: PathBuf,
    ) -> io::Result<(Worker, mpsc::UnboundedReceiver<FsEvent>)> {
        let (tx, cmds) = std_mpsc::channel();
        let (events, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("baton-syncfs".into())
            .spawn(move || worker(entries, state_file, cmds, events))?;
        Ok((Worker { tx }, rx))
    }

    pub fn send(&self, cmd: FsCommand) {
        let _ = self.tx.send(cmd);
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

fn worker(
    mut entries: Vec<FsEntry>,
    state_file: PathBuf,
    cmds: std_mpsc::Receiver<FsCommand>,
    events: mpsc::UnboundedSender<FsEvent>,
) {
    // None: never looked; Some(None): missing or unreadable.
    let mut seen: BTreeMap<String, Option<Stamp>> = BTreeMap::new();
    let mut next_poll = std::time::Instant::now();
    loop {
        let wait = next_poll.saturating_duration_since(std::time::Instant::now());
        match cmds.recv_timeout(wait) {
            Ok(FsCommand::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            }) => {
                let Some(entry) = entries.iter().find(|e| e.name == name) else {
                    continue;
                };
                let result = apply_version(entry, &content, keep_unless, conflict_epoch)
                    .map(|kept| kept.map(|p| p.display().to_string()))
                    .map_err(|e| format!("{}: {e}", entry.path.display()));
                if result.is_ok() {
                    seen.insert(name.clone(), stamp(&entry.path));
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
            Ok(FsCommand::SetEntries(new)) => {
                // A moved file is read afresh; a gone one is forgotten.
                seen.retain(|name, _| {
                    let old = entries.iter().find(|e| &e.name == name).map(|e| &e.path);
                    let now = new.iter().find(|e| &e.name == name).map(|e| &e.path);
                    now.is_some() && old == now
                });
                entries = new;
                next_poll = std::time::Instant::now();
            }
            Ok(FsCommand::SaveState(state)) => {
                if let Err(e) = save_state(&state_file, &state) {
                    tracing::warn!("sync: state file {}: {e}", state_file.display());
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                next_poll = std::time::Instant::now() + POLL_INTERVAL;
                for e in &entries {
                    let now = stamp(&e.path);
                    if seen.get(&e.name) == Some(&now) {
                        continue;
                    }
                    let observed = match read_file(&e.path, e.max_size) {
                        Ok(o) => o,
                        Err(err) => {
                            tracing::warn!(
                                "sync {}: cannot read {}: {err}",
                                e.name,
                                e.path.display()
                            );
                            seen.insert(e.name.clone(), now);
                            continue;
                        }
                    };
                    // Changed while read (a writer still at work): look
                    // again at the next poll rather than sync a torn copy.
                    if stamp(&e.path) != now {
                        continue;
                    }
                    seen.insert(e.name.clone(), now);
                    let ev = FsEvent::Observed {
                        name: e.name.clone(),
                        observed,
                    };
                    if events.send(ev).is_err() {
                        return;
                    }
                }
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
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
