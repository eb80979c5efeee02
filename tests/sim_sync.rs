//! Data sync (method step 5) on the simulator: versions, commit, catch-up,
//! conflicts, a control node that dies mid-transfer, corrupt transfers,
//! size limits and failed writes.
//!
//! ```text
//!   n0 (prio 200) = control    n1 (150)             n2 (100)
//!        |  \____________ channel mesh _____________/  |
//!   -----+-------------------------+--------------------+---- LAN
//!   file "cfg" follows the master of VI_1
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::cluster::{Policy, SyncVersion};
use baton::config::model::Instance;
use baton::sim::{instance, Sim};

const MIB: u64 = 1 << 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v(epoch: u64, counter: u64) -> SyncVersion {
    SyncVersion { epoch, counter }
}

fn cfg(priority: u8) -> Instance {
    let mut c = instance(
        "VI_1",
        51,
        priority,
        &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
    );
    c.advert_interval = ms(100);
    c
}

/// Three nodes, n0 master; not started when `start` is false.
fn cluster(seed: u64, max_size: u64, start: bool) -> Sim {
    let mut sim = Sim::new(seed);
    for (i, p) in [200u8, 150, 100].iter().enumerate() {
        sim.add_node(&format!("n{i}"), i as u8 + 1, vec![cfg(*p)]);
    }
    sim.enable_cluster(ms(100), Policy::Priority);
    sim.enable_sync("VI_1", &[("cfg", max_size)]);
    if start {
        sim.start_all();
        sim.run_for(ms(3000));
        assert_eq!(sim.masters(0), vec![0]);
    }
    sim
}

fn converged(sim: &Sim, nodes: &[usize], content: &[u8]) -> bool {
    nodes.iter().all(|&n| sim.file(n, "cfg") == Some(content))
}

fn committed_everywhere(sim: &Sim, nodes: &[usize], version: SyncVersion) -> bool {
    nodes.iter().all(|&n| {
        let s = sim.sync(n).unwrap();
        s.version("cfg") == Some(version) && s.committed("cfg") == Some(version)
    })
}

#[test]
fn changes_reach_every_peer_in_order_commit_and_run_on_change_once() {
    let mut sim = cluster(1, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"one");
    sim.run_for(ms(50));
    assert!(converged(&sim, &[0, 1, 2], b"one"));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 1)));
    sim.edit_file(0, "cfg", b"two");
    sim.run_for(ms(5));
    sim.edit_file(0, "cfg", b"three");
    sim.run_for(ms(50));
    assert!(converged(&sim, &[0, 1, 2], b"three"));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 3)));
    for n in [1, 2] {
        let runs: Vec<SyncVersion> = sim.on_changes(n).iter().map(|r| r.1).collect();
        assert_eq!(runs, vec![v(1, 1), v(1, 2), v(1, 3)], "node {n}");
    }
    assert!(
        sim.on_changes(0).is_empty(),
        "the control node does not run on_change for its own edits"
    );
    // The same content again is not a change.
    sim.edit_file(0, "cfg", b"three");
    sim.run_for(ms(50));
    assert_eq!(sim.sync(1).unwrap().version("cfg"), Some(v(1, 3)));
    assert_eq!(sim.on_changes(1).len(), 3);
    let peers = &sim.sync(0).unwrap().views(sim.now())[0].peers;
    assert_eq!(
        peers,
        &vec![
            ("n1".to_string(), Some(v(1, 3))),
            ("n2".to_string(), Some(v(1, 3)))
        ]
    );
}

#[test]
fn an_edit_on_a_controlled_node_is_not_propagated_and_kept_as_a_conflict() {
    let mut sim = cluster(2, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"base");
    sim.run_for(ms(50));
    sim.edit_file(2, "cfg", b"local hack");
    sim.run_for(ms(500));
    assert_eq!(sim.file(0, "cfg"), Some(&b"base"[..]));
    assert_eq!(sim.file(1, "cfg"), Some(&b"base"[..]));
    assert!(sim
        .sync_log(2)
        .iter()
        .any(|l| l.contains("not the control node")));
    assert!(sim.sync(2).unwrap().views(sim.now())[0].locally_modified);
    sim.edit_file(0, "cfg", b"next");
    sim.run_for(ms(50));
    assert!(converged(&sim, &[0, 1, 2], b"next"));
    assert_eq!(
        sim.conflicts(2),
        &[("cfg.conflict-1".to_string(), b"local hack".to_vec())]
    );
    assert!(
        sim.conflicts(1).is_empty(),
        "a synced copy is replaced as is"
    );
}

#[test]
fn a_joining_node_and_a_returning_node_catch_up() {
    let mut sim = cluster(3, 16 * MIB, false);
    sim.start(0);
    sim.start(1);
    sim.run_for(ms(3000));
    sim.edit_file(0, "cfg", b"v1");
    sim.run_for(ms(50));
    assert!(committed_everywhere(&sim, &[0, 1], v(1, 1)));
    sim.start(2);
    sim.run_for(ms(500));
    assert!(converged(&sim, &[0, 1, 2], b"v1"));
    assert_eq!(sim.on_changes(2).len(), 1);
    // n2 goes away, misses two versions, comes back.
    sim.crash(2);
    sim.run_for(ms(100));
    sim.edit_file(0, "cfg", b"v2");
    sim.run_for(ms(20));
    assert_eq!(
        sim.sync(0).unwrap().committed("cfg"),
        Some(v(1, 2)),
        "committed by every live peer"
    );
    sim.edit_file(0, "cfg", b"v3");
    sim.run_for(ms(100));
    sim.start(2);
    sim.run_for(ms(500));
    assert!(converged(&sim, &[0, 1, 2], b"v3"));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 3)));
    let runs: Vec<SyncVersion> = sim.on_changes(2).iter().map(|r| r.1).collect();
    assert_eq!(runs, vec![v(1, 1), v(1, 3)], "one run per applied change");
    assert!(sim.conflicts(2).is_empty());
}

#[test]
fn takeover_keeps_the_committed_version_and_versions_keep_ordering() {
    let mut sim = cluster(4, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"committed");
    sim.run_for(ms(50));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 1)));
    sim.crash(0);
    sim.run_for(ms(1500));
    assert_eq!(sim.masters(0), vec![1]);
    // The new control node re-stamps what it holds under its epoch; the
    // peer adopts the number without a write or an on_change.
    assert!(committed_everywhere(&sim, &[1, 2], v(2, 1)));
    assert_eq!(sim.file(2, "cfg"), Some(&b"committed"[..]));
    assert_eq!(sim.on_changes(2).len(), 1);
    sim.edit_file(1, "cfg", b"after takeover");
    sim.run_for(ms(50));
    assert!(converged(&sim, &[1, 2], b"after takeover"));
    assert!(committed_everywhere(&sim, &[1, 2], v(2, 2)));
    assert!(v(1, 1) < v(2, 1) && v(2, 1) < v(2, 2));
}

#[test]
fn old_master_returns_keeps_its_uncommitted_version_aside_and_does_not_overwrite() {
    let mut sim = cluster(5, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"committed");
    sim.run_for(ms(50));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 1)));
    // n0 takes an edit and dies before any of it is delivered.
    sim.edit_file(0, "cfg", b"lost edit");
    sim.crash(0);
    sim.run_for(ms(1500));
    assert_eq!(sim.masters(0), vec![1]);
    assert!(converged(&sim, &[1, 2], b"committed"));
    sim.edit_file(1, "cfg", b"new master's edit");
    sim.run_for(ms(50));
    assert!(committed_everywhere(&sim, &[1, 2], v(2, 2)));
    // n0 returns (priority 200: it preempts at once) with version 1.2 that
    // never committed.
    sim.start(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.masters(0), vec![0], "n0 preempted back");
    assert!(converged(&sim, &[0, 1, 2], b"new master's edit"));
    assert_eq!(
        sim.conflicts(0),
        &[("cfg.conflict-1".to_string(), b"lost edit".to_vec())]
    );
    let latest = sim.sync(0).unwrap().version("cfg").unwrap();
    assert!(
        latest > v(2, 2),
        "re-stamped under n0's new epoch: {latest}"
    );
    assert!(committed_everywhere(&sim, &[0, 1, 2], latest));
    assert!(sim.conflicts(1).is_empty() && sim.conflicts(2).is_empty());
    assert_eq!(
        sim.on_changes(1).len(),
        1,
        "n1: only its own edit... and none for n0's return"
    );
}

#[test]
fn control_node_dies_mid_transfer_peers_keep_the_old_file_and_converge() {
    let mut sim = cluster(6, 16 * MIB, true);
    sim.set_bandwidth(10_000_000); // 10 MB/s: 1 MiB takes ~100 ms
    sim.edit_file(0, "cfg", b"small and committed");
    sim.run_for(ms(50));
    let big: Vec<u8> = (0..MIB as usize).map(|i| (i % 251) as u8).collect();
    let before = (sim.data_received(1), sim.data_received(2));
    sim.edit_file(0, "cfg", &big);
    let t = sim.now() + ms(1000);
    assert!(sim.run_until(t, |s| s.data_received(1) >= before.0 + 2));
    sim.crash(0);
    sim.run_for(ms(1500));
    assert_eq!(sim.masters(0), vec![1]);
    assert!(converged(&sim, &[1, 2], b"small and committed"));
    assert!(sim
        .sync_log(1)
        .iter()
        .any(|l| l.contains("left during the transfer")));
    assert!(committed_everywhere(&sim, &[1, 2], v(2, 1)));
    assert_eq!(sim.on_changes(1).len(), 1);
    // The old master returns: its big uncommitted version is set aside.
    sim.start(0);
    sim.run_for(ms(3000));
    assert!(converged(&sim, &[0, 1, 2], b"small and committed"));
    assert_eq!(sim.conflicts(0).len(), 1);
    assert_eq!(sim.conflicts(0)[0].1, big);
}

#[test]
fn a_large_file_streams_in_chunks() {
    let mut sim = cluster(7, 16 * MIB, true);
    let big: Vec<u8> = (0..(3 * MIB as usize + 17))
        .map(|i| (i % 13) as u8)
        .collect();
    let before = sim.data_received(1);
    sim.edit_file(0, "cfg", &big);
    sim.run_for(ms(500));
    assert!(converged(&sim, &[0, 1, 2], &big));
    assert_eq!(sim.data_received(1) - before, 13, "256 KiB chunks");
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 1)));
}

#[test]
fn a_corrupt_transfer_leaves_the_old_file_and_is_sent_again() {
    let mut sim = cluster(8, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"good");
    sim.run_for(ms(50));
    sim.corrupt_next_data(1);
    sim.edit_file(0, "cfg", b"better");
    sim.run_for(ms(50));
    assert_eq!(sim.file(1, "cfg"), Some(&b"good"[..]), "old file intact");
    assert_eq!(sim.file(2, "cfg"), Some(&b"better"[..]));
    assert!(sim.sync_log(1).iter().any(|l| l.contains("corrupt")));
    assert_eq!(sim.sync(0).unwrap().committed("cfg"), Some(v(1, 1)));
    sim.run_for(ms(1500));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 2)));
    assert_eq!(sim.on_changes(1).len(), 2);
}

#[test]
fn above_max_size_is_refused_with_a_clear_error() {
    let mut sim = cluster(9, 1000, true);
    sim.edit_file(0, "cfg", b"fits");
    sim.run_for(ms(50));
    sim.edit_file(0, "cfg", &[b'x'; 2000]);
    sim.run_for(ms(500));
    assert!(converged(&sim, &[1, 2], b"fits"));
    assert!(sim
        .sync_log(0)
        .iter()
        .any(|l| l.contains("2000 bytes, above max_size 1000")));
    assert_eq!(sim.sync(0).unwrap().version("cfg"), Some(v(1, 1)));
}

#[test]
fn a_failed_write_keeps_the_old_file_and_blocks_the_commit_until_it_succeeds() {
    let mut sim = cluster(10, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"a");
    sim.run_for(ms(50));
    sim.set_fail_writes(2, true);
    sim.edit_file(0, "cfg", b"b");
    sim.run_for(ms(2500));
    assert_eq!(sim.file(2, "cfg"), Some(&b"a"[..]));
    assert!(sim
        .sync_log(2)
        .iter()
        .any(|l| l.contains("old file is intact")));
    assert_eq!(sim.sync(0).unwrap().committed("cfg"), Some(v(1, 1)));
    sim.set_fail_writes(2, false);
    sim.run_for(ms(1500));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 2)));
    assert_eq!(sim.on_changes(2).len(), 2);
}

/// on_change runs for committed versions only: while one peer cannot
/// write version 2, the other has it on disk but does not run on_change;
/// it does once the control node commits it.
#[test]
fn on_change_waits_for_the_commit() {
    let mut sim = cluster(11, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"a");
    sim.run_for(ms(50));
    assert_eq!(sim.on_changes(1).len(), 1);
    sim.set_fail_writes(2, true);
    sim.edit_file(0, "cfg", b"b");
    sim.run_for(ms(2500));
    assert_eq!(sim.file(1, "cfg"), Some(&b"b"[..]), "node1 holds version 2");
    assert_eq!(sim.sync(0).unwrap().committed("cfg"), Some(v(1, 1)));
    let runs = |sim: &Sim, n| sim.on_changes(n).iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(
        runs(&sim, 1),
        vec![v(1, 1)],
        "on_change ran before the commit"
    );
    sim.set_fail_writes(2, false);
    sim.run_for(ms(1500));
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 2)));
    assert_eq!(runs(&sim, 1), vec![v(1, 1), v(1, 2)]);
    assert_eq!(runs(&sim, 2), vec![v(1, 1), v(1, 2)]);
}

#[test]
fn a_fresh_cluster_adopts_the_control_nodes_file_and_keeps_differing_ones() {
    let mut sim = cluster(11, 16 * MIB, false);
    sim.edit_file(0, "cfg", b"from n0");
    sim.edit_file(1, "cfg", b"from n1");
    sim.edit_file(2, "cfg", b"from n0");
    sim.start_all();
    sim.run_for(ms(3000));
    assert!(converged(&sim, &[0, 1, 2], b"from n0"));
    assert_eq!(
        sim.conflicts(1),
        &[("cfg.conflict-0".to_string(), b"from n1".to_vec())]
    );
    assert!(sim.conflicts(2).is_empty());
    assert!(sim.on_changes(2).is_empty(), "n2 already had the content");
    assert!(committed_everywhere(&sim, &[0, 1, 2], v(1, 1)));
}

#[test]
fn a_control_node_that_finds_a_peer_ahead_fetches_before_serving() {
    let mut sim = cluster(12, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"v1");
    sim.run_for(ms(50));
    sim.crash(0);
    sim.run_for(ms(1500));
    sim.edit_file(1, "cfg", b"v2 from n1");
    sim.run_for(ms(50));
    assert!(committed_everywhere(&sim, &[1, 2], v(2, 2)));
    // n0 returns cut off from the others: it becomes master on its own
    // with its old version, then the partition heals.
    sim.partition(&[&[0], &[1, 2]]);
    sim.start(0);
    sim.run_for(ms(2000));
    assert_eq!(sim.file(0, "cfg"), Some(&b"v1"[..]));
    sim.heal();
    sim.run_for(ms(3000));
    assert!(converged(&sim, &[0, 1, 2], b"v2 from n1"));
    assert!(
        sim.conflicts(0).is_empty(),
        "v1 was committed: nothing lost"
    );
}

/// Lag per peer (`baton status`, metrics): a peer that cannot write the
/// control node's version is behind, for as long as it cannot; once it
/// writes, it is not behind and the commit is fresh.
#[test]
fn a_peer_that_cannot_write_lags_until_it_can() {
    let mut sim = cluster(12, 16 * MIB, true);
    sim.edit_file(0, "cfg", b"a");
    sim.run_for(ms(200));
    let view = |sim: &Sim| sim.sync(0).unwrap().views(sim.now())[0].clone();
    let v0 = view(&sim);
    assert_eq!(v0.bytes, Some(1));
    assert!(v0.lag.iter().all(|l| !l.behind && l.lag_ms == 0), "{v0:?}");
    assert_eq!(v0.lag.len(), 2);
    sim.set_fail_writes(2, true);
    sim.edit_file(0, "cfg", b"bb");
    sim.run_for(ms(2500));
    let v1 = view(&sim);
    let lag = |v: &baton::cluster::sync::SyncView, p: &str| {
        v.lag.iter().find(|l| l.peer == p).cloned().unwrap()
    };
    assert!(!lag(&v1, "n1").behind, "{v1:?}");
    let n2 = lag(&v1, "n2");
    assert!(n2.behind && (2000..=2500).contains(&n2.lag_ms), "{n2:?}");
    // The committed version is still the first one, learned long ago.
    assert!(v1.committed_age_ms.unwrap() >= 2500, "{v1:?}");
    sim.set_fail_writes(2, false);
    sim.run_for(ms(1500));
    let v2 = view(&sim);
    assert!(v2.lag.iter().all(|l| !l.behind && l.lag_ms == 0), "{v2:?}");
    assert!(v2.committed_age_ms.unwrap() < 1500, "{v2:?}");
}

/// Round-trip time per peer from the heartbeat echo: about twice the
/// one-way delay, on every node, for every peer.
#[test]
fn heartbeat_echoes_measure_the_round_trip() {
    let mut sim = cluster(13, 16 * MIB, false);
    sim.set_channel_delay(ms(7));
    sim.start_all();
    sim.run_for(ms(3000));
    for n in 0..3 {
        let views = sim.cluster(n).unwrap().peer_views(sim.now());
        assert_eq!(views.len(), 2);
        for p in views {
            let rtt = p.rtt_us.expect("an RTT for every peer");
            assert!(
                (14_000..=16_000).contains(&rtt),
                "n{n} -> {}: {rtt} us",
                p.name
            );
            assert!(p.heartbeats >= 20, "{p:?}");
        }
    }
}
