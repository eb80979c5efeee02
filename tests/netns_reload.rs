//! Reloads of a running agent (`baton reload`, which waits for the
//! outcome) in network namespaces, a client pinging the VIP every 10 ms.
//!
//! ```text
//!   node0 (.11) prio 150     node1 (.12) prio 100      client
//!   :7480 <---- channel ----> :7480                   Prober (10 ms)
//!       |                         |                      |
//!   +---+-------------------------+----------------------+---+
//!   |                 bridge namespace (br0)                 |
//!   +--------------------------------------------------------+
//! ```
//!
//! Each test is one lab and one sequence of reloads (each step checks what
//! the reply says; at the end, that the client never saw a gap and node0
//! never left MASTER). The tests are independent and run in parallel, each
//! in its own lab. Needs root: without it each test prints "skipped: needs
//! root" and passes, except under `CI=true`, where it fails.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton::lab::probe::Prober;
use baton::lab::{self, Lab};

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 101);
const VIP3: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 102);
const KEY: &[u8] = b"netns reload test key: 32+ bytes of it";
const NEW_KEY: &[u8] = b"netns reload test key, rotated: 32+ bytes";
const SETTLE: Duration = Duration::from_secs(10);
/// Pings every 10 ms. A VIP flap loses replies: none may be lost. The
/// longest silence between replies is bounded too, loosely: on a loaded
/// 2-core machine the pinging thread alone is late by tens of ms.
const MAX_GAP: Duration = Duration::from_millis(150);

struct Rl {
    lab: Lab,
    key: PathBuf,
}

impl Rl {
    fn instance(name: &str, vrid: u8, priority: u8, interval: &str, vips: &[Ipv4Addr]) -> String {
        let vips: Vec<String> = vips.iter().map(|v| format!("\"{v}/24\"")).collect();
        format!(
            "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
             priority = {priority}\nadvert_interval = \"{interval}\"\n\
             virtual_ips = [{}]\n\n",
            vips.join(", ")
        )
    }

    /// Node i's `[cluster]` with `peers` (None: the lab's full mesh).
    fn cluster(&self, i: usize, peers: Option<&str>) -> String {
        let t = self.lab.cluster_toml(i, &self.key, "100ms");
        match peers {
            None => t,
            Some(p) => {
                t.lines()
                    .map(|l| {
                        if l.starts_with("peers") {
                            format!("peers = [{p}]")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n\n"
            }
        }
    }

    fn write(&self, i: usize, body: &str) {
        let f = self.lab.node_files(i);
        std::fs::write(&f.config, format!("{}{body}", self.lab.global_toml(i)))
            .expect("writing the config");
    }

    /// `baton reload` on node i: (ok, stdout + stderr).
    fn reload(&self, i: usize) -> (bool, String) {
        let out = self
            .lab
            .baton_cli(Path::new(BATON), i, &["reload"])
            .expect("running baton reload");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn holds(&self, i: usize, a: Ipv4Addr) -> bool {
        self.lab.has_addr(self.lab.node_ns(i), IpAddr::V4(a))
    }

    fn became(&self, i: usize, name: &str) -> u64 {
        self.lab
            .status(i)
            .and_then(|s| s.instances.into_iter().find(|v| v.name == name))
            .map_or(0, |v| v.became_master)
    }

    fn log(&self, i: usize) -> String {
        self.lab.log(i)
    }

    /// Both nodes with their config bodies, node0 (prio 150) master of
    /// VI_1, the client pinging its VIP: the prober and node0's count of
    /// becoming master.
    fn start(&mut self, bodies: [String; 2], cluster: bool) -> (Prober, u64) {
        for (i, body) in bodies.iter().enumerate() {
            let pid = self
                .lab
                .start_baton(Path::new(BATON), i, body)
                .expect("starting baton");
            if let Err(e) = self.lab.wait_for_agent(i, pid, SETTLE) {
                panic!("node{i}: {e}\n{}", self.log(i));
            }
        }
        let ready = |rl: &Rl| rl.lab.masters("VI_1") == [0] && (!cluster || rl.lab.mesh_ready());
        assert!(
            self.lab.wait_for(SETTLE, |_| ready(self)),
            "node0 master (mesh up)\n{}",
            self.log(0)
        );
        let client = self.lab.client_ns().to_string();
        let probe = Prober::start(Some(&client), VIP, Duration::from_millis(10)).expect("prober");
        assert!(probe.wait_for_replies(5, SETTLE), "the VIP answers");
        (probe, self.became(0, "VI_1"))
    }

    /// The client saw no gap and node0 never left MASTER.
    fn no_gap(&self, probe: Prober, became: u64, what: &str) {
        let report = probe.finish().expect("prober report");
        println!("MEASURED: {what}: {report:?}");
        assert_eq!(self.lab.masters("VI_1"), [0], "{}", self.log(0));
        assert_eq!(
            self.became(0, "VI_1"),
            became,
            "node0 never left MASTER\n{}\n--- node1 ---\n{}",
            self.log(0),
            self.log(1)
        );
        assert_eq!(
            report.lost(),
            0,
            "{what}: replies lost\n{}\n--- node1 ---\n{}",
            self.log(0),
            self.log(1)
        );
        assert!(
            report.longest_gap < MAX_GAP,
            "{what}: the client saw a gap of {:?}\n{}",
            report.longest_gap,
            self.log(0)
        );
    }

    /// Reload node i, which must succeed with every `want` in its reply.
    fn reload_ok(&self, i: usize, want: &[&str]) -> String {
        let (ok, out) = self.reload(i);
        assert!(ok, "node{i}: {out}\n{}", self.log(i));
        for w in want {
            assert!(out.contains(w), "node{i}: no {w:?} in {out}");
        }
        out
    }

    /// How many times node i logged `peer` connected.
    fn connects(&self, i: usize, peer: &str) -> usize {
        self.log(i)
            .matches(&format!("cluster: {peer} connected"))
            .count()
    }
}

fn prio(i: usize) -> u8 {
    if i == 0 {
        150
    } else {
        100
    }
}

#[test]
fn reloads_change_instances_peers_and_key_without_a_gap() {
    if !lab::require_root() {
        return;
    }
    let lab = Lab::new("brl", 2).expect("building the namespace lab");
    let key = lab.write_cluster_key(KEY).expect("writing the key");
    let mut rl = Rl { lab, key };
    let one = Rl::instance("VI_1", 51, 150, "100ms", &[VIP]);
    for i in 0..2 {
        let prio = if i == 0 { 150 } else { 100 };
        let body = format!(
            "{}{}",
            rl.cluster(i, None),
            Rl::instance("VI_1", 51, prio, "100ms", &[VIP])
        );
        let toml = body.clone();
        let pid = rl
            .lab
            .start_baton(Path::new(BATON), i, &toml)
            .expect("starting baton");
        rl.lab
            .wait_for_agent(i, pid, SETTLE)
            .expect("agent answers");
    }
    let ready = |rl: &Rl| rl.lab.masters("VI_1") == [0] && rl.lab.mesh_ready();
    assert!(
        rl.lab.wait_for(SETTLE, |_| ready(&rl)),
        "node0 master, mesh up\n{}",
        rl.log(0)
    );
    let client = rl.lab.client_ns().to_string();
    let probe = Prober::start(Some(&client), VIP, Duration::from_millis(10)).expect("prober");
    assert!(probe.wait_for_replies(5, SETTLE), "the VIP answers");
    let became = rl.became(0, "VI_1");

    // 1. VIPs, advert interval and priority change in place.
    let changed = Rl::instance("VI_1", 51, 160, "200ms", &[VIP, VIP2]);
    rl.write(0, &format!("{}{changed}", rl.cluster(0, None)));
    let (ok, out) = rl.reload(0);
    assert!(ok, "{out}");
    assert!(out.contains("instances reconfigured: VI_1"), "{out}");
    assert!(rl.holds(0, VIP) && rl.holds(0, VIP2), "{}", rl.log(0));

    // 2. An instance added, then removed (its VIP released).
    let two = Rl::instance("VI_2", 52, 150, "100ms", &[VIP3]);
    rl.write(0, &format!("{}{changed}{two}", rl.cluster(0, None)));
    let (ok, out) = rl.reload(0);
    assert!(ok && out.contains("instances added: VI_2"), "{out}");
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.holds(0, VIP3)),
        "VI_2 takes its VIP\n{}",
        rl.log(0)
    );
    rl.write(0, &format!("{}{changed}", rl.cluster(0, None)));
    let (ok, out) = rl.reload(0);
    assert!(ok && out.contains("instances removed: VI_2"), "{out}");
    assert!(!rl.holds(0, VIP3), "VI_2's VIP released\n{}", rl.log(0));

    // 3. An invalid file is refused whole, with file:line:col.
    rl.write(
        0,
        &format!("{}{changed}vrid_typo = \n", rl.cluster(0, None)),
    );
    let (ok, out) = rl.reload(0);
    assert!(!ok, "{out}");
    assert!(out.contains("node0.toml:"), "no file:line:col in {out}");
    assert!(rl.log(0).contains("reload refused"), "{}", rl.log(0));
    assert!(rl.holds(0, VIP2), "the running configuration stays");

    // 4. A rotated key on node0 only: the mesh stays up, and node1, still
    //    on the old key, reconnects after its connection drops.
    std::fs::write(&rl.key, NEW_KEY).expect("rotating the key");
    let grace = rl.cluster(0, None).replace(
        "heartbeat_interval",
        "key_grace = \"10m\"\nheartbeat_interval",
    );
    rl.write(0, &format!("{grace}{changed}"));
    let (ok, out) = rl.reload(0);
    assert!(ok && out.contains("key rotated: yes"), "{out}");
    // node1's next connection proves the old key (it has not reloaded).
    let before = rl.log(0).matches("cluster: peer node1").count();
    let ns1 = rl.lab.node_ns(1).to_string();
    rl.lab
        .ns(
            &ns1,
            "ss",
            &["-K", "dst", &format!("{}", rl.lab.node_addr4(0))],
        )
        .expect("ss -K");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.lab.mesh_ready()),
        "node1 (old key) reconnects to node0 (new key) in the grace\n{}",
        rl.log(0)
    );
    let _ = before;

    // 5. A peer removed, then added back.
    rl.write(0, &format!("{}{changed}", rl.cluster(0, Some(""))));
    let (ok, out) = rl.reload(0);
    assert!(ok && out.contains("peers removed: node1"), "{out}");
    let peers = |rl: &Rl| {
        rl.lab
            .status(0)
            .and_then(|s| s.cluster)
            .map(|c| c.peers.len())
    };
    assert_eq!(peers(&rl), Some(0));
    std::fs::write(&rl.key, KEY).expect("the key back");
    rl.write(0, &format!("{}{changed}", rl.cluster(0, None)));
    let (ok, out) = rl.reload(0);
    assert!(ok && out.contains("peers added: node1"), "{out}");
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.lab.mesh_ready()),
        "node1 is back in the mesh\n{}",
        rl.log(0)
    );

    rl.no_gap(probe, became, "reload sequence");
    let _ = one;
}

/// The acceptor's side of a rolling key rotation, then the end of the
/// grace. node0 dials node1 (names sort so). node1 is reloaded with the new
/// key first: node0, still on the old one, reconnects to it in the grace.
/// Then node0 takes the new key too; when node1's grace (2 s) ends, the
/// connection keyed with the old key is closed and redialed with the new
/// one, and the mesh comes back up.
#[test]
fn key_rotation_on_the_acceptor_and_the_end_of_the_grace() {
    if !lab::require_root() {
        return;
    }
    let lab = Lab::new("brl", 2).expect("building the namespace lab");
    let key = lab.write_cluster_key(KEY).expect("writing the key");
    let mut rl = Rl { lab, key };
    let body = |rl: &Rl, i: usize| {
        let c = rl.cluster(i, None).replace(
            "heartbeat_interval",
            "key_grace = \"2s\"\nheartbeat_interval",
        );
        format!("{c}{}", Rl::instance("VI_1", 51, prio(i), "100ms", &[VIP]))
    };
    let (probe, became) = rl.start([body(&rl, 0), body(&rl, 1)], true);

    std::fs::write(&rl.key, NEW_KEY).expect("rotating the key");
    rl.write(1, &body(&rl, 1));
    rl.reload_ok(1, &["key rotated: yes"]);
    let t_rotated = std::time::Instant::now();
    // node0 (old key) dials again: node1 must prove the old key to it.
    let before = rl.connects(1, "node0");
    let ns0 = rl.lab.node_ns(0).to_string();
    let dst = format!("{}", rl.lab.node_addr4(1));
    rl.lab.ns(&ns0, "ss", &["-K", "dst", &dst]).expect("ss -K");
    assert!(
        rl.lab
            .wait_for(Duration::from_millis(1500), |_| rl.connects(1, "node0")
                > before),
        "node0 (old key) reconnects to node1 (new key, acceptor) in the grace\n{}\n{}",
        rl.log(1),
        rl.log(0)
    );
    assert!(
        t_rotated.elapsed() < Duration::from_secs(2),
        "reconnected within the grace"
    );
    // node0 takes the new key; the connection up stays (keyed old).
    rl.write(0, &body(&rl, 0));
    rl.reload_ok(0, &["key rotated: yes"]);
    let before = rl.connects(1, "node0");
    assert!(
        rl.lab
            .wait_for(SETTLE, |_| rl.log(1).contains("key grace over")),
        "node1's grace ends\n{}",
        rl.log(1)
    );
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.connects(1, "node0") > before
            && rl.lab.mesh_ready()),
        "the old-key connection is closed and redialed with the new key\n{}\n{}",
        rl.log(1),
        rl.log(0)
    );
    assert!(
        rl.log(1).contains("key rotated)") || rl.log(0).contains("key rotated)"),
        "closed because of the rotation\n{}\n{}",
        rl.log(1),
        rl.log(0)
    );
    rl.no_gap(probe, became, "key rotation, acceptor side and grace end");
}

/// `[[sync]]` entries added and removed by reloads: the first entry starts
/// data sync and its file reaches the peer, a second one too; a removed
/// entry is no longer synced (a later edit stays on node0) while the other
/// still is; removing the last stops data sync.
#[test]
fn sync_entries_added_and_removed() {
    if !lab::require_root() {
        return;
    }
    let lab = Lab::new("brl", 2).expect("building the namespace lab");
    let key = lab.write_cluster_key(KEY).expect("writing the key");
    let mut rl = Rl { lab, key };
    let dir = rl
        .lab
        .node_files(0)
        .config
        .parent()
        .expect("lab dir")
        .to_path_buf();
    let file = |i: usize, e: &str| dir.join(format!("n{i}-{e}.conf"));
    let body = |rl: &Rl, i: usize, entries: &[&str]| {
        let mut t = format!(
            "{}\nsync_instance = \"VI_1\"\n\n{}",
            rl.cluster(i, None).trim_end(),
            Rl::instance("VI_1", 51, prio(i), "100ms", &[VIP])
        );
        for e in entries {
            t.push_str(&format!(
                "[[sync]]\nname = \"{e}\"\npath = \"{}\"\n\n",
                file(i, e).display()
            ));
        }
        t
    };
    let (probe, became) = rl.start([body(&rl, 0, &[]), body(&rl, 1, &[])], true);
    let has = |i: usize, e: &str, text: &str| {
        std::fs::read_to_string(file(i, e)).is_ok_and(|t| t == text)
    };
    let reload_both = |rl: &Rl, entries: &[&str], want: &[&str]| {
        for i in [1, 0] {
            rl.write(i, &body(rl, i, entries));
            rl.reload_ok(i, want);
        }
    };

    // The first entry: data sync starts, the file reaches node1.
    std::fs::write(file(0, "a"), "a v1\n").expect("writing a");
    reload_both(&rl, &["a"], &["sync entries added: a", "data sync started"]);
    assert!(
        rl.lab.wait_for(SETTLE, |_| has(1, "a", "a v1\n")),
        "node1 gets a\n{}\n{}",
        rl.log(0),
        rl.log(1)
    );
    // A second entry.
    std::fs::write(file(0, "b"), "b v1\n").expect("writing b");
    reload_both(&rl, &["a", "b"], &["sync entries added: b"]);
    assert!(
        rl.lab.wait_for(SETTLE, |_| has(1, "b", "b v1\n")),
        "node1 gets b\n{}",
        rl.log(0)
    );
    // a removed: its edit stays on node0, b's edit (made after) arrives.
    reload_both(&rl, &["b"], &["sync entries removed: a"]);
    std::fs::write(file(0, "a"), "a v2\n").expect("editing a");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(file(0, "b"), "b v2\n").expect("editing b");
    assert!(
        rl.lab.wait_for(SETTLE, |_| has(1, "b", "b v2\n")),
        "node1 gets b's edit\n{}",
        rl.log(0)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(has(1, "a", "a v1\n"), "a, removed, is no longer synced");
    // The last entry removed: data sync stops.
    reload_both(&rl, &[], &["sync entries removed: b", "data sync stopped"]);
    std::fs::write(file(0, "b"), "b v3\n").expect("editing b");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(has(1, "b", "b v2\n"), "no sync after the last entry went");
    assert!(
        rl.lab
            .status(0)
            .and_then(|s| s.cluster)
            .is_some_and(|c| c.sync.is_empty()),
        "no sync in node0's status"
    );
    rl.no_gap(probe, became, "sync entries added and removed");
}

/// `[cluster]` added to two plain VRRP nodes starts the channel; node1's
/// `listen` moved to another port is rebound (node0 follows with the new
/// address); `[cluster]` removed from node0 stops its channel (VRRP alone
/// keeps it master); a new node name is refused, with why.
#[test]
fn cluster_added_rebound_removed_and_a_new_name_refused() {
    if !lab::require_root() {
        return;
    }
    let lab = Lab::new("brl", 2).expect("building the namespace lab");
    let key = lab.write_cluster_key(KEY).expect("writing the key");
    let mut rl = Rl { lab, key };
    let inst = |i: usize| Rl::instance("VI_1", 51, prio(i), "100ms", &[VIP]);
    let (probe, became) = rl.start([inst(0), inst(1)], false);

    for i in [0, 1] {
        rl.write(i, &format!("{}{}", rl.cluster(i, None), inst(i)));
        rl.reload_ok(i, &["cluster channel started", "peers added: node"]);
    }
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.lab.mesh_ready()),
        "the mesh comes up\n{}\n{}",
        rl.log(0),
        rl.log(1)
    );

    // node1 listens on 7481 now; node0 dials it there.
    let a1 = rl.lab.node_addr4(1);
    let moved = rl
        .cluster(1, None)
        .replace(&format!("{a1}:7480"), &format!("{a1}:7481"));
    rl.write(1, &format!("{moved}{}", inst(1)));
    rl.reload_ok(
        1,
        &[&format!("cluster listen rebound: {a1}:7480 -> {a1}:7481")],
    );
    let ns1 = rl.lab.node_ns(1).to_string();
    let listening = |port: &str| {
        rl.lab
            .ns(&ns1, "ss", &["-Hltn", "sport", "=", port])
            .map(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
            .unwrap_or(false)
    };
    assert!(listening(":7481") && !listening(":7480"), "rebound");
    let before = rl.connects(1, "node0");
    rl.write(
        0,
        &format!(
            "{}{}",
            rl.cluster(0, Some(&format!("\"node1={a1}:7481\""))),
            inst(0)
        ),
    );
    rl.reload_ok(0, &["peers added: node1", "peers removed: node1"]);
    assert!(
        rl.lab.wait_for(SETTLE, |_| rl.connects(1, "node0") > before
            && rl.lab.mesh_ready()),
        "node0 reaches node1 on its new port\n{}\n{}",
        rl.log(0),
        rl.log(1)
    );

    // A new node name: refused, with why; the channel runs on.
    let renamed = moved.replace("node = \"node1\"", "node = \"node9\"");
    rl.write(1, &format!("{renamed}{}", inst(1)));
    let (ok, out) = rl.reload(1);
    assert!(!ok, "{out}");
    assert!(
        out.contains("node changed (node1 -> node9)") && out.contains("restart baton"),
        "{out}"
    );
    assert!(rl.lab.mesh_ready(), "the mesh stays up");

    // [cluster] removed from node0: its channel stops, VRRP keeps it master.
    rl.write(0, &inst(0));
    rl.reload_ok(0, &["cluster channel stopped", "peers removed: node1"]);
    assert!(
        rl.lab.status(0).is_some_and(|s| s.cluster.is_none()),
        "no cluster in node0's status"
    );
    let ns0 = rl.lab.node_ns(0).to_string();
    let out = rl
        .lab
        .ns(
            &ns0,
            "ss",
            &["-Htn", "state", "established", "dst", &format!("{a1}")],
        )
        .expect("ss");
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "node0's channel connections are closed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // node1 lost node0 on the channel but hears its adverts: it stays backup.
    std::thread::sleep(Duration::from_millis(2000));
    rl.no_gap(probe, became, "cluster added, rebound, removed");
}

/// `metrics_listen` added, moved and removed by reload: the endpoint
/// answers a scrape where it is, the old address stops listening, and the
/// VIP never moves.
#[test]
fn metrics_endpoint_started_moved_and_stopped_by_reload() {
    if !lab::require_root() {
        return;
    }
    let lab = Lab::new("brm", 2).expect("building the namespace lab");
    let key = lab.write_cluster_key(KEY).expect("writing the key");
    let mut rl = Rl { lab, key };
    let inst = |i: usize| Rl::instance("VI_1", 51, prio(i), "100ms", &[VIP]);
    let (probe, became) = rl.start([inst(0), inst(1)], false);
    let a0 = rl.lab.node_addr4(0);
    let with_metrics = |port: u16| {
        let global = rl.lab.global_toml(0).replace(
            "[global]\n",
            &format!("[global]\nmetrics_listen = \"{a0}:{port}\"\n"),
        );
        std::fs::write(&rl.lab.node_files(0).config, format!("{global}{}", inst(0)))
            .expect("writing the config");
    };
    let ns0 = rl.lab.node_ns(0).to_string();
    let listening = |port: u16| {
        rl.lab
            .ns(&ns0, "ss", &["-Hltn", "sport", "=", &format!(":{port}")])
            .map(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
            .unwrap_or(false)
    };
    let client = rl.lab.client_ns().to_string();
    let scrape = |port: u16| {
        let script = format!(
            "exec 3<>/dev/tcp/{a0}/{port} && printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3 \
             && timeout 2 cat <&3"
        );
        rl.lab
            .ns(&client, "bash", &["-c", &script])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };

    with_metrics(9651);
    rl.reload_ok(0, &[&format!("metrics: serving GET /metrics on {a0}:9651")]);
    assert!(
        rl.lab
            .wait_for(SETTLE, |_| scrape(9651).contains("baton_instance_state")),
        "a scrape on the new endpoint\n{}",
        rl.log(0)
    );

    with_metrics(9652);
    rl.reload_ok(0, &[&format!("metrics: serving GET /metrics on {a0}:9652")]);
    assert!(
        rl.lab
            .wait_for(SETTLE, |_| scrape(9652).contains("baton_instance_state")),
        "a scrape on the moved endpoint"
    );
    assert!(
        rl.lab.wait_for(SETTLE, |_| !listening(9651)),
        "the old endpoint is closed"
    );

    rl.write(0, &inst(0));
    rl.reload_ok(0, &["metrics: endpoint stopped"]);
    assert!(
        rl.lab.wait_for(SETTLE, |_| !listening(9652)),
        "no endpoint left"
    );
    rl.no_gap(probe, became, "metrics endpoint reloaded");
}
