//! A client that pings an address every few milliseconds from inside a
//! network namespace and reports the outage it saw: what users of the VIP
//! feel during a failover. Used by `baton demo`, the netns tests and the
//! benchmark; needs no `ping` binary.
//!
//! It waits with ppoll(2), whose timeout is a high-resolution timer, so it
//! keeps its interval even at 1 ms. (A socket receive timeout would not:
//! the kernel rounds SO_RCVTIMEO up to whole jiffies, 4 ms at HZ=250.)
//!
//! Optionally it also counts the VRRP adverts of one master that reach the
//! client (a bridge floods 224.0.0.18), so that a caller can align a
//! trigger with an advert: see [`Prober::start_watching`].

use std::io;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Where IPv4 VRRP adverts go.
const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const IPPROTO_VRRP: i32 = 112;

/// Makes the ICMP identifier differ between probers of one process: a raw
/// ICMP socket sees every reply in its namespace, ours or not.
static PROBERS_STARTED: AtomicU16 = AtomicU16::new(0);

/// What the prober saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    pub sent: u64,
    pub received: u64,
    /// The longest time without any reply, between two replies (or from the
    /// first request to the first reply).
    pub longest_gap: Duration,
}

impl ProbeReport {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Counts the probing thread keeps up to date while it runs.
#[derive(Debug, Default)]
struct Counts {
    replies: AtomicU64,
    adverts: AtomicU64,
}

pub struct Prober {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    handle: JoinHandle<io::Result<ProbeReport>>,
}

/// The adverts to count: those whose IPv4 source is `master`.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// The client's own address, on whose interface the group is joined.
    client: Ipv4Addr,
    master: Ipv4Addr,
}

impl Prober {
    /// Start pinging `target` every `interval` from namespace `netns`
    /// (`/run/netns/NAME`), or from the current namespace if `None`.
    pub fn start(netns: Option<&str>, target: Ipv4Addr, interval: Duration) -> io::Result<Prober> {
        Prober::spawn(netns, target, interval, None)
    }

    /// Like [`start`](Self::start), and also count the VRRP adverts from
    /// `master` that reach the client, whose address is `client`; wait for
    /// the next one with [`next_advert`](Self::next_advert).
    pub fn start_watching(
        netns: Option<&str>,
        client: Ipv4Addr,
        target: Ipv4Addr,
        interval: Duration,
        master: Ipv4Addr,
    ) -> io::Result<Prober> {
        Prober::spawn(netns, target, interval, Some(Watch { client, master }))
    }

    fn spawn(
        netns: Option<&str>,
        target: Ipv4Addr,
        interval: Duration,
        watch: Option<Watch>,
    ) -> io::Result<Prober> {
        let netns = netns.map(str::to_owned);
        let ident =
            (std::process::id() as u16) ^ 0x6261 ^ PROBERS_STARTED.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let (flag, shared) = (stop.clone(), counts.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            // This thread alone moves into the namespace.
            let setup = (|| {
                if let Some(ns) = &netns {
                    super::enter_netns(ns)?;
                }
                let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
                icmp.set_nonblocking(true)?;
                let adverts = watch.map(open_advert_socket).transpose()?;
                Ok::<_, io::Error>((icmp, adverts))
            })();
            match setup {
                Ok((icmp, adverts)) => {
                    let _ = ready_tx.send(Ok(()));
                    let sockets = Sockets {
                        icmp,
                        adverts,
                        target,
                        ident,
                    };
                    Ok(probe_loop(&sockets, interval, &flag, &shared))
                }
                Err(e) => {
                    let kind = e.kind();
                    let _ = ready_tx.send(Err(e));
                    Err(io::Error::new(kind, "prober setup failed"))
                }
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Prober {
                stop,
                counts,
                handle,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("prober thread died")),
        }
    }

    /// Echo replies so far.
    pub fn received(&self) -> u64 {
        self.counts.replies.load(Ordering::Relaxed)
    }

    /// Wait until at least `n` echo replies came in all, or `timeout`
    /// passes; true if they came.
    pub fn wait_for_replies(&self, n: u64, timeout: Duration) -> bool {
        wait_for_count(&self.counts.replies, n, timeout)
    }

    /// Wait until the client sees the next advert of the watched master, or
    /// `timeout` passes; true if it came. A prober started without a watch
    /// never sees one.
    pub fn next_advert(&self, timeout: Duration) -> bool {
        let before = self.counts.adverts.load(Ordering::Relaxed);
        wait_for_count(&self.counts.adverts, before + 1, timeout)
    }

    pub fn finish(self) -> io::Result<ProbeReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| io::Error::other("prober thread panicked"))?
    }
}

/// Poll `count` every 100 µs (fine enough to align a trigger with an
/// advert) until it reaches `at_least` or `timeout` passes.
fn wait_for_count(count: &AtomicU64, at_least: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if count.load(Ordering::Relaxed) >= at_least {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

struct Sockets {
    icmp: Socket,
    adverts: Option<(Socket, Ipv4Addr)>,
    target: Ipv4Addr,
    ident: u16,
}

/// A raw VRRP socket and the master whose adverts it counts.
fn open_advert_socket(watch: Watch) -> io::Result<(Socket, Ipv4Addr)> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
    sock.set_nonblocking(true)?;
    // Multicast reaches a raw socket only in a joined group.
    sock.join_multicast_v4(&VRRP_GROUP_V4, &watch.client)?;
    Ok((sock, watch.master))
}

fn probe_loop(s: &Sockets, interval: Duration, stop: &AtomicBool, counts: &Counts) -> ProbeReport {
    let dst = SockAddr::from(SocketAddrV4::new(s.target, 0));
    let mut report = ProbeReport::default();
    let start = Instant::now();
    let mut last_reply = start;
    let mut next_send = start;
    let mut seq: u16 = 0;
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_send {
            seq = seq.wrapping_add(1);
            // A failed send (no neighbour yet) counts as a lost request.
            let _ = s.icmp.send_to(&echo_request(s.ident, seq), &dst);
            report.sent += 1;
            next_send += interval;
            if next_send < now {
                next_send = now + interval;
            }
        }
        while let Ok(n) = (&s.icmp).read(&mut buf) {
            if is_echo_reply(&buf[..n], s.target, s.ident) {
                let t = Instant::now();
                report.received += 1;
                counts.replies.fetch_add(1, Ordering::Relaxed);
                report.longest_gap = report.longest_gap.max(t - last_reply);
                last_reply = t;
            }
        }
        if let Some((sock, master)) = &s.adverts {
            while let Ok(n) = (&*sock).read(&mut buf) {
                if ipv4_source(&buf[..n]) == Some(*master) {
                    counts.adverts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let wait = next_send.saturating_duration_since(Instant::now());
        wait_readable(&s.icmp, s.adverts.as_ref().map(|a| &a.0), wait);
    }
    report.longest_gap = report.longest_gap.max(last_reply.elapsed());
    report
}

/// Wait until `a` or `b` is readable or `timeout` passes, at sub-millisecond
/// resolution.
fn wait_readable(a: &Socket, b: Option<&Socket>, timeout: Duration) {
    let mut fds = [
        PollFd::new(a.as_fd(), PollFlags::POLLIN),
        PollFd::new(b.unwrap_or(a).as_fd(), PollFlags::POLLIN),
    ];
    let used = if b.is_some() { 2 } else { 1 };
    // An error (EINTR) only wakes the loop early; it looks at the time again.
    let _ = ppoll(
        &mut fds[..used],
        Some(TimeSpec::from_duration(timeout)),
        None,
    );
}

fn echo_request(ident: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"baton-pr");
    let sum = crate::wire::vrrp::checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The source of an IPv4 packet as a raw socket hands it over (header
/// included), if it is long enough to have one.
fn ipv4_source(pkt: &[u8]) -> Option<Ipv4Addr> {
    let src: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
    (pkt.len() >= 20).then_some(Ipv4Addr::from(src))
}

/// An echo reply from `from` to the request with `ident`. A raw ICMP socket
/// hands over the IPv4 header too.
fn is_echo_reply(pkt: &[u8], from: Ipv4Addr, ident: u16) -> bool {
    let Some(&vihl) = pkt.first() else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if pkt.len() < ihl + 8 || ihl < 20 {
        return false;
    }
    let icmp = &pkt[ihl..];
    ipv4_source(pkt) == Some(from) && icmp[0] == 0 && icmp[4..6] == ident.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(crate::wire::vrrp::checksum(&p), 0);
        assert_eq!(p[0], 8, "type: echo request");
        assert_eq!(p[4..8], [0x12, 0x34, 0, 7], "identifier, sequence");
    }

    const FROM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    /// An echo reply from `FROM` to identifier 0x1234, sequence 7, behind
    /// an IPv4 header of `header_len` bytes (options past 20).
    fn reply(header_len: usize) -> Vec<u8> {
        let mut pkt = vec![0u8; header_len];
        pkt[0] = 0x40 | (header_len / 4) as u8;
        pkt[12..16].copy_from_slice(&FROM.octets());
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        pkt
    }

    #[test]
    fn reply_matching() {
        let mut pkt = reply(20);
        assert!(is_echo_reply(&pkt, FROM, 0x1234));
        assert!(!is_echo_reply(&pkt, Ipv4Addr::new(192, 0, 2, 2), 0x1234));
        assert!(!is_echo_reply(&pkt, FROM, 0x1235));
        assert!(!is_echo_reply(&pkt[..10], FROM, 0x1234));
        assert!(!is_echo_reply(&pkt[..27], FROM, 0x1234), "ICMP cut short");
        // Our own request, looped back: type 8, not a reply.
        pkt[20] = 8;
        assert!(!is_echo_reply(&pkt, FROM, 0x1234));
    }

    #[test]
    fn reply_behind_ip_options_is_found() {
        let pkt = reply(24);
        assert!(is_echo_reply(&pkt, FROM, 0x1234));
        assert!(!is_echo_reply(&pkt[..28], FROM, 0x1234));
    }

    #[test]
    fn advert_source() {
        let mut pkt = vec![0u8; 20];
        pkt[12..16].copy_from_slice(&[192, 168, 77, 11]);
        assert_eq!(ipv4_source(&pkt), Some(Ipv4Addr::new(192, 168, 77, 11)));
        assert_eq!(ipv4_source(&pkt[..19]), None, "shorter than a header");
        assert_eq!(ipv4_source(&[]), None);
    }

    #[test]
    fn count_waits_end_when_reached_or_timed_out() {
        let count = Arc::new(AtomicU64::new(0));
        assert!(!wait_for_count(&count, 1, Duration::from_millis(5)));
        assert!(wait_for_count(&count, 0, Duration::ZERO));
        let bump = count.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            bump.fetch_add(1, Ordering::Relaxed);
        });
        assert!(wait_for_count(&count, 1, Duration::from_secs(5)));
        t.join().unwrap();
    }

    #[test]
    fn waits_are_not_rounded_up_to_jiffies() {
        // Any socket will do: nothing ever arrives on an unbound one.
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let round = || {
            let t = Instant::now();
            for _ in 0..20 {
                wait_readable(&a, Some(&b), Duration::from_micros(250));
            }
            t.elapsed()
        };
        // The best of three rounds, so that a busy machine does not fail it.
        let took = (0..3).map(|_| round()).min().unwrap();
        assert!(took >= Duration::from_millis(5), "{took:?}");
        // Rounded up to a jiffy each (>= 1 ms at HZ=1000, 4 ms at HZ=250)
        // they would take 20 ms or more.
        assert!(took < Duration::from_millis(20), "{took:?}");
    }

    #[test]
    fn a_missing_namespace_is_an_error_at_start() {
        let err = Prober::start(
            Some("baton-no-such-netns"),
            Ipv4Addr::LOCALHOST,
            Duration::from_millis(10),
        )
        .err()
        .expect("no such namespace");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }
}
