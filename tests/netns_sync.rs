//! Data sync end to end: real `baton run` processes in network namespaces,
//! the cluster channel between them, real files.
//!
//! ```text
//!   node0 (prio 200)      node1 (150)          node2 (100)
//!   <lab>/files0/app.cfg  <lab>/files1/app.cfg <lab>/files2/app.cfg
//!       |  \___________ cluster channel (TCP 7480) _______/  |
//!   +---+--------------------+--------------------+---------+
//!   |                 bridge namespace (br0)                 |
//!   +--------------------------------------------------------+
//! ```
//!
//! Each node keeps the file at its own path (entries match by name) and
//! appends `$BATON_SYNC_VERSION` to `changes` from `on_change`. Needs root:
//! without it a test prints "skipped: needs root" and passes, except under
//! `CI=true`.
//!
//! The benchmark is benches/sync.rs (`cargo bench --bench sync`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton::lab;

#[path = "support/sync_lab.rs"]
mod sync_lab;
use sync_lab::*;

/// The 64 MiB test runs alone (a write lock); the others may share the
/// machine (read locks): at 10 ms adverts, three debug-build daemons of
/// another lab beside it would measure the host, not baton.
static SERIAL: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn a_change_on_the_master_reaches_every_peer_once_and_status_shows_versions() {
    if !lab::require_root() {
        return;
    }
    let _alone = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    let mut s = SyncLab::new("sya", 3);
    s.up(&[0, 1, 2]);
    std::fs::write(s.file(0), b"backend a 10.0.0.1\n").unwrap();
    s.wait("the first change on every peer", SETTLE, |s| {
        s.everywhere(&[1, 2], b"backend a 10.0.0.1\n")
    });
    let v1 = s.committed(0);
    std::fs::write(s.file(0), b"backend a 10.0.0.1\nbackend b 10.0.0.2\n").unwrap();
    s.wait("the second change on every peer", SETTLE, |s| {
        s.everywhere(&[1, 2], b"backend a 10.0.0.1\nbackend b 10.0.0.2\n")
    });
    let v2 = s.committed(0);
    s.wait("on_change on both peers", SETTLE, |s| {
        s.changes(1).len() == 2 && s.changes(2).len() == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    for i in [1, 2] {
        assert_eq!(
            s.changes(i),
            vec![v1.clone(), v2.clone()],
            "node{i}: once per change, in order"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(s.file(i)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o7777, 0o640);
    }
    assert!(
        s.changes(0).is_empty(),
        "not on the control node's own edits"
    );
    let view = s.sync_view(0).unwrap();
    assert_eq!(view.committed.map(|v| v.to_string()), Some(v2.clone()));
    for (peer, pv) in &view.peers {
        assert_eq!(pv.map(|v| v.to_string()), Some(v2.clone()), "{peer}");
    }
    let out = s
        .lab
        .baton_cli(Path::new(BATON), 1, &["status"])
        .expect("baton status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("sync app: version {v2} here, committed {v2}")),
        "{text}"
    );
}

/// inotify with pacing: 1,000 writes within about a second on the master
/// end with every peer holding the last one, through a handful of commits
/// (on_change runs once per commit a peer applies), not a thousand.
#[test]
fn a_burst_of_a_thousand_writes_ends_with_the_last_and_a_few_commits() {
    if !lab::require_root() {
        return;
    }
    let _alone = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    let mut s = SyncLab::new("syb", 3);
    s.up(&[0, 1, 2]);
    let start = std::time::Instant::now();
    for i in 0..1000u32 {
        std::fs::write(s.file(0), format!("backend {i:04}\n")).unwrap();
        std::thread::sleep(Duration::from_micros(900));
    }
    let took = start.elapsed();
    let last = b"backend 0999\n";
    s.wait("the last write on every peer", SETTLE, |s| {
        s.everywhere(&[1, 2], last)
    });
    std::thread::sleep(Duration::from_millis(500));
    for i in [1, 2] {
        // A write that never pauses is read every 500 ms (syncfs MAX_DELAY):
        // on a loaded host the loop takes longer than a second.
        let n = s.changes(i).len();
        let bound = 3 + took.as_millis() as usize / 500;
        assert!(
            (1..=bound).contains(&n),
            "node{i}: {n} commits applied for 1,000 writes in {took:?}"
        );
    }
}

#[test]
fn master_dies_after_a_commit_the_new_master_serves_it_and_the_old_one_does_not_overwrite() {
    if !lab::require_root() {
        return;
    }
    let _alone = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    let mut s = SyncLab::new("syb", 3);
    s.up(&[0, 1, 2]);
    std::fs::write(s.file(0), b"committed\n").unwrap();
    s.wait("the change on every peer", SETTLE, |s| {
        s.everywhere(&[1, 2], b"committed\n")
    });
    s.committed(0);
    s.kill(0);
    s.wait("node1 to take over", SETTLE, |s| {
        s.lab.masters("VI_1") == vec![1]
    });
    assert_eq!(s.read(1).as_deref(), Some(&b"committed\n"[..]));
    let restamped = s.committed(1);
    assert!(restamped.starts_with("2."), "{restamped}");
    // The new master serves: its edit reaches node2.
    std::fs::write(s.file(1), b"edited on node1\n").unwrap();
    s.wait("node1's edit on node2", SETTLE, |s| {
        s.everywhere(&[2], b"edited on node1\n")
    });
    s.committed(1);
    // While node0 is down its copy is edited (a version the cluster never had).
    std::fs::write(s.file(0), b"stale edit on node0\n").unwrap();
    s.start(0);
    s.wait(
        "node0 back as master with the cluster's file",
        SETTLE,
        |s| s.lab.masters("VI_1") == vec![0] && s.everywhere(&[0, 1, 2], b"edited on node1\n"),
    );
    let v = s.committed(0);
    assert!(v.as_str() > restamped.as_str(), "{v} after {restamped}");
    let conflicts: Vec<PathBuf> = std::fs::read_dir(s.lab.dir().join("files0"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".conflict-"))
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(
        std::fs::read(&conflicts[0]).unwrap(),
        b"stale edit on node0\n"
    );
    assert!(s.lab.log(0).contains("kept as"), "the conflict is logged");
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.everywhere(&[1, 2], b"edited on node1\n"));
}

#[test]
fn a_corrupt_transfer_leaves_the_old_file_intact() {
    if !lab::require_root() {
        return;
    }
    let _alone = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    let mut s = SyncLab::new("syc", 2);
    std::fs::write(s.file(1), b"old content\n").unwrap();
    std::fs::write(s.file(0), b"new content\n").unwrap();
    s.start_corrupting(0);
    s.start(1);
    s.wait("node1 to reject a corrupt version", SETTLE, |s| {
        s.lab.log(1).contains("is corrupt")
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.read(1).as_deref(), Some(&b"old content\n"[..]));
    let names: Vec<String> = std::fs::read_dir(s.lab.dir().join("files1"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, vec!["app.cfg".to_string()], "no temp file left");
    assert!(s.changes(1).is_empty());
    let view = s.sync_view(0).unwrap();
    assert_ne!(view.committed, view.version, "not committed");
}

/// Issue 10 item 7: a large transfer cannot flood the channel. A 64 MiB
/// file syncs to both peers while 100 ms heartbeats keep every peer alive
/// (no connection drops, no peer seen dead) and 10 ms VRRP adverts cause
/// no takeover.
#[test]
fn a_64_mib_file_syncs_without_a_membership_change_or_a_takeover() {
    if !lab::require_root() {
        return;
    }
    let _alone = SERIAL.write().unwrap_or_else(|e| e.into_inner());
    let mut s = SyncLab::new("sye", 3);
    s.advert_interval = "10ms";
    s.max_size = Some("128MiB");
    s.up(&[0, 1, 2]);
    // Let the 10 ms adverts settle before counting.
    std::thread::sleep(Duration::from_millis(500));
    let became = |s: &SyncLab, i: usize| {
        s.lab
            .status(i)
            .map(|st| st.instances[0].became_master)
            .unwrap_or(u64::MAX)
    };
    let before: Vec<u64> = (0..3).map(|i| became(&s, i)).collect();
    let drops = |s: &SyncLab| -> Vec<usize> {
        (0..3)
            .map(|i| s.lab.log(i).matches("disconnected").count())
            .collect()
    };
    let drops_before = drops(&s);

    // Incompressible content, written beside and renamed in (the change
    // poll never sees half a file).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let content: Vec<u8> = (0..64usize << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tmp = s.lab.dir().join("big.tmp");
    std::fs::write(&tmp, &content).unwrap();
    let t0 = std::time::Instant::now();
    std::fs::rename(&tmp, s.file(0)).unwrap();

    // While it travels: every node sees every peer alive, node0 stays the
    // only master.
    let mut problems: Vec<String> = Vec::new();
    let deadline = t0 + Duration::from_secs(60);
    while !s.everywhere(&[1, 2], &content) {
        assert!(
            std::time::Instant::now() < deadline,
            "64 MiB not on both peers in 60 s; seen: {problems:?}\n{}",
            s.lab.log(0)
        );
        for i in 0..3 {
            if let Some(c) = s.lab.status(i).and_then(|st| st.cluster) {
                for p in c.peers.iter().filter(|p| !p.alive) {
                    problems.push(format!("node{i} saw {} dead", p.name));
                }
            }
        }
        let masters = s.lab.masters("VI_1");
        if masters != vec![0] {
            problems.push(format!("masters {masters:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = t0.elapsed();
    s.committed(0);
    let want = baton::cluster::sync::to_hex(&baton::cluster::sync::digest(&content));
    for i in 0..3 {
        let view = s.sync_view(i).expect("status");
        assert_eq!(view.digest.as_deref(), Some(want.as_str()), "node{i}");
    }
    let after: Vec<u64> = (0..3).map(|i| became(&s, i)).collect();
    let logs = || -> String {
        (0..3)
            .map(|i| format!("--- node{i} ---\n{}\n", s.lab.log(i)))
            .collect()
    };
    assert!(
        after == before && drops(&s) == drops_before && problems.is_empty(),
        "became master {before:?} -> {after:?}, connections dropped {drops_before:?} -> {:?}, \
         during the transfer: {problems:?}\n{}",
        drops(&s),
        logs()
    );
    eprintln!("64 MiB on both peers in {took:?}");
}
