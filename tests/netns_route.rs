//! Route mode end to end: three `baton run` processes in their own subnets
//! behind a router, each beside FRR running the shipped
//! `conf/frr-route-mode.conf`; the cluster channel elects the holder, which
//! puts the VIP on its `lo`, and the router's route to the VIP follows it.
//! A client behind the router pings the VIP every 10 ms.
//!
//! ```text
//!   node0 10.77.1.2 (150)   node1 10.77.2.2 (100)   node2 10.77.3.2 (50)
//!   baton + FRR             baton + FRR             baton + FRR
//!            \___________ router (eBGP + BFD) __________/
//!                               |
//!                       client 10.77.100.2
//! ```
//!
//! Bounds, each with its reason (the numbers measured are printed on
//! `MEASURED:` lines, `cargo test --test netns_route -- --nocapture`):
//! - an update through FRR takes about 130 ms (each bgpd batches 50 ms);
//! - a SIGKILLed holder's VIP stays on its `lo` until its lease (2 s) runs
//!   out, so it keeps answering and its route stays until then: the client
//!   loses at most the withdrawal's update, and two nodes announce for at
//!   most the lease plus the kernel's one-second rounding;
//! - a handover (SIGTERM, switchover, preemption) is make-before-break:
//!   the old holder re-adds its VIP with the release metric, which the
//!   shipped FRR configuration does not announce, and keeps answering for
//!   `release_delay` (500 ms): no ping is lost;
//! - a link down: the holder's peers notice its silence after three
//!   heartbeats (300 ms), the router by BFD (300 ms), then one update.
//!
//! Needs root and FRR; without root a test prints "skipped: needs root" and
//! passes, except under `CI=true`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::lab;
use baton::lab::probe::{ProbeReport, Prober};
use baton::lab::route::{self, FibWatch, RouteLab, RouterOptions, Side};
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "WEB";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const PREFIX: &str = "10.99.0.100/32";
const PRIORITIES: [u8; 3] = [150, 100, 50];
const KEY: &[u8] = b"netns route test key: 32 bytes or more of it";
const PING: Duration = Duration::from_millis(10);
/// Sessions, agents, the first election and its announcement.
const SETTLE: Duration = Duration::from_secs(20);
/// One update through FRR (about 130 ms) with room for a loaded machine.
const UPDATE: Duration = Duration::from_millis(600);
/// A make-before-break move: the client loses nothing; 100 ms allows for
/// replies delayed on a loaded machine, and is still below the ~130 ms (12
/// or more pings) that one BGP update without it costs.
const NO_GAP: Duration = Duration::from_millis(100);
/// Pings a make-before-break move may lose on a loaded machine.
const NO_LOSS: u64 = 2;

struct Rl {
    lab: RouteLab,
    key: PathBuf,
    pids: Vec<Option<u32>>,
}

fn instance_toml(priority: u8, track_uplink: bool) -> String {
    let track = if track_uplink {
        "track_interfaces = [{ name = \"eth0\" }]\n"
    } else {
        ""
    };
    format!(
        "[[instance]]\nname = \"{NAME}\"\nmode = \"route\"\npriority = {priority}\n\
         virtual_ips = [\"{VIP}/32\"]\n{track}"
    )
}

impl Rl {
    fn new(track_uplink: bool) -> Rl {
        let lab = RouteLab::new("brt", 3, RouterOptions::default())
            .unwrap_or_else(|e| panic!("routed lab: {e}"));
        let key = lab.write_cluster_key(KEY).expect("key");
        let mut rl = Rl {
            lab,
            key,
            pids: vec![None; 3],
        };
        rl.lab
            .wait_sessions(SETTLE)
            .unwrap_or_else(|e| panic!("{e}\n{}", rl.lab.context()));
        for i in 0..3 {
            rl.start(i, track_uplink);
        }
        rl.wait("node0 holds and the router forwards to it", SETTLE, |l| {
            l.masters(NAME) == [0]
                && l.holders(IpAddr::V4(VIP)) == [0]
                && l.router_fib(PREFIX).is_ok_and(|n| n == [0])
                && l.mesh_ready()
        });
        rl
    }

    fn start(&mut self, i: usize, track_uplink: bool) {
        let pid = self
            .lab
            .start_baton(
                Path::new(BATON),
                i,
                &self.key,
                "100ms",
                &instance_toml(PRIORITIES[i], track_uplink),
            )
            .expect("start baton");
        self.pids[i] = Some(pid);
    }

    fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&RouteLab) -> bool) -> Duration {
        let t0 = Instant::now();
        while !cond(&self.lab) {
            if t0.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting until {what}\n{}\n--- node0 ---\n{}\n--- node1 ---\n{}",
                    self.lab.context(),
                    self.lab.baton_log(0),
                    self.lab.baton_log(1)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        t0.elapsed()
    }

    fn signal(&mut self, i: usize, sig: Signal) {
        let pid = self.pids[i].take().expect("running");
        self.lab.signal(pid, sig).expect("signal");
        let code = self.lab.wait(pid, Duration::from_secs(5)).expect("wait");
        assert!(code.is_some(), "node{i} did not exit on {sig:?}");
    }

    fn probe(&self) -> Prober {
        let p = Prober::start(Some(self.lab.client_ns()), VIP, PING).expect("prober");
        assert!(
            p.wait_for_replies(5, Duration::from_secs(3)),
            "the client gets no replies\n{}",
            self.lab.context()
        );
        p
    }
}

fn measured(what: &str, report: &ProbeReport, extra: &str) {
    eprintln!(
        "MEASURED: {what}: client longest gap {} ms, {} of {} pings lost{extra}",
        report.longest_gap.as_millis(),
        report.lost(),
        report.sent
    );
}

/// Election, SIGKILL of the holder, its return (preemption) and an
/// operator's switchover, with the router's route and the client watched.
#[test]
fn route_mode_election_sigkill_preemption_and_switchover() {
    if !lab::require_root() {
        return;
    }
    let mut rl = Rl::new(false);
    // No VRRP at all: every node's counters say so.
    for i in 0..3 {
        let st = rl.lab.status(i).expect("status");
        let inst = &st.instances[0];
        assert_eq!(inst.mode, "route");
        assert_eq!((inst.tx.adverts_sent, inst.tx.garp_sent), (0, 0));
        assert_eq!(inst.rx.accepted, 0);
    }
    let paths = rl.lab.router_paths(PREFIX).unwrap();
    assert_eq!(paths.len(), 1, "one announcer: {paths:?}");
    assert_eq!(paths[0].med, Some(255 - 150), "priority as MED: {paths:?}");

    // SIGKILL: node1 takes over at the channel's close; node0's VIP stays
    // on its lo (it keeps answering) until its lease runs out.
    let p = rl.probe();
    let fib = FibWatch::start(&rl.lab, PREFIX);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    rl.signal(0, Signal::SIGKILL);
    let took = rl.wait("node1 holds", Duration::from_secs(5), |l| {
        l.holders(IpAddr::V4(VIP)).contains(&1)
    });
    let gone = rl.wait("node0's VIP expires", Duration::from_secs(5), |l| {
        !l.holders(IpAddr::V4(VIP)).contains(&0)
    });
    rl.wait("the router forwards to node1 alone", UPDATE, |l| {
        l.router_fib(PREFIX).is_ok_and(|n| n == [1])
    });
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().unwrap();
    let history = fib.finish();
    let left = route::stopped_using(&history, 0, t).map(|at| at - t);
    measured(
        "SIGKILL",
        &report,
        &format!(
            "; node1 held the VIP {} ms after the kill, node0's expired at {} ms, the router left node0 at {:?}",
            took.as_millis(),
            (took + gone).as_millis(),
            left
        ),
    );
    assert!(took < Duration::from_millis(300), "takeover took {took:?}");
    assert!(
        report.longest_gap < UPDATE,
        "the client's gap is at most the withdrawal's update: {report:?}"
    );
    assert!(
        took + gone < Duration::from_secs(4),
        "two announcers for at most the lease and the kernel's rounding"
    );
    assert_eq!(rl.lab.router_paths(PREFIX).unwrap().len(), 1);

    // node0 comes back and preempts: make-before-break, nothing lost.
    let p = rl.probe();
    let fib = FibWatch::start(&rl.lab, PREFIX);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    rl.start(0, false);
    rl.wait("node0 holds again, alone", SETTLE, |l| {
        l.masters(NAME) == [0]
            && l.holders(IpAddr::V4(VIP)) == [0]
            && l.router_fib(PREFIX).is_ok_and(|n| n == [0])
    });
    let settled = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().unwrap();
    let history = fib.finish();
    let both = route::multi_path_time(&history, t, Instant::now());
    measured(
        "preemption",
        &report,
        &format!(
            "; settled {} ms after the start, router on both {} ms",
            settled.as_millis(),
            both.as_millis()
        ),
    );
    assert!(
        report.longest_gap < NO_GAP && report.lost() <= NO_LOSS,
        "{report:?}"
    );

    // Switchover to node2 (asked on node1).
    rl.wait("the mesh", SETTLE, RouteLab::mesh_ready);
    let p = rl.probe();
    let t = Instant::now();
    let out = rl
        .lab
        .baton_cli(Path::new(BATON), 1, &["switchover", NAME, "--to", "node2"])
        .expect("switchover");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rl.wait(
        "node2 holds alone, the router on it",
        Duration::from_secs(5),
        |l| l.holders(IpAddr::V4(VIP)) == [2] && l.router_fib(PREFIX).is_ok_and(|n| n == [2]),
    );
    let moved = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().unwrap();
    measured(
        "switchover",
        &report,
        &format!("; settled on node2 after {} ms", moved.as_millis()),
    );
    assert!(
        report.longest_gap < NO_GAP && report.lost() <= NO_LOSS,
        "{report:?}"
    );
    assert_eq!(rl.lab.router_paths(PREFIX).unwrap().len(), 1);
}

/// SIGTERM hands over with nothing lost; the holder's link going down
/// moves the VIP within the heartbeats' and BFD's detection plus an update.
#[test]
fn route_mode_sigterm_and_link_down() {
    if !lab::require_root() {
        return;
    }
    let mut rl = Rl::new(true);

    let p = rl.probe();
    let t = Instant::now();
    rl.signal(0, Signal::SIGTERM);
    rl.wait(
        "node1 holds alone, the router on it",
        Duration::from_secs(5),
        |l| l.holders(IpAddr::V4(VIP)) == [1] && l.router_fib(PREFIX).is_ok_and(|n| n == [1]),
    );
    let moved = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().unwrap();
    measured(
        "SIGTERM",
        &report,
        &format!("; settled on node1 after {} ms", moved.as_millis()),
    );
    assert!(
        report.longest_gap < NO_GAP && report.lost() <= NO_LOSS,
        "{report:?}"
    );
    assert_eq!(rl.lab.router_paths(PREFIX).unwrap().len(), 1);

    // node1's uplink goes down (tracked: it faults and removes the VIP);
    // node2 takes over once three heartbeats are missing.
    let p = rl.probe();
    let fib = FibWatch::start(&rl.lab, PREFIX);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    rl.lab.set_uplink(1, Side::Node, false).unwrap();
    let took = rl.wait("node2 holds", Duration::from_secs(5), |l| {
        l.holders(IpAddr::V4(VIP)).contains(&2)
    });
    rl.wait(
        "the router forwards to node2",
        Duration::from_secs(5),
        |l| l.router_fib(PREFIX).is_ok_and(|n| n == [2]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().unwrap();
    let history = fib.finish();
    let left = route::stopped_using(&history, 1, t).map(|at| at - t);
    measured(
        "link down",
        &report,
        &format!(
            "; node2 held the VIP {} ms after, the router left node1 at {left:?}",
            took.as_millis()
        ),
    );
    // Three heartbeats (300 ms) for the successor, one update (130 ms),
    // with room for a loaded machine.
    let bound = Duration::from_millis(300) + UPDATE + Duration::from_millis(400);
    assert!(
        report.longest_gap < bound,
        "outage {:?} over {bound:?}",
        report.longest_gap
    );
    assert_eq!(rl.lab.router_paths(PREFIX).unwrap().len(), 1);
}

/// A partition of the channel alone (the router still reaches every node):
/// both sides elect a holder and both announce, and the priority carried as
/// the MED lets a router that compares MEDs keep sending to node0; healed,
/// node0 alone holds.
#[test]
fn route_mode_partition_the_med_keeps_the_router_on_the_best() {
    if !lab::require_root() {
        return;
    }
    let lab = RouteLab::new(
        "brp",
        3,
        RouterOptions {
            always_compare_med: true,
        },
    )
    .unwrap_or_else(|e| panic!("routed lab: {e}"));
    let key = lab.write_cluster_key(KEY).expect("key");
    let mut rl = Rl {
        lab,
        key,
        pids: vec![None; 3],
    };
    rl.lab
        .wait_sessions(SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", rl.lab.context()));
    for i in 0..3 {
        rl.start(i, false);
    }
    rl.wait("node0 holds, the router on it", SETTLE, |l| {
        l.holders(IpAddr::V4(VIP)) == [0]
            && l.router_fib(PREFIX).is_ok_and(|n| n == [0])
            && l.mesh_ready()
    });
    // The router stops forwarding between node0's subnet and the others:
    // the channel splits node0 | node1, node2; BGP and BFD are untouched.
    let rules = "table inet part {\n chain c_part { type filter hook forward priority -5; \
                 iifname \"n0\" oifname { \"n1\", \"n2\" } drop; \
                 iifname { \"n1\", \"n2\" } oifname \"n0\" drop; }\n}\n";
    let file = rl.lab.dir().join("part.nft");
    std::fs::write(&file, rules).unwrap();
    let p = rl.probe();
    rl.lab
        .ns(
            rl.lab.router_ns(),
            "nft",
            &["-f", &file.display().to_string()],
        )
        .expect("partition");
    let took = rl.wait("node1 holds too", Duration::from_secs(5), |l| {
        l.holders(IpAddr::V4(VIP)) == [0, 1]
    });
    rl.wait("the router has both paths", UPDATE, |l| {
        l.router_paths(PREFIX).is_ok_and(|p| p.len() == 2)
    });
    std::thread::sleep(Duration::from_millis(500));
    let paths = rl.lab.router_paths(PREFIX).unwrap();
    let best: Vec<_> = paths.iter().filter(|p| p.best).collect();
    assert_eq!(best.len(), 1, "{paths:?}");
    assert_eq!(
        (best[0].node, best[0].med),
        (Some(0), Some(105)),
        "{paths:?}"
    );
    assert_eq!(rl.lab.router_fib(PREFIX).unwrap(), [0]);
    let report = p.finish().unwrap();
    measured(
        "partition",
        &report,
        &format!(
            "; node1 took over on its side after {} ms",
            took.as_millis()
        ),
    );
    assert!(
        report.longest_gap < NO_GAP && report.lost() <= NO_LOSS,
        "{report:?}"
    );
    rl.lab
        .ns(
            rl.lab.router_ns(),
            "nft",
            &["delete", "table", "inet", "part"],
        )
        .expect("heal");
    rl.wait("node0 alone again", SETTLE, |l| {
        l.holders(IpAddr::V4(VIP)) == [0] && l.router_fib(PREFIX).is_ok_and(|n| n == [0])
    });
}
