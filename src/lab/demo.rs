//! `baton demo`: a 3-node failover in network namespaces, narrated.
//!
//! Builds a bridge, three node namespaces and a client namespace, runs
//! three `baton run` processes (this very binary), pings the VIP from the
//! client every 10 ms, takes the master's link down, shows the new master
//! and the outage the client saw, brings the link back and shows the
//! original master preempting. Everything is removed at the end, also on
//! Ctrl-C.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use super::probe::Prober;
use super::Lab;
use crate::vrrp::State;

const PRIORITIES: [u8; 3] = [150, 100, 50];
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);

fn instance_toml(priority: u8) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         version = 3\nadvert_interval = \"100ms\"\npreempt = true\nvirtual_ips = [\"{VIP}/24\"]\n"
    )
}

struct Demo {
    lab: Lab,
    stop: Arc<AtomicBool>,
}

impl Demo {
    fn interrupted(&self) -> Result<(), String> {
        if self.stop.load(Ordering::Relaxed) {
            Err("interrupted: cleaning up".into())
        } else {
            Ok(())
        }
    }

    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Lab) -> bool,
    ) -> Result<Duration, String> {
        let t0 = Instant::now();
        let stop = self.stop.clone();
        let ok = self
            .lab
            .wait_for(timeout, |lab| stop.load(Ordering::Relaxed) || cond(lab));
        self.interrupted()?;
        if ok {
            Ok(t0.elapsed())
        } else {
            Err(format!("timed out after {timeout:?} waiting for {what}"))
        }
    }

    fn show(&self) {
        println!("    node   priority  state     VIP");
        for i in 0..self.lab.nodes() {
            let (state, prio) = match self.lab.status(i) {
                Some(s) => match s.instances.first() {
                    Some(inst) => (inst.state.to_string(), inst.effective_priority.to_string()),
                    None => ("-".into(), "-".into()),
                },
                None => ("(down)".into(), "-".into()),
            };
            let holds = if self.lab.has_addr(self.lab.node_ns(i), IpAddr::V4(VIP)) {
                format!("{VIP}")
            } else {
                String::new()
            };
            println!("    node{i}  {prio:>8}  {state:<8}  {holds}");
        }
    }
}

/// Run the demo (`route`: `baton demo --route`, [`super::route_demo`]).
/// Needs root (network namespaces).
pub fn run(route: bool) -> Result<(), String> {
    if !super::is_root() {
        return Err("needs root to create network namespaces; run it as root (e.g. `sudo cargo run --release -- demo`)".into());
    }
    let stop = interrupt_flag()?;
    if route {
        return super::route_demo::run(stop);
    }
    l2(stop)
}

/// Ctrl-C / TERM: block them here and wait for them on a thread, so every
/// step can stop cleanly and the lab is torn down by its Drop.
fn interrupt_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(|e| e.to_string())?;
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if set.wait().is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    Ok(stop)
}

fn l2(stop: Arc<AtomicBool>) -> Result<(), String> {
    let baton = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;

    println!("baton demo: three nodes, one client, one bridge, each in its own network namespace.");
    let lab = Lab::new("bd", 3).map_err(|e| format!("building the lab: {e}"))?;
    let mut demo = Demo { lab, stop };
    println!(
        "  lab {}: nodes 192.168.77.11-13, client .200, VIP {VIP}",
        demo.lab.tag()
    );
    println!("  VRRP v3, advert interval 100 ms, priorities {PRIORITIES:?}, preempt on,");
    println!("  and the cluster channel (authenticated TCP mesh, 100 ms heartbeats)\n");

    let key = demo
        .lab
        .write_cluster_key(b"baton demo cluster key, not secret")
        .map_err(|e| format!("cluster key: {e}"))?;
    for (i, p) in PRIORITIES.iter().enumerate() {
        let toml = format!(
            "{}{}",
            demo.lab.cluster_toml(i, &key, "100ms"),
            instance_toml(*p)
        );
        demo.lab
            .start_baton(&baton, i, &toml)
            .map_err(|e| format!("starting node{i}: {e}"))?;
    }
    println!("1. Starting three baton agents; the highest priority should win the election.");
    let took = demo.wait("an election", Duration::from_secs(10), |lab| {
        lab.masters("VI_1") == vec![0] && lab.holders(IpAddr::V4(VIP)) == vec![0]
    });
    if let Err(e) = took {
        return Err(format!("{e}\nnode0 log:\n{}", demo.lab.log(0)));
    }
    demo.show();

    println!("\n2. The client pings the VIP every 10 ms. Taking node0's link down...");
    let prober = Prober::start(Some(demo.lab.client_ns()), VIP, Duration::from_millis(10))
        .map_err(|e| format!("prober: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    demo.interrupted()?;
    demo.lab.set_link(0, false).map_err(|e| e.to_string())?;
    let took = demo.wait("a new master", Duration::from_secs(10), |lab| {
        lab.masters("VI_1") == vec![1] && lab.holders(IpAddr::V4(VIP)) == vec![1]
    })?;
    println!(
        "   node1 took over in {} ms; node0 went to FAULT and removed the VIP:",
        took.as_millis()
    );
    demo.show();
    std::thread::sleep(Duration::from_millis(1000));
    let report = prober.finish().map_err(|e| format!("prober: {e}"))?;
    println!(
        "   the client saw {} of {} pings lost, longest gap between replies {} ms",
        report.lost(),
        report.sent,
        report.longest_gap.as_millis()
    );

    println!("\n3. Bringing node0's link back: it preempts (higher priority, preempt on).");
    demo.lab.set_link(0, true).map_err(|e| e.to_string())?;
    let took = demo.wait("preemption", Duration::from_secs(10), |lab| {
        lab.masters("VI_1") == vec![0] && lab.holders(IpAddr::V4(VIP)) == vec![0]
    })?;
    println!("   node0 is master again after {} ms:", took.as_millis());
    demo.show();
    if demo.lab.state(0, "VI_1") != Some(State::Master) {
        return Err("node0 did not stay master".into());
    }

    demo.wait(
        "the channel mesh to reconnect",
        Duration::from_secs(10),
        Lab::mesh_ready,
    )?;
    println!("\n4. An operator moves the VIP to node2 (run on node1: `baton switchover VI_1 --to node2`).");
    println!("   node2 adds the VIP and announces it before node0 lets go (make-before-break).");
    let prober = Prober::start(Some(demo.lab.client_ns()), VIP, Duration::from_millis(10))
        .map_err(|e| format!("prober: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let out = demo
        .lab
        .baton_cli(&baton, 1, &["switchover", "VI_1", "--to", "node2"])
        .map_err(|e| format!("switchover: {e}"))?;
    let said = String::from_utf8_lossy(if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    });
    println!("   baton switchover: {}", said.trim());

    demo.wait("the switchover", Duration::from_secs(5), |lab| {
        lab.masters("VI_1") == vec![2] && lab.holders(IpAddr::V4(VIP)) == vec![2]
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let report = prober.finish().map_err(|e| format!("prober: {e}"))?;
    demo.show();
    println!(
        "   the client lost {} of {} pings; the choice holds against node0's higher priority",
        report.lost(),
        report.sent
    );
    let out = demo
        .lab
        .baton_cli(&baton, 0, &["switchover", "VI_1", "--clear"])
        .map_err(|e| format!("switchover --clear: {e}"))?;
    println!(
        "   `baton switchover VI_1 --clear`: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    demo.wait("preemption after clear", Duration::from_secs(5), |lab| {
        lab.masters("VI_1") == vec![0]
    })?;
    println!("   node0 preempted back at once (no master-down wait).");
    println!("\nDone: tearing the lab down.");
    Ok(())
}
