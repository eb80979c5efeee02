//! Flood benchmark: how late do a master's adverts come while a stranger
//! floods the VRRP nodes? keepalived, baton, and baton with the cluster
//! channel, each in a fresh three-node lab (priorities 150, 100, 50,
//! adverts every 10 ms). The client namespace sends protocol-112 garbage
//! (random bytes, VRRP headers with bad checksums, valid adverts from a
//! stranger) to the group and to node0 and node1 at `BATON_FLOOD_RATE`
//! packets/s (default 10000); with the channel it also keeps 16
//! connections per listener opening, sending 4 KiB of garbage and closing.
//! node1 records node0's adverts with kernel receive timestamps, first
//! without the flood, then with it.
//!
//! Reported per agent: advert spacing (median, p99, max), gaps over two
//! intervals + 5 ms (an advert late by more than an interval), takeovers
//! (MASTER transitions) and what the agents counted as dropped.
//!
//! `cargo bench --bench flood` (needs root). Knobs: `BATON_FLOOD_SECS`
//! (default 20), `BATON_FLOOD_RATE`. Under `cargo test` it runs one short
//! baton+channel cell.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use baton::lab::flood::{AdvertRecorder, Flood, FloodPlan, Spacing};
use baton::lab::is_root;

mod common;
use common::*;

const TCP_PARALLEL: usize = 16;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    agent: Agent,
    quiet: Spacing,
    flood: Spacing,
    packets: u64,
    connections: u64,
    takeovers: usize,
}

fn run(
    agent: Agent,
    baton: &std::path::Path,
    quiet_for: Duration,
    flood_for: Duration,
    rate: u64,
) -> Result<Row, String> {
    let iv = &INTERVALS[2];
    let c = Cluster::start(agent, iv, baton)?;
    c.wait_node0_alone(iv)?;
    if agent == Agent::BatonChannel && !c.lab.wait_for(Duration::from_secs(10), |l| l.mesh_ready())
    {
        return Err("the channel mesh did not come up".into());
    }
    let (n1, a0, a1) = (c.lab.node_ns(1), c.lab.node_addr4(0), c.lab.node_addr4(1));
    let rec = AdvertRecorder::start(n1, a1, a0).map_err(|e| format!("recorder: {e}"))?;
    std::thread::sleep(quiet_for);
    let quiet = rec.finish();
    let before = c.master_entries();
    let rec = AdvertRecorder::start(n1, a1, a0).map_err(|e| format!("recorder: {e}"))?;
    let tcp = if agent == Agent::BatonChannel {
        (0..2)
            .map(|i| SocketAddr::new(c.lab.node_addr4(i).into(), 7480))
            .collect()
    } else {
        Vec::new()
    };
    let flood = Flood::start(FloodPlan {
        netns: c.lab.client_ns().to_string(),
        targets: vec![Ipv4Addr::new(224, 0, 0, 18), a0, a1],
        packets_per_sec: rate,
        tcp,
        tcp_parallel: TCP_PARALLEL,
        vrid: VRID,
    })
    .map_err(|e| format!("flood: {e}"))?;
    std::thread::sleep(flood_for);
    let sent = flood.finish();
    let spacing = rec.finish();
    Ok(Row {
        agent,
        quiet,
        flood: spacing,
        packets: sent.packets,
        connections: sent.connections,
        takeovers: c.master_entries().saturating_sub(before),
    })
}

fn main() {
    if !is_root() {
        println!("flood benchmark: needs root (network namespaces, raw sockets); skipped.");
        return;
    }
    let baton = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let (quiet_for, flood_for, agents) = if smoke() {
        (
            Duration::from_secs(1),
            Duration::from_secs(2),
            vec![Agent::BatonChannel],
        )
    } else {
        let secs = env_u64("BATON_FLOOD_SECS", 20);
        (
            Duration::from_secs(5),
            Duration::from_secs(secs),
            vec![Agent::Keepalived, Agent::Baton, Agent::BatonChannel],
        )
    };
    let rate = env_u64("BATON_FLOOD_RATE", 10_000);
    print_header("baton flood benchmark", &baton, 1);
    println!(
        "- adverts every 10 ms; flood {} s of {rate} garbage packets/s (group, node0, node1), \
         plus {TCP_PARALLEL} connections per channel listener for baton+channel; spacing of \
         node0's adverts as node1 receives them, {} s without the flood first\n",
        flood_for.as_secs(),
        quiet_for.as_secs()
    );
    println!("| agent | quiet: median / p99 / max (ms) | flood: median / p99 / max (ms) | late adverts quiet / flood | takeovers | garbage sent | connections |");
    println!("|---|---|---|---|---|---|---|");
    let late = Duration::from_millis(25);
    let mut failed = false;
    for agent in agents {
        match run(agent, &baton, quiet_for, flood_for, rate) {
            Ok(r) => {
                let fmt = |s: &Spacing| format!("{} / {} / {}", ms(s.median), ms(s.p99), ms(s.max));
                println!(
                    "| {} | {} | {} | {} / {} | {} | {} | {} |",
                    r.agent.name(),
                    fmt(&r.quiet),
                    fmt(&r.flood),
                    r.quiet.late_over(late),
                    r.flood.late_over(late),
                    r.takeovers,
                    r.packets,
                    r.connections
                );
            }
            Err(e) => {
                failed = true;
                println!("| {} | failed: {e} | | | | | |", agent.name());
            }
        }
    }
    if failed && smoke() {
        std::process::exit(1);
    }
}
