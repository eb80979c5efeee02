//! `baton demo --route`: route mode across three subnets through a router,
//! narrated.
//!
//! Builds the routed lab ([`super::route::RouteLab`]: a router running FRR,
//! three nodes in subnets of their own each running FRR with the shipped
//! `conf/frr-route-mode.conf`, a client behind the router), runs three
//! `baton run` processes (this very binary) with a route-mode instance,
//! and shows the router's route to the VIP following the holder: the
//! election, a SIGKILL of the holder, and an operator's switchover, with
//! the outage a client pinging every 10 ms saw. Everything is removed at
//! the end, also on Ctrl-C.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::probe::Prober;
use super::route::{RouteLab, RouterOptions};

const PRIORITIES: [u8; 3] = [150, 100, 50];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const PREFIX: &str = "10.99.0.100/32";
const NAME: &str = "WEB";

struct Demo {
    lab: RouteLab,
    stop: Arc<AtomicBool>,
}

impl Demo {
    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&RouteLab) -> bool,
    ) -> Result<Duration, String> {
        let t0 = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err("interrupted: cleaning up".into());
            }
            if cond(&self.lab) {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn show(&self) {
        let route = self
            .lab
            .router_fib(PREFIX)
            .map(|n| {
                n.iter()
                    .map(|i| format!("node{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!("    node   subnet        priority  state     VIP on lo");
        let holders = self.lab.holders(IpAddr::V4(VIP));
        for (i, priority) in PRIORITIES.iter().enumerate().take(self.lab.nodes()) {
            let state = match self.lab.status(i) {
                Some(s) => s
                    .instances
                    .first()
                    .map_or("-".into(), |x| x.state.to_string()),
                None => "(down)".into(),
            };
            let holds = if holders.contains(&i) {
                VIP.to_string()
            } else {
                String::new()
            };
            println!(
                "    node{i}  10.77.{}.0/24  {priority:>8}  {state:<8}  {holds}",
                i + 1
            );
        }
        println!(
            "    router: {PREFIX} via {}",
            if route.is_empty() { "nothing" } else { &route }
        );
    }

    fn probe(&self) -> Result<Prober, String> {
        let p = Prober::start(Some(self.lab.client_ns()), VIP, Duration::from_millis(10))
            .map_err(|e| format!("prober: {e}"))?;
        if !p.wait_for_replies(5, Duration::from_secs(5)) {
            return Err("the client gets no replies from the VIP".into());
        }
        Ok(p)
    }
}

/// Run the route-mode demo. Needs root (network namespaces) and FRR.
pub fn run(stop: Arc<AtomicBool>) -> Result<(), String> {
    let baton = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    for d in ["zebra", "bgpd", "bfdd"] {
        if !Path::new(super::route::FRR_DIR).join(d).exists() {
            return Err(format!(
                "{}/{d} is missing: install FRR (apt-get install frr)",
                super::route::FRR_DIR
            ));
        }
    }
    println!(
        "baton demo --route: three nodes in three subnets behind a router, a client behind it."
    );
    let lab = RouteLab::new("bdr", 3, RouterOptions::default())
        .map_err(|e| format!("building the lab: {e}"))?;
    let mut demo = Demo { lab, stop };
    println!(
        "  lab {}: nodes 10.77.1.2, 10.77.2.2, 10.77.3.2, client 10.77.100.2, VIP {VIP}",
        demo.lab.tag()
    );
    println!("  every node and the router run FRR (zebra, bgpd, bfdd; eBGP with BFD);");
    println!("  the nodes run the shipped conf/frr-route-mode.conf, which announces a VIP on lo.");
    demo.wait("the BGP sessions", Duration::from_secs(30), |l| {
        l.sessions().is_ok_and(|s| s.iter().all(|x| x.ready()))
    })?;
    let key = demo
        .lab
        .write_cluster_key(b"baton demo cluster key, not secret")
        .map_err(|e| format!("cluster key: {e}"))?;
    let mut pids = Vec::new();
    for (i, p) in PRIORITIES.iter().enumerate() {
        let toml = format!(
            "[[instance]]\nname = \"{NAME}\"\nmode = \"route\"\npriority = {p}\n\
             virtual_ips = [\"{VIP}/32\"]\n"
        );
        let pid = demo
            .lab
            .start_baton(&baton, i, &key, "100ms", &toml)
            .map_err(|e| format!("starting node{i}: {e}"))?;
        pids.push(pid);
    }
    println!(
        "\n1. Three baton agents in route mode: no VRRP; the cluster channel elects the holder,"
    );
    println!("   which puts the VIP on its lo; FRR announces it to the router.");
    let took = demo.wait("the election", Duration::from_secs(20), |l| {
        l.masters(NAME) == [0] && l.router_fib(PREFIX).is_ok_and(|n| n == [0])
    });
    if let Err(e) = took {
        return Err(format!("{e}\nnode0 log:\n{}", demo.lab.baton_log(0)));
    }
    demo.show();

    println!("\n2. The client pings the VIP every 10 ms. SIGKILL of node0's baton...");
    let p = demo.probe()?;
    demo.lab
        .signal(pids[0], Signal::SIGKILL)
        .map_err(|e| e.to_string())?;
    let took = demo.wait("node1 to hold the VIP", Duration::from_secs(5), |l| {
        l.holders(IpAddr::V4(VIP)).contains(&1)
    })?;
    println!(
        "   node1 held the VIP {} ms later (the channel closed without a goodbye);",
        took.as_millis()
    );
    let gone = demo.wait("node0's lease", Duration::from_secs(5), |l| {
        l.router_fib(PREFIX).is_ok_and(|n| n == [1])
    })?;
    println!(
        "   node0's VIP stayed (answering) until its 2 s lease ran out; the router moved after {} ms.",
        (took + gone).as_millis()
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().map_err(|e| format!("prober: {e}"))?;
    println!(
        "   the client lost {} of {} pings, longest gap {} ms (one BGP withdrawal).",
        report.lost(),
        report.sent,
        report.longest_gap.as_millis()
    );
    demo.show();

    println!(
        "\n3. An operator moves the VIP to node2 (`baton switchover {NAME} --to node2` on node1)."
    );
    println!("   node2 adds and announces it; node1 keeps answering while the router moves.");
    let p = demo.probe()?;
    let out = demo
        .lab
        .baton_cli(&baton, 1, &["switchover", NAME, "--to", "node2"])
        .map_err(|e| format!("switchover: {e}"))?;
    let said = String::from_utf8_lossy(if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    });
    println!("   baton switchover: {}", said.trim());
    demo.wait("the switchover", Duration::from_secs(5), |l| {
        l.holders(IpAddr::V4(VIP)) == [2] && l.router_fib(PREFIX).is_ok_and(|n| n == [2])
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let report = p.finish().map_err(|e| format!("prober: {e}"))?;
    println!(
        "   the client lost {} of {} pings, longest gap {} ms.",
        report.lost(),
        report.sent,
        report.longest_gap.as_millis()
    );
    demo.show();
    println!("\nDone: tearing the lab down.");
    Ok(())
}
