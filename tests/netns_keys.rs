//! keepalived 2.2.7 keywords that baton used to read and warn about, each
//! run for real: `baton run` (and keepalived beside it where the two must
//! agree) in network namespaces on one bridged layer 2.
//!
//! ```text
//!   node0 (.11)        node1 (.12)        node2 (.13)
//!   baton|keepalived   baton|keepalived   baton
//!       |                  |                  |
//!   +---+------------------+------------------+---+
//!   |          bridge namespace (br0)             |
//!   +---------------------------------------------+
//! ```
//!
//! | keyword | what a test proves |
//! |---|---|
//! | `mcast_src_ip` | adverts leave from it although the host lacks it (as keepalived's); keepalived accepts them |
//! | `vrrp_mcast_group4/6` | baton and keepalived on 224.0.0.33 (ff02::33) elect together; a baton on the default group hears neither |
//! | `dont_track_primary` | own link down: baton and keepalived stay MASTER with it, baton faults without |
//! | `skip_check_adv_addr` | a master's new address list: dropped and counted by default, followed with the key |
//! | `net_namespace` | baton started elsewhere runs in the named namespace |
//! | `max_auto_priority` | a loop woken late switches to SCHED_RR, one step per late wake, capped |
//! | `vrrp_rt_priority` | SCHED_RR at that priority from the start |
//! | sync group `track_script` | one failing check faults every member and moves the group |
//!
//! Adverts are VRRP v3 every 100 ms. Each test builds its own [`Lab`]
//! ("bky" + pid; torn down on drop) and needs root: without it a test
//! prints "skipped: needs root" and passes, except under `CI=true`. The
//! keepalived cases need keepalived (Debian package `keepalived`).

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::control::{InstanceStatus, Status};
use baton::lab::{self, Lab};
use baton::vrrp::State;
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const VIP1: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 101);
/// An address no namespace of the lab has.
const FOREIGN_SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 77);

/// Long enough to start and win an election (~350 ms) on a loaded host.
const ELECTION: Duration = Duration::from_secs(8);
/// How long a steady state must hold.
const STEADY: Duration = Duration::from_millis(1500);

fn root_or_skip() -> bool {
    if lab::is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("netns tests need root; CI runs as root");
    }
    println!("skipped: needs root");
    false
}

fn keepalived_bin() -> PathBuf {
    ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("keepalived"))
}

// ---------------------------------------------------------------------------
// keepalived.conf pieces (both implementations read the same text)
// ---------------------------------------------------------------------------

fn global_defs(i: usize, extra: &str) -> String {
    format!("global_defs {{\n    router_id node{i}\n    vrrp_version 3\n{extra}}}\n\n")
}

/// A `vrrp_instance` on eth0 with 100 ms adverts and `extra` lines.
fn vrrp_instance(name: &str, vrid: u8, priority: u8, vips: &[Ipv4Addr], extra: &str) -> String {
    let mut c = format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {vrid}\n    priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n"
    );
    for v in vips {
        let _ = writeln!(c, "        {v}/24");
    }
    let _ = write!(c, "    }}\n{extra}}}\n\n");
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Baton,
    Keepalived,
}

struct Case {
    lab: Lab,
    agents: Vec<Option<(Impl, u32)>>,
}

impl Case {
    fn new(tag: &str, nodes: usize) -> Case {
        let lab = Lab::new(tag, nodes).expect("building the namespace lab");
        fs::set_permissions(lab.dir(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the lab directory");
        Case {
            lab,
            agents: vec![None; nodes],
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.lab.dir().join(name)
    }

    fn conf_path(&self, i: usize) -> PathBuf {
        self.path(&format!("node{i}.conf"))
    }

    fn write_conf(&self, i: usize, conf: &str) -> PathBuf {
        let p = self.conf_path(i);
        fs::write(&p, conf).expect("writing keepalived.conf");
        p
    }

    /// `baton run -f node{i}.conf` in node i's namespace; returns once its
    /// control socket answers.
    fn start_baton(&mut self, i: usize, conf: &str) {
        let ns = self.lab.node_ns(i).to_string();
        self.start_baton_in(i, &ns, conf);
    }

    /// The same, started from namespace `ns`.
    fn start_baton_in(&mut self, i: usize, ns: &str, conf: &str) {
        assert!(self.agents[i].is_none(), "node{i} already runs an agent");
        let config = self.write_conf(i, conf).display().to_string();
        let f = self.lab.node_files(i);
        fs::create_dir_all(&f.state_dir).expect("creating the state dir");
        let socket = f.socket.display().to_string();
        let state = f.state_dir.display().to_string();
        let args = [
            "run",
            "-f",
            &config,
            "--control-socket",
            &socket,
            "--state-dir",
            &state,
        ];
        let pid = self
            .lab
            .spawn(ns, Path::new(BATON), &args, &f.log)
            .unwrap_or_else(|e| panic!("starting baton for node{i}: {e}"));
        self.agents[i] = Some((Impl::Baton, pid));
        if let Err(e) = self.lab.wait_for_agent(i, pid, ELECTION) {
            panic!("{e}\n{}", self.context());
        }
    }

    /// keepalived with a Debian unit's flags and pid files of its own.
    fn start_keepalived(&mut self, i: usize, conf: &str) {
        assert!(self.agents[i].is_none(), "node{i} already runs an agent");
        let config = self.write_conf(i, conf).display().to_string();
        let pids = ["main", "vrrp", "checkers", "bfd"]
            .map(|w| self.path(&format!("node{i}-{w}.pid")).display().to_string());
        let ns = self.lab.node_ns(i).to_string();
        let log = self.lab.node_files(i).log;
        let args = [
            "-n", "-l", "-D", "-P", "-f", &config, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2],
            "-b", &pids[3],
        ];
        let pid = self
            .lab
            .spawn(&ns, &keepalived_bin(), &args, &log)
            .unwrap_or_else(|e| panic!("starting keepalived on node{i}: {e}"));
        self.agents[i] = Some((Impl::Keepalived, pid));
        self.wait(ELECTION, &format!("keepalived on node{i} is up"), |c| {
            keepalived_state(&c.lab.log(i), "VI_1").is_some()
                || keepalived_state(&c.lab.log(i), "VI_2").is_some()
        });
    }

    fn pid(&self, i: usize) -> u32 {
        self.agents[i]
            .unwrap_or_else(|| panic!("node{i} runs no agent"))
            .1
    }

    fn signal(&mut self, i: usize, sig: Signal) {
        let pid = self.pid(i);
        self.lab
            .signal(pid, sig)
            .unwrap_or_else(|e| panic!("{sig} to node{i}: {e}"));
    }

    /// SIGTERM node i's agent and reap it.
    fn stop(&mut self, i: usize) {
        self.signal(i, Signal::SIGTERM);
        let pid = self.pid(i);
        match self.lab.wait(pid, Duration::from_secs(10)) {
            Ok(Some(_)) => self.agents[i] = None,
            other => panic!("node{i} did not stop: {other:?}\n{}", self.context()),
        }
    }

    fn status(&self, i: usize) -> Option<Status> {
        self.lab.status(i)
    }

    fn instance(&self, i: usize, name: &str) -> Option<InstanceStatus> {
        self.status(i)?
            .instances
            .into_iter()
            .find(|s| s.name == name)
    }

    /// Node i's state of `name`: baton's status, keepalived's log.
    fn state(&self, i: usize, name: &str) -> Option<State> {
        match self.agents[i]?.0 {
            Impl::Baton => self.lab.state(i, name),
            Impl::Keepalived => keepalived_state(&self.lab.log(i), name),
        }
    }

    fn drops(&self, i: usize, name: &str, reason: &str) -> u64 {
        self.instance(i, name)
            .and_then(|s| s.rx.dropped.get(reason).copied())
            .unwrap_or(0)
    }

    fn holders(&self, vip: Ipv4Addr) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(vip))
    }

    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut(&Case) -> bool) {
        lab::wait_until(self, timeout, what, cond, Case::context);
    }

    fn stays(&self, period: Duration, what: &str, cond: impl FnMut(&Case) -> bool) {
        lab::holds_for(self, period, what, cond, Case::context)
    }

    fn context(&self) -> String {
        let mut out = format!(
            "{VIP1} held by {:?}, {VIP2} held by {:?}\n",
            self.holders(VIP1),
            self.holders(VIP2)
        );
        for i in 0..self.lab.nodes() {
            let Some((kind, pid)) = self.agents[i] else {
                continue;
            };
            if kind == Impl::Baton {
                for inst in self.status(i).map(|s| s.instances).unwrap_or_default() {
                    let _ = writeln!(
                        out,
                        "node{i} {}: {:?} prio {} master {:?} faults {:?} rx {:?}",
                        inst.name,
                        inst.state,
                        inst.effective_priority,
                        inst.master,
                        inst.faults,
                        inst.rx
                    );
                }
            }
            let log = self.lab.log(i);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let _ = writeln!(out, "--- node{i} {kind:?} (pid {pid}) log, last lines:");
            for l in tail.iter().rev() {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

/// keepalived's last "(NAME) Entering X STATE" line.
fn keepalived_state(log: &str, name: &str) -> Option<State> {
    let tag = format!("({name}) Entering ");
    log.lines().rev().find_map(|l| {
        let rest = &l[l.find(&tag)? + tag.len()..];
        match rest.split_whitespace().next()? {
            "MASTER" => Some(State::Master),
            "BACKUP" => Some(State::Backup),
            "FAULT" => Some(State::Fault),
            _ => None,
        }
    })
}

/// The source and destination of the next `count` VRRP packets heard on
/// eth0 of namespace `ns`, joined to `group` (at most `timeout`).
fn capture(
    ns: &str,
    group: Ipv4Addr,
    count: usize,
    timeout: Duration,
) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    lab::in_netns(ns, move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
            .expect("raw VRRP socket");
        s.bind_device(Some(b"eth0")).expect("SO_BINDTODEVICE eth0");
        let index = nix::net::if_::if_nametoindex("eth0").expect("eth0's index");
        s.join_multicast_v4_n(&group, &socket2::InterfaceIndexOrAddress::Index(index))
            .expect("joining the group");
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s.set_read_timeout(Some(left)).expect("SO_RCVTIMEO");
            // An IPv4 raw socket reads the whole datagram, header first.
            let Ok(n) = (&s).read(&mut buf) else {
                break;
            };
            if n >= 20 {
                let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
                seen.push((src, dst));
            }
        }
        seen
    })
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// `mcast_src_ip` names an address no interface has: keepalived (checked:
/// 2.2.7 writes its own IPv4 header) sends from it anyway, and so does
/// baton. keepalived on node1 follows baton's adverts (their v3 checksum
/// covers that source) and stays BACKUP.
#[test]
fn mcast_src_ip_is_the_advert_source_even_off_the_host() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkys", 2);
    c.start_baton(
        0,
        &format!(
            "{}{}",
            global_defs(0, ""),
            vrrp_instance(
                "VI_1",
                51,
                200,
                &[VIP1],
                &format!("    mcast_src_ip {FOREIGN_SRC}\n")
            )
        ),
    );
    c.wait(ELECTION, "baton on node0 is MASTER", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    let seen = capture(
        c.lab.node_ns(1),
        Ipv4Addr::new(224, 0, 0, 18),
        3,
        Duration::from_secs(3),
    );
    assert_eq!(
        seen,
        vec![(FOREIGN_SRC, Ipv4Addr::new(224, 0, 0, 18)); 3],
        "adverts leave from mcast_src_ip\n{}",
        c.context()
    );
    if !keepalived_bin().exists() {
        panic!("keepalived is not installed");
    }
    c.start_keepalived(
        1,
        &format!(
            "{}{}",
            global_defs(1, ""),
            vrrp_instance("VI_1", 51, 100, &[VIP1], "")
        ),
    );
    c.stays(STEADY * 2, "keepalived follows baton as BACKUP", |c| {
        c.state(1, "VI_1") == Some(State::Backup) && c.holders(VIP1) == vec![0]
    });
    assert_eq!(c.state(0, "VI_1"), Some(State::Master));
}

/// `vrrp_mcast_group4 224.0.0.33` on keepalived (node0) and baton (node1):
/// one virtual router, keepalived master. A baton on the default group
/// (node2, priority 250) hears neither and is MASTER on its own; keepalived
/// does not hear it either (or it would yield to 250).
#[test]
fn vrrp_mcast_group4_interoperates_with_keepalived_and_isolates_the_default_group() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyg", 3);
    let group = "    vrrp_mcast_group4 224.0.0.33\n";
    c.start_keepalived(
        0,
        &format!(
            "{}{}",
            global_defs(0, group),
            vrrp_instance("VI_1", 51, 200, &[VIP1], "")
        ),
    );
    c.start_baton(
        1,
        &format!(
            "{}{}",
            global_defs(1, group),
            vrrp_instance("VI_1", 51, 100, &[VIP1], "")
        ),
    );
    c.start_baton(
        2,
        &format!(
            "{}{}",
            global_defs(2, ""),
            vrrp_instance("VI_1", 51, 250, &[VIP1], "")
        ),
    );
    let node0 = IpAddr::V4(c.lab.node_addr4(0));
    c.wait(ELECTION, "keepalived MASTER, baton node1 its BACKUP", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.instance(1, "VI_1")
                .is_some_and(|s| s.state == State::Backup && s.master == Some(node0))
            && c.state(2, "VI_1") == Some(State::Master)
    });
    c.stays(STEADY, "the two groups stay apart", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.state(2, "VI_1") == Some(State::Master)
    });
    let heard = c.instance(2, "VI_1").map(|s| s.rx.accepted);
    assert_eq!(heard, Some(0), "node2 heard no advert\n{}", c.context());
    assert!(
        c.instance(1, "VI_1").is_some_and(|s| s.rx.accepted > 5),
        "node1 hears keepalived on 224.0.0.33\n{}",
        c.context()
    );
}

/// The same for IPv6 with `vrrp_mcast_group6 ff02::33`: keepalived and
/// baton on it are one router; a baton on ff02::12 hears neither.
#[test]
fn vrrp_mcast_group6_interoperates_with_keepalived_and_isolates_the_default_group() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bky6", 3);
    let group = "    vrrp_mcast_group6 ff02::33\n";
    let v6 = |i: usize, extra: &str, priority: u8| {
        format!(
            "{}vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 51\n    priority {priority}\n    advert_int 0.1\n    \
             virtual_ipaddress {{\n        fd00:77::100/64\n    }}\n}}\n",
            global_defs(i, extra)
        )
    };
    c.start_keepalived(0, &v6(0, group, 200));
    c.start_baton(1, &v6(1, group, 100));
    c.start_baton(2, &v6(2, "", 250));
    // keepalived's advert source: node0's link-local address.
    let node0 = c
        .lab
        .addresses(c.lab.node_ns(0), "eth0")
        .expect("node0's addresses")
        .into_iter()
        .map(|a| a.addr)
        .find(|a| matches!(a, IpAddr::V6(v) if v.segments()[0] == 0xfe80))
        .expect("node0 has a link-local address");
    let follows_node0 = |c: &Case| {
        c.instance(1, "VI_1")
            .is_some_and(|s| s.state == State::Backup && s.master == Some(node0))
    };
    c.wait(ELECTION, "keepalived MASTER, baton node1 its BACKUP", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && follows_node0(c)
            && c.state(2, "VI_1") == Some(State::Master)
    });
    c.stays(STEADY, "the two groups stay apart", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && follows_node0(c)
            && c.state(2, "VI_1") == Some(State::Master)
    });
    assert_eq!(
        c.instance(2, "VI_1").map(|s| s.rx.accepted),
        Some(0),
        "node2 heard no advert\n{}",
        c.context()
    );
}

/// The own interface goes down: with `dont_track_primary` baton (node0)
/// and keepalived (node1) stay MASTER, as keepalived's "Ignore VRRP
/// interface faults"; baton without it (node2) goes to FAULT.
#[test]
fn dont_track_primary_ignores_the_own_interface_going_down() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyd", 3);
    let dont = "    dont_track_primary\n";
    c.start_baton(
        0,
        &format!(
            "{}{}",
            global_defs(0, ""),
            vrrp_instance("VI_1", 51, 200, &[VIP1], dont)
        ),
    );
    c.start_keepalived(
        1,
        &format!(
            "{}{}",
            global_defs(1, ""),
            vrrp_instance("VI_2", 52, 200, &[VIP2], dont)
        ),
    );
    c.start_baton(
        2,
        &format!(
            "{}{}",
            global_defs(2, ""),
            vrrp_instance("VI_3", 53, 200, &[Ipv4Addr::new(192, 168, 77, 102)], "")
        ),
    );
    c.wait(ELECTION, "every node is MASTER of its own router", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_2") == Some(State::Master)
            && c.state(2, "VI_3") == Some(State::Master)
    });
    for i in 0..3 {
        c.lab.set_link(i, false).expect("eth0 down");
    }
    c.wait(
        Duration::from_secs(3),
        "node2 (no dont_track_primary) faults",
        |c| c.state(2, "VI_3") == Some(State::Fault),
    );
    c.stays(STEADY, "dont_track_primary keeps MASTER", |c| {
        c.state(0, "VI_1") == Some(State::Master) && c.state(1, "VI_2") == Some(State::Master)
    });
    for i in 0..3 {
        c.lab.set_link(i, true).expect("eth0 up");
    }
}

/// keepalived (node0) is master for {VIP1}; batons follow it, node1 with
/// `skip_check_adv_addr`, node2 without. keepalived is reloaded with
/// {VIP1, VIP2}: node2 drops its adverts (counted as addr_list_mismatch,
/// as keepalived would: its master-down timer runs); node1 keeps following
/// the master it already checked, past its own master-down interval.
#[test]
fn skip_check_adv_addr_follows_a_checked_master_whose_list_changed() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkya", 3);
    // 2 s adverts: a keepalived reload stops its adverts for longer than
    // a 100 ms router's master-down interval, and node2 must be stopped
    // before its master-down interval (6.4 s) runs out: a keepalived
    // master that hears another master's adverts, even ones it drops,
    // restarts its own advert timer on each (checked: 2.2.7 fell silent),
    // so a second master would silence it.
    let slow = |conf: String| conf.replace("advert_int 0.1", "advert_int 2");
    let k = |vips: &[Ipv4Addr]| {
        slow(format!(
            "{}{}",
            global_defs(0, ""),
            vrrp_instance("VI_1", 51, 200, vips, "")
        ))
    };
    c.start_keepalived(0, &k(&[VIP1]));
    c.start_baton(
        1,
        &slow(format!(
            "{}{}",
            global_defs(1, ""),
            vrrp_instance("VI_1", 51, 100, &[VIP1], "    skip_check_adv_addr\n")
        )),
    );
    c.start_baton(
        2,
        &slow(format!(
            "{}{}",
            global_defs(2, ""),
            vrrp_instance("VI_1", 51, 50, &[VIP1], "")
        )),
    );
    let node0 = IpAddr::V4(c.lab.node_addr4(0));
    let follows = |c: &Case, i: usize| {
        c.instance(i, "VI_1")
            .is_some_and(|s| s.state == State::Backup && s.master == Some(node0))
    };
    c.wait(ELECTION, "both batons follow keepalived", |c| {
        c.state(0, "VI_1") == Some(State::Master) && follows(c, 1) && follows(c, 2)
    });
    assert_eq!(c.drops(2, "VI_1", "addr_list_mismatch"), 0);
    c.write_conf(0, &k(&[VIP1, VIP2]));
    c.signal(0, Signal::SIGHUP);
    c.wait(
        Duration::from_secs(6),
        "node2 drops the new list twice",
        |c| c.drops(2, "VI_1", "addr_list_mismatch") >= 2,
    );
    assert_eq!(c.state(2, "VI_1"), Some(State::Backup));
    c.stop(2);
    // 8 s: longer than node1's master-down interval (6.4 s).
    c.stays(
        Duration::from_secs(8),
        "node1 keeps following keepalived",
        |c| follows(c, 1),
    );
    assert_eq!(
        c.drops(1, "VI_1", "addr_list_mismatch"),
        0,
        "{}",
        c.context()
    );
    assert!(
        c.lab.log(0).contains("Reload"),
        "keepalived reloaded\n{}",
        c.context()
    );
}

/// `net_namespace` names node0's namespace; baton is started in the
/// bridge namespace (which has no eth0) and runs in node0's.
#[test]
fn net_namespace_runs_the_agent_in_the_named_namespace() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyn", 1);
    let ns = c.lab.node_ns(0).to_string();
    let bridge = c.lab.bridge_ns().to_string();
    c.start_baton_in(
        0,
        &bridge,
        &format!(
            "{}{}",
            global_defs(0, &format!("    net_namespace {ns}\n")),
            vrrp_instance("VI_1", 51, 200, &[VIP1], "")
        ),
    );
    c.wait(ELECTION, "MASTER with the VIP on node0's eth0", |c| {
        c.state(0, "VI_1") == Some(State::Master) && c.holders(VIP1) == vec![0]
    });
    let local = c.instance(0, "VI_1").and_then(|s| s.local_address);
    assert_eq!(local, Some(IpAddr::V4(c.lab.node_addr4(0))));
    assert!(
        !c.lab.has_addr(&bridge, IpAddr::V4(VIP1)),
        "nothing in the namespace it was started in"
    );
}

/// The scheduling policy and realtime priority of `pid`'s main thread
/// (/proc/PID/stat fields 41 and 40).
fn sched_of(pid: u32) -> Option<(u32, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After the command: field 3 is fields[0]; 40 and 41 are [37], [38].
    Some((fields.get(38)?.parse().ok()?, fields.get(37)?.parse().ok()?))
}

const SCHED_OTHER: u32 = 0;
const SCHED_RR: u32 = 2;

/// keepalived's condition: the loop wakes more than min_auto_priority_delay
/// (1 s) after a timer was due. SIGSTOP for 1.5 s makes exactly that; each
/// such wake raises SCHED_RR one step, up to max_auto_priority (2), and
/// the agent keeps running its router.
#[test]
fn max_auto_priority_switches_to_sched_rr_when_the_loop_runs_late() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyp", 1);
    c.start_baton(
        0,
        &format!(
            "{}{}",
            global_defs(0, "    max_auto_priority 2\n"),
            vrrp_instance("VI_1", 51, 200, &[VIP1], "")
        ),
    );
    c.wait(ELECTION, "MASTER", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    let pid = c.pid(0);
    assert_eq!(sched_of(pid), Some((SCHED_OTHER, 0)), "normal at start");
    c.stays(STEADY, "an on-time loop stays normal", |_| {
        sched_of(pid) == Some((SCHED_OTHER, 0))
    });
    for expected in [1, 2, 2] {
        c.signal(0, Signal::SIGSTOP);
        std::thread::sleep(Duration::from_millis(1500));
        c.signal(0, Signal::SIGCONT);
        c.wait(
            Duration::from_secs(3),
            &format!("SCHED_RR at priority {expected}"),
            |_| sched_of(pid) == Some((SCHED_RR, expected)),
        );
    }
    c.wait(ELECTION, "still MASTER and answering", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    let log = c.lab.log(0);
    assert_eq!(log.matches("A thread timer expired").count(), 3, "{log}");
    assert!(log.contains("Set realtime priority 2"), "{log}");
    assert!(!log.contains("Set realtime priority 3"), "{log}");
}

/// `vrrp_rt_priority 5`: SCHED_RR at 5 from the start (the loop's
/// thread, which /proc/PID/stat shows), and the router runs.
#[test]
fn vrrp_rt_priority_runs_the_loop_realtime_from_the_start() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyr", 1);
    c.start_baton(
        0,
        &format!(
            "{}{}",
            global_defs(0, "    vrrp_rt_priority 5\n"),
            vrrp_instance("VI_1", 51, 200, &[VIP1], "")
        ),
    );
    assert_eq!(sched_of(c.pid(0)), Some((SCHED_RR, 5)), "{}", c.context());
    c.wait(ELECTION, "MASTER", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    c.stays(STEADY, "still MASTER under SCHED_RR", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
}

/// A `vrrp_sync_group` tracks `chk` (a flag file): it failing on node0
/// faults both members there and moves both to node1.
#[test]
fn a_sync_groups_track_script_faults_and_moves_the_whole_group() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("bkyt", 2);
    let conf = |c: &Case, i: usize, priority: u8| {
        let flag = c.path(&format!("healthy{i}"));
        format!(
            "{}vrrp_script chk {{\n    script \"/bin/test -f {}\"\n    interval 0.1\n    \
             timeout 2\n    rise 1\n    fall 1\n}}\n\n\
             vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n    \
             track_script {{\n        chk\n    }}\n}}\n\n{}{}",
            global_defs(i, ""),
            flag.display(),
            vrrp_instance("VI_1", 51, priority, &[VIP1], ""),
            vrrp_instance("VI_2", 52, priority, &[VIP2], "")
        )
    };
    for i in 0..2 {
        fs::write(c.path(&format!("healthy{i}")), "").expect("flag file");
    }
    let (c0, c1) = (conf(&c, 0, 200), conf(&c, 1, 100));
    c.start_baton(0, &c0);
    c.start_baton(1, &c1);
    c.wait(ELECTION, "node0 holds the group", |c| {
        c.holders(VIP1) == vec![0] && c.holders(VIP2) == vec![0]
    });
    fs::remove_file(c.path("healthy0")).expect("removing node0's flag");
    c.wait(Duration::from_secs(3), "the group moved to node1", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
            && c.state(0, "VI_2") == Some(State::Fault)
            && c.holders(VIP1) == vec![1]
            && c.holders(VIP2) == vec![1]
    });
    let faults = c.instance(0, "VI_2").map(|s| s.faults).unwrap_or_default();
    assert!(
        faults
            .iter()
            .any(|f| f == "sync group G: script chk failed"),
        "{faults:?}"
    );
    fs::write(c.path("healthy0"), "").expect("restoring node0's flag");
    c.wait(Duration::from_secs(3), "the group back on node0", |c| {
        c.holders(VIP1) == vec![0] && c.holders(VIP2) == vec![0]
    });
}
