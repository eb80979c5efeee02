//! `baton demo` end to end: it runs, it cleans up (also on Ctrl-C), and
//! without root it says so.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton::lab;

const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// The lab tag the demo printed ("  lab bd1234x0: ...").
fn lab_tag(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("lab ")?;
        Some(rest.split(':').next()?.to_string())
    })
}

fn namespaces_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_route_moves_the_vip_by_routing_and_leaves_nothing_behind() {
    if !lab::require_root() {
        return;
    }
    let out = Command::new(BATON)
        .args(["demo", "--route"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo --route failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "node0  10.77.1.0/24       150  MASTER    10.99.0.100",
        "router: 10.99.0.100/32 via node0",
        "node1 held the VIP",
        "router: 10.99.0.100/32 via node1",
        "router: 10.99.0.100/32 via node2",
        "the client lost 0 of",
        "Done: tearing the lab down.",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let tag = lab_tag(&text).expect("the demo names its lab");
    assert_eq!(
        namespaces_with(&tag),
        Vec::<String>::new(),
        "namespaces left"
    );
}

#[test]
fn demo_runs_every_step_and_leaves_nothing_behind() {
    if !lab::require_root() {
        return;
    }
    let out = Command::new(BATON).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "node0       150  MASTER",
        "node1 took over in",
        "went to FAULT",
        "node0 is master again",
        "node2 is master of VI_1",
        "the client lost 0 of",
        "preempted back",
        "Done: tearing the lab down.",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let tag = lab_tag(&text).expect("the demo names its lab");
    assert_eq!(
        namespaces_with(&tag),
        Vec::<String>::new(),
        "namespaces left"
    );
    assert!(!std::path::Path::new(&format!("/tmp/baton-lab-{tag}")).exists());
}

#[test]
fn ctrl_c_stops_the_demo_and_cleans_up() {
    if !lab::require_root() {
        return;
    }
    let mut child = Command::new(BATON)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let start = Instant::now();
    // Interrupt once the agents are running.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("1. Starting") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{seen}");
    }
    let tag = lab_tag(&seen).expect("the demo names its lab");
    assert!(
        !namespaces_with(&tag).is_empty(),
        "the lab exists while running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "an interrupted demo is not a success");
    assert!(err.contains("interrupted"), "stderr: {err}");
    assert_eq!(
        namespaces_with(&tag),
        Vec::<String>::new(),
        "namespaces left"
    );
    let agents = Command::new("pgrep")
        .args(["-f", &format!("baton-lab-{tag}")])
        .output()
        .unwrap();
    assert!(agents.stdout.is_empty(), "agents left running");
}

#[test]
fn demo_without_root_is_a_clear_error() {
    if !lab::require_root() {
        return; // we need root to become someone else
    }
    let out = Command::new(BATON)
        .arg("demo")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs root"), "{err}");
}
