//! Scale: 255 VRRP instances on one interface, keepalived against baton
//! reading the same keepalived.conf with keepalived's command line.
//!
//! Two labs of two nodes each, one with keepalived on both nodes, one with
//! baton, measured one after the other (or, with
//! `BATON_SCALE_SIDE_BY_SIDE=1`, started one after the other and measured
//! side by side in the same window); both read one generated keepalived.conf
//! (255 `vrrp_instance`s, VRIDs 1-255, one VIP each on eth0, version 3;
//! node0 priority 150, node1 100). Once node0 holds every VIP and node1
//! none in both labs, the CPU time (utime + stime from /proc/PID/stat) of
//! every process in each node's namespace is summed over the same window
//! (the backup's MASTER transitions in it are counted too: with the CPU
//! starved, adverts come late and a backup takes over). A pair that has not
//! elected within 60 s is measured anyway and says what it held.
//! Two rounds: `advert_int 0.1` and `advert_int 0.01`.
//!
//! Reported per round and agent: the time from start until every instance
//! has its master, CPU % of node0 (master) and node1 (backup), the ratio
//! baton / keepalived, and VmRSS / VmHWM (and of it RssAnon: heap and
//! stacks, without the mapped binary and libraries) of the process that speaks VRRP
//! (keepalived's VRRP child; baton's only process).
//!
//! `cargo bench --bench scale` (needs root). Knobs: `BATON_SCALE_SECS`
//! (window, default 20), `BATON_SCALE_INSTANCES` (default 255),
//! `BATON_BENCH_RUNS` (default 3), `BATON_SCALE_BATON` (another baton
//! binary, e.g. an older build, instead of this one), `BATON_SCALE_ROUNDS`
//! (`100` or `10`: that round only). Under `cargo test`
//! it runs 16 instances at 100 ms and measures for 1 s.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::lab::{is_root, Lab, IFNAME};

mod common;
use common::*;

const PRIORITIES: [u8; 2] = [150, 100];

/// The VIP of instance `vrid`: 10.200.VRID.1/32.
fn vip(vrid: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, vrid, 1)
}

/// One file for both nodes: the priority comes from `@nodeN` lines of
/// keepalived's conditional configuration (`-i nodeN` on the command line).
fn conf(instances: u8, advert_int: &str) -> String {
    let mut s = String::from("global_defs {\n    vrrp_version 3\n}\n\n");
    for vrid in 1..=instances {
        s.push_str(&format!(
            "vrrp_instance VI_{vrid} {{\n    state BACKUP\n    interface {IFNAME}\n    \
             virtual_router_id {vrid}\n    @node0 priority {}\n    @node1 priority {}\n    \
             advert_int {advert_int}\n    virtual_ipaddress {{\n        {}/32 dev {IFNAME}\n    \
             }}\n}}\n",
            PRIORITIES[0],
            PRIORITIES[1],
            vip(vrid)
        ));
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Keepalived,
    Baton,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Keepalived => "keepalived",
            Kind::Baton => "baton",
        }
    }
}

/// A two-node lab running one agent on both nodes. Dropping it kills every
/// process left in its node namespaces before the lab goes.
struct Pair {
    kind: Kind,
    lab: Lab,
    pids: Vec<u32>,
}

impl Pair {
    fn start(kind: Kind, conf_text: &str, baton: &Path) -> Result<Pair, String> {
        let tag = match kind {
            Kind::Keepalived => "sck",
            Kind::Baton => "scb",
        };
        let lab = Lab::new(tag, PRIORITIES.len()).map_err(|e| format!("lab: {e}"))?;
        let mut p = Pair {
            kind,
            lab,
            pids: Vec::new(),
        };
        let cfg = p.lab.dir().join("keepalived.conf");
        std::fs::write(&cfg, conf_text).map_err(|e| e.to_string())?;
        let cfg = cfg.display().to_string();
        for i in 0..PRIORITIES.len() {
            let ns = p.lab.node_ns(i).to_string();
            let file = |what: &str| p.lab.dir().join(format!("n{i}.{what}"));
            let pids = ["pid", "vrrp.pid", "checkers.pid", "bfd.pid"].map(&file);
            let pids: Vec<String> = pids.iter().map(|p| p.display().to_string()).collect();
            let id = format!("node{i}");
            let flags: Vec<&str> = vec![
                "-n", "-l", "-f", &cfg, "-i", &id, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2],
                "-b", &pids[3],
            ];
            let log = p.lab.node_files(i).log;
            let pid = match kind {
                Kind::Keepalived => p.lab.spawn(&ns, Path::new("keepalived"), &flags, &log),
                Kind::Baton => {
                    // Each node's own run and state directories over the
                    // defaults, in the private mount namespace of `ip netns
                    // exec`: the command line stays keepalived's.
                    let run = file("run");
                    let state = p.lab.node_files(i).state_dir;
                    for d in [&run, &state] {
                        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
                    }
                    let script = format!(
                        "mkdir -p /run/baton /var/lib/baton && \
                         mount --bind '{}' /run/baton && mount --bind '{}' /var/lib/baton && \
                         exec \"$0\" \"$@\"",
                        run.display(),
                        state.display()
                    );
                    let bin = baton.display().to_string();
                    let mut args: Vec<&str> = vec!["-c", &script, &bin];
                    args.extend_from_slice(&flags);
                    p.lab.spawn(&ns, Path::new("sh"), &args, &log)
                }
            }
            .map_err(|e| format!("node{i}: {}: {e}", kind.name()))?;
            p.pids.push(pid);
        }
        Ok(p)
    }

    /// VIPs of this bench node i holds.
    fn vips(&self, i: usize) -> usize {
        self.lab
            .addresses(self.lab.node_ns(i), IFNAME)
            .unwrap_or_default()
            .iter()
            .filter(|a| matches!(a.addr, IpAddr::V4(v) if v.octets()[..2] == [10, 200]))
            .count()
    }

    fn elected(&self, instances: usize) -> bool {
        self.vips(0) == instances && self.vips(1) == 0
    }

    /// CPU ticks (utime + stime) of every process in node i's namespace.
    fn ticks(&self, i: usize) -> Vec<(u32, u64)> {
        netns_pids(self.lab.node_ns(i))
            .into_iter()
            .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
            .collect()
    }

    /// VmRSS / VmHWM of node i's VRRP process.
    fn vrrp_mem(&self, i: usize) -> Mem {
        let pid = match self.kind {
            Kind::Keepalived => {
                std::fs::read_to_string(self.lab.dir().join(format!("n{i}.vrrp.pid")))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            }
            Kind::Baton => Some(self.pids[i]),
        };
        pid.and_then(proc_mem).unwrap_or_default()
    }

    fn log_tails(&self) -> String {
        let mut out = String::new();
        for i in 0..self.lab.nodes() {
            let log = self.lab.log(i);
            let all: Vec<&str> = log.lines().collect();
            out.push_str(&format!("  --- {} node{i} ---\n", self.kind.name()));
            for l in &all[all.len().saturating_sub(8)..] {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        kill_lab_processes(&mut self.lab, &self.pids);
    }
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU % of one core over `wall`, from two samples (processes in both).
fn cpu_percent(before: &[(u32, u64)], after: &[(u32, u64)], wall: Duration) -> f64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let ticks: u64 = after
        .iter()
        .filter_map(|&(pid, t)| {
            let t0 = before.iter().find(|&&(p, _)| p == pid)?.1;
            Some(t.saturating_sub(t0))
        })
        .sum();
    ticks as f64 / hz / wall.as_secs_f64() * 100.0
}

struct Cell {
    /// From start until node0 held every VIP and node1 none, or what was
    /// held when the bench stopped waiting.
    elected: Result<Duration, String>,
    cpu: [f64; 2],
    mem: [Mem; 2],
    /// MASTER transitions on node1 (the backup) while measured.
    takeovers: usize,
    /// /proc/loadavg's first figure when the window began.
    load: String,
}

/// Start one pair and wait (up to 60 s) until node0 holds every VIP and
/// node1 none: the pair, and how long that took or what was held instead
/// (the log tails go to stderr).
fn start_elected(
    kind: Kind,
    conf_text: &str,
    instances: usize,
    baton: &Path,
) -> Result<(Pair, Result<Duration, String>), String> {
    let t0 = Instant::now();
    let p = Pair::start(kind, conf_text, baton)?;
    let limit = Duration::from_secs(60);
    loop {
        if p.elected(instances) {
            return Ok((p, Ok(t0.elapsed())));
        }
        if t0.elapsed() > limit {
            eprintln!(
                "{}: not elected within {limit:?}\n{}",
                kind.name(),
                p.log_tails()
            );
            let held = format!(
                "not within {} s (VIPs node0 {}, node1 {})",
                limit.as_secs(),
                p.vips(0),
                p.vips(1)
            );
            return Ok((p, Err(held)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn master_entries(p: &Pair, i: usize) -> usize {
    p.lab.log(i).matches("Entering MASTER STATE").count()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Measure started pairs over one window.
fn measure(pairs: &[(Pair, Result<Duration, String>)], window: Duration) -> Vec<Cell> {
    // Let the GARP bursts of the new masters pass.
    std::thread::sleep(Duration::from_secs(if smoke() { 1 } else { 6 }));
    let load = load();
    let before: Vec<Vec<Vec<(u32, u64)>>> = pairs
        .iter()
        .map(|(p, _)| (0..2).map(|i| p.ticks(i)).collect())
        .collect();
    let entries: Vec<usize> = pairs.iter().map(|(p, _)| master_entries(p, 1)).collect();
    let w0 = Instant::now();
    std::thread::sleep(window);
    let after: Vec<Vec<Vec<(u32, u64)>>> = pairs
        .iter()
        .map(|(p, _)| (0..2).map(|i| p.ticks(i)).collect())
        .collect();
    let wall = w0.elapsed();
    pairs
        .iter()
        .enumerate()
        .map(|(k, (p, elected))| Cell {
            elected: elected.clone(),
            cpu: [0, 1].map(|i| cpu_percent(&before[k][i], &after[k][i], wall)),
            mem: [0, 1].map(|i| p.vrrp_mem(i)),
            takeovers: master_entries(p, 1).saturating_sub(entries[k]),
            load: load.clone(),
        })
        .collect()
}

/// One run of one round: keepalived's pair, then baton's, each measured
/// alone once elected; or (`BATON_SCALE_SIDE_BY_SIDE=1`) both started one
/// after the other and measured in the same window.
fn run(
    conf_text: &str,
    instances: usize,
    window: Duration,
    baton: &Path,
) -> Result<Vec<Cell>, String> {
    if std::env::var_os("BATON_SCALE_SIDE_BY_SIDE").is_some() {
        let k = start_elected(Kind::Keepalived, conf_text, instances, baton)?;
        let b = start_elected(Kind::Baton, conf_text, instances, baton)?;
        return Ok(measure(&[k, b], window));
    }
    let mut cells = Vec::new();
    for kind in [Kind::Keepalived, Kind::Baton] {
        let p = start_elected(kind, conf_text, instances, baton)?;
        cells.extend(measure(std::slice::from_ref(&p), window));
    }
    Ok(cells)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn main() {
    if !is_root() {
        println!("benches/scale: needs root (network namespaces); nothing measured");
        return;
    }
    let smoke = smoke();
    let baton = std::env::var_os("BATON_SCALE_BATON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_baton")));
    let instances = if smoke {
        16
    } else {
        env_u64("BATON_SCALE_INSTANCES", 255).clamp(1, 255) as u8
    };
    let window = Duration::from_secs(if smoke {
        1
    } else {
        env_u64("BATON_SCALE_SECS", 20).max(1)
    });
    let runs = runs_from_env();
    let rounds: Vec<(&str, &str)> = if smoke {
        vec![("100 ms", "0.1")]
    } else {
        let only = std::env::var("BATON_SCALE_ROUNDS").unwrap_or_default();
        [("100 ms", "0.1"), ("10 ms", "0.01")]
            .into_iter()
            .filter(|(label, _)| {
                only.is_empty()
                    || only
                        .split(',')
                        .any(|w| label.trim_end_matches(" ms") == w.trim())
            })
            .collect()
    };
    println!("# Scale: {instances} instances on one interface, keepalived and baton\n");
    println!("- machine: {}", machine());
    println!("- versions: {}", versions(&baton));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("- load average at start: {}", load.trim());
    println!(
        "- {runs} run(s) per round; CPU over {} s windows ({}); load: the 1-minute load \
         average when the window began\n",
        window.as_secs(),
        if std::env::var_os("BATON_SCALE_SIDE_BY_SIDE").is_some() {
            "both agents side by side, the same window"
        } else {
            "keepalived's pair, then baton's, each alone"
        }
    );
    println!(
        "| adverts | run | agent | load | all masters after (s) | CPU % master | CPU % backup | \
         VmRSS / VmHWM (RssAnon) master (MB) | the same, backup | backup takeovers while measured |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    let mut ratios = Vec::new();
    for &(label, advert_int) in &rounds {
        let text = conf(instances, advert_int);
        for r in 0..runs {
            match run(&text, instances.into(), window, &baton) {
                Ok(cells) => {
                    for (k, c) in cells.iter().enumerate() {
                        let kind = [Kind::Keepalived, Kind::Baton][k];
                        let elected = match &c.elected {
                            Ok(d) => format!("{:.2}", d.as_secs_f64()),
                            Err(held) => {
                                failed |= smoke;
                                held.clone()
                            }
                        };
                        println!(
                            "| {instances} x {label} | {} | {} | {} | {} | {:.1} | {:.1} | \
                             {} / {} ({}) | {} / {} ({}) | {} |",
                            r + 1,
                            kind.name(),
                            c.load,
                            elected,
                            c.cpu[0],
                            c.cpu[1],
                            mb(c.mem[0].rss_kb),
                            mb(c.mem[0].hwm_kb),
                            mb(c.mem[0].anon_kb),
                            mb(c.mem[1].rss_kb),
                            mb(c.mem[1].hwm_kb),
                            mb(c.mem[1].anon_kb),
                            c.takeovers,
                        );
                    }
                    let ratio = |i: usize| cells[1].cpu[i] / cells[0].cpu[i].max(0.01);
                    ratios.push((label, r + 1, ratio(0), ratio(1)));
                }
                Err(e) => {
                    println!("| {instances} x {label} | {} | failed: {e} |", r + 1);
                    failed = true;
                }
            }
        }
    }
    println!("\n| adverts | run | CPU baton / keepalived, master | backup |");
    println!("|---|---|---|---|");
    for (label, r, m, b) in ratios {
        println!("| {instances} x {label} | {r} | {m:.2} | {b:.2} |");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n- load average at end: {}", load.trim());
    if failed {
        std::process::exit(1);
    }
}
