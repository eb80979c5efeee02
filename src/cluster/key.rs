//! The cluster key: the shared secret from which every cluster-channel
//! session key is derived ([`crate::wire::frame::SessionKey`]).
//!
//! Loading is strict on purpose: a key that others can read is no secret,
//! and a short one is guessable. Each refusal names the file and says how to
//! fix it. Reading a file is IO, but a one-shot one at startup and reload,
//! like reading the config; nothing here runs in the event loop.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Shortest accepted key, in bytes (after trailing newlines are dropped).
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cluster key {p}: not found (create one: head -c 32 /dev/urandom > {p} && chmod 600 {p})", p = .0.display())]
    Missing(PathBuf),
    #[error("cluster key {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cluster key {}: not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("cluster key {}: empty", .0.display())]
    Empty(PathBuf),
    #[error("cluster key {}: {len} bytes, at least {MIN_KEY_LEN} needed", path.display())]
    TooShort { path: PathBuf, len: usize },
    #[error("cluster key {}: mode {mode:04o} lets group or others access it; run: chmod 600 {}", path.display(), path.display())]
    TooOpen { path: PathBuf, mode: u32 },
}

/// Read the cluster key. Trailing `\n` / `\r` are dropped so that a key
/// written by `openssl rand -hex 32 > FILE` or touched by an editor means
/// the same on every node; all other bytes are the key.
pub fn load_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            KeyError::Missing(path.to_path_buf())
        } else {
            KeyError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile(path.to_path_buf()));
    }
    // Checked before reading: refuse to use a secret that has leaked.
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut key = std::fs::read(path).map_err(io_err)?;
    while matches!(key.last(), Some(b'\n' | b'\r')) {
        key.pop();
    }
    if key.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    if key.len() < MIN_KEY_LEN {
        return Err(KeyError::TooShort {
            path: path.to_path_buf(),
            len: key.len(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static N: AtomicU32 = AtomicU32::new(0);

    /// A file in a fresh private directory, removed on drop.
    struct Temp(PathBuf);
    impl Temp {
        fn new(content: Option<&[u8]>, mode: u32) -> Temp {
            let dir = std::env::temp_dir().join(format!(
                "baton-key-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("cluster.key");
            if let Some(c) = content {
                std::fs::write(&path, c).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            Temp(path)
        }
    }
    impl Drop for Temp {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn good_key_binary_and_text() {
        let bin: Vec<u8> = (0..32).collect();
        let t = Temp::new(Some(&bin), 0o600);
        assert_eq!(load_key(&t.0).unwrap(), bin);
        let t = Temp::new(Some(b"00112233445566778899aabbccddeeff\n"), 0o400);
        assert_eq!(load_key(&t.0).unwrap(), b"00112233445566778899aabbccddeeff");
    }

    #[test]
    fn missing() {
        let t = Temp::new(None, 0);
        let e = load_key(&t.0).unwrap_err();
        assert!(matches!(e, KeyError::Missing(_)));
        let msg = e.to_string();
        assert!(msg.contains(&t.0.display().to_string()), "{msg}");
        assert!(msg.contains("not found"), "{msg}");
    }

    #[test]
    fn empty() {
        let t = Temp::new(Some(b""), 0o600);
        let e = load_key(&t.0).unwrap_err();
        assert!(matches!(e, KeyError::Empty(_)));
        assert!(e.to_string().contains(&t.0.display().to_string()));
        let t = Temp::new(Some(b"\n"), 0o600);
        assert!(matches!(load_key(&t.0), Err(KeyError::Empty(_))));
    }

    #[test]
    fn too_short() {
        let t = Temp::new(Some(b"fifteen bytes!!\n"), 0o600);
        let e = load_key(&t.0).unwrap_err();
        assert!(matches!(e, KeyError::TooShort { len: 15, .. }), "{e:?}");
        assert!(e.to_string().contains("at least 16"), "{e}");
        assert!(e.to_string().contains(&t.0.display().to_string()));
    }

    #[test]
    fn readable_or_writable_by_others() {
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o660, 0o666, 0o610] {
            let t = Temp::new(Some(&[7u8; 32]), mode);
            let e = load_key(&t.0).unwrap_err();
            assert!(matches!(e, KeyError::TooOpen { .. }), "{mode:o}: {e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", t.0.display())),
                "{msg}"
            );
        }
    }

    #[test]
    fn directory_refused() {
        let t = Temp::new(None, 0);
        let dir = t.0.parent().unwrap().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(load_key(&dir), Err(KeyError::NotAFile(_))));
    }
}
