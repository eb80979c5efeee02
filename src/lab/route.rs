//! A routed lab for route mode: nodes in subnets of their own behind a
//! router, FRR (zebra, bgpd, bfdd) in every namespace but the client's, and
//! a client that reaches a VIP only through the router.
//!
//! ```text
//!   node0 (eth0 10.77.1.2)   node1 (eth0 10.77.2.2)   ...   AS 65001, 65002, ...
//!        |                         |
//!   n0 10.77.1.1              n1 10.77.2.1          router, AS 65000
//!   +----+-------------------------+------------------+
//!   |  router namespace: forwards, FRR, eBGP + BFD    |
//!   +------------------------+------------------------+
//!                            | c0 10.77.100.1
//!                     client (eth0 10.77.100.2)
//! ```
//!
//! Node i's subnet is 10.77.(i+1).0/24 and fd00:77:(i+1)::/64 (the router
//! .1 / ::1, the node .2 / ::2), the client's 10.77.100.0/24 and
//! fd00:77:100::/64. A node's FRR runs the shipped configuration,
//! `conf/frr-route-mode.conf`, with only its AS, router id and neighbour
//! filled in: what the lab proves about announcing a VIP is what an
//! operator installs. VIPs live in 10.99.0.0/24 and fd00:99::/64, the range
//! that file lets through.
//!
//! Every FRR daemon has its own pid file, zserv socket, vty sockets, BFD
//! control socket and log in the lab's scratch directory; nothing under
//! /etc/frr or /var/run/frr is read or written. Names carry a tag, the
//! process id and a counter; everything (daemons with SIGTERM, reaped;
//! namespaces; the directory) goes on drop, also when a test panics.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{sh, COUNTER};

/// The shipped FRR configuration of a baton node, with `${NODE_AS}`,
/// `${ROUTER_ID}` and `${PEER}` to fill in.
pub const NODE_FRR_CONF: &str = include_str!("../../conf/frr-route-mode.conf");

/// Where the FRR daemons are (Debian's `frr` package).
pub const FRR_DIR: &str = "/usr/lib/frr";

/// The router's AS; node i has AS 65001 + i.
pub const ROUTER_AS: u32 = 65000;

/// The interface of a node and of the client toward the router.
pub const UPLINK: &str = "eth0";

/// The daemons per FRR instance, in start order.
const DAEMONS: [&str; 3] = ["zebra", "bfdd", "bgpd"];

/// How long FRR gets to start a daemon or to apply its configuration.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which end of a node's uplink to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The node's own eth0.
    Node,
    /// The router's port toward the node (`n<i>`).
    Router,
}

/// One BGP session of the router, as FRR reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub node: usize,
    /// bgpd's state: "Established", "Active", "Idle", ...
    pub bgp: String,
    /// bfdd's status of the same peer: "up", "down", "init", or "" if none.
    pub bfd: String,
}

impl Session {
    pub fn ready(&self) -> bool {
        self.bgp == "Established" && self.bfd == "up"
    }
}

/// One BGP path for a prefix in the router's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPath {
    /// The node that announced it (by the peer's address).
    pub node: Option<usize>,
    /// The MED, if the path carries one.
    pub med: Option<u32>,
    pub best: bool,
}

/// The FRR daemons of one namespace.
struct Frr {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
}

pub struct RouteLab {
    tag: String,
    dir: PathBuf,
    router: String,
    nodes: Vec<String>,
    client: String,
    /// Router first, then node 0, 1, ...
    frr: Vec<Frr>,
    /// Other processes started with [`RouteLab::spawn`].
    children: Vec<Child>,
}

/// Options of the router's BGP (the nodes always run the shipped file).
#[derive(Debug, Clone, Copy, Default)]
pub struct RouterOptions {
    /// `bgp always-compare-med`: compare the MED of paths from different
    /// neighbour ASes, which the priority-as-MED scheme needs (each node
    /// has an AS of its own).
    pub always_compare_med: bool,
}

impl RouteLab {
    /// The namespaces, links and addresses, and FRR running everywhere but
    /// in the client. Does not wait for the sessions: see
    /// [`wait_sessions`](Self::wait_sessions).
    pub fn new(tag: &str, nodes: usize, opts: RouterOptions) -> io::Result<RouteLab> {
        if !(1..=9).contains(&nodes) {
            return Err(io::Error::other(format!("1 to 9 nodes, not {nodes}")));
        }
        for d in DAEMONS {
            let bin = Path::new(FRR_DIR).join(d);
            if !bin.exists() {
                return Err(io::Error::other(format!(
                    "{} is missing (install FRR)",
                    bin.display()
                )));
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{tag}{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("baton-rlab-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let mut lab = RouteLab {
            dir,
            router: format!("{tag}r"),
            nodes: (0..nodes).map(|i| format!("{tag}n{i}")).collect(),
            client: format!("{tag}c"),
            tag,
            frr: Vec::new(),
            children: Vec::new(),
        };
        lab.build()?;
        let router_conf = lab.router_conf(opts);
        let router = lab.router.clone();
        lab.start_frr(&router, "router", &router_conf)?;
        for i in 0..nodes {
            let ns = lab.nodes[i].clone();
            let conf = lab.node_conf(i)?;
            lab.start_frr(&ns, &format!("node{i}"), &conf)?;
        }
        Ok(lab)
    }

    fn build(&mut self) -> io::Result<()> {
        let r = self.router.clone();
        sh("ip", &["netns", "add", &r])?;
        self.ns(&r, "ip", &["link", "set", "lo", "up"])?;
        self.ns(
            &r,
            "sysctl",
            &[
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        let mut members: Vec<(String, String, u8)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, ns)| (ns.clone(), format!("n{i}"), i as u8 + 1))
            .collect();
        members.push((self.client.clone(), "c0".to_string(), 100));
        for (ns, port, net) in members {
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
                &r,
                "ip",
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", UPLINK, "netns", &ns,
                ],
            )?;
            let (r4, r6) = (format!("10.77.{net}.1/24"), format!("fd00:77:{net}::1/64"));
            let (h4, h6) = (format!("10.77.{net}.2/24"), format!("fd00:77:{net}::2/64"));
            self.ns(&r, "ip", &["addr", "add", &r4, "dev", &port])?;
            self.ns(&r, "ip", &["-6", "addr", "add", &r6, "dev", &port, "nodad"])?;
            self.ns(&r, "ip", &["link", "set", &port, "up"])?;
            self.ns(&ns, "ip", &["addr", "add", &h4, "dev", UPLINK])?;
            self.ns(
                &ns,
                "ip",
                &["-6", "addr", "add", &h6, "dev", UPLINK, "nodad"],
            )?;
            self.ns(&ns, "ip", &["link", "set", UPLINK, "up"])?;
            let (g4, g6) = (format!("10.77.{net}.1"), format!("fd00:77:{net}::1"));
            self.ns(&ns, "ip", &["route", "add", "default", "via", &g4])?;
            self.ns(&ns, "ip", &["-6", "route", "add", "default", "via", &g6])?;
        }
        Ok(())
    }

    /// The shipped node configuration with node i's values filled in.
    pub fn node_conf(&self, i: usize) -> io::Result<String> {
        let text = NODE_FRR_CONF
            .replace("${NODE_AS}", &(ROUTER_AS + 1 + i as u32).to_string())
            .replace("${ROUTER_ID}", &format!("10.77.{}.2", i + 1))
            .replace("${PEER}", &format!("10.77.{}.1", i + 1));
        if text.contains("${") {
            return Err(io::Error::other(
                "conf/frr-route-mode.conf has a ${...} the lab does not fill in",
            ));
        }
        Ok(text)
    }

    /// The router's configuration: eBGP with BFD to every node (the same
    /// fast timers as the nodes), accepting whatever a node announces (so
    /// that the nodes' own filter is what is tested) and announcing nothing.
    fn router_conf(&self, opts: RouterOptions) -> String {
        let mut c = String::from(
            "bfd\n profile lab\n  detect-multiplier 3\n  receive-interval 100\n  \
             transmit-interval 100\n exit\nexit\n!\n\
             route-map LAB-ALL permit 10\nexit\nroute-map LAB-NONE deny 10\nexit\n!\n",
        );
        c += &format!("router bgp {ROUTER_AS}\n bgp router-id 10.77.100.1\n timers bgp 1 3\n");
        if opts.always_compare_med {
            c += " bgp always-compare-med\n";
        }
        c += " neighbor NODES peer-group\n neighbor NODES remote-as external\n \
              neighbor NODES bfd profile lab\n neighbor NODES advertisement-interval 0\n \
              neighbor NODES timers connect 1\n";
        for i in 0..self.nodes.len() {
            c += &format!(" neighbor 10.77.{}.2 peer-group NODES\n", i + 1);
        }
        for af in ["ipv4", "ipv6"] {
            c += &format!(" address-family {af} unicast\n");
            if af == "ipv6" {
                c += "  neighbor NODES activate\n";
            }
            c += "  neighbor NODES route-map LAB-ALL in\n  \
                   neighbor NODES route-map LAB-NONE out\n exit-address-family\n";
        }
        c += "exit\n";
        c
    }

    /// Start zebra, bfdd and bgpd in namespace `ns` (foreground, children
    /// of this process), each with its own part of the integrated `conf`
    /// ([`split_conf`]), read before its first session starts. (Applied
    /// afterwards through vtysh, as `frr.service` does, the first lines
    /// start sessions that the later ones reset, and that costs seconds.)
    /// `vtysh -C` checks the whole first.
    fn start_frr(&mut self, ns: &str, name: &str, conf: &str) -> io::Result<()> {
        let dir = self.dir.join(format!("frr-{name}"));
        std::fs::create_dir_all(&dir)?;
        let conf_path = dir.join("frr.conf");
        std::fs::write(&conf_path, conf)?;
        let check = Command::new("vtysh")
            .arg("-C")
            .arg("-f")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .output()?;
        if !check.status.success() {
            return Err(io::Error::other(format!(
                "{name}: vtysh -C refuses the FRR configuration:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            )));
        }
        let (bfdd, bgpd) = split_conf(conf);
        std::fs::write(dir.join("zebra.conf"), "")?;
        std::fs::write(dir.join("bfdd.conf"), bfdd)?;
        std::fs::write(dir.join("bgpd.conf"), bgpd)?;
        self.frr.push(Frr {
            name: name.to_string(),
            dir: dir.clone(),
            children: Vec::new(),
        });
        let p = |f: &str| dir.join(f).display().to_string();
        for daemon in DAEMONS {
            let (conf, pid, log) = (
                p(&format!("{daemon}.conf")),
                p(&format!("{daemon}.pid")),
                format!("file:{}", p(&format!("{daemon}.log"))),
            );
            let (zserv, vty, bfdctl) = (p("zserv.api"), p(""), p("bfdd.sock"));
            // FRR refuses a user outside its vty group: root with that group.
            let mut args = vec![
                "-u",
                "root",
                "-g",
                "frrvty",
                "-f",
                &conf,
                "-i",
                &pid,
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "-P",
                "0",
                "--log",
                &log,
            ];
            if daemon == "bfdd" {
                args.extend(["--bfdctl", &bfdctl]);
            }
            let out = std::fs::File::create(dir.join(format!("{daemon}.out")))?;
            let child = Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(Path::new(FRR_DIR).join(daemon))
                .args(&args)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()?;
            self.frr.last_mut().expect("pushed").children.push(child);
            // Its vty socket is the last thing a daemon opens.
            let sock = dir.join(format!("{daemon}.vty"));
            if poll(START_TIMEOUT, || sock.exists()).is_none() {
                return Err(io::Error::other(format!(
                    "{name}: {daemon} did not open {}\n{}",
                    sock.display(),
                    self.frr_log(name)
                )));
            }
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
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }
    pub fn router_ns(&self) -> &str {
        &self.router
    }
    pub fn node_ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }
    pub fn client_ns(&self) -> &str {
        &self.client
    }
    /// Node i's own address (its BGP session's and the cluster channel's).
    pub fn node_addr4(&self, i: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 77, i as u8 + 1, 2)
    }
    pub fn node_addr6(&self, i: usize) -> std::net::Ipv6Addr {
        std::net::Ipv6Addr::new(0xfd00, 0x77, i as u16 + 1, 0, 0, 0, 0, 2)
    }
    pub fn client_addr4(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 77, 100, 2)
    }
    /// The router's FRR directory (its vty sockets): `vtysh --vty_socket`.
    pub fn router_frr_dir(&self) -> &Path {
        &self.frr[0].dir
    }
    pub fn node_frr_dir(&self, i: usize) -> &Path {
        &self.frr[i + 1].dir
    }

    /// Run vtysh commands against the FRR of `dir` and return what it says.
    pub fn vtysh(dir: &Path, commands: &[&str]) -> io::Result<String> {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket").arg(dir).stdin(Stdio::null());
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "vtysh {commands:?}: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn router_json(&self, command: &str) -> io::Result<serde_json::Value> {
        let text = Self::vtysh(self.router_frr_dir(), &[command])?;
        serde_json::from_str(&text)
            .map_err(|e| io::Error::other(format!("{command}: not JSON ({e}): {text}")))
    }

    /// The node behind router port `n<i>`.
    fn node_of_port(&self, port: &str) -> Option<usize> {
        let i: usize = port.strip_prefix('n')?.parse().ok()?;
        (i < self.nodes.len()).then_some(i)
    }

    /// The node whose session address is `addr` (10.77.(i+1).2).
    fn node_of_peer(&self, addr: &str) -> Option<usize> {
        let ip: std::net::Ipv4Addr = addr.parse().ok()?;
        let [a, b, c, d] = ip.octets();
        let i = usize::from(c).checked_sub(1)?;
        ([a, b, d] == [10, 77, 2] && i < self.nodes.len()).then_some(i)
    }

    /// The nodes zebra's selected route for `prefix` (e.g. "10.99.0.100/32"
    /// or "fd00:99::100/128") points at on the router, from `show ip route
    /// PREFIX json`; empty if it has none.
    pub fn router_route(&self, prefix: &str) -> io::Result<Vec<usize>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ip" };
        let v = self.router_json(&format!("show {family} route {prefix} json"))?;
        Ok(route_nodes(&v, prefix, |port| self.node_of_port(port)))
    }

    /// The nodes the router's kernel forwards `prefix` to (`ip route show`):
    /// what the client's packets actually follow.
    pub fn router_fib(&self, prefix: &str) -> io::Result<Vec<usize>> {
        fib_nodes(&self.router, prefix, |port| self.node_of_port(port))
    }

    /// The BGP paths the router has for `prefix` (`show bgp ... json`).
    pub fn router_paths(&self, prefix: &str) -> io::Result<Vec<BgpPath>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let v = self.router_json(&format!("show bgp {family} unicast {prefix} json"))?;
        Ok(bgp_paths(&v, |peer| self.node_of_peer(peer)))
    }

    /// The router's BGP session and BFD peer of every node.
    pub fn sessions(&self) -> io::Result<Vec<Session>> {
        let bgp = self.router_json("show bgp ipv4 unicast summary json")?;
        let bfd = self.router_json("show bfd peers json")?;
        Ok((0..self.nodes.len())
            .map(|i| {
                let peer = self.node_addr4(i).to_string();
                Session {
                    node: i,
                    bgp: bgp["peers"][&peer]["state"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    bfd: bfd
                        .as_array()
                        .and_then(|all| all.iter().find(|p| p["peer"] == peer.as_str()))
                        .and_then(|p| p["status"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                }
            })
            .collect())
    }

    /// Wait until every node's session is Established with BFD up, and
    /// return how long that took; Err with the sessions and the FRR logs if
    /// not within `timeout`.
    pub fn wait_sessions(&self, timeout: Duration) -> io::Result<Duration> {
        self.wait_for(timeout, "every BGP session Established, BFD up", |lab| {
            lab.sessions().is_ok_and(|s| s.iter().all(Session::ready))
        })
    }

    /// Wait until the router's forwarding table sends `prefix` to exactly
    /// `nodes` (empty: no route), polling the kernel every few ms.
    pub fn wait_fib(
        &self,
        prefix: &str,
        nodes: &[usize],
        timeout: Duration,
    ) -> io::Result<Duration> {
        self.wait_for(
            timeout,
            &format!("the router forwards {prefix} to {nodes:?}"),
            |lab| lab.router_fib(prefix).is_ok_and(|got| got == nodes),
        )
    }

    /// Poll `cond` until it holds; Err with the router's view if it does
    /// not within `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&RouteLab) -> bool,
    ) -> io::Result<Duration> {
        poll(timeout, || cond(self)).ok_or_else(|| {
            io::Error::other(format!(
                "timed out after {timeout:?} waiting until {what}\n{}",
                self.context()
            ))
        })
    }

    /// The router's sessions, BGP table and routes, for failure messages.
    pub fn context(&self) -> String {
        let view = Self::vtysh(
            self.router_frr_dir(),
            &[
                "show bgp summary",
                "show bfd peers brief",
                "show bgp ipv4 unicast",
                "show ip route bgp",
            ],
        )
        .unwrap_or_else(|e| e.to_string());
        format!("--- router ---\n{view}")
    }

    /// The logs of the FRR instance `name` ("router", "node0", ...).
    pub fn frr_log(&self, name: &str) -> String {
        let Some(f) = self.frr.iter().find(|f| f.name == name) else {
            return String::new();
        };
        DAEMONS
            .iter()
            .flat_map(|d| [format!("{d}.out"), format!("{d}.log")])
            .map(|file| {
                let text = std::fs::read_to_string(f.dir.join(&file)).unwrap_or_default();
                format!("--- {name} {file} ---\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Add a VIP to node i's `lo` as a host route (/32 or /128), as a
    /// route-mode holder does. `metric` becomes the route's metric in
    /// zebra and so the MED the router sees (see `conf/frr-route-mode.conf`).
    pub fn add_vip(&self, i: usize, vip: IpAddr, metric: Option<u32>) -> io::Result<()> {
        let addr = host_prefix(vip);
        let metric = metric.map(|m| m.to_string());
        let mut args = vec!["addr", "add", &addr, "dev", "lo"];
        if let Some(m) = &metric {
            args.extend(["metric", m]);
        }
        self.ns(&self.nodes[i], "ip", &args).map(|_| ())
    }

    /// Remove a VIP from node i's `lo`.
    pub fn del_vip(&self, i: usize, vip: IpAddr) -> io::Result<()> {
        let addr = host_prefix(vip);
        self.ns(&self.nodes[i], "ip", &["addr", "del", &addr, "dev", "lo"])
            .map(|_| ())
    }

    /// Take one end of node i's uplink down or up. Either way the other
    /// end loses its carrier, which both zebras see at once. Bringing the
    /// node's side up restores its default routes.
    pub fn set_uplink(&self, i: usize, side: Side, up: bool) -> io::Result<()> {
        let state = if up { "up" } else { "down" };
        let (ns, dev) = match side {
            Side::Node => (self.nodes[i].clone(), UPLINK.to_string()),
            Side::Router => (self.router.clone(), format!("n{i}")),
        };
        self.ns(&ns, "ip", &["link", "set", &dev, state])?;
        // The node's default routes went with its link: put them back.
        if side == Side::Node && up {
            let (g4, g6) = (
                format!("10.77.{}.1", i + 1),
                format!("fd00:77:{}::1", i + 1),
            );
            self.ns(&ns, "ip", &["route", "replace", "default", "via", &g4])?;
            // onlink: the /64 may not be back yet (IPv6 waits for carrier).
            let v6 = [
                "-6", "route", "replace", "default", "via", &g6, "dev", UPLINK, "onlink",
            ];
            self.ns(&ns, "ip", &v6)?;
        }
        Ok(())
    }

    /// Cut node i's uplink silently (`true`) or mend it: the router drops
    /// every packet to and from port `n<i>` with nftables while both links
    /// stay up, as when something between them dies. Only BFD (or, without
    /// it, the BGP hold timer) notices.
    pub fn cut_uplink(&self, i: usize, cut: bool) -> io::Result<()> {
        let table = format!("cut{i}");
        if !cut {
            return self
                .ns(&self.router, "nft", &["delete", "table", "inet", &table])
                .map(|_| ());
        }
        let port = format!("n{i}");
        let rules = format!(
            "table inet {table} {{\n\
             chain c_in {{ type filter hook input priority -10; iifname \"{port}\" drop; }}\n\
             chain c_fwd {{ type filter hook forward priority -10; iifname \"{port}\" drop; oifname \"{port}\" drop; }}\n\
             chain c_out {{ type filter hook output priority -10; oifname \"{port}\" drop; }}\n}}\n"
        );
        let file = self.dir.join(format!("{table}.nft"));
        std::fs::write(&file, rules)?;
        let path = file.display().to_string();
        self.ns(&self.router, "nft", &["-f", &path]).map(|_| ())
    }

    /// Packets node i has sent on its uplink so far.
    pub fn node_tx_packets(&self, i: usize) -> io::Result<u64> {
        // `ip netns exec` mounts the namespace's own /sys.
        let path = format!("/sys/class/net/{UPLINK}/statistics/tx_packets");
        let out = self.ns(&self.nodes[i], "cat", &[&path])?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("{path}: {e}")))
    }

    /// Start a long-running process (baton, say) in namespace `ns`; it is
    /// killed and reaped when the lab is dropped. Output goes to `log`.
    pub fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> io::Result<u32> {
        super::spawn_into(&mut self.children, ns, program, args, log)
    }
}

/// baton on the lab's nodes: node i is `node{i}`, its channel listens on
/// its uplink address (the mesh crosses the router), its VIPs go on `lo`.
impl RouteLab {
    /// Paths for node i's baton: config, control socket, state, log.
    pub fn node_files(&self, i: usize) -> super::NodeFiles {
        super::NodeFiles::in_dir(&self.dir, i)
    }

    /// Write node i's config (`[global]`, a `[cluster]` of every lab node
    /// with `heartbeat`, then `instances_toml`) and start `baton run` in
    /// its namespace. Returns the pid.
    pub fn start_baton(
        &mut self,
        baton: &Path,
        i: usize,
        key_file: &Path,
        heartbeat: &str,
        instances_toml: &str,
    ) -> io::Result<u32> {
        let f = self.node_files(i);
        let addrs: Vec<_> = (0..self.nodes.len()).map(|j| self.node_addr4(j)).collect();
        let cluster = super::cluster_toml_for(&addrs, i, key_file, heartbeat);
        std::fs::write(
            &f.config,
            format!("{}{cluster}{instances_toml}", f.global_toml(i)),
        )?;
        let cfg = f.config.display().to_string();
        let ns = self.nodes[i].clone();
        self.spawn(&ns, baton, &["run", "-f", &cfg], &f.log)
    }

    /// Write a cluster key (mode 0600) into the lab and return its path.
    pub fn write_cluster_key(&self, key: &[u8]) -> io::Result<PathBuf> {
        super::write_cluster_key_in(&self.dir, key)
    }

    /// Node i's status over its control socket, if it answers.
    pub fn status(&self, i: usize) -> Option<crate::agent::control::Status> {
        self.node_files(i).status()
    }

    /// Nodes whose instance `name` is MASTER.
    pub fn masters(&self, name: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.status(i).is_some_and(|s| {
                    s.instances
                        .iter()
                        .any(|x| x.name == name && x.state == crate::vrrp::State::Master)
                })
            })
            .collect()
    }

    /// Nodes that have `vip` on their `lo`.
    pub fn holders(&self, vip: IpAddr) -> Vec<usize> {
        let want = vip.to_string();
        (0..self.nodes.len())
            .filter(|&i| {
                self.ns(&self.nodes[i], "ip", &["-o", "addr", "show", "dev", "lo"])
                    .is_ok_and(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .split_whitespace()
                            .any(|w| w.split('/').next() == Some(want.as_str()))
                    })
            })
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

    /// Run the baton CLI against node i's control socket.
    pub fn baton_cli(&self, baton: &Path, i: usize, args: &[&str]) -> io::Result<Output> {
        self.node_files(i).cli(baton, args)
    }

    /// Send a signal to a process started with `spawn`.
    pub fn signal(&self, pid: u32, sig: nix::sys::signal::Signal) -> io::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(io::Error::from)
    }

    /// Wait for a spawned process to exit; returns its exit code (None:
    /// still running at the timeout).
    pub fn wait(&mut self, pid: u32, timeout: Duration) -> io::Result<Option<i32>> {
        super::wait_child(&mut self.children, pid, timeout)
    }

    /// Node i's baton log.
    pub fn baton_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_files(i).log).unwrap_or_default()
    }
}

impl Drop for RouteLab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // SIGTERM to every daemon at once, then reap each (SIGKILL after a
        // grace period): zebra takes its routes out, bgpd says goodbye.
        let all: Vec<&mut Child> = self
            .frr
            .iter_mut()
            .flat_map(|f| f.children.iter_mut().rev())
            .collect();
        for c in &all {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for c in all {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.nodes.iter().chain([&self.client, &self.router]) {
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

/// An integrated FRR configuration split between the daemons that read
/// it: the `bfd` block for bfdd, everything else (prefix-lists, route-maps,
/// `router bgp`) for bgpd. A block is a line at the left margin with the
/// indented lines and the `exit` after it; comments are dropped.
pub fn split_conf(conf: &str) -> (String, String) {
    let (mut bfdd, mut bgpd) = (String::new(), String::new());
    let mut to_bfdd = false;
    for line in conf.lines() {
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('!') {
            continue;
        }
        if !line.starts_with(' ') && text != "exit" {
            to_bfdd = text.split_whitespace().next() == Some("bfd");
        }
        let out = if to_bfdd { &mut bfdd } else { &mut bgpd };
        out.push_str(line);
        out.push('\n');
    }
    (bfdd, bgpd)
}

/// "10.99.0.100/32" or "fd00:99::100/128".
fn host_prefix(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// Poll `cond` every 5 ms until it holds (how long that took) or `timeout`
/// passes (None).
fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The nodes of zebra's selected, installed route for `prefix` in the
/// output of `show ip route PREFIX json`, sorted.
fn route_nodes(
    v: &serde_json::Value,
    prefix: &str,
    node_of_port: impl Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    let mut nodes: Vec<usize> = v[prefix]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["selected"] == true && r["installed"] == true)
        .flat_map(|r| r["nexthops"].as_array().into_iter().flatten())
        .filter(|nh| nh["fib"] == true)
        .filter_map(|nh| nh["interfaceName"].as_str().and_then(&node_of_port))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The nodes a kernel route for `prefix` in namespace `ns` goes to (one
/// nexthop or several), sorted; empty if there is none.
fn fib_nodes(
    ns: &str,
    prefix: &str,
    node_of_port: impl Fn(&str) -> Option<usize>,
) -> io::Result<Vec<usize>> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let out = sh("ip", &["-n", ns, "-j", family, "route", "show", prefix])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| io::Error::other(format!("ip -j route: {e}")))?;
    Ok(fib_json_nodes(&v, node_of_port))
}

fn fib_json_nodes(
    v: &serde_json::Value,
    node_of_port: impl Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    let mut nodes: Vec<usize> = v
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| match r["nexthops"].as_array() {
            Some(nhs) => nhs.iter().collect::<Vec<_>>(),
            None => vec![r],
        })
        .filter_map(|nh| nh["dev"].as_str().and_then(&node_of_port))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The paths in `show bgp ipv4 unicast PREFIX json`.
fn bgp_paths(v: &serde_json::Value, node_of_peer: impl Fn(&str) -> Option<usize>) -> Vec<BgpPath> {
    v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| BgpPath {
            node: p["peer"]["peerId"].as_str().and_then(&node_of_peer),
            med: p["metric"].as_u64().and_then(|m| u32::try_from(m).ok()),
            best: p["bestpath"]["overall"] == true,
        })
        .collect()
}

/// Watches where the router's kernel forwards a prefix, every few
/// milliseconds, and keeps each change with its time: when the router
/// stopped using a node, and how long two nodes were used at once, are
/// read from the result.
pub struct FibWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Instant, Vec<usize>)>>,
}

impl FibWatch {
    pub fn start(lab: &RouteLab, prefix: &str) -> FibWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ns, prefix, nodes) = (lab.router.clone(), prefix.to_string(), lab.nodes.len());
        let node_of_port = move |port: &str| {
            let i: usize = port.strip_prefix('n')?.parse().ok()?;
            (i < nodes).then_some(i)
        };
        let handle = std::thread::spawn(move || {
            let mut seen: Vec<(Instant, Vec<usize>)> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(now) = fib_nodes(&ns, &prefix, node_of_port) {
                    if seen.last().is_none_or(|(_, last)| *last != now) {
                        seen.push((Instant::now(), now));
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        });
        FibWatch { stop, handle }
    }

    /// Every change seen: when, and the nodes forwarded to from then on.
    pub fn finish(self) -> Vec<(Instant, Vec<usize>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// In a [`FibWatch`] history: the first time at or after `from` when the
/// router no longer forwarded to `node`.
pub fn stopped_using(
    history: &[(Instant, Vec<usize>)],
    node: usize,
    from: Instant,
) -> Option<Instant> {
    let before = history
        .iter()
        .rev()
        .find(|(t, _)| *t <= from)
        .is_none_or(|(_, n)| !n.contains(&node));
    if before {
        return Some(from);
    }
    history
        .iter()
        .find(|(t, n)| *t > from && !n.contains(&node))
        .map(|(t, _)| *t)
}

/// In a [`FibWatch`] history: how long after `from` the router forwarded
/// to two or more nodes at once (ECMP during a make-before-break).
pub fn multi_path_time(history: &[(Instant, Vec<usize>)], from: Instant, end: Instant) -> Duration {
    let mut total = Duration::ZERO;
    for (k, (t, nodes)) in history.iter().enumerate() {
        let next = history.get(k + 1).map_or(end, |(t, _)| *t);
        let (a, b) = ((*t).max(from), next.max(from));
        if nodes.len() >= 2 {
            total += b.saturating_duration_since(a);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(p: &str) -> Option<usize> {
        let i: usize = p.strip_prefix('n')?.parse().ok()?;
        (i < 3).then_some(i)
    }

    #[test]
    fn zebra_route_json_gives_the_installed_nexthops() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"10.99.0.100/32":[{"prefix":"10.99.0.100/32","protocol":"bgp","selected":true,
                "installed":true,"nexthops":[{"fib":true,"ip":"10.77.2.2","interfaceName":"n1","active":true},
                {"ip":"10.77.1.2","interfaceName":"n0","active":true}]},
               {"protocol":"static","nexthops":[{"fib":true,"interfaceName":"n2"}]}]}"#,
        )
        .unwrap();
        assert_eq!(route_nodes(&v, "10.99.0.100/32", port), vec![1]);
        assert!(route_nodes(&v, "10.99.0.101/32", port).is_empty());
        let none: serde_json::Value = serde_json::from_str("{}").unwrap();
        assert!(route_nodes(&none, "10.99.0.100/32", port).is_empty());
    }

    #[test]
    fn kernel_route_json_gives_one_or_many_nodes() {
        let one: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"10.99.0.100","gateway":"10.77.1.2","dev":"n0","protocol":"bgp"}]"#,
        )
        .unwrap();
        assert_eq!(fib_json_nodes(&one, port), vec![0]);
        let two: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"10.99.0.100","protocol":"bgp","nexthops":[{"gateway":"10.77.2.2","dev":"n1"},
                {"gateway":"10.77.1.2","dev":"n0"}]}]"#,
        )
        .unwrap();
        assert_eq!(fib_json_nodes(&two, port), vec![0, 1]);
        let odd: serde_json::Value = serde_json::from_str(r#"[{"dev":"c0"},{"x":1}]"#).unwrap();
        assert!(fib_json_nodes(&odd, port).is_empty());
        assert!(fib_json_nodes(&serde_json::Value::Null, port).is_empty());
    }

    #[test]
    fn bgp_paths_are_read_with_peer_med_and_best() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"prefix":"10.99.0.100/32","paths":[
                {"metric":100,"peer":{"peerId":"10.77.1.2"},"bestpath":{"overall":true}},
                {"peer":{"peerId":"10.77.2.2"}}]}"#,
        )
        .unwrap();
        let by_peer = |p: &str| match p {
            "10.77.1.2" => Some(0),
            "10.77.2.2" => Some(1),
            _ => None,
        };
        let paths = bgp_paths(&v, by_peer);
        assert_eq!(
            paths,
            vec![
                BgpPath {
                    node: Some(0),
                    med: Some(100),
                    best: true
                },
                BgpPath {
                    node: Some(1),
                    med: None,
                    best: false
                },
            ]
        );
        assert!(bgp_paths(&serde_json::json!({}), by_peer).is_empty());
    }

    #[test]
    fn fib_history_is_read() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let h = vec![
            (ms(0), vec![0]),
            (ms(100), vec![0, 1]),
            (ms(130), vec![1]),
            (ms(500), vec![]),
        ];
        assert_eq!(stopped_using(&h, 0, ms(50)), Some(ms(130)));
        assert_eq!(
            stopped_using(&h, 0, ms(200)),
            Some(ms(200)),
            "already not used"
        );
        assert_eq!(
            stopped_using(&h, 1, ms(50)),
            Some(ms(50)),
            "not used at 50 ms"
        );
        assert_eq!(stopped_using(&h, 1, ms(120)), Some(ms(500)));
        assert_eq!(
            multi_path_time(&h, ms(0), ms(600)),
            Duration::from_millis(30)
        );
        assert_eq!(
            multi_path_time(&h, ms(120), ms(600)),
            Duration::from_millis(10)
        );
        assert_eq!(stopped_using(&[], 0, ms(0)), Some(ms(0)));
    }

    #[test]
    fn the_integrated_config_is_split_between_bfdd_and_bgpd() {
        let conf = "! a comment\nbfd\n profile p\n  detect-multiplier 3\n exit\nexit\n!\n\
                    ip prefix-list L seq 10 permit 10.0.0.0/8 ge 32\nroute-map M permit 10\n \
                    match ip address prefix-list L\nexit\nrouter bgp 1\n neighbor x bfd\nexit\n";
        let (bfdd, bgpd) = split_conf(conf);
        assert_eq!(
            bfdd,
            "bfd\n profile p\n  detect-multiplier 3\n exit\nexit\n"
        );
        assert_eq!(
            bgpd,
            "ip prefix-list L seq 10 permit 10.0.0.0/8 ge 32\nroute-map M permit 10\n \
             match ip address prefix-list L\nexit\nrouter bgp 1\n neighbor x bfd\nexit\n"
        );
        let (bfdd, bgpd) = split_conf(NODE_FRR_CONF);
        assert!(bfdd.starts_with("bfd\n") && bfdd.contains("transmit-interval 100"));
        assert!(!bgpd.contains("bfd\n") && bgpd.contains("redistribute connected"));
    }

    #[test]
    fn the_shipped_node_config_has_only_the_three_placeholders() {
        let mut rest = NODE_FRR_CONF;
        let mut seen = Vec::new();
        while let Some(k) = rest.find("${") {
            let end = rest[k..].find('}').expect("closed placeholder") + k;
            seen.push(&rest[k..=end]);
            rest = &rest[end..];
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, ["${NODE_AS}", "${PEER}", "${ROUTER_ID}"]);
    }
}
