//! The state directory: the lock that makes one agent its only owner, and
//! the VIP ledger: which addresses this node has configured, kept in
//! `state_dir/vips.json`. Queued before an add (intent) and after a
//! removal, so after a SIGKILL the next start knows what to clean up, and
//! removes nothing it did not add. The file is written (fsync, rename,
//! directory fsync) by a thread of its own: a slow disk never delays an
//! advert. The price is a window of a few milliseconds after an add in
//! which a SIGKILL can leave a VIP the ledger does not name yet; a VIP
//! lease (`vip_lease`) removes such an address by itself.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The exclusive lock on `state_dir/lock`, held for the agent's life (the
/// kernel drops it when the process dies, however it dies). A second agent
/// on the same state directory would remove the first one's VIPs as
/// "stale" and take over its control socket: it must stop before it
/// touches anything.
pub struct StateLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl StateLock {
    /// Take the lock, creating the directory (0700) and the lock file
    /// (0600, never through a symlink). Err names the running agent.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, String> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = state_dir.display();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| format!("state directory {dir}: {e}"))?;
        let path = state_dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("lock file {}: {e}", path.display()))?;
        let mut lock =
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    let mut holder = String::new();
                    let _ = std::io::Read::read_to_string(&mut file, &mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    };
                    return Err(format!(
                        "another baton{who} runs with state directory {dir}; \
                         not starting (nothing was touched)"
                    ));
                }
                Err((_, e)) => return Err(format!("locking {}: {e}", path.display())),
            };
        // Who holds it, for the next one's message.
        let _ = lock.set_len(0);
        let _ = std::io::Seek::seek(&mut *lock, std::io::SeekFrom::Start(0));
        let _ = writeln!(lock, "{}", std::process::id());
        Ok(StateLock { _lock: lock })
    }
}

/// One configured address: interface name, address, prefix length.
pub type Entry = (String, IpAddr, u8);

/// The largest ledger read back (far above any real one).
const LEDGER_MAX: u64 = 16 << 20;

pub struct VipLedger {
    path: PathBuf,
    entries: std::cell::RefCell<BTreeSet<Entry>>,
    writer: Writer,
}

enum WriterCmd {
    Save(Vec<Entry>),
    /// Answer once every save queued before it is on disk.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The thread that writes the ledger; saves queued while it writes are
/// merged (only the newest list is written).
struct Writer {
    tx: Option<std::sync::mpsc::Sender<WriterCmd>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let (tx, rx) = std::sync::mpsc::channel::<WriterCmd>();
        let thread = std::thread::Builder::new()
            .name("baton-ledger".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut latest = None;
                    let mut flushes = Vec::new();
                    for cmd in std::iter::once(first).chain(rx.try_iter()) {
                        match cmd {
                            WriterCmd::Save(list) => latest = Some(list),
                            WriterCmd::Flush(done) => flushes.push(done),
                        }
                    }
                    if let Some(list) = latest {
                        if let Err(e) = write_list(&path, &list) {
                            tracing::warn!("VIP ledger {}: {e}", path.display());
                        }
                    }
                    for done in flushes {
                        let _ = done.send(());
                    }
                }
            });
        match thread {
            Ok(t) => Writer {
                tx: Some(tx),
                thread: Some(t),
            },
            Err(e) => {
                tracing::warn!("VIP ledger: no writer thread ({e}); writing inline");
                Writer {
                    tx: None,
                    thread: None,
                }
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread write what is left and end.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_list(path: &Path, list: &[Entry]) -> io::Result<()> {
    let bytes = serde_json::to_vec(list).map_err(io::Error::other)?;
    super::syncfs::write_private(path, &bytes)
}

impl VipLedger {
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join("vips.json");
        // Never through a symlink, and only a regular file.
        let bytes = match super::syncfs::read_private(&path, LEDGER_MAX) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("VIP ledger {}: {e}; not used", path.display());
                None
            }
        };
        let entries = bytes
            .and_then(|b| serde_json::from_slice::<Vec<Entry>>(&b).ok())
            .unwrap_or_default();
        VipLedger {
            writer: Writer::start(path.clone()),
            path,
            entries: std::cell::RefCell::new(entries.into_iter().collect()),
        }
    }

    /// What a previous run left recorded.
    pub fn stale(&self) -> Vec<Entry> {
        self.entries.borrow().iter().cloned().collect()
    }

    /// Empty the ledger now (at start, before any VIP is added): written
    /// before it returns.
    pub fn clear(&self) -> io::Result<()> {
        self.entries.borrow_mut().clear();
        self.flush();
        write_list(&self.path, &[])
    }

    /// Queue the addition of `added` (written by the ledger's thread).
    pub fn record(&self, added: &[Entry]) {
        self.entries.borrow_mut().extend(added.iter().cloned());
        self.save();
    }

    /// Queue the removal of `removed` (written by the ledger's thread).
    pub fn forget(&self, removed: &[Entry]) {
        {
            let mut e = self.entries.borrow_mut();
            for r in removed {
                e.remove(r);
            }
        }
        self.save();
    }

    /// Wait until everything queued is on disk.
    pub fn flush(&self) {
        if let Some(tx) = &self.writer.tx {
            let (done, wait) = std::sync::mpsc::channel();
            if tx.send(WriterCmd::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }

    /// Atomic private replace (0600, an exclusive temporary file at an
    /// unpredictable name, fsync, rename, directory fsync): a symlink
    /// planted at the ledger or at any temporary name is never followed.
    /// On the ledger's thread; inline only if that thread could not start.
    fn save(&self) {
        let list: Vec<Entry> = self.entries.borrow().iter().cloned().collect();
        match &self.writer.tx {
            Some(tx) => {
                let _ = tx.send(WriterCmd::Save(list));
            }
            None => {
                if let Err(e) = write_list(&self.path, &list) {
                    tracing::warn!("VIP ledger {}: {e}", self.path.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entry() -> Entry {
        ("eth0".into(), "192.0.2.1".parse().unwrap(), 24)
    }

    #[test]
    fn the_ledger_is_private_and_read_back() {
        let d = tmpdir("ledger");
        let l = VipLedger::open(&d);
        l.record(&[entry()]);
        l.flush();
        let m = std::fs::symlink_metadata(d.join("vips.json")).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        assert_eq!(VipLedger::open(&d).stale(), vec![entry()]);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temp file");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn saves_land_in_order_and_the_newest_list_wins() {
        let d = tmpdir("ledgerorder");
        let l = VipLedger::open(&d);
        let other: Entry = ("eth0".into(), "192.0.2.2".parse().unwrap(), 24);
        for _ in 0..50 {
            l.record(&[entry(), other.clone()]);
            l.forget(&[entry()]);
        }
        drop(l);
        // Dropping the ledger writes what was queued.
        let back = VipLedger::open(&d);
        assert_eq!(back.stale(), vec![other]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn symlinks_at_the_ledger_and_its_old_temp_name_are_not_followed() {
        let d = tmpdir("ledgerlink");
        let outside = tmpdir("ledgerlink-outside");
        let victim = outside.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&victim, d.join("vips.json.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, d.join("vips.json")).unwrap();
        let l = VipLedger::open(&d);
        assert!(l.stale().is_empty());
        l.record(&[entry()]);
        l.flush();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let m = std::fs::metadata(&victim).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o644);
        // The symlink at the ledger was replaced by the ledger itself.
        let m = std::fs::symlink_metadata(d.join("vips.json")).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        assert_eq!(VipLedger::open(&d).stale(), vec![entry()]);
        // A ledger-shaped file behind a symlink is not read as the ledger.
        let planted = outside.join("planted.json");
        std::fs::write(&planted, serde_json::to_vec(&vec![entry()]).unwrap()).unwrap();
        std::fs::remove_file(d.join("vips.json")).unwrap();
        std::os::unix::fs::symlink(&planted, d.join("vips.json")).unwrap();
        assert!(VipLedger::open(&d).stale().is_empty());
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&outside);
    }
}
