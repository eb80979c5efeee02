//! Data sync's `on_change` commands: run one at a time, in order, through
//! the same script path as notify and track scripts ([`super::script`]:
//! `script_user`, `enable_script_security`, own process group killed on
//! timeout, no inherited stdio), off the event loop.
//!
//! The queue is bounded by the number of `[[sync]]` entries: while a
//! command runs, newer versions of the same file merge into the one
//! pending run (the command reads the file, so the latest version is what
//! it sees anyway); each merge is logged and counted, never silent.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

use super::script::{self, Running, ScriptCommand};
use crate::cluster::SyncVersion;
use crate::config::model::Global;

/// How long an `on_change` command may run before its process group is
/// killed.
pub const ON_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// One pending run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub name: String,
    pub version: SyncVersion,
    pub command: String,
}

/// The pending runs, at most one per entry name, in the order the entries
/// first changed.
#[derive(Debug, Default)]
pub struct Queue {
    pending: VecDeque<Pending>,
    /// Versions folded into a later run of the same entry.
    pub merged: u64,
}

impl Queue {
    /// Queue a run; a pending run of the same entry takes the newer
    /// version instead (returns the version it replaced).
    pub fn push(&mut self, p: Pending) -> Option<SyncVersion> {
        if let Some(q) = self.pending.iter_mut().find(|q| q.name == p.name) {
            let old = q.version;
            *q = p;
            self.merged += 1;
            return Some(old);
        }
        self.pending.push_back(p);
        None
    }

    pub fn pop(&mut self) -> Option<Pending> {
        self.pending.pop_front()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The event loop's side of the runner.
#[derive(Clone)]
pub struct Runner {
    queue: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
    running: Running,
    /// Set by [`Runner::stop`]: the task ends.
    stopped: Rc<std::cell::Cell<bool>>,
}

impl Runner {
    /// Start the runner task (on the current `LocalSet`).
    pub fn start(global: Global) -> Runner {
        let runner = Runner {
            queue: Rc::default(),
            wake: Rc::default(),
            running: Running::default(),
            stopped: Rc::default(),
        };
        let r = runner.clone();
        tokio::task::spawn_local(async move {
            while !r.stopped.get() {
                let next = r.queue.borrow_mut().pop();
                match next {
                    Some(p) => run_one(&p, &global, &r.running).await,
                    None => r.wake.notified().await,
                }
            }
        });
        runner
    }

    /// Run `command` for `version` of `name` after what is queued.
    pub fn queue(&self, name: String, version: SyncVersion, command: String) {
        let replaced = self.queue.borrow_mut().push(Pending {
            name: name.clone(),
            version,
            command,
        });
        if let Some(old) = replaced {
            info!("sync {name}: on_change for {old} merged into the one for {version}");
        }
        self.wake.notify_one();
    }

    /// End the runner task (a reload stopped data sync): what is queued
    /// is dropped, a command running now finishes.
    pub fn stop(&self) {
        self.stopped.set(true);
        self.queue.borrow_mut().pending.clear();
        self.wake.notify_one();
    }

    /// Kill what still runs (shutdown).
    pub fn kill_all(&self) {
        self.running.kill_all();
    }
}

async fn run_one(p: &Pending, global: &Global, running: &Running) {
    let name = &p.name;
    let version = p.version;
    let cmd = match ScriptCommand::prepare(&p.command, None, global) {
        Ok(c) => c,
        Err(e) => {
            warn!("sync {name}: on_change {:?} not run: {e}", p.command);
            return;
        }
    };
    if let Some(w) = &cmd.security_warning {
        warn!("sync {name}: on_change {:?}: {w}", p.command);
    }
    let env = [
        ("BATON_SYNC_NAME", name.clone()),
        ("BATON_SYNC_VERSION", version.to_string()),
    ];
    let outcome =
        script::run_to_completion_with_env(&cmd, &[], &env, ON_CHANGE_TIMEOUT, running).await;
    if outcome.success() {
        info!("sync {name}: on_change for {version} done");
    } else {
        warn!("sync {name}: on_change for {version} {outcome}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, counter: u64) -> Pending {
        Pending {
            name: name.into(),
            version: SyncVersion { epoch: 1, counter },
            command: "/bin/true".into(),
        }
    }

    /// on_change goes through the script path: under
    /// enable_script_security a script that others may change is refused;
    /// a safe one runs with the version in its environment.
    #[test]
    fn on_change_runs_through_script_security() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::Uid::effective().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "needs root (CI runs as root)"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("baton-onchange-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = dir.join("open");
        let safe = dir.join("safe");
        for (d, mode) in [(&open, 0o777), (&safe, 0o755)] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let marker = dir.join("marker");
        let body = format!(
            "#!/bin/sh\necho \"$BATON_SYNC_NAME $BATON_SYNC_VERSION\" >> {}\n",
            marker.display()
        );
        for d in [&open, &safe] {
            let script = d.join("hook");
            std::fs::write(&script, &body).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut global = Global::new("lb1");
        global.enable_script_security = true;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let running = Running::default();
        let run = |script: &std::path::Path| Pending {
            name: "cfg".into(),
            version: SyncVersion {
                epoch: 2,
                counter: 5,
            },
            command: script.display().to_string(),
        };
        rt.block_on(run_one(&run(&open.join("hook")), &global, &running));
        assert!(!marker.exists(), "an insecure on_change ran");
        rt.block_on(run_one(&run(&safe.join("hook")), &global, &running));
        let got = std::fs::read_to_string(&marker).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, "cfg 2.5\n");
    }

    #[test]
    fn newer_versions_merge_into_the_pending_run_in_order() {
        let mut q = Queue::default();
        assert_eq!(q.push(p("a", 1)), None);
        assert_eq!(q.push(p("b", 1)), None);
        for c in 2..1000 {
            q.push(p("a", c));
        }
        assert_eq!(q.len(), 2, "bounded by the entries, not the versions");
        assert_eq!(q.merged, 998);
        assert_eq!(
            q.pop(),
            Some(p("a", 999)),
            "the latest version, first in line"
        );
        assert_eq!(q.pop(), Some(p("b", 1)));
        assert!(q.is_empty());
    }
}
