//! Failover benchmark: keepalived against baton on identical labs.
//!
//! Three nodes (priorities 150, 100, 50, preempt on, VRRP v3, VRID 51, VIP
//! 192.168.77.100/24 on eth0) in a fresh network-namespace lab per run, a
//! client namespace pinging the VIP every millisecond. Two scenarios:
//!
//! - link down: node0's eth0 goes down; node1 must take over after the
//!   master-down interval;
//! - SIGTERM: node0's agent shuts down cleanly (priority 0 advert); node1
//!   must take over after its skew time;
//! - SIGKILL: node0's agent (keepalived: its whole process tree) dies with
//!   no word; node1 takes over after the master-down interval, and the
//!   dead node0 keeps answering for the VIP until its lease runs out
//!   (baton, `vip_lease` "auto") or for good (keepalived). Its own table:
//!   how long two nodes held the VIP, watched every millisecond in each
//!   node's namespace for the lease plus 1.5 s. Not in the smoke run of
//!   `cargo test --all-targets` (tests/netns_lease.rs covers it there).
//!
//! The outage is the longest time the client saw no echo reply. Memory is
//! VmRSS / VmHWM from /proc of the agents once node0 has been master for a
//! while. Needs root; without it, says so and exits 0.
//!
//! The cluster-channel scenarios (switchover, SIGTERM and SIGKILL of the
//! master, 20 % VRRP loss) are a bench of their own, `benches/cluster.rs`;
//! both share the lab and helpers of `benches/common/`.
//!
//! - this table alone: `cargo bench --bench failover`;
//! - the cluster-channel table alone: `cargo bench --bench cluster`;
//! - both, one after the other: `cargo bench --bench failover --bench
//!   cluster` (`cargo bench` also runs `benches/sync.rs`).
//!
//! Knobs: `BATON_BENCH_RUNS=N` (default 3); `BATON_BENCH_INTERVALS=1s,100ms,10ms`
//! (this bench only); `BATON_BENCH_SCENARIOS=failover,switchover,sigterm,sigkill,loss`
//! (or `cluster` for the last four; default all), read by both benches: this
//! one runs when the list is empty or names `failover`.
//! `BATON_BENCH_FAILOVER=link,sigterm,sigkill` (this table's scenarios;
//! default all). `BATON_BENCH_BATON=PATH` runs another baton binary (an
//! older build, to compare before and after in one run; both benches).
//! `BATON_BENCH_CAPTURE=1 BATON_KEEP_LAB=1` keeps a client capture (ARP,
//! VRRP) of each lab in its `client.pcap`.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use baton::lab::probe::{ProbeReport, Prober};
use baton::lab::{is_root, HoldWatch};
use nix::sys::signal::Signal;

mod common;
use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    LinkDown,
    Sigterm,
    Sigkill,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::LinkDown => "link down",
            Scenario::Sigterm => "SIGTERM",
            Scenario::Sigkill => "SIGKILL",
        }
    }
}

/// Time the prober keeps running after node1 holds the VIP: long enough to
/// see a flap or a late second gap.
fn settle(advert: Duration) -> Duration {
    (master_down(advert, PRIORITIES[1]) * 3).max(Duration::from_millis(500))
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
    /// SIGKILL: how long two nodes held the VIP, and whether node0 still
    /// held it when the watch ended.
    two_holders: Option<(Duration, bool)>,
}

/// How long a SIGKILL run watches the holders after the trigger: baton's
/// default lease at this interval, plus the kernel's rounding and slack.
fn sigkill_window(advert: Duration) -> Duration {
    baton::vrrp::timers::auto_vip_lease(baton::wire::vrrp::Version::V3, PRIORITIES[0], advert)
        + Duration::from_millis(1500)
}

fn run_once(
    agent: Agent,
    iv: &Interval,
    scenario: Scenario,
    baton: &Path,
) -> Result<Sample, String> {
    let mut c = Cluster::start(agent, iv, baton)?;
    c.wait_node0_alone(iv)?;
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
    let watch = (scenario == Scenario::Sigkill).then(|| HoldWatch::start(&c.lab, VIP));
    let during = trigger_and_wait(&mut c, &prober, iv, scenario);
    let probe = prober.finish().map_err(|e| format!("prober: {e}"))?;
    let seen = watch.map(HoldWatch::finish);
    let (takeover, master, backup, entries_before, t0) = during?;
    let two_holders = seen.map(|s| (s.overlap(t0), s.released(0).is_none()));
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
        two_holders,
    })
}

fn trigger_and_wait(
    c: &mut Cluster,
    prober: &Prober,
    iv: &Interval,
    scenario: Scenario,
) -> Result<(Duration, NodeMem, NodeMem, usize, Instant), String> {
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
        Scenario::Sigkill => {
            // keepalived's VRRP child outlives its parent, and is told of
            // its death (it would then stop cleanly, priority 0 and VIPs
            // removed) or respawned by it: stop the whole tree first, so
            // that no handler runs, then kill it.
            let tree = process_tree(c.pids[0]);
            for sig in [Signal::SIGSTOP, Signal::SIGKILL] {
                for &pid in &tree {
                    let _ = c.lab.signal(pid, sig);
                }
            }
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
    let settle = match scenario {
        Scenario::Sigkill => sigkill_window(iv.advert).saturating_sub(t0.elapsed()),
        _ => settle(iv.advert),
    };
    std::thread::sleep(settle);
    Ok((takeover, master, backup, entries_before, t0))
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

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to parse.
    if !is_root() {
        println!("failover benchmark: needs root (network namespaces, raw sockets); skipped.");
        println!("run it as root: sudo -E cargo bench --bench failover");
        return;
    }
    let baton = baton_binary(env!("CARGO_BIN_EXE_baton"));
    let runs = runs_from_env();
    let wanted = if smoke() {
        "100ms".to_string()
    } else {
        std::env::var("BATON_BENCH_INTERVALS").unwrap_or_default()
    };
    let intervals: Vec<usize> = (0..INTERVALS.len())
        .filter(|&i| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == INTERVALS[i].toml))
        .collect();

    let parts = Parts::from_env();
    if !parts.failover {
        println!(
            "failover benchmark: BATON_BENCH_SCENARIOS leaves out `failover`; nothing to run here \
             (the cluster-channel scenarios are `cargo bench --bench cluster`)."
        );
        return;
    }
    let started = Instant::now();
    print_header("baton failover benchmark", &baton, runs);

    let mut cells: Vec<Cell> = Vec::new();
    for &iv_i in &intervals {
        let iv = &INTERVALS[iv_i];
        let scenarios: &[Scenario] = if smoke() {
            &[Scenario::LinkDown, Scenario::Sigterm]
        } else {
            &[Scenario::LinkDown, Scenario::Sigterm, Scenario::Sigkill]
        };
        for &scenario in scenarios.iter().filter(|s| failover_wanted(**s)) {
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
    report(&cells, runs);
    println!("\nwall time: {:.0} s", started.elapsed().as_secs_f64());
}

/// `BATON_BENCH_FAILOVER`: a comma list of `link`, `sigterm`, `sigkill`,
/// the scenarios of this table to run (default all).
fn failover_wanted(s: Scenario) -> bool {
    let wanted = std::env::var("BATON_BENCH_FAILOVER").unwrap_or_default();
    let key = match s {
        Scenario::LinkDown => "link",
        Scenario::Sigterm => "sigterm",
        Scenario::Sigkill => "sigkill",
    };
    wanted.trim().is_empty() || wanted.split(',').any(|w| w.trim() == key)
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
    for scenario in [Scenario::LinkDown, Scenario::Sigterm, Scenario::Sigkill] {
        for &i in &intervals {
            let k = ok(find(Agent::Keepalived, scenario, i));
            let b = ok(find(Agent::Baton, scenario, i));
            if k.is_empty() && b.is_empty() && find(Agent::Baton, scenario, i).is_none() {
                continue;
            }
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

    let sigkill: Vec<usize> = intervals
        .iter()
        .copied()
        .filter(|&i| find(Agent::Baton, Scenario::Sigkill, i).is_some())
        .collect();
    if !sigkill.is_empty() {
        println!(
            "\n## Seconds with two VIP holders after SIGKILL of the master (median (min–max) of {runs} runs)\n"
        );
        println!("| advert interval | watched for (s) | keepalived | baton (vip_lease auto) | dead node0 still holds at the end, k / b |");
        println!("|---|---|---|---|---|");
        for i in sigkill {
            let window = sigkill_window(INTERVALS[i].advert);
            let cell = |agent| {
                let s = ok(find(agent, Scenario::Sigkill, i));
                let both: Vec<Duration> = s
                    .iter()
                    .filter_map(|s| s.two_holders.map(|t| t.0))
                    .collect();
                let still = s
                    .iter()
                    .filter(|s| s.two_holders.is_some_and(|t| t.1))
                    .count();
                let mut v = both.clone();
                v.sort();
                let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
                let text = match (v.first(), v.last()) {
                    (Some(min), Some(max)) if min == max => secs(*min),
                    (Some(min), Some(max)) => format!(
                        "{} ({}–{})",
                        secs(median(both.clone())),
                        secs(*min),
                        secs(*max)
                    ),
                    _ => "n/a".into(),
                };
                let text = if still > 0 && still == s.len() {
                    format!("{text} (never released: forever)")
                } else {
                    text
                };
                (text, format!("{still}/{}", s.len()))
            };
            let (kt, ks) = cell(Agent::Keepalived);
            let (bt, bs) = cell(Agent::Baton);
            println!(
                "| {} | {:.1} | {kt} | {bt} | {ks} / {bs} |",
                INTERVALS[i].label,
                window.as_secs_f64()
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
