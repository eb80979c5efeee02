//! keepalived's command line, signals and systemd protocol, end to end:
//! `baton` started as a keepalived unit would start it, every keepalived
//! 2.2.7 flag on its command line, a `NOTIFY_SOCKET` datagram socket of the
//! test's own standing in for systemd, and keepalived's signals sent to it.
//!
//! The agent is started from the lab's client namespace with `-s <node0's
//! namespace>`: the VIP must appear on node0, not on the client (which has
//! an eth0 too), or `-s` did nothing.
//!
//! The flag and `--signum` checks that need no network run without root.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use baton::lab::{self, Lab};
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);

fn instance_toml() -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 150\n\
         version = 3\nadvert_interval = \"100ms\"\nvirtual_ips = [\"{VIP4}/24\"]\n"
    )
}

/// The test's stand-in for systemd: every datagram, in order.
struct Systemd {
    sock: UnixDatagram,
    seen: Vec<(Instant, String)>,
}

impl Systemd {
    fn bind(path: &Path) -> Systemd {
        let sock = UnixDatagram::bind(path).expect("binding the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Systemd {
            sock,
            seen: Vec::new(),
        }
    }

    /// Read what arrived until `cond` holds over everything seen, or time out.
    fn until(
        &mut self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&[(Instant, String)]) -> bool,
    ) {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !cond(&self.seen) {
            assert!(
                Instant::now() < end,
                "systemd never saw {what}; it saw: {:#?}",
                self.seen.iter().map(|s| &s.1).collect::<Vec<_>>()
            );
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.seen
                    .push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into()));
            }
        }
    }

    /// Index of the first message after `from` that starts with `prefix`.
    fn find(&self, from: usize, prefix: &str) -> Option<usize> {
        (from..self.seen.len()).find(|&i| self.seen[i].1.starts_with(prefix))
    }
}

/// kill(2) with any signal number: real-time ones are not in nix's enum.
fn send(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a bad pid or signal is an error.
    let r = unsafe { nix::libc::kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}): {}", nix::errno::Errno::last());
}

fn has(seen: &[(Instant, String)], from: usize, prefix: &str) -> bool {
    seen.iter().skip(from).any(|s| s.1.starts_with(prefix))
}

/// Long enough for a start, an election or a file to appear on a loaded host.
const SETTLE: Duration = Duration::from_secs(5);

#[test]
fn every_keepalived_flag_signal_and_systemd_notification() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("di", 1).expect("building the namespace lab");
    let dir = lab.dir().to_path_buf();
    let files = lab.node_files(0);
    std::fs::write(
        &files.config,
        format!("{}{}", lab.global_toml(0), instance_toml()),
    )
    .unwrap();
    let notify = dir.join("notify.sock");
    let mut systemd = Systemd::bind(&notify);
    let p = |name: &str| dir.join(name).display().to_string();
    let (pid_file, vrrp_pid, checkers_pid, bfd_pid) =
        (p("k.pid"), p("vrrp.pid"), p("checkers.pid"), p("bfd.pid"));
    let cfg = files.config.display().to_string();
    let node_ns = lab.node_ns(0).to_string();
    let notify_env = format!("NOTIFY_SOCKET={}", notify.display());
    let snmp = p("snmp.sock");
    // Every keepalived 2.2.7 flag but -V (tested below), -t, -v, -h and
    // --signum (they exit at once: tested further down).
    let args: Vec<&str> = vec![
        &notify_env,
        "WATCHDOG_USEC=200000",
        BATON,
        "-f",
        &cfg,
        "-P",
        "-C",
        "-B",
        "--all",
        "-l",
        "-D",
        "-S",
        "local3",
        "-G",
        "-u",
        "0077",
        "-X",
        "-I",
        "-R",
        "-n",
        "-d",
        "-p",
        &pid_file,
        "-r",
        &vrrp_pid,
        "-c",
        &checkers_pid,
        "-b",
        &bfd_pid,
        "-a",
        "-x",
        "-A",
        &snmp,
        "-s",
        &node_ns,
        "-m",
        "-M",
        "-e",
        "-i",
        "node0",
    ];
    let client_ns = lab.client_ns().to_string();
    let pid = lab
        .spawn(&client_ns, Path::new("/usr/bin/env"), &args, &files.log)
        .expect("starting baton");

    systemd.until(Duration::from_secs(10), "READY=1", |s| has(s, 0, "READY=1"));
    let ready = systemd.find(0, "READY=1").unwrap();
    assert!(
        systemd.seen[ready]
            .1
            .contains("STATUS=1 instance(s): VI_1 "),
        "{:?}",
        systemd.seen[ready].1
    );
    assert!(
        lab.wait_for(SETTLE, |l| l.has_addr(&node_ns, IpAddr::V4(VIP4))),
        "node0 never held the VIP (-s did not move baton there)"
    );
    assert!(
        !lab.has_addr(&client_ns, IpAddr::V4(VIP4)),
        "the VIP is on the client: -s did not move baton to node0's namespace"
    );
    // -p and -r hold our pid, written under -u 0077.
    for f in [&pid_file, &vrrp_pid] {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(text.trim(), pid.to_string(), "{f}");
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} was not created under umask 0077");
    }
    assert!(!Path::new(&checkers_pid).exists() && !Path::new(&bfd_pid).exists());
    // Watchdog pings at half of WATCHDOG_USEC (100 ms): about 10 a second.
    let from = systemd.seen.len();
    let t0 = Instant::now();
    systemd.until(Duration::from_secs(3), "a second of watchdog pings", |_| {
        t0.elapsed() >= Duration::from_secs(1)
    });
    let pings = systemd.seen[from..]
        .iter()
        .filter(|s| s.1 == "WATCHDOG=1")
        .count();
    assert!(
        (6..=14).contains(&pings),
        "{pings} watchdog pings in a second at WATCHDOG_USEC=200000"
    );

    // keepalived's signals: the agent lives on, the VIP stays, the files
    // appear next to the control socket.
    let run_dir = files.socket.parent().unwrap().to_path_buf();
    let rtmin = nix::libc::SIGRTMIN();
    for (sig, file) in [
        (Signal::SIGUSR1 as i32, "baton.data"),
        (Signal::SIGUSR2 as i32, "baton.stats"),
        (rtmin + 2, "baton.json"),
    ] {
        let path = run_dir.join(file);
        let _ = std::fs::remove_file(&path);
        send(pid, sig);
        assert!(
            lab.wait_for(SETTLE, |_| path.exists()),
            "{file} never appeared"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("VI_1"), "{file}: {text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("baton.json")).unwrap())
            .expect("baton.json is JSON");
    assert_eq!(json["instances"][0]["name"], "VI_1");
    send(pid, rtmin + 29);
    assert!(
        lab.wait_for(SETTLE, |l| l.log(0).contains("statistics cleared")),
        "statistics never cleared"
    );
    assert!(
        lab.wait(pid, Duration::ZERO).unwrap().is_none(),
        "baton died of a signal"
    );
    assert!(
        lab.has_addr(&node_ns, IpAddr::V4(VIP4)),
        "the VIP went away"
    );

    // A reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    let from = systemd.seen.len();
    lab.signal(pid, Signal::SIGHUP).unwrap();
    systemd.until(Duration::from_secs(5), "RELOADING=1 then READY=1", |s| {
        let r = (from..s.len()).find(|&i| s[i].1.starts_with("RELOADING=1"));
        r.is_some_and(|r| has(s, r + 1, "READY=1"))
    });
    let r = systemd.find(from, "RELOADING=1").unwrap();
    assert!(systemd.seen[r].1.contains("MONOTONIC_USEC="));

    // The log says what was accepted and what -d and -a did.
    let log = lab.log(0);
    for want in [
        "keepalived flag accepted, nothing to do: -P",
        "-x/-A",
        "-M (core dumps on",
        "as read (-d)",
        "address added: 192.168.77.100/24 on eth0 (-a)",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }

    // Stop: STOPPING=1, exit 0, pid files removed.
    let from = systemd.seen.len();
    lab.signal(pid, Signal::SIGTERM).unwrap();
    systemd.until(Duration::from_secs(5), "STOPPING=1", |s| {
        has(s, from, "STOPPING=1")
    });
    let code = lab.wait(pid, Duration::from_secs(10)).unwrap();
    assert_eq!(code, Some(0), "baton's exit\n{}", lab.log(0));
    assert!(!Path::new(&pid_file).exists() && !Path::new(&vrrp_pid).exists());
    assert!(!lab.has_addr(&node_ns, IpAddr::V4(VIP4)));
}

/// `-V` (`--dont-release-vrrp`): the VIPs stay configured after a stop.
#[test]
fn dont_release_vrrp_leaves_the_vips_on_stop() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("dv", 1).expect("building the namespace lab");
    let files = lab.node_files(0);
    // No lease: the address would otherwise expire a second later, by
    // design, and this checks -V alone.
    std::fs::write(
        &files.config,
        format!("{}{}vip_lease = 0\n", lab.global_toml(0), instance_toml()),
    )
    .unwrap();
    let cfg = files.config.display().to_string();
    let ns = lab.node_ns(0).to_string();
    let pid = lab
        .spawn(&ns, Path::new(BATON), &["-V", "-l", "-f", &cfg], &files.log)
        .unwrap();
    assert!(
        lab.wait_for(SETTLE, |l| l.has_addr(&ns, IpAddr::V4(VIP4))),
        "node0 never held the VIP"
    );
    lab.signal(pid, Signal::SIGTERM).unwrap();
    assert_eq!(lab.wait(pid, Duration::from_secs(10)).unwrap(), Some(0));
    assert!(
        lab.has_addr(&ns, IpAddr::V4(VIP4)),
        "-V: the VIP was removed on stop\n{}",
        lab.log(0)
    );
    assert!(lab
        .log(0)
        .contains("leaving the VIPs configured on stop (-V)"));
}

/// Start baton in node0's namespace through `sh -c SETUP` (mounts in the
/// private mount namespace `ip netns exec` gives it), with `args`; the
/// control socket and state directory in the lab.
fn spawn_with_setup(lab: &mut Lab, setup: &str, env: &[&str], args: &[&str]) -> u32 {
    let files = lab.node_files(0);
    std::fs::write(
        &files.config,
        format!("{}{}", lab.global_toml(0), instance_toml()),
    )
    .unwrap();
    let cfg = files.config.display().to_string();
    let script = format!("{setup} && exec env \"$@\"");
    let mut all: Vec<&str> = vec!["-c", &script, "sh"];
    all.extend_from_slice(env);
    all.push(BATON);
    all.extend_from_slice(args);
    all.extend_from_slice(&["-f", &cfg]);
    let ns = lab.node_ns(0).to_string();
    lab.spawn(&ns, Path::new("sh"), &all, &files.log)
        .expect("starting baton")
}

/// Datagrams received on `sock` until one contains `want` (or time out).
fn datagrams_until(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(buf[..n].to_vec());
            if String::from_utf8_lossy(&buf[..n]).contains(want) {
                break;
            }
        }
    }
    seen
}

/// Under systemd (JOURNAL_STREAM set) the log goes to the journal's
/// native socket with real priorities, once (not also to standard error);
/// without it, to syslog (/dev/log) with the facility of -S. Both sockets
/// are the test's own, mounted where baton looks for them in its private
/// mount namespace.
#[test]
fn logs_go_to_the_journal_with_priorities_or_to_syslog_with_the_facility() {
    if !lab::require_root() {
        return;
    }
    // The journal.
    let mut lab = Lab::new("lj", 1).expect("building the namespace lab");
    let dir = lab.dir().to_path_buf();
    let jsock = dir.join("journal.sock");
    let journal = UnixDatagram::bind(&jsock).unwrap();
    let setup = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
         touch /run/systemd/journal/socket && mount --bind '{}' /run/systemd/journal/socket",
        jsock.display()
    );
    let pid = spawn_with_setup(&mut lab, &setup, &["JOURNAL_STREAM=8:1234"], &["-l"]);
    let got = datagrams_until(&journal, "Entering MASTER STATE", Duration::from_secs(10));
    let text: Vec<String> = got
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    let master = text
        .iter()
        .find(|t| t.contains("MESSAGE=(VI_1) Entering MASTER STATE"))
        .unwrap_or_else(|| panic!("no MASTER entry in the journal: {text:#?}\n{}", lab.log(0)));
    assert!(
        master.starts_with("PRIORITY=6\nSYSLOG_IDENTIFIER=baton\n"),
        "{master}"
    );
    assert!(master.contains(&format!("SYSLOG_PID={pid}\n")), "{master}");
    lab.signal(pid, Signal::SIGTERM).unwrap();
    assert_eq!(lab.wait(pid, Duration::from_secs(10)).unwrap(), Some(0));
    assert!(
        !lab.log(0).contains("Entering MASTER STATE"),
        "under systemd the lines went to standard error too:\n{}",
        lab.log(0)
    );
    drop(lab);

    // Syslog, facility local3 (19): an INFO line is <158>.
    let mut lab = Lab::new("ls", 1).expect("building the namespace lab");
    let dir = lab.dir().to_path_buf();
    let ssock = dir.join("syslog.sock");
    let syslog = UnixDatagram::bind(&ssock).unwrap();
    let dev = dir.join("dev");
    let setup = format!(
        "mkdir -p '{d}' && for f in null zero random urandom; do touch '{d}'/$f && \
         mount --bind /dev/$f '{d}'/$f; done && ln -s '{s}' '{d}'/log && mount --rbind '{d}' /dev",
        d = dev.display(),
        s = ssock.display()
    );
    let pid = spawn_with_setup(&mut lab, &setup, &[], &["-S", "local3"]);
    let got = datagrams_until(&syslog, "Entering MASTER STATE", Duration::from_secs(10));
    let text: Vec<String> = got
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    let want = format!("<158>baton[{pid}]: (VI_1) Entering MASTER STATE");
    assert!(
        text.iter().any(|t| t.starts_with(&want)),
        "no {want:?} in {text:#?}\n{}",
        lab.log(0)
    );
    lab.signal(pid, Signal::SIGTERM).unwrap();
    assert_eq!(lab.wait(pid, Duration::from_secs(10)).unwrap(), Some(0));
    assert!(
        !lab.log(0).contains("Entering MASTER STATE"),
        "without -l the lines went to standard error too"
    );
}

fn baton(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BATON)
        .args(args)
        .output()
        .expect("running baton");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn signum_version_and_config_test_flags() {
    for (name, n) in [
        ("STOP", "15"),
        ("RELOAD", "1"),
        ("DATA", "10"),
        ("STATS", "12"),
        ("STATS_CLEAR", "63"),
        ("JSON", "36"),
    ] {
        let (code, out, _) = baton(&[&format!("--signum={name}")]);
        assert_eq!((code, out.trim()), (0, n), "--signum={name}");
    }
    let (code, _, err) = baton(&["--signum=NOPE"]);
    assert_ne!(code, 0);
    assert!(err.contains("Unknown sigfunc NOPE"));
    for v in ["-v", "--version"] {
        let (code, out, _) = baton(&[v]);
        assert_eq!(code, 0);
        assert!(out.starts_with("baton "), "{out}");
    }
    let dir = std::env::temp_dir().join(format!("baton-flags-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(
        &good,
        "vrrp_instance VI_1 {\n state BACKUP\n interface lo\n virtual_router_id 51\n \
         priority 100\n virtual_ipaddress {\n  192.168.77.100/24\n }\n}\n",
    )
    .unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "vrrp_instance VI_1 {\n virtual_router_id 300\n}\n").unwrap();
    let g = good.display().to_string();
    let b = bad.display().to_string();
    assert_eq!(baton(&["-t", "-f", &g]).0, 0);
    assert_eq!(baton(&["-t", "-f", &b]).0, 5);
    // -t=LOG_FILE: the report goes to the file.
    let log: PathBuf = dir.join("t.log");
    let arg = format!("--config-test={}", log.display());
    assert_eq!(baton(&[&arg, "-f", &b]).0, 5);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("bad.conf:2"));
    // As keepalived's -t: a warning (an unknown keyword) is status 5; what
    // keepalived passes over in silence (a VIP listed twice) is a note.
    let unk = dir.join("unk.conf");
    std::fs::write(
        &unk,
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n bogus_keyword 1\n \
         virtual_ipaddress {\n  192.168.77.100/24\n  192.168.77.100/24\n }\n}\n",
    )
    .unwrap();
    let u = unk.display().to_string();
    let (code, _, err) = baton(&["-t", "-f", &u]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("note: (VI_1) 192.168.77.100 is listed twice"),
        "{err}"
    );
    let dup = dir.join("dup.conf");
    std::fs::write(
        &dup,
        std::fs::read_to_string(&unk)
            .unwrap()
            .replace(" bogus_keyword 1\n", ""),
    )
    .unwrap();
    let (code, _, err) = baton(&["-t", "-f", &dup.display().to_string()]);
    assert_eq!(code, 0, "a note is not a problem for -t: {err}");
    // -e: an include that matches nothing is an error, not a note.
    let inc = dir.join("inc.conf");
    std::fs::write(
        &inc,
        format!(
            "include {}/missing-*.conf\n{}",
            dir.display(),
            std::fs::read_to_string(&good).unwrap()
        ),
    )
    .unwrap();
    let i = inc.display().to_string();
    let (code, _, err) = baton(&["-t", "-f", &i]);
    assert_eq!(code, 0, "a missing include is only a note: {err}");
    assert_eq!(baton(&["-t", "-e", "-f", &i]).0, 5);
    // The host, as keepalived's -t checks it: an interface that does not
    // exist here, a script that is missing, a user that does not exist.
    let host = dir.join("host.conf");
    std::fs::write(
        &host,
        "global_defs {\n  script_user baton-no-such-user\n}\n\
         vrrp_script chk {\n  script \"/nonexistent/check.sh\"\n}\n\
         vrrp_instance VI_1 {\n  interface bt-nosuch0\n  virtual_router_id 51\n  \
         priority 100\n  virtual_ipaddress {\n    192.168.77.100/24\n  }\n  \
         track_script {\n    chk\n  }\n}\n",
    )
    .unwrap();
    let h = host.display().to_string();
    let (code, _, err) = baton(&["-t", "-f", &h]);
    assert_eq!(code, 5, "{err}");
    for want in [
        "host.conf:8:13: error: instance \"VI_1\": interface: bt-nosuch0 does not exist",
        "baton-no-such-user",
    ] {
        assert!(err.contains(want), "-t lacks {want:?}:\n{err}");
    }
    let (code, _, err) = baton(&["check", "-f", &h]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = baton(&["check", "--no-host", "-f", &h]);
    assert_eq!(code, 0, "--no-host: {err}");
    // Values keepalived refuses are refused.
    assert_ne!(baton(&["-S", "local9", "-t", "-f", &g]).0, 0);
    assert_ne!(baton(&["-u", "0999", "-t", "-f", &g]).0, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// dist/baton.service passes `systemd-analyze verify` with nothing to say
/// (its binary path pointed at this build), and keepalived.service's own
/// `ExecStart` line (`--dont-fork $DAEMON_ARGS`) is a command line baton
/// takes.
#[test]
fn the_shipped_unit_verifies_and_keepalived_units_command_line_runs() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/baton.service"))
        .expect("dist/baton.service");
    for key in [
        "Type=notify",
        "ExecReload=",
        "Restart=on-failure",
        "WatchdogSec=",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.contains(key), "dist/baton.service lacks {key}");
    }
    let dir = std::env::temp_dir().join(format!("baton-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("baton.service");
    std::fs::write(&path, unit.replace("/usr/sbin/baton", BATON)).unwrap();
    match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && err.trim().is_empty(),
                "systemd-analyze verify: {:?}\n{err}",
                out.status
            );
        }
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "systemd-analyze is needed under CI: {e}"
            );
            eprintln!("skipped the unit check: no systemd-analyze ({e})");
        }
    }
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n \
         virtual_ipaddress {\n  192.168.77.100/24\n }\n}\n",
    )
    .unwrap();
    let c = conf.display().to_string();
    // Debian's /etc/default/keepalived: DAEMON_ARGS="-D -P" and friends.
    let (code, _, err) = baton(&["--dont-fork", "-D", "-P", "-f", &c, "-t"]);
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `baton status --watch`: frames redrawn in place (cursor home, lines
/// cleared to their end, the rest of the screen cleared) at the interval;
/// with `--json`, one document per line.
#[test]
fn status_watch_redraws_in_place_and_streams_json() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("sw", 1).expect("building the namespace lab");
    let files = lab.node_files(0);
    let pid = lab
        .start_baton(Path::new(BATON), 0, &instance_toml())
        .expect("starting baton");
    lab.wait_for_agent(0, pid, Duration::from_secs(10))
        .expect("the agent answers");
    let sock = files.socket.display().to_string();
    let run = |extra: &[&str]| -> String {
        let mut args = vec!["status", "--watch", "0.2", "-s", &sock];
        args.extend_from_slice(extra);
        let mut child = Command::new(BATON)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting status --watch");
        std::thread::sleep(Duration::from_millis(1100));
        let _ = child.kill();
        let out = child.wait_with_output().expect("its output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&[]);
    let frames: Vec<&str> = text.split("\x1b[H").filter(|f| !f.is_empty()).collect();
    assert!(
        (3..=8).contains(&frames.len()),
        "{} frames in 1.1 s at 0.2 s: {text:?}",
        frames.len()
    );
    for f in &frames[..frames.len() - 1] {
        assert!(f.contains("VI_1") && f.ends_with("\x1b[J"), "{f:?}");
    }
    let json = run(&["--json"]);
    let docs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert!(docs.len() >= 3, "{json}");
    assert_eq!(docs[0]["instances"][0]["name"], "VI_1");
}
