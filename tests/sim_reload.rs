//! Reloads on the simulator: instances changed in place, added and
//! removed, with the cluster channel on (no root, virtual time).
//!
//! ```text
//!   n0 (10.0.0.1, prio 200)  <- channel ->  n1 (10.0.0.2, prio 100)
//!   -----+-----------------------------------------+---- LAN
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::cluster::Policy;
use baton::config::model::Instance;
use baton::sim::{instance, Sim};
use baton::vrrp::State;

const HB: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn vi(name: &str, vrid: u8, priority: u8, vips: &[IpAddr]) -> Instance {
    let mut c = instance(name, vrid, priority, vips);
    c.advert_interval = ms(100);
    c
}

fn pair() -> Sim {
    let mut sim = Sim::new(3);
    sim.add_node("n0", 1, vec![vi("VI_1", 51, 200, &[v4(100)])]);
    sim.add_node("n1", 2, vec![vi("VI_1", 51, 100, &[v4(100)])]);
    sim.enable_cluster(HB, Policy::Priority);
    sim.start_all();
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![0]);
    sim
}

/// A master whose VIP list, advert interval and priority change stays
/// master: no transition anywhere, and the adverts carry the new list.
#[test]
fn a_master_takes_new_vips_interval_and_priority_in_place() {
    let mut sim = pair();
    let before = sim.master_transitions();
    let mut c = sim.effective_config(0);
    c.instances[0]
        .virtual_ips
        .push("10.0.0.101/24".parse().expect("a VIP"));
    c.instances[0].advert_interval = ms(200);
    c.instances[0].priority = 210;
    sim.reload(0, c);
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(sim.vip_holders(0), vec![0]);
    assert_eq!(sim.master_transitions(), before, "{:?}", sim.events());
    let i = sim.instance(0, 0).expect("VI_1 on n0");
    assert_eq!(i.advert(i.priority()).addresses, vec![v4(100), v4(101)]);
    assert_eq!(i.priority(), 210);
    // The backup heard the new interval and still defers to n0.
    assert_eq!(sim.state(1, 0), Some(State::Backup));
}

/// An instance added by a reload is in the cluster core at once and the
/// peer hears of it before the next heartbeat; a removed one leaves both.
#[test]
fn added_and_removed_instances_reach_the_peers_at_once() {
    let mut sim = pair();
    let mut c = sim.effective_config(0);
    c.instances.push(vi("VI_2", 52, 200, &[v4(102)]));
    sim.reload(0, c);
    // Well within one heartbeat interval.
    sim.run_for(ms(5));
    let now = sim.now();
    let peer = sim.cluster(1).expect("n1's cluster core");
    assert!(
        peer.members().beat(now, "n0", "VI_2").is_some(),
        "n1 does not know n0's VI_2 yet"
    );
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(1), vec![0], "VI_2 runs on n0");
    let mut c = sim.effective_config(0);
    c.instances.retain(|i| i.name != "VI_2");
    sim.reload(0, c);
    sim.run_for(ms(5));
    let now = sim.now();
    let peer = sim.cluster(1).expect("n1's cluster core");
    assert!(peer.members().beat(now, "n0", "VI_2").is_none());
    let node = sim.node(0).expect("n0 runs");
    assert!(node.instance_by_name("VI_2").is_none());
    assert_eq!(node.cluster().map(|c| c.epoch("VI_2")), Some(0));
    assert_eq!(sim.masters(0), vec![0], "VI_1 untouched");
}

/// `[cluster]` removed from the master by a reload: its cluster core
/// stops, it stays master on VRRP alone and the peer (whose channel lost
/// it) stays backup: VRRP still hears the master. `[cluster]` added back
/// starts the core again, with no transition either.
#[test]
fn the_cluster_removed_and_added_back_without_a_transition() {
    let mut sim = pair();
    let before = sim.master_transitions();
    let mut c = sim.effective_config(0);
    c.cluster = None;
    sim.reload(0, c);
    assert!(sim.cluster(0).is_none(), "n0's cluster core stopped");
    sim.run_for(ms(5000));
    assert_eq!(sim.masters(0), vec![0], "{:?}", sim.events());
    assert_eq!(sim.state(1, 0), Some(State::Backup));
    assert_eq!(sim.master_transitions(), before, "{:?}", sim.events());
    let c = sim.effective_config(0);
    sim.reload(0, c);
    assert!(sim.cluster(0).is_some(), "n0's cluster core runs again");
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(sim.state(1, 0), Some(State::Backup));
    assert_eq!(sim.master_transitions(), before, "{:?}", sim.events());
}
