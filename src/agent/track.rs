//! The tracker (IO): runs every tracked `vrrp_script` every `interval` and
//! polls every tracked file, and reports changes as [`TrackEvent`]s for the
//! node core's [`TrackState`]. Interfaces are not watched here: the daemon
//! feeds netlink's link states to the node. The rules that turn all of it
//! into FAULT and priorities are pure and live in [`crate::node::track`];
//! running a script (user, security, process group, timeout) is
//! [`super::script`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::script::{run_to_completion, script_user_spec, Running, ScriptCommand};
use crate::config::model::{Config, Global, VrrpScript};
pub use crate::node::track::{parse_track_value, ScriptStatus, TrackEvent, TrackState};

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
// IO half: the tracker.
// ---------------------------------------------------------------------------

/// Tunables of the [`Tracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerOptions {
    /// How often tracked files are re-read (polled; no inotify).
    pub file_poll: Duration,
    /// Scripts' starting states by name (a reload carries them over);
    /// others start as configured.
    pub initial: BTreeMap<String, bool>,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            file_poll: Duration::from_secs(1),
            initial: BTreeMap::new(),
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

    /// As [`Tracker::start`], with each script starting from the state in
    /// `state` (after a reload) instead of its configured initial state.
    pub fn start_from(
        config: &Config,
        state: &TrackState,
    ) -> (Tracker, mpsc::Receiver<TrackEvent>) {
        let options = TrackerOptions {
            initial: state.script_states(),
            ..TrackerOptions::default()
        };
        Self::start_with(config, options)
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
        // Sync groups' tracking included.
        let tracked_scripts: BTreeSet<&str> = config.tracked_script_names();
        let tracked_files: BTreeSet<&str> = config.tracked_file_names();
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
                options.initial.get(&script.name).copied(),
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
    initial_up: Option<bool>,
    global: Global,
    tx: mpsc::Sender<TrackEvent>,
    running: Running,
) {
    let name = &script.name;
    let mut status = ScriptStatus::new(&script);
    if let Some(up) = initial_up {
        status.set_up(up);
    }
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
                    warn!(
                        "VRRP_Script({name}) {} (enable_script_security would refuse it)",
                        w.replacen("refusing to run", "would refuse to run", 1)
                    );
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

    #[test]
    fn a_missing_track_file_reads_as_zero_without_a_problem() {
        assert_eq!(
            read_track_file(Path::new("/nonexistent/baton/x")),
            (0, None)
        );
    }
}
