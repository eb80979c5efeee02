//! The runtime half of tracking and notify with real processes: the tracker
//! runs scripts (rise/fall, timeouts, users, script security) and the
//! notifier delivers in order (scripts, arguments, FIFO).
//!
//! Some tests need root (running as `nobody`, root-only script security);
//! they say so and pass without checking when not root.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::notify::{Notifier, DEFAULT_SCRIPT_TIMEOUT};
use baton::agent::script::check_script_security;
use baton::agent::track::{TrackEvent, Tracker};
use baton::config::model::{Config, Global, Instance, Notify, TrackRef, VrrpScript};
use baton::vrrp::State;
use tokio::sync::mpsc;

fn run<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// A fresh directory for one test, root-owned and 0755 (so that script
/// security accepts what is in it).
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("track_notify")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    chmod(&dir, 0o755);
    dir
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    chmod(&path, 0o755);
    path
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn wait_for(mut cond: impl FnMut() -> bool, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn tracking_config(script: VrrpScript) -> Config {
    let mut config = Config::new("t");
    let mut inst = Instance::new("VI_1", "eth0", 1);
    inst.track_scripts.push(TrackRef::new(script.name.clone()));
    config.instances.push(inst);
    config.vrrp_scripts.push(script);
    config
}

async fn next_event(rx: &mut mpsc::Receiver<TrackEvent>, limit: Duration) -> Option<TrackEvent> {
    tokio::time::timeout(limit, rx.recv()).await.ok().flatten()
}

#[test]
fn tracker_counts_rise_and_fall_in_a_row() {
    let dir = test_dir("rise_fall");
    // Run n (counted in `runs`) exits with line n of `results` (0 after).
    let runs = dir.join("runs");
    let results = dir.join("results");
    std::fs::write(&results, "0\n1\n0\n1\n1\n0\n1\n0\n0\n").unwrap();
    let script = write_script(
        &dir,
        "seq.sh",
        r#"n=$(cat "$1" 2>/dev/null | wc -l)
echo run >> "$1"
r=$(sed -n "$((n + 1))p" "$2")
exit ${r:-0}"#,
    );
    let mut s = VrrpScript::new(
        "chk",
        format!(
            "{} {} {}",
            script.display(),
            runs.display(),
            results.display()
        ),
    );
    s.interval = Duration::from_millis(200);
    s.fall = 2;
    s.rise = 2;
    let config = tracking_config(s);
    run(async {
        let (mut tracker, mut rx) = Tracker::start(&config);
        // ok, fail, ok (resets), fail, fail -> down after run 5.
        let e = next_event(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(
            e,
            Some(TrackEvent::Script {
                name: "chk".into(),
                up: false
            })
        );
        assert_eq!(lines(&runs).len(), 5, "down after the 2nd failure in a row");
        // ok, fail (resets), ok, ok -> up after run 9.
        let e = next_event(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(
            e,
            Some(TrackEvent::Script {
                name: "chk".into(),
                up: true
            })
        );
        assert_eq!(lines(&runs).len(), 9, "up after the 2nd success in a row");
        tracker.stop();
    });
}

#[test]
fn init_fail_script_comes_up_after_rise() {
    let dir = test_dir("init_fail");
    let mut s = VrrpScript::new("chk", "true");
    s.interval = Duration::from_millis(100);
    s.init_fail = true;
    s.rise = 3;
    let config = tracking_config(s);
    let _ = dir;
    run(async {
        let started = Instant::now();
        let (_tracker, mut rx) = Tracker::start(&config);
        let e = next_event(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(
            e,
            Some(TrackEvent::Script {
                name: "chk".into(),
                up: true
            })
        );
        // Runs at 0, 100 and 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(190));
    });
}

#[test]
fn script_past_its_timeout_is_killed_with_its_group_and_counted_down() {
    let dir = test_dir("timeout");
    let pid_file = dir.join("pid");
    let child_file = dir.join("child");
    let script = write_script(
        &dir,
        "hang.sh",
        r#"echo $$ > "$1"
sleep 30 &
echo $! > "$2"
wait"#,
    );
    let mut s = VrrpScript::new(
        "chk",
        format!(
            "{} {} {}",
            script.display(),
            pid_file.display(),
            child_file.display()
        ),
    );
    s.interval = Duration::from_secs(2);
    s.timeout = Some(Duration::from_millis(300));
    let config = tracking_config(s);
    run(async {
        let started = Instant::now();
        let (_tracker, mut rx) = Tracker::start(&config);
        let e = next_event(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(
            e,
            Some(TrackEvent::Script {
                name: "chk".into(),
                up: false
            })
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        let pid = read_pid(&pid_file).expect("script wrote its pid");
        let child = read_pid(&child_file).expect("script wrote its child's pid");
        assert!(!alive(pid), "script {pid} still runs");
        assert!(
            wait_for(|| !alive(child), Duration::from_secs(2)).await,
            "its background child {child} still runs"
        );
    });
}

#[test]
fn stopping_the_tracker_kills_running_scripts() {
    let dir = test_dir("stop");
    let pid_file = dir.join("pid");
    let script = write_script(&dir, "hang.sh", "echo $$ > \"$1\"\nexec sleep 30");
    let mut s = VrrpScript::new(
        "chk",
        format!("{} {}", script.display(), pid_file.display()),
    );
    s.interval = Duration::from_secs(60);
    let config = tracking_config(s);
    run(async {
        let (mut tracker, _rx) = Tracker::start(&config);
        assert!(wait_for(|| read_pid(&pid_file).is_some(), Duration::from_secs(5)).await);
        let pid = read_pid(&pid_file).unwrap();
        assert!(alive(pid));
        tracker.stop();
        assert!(
            wait_for(|| !alive(pid), Duration::from_secs(2)).await,
            "{pid} survived stop"
        );
    });
}

#[test]
fn scripts_run_as_their_user() {
    if !is_root() {
        eprintln!("skipped: needs root to run scripts as nobody");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let dir = test_dir("user");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    chmod(&out, 0o777);
    let script = write_script(&dir, "id.sh", "id -u > \"$1\"");

    // vrrp_script user.
    let mut s = VrrpScript::new(
        "chk",
        format!("{} {}", script.display(), out.join("track").display()),
    );
    s.user = Some("nobody".into());
    let config = tracking_config(s);
    // Global script_user, for notify scripts.
    let mut global = Global::new("t");
    global.script_user = Some("nobody".into());
    global.enable_script_security = true;
    let notify = Notify {
        master: Some(format!(
            "{} {}",
            script.display(),
            out.join("notify").display()
        )),
        ..Notify::default()
    };
    run(async {
        let (_tracker, _rx) = Tracker::start(&config);
        let notifier = Notifier::new(&global);
        notifier.state_change("VI_1", &notify, State::Master, 100);
        notifier.close().await;
        let written =
            || std::fs::read_to_string(out.join("track")).is_ok_and(|t| t.ends_with('\n'));
        assert!(wait_for(written, Duration::from_secs(5)).await);
    });
    let uid = nobody.uid.to_string();
    assert_eq!(
        std::fs::read_to_string(out.join("track")).unwrap().trim(),
        uid
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notify")).unwrap().trim(),
        uid
    );
}

#[test]
fn script_security_refuses_what_others_can_change() {
    if !is_root() {
        eprintln!("skipped: script security only applies to scripts run as root");
        return;
    }
    let dir = test_dir("security");
    let good = write_script(&dir, "good.sh", "exit 0");
    assert_eq!(
        check_script_security(&good.display().to_string(), None),
        Ok(())
    );

    let bad = write_script(&dir, "bad.sh", "exit 0");
    chmod(&bad, 0o777);
    let err = check_script_security(&format!("{} arg", bad.display()), None).unwrap_err();
    assert!(err.contains("refusing to run"), "{err}");
    assert!(
        err.contains(&format!("{} is writable by everyone", bad.display())),
        "{err}"
    );
    // Not root: nothing to protect.
    assert_eq!(
        check_script_security(&bad.display().to_string(), Some("nobody")),
        Ok(())
    );

    let open_dir = dir.join("open");
    std::fs::create_dir(&open_dir).unwrap();
    let inside = write_script(&open_dir, "inside.sh", "exit 0");
    chmod(&open_dir, 0o775);
    // Group-writable by root's group: keepalived accepts that, and so do we.
    assert_eq!(
        check_script_security(&inside.display().to_string(), None),
        Ok(())
    );
    // By another group: refused.
    nix::unistd::chown(&open_dir, None, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
    let err = check_script_security(&inside.display().to_string(), None).unwrap_err();
    assert!(
        err.contains(&format!("{} is writable by its group", open_dir.display())),
        "{err}"
    );

    // Found through PATH as exec finds it: `true` is in a root-owned place.
    assert_eq!(check_script_security("true", None), Ok(()));

    // With enable_script_security the tracker never runs it and counts a failure.
    let marker = dir.join("ran");
    let touch = write_script(&dir, "touch.sh", "echo ran > \"$1\"");
    chmod(&touch, 0o777);
    let mut s = VrrpScript::new("chk", format!("{} {}", touch.display(), marker.display()));
    s.interval = Duration::from_millis(100);
    let mut config = tracking_config(s);
    config.global.enable_script_security = true;
    run(async {
        let (_tracker, mut rx) = Tracker::start(&config);
        let e = next_event(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(
            e,
            Some(TrackEvent::Script {
                name: "chk".into(),
                up: false
            })
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    assert!(!marker.exists(), "an insecure script ran as root");

    // Without it, the script runs (the refusal is only a warning).
    config.global.enable_script_security = false;
    run(async {
        let (_tracker, _rx) = Tracker::start(&config);
        assert!(wait_for(|| marker.exists(), Duration::from_secs(5)).await);
    });
}

fn generic_logger(dir: &Path) -> PathBuf {
    // Appends its arguments after the first (the output file) as one line.
    // MASTER takes longer: scripts run side by side would reorder lines.
    write_script(
        dir,
        "log.sh",
        r#"out=$1
shift
case "$*" in *MASTER*) sleep 0.03 ;; esac
echo "$@" >> "$out""#,
    )
}

#[test]
fn notify_delivers_rapid_changes_in_order_with_four_arguments() {
    let dir = test_dir("order");
    let log = generic_logger(&dir);
    let out = dir.join("out");
    let notify = Notify {
        generic: Some(format!(
            "{} {} 'configured arg'",
            log.display(),
            out.display()
        )),
        ..Notify::default()
    };
    let states = [State::Master, State::Backup, State::Fault];
    let expected: Vec<String> = (0..50u8)
        .map(|i| {
            let word = ["MASTER", "BACKUP", "FAULT"][usize::from(i % 3)];
            format!("configured arg INSTANCE VI_1 {word} {}", 100 + i)
        })
        .collect();
    run(async {
        let notifier = Notifier::new(&Global::new("t"));
        let started = Instant::now();
        for i in 0..50u8 {
            notifier.state_change("VI_1", &notify, states[usize::from(i % 3)], 100 + i);
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "the caller waited"
        );
        notifier.close().await;
    });
    assert_eq!(lines(&out), expected);
}

#[test]
fn notify_picks_the_script_for_the_state() {
    let dir = test_dir("select");
    let log = generic_logger(&dir);
    let out = dir.join("out");
    let cmd = |tag: &str| Some(format!("{} {} {tag}", log.display(), out.display()));
    let notify = Notify {
        master: cmd("master"),
        backup: cmd("backup"),
        fault: cmd("fault"),
        stop: cmd("stop"),
        generic: cmd("gen"),
    };
    let group_notify = Notify {
        stop: None,
        ..notify.clone()
    };
    run(async {
        let notifier = Notifier::new(&Global::new("t"));
        notifier.state_change("VI_1", &notify, State::Master, 100);
        notifier.state_change("VI_1", &notify, State::Backup, 90);
        notifier.state_change("VI_1", &notify, State::Fault, 80);
        notifier.state_change("VI_1", &notify, State::Initialize, 70);
        notifier.group_state_change("G1", &group_notify, State::Backup);
        notifier.group_state_change("G1", &group_notify, State::Initialize);
        // Only the generic script.
        let only_generic = Notify {
            generic: cmd("gen"),
            ..Notify::default()
        };
        notifier.state_change("VI_2", &only_generic, State::Master, 1);
        notifier.close().await;
    });
    assert_eq!(
        lines(&out),
        [
            "master",
            "gen INSTANCE VI_1 MASTER 100",
            "backup",
            "gen INSTANCE VI_1 BACKUP 90",
            "fault",
            "gen INSTANCE VI_1 FAULT 80",
            "stop",
            "gen INSTANCE VI_1 STOP 70",
            "backup",
            "gen GROUP G1 BACKUP 0",
            "gen INSTANCE VI_2 MASTER 1",
        ]
    );
}

#[test]
fn notify_script_past_its_timeout_is_killed_and_the_next_runs() {
    let dir = test_dir("notify_timeout");
    let log = generic_logger(&dir);
    let out = dir.join("out");
    let pid_file = dir.join("pid");
    let slow = write_script(&dir, "slow.sh", "echo $$ > \"$1\"\nexec sleep 30");
    let notify = Notify {
        master: Some(format!("{} {}", slow.display(), pid_file.display())),
        generic: Some(format!("{} {}", log.display(), out.display())),
        ..Notify::default()
    };
    assert_eq!(DEFAULT_SCRIPT_TIMEOUT, Duration::from_secs(30));
    run(async {
        let notifier = Notifier::with_timeout(&Global::new("t"), Duration::from_millis(300));
        let started = Instant::now();
        notifier.state_change("VI_1", &notify, State::Master, 100);
        notifier.state_change("VI_1", &notify, State::Backup, 100);
        notifier.close().await;
        assert!(started.elapsed() < Duration::from_secs(5));
    });
    let pid = read_pid(&pid_file).expect("slow script ran");
    assert!(!alive(pid), "{pid} survived its timeout");
    assert_eq!(
        lines(&out),
        ["INSTANCE VI_1 MASTER 100", "INSTANCE VI_1 BACKUP 100"]
    );
}

/// Reads lines from a FIFO on a thread. Opened read-write so that it never
/// sees end-of-file, and opened before anything is written.
fn fifo_reader(path: &Path) -> std::sync::mpsc::Receiver<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open FIFO");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn fifo_gets_keepalived_lines_in_order() {
    let dir = test_dir("fifo");
    let fifo = dir.join("notify.fifo");
    let mut global = Global::new("t");
    global.notify_fifo = Some(fifo.clone());
    let notify = Notify::default();
    run(async {
        let notifier = Notifier::new(&global);
        let meta = std::fs::metadata(&fifo).expect("the FIFO is created");
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        // No reader yet: dropped, and nothing blocks.
        notifier.state_change("VI_0", &notify, State::Master, 1);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let rx = fifo_reader(&fifo);
        notifier.state_change("VI_1", &notify, State::Master, 100);
        notifier.group_state_change("G1", &notify, State::Backup);
        notifier.state_change("VI_1", &notify, State::Fault, 90);
        notifier.state_change("VI_1", &notify, State::Initialize, 90);
        notifier.close().await;
        let got: Vec<String> = (0..4)
            .map_while(|_| rx.recv_timeout(Duration::from_secs(5)).ok())
            .collect();
        assert_eq!(
            got,
            [
                "INSTANCE \"VI_1\" MASTER 100",
                "GROUP \"G1\" BACKUP 0",
                "INSTANCE \"VI_1\" FAULT 90",
                "INSTANCE \"VI_1\" STOP 90",
            ]
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "extra line"
        );
    });
}

#[test]
fn fifo_script_reads_the_fifo_and_is_killed_at_close() {
    let dir = test_dir("fifo_script");
    let fifo = dir.join("notify.fifo");
    let out = dir.join("out");
    let pid_file = dir.join("pid");
    // Its last argument is the FIFO.
    let reader = write_script(
        &dir,
        "reader.sh",
        "echo $$ > \"$1\"\nexec cat \"$3\" >> \"$2\"",
    );
    let mut global = Global::new("t");
    global.notify_fifo = Some(fifo.clone());
    global.notify_fifo_script = Some(format!(
        "{} {} {}",
        reader.display(),
        pid_file.display(),
        out.display()
    ));
    run(async {
        let notifier = Notifier::new(&global);
        notifier.state_change("VI_1", &Notify::default(), State::Backup, 100);
        notifier.state_change("VI_1", &Notify::default(), State::Master, 100);
        assert!(
            wait_for(|| lines(&out).len() == 2, Duration::from_secs(5)).await,
            "{:?}",
            lines(&out)
        );
        let pid = read_pid(&pid_file).expect("the FIFO script started");
        assert!(alive(pid));
        notifier.close().await;
        assert!(!alive(pid), "the FIFO script survived close");
    });
    assert_eq!(
        lines(&out),
        [
            "INSTANCE \"VI_1\" BACKUP 100",
            "INSTANCE \"VI_1\" MASTER 100"
        ]
    );
}
