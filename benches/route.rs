//! Route mode against ARP mode: the outage a client sees for SIGKILL,
//! SIGTERM, link down and switchover of the holder, in one run.
//!
//! - route mode: the routed lab (`baton::lab::route`): three nodes in three
//!   subnets, each with FRR running the shipped `conf/frr-route-mode.conf`,
//!   an FRR router (eBGP + BFD 100 ms x 3), the client behind the router;
//!   baton with 100 ms heartbeats;
//! - ARP mode: the layer-2 lab of `benches/failover.rs`, baton with the
//!   cluster channel and keepalived 2.2.7, 100 ms adverts.
//!
//! The client pings the VIP every millisecond; each row is a fresh lab.
//! Printed: the client's longest gap and pings lost, median (min–max) over
//! the runs, and for route mode how long after the event the router's
//! kernel route pointed at the new holder alone.
//!
//! `cargo bench --bench route`; `BATON_BENCH_RUNS=N` (default 3). Needs
//! root and FRR; without root it says so and exits 0.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::lab::is_root;
use baton::lab::probe::{ProbeReport, Prober};
use baton::lab::route::{RouteLab, RouterOptions, Side};
use nix::sys::signal::Signal;

mod common;
use common::*;

const ROUTE_VIP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 99, 0, 100);
const ROUTE_PREFIX: &str = "10.99.0.100/32";
/// ARP mode's interval (adverts) and route mode's heartbeat.
const IV: usize = 1;
/// How long the client keeps pinging after the new holder settled.
const TAIL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Sigkill,
    Sigterm,
    LinkDown,
    Switchover,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Sigkill => "SIGKILL",
            Event::Sigterm => "SIGTERM",
            Event::LinkDown => "link down",
            Event::Switchover => "switchover",
        }
    }
    /// The node that holds the VIP afterwards.
    fn target(self) -> usize {
        if self == Event::Switchover {
            2
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Route,
    ArpBaton,
    ArpKeepalived,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Route => "baton route mode",
            Mode::ArpBaton => "baton ARP + channel",
            Mode::ArpKeepalived => "keepalived ARP",
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    probe: ProbeReport,
    /// Route mode: the router on the new holder alone, after the event.
    settled: Option<Duration>,
}

fn wait(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn route_run(baton: &Path, event: Event) -> Result<Sample, String> {
    let mut lab =
        RouteLab::new("bbr", 3, RouterOptions::default()).map_err(|e| format!("lab: {e}"))?;
    lab.wait_sessions(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let key = lab
        .write_cluster_key(CLUSTER_KEY)
        .map_err(|e| e.to_string())?;
    let mut pids = Vec::new();
    for (i, p) in PRIORITIES.iter().enumerate() {
        let toml = format!(
            "[[instance]]\nname = \"WEB\"\nmode = \"route\"\npriority = {p}\n\
             virtual_ips = [\"{ROUTE_VIP}/32\"]\ntrack_interfaces = [{{ name = \"eth0\" }}]\n"
        );
        pids.push(
            lab.start_baton(baton, i, &key, HEARTBEAT, &toml)
                .map_err(|e| e.to_string())?,
        );
    }
    let ready = wait(Duration::from_secs(20), || {
        lab.holders(IpAddr::V4(ROUTE_VIP)) == [0]
            && lab.router_fib(ROUTE_PREFIX).is_ok_and(|n| n == [0])
            && lab.mesh_ready()
    });
    if ready.is_none() {
        return Err(format!(
            "route: node0 never held alone\n{}",
            lab.baton_log(0)
        ));
    }
    let probe = Prober::start(Some(lab.client_ns()), ROUTE_VIP, PROBE_INTERVAL)
        .map_err(|e| e.to_string())?;
    std::thread::sleep(LEAD_IN);
    let t = Instant::now();
    match event {
        Event::Sigkill => lab
            .signal(pids[0], Signal::SIGKILL)
            .map_err(|e| e.to_string())?,
        Event::Sigterm => lab
            .signal(pids[0], Signal::SIGTERM)
            .map_err(|e| e.to_string())?,
        Event::LinkDown => lab
            .set_uplink(0, Side::Node, false)
            .map_err(|e| e.to_string())?,
        Event::Switchover => {
            let out = lab
                .baton_cli(baton, 1, &["switchover", "WEB", "--to", "node2"])
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into());
            }
        }
    }
    let target = event.target();
    let settled = wait(Duration::from_secs(10), || {
        lab.router_fib(ROUTE_PREFIX).is_ok_and(|n| n == [target])
            && lab.holders(IpAddr::V4(ROUTE_VIP)) == [target]
    });
    let settled_at = t.elapsed();
    std::thread::sleep(TAIL);
    let report = probe.finish().map_err(|e| e.to_string())?;
    if settled.is_none() {
        return Err(format!(
            "route {}: never settled on node{target}",
            event.name()
        ));
    }
    Ok(Sample {
        probe: report,
        settled: Some(settled_at),
    })
}

fn arp_run(baton: &Path, mode: Mode, event: Event) -> Result<Sample, String> {
    let agent = if mode == Mode::ArpBaton {
        Agent::BatonChannel
    } else {
        Agent::Keepalived
    };
    let iv = &INTERVALS[IV];
    let mut c = Cluster::start(agent, iv, baton)?;
    c.wait_node0_alone(iv)?;
    if agent == Agent::BatonChannel && !c.lab.wait_for(Duration::from_secs(10), |l| l.mesh_ready())
    {
        return Err("the channel mesh did not come up".into());
    }
    let probe =
        Prober::start(Some(c.lab.client_ns()), VIP, PROBE_INTERVAL).map_err(|e| e.to_string())?;
    std::thread::sleep(LEAD_IN);
    let pid = c.pids[0];
    match event {
        Event::Sigkill => c
            .lab
            .signal(pid, Signal::SIGKILL)
            .map_err(|e| e.to_string())?,
        Event::Sigterm => c
            .lab
            .signal(pid, Signal::SIGTERM)
            .map_err(|e| e.to_string())?,
        Event::LinkDown => c.lab.set_link(0, false).map_err(|e| e.to_string())?,
        Event::Switchover => {
            let out = c
                .lab
                .baton_cli(baton, 1, &["switchover", "VI_1", "--to", "node2"])
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into());
            }
        }
    }
    let target = event.target();
    // A SIGKILLed keepalived never removes its VIP: wait for the new
    // holder only.
    let ok = c.lab.wait_for(Duration::from_secs(10), |l| {
        l.holders(IpAddr::V4(VIP)).contains(&target)
    });
    std::thread::sleep(TAIL + Duration::from_millis(500));
    let report = probe.finish().map_err(|e| e.to_string())?;
    if !ok {
        return Err(format!(
            "{} {}: node{target} never held",
            mode.name(),
            event.name()
        ));
    }
    Ok(Sample {
        probe: report,
        settled: None,
    })
}

fn cell(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "n/a".into();
    }
    let gaps: Vec<Duration> = samples.iter().map(|s| s.probe.longest_gap).collect();
    let lost: Vec<u64> = samples.iter().map(|s| s.probe.lost()).collect();
    let mut out = format!(
        "{} ms, lost {}",
        spread(&gaps),
        lost.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("/")
    );
    let settled: Vec<Duration> = samples.iter().filter_map(|s| s.settled).collect();
    if !settled.is_empty() {
        out.push_str(&format!("; router settled {} ms", spread(&settled)));
    }
    out
}

fn main() {
    if !is_root() {
        println!("route benchmark: needs root (network namespaces, FRR); skipped.");
        return;
    }
    let baton: PathBuf = baton_binary(env!("CARGO_BIN_EXE_baton"));
    let runs = runs_from_env();
    let started = Instant::now();
    println!("baton route-mode benchmark: client outage through an FRR router vs ARP mode");
    println!("machine: {}", machine());
    println!("{}", versions(&baton));
    println!("runs per cell: {runs}; client pings every {PROBE_INTERVAL:?}; 100 ms adverts / heartbeats\n");
    let events = if smoke() {
        vec![Event::Sigterm]
    } else {
        vec![
            Event::Sigkill,
            Event::Sigterm,
            Event::LinkDown,
            Event::Switchover,
        ]
    };
    let modes = if smoke() {
        vec![Mode::Route]
    } else {
        vec![Mode::Route, Mode::ArpBaton, Mode::ArpKeepalived]
    };
    println!(
        "| event | {} |",
        modes
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(modes.len()));
    for event in events {
        let mut cells = Vec::new();
        for &mode in &modes {
            if mode == Mode::ArpKeepalived && event == Event::Switchover {
                cells.push("no such command".to_string());
                continue;
            }
            let mut samples = Vec::new();
            for _ in 0..runs {
                let r = match mode {
                    Mode::Route => route_run(&baton, event),
                    _ => arp_run(&baton, mode, event),
                };
                match r {
                    Ok(s) => samples.push(s),
                    Err(e) => eprintln!("{} {}: {e}", mode.name(), event.name()),
                }
            }
            if smoke() && samples.is_empty() {
                panic!("the route bench's smoke run failed");
            }
            cells.push(cell(&samples));
        }
        println!("| {} | {} |", event.name(), cells.join(" | "));
    }
    println!("\nwall time: {:.0} s", started.elapsed().as_secs_f64());
}
