//! Route mode on the simulator: no VRRP at all, the cluster channel alone
//! elects the holder (issue 14, item 1).
//!
//! ```text
//!   n0 (prio 200)   n1 (150)   n2 (100): VIP 10.99.0.100/32 on lo
//!        \__________ channel mesh (100 ms heartbeats) ________/
//! ```
//!
//! The simulator still carries VRRP between the nodes: a route-mode node
//! that sent an advert or a GARP would show here.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::cluster::Policy;
use baton::config::model::Instance;
use baton::sim::{instance, Sim};
use baton::vrrp::{ClusterReason, Reason, State};

const HB: Duration = Duration::from_millis(100);
const RELEASE: Duration = Instance::DEFAULT_RELEASE_DELAY;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn route(priority: u8) -> Instance {
    let vip = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));
    let mut c = Instance::new_route("RT_1");
    c.priority = priority;
    c.virtual_ips = instance("x", 1, priority, &[vip]).virtual_ips;
    c
}

fn cluster(seed: u64, prios: &[u8]) -> Sim {
    let mut sim = Sim::new(seed);
    for (i, p) in prios.iter().enumerate() {
        sim.add_node(&format!("n{i}"), i as u8 + 1, vec![route(*p)]);
    }
    sim.enable_cluster(HB, Policy::Priority);
    sim.start_all();
    sim.run_for(ms(3000));
    sim
}

fn three(seed: u64) -> Sim {
    let sim = cluster(seed, &[200, 150, 100]);
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(sim.vip_holders(0), vec![0]);
    sim
}

/// When node `id` became master after `t`, and why.
fn master_after(sim: &Sim, id: usize, t: Duration) -> (Duration, Reason) {
    let e = sim
        .events()
        .iter()
        .find(|e| e.at >= t && e.node == id && e.to == State::Master)
        .unwrap_or_else(|| panic!("n{id} never took over after {t:?}"));
    (e.at - t, e.reason)
}

/// Never two holders, checked at every step for `d`.
fn never_two(sim: &mut Sim, d: Duration) {
    sim.run_checking(d, |s| {
        let h = s.vip_holders(0);
        assert!(h.len() <= 1, "two holders {h:?} at {:?}", s.elapsed());
    });
}

/// Two holders only for a make-before-break moment (the new holder adds the
/// VIP, then its TAKEOVER makes the old one let go): at most `max` at a
/// time, checked at every step for `d`.
fn overlap_at_most(sim: &mut Sim, d: Duration, max: Duration) {
    let mut since: Option<Duration> = None;
    sim.run_checking(d, |s| {
        let h = s.vip_holders(0);
        assert!(!h.is_empty(), "no holder at {:?}", s.elapsed());
        if h.len() < 2 {
            since = None;
            return;
        }
        let from = *since.get_or_insert(s.elapsed());
        assert!(
            s.elapsed() - from <= max,
            "two holders {h:?} since {from:?}, now {:?}",
            s.elapsed()
        );
    });
}

fn no_vrrp(sim: &Sim) {
    for id in 0..sim.nodes() {
        assert_eq!(sim.adverts_sent(id), 0, "n{id} sent VRRP");
        if let Some(node) = sim.node(id) {
            let st = node.status(sim.now());
            let tx = &st.instances[0].tx;
            assert_eq!((tx.adverts_sent, tx.garp_sent), (0, 0), "n{id}: {tx:?}");
            assert_eq!(st.instances[0].mode, "route");
        }
    }
}

#[test]
fn the_channel_elects_one_holder_without_a_single_advert() {
    let sim = three(1);
    no_vrrp(&sim);
    for id in 0..3 {
        let c = sim.cluster(id).unwrap();
        assert_eq!(c.master(sim.now(), "RT_1").as_deref(), Some("n0"));
        assert_eq!(c.epoch("RT_1"), 1, "one takeover");
    }
    let masters = sim.events().iter().filter(|e| e.to == State::Master);
    assert_eq!(masters.count(), 1, "nobody else ever held it");
    // Started together: the first election waits three heartbeats and
    // the skew, as VRRP's master-down does with the heartbeat as interval.
    let (at, why) = master_after(&sim, 0, Duration::ZERO);
    assert!(at >= HB * 3 && at < HB * 4, "elected after {at:?}");
    assert_eq!(why, Reason::MasterDown);
}

#[test]
fn a_crashed_holder_is_replaced_at_the_close() {
    let mut sim = three(2);
    let t = sim.elapsed();
    sim.crash(0);
    never_two(&mut sim, ms(2000));
    assert_eq!(sim.masters(0), vec![1]);
    let (after, why) = master_after(&sim, 1, t);
    assert!(after <= ms(5), "took {after:?}");
    assert_eq!(why, Reason::Cluster(ClusterReason::SelectedSuccessor));
    assert_eq!(sim.cluster(2).unwrap().epoch("RT_1"), 2);
    no_vrrp(&sim);
}

#[test]
fn a_frozen_holder_is_replaced_after_three_missed_heartbeats() {
    let mut sim = three(3);
    let t = sim.elapsed();
    sim.freeze(0);
    sim.run_for(ms(2000));
    let (after, why) = master_after(&sim, 1, t);
    // Unvouched after 1.5 heartbeats, then 1.5 more: no VRRP to wait for.
    assert!(after >= HB * 3 && after <= HB * 4, "took {after:?}");
    assert_eq!(why, Reason::Cluster(ClusterReason::SelectedSuccessor));
    assert!(!sim.cluster(1).unwrap().members().get("n0").unwrap().died);
    // Thawed, the frozen holder steps down or preempts back; either way
    // one holder once it settles.
    sim.thaw(0);
    sim.run_for(ms(2000));
    assert_eq!(sim.masters(0).len(), 1, "{:?}", sim.masters(0));
}

#[test]
fn a_stopping_holder_hands_over_before_it_lets_go() {
    let mut sim = three(4);
    let t = sim.elapsed();
    assert_eq!(sim.begin_handoff(0), vec!["RT_1".to_string()]);
    sim.run_checking(ms(200), |s| assert!(!s.vip_holders(0).is_empty()));
    sim.stop(0);
    sim.run_checking(ms(2000), |s| assert!(!s.vip_holders(0).is_empty()));
    assert_eq!(sim.masters(0), vec![1]);
    let (_, why) = master_after(&sim, 1, t);
    assert_eq!(why, Reason::Cluster(ClusterReason::Handoff));
    no_vrrp(&sim);
}

#[test]
fn a_stop_without_handoff_is_not_a_crash_and_waits_out_the_heartbeats() {
    let mut sim = three(5);
    let t = sim.elapsed();
    sim.stop(0);
    never_two(&mut sim, ms(2000));
    assert_eq!(sim.masters(0), vec![1]);
    let (after, _) = master_after(&sim, 1, t);
    assert!(after <= HB * 4, "took {after:?}");
}

#[test]
fn switchover_moves_the_holder_and_it_stays() {
    let mut sim = three(6);
    let id = sim.switchover(1, "RT_1", "n2", false);
    overlap_at_most(&mut sim, ms(2000), RELEASE * 2 + ms(2));
    assert_eq!(sim.masters(0), vec![2]);
    assert_eq!(sim.vip_holders(0), vec![2]);
    assert!(sim.switchover_result(1, id).expect("answered").is_ok());
    // Pinned: n0 does not preempt it back.
    never_two(&mut sim, ms(3000));
    assert_eq!(sim.masters(0), vec![2]);
}

#[test]
fn a_faulted_holder_gives_way_and_the_best_takes_it_back_when_healthy() {
    let mut sim = three(7);
    let t = sim.elapsed();
    sim.set_fault(0, 0, true);
    never_two(&mut sim, ms(1000));
    assert_eq!(sim.masters(0), vec![1]);
    let (after, _) = master_after(&sim, 1, t);
    assert!(after <= HB * 4, "took {after:?}");
    let t = sim.elapsed();
    sim.set_fault(0, 0, false);
    // Preemption is make-before-break: the old holder lets go in two steps
    // of release_delay (announced, then withdrawn while it still answers).
    overlap_at_most(&mut sim, ms(2000), RELEASE * 2 + ms(2));
    assert_eq!(sim.masters(0), vec![0]);
    let (_, why) = master_after(&sim, 0, t);
    assert_eq!(why, Reason::Cluster(ClusterReason::Preempt));
}

#[test]
fn a_partition_elects_on_both_sides_and_the_heal_leaves_one() {
    let mut sim = three(8);
    sim.partition(&[&[0], &[1, 2]]);
    sim.run_for(ms(2000));
    // Without VRRP nothing crosses the partition: each side has a holder
    // (the routers choose between them; see baton.conf(5) on MED).
    assert_eq!(sim.masters(0), vec![0, 1]);
    sim.heal();
    sim.run_for(ms(2000));
    assert_eq!(sim.masters(0), vec![0]);
    no_vrrp(&sim);
}
