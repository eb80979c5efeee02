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
//! The benchmark (`cargo test --release --test netns_sync -- --ignored
//! --nocapture bench`) prints the rows of BENCHMARKS.md "Data sync".

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::lab::{self, Lab};
use baton::cluster::sync::SyncView;
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const SETTLE: Duration = Duration::from_secs(10);

fn root_or_skip() -> bool {
    if lab::is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("netns tests need root; CI runs as root");
    }
    println!("skipped: needs root");
    false
}

struct SyncLab {
    lab: Lab,
    key: PathBuf,
    pids: Vec<Option<u32>>,
}

const PRIORITIES: [u8; 3] = [200, 150, 100];

impl SyncLab {
    fn new(tag: &str, nodes: usize) -> SyncLab {
        let lab = Lab::new(tag, nodes).expect("building the namespace lab");
        let key = lab
            .write_cluster_key(b"0123456789abcdef0123456789abcdef")
            .expect("cluster key");
        for i in 0..nodes {
            std::fs::create_dir_all(lab.dir().join(format!("files{i}"))).unwrap();
        }
        SyncLab {
            lab,
            key,
            pids: vec![None; nodes],
        }
    }

    fn file(&self, i: usize) -> PathBuf {
        self.lab.dir().join(format!("files{i}/app.cfg"))
    }

    fn changes(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.lab.dir().join(format!("files{i}/changes")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn read(&self, i: usize) -> Option<Vec<u8>> {
        std::fs::read(self.file(i)).ok()
    }

    fn config(&self, i: usize) -> String {
        let a = self.lab.node_addr4(0).octets();
        let vip = Ipv4Addr::new(a[0], a[1], a[2], 100);
        let changes = self.lab.dir().join(format!("files{i}/changes"));
        format!(
            "{}sync_instance = \"VI_1\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = {}\nversion = 3\nadvert_interval = \"100ms\"\npreempt = true\n\
             virtual_ips = [\"{vip}/24\"]\n\n[[sync]]\nname = \"app\"\npath = \"{}\"\nmode = \"0640\"\n\
             on_change = \"/bin/sh -c 'echo $BATON_SYNC_VERSION >> {}'\"\n",
            self.lab.cluster_toml(i, &self.key, "100ms"),
            PRIORITIES[i],
            self.file(i).display(),
            changes.display()
        )
    }

    fn start(&mut self, i: usize) {
        let pid = self
            .lab
            .start_baton(Path::new(BATON), i, &self.config(i))
            .expect("starting baton");
        self.pids[i] = Some(pid);
    }

    /// Start node i with the test hook that corrupts every chunk it sends.
    fn start_corrupting(&mut self, i: usize) {
        let f = self.lab.node_files(i);
        std::fs::write(
            &f.config,
            format!("{}{}", self.lab.global_toml(i), self.config(i)),
        )
        .unwrap();
        let cfg = f.config.display().to_string();
        let ns = self.lab.node_ns(i).to_string();
        let pid = self
            .lab
            .spawn(
                &ns,
                Path::new("/usr/bin/env"),
                &["BATON_TEST_CORRUPT_SYNC=1", BATON, "run", "-f", &cfg],
                &f.log,
            )
            .expect("starting baton");
        self.pids[i] = Some(pid);
    }

    fn kill(&mut self, i: usize) {
        if let Some(pid) = self.pids[i].take() {
            self.lab.signal(pid, Signal::SIGKILL).unwrap();
            let _ = self.lab.wait(pid, Duration::from_secs(5));
        }
    }

    fn sync_view(&self, i: usize) -> Option<SyncView> {
        self.lab
            .status(i)
            .and_then(|s| s.cluster)
            .and_then(|c| c.sync.into_iter().next())
    }

    fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&SyncLab) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            if Instant::now() >= deadline {
                let logs: String = (0..self.pids.len())
                    .map(|i| format!("--- node{i} ---\n{}\n", self.lab.log(i)))
                    .collect();
                panic!("timed out waiting for {what}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn up(&mut self, nodes: &[usize]) {
        for &i in nodes {
            self.start(i);
        }
        self.wait("node0 master and the mesh", SETTLE, |s| {
            s.lab.masters("VI_1") == vec![0]
                && nodes.iter().all(|&i| {
                    s.lab.status(i).and_then(|st| st.cluster).is_some_and(|c| {
                        c.peers
                            .iter()
                            .filter(|p| nodes.iter().any(|&n| p.name == format!("node{n}")))
                            .all(|p| p.alive)
                    })
                })
        });
    }

    fn everywhere(&self, nodes: &[usize], content: &[u8]) -> bool {
        nodes
            .iter()
            .all(|&i| self.read(i).as_deref() == Some(content))
    }

    /// Wait until `node` (the control node) reports its version committed.
    fn committed(&self, node: usize) -> String {
        let mut v = String::new();
        self.wait("the version to commit", SETTLE, |s| {
            s.sync_view(node)
                .is_some_and(|view| view.version.is_some() && view.committed == view.version)
        });
        if let Some(view) = self.sync_view(node) {
            v = view.version.map(|v| v.to_string()).unwrap_or_default();
        }
        v
    }
}

#[test]
fn a_change_on_the_master_reaches_every_peer_once_and_status_shows_versions() {
    if !root_or_skip() {
        return;
    }
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

#[test]
fn master_dies_after_a_commit_the_new_master_serves_it_and_the_old_one_does_not_overwrite() {
    if !root_or_skip() {
        return;
    }
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
    if !root_or_skip() {
        return;
    }
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

/// BENCHMARKS.md "Data sync": time from writing the file on the master to
/// the content on both peers, 3-node cluster. Includes the 200 ms poll.
#[test]
#[ignore]
fn bench_sync_latency() {
    if !root_or_skip() {
        return;
    }
    let mut s = SyncLab::new("syd", 3);
    s.up(&[0, 1, 2]);
    for (label, size) in [("1 KiB", 1024usize), ("1 MiB", 1 << 20)] {
        let mut times = Vec::new();
        for round in 0..10u8 {
            let content: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_add(round)).collect();
            let t0 = Instant::now();
            std::fs::write(s.file(0), &content).unwrap();
            s.wait("the change on both peers", SETTLE, |s| {
                s.everywhere(&[1, 2], &content)
            });
            times.push(t0.elapsed());
            s.committed(0);
            // Desynchronise from the poll phase.
            std::thread::sleep(Duration::from_millis(37 + u64::from(round) * 17));
        }
        times.sort();
        println!(
            "{label}: min {:?} median {:?} max {:?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
