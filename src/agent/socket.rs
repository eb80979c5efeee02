//! Raw VRRP sockets (IP protocol 112) on one interface, for IPv4 and IPv6,
//! usable from tokio.
//!
//! This module owns the socket options VRRP needs on the wire: the socket
//! is bound to its interface, joins the VRRP group in multicast mode, sends
//! with TTL / hop limit 255 and never hears its own multicast. It checks
//! nothing about what it receives beyond the IP header: the TTL / hop limit
//! is handed to the caller, which drops and counts per instance.
//!
//! The kernel computes no VRRP checksum (IPV6_CHECKSUM is deliberately left
//! unset): the caller emits the full VRRP message with its checksum, which
//! for IPv6 and for VRRPv3 covers the source address. A caller that needs a
//! known source therefore pins it with [`VrrpSocket::bind_source`].
//!
//! Every packet comes with the kernel's receive time (SO_TIMESTAMPNS):
//! the node times what an advert starts (the master-down timer, the skew
//! after a priority-0 advert) from when it arrived, not from when a loaded
//! host got round to reading it ([`Clocks`] turns that realtime stamp into
//! an [`Instant`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{
    recvmsg, sendmmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    MultiHeaders, SockaddrIn, SockaddrIn6, SockaddrLike,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// The IP protocol number of AH (keepalived's `auth_type AH`).
pub const IPPROTO_AH: i32 = 51;
/// The IPv4 VRRP multicast group.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP multicast group.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only TTL / hop limit VRRP sends and (in multicast mode) accepts.
pub const VRRP_TTL: u8 = 255;
/// IPTOS_PREC_INTERNETCONTROL: what keepalived marks its adverts with, so
/// that QoS policies written for keepalived keep matching baton.
const TOS_INTERNET_CONTROL: u32 = 0xc0;

/// One VRRP packet as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The IP source address.
    pub src: IpAddr,
    /// The IP destination address (the group in multicast mode).
    pub dst: IpAddr,
    /// The IPv4 TTL or the IPv6 hop limit (0 if the kernel did not say).
    pub ttl: u8,
    /// Where the VRRP message lies in the caller's buffer, cut to the IP
    /// length (Ethernet padding and the IPv4 header are excluded).
    pub payload: Range<usize>,
    /// When the kernel received it (SO_TIMESTAMPNS, the realtime clock);
    /// None if it did not say. [`Clocks::arrival`] makes it an [`Instant`].
    pub stamp: Option<SystemTime>,
}

/// A raw VRRP socket on one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    io: AsyncFd<Socket>,
    ifname: String,
    ifindex: u32,
    v6: bool,
    multicast: bool,
    source: Option<IpAddr>,
    /// An AH socket (protocol 51, IP_HDRINCL): sends and receives whole
    /// IPv4 datagrams.
    ah: bool,
}

impl VrrpSocket {
    /// An IPv4 VRRP socket on `ifname`; in multicast mode it joins
    /// 224.0.0.18 there. Must be called inside a tokio runtime.
    pub fn open_v4(ifname: &str, multicast: bool) -> io::Result<VrrpSocket> {
        Self::open(
            ifname,
            multicast.then_some(IpAddr::V4(VRRP_GROUP_V4)),
            false,
        )
    }

    /// An IPv6 VRRP socket on `ifname`; in multicast mode it joins ff02::12
    /// there. Must be called inside a tokio runtime.
    pub fn open_v6(ifname: &str, multicast: bool) -> io::Result<VrrpSocket> {
        Self::open(ifname, multicast.then_some(IpAddr::V6(VRRP_GROUP_V6)), true)
    }

    /// A multicast VRRP socket on `ifname` that joins `group` there
    /// instead of the VRRP group (keepalived's `vrrp_mcast_group4/6`); its
    /// family is the group's. Must be called inside a tokio runtime.
    pub fn open_group(ifname: &str, group: IpAddr) -> io::Result<VrrpSocket> {
        Self::open(ifname, Some(group), group.is_ipv6())
    }

    /// An IPv4 AH socket (protocol 51) on `ifname` for keepalived's
    /// `auth_type AH`, in multicast mode joined to 224.0.0.18 (in unicast
    /// mode it sends to the peers and hears what comes to the interface):
    /// [`send`](Self::send) takes a whole datagram (IP_HDRINCL: the ICV
    /// covers the IPv4 header, source included, so the header must be
    /// ours), [`recv`](Self::recv) hands one over whole (`payload` starts
    /// at the IPv4 header).
    pub fn open_ah_v4(ifname: &str, multicast: bool) -> io::Result<VrrpSocket> {
        let group = multicast.then_some(IpAddr::V4(VRRP_GROUP_V4));
        let mut s = Self::open_proto(ifname, group, false, IPPROTO_AH)?;
        s.io.get_ref()
            .set_header_included_v4(true)
            .map_err(|e| context(ifname, "IP_HDRINCL", e))?;
        s.ah = true;
        Ok(s)
    }

    fn open(ifname: &str, group: Option<IpAddr>, v6: bool) -> io::Result<VrrpSocket> {
        Self::open_proto(ifname, group, v6, IPPROTO_VRRP)
    }

    fn open_proto(
        ifname: &str,
        group: Option<IpAddr>,
        v6: bool,
        proto: i32,
    ) -> io::Result<VrrpSocket> {
        let multicast = group.is_some();
        let ifindex = nix::net::if_::if_nametoindex(ifname)
            .map_err(|e| context(ifname, "interface index", io::Error::from(e)))?;
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(proto)))
            .map_err(|e| context(ifname, &format!("raw socket (protocol {proto})"), e))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(|e| context(ifname, "SO_BINDTODEVICE", e))?;
        match group {
            Some(IpAddr::V6(g)) => configure_v6(&socket, ifname, ifindex, Some(g))?,
            Some(IpAddr::V4(g)) => configure_v4(&socket, ifname, ifindex, Some(g))?,
            None if v6 => configure_v6(&socket, ifname, ifindex, None)?,
            None => configure_v4(&socket, ifname, ifindex, None)?,
        }
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)
            .map_err(|e| context(ifname, "SO_TIMESTAMPNS", io::Error::from(e)))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| context(ifname, "O_NONBLOCK", e))?;
        Ok(VrrpSocket {
            io: register(socket).map_err(|e| context(ifname, "register with tokio", e))?,
            ifname: ifname.to_owned(),
            ifindex,
            v6,
            multicast,
            source: None,
            ah: false,
        })
    }

    /// Send from `addr` instead of the address the kernel would choose
    /// (keepalived's `unicast_src_ip`). The address must be configured on
    /// the host. Unlike `bind(2)` on a raw socket, this does not filter what
    /// is received: the source is set per packet with IP(V6)_PKTINFO.
    pub fn bind_source(&mut self, addr: IpAddr) -> io::Result<()> {
        if addr.is_ipv6() != self.v6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: source {addr} is not of the socket's family",
                    self.ifname
                ),
            ));
        }
        self.source = Some(addr);
        Ok(())
    }

    /// Let [`bind_source`](Self::bind_source) name an address the host
    /// does not have (IP_TRANSPARENT / IPV6_TRANSPARENT, which need
    /// CAP_NET_ADMIN): keepalived builds its own IPv4 header and sends
    /// from `mcast_src_ip` whether or not it is configured.
    pub fn set_transparent(&self) -> io::Result<()> {
        let s = self.io.get_ref();
        if self.v6 {
            s.set_ip_transparent_v6(true)
        } else {
            s.set_ip_transparent_v4(true)
        }
        .map_err(|e| context(&self.ifname, "IP_TRANSPARENT", e))
    }

    /// The source pinned with [`bind_source`](Self::bind_source), if any.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Whether this is an AH socket ([`open_ah_v4`](Self::open_ah_v4)).
    pub fn is_ah(&self) -> bool {
        self.ah
    }

    pub fn is_multicast(&self) -> bool {
        self.multicast
    }

    /// Receive one packet into `buf`. An `InvalidData` error concerns that
    /// one packet only (truncated: `buf` too small); the socket stays usable.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.io.readable().await?;
            let result = guard.try_io(|io| self.recv_one(io.get_ref(), buf));
            match result {
                Ok(received) => {
                    return received.map_err(|e| context(&self.ifname, "receive", e));
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Ready when the socket may have something to read (what the reactor
    /// last saw); registers the task's waker otherwise. Reading is left to
    /// [`try_recv_batch`](Self::try_recv_batch) and
    /// [`try_recv`](Self::try_recv), which clear the readiness once the
    /// queue is empty.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        // An error (the reactor is gone) counts as ready: the read says it.
        self.io.poll_read_ready(cx).map(|_guard| ())
    }

    /// What [`recv_batch`](Self::recv_batch) would take, without waiting:
    /// 0 when nothing is queued (or the reactor has not seen the socket
    /// readable since it was last emptied). Once the queue is empty (fewer
    /// datagrams than room) the readiness is cleared, so the next
    /// [`poll_readable`](Self::poll_readable) waits for more; it is cleared
    /// on an error too (reported once, not spun on).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let mut got = 0;
        let mut failed = None;
        let r = self.io.try_io(Interest::READABLE, |s| {
            match batch.fill(s.as_fd()) {
                Ok(n) => got = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => failed = Some(e),
            }
            if got < RecvBatch::CAPACITY {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(context(&self.ifname, "receive", e));
        }
        match r {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                Err(context(&self.ifname, "receive", e))
            }
            _ => Ok(got),
        }
    }

    /// [`try_recv_batch`](Self::try_recv_batch) asking the kernel whatever
    /// the reactor last saw: a datagram that came after the reactor's last
    /// look is read too (one system call, also when nothing is queued).
    pub fn recv_batch_now(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        match batch.fill(self.io.get_ref().as_fd()) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(context(&self.ifname, "receive", e)),
        }
    }

    /// One packet from the socket, now (WouldBlock when none): an AH
    /// socket's datagram whole, a VRRP socket's payload within it.
    fn recv_one(&self, io: &Socket, buf: &mut [u8]) -> io::Result<Received> {
        if self.v6 {
            return recv_v6(io.as_fd(), buf);
        }
        recv_v4(io, buf).map(|mut r| {
            if self.ah {
                r.payload.start = 0;
            }
            r
        })
    }

    /// Receive up to [`RecvBatch::CAPACITY`] datagrams in one `recvmmsg`
    /// (the batch made for the socket's family: [`RecvBatch::new`] or
    /// [`RecvBatch::new_v6`]); returns how many, at least one.
    /// [`RecvBatch::get`] hands each over as [`recv`](Self::recv) would.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            let mut guard = self.io.readable().await?;
            match batch.fill(self.io.get_ref().as_fd()) {
                Ok(n) => {
                    // Fewer than asked for: the queue is empty, so no
                    // second call to learn it (tokio keeps the readiness if
                    // a datagram came in meanwhile).
                    if n < RecvBatch::CAPACITY {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Err(context(&self.ifname, "receive", e)),
            }
        }
    }

    /// Send one complete VRRP message (checksum included) to `dst`: the
    /// group in multicast mode, a peer in unicast mode.
    pub async fn send(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        loop {
            let mut guard = self.io.writable().await?;
            let result = guard.try_io(|_| self.send_now(payload, dst));
            match result {
                Ok(sent) => {
                    return sent.map_err(|e| context(&self.ifname, &format!("send to {dst}"), e));
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// One advert now, the way a batch goes (WouldBlock when there is no
    /// room).
    fn send_now(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        match self.try_send_many(&[(payload, dst)])? {
            1 => Ok(()),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Send as many of `adverts` (complete VRRP messages and their
    /// destinations, as [`send`](Self::send) takes them) as the socket
    /// takes now, in one system call (sendmmsg): how many went. An error
    /// means none went; the caller sends the rest one by one with
    /// [`send`](Self::send), which waits for room and reports each failure.
    pub fn try_send_many(&self, adverts: &[(&[u8], IpAddr)]) -> io::Result<usize> {
        if adverts.is_empty() {
            return Ok(0);
        }
        let fd = self.io.get_ref().as_raw_fd();
        let iovs: Vec<[IoSlice<'_>; 1]> = adverts.iter().map(|(p, _)| [IoSlice::new(p)]).collect();
        let sent = if self.v6 {
            let to = adverts
                .iter()
                .map(|(_, dst)| match dst {
                    IpAddr::V6(d) => Ok(Some(self.v6_destination(*d))),
                    IpAddr::V4(_) => Err(wrong_family()),
                })
                .collect::<io::Result<Vec<_>>>()?;
            let info = self.pktinfo_v6();
            let cmsgs: &[ControlMessage] = match &info {
                Some(info) => &[ControlMessage::Ipv6PacketInfo(info)],
                None => &[],
            };
            let space = info.is_some().then(|| nix::cmsg_space!(libc::in6_pktinfo));
            send_mmsg(fd, &iovs, &to, cmsgs, space)
        } else {
            let to = adverts
                .iter()
                .map(|(_, dst)| match dst {
                    IpAddr::V4(d) => Ok(Some(SockaddrIn::from(SocketAddrV4::new(*d, 0)))),
                    IpAddr::V6(_) => Err(wrong_family()),
                })
                .collect::<io::Result<Vec<_>>>()?;
            let info = self.pktinfo_v4();
            let cmsgs: &[ControlMessage] = match &info {
                Some(info) => &[ControlMessage::Ipv4PacketInfo(info)],
                None => &[],
            };
            let space = info.is_some().then(|| nix::cmsg_space!(libc::in_pktinfo));
            send_mmsg(fd, &iovs, &to, cmsgs, space)
        };
        sent.map_err(io::Error::from)
    }

    /// The scope is needed for link-local peers and the group; the kernel
    /// ignores it for global destinations.
    fn v6_destination(&self, dst: Ipv6Addr) -> SockaddrIn6 {
        SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, self.ifindex))
    }

    /// The source and interface of an IPv4 advert, if the source is set.
    fn pktinfo_v4(&self) -> Option<libc::in_pktinfo> {
        match self.source {
            Some(IpAddr::V4(src)) => Some(libc::in_pktinfo {
                ipi_ifindex: self.ifindex as libc::c_int,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(src).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            }),
            _ => None,
        }
    }

    /// The source and interface of an IPv6 advert, if the source is set.
    fn pktinfo_v6(&self) -> Option<libc::in6_pktinfo> {
        match self.source {
            Some(IpAddr::V6(src)) => Some(libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: self.ifindex,
            }),
            _ => None,
        }
    }
}

/// One sendmmsg of `iovs`, each to its `to`, each with `cmsgs` (for which
/// `space` is the control buffer of one message), without waiting: how
/// many the kernel took.
fn send_mmsg<S: SockaddrLike + Copy>(
    fd: RawFd,
    iovs: &[[IoSlice<'_>; 1]],
    to: &[Option<S>],
    cmsgs: &[ControlMessage<'_>],
    space: Option<Vec<u8>>,
) -> nix::Result<usize> {
    let mut headers = MultiHeaders::<S>::preallocate(iovs.len(), space);
    sendmmsg(fd, &mut headers, iovs, to, cmsgs, MsgFlags::MSG_DONTWAIT).map(Iterator::count)
}

fn wrong_family() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "destination is not of the socket's family",
    )
}

impl AsRawFd for VrrpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get_ref().as_raw_fd()
    }
}

fn configure_v4(
    socket: &Socket,
    ifname: &str,
    ifindex: u32,
    group: Option<Ipv4Addr>,
) -> io::Result<()> {
    let set = |what: &str, r: io::Result<()>| r.map_err(|e| context(ifname, what, e));
    set("IP_TTL", socket.set_ttl_v4(u32::from(VRRP_TTL)))?;
    set(
        "IP_MULTICAST_TTL",
        socket.set_multicast_ttl_v4(u32::from(VRRP_TTL)),
    )?;
    set("IP_MULTICAST_LOOP", socket.set_multicast_loop_v4(false))?;
    // Only the groups this socket joined, not every group of the host.
    set("IP_MULTICAST_ALL", socket.set_multicast_all_v4(false))?;
    set("IP_TOS", socket.set_tos_v4(TOS_INTERNET_CONTROL))?;
    set(
        "IP_MULTICAST_IF",
        set_multicast_if_index_v4(socket.as_fd(), ifindex),
    )?;
    if let Some(group) = group {
        set(
            &format!("join {group}"),
            socket.join_multicast_v4_n(&group, &socket2::InterfaceIndexOrAddress::Index(ifindex)),
        )?;
    }
    Ok(())
}

fn configure_v6(
    socket: &Socket,
    ifname: &str,
    ifindex: u32,
    group: Option<Ipv6Addr>,
) -> io::Result<()> {
    let set = |what: &str, r: io::Result<()>| r.map_err(|e| context(ifname, what, e));
    set(
        "IPV6_UNICAST_HOPS",
        socket.set_unicast_hops_v6(u32::from(VRRP_TTL)),
    )?;
    set(
        "IPV6_MULTICAST_HOPS",
        socket.set_multicast_hops_v6(u32::from(VRRP_TTL)),
    )?;
    set("IPV6_MULTICAST_LOOP", socket.set_multicast_loop_v6(false))?;
    set("IPV6_MULTICAST_IF", socket.set_multicast_if_v6(ifindex))?;
    set("IPV6_TCLASS", socket.set_tclass_v6(TOS_INTERNET_CONTROL))?;
    set("IPV6_RECVHOPLIMIT", socket.set_recv_hoplimit_v6(true))?;
    set(
        "IPV6_RECVPKTINFO",
        setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from),
    )?;
    // IPV6_MULTICAST_ALL exists since Linux 4.20; older kernels deliver a
    // little more, which the receive path tolerates.
    match socket.set_multicast_all_v6(false) {
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
        r => set("IPV6_MULTICAST_ALL", r)?,
    }
    if let Some(group) = group {
        set(
            &format!("join {group}"),
            socket.join_multicast_v6(&group, ifindex),
        )?;
    }
    Ok(())
}

/// An IPv4 raw socket hands over the whole IP datagram (and the receive
/// time as a control message).
fn recv_v4(socket: &Socket, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = [0u8; 64];
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let len = msg.bytes;
    let stamp = msg.cmsgs().map_err(io::Error::from)?.find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => timespec_time(&ts),
        _ => None,
    });
    let header = parse_ipv4_header(&buf[..len])?;
    Ok(Received {
        src: IpAddr::V4(header.src),
        dst: IpAddr::V4(header.dst),
        ttl: header.ttl,
        payload: header.payload,
        stamp,
    })
}

/// Room for a batch of datagrams, filled by one `recvmmsg` (the receive
/// path at hundreds of instances: one system call for many adverts, and no
/// allocation per packet). Each slot holds a whole IPv4 datagram, or an
/// IPv6 payload with the sender's address and control messages, as the
/// one-packet receive does; the memory is touched only as far as datagrams
/// reach, a page or so per slot for adverts.
pub struct RecvBatch {
    slots: Vec<u8>,
    lens: [usize; Self::CAPACITY],
    /// Each datagram's control messages (its receive time; for IPv6 also
    /// its destination and hop limit); u64s for the alignment of a
    /// `cmsghdr`.
    control: [[u64; CONTROL_WORDS]; Self::CAPACITY],
    control_lens: [usize; Self::CAPACITY],
    /// IPv6: each sender's address (an IPv4 datagram has it in its header).
    names: Option<Box<[libc::sockaddr_in6; Self::CAPACITY]>>,
    /// The kernel cut the datagram to its slot.
    truncated: [bool; Self::CAPACITY],
    count: usize,
    ah: bool,
}

/// Room for the control messages of one datagram: SCM_TIMESTAMPNS (32
/// bytes with its header), IPV6_PKTINFO (40) and IPV6_HOPLIMIT (24), and
/// then some.
const CONTROL_WORDS: usize = 16;

impl RecvBatch {
    pub const CAPACITY: usize = 16;
    const SLOT: usize = 65536;

    /// Buffers for an IPv4 socket; `ah`: an AH socket, whose datagrams are
    /// handed over whole.
    pub fn new(ah: bool) -> RecvBatch {
        RecvBatch {
            slots: vec![0u8; Self::CAPACITY * Self::SLOT],
            lens: [0; Self::CAPACITY],
            control: [[0; CONTROL_WORDS]; Self::CAPACITY],
            control_lens: [0; Self::CAPACITY],
            names: None,
            truncated: [false; Self::CAPACITY],
            count: 0,
            ah,
        }
    }

    /// Buffers for an IPv6 socket.
    pub fn new_v6() -> RecvBatch {
        // SAFETY: an all-zero sockaddr_in6 is a valid value of this plain
        // C struct.
        let names = Box::new([unsafe { std::mem::zeroed::<libc::sockaddr_in6>() }; Self::CAPACITY]);
        RecvBatch {
            names: Some(names),
            ..RecvBatch::new(false)
        }
    }

    fn fill(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: an all-zero iovec/mmsghdr is a valid value (null pointers,
        // zero lengths) for these plain C structs.
        let mut iov: [libc::iovec; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        let slots = self.slots.chunks_exact_mut(Self::SLOT);
        for (k, (chunk, control)) in slots.zip(self.control.iter_mut()).enumerate() {
            iov[k].iov_base = chunk.as_mut_ptr().cast();
            iov[k].iov_len = chunk.len();
            hdrs[k].msg_hdr.msg_iov = &mut iov[k];
            hdrs[k].msg_hdr.msg_iovlen = 1;
            hdrs[k].msg_hdr.msg_control = control.as_mut_ptr().cast();
            hdrs[k].msg_hdr.msg_controllen = std::mem::size_of_val(control) as _;
            if let Some(names) = self.names.as_deref_mut() {
                // No name from the kernel: no sender.
                names[k].sin6_family = 0;
                hdrs[k].msg_hdr.msg_name = std::ptr::from_mut(&mut names[k]).cast();
                hdrs[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as _;
            }
        }
        // SAFETY: `fd` is an open socket for the duration of the borrow;
        // every header points at one iovec describing a distinct
        // `Self::SLOT`-byte slot of `self.slots`, at its own control
        // buffer of `self.control` (8-byte aligned, as a cmsghdr wants) and,
        // for IPv6, at its own `sockaddr_in6` of `self.names` (its size in
        // `msg_namelen`), all live and exclusively borrowed here; the
        // kernel writes at most `iov_len` bytes per slot, at most
        // `msg_controllen` per control buffer and `msg_namelen` per name,
        // and the lengths into `hdrs`.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                Self::CAPACITY as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(Self::CAPACITY);
        for (k, h) in hdrs.iter().enumerate().take(n) {
            // A datagram longer than its slot (which no IPv4 datagram and
            // no IPv6 payload without jumbograms is) is cut at the slot.
            self.lens[k] = (h.msg_len as usize).min(Self::SLOT);
            self.truncated[k] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            // size_t with glibc, socklen_t with musl.
            #[allow(clippy::unnecessary_cast)]
            let control_len = h.msg_hdr.msg_controllen as usize;
            self.control_lens[k] = control_len.min(std::mem::size_of_val(&self.control[k]));
        }
        self.count = n;
        Ok(n)
    }

    /// Datagram `k` of the last fill: its bytes and what the one-packet
    /// receive would have handed over (`payload` within the bytes). An
    /// error concerns that datagram only.
    pub fn get(&self, k: usize) -> Option<(&[u8], io::Result<Received>)> {
        if k >= self.count {
            return None;
        }
        let data = &self.slots[k * Self::SLOT..k * Self::SLOT + self.lens[k]];
        let control: &[u64] = &self.control[k];
        let control = &words_as_bytes(control)[..self.control_lens[k]];
        if let Some(names) = self.names.as_deref() {
            if self.truncated[k] {
                return Some((data, Err(truncated(Self::SLOT))));
            }
            let name = &names[k];
            let src = (i32::from(name.sin6_family) == libc::AF_INET6)
                .then(|| Ipv6Addr::from(name.sin6_addr.s6_addr));
            return Some((data, Ok(received_v6_raw(src, data.len(), control))));
        }
        let stamp = stamp_from_control(control);
        let received = parse_ipv4_header(data).map(|header| Received {
            src: IpAddr::V4(header.src),
            dst: IpAddr::V4(header.dst),
            ttl: header.ttl,
            // An AH socket's datagram whole, as `recv` does.
            payload: if self.ah {
                0..header.payload.end
            } else {
                header.payload
            },
            stamp,
        });
        Some((data, received))
    }
}

fn truncated(capacity: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("packet truncated: buffer of {capacity} bytes too small"),
    )
}

/// An IPv6 raw socket hands over the payload only; the hop limit and the
/// destination come as control messages.
fn recv_v6(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // Room for IPV6_PKTINFO, IPV6_HOPLIMIT and SCM_TIMESTAMPNS.
    let mut control = [0u8; 160];
    let capacity = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn6>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(truncated(capacity));
    }
    let src = msg.address.map(|a| a.ip());
    Ok(received_v6(
        src,
        msg.bytes,
        msg.cmsgs().map_err(io::Error::from)?,
    ))
}

/// What an IPv6 receive hands over, from the sender's address (None: the
/// kernel gave none), the payload length and the control messages: the hop
/// limit (0 when missing or out of range, which the TTL check drops) and
/// the destination from the packet info (unspecified when missing). Pure,
/// so that it can be fuzzed.
pub fn received_v6(
    src: Option<Ipv6Addr>,
    len: usize,
    cmsgs: impl IntoIterator<Item = ControlMessageOwned>,
) -> Received {
    let mut facts = V6Facts::default();
    for cmsg in cmsgs {
        match cmsg {
            ControlMessageOwned::Ipv6HopLimit(hops) => facts.hops = Some(hops),
            ControlMessageOwned::ScmTimestampns(ts) => facts.stamp = timespec_time(&ts),
            ControlMessageOwned::Ipv6PacketInfo(info) => facts.dst = Some(info.ipi6_addr.s6_addr),
            _ => {}
        }
    }
    facts.received(src, len)
}

/// [`received_v6`] from the control messages as the kernel laid them out
/// (the batch receive). Safe on any bytes: a malformed list ends the walk.
/// Pure, so that it can be fuzzed.
pub fn received_v6_raw(src: Option<Ipv6Addr>, len: usize, control: &[u8]) -> Received {
    let mut facts = V6Facts::default();
    for (level, kind, data) in control_messages(control) {
        match (level, kind) {
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                facts.hops = data
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                facts.dst = data.get(..16).and_then(|b| b.try_into().ok());
            }
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => facts.stamp = timestamp(data),
            _ => {}
        }
    }
    facts.received(src, len)
}

/// What the control messages of an IPv6 datagram said.
#[derive(Default)]
struct V6Facts {
    hops: Option<i32>,
    dst: Option<[u8; 16]>,
    stamp: Option<SystemTime>,
}

impl V6Facts {
    /// The hop limit is 0 when missing or out of range (the TTL check
    /// drops it), the destination unspecified when missing.
    fn received(self, src: Option<Ipv6Addr>, len: usize) -> Received {
        Received {
            src: IpAddr::V6(src.unwrap_or(Ipv6Addr::UNSPECIFIED)),
            dst: IpAddr::V6(self.dst.map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from)),
            ttl: self.hops.and_then(|h| u8::try_from(h).ok()).unwrap_or(0),
            payload: 0..len,
            stamp: self.stamp,
        }
    }
}

/// A kernel timestamp (seconds and nanoseconds since the epoch) as a
/// [`SystemTime`]; None when out of range.
fn system_time(sec: i64, nsec: i64) -> Option<SystemTime> {
    let sec = u64::try_from(sec).ok()?;
    let nsec = u32::try_from(nsec).ok().filter(|n| *n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(sec, nsec))
}

/// nix's TimeSpec as a [`SystemTime`] (time_t and long are 32 bits on
/// some targets, hence the conversions).
#[allow(clippy::useless_conversion)]
fn timespec_time(ts: &nix::sys::time::TimeSpec) -> Option<SystemTime> {
    system_time(i64::from(ts.tv_sec()), i64::from(ts.tv_nsec()))
}

fn words_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: any u64 is 8 initialised bytes; the slice covers exactly the
    // words' memory, borrowed for as long as they are, and u8 has no
    // alignment to keep.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), std::mem::size_of_val(words)) }
}

/// The receive time (SCM_TIMESTAMPNS) among the control messages of one
/// datagram, as the kernel laid them out (`struct cmsghdr`: a size_t
/// length, level and type; the data aligned to a size_t). Safe on any
/// bytes: a malformed list ends the walk. Pure, so that it can be tested.
pub fn stamp_from_control(control: &[u8]) -> Option<SystemTime> {
    control_messages(control)
        .find(|(level, kind, _)| *level == libc::SOL_SOCKET && *kind == libc::SCM_TIMESTAMPNS)
        .and_then(|(_, _, data)| timestamp(data))
}

/// The (level, type, data) of each control message in `control`, as the
/// kernel laid them out (`struct cmsghdr`: a size_t length, level and
/// type; the data aligned to a size_t). A malformed list ends the walk.
fn control_messages(control: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    const WORD: usize = std::mem::size_of::<usize>();
    // A multiple of WORD: the data starts right after it.
    const HEADER: usize = WORD + 8;
    let mut rest = control;
    std::iter::from_fn(move || {
        if rest.len() < HEADER {
            return None;
        }
        let len = usize::from_ne_bytes(rest[..WORD].try_into().ok()?);
        let level = i32::from_ne_bytes(rest[WORD..WORD + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(rest[WORD + 4..HEADER].try_into().ok()?);
        if len < HEADER || len > rest.len() {
            rest = &[];
            return None;
        }
        let data = &rest[HEADER..len];
        // The next header starts aligned to a size_t.
        let next = len.div_ceil(WORD).saturating_mul(WORD).min(rest.len());
        rest = &rest[next..];
        Some((level, kind, data))
    })
}

/// An SCM_TIMESTAMPNS payload: two 64-bit words (64-bit hosts, and 32-bit
/// ones with a 64-bit time_t), or two 32-bit ones.
fn timestamp(data: &[u8]) -> Option<SystemTime> {
    let (sec, nsec) = match data.len() {
        16.. => (
            i64::from_ne_bytes(data[..8].try_into().ok()?),
            i64::from_ne_bytes(data[8..16].try_into().ok()?),
        ),
        8.. => (
            i64::from(i32::from_ne_bytes(data[..4].try_into().ok()?)),
            i64::from(i32::from_ne_bytes(data[4..8].try_into().ok()?)),
        ),
        _ => return None,
    };
    system_time(sec, nsec)
}

/// How long a packet may have waited in the socket and still be timed from
/// its kernel stamp: an older stamp (a stall beyond this, or a stamp that
/// makes no sense) counts as this old.
pub const MAX_RX_AGE: Duration = Duration::from_secs(1);

/// How far the realtime clock may drift from the monotonic one between two
/// reads before it counts as set (stepped): NTP slews by at most 500 ppm.
const STEP_TOLERANCE: Duration = Duration::from_millis(1);

/// The realtime and the monotonic clock read together: turns a kernel
/// receive stamp (realtime) into an [`Instant`] by the offset between the
/// two.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl Clocks {
    pub fn now() -> Clocks {
        Clocks {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// When a packet stamped `stamp` arrived, on the monotonic clock:
    /// within [`MAX_RX_AGE`] before these clocks' reading, never after it
    /// (a stamp in the future counts as now). No stamp: now.
    pub fn arrival(&self, stamp: Option<SystemTime>) -> Instant {
        let Some(stamp) = stamp else {
            return self.mono;
        };
        let age = self
            .wall
            .duration_since(stamp)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RX_AGE);
        self.mono.checked_sub(age).unwrap_or(self.mono)
    }

    /// Whether the realtime clock was set between `earlier` and this
    /// reading: it moved otherwise than the monotonic clock, by more than
    /// a slew can.
    pub fn stepped_since(&self, earlier: &Clocks) -> bool {
        let mono = self.mono.saturating_duration_since(earlier.mono);
        let Ok(wall) = self.wall.duration_since(earlier.wall) else {
            return true;
        };
        wall.abs_diff(mono) > STEP_TOLERANCE + mono / 1000
    }
}

/// Arrival times for one socket's reads: [`Clocks`] read once per batch,
/// and stamps ignored (the read time used, as without them) for the batch
/// after the realtime clock was set, whose stamps may predate the step.
#[derive(Debug, Default)]
pub struct ArrivalClock {
    last: Option<Clocks>,
}

/// The clocks for one batch ([`ArrivalClock::batch`]).
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    clocks: Clocks,
    trusted: bool,
}

impl ArrivalClock {
    pub fn batch(&mut self) -> Arrivals {
        self.batch_at(Clocks::now())
    }

    fn batch_at(&mut self, clocks: Clocks) -> Arrivals {
        let trusted = self.last.is_none_or(|l| !clocks.stepped_since(&l));
        self.last = Some(clocks);
        Arrivals { clocks, trusted }
    }
}

impl Arrivals {
    /// When a packet stamped `stamp` arrived ([`Clocks::arrival`]).
    pub fn of(&self, stamp: Option<SystemTime>) -> Instant {
        self.clocks.arrival(stamp.filter(|_| self.trusted))
    }
}

/// The fields of an IPv4 header that VRRP needs. Temporary: replaced by
/// `wire::ip` when the branches merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Fields {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The IP payload within the packet: after the header (options
    /// included), up to the total length (Ethernet padding excluded).
    pub payload: Range<usize>,
}

/// The IPv4 header at the start of what a raw socket received. Pure, so
/// that it can be fuzzed.
pub fn parse_ipv4_header(packet: &[u8]) -> io::Result<Ipv4Fields> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("IPv4 header: {why}"));
    if packet.len() < 20 {
        return Err(bad("shorter than 20 bytes"));
    }
    if packet[0] >> 4 != 4 {
        return Err(bad("version is not 4"));
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if header_len < 20 || header_len > total_len {
        return Err(bad("bad header length"));
    }
    if total_len > packet.len() {
        return Err(bad("truncated: total length beyond what was received"));
    }
    Ok(Ipv4Fields {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        ttl: packet[8],
        payload: header_len..total_len,
    })
}

// The unsafe code of the agent: calls the safe crates lack (recvmmsg in
// `RecvBatch::fill` above, and these two).

/// IP_MULTICAST_IF by interface index. socket2 only offers the by-address
/// form, which needs an IPv4 address on the interface (a VRRP backup may
/// have none); Linux also accepts a `struct ip_mreqn` carrying the index.
fn set_multicast_if_index_v4(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: `fd` is an open socket for the duration of the borrow, and the
    // pointer and length describe `mreqn`, a live, initialised ip_mreqn that
    // the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&mreqn as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Hand the socket to the tokio reactor. tokio 1.54 made this unsafe (the
/// safe `AsyncFd::new` is deprecated) because a generic `AsRawFd` could
/// change its descriptor.
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: `socket` owns its descriptor, moves into the AsyncFd, and a
    // socket2::Socket never closes or swaps its descriptor while alive, so
    // it stays valid and the same for the AsyncFd's whole lifetime.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

fn context(ifname: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{ifname}: {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (IHL 6: one option word) carrying a 4-byte payload and
    /// 6 bytes of Ethernet padding.
    const PADDED: [u8; 34] = [
        0x46, 0xc0, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0xff, 0x70, 0x00, 0x00, 192, 168, 77, 11,
        224, 0, 0, 18, 0x94, 0x04, 0x00, 0x00, 0x31, 0x33, 0x01, 0x00, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn ipv4_header_fields_and_payload_cut_to_total_length() {
        let fields = parse_ipv4_header(&PADDED).unwrap();
        assert_eq!(fields.src, Ipv4Addr::new(192, 168, 77, 11));
        assert_eq!(fields.dst, VRRP_GROUP_V4);
        assert_eq!(fields.ttl, 255);
        assert_eq!(fields.payload, 24..28);
    }

    #[test]
    fn ipv4_header_rejects_short_input() {
        assert!(parse_ipv4_header(&PADDED[..19]).is_err());
    }

    #[test]
    fn ipv4_header_rejects_wrong_version() {
        let mut p = PADDED;
        p[0] = 0x65;
        assert!(parse_ipv4_header(&p).is_err());
    }

    #[test]
    fn ipv4_header_rejects_small_ihl() {
        let mut p = PADDED;
        p[0] = 0x44;
        assert!(parse_ipv4_header(&p).is_err());
    }

    #[test]
    fn ipv4_header_rejects_total_length_beyond_data() {
        let mut p = PADDED;
        p[3] = 35;
        assert!(parse_ipv4_header(&p).is_err());
    }

    #[test]
    fn ipv4_header_rejects_total_length_inside_header() {
        let mut p = PADDED;
        p[3] = 20;
        assert!(parse_ipv4_header(&p).is_err());
    }

    /// A control buffer as the kernel lays it out on a 64-bit host: one
    /// cmsghdr (size_t length, level, type) and its data.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(16 + data.len()).to_ne_bytes());
        b.extend_from_slice(&level.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(data);
        while b.len() % 8 != 0 {
            b.push(0);
        }
        b
    }

    fn timespec(sec: i64, nsec: i64) -> Vec<u8> {
        [sec.to_ne_bytes(), nsec.to_ne_bytes()].concat()
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn receive_stamp_is_found_after_other_control_messages() {
        let mut control = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        );
        control.extend(cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec(1_700_000_000, 123_456_789),
        ));
        let want = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(stamp_from_control(&control), Some(want));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn malformed_control_messages_give_no_stamp() {
        let good = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &timespec(5, 6));
        assert!(stamp_from_control(&good).is_some());
        for cut in 0..good.len() {
            assert_eq!(stamp_from_control(&good[..cut]), None, "cut at {cut}");
        }
        let mut long = good.clone();
        long[0] = 200; // a length beyond the buffer
        assert_eq!(stamp_from_control(&long), None);
        let mut short = good.clone();
        short[0] = 3; // shorter than its own header
        assert_eq!(stamp_from_control(&short), None);
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(stamp_from_control(&huge), None);
        let negative = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &timespec(-1, 0));
        assert_eq!(stamp_from_control(&negative), None);
        let bad_nsec = cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec(1, 1 << 40),
        );
        assert_eq!(stamp_from_control(&bad_nsec), None);
        let other = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS + 1, &timespec(5, 6));
        assert_eq!(stamp_from_control(&other), None);
    }

    /// The batch receive's IPv6 facts from the kernel's layout: hop limit,
    /// destination and stamp in any order; a hop limit out of range is no
    /// TTL; a cut or malformed list gives what came before the fault.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn ipv6_facts_from_raw_control_messages() {
        let dst: Ipv6Addr = "ff02::12".parse().unwrap();
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut info = dst.octets().to_vec();
        info.extend_from_slice(&3u32.to_ne_bytes());
        let mut control = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &timespec(7, 8));
        control.extend(cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info));
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        let r = received_v6_raw(Some(src), 40, &control);
        assert_eq!(r.src, IpAddr::V6(src));
        assert_eq!(r.dst, IpAddr::V6(dst));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.payload, 0..40);
        assert_eq!(r.stamp, Some(SystemTime::UNIX_EPOCH + Duration::new(7, 8)));
        let over = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &256i32.to_ne_bytes(),
        );
        assert_eq!(received_v6_raw(Some(src), 0, &over).ttl, 0);
        // Cut anywhere: no panic, and the hop limit (the last message, its
        // 20 bytes from 72 on, then padding) only when it is whole.
        for cut in 0..control.len() {
            let r = received_v6_raw(None, 0, &control[..cut]);
            assert_eq!(r.src, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            assert_eq!(r.ttl == 255, cut >= 72 + 20, "cut at {cut}: {r:?}");
        }
        let mut broken = control.clone();
        broken[0] = 255; // the first length runs past the buffer
        let r = received_v6_raw(Some(src), 0, &broken);
        assert_eq!(
            (r.dst, r.ttl, r.stamp),
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0, None)
        );
    }

    #[test]
    fn arrival_is_the_stamp_on_the_monotonic_clock() {
        let clocks = Clocks::now();
        let stamp = clocks.wall - Duration::from_millis(3);
        assert_eq!(
            clocks.arrival(Some(stamp)),
            clocks.mono - Duration::from_millis(3)
        );
        assert_eq!(clocks.arrival(None), clocks.mono, "no stamp: now");
    }

    #[test]
    fn arrival_is_clamped_to_now_and_the_oldest_believable() {
        let clocks = Clocks::now();
        let future = clocks.wall + Duration::from_secs(5);
        assert_eq!(clocks.arrival(Some(future)), clocks.mono);
        let ancient = clocks.wall - Duration::from_secs(3600);
        assert_eq!(clocks.arrival(Some(ancient)), clocks.mono - MAX_RX_AGE);
        assert_eq!(
            clocks.arrival(Some(SystemTime::UNIX_EPOCH)),
            clocks.mono - MAX_RX_AGE
        );
    }

    #[test]
    fn stamps_are_ignored_for_the_batch_after_the_realtime_clock_was_set() {
        let mut clock = ArrivalClock::default();
        let t0 = Clocks::now();
        let a = clock.batch_at(t0);
        let stamp = t0.wall - Duration::from_millis(2);
        assert_eq!(a.of(Some(stamp)), t0.mono - Duration::from_millis(2));
        // 10 s later, slewed by 400 ppm: still trusted.
        let slewed = Clocks {
            mono: t0.mono + Duration::from_secs(10),
            wall: t0.wall + Duration::from_secs(10) + Duration::from_millis(4),
        };
        let b = clock.batch_at(slewed);
        let stamp = slewed.wall - Duration::from_millis(2);
        assert_eq!(b.of(Some(stamp)), slewed.mono - Duration::from_millis(2));
        // Then set back an hour: this batch is timed by its reading.
        let stepped = Clocks {
            mono: slewed.mono + Duration::from_millis(10),
            wall: slewed.wall - Duration::from_secs(3600),
        };
        let c = clock.batch_at(stepped);
        assert_eq!(
            c.of(Some(stepped.wall - Duration::from_millis(2))),
            stepped.mono
        );
        // And forward by 50 ms.
        let forward = Clocks {
            mono: stepped.mono + Duration::from_millis(10),
            wall: stepped.wall + Duration::from_millis(60),
        };
        let d = clock.batch_at(forward);
        assert_eq!(
            d.of(Some(forward.wall - Duration::from_millis(2))),
            forward.mono
        );
        // The next batch trusts its stamps again.
        let after = Clocks {
            mono: forward.mono + Duration::from_millis(10),
            wall: forward.wall + Duration::from_millis(10),
        };
        let e = clock.batch_at(after);
        assert_eq!(
            e.of(Some(after.wall - Duration::from_millis(2))),
            after.mono - Duration::from_millis(2)
        );
    }
}
