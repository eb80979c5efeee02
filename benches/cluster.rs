//! Cluster-channel benchmark: baton with the cluster channel beside baton
//! on plain VRRP and beside keepalived, where keepalived has an equivalent.
//!
//! The same three-node lab as `benches/failover.rs` (shared in
//! `benches/common/`), a client pinging the VIP every millisecond. Rows:
//!
//! - operator switchover with the channel: `baton switchover VI_1 --to
//!   node2` (broadcast), then `--to node1 --unicast`, 100 ms adverts;
//! - SIGTERM of the master at 100 ms, SIGKILL of the master at 100 ms and
//!   1 s;
//! - 20 % VRRP loss into node1 and node2 at 10 ms adverts (nftables), the
//!   three agents in three labs side by side.
//!
//! Needs root; without it, says so and exits 0.
//!
//! - this table alone: `cargo bench --bench cluster`;
//! - the keepalived/baton failover table alone: `cargo bench --bench failover`;
//! - both, one after the other: `cargo bench --bench failover --bench
//!   cluster` (`cargo bench` also runs `benches/sync.rs`).
//!
//! Knobs: `BATON_BENCH_RUNS=N` (default 3);
//! `BATON_BENCH_SCENARIOS=failover,switchover,sigterm,sigkill,loss` (or
//! `cluster` for the last four; default all), read by both benches: this one
//! runs the scenarios among the last four that it names (all when empty);
//! `BATON_BENCH_LOSS_SECS` (default 30); `BATON_BENCH_SIGTERM_INTERVAL`
//! (`10ms`, `100ms` or `1s`: the SIGTERM row's interval, default 100ms);
//! `BATON_BENCH_BATON=PATH` (another baton binary). `BATON_BENCH_CAPTURE=1
//! BATON_KEEP_LAB=1` keeps a client capture (ARP, VRRP) of the loss labs in
//! their `client.pcap`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::lab::probe::{ProbeReport, Prober};
use baton::lab::{self, is_root, Lab};
use nix::sys::signal::Signal;

mod common;
use common::*;

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
struct CSample {
    probe: ProbeReport,
    /// Trigger (or CLI start) to the VIP on the node that should get it
    /// (netlink watch, 1 ms).
    takeover: Option<Duration>,
    /// Longest time no node held the VIP after the trigger.
    no_holder: Option<Duration>,
    /// "Entering MASTER STATE" after the trigger (loss: on node1 and
    /// node2 only, i.e. spurious takeovers).
    masters: usize,
    /// Loss: adverts the nftables rules dropped (node1 + node2).
    dropped: u64,
}

struct Row {
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
    lab::has_addr4_here(lab::IFNAME, VIP)
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
                lab::spawn_in_netns(lab.node_ns(i), move || {
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
    c.wait_node0_alone(iv)?;
    if agent == Agent::BatonChannel && !c.lab.wait_for(Duration::from_secs(10), Lab::mesh_ready) {
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
fn loss_once(baton: &Path, secs: Duration, rotate: usize) -> Vec<(Agent, Result<CSample, String>)> {
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

fn run_all(parts: &Parts, runs: usize, baton: &Path) {
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
        // `BATON_BENCH_SIGTERM_INTERVAL=10ms` (or 1s): another interval.
        let iv = std::env::var("BATON_BENCH_SIGTERM_INTERVAL")
            .ok()
            .and_then(|w| INTERVALS.iter().position(|i| i.toml == w.trim()))
            .unwrap_or(IV_100MS);
        stops.push((Signal::SIGTERM, iv, "0 lost (channel)"));
    }
    if parts.sigkill {
        stops.push((
            Signal::SIGKILL,
            IV_100MS,
            "VIP on node1 ≤ 2 heartbeats after the close",
        ));
        stops.push((
            Signal::SIGKILL,
            IV_1S,
            "VIP on node1 ≤ 2 heartbeats after the close",
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
    println!("| scenario | measure | keepalived | baton (no channel) | baton + channel | goal |");
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

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to parse.
    if !is_root() {
        println!("cluster benchmark: needs root (network namespaces, raw sockets); skipped.");
        println!("run it as root: sudo -E cargo bench --bench cluster");
        return;
    }
    let baton = baton_binary(env!("CARGO_BIN_EXE_baton"));
    let runs = runs_from_env();
    let parts = Parts::from_env();
    if !parts.any_cluster() {
        println!(
            "cluster benchmark: BATON_BENCH_SCENARIOS names none of switchover, sigterm, \
             sigkill, loss, cluster; nothing to run here."
        );
        return;
    }
    let started = Instant::now();
    print_header("baton cluster-channel benchmark", &baton, runs);
    run_all(&parts, runs, &baton);
    println!("\nwall time: {:.0} s", started.elapsed().as_secs_f64());
}
