//! Each step on small hand-built views. This node is "a" throughout.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([10, 0, 0, last]))
}

fn cand(node: &str, state: State, priority: u8, last: u8) -> Candidate {
    Candidate {
        node: node.into(),
        state,
        priority,
        address: ip(last),
    }
}

fn peer(node: &str, state: State, priority: u8, last: u8, epoch: u64) -> PeerBeat {
    PeerBeat {
        node: node.into(),
        vouched: true,
        beat: InstanceBeat {
            name: "VI_1".into(),
            state,
            priority,
            address: ip(last),
            epoch,
            pinned: None,
        },
    }
}

/// This node "a" (10.0.0.1) in `state` at `priority`, 100 ms adverts,
/// preempt on without delay, 100 ms heartbeats, priority policy.
fn view(state: State, priority: u8, peers: Vec<PeerBeat>) -> View {
    View {
        now: Instant::now(),
        node: "a".into(),
        local: LocalInstance {
            name: "VI_1".into(),
            state,
            priority,
            address: ip(1),
            advert_interval: 100 * MS,
            preempt: true,
            preempt_delay: Duration::ZERO,
            route: false,
        },
        own_epoch: 0,
        pinned: None,
        peers,
        died: vec![],
        policy: Policy::Priority,
        heartbeat_interval: 100 * MS,
        leaving: false,
        track: Track::default(),
    }
}

fn node(c: Option<Candidate>) -> Option<String> {
    c.map(|c| c.node)
}

// ---- who the master is -------------------------------------------------

#[test]
fn master_is_the_newest_epoch_whatever_the_priority() {
    let v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Master, 250, 2, 3),
            peer("c", State::Master, 50, 3, 4),
        ],
    );
    assert_eq!(node(v.master()), Some("c".into()));
}

#[test]
fn master_on_equal_epochs_is_the_higher_priority_then_the_higher_address() {
    let v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Master, 100, 2, 3),
            peer("c", State::Master, 150, 3, 3),
        ],
    );
    assert_eq!(node(v.master()), Some("c".into()));
    // Equal priority: the higher address (b is 10.0.0.9, c 10.0.0.3).
    let v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Master, 100, 9, 3),
            peer("c", State::Master, 100, 3, 3),
        ],
    );
    assert_eq!(node(v.master()), Some("b".into()));
}

#[test]
fn master_counts_this_node_under_its_own_epoch() {
    let mut v = view(
        State::Master,
        100,
        vec![peer("b", State::Master, 200, 2, 4)],
    );
    v.own_epoch = 5;
    assert_eq!(node(v.master()), Some("a".into()));
    v.own_epoch = 4;
    assert_eq!(node(v.master()), Some("b".into()), "same epoch, b outranks");
    v.local.state = State::Backup;
    v.own_epoch = 9;
    assert_eq!(node(v.master()), Some("b".into()), "a backup is no master");
}

#[test]
fn master_needs_a_vouched_peer_reporting_master() {
    let mut b = peer("b", State::Master, 200, 2, 1);
    b.vouched = false;
    let v = view(
        State::Backup,
        100,
        vec![b, peer("c", State::Backup, 250, 3, 7)],
    );
    assert_eq!(v.master(), None);
    // Not configured here: the peers' word only.
    let peers = [peer("b", State::Master, 200, 2, 1)];
    assert_eq!(node(live_master(None, &peers)), Some("b".into()));
}

// ---- the pin -----------------------------------------------------------

#[test]
fn pin_holds_while_its_node_is_live_and_not_faulted() {
    let mut v = view(
        State::Backup,
        100,
        vec![peer("b", State::Backup, 100, 2, 1)],
    );
    v.pinned = Some("b".into());
    assert_eq!(v.pin().as_deref(), Some("b"));
    v.peers[0].beat.state = State::Fault;
    assert_eq!(v.pin(), None, "faulted");
    v.peers.clear();
    assert_eq!(v.pin(), None, "dead (no live beat)");
    v.pinned = Some("a".into());
    assert_eq!(v.pin().as_deref(), Some("a"));
    v.local.state = State::Fault;
    assert_eq!(v.pin(), None);
}

#[test]
fn a_lapsed_pin_is_forgotten_and_stops_deferring() {
    let mut v = view(State::Backup, 100, vec![peer("b", State::Fault, 100, 2, 1)]);
    v.pinned = Some("b".into());
    let d = decide(&v);
    assert!(d.pin_lapsed);
    assert!(!d.track.gates.defer_master_down);
    v.peers[0].beat.state = State::Backup;
    let d = decide(&v);
    assert!(!d.pin_lapsed);
    assert!(d.track.gates.defer_master_down, "pinned elsewhere");
}

// ---- ranking -----------------------------------------------------------

#[test]
fn ranking_is_priority_then_address_and_skips_faults() {
    let v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Backup, 100, 2, 0),
            peer("c", State::Fault, 250, 3, 0),
            peer("d", State::Master, 150, 4, 0),
        ],
    );
    assert_eq!(v.ranking(), vec!["d", "b", "a"]);
}

#[test]
fn ranking_follows_the_order_policy_first() {
    let mut v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Backup, 250, 2, 0),
            peer("c", State::Backup, 50, 3, 0),
        ],
    );
    v.policy = Policy::Order(vec!["c".into(), "a".into()]);
    assert_eq!(v.ranking(), vec!["c", "a", "b"]);
    assert_eq!(handoff_target(&v).as_deref(), Some("c"));
}

// ---- master loss and successor -------------------------------------------

#[test]
fn watch_records_the_loss_once_and_a_master_clears_it() {
    let now = Instant::now();
    let seen = Track {
        last_master: Some("b".into()),
        ..Track::default()
    };
    let w = watch_master(&seen, None, now);
    assert_eq!(w.lost_at, Some(now));
    assert_eq!(w.last_master, None);
    assert!(!w.takeover_tried);
    // Later evaluations keep the first loss and whether we tried.
    let lost = Track {
        master_lost_at: Some(now),
        takeover_tried: true,
        ..Track::default()
    };
    let w = watch_master(&lost, None, now + 500 * MS);
    assert_eq!((w.lost_at, w.takeover_tried), (Some(now), true));
    // A live master clears it.
    let m = cand("c", State::Master, 100, 3);
    let w = watch_master(&lost, Some(&m), now);
    assert_eq!(w.last_master.as_deref(), Some("c"));
    assert_eq!((w.lost_at, w.takeover_tried), (None, false));
    // Never a master: nothing lost.
    assert_eq!(watch_master(&Track::default(), None, now).lost_at, None);
}

fn lost(at: Instant) -> Watch {
    Watch {
        last_master: None,
        lost_at: Some(at),
        lost_master: Some("c".into()),
        takeover_tried: false,
    }
}

#[test]
fn dead_master_first_successor_takes_over_after_one_and_a_half_intervals() {
    let v = view(
        State::Backup,
        200,
        vec![peer("b", State::Backup, 100, 2, 1)],
    );
    let r = v.ranking();
    let at = v.now;
    let due = at + 150 * MS;
    assert_eq!(
        successor(&v, &lost(at), None, &r),
        Successor::Waiting { due }
    );
    let late = View {
        now: due,
        ..v.clone()
    };
    assert_eq!(
        successor(&late, &lost(at), None, &r),
        Successor::TakeOver {
            due,
            lost: at,
            died: false
        }
    );
    let tried = Watch {
        takeover_tried: true,
        ..lost(at)
    };
    assert_eq!(successor(&late, &tried, None, &r), Successor::Tried { due });
}

#[test]
fn a_master_whose_process_died_is_replaced_without_the_advert_interval() {
    // 1 s adverts: the first successor does not wait for VRRP silence when
    // the lost master ("c") died; the next still waits its grace.
    let mut v = view(
        State::Backup,
        200,
        vec![peer("b", State::Backup, 100, 2, 1)],
    );
    v.local.advert_interval = Duration::from_secs(1);
    v.died = vec!["c".into()];
    let (r, at) = (v.ranking(), v.now);
    assert_eq!(
        successor(&v, &lost(at), None, &r),
        Successor::TakeOver {
            due: at,
            lost: at,
            died: true
        }
    );
    // Another peer died, not the master: the silence stands.
    v.died = vec!["b".into()];
    assert_eq!(
        successor(&v, &lost(at), None, &r),
        Successor::Waiting {
            due: at + Duration::from_millis(1500)
        }
    );
    // The second in line waits one grace (max(3 x 100 ms, 2 x 1 s)).
    let mut second = view(
        State::Backup,
        100,
        vec![peer("b", State::Backup, 200, 2, 1)],
    );
    second.local.advert_interval = Duration::from_secs(1);
    second.died = vec!["c".into()];
    assert_eq!(
        successor(&second, &lost(at), None, &second.ranking()),
        Successor::Waiting {
            due: at + Duration::from_secs(2)
        }
    );
    // Through decide: the loss names its master, the takeover follows.
    v.died = vec!["c".into()];
    v.track.last_master = Some("c".into());
    let d = decide(&v);
    assert_eq!(d.track.lost_master.as_deref(), Some("c"));
    assert!(matches!(
        d.successor,
        Successor::TakeOver { died: true, .. }
    ));
}

#[test]
fn later_successors_wait_a_grace_per_rank() {
    // a ranks third: 1.5 x 100 ms interval + 2 graces of max(3 x 100, 2 x 100) ms.
    let v = view(
        State::Backup,
        100,
        vec![
            peer("b", State::Backup, 200, 2, 1),
            peer("c", State::Backup, 150, 3, 1),
        ],
    );
    let at = v.now;
    assert_eq!(v.grace(), 300 * MS);
    assert_eq!(
        successor(&v, &lost(at), None, &v.ranking()),
        Successor::Waiting { due: at + 750 * MS }
    );
    // Equal priority: the higher address goes first (a is 10.0.0.1).
    let v = view(
        State::Backup,
        100,
        vec![peer("b", State::Backup, 100, 2, 1)],
    );
    assert_eq!(
        successor(&v, &lost(at), None, &v.ranking()).due(),
        Some(at + 450 * MS)
    );
}

#[test]
fn no_successor_with_a_live_master_as_non_backup_or_when_leaving() {
    let v = view(State::Backup, 200, vec![]);
    let r = v.ranking();
    let at = v.now - Duration::from_secs(1);
    let m = cand("b", State::Master, 100, 2);
    assert_eq!(successor(&v, &lost(at), Some(&m), &r), Successor::Idle);
    let never = Watch {
        last_master: None,
        lost_at: None,
        lost_master: None,
        takeover_tried: false,
    };
    assert_eq!(successor(&v, &never, None, &r), Successor::Idle);
    let leaving = View {
        leaving: true,
        ..v.clone()
    };
    assert_eq!(successor(&leaving, &lost(at), None, &r), Successor::Idle);
    let mut faulted = v.clone();
    faulted.local.state = State::Fault;
    assert_eq!(successor(&faulted, &lost(at), None, &r), Successor::Idle);
}

#[test]
fn decide_on_a_dead_master_defers_vrrp_until_our_turn_then_takes_over_once() {
    let mut v = view(
        State::Backup,
        100,
        vec![peer("b", State::Backup, 200, 2, 1)],
    );
    v.track.last_master = Some("c".into());
    let d = decide(&v);
    assert_eq!(d.track.master_lost_at, Some(v.now));
    assert!(matches!(d.successor, Successor::Waiting { .. }));
    assert_eq!(d.track.takeover_due, d.successor.due());
    assert!(d.track.gates.defer_master_down, "b goes first");
    // Our turn: one takeover, then no more for this loss.
    v.track = d.track;
    v.now += Duration::from_secs(1);
    let d = decide(&v);
    assert!(matches!(d.successor, Successor::TakeOver { .. }));
    assert!(d.track.takeover_tried && !d.track.gates.defer_master_down);
    v.track = d.track;
    assert!(matches!(decide(&v).successor, Successor::Tried { .. }));
}

// ---- preemption ----------------------------------------------------------

#[test]
fn the_best_backup_preempts_after_its_delay() {
    let m = cand("b", State::Master, 100, 2);
    let mut v = view(
        State::Backup,
        200,
        vec![peer("b", State::Master, 100, 2, 1)],
    );
    v.local.preempt_delay = 300 * MS;
    let r = v.ranking();
    let since = v.now;
    assert_eq!(preempt(&v, Some(&m), None, &r), Preempt::Delaying { since });
    v.track.preempt_since = Some(since);
    v.now += 299 * MS;
    assert_eq!(preempt(&v, Some(&m), None, &r), Preempt::Delaying { since });
    v.now += MS;
    assert_eq!(preempt(&v, Some(&m), None, &r), Preempt::Now);
    let mut d = v.clone();
    d.now = since;
    d.local.preempt_delay = Duration::ZERO;
    assert_eq!(decide(&d).preempt, Preempt::Now);
    assert_eq!(decide(&d).track.preempt_since, None);
}

#[test]
fn only_the_best_candidate_preempts() {
    // b (200) and a (150) both outrank the master c (100): only b, ranked
    // first, may take over; a waits.
    let m = cand("c", State::Master, 100, 3);
    let v = view(
        State::Backup,
        150,
        vec![
            peer("b", State::Backup, 200, 2, 1),
            peer("c", State::Master, 100, 3, 1),
        ],
    );
    assert_eq!(preempt(&v, Some(&m), None, &v.ranking()), Preempt::No);
    // Equal priority to the master: the higher address preempts.
    let m = cand("c", State::Master, 150, 0);
    let v = view(
        State::Backup,
        150,
        vec![peer("c", State::Master, 150, 0, 1)],
    );
    assert_eq!(preempt(&v, Some(&m), None, &v.ranking()), Preempt::Now);
}

#[test]
fn no_preempt_when_pinned_off_leaving_or_not_preferred() {
    let m = cand("b", State::Master, 100, 2);
    let v = view(
        State::Backup,
        200,
        vec![peer("b", State::Master, 100, 2, 1)],
    );
    let r = v.ranking();
    assert_eq!(preempt(&v, Some(&m), Some("b"), &r), Preempt::No, "pinned");
    let mut off = v.clone();
    off.local.preempt = false;
    assert_eq!(preempt(&off, Some(&m), None, &r), Preempt::No);
    let leaving = View {
        leaving: true,
        ..v.clone()
    };
    assert_eq!(preempt(&leaving, Some(&m), None, &r), Preempt::No);
    assert_eq!(preempt(&v, None, None, &r), Preempt::No, "no master");
    // The order policy puts b first whatever the priorities.
    let mut order = v.clone();
    order.policy = Policy::Order(vec!["b".into(), "a".into()]);
    order.track.preempt_since = Some(v.now);
    let r = order.ranking();
    assert_eq!(preempt(&order, Some(&m), None, &r), Preempt::No);
    assert_eq!(
        decide(&order).track.preempt_since,
        None,
        "delay starts over"
    );
}

#[test]
fn order_policy_lets_a_lower_priority_preempt() {
    let m = cand("b", State::Master, 200, 2);
    let mut v = view(State::Backup, 50, vec![peer("b", State::Master, 200, 2, 1)]);
    v.policy = Policy::Order(vec!["a".into(), "b".into()]);
    assert_eq!(preempt(&v, Some(&m), None, &v.ranking()), Preempt::Now);
}

// ---- split brain -----------------------------------------------------------

#[test]
fn a_master_steps_down_for_a_master_with_precedence() {
    let v = view(
        State::Master,
        100,
        vec![peer("b", State::Master, 100, 2, 1)],
    );
    let m = v.master();
    assert_eq!(node(m.clone()), Some("b".into()), "same epoch 0 < 1");
    assert_eq!(
        split_brain(&v, m.as_ref()),
        Some(StepDown { new_master: ip(2) })
    );
    let mut mine = v.clone();
    mine.own_epoch = 1;
    mine.local.priority = 200;
    assert_eq!(node(mine.master()), Some("a".into()));
    assert_eq!(split_brain(&mine, mine.master().as_ref()), None);
    let backup = view(
        State::Backup,
        100,
        vec![peer("b", State::Master, 100, 2, 1)],
    );
    assert_eq!(split_brain(&backup, backup.master().as_ref()), None);
}

#[test]
fn takeover_precedence_is_epoch_then_priority_then_address() {
    let me = cand("a", State::Master, 150, 5);
    let lower = cand("b", State::Master, 100, 9);
    assert!(!takeover_wins(Some((&me, 3)), &lower, 3));
    assert!(takeover_wins(Some((&me, 3)), &lower, 4), "newer epoch");
    let higher = cand("b", State::Master, 200, 1);
    assert!(takeover_wins(Some((&me, 3)), &higher, 3));
    let equal_above = cand("b", State::Master, 150, 6);
    let equal_below = cand("b", State::Master, 150, 4);
    assert!(takeover_wins(Some((&me, 3)), &equal_above, 3));
    assert!(!takeover_wins(Some((&me, 3)), &equal_below, 3));
    let backup = cand("a", State::Backup, 250, 9);
    assert!(takeover_wins(Some((&backup, 3)), &lower, 3));
    assert!(takeover_wins(None, &lower, 0));
}

// ---- gates ---------------------------------------------------------------

#[test]
fn gates_list_live_peer_addresses_and_defer_for_another_master() {
    let b = peer("b", State::Master, 100, 2, 1);
    let mut c = peer("c", State::Backup, 100, 3, 1);
    c.beat.address = None;
    let v = view(State::Backup, 100, vec![b, c]);
    let m = v.master();
    let g = gates(&v, m.as_ref(), None, Successor::Idle);
    assert_eq!(g.peers, vec![ip(2).unwrap()]);
    assert!(g.defer_master_down);
    let g = gates(&v, None, None, Successor::Idle);
    assert!(!g.defer_master_down);
    let due = v.now;
    assert!(gates(&v, None, None, Successor::Waiting { due }).defer_master_down);
    assert!(!gates(&v, None, None, Successor::Tried { due }).defer_master_down);
    assert!(gates(&v, None, Some("b"), Successor::Idle).defer_master_down);
    assert!(!gates(&v, None, Some("a"), Successor::Idle).defer_master_down);
    let me = cand("a", State::Master, 100, 1);
    assert!(!gates(&v, Some(&me), None, Successor::Idle).defer_master_down);
}

// ---- operator requests -----------------------------------------------------

#[test]
fn switchover_checks_in_order() {
    let ok = check_switchover(
        "a",
        Some(State::Master),
        "VI_1",
        "b",
        Target::Live(Some(State::Backup)),
    );
    assert_eq!(ok, Ok(()));
    let err = |mine, target: &str, seen| {
        check_switchover("a", mine, "VI_1", target, seen)
            .unwrap_err()
            .to_string()
    };
    let live_backup = Target::Live(Some(State::Backup));
    assert_eq!(
        err(Some(State::Backup), "b", live_backup),
        "a is not master of VI_1"
    );
    assert_eq!(
        err(Some(State::Master), "a", Target::Unknown),
        "a is already master of VI_1"
    );
    assert_eq!(
        err(Some(State::Master), "zz", Target::Unknown),
        "unknown node zz"
    );
    assert_eq!(
        err(Some(State::Master), "b", Target::Dead),
        "b is not alive on the channel"
    );
    assert_eq!(
        err(Some(State::Master), "b", Target::Live(Some(State::Fault))),
        "b is FAULT for VI_1, not BACKUP"
    );
    assert_eq!(
        err(Some(State::Master), "b", Target::Live(None)),
        "b has no instance VI_1"
    );
}
