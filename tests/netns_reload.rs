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
//! One lab, one sequence of reloads on node0 (each step checks what the
//! reply says and that the client never saw a gap). Needs root: without it
//! the test prints "skipped: needs root" and passes, except under
//! `CI=true`, where it fails.

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
/// Pings every 10 ms: a longer silence is a gap the client felt.
const MAX_GAP: Duration = Duration::from_millis(60);

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

    let report = probe.finish().expect("prober report");
    println!("MEASURED: reload sequence: {report:?}");
    assert_eq!(rl.lab.masters("VI_1"), [0], "{}", rl.log(0));
    assert_eq!(
        rl.became(0, "VI_1"),
        became,
        "node0 never left MASTER\n{}",
        rl.log(0)
    );
    assert!(
        report.longest_gap < MAX_GAP,
        "the client saw a gap of {:?}\n{}",
        report.longest_gap,
        rl.log(0)
    );
    let _ = one;
}
