//! Routes and rules in real namespaces: `virtual_routes` / `virtual_rules`
//! follow the master, `static_*` stay on every node while baton runs, and
//! a VIP's `label`, `brd` and `scope` reach the kernel.
//!
//! ```text
//!   node0 (.11)      node1 (.12)      client (.200, the gateway)
//!   baton run        baton run
//!       |                |                  |
//!   +---+----------------+------------------+---+
//!   |         bridge namespace (br0)            |
//!   +-------------------------------------------+
//! ```
//!
//! Needs root: without it the test prints "skipped: needs root" and
//! passes, except under `CI=true`, where a skip is a failure.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use baton::lab::{self, Lab};
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VIP: &str = "192.168.77.100";
const ELECTION: Duration = Duration::from_secs(5);
const FAILOVER: Duration = Duration::from_secs(3);

/// node i's config: one instance with the VIP (label, brd, scope), two
/// virtual routes in table 100 (one with the VIP as source, which the
/// kernel only takes once the VIP is there), a virtual rule, and static
/// entries of each kind.
fn config(lab: &Lab, i: usize, priority: u8) -> String {
    let mut t = lab.global_toml(i);
    let gw = lab.client_addr4();
    let _ = write!(
        t,
        "static_ips = [\"192.168.77.{}/24 dev eth0 label eth0:st\"]\n\
         static_routes = [\"10.96.0.0/24 via {gw} table 200\"]\n\
         static_rules = [\"from 10.95.0.0/24 table 200 priority 1200\"]\n\n\
         [[instance]]\n\
         name = \"{NAME}\"\n\
         interface = \"eth0\"\n\
         vrid = 61\n\
         priority = {priority}\n\
         advert_interval = \"100ms\"\n\
         virtual_ips = [\"{VIP}/24 label eth0:vip\"]\n\
         virtual_ips_excluded = [\"10.77.5.1/24 brd 10.77.5.127 scope link label eth0:ex\"]\n\
         virtual_routes = [\"10.99.0.0/24 via {gw} table 100\", \
                           \"src {VIP} 10.97.0.0/24 via {gw} table 100 metric 7\"]\n\
         virtual_rules = [\"from 10.98.0.0/24 table 100 priority 1100\"]\n",
        50 + i
    );
    t
}

struct Case {
    lab: Lab,
    pids: Vec<Option<u32>>,
}

impl Case {
    fn start(&mut self, i: usize, priority: u8) {
        let f = self.lab.node_files(i);
        std::fs::write(&f.config, config(&self.lab, i, priority)).expect("writing the config");
        let cfg = f.config.display().to_string();
        let ns = self.lab.node_ns(i).to_string();
        let pid = self
            .lab
            .spawn(&ns, Path::new(BATON), &["run", "-f", &cfg], &f.log)
            .expect("starting baton");
        self.pids[i] = Some(pid);
        if let Err(e) = self.lab.wait_for_agent(i, pid, ELECTION) {
            panic!("{e}\n{}", self.context());
        }
    }

    /// `ip ARGS` in node i's namespace: its output, empty when it fails
    /// (`ip route show table 100` fails while the table does not exist).
    fn ip(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", self.lab.node_ns(i), "ip"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip {args:?} on node{i}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn table(&self, i: usize, table: &str) -> String {
        self.ip(i, &["route", "show", "table", table])
    }

    fn rules(&self, i: usize) -> String {
        self.ip(i, &["rule", "show"])
    }

    /// The instance's virtual routes and rule, all of them.
    fn has_virtual(&self, i: usize) -> bool {
        let t = self.table(i, "100");
        t.contains("10.99.0.0/24 via 192.168.77.200 dev eth0 proto keepalived")
            && t.contains("10.97.0.0/24 via 192.168.77.200 dev eth0 proto keepalived src 192.168.77.100 metric 7")
            && self
                .rules(i)
                .contains("1100:\tfrom 10.98.0.0/24 lookup 100 proto keepalived")
    }

    /// None of them.
    fn has_no_virtual(&self, i: usize) -> bool {
        self.table(i, "100").trim().is_empty() && !self.rules(i).contains("1100:")
    }

    fn static_addr(i: usize) -> String {
        format!("192.168.77.{}/24", 50 + i)
    }

    fn has_statics(&self, i: usize) -> bool {
        self.ip(i, &["-4", "addr", "show", "dev", "eth0"])
            .lines()
            .any(|l| l.contains(&Self::static_addr(i)) && l.contains("eth0:st"))
            && self
                .table(i, "200")
                .contains("10.96.0.0/24 via 192.168.77.200 dev eth0 proto keepalived")
            && self
                .rules(i)
                .contains("1200:\tfrom 10.95.0.0/24 lookup 200 proto keepalived")
    }

    fn has_no_statics(&self, i: usize) -> bool {
        !self
            .ip(i, &["-4", "addr", "show", "dev", "eth0"])
            .contains(&Self::static_addr(i))
            && self.table(i, "200").trim().is_empty()
            && !self.rules(i).contains("1200:")
    }

    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut(&Case) -> bool) {
        lab::wait_until(self, timeout, what, cond, Case::context);
    }

    fn context(&self) -> String {
        let mut out = String::new();
        for i in 0..self.lab.nodes() {
            let _ = writeln!(
                out,
                "node{i}: {:?}\n{}{}{}{}",
                self.lab.state(i, NAME),
                self.ip(i, &["-4", "addr", "show", "dev", "eth0"]),
                self.table(i, "100"),
                self.table(i, "200"),
                self.rules(i)
            );
            let log = self.lab.log(i);
            let _ = writeln!(
                out,
                "----- node{i} log -----\n{}",
                &log[log.len().saturating_sub(4000)..]
            );
        }
        out
    }
}

#[test]
fn routes_and_rules_follow_the_master_and_statics_stay() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case {
        lab: Lab::new("brt", 2).expect("building the namespace lab"),
        pids: vec![None, None],
    };

    // node0 alone: master, with the virtual routes and rule, and statics.
    c.start(0, 100);
    c.wait(ELECTION, "node0 is master with its routes and rule", |c| {
        c.lab.masters(NAME) == [0] && c.has_virtual(0)
    });
    assert!(c.has_statics(0), "node0's statics\n{}", c.context());

    // The addresses carry their label, broadcast and scope (the
    // broadcast is not the subnet's default, .255).
    let addr = c.ip(0, &["-4", "addr", "show", "dev", "eth0"]);
    let line = |prefix: &str| {
        addr.lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix} on node0\n{addr}"))
            .to_string()
    };
    assert!(line("192.168.77.100/24").contains("eth0:vip"), "{addr}");
    let excluded = line("10.77.5.1/24");
    for part in ["brd 10.77.5.127", "scope link", "eth0:ex"] {
        assert!(excluded.contains(part), "lacks {part}: {excluded}");
    }

    // node1 (higher priority) preempts: the routes and rule move, and
    // node0, still running, keeps its statics.
    c.start(1, 200);
    c.wait(
        FAILOVER,
        "node1 master with the routes, node0 without",
        |c| c.lab.masters(NAME) == [1] && c.has_virtual(1) && c.has_no_virtual(0),
    );
    assert!(c.has_statics(0) && c.has_statics(1), "{}", c.context());

    // Someone removes a static address: baton puts it back.
    c.lab
        .ns(
            c.lab.node_ns(0),
            "ip",
            &["addr", "del", &Case::static_addr(0), "dev", "eth0"],
        )
        .expect("deleting node0's static address");
    c.wait(FAILOVER, "node0's static address is back", |c| {
        c.has_statics(0)
    });
    // And a static rule (keepalived restores both; it does not restore
    // static routes, nor does baton).
    c.lab
        .ns(c.lab.node_ns(0), "ip", &["rule", "del", "priority", "1200"])
        .expect("deleting node0's static rule");
    c.wait(FAILOVER, "node0's static rule is back", |c| {
        c.has_statics(0)
    });

    // node1 stops: node0 takes over the routes; node1 removed everything,
    // its statics too (keepalived does the same at stop).
    let pid = c.pids[1].take().expect("node1 runs");
    c.lab.signal(pid, Signal::SIGTERM).expect("TERM to node1");
    assert!(
        c.lab
            .wait(pid, FAILOVER)
            .expect("waiting for node1")
            .is_some(),
        "node1 did not stop\n{}",
        c.context()
    );
    c.wait(FAILOVER, "node0 master again with the routes", |c| {
        c.lab.masters(NAME) == [0] && c.has_virtual(0)
    });
    assert!(
        c.has_no_virtual(1),
        "node1 kept virtual routes\n{}",
        c.context()
    );
    assert!(
        c.has_no_statics(1),
        "node1 kept its statics\n{}",
        c.context()
    );
    assert!(c.has_statics(0), "{}", c.context());
}

/// node i's config with one static route and one virtual route swapped
/// for others (10.96 -> 10.94, 10.99 -> 10.93).
fn reloaded_config(lab: &Lab, i: usize, priority: u8) -> String {
    config(lab, i, priority)
        .replace("10.96.0.0/24", "10.94.0.0/24")
        .replace("10.99.0.0/24", "10.93.0.0/24")
}

#[test]
fn a_reload_swaps_static_and_virtual_routes_in_place() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case {
        lab: Lab::new("brt", 1).expect("building the namespace lab"),
        pids: vec![None],
    };
    c.start(0, 100);
    c.wait(ELECTION, "node0 is master with its routes and rule", |c| {
        c.lab.masters(NAME) == [0] && c.has_virtual(0) && c.has_statics(0)
    });
    let f = c.lab.node_files(0);
    std::fs::write(&f.config, reloaded_config(&c.lab, 0, 100)).expect("writing the config");
    let pid = c.pids[0].expect("node0 runs");
    c.lab.signal(pid, Signal::SIGHUP).expect("HUP to node0");
    c.wait(FAILOVER, "the new routes are in, the old ones out", |c| {
        let (t100, t200) = (c.table(0, "100"), c.table(0, "200"));
        t100.contains("10.93.0.0/24")
            && !t100.contains("10.99.0.0/24")
            && t100.contains("10.97.0.0/24")
            && t200.contains("10.94.0.0/24")
            && !t200.contains("10.96.0.0/24")
    });
    assert_eq!(c.lab.masters(NAME), [0], "{}", c.context());
    assert!(
        c.lab.log(0).contains("reconfigured in place"),
        "{}",
        c.context()
    );
}

fn keepalived_bin() -> std::path::PathBuf {
    ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "keepalived".into())
}

/// What the kernel of node i holds that keepalived or baton put there:
/// the routes of tables 100 and 200, the rules, and the addresses of eth0
/// (lifetimes and the `dynamic` flag left out: baton leases its VIPs).
fn kernel_view(c: &Case, i: usize) -> String {
    let addrs: Vec<String> = c
        .ip(i, &["-4", "-o", "addr", "show", "dev", "eth0"])
        .lines()
        .map(|l| {
            let l = l.split('\\').next().unwrap_or(l).replace(" dynamic", "");
            l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
        })
        .collect();
    format!(
        "{}\n--\n{}--\n{}--\n{}",
        addrs.join("\n"),
        c.table(i, "100"),
        c.table(i, "200"),
        c.rules(i)
    )
}

/// One keepalived.conf, run by keepalived and then by baton on the same
/// node: the kernel ends up with the same routes, rules and addresses, and
/// both leave nothing behind at stop.
#[test]
fn baton_sets_what_keepalived_sets_from_one_keepalived_conf() {
    if !lab::require_root() {
        return;
    }
    let mut c = Case {
        lab: Lab::new("brt", 1).expect("building the namespace lab"),
        pids: vec![None],
    };
    let gw = c.lab.client_addr4();
    let conf = c.lab.dir().join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "static_ipaddress {{\n  192.168.77.50/24 dev eth0 label eth0:st\n}}\n\
             static_routes {{\n  10.96.0.0/24 via {gw} dev eth0 table 200\n}}\n\
             static_rules {{\n  from 10.95.0.0/24 table 200 priority 1200\n}}\n\
             vrrp_instance {NAME} {{\n  interface eth0\n  virtual_router_id 62\n  \
             priority 255\n  advert_int 1\n  virtual_ipaddress {{\n    \
             {VIP}/24 label eth0:vip\n    10.77.5.1/24 brd 10.77.5.127 label eth0:ex dev eth0\n  }}\n  \
             virtual_routes {{\n    10.99.0.0/24 via {gw} table 100\n    \
             src {VIP} to 10.97.0.0/24 via {gw} dev eth0 table 100 metric 7\n    \
             blackhole 10.94.0.0/24 table 100\n  }}\n  \
             virtual_rules {{\n    from 10.98.0.0/24 table 100 priority 1100\n    \
             to 10.93.0.0/24 fwmark 0x10/0xff table 100 priority 1101\n  }}\n}}\n"
        ),
    )
    .expect("writing keepalived.conf");
    let conf = conf.display().to_string();
    let clean = kernel_view(&c, 0);
    let ns = c.lab.node_ns(0).to_string();
    let log = c.lab.node_files(0).log;
    let complete = |c: &Case| {
        let v = kernel_view(c, 0);
        v.contains("eth0:vip")
            && v.contains("10.97.0.0/24")
            && v.contains("1101:")
            && v.contains("1200:")
    };

    // keepalived first.
    let pids: Vec<String> = ["main", "vrrp", "checkers"]
        .iter()
        .map(|w| c.lab.dir().join(format!("{w}.pid")).display().to_string())
        .collect();
    let args = [
        "-n", "-l", "-D", "-P", "-f", &conf, "-p", &pids[0], "-r", &pids[1], "-c", &pids[2],
    ];
    let pid = c
        .lab
        .spawn(&ns, &keepalived_bin(), &args, &log)
        .expect("starting keepalived");
    c.wait(ELECTION, "keepalived set everything", complete);
    // Let it finish (a route or rule still on its way would differ).
    std::thread::sleep(Duration::from_millis(300));
    let by_keepalived = kernel_view(&c, 0);
    c.lab
        .signal(pid, Signal::SIGTERM)
        .expect("TERM to keepalived");
    assert!(c
        .lab
        .wait(pid, ELECTION)
        .expect("keepalived exits")
        .is_some());
    assert_eq!(
        kernel_view(&c, 0),
        clean,
        "keepalived left something behind"
    );

    // Then baton, on the same file, its directories bind-mounted over the
    // defaults (so the command line stays keepalived's).
    let run = c.lab.dir().join("run");
    let state = c.lab.dir().join("state");
    for d in [&run, &state] {
        std::fs::create_dir_all(d).expect("creating baton's directories");
    }
    let script = format!(
        "mkdir -p /run/baton /var/lib/baton && \
         mount --bind '{}' /run/baton && mount --bind '{}' /var/lib/baton && \
         exec \"$0\" \"$@\"",
        run.display(),
        state.display()
    );
    let mut sh_args: Vec<&str> = vec!["-c", &script, BATON];
    sh_args.extend_from_slice(&args);
    let pid = c
        .lab
        .spawn(&ns, Path::new("sh"), &sh_args, &log)
        .expect("starting baton");
    c.wait(ELECTION, "baton set everything", complete);
    std::thread::sleep(Duration::from_millis(300));
    let by_baton = kernel_view(&c, 0);
    assert_eq!(
        by_baton,
        by_keepalived,
        "baton and keepalived differ\n{}",
        c.context()
    );
    c.lab.signal(pid, Signal::SIGTERM).expect("TERM to baton");
    assert!(c.lab.wait(pid, ELECTION).expect("baton exits").is_some());
    assert_eq!(kernel_view(&c, 0), clean, "baton left something behind");
}
