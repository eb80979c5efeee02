//! The cluster channel's flows on the simulator (method steps 1-4 and 6).
//!
//! ```text
//!   n0 (10.0.0.1, prio 200)  n1 (10.0.0.2, 150)  n2 (10.0.0.3, 100)
//!        |  \_______________ channel mesh ______________/  |
//!   -----+---------------------+---------------------------+---- LAN
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::cluster::{Message, Policy};
use baton::config::model::Instance;
use baton::sim::{instance, ChannelFaults, Sim};
use baton::vrrp::timers::master_down_interval;
use baton::vrrp::{ClusterReason, Reason, State};
use baton::wire::vrrp::Version;

const HB: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(priority: u8, interval: Duration) -> Instance {
    let mut c = instance(
        "VI_1",
        51,
        priority,
        &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
    );
    c.advert_interval = interval;
    c
}

fn cluster(seed: u64, prios: &[u8], interval: Duration, policy: Policy) -> Sim {
    let mut sim = Sim::new(seed);
    for (i, p) in prios.iter().enumerate() {
        sim.add_node(&format!("n{i}"), i as u8 + 1, vec![cfg(*p, interval)]);
    }
    sim.enable_cluster(HB, policy);
    sim.start_all();
    sim.run_for(ms(5000));
    sim
}

fn three(seed: u64) -> Sim {
    cluster(seed, &[200, 150, 100], ms(100), Policy::Priority)
}

fn masters_since(sim: &Sim, t: Duration) -> Vec<(usize, Reason)> {
    sim.events()
        .iter()
        .filter(|e| e.at >= t && e.to == State::Master)
        .map(|e| (e.node, e.reason))
        .collect()
}

#[test]
fn every_node_sees_every_other_and_one_master() {
    let sim = three(1);
    assert_eq!(sim.masters(0), vec![0]);
    for id in 0..3 {
        let c = sim.cluster(id).unwrap();
        let alive: Vec<_> = c
            .peer_views(sim.now())
            .into_iter()
            .filter(|p| p.alive)
            .map(|p| p.name)
            .collect();
        assert_eq!(alive.len(), 2, "node {id} sees {alive:?}");
        assert_eq!(c.master(sim.now(), "VI_1").as_deref(), Some("n0"));
        assert_eq!(c.epoch("VI_1"), 1, "one takeover so far");
    }
}

#[test]
fn master_crash_successor_takes_over_at_the_close_not_master_down() {
    let mut sim = three(2);
    let t = sim.elapsed();
    sim.crash(0);
    sim.run_for(ms(2000));
    assert_eq!(sim.masters(0), vec![1]);
    let after = masters_since(&sim, t);
    assert_eq!(
        after,
        vec![(1, Reason::Cluster(ClusterReason::SelectedSuccessor))],
        "only the selected successor took over"
    );
    let e = sim
        .events()
        .iter()
        .rfind(|e| e.to == State::Master)
        .unwrap();
    // Connection closed 1 ms after the crash with no goodbye: the process
    // is gone, no advert interval of VRRP silence to wait for.
    assert_eq!(e.at - t, ms(1));
    let vrrp_only = master_down_interval(Version::V3, 150, ms(100));
    assert!(e.at - t < vrrp_only, "{:?} vs {:?}", e.at - t, vrrp_only);
    assert!(e.at - t <= HB * 2, "within two heartbeat intervals");
    assert_eq!(sim.cluster(2).unwrap().epoch("VI_1"), 2);
}

/// Three nodes at 1 s adverts, 100 ms heartbeats; n0 master.
fn slow_adverts(seed: u64) -> Sim {
    let sim = cluster(seed, &[200, 150, 100], ms(1000), Policy::Priority);
    assert_eq!(sim.masters(0), vec![0]);
    sim
}

/// When node 1 became master after `t`, and why.
fn n1_master_after(sim: &Sim, t: Duration) -> (Duration, Reason) {
    let e = sim
        .events()
        .iter()
        .find(|e| e.at >= t && e.node == 1 && e.to == State::Master)
        .expect("n1 took over");
    (e.at - t, e.reason)
}

#[test]
fn crash_at_1s_adverts_successor_holds_within_two_heartbeats() {
    let mut sim = slow_adverts(21);
    let t = sim.elapsed();
    sim.crash(0);
    some_holder_always_after(&mut sim, ms(3000), ms(200));
    assert_eq!(sim.masters(0), vec![1]);
    assert_eq!(sim.vip_holders(0), vec![1]);
    let (after, why) = n1_master_after(&sim, t);
    assert!(after <= HB * 2, "took {after:?}, not within 2 heartbeats");
    assert_eq!(why, Reason::Cluster(ClusterReason::SelectedSuccessor));
    assert_eq!(masters_since(&sim, t).len(), 1, "only the successor");
    assert!(sim.cluster(2).unwrap().members().get("n0").unwrap().died);
}

#[test]
fn partition_at_1s_adverts_is_silence_not_a_crash() {
    let mut sim = slow_adverts(22);
    let t = sim.elapsed();
    sim.partition(&[&[0], &[1, 2]]);
    sim.run_for(ms(4000));
    let (after, _) = n1_master_after(&sim, t);
    // Heartbeats lapse (vouching at 150 ms), then the master must be silent
    // on VRRP for a whole advert interval too.
    assert!(after >= ms(1000), "took over after {after:?}: too early");
    assert!(!sim.cluster(1).unwrap().members().get("n0").unwrap().died);
}

#[test]
fn frozen_master_at_1s_adverts_is_judged_by_heartbeats_and_vrrp() {
    let mut sim = slow_adverts(23);
    let t = sim.elapsed();
    sim.freeze(0);
    sim.run_for(ms(4000));
    let (after, _) = n1_master_after(&sim, t);
    assert!(after >= ms(1000), "took over after {after:?}: too early");
    assert!(!sim.cluster(1).unwrap().members().get("n0").unwrap().died);
    // Thawed, it reads the peers' goodbyes (their idle timeouts): not a
    // crash either (it preempts again, being preferred).
    sim.thaw(0);
    sim.run_for(ms(2000));
    assert!(!sim.cluster(0).unwrap().members().get("n1").unwrap().died);
}

#[test]
fn graceful_stop_at_1s_adverts_hands_over_and_is_no_crash() {
    let mut sim = slow_adverts(24);
    let t = sim.elapsed();
    assert_eq!(sim.begin_handoff(0), vec!["VI_1".to_string()]);
    some_holder_always(&mut sim, ms(200));
    sim.stop(0);
    some_holder_always(&mut sim, ms(3000));
    assert_eq!(sim.masters(0), vec![1]);
    let (_, why) = n1_master_after(&sim, t);
    assert_eq!(why, Reason::Cluster(ClusterReason::Handoff));
    assert_eq!(masters_since(&sim, t).len(), 1);
    for id in [1, 2] {
        let m = sim.cluster(id).unwrap().members();
        assert!(!m.get("n0").unwrap().died, "a goodbye came first");
    }
}

#[test]
fn a_stop_without_handoff_is_no_crash_and_waits_for_vrrp() {
    // Close frame then EOF: the peers do not take it for a death. The
    // priority-0 advert (or 1.5 advert intervals of silence) moves the VIP.
    let mut sim = slow_adverts(25);
    let t = sim.elapsed();
    sim.stop(0);
    some_holder_always_after(&mut sim, ms(4000), ms(2000));
    assert_eq!(sim.masters(0), vec![1]);
    assert!(!sim.cluster(1).unwrap().members().get("n0").unwrap().died);
    let (after, why) = n1_master_after(&sim, t);
    assert!(after >= ms(1000), "took over after {after:?} ({why:?})");
}

#[test]
fn order_policy_names_the_successor() {
    let mut sim = cluster(
        3,
        &[200, 150, 100],
        ms(100),
        Policy::Order(vec!["n0".into(), "n2".into(), "n1".into()]),
    );
    assert_eq!(sim.masters(0), vec![0]);
    sim.crash(0);
    sim.run_for(ms(2000));
    assert_eq!(
        sim.masters(0),
        vec![2],
        "n2 is next in the order list despite its lower priority"
    );
}

#[test]
fn a_silent_successor_is_replaced_by_the_next_in_line() {
    let mut sim = three(4);
    let t = sim.elapsed();
    // Master and its successor die together.
    sim.crash(0);
    sim.crash(1);
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![2]);
    assert!(masters_since(&sim, t).len() == 1);
}

#[test]
fn vrrp_loss_alone_never_fails_over_with_the_channel() {
    // Plain VRRP for comparison, same seed and loss.
    let mut plain = Sim::new(5);
    for (i, p) in [200u8, 150, 100].iter().enumerate() {
        plain.add_node(&format!("n{i}"), i as u8 + 1, vec![cfg(*p, ms(10))]);
    }
    plain.start_all();
    plain.run_for(ms(1000));
    let before = plain.master_transitions();
    plain.set_loss(20.0);
    plain.run_for(ms(30_000));
    let plain_failovers = plain.master_transitions() - before;

    let mut sim = cluster(5, &[200, 150, 100], ms(10), Policy::Priority);
    let before = sim.master_transitions();
    sim.set_loss(20.0);
    sim.run_for(ms(30_000));
    let failovers = sim.master_transitions() - before;
    println!("20% VRRP loss at 10 ms for 30 s: plain VRRP {plain_failovers} takeovers, with the channel {failovers}");
    assert_eq!(failovers, 0);
    assert!(plain_failovers > 0, "the loss is real: plain VRRP flaps");
    assert_eq!(sim.masters(0), vec![0]);
}

fn some_holder_always(sim: &mut Sim, d: Duration) {
    sim.run_checking(d, |s| {
        assert!(
            !s.vip_holders(0).is_empty(),
            "no VIP holder at {:?}",
            s.elapsed()
        );
    });
}

#[test]
fn switchover_broadcast_is_make_before_break_and_holds_against_preemption() {
    let mut sim = three(6);
    // Requested on n2 (not the master): forwarded to n0.
    let id = sim.switchover(2, "VI_1", "n1", false);
    some_holder_always(&mut sim, ms(500));
    assert_eq!(sim.masters(0), vec![1]);
    assert_eq!(sim.vip_holders(0), vec![1]);
    let r = sim.switchover_result(2, id).expect("answered");
    assert!(r.is_ok(), "{r:?}");
    for node in 0..3 {
        assert_eq!(
            sim.cluster(node)
                .unwrap()
                .pinned(sim.now(), "VI_1")
                .as_deref(),
            Some("n1")
        );
    }
    // n0 has the higher priority and preempt on, but the choice holds.
    some_holder_always(&mut sim, ms(30_000));
    assert_eq!(sim.masters(0), vec![1]);
    // Clearing it lets n0 preempt back at once (no master-down wait).
    let t = sim.elapsed();
    sim.clear_pin(2, "VI_1").unwrap();
    some_holder_always(&mut sim, ms(1000));
    assert_eq!(sim.masters(0), vec![0]);
    let back = masters_since(&sim, t);
    assert_eq!(back, vec![(0, Reason::Cluster(ClusterReason::Preempt))]);
}

#[test]
fn handoff_unicast_moves_the_vip_and_reports() {
    let mut sim = three(7);
    let id = sim.switchover(0, "VI_1", "n2", true);
    some_holder_always(&mut sim, ms(500));
    assert_eq!(sim.masters(0), vec![2]);
    assert!(sim.switchover_result(0, id).unwrap().is_ok());
    let e = sim
        .events()
        .iter()
        .rfind(|e| e.to == State::Master)
        .unwrap();
    assert_eq!(e.reason, Reason::Cluster(ClusterReason::Switchover));
}

#[test]
fn bad_switchovers_are_refused_and_nothing_moves() {
    let mut sim = three(8);
    let unknown = sim.switchover(1, "VI_1", "nope", false);
    let no_instance = sim.switchover(1, "VI_9", "n2", false);
    let itself = sim.switchover(0, "VI_1", "n0", false);
    sim.set_fault(2, 0, true);
    sim.run_for(ms(300));
    let faulted = sim.switchover(1, "VI_1", "n2", false);
    sim.run_for(ms(300));
    sim.set_fault(2, 0, false);
    sim.crash(2);
    sim.run_for(ms(500));
    let dead = sim.switchover(0, "VI_1", "n2", true);
    sim.run_for(ms(1000));
    for (node, id, needle) in [
        (1, unknown, "unknown node"),
        (1, no_instance, "no instance"),
        (0, itself, "already master"),
        (1, faulted, "FAULT"),
        (0, dead, "not alive"),
    ] {
        let r = sim.switchover_result(node, id).expect("answered");
        let err = r.expect_err("refused");
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(sim.master_transitions(), 1, "nothing moved");
}

#[test]
fn target_dying_mid_switchover_leaves_the_vip_where_it_was() {
    let mut sim = three(9);
    let id = sim.switchover(0, "VI_1", "n1", false);
    sim.crash(1); // before the SWITCHOVER reaches it
    some_holder_always(&mut sim, ms(5000));
    assert_eq!(sim.masters(0), vec![0]);
    let err = sim.switchover_result(0, id).unwrap().unwrap_err();
    assert!(err.contains("n1"), "{err}");
}

#[test]
fn old_master_dying_mid_switchover_still_ends_with_the_target() {
    let mut sim = three(10);
    sim.switchover(2, "VI_1", "n1", false);
    sim.run_for(ms(1)); // the request reached n0, the SWITCHOVER is on its way
    sim.crash(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![1]);
    assert_eq!(sim.vip_holders(0), vec![1]);
}

#[test]
fn graceful_stop_hands_over_before_leaving() {
    let mut sim = three(11);
    let handed = sim.begin_handoff(0);
    assert_eq!(handed, vec!["VI_1".to_string()]);
    some_holder_always(&mut sim, ms(200));
    assert_eq!(sim.masters(0), vec![1], "the successor took over");
    assert_eq!(
        sim.state(0, 0),
        Some(State::Backup),
        "the old master stepped down"
    );
    sim.stop(0);
    some_holder_always(&mut sim, ms(2000));
    assert_eq!(sim.masters(0), vec![1]);
    let e = sim
        .events()
        .iter()
        .find(|e| e.node == 1 && e.to == State::Master)
        .unwrap();
    assert_eq!(e.reason, Reason::Cluster(ClusterReason::Handoff));
}

#[test]
fn split_brain_resolves_at_once_when_the_channel_returns() {
    let mut sim = three(12);
    sim.partition(&[&[0], &[1, 2]]);
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![0, 1], "both sides elected");
    let t = sim.elapsed();
    sim.heal();
    sim.run_for(ms(1000));
    assert_eq!(sim.masters(0), vec![0], "one master, the preferred one");
    assert_eq!(sim.vip_holders(0), vec![0]);
    // It took the reconnect (100 ms) and a heartbeat or two, not VRRP timers.
    let last = sim.events().iter().rfind(|e| e.at >= t).unwrap();
    assert!(last.at - t < ms(400), "{:?}", last.at - t);
}

#[test]
fn duplicated_reordered_and_lost_frames_still_converge() {
    let mut sim = three(13);
    sim.set_channel_faults(ChannelFaults {
        loss: 10.0,
        duplicate: 20.0,
        reorder: 30.0,
        reorder_window: ms(30),
    });
    for (i, target) in ["n1", "n2", "n0", "n2", "n1"].iter().enumerate() {
        sim.switchover(i % 3, "VI_1", target, i % 2 == 0);
        sim.run_for(ms(1500));
    }
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0).len(), 1, "one master");
    assert_eq!(sim.vip_holders(0), sim.masters(0));
    let stale: u64 = (0..3).map(|n| sim.cluster(n).unwrap().stale_ignored).sum();
    println!("stale messages ignored: {stale}");
    let epochs: Vec<u64> = (0..3)
        .map(|n| sim.cluster(n).unwrap().epoch("VI_1"))
        .collect();
    assert!(
        epochs.iter().all(|e| *e == epochs[0]),
        "epochs agree: {epochs:?}"
    );
}

#[test]
fn faulted_master_is_replaced_through_the_channel() {
    let mut sim = three(14);
    let t = sim.elapsed();
    sim.set_fault(0, 0, true);
    some_holder_always_after(&mut sim, ms(1000), ms(300));
    assert_eq!(sim.masters(0), vec![1]);
    assert_eq!(masters_since(&sim, t).len(), 1);
    sim.set_fault(0, 0, false);
    sim.run_for(ms(1000));
    assert_eq!(sim.masters(0), vec![0], "preempts back when healthy");
}

fn some_holder_always_after(sim: &mut Sim, d: Duration, settle: Duration) {
    sim.run_for(settle);
    some_holder_always(sim, d - settle);
}

#[test]
fn clear_lets_only_the_best_node_preempt_and_never_leaves_a_gap() {
    // Four nodes: after the clear, n0, n1 and n2 all outrank the pinned n3;
    // only n0 may take over, or they contend and drop the VIP in between.
    let mut sim = cluster(15, &[200, 150, 120, 100], ms(100), Policy::Priority);
    sim.switchover(1, "VI_1", "n3", false);
    some_holder_always(&mut sim, ms(1000));
    assert_eq!(sim.masters(0), vec![3]);
    let t = sim.elapsed();
    sim.clear_pin(2, "VI_1").unwrap();
    some_holder_always(&mut sim, ms(2000));
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(
        masters_since(&sim, t),
        vec![(0, Reason::Cluster(ClusterReason::Preempt))],
        "one takeover, by the best node"
    );
}

/// Found by simulation testing: a switchover cleared before it was done
/// used to be reported done when the target later preempted, and lose the
/// VIP a moment after. The clear now calls it off.
#[test]
fn a_clear_calls_off_a_pending_switchover() {
    let mut sim = three(12);
    let id = sim.switchover(2, "VI_1", "n1", true);
    sim.clear_pin(2, "VI_1").expect("cleared");
    let r = sim.switchover_result(2, id).expect("answered at once");
    assert!(r.as_ref().is_err_and(|e| e.contains("called off")), "{r:?}");
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0).len(), 1, "one master in the end");
}

/// An authenticated peer that lies is held to what it may say: a TAKEOVER
/// in another node's name, or an epoch near u64::MAX (which would wrap the
/// next `+ 1`), is refused and counted; nothing moves.
#[test]
fn a_peer_cannot_speak_for_another_or_wrap_the_epoch() {
    let mut sim = three(13);
    assert_eq!(sim.masters(0), vec![0]);
    let epoch = sim.cluster(1).unwrap().epoch("VI_1");
    let takeover = |node: &str, epoch: u64| Message::Takeover {
        instance: "VI_1".into(),
        node: node.into(),
        epoch,
        pinned: true,
        priority: 255,
        address: None,
    };
    // n2 claims n1 took over; then an epoch that would wrap.
    sim.forge_message(2, 0, takeover("n1", epoch + 1));
    sim.forge_message(2, 1, takeover("n2", u64::MAX));
    sim.run_for(ms(2000));
    assert_eq!(sim.masters(0), vec![0], "nothing moved");
    assert_eq!(sim.cluster(1).unwrap().epoch("VI_1"), epoch);
    let refused = |n: usize| {
        sim.node(n)
            .unwrap()
            .status(sim.now())
            .cluster
            .unwrap()
            .refused
    };
    assert_eq!(refused(0).get("not_the_sender"), Some(&1));
    assert_eq!(refused(1).get("epoch_out_of_range"), Some(&1));
}

/// With the channel, a router that is not a cluster member is not heard
/// (`foreign_advert`): a stranger's priority-255 adverts move nothing.
/// `accept_foreign_adverts` restores plain VRRP for mixed clusters: the
/// same adverts then win, as VRRP says.
#[test]
fn adverts_from_routers_outside_the_cluster_are_dropped_unless_accepted() {
    use baton::wire::vrrp::{Repr, V3Checksum, Version};
    for accept in [false, true] {
        let mut sim = Sim::new(14);
        for (i, p) in [200u8, 150, 100].iter().enumerate() {
            sim.add_node(&format!("n{i}"), i as u8 + 1, vec![cfg(*p, ms(100))]);
        }
        sim.enable_cluster(HB, Policy::Priority);
        sim.set_accept_foreign_adverts(accept);
        sim.start_all();
        sim.run_for(ms(3000));
        assert_eq!(sim.masters(0), vec![0]);
        let stranger = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
        let advert = Repr {
            version: Version::V3,
            vrid: 51,
            priority: 255,
            interval_cs: 10,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
            auth: None,
        }
        .to_bytes(
            stranger,
            "224.0.0.18".parse().unwrap(),
            V3Checksum::WithPseudoHeader,
        )
        .unwrap();
        for _ in 0..20 {
            sim.inject_advert("eth0", stranger, advert.clone());
            sim.run_for(ms(100));
        }
        let foreign = |n: usize| {
            sim.instance(n, 0)
                .unwrap()
                .stats()
                .dropped
                .get("foreign_advert")
                .copied()
                .unwrap_or(0)
        };
        if accept {
            assert!(sim.masters(0).is_empty(), "plain VRRP: the owner wins");
            assert_eq!(foreign(0), 0);
        } else {
            assert_eq!(sim.masters(0), vec![0], "nothing moved");
            for n in 0..3 {
                assert!(foreign(n) >= 20, "n{n} counted {}", foreign(n));
            }
        }
    }
}
