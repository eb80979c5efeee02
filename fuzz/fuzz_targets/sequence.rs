//! Sequences of authenticated but hostile input to the cluster and sync
//! cores of one node ("a", peers "b" and "c"): any cluster message from a
//! peer (stale, future or forged epochs, wrong names, lies about versions
//! and digests), sync chunks of any shape, connections coming and going,
//! local VRRP changes, role changes, file observations, write results and
//! the passing of time, in any order.
//!
//! Invariants checked after every step: no panic; a known takeover epoch
//! never goes back; a committed sync version never goes back; the heap
//! stays bounded (a peer cannot make the node hold more than its limits
//! allow, whatever it announces).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use baton::cluster::sync::{Chunk, Content, Observed, SyncSpec};
use baton::cluster::{
    Cluster, ClusterAction, ClusterConfig, InstanceBeat, LocalInstance, Message, Policy,
    SyncAction, SyncConfig, SyncCore, SyncVersion,
};
use baton::vrrp::State;
use baton_fuzz::alloc::{live_bytes, Counting};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

const INSTANCES: [&str; 2] = ["VI_1", "VI_2"];
const NODES: [&str; 4] = ["b", "c", "a", "z"];
const FILES: [&str; 2] = ["f", "g"];
const MAX_SIZE: u64 = 4096;
/// What the cores may hold beyond the harness's own data: generous, far
/// below what a peer announcing gigabytes would make a careless core take.
const HEAP_LIMIT: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let base = live_bytes();
    let _ = run(&mut Unstructured::new(data), base);
});

fn run(u: &mut Unstructured<'_>, base: usize) -> Result<()> {
    let t0 = Instant::now();
    let mut now = t0;
    let peers = vec!["b".to_string(), "c".to_string()];
    // Route mode (the channel alone decides) or ARP mode.
    let route: bool = u.arbitrary()?;
    let local = |name: &str, last| LocalInstance {
        name: name.to_string(),
        state: State::Backup,
        priority: 100,
        address: (!route).then_some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))),
        advert_interval: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        route,
    };
    let policy = if u.arbitrary()? {
        Policy::Priority
    } else {
        Policy::Order(vec!["c".into(), "a".into(), "b".into()])
    };
    let mut cluster = Cluster::new(
        ClusterConfig {
            node: "a".into(),
            peers: peers.clone(),
            heartbeat_interval: Duration::from_millis(100),
            policy,
            switchover_timeout: Duration::from_secs(2),
        },
        vec![local("VI_1", 1), local("VI_2", 1)],
        now,
    );
    let mut cfg = SyncConfig::new(
        "a",
        peers,
        FILES
            .iter()
            .map(|n| SyncSpec {
                name: n.to_string(),
                max_size: MAX_SIZE,
            })
            .collect(),
    );
    cfg.chunk_size = 64;
    let mut sync = SyncCore::new(cfg);

    let mut epochs = [0u64; 2];
    let mut committed: [Option<SyncVersion>; 2] = [None; 2];
    let mut writes: Vec<(String, SyncVersion)> = Vec::new();

    for _ in 0..u.int_in_range(1..=64)? {
        match u.int_in_range(0..=11)? {
            0 => {
                let p = peer(u)?;
                cluster.connected(now, p);
                sync.connected(now, p);
            }
            1 => {
                let p = peer(u)?;
                cluster.disconnected(now, p);
                sync.disconnected(now, p);
            }
            2..=4 => {
                let p = peer(u)?;
                match message(u)? {
                    m @ (Message::SyncOffer { .. }
                    | Message::SyncHave { .. }
                    | Message::SyncRequest { .. }) => sync.handle_message(now, p, m),
                    m => cluster.handle_message(now, p, m),
                }
            }
            5 | 6 => {
                let p = peer(u)?;
                let bytes = if u.ratio(1, 4)? {
                    let n = u.int_in_range(0..=80)?;
                    u.bytes(n)?.to_vec()
                } else {
                    let n = u.int_in_range(0..=80)?;
                    Chunk {
                        name: *u.choose(&FILES)?,
                        version: version(u)?,
                        index: u.int_in_range(0..=70)?,
                        total: u.int_in_range(0..=70)?,
                        bytes: u.bytes(n)?,
                    }
                    .emit()
                    .unwrap_or_default()
                };
                sync.handle_data(now, p, &bytes);
            }
            7 => {
                let state = *u.choose(&[State::Backup, State::Master, State::Fault])?;
                cluster.local_update(now, *u.choose(&INSTANCES)?, state, u.arbitrary()?);
            }
            8 => sync.set_role(now, u.arbitrary()?, u.int_in_range(0..=8)?),
            9 => {
                let observed = match u.int_in_range(0..=2)? {
                    0 => Observed::Missing,
                    1 => Observed::TooLarge(u.arbitrary()?),
                    _ => {
                        let n = u.int_in_range(0..=200)?;
                        Observed::Content(Content::new(u.bytes(n)?.to_vec()))
                    }
                };
                sync.local_file(now, *u.choose(&FILES)?, observed);
            }
            10 => {
                if !writes.is_empty() {
                    let (name, v) = writes.remove(u.choose_index(writes.len())?);
                    let result = if u.arbitrary()? {
                        Ok(None)
                    } else {
                        Err("disk full".to_string())
                    };
                    sync.write_done(now, &name, v, result);
                }
            }
            _ => {
                now += Duration::from_millis(u.int_in_range(0..=3000)?);
                cluster.handle_timeout(now);
                sync.handle_timeout(now);
            }
        }
        while let Some(a) = cluster.poll_action() {
            if let ClusterAction::Broadcast(m) | ClusterAction::Send { msg: m, .. } = a {
                assert!(!m.to_json().is_empty());
            }
        }
        while let Some(a) = sync.poll_action() {
            if let SyncAction::Write {
                name,
                version,
                content,
                ..
            } = a
            {
                assert!(content.len() as u64 <= MAX_SIZE, "wrote more than max_size");
                writes.push((name, version));
            }
        }
        for (i, name) in INSTANCES.iter().enumerate() {
            let e = cluster.epoch(name);
            assert!(
                e >= epochs[i],
                "{name}: epoch went back from {} to {e}",
                epochs[i]
            );
            epochs[i] = e;
        }
        for (i, name) in FILES.iter().enumerate() {
            let c = sync.committed(name);
            assert!(
                c >= committed[i],
                "{name}: committed went back: {:?} -> {c:?}",
                committed[i]
            );
            committed[i] = c;
        }
        let held = live_bytes().saturating_sub(base);
        assert!(held < HEAP_LIMIT, "the cores hold {held} bytes");
    }
    Ok(())
}

fn peer<'a>(u: &mut Unstructured<'a>) -> Result<&'static str> {
    Ok(*u.choose(&["b", "c", "z"])?)
}

fn version(u: &mut Unstructured<'_>) -> Result<SyncVersion> {
    Ok(SyncVersion {
        epoch: small_or_any(u)?,
        counter: small_or_any(u)?,
    })
}

fn small_or_any(u: &mut Unstructured<'_>) -> Result<u64> {
    if u.ratio(1, 8)? {
        u.arbitrary()
    } else {
        u.int_in_range(0..=6)
    }
}

fn name(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<String> {
    Ok(u.choose(pool)?.to_string())
}

fn digest(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=2)? {
        // The digests of "" and "x": contents the fuzzer can produce.
        0 => "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        1 => "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
        _ => u.arbitrary()?,
    })
}

fn message(u: &mut Unstructured<'_>) -> Result<Message> {
    let inst = |u: &mut Unstructured<'_>| name(u, &["VI_1", "VI_2", "nope"]);
    let node = |u: &mut Unstructured<'_>| name(u, &NODES);
    Ok(match u.int_in_range(0..=10)? {
        0 => {
            let mut instances = Vec::new();
            for _ in 0..u.int_in_range(0..=3)? {
                instances.push(InstanceBeat {
                    name: inst(u)?,
                    state: *u.choose(&[
                        State::Initialize,
                        State::Backup,
                        State::Master,
                        State::Fault,
                    ])?,
                    priority: u.arbitrary()?,
                    address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, u.int_in_range(1..=4)?))),
                    epoch: small_or_any(u)?,
                    pinned: if u.arbitrary()? { Some(node(u)?) } else { None },
                });
            }
            Message::Heartbeat {
                stamp: None,
                echo: Vec::new(),
                node: node(u)?,
                instances,
            }
        }
        1 => Message::Takeover {
            instance: inst(u)?,
            node: node(u)?,
            epoch: small_or_any(u)?,
            pinned: u.arbitrary()?,
            priority: u.arbitrary()?,
            address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, u.int_in_range(1..=4)?))),
        },
        2 => Message::Switchover {
            instance: inst(u)?,
            target: node(u)?,
            epoch: small_or_any(u)?,
            id: u.int_in_range(0..=3)?,
        },
        3 => Message::Handoff {
            instance: inst(u)?,
            target: node(u)?,
            epoch: small_or_any(u)?,
            id: u.int_in_range(0..=3)?,
            pin: u.arbitrary()?,
        },
        4 => Message::SwitchoverRequest {
            instance: inst(u)?,
            target: node(u)?,
            unicast: u.arbitrary()?,
            id: u.int_in_range(0..=3)?,
            from: node(u)?,
        },
        5 => Message::SwitchoverRefused {
            id: u.int_in_range(0..=3)?,
            reason: "no".into(),
        },
        6 => Message::ClearPin {
            instance: inst(u)?,
            epoch: small_or_any(u)?,
        },
        7 => Message::SyncOffer {
            name: name(u, &["f", "g", "h"])?,
            version: version(u)?,
            digest: digest(u)?,
            size: if u.ratio(1, 4)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=300)?
            },
            chunks: if u.ratio(1, 4)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=6)?
            },
            window: u.arbitrary()?,
        },
        8 => Message::SyncHave {
            name: name(u, &["f", "g", "h"])?,
            version: if u.arbitrary()? {
                Some(version(u)?)
            } else {
                None
            },
            digest: if u.arbitrary()? {
                Some(digest(u)?)
            } else {
                None
            },
            committed: if u.arbitrary()? {
                Some(version(u)?)
            } else {
                None
            },
            ask: u.arbitrary()?,
            acks: u.arbitrary()?,
        },
        9 => Message::SyncAck {
            name: name(u, &["f", "g", "h"])?,
            version: version(u)?,
            next: if u.ratio(1, 4)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=6)?
            },
            error: if u.ratio(1, 4)? {
                Some("No space left on device".into())
            } else {
                None
            },
        },
        _ => Message::SyncRequest {
            name: name(u, &["f", "g", "h"])?,
            version: version(u)?,
        },
    })
}
