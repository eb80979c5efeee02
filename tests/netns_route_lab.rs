//! The routed lab and the shipped FRR configuration of a route-mode node
//! (`conf/frr-route-mode.conf`), without baton: a VIP is put on a node's
//! `lo` by hand, as a route-mode holder would, and the router's route, its
//! BGP paths and a client pinging through it are watched.
//!
//! ```text
//!   node0 10.77.1.2 (AS 65001)   node1 10.77.2.2 (AS 65002)
//!              \                      /
//!          router (AS 65000, eBGP + BFD 100 ms x 3)
//!                         |
//!                client 10.77.100.2 (pings 10.99.0.100 every 10 ms)
//! ```
//!
//! Each test builds its own [`RouteLab`] (namespaces prefixed "brl" plus the
//! process id) and needs root and FRR (zebra, bgpd, bfdd): without root a
//! test prints "skipped: needs root" and passes, except under `CI=true`.
//! The bounds are generous against the expected numbers (a few ms for an
//! update, 300 ms for BFD) because two cores are shared with other builds;
//! each test prints what it measured.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use baton::lab;
use baton::lab::probe::Prober;
use baton::lab::route::{self, FibWatch, RouteLab, RouterOptions, Side};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const VIP_PREFIX: &str = "10.99.0.100/32";
const VIP6_PREFIX: &str = "fd00:99::100/128";
/// The sessions come up in about 1-3 s (connect retry 1 s, BFD handshake).
const SESSIONS: Duration = Duration::from_secs(20);
/// An announcement or a withdrawal: zebra -> bgpd -> one UPDATE -> the
/// router's bgpd -> zebra -> kernel. About 130 ms: each bgpd holds its
/// best-path queue 50 ms (compiled in), zebra its own 10 ms; no timer
/// otherwise (advertisement-interval 0, coalesce-time 0). 600 ms leaves
/// room for a loaded machine and still catches a lost second (bgpd's 1 s
/// coalescing for a new session took 916 ms without `coalesce-time 0`).
const UPDATE: Duration = Duration::from_millis(600);
/// BFD detection (3 x 100 ms, up to 3.75 x with bfdd's jitter) plus an
/// update, with the same slack.
const BFD_BOUND: Duration = Duration::from_millis(1000);
const PING: Duration = Duration::from_millis(10);

fn lab(nodes: usize, opts: RouterOptions) -> RouteLab {
    let lab = RouteLab::new("brl", nodes, opts).unwrap_or_else(|e| panic!("routed lab: {e}"));
    let took = lab
        .wait_sessions(SESSIONS)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.frr_log("router")));
    eprintln!("sessions Established, BFD up after {took:?}");
    lab
}

fn vip() -> IpAddr {
    IpAddr::V4(VIP)
}

/// A prober from the client that already gets replies from the VIP.
fn probing(lab: &RouteLab) -> Prober {
    let p = Prober::start(Some(lab.client_ns()), VIP, PING).expect("prober");
    assert!(
        p.wait_for_replies(5, Duration::from_secs(3)),
        "the client gets no replies from {VIP}\n{}",
        lab.context()
    );
    p
}

/// The shipped configuration announces a VIP put on `lo` (IPv4 and IPv6),
/// the client reaches it through the router, removing it withdraws it, and
/// nothing outside the prefix-lists is announced.
#[test]
fn a_vip_on_lo_is_announced_and_withdrawn() {
    if !lab::require_root() {
        return;
    }
    // Three nodes here (two elsewhere): the lab's largest usual size.
    let lab = lab(3, RouterOptions::default());
    assert_eq!(lab.router_fib(VIP_PREFIX).unwrap(), Vec::<usize>::new());

    lab.add_vip(0, vip(), None).unwrap();
    let took = lab
        .wait_fib(VIP_PREFIX, &[0], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("announce: the router forwards to node0 {took:?} after the add (bound {UPDATE:?})");
    assert_eq!(
        lab.router_route(VIP_PREFIX).unwrap(),
        vec![0],
        "zebra's route"
    );
    let paths = lab.router_paths(VIP_PREFIX).unwrap();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0].node, Some(0));

    // The client's pings go through the router to node0 and back.
    let tx = lab.node_tx_packets(0).unwrap();
    let p = probing(&lab);
    std::thread::sleep(Duration::from_millis(200));
    let report = p.finish().unwrap();
    let sent_by_node0 = lab.node_tx_packets(0).unwrap() - tx;
    eprintln!("pings: {report:?}, node0 sent {sent_by_node0} packets");
    assert!(report.received >= 10, "{report:?}");
    assert!(
        sent_by_node0 >= report.received,
        "the replies came from node0"
    );

    // IPv6: a /128 on lo goes the same way (over the IPv4 session).
    let vip6: IpAddr = "fd00:99::100".parse().unwrap();
    lab.add_vip(0, vip6, None).unwrap();
    let took = lab
        .wait_fib(VIP6_PREFIX, &[0], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("announce v6: {took:?}");

    // The filter: a host address outside 10.99.0.0/24, and a /24 inside it
    // (not a host route), both on lo, are not announced.
    let outside: IpAddr = "10.98.0.1".parse().unwrap();
    lab.add_vip(1, outside, None).unwrap();
    lab.ns(
        lab.node_ns(1),
        "ip",
        &["addr", "add", "10.99.0.50/24", "dev", "lo"],
    )
    .unwrap();
    // A VIP of the range added after them is the marker: once it is at the
    // router, the others would have been too.
    let marker: IpAddr = "10.99.0.101".parse().unwrap();
    lab.add_vip(1, marker, None).unwrap();
    lab.wait_fib("10.99.0.101/32", &[1], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    for prefix in ["10.98.0.1/32", "10.99.0.0/24"] {
        assert!(
            lab.router_paths(prefix).unwrap().is_empty(),
            "{prefix} was announced\n{}",
            lab.context()
        );
    }

    let took_del = {
        lab.del_vip(0, vip()).unwrap();
        lab.wait_fib(VIP_PREFIX, &[], UPDATE)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    eprintln!(
        "withdraw: the router dropped the route {took_del:?} after the delete (bound {UPDATE:?})"
    );
    assert!(lab.router_paths(VIP_PREFIX).unwrap().is_empty());
    assert_eq!(
        lab.router_fib(VIP6_PREFIX).unwrap(),
        vec![0],
        "v6 untouched"
    );
}

/// The VIP moves from node0 to node1, both ways a holder can hand it over:
/// break-before-make (node0 removes, then node1 adds) and make-before-break
/// (node1 adds, then node0 removes). The route follows; the client's outage
/// and the time with two announcers are measured.
#[test]
fn moving_the_vip_moves_the_route() {
    if !lab::require_root() {
        return;
    }
    let lab = lab(2, RouterOptions::default());
    lab.add_vip(0, vip(), None).unwrap();
    lab.wait_fib(VIP_PREFIX, &[0], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));

    // Break before make.
    let p = probing(&lab);
    lab.del_vip(0, vip()).unwrap();
    lab.add_vip(1, vip(), None).unwrap();
    let took = lab
        .wait_fib(VIP_PREFIX, &[1], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(p.wait_for_replies(p.received() + 10, Duration::from_secs(2)));
    let report = p.finish().unwrap();
    eprintln!(
        "move node0 -> node1, break before make: route at node1 after {took:?}, client outage {:?} ({} lost)",
        report.longest_gap,
        report.lost()
    );
    assert!(
        report.longest_gap < UPDATE,
        "outage {report:?} (bound {UPDATE:?}: one withdraw + one update)"
    );

    // Make before break: two announcers for a moment; the router keeps one
    // best path (no multipath across different ASes), so the client sees
    // no gap and the FIB never points at both.
    let p = probing(&lab);
    let watch = FibWatch::start(&lab, VIP_PREFIX);
    let t0 = Instant::now();
    lab.add_vip(0, vip(), None).unwrap();
    lab.wait_for(UPDATE, "the router has two paths", |l| {
        l.router_paths(VIP_PREFIX).is_ok_and(|p| p.len() == 2)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let two_paths_at = Instant::now();
    lab.del_vip(1, vip()).unwrap();
    lab.wait_fib(VIP_PREFIX, &[0], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    lab.wait_for(UPDATE, "one path left", |l| {
        l.router_paths(VIP_PREFIX).is_ok_and(|p| p.len() == 1)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let one_path_at = Instant::now();
    assert!(p.wait_for_replies(p.received() + 10, Duration::from_secs(2)));
    let report = p.finish().unwrap();
    let history = watch.finish();
    let both = route::multi_path_time(&history, t0, Instant::now());
    eprintln!(
        "move node1 -> node0, make before break: two BGP paths for {:?} (polled), FIB on two nodes {both:?}, client outage {:?} ({} lost)",
        one_path_at - two_paths_at,
        report.longest_gap,
        report.lost()
    );
    assert_eq!(
        both,
        Duration::ZERO,
        "the router forwarded to both: {history:?}"
    );
    assert!(
        report.longest_gap < UPDATE,
        "outage {report:?} (bound {UPDATE:?})"
    );
}

/// node0 holds the VIP and loses its uplink; node1 adds the VIP at once (as
/// the election would). Three ways to lose it: the link taken down on the
/// node's side, on the router's side (both: carrier loss, seen at once), and
/// cut silently between them (nftables on the router: only BFD notices,
/// 3 x 100 ms). Measured: how long until the router stops forwarding to
/// node0, and the client's outage.
#[test]
fn a_lost_uplink_moves_the_route_within_bfd_detection() {
    if !lab::require_root() {
        return;
    }
    let lab = lab(2, RouterOptions::default());
    let mut holder = 0;
    lab.add_vip(holder, vip(), None).unwrap();
    lab.wait_fib(VIP_PREFIX, &[holder], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));

    for how in [
        "link down (node side)",
        "link down (router side)",
        "silent cut (BFD)",
    ] {
        let other = 1 - holder;
        let p = probing(&lab);
        let watch = FibWatch::start(&lab, VIP_PREFIX);
        std::thread::sleep(Duration::from_millis(30));
        let t0 = Instant::now();
        match how {
            "link down (node side)" => lab.set_uplink(holder, Side::Node, false),
            "link down (router side)" => lab.set_uplink(holder, Side::Router, false),
            _ => lab.cut_uplink(holder, true),
        }
        .unwrap();
        lab.add_vip(other, vip(), None).unwrap();
        let bound = if how.contains("BFD") {
            BFD_BOUND
        } else {
            UPDATE
        };
        lab.wait_fib(VIP_PREFIX, &[other], bound + UPDATE)
            .unwrap_or_else(|e| panic!("{how}: {e}"));
        assert!(p.wait_for_replies(p.received() + 10, Duration::from_secs(2)));
        let report = p.finish().unwrap();
        let history = watch.finish();
        let left = route::stopped_using(&history, holder, t0).expect("the router left node0") - t0;
        let changes: Vec<_> = history
            .iter()
            .map(|(t, n)| (t.saturating_duration_since(t0), n))
            .collect();
        eprintln!("{how}: router FIB after the failure: {changes:?}");
        eprintln!(
            "{how}: router stopped using node{holder} after {left:?}, client outage {:?} ({} lost) (bound {bound:?})",
            report.longest_gap,
            report.lost()
        );
        assert!(
            left < bound,
            "{how}: {left:?} (bound {bound:?})\n{history:?}"
        );
        // The client's outage follows the router's switch, but after a
        // silent cut it has twice in ten runs lasted 720-880 ms while the
        // router switched at 330-370 ms (cause not found): the bound for
        // the client is the BFD bound plus an update, the BFD claim is the
        // router's switch above.
        let client_bound = if how.contains("BFD") {
            bound + UPDATE
        } else {
            bound + PING * 3
        };
        assert!(
            report.longest_gap < client_bound,
            "{how}: outage {report:?} (bound {client_bound:?})"
        );

        // Mend the link, take the VIP back off the old holder (the
        // election would have), and wait until the session is back.
        lab.del_vip(holder, vip()).unwrap();
        match how {
            "link down (node side)" => lab.set_uplink(holder, Side::Node, true),
            "link down (router side)" => lab.set_uplink(holder, Side::Router, true),
            _ => lab.cut_uplink(holder, false),
        }
        .unwrap();
        lab.wait_sessions(SESSIONS)
            .unwrap_or_else(|e| panic!("{how}: {e}"));
        holder = other;
    }
}

/// Priority as MED, with the same fixed node configuration: each node adds
/// the VIP with an address metric (lower for a higher priority), zebra
/// gives the connected route that metric, bgpd announces it as the MED, and
/// a router with `bgp always-compare-med` prefers the lower one whatever the
/// order the paths came in: a partitioned pair that both hold the VIP sends
/// traffic to the right node.
#[test]
fn the_address_metric_is_the_med_and_the_router_prefers_the_lower() {
    if !lab::require_root() {
        return;
    }
    let lab = lab(
        2,
        RouterOptions {
            always_compare_med: true,
        },
    );
    // Priority 200 -> metric 55 on node1; priority 100 -> metric 155 on node0.
    for order in [[1, 0], [0, 1]] {
        for i in order {
            let metric = if i == 1 { 55 } else { 155 };
            lab.add_vip(i, vip(), Some(metric)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        lab.wait_for(UPDATE, "two paths", |l| {
            l.router_paths(VIP_PREFIX).is_ok_and(|p| p.len() == 2)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let took = lab
            .wait_fib(VIP_PREFIX, &[1], UPDATE)
            .unwrap_or_else(|e| panic!("{e}"));
        let paths = lab.router_paths(VIP_PREFIX).unwrap();
        eprintln!("added in order {order:?}: paths {paths:?}, route at node1 within {took:?}");
        let best: Vec<_> = paths.iter().filter(|p| p.best).collect();
        assert_eq!(best.len(), 1, "{paths:?}");
        assert_eq!(
            (best[0].node, best[0].med),
            (Some(1), Some(55)),
            "{paths:?}"
        );
        assert!(
            paths
                .iter()
                .any(|p| (p.node, p.med) == (Some(0), Some(155))),
            "{paths:?}"
        );
        // The higher priority goes: the lower takes over.
        lab.del_vip(1, vip()).unwrap();
        lab.wait_fib(VIP_PREFIX, &[0], UPDATE)
            .unwrap_or_else(|e| panic!("{e}"));
        lab.del_vip(0, vip()).unwrap();
        lab.wait_fib(VIP_PREFIX, &[], UPDATE)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // Make before break with priorities: the new holder (node1, higher
    // priority, lower MED) adds the VIP while node0 still has it; the
    // router moves at once, and node0 removes it after. No gap: without
    // the MED the router keeps the older path until node0's withdrawal
    // arrives (see moving_the_vip_moves_the_route).
    lab.add_vip(0, vip(), Some(155)).unwrap();
    lab.wait_fib(VIP_PREFIX, &[0], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    let p = probing(&lab);
    lab.add_vip(1, vip(), Some(55)).unwrap();
    lab.wait_fib(VIP_PREFIX, &[1], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    lab.del_vip(0, vip()).unwrap();
    lab.wait_for(UPDATE, "one path left", |l| {
        l.router_paths(VIP_PREFIX).is_ok_and(|p| p.len() == 1)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(p.wait_for_replies(p.received() + 10, Duration::from_secs(2)));
    let report = p.finish().unwrap();
    eprintln!(
        "make before break with MED: client outage {:?} ({} lost)",
        report.longest_gap,
        report.lost()
    );
    // Bound: a few ping intervals (no packet needs to be lost at all).
    assert!(report.longest_gap < PING * 10, "{report:?}");

    // Metric 255, baton's release: the shipped file does not announce it
    // (the address stays and answers); re-added with another metric, it is.
    lab.del_vip(1, vip()).unwrap();
    lab.wait_for(UPDATE, "no path", |l| {
        l.router_paths(VIP_PREFIX).is_ok_and(|p| p.is_empty())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    lab.add_vip(1, vip(), Some(255)).unwrap();
    // A marker of the range added after it: once it is at the router, the
    // release-metric VIP would have been too.
    let marker: IpAddr = "10.99.0.102".parse().unwrap();
    lab.add_vip(1, marker, Some(100)).unwrap();
    lab.wait_fib("10.99.0.102/32", &[1], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lab.router_paths(VIP_PREFIX).unwrap().is_empty(),
        "metric 255 was announced\n{}",
        lab.context()
    );
    lab.del_vip(1, vip()).unwrap();
    lab.add_vip(1, vip(), Some(100)).unwrap();
    lab.wait_fib(VIP_PREFIX, &[1], UPDATE)
        .unwrap_or_else(|e| panic!("{e}"));
}
