//! A 3-node lab with the cluster channel and one synced file per node, for
//! the data-sync tests (tests/netns_sync.rs) and benchmark (benches/sync.rs).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::cluster::sync::SyncView;
use baton::lab::Lab;
use nix::sys::signal::Signal;

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");
pub const SETTLE: Duration = Duration::from_secs(10);

pub struct SyncLab {
    pub lab: Lab,
    key: PathBuf,
    pids: Vec<Option<u32>>,
    /// VRRP advert interval of every node ("100ms" unless changed).
    pub advert_interval: &'static str,
    /// The `[[sync]]` entry's `max_size`, when not the default.
    pub max_size: Option<&'static str>,
    /// Serve metrics on each node's address, port [`METRICS_PORT`].
    pub metrics: bool,
}

pub const METRICS_PORT: u16 = 9650;

pub const PRIORITIES: [u8; 3] = [200, 150, 100];

impl SyncLab {
    pub fn new(tag: &str, nodes: usize) -> SyncLab {
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
            advert_interval: "100ms",
            max_size: None,
            metrics: false,
        }
    }

    pub fn file(&self, i: usize) -> PathBuf {
        self.lab.dir().join(format!("files{i}/app.cfg"))
    }

    pub fn changes(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.lab.dir().join(format!("files{i}/changes")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn read(&self, i: usize) -> Option<Vec<u8>> {
        std::fs::read(self.file(i)).ok()
    }

    pub fn config(&self, i: usize) -> String {
        let a = self.lab.node_addr4(0).octets();
        let vip = Ipv4Addr::new(a[0], a[1], a[2], 100);
        let changes = self.lab.dir().join(format!("files{i}/changes"));
        format!(
            "{}sync_instance = \"VI_1\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = {}\nversion = 3\nadvert_interval = \"{}\"\npreempt = true\n\
             virtual_ips = [\"{vip}/24\"]\n\n[[sync]]\nname = \"app\"\npath = \"{}\"\nmode = \"0640\"\n\
             on_change = \"/bin/sh -c 'echo $BATON_SYNC_VERSION >> {}'\"\n{}",
            self.lab.cluster_toml(i, &self.key, "100ms"),
            PRIORITIES[i],
            self.advert_interval,
            self.file(i).display(),
            changes.display(),
            self.max_size
                .map(|m| format!("max_size = \"{m}\"\n"))
                .unwrap_or_default()
        )
    }

    pub fn start(&mut self, i: usize) {
        // Still in [global]: start_baton puts that table first.
        let metrics = if self.metrics {
            format!(
                "metrics_listen = \"{}:{METRICS_PORT}\"\n\n",
                self.lab.node_addr4(i)
            )
        } else {
            String::new()
        };
        let pid = self
            .lab
            .start_baton(Path::new(BATON), i, &format!("{metrics}{}", self.config(i)))
            .expect("starting baton");
        self.pids[i] = Some(pid);
    }

    /// Start node i with the test hook that corrupts every chunk it sends.
    pub fn start_corrupting(&mut self, i: usize) {
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

    pub fn kill(&mut self, i: usize) {
        if let Some(pid) = self.pids[i].take() {
            self.lab.signal(pid, Signal::SIGKILL).unwrap();
            let _ = self.lab.wait(pid, Duration::from_secs(5));
        }
    }

    pub fn sync_view(&self, i: usize) -> Option<SyncView> {
        self.lab
            .status(i)
            .and_then(|s| s.cluster)
            .and_then(|c| c.sync.into_iter().next())
    }

    pub fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&SyncLab) -> bool) {
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

    pub fn up(&mut self, nodes: &[usize]) {
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

    pub fn everywhere(&self, nodes: &[usize], content: &[u8]) -> bool {
        nodes
            .iter()
            .all(|&i| self.read(i).as_deref() == Some(content))
    }

    /// Wait until `node` (the control node) reports its version committed.
    pub fn committed(&self, node: usize) -> String {
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
