//! Failover benchmark: keepalived against baton on identical labs.
//!
//! Three nodes (priorities 150, 100, 50, preempt on, VRRP v3, VRID 51, VIP
//! 192.168.77.100/24 on eth0) in a fresh network-namespace lab per run, a
//! client namespace pinging the VIP every millisecond. Two scenarios:
//!
//! - link down: node0's eth0 goes down; node1 must take over after the
//!   master-down interval;
//! - SIGTERM: node0's agent shuts down cleanly (priority 0 advert); node1
//!   must take over after its skew time.
//!
//! The outage is the longest time the client saw no echo reply. Memory is
//! VmRSS / VmHWM from /proc of the agents once node0 has been master for a
//! while. Needs root; without it, says so and exits 0.
//!
//! A second section, the cluster-channel scenarios, runs baton with the
//! channel beside baton on plain VRRP and keepalived: operator switchover
//! (broadcast, then unicast), SIGTERM and SIGKILL of the master, and 20 %
//! VRRP loss at 10 ms adverts (three labs side by side).
//!
//! `cargo bench --bench failover`; `BATON_BENCH_RUNS=N` (default 3),
//! `BATON_BENCH_INTERVALS=1s,100ms,10ms` (first section only),
//! `BATON_BENCH_SCENARIOS=failover,switchover,sigterm,sigkill,loss` (or
//! `cluster` for the last four; default all) and `BATON_BENCH_LOSS_SECS`
//! (default 30) narrow it down. `BATON_BENCH_CAPTURE=1 BATON_KEEP_LAB=1`
//! keeps a client capture (ARP, VRRP) of the failover and loss labs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use baton::lab::probe::{ProbeReport, Prober};
use baton::lab::{is_root, Lab};
use nix::sys::signal::Signal;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VRID: u8 = 51;
const PRIORITIES: [u8; 3] = [150, 100, 50];
/// The client pings this often: the outage resolution.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// Prober running before the trigger, so the client has resolved the VIP.
const LEAD_IN: Duration = Duration::from_millis(300);
/// The cluster channel's key (mode 0600 in the lab dir) and heartbeat.
const CLUSTER_KEY: &[u8] = b"baton failover bench cluster key, not secret";
const HEARTBEAT: &str = "100ms";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    Keepalived,
    /// baton on plain VRRP (no `[cluster]`).
    Baton,
    /// baton with the cluster channel (`[cluster]`, full mesh).
    BatonChannel,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Keepalived => "keepalived",
            Agent::Baton => "baton",
            Agent::BatonChannel => "baton+channel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    LinkDown,
    Sigterm,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::LinkDown => "link down",
            Scenario::Sigterm => "SIGTERM",
        }
    }
}

struct Interval {
    label: &'static str,
    advert: Duration,
    /// keepalived's `advert_int` (seconds).
    keepalived: &'static str,
    /// baton's `advert_interval`.
    toml: &'static str,
}

const INTERVALS: [Interval; 3] = [
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
fn master_down(advert: Duration, priority: u8) -> Duration {
    advert * 3 + advert * (256 - u32::from(priority)) / 256
}

/// Time the prober keeps running after node1 holds the VIP: long enough to
/// see a flap or a late second gap.
fn settle(advert: Duration) -> Duration {
    (master_down(advert, PRIORITIES[1]) * 3).max(Duration::from_millis(500))
}

fn keepalived_conf(node: usize, priority: u8, iv: &Interval) -> String {
    // preempt is keepalived's default; GARP settings are left at theirs.
    format!(
        "global_defs {{\n    router_id node{node}\n    vrrp_version 3\n}}\n\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {VRID}\n    priority {priority}\n    advert_int {}\n    \
         virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n",
        iv.keepalived
    )
}

fn baton_toml(priority: u8, iv: &Interval) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"{}\"\npreempt = true\n\
         virtual_ips = [\"{VIP}/24\"]\n",
        iv.toml
    )
}

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kb: u64,
    hwm_kb: u64,
    /// Proportional set size: shared pages split between their users, so a
    /// sum over a process tree does not count the libraries twice.
    pss_kb: u64,
    /// VmRSS split: private heap/stack vs mapped files (binary, libraries).
    anon_kb: u64,
    file_kb: u64,
    threads: u64,
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

fn proc_mem(pid: u32) -> Option<Mem> {
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
fn process_tree(root: u32) -> Vec<u32> {
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
struct NodeMem {
    tree: Mem,
    vrrp: Mem,
    processes: usize,
}

/// A lab with three agents. Dropping it kills every process left in the node
/// namespaces (keepalived's children too) before the lab itself goes.
struct Cluster {
    agent: Agent,
    pids: Vec<u32>,
    lab: Lab,
}

impl Cluster {
    fn start(agent: Agent, iv: &Interval, baton: &Path) -> Result<Cluster, String> {
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

    fn kfile(&self, i: usize, what: &str) -> PathBuf {
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

    fn mem(&self, i: usize) -> NodeMem {
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
    fn log_tails(&self, lines: usize) -> String {
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
    fn master_entries(&self) -> usize {
        (0..self.lab.nodes())
            .map(|i| self.lab.log(i).matches("Entering MASTER STATE").count())
            .sum()
    }

    fn holders(&self) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(VIP))
    }
}

fn netns_pids(ns: &str) -> Vec<u32> {
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

impl Drop for Cluster {
    fn drop(&mut self) {
        let me = std::process::id();
        for _ in 0..50 {
            let left: Vec<u32> = (0..self.lab.nodes())
                .flat_map(|i| netns_pids(self.lab.node_ns(i)))
                .filter(|&p| p != me)
                .collect();
            if left.is_empty() {
                break;
            }
            for &p in &left {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), Signal::SIGKILL);
            }
            // Reap our own children so they do not linger as zombies.
            for &p in &self.pids {
                let _ = self.lab.wait(p, Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    outage: Duration,
    probe: ProbeReport,
    /// Trigger to VIP on node1 (polled with `ip`: a few ms resolution).
    takeover: Duration,
    /// Transitions to MASTER after the trigger (from the logs): 1 is clean.
    master_entries: usize,
    holders_after: Vec<usize>,
    master: NodeMem,
    backup: NodeMem,
}

fn run_once(
    agent: Agent,
    iv: &Interval,
    scenario: Scenario,
    baton: &Path,
) -> Result<Sample, String> {
    let mut c = Cluster::start(agent, iv, baton)?;
    let startup = master_down(iv.advert, PRIORITIES[0]) * 3 + Duration::from_secs(5);
    if !c
        .lab
        .wait_for(startup, |l| l.holders(IpAddr::V4(VIP)) == [0])
    {
        return Err(format!(
            "node0 was not the only VIP holder within {startup:?} (holders {:?})\n{}",
            c.holders(),
            c.log_tails(12)
        ));
    }
    let client = c.lab.client_ns().to_string();
    start_capture(&mut c)?;
    // The client also counts node0's adverts, to align the trigger.
    let prober = Prober::start_watching(
        Some(&client),
        c.lab.client_addr4(),
        VIP,
        PROBE_INTERVAL,
        c.lab.node_addr4(0),
    )
    .map_err(|e| format!("prober: {e}"))?;
    let during = trigger_and_wait(&mut c, &prober, iv, scenario);
    let probe = prober.finish().map_err(|e| format!("prober: {e}"))?;
    let (takeover, master, backup, entries_before) = during?;
    let master_entries = c.master_entries().saturating_sub(entries_before);
    if master_entries != 1 {
        eprintln!(
            "{} MASTER transitions after the trigger:\n{}",
            master_entries,
            c.log_tails(15)
        );
    }
    Ok(Sample {
        outage: probe.longest_gap,
        probe,
        takeover,
        master_entries,
        holders_after: c.holders(),
        master,
        backup,
    })
}

/// With `BATON_BENCH_CAPTURE` set (and `BATON_KEEP_LAB=1` to keep it):
/// record what the client saw (ARP and VRRP) in the lab's `client.pcap`.
fn start_capture(c: &mut Cluster) -> Result<(), String> {
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

fn trigger_and_wait(
    c: &mut Cluster,
    prober: &Prober,
    iv: &Interval,
    scenario: Scenario,
) -> Result<(Duration, NodeMem, NodeMem, usize), String> {
    std::thread::sleep(LEAD_IN);
    let (master, backup) = (c.mem(0), c.mem(1));
    let entries_before = c.master_entries();
    // Trigger right after an advert of node0: otherwise the phase of the
    // trigger within the advert interval (up to a whole interval of the
    // outage) depends on how long the election check took, and differed
    // systematically between the agents.
    if !prober.next_advert(iv.advert * 3 + Duration::from_secs(1)) {
        return Err("the client saw no advert from node0".into());
    }
    let t0 = Instant::now();
    match scenario {
        Scenario::LinkDown => c.lab.set_link(0, false).map_err(|e| e.to_string())?,
        Scenario::Sigterm => {
            let pid = c.pids[0];
            c.lab
                .signal(pid, Signal::SIGTERM)
                .map_err(|e| e.to_string())?;
        }
    }
    let limit = master_down(iv.advert, PRIORITIES[1]) * 3 + Duration::from_secs(3);
    let node1 = c.lab.node_ns(1).to_string();
    let takeover = loop {
        if c.lab.has_addr(&node1, IpAddr::V4(VIP)) {
            break t0.elapsed();
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "node1 did not take the VIP within {limit:?} (holders {:?})\n{}",
                c.holders(),
                c.log_tails(12)
            ));
        }
    };
    std::thread::sleep(settle(iv.advert));
    Ok((takeover, master, backup, entries_before))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// "median (min–max)" in ms, or why there is nothing.
fn spread(samples: &[Duration]) -> String {
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

fn kb_spread(v: &[u64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let mut s = v.to_vec();
    s.sort();
    let (min, max, med) = (s[0], s[s.len() - 1], s[s.len() / 2]);
    let mb = |kb: u64| format!("{:.2}", kb as f64 / 1024.0);
    if min == max {
        mb(med)
    } else {
        format!("{} ({}–{})", mb(med), mb(min), mb(max))
    }
}

/// Which part of a node's memory a table row shows.
type MemPick = fn(&NodeMem) -> Mem;

struct Cell {
    agent: Agent,
    scenario: Scenario,
    interval: usize,
    results: Vec<Result<Sample, String>>,
}

fn machine() -> String {
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

fn versions(baton: &Path) -> String {
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

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to parse.
    if !is_root() {
        println!("failover benchmark: needs root (network namespaces, raw sockets); skipped.");
        println!("run it as root: sudo -E cargo bench --bench failover");
        return;
    }
    let baton = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let runs: usize = std::env::var("BATON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let wanted = std::env::var("BATON_BENCH_INTERVALS").unwrap_or_default();
    let intervals: Vec<usize> = (0..INTERVALS.len())
        .filter(|&i| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == INTERVALS[i].toml))
        .collect();

    let started = Instant::now();
    println!("# baton failover benchmark\n");
    println!("- machine: {}", machine());
    println!("- versions: {}", versions(&baton));
    println!(
        "- {runs} run(s) per cell, a fresh 3-node lab per run; client pings the VIP every {} ms\n",
        PROBE_INTERVAL.as_millis()
    );

    let parts = Parts::from_env();
    let mut cells: Vec<Cell> = Vec::new();
    let failover_intervals = if parts.failover {
        intervals
    } else {
        Vec::new()
    };
    for &iv_i in &failover_intervals {
        let iv = &INTERVALS[iv_i];
        for scenario in [Scenario::LinkDown, Scenario::Sigterm] {
            let mut pair = [Agent::Keepalived, Agent::Baton].map(|agent| Cell {
                agent,
                scenario,
                interval: iv_i,
                results: Vec::new(),
            });
            for run in 1..=runs {
                // Alternate agents run by run so drift on the machine hits both.
                for cell in &mut pair {
                    // A baton that failed to elect once will not do better
                    // on the next run: save the minutes.
                    let broken = cell
                        .results
                        .iter()
                        .any(|r| matches!(r, Err(e) if e.starts_with("node0 was not")));
                    if broken {
                        continue;
                    }
                    let r = run_once(cell.agent, iv, scenario, &baton);
                    match &r {
                        Ok(s) => eprintln!(
                            "{:>10} {:>6} {:>9} run {run}/{runs}: outage {} ms, lost {}/{}, VIP on node1 after {} ms, MASTER transitions {}, holders after {:?}",
                            cell.agent.name(),
                            iv.label,
                            scenario.name(),
                            ms(s.outage),
                            s.probe.lost(),
                            s.probe.sent,
                            ms(s.takeover),
                            s.master_entries,
                            s.holders_after
                        ),
                        Err(e) => eprintln!(
                            "{:>10} {:>6} {:>9} run {run}/{runs}: FAILED: {e}",
                            cell.agent.name(),
                            iv.label,
                            scenario.name()
                        ),
                    }
                    cell.results.push(r);
                }
            }
            cells.extend(pair);
        }
    }
    if parts.failover {
        report(&cells, runs);
    }
    if parts.any_cluster() {
        cluster::run_all(&parts, runs, &baton);
    }
    println!("\nwall time: {:.0} s", started.elapsed().as_secs_f64());
}

fn report(cells: &[Cell], runs: usize) {
    let find = |agent: Agent, scenario: Scenario, interval: usize| {
        cells
            .iter()
            .find(|c| c.agent == agent && c.scenario == scenario && c.interval == interval)
    };
    let ok = |c: Option<&Cell>| -> Vec<Sample> {
        c.map(|c| {
            c.results
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect()
        })
        .unwrap_or_default()
    };
    let mut intervals: Vec<usize> = cells.iter().map(|c| c.interval).collect();
    intervals.dedup();

    println!("## Client-seen outage (ms, median (min–max) of {runs} runs)\n");
    println!("| scenario | advert interval | keepalived | baton | baton / keepalived | lost pings k / b (median) | VIP on node1 after, k / b (ms) | MASTER transitions k / b (max) |");
    println!("|---|---|---|---|---|---|---|---|");
    for scenario in [Scenario::LinkDown, Scenario::Sigterm] {
        for &i in &intervals {
            let k = ok(find(Agent::Keepalived, scenario, i));
            let b = ok(find(Agent::Baton, scenario, i));
            let outages = |s: &[Sample]| s.iter().map(|s| s.outage).collect::<Vec<_>>();
            let takeovers = |s: &[Sample]| s.iter().map(|s| s.takeover).collect::<Vec<_>>();
            let lost = |s: &[Sample]| {
                let mut v: Vec<u64> = s.iter().map(|s| s.probe.lost()).collect();
                v.sort();
                v.get(v.len() / 2).map_or("n/a".into(), |l| l.to_string())
            };
            let transitions = |s: &[Sample]| {
                s.iter()
                    .map(|s| s.master_entries)
                    .max()
                    .map_or("n/a".into(), |m| m.to_string())
            };
            let ratio = if k.is_empty() || b.is_empty() {
                "n/a".to_string()
            } else {
                let (km, bm) = (median(outages(&k)), median(outages(&b)));
                format!("{:.2}", bm.as_secs_f64() / km.as_secs_f64().max(1e-9))
            };
            let failed = |agent| {
                find(agent, scenario, i)
                    .map(|c| c.results.iter().filter(|r| r.is_err()).count())
                    .unwrap_or(0)
            };
            let note = |s: String, agent| match failed(agent) {
                0 => s,
                n => format!("{s} [{n} failed]"),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} |",
                scenario.name(),
                INTERVALS[i].label,
                note(spread(&outages(&k)), Agent::Keepalived),
                note(spread(&outages(&b)), Agent::Baton),
                ratio,
                lost(&k),
                lost(&b),
                spread(&takeovers(&k)),
                spread(&takeovers(&b)),
                transitions(&k),
                transitions(&b),
            );
        }
    }

    println!("\n## Memory per node once elected (MB, median (min–max) over all labs)\n");
    println!(
        "| agent | node | what | processes / threads | VmRSS | VmHWM | RssAnon | RssFile | Pss |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for agent in [Agent::Keepalived, Agent::Baton] {
        let samples: Vec<Sample> = cells
            .iter()
            .filter(|c| c.agent == agent)
            .flat_map(|c| ok(Some(c)))
            .collect();
        for (node, pick) in [
            (
                "node0 (master)",
                (|s: &Sample| s.master) as fn(&Sample) -> NodeMem,
            ),
            ("node1 (backup)", |s: &Sample| s.backup),
        ] {
            let mems: Vec<NodeMem> = samples.iter().map(pick).collect();
            let procs = mems.iter().map(|m| m.processes).max().unwrap_or(0);
            let rows: Vec<(&str, MemPick)> = match agent {
                Agent::Keepalived => {
                    vec![("whole tree", |m| m.tree), ("VRRP child alone", |m| m.vrrp)]
                }
                Agent::Baton | Agent::BatonChannel => vec![("process", |m| m.tree)],
            };
            for (what, get) in rows {
                let col = |f: fn(&Mem) -> u64| {
                    kb_spread(&mems.iter().map(|m| f(&get(m))).collect::<Vec<_>>())
                };
                let p = if what == "VRRP child alone" { 1 } else { procs };
                let threads = mems.iter().map(|m| get(m).threads).max().unwrap_or(0);
                println!(
                    "| {} | {node} | {what} | {p} / {threads} | {} | {} | {} | {} | {} |",
                    agent.name(),
                    col(|m| m.rss_kb),
                    col(|m| m.hwm_kb),
                    col(|m| m.anon_kb),
                    col(|m| m.file_kb),
                    col(|m| m.pss_kb),
                );
            }
        }
    }

    let errors: Vec<String> = cells
        .iter()
        .flat_map(|c| {
            c.results.iter().filter_map(move |r| {
                r.as_ref().err().map(|e| {
                    format!(
                        "{} {} {}: {e}",
                        c.agent.name(),
                        INTERVALS[c.interval].label,
                        c.scenario.name()
                    )
                })
            })
        })
        .collect();
    if !errors.is_empty() {
        println!("\n## Failures\n");
        for e in errors {
            println!("- {e}");
        }
    }
}

/// Which parts of the bench run: `BATON_BENCH_SCENARIOS`, a comma list of
/// `failover` (the keepalived/baton table above), `switchover`, `sigterm`,
/// `sigkill`, `loss`, or `cluster` for the last four. Default: everything.
struct Parts {
    failover: bool,
    switchover: bool,
    sigterm: bool,
    sigkill: bool,
    loss: bool,
}

impl Parts {
    fn from_env() -> Parts {
        let wanted = std::env::var("BATON_BENCH_SCENARIOS").unwrap_or_default();
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

    fn any_cluster(&self) -> bool {
        self.switchover || self.sigterm || self.sigkill || self.loss
    }
}

/// The cluster-channel scenarios: baton with the channel beside baton on
/// plain VRRP and beside keepalived where keepalived has an equivalent.
mod cluster {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    const AGENTS: [Agent; 3] = [Agent::Keepalived, Agent::Baton, Agent::BatonChannel];

    /// The advert interval of the switchover and SIGTERM scenarios.
    const IV_100MS: usize = 1;
    const IV_1S: usize = 0;
    const IV_10MS: usize = 2;

    const LOSS_RULES: [&str; 3] = [
        "add table inet t",
        "add chain inet t in { type filter hook input priority 0; }",
        "add rule inet t in ip protocol 112 numgen random mod 100 < 20 counter drop",
    ];

    /// One run of one agent in one scenario.
    #[derive(Debug, Clone, Default)]
    pub struct CSample {
        pub probe: ProbeReport,
        /// Trigger (or CLI start) to the VIP on the node that should get it
        /// (netlink watch, 1 ms).
        pub takeover: Option<Duration>,
        /// Longest time no node held the VIP after the trigger.
        pub no_holder: Option<Duration>,
        /// "Entering MASTER STATE" after the trigger (loss: on node1 and
        /// node2 only, i.e. spurious takeovers).
        pub masters: usize,
        /// Loss: adverts the nftables rules dropped (node1 + node2).
        pub dropped: u64,
    }

    pub struct Row {
        label: String,
        goal: &'static str,
        /// Per agent (AGENTS order); None: no equivalent.
        results: [Option<Vec<Result<CSample, String>>>; 3],
    }

    impl Row {
        fn new(label: String, goal: &'static str, agents: &[Agent]) -> Row {
            Row {
                label,
                goal,
                results: AGENTS.map(|a| agents.contains(&a).then(Vec::new)),
            }
        }

        fn push(&mut self, agent: Agent, r: Result<CSample, String>) {
            let i = AGENTS.iter().position(|&a| a == agent).unwrap();
            if let Some(v) = &mut self.results[i] {
                v.push(r);
            }
        }
    }

    /// Watches, from one thread per node namespace, whether eth0 holds the
    /// VIP (netlink via getifaddrs, every millisecond), and records each
    /// change with its time.
    struct VipWatch {
        stop: Arc<AtomicBool>,
        now: Arc<Vec<AtomicBool>>,
        nodes: Vec<JoinHandle<Vec<(Instant, bool)>>>,
    }

    fn ns_holds_vip() -> bool {
        nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
            addrs.any(|a| {
                a.interface_name == "eth0"
                    && a.address
                        .as_ref()
                        .and_then(|s| s.as_sockaddr_in())
                        .is_some_and(|sin| sin.ip() == VIP)
            })
        })
    }

    /// What a [`VipWatch`] saw: per node, its changes (the first entry is
    /// its state when the watch started).
    struct Watched {
        changes: Vec<Vec<(Instant, bool)>>,
        end: Instant,
    }

    impl VipWatch {
        fn start(lab: &Lab) -> VipWatch {
            let stop = Arc::new(AtomicBool::new(false));
            let now: Arc<Vec<AtomicBool>> =
                Arc::new((0..lab.nodes()).map(|_| AtomicBool::new(false)).collect());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let nodes = (0..lab.nodes())
                .map(|i| {
                    let (stop, now, ready) = (stop.clone(), now.clone(), ready_tx.clone());
                    baton::lab::spawn_in_netns(lab.node_ns(i), move || {
                        let mut last = ns_holds_vip();
                        now[i].store(last, Ordering::Relaxed);
                        let mut changes = vec![(Instant::now(), last)];
                        let _ = ready.send(());
                        while !stop.load(Ordering::Relaxed) {
                            let h = ns_holds_vip();
                            if h != last {
                                changes.push((Instant::now(), h));
                                now[i].store(h, Ordering::Relaxed);
                                last = h;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        changes
                    })
                })
                .collect();
            for _ in 0..lab.nodes() {
                let _ = ready_rx.recv();
            }
            VipWatch { stop, now, nodes }
        }

        fn holders(&self) -> Vec<usize> {
            (0..self.now.len())
                .filter(|&i| self.now[i].load(Ordering::Relaxed))
                .collect()
        }

        /// Wait until `cond(holders)` or `timeout`; true if it held.
        fn wait(&self, timeout: Duration, cond: impl Fn(&[usize]) -> bool) -> bool {
            let t0 = Instant::now();
            loop {
                if cond(&self.holders()) {
                    return true;
                }
                if t0.elapsed() > timeout {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        fn finish(self) -> Watched {
            let end = Instant::now();
            self.stop.store(true, Ordering::Relaxed);
            let changes = self
                .nodes
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect();
            Watched { changes, end }
        }
    }

    impl Watched {
        /// The first time after `t0` that `node` held the VIP, since `t0`.
        fn held_after(&self, node: usize, t0: Instant) -> Option<Duration> {
            let ch = &self.changes[node];
            // Held already at t0?
            let before = ch.iter().rev().find(|(t, _)| *t <= t0).map(|c| c.1);
            if before == Some(true) {
                return Some(Duration::ZERO);
            }
            ch.iter().find(|(t, h)| *t > t0 && *h).map(|(t, _)| *t - t0)
        }

        /// The longest time after `t0` during which no node held the VIP.
        fn longest_no_holder(&self, t0: Instant) -> Duration {
            let mut held: Vec<bool> = self
                .changes
                .iter()
                .map(|ch| ch.first().is_some_and(|c| c.1))
                .collect();
            let mut events: Vec<(Instant, usize, bool)> = self
                .changes
                .iter()
                .enumerate()
                .flat_map(|(i, ch)| ch.iter().skip(1).map(move |&(t, h)| (t, i, h)))
                .collect();
            events.sort_by_key(|e| e.0);
            let mut longest = Duration::ZERO;
            let mut empty_since: Option<Instant> = None;
            let mut started = false;
            let mut apply = |t: Instant, held: &[bool], empty_since: &mut Option<Instant>| {
                let any = held.iter().any(|&x| x);
                match (any, *empty_since) {
                    (false, None) => *empty_since = Some(t),
                    (true, Some(s)) => {
                        longest = longest.max(t - s);
                        *empty_since = None;
                    }
                    _ => {}
                }
            };
            for (t, i, h) in events {
                if t > t0 && !started {
                    started = true;
                    apply(t0, &held, &mut empty_since);
                }
                held[i] = h;
                if started {
                    apply(t, &held, &mut empty_since);
                }
            }
            if !started {
                apply(t0, &held, &mut empty_since);
            }
            if let Some(s) = empty_since {
                longest = longest.max(self.end - s);
            }
            longest
        }
    }

    /// Start a 3-node lab and wait until node0 alone holds the VIP and, with
    /// the channel, the mesh is up.
    fn start(agent: Agent, iv: &Interval, baton: &Path) -> Result<Cluster, String> {
        let c = Cluster::start(agent, iv, baton)?;
        let startup = master_down(iv.advert, PRIORITIES[0]) * 3 + Duration::from_secs(5);
        if !c
            .lab
            .wait_for(startup, |l| l.holders(IpAddr::V4(VIP)) == [0])
        {
            return Err(format!(
                "node0 was not the only VIP holder within {startup:?} (holders {:?})\n{}",
                c.holders(),
                c.log_tails(12)
            ));
        }
        if agent == Agent::BatonChannel && !c.lab.wait_for(Duration::from_secs(10), Lab::mesh_ready)
        {
            return Err(format!(
                "the channel mesh did not come up\n{}",
                c.log_tails(12)
            ));
        }
        Ok(c)
    }

    /// Settle after a move: past node2's own master-down interval (counted
    /// from the trigger) and at least 500 ms after the move, to catch a
    /// second taker or a flap.
    fn settle_after(iv: &Interval, t0: Instant) {
        let until = t0 + master_down(iv.advert, PRIORITIES[2]) + iv.advert * 2;
        let min = Instant::now() + Duration::from_millis(500);
        let end = until.max(min);
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
    }

    /// Operator switchover with the channel: `baton switchover VI_1 --to
    /// node2` on node1 (broadcast), then `--to node1 --unicast` on node0.
    /// Two samples: (broadcast, unicast).
    fn switchover_once(baton: &Path) -> Result<(CSample, CSample), String> {
        let iv = &INTERVALS[IV_100MS];
        let c = start(Agent::BatonChannel, iv, baton)?;
        let mut out = Vec::new();
        for (on, to, target, unicast) in [(1, "node2", 2, false), (0, "node1", 1, true)] {
            let prober = Prober::start(Some(c.lab.client_ns()), VIP, PROBE_INTERVAL)
                .map_err(|e| format!("prober: {e}"))?;
            let watch = VipWatch::start(&c.lab);
            std::thread::sleep(LEAD_IN);
            let entries = c.master_entries();
            let mut args = vec!["switchover", "VI_1", "--to", to];
            if unicast {
                args.push("--unicast");
            }
            let t0 = Instant::now();
            let cli = c.lab.baton_cli(baton, on, &args);
            let moved = watch.wait(Duration::from_secs(5), |h| h == [target]);
            std::thread::sleep(Duration::from_millis(300));
            let w = watch.finish();
            let probe = prober.finish().map_err(|e| format!("prober: {e}"))?;
            let cli = cli.map_err(|e| format!("baton {args:?}: {e}"))?;
            if !cli.status.success() {
                return Err(format!(
                    "baton {args:?} on node{on}: {} {}\n{}",
                    String::from_utf8_lossy(&cli.stdout).trim(),
                    String::from_utf8_lossy(&cli.stderr).trim(),
                    c.log_tails(12)
                ));
            }
            if !moved {
                return Err(format!(
                    "{args:?}: node{target} was not the only holder within 5 s (holders {:?})\n{}",
                    c.holders(),
                    c.log_tails(12)
                ));
            }
            out.push(CSample {
                probe,
                takeover: w.held_after(target, t0),
                no_holder: Some(w.longest_no_holder(t0)),
                masters: c.master_entries().saturating_sub(entries),
                dropped: 0,
            });
        }
        let unicast = out.pop().unwrap();
        let broadcast = out.pop().unwrap();
        Ok((broadcast, unicast))
    }

    /// Stop node0's agent with `sig`, right after the client saw one of
    /// its adverts; sample what node1 and the client see. SIGKILL of
    /// keepalived kills its VRRP child (the parent stopped first, so that
    /// it cannot respawn it), then the parent.
    fn stop_master_once(
        agent: Agent,
        iv: &Interval,
        sig: Signal,
        baton: &Path,
    ) -> Result<CSample, String> {
        let mut c = start(agent, iv, baton)?;
        let prober = Prober::start_watching(
            Some(c.lab.client_ns()),
            c.lab.client_addr4(),
            VIP,
            PROBE_INTERVAL,
            c.lab.node_addr4(0),
        )
        .map_err(|e| format!("prober: {e}"))?;
        let watch = VipWatch::start(&c.lab);
        std::thread::sleep(LEAD_IN);
        let entries = c.master_entries();
        let during = (|| {
            if !prober.next_advert(iv.advert * 3 + Duration::from_secs(1)) {
                return Err("the client saw no advert from node0".to_string());
            }
            let parent = c.pids[0];
            let t0 = match (agent, sig) {
                (Agent::Keepalived, Signal::SIGKILL) => {
                    let child: u32 = std::fs::read_to_string(c.kfile(0, "vrrp.pid"))
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or("no keepalived VRRP child pid")?;
                    c.lab
                        .signal(parent, Signal::SIGSTOP)
                        .map_err(|e| e.to_string())?;
                    c.lab
                        .signal(child, Signal::SIGKILL)
                        .map_err(|e| e.to_string())?;
                    let t0 = Instant::now();
                    c.lab
                        .signal(parent, Signal::SIGKILL)
                        .map_err(|e| e.to_string())?;
                    t0
                }
                _ => {
                    c.lab.signal(parent, sig).map_err(|e| e.to_string())?;
                    Instant::now()
                }
            };
            let limit = master_down(iv.advert, PRIORITIES[1]) * 3 + Duration::from_secs(3);
            if !watch.wait(limit, |h| h.contains(&1)) {
                return Err(format!(
                    "node1 did not take the VIP within {limit:?} (holders {:?})\n{}",
                    c.holders(),
                    c.log_tails(12)
                ));
            }
            settle_after(iv, t0);
            Ok(t0)
        })();
        let w = watch.finish();
        let probe = prober.finish().map_err(|e| format!("prober: {e}"))?;
        let t0 = during?;
        let masters = c.master_entries().saturating_sub(entries);
        if masters != 1 {
            eprintln!(
                "{masters} MASTER transitions after the trigger:\n{}",
                c.log_tails(15)
            );
        }
        Ok(CSample {
            probe,
            takeover: w.held_after(1, t0),
            no_holder: Some(w.longest_no_holder(t0)),
            masters,
            dropped: 0,
        })
    }

    /// 20 % of VRRP dropped on input in node1 and node2, 10 ms adverts,
    /// for `secs`: keepalived, baton and baton with the channel, in three
    /// labs at the same time (the order rotated run by run).
    fn loss_once(
        baton: &Path,
        secs: Duration,
        rotate: usize,
    ) -> Vec<(Agent, Result<CSample, String>)> {
        let iv = &INTERVALS[IV_10MS];
        let mut order = AGENTS.to_vec();
        order.rotate_left(rotate % AGENTS.len());
        let mut labs: Vec<(Agent, Result<Cluster, String>)> = order
            .iter()
            .map(|&a| {
                let c = start(a, iv, baton).and_then(|mut c| start_capture(&mut c).map(|_| c));
                (a, c)
            })
            .collect();
        if std::env::var_os("BATON_KEEP_LAB").is_some() {
            for (a, c) in &labs {
                if let Ok(c) = c {
                    eprintln!("{} loss lab: {}", a.name(), c.lab.dir().display());
                }
            }
        }
        // Probers and rules for the labs that came up.
        let mut running = Vec::new();
        for (a, c) in &labs {
            let Ok(c) = c else { continue };
            match Prober::start(Some(c.lab.client_ns()), VIP, PROBE_INTERVAL) {
                Ok(p) => running.push((*a, p)),
                Err(e) => eprintln!("{}: prober: {e}", a.name()),
            }
        }
        std::thread::sleep(LEAD_IN);
        let node12 = |c: &Cluster| -> usize {
            (1..3)
                .map(|i| c.lab.log(i).matches("Entering MASTER STATE").count())
                .sum()
        };
        let mut base = Vec::new();
        let mut rule_errors = Vec::new();
        for (a, c) in &labs {
            let Ok(c) = c else { continue };
            base.push((*a, node12(c)));
            for node in 1..3 {
                for rule in LOSS_RULES {
                    if let Err(e) = c.lab.ns(c.lab.node_ns(node), "nft", &[rule]) {
                        rule_errors.push((*a, format!("nft {rule:?} in node{node}: {e}")));
                    }
                }
            }
        }
        std::thread::sleep(secs);
        let mut probes: Vec<(Agent, Result<ProbeReport, String>)> = running
            .into_iter()
            .map(|(a, p)| (a, p.finish().map_err(|e| format!("prober: {e}"))))
            .collect();
        let mut out = Vec::new();
        for (a, c) in labs.drain(..) {
            let r = c.and_then(|c| {
                if let Some((_, e)) = rule_errors.iter().find(|(x, _)| *x == a) {
                    return Err(e.clone());
                }
                let before = base.iter().find(|(x, _)| *x == a).map_or(0, |b| b.1);
                let dropped: u64 = (1..3)
                    .map(|i| {
                        let o = c
                            .lab
                            .ns(c.lab.node_ns(i), "nft", &["list", "table", "inet", "t"])
                            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                            .unwrap_or_default();
                        o.split_whitespace()
                            .skip_while(|w| *w != "packets")
                            .nth(1)
                            .and_then(|n| n.parse::<u64>().ok())
                            .unwrap_or(0)
                    })
                    .sum();
                let pos = probes
                    .iter()
                    .position(|(x, _)| *x == a)
                    .ok_or("no prober")?;
                let probe = probes.remove(pos).1?;
                Ok(CSample {
                    probe,
                    takeover: None,
                    no_holder: None,
                    masters: node12(&c).saturating_sub(before),
                    dropped,
                })
            });
            out.push((a, r));
        }
        out
    }

    fn log_sample(row: &str, agent: Agent, run: usize, runs: usize, r: &Result<CSample, String>) {
        match r {
            Ok(s) => eprintln!(
                "{:>13} {row} run {run}/{runs}: lost {}/{}, outage {} ms, VIP on successor after {}, no holder {}, MASTER transitions {}, dropped {}",
                agent.name(),
                s.probe.lost(),
                s.probe.sent,
                ms(s.probe.longest_gap),
                s.takeover.map_or("-".into(), |d| format!("{} ms", ms(d))),
                s.no_holder.map_or("-".into(), |d| format!("{} ms", ms(d))),
                s.masters,
                s.dropped
            ),
            Err(e) => eprintln!("{:>13} {row} run {run}/{runs}: FAILED: {e}", agent.name()),
        }
    }

    pub fn run_all(parts: &Parts, runs: usize, baton: &Path) {
        let loss_secs = std::env::var("BATON_BENCH_LOSS_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30u64);
        let mut rows: Vec<Row> = Vec::new();
        if parts.switchover {
            let mut b = Row::new(
                "switchover `--to node2` (broadcast), 100 ms".into(),
                "0 lost",
                &[Agent::BatonChannel],
            );
            let mut u = Row::new(
                "then `--to node1 --unicast`, 100 ms".into(),
                "0 lost",
                &[Agent::BatonChannel],
            );
            for run in 1..=runs {
                let (rb, ru) = match switchover_once(baton) {
                    Ok((x, y)) => (Ok(x), Ok(y)),
                    Err(e) => (Err(e.clone()), Err(e)),
                };
                log_sample(&b.label, Agent::BatonChannel, run, runs, &rb);
                log_sample(&u.label, Agent::BatonChannel, run, runs, &ru);
                b.push(Agent::BatonChannel, rb);
                u.push(Agent::BatonChannel, ru);
            }
            rows.push(b);
            rows.push(u);
        }
        let mut stops: Vec<(Signal, usize, &'static str)> = Vec::new();
        if parts.sigterm {
            stops.push((Signal::SIGTERM, IV_100MS, "0 lost (channel)"));
        }
        if parts.sigkill {
            stops.push((
                Signal::SIGKILL,
                IV_100MS,
                "VIP on node1 ≈ 1 advert after the close",
            ));
            stops.push((
                Signal::SIGKILL,
                IV_1S,
                "VIP on node1 ≈ 1 advert after the close",
            ));
        }
        for (sig, iv_i, goal) in stops {
            let iv = &INTERVALS[iv_i];
            let mut row = Row::new(format!("{sig} of the master, {}", iv.label), goal, &AGENTS);
            for run in 1..=runs {
                // Alternate agents run by run, starting with a different one.
                let mut order = AGENTS.to_vec();
                order.rotate_left((run - 1) % AGENTS.len());
                for agent in order {
                    let r = stop_master_once(agent, iv, sig, baton);
                    log_sample(&row.label, agent, run, runs, &r);
                    row.push(agent, r);
                }
            }
            rows.push(row);
        }
        if parts.loss {
            let mut row = Row::new(
                format!("20% VRRP loss into node1+node2, 10 ms, {loss_secs} s"),
                "0 takeovers (channel)",
                &AGENTS,
            );
            for run in 1..=runs {
                for (agent, r) in loss_once(baton, Duration::from_secs(loss_secs), run - 1) {
                    log_sample(&row.label, agent, run, runs, &r);
                    row.push(agent, r);
                }
            }
            rows.push(row);
        }
        report(&rows, runs);
    }

    fn med_u64(v: &[u64]) -> String {
        if v.is_empty() {
            return "n/a".into();
        }
        let mut s = v.to_vec();
        s.sort();
        let (min, max) = (s[0], s[s.len() - 1]);
        let med = if s.len() % 2 == 1 {
            s[s.len() / 2] as f64
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) as f64 / 2.0
        };
        if s.len() == 1 || min == max {
            format!("{med}")
        } else {
            format!("{med} ({min}–{max})")
        }
    }

    fn report(rows: &[Row], runs: usize) {
        type Metric = (&'static str, fn(&[CSample]) -> String);
        let metrics: [Metric; 6] = [
            ("lost pings (of ~1000/s)", |s| {
                med_u64(&s.iter().map(|s| s.probe.lost()).collect::<Vec<_>>())
            }),
            ("client-seen outage (ms)", |s| {
                spread(&s.iter().map(|s| s.probe.longest_gap).collect::<Vec<_>>())
            }),
            ("VIP on the new master after (ms)", |s| {
                let v: Vec<Duration> = s.iter().filter_map(|s| s.takeover).collect();
                spread(&v)
            }),
            ("no node held the VIP (ms, longest)", |s| {
                let v: Vec<Duration> = s.iter().filter_map(|s| s.no_holder).collect();
                spread(&v)
            }),
            ("MASTER transitions (loss: node1+node2)", |s| {
                med_u64(&s.iter().map(|s| s.masters as u64).collect::<Vec<_>>())
            }),
            ("adverts dropped by nftables", |s| {
                med_u64(&s.iter().map(|s| s.dropped).collect::<Vec<_>>())
            }),
        ];
        println!(
            "\n## Cluster channel scenarios (median (min–max) of {runs} runs; client pings every {} ms)\n",
            PROBE_INTERVAL.as_millis()
        );
        println!(
            "| scenario | measure | keepalived | baton (no channel) | baton + channel | goal |"
        );
        println!("|---|---|---|---|---|---|");
        let mut failures = Vec::new();
        for row in rows {
            let is_loss = row.label.contains("loss");
            for (mi, (name, f)) in metrics.iter().enumerate() {
                // Rows that do not apply to the scenario are left out.
                let applies = match mi {
                    2 | 3 => !is_loss,
                    5 => is_loss,
                    _ => true,
                };
                if !applies {
                    continue;
                }
                let cells: Vec<String> = row
                    .results
                    .iter()
                    .map(|r| match r {
                        None => "n/a".into(),
                        Some(v) => {
                            let ok: Vec<CSample> =
                                v.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
                            let failed = v.len() - ok.len();
                            let text = if ok.is_empty() { "n/a".into() } else { f(&ok) };
                            if failed > 0 {
                                format!("{text} [{failed} failed]")
                            } else {
                                text
                            }
                        }
                    })
                    .collect();
                let (label, goal) = if mi == 0 {
                    (row.label.as_str(), row.goal)
                } else {
                    ("", "")
                };
                println!(
                    "| {label} | {name} | {} | {} | {} | {goal} |",
                    cells[0], cells[1], cells[2]
                );
            }
            for (a, r) in AGENTS.iter().zip(&row.results) {
                for e in r.iter().flatten().filter_map(|r| r.as_ref().err()) {
                    failures.push(format!("{} {}: {e}", a.name(), row.label));
                }
            }
        }
        if !failures.is_empty() {
            println!("\n## Cluster scenario failures\n");
            for f in failures {
                println!("- {f}");
            }
        }
    }
}
