//! The VIP ledger: which addresses this node has configured, kept in
//! `state_dir/vips.json`. Written before an add (intent) and after a
//! removal, so after a SIGKILL the next start knows exactly what to clean
//! up, and removes nothing it did not add.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One configured address: interface name, address, prefix length.
pub type Entry = (String, IpAddr, u8);

pub struct VipLedger {
    path: PathBuf,
    entries: std::cell::RefCell<BTreeSet<Entry>>,
}

impl VipLedger {
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join("vips.json");
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Entry>>(&b).ok())
            .unwrap_or_default();
        VipLedger {
            path,
            entries: std::cell::RefCell::new(entries.into_iter().collect()),
        }
    }

    /// What a previous run left recorded.
    pub fn stale(&self) -> Vec<Entry> {
        self.entries.borrow().iter().cloned().collect()
    }

    pub fn clear(&self) -> io::Result<()> {
        self.entries.borrow_mut().clear();
        self.save()
    }

    pub fn record(&self, added: &[Entry]) -> io::Result<()> {
        self.entries.borrow_mut().extend(added.iter().cloned());
        self.save()
    }

    pub fn forget(&self, removed: &[Entry]) -> io::Result<()> {
        {
            let mut e = self.entries.borrow_mut();
            for r in removed {
                e.remove(r);
            }
        }
        self.save()
    }

    /// Atomic replace: temp file, fsync, rename.
    fn save(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let list: Vec<Entry> = self.entries.borrow().iter().cloned().collect();
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&list).map_err(io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}
