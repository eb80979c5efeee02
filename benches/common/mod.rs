//! What the failover and cluster benches share: the three-node lab with
//! keepalived or baton (with or without the cluster channel) in it, the
//! agents' configs, memory from /proc, the number formatting, the header
//! lines and the `BATON_BENCH_*` knobs that both read.
//!
//! Each bench uses only a part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use baton::lab::Lab;
use nix::sys::signal::Signal;

pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
pub const VRID: u8 = 51;
pub const PRIORITIES: [u8; 3] = [150, 100, 50];
/// The client pings this often: the outage resolution.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// Prober running before the trigger, so the client has resolved the VIP.
pub const LEAD_IN: Duration = Duration::from_millis(300);
/// The cluster channel's key (mode 0600 in the lab dir) and heartbeat.
pub const CLUSTER_KEY: &[u8] = b"baton failover bench cluster key, not secret";
pub const HEARTBEAT: &str = "100ms";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Keepalived,
    /// baton on plain VRRP (no `[cluster]`).
    Baton,
    /// baton with the cluster channel (`[cluster]`, full mesh).
    BatonChannel,
}

impl Agent {
    pub fn name(self) -> &'static str {
        match self {
            Agent::Keepalived => "keepalived",
            Agent::Baton => "baton",
            Agent::BatonChannel => "baton+channel",
        }
    }
}

pub struct Interval {
    pub label: &'static str,
    pub advert: Duration,
    /// keepalived's `advert_int` (seconds).
    pub keepalived: &'static str,
    /// baton's `advert_interval`.
    pub toml: &'static str,
}

pub const INTERVALS: [Interval; 3] = [
    Interval {
        label: "1 s",
        advert: Duration::from_secs(1),
        keepalived: "1",
        toml: "1s",
    },
    Interval {
        label: "100 ms",
        advert: Duration::from_millis(100),
        keepalived: "0.1",
        toml: "100ms",
    },
    Interval {
        label: "10 ms",
        advert: Duration::from_millis(10),
        keepalived: "0.01",
        toml: "10ms",
    },
];

/// RFC 5798: 3 * interval + skew, skew = (256 - priority) * interval / 256.
pub fn master_down(advert: Duration, priority: u8) -> Duration {
    advert * 3 + advert * (256 - u32::from(priority)) / 256
}

pub fn keepalived_conf(node: usize, priority: u8, iv: &Interval) -> String {
    // preempt is keepalived's default; GARP settings are left at theirs.
    format!(
        "global_defs {{\n    router_id node{node}\n    vrrp_version 3\n}}\n\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {VRID}\n    priority {priority}\n    advert_int {}\n    \
         virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n",
        iv.keepalived
    )
}

pub fn baton_toml(priority: u8, iv: &Interval) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"{}\"\npreempt = true\n\
         virtual_ips = [\"{VIP}/24\"]\n",
        iv.toml
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    /// Proportional set size: shared pages split between their users, so a
    /// sum over a process tree does not count the libraries twice.
    pub pss_kb: u64,
    /// VmRSS split: private heap/stack vs mapped files (binary, libraries).
    pub anon_kb: u64,
    pub file_kb: u64,
    pub threads: u64,
}

impl std::ops::Add for Mem {
    type Output = Mem;
    fn add(self, o: Mem) -> Mem {
        Mem {
            rss_kb: self.rss_kb + o.rss_kb,
            hwm_kb: self.hwm_kb + o.hwm_kb,
            pss_kb: self.pss_kb + o.pss_kb,
            anon_kb: self.anon_kb + o.anon_kb,
            file_kb: self.file_kb + o.file_kb,
            threads: self.threads + o.threads,
        }
    }
}

pub fn proc_mem(pid: u32) -> Option<Mem> {
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some(Mem {
        rss_kb: field(&status, "VmRSS:")?,
        hwm_kb: field(&status, "VmHWM:")?,
        pss_kb: field(&rollup, "Pss:").unwrap_or(0),
        anon_kb: field(&status, "RssAnon:").unwrap_or(0),
        file_kb: field(&status, "RssFile:").unwrap_or(0),
        threads: field(&status, "Threads:").unwrap_or(0),
    })
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(all.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    tree
}

/// Memory of one node's agent: the whole process tree, and the process that
/// speaks VRRP (keepalived's VRRP child; baton's only process).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeMem {
    pub tree: Mem,
    pub vrrp: Mem,
    pub processes: usize,
}

/// A lab with three agents. Dropping it kills every process left in the node
/// namespaces (keepalived's children too) before the lab itself goes.
pub struct Cluster {
    pub agent: Agent,
    pub pids: Vec<u32>,
    pub lab: Lab,
}

impl Cluster {
    pub fn start(agent: Agent, iv: &Interval, baton: &Path) -> Result<Cluster, String> {
        let lab = Lab::new("fo", PRIORITIES.len()).map_err(|e| format!("lab: {e}"))?;
        let key = match agent {
            Agent::BatonChannel => Some(
                lab.write_cluster_key(CLUSTER_KEY)
                    .map_err(|e| format!("cluster key: {e}"))?,
            ),
            _ => None,
        };
        let mut c = Cluster {
            agent,
            pids: Vec::new(),
            lab,
        };
        for (i, &prio) in PRIORITIES.iter().enumerate() {
            let pid = match agent {
                Agent::Keepalived => c.start_keepalived(i, prio, iv)?,
                Agent::Baton | Agent::BatonChannel => {
                    let cluster = key
                        .as_ref()
                        .map(|k| c.lab.cluster_toml(i, k, HEARTBEAT))
                        .unwrap_or_default();
                    c.lab
                        .start_baton(baton, i, &format!("{cluster}{}", baton_toml(prio, iv)))
                        .map_err(|e| format!("node{i}: baton: {e}"))?
                }
            };
            c.pids.push(pid);
        }
        Ok(c)
    }

    pub fn kfile(&self, i: usize, what: &str) -> PathBuf {
        self.lab.dir().join(format!("keepalived{i}.{what}"))
    }

    fn start_keepalived(&mut self, i: usize, prio: u8, iv: &Interval) -> Result<u32, String> {
        let cfg = self.kfile(i, "conf");
        std::fs::write(&cfg, keepalived_conf(i, prio, iv)).map_err(|e| e.to_string())?;
        let ns = self.lab.node_ns(i).to_string();
        let cfg_s = cfg.display().to_string();
        self.lab
            .ns(&ns, "keepalived", &["-t", "-f", &cfg_s])
            .map_err(|e| format!("node{i}: config test: {e}"))?;
        let pid = self.kfile(i, "pid").display().to_string();
        let vrrp = self.kfile(i, "vrrp.pid").display().to_string();
        let checkers = self.kfile(i, "checkers.pid").display().to_string();
        let log = self.lab.node_files(i).log;
        let args = [
            "-n", "-l", "-D", "-f", &cfg_s, "-p", &pid, "-r", &vrrp, "-c", &checkers,
        ];
        self.lab
            .spawn(&ns, Path::new("keepalived"), &args, &log)
            .map_err(|e| format!("node{i}: keepalived: {e}"))
    }

    pub fn mem(&self, i: usize) -> NodeMem {
        let tree = process_tree(self.pids[i]);
        let total = tree
            .iter()
            .filter_map(|&p| proc_mem(p))
            .fold(Mem::default(), |a, b| a + b);
        let vrrp_pid = match self.agent {
            Agent::Keepalived => std::fs::read_to_string(self.kfile(i, "vrrp.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            Agent::Baton | Agent::BatonChannel => Some(self.pids[i]),
        };
        NodeMem {
            tree: total,
            vrrp: vrrp_pid.and_then(proc_mem).unwrap_or_default(),
            processes: tree.len(),
        }
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.lab.nodes() {
            let log = self.lab.log(i);
            let all: Vec<&str> = log.lines().collect();
            out.push_str(&format!("  --- node{i} log (last {lines} lines) ---\n"));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }

    /// "Entering MASTER STATE" lines over all nodes' logs so far.
    pub fn master_entries(&self) -> usize {
        (0..self.lab.nodes())
            .map(|i| self.lab.log(i).matches("Entering MASTER STATE").count())
            .sum()
    }

    pub fn holders(&self) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(VIP))
    }

    /// Wait until node0 alone holds the VIP (within three of its
    /// master-down intervals and 5 s). The error starts with "node0 was
    /// not" and ends with the log tails.
    pub fn wait_node0_alone(&self, iv: &Interval) -> Result<(), String> {
        let startup = master_down(iv.advert, PRIORITIES[0]) * 3 + Duration::from_secs(5);
        if !self
            .lab
            .wait_for(startup, |l| l.holders(IpAddr::V4(VIP)) == [0])
        {
            return Err(format!(
                "node0 was not the only VIP holder within {startup:?} (holders {:?})\n{}",
                self.holders(),
                self.log_tails(12)
            ));
        }
        Ok(())
    }
}

pub fn netns_pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILL every process left in the lab's node namespaces (not this one)
/// until none is, reaping `pids` (our own children) so that they do not
/// linger as zombies. For the labs' Drop.
pub fn kill_lab_processes(lab: &mut Lab, pids: &[u32]) {
    let me = std::process::id();
    for _ in 0..50 {
        let left: Vec<u32> = (0..lab.nodes())
            .flat_map(|i| netns_pids(lab.node_ns(i)))
            .filter(|&p| p != me)
            .collect();
        if left.is_empty() {
            break;
        }
        for &p in &left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), Signal::SIGKILL);
        }
        for &p in pids {
            let _ = lab.wait(p, Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        kill_lab_processes(&mut self.lab, &self.pids);
    }
}

/// With `BATON_BENCH_CAPTURE` set (and `BATON_KEEP_LAB=1` to keep it):
/// record what the client saw (ARP and VRRP) in the lab's `client.pcap`.
pub fn start_capture(c: &mut Cluster) -> Result<(), String> {
    if std::env::var_os("BATON_BENCH_CAPTURE").is_none() {
        return Ok(());
    }
    let client = c.lab.client_ns().to_string();
    let pcap = c.lab.dir().join("client.pcap").display().to_string();
    let log = c.lab.dir().join("tcpdump.log");
    let args = [
        "-i",
        "eth0",
        "-nn",
        "-e",
        "-U",
        "--immediate-mode",
        "-w",
        &pcap,
        "arp or vrrp",
    ];
    c.lab
        .spawn(&client, Path::new("tcpdump"), &args, &log)
        .map_err(|e| format!("tcpdump: {e}"))?;
    // tcpdump takes a while to open its capture.
    std::thread::sleep(Duration::from_secs(1));
    Ok(())
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// "median (min–max)" in ms, or why there is nothing.
pub fn spread(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "n/a".into();
    }
    let min = *samples.iter().min().unwrap();
    let max = *samples.iter().max().unwrap();
    if samples.len() == 1 {
        return ms(min);
    }
    format!("{} ({}–{})", ms(median(samples.to_vec())), ms(min), ms(max))
}

pub fn machine() -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("nproc {nproc}, {cpu}, {mem} RAM, Linux {}", kernel.trim())
}

pub fn versions(baton: &Path) -> String {
    let first_line = |program: &Path, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).to_string();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_else(|| "?".into())
    };
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into());
    format!(
        "{}; baton {} (git {commit}, {})",
        first_line(Path::new("keepalived"), "--version"),
        env!("CARGO_PKG_VERSION"),
        baton.display()
    )
}

/// Which parts of the benches run: `BATON_BENCH_SCENARIOS`, a comma list of
/// `failover` (the keepalived/baton table of `benches/failover.rs`),
/// `switchover`, `sigterm`, `sigkill`, `loss`, or `cluster` for those four
/// (`benches/cluster.rs`). Default: everything. Both benches read the same
/// list, so one setting serves `cargo bench --bench failover --bench cluster`.
pub struct Parts {
    pub failover: bool,
    pub switchover: bool,
    pub sigterm: bool,
    pub sigkill: bool,
    pub loss: bool,
}

impl Parts {
    pub fn from_env() -> Parts {
        let wanted = if smoke() {
            // One cell of each bench: the failover table and a switchover.
            "failover,switchover".to_string()
        } else {
            std::env::var("BATON_BENCH_SCENARIOS").unwrap_or_default()
        };
        let words: Vec<&str> = wanted
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        let on = |name: &str, cluster: bool| {
            words.is_empty() || words.contains(&name) || (cluster && words.contains(&"cluster"))
        };
        for w in &words {
            if ![
                "failover",
                "cluster",
                "switchover",
                "sigterm",
                "sigkill",
                "loss",
            ]
            .contains(w)
            {
                eprintln!("BATON_BENCH_SCENARIOS: unknown part {w:?} (ignored)");
            }
        }
        Parts {
            failover: on("failover", false),
            switchover: on("switchover", true),
            sigterm: on("sigterm", true),
            sigkill: on("sigkill", true),
            loss: on("loss", true),
        }
    }

    pub fn any_cluster(&self) -> bool {
        self.switchover || self.sigterm || self.sigkill || self.loss
    }
}

/// Whether this is `cargo test --all-targets` running the bench binary
/// (`cargo bench` passes `--bench`): then the bench only proves it still
/// works, on the smallest cell, instead of measuring for minutes inside
/// the test suite.
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// The baton binary under test: `BATON_BENCH_BATON` (another build, e.g.
/// an older one to compare in the same run and load), else this build's.
pub fn baton_binary(built: &str) -> PathBuf {
    std::env::var_os("BATON_BENCH_BATON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

/// `BATON_BENCH_RUNS` (default 3, at least 1; 1 in a smoke run).
pub fn runs_from_env() -> usize {
    if smoke() {
        return 1;
    }
    std::env::var("BATON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// The title and the machine, versions and runs lines above the tables.
pub fn print_header(title: &str, baton: &Path, runs: usize) {
    println!("# {title}\n");
    println!("- machine: {}", machine());
    println!("- versions: {}", versions(baton));
    println!(
        "- {runs} run(s) per cell, a fresh 3-node lab per run; client pings the VIP every {} ms\n",
        PROBE_INTERVAL.as_millis()
    );
}
