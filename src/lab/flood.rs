//! Hostile load for the lab: a flood of protocol-112 garbage and of
//! unauthenticated TCP connections from one namespace, and a recorder of
//! the spacing of one master's adverts as another namespace receives them
//! (kernel receive timestamps, so the recorder's own scheduling does not
//! count). Used by `tests/netns_flood.rs` and `benches/flood.rs`.
//!
//! The garbage is of three shapes, in turn: random bytes; a VRRP v3 header
//! for the lab's VRID with a bad checksum; and a well-formed advert whose
//! checksum is right but whose source is no peer. Packets leave with TTL
//! 255, so they pass the hop-limit rule and reach the parsers.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// What a flood sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    pub packets: u64,
    pub connections: u64,
}

/// A running flood; [`Flood::finish`] stops it.
pub struct Flood {
    stop: Arc<AtomicBool>,
    packets: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

/// What to flood.
#[derive(Debug, Clone)]
pub struct FloodPlan {
    /// Namespace the flood comes from.
    pub netns: String,
    /// Destinations of the garbage (the VRRP group and node addresses).
    pub targets: Vec<Ipv4Addr>,
    /// Packets per second, over all targets (0: no garbage).
    pub packets_per_sec: u64,
    /// Cluster-channel listeners to open connections to.
    pub tcp: Vec<SocketAddr>,
    /// Connections kept open at once per listener (each sends a few KiB of
    /// garbage, lingers, closes, and is opened again).
    pub tcp_parallel: usize,
    /// The VRID of the lab's instance, for the VRRP-shaped garbage.
    pub vrid: u8,
}

impl Flood {
    pub fn start(plan: FloodPlan) -> io::Result<Flood> {
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        if plan.packets_per_sec > 0 && !plan.targets.is_empty() {
            let sock = super::in_netns(&plan.netns, raw_sender)?;
            let (stop, packets, plan) = (stop.clone(), packets.clone(), plan.clone());
            threads.push(std::thread::spawn(move || {
                garbage_loop(sock, &plan, &stop, &packets)
            }));
        }
        for (k, addr) in plan.tcp.iter().enumerate() {
            for j in 0..plan.tcp_parallel {
                let (stop, connections, addr) = (stop.clone(), connections.clone(), *addr);
                let seed = 0x9e37_79b9 ^ ((k as u64) << 32) ^ j as u64;
                let ns = plan.netns.clone();
                threads.push(std::thread::spawn(move || {
                    if super::enter_netns(&ns).is_ok() {
                        tcp_loop(addr, seed, &stop, &connections);
                    }
                }));
            }
        }
        Ok(Flood {
            stop,
            packets,
            connections,
            threads,
        })
    }

    pub fn finish(self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        FloodReport {
            packets: self.packets.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}

fn raw_sender() -> io::Result<Socket> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
    sock.set_ttl_v4(255)?;
    sock.set_multicast_ttl_v4(255)?;
    sock.bind_device(Some(super::IFNAME.as_bytes()))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A small fast generator (xorshift64*): the flood needs no quality, only
/// speed and variety.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn garbage(rng: &mut Rng, n: u64, vrid: u8, dst: Ipv4Addr, buf: &mut Vec<u8>) {
    buf.clear();
    match n % 3 {
        0 => {
            buf.resize(8 + (rng.next() % 1200) as usize, 0);
            rng.fill(buf);
        }
        1 => {
            // A v3 advert header for our VRID, a wrong checksum.
            buf.resize(8 + 4 * (1 + (rng.next() % 4) as usize), 0);
            rng.fill(buf);
            buf[0] = 0x31;
            buf[1] = vrid;
            buf[3] = 1;
        }
        _ => {
            // A valid advert from a stranger (our own source address).
            let repr = crate::wire::vrrp::Repr {
                version: crate::wire::vrrp::Version::V3,
                vrid,
                priority: 1 + (rng.next() % 254) as u8,
                interval_cs: 1,
                addresses: vec![std::net::IpAddr::V4(Ipv4Addr::new(192, 168, 77, 100))],
                auth: None,
            };
            // The checksum covers a pseudo-header with our source, which
            // the kernel fills in: any address of ours is a stranger's.
            if let Ok(b) = repr.to_bytes(
                Ipv4Addr::UNSPECIFIED.into(),
                dst.into(),
                crate::wire::vrrp::V3Checksum::WithPseudoHeader,
            ) {
                buf.extend_from_slice(&b);
            }
        }
    }
}

fn garbage_loop(sock: Socket, plan: &FloodPlan, stop: &AtomicBool, sent: &AtomicU64) {
    let mut rng = Rng(0x5eed_f100d);
    let mut buf = Vec::with_capacity(1500);
    let start = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Paced in 1 ms slices: as many packets as the rate allows by now.
        let due = start.elapsed().as_micros() as u64 * plan.packets_per_sec / 1_000_000;
        while n < due {
            let dst = plan.targets[(n % plan.targets.len() as u64) as usize];
            garbage(&mut rng, n, plan.vrid, dst, &mut buf);
            let to = SockAddr::from(SocketAddrV4::new(dst, 0));
            if sock.send_to(&buf, &to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Connect, send a few KiB of garbage (a frame header that claims more),
/// linger a moment reading whatever comes, close; again.
fn tcp_loop(addr: SocketAddr, seed: u64, stop: &AtomicBool, opened: &AtomicU64) {
    let mut rng = Rng(seed | 1);
    let mut junk = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
        let _ = s.set_write_timeout(Some(Duration::from_millis(50)));
        rng.fill(&mut junk);
        let _ = s.write_all(&junk);
        let mut sink = [0u8; 512];
        let _ = s.read(&mut sink);
    }
}

/// The adverts of one master as seen in a namespace: their kernel receive
/// times, and from them the spacing.
pub struct AdvertRecorder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Duration>>>,
}

/// Spacing of the adverts seen while recording.
#[derive(Debug, Clone, Default)]
pub struct Spacing {
    pub adverts: usize,
    pub max: Duration,
    pub p99: Duration,
    pub median: Duration,
    /// Every gap, in arrival order.
    pub gaps: Vec<Duration>,
}

impl Spacing {
    fn from_times(mut times: Vec<Duration>) -> Spacing {
        times.sort();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let adverts = times.len();
        let mut sorted = gaps.clone();
        sorted.sort();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Spacing {
            adverts,
            max: sorted.last().copied().unwrap_or_default(),
            p99: at(0.99),
            median: at(0.5),
            gaps,
        }
    }

    /// How many gaps were longer than `limit`.
    pub fn late_over(&self, limit: Duration) -> usize {
        self.gaps.iter().filter(|g| **g > limit).count()
    }
}

impl AdvertRecorder {
    /// Record in namespace `netns` (joined to the IPv4 VRRP group on the
    /// lab interface, whose address is `local`) the adverts from `master`.
    pub fn start(netns: &str, local: Ipv4Addr, master: Ipv4Addr) -> io::Result<AdvertRecorder> {
        let sock = super::in_netns(netns, move || -> io::Result<Socket> {
            let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
            sock.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 18), &local)?;
            sock.set_read_timeout(Some(Duration::from_millis(50)))?;
            setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
            // Only the master's packets reach the socket: the flood must
            // not fill the recorder's buffer and hide adverts from it.
            sock.attach_filter(&source_filter(master))?;
            Ok(sock)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || record_loop(sock, master, &s));
        Ok(AdvertRecorder {
            stop,
            thread: Some(thread),
        })
    }

    pub fn finish(mut self) -> Spacing {
        self.stop.store(true, Ordering::Relaxed);
        let times = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Spacing::from_times(times)
    }
}

/// A classic BPF program over the IPv4 header: accept packets whose source
/// is `src`, drop the rest.
fn source_filter(src: Ipv4Addr) -> [socket2::SockFilter; 4] {
    use socket2::SockFilter;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    [
        SockFilter::new(LD_W_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 1, u32::from(src)),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

fn record_loop(sock: Socket, master: Ipv4Addr, stop: &AtomicBool) -> Vec<Duration> {
    let mut times = Vec::new();
    let mut buf = [0u8; 1500];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    while !stop.load(Ordering::Relaxed) {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        ) else {
            continue;
        };
        let n = msg.bytes;
        let stamp = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
                }
                _ => None,
            })
        });
        let pkt = &buf[..n.min(buf.len())];
        let from_master = pkt.len() >= 28
            && pkt[12..16] == master.octets()
            && pkt[(usize::from(pkt[0] & 0x0f) * 4).min(pkt.len() - 1)] == 0x31;
        if let (true, Some(t)) = (from_master, stamp) {
            times.push(t);
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_of_regular_and_late_adverts() {
        let ms = Duration::from_millis;
        let times = vec![ms(0), ms(10), ms(20), ms(45), ms(55)];
        let s = Spacing::from_times(times);
        assert_eq!(s.adverts, 5);
        assert_eq!(s.max, ms(25));
        assert_eq!(s.median, ms(10));
        assert_eq!(s.late_over(ms(20)), 1);
        assert_eq!(s.late_over(ms(30)), 0);
    }

    #[test]
    fn garbage_has_the_three_shapes() {
        let mut rng = Rng(7);
        let mut buf = Vec::new();
        let dst = Ipv4Addr::new(224, 0, 0, 18);
        garbage(&mut rng, 1, 9, dst, &mut buf);
        assert_eq!((buf[0], buf[1]), (0x31, 9));
        garbage(&mut rng, 2, 9, dst, &mut buf);
        assert_eq!((buf[0], buf[1], buf[3]), (0x31, 9, 1));
        garbage(&mut rng, 3, 9, dst, &mut buf);
        assert!(buf.len() >= 8);
    }
}
