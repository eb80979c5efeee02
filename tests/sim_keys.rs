//! keepalived keywords on the deterministic simulator: tracking in a
//! `vrrp_sync_group` (keepalived 2.x applies it to every member, weights
//! included) and `dont_track_primary`.
//!
//! ```text
//!   n0 (10.0.0.1)            n1 (10.0.0.2)
//!   VI_1, VI_2 in group G    VI_1, VI_2 in group G
//!        |                        |
//!   -----+------------------------+----- LAN (100 us one-way)
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::config::model::{Config, SyncGroup, TrackRef, VrrpScript};
use baton::sim::{instance, Sim};
use baton::vrrp::State;

const GROUP_CHECK: &str = "chk_group";

fn vip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// Node `n` of two: VI_1 and VI_2 at `priority`, in sync group G, which
/// tracks `chk_group` with `weight` (None: the script's own 0).
fn node_config(n: usize, priority: u8, weight: Option<i32>) -> Config {
    let mut c = Config::new(format!("n{n}"));
    c.instances = vec![
        instance("VI_1", 51, priority, &[vip(100)]),
        instance("VI_2", 52, priority, &[vip(101)]),
    ];
    c.vrrp_scripts
        .push(VrrpScript::new(GROUP_CHECK, "/bin/true"));
    let mut track = TrackRef::new(GROUP_CHECK);
    track.weight_override = weight;
    c.sync_groups.push(SyncGroup {
        name: "G".into(),
        instances: vec!["VI_1".into(), "VI_2".into()],
        track_scripts: vec![track],
        ..SyncGroup::default()
    });
    c
}

fn pair(weight: Option<i32>) -> Sim {
    let mut sim = Sim::new(11);
    sim.set_delay(Duration::from_micros(100));
    sim.add_node_config("n0", 1, node_config(0, 200, weight));
    sim.add_node_config("n1", 2, node_config(1, 100, weight));
    sim.start_all();
    sim.run_for(Duration::from_secs(10));
    sim
}

#[test]
fn a_failing_group_track_script_faults_every_member_and_moves_the_group() {
    let mut sim = pair(None);
    assert_eq!(sim.masters(0), vec![0]);
    assert_eq!(sim.masters(1), vec![0]);
    sim.set_script(0, GROUP_CHECK, false);
    sim.run_for(Duration::from_secs(10));
    for inst in 0..2 {
        assert_eq!(sim.state(0, inst), Some(State::Fault), "instance {inst}");
        assert_eq!(sim.masters(inst), vec![1], "instance {inst}");
    }
    sim.set_script(0, GROUP_CHECK, true);
    sim.run_for(Duration::from_secs(10));
    for inst in 0..2 {
        assert_eq!(sim.masters(inst), vec![0], "instance {inst} preempted back");
    }
}

#[test]
fn a_weighted_group_track_script_lowers_every_member_without_a_fault() {
    // 200 - 150 = 50 < 100: n1 preempts both instances; n0 stays BACKUP.
    let mut sim = pair(Some(-150));
    sim.set_script(0, GROUP_CHECK, false);
    sim.run_for(Duration::from_secs(10));
    for inst in 0..2 {
        assert_eq!(sim.state(0, inst), Some(State::Backup), "instance {inst}");
        assert_eq!(sim.masters(inst), vec![1], "instance {inst}");
        assert_eq!(
            sim.instance(0, inst).map(|i| i.priority()),
            Some(50),
            "instance {inst}: the group's weight counts in each member"
        );
    }
}

#[test]
fn dont_track_primary_keeps_an_instance_out_of_fault_when_its_link_goes() {
    for dont_track in [false, true] {
        let mut sim = Sim::new(3);
        sim.set_delay(Duration::from_micros(100));
        let mut i = instance("VI_1", 51, 200, &[vip(100)]);
        i.dont_track_primary = dont_track;
        sim.add_node("n0", 1, vec![i]);
        sim.start_all();
        sim.run_for(Duration::from_secs(10));
        assert_eq!(sim.state(0, 0), Some(State::Master));
        sim.set_link(0, false);
        sim.run_for(Duration::from_secs(2));
        let expected = if dont_track {
            State::Master
        } else {
            State::Fault
        };
        assert_eq!(
            sim.state(0, 0),
            Some(expected),
            "dont_track_primary {dont_track}"
        );
    }
}
