//! Unauthenticated load cannot hurt VRRP: two baton nodes with the cluster
//! channel at 10 ms adverts, and a client that for 20 s floods them with
//! protocol-112 garbage (random bytes, VRRP headers with bad checksums,
//! valid adverts from a stranger; to the group and to both nodes) and with
//! TCP connections to both channel listeners that send garbage instead of
//! a Hello. The backup records the master's adverts with kernel receive
//! timestamps.
//!
//! Passes when: nothing moves (node0 stays the only master and holder,
//! node1 never becomes master, the channel between them stays up), the
//! flood reached both agents (their drop and rejection counters rose), and
//! adverts kept their pace: no advert later than one interval past its
//! time (a gap over two intervals, with 5 ms for the veth) more often than
//! in the same lab without the flood (5 s recorded just before it: a
//! shared 2-core host has scheduling gaps of its own), give or take 1 % of
//! the adverts.
//! Figures are printed on `MEASURED:` lines
//! (`cargo test --test netns_flood -- --nocapture`). To explore, the load
//! can be changed: `BATON_FLOOD_RATE` (garbage packets/s, default 10000)
//! and `BATON_FLOOD_TCP` (connections kept open per listener, default 16).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::control::Status;
use baton::lab::flood::{AdvertRecorder, Flood, FloodPlan};
use baton::lab::{self, Lab};
use baton::vrrp::State;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VRID: u8 = 51;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const KEY: &[u8] = b"netns flood test key: 32 bytes or more";
const ADVERT: Duration = Duration::from_millis(10);
const FLOOD: Duration = Duration::from_secs(20);
/// The recording without the flood, just before it.
const QUIET: Duration = Duration::from_secs(5);
/// Garbage packets per second, over the group and the two nodes.
const RATE: u64 = 10_000;
/// Connections kept open at once per listener.
const TCP_PARALLEL: usize = 16;

fn toml(lab: &Lab, key: &Path, i: usize, priority: u8) -> String {
    format!(
        "{}[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"10ms\"\n\
         preempt = true\npreempt_delay = \"0s\"\nvirtual_ips = [\"{VIP4}/24\"]\n",
        lab.cluster_toml(i, key, "100ms")
    )
}

/// A figure from the environment (to explore; the test's own by default).
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status(lab: &Lab, i: usize) -> Status {
    lab.status(i)
        .unwrap_or_else(|| panic!("node{i} does not answer on its control socket"))
}

/// Drops counted on node i, on the instance and on its interfaces.
fn drops(s: &Status) -> u64 {
    let inst: u64 = s.instances.iter().flat_map(|v| v.rx.dropped.values()).sum();
    let ifaces: u64 = s
        .interfaces
        .iter()
        .flat_map(|f| f.rx.dropped.values())
        .sum();
    inst + ifaces
}

fn rejected(s: &Status) -> u64 {
    s.cluster
        .as_ref()
        .map(|c| {
            let per_peer: u64 = c.channel.iter().flat_map(|p| p.rejected.values()).sum();
            per_peer + c.rejected_unknown.values().sum::<u64>()
        })
        .unwrap_or(0)
}

fn instance(s: &Status) -> (State, u64) {
    let v = s
        .instances
        .iter()
        .find(|v| v.name == NAME)
        .expect("instance VI_1 in status");
    (v.state, v.became_master)
}

#[test]
fn a_flood_of_garbage_and_unproven_connections_moves_nothing_and_delays_no_advert() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("fl", 2).expect("building the namespace lab");
    let key: PathBuf = lab.write_cluster_key(KEY).expect("writing the cluster key");
    for (i, prio) in [(0usize, 150u8), (1, 100)] {
        let t = toml(&lab, &key, i, prio);
        let pid = lab
            .start_baton(Path::new(BATON), i, &t)
            .expect("starting baton");
        lab.wait_for_agent(i, pid, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", lab.log(i)));
    }
    let settled = lab.wait_for(Duration::from_secs(10), |l| {
        l.masters(NAME) == [0] && l.holders(VIP4.into()) == [0] && l.mesh_ready()
    });
    assert!(
        settled,
        "no settled cluster:\n{}\n{}",
        lab.log(0),
        lab.log(1)
    );

    // The same lab without the flood, for the host's own gaps.
    let quiet = AdvertRecorder::start(lab.node_ns(1), lab.node_addr4(1), lab.node_addr4(0))
        .expect("recording adverts on node1");
    std::thread::sleep(QUIET);
    let quiet = quiet.finish();

    let before: Vec<Status> = (0..2).map(|i| status(&lab, i)).collect();
    let rate = knob("BATON_FLOOD_RATE", RATE);
    let recorder = AdvertRecorder::start(lab.node_ns(1), lab.node_addr4(1), lab.node_addr4(0))
        .expect("recording adverts on node1");
    let flood = Flood::start(FloodPlan {
        netns: lab.client_ns().to_string(),
        targets: vec![
            Ipv4Addr::new(224, 0, 0, 18),
            lab.node_addr4(0),
            lab.node_addr4(1),
        ],
        packets_per_sec: rate,
        tcp: (0..2)
            .map(|i| SocketAddr::new(lab.node_addr4(i).into(), 7480))
            .collect(),
        tcp_parallel: knob("BATON_FLOOD_TCP", TCP_PARALLEL as u64) as usize,
        vrid: VRID,
    })
    .expect("starting the flood");

    // Watch the roles all along, not only at the end.
    let start = Instant::now();
    let mut moved = None;
    while start.elapsed() < FLOOD {
        if lab.masters(NAME) != [0] || lab.holders(VIP4.into()) != [0] {
            moved = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = flood.finish();
    let spacing = recorder.finish();
    let after: Vec<Status> = (0..2).map(|i| status(&lab, i)).collect();

    let late = ADVERT * 2 + Duration::from_millis(5);
    println!(
        "MEASURED: no flood {:?}: node1 saw {} adverts of node0, spacing median {:?} p99 {:?} \
         max {:?}, {} gaps over 2 intervals + 5 ms",
        QUIET,
        quiet.adverts,
        quiet.median,
        quiet.p99,
        quiet.max,
        quiet.late_over(late)
    );
    println!(
        "MEASURED: flood {:?}: {} garbage packets, {} connections; node1 saw {} adverts of node0, \
         spacing median {:?} p99 {:?} max {:?}, {} gaps over 2 intervals + 5 ms",
        FLOOD,
        sent.packets,
        sent.connections,
        spacing.adverts,
        spacing.median,
        spacing.p99,
        spacing.max,
        spacing.late_over(late)
    );
    for i in 0..2 {
        println!(
            "MEASURED: node{i}: {} packets dropped, {} channel rejections during the flood",
            drops(&after[i]) - drops(&before[i]),
            rejected(&after[i]) - rejected(&before[i]),
        );
    }
    let ctx = || format!("node0:\n{}\nnode1:\n{}", lab.log(0), lab.log(1));

    assert_eq!(moved, None, "the VIP or the master moved\n{}", ctx());
    assert_eq!(
        instance(&after[1]).1,
        instance(&before[1]).1,
        "node1 became master during the flood\n{}",
        ctx()
    );
    assert_eq!(instance(&after[0]).0, State::Master);
    assert!(lab.mesh_ready(), "the channel went down\n{}", ctx());
    // The flood was real and reached both agents.
    assert!(sent.packets > rate * FLOOD.as_secs() / 2, "{sent:?}");
    assert!(sent.connections > 100, "{sent:?}");
    for i in 0..2 {
        assert!(
            drops(&after[i]) > drops(&before[i]) + 1000,
            "node{i} counted few drops: the garbage did not reach it"
        );
        assert!(
            rejected(&after[i]) > rejected(&before[i]),
            "node{i} rejected no connection: the TCP flood did not reach it"
        );
    }
    // Adverts kept their pace: about one per interval, none late by more
    // than an interval.
    let expected = (FLOOD.as_millis() / ADVERT.as_millis()) as usize;
    assert!(
        spacing.adverts > expected * 9 / 10,
        "node1 saw only {} of about {expected} adverts",
        spacing.adverts
    );
    // As often late as without the flood (per advert, with room for the
    // host's own hiccups: 1 % of the adverts). A gap as long as the
    // backup's master-down interval would have shown as its takeover,
    // above. (With the channel on the protocol thread, this flood made 5 %
    // of the adverts late and a backup take over.)
    let quiet_rate = quiet.late_over(late) as f64 / quiet.adverts.max(1) as f64;
    let allowed =
        (quiet_rate * spacing.adverts as f64 * 2.0).ceil() as usize + spacing.adverts / 100;
    assert!(
        spacing.late_over(late) <= allowed,
        "{} adverts late by more than an interval under the flood (without it: {} in {} adverts)",
        spacing.late_over(late),
        quiet.late_over(late),
        quiet.adverts
    );
}
