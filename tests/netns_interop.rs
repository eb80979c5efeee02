//! Interoperability with keepalived: mixed virtual routers of keepalived
//! 2.2.x and baton nodes in network namespaces, each node fed the very same
//! keepalived.conf text whichever implementation runs it.
//!
//! ```text
//!   node0 (.11)        node1 (.12)        node2 (.13)      client (.200)
//!   keepalived -P      baton run          either           (unused here)
//!   -f node0.conf      -f node1.conf
//!       |                  |                  |                 |
//!   +---+------------------+------------------+-----------------+---+
//!   |                  bridge namespace (br0)                       |
//!   +---------------------------------------------------------------+
//! ```
//!
//! Both implementations are started with the same keepalived command line
//! (`-n -l -D -G -P -f CONF -p -r -c -b PIDFILES`), as a Debian unit would.
//!
//! What is checked: the highest priority wins whichever side runs it, with
//! exactly one VIP holder in steady state; failover on link down and on a
//! clean stop (priority 0) both ways; and that neither side complains
//! about the other's packets (keepalived's log, baton's drop counters).
//! Takeover times are printed, and asserted only against generous bounds.
//!
//! Each test builds its own [`Lab`] and needs root: without it a test prints
//! "skipped: needs root" and passes, except under `CI=true`. It also needs
//! keepalived (Debian package `keepalived`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::control::{self, InstanceStatus, Request, Status};
use baton::lab::{self, Lab};
use baton::vrrp::State;
use baton::wire::ah;
use baton::wire::vrrp::{Repr, Version};
use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, Socket, Type};

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VRID: u8 = 51;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x100);
/// The virtual router's link-local address (listed first when asked for).
const VIP6_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x51);
const AUTH_PASS: &str = "s3cret";

/// How long steady state must hold.
const STEADY: Duration = Duration::from_millis(1500);

fn keepalived_bin() -> PathBuf {
    ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("keepalived"))
}

/// Which implementation runs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Keepalived,
    Baton,
}
use Impl::{Baton, Keepalived};

/// The virtual router's settings, shared by every node.
#[derive(Debug, Clone, Copy)]
struct Router {
    version: u8,
    /// keepalived's `advert_int`, in seconds as written.
    advert_int: &'static str,
    unicast: bool,
    /// v2 `auth_type PASS`.
    auth: bool,
    /// With `auth`: `auth_type AH` instead of PASS.
    ah: bool,
    ipv6: bool,
    /// IPv6 only: a link-local VIP listed first, as RFC 5798 wants the
    /// first advertised address to be (keepalived warns without one).
    link_local_first: bool,
}

impl Router {
    /// VRRPv2, 1 s adverts: master down 3 s + skew.
    const V2: Router = Router {
        version: 2,
        advert_int: "1",
        unicast: false,
        auth: false,
        ah: false,
        ipv6: false,
        link_local_first: false,
    };
    /// VRRPv3, 100 ms adverts: master down ~340 ms.
    const V3: Router = Router {
        version: 3,
        advert_int: "0.1",
        ..Router::V2
    };

    fn advert(&self) -> Duration {
        Duration::from_secs_f64(self.advert_int.parse().expect("advert_int"))
    }

    /// Master-down interval of a backup at `priority` (v2 and v3 alike at
    /// these round intervals): 3 * interval + (256 - priority) / 256 * interval.
    fn master_down(&self, priority: u8) -> Duration {
        self.advert() * 3 + self.skew(priority)
    }

    fn skew(&self, priority: u8) -> Duration {
        self.advert() * (256 - u32::from(priority)) / 256
    }

    /// Time to start and win an election: a node starts as backup and
    /// waits a master-down interval, and a preemption may follow.
    fn election(&self) -> Duration {
        Duration::from_secs(3) + self.master_down(1) * 2
    }

    /// A failover after a silent master: master down plus slack.
    fn failover(&self) -> Duration {
        Duration::from_secs(2) + self.master_down(1)
    }

    fn vip(&self) -> IpAddr {
        if self.ipv6 {
            VIP6.into()
        } else {
            VIP4.into()
        }
    }
}

/// One running agent.
#[derive(Debug, Clone, Copy)]
struct Running {
    kind: Impl,
    pid: u32,
}

/// A lab whose nodes run keepalived or baton on the same keepalived.conf.
struct Cluster {
    lab: Lab,
    router: Router,
    agents: Vec<Option<Running>>,
    /// Each node's `auth_pass`.
    auth_pass: Vec<&'static str>,
}

impl Cluster {
    fn new(tag: &str, nodes: usize, router: Router) -> Cluster {
        let lab = Lab::new(tag, nodes).expect("building the namespace lab");
        Cluster {
            lab,
            router,
            agents: vec![None; nodes],
            auth_pass: vec![AUTH_PASS; nodes],
        }
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.lab.dir().join(format!("node{i}.conf"))
    }

    fn pid_file(&self, i: usize, what: &str) -> PathBuf {
        self.lab.dir().join(format!("node{i}-{what}.pid"))
    }

    /// Node i's baton runtime directory (its control socket's).
    fn run_dir(&self, i: usize) -> PathBuf {
        self.lab.dir().join(format!("run{i}"))
    }

    fn socket(&self, i: usize) -> PathBuf {
        self.run_dir(i).join("baton.sock")
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.lab.node_files(i).log
    }

    /// Node i's keepalived.conf: one instance, the router's settings.
    fn keepalived_conf(&self, i: usize, priority: u8) -> String {
        let r = &self.router;
        let mut c = String::new();
        let _ = write!(
            c,
            "! node{i} of an interop lab (keepalived and baton read this same file)\n\
             global_defs {{\n    router_id node{i}\n    vrrp_version {}\n}}\n\n\
             vrrp_instance {NAME} {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id {VRID}\n    priority {priority}\n    advert_int {}\n",
            r.version, r.advert_int
        );
        if r.auth {
            let _ = write!(
                c,
                "    authentication {{\n        auth_type {}\n        auth_pass {}\n    }}\n",
                if r.ah { "AH" } else { "PASS" },
                self.auth_pass[i]
            );
        }
        if r.unicast {
            let _ = writeln!(c, "    unicast_src_ip {}", self.lab.node_addr4(i));
            c.push_str("    unicast_peer {\n");
            for j in (0..self.lab.nodes()).filter(|&j| j != i) {
                let _ = writeln!(c, "        {}", self.lab.node_addr4(j));
            }
            c.push_str("    }\n");
        }
        c.push_str("    virtual_ipaddress {\n");
        if r.ipv6 && r.link_local_first {
            let _ = writeln!(c, "        {VIP6_LINK_LOCAL}/64");
        }
        if r.ipv6 {
            let _ = writeln!(c, "        {VIP6}/64");
        } else {
            let _ = writeln!(c, "        {VIP4}/24");
        }
        c.push_str("    }\n}\n");
        c
    }

    /// Write node i's keepalived.conf and start `kind` on it; returns once
    /// the agent is up (baton answers on its socket, keepalived has entered
    /// its first state).
    fn start(&mut self, i: usize, kind: Impl, priority: u8) {
        let conf = self.config_path(i);
        std::fs::write(&conf, self.keepalived_conf(i, priority)).expect("writing keepalived.conf");
        self.start_with(i, kind, &conf, &[]);
    }

    /// Start `kind` on node i with keepalived's command line as a Debian
    /// unit passes it (`-n -l -D -G -P -f CONF -p -r -c -b PIDFILES`), the
    /// same for both implementations, plus `extra` flags.
    fn start_with(&mut self, i: usize, kind: Impl, conf: &Path, extra: &[&str]) {
        assert!(self.agents[i].is_none(), "node{i} already runs an agent");
        let conf = conf.display().to_string();
        let log = self.log_path(i);
        let ns = self.lab.node_ns(i).to_string();
        let pids = ["main", "vrrp", "checkers", "bfd"].map(|w| {
            let p = self.pid_file(i, w);
            let _ = std::fs::remove_file(&p);
            p.display().to_string()
        });
        let mut flags: Vec<&str> = vec![
            "-n", "-l", "-D", "-G", "-P", "-f", &conf, "-p", &pids[0], "-r", &pids[1], "-c",
            &pids[2], "-b", &pids[3],
        ];
        flags.extend_from_slice(extra);
        let pid = match kind {
            Keepalived => self.lab.spawn(&ns, &keepalived_bin(), &flags, &log),
            Baton => {
                let run_dir = self.run_dir(i);
                let state = self.lab.node_files(i).state_dir;
                for d in [&run_dir, &state] {
                    std::fs::create_dir_all(d).expect("creating baton's directories");
                }
                // Each node's own directories over the defaults, in the
                // private mount namespace that `ip netns exec` makes, so
                // that the command line stays keepalived's and the control
                // socket lands at the default path.
                let script = format!(
                    "mkdir -p /run/baton /var/lib/baton && \
                     mount --bind '{}' /run/baton && mount --bind '{}' /var/lib/baton && \
                     exec \"$0\" \"$@\"",
                    run_dir.display(),
                    state.display()
                );
                let mut args: Vec<&str> = vec!["-c", &script, BATON];
                args.extend_from_slice(&flags);
                self.lab.spawn(&ns, Path::new("sh"), &args, &log)
            }
        }
        .unwrap_or_else(|e| panic!("starting {kind:?} on node{i}: {e}"));
        self.agents[i] = Some(Running { kind, pid });
        let start = Instant::now();
        while !self.is_up(i) {
            if let Ok(Some(code)) = self.lab.wait(pid, Duration::ZERO) {
                self.agents[i] = None;
                panic!(
                    "{kind:?} on node{i} exited ({code}) before it was up\n{}",
                    self.context()
                );
            }
            if start.elapsed() > Duration::from_secs(5) {
                panic!(
                    "{kind:?} on node{i} is not up after 5 s\n{}",
                    self.context()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn is_up(&self, i: usize) -> bool {
        match self.kind(i) {
            Some(Baton) => self.status(i).is_some(),
            Some(Keepalived) => keepalived_state(&self.lab.log(i)).is_some(),
            None => false,
        }
    }

    fn kind(&self, i: usize) -> Option<Impl> {
        self.agents[i].map(|a| a.kind)
    }

    fn running(&self, i: usize) -> Running {
        self.agents[i].unwrap_or_else(|| panic!("node{i} runs no agent"))
    }

    fn signal(&mut self, i: usize, sig: Signal) {
        let Running { kind, pid } = self.running(i);
        self.lab
            .signal(pid, sig)
            .unwrap_or_else(|e| panic!("{sig} to {kind:?} on node{i} (pid {pid}): {e}"));
    }

    /// Wait for node i's agent to exit after a signal; its exit code.
    fn reap(&mut self, i: usize, timeout: Duration) -> Option<i32> {
        let Running { kind, pid } = self.running(i);
        let code = self
            .lab
            .wait(pid, timeout)
            .unwrap_or_else(|e| panic!("waiting for {kind:?} on node{i}: {e}"));
        if code.is_some() {
            self.agents[i] = None;
        }
        code
    }

    /// Node i's baton status over its control socket.
    fn status(&self, i: usize) -> Option<Status> {
        let socket = self.socket(i);
        let reply = control::request(&socket, &Request::Status {}, Duration::from_secs(2)).ok()?;
        reply.status
    }

    fn instance(&self, i: usize) -> InstanceStatus {
        let status = self
            .status(i)
            .unwrap_or_else(|| panic!("baton on node{i} does not answer\n{}", self.context()));
        status
            .instances
            .into_iter()
            .find(|s| s.name == NAME)
            .unwrap_or_else(|| panic!("node{i} has no instance {NAME}\n{}", self.context()))
    }

    /// Node i's VRRP state: baton's status, or keepalived's last
    /// "(VI_1) Entering X STATE" line.
    fn state(&self, i: usize) -> Option<State> {
        match self.kind(i)? {
            Baton => self
                .status(i)?
                .instances
                .into_iter()
                .find(|s| s.name == NAME)
                .map(|s| s.state),
            Keepalived => keepalived_state(&self.lab.log(i)),
        }
    }

    fn holders(&self) -> Vec<usize> {
        self.lab.holders(self.router.vip())
    }

    fn holds(&self, i: usize) -> bool {
        self.lab.has_addr(self.lab.node_ns(i), self.router.vip())
    }

    /// Node `w` is the only master and the only VIP holder; every other
    /// running agent is BACKUP.
    fn sole_master(&self, w: usize) -> bool {
        self.holders() == [w]
            && (0..self.lab.nodes()).all(|i| match self.kind(i) {
                None => true,
                Some(_) if i == w => self.state(i) == Some(State::Master),
                Some(_) => self.state(i) == Some(State::Backup),
            })
    }

    /// Poll `cond` until it holds; fail with the lab's context when it
    /// does not within `timeout`. Returns the time taken.
    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut(&Cluster) -> bool) -> Duration {
        lab::wait_until(self, timeout, what, cond, Cluster::context)
    }

    /// `cond` holds for the whole of `period`.
    fn stays(&self, period: Duration, what: &str, cond: impl FnMut(&Cluster) -> bool) {
        lab::holds_for(self, period, what, cond, Cluster::context)
    }

    /// Wait until `w` is the sole master and holder, then hold it steady.
    fn settles_on(&self, w: usize, timeout: Duration) -> Duration {
        let what = format!(
            "node{w} ({:?}) is the sole master and VIP holder",
            self.kind(w)
        );
        let took = self.wait(timeout, &what, |c| c.sole_master(w));
        self.stays(STEADY, &what, |c| c.sole_master(w));
        took
    }

    /// Neither side complained about the other's packets: no suspicious
    /// line in any keepalived log, no drop in any baton's counters.
    fn assert_clean(&self) {
        let mut problems = String::new();
        for i in 0..self.lab.nodes() {
            match self.kind(i) {
                Some(Keepalived) => {
                    for line in keepalived_complaints(&self.lab.log(i)) {
                        let _ = writeln!(problems, "node{i} keepalived: {line}");
                    }
                }
                Some(Baton) => {
                    let vi = self.instance(i);
                    if vi.rx.dropped.values().any(|&n| n > 0) {
                        let _ = writeln!(problems, "node{i} baton dropped: {:?}", vi.rx);
                    }
                    if let Some(st) = self.status(i) {
                        for f in st.interfaces.iter().filter(|f| !f.rx.dropped.is_empty()) {
                            let _ = writeln!(
                                problems,
                                "node{i} baton {} ({}) dropped outside instances: {:?}",
                                f.name, f.family, f.rx.dropped
                            );
                        }
                    }
                }
                None => {}
            }
        }
        assert!(
            problems.is_empty(),
            "a side complained about the other's packets:\n{problems}\n{}",
            self.context()
        );
    }

    /// Who holds the VIP, every node's state, and every node's log.
    fn context(&self) -> String {
        let mut out = format!(
            "router {:?}\nVIP {} held by {:?}\n",
            self.router,
            self.router.vip(),
            self.holders()
        );
        for i in 0..self.lab.nodes() {
            let _ = writeln!(out, "node{i}: {:?} {:?}", self.kind(i), self.state(i));
            if self.kind(i) == Some(Baton) {
                if let Some(vi) = self
                    .status(i)
                    .and_then(|s| s.instances.into_iter().find(|v| v.name == NAME))
                {
                    let _ = writeln!(out, "  rx {:?}", vi.rx);
                }
            }
        }
        for i in 0..self.lab.nodes() {
            let log = self.lab.log(i);
            let mut cut = log.len().saturating_sub(6000);
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            let _ = writeln!(out, "----- node{i} log -----\n{}", &log[cut..]);
        }
        out
    }
}

impl Drop for Cluster {
    /// keepalived's VRRP child outlives a SIGKILLed parent: stop every
    /// keepalived with SIGTERM first, and kill a child that lingers.
    fn drop(&mut self) {
        for i in 0..self.agents.len() {
            let Some(Running { kind, pid }) = self.agents[i] else {
                continue;
            };
            let _ = self.lab.signal(pid, Signal::SIGTERM);
            let _ = self.lab.wait(pid, Duration::from_secs(3));
            if kind == Keepalived {
                if let Some(child) = std::fs::read_to_string(self.pid_file(i, "vrrp"))
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                    if comm.trim() == "keepalived" {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(child),
                            Signal::SIGKILL,
                        );
                    }
                }
            }
            self.agents[i] = None;
        }
    }
}

/// keepalived's state from its last "(VI_1) Entering X STATE" line.
fn keepalived_state(log: &str) -> Option<State> {
    let tag = format!("({NAME}) Entering ");
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

/// Lines of a keepalived log that suggest a received packet was refused
/// or misread.
fn keepalived_complaints(log: &str) -> Vec<String> {
    const WORDS: [&str; 15] = [
        "unexpected",
        "invalid",
        "mismatch",
        "bad",
        "error",
        "wrong",
        "unknown",
        "malformed",
        "checksum",
        "not present",
        "discard",
        "too short",
        "ttl",
        "incompatible",
        "ignor",
    ];
    // A backup with preempt ignores a lower priority (RFC 5798 6.4.2) and
    // says so: "received lower priority (100) advert from ... - discarding".
    // keepalived logs the addresses the kernel assigns, whose hex digits may
    // spell a word above ("fe80::fc99:b1ff:feca:5bad").
    const NORMAL: [&str; 3] = [
        "received lower priority",
        "assigned address",
        "deassigned address",
    ];
    log.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            WORDS.iter().any(|w| l.contains(w)) && !NORMAL.iter().any(|n| l.contains(n))
        })
        .map(str::to_string)
        .collect()
}

/// Print a measured time with the reference intervals.
fn report(what: &str, took: Duration, router: &Router, priority: u8) {
    println!(
        "{what}: {took:?} (v{}, advert {}s: skew {:?}, master down {:?})",
        router.version,
        router.advert_int,
        router.skew(priority),
        router.master_down(priority)
    );
}

// ---------------------------------------------------------------------------
// 1, 2. Mixed pairs: the higher priority wins, whichever side runs it
// ---------------------------------------------------------------------------

/// node0 runs keepalived, node1 baton; `winner` gets priority 150, the
/// other 100.
fn mixed_pair(tag: &str, router: Router, winner: Impl) {
    let mut c = Cluster::new(tag, 2, router);
    let (ka, bt) = if winner == Keepalived {
        (150, 100)
    } else {
        (100, 150)
    };
    c.start(0, Keepalived, ka);
    c.start(1, Baton, bt);
    let w = if winner == Keepalived { 0 } else { 1 };
    let took = c.settles_on(w, router.election());
    println!("{tag}: {winner:?} (priority 150) sole master {took:?} after start");
    c.assert_clean();
    let vi = c.instance(1);
    if winner == Keepalived {
        assert!(
            vi.rx.accepted > 0,
            "baton (BACKUP) accepted none of keepalived's adverts: {:?}\n{}",
            vi.rx,
            c.context()
        );
    }
    println!("{tag}: baton rx {:?}", vi.rx);
}

#[test]
fn v2_multicast_keepalived_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("i2k", Router::V2, Keepalived);
}

#[test]
fn v2_multicast_baton_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("i2b", Router::V2, Baton);
}

#[test]
fn v3_multicast_keepalived_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("i3k", Router::V3, Keepalived);
}

#[test]
fn v3_multicast_baton_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("i3b", Router::V3, Baton);
}

const UNICAST_AUTH: Router = Router {
    unicast: true,
    auth: true,
    ..Router::V2
};

#[test]
fn v2_unicast_pass_auth_keepalived_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("iuk", UNICAST_AUTH, Keepalived);
}

#[test]
fn v2_unicast_pass_auth_baton_wins() {
    if !lab::require_root() {
        return;
    }
    mixed_pair("iub", UNICAST_AUTH, Baton);
}

/// IPv6 as RFC 5798 5.2.9 wants it: a link-local VIP first, so that both
/// sides advertise the same two addresses.
#[test]
fn v3_ipv6_link_local_first_mixed_pair() {
    if !lab::require_root() {
        return;
    }
    let v6 = Router {
        ipv6: true,
        link_local_first: true,
        ..Router::V3
    };
    mixed_pair("i6k", v6, Keepalived);
    mixed_pair("i6b", v6, Baton);
}

/// IPv6 with a global VIP only, a common keepalived setup (keepalived warns
/// "the first IPv6 VIP address should be link local" and runs): keepalived
/// advertises the one VIP, and each side must accept the other's adverts.
#[test]
fn v3_ipv6_global_vip_only_mixed_pair() {
    if !lab::require_root() {
        return;
    }
    let v6 = Router {
        ipv6: true,
        ..Router::V3
    };
    mixed_pair("g6k", v6, Keepalived);
    mixed_pair("g6b", v6, Baton);
}

// ---------------------------------------------------------------------------
// 3. Three nodes, mixed: the highest priority wins; then the next one
// ---------------------------------------------------------------------------

/// Start `nodes` (kind, priority); the highest wins; its link goes down
/// and the next highest takes over.
fn three_nodes(tag: &str, nodes: [(Impl, u8); 3]) {
    let router = Router::V3;
    let mut c = Cluster::new(tag, 3, router);
    for (i, &(kind, prio)) in nodes.iter().enumerate() {
        c.start(i, kind, prio);
    }
    let mut order: Vec<usize> = (0..3).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(nodes[i].1));
    let (first, second) = (order[0], order[1]);
    let took = c.settles_on(first, router.election());
    println!("{tag}: {nodes:?}: node{first} sole master {took:?} after start");
    c.assert_clean();

    c.lab.set_link(first, false).expect("link down");
    let took = c.wait(
        router.failover(),
        "the next highest alone holds the VIP",
        |c| c.holders() == [second] && c.state(second) == Some(State::Master),
    );
    report(
        &format!(
            "{tag}: link down on node{first} ({:?}) -> node{second} ({:?}) holds the VIP",
            nodes[first].0, nodes[second].0
        ),
        took,
        &router,
        nodes[second].1,
    );
    let third = order[2];
    c.stays(STEADY, "one holder, the third node BACKUP", |c| {
        c.holders() == [second]
            && c.state(second) == Some(State::Master)
            && c.state(third) == Some(State::Backup)
    });
    c.assert_clean();
}

#[test]
fn three_nodes_two_keepalived_one_baton() {
    if !lab::require_root() {
        return;
    }
    three_nodes("t2k", [(Keepalived, 100), (Baton, 200), (Keepalived, 150)]);
}

#[test]
fn three_nodes_one_keepalived_two_baton() {
    if !lab::require_root() {
        return;
    }
    three_nodes("t2b", [(Baton, 150), (Keepalived, 200), (Baton, 100)]);
}

// ---------------------------------------------------------------------------
// 4. The master's link goes down: the other side takes over, both ways
// ---------------------------------------------------------------------------

fn link_down_failover(tag: &str, router: Router, master: Impl) {
    let mut c = Cluster::new(tag, 2, router);
    let (ka, bt) = if master == Keepalived {
        (150, 100)
    } else {
        (100, 150)
    };
    c.start(0, Keepalived, ka);
    c.start(1, Baton, bt);
    let (m, b) = if master == Keepalived { (0, 1) } else { (1, 0) };
    c.settles_on(m, router.election());

    c.lab.set_link(m, false).expect("link down");
    let took = c.wait(
        router.failover(),
        "the backup alone holds the VIP and is master",
        |c| c.holders() == [b] && c.state(b) == Some(State::Master),
    );
    report(
        &format!("{tag}: link down on the {master:?} master -> VIP on the other"),
        took,
        &router,
        100,
    );
    assert!(
        took < router.master_down(100) + Duration::from_secs(1),
        "takeover took {took:?}, master down is {:?}\n{}",
        router.master_down(100),
        c.context()
    );
    c.wait(Duration::from_secs(2), "the old master is FAULT", |c| {
        c.state(m) == Some(State::Fault)
    });

    // Back up: the old master preempts (both preempt by default).
    c.lab.set_link(m, true).expect("link up");
    let took = c.settles_on(m, router.failover() + router.election());
    println!("{tag}: link up -> the {master:?} node preempts back in {took:?}");
    c.assert_clean();
}

#[test]
fn baton_master_link_down_keepalived_takes_over() {
    if !lab::require_root() {
        return;
    }
    link_down_failover("lb", Router::V3, Baton);
}

#[test]
fn keepalived_master_link_down_baton_takes_over() {
    if !lab::require_root() {
        return;
    }
    link_down_failover("lk", Router::V3, Keepalived);
}

// ---------------------------------------------------------------------------
// 5. SIGTERM of the master: priority 0, takeover within skew time
// ---------------------------------------------------------------------------

fn sigterm_handover(tag: &str, router: Router, master: Impl) {
    let mut c = Cluster::new(tag, 2, router);
    let (ka, bt) = if master == Keepalived {
        (150, 100)
    } else {
        (100, 150)
    };
    c.start(0, Keepalived, ka);
    c.start(1, Baton, bt);
    let (m, b) = if master == Keepalived { (0, 1) } else { (1, 0) };
    c.settles_on(m, router.election());
    c.assert_clean();

    let sent = Instant::now();
    c.signal(m, Signal::SIGTERM);
    c.wait(router.failover(), "the backup holds the VIP", |c| {
        c.holds(b)
    });
    let took = sent.elapsed();
    report(
        &format!("{tag}: SIGTERM of the {master:?} master -> VIP on the other"),
        took,
        &router,
        100,
    );
    let code = c.reap(m, Duration::from_secs(5));
    assert_eq!(
        code,
        Some(0),
        "{master:?}'s exit code after SIGTERM\n{}",
        c.context()
    );
    c.wait(
        Duration::from_secs(1),
        "the backup alone holds the VIP",
        |c| c.holders() == [b] && c.state(b) == Some(State::Master),
    );
    // Priority 0 means skew time; a missed one would be a master-down.
    let bound = router.skew(100) + (router.master_down(100) - router.skew(100)) / 2;
    assert!(
        took < bound,
        "takeover after priority 0 took {took:?}: not skew time ({:?}), \
         closer to master down ({:?})\n{}",
        router.skew(100),
        router.master_down(100),
        c.context()
    );
    c.stays(STEADY, "the backup stays the sole holder", |c| {
        c.holders() == [b] && c.state(b) == Some(State::Master)
    });
    c.assert_clean();
}

#[test]
fn baton_master_sigterm_keepalived_takes_over_in_skew_time() {
    if !lab::require_root() {
        return;
    }
    sigterm_handover("sb", Router::V2, Baton);
}

#[test]
fn keepalived_master_sigterm_baton_takes_over_in_skew_time() {
    if !lab::require_root() {
        return;
    }
    sigterm_handover("sk", Router::V2, Keepalived);
}

// ---------------------------------------------------------------------------
// 6. Steady state: neither side complains about the other's packets
// ---------------------------------------------------------------------------

/// keepalived master and baton backup, then (keepalived reloaded at a lower
/// priority) baton master and keepalived backup: both receive the other's
/// adverts for a while and neither drops or complains about one.
#[test]
fn steady_state_neither_side_complains() {
    if !lab::require_root() {
        return;
    }
    let router = Router::V3;
    let mut c = Cluster::new("ss", 2, router);
    c.start(0, Keepalived, 150);
    c.start(1, Baton, 100);
    c.settles_on(0, router.election());
    let before = c.instance(1).rx;
    std::thread::sleep(Duration::from_secs(1));
    let after = c.instance(1).rx;
    println!("baton (BACKUP) rx before {before:?}\nafter {after:?}");
    let expected = (Duration::from_secs(1).as_millis() / router.advert().as_millis()) as u64;
    assert!(
        after.accepted - before.accepted >= expected / 2,
        "baton accepted {} adverts in 1 s from a master sending every {:?}\n{}",
        after.accepted - before.accepted,
        router.advert(),
        c.context()
    );
    assert!(
        after.v3_checksum_pseudo_header > 0,
        "keepalived's v3 adverts were not counted as pseudo-header checksummed: {after:?}"
    );
    c.assert_clean();

    // keepalived drops below baton: baton preempts, keepalived is backup.
    std::fs::write(c.config_path(0), c.keepalived_conf(0, 50)).expect("rewriting the config");
    c.signal(0, Signal::SIGHUP);
    let took = c.settles_on(1, router.failover());
    println!("keepalived reloaded at priority 50 -> baton sole master in {took:?}");
    std::thread::sleep(Duration::from_secs(1));
    c.assert_clean();
    let vi = c.instance(1);
    assert!(vi.rx.accepted > 0, "{:?}", vi.rx);
}

/// The story users trust: three nodes run keepalived with one shared
/// keepalived.conf (`@nodeN` lines set each node's priority, `-i nodeN`
/// picks them, as DAEMON_ARGS would) and the same command line; each node
/// in turn, backups first, is replaced by baton with the same file and
/// flags, then each is put back to keepalived. A client pings the VIP
/// every 10 ms all along and every node's VIP is watched every ms.
///
/// Passes when: after every step node0 (priority 150) is the sole master
/// and holder and every running agent, keepalived or baton, is BACKUP but
/// it; the client never went without replies for a master-down interval
/// (node1's, the first to take over: 361 ms at 100 ms adverts); and two
/// nodes never held the VIP at once for longer than a preemption's
/// hand-over (a new master adds it, the old one drops it on its advert).
#[test]
fn rolling_migration_from_keepalived_to_baton_and_back() {
    if !lab::require_root() {
        return;
    }
    let router = Router::V3;
    let mut c = Cluster::new("rm", 3, router);
    let conf = c.lab.dir().join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "! one file for every node: @nodeN lines are read by the node started with -i nodeN\n\
             global_defs {{\n    vrrp_version 3\n}}\n\n\
             vrrp_instance {NAME} {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id {VRID}\n@node0    priority 150\n@node1    priority 100\n\
             @node2    priority 50\n    advert_int {}\n    virtual_ipaddress {{\n        \
             {VIP4}/24\n    }}\n}}\n",
            router.advert_int
        ),
    )
    .expect("writing the shared keepalived.conf");
    let ids = ["node0", "node1", "node2"];
    for (i, id) in ids.iter().enumerate() {
        c.start_with(i, Keepalived, &conf, &["-i", id]);
    }
    c.settles_on(0, router.election());

    let client = c.lab.client_ns().to_string();
    let prober = baton::lab::probe::Prober::start(Some(&client), VIP4, Duration::from_millis(10))
        .expect("starting the client's pings");
    let watch = baton::lab::HoldWatch::start(&c.lab, VIP4);
    let began = Instant::now();
    for (from, to) in [(Keepalived, Baton), (Baton, Keepalived)] {
        for i in [2, 1, 0] {
            assert_eq!(c.kind(i), Some(from));
            c.signal(i, Signal::SIGTERM);
            let code = c.reap(i, Duration::from_secs(5));
            assert_eq!(code, Some(0), "{from:?} on node{i} did not stop cleanly");
            c.start_with(i, to, &conf, &["-i", ids[i]]);
            let took = c.settles_on(0, router.election());
            println!(
                "MEASURED: node{i} {from:?} -> {to:?}: node0 sole master again after {took:?}"
            );
        }
    }
    let seen = watch.finish();
    let pings = prober.finish().expect("the client's pings");
    let overlap = seen.overlap(began);
    let master_down = router.master_down(100);
    println!(
        "MEASURED: rolling migration: longest gap without a reply {:?} (master down {master_down:?}), \
         {} of {} pings lost, two holders for {overlap:?} in all",
        pings.longest_gap,
        pings.lost(),
        pings.sent
    );
    assert!(
        pings.longest_gap < master_down,
        "the client went {:?} without a reply (more than a master-down interval)\n{}",
        pings.longest_gap,
        c.context()
    );
    assert!(
        overlap < Duration::from_millis(100),
        "two nodes held the VIP for {overlap:?} in all\n{}",
        c.context()
    );
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// 8. auth_type AH: keepalived's IPsec AH, both ways
// ---------------------------------------------------------------------------

const AH: Router = Router {
    auth: true,
    ah: true,
    ..Router::V2
};

/// A keepalived and a baton node with `auth_type AH` and one password:
/// `first` (priority 150) wins; stopped, the other takes over; started
/// again, it hears the other's (higher) sequence numbers, preempts, and
/// the other accepts its adverts, which continue above them. Neither side
/// drops or complains about an advert at any time.
fn ah_fails_over_and_back(tag: &str, first: Impl, router: Router) -> Cluster {
    let mut c = Cluster::new(tag, 2, router);
    let prio = |i: usize| {
        if (i == 0) == (first == Keepalived) {
            150
        } else {
            100
        }
    };
    c.start(0, Keepalived, prio(0));
    c.start(1, Baton, prio(1));
    let (m, b) = if first == Keepalived { (0, 1) } else { (1, 0) };
    let kinds = [Keepalived, Baton];
    let took = c.settles_on(m, router.election());
    println!("{tag}: {first:?} (priority 150) sole master {took:?} after start");
    c.assert_clean();

    c.signal(m, Signal::SIGTERM);
    assert_eq!(
        c.reap(m, Duration::from_secs(5)),
        Some(0),
        "{}",
        c.context()
    );
    let took = c.settles_on(b, router.failover());
    println!("{tag}: {:?} master {took:?} after the SIGTERM", kinds[b]);

    c.start(m, first, 150);
    let took = c.settles_on(m, router.election() + router.failover());
    println!("{tag}: restarted {first:?} master again {took:?} after its start");
    c.assert_clean();
    let vi = c.instance(1);
    assert!(
        vi.rx.accepted > 0,
        "baton accepted none of keepalived's AH adverts: {:?}\n{}",
        vi.rx,
        c.context()
    );
    println!("{tag}: baton rx {:?}", vi.rx);
    c
}

#[test]
fn v2_ah_keepalived_first_fails_over_and_back() {
    if !lab::require_root() {
        return;
    }
    ah_fails_over_and_back("ahk", Keepalived, AH);
}

#[test]
fn v2_ah_baton_first_fails_over_and_back() {
    if !lab::require_root() {
        return;
    }
    ah_fails_over_and_back("ahb", Baton, AH);
}

/// AH over unicast (`unicast_src_ip` / `unicast_peer`), as keepalived runs
/// it: the TTL is left out of the check value.
const AH_UNICAST: Router = Router {
    unicast: true,
    ..AH
};

/// An AH advert of VRID 51 from `src` to `dst` keyed by `pass`, with the
/// unicast check value (TTL left out), as a whole datagram.
fn forged_unicast_ah(src: Ipv4Addr, dst: Ipv4Addr, pass: &str, priority: u8, seq: u32) -> Vec<u8> {
    let mut key = [0u8; ah::KEY_LEN];
    key[..pass.len()].copy_from_slice(pass.as_bytes());
    let repr = Repr {
        version: Version::V2,
        vrid: VRID,
        priority,
        interval_cs: 100,
        addresses: vec![VIP4.into()],
        auth: None,
    };
    let vrrp = ah::vrrp_message(&repr, src, dst).expect("VRRP message");
    let stamp = ah::Stamp { id: 77, seq };
    ah::emit(&key, src, dst, 64, stamp, true, &vrrp).expect("AH datagram")
}

/// Send `datagram` (its IPv4 header included) from namespace `ns`.
fn send_raw_ah(ns: &str, datagram: Vec<u8>, dst: Ipv4Addr) {
    lab::in_netns(ns, move || -> std::io::Result<()> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(51)))?;
        s.set_header_included_v4(true)?;
        s.send_to(&datagram, &SocketAddrV4::new(dst, 0).into())?;
        Ok(())
    })
    .expect("sending a raw AH datagram");
}

/// keepalived (priority 150) and baton, both with `auth_type AH` over
/// unicast: keepalived wins; stopped, baton takes over; started again,
/// keepalived preempts and baton follows, neither side complaining. Then a
/// stranger (the client namespace, not a unicast peer) who holds the key
/// sends baton AH adverts of priority 254 numbered far above the peers':
/// baton drops them as `unknown_unicast_src` before their number counts,
/// so it goes on accepting keepalived's adverts and stays backup (had the
/// number counted, keepalived's adverts would be replays, and baton master
/// after its master-down interval).
#[test]
fn v2_ah_unicast_fails_over_both_ways_and_drops_a_stranger() {
    if !lab::require_root() {
        return;
    }
    let c = ah_fails_over_and_back("ahu", Keepalived, AH_UNICAST);
    let before = c.instance(1).rx;
    let stranger = c.lab.client_addr4();
    let target = c.lab.node_addr4(1);
    for seq in [4_000_000_000, 4_000_000_001, 4_000_000_002] {
        let d = forged_unicast_ah(stranger, target, AUTH_PASS, 254, seq);
        send_raw_ah(c.lab.client_ns(), d, target);
    }
    let count = |c: &Cluster| {
        let rx = c.instance(1).rx;
        rx.dropped.get("unknown_unicast_src").copied().unwrap_or(0)
    };
    c.wait(
        Duration::from_secs(2),
        "baton counted the stranger's 3 adverts",
        |c| count(c) == 3,
    );
    // Longer than baton's master-down interval at priority 100.
    let period = AH_UNICAST.master_down(100) + Duration::from_secs(1);
    c.stays(period, "keepalived the sole master", |c| c.sole_master(0));
    let after = c.instance(1).rx;
    assert!(
        after.accepted >= before.accepted + 3,
        "baton stopped accepting keepalived's adverts: {before:?} -> {after:?}\n{}",
        c.context()
    );
    let others: u64 = after
        .dropped
        .iter()
        .filter(|(k, _)| k.as_str() != "unknown_unicast_src")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(others, 0, "{after:?}\n{}", c.context());
    assert_eq!(c.state(1), Some(State::Backup), "{}", c.context());
    println!("ahu: baton rx {after:?}");
}

/// Different AH passwords: each side drops the other's adverts (keepalived
/// logs the bad HMAC, baton counts `ah_bad_icv`), so both are master.
#[test]
fn v2_ah_wrong_password_both_drop() {
    if !lab::require_root() {
        return;
    }
    let mut c = Cluster::new("ahw", 2, AH);
    c.auth_pass = vec!["secret1", "secret2"];
    c.start(0, Keepalived, 150);
    c.start(1, Baton, 100);
    let what = "both nodes master with the VIP";
    c.wait(AH.election() + AH.failover(), what, |c| {
        c.holders() == [0, 1]
            && c.state(0) == Some(State::Master)
            && c.state(1) == Some(State::Master)
    });
    c.stays(STEADY, what, |c| c.holders() == [0, 1]);
    let vi = c.instance(1);
    assert_eq!(vi.rx.accepted, 0, "{:?}\n{}", vi.rx, c.context());
    let bad = vi.rx.dropped.get("ah_bad_icv").copied().unwrap_or(0);
    assert!(
        bad > 0,
        "baton counted no ah_bad_icv: {:?}\n{}",
        vi.rx,
        c.context()
    );
    let log = c.lab.log(0);
    assert!(
        log.contains("IPSEC-AH : invalid IPSEC HMAC-MD5 value"),
        "keepalived did not drop baton's adverts\n{}",
        c.context()
    );
    println!("ahw: baton rx {:?}", vi.rx);
}
