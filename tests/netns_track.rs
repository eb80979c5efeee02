//! End-to-end tests of tracking and notification in `baton run`: real
//! processes in network namespaces, real VRRP on a bridged layer 2.
//!
//! ```text
//!   node0 (.11)                 node1 (.12)
//!   baton run -f node0.conf     baton run -f node1.conf
//!   [trk0]=[trk1] veth pairs    (tracked interfaces live in node0 only)
//!       |                            |
//!   +---+----------------------------+---+
//!   |        bridge namespace (br0)      |
//!   +------------------------------------+
//! ```
//!
//! Mostly keepalived.conf syntax (baton reads it as it is), some baton.toml.
//! Adverts are 100 ms (VRRP v3). Health-check scripts and notify scripts
//! live in the lab directory (mode 0755, owned by root); `/bin/test -f FLAG`
//! is the usual health check, so removing FLAG fails it.
//!
//! Beyond the brief's eight cases: a reload (SIGHUP) must not take a
//! faulted instance out of FAULT (keepalived keeps script states across a
//! reload), and a hanging script is killed, children included, at its
//! timeout.
//!
//! Each test builds its own [`Lab`] (unique names, torn down on drop) and
//! needs root: without it a test prints "skipped: needs root" and passes,
//! except under `CI=true`, where it panics (CI runs as root and a skip
//! would hide a regression).

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::agent::control::{InstanceStatus, Status};
use baton::lab::{self, Lab};
use baton::vrrp::State;
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const VIP1: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 101);

/// Long enough for a process to start and win an election (~350 ms).
const ELECTION: Duration = Duration::from_secs(5);
/// Long enough for a failover (master down ~340 ms) on a loaded machine.
const FAILOVER: Duration = Duration::from_secs(3);
/// Tracked files are polled every second: a change plus a failover.
const FILE_CHANGE: Duration = Duration::from_secs(4);

/// True when the test may go on. Not root: a skip, except in CI.
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

// ---------------------------------------------------------------------------
// keepalived.conf pieces
// ---------------------------------------------------------------------------

/// `global_defs` for node i: its router id, VRRP v3, and `extra` lines.
fn global_defs(i: usize, extra: &str) -> String {
    format!("global_defs {{\n    router_id node{i}\n    vrrp_version 3\n{extra}}}\n\n")
}

/// A `vrrp_script` run every 100 ms, rise 1, fall 1. The timeout is long
/// (2 s) so that a loaded machine does not turn a slow fork into a failure.
fn vrrp_script(name: &str, command: &str, weight: i32) -> String {
    format!(
        "vrrp_script {name} {{\n    script \"{command}\"\n    interval 0.1\n    timeout 2\n    \
         weight {weight}\n    rise 1\n    fall 1\n}}\n\n"
    )
}

/// A `vrrp_instance` on eth0 with 100 ms adverts, one /24 VIP, preemption
/// on, and `extra` lines (tracking, notify).
fn vrrp_instance(name: &str, vrid: u8, priority: u8, vip: Ipv4Addr, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {vrid}\n    priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        {vip}/24\n    }}\n{extra}}}\n\n"
    )
}

/// `track_script { NAME }` (inside an instance).
fn track_script(name: &str) -> String {
    format!("    track_script {{\n        {name}\n    }}\n")
}

// ---------------------------------------------------------------------------
// The case: a lab, its batons, their files
// ---------------------------------------------------------------------------

struct Case {
    lab: Lab,
    /// The running `baton run` of each node, if any.
    pids: Vec<Option<u32>>,
    /// Files whose content the context shows (notify logs).
    shown: Vec<PathBuf>,
}

impl Case {
    fn new(tag: &str, nodes: usize) -> Case {
        let lab = Lab::new(tag, nodes).expect("building the namespace lab");
        // Scripts live here: keep it root-owned and not group/other-writable
        // whatever the umask.
        fs::set_permissions(lab.dir(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the lab directory");
        Case {
            lab,
            pids: vec![None; nodes],
            shown: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.lab.dir().join(name)
    }

    /// A `#!/bin/sh` script in the lab directory, mode 0755.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("writing a script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod 0755 a script");
        p
    }

    /// A script that appends one line to `log`: a nanosecond timestamp, its
    /// argument count and its arguments (`1700000000.123456789 4 INSTANCE
    /// VI_1 MASTER 150`). `delay` seconds of sleep first (a slow script).
    fn recorder(&mut self, name: &str, log: &Path, delay: &str) -> PathBuf {
        self.shown.push(log.to_path_buf());
        let sleep = if delay.is_empty() {
            String::new()
        } else {
            format!("sleep {delay}\n")
        };
        self.script(
            name,
            &format!(
                "{sleep}echo \"$(date +%s.%N) $# $*\" >> '{}'",
                log.display()
            ),
        )
    }

    /// Write `text` to `path` atomically (the agent never reads half a file).
    fn write_atomic(&self, path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).expect("writing a file");
        fs::rename(&tmp, path).expect("renaming a file into place");
    }

    /// Write node i's keepalived.conf and start `baton run` on it.
    fn start_conf(&mut self, i: usize, conf: &str) {
        let path = self.path(&format!("node{i}.conf"));
        fs::write(&path, conf).expect("writing keepalived.conf");
        self.start_file(i, &path);
    }

    /// Write node i's baton.toml and start `baton run` on it.
    fn start_toml(&mut self, i: usize, toml: &str) {
        let path = self.path(&format!("node{i}.toml"));
        fs::write(
            &path,
            format!("[global]\nrouter_id = \"node{i}\"\n\n{toml}"),
        )
        .expect("writing baton.toml");
        self.start_file(i, &path);
    }

    /// `baton run -f FILE --control-socket S --state-dir D`; returns once its
    /// control socket answers.
    fn start_file(&mut self, i: usize, config: &Path) {
        assert!(self.pids[i].is_none(), "node{i} already runs baton");
        let f = self.lab.node_files(i);
        fs::create_dir_all(&f.state_dir).expect("creating the state dir");
        let ns = self.lab.node_ns(i).to_string();
        let config = config.display().to_string();
        let socket = f.socket.display().to_string();
        let state = f.state_dir.display().to_string();
        let pid = self
            .lab
            .spawn(
                &ns,
                Path::new(BATON),
                &[
                    "run",
                    "-f",
                    &config,
                    "--control-socket",
                    &socket,
                    "--state-dir",
                    &state,
                ],
                &f.log,
            )
            .unwrap_or_else(|e| panic!("starting baton on node{i}: {e}"));
        self.pids[i] = Some(pid);
        if let Err(e) = self.lab.wait_for_agent(i, pid, ELECTION) {
            if e.contains("exited") {
                self.pids[i] = None;
            }
            panic!("{e}\n{}", self.context());
        }
    }

    /// SIGTERM node i's baton and reap it; its exit code.
    fn stop(&mut self, i: usize) -> i32 {
        let pid = self.pids[i].unwrap_or_else(|| panic!("node{i} runs no baton"));
        self.lab
            .signal(pid, Signal::SIGTERM)
            .unwrap_or_else(|e| panic!("SIGTERM to node{i}: {e}"));
        let code = self
            .lab
            .wait(pid, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("waiting for node{i}: {e}"));
        match code {
            Some(code) => {
                self.pids[i] = None;
                code
            }
            None => panic!(
                "node{i} did not exit within 10 s of SIGTERM\n{}",
                self.context()
            ),
        }
    }

    fn status(&self, i: usize) -> Option<Status> {
        self.lab.status(i)
    }

    fn try_instance(&self, i: usize, name: &str) -> Option<InstanceStatus> {
        self.status(i)?
            .instances
            .into_iter()
            .find(|s| s.name == name)
    }

    fn instance(&self, i: usize, name: &str) -> InstanceStatus {
        self.try_instance(i, name)
            .unwrap_or_else(|| panic!("node{i} has no answer for {name}\n{}", self.context()))
    }

    fn state(&self, i: usize, name: &str) -> Option<State> {
        self.lab.state(i, name)
    }

    fn holders(&self, vip: Ipv4Addr) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(vip))
    }

    /// Run a command inside node i's namespace (must succeed).
    fn ns(&self, i: usize, program: &str, args: &[&str]) {
        self.lab
            .ns(self.lab.node_ns(i), program, args)
            .unwrap_or_else(|e| panic!("node{i}: {e}"));
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

    /// Every node's instances, the VIP holders, the notify logs, the logs.
    fn context(&self) -> String {
        let mut out = format!(
            "{VIP1} held by {:?}, {VIP2} held by {:?}\n",
            self.holders(VIP1),
            self.holders(VIP2)
        );
        for i in 0..self.lab.nodes() {
            match self.status(i) {
                None => {
                    let _ = writeln!(out, "node{i}: no answer");
                }
                Some(s) => {
                    for inst in s.instances {
                        let _ = writeln!(
                            out,
                            "node{i} {}: {:?} prio {}/{} holds {} faults {:?}",
                            inst.name,
                            inst.state,
                            inst.effective_priority,
                            inst.base_priority,
                            inst.holds_vips,
                            inst.faults
                        );
                    }
                }
            }
        }
        for p in &self.shown {
            let text = fs::read_to_string(p).unwrap_or_default();
            let _ = writeln!(out, "----- {} -----\n{text}", p.display());
        }
        for i in 0..self.lab.nodes() {
            let log = self.lab.log(i);
            let tail = &log[log.len().saturating_sub(6000)..];
            let _ = writeln!(out, "----- node{i} log -----\n{tail}");
        }
        out
    }
}

/// The lines of a recorder log without their timestamps, after checking
/// that the timestamps never go back.
fn recorded(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut last = 0u128;
    let mut out = Vec::new();
    for line in text.lines() {
        let (stamp, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}: malformed line {line:?}", log.display()));
        let ns: u128 = stamp
            .replace('.', "")
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad timestamp in {line:?}", log.display()));
        assert!(
            ns >= last,
            "{}: notifications ran out of order:\n{text}",
            log.display()
        );
        last = ns;
        out.push(rest.to_string());
    }
    out
}

/// Where a line (with no timestamp) first appears in `log` after `from`.
fn position(log: &str, needle: &str, from: usize) -> Option<usize> {
    log.get(from..)?.find(needle).map(|p| p + from)
}

// ---------------------------------------------------------------------------
// 1. vrrp_script, weight 0: FAULT and back
// ---------------------------------------------------------------------------

#[test]
fn weight_zero_script_faults_the_master_and_recovers() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tsz", 2);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let check = format!("/bin/test -f {}", flag.display());
    for (i, prio) in [(0, 150), (1, 100)] {
        let track = if i == 0 {
            track_script("chk")
        } else {
            String::new()
        };
        let conf = global_defs(i, "")
            + &vrrp_script("chk", &check, 0)
            + &vrrp_instance("VI_1", 51, prio, VIP1, &track);
        c.start_conf(i, &conf);
    }
    c.wait(ELECTION, "node0 (150) is master and sole holder", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });

    fs::remove_file(&flag).expect("removing the flag file");
    let took = c.wait(FAILOVER, "node0 is FAULT and node1 holds the VIP", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
            && c.state(1, "VI_1") == Some(State::Master)
            && c.holders(VIP1) == [1]
    });
    println!("script failure -> node0 FAULT, VIP on node1: {took:?}");
    let st = c.instance(0, "VI_1");
    assert!(
        st.faults.iter().any(|f| f.contains("script chk failed")),
        "faults do not name the script: {:?}\n{}",
        st.faults,
        c.context()
    );
    assert!(!st.holds_vips, "a FAULT node holds VIPs\n{}", c.context());
    assert_eq!(st.effective_priority, 150, "weight 0 changes no priority");
    c.stays(
        Duration::from_millis(400),
        "node0 FAULT, VIP on node1",
        |c| c.state(0, "VI_1") == Some(State::Fault) && c.holders(VIP1) == [1],
    );

    fs::write(&flag, "").expect("restoring the flag file");
    let mut seen: Vec<Option<State>> = Vec::new();
    let took = c.wait(FAILOVER, "node0 is master again (preempts)", |c| {
        let s = c.state(0, "VI_1");
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        s == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });
    println!("script success -> node0 MASTER again: {took:?} (states seen {seen:?})");
    let backup = seen.iter().position(|s| *s == Some(State::Backup));
    let master = seen.iter().position(|s| *s == Some(State::Master));
    assert!(
        matches!((backup, master), (Some(b), Some(m)) if b < m),
        "node0 should leave FAULT for BACKUP, then preempt; seen {seen:?}\n{}",
        c.context()
    );
    assert!(c.instance(0, "VI_1").faults.is_empty(), "{}", c.context());
    let log = c.lab.log(0);
    let fault = position(&log, "Entering FAULT STATE", 0).expect("FAULT logged");
    let back = position(&log, "Entering BACKUP STATE", fault).expect("BACKUP after FAULT");
    assert!(
        position(&log, "Entering MASTER STATE", back).is_some(),
        "MASTER after BACKUP\n{log}"
    );
}

// ---------------------------------------------------------------------------
// 2. vrrp_script, negative weight (baton.toml): priority, not FAULT
// ---------------------------------------------------------------------------

fn toml_instance(priority: u8, track: &str) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         version = 3\nadvert_interval = \"100ms\"\npreempt = true\n\
         virtual_ips = [\"{VIP1}/24\"]\n{track}\n"
    )
}

#[test]
fn negative_weight_script_lowers_priority_and_the_backup_preempts() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tsw", 2);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let script = format!(
        "[[vrrp_script]]\nname = \"chk\"\nscript = \"/bin/test -f {}\"\ninterval = \"100ms\"\n\
         timeout = \"2s\"\nweight = -60\nrise = 1\nfall = 1\n\n",
        flag.display()
    );
    c.start_toml(
        0,
        &(toml_instance(150, "track_scripts = [\"chk\"]") + &script),
    );
    c.start_toml(1, &toml_instance(120, ""));
    c.wait(ELECTION, "node0 (150) is master and sole holder", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });
    assert_eq!(c.instance(0, "VI_1").effective_priority, 150);

    fs::remove_file(&flag).expect("removing the flag file");
    let took = c.wait(FAILOVER, "node1 (120) preempts node0 (150-60)", |c| {
        c.state(0, "VI_1") == Some(State::Backup)
            && c.state(1, "VI_1") == Some(State::Master)
            && c.holders(VIP1) == [1]
    });
    println!("script failure (weight -60) -> node1 master: {took:?}");
    let st = c.instance(0, "VI_1");
    assert_eq!(
        (st.base_priority, st.effective_priority),
        (150, 90),
        "{}",
        c.context()
    );
    assert!(
        st.faults.iter().any(|f| f.contains("script chk failed")),
        "the lowered priority should be explained: {:?}",
        st.faults
    );
    let st1 = c.instance(1, "VI_1");
    assert_eq!(st1.master_priority, Some(120), "{}", c.context());
    c.stays(Duration::from_millis(400), "node1 stays master", |c| {
        c.state(1, "VI_1") == Some(State::Master) && c.holders(VIP1) == [1]
    });

    fs::write(&flag, "").expect("restoring the flag file");
    let took = c.wait(FAILOVER, "node0 (150 again) preempts back", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });
    println!("script success -> node0 master again: {took:?}");
    let st = c.instance(0, "VI_1");
    assert_eq!(st.effective_priority, 150, "{}", c.context());
    assert!(st.faults.is_empty(), "{:?}", st.faults);
    assert_eq!(
        c.instance(1, "VI_1").master_priority,
        Some(150),
        "node1 sees the restored priority\n{}",
        c.context()
    );
}

// ---------------------------------------------------------------------------
// 3. track_interface: weight 0 (FAULT on carrier loss) and weight -50
// ---------------------------------------------------------------------------

#[test]
fn tracked_interface_carrier_loss_faults_or_lowers_priority() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tif", 2);
    // Two veth pairs inside node0: taking one end down drops the carrier
    // of the other (trk0 / trw0 stay administratively up).
    for (a, b) in [("trk0", "trk1"), ("trw0", "trw1")] {
        c.ns(
            0,
            "ip",
            &["link", "add", a, "type", "veth", "peer", "name", b],
        );
        c.ns(0, "ip", &["link", "set", a, "up"]);
        c.ns(0, "ip", &["link", "set", b, "up"]);
    }
    let track = "    track_interface {\n        trk0\n        trw0 weight -50\n    }\n";
    c.start_conf(
        0,
        &(global_defs(0, "") + &vrrp_instance("VI_1", 51, 150, VIP1, track)),
    );
    c.start_conf(
        1,
        &(global_defs(1, "") + &vrrp_instance("VI_1", 51, 120, VIP1, "")),
    );
    c.wait(ELECTION, "node0 (150) is master and sole holder", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });

    // Weight 0: carrier loss is a FAULT.
    c.ns(0, "ip", &["link", "set", "trk1", "down"]);
    let to_fault = c.wait(FAILOVER, "node0 is FAULT (trk0 lost carrier)", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
    });
    let moved = c.wait(FAILOVER, "node1 holds the VIP", |c| {
        c.state(1, "VI_1") == Some(State::Master) && c.holders(VIP1) == [1]
    });
    println!("trk1 down -> node0 FAULT in {to_fault:?}, VIP moved {moved:?} later");
    assert!(
        to_fault < Duration::from_secs(1),
        "FAULT should follow the netlink event at once, took {to_fault:?}"
    );
    let st = c.instance(0, "VI_1");
    assert!(
        st.faults.iter().any(|f| f.contains("interface trk0 down")),
        "faults do not name trk0: {:?}\n{}",
        st.faults,
        c.context()
    );
    c.stays(Duration::from_millis(300), "node0 FAULT", |c| {
        c.state(0, "VI_1") == Some(State::Fault) && c.holders(VIP1) == [1]
    });
    c.ns(0, "ip", &["link", "set", "trk1", "up"]);
    let back = c.wait(FAILOVER, "node0 is master again", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });
    println!("trk1 up -> node0 master again: {back:?}");
    assert!(c.instance(0, "VI_1").faults.is_empty(), "{}", c.context());

    // Weight -50: carrier loss lowers the priority below node1's.
    c.ns(0, "ip", &["link", "set", "trw1", "down"]);
    let took = c.wait(FAILOVER, "node1 (120) preempts node0 (150-50)", |c| {
        c.state(0, "VI_1") == Some(State::Backup)
            && c.state(1, "VI_1") == Some(State::Master)
            && c.holders(VIP1) == [1]
    });
    println!("trw1 down -> node1 master: {took:?}");
    let st = c.instance(0, "VI_1");
    assert_eq!(st.effective_priority, 100, "{}", c.context());
    assert!(
        st.faults.iter().any(|f| f.contains("interface trw0 down")),
        "{:?}",
        st.faults
    );
    c.ns(0, "ip", &["link", "set", "trw1", "up"]);
    c.wait(FAILOVER, "node0 (150 again) preempts back", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });
    assert_eq!(c.instance(0, "VI_1").effective_priority, 150);

    // Administratively down (not only carrier) is down too.
    c.ns(0, "ip", &["link", "set", "trk0", "down"]);
    c.wait(FAILOVER, "node0 FAULT (trk0 admin down)", |c| {
        c.state(0, "VI_1") == Some(State::Fault) && c.holders(VIP1) == [1]
    });
    c.ns(0, "ip", &["link", "set", "trk0", "up"]);
    c.wait(FAILOVER, "node0 master again", |c| {
        c.state(0, "VI_1") == Some(State::Master) && c.holders(VIP1) == [0]
    });
}

// ---------------------------------------------------------------------------
// 4. track_file
// ---------------------------------------------------------------------------

#[test]
fn track_file_value_faults_or_lowers_priority() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tfl", 2);
    let file = c.path("maintenance");
    c.write_atomic(&file, "0\n");
    let tf = format!(
        "track_file maint {{\n    file {}\n    weight 1\n}}\n\n",
        file.display()
    );
    let track = "    track_file {\n        maint\n    }\n";
    c.start_conf(
        0,
        &(global_defs(0, "") + &tf + &vrrp_instance("VI_1", 51, 150, VIP1, track)),
    );
    c.start_conf(
        1,
        &(global_defs(1, "") + &vrrp_instance("VI_1", 51, 120, VIP1, "")),
    );
    c.wait(ELECTION, "node0 (150) is master and sole holder", |c| {
        c.state(0, "VI_1") == Some(State::Master)
            && c.state(1, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [0]
    });

    // -300 x 1 is below -253: FAULT.
    c.write_atomic(&file, "-300\n");
    let took = c.wait(FILE_CHANGE, "node0 FAULT, VIP on node1", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
            && c.state(1, "VI_1") == Some(State::Master)
            && c.holders(VIP1) == [1]
    });
    println!("file -300 -> node0 FAULT: {took:?}");
    let st = c.instance(0, "VI_1");
    let shown = format!("file {} = -300", file.display());
    assert!(
        st.faults.iter().any(|f| f.contains(&shown)),
        "faults {:?} should contain {shown:?}",
        st.faults
    );

    // -40 x 1: out of FAULT, priority 110, below node1's 120.
    c.write_atomic(&file, "-40\n");
    let took = c.wait(FILE_CHANGE, "node0 BACKUP at 110", |c| {
        c.try_instance(0, "VI_1")
            .is_some_and(|s| s.state == State::Backup && s.effective_priority == 110)
    });
    println!("file -40 -> node0 BACKUP at 110: {took:?}");
    c.stays(Duration::from_millis(600), "node1 stays master", |c| {
        c.state(1, "VI_1") == Some(State::Master)
            && c.state(0, "VI_1") == Some(State::Backup)
            && c.holders(VIP1) == [1]
    });

    // 0: back to 150, node0 preempts.
    c.write_atomic(&file, "0\n");
    c.wait(FILE_CHANGE, "node0 master at 150", |c| {
        c.try_instance(0, "VI_1")
            .is_some_and(|s| s.state == State::Master && s.effective_priority == 150)
            && c.holders(VIP1) == [0]
    });
    assert!(c.instance(0, "VI_1").faults.is_empty(), "{}", c.context());
}

// ---------------------------------------------------------------------------
// 5. notify scripts: arguments, order, nothing lost
// ---------------------------------------------------------------------------

#[test]
fn notify_scripts_run_in_order_with_keepalived_arguments() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tns", 1);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let log = c.path("notify.log");
    let specific = c.recorder("specific.sh", &log, "");
    // A slow notify_fault: what follows it (BACKUP, MASTER) must queue
    // behind it, not overtake it.
    let slow = c.recorder("slow.sh", &log, "0.3");
    let generic = c.recorder("generic.sh", &log, "");
    let s = specific.display();
    let notify = format!(
        "{}    notify_master \"{s} master\"\n    notify_backup \"{s} backup\"\n    \
         notify_fault \"{} fault\"\n    notify_stop \"{s} stop\"\n    notify \"{}\"\n",
        track_script("chk"),
        slow.display(),
        generic.display()
    );
    let conf = global_defs(0, "")
        + &vrrp_script("chk", &format!("/bin/test -f {}", flag.display()), 0)
        + &vrrp_instance("VI_1", 51, 150, VIP1, &notify);
    c.start_conf(0, &conf);
    c.wait(ELECTION, "node0 is master", |c| {
        c.state(0, "VI_1") == Some(State::Master) && c.holders(VIP1) == [0]
    });
    fs::remove_file(&flag).expect("removing the flag file");
    c.wait(FAILOVER, "node0 is FAULT", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
    });
    fs::write(&flag, "").expect("restoring the flag file");
    c.wait(FAILOVER, "node0 is master again", |c| {
        c.state(0, "VI_1") == Some(State::Master) && c.holders(VIP1) == [0]
    });
    let code = c.stop(0);
    assert_eq!(code, 0, "baton exit code after SIGTERM\n{}", c.context());
    assert!(c.holders(VIP1).is_empty(), "VIP left behind");

    // Everything is delivered before the agent exits: read at once.
    let lines = recorded(&log);
    let want: Vec<&str> = vec![
        "1 backup",
        "4 INSTANCE VI_1 BACKUP 150",
        "1 master",
        "4 INSTANCE VI_1 MASTER 150",
        "1 fault",
        "4 INSTANCE VI_1 FAULT 150",
        "1 backup",
        "4 INSTANCE VI_1 BACKUP 150",
        "1 master",
        "4 INSTANCE VI_1 MASTER 150",
        "1 stop",
        "4 INSTANCE VI_1 STOP 150",
    ];
    assert_eq!(
        lines,
        want,
        "notifications (specific, then generic with 4 arguments)\n{}",
        c.context()
    );
}

// ---------------------------------------------------------------------------
// 6. vrrp_notify_fifo
// ---------------------------------------------------------------------------

/// Reads a FIFO (opened non-blocking before the agent starts, so the
/// agent always finds a reader) into lines, in a thread.
struct FifoReader {
    stop: Arc<AtomicBool>,
    lines: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FifoReader {
    fn start(path: &Path) -> FifoReader {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .expect("opening the FIFO for reading");
        let stop = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), lines.clone());
        let thread = std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 4096];
            // One last read after the stop flag, for what is still buffered.
            let mut last = false;
            loop {
                match file.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=nl).collect();
                            let text = String::from_utf8_lossy(&line[..nl]).into_owned();
                            l.lock().unwrap().push(text);
                        }
                        continue;
                    }
                    // 0: no writer right now; WouldBlock: nothing written yet.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("reading the FIFO: {e}"),
                }
                if last {
                    return;
                }
                last = s.load(Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        FifoReader {
            stop,
            lines,
            thread: Some(thread),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("FIFO reader thread");
        }
        self.lines()
    }
}

#[test]
fn notify_fifo_gets_keepalived_lines_in_order() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tff", 1);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let fifo = c.path("notify.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let reader = FifoReader::start(&fifo);
    let conf = global_defs(0, &format!("    vrrp_notify_fifo {}\n", fifo.display()))
        + &vrrp_script("chk", &format!("/bin/test -f {}", flag.display()), 0)
        + &vrrp_instance("VI_1", 51, 150, VIP1, &track_script("chk"));
    c.start_conf(0, &conf);
    c.wait(ELECTION, "node0 is master", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    let master = "INSTANCE \"VI_1\" MASTER 150".to_string();
    c.wait(FAILOVER, "the FIFO shows MASTER", |_| {
        reader.lines().contains(&master)
    });
    fs::remove_file(&flag).expect("removing the flag file");
    c.wait(FAILOVER, "node0 is FAULT", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
    });
    fs::write(&flag, "").expect("restoring the flag file");
    c.wait(FAILOVER, "node0 is master again", |c| {
        c.state(0, "VI_1") == Some(State::Master)
    });
    let code = c.stop(0);
    assert_eq!(code, 0, "exit code after SIGTERM\n{}", c.context());
    let lines = reader.finish();
    let want: Vec<String> = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
        .iter()
        .map(|s| format!("INSTANCE \"VI_1\" {s} 150"))
        .collect();
    assert_eq!(lines, want, "FIFO lines\n{}", c.context());
}

// ---------------------------------------------------------------------------
// 7. vrrp_sync_group: one member's fault moves both, group notify
// ---------------------------------------------------------------------------

#[test]
fn sync_group_member_fault_moves_both_instances() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tsg", 2);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let check = format!("/bin/test -f {}", flag.display());
    let mut group_logs = Vec::new();
    for (i, prio) in [(0, 150), (1, 100)] {
        let log = c.path(&format!("group{i}.log"));
        let rec = c.recorder(&format!("group{i}.sh"), &log, "");
        let r = rec.display();
        group_logs.push(log);
        let track = if i == 0 {
            track_script("chk")
        } else {
            String::new()
        };
        let conf = global_defs(i, "")
            + &vrrp_script("chk", &check, 0)
            + &vrrp_instance("VI_1", 51, prio, VIP1, "")
            + &vrrp_instance("VI_2", 52, prio, VIP2, &track)
            + &format!(
                "vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n    \
                 notify_master \"{r} master\"\n    notify_fault \"{r} fault\"\n    \
                 notify \"{r}\"\n}}\n"
            );
        c.start_conf(i, &conf);
    }
    let all = |c: &Case, i: usize, s: State| {
        c.state(i, "VI_1") == Some(s) && c.state(i, "VI_2") == Some(s)
    };
    c.wait(ELECTION, "node0 masters both, node1 backs up both", |c| {
        all(c, 0, State::Master)
            && all(c, 1, State::Backup)
            && c.holders(VIP1) == [0]
            && c.holders(VIP2) == [0]
    });

    fs::remove_file(&flag).expect("removing the flag file");
    let took = c.wait(
        FAILOVER,
        "node0 FAULT in both, node1 holds both VIPs",
        |c| {
            all(c, 0, State::Fault)
                && all(c, 1, State::Master)
                && c.holders(VIP1) == [1]
                && c.holders(VIP2) == [1]
        },
    );
    println!("VI_2's script fails -> both VIPs on node1: {took:?}");
    let vi1 = c.instance(0, "VI_1");
    let vi2 = c.instance(0, "VI_2");
    assert!(
        vi2.faults.iter().any(|f| f.contains("script chk failed")),
        "VI_2 faults {:?}",
        vi2.faults
    );
    assert!(
        vi1.faults
            .iter()
            .any(|f| f.contains("sync group G1") && f.contains("VI_2")),
        "VI_1 should name the sync group: {:?}",
        vi1.faults
    );
    c.stays(Duration::from_millis(300), "node0 FAULT in both", |c| {
        all(c, 0, State::Fault) && c.holders(VIP1) == [1] && c.holders(VIP2) == [1]
    });

    fs::write(&flag, "").expect("restoring the flag file");
    c.wait(FAILOVER, "node0 masters both again", |c| {
        all(c, 0, State::Master)
            && all(c, 1, State::Backup)
            && c.holders(VIP1) == [0]
            && c.holders(VIP2) == [0]
    });
    // Group notifications are queued behind the instance ones: give them
    // a moment, then stop both agents (nothing more for the group).
    std::thread::sleep(Duration::from_millis(300));
    // node1 first: stopping node0 first would make node1 master again.
    for i in [1, 0] {
        assert_eq!(c.stop(i), 0, "node{i} exit code\n{}", c.context());
    }
    let node0 = recorded(&group_logs[0]);
    assert_eq!(
        node0,
        [
            "4 GROUP G1 BACKUP 0",
            "1 master",
            "4 GROUP G1 MASTER 0",
            "1 fault",
            "4 GROUP G1 FAULT 0",
            "4 GROUP G1 BACKUP 0",
            "1 master",
            "4 GROUP G1 MASTER 0",
        ],
        "node0's group notifications\n{}",
        c.context()
    );
    let node1 = recorded(&group_logs[1]);
    assert_eq!(
        node1,
        [
            "4 GROUP G1 BACKUP 0",
            "1 master",
            "4 GROUP G1 MASTER 0",
            "4 GROUP G1 BACKUP 0",
        ],
        "node1's group notifications\n{}",
        c.context()
    );
}

// ---------------------------------------------------------------------------
// 8. enable_script_security
// ---------------------------------------------------------------------------

#[test]
fn script_security_refuses_writable_paths_and_faults() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("tss", 1);
    // A world-writable directory (no sticky bit) holding a root-owned,
    // mode 0755 script that would succeed.
    let ww = c.path("ww");
    fs::create_dir(&ww).expect("mkdir ww");
    fs::set_permissions(&ww, fs::Permissions::from_mode(0o777)).expect("chmod 0777 ww");
    let in_ww = ww.join("ok.sh");
    fs::write(&in_ww, "#!/bin/sh\nexit 0\n").expect("writing ww/ok.sh");
    fs::set_permissions(&in_ww, fs::Permissions::from_mode(0o755)).expect("chmod ww/ok.sh");
    // The same script directly in the lab directory (0755, under /tmp).
    let tmp = c
        .lab
        .dir()
        .parent()
        .expect("the lab has a parent")
        .to_path_buf();
    let tmp_mode = fs::metadata(&tmp)
        .expect("stat TMPDIR")
        .permissions()
        .mode();
    assert!(
        tmp_mode & 0o1002 == 0o1002,
        "this test expects the lab under a sticky world-writable TMPDIR (/tmp); {} is {:o}",
        tmp.display(),
        tmp_mode
    );
    let in_lab = c.script("ok.sh", "exit 0");
    let conf = global_defs(0, "    enable_script_security\n")
        + &vrrp_script("chk_ww", &in_ww.display().to_string(), 0)
        + &vrrp_script("chk_tmp", &in_lab.display().to_string(), 0)
        + &vrrp_script("chk_bin", "/bin/true", 0)
        + &vrrp_instance("VI_1", 51, 150, VIP1, &track_script("chk_ww"))
        + &vrrp_instance("VI_2", 52, 150, VIP2, &track_script("chk_tmp"))
        + &vrrp_instance(
            "VI_3",
            53,
            150,
            Ipv4Addr::new(192, 168, 77, 102),
            &track_script("chk_bin"),
        );
    c.start_conf(0, &conf);
    c.wait(
        ELECTION,
        "VI_1 FAULT; VI_2 (sticky /tmp) and VI_3 master",
        |c| {
            c.state(0, "VI_1") == Some(State::Fault)
                && c.state(0, "VI_2") == Some(State::Master)
                && c.state(0, "VI_3") == Some(State::Master)
        },
    );
    c.stays(
        Duration::from_millis(500),
        "the refused one stays FAULT",
        |c| {
            c.state(0, "VI_1") == Some(State::Fault)
                && c.state(0, "VI_2") == Some(State::Master)
                && c.state(0, "VI_3") == Some(State::Master)
        },
    );
    let st = c.instance(0, "VI_1");
    assert!(
        st.faults.iter().any(|f| f.contains("script chk_ww failed")),
        "VI_1 faults {:?}",
        st.faults
    );
    assert!(!st.holds_vips);
    assert!(c.holders(VIP1).is_empty());
    let log = c.lab.log(0);
    // The world-writable directory itself is named (it is the first
    // insecure path from the script upwards).
    let ww_msg = format!(
        "refusing to run {} as root: {} is writable by everyone (mode 0777)",
        in_ww.display(),
        ww.display()
    );
    assert!(
        log.contains("VRRP_Script(chk_ww)") && log.contains(&ww_msg),
        "log should say {ww_msg:?}\n{log}"
    );
    // /tmp is world-writable but sticky: accepted, as keepalived 2.2's
    // check_script_secure does (nobody can replace root's file there).
    assert!(!log.contains("VRRP_Script(chk_tmp)"), "{log}");
    // Said once, not at every run (10 runs a second).
    let refusals = log.matches("refusing to run").count();
    assert!(
        refusals <= 4,
        "the refusal is repeated {refusals} times in the log\n{log}"
    );
    assert!(!log.contains("VRRP_Script(chk_bin)"), "{log}");
}

// ---------------------------------------------------------------------------
// 9. Reload (SIGHUP) keeps what tracking knows
// ---------------------------------------------------------------------------

/// keepalived keeps a `vrrp_script`'s state across a reload when the script
/// is still configured (`clear_diff_script`), and a tracked file is read
/// before the instances are looked at again. A reload that only adds an
/// unrelated script must not take a faulted instance out of FAULT, not even
/// for a moment (that would run notify scripts, and with `fall 3` and a
/// slow interval let an unhealthy node win the election).
#[test]
fn reload_keeps_a_failed_script_and_a_file_fault() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("trl", 2);
    let flag = c.path("healthy");
    fs::write(&flag, "").expect("creating the flag file");
    let file = c.path("maintenance");
    c.write_atomic(&file, "0\n");
    let log = c.path("notify0.log");
    let generic = c.recorder("generic.sh", &log, "");
    let script = format!(
        "vrrp_script chk {{\n    script \"/bin/test -f {}\"\n    interval 0.2\n    timeout 2\n    \
         weight 0\n    rise 1\n    fall 3\n}}\n\n",
        flag.display()
    );
    let tf = format!(
        "track_file maint {{\n    file {}\n    weight 1\n}}\n\n",
        file.display()
    );
    let node0 = |extra: &str| {
        let n = format!("    notify \"{}\"\n", generic.display());
        global_defs(0, "")
            + &script
            + &tf
            + extra
            + &vrrp_instance("VI_1", 51, 150, VIP1, &(track_script("chk") + &n))
            + &vrrp_instance(
                "VI_2",
                52,
                150,
                VIP2,
                &format!("    track_file {{\n        maint\n    }}\n{n}"),
            )
    };
    c.start_conf(0, &node0(""));
    c.start_conf(
        1,
        &(global_defs(1, "")
            + &vrrp_instance("VI_1", 51, 100, VIP1, "")
            + &vrrp_instance("VI_2", 52, 100, VIP2, "")),
    );
    let all = |c: &Case, i: usize, s: State| {
        c.state(i, "VI_1") == Some(s) && c.state(i, "VI_2") == Some(s)
    };
    c.wait(ELECTION, "node0 masters both", |c| {
        all(c, 0, State::Master) && c.holders(VIP1) == [0] && c.holders(VIP2) == [0]
    });
    fs::remove_file(&flag).expect("removing the flag file");
    c.write_atomic(&file, "-300\n");
    c.wait(
        FILE_CHANGE,
        "node0 FAULT in both, node1 masters both",
        |c| {
            all(c, 0, State::Fault)
                && all(c, 1, State::Master)
                && c.holders(VIP1) == [1]
                && c.holders(VIP2) == [1]
        },
    );
    // Let the notifications of the fault land.
    std::thread::sleep(Duration::from_millis(300));
    let before = recorded(&log);

    // Only an unrelated script is added.
    let extra = vrrp_script("unrelated", "/bin/true", 0);
    fs::write(c.path("node0.conf"), node0(&extra)).expect("rewriting node0.conf");
    let log_len = c.lab.log(0).len();
    let pid = c.pids[0].expect("node0 runs");
    c.lab.signal(pid, Signal::SIGHUP).expect("SIGHUP to node0");
    c.wait(FAILOVER, "node0 logs the reload", |c| {
        c.lab.log(0)[log_len..].contains("configuration reloaded")
    });
    // Watch for 1.5 s (three script intervals after `fall 3`), noting
    // every change of node0's states and of the VIP holders.
    let mut timeline: Vec<(Duration, String)> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let now = format!(
            "node0 VI_1 {:?} VI_2 {:?}; {VIP1} on {:?}, {VIP2} on {:?}",
            c.state(0, "VI_1"),
            c.state(0, "VI_2"),
            c.holders(VIP1),
            c.holders(VIP2)
        );
        if timeline.last().map(|(_, s)| s) != Some(&now) {
            timeline.push((start.elapsed(), now));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = recorded(&log);
    let agent_log = c.lab.log(0);
    assert!(
        timeline.len() == 1 && after == before,
        "the reload took node0 out of FAULT; states seen after SIGHUP:\n{}\n\
         notifications before: {before:?}\nafter: {after:?}\n\
         node0 log since the reload:\n{}",
        timeline
            .iter()
            .map(|(t, s)| format!("  +{t:?}: {s}"))
            .collect::<Vec<_>>()
            .join("\n"),
        &agent_log[log_len..]
    );
}

// ---------------------------------------------------------------------------
// 10. A script that hangs: timeout, failure, its process group killed
// ---------------------------------------------------------------------------

/// Whether a process is still alive (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
    }
}

#[test]
fn hanging_script_times_out_faults_and_is_killed_with_its_children() {
    if !root_or_skip() {
        return;
    }
    let mut c = Case::new("thg", 1);
    let pids = c.path("children");
    let hang = c.script(
        "hang.sh",
        &format!("sleep 30 &\necho $! >> '{}'\nwait", pids.display()),
    );
    let conf = global_defs(0, "")
        + &format!(
            "vrrp_script chk {{\n    script \"{}\"\n    interval 1\n    timeout 0.3\n    \
             weight 0\n    rise 1\n    fall 1\n}}\n\n",
            hang.display()
        )
        + &vrrp_instance("VI_1", 51, 150, VIP1, &track_script("chk"));
    c.start_conf(0, &conf);
    let took = c.wait(ELECTION, "node0 is FAULT (script timed out)", |c| {
        c.state(0, "VI_1") == Some(State::Fault)
    });
    println!("hanging script -> FAULT after {took:?}");
    // Each run's background child dies with its script.
    std::thread::sleep(Duration::from_millis(1500));
    let text = fs::read_to_string(&pids).unwrap_or_default();
    let children: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(
        !children.is_empty(),
        "the script never ran\n{}",
        c.context()
    );
    let left: Vec<u32> = children
        .iter()
        .copied()
        .filter(|&p| {
            // The run in progress may still have its child.
            alive(p)
        })
        .collect();
    assert!(
        left.len() <= 1,
        "children of timed-out runs survive: {left:?} of {children:?}\n{}",
        c.context()
    );
    let log = c.lab.log(0);
    assert!(
        log.contains("timed out after"),
        "the timeout is logged\n{log}"
    );
    assert_eq!(c.stop(0), 0);
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<u32> = children.iter().copied().filter(|&p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "script children survive the agent: {left:?}\n{}",
        c.context()
    );
}
