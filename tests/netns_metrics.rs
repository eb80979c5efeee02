//! The Prometheus endpoint on a real 3-node lab (cluster channel, one
//! synced file, `metrics_listen` on each node's lab address), scraped from
//! the lab's client namespace over the bridge:
//!
//! ```text
//!   client ns --HTTP--> node0 (200, master)  node1 (150)  node2 (100)
//!                          \______ channel mesh + VRRP + [[sync]] ____/
//! ```
//!
//! - before a failover: the gauges and counters match the roles (node0
//!   MASTER and sending adverts, node1 BACKUP and receiving), every peer
//!   has a positive round-trip time, the synced file's lag is 0;
//! - garbage, other methods and paths, an oversized request and a silent
//!   connection get errors (or are dropped) and the daemon is unaffected;
//! - node0 killed: node1's state gauge flips, its BACKUP->MASTER transition
//!   and VIP add are counted, node0 shows down; a change made by the new
//!   control node commits and node2's lag is back to 0;
//! - every metric name used in dist/ is in a real scrape.
//!
//! Needs root: without it the test prints "skipped: needs root" and passes,
//! except under `CI=true`, where it fails.

#[path = "support/schema.rs"]
mod schema;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use baton::lab;

// Its file and on_change helpers serve tests/netns_sync.rs.
#[path = "support/sync_lab.rs"]
#[allow(dead_code)]
mod sync_lab;
use sync_lab::*;

fn addr(s: &SyncLab, i: usize) -> SocketAddr {
    SocketAddr::from((s.lab.node_addr4(i), METRICS_PORT))
}

/// Send `request` to node i's endpoint from the client namespace; the
/// whole answer (the server closes), or why there is none.
fn exchange(s: &SyncLab, i: usize, request: Vec<u8>) -> Result<String, String> {
    let to = addr(s, i);
    lab::in_netns(s.lab.client_ns(), move || {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .map_err(|e| format!("connect {to}: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok();
        c.set_write_timeout(Some(Duration::from_secs(5))).ok();
        // The server may answer and close before it read everything.
        let _ = c.write_all(&request);
        let mut out = Vec::new();
        match c.read_to_end(&mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
            Err(e) if !out.is_empty() => Err(format!("{e} after {} bytes", out.len())),
            Err(e) => Err(format!("read: {e}")),
        }
    })
}

fn scrape(s: &SyncLab, i: usize) -> String {
    let reply = exchange(s, i, b"GET /metrics HTTP/1.1\r\nHost: lab\r\n\r\n".to_vec())
        .unwrap_or_else(|e| panic!("scrape node{i}: {e}"));
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.to_string()
}

/// The value of one series (name with its labels, as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.parse().expect("a number"))
}

fn must(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn status_of(reply: &str) -> &str {
    reply.lines().next().unwrap_or("")
}

const STATE: &str = r#"baton_instance_state{vrrp_instance="VI_1",state="#;

fn state(text: &str, st: &str) -> f64 {
    must(text, &format!(r#"{STATE}"{st}"}}"#))
}

fn wait_scrape(s: &SyncLab, i: usize, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = scrape(s, i);
        if cond(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!(
                "node{i}: timed out waiting for {what}; last scrape:\n{text}\n{}",
                s.lab.log(i)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_follow_a_failover_and_survive_bad_clients() {
    if !lab::require_root() {
        return;
    }
    let mut s = SyncLab::new("bmx", 3);
    s.metrics = true;
    s.up(&[0, 1, 2]);
    std::fs::write(s.file(0), b"backend a\n").unwrap();
    s.wait("the file on every peer", SETTLE, |s| {
        s.everywhere(&[1, 2], b"backend a\n")
    });
    s.committed(0);

    // Roles, adverts, RTT, lag before the failover.
    let n0 = wait_scrape(&s, 0, "the version committed, lag 0 for both peers", |t| {
        value(t, r#"baton_sync_committed{entry="app"}"#) == Some(1.0)
            && ["node1", "node2"].iter().all(|p| {
                value(
                    t,
                    &format!(r#"baton_sync_peer_lag_seconds{{entry="app",peer="{p}"}}"#),
                ) == Some(0.0)
            })
    });
    assert_eq!(state(&n0, "MASTER"), 1.0);
    assert_eq!(state(&n0, "BACKUP"), 0.0);
    let sent = must(
        &n0,
        r#"baton_instance_adverts_sent_total{vrrp_instance="VI_1"}"#,
    );
    assert!(sent > 0.0);
    assert_eq!(must(&n0, r#"baton_sync_bytes{entry="app"}"#), 10.0);
    assert_eq!(must(&n0, r#"baton_sync_committed{entry="app"}"#), 1.0);
    let n1 = wait_scrape(&s, 1, "RTT to both peers", |t| {
        ["node0", "node2"].iter().all(|p| {
            value(t, &format!(r#"baton_peer_rtt_seconds{{peer="{p}"}}"#)).is_some_and(|r| r > 0.0)
        })
    });
    for p in ["node0", "node2"] {
        let rtt = must(&n1, &format!(r#"baton_peer_rtt_seconds{{peer="{p}"}}"#));
        assert!(rtt > 0.0 && rtt < 0.5, "node1 -> {p}: {rtt} s");
        eprintln!("node1 -> {p}: rtt {:.3} ms", rtt * 1000.0);
        assert_eq!(
            must(&n1, &format!(r#"baton_peer_alive{{peer="{p}"}}"#)),
            1.0
        );
        assert!(
            must(
                &n1,
                &format!(r#"baton_peer_heartbeats_received_total{{peer="{p}"}}"#)
            ) > 0.0
        );
    }
    assert_eq!(state(&n1, "BACKUP"), 1.0);
    assert_eq!(state(&n1, "MASTER"), 0.0);
    let received = must(
        &n1,
        r#"baton_instance_adverts_received_total{vrrp_instance="VI_1"}"#,
    );
    assert!(received > 0.0);
    // Counters move between scrapes.
    std::thread::sleep(Duration::from_millis(500));
    let later = scrape(&s, 0);
    assert!(
        must(
            &later,
            r#"baton_instance_adverts_sent_total{vrrp_instance="VI_1"}"#
        ) > sent
    );

    // Bad clients: each gets an error or a closed connection, never a hang.
    let silent = lab::in_netns(s.lab.client_ns(), {
        let to = addr(&s, 1);
        move || TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("connect")
    });
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("garbage", b"\x00\x01\x02 garbage\r\n\r\n".to_vec(), "400"),
        ("POST", b"POST /metrics HTTP/1.1\r\n\r\n".to_vec(), "405"),
        (
            "another path",
            b"GET /admin HTTP/1.1\r\n\r\n".to_vec(),
            "404",
        ),
        ("no version", b"GET /metrics\r\n\r\n".to_vec(), "400"),
        ("oversized", vec![b'A'; 20 * 1024], "400"),
    ];
    for (what, req, code) in cases {
        let reply = exchange(&s, 1, req).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            status_of(&reply).starts_with(&format!("HTTP/1.1 {code} ")),
            "{what}: {reply}"
        );
    }
    // A silent connection holds one worker; scrapes go on meanwhile, and
    // it is closed after the 2 s deadline.
    let t = Instant::now();
    let text = scrape(&s, 1);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    eprintln!(
        "scrape beside a silent client: {:?}, {} bytes",
        t.elapsed(),
        text.len()
    );
    let mut silent = silent;
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = silent.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400 "),
        "the silent client: {buf:?}"
    );
    // The daemon did not notice.
    assert_eq!(s.lab.masters("VI_1"), vec![0]);
    let st = s.lab.status(1).expect("node1 answers");
    assert!(st.cluster.unwrap().peers.iter().all(|p| p.alive));

    // Failover: node0 dies, node1 takes over. Counted from here: node1 may
    // have been master for a moment while the lab came up.
    const UP: &str =
        r#"baton_instance_transitions_total{vrrp_instance="VI_1",from="BACKUP",to="MASTER"}"#;
    const ADDS: &str = r#"baton_instance_vip_adds_total{vrrp_instance="VI_1"}"#;
    let before = scrape(&s, 1);
    let (ups, adds) = (value(&before, UP).unwrap_or(0.0), must(&before, ADDS));
    s.kill(0);
    s.wait("node1 master", SETTLE, |s| s.lab.masters("VI_1") == vec![1]);
    let n1 = wait_scrape(&s, 1, "node1 MASTER, node0 down", |t| {
        state(t, "MASTER") == 1.0 && value(t, r#"baton_peer_connected{peer="node0"}"#) == Some(0.0)
    });
    assert_eq!(state(&n1, "BACKUP"), 0.0);
    assert_eq!(must(&n1, UP), ups + 1.0);
    assert_eq!(must(&n1, ADDS), adds + 1.0);
    assert!(
        must(
            &n1,
            r#"baton_instance_garp_sent_total{vrrp_instance="VI_1"}"#
        ) > 0.0
    );
    assert_eq!(must(&n1, r#"baton_peer_alive{peer="node0"}"#), 0.0);
    assert!(value(&n1, r#"baton_peer_rtt_seconds{peer="node0"}"#).is_none());
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = must(
        &n1,
        r#"baton_instance_last_transition_timestamp_seconds{vrrp_instance="VI_1"}"#,
    );
    assert!(wall - last < 15.0 && wall - last >= 0.0, "{wall} {last}");
    // The new control node's change commits; node2's lag is back to 0.
    let before = must(&n1, r#"baton_sync_version_counter{entry="app"}"#);
    std::fs::write(s.file(1), b"backend b\n").unwrap();
    let n1 = wait_scrape(&s, 1, "the new version committed, node2 caught up", |t| {
        value(t, r#"baton_sync_committed{entry="app"}"#) == Some(1.0)
            && value(t, r#"baton_sync_bytes{entry="app"}"#) == Some(10.0)
            && value(t, r#"baton_sync_version_counter{entry="app"}"#) != Some(before)
            && value(
                t,
                r#"baton_sync_peer_lag_seconds{entry="app",peer="node2"}"#,
            ) == Some(0.0)
    });
    assert_eq!(
        must(&n1, r#"baton_sync_peer_behind{entry="app",peer="node2"}"#),
        0.0
    );
    assert!(s.everywhere(&[2], b"backend b\n"));

    // `baton status` shows the same: RTT and heartbeats per peer, lag per
    // synced file and peer, what the instance sent.
    let cli = |args: &[&str]| {
        let out = s
            .lab
            .baton_cli(std::path::Path::new(BATON), 1, args)
            .expect("baton status");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let text = cli(&["status"]);
    assert!(
        text.contains("peer node2: alive") && text.contains(" heartbeats, rtt "),
        "{text}"
    );
    assert!(
        text.contains("sent ") && text.contains(&format!("VIPs added {}", adds + 1.0)),
        "{text}"
    );
    assert!(
        text.contains(&format!("BACKUP->MASTER {}", ups + 1.0)),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&cli(&["status", "--json"])).unwrap();
    // The real daemon's document follows the published schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dist/status.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let errors = schema::check(&schema, &json);
    assert!(errors.is_empty(), "{}\n{json:#}", errors.join("\n"));
    let peers = &json["cluster"]["peers"];
    let node2 = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "node2")
        .unwrap();
    assert!(node2["rtt_us"].as_u64().is_some_and(|us| us > 0), "{node2}");
    let lag = &json["cluster"]["sync"][0]["lag"];
    assert_eq!(lag[0]["peer"], "node2", "{lag}");
    assert_eq!(lag[0]["behind"], false, "{lag}");
    assert_eq!(
        json["instances"][0]["tx"]["transitions"]["BACKUP->MASTER"].as_f64(),
        Some(ups + 1.0),
        "{json}"
    );

    // Every metric name in dist/ is in a real scrape (a sample or its
    // family's TYPE line: counters are typed without `_total`).
    let all = format!("{}{}", scrape(&s, 1), scrape(&s, 2));
    for file in ["dist/grafana-dashboard.json", "dist/prometheus-alerts.yml"] {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut rest = text.as_str();
        let mut seen = 0;
        while let Some(at) = rest.find("baton_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = name.strip_suffix("_total").unwrap_or(&name);
            assert!(
                all.lines().any(|l| l.starts_with(&format!("{name}{{"))
                    || l.starts_with(&format!("{name} "))
                    || l.starts_with(&format!("# TYPE {base} "))),
                "{file} uses {name}, not in a real scrape"
            );
            seen += 1;
        }
        assert!(seen > 4, "{file}: {seen} names");
    }
}
