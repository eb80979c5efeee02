//! The network-namespace lab, the prober and `baton demo`: a tool used by
//! the netns tests, the benches and newcomers, not part of the daemon. It
//! may use [`crate::agent`] (to talk to a running agent's control socket);
//! the agent never uses it.
//!
//! - this module: a throw-away layer-2 lab in network namespaces
//!   (namespaces, veth pairs, a bridge, spawned processes, teardown on drop);
//! - [`probe`]: a client that pings the VIP and measures the outage;
//! - [`demo`]: `baton demo`, a narrated 3-node failover.
//!
//! ```text
//!   node0 (eth0 .11)   node1 (eth0 .12)   ...   client (eth0 .200)
//!        |                  |                         |
//!   +----+------------------+-------------------------+----+
//!   |  bridge namespace: br0 (veth peers n0, n1, ..., c0)  |
//!   +------------------------------------------------------+
//! ```
//!
//! Addresses: 192.168.77.0/24 and fd00:77::/64, only ever inside the lab's
//! own namespaces. Names carry a tag, the process id and a counter, so labs
//! of parallel tests never meet. Everything is torn down on drop, also when
//! a test panics.

pub mod demo;
pub mod flood;
pub mod probe;
pub mod route;
pub mod route_demo;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The lab's subnet; node i is .11+i, the client .200.
pub const SUBNET4: [u8; 3] = [192, 168, 77];

/// The interface every node and the client have in the lab.
pub const IFNAME: &str = "eth0";

pub struct Lab {
    tag: String,
    /// Scratch directory for configs, sockets, state and logs.
    dir: std::path::PathBuf,
    bridge: String,
    nodes: Vec<String>,
    client: String,
    children: Vec<Child>,
}

/// Start `program` in namespace `ns` (`ip netns exec` execs it, so the
/// pid is the program's), output appended to `log`, and keep its handle.
pub(crate) fn spawn_into(
    children: &mut Vec<Child>,
    ns: &str,
    program: &Path,
    args: &[&str],
    log: &Path,
) -> io::Result<u32> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    let pid = child.id();
    children.push(child);
    Ok(pid)
}

/// Wait for the child `pid` of `children` to exit and reap it; its exit
/// code, or None if it still runs at the timeout.
pub(crate) fn wait_child(
    children: &mut Vec<Child>,
    pid: u32,
    timeout: std::time::Duration,
) -> io::Result<Option<i32>> {
    let Some(pos) = children.iter().position(|c| c.id() == pid) else {
        return Err(io::Error::other(format!("no child {pid}")));
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(st) = children[pos].try_wait()? {
            // Already reaped by try_wait; wait() just returns its status.
            let _ = children.remove(pos).wait();
            return Ok(Some(st.code().unwrap_or(-1)));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Run `ip` (or any command) and fail with its stderr.
pub fn sh(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a root test may go on. Under `CI=true` a missing root panics (a
/// root test skipped in CI would hide a regression); elsewhere this prints
/// "skipped: needs root" and returns false.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this test needs root, and CI=true forbids skipping it");
    }
    eprintln!("skipped: needs root");
    false
}

/// Poll `cond` every 5 ms until it holds and return how long that took; if
/// it does not hold within `timeout`, panic with `what` and `context` (who
/// holds what, logs): the shared waiting rule of the netns tests.
pub fn wait_until<T>(
    subject: &T,
    timeout: std::time::Duration,
    what: &str,
    mut cond: impl FnMut(&T) -> bool,
    context: impl Fn(&T) -> String,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if cond(subject) {
            return start.elapsed();
        }
        if start.elapsed() >= timeout {
            panic!(
                "timed out after {timeout:?} waiting until {what}\n{}",
                context(subject)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `cond` holds for the whole of `period` (checked every 5 ms); otherwise
/// panic with `what` and `context`.
pub fn holds_for<T>(
    subject: &T,
    period: std::time::Duration,
    what: &str,
    mut cond: impl FnMut(&T) -> bool,
    context: impl Fn(&T) -> String,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < period {
        if !cond(subject) {
            panic!(
                "{what} stopped holding after {:?}\n{}",
                start.elapsed(),
                context(subject)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Move the calling thread into network namespace `ns` (`/run/netns/NS`).
/// Only network state follows: the thread keeps the mount namespace, so its
/// `/sys/class/net` still shows the host (ask netlink instead).
pub fn enter_netns(ns: &str) -> io::Result<()> {
    let path = format!("/run/netns/{ns}");
    let file =
        std::fs::File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("setns {path}: {e}")))
}

/// Run `f` on a thread that has entered network namespace `ns` and return
/// its result (a panic in `f` is raised again here). Sockets, netlink and
/// tokio runtimes made in `f` live in that namespace.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    match spawn_in_netns(ns, f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`in_netns`] without waiting: join the handle for the result. Panics on
/// the new thread if the namespace cannot be entered.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let ns = ns.to_owned();
    std::thread::Builder::new()
        .name(format!("in-{ns}"))
        .spawn(move || {
            enter_netns(&ns).unwrap_or_else(|e| panic!("{e}"));
            f()
        })
        .expect("spawning a thread")
}

/// Whether `ifname` in the calling thread's network namespace has the IPv4
/// address `addr`. Asks netlink (getifaddrs), so a thread that entered a
/// node namespace ([`spawn_in_netns`]) can poll it every millisecond.
pub fn has_addr4_here(ifname: &str, addr: Ipv4Addr) -> bool {
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            a.interface_name == ifname
                && a.address
                    .as_ref()
                    .and_then(|s| s.as_sockaddr_in())
                    .is_some_and(|sin| sin.ip() == addr)
        })
    })
}

/// Watches which nodes hold an IPv4 address, every millisecond, from one
/// thread in each node's namespace (netlink, no `ip` process per look), and
/// keeps the times it appeared and disappeared: how long two nodes held it
/// at once is read from the result ([`HoldTimeline::overlap`]).
pub struct HoldWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<JoinHandle<Vec<(std::time::Instant, bool)>>>,
}

impl HoldWatch {
    pub fn start(lab: &Lab, addr: Ipv4Addr) -> HoldWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..lab.nodes())
            .map(|i| {
                let stop = stop.clone();
                spawn_in_netns(lab.node_ns(i), move || {
                    let mut seen: Vec<(std::time::Instant, bool)> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let held = has_addr4_here(IFNAME, addr);
                        if seen.last().is_none_or(|(_, h)| *h != held) {
                            seen.push((std::time::Instant::now(), held));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    seen
                })
            })
            .collect();
        HoldWatch { stop, threads }
    }

    pub fn finish(self) -> HoldTimeline {
        self.stop.store(true, Ordering::Relaxed);
        let nodes = self
            .threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect();
        HoldTimeline {
            nodes,
            end: std::time::Instant::now(),
        }
    }
}

/// What a [`HoldWatch`] saw: per node, when the address appeared (true)
/// and disappeared (false), the first entry being the state at the start.
#[derive(Debug, Clone)]
pub struct HoldTimeline {
    pub nodes: Vec<Vec<(std::time::Instant, bool)>>,
    pub end: std::time::Instant,
}

impl HoldTimeline {
    /// How long, after `from`, two or more nodes held the address at once.
    pub fn overlap(&self, from: std::time::Instant) -> std::time::Duration {
        let mut edges: Vec<(std::time::Instant, i32)> = self
            .nodes
            .iter()
            .flat_map(|n| {
                // A first "not held" is the starting state, not a loss.
                let skip = usize::from(n.first().is_some_and(|(_, held)| !held));
                n.iter()
                    .skip(skip)
                    .map(|&(t, held)| (t, if held { 1 } else { -1 }))
            })
            .collect();
        edges.sort();
        let (mut count, mut total) = (0, std::time::Duration::ZERO);
        let mut last = from;
        for (t, step) in edges.into_iter().chain([(self.end, 0)]) {
            let t_in = t.max(from);
            if count >= 2 {
                total += t_in.saturating_duration_since(last);
            }
            last = last.max(t_in);
            count += step;
        }
        total
    }

    /// When node `i` last lost the address, if it ended without it.
    pub fn released(&self, i: usize) -> Option<std::time::Instant> {
        match self.nodes.get(i)?.last() {
            Some(&(t, false)) => Some(t),
            _ => None,
        }
    }

    /// When node `i` first got the address after `from`.
    pub fn acquired_after(&self, i: usize, from: std::time::Instant) -> Option<std::time::Instant> {
        self.nodes
            .get(i)?
            .iter()
            .find(|(t, held)| *held && *t >= from)
            .map(|(t, _)| *t)
    }
}

/// A current-thread tokio runtime with IO and timers, for [`in_netns`].
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One address of an interface, as `ip -o addr` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The words after the address: `scope global`, `tentative`, a label...
    pub rest: String,
}

impl LabAddr {
    /// Still in duplicate address detection.
    pub fn tentative(&self) -> bool {
        self.rest.split_whitespace().any(|w| w == "tentative")
    }

    /// The addresses in the output of `ip -o addr show`.
    fn parse_all(text: &str) -> Vec<LabAddr> {
        text.lines()
            .filter_map(|line| {
                // "2: eth0    inet 192.168.77.11/24 brd ... scope global eth0\ ..."
                // with the lifetimes after the backslash.
                let line = line.split('\\').next()?;
                let mut words = line.split_whitespace().skip(3);
                let (addr, prefix) = words.next()?.split_once('/')?;
                let rest: Vec<&str> = words.collect();
                Some(LabAddr {
                    addr: addr.parse().ok()?,
                    prefix_len: prefix.parse().ok()?,
                    rest: rest.join(" "),
                })
            })
            .collect()
    }
}

impl Lab {
    /// A bridge, `nodes` node namespaces and one client namespace.
    pub fn new(tag: &str, nodes: usize) -> io::Result<Lab> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{tag}{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("baton-lab-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            dir,
            bridge: format!("{tag}br"),
            nodes: (0..nodes).map(|i| format!("{tag}n{i}")).collect(),
            client: format!("{tag}c"),
            tag,
            children: Vec::new(),
        };
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> io::Result<()> {
        let br = self.bridge.clone();
        sh("ip", &["netns", "add", &br])?;
        self.ns(&br, "ip", &["link", "set", "lo", "up"])?;
        self.ns(
            &br,
            "ip",
            &[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        self.ns(&br, "ip", &["link", "set", "br0", "up"])?;
        let members: Vec<(String, String, u8)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, ns)| (ns.clone(), format!("n{i}"), 11 + i as u8))
            .chain(std::iter::once((
                self.client.clone(),
                "c0".to_string(),
                200,
            )))
            .collect();
        for (ns, peer, host) in members {
            sh("ip", &["netns", "add", &ns])?;
            for key in ["all", "default"] {
                self.ns(
                    &ns,
                    "sysctl",
                    &["-qw", &format!("net.ipv6.conf.{key}.accept_dad=0")],
                )?;
            }
            self.ns(&ns, "ip", &["link", "set", "lo", "up"])?;
            self.ns(
                &br,
                "ip",
                &[
                    "link", "add", &peer, "type", "veth", "peer", "name", IFNAME, "netns", &ns,
                ],
            )?;
            self.ns(&br, "ip", &["link", "set", &peer, "master", "br0", "up"])?;
            let a4 = format!("{}.{}.{}.{host}/24", SUBNET4[0], SUBNET4[1], SUBNET4[2]);
            // The IPv4 host's digits read as hex: node0 is fd00:77::11, as
            // `node_addr6` says, the client fd00:77::200.
            let a6 = format!("fd00:77::{host}/64");
            self.ns(&ns, "ip", &["addr", "add", &a4, "dev", IFNAME])?;
            self.ns(
                &ns,
                "ip",
                &["-6", "addr", "add", &a6, "dev", IFNAME, "nodad"],
            )?;
            self.ns(&ns, "ip", &["link", "set", IFNAME, "up"])?;
        }
        Ok(())
    }

    /// Run a command inside a namespace; an error carries its stderr.
    pub fn ns(&self, ns: &str, program: &str, args: &[&str]) -> io::Result<Output> {
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    pub fn tag(&self) -> &str {
        &self.tag
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
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }
    /// Node i's own IPv4 address.
    pub fn node_addr4(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET4[0], SUBNET4[1], SUBNET4[2], 11 + i as u8)
    }
    pub fn node_addr6(&self, i: usize) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x11 + i as u16)
    }
    /// The client's IPv4 address.
    pub fn client_addr4(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET4[0], SUBNET4[1], SUBNET4[2], 200)
    }

    /// Start a long-running process inside a namespace; it is killed when
    /// the lab is dropped. Output goes to `log` (appended).
    pub fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> io::Result<u32> {
        spawn_into(&mut self.children, ns, program, args, log)
    }

    /// Send a signal to a process started with `spawn` (`ip netns exec`
    /// execs the program, so the pid is the program's).
    pub fn signal(&mut self, pid: u32, sig: nix::sys::signal::Signal) -> io::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(io::Error::from)
    }

    /// Wait for a spawned process to exit; returns its exit code.
    pub fn wait(&mut self, pid: u32, timeout: std::time::Duration) -> io::Result<Option<i32>> {
        wait_child(&mut self.children, pid, timeout)
    }

    /// Take a node's link down (its own eth0) or bring it back.
    pub fn set_link(&self, node: usize, up: bool) -> io::Result<()> {
        let state = if up { "up" } else { "down" };
        self.ns(&self.nodes[node], "ip", &["link", "set", IFNAME, state])
            .map(|_| ())
    }

    /// Down or up the bridge side of a node's veth: the node's eth0 stays
    /// administratively up but loses its carrier (NO-CARRIER), as if its
    /// cable were pulled.
    pub fn set_carrier(&self, node: usize, up: bool) -> io::Result<()> {
        let state = if up { "up" } else { "down" };
        let port = format!("n{node}");
        self.ns(&self.bridge, "ip", &["link", "set", &port, state])
            .map(|_| ())
    }

    /// The addresses on `ifname` in namespace `ns`.
    pub fn addresses(&self, ns: &str, ifname: &str) -> io::Result<Vec<LabAddr>> {
        let out = self.ns(ns, "ip", &["-o", "addr", "show", "dev", ifname])?;
        Ok(LabAddr::parse_all(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The MAC address of `ifname` in namespace `ns`.
    pub fn mac(&self, ns: &str, ifname: &str) -> io::Result<[u8; 6]> {
        // `ip netns exec` mounts the namespace's own /sys.
        let out = self.ns(ns, "cat", &[&format!("/sys/class/net/{ifname}/address")])?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_mac(text.trim())
            .ok_or_else(|| io::Error::other(format!("{ns}: {ifname}: bad MAC {text:?}")))
    }

    /// Is `addr` configured on eth0 of namespace `ns`?
    pub fn has_addr(&self, ns: &str, addr: IpAddr) -> bool {
        self.addresses(ns, IFNAME)
            .is_ok_and(|all| all.iter().any(|a| a.addr == addr))
    }

    /// Which nodes hold `addr` right now.
    pub fn holders(&self, addr: IpAddr) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.has_addr(&self.nodes[i], addr))
            .collect()
    }
}

/// `02:00:00:00:00:99` as bytes.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

/// One baton node of a lab: where its files are.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub config: std::path::PathBuf,
    pub socket: std::path::PathBuf,
    pub state_dir: std::path::PathBuf,
    pub log: std::path::PathBuf,
}

impl NodeFiles {
    /// Paths for node i's baton in a lab's scratch directory.
    pub fn in_dir(dir: &Path, i: usize) -> NodeFiles {
        NodeFiles {
            config: dir.join(format!("node{i}.toml")),
            socket: dir.join(format!("node{i}.sock")),
            state_dir: dir.join(format!("state{i}")),
            log: dir.join(format!("node{i}.log")),
        }
    }

    /// The `[global]` table for node i (its socket and state dir).
    pub fn global_toml(&self, i: usize) -> String {
        format!(
            "[global]\nrouter_id = \"node{i}\"\ncontrol_socket = \"{}\"\nstate_dir = \"{}\"\n\n",
            self.socket.display(),
            self.state_dir.display()
        )
    }

    /// The node's status over its control socket, if it answers.
    pub fn status(&self) -> Option<crate::agent::control::Status> {
        let reply = crate::agent::control::request(
            &self.socket,
            &crate::agent::control::Request::Status {},
            std::time::Duration::from_secs(2),
        )
        .ok()?;
        reply.status
    }

    /// Run the baton CLI against the node's control socket.
    pub fn cli(&self, baton: &Path, args: &[&str]) -> io::Result<Output> {
        let sock = self.socket.display().to_string();
        let mut full: Vec<&str> = args.to_vec();
        full.extend_from_slice(&["-s", &sock]);
        Command::new(baton)
            .args(&full)
            .stdin(Stdio::null())
            .output()
    }
}

/// Write a cluster key (mode 0600) into `dir` and return its path.
pub fn write_cluster_key_in(dir: &Path, key: &[u8]) -> io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("cluster.key");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(key)?;
    Ok(path)
}

/// A `[cluster]` table for node i of a full mesh of nodes named node0,
/// node1, ... listening on port 7480 of `addrs`.
pub fn cluster_toml_for(addrs: &[Ipv4Addr], i: usize, key_file: &Path, heartbeat: &str) -> String {
    let peers: Vec<String> = (0..addrs.len())
        .filter(|&j| j != i)
        .map(|j| format!("\"node{j}={}:7480\"", addrs[j]))
        .collect();
    format!(
        "[cluster]\nnode = \"node{i}\"\nlisten = \"{}:7480\"\npeers = [{}]\nkey_file = \"{}\"\nheartbeat_interval = \"{heartbeat}\"\n\n",
        addrs[i],
        peers.join(", "),
        key_file.display()
    )
}

impl Lab {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Paths for node i's baton: config, control socket, state, log.
    pub fn node_files(&self, i: usize) -> NodeFiles {
        NodeFiles::in_dir(&self.dir, i)
    }

    /// The `[global]` table for node i (its socket and state dir in the lab).
    pub fn global_toml(&self, i: usize) -> String {
        self.node_files(i).global_toml(i)
    }

    /// Write a cluster key (mode 0600) into the lab and return its path.
    pub fn write_cluster_key(&self, key: &[u8]) -> io::Result<std::path::PathBuf> {
        write_cluster_key_in(&self.dir, key)
    }

    /// A `[cluster]` table for node i of a full mesh of all lab nodes on
    /// port 7480, named node0, node1, ...
    pub fn cluster_toml(&self, i: usize, key_file: &Path, heartbeat: &str) -> String {
        let addrs: Vec<Ipv4Addr> = (0..self.nodes.len()).map(|j| self.node_addr4(j)).collect();
        cluster_toml_for(&addrs, i, key_file, heartbeat)
    }

    /// Run the baton CLI against node i's control socket (e.g. `switchover`).
    pub fn baton_cli(&self, baton: &Path, i: usize, args: &[&str]) -> io::Result<Output> {
        self.node_files(i).cli(baton, args)
    }

    /// Write node i's config (`[global]` is prepended) and start
    /// `baton run` in its namespace. Returns the pid.
    pub fn start_baton(&mut self, baton: &Path, i: usize, instances_toml: &str) -> io::Result<u32> {
        let f = self.node_files(i);
        std::fs::write(
            &f.config,
            format!("{}{instances_toml}", self.global_toml(i)),
        )?;
        let cfg = f.config.display().to_string();
        let ns = self.nodes[i].clone();
        self.spawn(&ns, baton, &["run", "-f", &cfg], &f.log)
    }

    /// Wait until node i's agent (process `pid`) answers on its control
    /// socket. Err says why not: it exited (with its code) or stayed silent.
    pub fn wait_for_agent(
        &mut self,
        i: usize,
        pid: u32,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let start = std::time::Instant::now();
        while self.status(i).is_none() {
            if let Ok(Some(code)) = self.wait(pid, std::time::Duration::ZERO) {
                return Err(format!(
                    "baton on node{i} exited ({code}) before answering on its socket"
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!("node{i}'s control socket does not answer"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }

    /// Node i's status over its control socket, if it answers.
    pub fn status(&self, i: usize) -> Option<crate::agent::control::Status> {
        self.node_files(i).status()
    }

    /// The state of instance `name` on node i, if its agent answers.
    pub fn state(&self, i: usize, name: &str) -> Option<crate::vrrp::State> {
        self.status(i)?
            .instances
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.state)
    }

    /// Nodes whose instance `name` is MASTER.
    pub fn masters(&self, name: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state(i, name) == Some(crate::vrrp::State::Master))
            .collect()
    }

    /// Every node's cluster channel sees every other node alive.
    pub fn mesh_ready(&self) -> bool {
        (0..self.nodes.len()).all(|i| {
            self.status(i)
                .and_then(|s| s.cluster)
                .is_some_and(|c| c.peers.iter().all(|p| p.alive))
        })
    }

    /// Poll `cond` every 10 ms until it holds or `timeout` passes.
    pub fn wait_for(
        &self,
        timeout: std::time::Duration,
        mut cond: impl FnMut(&Lab) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Node i's log so far (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_files(i).log).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.nodes.iter().chain([&self.client, &self.bridge]) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("BATON_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_overlap_counts_only_two_holders_after_the_start() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + std::time::Duration::from_millis(n);
        let t = HoldTimeline {
            nodes: vec![
                vec![(ms(0), true), (ms(900), false)],
                vec![(ms(0), false), (ms(400), true)],
            ],
            end: ms(2000),
        };
        assert_eq!(t.overlap(ms(100)), std::time::Duration::from_millis(500));
        assert_eq!(t.overlap(ms(600)), std::time::Duration::from_millis(300));
        assert_eq!(t.released(0), Some(ms(900)));
        assert_eq!(t.released(1), None);
        assert_eq!(t.acquired_after(1, ms(100)), Some(ms(400)));
    }

    #[test]
    fn addresses_are_parsed_from_ip_o_addr() {
        let text = "2: eth0    inet 192.168.77.11/24 brd 192.168.77.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet 192.168.77.100/32 scope global eth0:vip\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:77::101/64 scope global tentative \\       valid_lft forever preferred_lft forever\n";
        let all = LabAddr::parse_all(text);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].addr, IpAddr::V4(Ipv4Addr::new(192, 168, 77, 11)));
        assert_eq!(all[0].prefix_len, 24);
        assert_eq!(all[0].rest, "brd 192.168.77.255 scope global eth0");
        assert!(!all[0].tentative());
        assert_eq!(all[1].prefix_len, 32);
        assert!(all[1].rest.ends_with("eth0:vip"));
        assert_eq!(all[2].addr, "fd00:77::101".parse::<IpAddr>().unwrap());
        assert!(all[2].tentative());
        assert!(LabAddr::parse_all("garbage\n\n").is_empty());
    }

    #[test]
    fn macs_are_parsed() {
        assert_eq!(parse_mac("02:00:00:00:00:99"), Some([2, 0, 0, 0, 0, 0x99]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:zz"), None);
    }
}
