//! The agent's IO primitives against a real kernel, in network namespaces
//! (root). Each test builds its own lab; code under test runs on a thread
//! that entered a node's namespace, with its own current_thread runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use baton::agent::garp::GarpSender;
use baton::agent::netlink::{self, LeaseRefresher, NetEvent, Netlink, NetlinkError};
use baton::agent::socket::{
    ArrivalClock, Received, RecvBatch, VrrpSocket, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL,
};
use baton::config::model::Vip;
use baton::lab::probe::Prober;
use baton::lab::{in_netns, require_root, runtime, spawn_in_netns, Lab, IFNAME};
use tokio::time::timeout;

/// Run `command` (words, no shell) in namespace `ns`; panic with its stderr
/// unless it succeeds, else return its stdout.
fn run(lab: &Lab, ns: &str, command: &str) -> String {
    let mut words = command.split_whitespace();
    let program = words.next().expect("a program");
    let args: Vec<&str> = words.collect();
    let out = lab
        .ns(ns, program, &args)
        .unwrap_or_else(|e| panic!("in {ns}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A VRRPv3 advert for `vrid` (checksum left zero: a raw socket does not
/// check it).
fn advert_v3(vrid: u8, priority: u8, addresses: &[IpAddr]) -> Vec<u8> {
    let mut packet = vec![0x31, vrid, priority, addresses.len() as u8, 0x00, 100, 0, 0];
    for address in addresses {
        match address {
            IpAddr::V4(a) => packet.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => packet.extend_from_slice(&a.octets()),
        }
    }
    packet
}

struct Exchange {
    received: Received,
    payload: Vec<u8>,
    /// The sender heard its own packet.
    echoed: bool,
}

/// Open a socket on node 1 and one on node 0, send `packet` from node 0 to
/// `dst` (from `source` if given), and return what node 1 got.
fn exchange(
    lab: &Lab,
    v6: bool,
    multicast: bool,
    dst: IpAddr,
    source: Option<IpAddr>,
    packet: Vec<u8>,
) -> Exchange {
    let (mut got, echoed) = exchange_all(lab, v6, multicast, dst, source, vec![packet]);
    let (received, payload) = got.remove(0);
    Exchange {
        received,
        payload,
        echoed,
    }
}

/// [`exchange`] of several packets: one goes by `send` and is read by
/// `recv`; more go in one `try_send_many`, which must take them all, and
/// are read by the batch receive. What node 1 got, in order, and whether
/// node 0 heard its own.
fn exchange_all(
    lab: &Lab,
    v6: bool,
    multicast: bool,
    dst: IpAddr,
    source: Option<IpAddr>,
    packets: Vec<Vec<u8>>,
) -> (Vec<(Received, Vec<u8>)>, bool) {
    let open = move || {
        if v6 {
            VrrpSocket::open_v6(IFNAME, multicast)
        } else {
            VrrpSocket::open_v4(IFNAME, multicast)
        }
    };
    let count = packets.len();
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let receiver = spawn_in_netns(lab.node_ns(1), move || {
        runtime().block_on(async move {
            let socket = open().expect("open the receiving socket");
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            if count == 1 {
                let mut buf = [0u8; 2048];
                let received = timeout(Duration::from_secs(3), socket.recv(&mut buf))
                    .await
                    .expect("nothing received within 3 s")
                    .expect("receive");
                let payload = buf[received.payload.clone()].to_vec();
                got.push((received, payload));
                return got;
            }
            // Many: by the batch receive of the socket's family.
            let mut batch = if v6 {
                RecvBatch::new_v6()
            } else {
                RecvBatch::new(false)
            };
            while got.len() < count {
                let n = timeout(Duration::from_secs(3), socket.recv_batch(&mut batch))
                    .await
                    .unwrap_or_else(|_| panic!("{} of {count} received within 3 s", got.len()))
                    .expect("batch receive");
                for k in 0..n {
                    let (data, received) = batch.get(k).unwrap();
                    let received = received.expect("a well-formed datagram");
                    got.push((received.clone(), data[received.payload].to_vec()));
                }
            }
            got
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the receiver did not start");
    let echoed = in_netns(lab.node_ns(0), move || {
        runtime().block_on(async move {
            let mut socket = open().expect("open the sending socket");
            if let Some(source) = source {
                socket.bind_source(source).unwrap();
            }
            if let [packet] = &packets[..] {
                socket.send(packet, dst).await.expect("send");
            } else {
                let batch: Vec<(&[u8], IpAddr)> = packets.iter().map(|p| (&p[..], dst)).collect();
                let sent = socket.try_send_many(&batch).expect("sendmmsg");
                assert_eq!(sent, batch.len(), "one call sends them all");
            }
            let mut buf = [0u8; 2048];
            timeout(Duration::from_millis(300), socket.recv(&mut buf))
                .await
                .is_ok()
        })
    });
    let got = receiver.join().expect("receiver thread");
    (got, echoed)
}

/// Node `i`'s link-local address, once it exists.
fn link_local(lab: &Lab, i: usize) -> Ipv6Addr {
    in_netns(lab.node_ns(i), || {
        runtime().block_on(async {
            let nl = Netlink::new().unwrap();
            for _ in 0..200 {
                if let Some(ll) = nl.interface(IFNAME).await.unwrap().link_local_v6 {
                    return ll;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no link-local address after 2 s");
        })
    })
}

#[test]
fn ipv4_multicast_advert_arrives_with_ttl_255_and_is_not_looped_back() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("v4m", 2).expect("building the lab");
    let vip = IpAddr::V4(Ipv4Addr::new(192, 168, 77, 100));
    let packet = advert_v3(51, 100, &[vip]);
    let got = exchange(
        &lab,
        false,
        true,
        VRRP_GROUP_V4.into(),
        None,
        packet.clone(),
    );
    assert_eq!(got.received.src, IpAddr::V4(lab.node_addr4(0)));
    assert_eq!(got.received.dst, IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(got.received.ttl, VRRP_TTL);
    assert_eq!(got.payload, packet, "payload cut to the IP length");
    assert!(!got.echoed, "multicast loop must be off");
}

#[test]
fn ipv6_multicast_advert_arrives_from_the_link_local_with_hop_limit_255() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("v6m", 2).expect("building the lab");
    let sender_ll = link_local(&lab, 0);
    let packet = advert_v3(51, 100, &[IpAddr::V6("fe80::100".parse().unwrap())]);
    let got = exchange(&lab, true, true, VRRP_GROUP_V6.into(), None, packet.clone());
    assert_eq!(got.received.src, IpAddr::V6(sender_ll));
    assert_eq!(
        got.received.dst,
        IpAddr::V6(VRRP_GROUP_V6),
        "from IPV6_PKTINFO"
    );
    assert_eq!(got.received.ttl, VRRP_TTL, "from IPV6_HOPLIMIT");
    assert_eq!(got.payload, packet);
    assert!(!got.echoed, "multicast loop must be off");
}

#[test]
fn ipv4_unicast_advert_leaves_from_the_bound_source() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("v4u", 2).expect("building the lab");
    let source = Ipv4Addr::new(192, 168, 77, 50);
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr add {source}/24 dev {IFNAME}"),
    );
    let packet = advert_v3(7, 200, &[IpAddr::V4(Ipv4Addr::new(192, 168, 77, 100))]);
    let dst = IpAddr::V4(lab.node_addr4(1));
    let got = exchange(&lab, false, false, dst, Some(source.into()), packet.clone());
    assert_eq!(got.received.src, IpAddr::V4(source));
    assert_eq!(got.received.dst, dst);
    assert_eq!(got.received.ttl, VRRP_TTL);
    assert_eq!(got.payload, packet);
}

#[test]
fn ipv6_unicast_advert_leaves_from_the_bound_source() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("v6u", 2).expect("building the lab");
    let source: Ipv6Addr = "fd00:77::50".parse().unwrap();
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr add {source}/64 dev {IFNAME} nodad"),
    );
    let packet = advert_v3(7, 200, &[IpAddr::V6("fe80::100".parse().unwrap())]);
    let dst = IpAddr::V6(lab.node_addr6(1));
    let got = exchange(&lab, true, false, dst, Some(source.into()), packet.clone());
    assert_eq!(got.received.src, IpAddr::V6(source));
    assert_eq!(got.received.dst, dst);
    assert_eq!(got.received.ttl, VRRP_TTL);
    assert_eq!(got.payload, packet);
}

/// Masters' adverts go out many in one sendmmsg, each as `send` would send
/// it: IPv4 multicast without a source, IPv4 and IPv6 unicast from the
/// bound source (the packet-info control message on every message).
#[test]
fn many_adverts_leave_in_one_call_each_as_one_send_would() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("mmsg", 2).expect("building the lab");
    let source4 = Ipv4Addr::new(192, 168, 77, 50);
    let source6: Ipv6Addr = "fd00:77::50".parse().unwrap();
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr add {source4}/24 dev {IFNAME}"),
    );
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr add {source6}/64 dev {IFNAME} nodad"),
    );
    let vip = IpAddr::V4(Ipv4Addr::new(192, 168, 77, 100));
    let packets: Vec<Vec<u8>> = (1..=40).map(|vrid| advert_v3(vrid, 100, &[vip])).collect();
    let cases: [(bool, bool, IpAddr, Option<IpAddr>); 3] = [
        (false, true, VRRP_GROUP_V4.into(), None),
        (false, false, lab.node_addr4(1).into(), Some(source4.into())),
        (true, false, lab.node_addr6(1).into(), Some(source6.into())),
    ];
    for (v6, multicast, dst, source) in cases {
        let (got, echoed) = exchange_all(&lab, v6, multicast, dst, source, packets.clone());
        let what = format!("to {dst}");
        let payloads: Vec<&Vec<u8>> = got.iter().map(|(_, p)| p).collect();
        assert_eq!(
            payloads,
            packets.iter().collect::<Vec<_>>(),
            "{what}: in order"
        );
        let want_src = source.unwrap_or(IpAddr::V4(lab.node_addr4(0)));
        for (received, _) in &got {
            assert_eq!(received.src, want_src, "{what}");
            assert_eq!(received.dst, dst, "{what}");
            assert_eq!(received.ttl, VRRP_TTL, "{what}");
        }
        assert!(!echoed, "{what}: multicast loop must be off");
    }
}

/// How long a packet waits in the socket before it is read, in
/// `a_packet_read_late_is_timed_from_when_the_kernel_received_it`.
const QUEUED: Duration = Duration::from_millis(300);

/// A packet read long after it came is timed from when the kernel received
/// it (SO_TIMESTAMPNS), on every receive path the agent uses: the batch
/// receive (IPv4, VRRP and AH sockets) and the one-packet receive (IPv6,
/// and IPv4 in tests). The skew after a priority-0 advert runs from there.
#[test]
fn a_packet_read_late_is_timed_from_when_the_kernel_received_it() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("rxts", 2).expect("building the lab");
    let _ = link_local(&lab, 0);
    let _ = link_local(&lab, 1);
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (sent_tx, sent_rx) = std_mpsc::channel::<(Instant, Instant)>();
    let receiver = spawn_in_netns(lab.node_ns(1), move || {
        runtime().block_on(async move {
            let batch4 = VrrpSocket::open_v4(IFNAME, true).expect("IPv4 socket");
            let one4 = VrrpSocket::open_v4(IFNAME, true).expect("second IPv4 socket");
            let v6 = VrrpSocket::open_v6(IFNAME, true).expect("IPv6 socket");
            let batch6 = VrrpSocket::open_v6(IFNAME, true).expect("second IPv6 socket");
            ready_tx.send(()).unwrap();
            let (before, sent) = sent_rx.recv().expect("the sender's times");
            tokio::time::sleep(QUEUED).await;
            let mut clock = ArrivalClock::default();
            let mut out = Vec::new();
            for (what, sock, mut batch) in [
                ("IPv4 batch", &batch4, RecvBatch::new(false)),
                ("IPv6 batch", &batch6, RecvBatch::new_v6()),
            ] {
                let n = timeout(Duration::from_secs(3), sock.recv_batch(&mut batch))
                    .await
                    .expect("nothing received within 3 s")
                    .expect("batch receive");
                assert_eq!(n, 1, "{what}");
                let (_, r) = batch.get(0).unwrap();
                out.push((what, clock.batch().of(r.unwrap().stamp)));
            }
            let mut buf = [0u8; 2048];
            for (what, sock) in [("IPv4 one", &one4), ("IPv6 one", &v6)] {
                let r = timeout(Duration::from_secs(3), sock.recv(&mut buf))
                    .await
                    .expect("nothing received within 3 s")
                    .expect("receive");
                out.push((what, clock.batch().of(r.stamp)));
            }
            (before, sent, Instant::now(), out)
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the receiver did not start");
    in_netns(lab.node_ns(0), move || {
        runtime().block_on(async move {
            let v4 = VrrpSocket::open_v4(IFNAME, true).expect("IPv4 socket");
            let v6 = VrrpSocket::open_v6(IFNAME, true).expect("IPv6 socket");
            let a4 = advert_v3(9, 100, &[IpAddr::V4(Ipv4Addr::new(192, 168, 77, 9))]);
            let a6 = advert_v3(9, 100, &[IpAddr::V6("fe80::9".parse().unwrap())]);
            let before = Instant::now();
            v4.send(&a4, VRRP_GROUP_V4.into()).await.expect("send");
            v6.send(&a6, VRRP_GROUP_V6.into()).await.expect("send");
            sent_tx.send((before, Instant::now())).unwrap();
        })
    });
    let (before, sent, read, arrivals) = receiver.join().expect("receiver thread");
    assert!(read >= sent + QUEUED);
    for (what, at) in arrivals {
        // Between the start and the end of the sending (one host, one
        // monotonic clock; the realtime clock read beside it to the
        // microsecond), not when it was read.
        let slack = Duration::from_millis(2);
        assert!(
            at + slack >= before,
            "{what}: arrival {:?} before the send",
            before - at
        );
        assert!(
            at <= sent + slack,
            "{what}: timed {:?} after it was sent and {:?} before it was read: \
             from the read, not from the kernel's stamp",
            at - sent,
            read.saturating_duration_since(at)
        );
    }
}

#[test]
fn interface_facts_match_the_kernel() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("ifc", 1).expect("building the lab");
    let mac = lab.mac(lab.node_ns(0), IFNAME).expect("node 0's MAC");
    let (interface, missing) = in_netns(lab.node_ns(0), || {
        runtime().block_on(async {
            let nl = Netlink::new().unwrap();
            let missing = nl.link_by_name("nosuch0").await;
            (nl.interface(IFNAME).await.unwrap(), missing)
        })
    });
    assert!(matches!(missing, Err(NetlinkError::NoSuchInterface(_))));
    assert_eq!(interface.link.name, IFNAME);
    assert_eq!(interface.link.mac, Some(mac));
    assert!(interface.link.up && interface.link.admin_up);
    assert_eq!(interface.link.mtu, 1500);
    assert_eq!(interface.primary_v4, Some(lab.node_addr4(0)));
    let ifindex_out = run(
        &lab,
        lab.node_ns(0),
        &format!("cat /sys/class/net/{IFNAME}/ifindex"),
    );
    assert_eq!(interface.link.index.to_string(), ifindex_out.trim());
    let ll = interface.link_local_v6.expect("a link-local address");
    assert_eq!(ll.segments()[0], 0xfe80);
}

#[test]
fn adding_and_deleting_addresses_is_idempotent() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("addr", 1).expect("building the lab");
    let ns = lab.node_ns(0).to_owned();
    let vip = IpAddr::V4(Ipv4Addr::new(192, 168, 77, 100));
    let (ifindex, had) = in_netns(&ns, move || {
        runtime().block_on(async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(IFNAME).await.unwrap().index;
            nl.add_address(ifindex, vip, 32, Some("eth0:vip"))
                .await
                .expect("first add");
            nl.add_address(ifindex, vip, 32, Some("eth0:vip"))
                .await
                .expect("a second add is not an error");
            (ifindex, nl.has_address(ifindex, vip).await.unwrap())
        })
    });
    assert!(had);
    let shown = lab.addresses(&ns, IFNAME).expect("ip addr");
    let entry = shown
        .iter()
        .find(|a| a.addr == vip)
        .unwrap_or_else(|| panic!("{vip} not in `ip -o addr`: {shown:?}"));
    assert_eq!(entry.prefix_len, 32);
    assert!(entry.rest.contains("eth0:vip"), "label: {entry:?}");

    let has = in_netns(&ns, move || {
        runtime().block_on(async move {
            let nl = Netlink::new().unwrap();
            nl.delete_address(ifindex, vip, 32).await.expect("delete");
            nl.delete_address(ifindex, vip, 32)
                .await
                .expect("a second delete is not an error");
            nl.delete_address(ifindex, "192.168.77.101".parse().unwrap(), 32)
                .await
                .expect("deleting an address never added is not an error");
            nl.delete_address(99_999, vip, 32)
                .await
                .expect("deleting from a missing interface is not an error");
            nl.has_address(ifindex, vip).await.unwrap()
        })
    });
    assert!(!has);
    assert!(lab
        .addresses(&ns, IFNAME)
        .expect("ip addr")
        .iter()
        .all(|a| a.addr != vip));
}

/// Lease refreshes go many in one netlink write: every address gets its
/// new lifetime (more of them than one write holds, so it takes several),
/// and a request the kernel refuses is named in a failure while the others
/// still land.
#[test]
fn lease_refreshes_written_together_reach_every_address_and_name_the_failures() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("lrf", 1).expect("building the lab");
    let ns = lab.node_ns(0).to_owned();
    let vips: Vec<Vip> = (0..600u32)
        .map(|k| {
            format!("10.9.{}.{}/32", k / 200, k % 200 + 1)
                .parse()
                .unwrap()
        })
        .chain(["fd00:9::1/128".parse().unwrap()])
        .collect();
    let count = vips.len();
    let failures = in_netns(&ns, move || {
        runtime().block_on(async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(IFNAME).await.unwrap().index;
            for v in &vips {
                nl.add_vip(ifindex, v, Duration::from_secs(60), None)
                    .await
                    .expect("add with a 60 s lease");
            }
            let mut refresher = LeaseRefresher::new().expect("refresh socket");
            let lease = Duration::from_secs(7);
            for (k, v) in vips.iter().enumerate() {
                refresher.queue(ifindex, v, lease, None, format!("vip {k}"));
            }
            refresher.queue(99_999, &vips[0], lease, None, "on no interface".into());
            let failures = refresher.flush();
            // Nothing queued: nothing written, nothing failed.
            assert!(refresher.flush().is_empty());
            failures
        })
    });
    let shown: serde_json::Value =
        serde_json::from_str(&run(&lab, &ns, &format!("ip -j addr show dev {IFNAME}"))).unwrap();
    let lifetimes: Vec<u64> = shown[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter_map(|a| a["valid_life_time"].as_u64())
        .filter(|t| *t != u64::from(u32::MAX))
        .collect();
    let refreshed = lifetimes.iter().filter(|t| (6..=7).contains(*t)).count();
    assert_eq!(refreshed, count, "every lease is 7 s now: {lifetimes:?}");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].what, "on no interface");
    assert_eq!(
        failures[0].error.raw_os_error(),
        Some(libc::ENODEV),
        "{failures:?}"
    );
}

#[test]
fn ipv6_address_added_without_dad_is_not_tentative() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("dad", 1).expect("building the lab");
    let ns = lab.node_ns(0).to_owned();
    // The lab turns DAD off; turn it on again, and prove it with a control
    // address added the ordinary way.
    let dad_on = format!(
        "sysctl -q -w net.ipv6.conf.{IFNAME}.accept_dad=1 net.ipv6.conf.{IFNAME}.dad_transmits=3"
    );
    run(&lab, &ns, &dad_on);
    let control: Ipv6Addr = "fd00:77::101".parse().unwrap();
    run(&lab, &ns, &format!("ip addr add {control}/64 dev {IFNAME}"));
    let vip: Ipv6Addr = "fd00:77::100".parse().unwrap();
    let seen = in_netns(&ns, move || {
        runtime().block_on(async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(IFNAME).await.unwrap().index;
            nl.add_address(ifindex, vip.into(), 64, None).await.unwrap();
            nl.add_address(ifindex, vip.into(), 64, None)
                .await
                .expect("a second add is not an error");
            nl.addresses(ifindex).await.unwrap()
        })
    });
    let shown = lab.addresses(&ns, IFNAME).expect("ip addr");
    let find = |a: Ipv6Addr| {
        shown
            .iter()
            .find(|x| x.addr == IpAddr::V6(a))
            .unwrap_or_else(|| panic!("{a} not in `ip -o addr`: {shown:?}"))
            .clone()
    };
    assert!(find(control).tentative(), "control: DAD is really on");
    assert!(!find(vip).tentative(), "VIP: {:?}", find(vip));
    let vip_info = seen.iter().find(|a| a.addr == IpAddr::V6(vip)).unwrap();
    let control_info = seen.iter().find(|a| a.addr == IpAddr::V6(control)).unwrap();
    assert!(!vip_info.tentative);
    assert!(control_info.tentative, "IFA_FLAGS parsed");
}

/// Events of one interface, forwarded from the watch thread with the
/// instant each was read.
fn expect_event(
    events: &std_mpsc::Receiver<(NetEvent, Instant)>,
    what: &str,
    wanted: impl Fn(&NetEvent) -> bool,
) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((event, at)) if wanted(&event) => return at,
            Ok(_) => continue,
            Err(_) => panic!("no event within 3 s: {what}"),
        }
    }
}

#[test]
fn link_watch_reports_down_and_up_within_100_ms() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("lnk", 1).expect("building the lab");
    let (events_tx, events) = std_mpsc::channel();
    let (quiet_tx, quiet_events) = std_mpsc::channel();
    let (ready_tx, ready) = std_mpsc::channel();
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let watcher = spawn_in_netns(lab.node_ns(0), move || {
        runtime().block_on(async move {
            let mut watch = netlink::watch(true).unwrap();
            // The agent's watch without -a: no new-address notifications.
            let mut quiet = netlink::watch(false).unwrap();
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(IFNAME).await.unwrap().index;
            ready_tx.send(ifindex).unwrap();
            let forward = async {
                while let Some(event) = watch.recv().await {
                    let ours = match &event {
                        NetEvent::Link(l) => l.ifindex == ifindex,
                        NetEvent::AddressAdded(a) | NetEvent::AddressRemoved(a) => {
                            a.ifindex == ifindex
                        }
                        NetEvent::Overrun => true,
                        NetEvent::RuleRemoved { .. } => false,
                    };
                    if ours && events_tx.send((event, Instant::now())).is_err() {
                        return;
                    }
                }
            };
            let forward_quiet = async {
                while let Some(event) = quiet.recv().await {
                    if quiet_tx.send(event).is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = async { tokio::join!(forward, forward_quiet) } => {}
                _ = stop => {}
            }
        })
    });
    let ifindex = ready.recv_timeout(Duration::from_secs(5)).unwrap();
    let link = |up: bool| move |e: &NetEvent| matches!(e, NetEvent::Link(l) if l.up == up && l.ifindex == ifindex);
    let limit = Duration::from_millis(100);

    // Administrative down and up.
    let t = Instant::now();
    lab.set_link(0, false).expect("link down");
    let latency = expect_event(&events, "admin down", link(false)) - t;
    eprintln!("admin down: {latency:?}");
    assert!(latency < limit, "admin down seen after {latency:?}");
    let t = Instant::now();
    lab.set_link(0, true).expect("link up");
    let latency = expect_event(&events, "admin up", link(true)) - t;
    eprintln!("admin up: {latency:?}");
    assert!(latency < limit, "admin up seen after {latency:?}");

    // Carrier loss: the node's link stays administratively up.
    let t = Instant::now();
    lab.set_carrier(0, false).expect("carrier down");
    let latency = expect_event(&events, "carrier down", link(false)) - t;
    eprintln!("carrier down: {latency:?}");
    assert!(latency < limit, "carrier down seen after {latency:?}");
    let t = Instant::now();
    lab.set_carrier(0, true).expect("carrier up");
    let latency = expect_event(&events, "carrier up", link(true)) - t;
    eprintln!("carrier up: {latency:?}");
    assert!(latency < limit, "carrier up seen after {latency:?}");

    // Someone else removes an address.
    let extra: IpAddr = "192.168.77.60".parse().unwrap();
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr add {extra}/24 dev {IFNAME}"),
    );
    expect_event(
        &events,
        "address added",
        |e| matches!(e, NetEvent::AddressAdded(a) if a.addr == extra),
    );
    run(
        &lab,
        lab.node_ns(0),
        &format!("ip addr del {extra}/24 dev {IFNAME}"),
    );
    expect_event(
        &events,
        "address removed",
        |e| matches!(e, NetEvent::AddressRemoved(a) if a.addr == extra && a.prefix_len == 24),
    );

    // The quiet watch saw the removal and no addition.
    let mut quiet = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !quiet
        .iter()
        .any(|e| matches!(e, NetEvent::AddressRemoved(a) if a.addr == extra))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match quiet_events.recv_timeout(left) {
            Ok(e) => quiet.push(e),
            Err(_) => panic!("the quiet watch missed the removal: {quiet:?}"),
        }
    }
    assert!(
        !quiet.iter().any(|e| matches!(e, NetEvent::AddressAdded(_))),
        "the quiet watch reported an addition: {quiet:?}"
    );

    let _ = stop_tx.send(());
    watcher.join().expect("watch thread");
}

/// A gratuitous ARP request for `ip` from `mac`, padded to 60 bytes.
fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x08, 0x06]); // ARP
    frame.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&ip.octets());
    frame.resize(60, 0);
    frame
}

#[test]
fn gratuitous_arp_updates_the_other_nodes_neighbour_table() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("garp", 2).expect("building the lab");
    let vip = Ipv4Addr::new(192, 168, 77, 100);
    // Node 1 believes the VIP is elsewhere (the state a failover fixes).
    run(
        &lab,
        lab.node_ns(1),
        &format!("ip neigh replace {vip} lladdr 02:00:00:00:00:99 dev {IFNAME} nud stale"),
    );
    let mac = lab.mac(lab.node_ns(0), IFNAME).expect("node 0's MAC");
    let frame = garp_frame(mac, vip);
    let (missing, send_time) = in_netns(lab.node_ns(0), move || {
        let missing = GarpSender::new("nosuch0").is_err();
        let sender = GarpSender::new(IFNAME).expect("open eth0");
        let t = Instant::now();
        sender.send(vec![frame.clone(), frame.clone(), frame]);
        // Far more than the queue holds: must drop, never block.
        for _ in 0..1000 {
            sender.send(Vec::new());
        }
        (missing, t.elapsed())
    });
    assert!(missing, "a missing interface is an error");
    assert!(
        send_time < Duration::from_millis(50),
        "send blocked {send_time:?}"
    );
    let want = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let neigh = run(
            &lab,
            lab.node_ns(1),
            &format!("ip neigh show {vip} dev {IFNAME}"),
        );
        if neigh.contains(&want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 still has `{}`, wanted {want}",
            neigh.trim()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prober_measures_an_outage_of_the_vip() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("png", 1).expect("building the lab");
    let ns = lab.node_ns(0).to_owned();
    let vip = "192.168.77.100";
    run(&lab, &ns, &format!("ip addr add {vip}/24 dev {IFNAME}"));
    let prober = Prober::start(
        Some(lab.client_ns()),
        vip.parse().unwrap(),
        Duration::from_millis(10),
    )
    .expect("starting the prober");
    assert!(
        prober.wait_for_replies(20, Duration::from_secs(3)),
        "the client cannot ping the VIP"
    );
    run(&lab, &ns, &format!("ip addr del {vip}/24 dev {IFNAME}"));
    std::thread::sleep(Duration::from_millis(300));
    run(&lab, &ns, &format!("ip addr add {vip}/24 dev {IFNAME}"));
    let before = prober.received();
    assert!(prober.wait_for_replies(before + 20, Duration::from_secs(3)));
    let report = prober.finish().expect("the prober's report");
    assert!(
        report.longest_gap >= Duration::from_millis(250)
            && report.longest_gap < Duration::from_secs(2),
        "{report:?}"
    );
    // A request every 10 ms, 300 ms without the VIP: count only what is
    // certain.
    assert!(report.lost() >= 10, "{report:?}");
    eprintln!("{report:?}");
}
