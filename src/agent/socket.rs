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

use std::io::{self, IoSlice, IoSliceMut, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

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
            let result = guard.try_io(|io| {
                if self.v6 {
                    recv_v6(io.get_ref().as_fd(), buf)
                } else {
                    recv_v4(io.get_ref(), buf).map(|mut r| {
                        if self.ah {
                            r.payload.start = 0;
                        }
                        r
                    })
                }
            });
            match result {
                Ok(received) => {
                    return received.map_err(|e| context(&self.ifname, "receive", e));
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Receive up to [`RecvBatch::CAPACITY`] IPv4 datagrams (this is an
    /// IPv4 socket) in one `recvmmsg`; returns how many, at least one.
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
            let result = guard.try_io(|io| self.send_now(io.get_ref().as_raw_fd(), payload, dst));
            match result {
                Ok(sent) => {
                    return sent.map_err(|e| context(&self.ifname, &format!("send to {dst}"), e));
                }
                Err(_would_block) => continue,
            }
        }
    }

    fn send_now(&self, fd: RawFd, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let iov = [IoSlice::new(payload)];
        let sent = match (dst, self.source) {
            (IpAddr::V4(dst), source) if !self.v6 => {
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                let info;
                let cmsgs: &[ControlMessage] = match source {
                    Some(IpAddr::V4(src)) => {
                        info = libc::in_pktinfo {
                            ipi_ifindex: self.ifindex as libc::c_int,
                            ipi_spec_dst: libc::in_addr {
                                s_addr: u32::from(src).to_be(),
                            },
                            ipi_addr: libc::in_addr { s_addr: 0 },
                        };
                        &[ControlMessage::Ipv4PacketInfo(&info)]
                    }
                    _ => &[],
                };
                sendmsg(fd, &iov, cmsgs, MsgFlags::empty(), Some(&to))
            }
            (IpAddr::V6(dst), source) if self.v6 => {
                // The scope is needed for link-local peers and the group;
                // the kernel ignores it for global destinations.
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
                let info;
                let cmsgs: &[ControlMessage] = match source {
                    Some(IpAddr::V6(src)) => {
                        info = libc::in6_pktinfo {
                            ipi6_addr: libc::in6_addr {
                                s6_addr: src.octets(),
                            },
                            ipi6_ifindex: self.ifindex,
                        };
                        &[ControlMessage::Ipv6PacketInfo(&info)]
                    }
                    _ => &[],
                };
                sendmsg(fd, &iov, cmsgs, MsgFlags::empty(), Some(&to))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "destination is not of the socket's family",
                ))
            }
        };
        let sent = sent.map_err(io::Error::from)?;
        if sent != payload.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                payload.len()
            )));
        }
        Ok(())
    }
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

/// An IPv4 raw socket hands over the whole IP datagram.
fn recv_v4(socket: &Socket, buf: &mut [u8]) -> io::Result<Received> {
    let len = (&*socket).read(buf)?;
    let header = parse_ipv4_header(&buf[..len])?;
    Ok(Received {
        src: IpAddr::V4(header.src),
        dst: IpAddr::V4(header.dst),
        ttl: header.ttl,
        payload: header.payload,
    })
}

/// Room for a batch of IPv4 datagrams, filled by one `recvmmsg` (the
/// receive path at hundreds of instances: one system call for many
/// adverts, and no allocation per packet). Each slot holds a whole
/// datagram, as the one-packet receive does; the memory is touched only
/// as far as datagrams reach, a page or so per slot for adverts.
pub struct RecvBatch {
    slots: Vec<u8>,
    lens: [usize; Self::CAPACITY],
    count: usize,
    ah: bool,
}

impl RecvBatch {
    pub const CAPACITY: usize = 16;
    const SLOT: usize = 65536;

    /// Buffers for an IPv4 socket; `ah`: an AH socket, whose datagrams are
    /// handed over whole.
    pub fn new(ah: bool) -> RecvBatch {
        RecvBatch {
            slots: vec![0u8; Self::CAPACITY * Self::SLOT],
            lens: [0; Self::CAPACITY],
            count: 0,
            ah,
        }
    }

    fn fill(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: an all-zero iovec/mmsghdr is a valid value (null pointers,
        // zero lengths) for these plain C structs.
        let mut iov: [libc::iovec; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        for (k, chunk) in self.slots.chunks_exact_mut(Self::SLOT).enumerate() {
            iov[k].iov_base = chunk.as_mut_ptr().cast();
            iov[k].iov_len = chunk.len();
            hdrs[k].msg_hdr.msg_iov = &mut iov[k];
            hdrs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `fd` is an open socket for the duration of the borrow;
        // every header points at one iovec describing a distinct
        // `Self::SLOT`-byte slot of `self.slots`, all live and exclusively
        // borrowed here; no name or control buffer is passed (null, 0); the
        // kernel writes at most `iov_len` bytes per slot and the lengths
        // into `hdrs`.
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
        for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
            // A datagram longer than its slot (which no IPv4 datagram is)
            // is cut at the slot; its header's length then fails the parse.
            *len = (h.msg_len as usize).min(Self::SLOT);
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
        });
        Some((data, received))
    }
}

/// An IPv6 raw socket hands over the payload only; the hop limit and the
/// destination come as control messages.
fn recv_v6(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // Room for IPV6_PKTINFO and IPV6_HOPLIMIT, and then some.
    let mut control = [0u8; 128];
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
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("packet truncated: buffer of {capacity} bytes too small"),
        ));
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
    let src = IpAddr::V6(src.unwrap_or(Ipv6Addr::UNSPECIFIED));
    let mut dst = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mut ttl = 0;
    for cmsg in cmsgs {
        match cmsg {
            ControlMessageOwned::Ipv6HopLimit(hops) => ttl = u8::try_from(hops).unwrap_or(0),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr));
            }
            _ => {}
        }
    }
    Received {
        src,
        dst,
        ttl,
        payload: 0..len,
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
}
