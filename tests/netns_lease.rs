//! The VIP lease with real processes: a dead or frozen master's VIP goes
//! away by itself (the kernel drops it when its lifetime runs out), and a
//! frozen master that runs again rejoins as BACKUP without a second
//! takeover.
//!
//! ```text
//!   node0 (.11)        node1 (.12)
//!   baton run          baton run
//!       |                  |
//!   +---+------------------+---+
//!   |  bridge namespace (br0)  |
//!   +--------------------------+
//! ```
//!
//! Adverts are 100 ms (v3), so the default lease ("auto") is 1 s. Which
//! node holds the VIP is watched every millisecond from a thread in each
//! namespace ([`HoldWatch`]). Needs root (skipped without it, a failure
//! under `CI=true`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use baton::lab::{self, HoldWatch, Lab};
use baton::vrrp::State;
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
/// The default lease at 100 ms adverts (1.5 x ~0.36 s, whole seconds).
const LEASE: Duration = Duration::from_secs(1);
/// The kernel's IPv4 lifetime check rounds up to the next whole second when
/// that is within 250 ms; and a loaded machine.
const EXPIRY_SLACK: Duration = Duration::from_millis(500);
const ELECTION: Duration = Duration::from_secs(5);

fn instance(priority: u8) -> String {
    format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = 51\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\n\
         virtual_ips = [\"{VIP}/24\"]\n"
    )
}

struct Case {
    lab: Lab,
    pids: Vec<u32>,
}

impl Case {
    fn new(tag: &str) -> Case {
        Case {
            lab: Lab::new(tag, 2).expect("building the namespace lab"),
            pids: vec![0; 2],
        }
    }

    fn start(&mut self, i: usize, priority: u8) {
        let pid = self
            .lab
            .start_baton(Path::new(BATON), i, &instance(priority))
            .unwrap_or_else(|e| panic!("starting baton on node{i}: {e}"));
        self.pids[i] = pid;
        if let Err(e) = self.lab.wait_for_agent(i, pid, ELECTION) {
            panic!("{e}\n{}", self.context());
        }
    }

    fn signal(&mut self, i: usize, sig: Signal) {
        let pid = self.pids[i];
        self.lab
            .signal(pid, sig)
            .unwrap_or_else(|e| panic!("{sig} to node{i}: {e}"));
    }

    fn holders(&self) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(VIP))
    }

    /// Only for a node whose agent runs (a frozen one does not answer).
    fn state(&self, i: usize) -> Option<State> {
        self.lab.state(i, NAME)
    }

    fn entered(&self, i: usize, state: &str) -> usize {
        let line = format!("({NAME}) Entering {state} STATE");
        self.lab.log(i).matches(&line).count()
    }

    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut(&Case) -> bool) -> Duration {
        lab::wait_until(self, timeout, what, cond, Case::context)
    }

    fn stays(&self, period: Duration, what: &str, cond: impl FnMut(&Case) -> bool) {
        lab::holds_for(self, period, what, cond, Case::context)
    }

    fn context(&self) -> String {
        let mut out = format!("VIP {VIP} held by {:?}\n", self.holders());
        for i in 0..2 {
            let addrs = self.lab.addresses(self.lab.node_ns(i), lab::IFNAME);
            let _ = writeln!(out, "node{i} addresses: {addrs:?}");
            let log = self.lab.log(i);
            let tail = &log[log.len().saturating_sub(4000)..];
            let _ = writeln!(out, "----- node{i} log -----\n{tail}");
        }
        out
    }
}

// ---------------------------------------------------------------------------
// 1. SIGKILL of the master, no restart
// ---------------------------------------------------------------------------

#[test]
fn a_killed_masters_vip_expires_within_the_lease_while_the_successor_holds_it() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("lk");
    c.start(0, 200);
    c.wait(ELECTION, "node0 alone holds the VIP", |c| {
        c.holders() == [0] && c.state(0) == Some(State::Master)
    });
    c.start(1, 100);
    c.wait(ELECTION, "node1 is BACKUP", |c| {
        c.state(1) == Some(State::Backup)
    });
    // The lease is in the kernel: a dynamic address with a lifetime.
    let addrs = c.lab.addresses(c.lab.node_ns(0), lab::IFNAME).unwrap();
    let vip = addrs.iter().find(|a| a.addr == IpAddr::V4(VIP)).unwrap();
    assert!(vip.rest.contains("dynamic"), "not leased: {vip:?}");

    let watch = HoldWatch::start(&c.lab, VIP);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    c.signal(0, Signal::SIGKILL);
    let code = c.lab.wait(c.pids[0], Duration::from_secs(3)).unwrap();
    assert!(code.is_some(), "node0 did not die of SIGKILL");
    c.wait(Duration::from_secs(3), "node1 takes over", |c| {
        c.state(1) == Some(State::Master) && c.holders().contains(&1)
    });
    c.wait(
        LEASE + EXPIRY_SLACK,
        "the kernel drops the dead node0's VIP",
        |c| c.holders() == [1],
    );
    c.stays(
        Duration::from_millis(500),
        "node1 alone holds the VIP",
        |c| c.holders() == [1] && c.state(1) == Some(State::Master),
    );
    let seen = watch.finish();
    let gone = seen.released(0).expect("node0 lost the VIP") - killed;
    let taken = seen.acquired_after(1, killed).expect("node1 got the VIP") - killed;
    let both = seen.overlap(killed);
    println!(
        "MEASURED: SIGKILL at 100 ms adverts, lease {LEASE:?}: VIP on node1 after {} ms, \
         gone from node0 after {} ms, two holders for {} ms",
        taken.as_millis(),
        gone.as_millis(),
        both.as_millis()
    );
    assert!(
        gone <= LEASE + EXPIRY_SLACK,
        "node0's VIP outlived its lease: {gone:?}\n{}",
        c.context()
    );
    assert!(
        both < LEASE,
        "two holders for {both:?}, not less than the lease\n{}",
        c.context()
    );
}

// ---------------------------------------------------------------------------
// 2. SIGSTOP of the master, then SIGCONT
// ---------------------------------------------------------------------------

#[test]
fn a_frozen_master_loses_its_vip_and_thaws_as_backup_without_a_second_takeover() {
    if !lab::require_root() {
        return;
    }
    // Equal priorities: plain VRRP would not preempt a running master. The
    // one that must not come back is node1, the higher address: without
    // the frozen-master rule its first advert after the thaw would win the
    // tie-break and take the VIP back (a second takeover).
    let mut c = Case::new("ls");
    c.start(1, 100);
    c.wait(ELECTION, "node1 alone holds the VIP", |c| {
        c.holders() == [1] && c.state(1) == Some(State::Master)
    });
    c.start(0, 100);
    c.wait(ELECTION, "node0 is BACKUP", |c| {
        c.state(0) == Some(State::Backup)
    });
    let masters_before = (c.entered(0, "MASTER"), c.entered(1, "MASTER"));

    let watch = HoldWatch::start(&c.lab, VIP);
    std::thread::sleep(Duration::from_millis(300));
    let frozen = Instant::now();
    c.signal(1, Signal::SIGSTOP);
    // Only node0 is asked for its state: node1 cannot answer.
    c.wait(Duration::from_secs(3), "node0 takes over", |c| {
        c.state(0) == Some(State::Master) && c.holders().contains(&0)
    });
    c.wait(
        LEASE + EXPIRY_SLACK,
        "the frozen node1's VIP expires",
        |c| c.holders() == [0],
    );
    let expired = frozen.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    c.signal(1, Signal::SIGCONT);
    let thawed = Instant::now();
    c.wait(Duration::from_secs(3), "node1 is BACKUP again", |c| {
        c.state(1) == Some(State::Backup)
    });
    c.stays(
        Duration::from_millis(1500),
        "node0 alone is master and holds the VIP",
        |c| {
            c.holders() == [0]
                && c.state(0) == Some(State::Master)
                && c.state(1) == Some(State::Backup)
        },
    );
    let seen = watch.finish();
    let masters_after = (c.entered(0, "MASTER"), c.entered(1, "MASTER"));
    println!(
        "MEASURED: SIGSTOP at 100 ms adverts, lease {LEASE:?}: VIP gone from the frozen \
         node1 after {} ms, two holders for {} ms; after SIGCONT node1 took it back: {}",
        expired.as_millis(),
        seen.overlap(frozen).as_millis(),
        seen.acquired_after(1, thawed).is_some()
    );
    assert_eq!(
        masters_after,
        (masters_before.0 + 1, masters_before.1),
        "MASTER entries (node0, node1): one takeover by node0, none by node1 after the thaw\n{}",
        c.context()
    );
    assert!(
        seen.acquired_after(1, thawed).is_none(),
        "node1 put the VIP back after SIGCONT\n{}",
        c.context()
    );
    assert!(
        c.lab.log(1).contains("Entering BACKUP STATE (stalled"),
        "node1 did not log the frozen-master rule\n{}",
        c.context()
    );
    assert!(
        seen.overlap(frozen) < LEASE,
        "two holders for {:?} after SIGSTOP\n{}",
        seen.overlap(frozen),
        c.context()
    );
}

// ---------------------------------------------------------------------------
// 3. IPv6: preferred equals valid, so a leased VIP is never deprecated
// ---------------------------------------------------------------------------

#[test]
fn an_ipv6_vip_stays_preferred_while_refreshed_and_expires_after_sigkill() {
    if !lab::require_root() {
        return;
    }
    let vip: IpAddr = "fd00:77::100".parse().unwrap();
    let mut c = Case::new("l6");
    let toml = format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = 51\n\
         priority = 200\nversion = 3\nadvert_interval = \"100ms\"\n\
         virtual_ips = [\"{vip}/64\"]\n"
    );
    let pid = c
        .lab
        .start_baton(Path::new(BATON), 0, &toml)
        .expect("starting baton");
    c.pids[0] = pid;
    c.lab
        .wait_for_agent(0, pid, ELECTION)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.context()));
    let ns = c.lab.node_ns(0).to_string();
    let vip_entry = |c: &Case| {
        c.lab
            .addresses(&ns, lab::IFNAME)
            .ok()
            .and_then(|all| all.into_iter().find(|a| a.addr == vip))
    };
    c.wait(ELECTION, "node0 holds the IPv6 VIP", |c| {
        vip_entry(c).is_some()
    });
    // Three leases long: refreshed, never deprecated, never gone.
    c.stays(LEASE * 3, "the IPv6 VIP stays, leased and preferred", |c| {
        vip_entry(c).is_some_and(|a| a.rest.contains("dynamic") && !a.rest.contains("deprecated"))
    });
    let killed = Instant::now();
    c.signal(0, Signal::SIGKILL);
    c.wait(
        LEASE + EXPIRY_SLACK,
        "the kernel drops the dead node's IPv6 VIP",
        |c| vip_entry(c).is_none(),
    );
    println!(
        "MEASURED: IPv6 VIP gone {} ms after SIGKILL (lease {LEASE:?})",
        killed.elapsed().as_millis()
    );
}
