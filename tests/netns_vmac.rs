//! `use_vmac` on the wire: a macvlan with the virtual router MAC per
//! instance, created and deleted by baton, and interop with keepalived
//! 2.2.7 and FRR vrrpd running their own virtual MAC on the other node.
//!
//! ```text
//!   node0 (eth0 .11)          node1 (eth0 .12)         client (.200)
//!   + vrrp.51 (macvlan,       + vrrp.51 / FRR's         captures adverts,
//!     00:00:5e:00:01:33)        vrrp4-2-51              ARPs and pings the VIP
//!       |                         |                           |
//!   +---+-------------------------+---------------------------+---+
//!   |                 bridge namespace (br0)                      |
//!   +-------------------------------------------------------------+
//! ```
//!
//! Each test builds its own [`Lab`] (namespaces prefixed "bvm" plus the
//! process id) and needs root: without it a test prints "skipped: needs
//! root" and passes, except under `CI=true`. The interop tests also need
//! keepalived and FRR (`/usr/lib/frr/{zebra,vrrpd}`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::lab::probe::Prober;
use baton::lab::{self, Lab};
use baton::vrrp::State;
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VRID: u8 = 51;
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, VRID];
const VMAC_IF: &str = "vrrp.51";
/// Generous: elections take 3 advert intervals plus skew (100 ms adverts),
/// keepalived's and FRR's start-up a little more.
const TIMEOUT: Duration = Duration::from_secs(10);

fn baton_instance(priority: u8, extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\n\
         use_vmac = true\n{extra}virtual_ips = [\"{VIP}/24\"]\n"
    )
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The source MACs of the VRRP (VRID 51) frames seen by the client during
/// `period`.
fn advert_sources(lab: &Lab, period: Duration) -> Vec<[u8; 6]> {
    lab::in_netns(lab.client_ns(), move || {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == lab::IFNAME)
            .expect("client eth0");
        let config = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        let mut rx = match pnet_datalink::channel(&iface, config).expect("packet socket") {
            pnet_datalink::Channel::Ethernet(_, rx) => rx,
            _ => panic!("not an Ethernet channel"),
        };
        let mut out = Vec::new();
        let end = Instant::now() + period;
        while Instant::now() < end {
            let Ok(frame) = rx.next() else { continue };
            // Ethernet + IPv4 (protocol 112) + VRRP, VRID in the VRRP's byte 1.
            if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[23] != 112 {
                continue;
            }
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            if frame.get(14 + ihl + 1) == Some(&VRID) {
                out.push(frame[6..12].try_into().unwrap());
            }
        }
        out
    })
}

/// Whether the client gets an echo reply from the VIP within a second,
/// and then its neighbour entry for the VIP.
fn client_ping_and_neigh(lab: &Lab) -> (bool, Option<String>) {
    let ping = Prober::start(Some(lab.client_ns()), VIP, Duration::from_millis(20))
        .map(|p| {
            let ok = p.wait_for_replies(1, Duration::from_secs(1));
            let _ = p.finish();
            ok
        })
        .unwrap_or(false);
    (ping, client_neigh(lab))
}

/// The client's neighbour entry (MAC) for the VIP, if any.
fn client_neigh(lab: &Lab) -> Option<String> {
    let vip = VIP.to_string();
    lab.ns(lab.client_ns(), "ip", &["neigh", "show", &vip])
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let mut words = text.split_whitespace();
            words.find(|w| *w == "lladdr")?;
            words.next().map(str::to_string)
        })
}

fn link_exists(lab: &Lab, i: usize, ifname: &str) -> bool {
    lab.ns(lab.node_ns(i), "ip", &["link", "show", "dev", ifname])
        .is_ok()
}

fn vip_on(lab: &Lab, i: usize, ifname: &str) -> bool {
    lab.addresses(lab.node_ns(i), ifname)
        .is_ok_and(|a| a.iter().any(|a| a.addr == IpAddr::V4(VIP)))
}

/// A sysctl of node i by its /proc path under net/ (interface names
/// with dots, such as vrrp.51, cannot be written in sysctl's dotted form).
fn sysctl(lab: &Lab, i: usize, key: &str) -> String {
    lab.ns(lab.node_ns(i), "cat", &[&format!("/proc/sys/net/{key}")])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn start_baton(lab: &mut Lab, i: usize, toml: &str) -> u32 {
    std::fs::create_dir_all(lab.node_files(i).state_dir).expect("state dir");
    let pid = lab
        .start_baton(Path::new(BATON), i, toml)
        .expect("starting baton");
    lab.wait_for_agent(i, pid, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.log(i)));
    pid
}

fn stop(lab: &mut Lab, pid: u32, what: &str) {
    lab.signal(pid, Signal::SIGTERM).expect("SIGTERM");
    assert!(
        matches!(lab.wait(pid, TIMEOUT), Ok(Some(_))),
        "{what} did not stop"
    );
}

fn logs(lab: &Lab) -> String {
    (0..lab.nodes())
        .map(|i| format!("--- node{i} ---\n{}", lab.log(i)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two baton nodes with `use_vmac`: the macvlan and its MAC, the VIP on it,
/// the virtual MAC on the wire and in the client's ARP cache, a failover
/// that keeps that MAC, and the macvlan and sysctls gone on stop.
#[test]
fn baton_vmac_mac_on_the_wire_and_failover() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 2).expect("lab");
    let base0 = sysctl(&lab, 0, "ipv4/conf/eth0/arp_ignore");
    let p0 = start_baton(&mut lab, 0, &baton_instance(200, ""));
    let p1 = start_baton(&mut lab, 1, &baton_instance(100, ""));
    assert!(
        lab.wait_for(TIMEOUT, |l| l.masters(NAME) == vec![0]
            && l.state(1, NAME) == Some(State::Backup)),
        "node0 is not the sole master\n{}",
        logs(&lab)
    );
    for i in 0..2 {
        assert_eq!(
            lab.mac(lab.node_ns(i), VMAC_IF).ok(),
            Some(VMAC),
            "node{i}: {VMAC_IF} with the virtual MAC\n{}",
            logs(&lab)
        );
        assert_eq!(
            sysctl(&lab, i, &format!("ipv4/conf/{VMAC_IF}/arp_ignore")),
            "1"
        );
        assert_eq!(sysctl(&lab, i, "ipv4/conf/eth0/arp_ignore"), "1");
        assert_eq!(sysctl(&lab, i, "ipv4/conf/eth0/arp_filter"), "1");
    }
    assert!(vip_on(&lab, 0, VMAC_IF), "node0: VIP on {VMAC_IF}");
    assert!(!vip_on(&lab, 0, "eth0"), "node0: VIP not on eth0");
    assert!(
        !vip_on(&lab, 1, VMAC_IF),
        "node1 (backup) holds no VIP\n{}",
        logs(&lab)
    );

    let sources = advert_sources(&lab, Duration::from_millis(800));
    assert!(!sources.is_empty(), "no advert seen\n{}", logs(&lab));
    assert!(
        sources.iter().all(|m| *m == VMAC),
        "adverts from {:?}, want {}",
        sources.iter().map(|m| fmt_mac(*m)).collect::<Vec<_>>(),
        fmt_mac(VMAC)
    );
    let (ping, neigh) = client_ping_and_neigh(&lab);
    assert!(ping, "client cannot ping the VIP\n{}", logs(&lab));
    assert_eq!(neigh.as_deref(), Some(fmt_mac(VMAC).as_str()), "ARP answer");

    // Failover: node1 takes the VIP on its own vrrp.51, with the same MAC;
    // a client pinging every 10 ms throughout measures the outage.
    let prober =
        Prober::start(Some(lab.client_ns()), VIP, Duration::from_millis(10)).expect("prober");
    assert!(
        prober.wait_for_replies(5, TIMEOUT),
        "no replies before failover"
    );
    stop(&mut lab, p0, "baton on node0");
    assert!(
        lab.wait_for(TIMEOUT, |l| vip_on(l, 1, VMAC_IF)),
        "node1 did not take the VIP over\n{}",
        logs(&lab)
    );
    assert!(
        !link_exists(&lab, 0, VMAC_IF),
        "node0's {VMAC_IF} removed on stop"
    );
    assert_eq!(
        sysctl(&lab, 0, "ipv4/conf/eth0/arp_ignore"),
        base0,
        "node0's eth0 arp_ignore restored"
    );
    let (_, before) = client_ping_and_neigh(&lab);
    let ok = lab.wait_for(TIMEOUT, |l| client_ping_and_neigh(l).0);
    let (_, after) = client_ping_and_neigh(&lab);
    assert!(
        ok,
        "client cannot ping the VIP after failover\n{}",
        logs(&lab)
    );
    assert_eq!(before.as_deref(), Some(fmt_mac(VMAC).as_str()));
    assert_eq!(after, before, "the client's neighbour entry kept its MAC");
    let report = prober.finish().expect("prober");
    println!(
        "use_vmac failover (TERM, priority 0): longest gap {:?}, {} of {} pings lost",
        report.longest_gap,
        report.lost(),
        report.sent
    );
    assert!(report.longest_gap < TIMEOUT, "pings did not resume");
    stop(&mut lab, p1, "baton on node1");
    assert!(
        !link_exists(&lab, 1, VMAC_IF),
        "node1's {VMAC_IF} removed on stop"
    );
}

/// `vmac_xmit_base`: adverts carry the base interface's MAC, the VIP stays
/// on the macvlan and the client still learns the virtual MAC.
#[test]
fn vmac_xmit_base_sends_adverts_with_the_base_mac() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 1).expect("lab");
    let base_mac = lab.mac(lab.node_ns(0), "eth0").expect("eth0 MAC");
    let _p0 = start_baton(&mut lab, 0, &baton_instance(200, "vmac_xmit_base = true\n"));
    assert!(
        lab.wait_for(TIMEOUT, |l| l.masters(NAME) == vec![0]),
        "node0 is not master\n{}",
        logs(&lab)
    );
    assert!(vip_on(&lab, 0, VMAC_IF), "VIP on {VMAC_IF}\n{}", logs(&lab));
    let sources = advert_sources(&lab, Duration::from_millis(800));
    assert!(!sources.is_empty(), "no advert seen\n{}", logs(&lab));
    assert!(
        sources.iter().all(|m| *m == base_mac),
        "adverts from {:?}, want eth0's {}",
        sources.iter().map(|m| fmt_mac(*m)).collect::<Vec<_>>(),
        fmt_mac(base_mac)
    );
    let (ping, neigh) = client_ping_and_neigh(&lab);
    assert!(ping, "client cannot ping the VIP\n{}", logs(&lab));
    assert_eq!(neigh.as_deref(), Some(fmt_mac(VMAC).as_str()), "ARP answer");
}

fn keepalived_bin() -> PathBuf {
    ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("keepalived"))
}

/// Start keepalived with `use_vmac` on node i; returns its pid.
fn start_keepalived(lab: &mut Lab, i: usize, priority: u8) -> u32 {
    let dir = lab.dir().join(format!("keepalived{i}"));
    std::fs::create_dir_all(&dir).expect("keepalived dir");
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n    router_id node{i}\n    vrrp_version 3\n}}\n\
             vrrp_instance {NAME} {{\n    state BACKUP\n    interface eth0\n    use_vmac\n    \
             virtual_router_id {VRID}\n    priority {priority}\n    advert_int 0.1\n    \
             virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
        ),
    )
    .expect("keepalived.conf");
    let pid = |w: &str| dir.join(format!("{w}.pid")).display().to_string();
    let (p, r, c, b) = (pid("main"), pid("vrrp"), pid("checkers"), pid("bfd"));
    let conf = conf.display().to_string();
    let log = lab.node_files(i).log;
    let ns = lab.node_ns(i).to_string();
    lab.spawn(
        &ns,
        &keepalived_bin(),
        &[
            "-n", "-l", "-D", "-P", "-f", &conf, "-p", &p, "-r", &r, "-c", &c, "-b", &b,
        ],
        &log,
    )
    .expect("starting keepalived")
}

/// keepalived 2.2.7 with `use_vmac` on node0, baton with `use_vmac` on
/// node1: one master, and failover both ways.
#[test]
fn interop_with_keepalived_use_vmac() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 2).expect("lab");
    let pb = start_baton(&mut lab, 1, &baton_instance(200, ""));
    let pk = start_keepalived(&mut lab, 0, 100);
    let sole = |l: &Lab, i: usize| vip_on(l, i, VMAC_IF) && !vip_on(l, 1 - i, VMAC_IF);
    assert!(
        lab.wait_for(TIMEOUT, |l| sole(l, 1) && link_exists(l, 0, VMAC_IF)),
        "baton (200) is not the sole holder\n{}",
        logs(&lab)
    );
    // Steady: keepalived stays backup.
    std::thread::sleep(Duration::from_secs(1));
    assert!(sole(&lab, 1), "keepalived took the VIP too\n{}", logs(&lab));
    assert_eq!(lab.state(1, NAME), Some(State::Master));

    // baton -> keepalived.
    stop(&mut lab, pb, "baton");
    assert!(
        lab.wait_for(TIMEOUT, |l| sole(l, 0)),
        "keepalived did not take over\n{}",
        logs(&lab)
    );
    assert!(
        lab.wait_for(TIMEOUT, |l| client_ping_and_neigh(l).0),
        "ping via keepalived"
    );

    // keepalived -> baton (preemption by the higher priority).
    let _pb = start_baton(&mut lab, 1, &baton_instance(200, ""));
    assert!(
        lab.wait_for(TIMEOUT, |l| sole(l, 1)),
        "baton did not take the VIP back\n{}",
        logs(&lab)
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        sole(&lab, 1),
        "two holders after preemption\n{}",
        logs(&lab)
    );
    let (ping, neigh) = client_ping_and_neigh(&lab);
    assert!(ping, "ping via baton\n{}", logs(&lab));
    assert_eq!(neigh.as_deref(), Some(fmt_mac(VMAC).as_str()));
    stop(&mut lab, pk, "keepalived");
}

/// A failed start (the second instance names an interface that does not
/// exist) after the first instance's macvlan was created: baton exits with
/// an error, and neither the macvlan nor the changed sysctls stay behind.
#[test]
fn failed_start_leaves_no_macvlan() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 1).expect("lab");
    let base = sysctl(&lab, 0, "ipv4/conf/eth0/arp_ignore");
    std::fs::create_dir_all(lab.node_files(0).state_dir).expect("state dir");
    let toml = format!(
        "{}[[instance]]\nname = \"VI_2\"\ninterface = \"bvmnone0\"\nvrid = 52\n\
         priority = 100\nversion = 3\nvirtual_ips = [\"192.168.77.101/24\"]\n",
        baton_instance(200, "")
    );
    let pid = lab
        .start_baton(Path::new(BATON), 0, &toml)
        .expect("starting baton");
    let code = lab.wait(pid, TIMEOUT).expect("wait");
    assert!(
        matches!(code, Some(c) if c != 0),
        "baton should fail to start ({code:?})\n{}",
        logs(&lab)
    );
    let log = lab.log(0);
    assert!(
        log.contains("created VMAC interface vrrp.51") && log.contains("bvmnone0"),
        "the macvlan was created before the failure\n{log}"
    );
    assert!(
        !link_exists(&lab, 0, VMAC_IF),
        "{VMAC_IF} left behind by a failed start\n{log}"
    );
    assert_eq!(
        sysctl(&lab, 0, "ipv4/conf/eth0/arp_ignore"),
        base,
        "eth0 arp_ignore restored after a failed start"
    );
}

const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x100);
const VMAC6: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x02, VRID];
const VMAC6_IF: &str = "vrrp6.51";

fn baton_instance6(priority: u8) -> String {
    format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = {VRID}\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"100ms\"\n\
         use_vmac = true\nvirtual_ips = [\"{VIP6}/64\"]\n"
    )
}

fn vip6_on(lab: &Lab, i: usize, ifname: &str) -> bool {
    lab.addresses(lab.node_ns(i), ifname)
        .is_ok_and(|a| a.iter().any(|a| a.addr == IpAddr::V6(VIP6)))
}

fn link_local(lab: &Lab, i: usize, ifname: &str) -> Option<std::net::Ipv6Addr> {
    lab.addresses(lab.node_ns(i), ifname)
        .ok()?
        .into_iter()
        .find_map(|a| match a.addr {
            IpAddr::V6(v) if v.segments()[0] == 0xfe80 => Some(v),
            _ => None,
        })
}

/// Whether the client reaches the VIP6: a TCP connection to a closed port
/// is refused (a reset came back from the VIP).
fn client_reaches_vip6(lab: &Lab) -> bool {
    lab::in_netns(lab.client_ns(), || {
        let addr = std::net::SocketAddr::new(IpAddr::V6(VIP6), 9);
        matches!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    })
}

/// The client's neighbour entry (MAC) for `addr`, if any.
fn client_neigh_of(lab: &Lab, addr: IpAddr) -> Option<String> {
    let a = addr.to_string();
    lab.ns(lab.client_ns(), "ip", &["neigh", "show", &a])
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let mut words = text.split_whitespace();
            words.find(|w| *w == "lladdr")?;
            words.next().map(str::to_string)
        })
}

/// What the client captured of the IPv6 VRRP instance: the source MACs of
/// the adverts, and (source MAC, target link-layer address option) of each
/// neighbour advertisement for the VIP6.
#[derive(Debug, Default)]
struct Capture6 {
    adverts: Vec<[u8; 6]>,
    nas: Vec<([u8; 6], Option<[u8; 6]>)>,
}

fn capture6(ns: String, period: Duration) -> std::thread::JoinHandle<Capture6> {
    lab::spawn_in_netns(&ns, move || {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == lab::IFNAME)
            .expect("client eth0");
        let config = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        let mut rx = match pnet_datalink::channel(&iface, config).expect("packet socket") {
            pnet_datalink::Channel::Ethernet(_, rx) => rx,
            _ => panic!("not an Ethernet channel"),
        };
        let mut out = Capture6::default();
        let end = Instant::now() + period;
        while Instant::now() < end {
            let Ok(f) = rx.next() else { continue };
            // Ethernet + IPv6 (40 bytes, no extension header expected).
            if f.len() < 14 + 40 + 8 || f[12..14] != [0x86, 0xdd] {
                continue;
            }
            let src: [u8; 6] = f[6..12].try_into().unwrap();
            let icmp = &f[54..];
            match f[20] {
                112 if icmp[1] == VRID => out.adverts.push(src),
                58 if icmp[0] == 136 && icmp.len() >= 24 && icmp[8..24] == VIP6.octets() => {
                    // Option 2 (target link-layer address), 8 bytes.
                    let opt = icmp
                        .get(24..32)
                        .filter(|o| o[0] == 2 && o[1] == 1)
                        .map(|o| o[2..8].try_into().unwrap());
                    out.nas.push((src, opt));
                }
                _ => {}
            }
        }
        out
    })
}

/// `use_vmac` for an IPv6 instance: vrrp6.51 with 00:00:5e:00:02:33, the
/// base interface's link-local address and the VIP on it, adverts and
/// neighbour advertisements with the virtual MAC, and a failover that
/// keeps the client's neighbour entry.
#[test]
fn vmac_ipv6_na_and_failover() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 2).expect("lab");
    let p0 = start_baton(&mut lab, 0, &baton_instance6(200));
    let p1 = start_baton(&mut lab, 1, &baton_instance6(100));
    assert!(
        lab.wait_for(TIMEOUT, |l| l.masters(NAME) == vec![0]
            && l.state(1, NAME) == Some(State::Backup)
            && vip6_on(l, 0, VMAC6_IF)),
        "node0 is not the sole master\n{}",
        logs(&lab)
    );
    for i in 0..2 {
        assert_eq!(
            lab.mac(lab.node_ns(i), VMAC6_IF).ok(),
            Some(VMAC6),
            "node{i}: {VMAC6_IF} with the IPv6 virtual MAC\n{}",
            logs(&lab)
        );
        let base_ll = link_local(&lab, i, "eth0");
        assert!(base_ll.is_some(), "node{i}: eth0 has a link-local address");
        assert_eq!(
            link_local(&lab, i, VMAC6_IF),
            base_ll,
            "node{i}: {VMAC6_IF} carries eth0's link-local address"
        );
    }
    assert!(!vip6_on(&lab, 0, "eth0"), "node0: VIP6 not on eth0");
    assert!(!vip6_on(&lab, 1, VMAC6_IF), "node1 (backup) holds no VIP6");
    assert!(
        lab.wait_for(TIMEOUT, client_reaches_vip6),
        "client cannot reach the VIP6\n{}",
        logs(&lab)
    );
    let want = fmt_mac(VMAC6);
    assert_eq!(
        client_neigh_of(&lab, IpAddr::V6(VIP6)).as_deref(),
        Some(want.as_str()),
        "neighbour entry for the VIP6"
    );

    // Failover, captured by the client.
    let cap = capture6(lab.client_ns().to_string(), Duration::from_millis(2500));
    std::thread::sleep(Duration::from_millis(300));
    stop(&mut lab, p0, "baton on node0");
    assert!(
        lab.wait_for(TIMEOUT, |l| vip6_on(l, 1, VMAC6_IF)),
        "node1 did not take the VIP6 over\n{}",
        logs(&lab)
    );
    let cap = cap.join().expect("capture");
    assert!(
        !cap.adverts.is_empty(),
        "no IPv6 advert seen\n{}",
        logs(&lab)
    );
    assert!(
        cap.adverts.iter().all(|m| *m == VMAC6),
        "IPv6 adverts from {:?}, want {want}",
        cap.adverts.iter().map(|m| fmt_mac(*m)).collect::<Vec<_>>()
    );
    assert!(
        !cap.nas.is_empty(),
        "no neighbour advertisement for the VIP6 after failover\n{}",
        logs(&lab)
    );
    assert!(
        cap.nas
            .iter()
            .all(|(s, o)| *s == VMAC6 && *o == Some(VMAC6)),
        "NAs for the VIP6 (source MAC, target link-layer option): {:?}, want {want}",
        cap.nas
    );
    assert!(
        lab.wait_for(TIMEOUT, client_reaches_vip6),
        "client cannot reach the VIP6 after failover\n{}",
        logs(&lab)
    );
    assert_eq!(
        client_neigh_of(&lab, IpAddr::V6(VIP6)).as_deref(),
        Some(want.as_str()),
        "the client's neighbour entry for the VIP6 kept the virtual MAC"
    );
    assert!(
        !link_exists(&lab, 0, VMAC6_IF),
        "node0's {VMAC6_IF} removed on stop"
    );
    stop(&mut lab, p1, "baton on node1");
    assert!(
        !link_exists(&lab, 1, VMAC6_IF),
        "node1's {VMAC6_IF} removed on stop"
    );
}

const FRR_DIR: &str = "/usr/lib/frr";
/// FRR's name for the macvlan of VRID 51 (FRR finds it by its MAC).
const FRR_VMAC_IF: &str = "vrrp4-2-51";

/// FRR's zebra and vrrpd on a lab node, run from the lab's directory (own
/// config, pid files, zserv and vty sockets: nothing in /etc/frr or
/// /var/run/frr). Dropped before the lab: SIGTERM lets FRR remove its
/// /var/tmp/frr/DAEMON.PID directory.
struct Frr {
    dir: PathBuf,
    pids: Vec<u32>,
}

impl Frr {
    /// As the FRR documentation asks of the operator: a `bridge`-mode
    /// macvlan with the virtual MAC and the VIP, then zebra (which sets
    /// `protodown` on the macvlan for vrrpd) and vrrpd.
    fn start(lab: &mut Lab, i: usize, priority: u8) -> Frr {
        for d in ["zebra", "vrrpd"] {
            assert!(
                Path::new(FRR_DIR).join(d).exists(),
                "{FRR_DIR}/{d} is missing (install FRR)"
            );
        }
        let ns = lab.node_ns(i).to_string();
        let mac = fmt_mac(VMAC);
        let vip = format!("{VIP}/24");
        for args in [
            &[
                "link",
                "add",
                FRR_VMAC_IF,
                "link",
                "eth0",
                "type",
                "macvlan",
                "mode",
                "bridge",
            ][..],
            &["link", "set", "dev", FRR_VMAC_IF, "address", &mac],
            &["link", "set", "dev", FRR_VMAC_IF, "addrgenmode", "none"],
            &["addr", "add", &vip, "dev", FRR_VMAC_IF],
            &["link", "set", "dev", FRR_VMAC_IF, "up"],
        ] {
            lab.ns(&ns, "ip", args).expect("FRR's macvlan");
        }
        // Left to the operator by FRR: eth0 must not answer ARP for the VIP
        // (it stays on the macvlan in Backup) nor name it in its requests.
        for key in ["arp_ignore=1", "arp_announce=2"] {
            lab.ns(
                &ns,
                "sysctl",
                &["-qw", &format!("net.ipv4.conf.eth0.{key}")],
            )
            .expect("sysctl");
        }
        let dir = lab.dir().join(format!("frr{i}"));
        std::fs::create_dir_all(&dir).expect("FRR dir");
        std::fs::write(dir.join("zebra.conf"), "hostname zebra\n").expect("zebra.conf");
        std::fs::write(
            dir.join("vrrpd.conf"),
            format!(
                "hostname vrrpd\ndebug vrrp protocol\n!\ninterface eth0\n vrrp {VRID} version 3\n \
                 vrrp {VRID} priority {priority}\n vrrp {VRID} advertisement-interval 100\n \
                 vrrp {VRID} ip {VIP}\n!\n"
            ),
        )
        .expect("vrrpd.conf");
        let zserv = dir.join("zserv.api");
        let mut pids = Vec::new();
        for daemon in ["zebra", "vrrpd"] {
            let p = |f: String| dir.join(f).display().to_string();
            let (conf, pid, log) = (
                p(format!("{daemon}.conf")),
                p(format!("{daemon}.pid")),
                format!("file:{}", p(format!("{daemon}.log"))),
            );
            let (zs, vty) = (zserv.display().to_string(), dir.display().to_string());
            // FRR refuses a user outside its vty group: root with that group.
            let args = [
                "-u",
                "root",
                "-g",
                "frrvty",
                "-f",
                &conf,
                "-i",
                &pid,
                "-z",
                &zs,
                "--vty_socket",
                &vty,
                "-P",
                "0",
                "--log",
                &log,
            ];
            let out = dir.join(format!("{daemon}.out"));
            let bin = Path::new(FRR_DIR).join(daemon);
            pids.push(lab.spawn(&ns, &bin, &args, &out).expect("starting FRR"));
            if daemon == "zebra" {
                assert!(
                    poll(TIMEOUT, || zserv.exists()),
                    "zebra did not open {}",
                    zserv.display()
                );
            }
        }
        Frr { dir, pids }
    }

    /// vrrpd's state of the IPv4 router ("Master", "Backup", ...).
    fn status(&self) -> Option<String> {
        let out = std::process::Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-c", &format!("show vrrp interface eth0 {VRID}")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.trim_start().starts_with("Status (v4)"))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    }

    fn log(&self) -> String {
        ["zebra.out", "vrrpd.out", "vrrpd.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                format!("--- FRR {f} ---\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for &pid in self.pids.iter().rev() {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            // Gone, or a zombie waiting for the lab to reap it.
            let gone = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
            };
            poll(Duration::from_secs(2), gone);
        }
    }
}

/// Poll `cond` every 20 ms until it holds (true) or `timeout` passes.
fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The client's neighbour entries for the VIP, sampled every 50 ms until
/// stopped: every MAC seen.
struct NeighWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<String>>,
}

impl NeighWatch {
    fn start(lab: &Lab) -> NeighWatch {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let ns = lab.client_ns().to_string();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen: Vec<String> = Vec::new();
            let vip = VIP.to_string();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(o) = lab::sh("ip", &["-n", &ns, "neigh", "show", &vip]) {
                    let text = String::from_utf8_lossy(&o.stdout).to_string();
                    let mut words = text.split_whitespace();
                    if words.any(|w| w == "lladdr") {
                        if let Some(m) = words.next() {
                            if !seen.iter().any(|s| s == m) {
                                seen.push(m.to_string());
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        NeighWatch { stop, handle }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("neighbour watch")
    }
}

/// FRR 8.x vrrpd (its documented set-up: a bridge-mode macvlan with the
/// virtual MAC, protodown in Backup, adverts received on the base
/// interface) on node1, baton with `use_vmac` on node0: one master in
/// either direction, failover both ways, and a client that pings the VIP
/// throughout and only ever learns the virtual MAC for it.
#[test]
fn interop_with_frr_vrrpd_use_vmac() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("bvm", 2).expect("lab");
    let pb = start_baton(&mut lab, 0, &baton_instance(200, ""));
    let frr = Frr::start(&mut lab, 1, 100);
    let all_logs = |l: &Lab, f: &Frr| format!("{}\n{}", logs(l), f.log());
    let baton_master = |l: &Lab, f: &Frr| {
        l.state(0, NAME) == Some(State::Master)
            && vip_on(l, 0, VMAC_IF)
            && f.status().as_deref() == Some("Backup")
    };
    assert!(
        poll(TIMEOUT, || baton_master(&lab, &frr)),
        "baton (200) master, FRR (100) backup\n{}",
        all_logs(&lab, &frr)
    );
    let neigh = NeighWatch::start(&lab);
    let prober =
        Prober::start(Some(lab.client_ns()), VIP, Duration::from_millis(10)).expect("prober");
    assert!(
        prober.wait_for_replies(5, TIMEOUT),
        "no replies via baton\n{}",
        all_logs(&lab, &frr)
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        baton_master(&lab, &frr),
        "steady: FRR took over from baton\n{}",
        all_logs(&lab, &frr)
    );

    // baton -> FRR.
    stop(&mut lab, pb, "baton");
    assert!(
        poll(TIMEOUT, || frr.status().as_deref() == Some("Master")),
        "FRR did not take over\n{}",
        all_logs(&lab, &frr)
    );
    let replies = prober.received();
    assert!(
        prober.wait_for_replies(replies + 5, TIMEOUT),
        "no replies via FRR\n{}",
        all_logs(&lab, &frr)
    );

    // A lower baton joins: it stays backup, FRR stays master.
    let pb = start_baton(&mut lab, 0, &baton_instance(50, ""));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        (lab.state(0, NAME), frr.status().as_deref()),
        (Some(State::Backup), Some("Master")),
        "baton (50) backup, FRR (100) master\n{}",
        all_logs(&lab, &frr)
    );
    assert!(!vip_on(&lab, 0, VMAC_IF), "baton (backup) holds no VIP");

    // FRR -> baton: a higher baton preempts.
    stop(&mut lab, pb, "baton");
    let _pb = start_baton(&mut lab, 0, &baton_instance(200, ""));
    assert!(
        poll(TIMEOUT, || baton_master(&lab, &frr)),
        "baton (200) did not preempt FRR\n{}",
        all_logs(&lab, &frr)
    );
    let replies = prober.received();
    assert!(
        prober.wait_for_replies(replies + 5, TIMEOUT),
        "no replies via baton after preemption\n{}",
        all_logs(&lab, &frr)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        baton_master(&lab, &frr),
        "steady after preemption\n{}",
        all_logs(&lab, &frr)
    );
    let report = prober.finish().expect("prober");
    let macs = neigh.finish();
    println!(
        "baton <-> FRR vrrpd (use_vmac): longest ping gap {:?}, {} of {} pings lost",
        report.longest_gap,
        report.lost(),
        report.sent
    );
    assert_eq!(
        macs,
        vec![fmt_mac(VMAC)],
        "the client's neighbour entries for the VIP"
    );
    assert!(report.longest_gap < TIMEOUT, "pings did not resume");
}
