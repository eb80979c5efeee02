//! A layer-2 lab in network namespaces for root tests.
//!
//! ```text
//!   node 0 (eth0 .11)   node 1 (eth0 .12)   ...   client (eth0 .200)
//!        |                   |                        |
//!   +----+-------------------+------------------------+-----+
//!   | bridge namespace: br0, ports n0, n1, ..., c (veth)    |
//!   +-------------------------------------------------------+
//! ```
//!
//! Addresses 192.168.77.0/24 and fd00:77::/64 exist only inside the lab's
//! own namespaces; the host's interfaces are never touched. Namespace names
//! are a prefix, the process id and a counter, so parallel tests never meet.
//! Dropping the `Lab` (also while a test panics) kills what it spawned and
//! deletes its namespaces.
//!
//! Use it from a test file with `#[path = "netns/mod.rs"] mod netns;` (or
//! `mod netns;`), start each root test with `if !netns::require_root() {
//! return; }`, and run code inside a namespace with [`in_netns`].
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The interface name every node and the client see.
pub const IFNAME: &str = "eth0";

/// Whether root tests may run. Under `CI=true` a missing root is a failure
/// (a skipped root test in CI would hide a regression), so this panics;
/// elsewhere it prints "skipped: needs root" and returns false.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this test needs root, and CI=true forbids skipping it");
    }
    eprintln!("skipped: needs root");
    false
}

/// Run `f` on a thread that has entered network namespace `ns`, and return
/// its result (a panic in `f` is re-raised here). Sockets, netlink and
/// tokio runtimes created in `f` live in that namespace. Note that the
/// thread keeps the host's mount namespace: `/sys/class/net` there shows
/// the host, so ask netlink instead.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    match spawn_in_netns(ns, f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Like [`in_netns`] without waiting: join the handle for the result.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    thread::Builder::new()
        .name(format!("in-{ns}"))
        .spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .expect("spawn a thread")
}

/// A current_thread tokio runtime with IO and time, for [`in_netns`].
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One address as `ip -o addr` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The words after the address: `scope global`, `tentative`, a label...
    pub rest: String,
}

impl LabAddr {
    pub fn tentative(&self) -> bool {
        self.rest.split_whitespace().any(|w| w == "tentative")
    }
}

pub struct Lab {
    bridge: String,
    nodes: Vec<String>,
    client: String,
}

impl Lab {
    /// A bridge namespace, `nodes` node namespaces and a client namespace.
    /// `prefix` should be short (a few letters naming the test).
    pub fn new(prefix: &str, nodes: usize) -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{prefix}{}x{n}", std::process::id());
        // Built into `lab` from the start, so that a failure half-way still
        // tears down what exists.
        let mut lab = Lab {
            bridge: format!("{tag}b"),
            nodes: Vec::new(),
            client: format!("{tag}c"),
        };
        lab.nodes = (0..nodes).map(|i| format!("{tag}n{i}")).collect();
        lab.build();
        lab
    }

    fn build(&mut self) {
        let br = self.bridge.clone();
        run_ok("ip", &["netns", "add", &br]);
        self.ip(&br, "link set lo up");
        // No snooping: VRRP groups must be flooded whatever MLD says.
        self.ip(
            &br,
            "link add br0 type bridge forward_delay 0 mcast_snooping 0",
        );
        self.ip(&br, "link set br0 up");
        let members: Vec<(String, String, String, String)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                (
                    ns.clone(),
                    format!("n{i}"),
                    Self::ip4(11 + i as u8).to_string(),
                    Self::ip6(11 + i as u16).to_string(),
                )
            })
            .chain(std::iter::once((
                self.client.clone(),
                "c".to_owned(),
                Self::ip4(200).to_string(),
                Self::ip6(200).to_string(),
            )))
            .collect();
        for (ns, port, v4, v6) in members {
            run_ok("ip", &["netns", "add", &ns]);
            self.ip(&ns, "link set lo up");
            // Addresses usable at once: no duplicate address detection in
            // the lab (tests that want DAD switch it back on).
            self.sysctl(&ns, "net.ipv6.conf.all.accept_dad", "0");
            self.sysctl(&ns, "net.ipv6.conf.default.accept_dad", "0");
            self.ip(
                &br,
                &format!("link add {port} type veth peer name {IFNAME} netns {ns}"),
            );
            self.sysctl(&ns, &format!("net.ipv6.conf.{IFNAME}.accept_dad"), "0");
            self.ip(&br, &format!("link set {port} master br0"));
            self.ip(&br, &format!("link set {port} up"));
            self.ip(&ns, &format!("addr add {v4}/24 dev {IFNAME}"));
            self.ip(&ns, &format!("addr add {v6}/64 dev {IFNAME} nodad"));
            self.ip(&ns, &format!("link set {IFNAME} up"));
        }
    }

    /// 192.168.77.`host`.
    pub fn ip4(host: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 77, host)
    }

    /// fd00:77::`host`, written with the same digits as the IPv4 host
    /// (node 0 is fd00:77::11, the client fd00:77::200).
    pub fn ip6(host: u16) -> Ipv6Addr {
        format!("fd00:77::{host}")
            .parse()
            .expect("host of at most 4 digits")
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn node_ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    pub fn client_ns(&self) -> &str {
        &self.client
    }

    pub fn bridge_ns(&self) -> &str {
        &self.bridge
    }

    /// The lab interface of node `i` (inside its namespace).
    pub fn node_if(&self, i: usize) -> &str {
        let _ = &self.nodes[i];
        IFNAME
    }

    pub fn client_if(&self) -> &str {
        IFNAME
    }

    /// Node `i`'s own addresses: 192.168.77.(11+i) and fd00:77::(11+i).
    pub fn node_ip4(&self, i: usize) -> Ipv4Addr {
        Self::ip4(11 + i as u8)
    }

    pub fn node_ip6(&self, i: usize) -> Ipv6Addr {
        Self::ip6(11 + i as u16)
    }

    pub fn client_ip4(&self) -> Ipv4Addr {
        Self::ip4(200)
    }

    /// Run `cmd` (a shell command line) in namespace `ns`.
    pub fn exec(&self, ns: &str, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {ns} {cmd}: {e}"))
    }

    /// Like [`exec`](Self::exec), but panic with stderr unless it succeeds;
    /// returns stdout.
    pub fn exec_ok(&self, ns: &str, cmd: &str) -> String {
        let out = self.exec(ns, cmd);
        assert!(
            out.status.success(),
            "in {ns}: {cmd}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start `cmd` (a shell command line) in namespace `ns`, in a process
    /// group of its own. The child (and its group) is killed when the
    /// returned [`LabChild`] is dropped.
    pub fn spawn(&self, ns: &str, cmd: &str) -> LabChild {
        self.spawn_with(ns, cmd, Stdio::null(), Stdio::inherit())
    }

    /// [`spawn`](Self::spawn) with stdout piped to the caller.
    pub fn spawn_piped(&self, ns: &str, cmd: &str) -> LabChild {
        self.spawn_with(ns, cmd, Stdio::piped(), Stdio::inherit())
    }

    fn spawn_with(&self, ns: &str, cmd: &str, stdout: Stdio, stderr: Stdio) -> LabChild {
        // `ip netns exec` execs the shell, so the pid is the shell's and
        // the process group holds everything it starts.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", &format!("exec {cmd}")])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn in {ns}: {cmd}: {e}"));
        LabChild { child: Some(child) }
    }

    /// Administratively up or down node `i`'s interface (`ip link set X
    /// down`): the node itself sees its link down.
    pub fn set_node_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        self.ip(&self.nodes[i], &format!("link set dev {IFNAME} {state}"));
    }

    /// Up or down the bridge side of node `i`'s veth: the node's interface
    /// stays administratively up but loses its carrier (NO-CARRIER), as if
    /// its cable were pulled.
    pub fn set_node_carrier(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        self.ip(&self.bridge, &format!("link set dev n{i} {state}"));
    }

    /// The addresses on `ifname` in namespace `ns`.
    pub fn addresses(&self, ns: &str, ifname: &str) -> Vec<LabAddr> {
        let out = self.exec_ok(ns, &format!("ip -o addr show dev {ifname}"));
        out.lines()
            .filter_map(|line| {
                // "2: eth0    inet 192.168.77.11/24 brd ... scope global eth0\..."
                let mut words = line.split_whitespace().skip(2);
                let _family = words.next()?;
                let (addr, prefix) = words.next()?.split_once('/')?;
                let rest: Vec<&str> = words.take_while(|w| *w != "\\").collect();
                Some(LabAddr {
                    addr: addr.parse().ok()?,
                    prefix_len: prefix.parse().ok()?,
                    rest: rest.join(" "),
                })
            })
            .collect()
    }

    /// The MAC address of `ifname` in namespace `ns`.
    pub fn mac(&self, ns: &str, ifname: &str) -> [u8; 6] {
        let out = self.exec_ok(ns, &format!("cat /sys/class/net/{ifname}/address"));
        let bytes: Vec<u8> = out
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("MAC byte"))
            .collect();
        bytes.try_into().expect("6-byte MAC")
    }

    /// Start pinging `target` from the client every 10 ms.
    pub fn pinger(&self, target: IpAddr) -> Pinger {
        Pinger::start(self, target)
    }

    fn ip(&self, ns: &str, args: &str) {
        let mut argv = vec!["-n", ns];
        argv.extend(args.split_whitespace());
        run_ok("ip", &argv);
    }

    fn sysctl(&self, ns: &str, key: &str, value: &str) {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                &format!("{key}={value}"),
            ],
        );
    }

    fn namespaces(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.bridge)
            .chain(self.nodes.iter())
            .chain(std::iter::once(&self.client))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            // Whatever still runs in our namespaces was started by this lab
            // (a LabChild leaked or outlived it): end it by pid.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
            // Deleting the bridge namespace deletes the veths, hence their
            // peers in the other namespaces.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A process started in a lab namespace; killed (with its process group)
/// on drop.
pub struct LabChild {
    child: Option<Child>,
}

impl LabChild {
    /// Send `sig` to the child's process group.
    pub fn signal(&self, sig: Signal) {
        if let Some(child) = &self.child {
            let _ = signal::killpg(Pid::from_raw(child.id() as i32), sig);
        }
    }

    /// Stop the child (SIGTERM to its group, SIGKILL after `grace`) and
    /// reap it.
    pub fn stop(mut self, grace: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("child");
        let pgid = Pid::from_raw(child.id() as i32);
        let _ = signal::killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = signal::killpg(pgid, Signal::SIGKILL);
                return status;
            }
            if Instant::now() >= deadline {
                let _ = signal::killpg(pgid, Signal::SIGKILL);
                return child.wait().expect("wait");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Deref for LabChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child.as_ref().expect("child")
    }
}

impl DerefMut for LabChild {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child")
    }
}

impl Drop for LabChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// `ping -D -i 0.01 TARGET` from the client namespace, recording when each
/// reply came.
pub struct Pinger {
    child: LabChild,
    replies: Arc<Mutex<Vec<(u32, f64)>>>,
    reader: Option<JoinHandle<()>>,
}

/// What a [`Pinger`] saw.
#[derive(Debug, Clone)]
pub struct PingReport {
    /// Replies received.
    pub received: usize,
    /// Sequence numbers missing between the first and the last reply,
    /// plus those never answered after the last reply.
    pub lost: usize,
    /// The largest gap between two consecutive replies: the outage a user
    /// felt.
    pub max_gap: Duration,
    /// The highest sequence number answered.
    pub last_seq: u32,
}

impl Pinger {
    fn start(lab: &Lab, target: IpAddr) -> Pinger {
        let mut child = lab.spawn_piped(lab.client_ns(), &format!("ping -D -n -i 0.01 {target}"));
        let stdout = child.stdout.take().expect("ping stdout");
        let replies = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&replies);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(reply) = parse_ping_line(&line) {
                    sink.lock().unwrap().push(reply);
                }
            }
        });
        Pinger {
            child,
            replies,
            reader: Some(reader),
        }
    }

    /// Replies so far.
    pub fn received(&self) -> usize {
        self.replies.lock().unwrap().len()
    }

    /// Wait until at least `n` replies came, or `timeout`; true if they did.
    pub fn wait_for_replies(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.received() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.received() >= n
    }

    /// Stop pinging and report. Requests still unanswered when stopped count
    /// as lost only if some later request was answered, so the last 10 ms
    /// in flight is never counted.
    pub fn stop(mut self) -> PingReport {
        let child = std::mem::replace(&mut self.child, LabChild { child: None });
        child.stop(Duration::from_millis(500));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let replies = self.replies.lock().unwrap().clone();
        report(&replies)
    }
}

fn report(replies: &[(u32, f64)]) -> PingReport {
    let mut seqs: Vec<u32> = replies.iter().map(|r| r.0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let last_seq = seqs.last().copied().unwrap_or(0);
    let first_seq = seqs.first().copied().unwrap_or(0);
    let lost = if seqs.is_empty() {
        0
    } else {
        (last_seq - first_seq + 1) as usize - seqs.len()
    };
    let max_gap = replies
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .fold(0.0f64, f64::max);
    PingReport {
        received: seqs.len(),
        lost,
        max_gap: Duration::from_secs_f64(max_gap.max(0.0)),
        last_seq,
    }
}

/// `[1700000000.123456] 64 bytes from 192.168.77.100: icmp_seq=7 ttl=64 time=0.05 ms`
fn parse_ping_line(line: &str) -> Option<(u32, f64)> {
    let stamp = line.strip_prefix('[')?.split(']').next()?.parse().ok()?;
    if !line.contains(" bytes from ") {
        return None;
    }
    let seq = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("icmp_seq="))?
        .parse()
        .ok()?;
    Some((seq, stamp))
}

fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
