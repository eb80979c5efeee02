//! A client that pings an address every few milliseconds from inside a
//! network namespace and reports the outage it saw: what users of the VIP
//! feel during a failover. Used by `baton demo`, the netns tests and the
//! benchmark; needs no `ping` binary.

use std::fs::File;
use std::io;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

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

pub struct Prober {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<io::Result<ProbeReport>>,
}

impl Prober {
    /// Start pinging `target` every `interval` from namespace `netns`
    /// (`/run/netns/NAME`), or from the current namespace if `None`.
    pub fn start(netns: Option<&str>, target: Ipv4Addr, interval: Duration) -> io::Result<Prober> {
        let ns = match netns {
            Some(n) => Some(File::open(format!("/run/netns/{n}"))?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let setup = (|| {
                if let Some(ns) = ns {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                }
                let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
                sock.set_read_timeout(Some(Duration::from_millis(1)))?;
                Ok::<_, io::Error>(sock)
            })();
            match setup {
                Ok(sock) => {
                    let _ = ready_tx.send(Ok(()));
                    Ok(probe_loop(&sock, target, interval, &flag))
                }
                Err(e) => {
                    let kind = e.kind();
                    let _ = ready_tx.send(Err(e));
                    Err(io::Error::new(kind, "prober setup failed"))
                }
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Prober { stop, handle }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("prober thread died")),
        }
    }

    pub fn finish(self) -> io::Result<ProbeReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| io::Error::other("prober thread panicked"))?
    }
}

fn probe_loop(
    sock: &Socket,
    target: Ipv4Addr,
    interval: Duration,
    stop: &AtomicBool,
) -> ProbeReport {
    let ident = (std::process::id() as u16) ^ 0x6261;
    let dst: SocketAddr = SocketAddrV4::new(target, 0).into();
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
            let pkt = echo_request(ident, seq);
            // A failed send (no neighbour yet) counts as a lost request.
            let _ = sock.send_to(&pkt, &dst.into());
            report.sent += 1;
            next_send += interval;
            if next_send < now {
                next_send = now + interval;
            }
        }
        if let Ok(n) = (&*sock).read(&mut buf) {
            if is_echo_reply(&buf[..n], target, ident) {
                let t = Instant::now();
                report.received += 1;
                report.longest_gap = report.longest_gap.max(t - last_reply);
                last_reply = t;
            }
        }
    }
    let end = Instant::now();
    report.longest_gap = report.longest_gap.max(end - last_reply);
    report
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

/// A raw ICMP socket hands over the IPv4 header too.
fn is_echo_reply(pkt: &[u8], from: Ipv4Addr, ident: u16) -> bool {
    let Some(&vihl) = pkt.first() else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if pkt.len() < ihl + 8 || ihl < 20 {
        return false;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let icmp = &pkt[ihl..];
    src == from && icmp[0] == 0 && icmp[4..6] == ident.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(crate::wire::vrrp::checksum(&p), 0);
    }

    #[test]
    fn reply_matching() {
        let mut pkt = vec![0x45u8; 20];
        pkt[12..16].copy_from_slice(&[192, 0, 2, 1]);
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert!(is_echo_reply(&pkt, Ipv4Addr::new(192, 0, 2, 1), 0x1234));
        assert!(!is_echo_reply(&pkt, Ipv4Addr::new(192, 0, 2, 2), 0x1234));
        assert!(!is_echo_reply(&pkt, Ipv4Addr::new(192, 0, 2, 1), 0x1235));
        assert!(!is_echo_reply(
            &pkt[..10],
            Ipv4Addr::new(192, 0, 2, 1),
            0x1234
        ));
    }
}
