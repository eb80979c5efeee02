//! End-to-end tests of `baton run`: real processes in network namespaces,
//! real VRRP on a bridged layer 2, a client pinging the VIP.
//!
//! ```text
//!   node0 (.11)   node1 (.12)   node2 (.13)       client (.200)
//!   baton run     baton run     baton run         Prober / injector
//!       |             |             |                   |
//!   +---+-------------+-------------+-------------------+---+
//!   |              bridge namespace (br0)                   |
//!   +-------------------------------------------------------+
//! ```
//!
//! Each test builds its own [`Lab`] (unique names, torn down on drop) and
//! needs root: without it a test prints "skipped: needs root" and passes,
//! except under `CI=true`, where CI is expected to run as root and a skip
//! would hide a regression. Adverts are 100 ms (v3) so that a master-down
//! interval is about 340 ms.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use baton::agent::control::{InstanceStatus, Status};
use baton::lab::probe::Prober;
use baton::lab::{self, Lab};
use baton::vrrp::State;
use baton::wire::vrrp::{Repr, V3Checksum, Version};
use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VRID: u8 = 51;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x100);
const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// Long enough for a process to start and win an election (~350 ms).
const ELECTION: Duration = Duration::from_secs(5);
/// Long enough for a failover (master down ~340 ms) on a loaded machine.
const FAILOVER: Duration = Duration::from_secs(3);
/// Master-down interval of node1 (priority 150) at 100 ms adverts:
/// 3 * 100 ms + skew, (256 - 150) * 100 ms / 256 = 41 ms.
const MASTER_DOWN: Duration = Duration::from_millis(341);

/// One `[[instance]]` table.
#[derive(Debug, Clone)]
struct Vi {
    priority: u8,
    preempt: bool,
    vip: &'static str,
    version: u8,
    advert_interval: &'static str,
    /// Unicast mode with these peers when not empty.
    unicast_peers: Vec<Ipv4Addr>,
    /// `vip_lease` when set (else the default, "auto").
    vip_lease: Option<&'static str>,
}

impl Vi {
    fn v4(priority: u8) -> Vi {
        Vi {
            priority,
            preempt: true,
            vip: "192.168.77.100/24",
            version: 3,
            advert_interval: "100ms",
            unicast_peers: Vec::new(),
            vip_lease: None,
        }
    }

    /// VIPs without a lease (keepalived's behaviour).
    fn forever(self) -> Vi {
        Vi {
            vip_lease: Some("0"),
            ..self
        }
    }

    fn unicast(self, peers: Vec<Ipv4Addr>) -> Vi {
        Vi {
            unicast_peers: peers,
            ..self
        }
    }

    fn v6(priority: u8) -> Vi {
        Vi {
            vip: "fd00:77::100/64",
            ..Vi::v4(priority)
        }
    }

    fn nopreempt(self) -> Vi {
        Vi {
            preempt: false,
            ..self
        }
    }

    fn toml(&self) -> String {
        let mut t = self.base_toml();
        if !self.unicast_peers.is_empty() {
            let peers: Vec<String> = self
                .unicast_peers
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect();
            let _ = writeln!(t, "unicast_peers = [{}]", peers.join(", "));
        }
        if let Some(lease) = self.vip_lease {
            let _ = writeln!(t, "vip_lease = {lease}");
        }
        t
    }

    fn base_toml(&self) -> String {
        format!(
            "[[instance]]\n\
             name = \"{NAME}\"\n\
             interface = \"eth0\"\n\
             vrid = {VRID}\n\
             priority = {}\n\
             version = {}\n\
             advert_interval = \"{}\"\n\
             preempt = {}\n\
             preempt_delay = \"0s\"\n\
             virtual_ips = [\"{}\"]\n",
            self.priority, self.version, self.advert_interval, self.preempt, self.vip
        )
    }
}

/// A lab with baton nodes and one VIP under watch.
struct Case {
    lab: Lab,
    vip: IpAddr,
    /// The running `baton run` of each node, if any.
    pids: Vec<Option<u32>>,
}

impl Case {
    fn new(tag: &str, nodes: usize, vip: IpAddr) -> Case {
        let lab = Lab::new(tag, nodes).expect("building the namespace lab");
        Case {
            lab,
            vip,
            pids: vec![None; nodes],
        }
    }

    fn start(&mut self, i: usize, vi: &Vi) {
        assert!(self.pids[i].is_none(), "node{i} already runs baton");
        let pid = self
            .lab
            .start_baton(Path::new(BATON), i, &vi.toml())
            .unwrap_or_else(|e| panic!("starting baton on node{i}: {e}"));
        self.pids[i] = Some(pid);
        if let Err(e) = self.lab.wait_for_agent(i, pid, ELECTION) {
            if e.contains("exited") {
                self.pids[i] = None;
            }
            panic!("{e}\n{}", self.context());
        }
    }

    fn pid(&self, i: usize) -> u32 {
        self.pids[i].unwrap_or_else(|| panic!("node{i} runs no baton"))
    }

    fn signal(&mut self, i: usize, sig: Signal) {
        let pid = self.pid(i);
        self.lab
            .signal(pid, sig)
            .unwrap_or_else(|e| panic!("{sig} to node{i} (pid {pid}): {e}"));
    }

    /// Reap node i's baton after a signal; its exit code.
    fn reap(&mut self, i: usize, timeout: Duration) -> Option<i32> {
        let pid = self.pid(i);
        let code = self
            .lab
            .wait(pid, timeout)
            .unwrap_or_else(|e| panic!("waiting for node{i}: {e}"));
        if code.is_some() {
            self.pids[i] = None;
        }
        code
    }

    fn holds(&self, i: usize) -> bool {
        self.lab.has_addr(self.lab.node_ns(i), self.vip)
    }

    fn holders(&self) -> Vec<usize> {
        self.lab.holders(self.vip)
    }

    fn state(&self, i: usize) -> Option<State> {
        self.lab.state(i, NAME)
    }

    fn masters(&self) -> Vec<usize> {
        self.lab.masters(NAME)
    }

    fn instance(&self, i: usize) -> InstanceStatus {
        let status = self
            .lab
            .status(i)
            .unwrap_or_else(|| panic!("node{i} does not answer\n{}", self.context()));
        status
            .instances
            .into_iter()
            .find(|s| s.name == NAME)
            .unwrap_or_else(|| panic!("node{i} has no instance {NAME}\n{}", self.context()))
    }

    /// Poll `cond` every few ms until it holds; fail with the lab's
    /// context when it does not within `timeout`. Returns the time taken.
    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut(&Case) -> bool) -> Duration {
        lab::wait_until(self, timeout, what, cond, Case::context)
    }

    /// `cond` holds for the whole of `period` (checked every few ms).
    fn stays(&self, period: Duration, what: &str, cond: impl FnMut(&Case) -> bool) {
        lab::holds_for(self, period, what, cond, Case::context)
    }

    /// Who holds the VIP, every node's state, and every node's log.
    fn context(&self) -> String {
        let mut out = format!("VIP {} held by {:?}\n", self.vip, self.holders());
        for i in 0..self.lab.nodes() {
            let _ = writeln!(out, "node{i}: {:?}", self.state(i));
        }
        for i in 0..self.lab.nodes() {
            let log = self.lab.log(i);
            let tail = &log[log.len().saturating_sub(6000)..];
            let _ = writeln!(out, "----- node{i} log -----\n{tail}");
        }
        out
    }

    /// Rewrite node i's config (`[global]` kept) without restarting it.
    fn rewrite_config(&self, i: usize, vi: &Vi) {
        let f = self.lab.node_files(i);
        std::fs::write(
            &f.config,
            format!("{}{}", self.lab.global_toml(i), vi.toml()),
        )
        .expect("writing the new config");
    }
}

/// Run a program inside a namespace; its output whatever the exit code.
fn run_in(ns: &str, program: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program} in {ns}: {e}"))
}

fn ping_report(client_ns: &str, for_how_long: Duration) -> baton::lab::probe::ProbeReport {
    let prober = Prober::start(Some(client_ns), VIP4, Duration::from_millis(10))
        .expect("starting the prober");
    std::thread::sleep(for_how_long);
    prober.finish().expect("prober report")
}

// ---------------------------------------------------------------------------
// 1. Election
// ---------------------------------------------------------------------------

#[test]
fn three_nodes_elect_the_highest_priority() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("el", 3, VIP4.into());
    for (i, prio) in [100, 200, 150].into_iter().enumerate() {
        c.start(i, &Vi::v4(prio));
    }
    c.wait(
        ELECTION,
        "node1 (priority 200) is the only master and holder",
        |c| c.masters() == [1] && c.holders() == [1],
    );
    c.stays(
        Duration::from_millis(500),
        "one master (node1), one holder (node1)",
        |c| c.masters() == [1] && c.holders() == [1],
    );
    assert_eq!(c.state(0), Some(State::Backup), "{}", c.context());
    assert_eq!(c.state(2), Some(State::Backup), "{}", c.context());

    // The CLI's JSON status, through the binary.
    for (i, want) in [(0, "BACKUP"), (1, "MASTER"), (2, "BACKUP")] {
        let socket = c.lab.node_files(i).socket;
        let out = Command::new(BATON)
            .args(["status", "--json", "-s"])
            .arg(&socket)
            .output()
            .expect("running baton status");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "baton status --json -s {} failed: {}\nstdout: {stdout}\nstderr: {}",
            socket.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("node{i}: status is not JSON ({e}):\n{stdout}"));
        // The status itself, or a reply wrapping it.
        let instances = json
            .get("instances")
            .or_else(|| json.get("status").and_then(|s| s.get("instances")))
            .and_then(|v| v.as_array())
            .unwrap_or_else(|| panic!("node{i}: no instances in the JSON status:\n{stdout}"));
        let vi = instances
            .iter()
            .find(|v| v["name"] == NAME)
            .unwrap_or_else(|| panic!("node{i}: no {NAME} in the JSON status:\n{stdout}"));
        assert_eq!(vi["state"], want, "node{i}'s JSON status:\n{stdout}");
        assert_eq!(vi["vrid"], VRID, "node{i}'s JSON status:\n{stdout}");
    }
    // Nothing in this configuration runs a command: the agent never asked
    // the name service for a script user, so none of its modules (libnss_*,
    // about 0.3 MB of a 7.7 MB agent) is mapped.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", c.pid(1))).unwrap();
    assert!(
        !maps.contains("libnss_"),
        "the agent loaded the name service's modules:\n{maps}"
    );
}

// ---------------------------------------------------------------------------
// 2. Failover on the master's link down, and preemption back
// ---------------------------------------------------------------------------

#[test]
fn master_link_down_moves_the_vip_and_clients_recover() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("ld", 3, VIP4.into());
    for (i, prio) in [100, 200, 150].into_iter().enumerate() {
        c.start(i, &Vi::v4(prio));
    }
    c.wait(ELECTION, "node1 is the only master and holder", |c| {
        c.masters() == [1] && c.holders() == [1]
    });

    let client = c.lab.client_ns().to_string();
    let prober =
        Prober::start(Some(&client), VIP4, Duration::from_millis(10)).expect("starting the prober");
    // Replies are flowing before the fault.
    std::thread::sleep(Duration::from_millis(300));

    c.lab.set_link(1, false).expect("link down on node1");
    let took = c.wait(
        FAILOVER,
        "node2 (next highest, 150) alone holds the VIP",
        |c| c.holders() == [2],
    );
    std::thread::sleep(Duration::from_millis(500));
    let during = prober.finish().expect("prober report");
    println!(
        "link down -> VIP on node2 in {took:?}; client: sent {}, received {}, lost {}, longest gap {:?}",
        during.sent,
        during.received,
        during.lost(),
        during.longest_gap
    );
    assert!(
        during.longest_gap < Duration::from_millis(1500),
        "the client saw an outage of {:?}\n{}",
        during.longest_gap,
        c.context()
    );

    let after = ping_report(&client, Duration::from_millis(1000));
    assert!(
        after.received > 0,
        "no ping replies from the VIP after the move: {after:?}\n{}",
        c.context()
    );
    assert_eq!(c.masters(), [2], "{}", c.context());
    assert_eq!(c.state(1), Some(State::Fault), "{}", c.context());
    assert!(
        !c.holds(1),
        "node1 (FAULT) still holds the VIP\n{}",
        c.context()
    );

    // Back up: priority 200 with preempt takes the VIP back.
    c.lab.set_link(1, true).expect("link up on node1");
    c.wait(
        FAILOVER,
        "node1 preempts back: only master and holder",
        |c| c.masters() == [1] && c.holders() == [1],
    );
    c.stays(
        Duration::from_millis(300),
        "node1 alone holds the VIP",
        |c| c.holders() == [1],
    );
}

// ---------------------------------------------------------------------------
// 3. SIGTERM: priority 0, fast takeover, clean exit
// ---------------------------------------------------------------------------

#[test]
fn sigterm_hands_over_within_skew_time() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("tm", 3, VIP4.into());
    for (i, prio) in [200, 150, 100].into_iter().enumerate() {
        c.start(i, &Vi::v4(prio));
    }
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });

    let sent = Instant::now();
    c.signal(0, Signal::SIGTERM);
    c.wait(FAILOVER, "node1 holds the VIP", |c| c.holds(1));
    let took = sent.elapsed();
    println!("SIGTERM -> VIP on node1 in {took:?} (master down is {MASTER_DOWN:?})");

    let code = c.reap(0, Duration::from_secs(3));
    assert_eq!(
        code,
        Some(0),
        "baton's exit code after SIGTERM\n{}",
        c.context()
    );
    assert!(
        !c.holds(0),
        "node0 kept the VIP after SIGTERM\n{}",
        c.context()
    );
    assert!(
        took < Duration::from_millis(250),
        "takeover after a priority-0 advert took {took:?}; it should take about the skew \
         time, well under the master-down interval ({MASTER_DOWN:?})\n{}",
        c.context()
    );
    c.wait(FAILOVER, "node1 is the only master and holder", |c| {
        c.masters() == [1] && c.holders() == [1]
    });
}

// ---------------------------------------------------------------------------
// 4. SIGKILL leaves the VIP; the next start cleans it up
// ---------------------------------------------------------------------------

#[test]
fn sigkill_leaves_the_vip_and_the_next_start_removes_it() {
    if !lab::require_root() {
        return;
    }
    // Without a lease, as keepalived: the kernel keeps the address for good
    // (netns_lease tests the lease).
    let mut c = Case::new("kl", 2, VIP4.into());
    c.start(0, &Vi::v4(200).forever());
    c.start(1, &Vi::v4(150).forever());
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });

    c.signal(0, Signal::SIGKILL);
    let code = c.reap(0, Duration::from_secs(3));
    assert!(code.is_some(), "node0 did not die of SIGKILL");
    c.wait(FAILOVER, "node1 takes over (master and holder)", |c| {
        c.state(1) == Some(State::Master) && c.holds(1)
    });
    // Nobody removed it: the kernel keeps answering for it on node0.
    assert!(
        c.holds(0),
        "the VIP left node0 although its baton was SIGKILLed\n{}",
        c.context()
    );

    // A restart that must not win (lower priority) still removes the
    // leftover first.
    c.start(0, &Vi::v4(100).forever());
    c.wait(FAILOVER, "the stale VIP is gone from node0", |c| {
        !c.holds(0)
    });
    c.wait(FAILOVER, "node0 is BACKUP", |c| {
        c.state(0) == Some(State::Backup)
    });
    c.stays(
        Duration::from_millis(800),
        "node1 alone is master and holds the VIP",
        |c| c.holders() == [1] && c.masters() == [1],
    );
}

// ---------------------------------------------------------------------------
// 5. Preemption and nopreempt
// ---------------------------------------------------------------------------

#[test]
fn higher_priority_returning_preempts() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("pr", 2, VIP4.into());
    c.start(0, &Vi::v4(200));
    c.start(1, &Vi::v4(100));
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });

    // SIGINT is a shutdown like SIGTERM (the SIGTERM test covers TERM).
    c.signal(0, Signal::SIGINT);
    assert_eq!(
        c.reap(0, Duration::from_secs(3)),
        Some(0),
        "baton's exit code after SIGINT\n{}",
        c.context()
    );
    c.wait(FAILOVER, "node1 alone holds the VIP", |c| {
        c.holders() == [1]
    });

    c.start(0, &Vi::v4(200));
    c.wait(ELECTION, "node0 takes the VIP back", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    assert_eq!(c.state(1), Some(State::Backup), "{}", c.context());
}

#[test]
fn nopreempt_keeps_the_current_master() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("np", 2, VIP4.into());
    // Start node0 alone so that it is master before node1 appears.
    c.start(0, &Vi::v4(200).nopreempt());
    c.wait(ELECTION, "node0 is master", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    c.start(1, &Vi::v4(100).nopreempt());
    c.wait(ELECTION, "node1 is BACKUP", |c| {
        c.state(1) == Some(State::Backup)
    });

    c.signal(0, Signal::SIGTERM);
    assert_eq!(
        c.reap(0, Duration::from_secs(3)),
        Some(0),
        "{}",
        c.context()
    );
    c.wait(FAILOVER, "node1 alone holds the VIP", |c| {
        c.holders() == [1] && c.masters() == [1]
    });

    c.start(0, &Vi::v4(200).nopreempt());
    c.wait(ELECTION, "node0 is BACKUP", |c| {
        c.state(0) == Some(State::Backup)
    });
    // Several master-down intervals: no preemption may happen.
    c.stays(
        Duration::from_millis(1000),
        "node1 stays the only master and holder (nopreempt)",
        |c| c.masters() == [1] && c.holders() == [1],
    );
}

// ---------------------------------------------------------------------------
// 6. IPv6
// ---------------------------------------------------------------------------

#[test]
fn ipv6_vip_is_held_and_fails_over() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("v6", 2, VIP6.into());
    c.start(0, &Vi::v6(200));
    c.start(1, &Vi::v6(100));
    c.wait(
        ELECTION,
        "node0 is the only master and holder of the v6 VIP",
        |c| c.masters() == [0] && c.holders() == [0],
    );

    c.lab.set_link(0, false).expect("link down on node0");
    c.wait(FAILOVER, "node1 alone holds the v6 VIP", |c| {
        c.holders() == [1]
    });
    assert_eq!(c.masters(), [1], "{}", c.context());
    assert_eq!(c.state(0), Some(State::Fault), "{}", c.context());
}

#[test]
fn labels_and_excluded_addresses_follow_the_master() {
    if !lab::require_root() {
        return;
    }
    let excluded: IpAddr = Ipv4Addr::new(192, 168, 77, 150).into();
    let mut c = Case::new("lbl", 2, VIP4.into());
    for (i, prio) in [(0, 200u8), (1, 100)] {
        let toml = Vi::v4(prio).toml().replace(
            "virtual_ips = [\"192.168.77.100/24\"]",
            "virtual_ips = [\"192.168.77.100/24 label eth0:vip\"]\n\
                 virtual_ips_excluded = [\"192.168.77.150/24\"]",
        );
        let pid = c
            .lab
            .start_baton(Path::new(BATON), i, &toml)
            .expect("starting baton");
        c.pids[i] = Some(pid);
    }
    c.wait(ELECTION, "node0 holds the VIP", |c| c.holders() == [0]);
    let addrs = run_in(
        c.lab.node_ns(0),
        "ip",
        &["-o", "-4", "addr", "show", "dev", "eth0"],
    );
    let text = String::from_utf8_lossy(&addrs.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("192.168.77.100/24") && l.contains("eth0:vip")),
        "the VIP carries its label:\n{text}"
    );
    assert!(
        c.lab.has_addr(c.lab.node_ns(0), excluded),
        "excluded address configured too"
    );
    assert!(!c.lab.has_addr(c.lab.node_ns(1), excluded));
    c.lab.set_link(0, false).expect("link down on node0");
    c.wait(FAILOVER, "node1 holds both addresses", |c| {
        c.holders() == [1] && c.lab.has_addr(c.lab.node_ns(1), excluded)
    });
    assert!(
        !c.lab.has_addr(c.lab.node_ns(0), excluded),
        "removed with the VIP"
    );
}

// ---------------------------------------------------------------------------
// 7. Own fault: link down -> FAULT without VIP; link up -> BACKUP
// ---------------------------------------------------------------------------

#[test]
fn own_link_down_is_fault_and_link_up_is_backup() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("ft", 2, VIP4.into());
    c.start(0, &Vi::v4(200).nopreempt());
    c.wait(ELECTION, "node0 is master", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    c.start(1, &Vi::v4(100).nopreempt());
    c.wait(ELECTION, "node1 is BACKUP", |c| {
        c.state(1) == Some(State::Backup)
    });

    c.lab.set_link(0, false).expect("link down on node0");
    let took = c.wait(FAILOVER, "node0 is FAULT without the VIP", |c| {
        c.state(0) == Some(State::Fault) && !c.holds(0)
    });
    println!("link down -> node0 FAULT without VIP in {took:?}");
    let faulted = c.instance(0);
    println!("node0 faults: {:?}", faulted.faults);
    assert!(
        !faulted.holds_vips,
        "status says node0 holds its VIPs in FAULT"
    );
    c.wait(FAILOVER, "node1 takes over", |c| {
        c.masters() == [1] && c.holders() == [1]
    });

    c.lab.set_link(0, true).expect("link up on node0");
    c.wait(FAILOVER, "node0 is BACKUP again", |c| {
        c.state(0) == Some(State::Backup)
    });
    c.stays(
        Duration::from_millis(800),
        "node1 stays master (nopreempt) and node0 BACKUP without the VIP",
        |c| c.masters() == [1] && c.holders() == [1] && c.state(0) == Some(State::Backup),
    );
}

// ---------------------------------------------------------------------------
// 8. Bad packets are counted and change nothing
// ---------------------------------------------------------------------------

/// Send raw IPv4 packets (headers included) to 224.0.0.18 out of eth0 of
/// namespace `ns`, from a thread that enters it.
fn inject(ns: &str, packets: Vec<Vec<u8>>) -> io::Result<()> {
    inject_to(ns, packets.into_iter().map(|p| (VRRP_GROUP, p)).collect())
}

/// Send raw IPv4 packets (headers included), each to its own unicast
/// destination, out of eth0 of namespace `ns`.
fn inject_to(ns: &str, packets: Vec<(Ipv4Addr, Vec<u8>)>) -> io::Result<()> {
    let netns = std::fs::File::open(format!("/run/netns/{ns}"))?;
    std::thread::spawn(move || -> io::Result<()> {
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
        sock.set_header_included_v4(true)?;
        sock.bind_device(Some(b"eth0"))?;
        for (dst, p) in &packets {
            let to: SockAddr = SocketAddrV4::new(*dst, 0).into();
            sock.send_to(p, &to)?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("injector thread panicked"))?
}

fn dropped(rx: &baton::vrrp::RxStats, reason: &str) -> u64 {
    rx.dropped.get(reason).copied().unwrap_or(0)
}

/// Drops under `reason`: on instance VI_1, or on the interfaces (outside
/// any instance).
fn drop_count(status: &Status, reason: &str, per_instance: bool) -> u64 {
    if per_instance {
        status
            .instances
            .iter()
            .filter(|v| v.name == NAME)
            .map(|v| dropped(&v.rx, reason))
            .sum()
    } else {
        status
            .interfaces
            .iter()
            .map(|f| dropped(&f.rx, reason))
            .sum()
    }
}

#[test]
fn bad_packets_are_counted_by_reason_and_change_nothing() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("bp", 2, VIP4.into());
    c.start(0, &Vi::v4(200));
    c.start(1, &Vi::v4(100));
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });

    let client = c.lab.client_addr4();
    let advert = |vrid: u8| {
        Repr {
            version: Version::V3,
            vrid,
            // Higher than both nodes: were it accepted, it would be noticed.
            priority: 254,
            interval_cs: 10,
            addresses: vec![VIP4.into()],
            auth: None,
        }
        .to_bytes(
            client.into(),
            VRRP_GROUP.into(),
            V3Checksum::WithPseudoHeader,
        )
        .expect("building an advert")
    };
    let ip =
        |ttl: u8, payload: &[u8]| baton::wire::ip::emit_ipv4(client, VRRP_GROUP, ttl, 112, payload);
    let good = advert(VRID);
    let mut bad_sum = good.clone();
    bad_sum[6] ^= 0x5a;
    const EACH: u64 = 3;
    // Per instance (VRID 51): TTL, checksum, truncated (4 bytes: the VRID
    // byte is there, the rest of the header is not). Per interface: VRID 99.
    let cases: [(&str, Vec<u8>, bool); 4] = [
        ("bad_ttl", ip(254, &good), true),
        ("bad_checksum", ip(255, &bad_sum), true),
        ("truncated", ip(255, &good[..4]), true),
        ("unknown_vrid", ip(255, &advert(99)), false),
    ];

    let before: Vec<_> = (0..2).map(|i| c.lab.status(i).expect("status")).collect();
    let mut packets = Vec::new();
    for _ in 0..EACH {
        packets.extend(cases.iter().map(|(_, p, _)| p.clone()));
    }
    inject(c.lab.client_ns(), packets).expect("injecting packets from the client");

    for (i, was) in before.iter().enumerate() {
        let counted = |c: &Case| {
            let now = c.lab.status(i).expect("status");
            cases.iter().all(|&(reason, _, per_instance)| {
                drop_count(&now, reason, per_instance)
                    >= drop_count(was, reason, per_instance) + EACH
            })
        };
        let ok = c.lab.wait_for(Duration::from_secs(2), |_| counted(&c));
        let now = c.lab.status(i).expect("status");
        let vi = now.instances.iter().find(|v| v.name == NAME);
        assert!(
            ok,
            "node{i} did not count {EACH} of each bad packet under its reason\n\
             instance rx: {:?}\ninterfaces: {:?}\n{}",
            vi.map(|v| &v.rx),
            now.interfaces,
            c.context()
        );
    }

    let after: Vec<_> = (0..2).map(|i| c.instance(i)).collect();
    let was: Vec<_> = before
        .iter()
        .map(|s| {
            s.instances
                .iter()
                .find(|v| v.name == NAME)
                .cloned()
                .expect("instance")
        })
        .collect();
    for i in 0..2 {
        assert_eq!(
            (after[i].state, after[i].became_master),
            (was[i].state, was[i].became_master),
            "node{i} changed state after bad packets\n{}",
            c.context()
        );
    }
    assert_eq!(
        after[0].rx.accepted, was[0].rx.accepted,
        "the master accepted an injected packet; rx before {:?} after {:?}",
        was[0].rx, after[0].rx
    );
    assert_eq!(c.masters(), [0], "{}", c.context());
    assert_eq!(c.holders(), [0], "{}", c.context());
}

// ---------------------------------------------------------------------------
// 9. SIGHUP reload
// ---------------------------------------------------------------------------

#[test]
fn sighup_reload_keeps_the_master_and_applies_changes() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("hu", 2, VIP4.into());
    c.start(0, &Vi::v4(200));
    c.start(1, &Vi::v4(150));
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    let before = c.instance(0);

    // Every address change on node0's eth0, however brief, is an event.
    let monitor_log: PathBuf = c.lab.dir().join("node0-addr-monitor.log");
    let ns0 = c.lab.node_ns(0).to_string();
    let monitor = c
        .lab
        .spawn(
            &ns0,
            Path::new("ip"),
            &["-o", "monitor", "address"],
            &monitor_log,
        )
        .expect("starting ip monitor");
    std::thread::sleep(Duration::from_millis(300));

    let reloads = |c: &Case| c.lab.log(0).matches("reload").count();
    let reloads_before = reloads(&c);
    c.signal(0, Signal::SIGHUP);
    c.stays(
        Duration::from_millis(1500),
        "node0 holds the VIP throughout an unchanged reload",
        |c| c.holds(0),
    );
    assert!(
        reloads(&c) > reloads_before,
        "node0's log does not mention the reload\n{}",
        c.context()
    );
    let flaps = vip_deletions(&monitor_log);
    assert!(
        flaps.is_empty(),
        "the VIP was removed during an unchanged reload:\n{}\n{}",
        flaps.join("\n"),
        c.context()
    );
    let after = c.instance(0);
    assert_eq!(after.state, State::Master, "{}", c.context());
    assert_eq!(
        after.became_master,
        before.became_master,
        "node0 left and re-entered MASTER during the reload\n{}",
        c.context()
    );
    assert_eq!(c.holders(), [0], "{}", c.context());

    // Now below node1: the VIP moves.
    c.rewrite_config(0, &Vi::v4(100));
    c.signal(0, Signal::SIGHUP);
    c.wait(
        FAILOVER,
        "node1 alone holds the VIP after node0's priority drop",
        |c| c.holders() == [1] && c.masters() == [1],
    );
    c.wait(FAILOVER, "node0 is BACKUP at priority 100", |c| {
        c.instance(0).base_priority == 100 && c.state(0) == Some(State::Backup)
    });
    // The monitor was watching all along: it saw this removal.
    c.wait(FAILOVER, "ip monitor reports the VIP's removal", |_| {
        !vip_deletions(&monitor_log).is_empty()
    });
    let _ = c.lab.signal(monitor, Signal::SIGTERM);
    let _ = c.lab.wait(monitor, Duration::from_secs(2));
}

/// `ip -o monitor address` lines reporting the IPv4 VIP's removal.
fn vip_deletions(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Deleted") && l.contains(&format!(" {VIP4}/")))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// 10. baton check
// ---------------------------------------------------------------------------

#[test]
fn check_accepts_shipped_configs_and_points_at_errors() {
    if !lab::require_root() {
        return;
    }
    // Run inside a node namespace so that `eth0` exists, as on a real host.
    let lab = Lab::new("ck", 1).expect("building the namespace lab");
    let ns = lab.node_ns(0).to_string();

    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&conf)
        .unwrap_or_else(|e| panic!("reading {}: {e}", conf.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", conf.display());
    for file in &files {
        let path = file.to_str().expect("utf-8 path");
        // The examples name scripts, users and interfaces of another host.
        let out = run_in(&ns, BATON, &["check", "--no-host", "-f", path]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "baton check --no-host -f {path}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The configs these tests run with are valid too.
    for (k, vi) in [Vi::v4(150), Vi::v6(100).nopreempt()].iter().enumerate() {
        let file = lab.dir().join(format!("ours{k}.toml"));
        std::fs::write(&file, format!("{}{}", lab.global_toml(0), vi.toml()))
            .expect("writing a config");
        let path = file.to_str().expect("utf-8 path");
        let out = run_in(&ns, BATON, &["check", "-f", path]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "baton check on the tests' own config {vi:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let broken = lab.dir().join("typo.toml");
    let text = format!(
        "[global]\nrouter_id = \"t\"\n\n{}",
        Vi::v4(150).toml().replace("priority =", "priorty =")
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("priorty"))
        .expect("the typo is in the text")
        + 1;
    std::fs::write(&broken, &text).expect("writing the broken config");
    let path = broken.to_str().expect("utf-8 path");
    let out = run_in(&ns, BATON, &["check", "-f", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "baton check on a typo'd key\nstderr: {stderr}"
    );
    let at = format!("{path}:{line}:");
    let col_follows = stderr.match_indices(&at).any(|(pos, _)| {
        stderr[pos + at.len()..]
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_digit())
    });
    assert!(
        col_follows,
        "stderr does not point at {path}:{line}:COL (the `priorty` key)\nstderr: {stderr}"
    );
}

/// With unicast peers, a third host's adverts (priority 255 to take over,
/// priority 0 to make the master look gone; on-link TTL 255 and routed TTL
/// 64) move nothing and are counted as `unknown_unicast_src` on both nodes.
#[test]
fn unicast_adverts_from_strangers_are_dropped_and_counted() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("us", 2, VIP4.into());
    let (a0, a1) = (c.lab.node_addr4(0), c.lab.node_addr4(1));
    c.start(0, &Vi::v4(200).unicast(vec![a1]));
    c.start(1, &Vi::v4(100).unicast(vec![a0]));
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    let before: Vec<InstanceStatus> = (0..2).map(|i| c.instance(i)).collect();

    let client = c.lab.client_addr4();
    let mut packets = Vec::new();
    for dst in [a0, a1] {
        for priority in [255u8, 0] {
            let advert = Repr {
                version: Version::V3,
                vrid: VRID,
                priority,
                interval_cs: 10,
                addresses: vec![VIP4.into()],
                auth: None,
            }
            .to_bytes(client.into(), dst.into(), V3Checksum::WithPseudoHeader)
            .expect("building an advert");
            for ttl in [255u8, 64] {
                let ip = baton::wire::ip::emit_ipv4(client, dst, ttl, 112, &advert);
                // A burst, as a stranger would send every 10 ms.
                for _ in 0..5 {
                    packets.push((dst, ip.clone()));
                }
            }
        }
    }
    inject_to(c.lab.client_ns(), packets).expect("injecting adverts from the client");

    for (i, was) in before.iter().enumerate() {
        let counted = |c: &Case| {
            dropped(&c.instance(i).rx, "unknown_unicast_src")
                >= dropped(&was.rx, "unknown_unicast_src") + 20
        };
        assert!(
            c.lab.wait_for(Duration::from_secs(2), |_| counted(&c)),
            "node{i} did not count the stranger's 20 adverts: {:?}\n{}",
            c.instance(i).rx,
            c.context()
        );
    }
    c.stays(
        MASTER_DOWN * 2,
        "node0 stays the only master and holder",
        |c| c.masters() == [0] && c.holders() == [0],
    );
    for (i, was) in before.iter().enumerate() {
        let now = c.instance(i);
        assert_eq!(
            (now.state, now.became_master),
            (was.state, was.became_master),
            "node{i} moved\n{}",
            c.context()
        );
    }
}

/// A second `baton run` on the same state directory stops at once with a
/// clear error, before it touches anything: the first keeps its VIP, its
/// role and its control socket.
#[test]
fn a_second_agent_on_the_same_state_directory_refuses_to_start() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case::new("lk", 2, VIP4.into());
    c.start(0, &Vi::v4(200));
    c.start(1, &Vi::v4(100));
    c.wait(ELECTION, "node0 is the only master and holder", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    let before = c.instance(0);
    let files = c.lab.node_files(0);
    let cfg = files.config.display().to_string();
    let second_log = c.lab.dir().join("second.log");
    let ns = c.lab.node_ns(0).to_string();
    let pid = c
        .lab
        .spawn(&ns, Path::new(BATON), &["run", "-f", &cfg], &second_log)
        .expect("starting a second baton");
    let code = c
        .lab
        .wait(pid, Duration::from_secs(5))
        .expect("waiting for the second baton");
    let log = std::fs::read_to_string(&second_log).unwrap_or_default();
    assert!(
        code.is_some_and(|c| c != 0),
        "the second baton did not exit with an error ({code:?}):\n{log}"
    );
    assert!(log.contains("another baton"), "unclear error:\n{log}");
    c.stays(MASTER_DOWN * 2, "node0 keeps the VIP and its role", |c| {
        c.masters() == [0] && c.holders() == [0]
    });
    let after = c.instance(0);
    assert_eq!(
        (after.state, after.became_master),
        (before.state, before.became_master),
        "{}",
        c.context()
    );
    // Its control socket is the first agent's, still answering.
    assert!(
        c.lab.status(0).is_some(),
        "the first agent's socket is gone"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files.socket)
        .expect("control socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");
}
