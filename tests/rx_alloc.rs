//! The receive path allocates nothing per advert: a backup hearing its
//! masters through `Node::handle` (what the daemon's loop does with each
//! packet it reads: the TTL check, the parse, the VRID lookup, the
//! instance's checks of version, interval and address list, its timers and
//! the node's deadline) makes no heap allocation, IPv4 and IPv6 alike.
//!
//! A counting global allocator, counting only on the test's own thread
//! while the adverts are handed over.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton::config::model::{Config, Instance};
use baton::node::{IfaceId, Input, Node, GROUP4, GROUP6};
use baton::wire::vrrp::{Repr, V3Checksum, Version};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator unchanged; the counter
// is an atomic and the flag a const-initialised thread-local, neither of
// which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Source {
    vrid: u8,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_backup_hearing_adverts_allocates_nothing() {
    let mut config = Config::new("n1");
    let mut sources = Vec::new();
    // Three IPv4 instances with two VIPs each, one IPv6 instance.
    for vrid in 1..=4u8 {
        let mut cfg = Instance::new(format!("VI_{vrid}"), "eth0", vrid);
        let v6 = vrid == 4;
        let vips: Vec<IpAddr> = if v6 {
            vec![ip("fe80::4"), ip("2001:db8::4")]
        } else {
            vec![
                ip(&format!("10.0.{vrid}.100")),
                ip(&format!("10.0.{vrid}.101")),
            ]
        };
        cfg.virtual_ips = vips
            .iter()
            .map(|a| format!("{a}/{}", if v6 { 64 } else { 24 }).parse().unwrap())
            .collect();
        cfg.priority = 100;
        config.instances.push(cfg);
        let (src, dst) = if v6 {
            (ip("fe80::2"), GROUP6)
        } else {
            (ip("10.0.0.2"), GROUP4)
        };
        let bytes = Repr {
            version: Version::V3,
            vrid,
            priority: 200,
            interval_cs: 1,
            // The other order than ours: found wherever they are.
            addresses: vips.iter().rev().copied().collect(),
            auth: None,
        }
        .to_bytes(src, dst, V3Checksum::WithPseudoHeader)
        .unwrap();
        sources.push(Source {
            vrid,
            src,
            dst,
            bytes,
        });
    }
    let mut node = Node::new(config.clone());
    let t0 = Instant::now();
    let iface = node.add_interface("eth0", true);
    for cfg in &config.instances {
        let local = if cfg.vrid == 4 {
            ip("fe80::1")
        } else {
            ip("10.0.0.1")
        };
        node.add_instance(t0, cfg.clone(), iface, local);
    }
    node.start(t0);
    let deliver = |node: &mut Node, now: Instant, s: &Source| {
        node.handle(
            now,
            Input::Packet {
                iface: IfaceId(iface.0),
                multicast_socket: true,
                src: s.src,
                dst: s.dst,
                ttl: 255,
                payload: &s.bytes,
            },
        );
        // The loop asks for the next deadline and drains the effects.
        let _ = node.next_deadline();
        while node.poll_effect().is_some() {}
    };
    // The first round learns each master (a log line, the hint).
    let mut now = t0;
    for s in &sources {
        deliver(&mut node, now, s);
    }
    let status = node.status(now);
    for s in &sources {
        let i = status
            .instances
            .iter()
            .find(|i| i.vrid == s.vrid)
            .expect("the instance");
        assert_eq!(i.rx.accepted, 1, "VRID {}: {:?}", s.vrid, i.rx);
    }
    drop(status);

    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        for s in &sources {
            deliver(&mut node, now, s);
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);

    let status = node.status(now);
    for s in &sources {
        let i = status.instances.iter().find(|i| i.vrid == s.vrid).unwrap();
        assert_eq!(i.rx.accepted, 1001, "VRID {}: {:?}", s.vrid, i.rx);
        assert!(i.rx.dropped.is_empty(), "VRID {}: {:?}", s.vrid, i.rx);
    }
    assert_eq!(
        allocations, 0,
        "{allocations} heap allocations for 4000 adverts"
    );
}
