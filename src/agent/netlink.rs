//! Route netlink: virtual addresses on and off (with their label,
//! broadcast and scope), routes and policy rules on and off, interface
//! facts, and a watch on links, addresses and rule deletions.
//!
//! This module owns every rtnetlink conversation of the agent. Changes are
//! idempotent (adding an address that is there, or removing one that is not,
//! succeeds), so a restarted or reloaded daemon can simply re-apply its
//! intent. The watch turns kernel notifications into [`NetEvent`]s on a
//! tokio channel; a link counts as up only when it is administratively up
//! *and* running (a veth whose peer went down is up but NO-CARRIER, and
//! cannot carry VRRP).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use futures_util::stream::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{AddressMessageBuilder, Handle, LinkMacVlan, LinkUnspec, MulticastGroup};
use tokio::sync::mpsc;

use crate::config::model::{Family, Route, RouteKind, Rule, RuleKind, Vip};
use crate::config::route::{scope_number, PROTO_KEEPALIVED};

/// A failed netlink conversation, with the operator's context.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[from] io::Error),
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    #[error("{context}: {source}")]
    Request {
        context: String,
        source: rtnetlink::Error,
    },
}

impl NetlinkError {
    fn request(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetlinkError::Request {
            context: context.into(),
            source,
        }
    }
}

/// The errno of a kernel NACK, if that is what `e` is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

/// What the agent needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The hardware address, if it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up and running (carrier present, operstate up).
    pub up: bool,
    /// Administratively up (IFF_UP), carrier or not.
    pub admin_up: bool,
    pub mtu: u32,
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressInfo {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4: the address is secondary in its subnet.
    pub secondary: bool,
    /// IPv6: duplicate address detection has not finished yet.
    pub tentative: bool,
    /// IPv6: duplicate address detection found the address in use.
    pub dad_failed: bool,
    /// Scope link (fe80::/10, 169.254/16 and the like).
    pub link_scope: bool,
    /// IPv4 label (`eth0:vip`), if any.
    pub label: Option<String>,
}

/// An interface as VRRP sees it: the link plus the addresses it sends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub link: LinkInfo,
    /// The first primary IPv4 address (the kernel's dump order), the source
    /// keepalived uses for IPv4 adverts.
    pub primary_v4: Option<Ipv4Addr>,
    /// The first usable (not tentative, not DAD-failed) link-local address,
    /// the source VRRP over IPv6 requires.
    pub link_local_v6: Option<Ipv6Addr>,
}

/// A handle on one rtnetlink connection. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Open a connection and spawn its driver on the current tokio runtime
    /// (so it must be called inside one). The driver ends when the last
    /// clone of the `Netlink` is dropped.
    pub fn new() -> Result<Netlink, NetlinkError> {
        let (connection, handle, _unsolicited) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// Add `addr/prefix_len` to interface `ifindex`, for good. Already
    /// there is success. IPv6 addresses skip duplicate address detection (a
    /// VIP moving between nodes must be usable at once, and VRRP already
    /// decides who owns it); `label` applies to IPv4 only (the kernel has no
    /// IPv6 labels) and must start with the interface name.
    pub async fn add_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        label: Option<&str>,
    ) -> Result<(), NetlinkError> {
        self.add_address_leased(ifindex, addr, prefix_len, label, Duration::ZERO)
            .await
    }

    /// [`Netlink::add_address`] with a valid and preferred lifetime of
    /// `lease` (whole seconds, rounded up; zero: forever). The request is a
    /// replace: an address already there keeps existing (no delete is
    /// seen on the address watch) and takes the new lifetime, which is how
    /// a lease is refreshed. The kernel removes the address by itself once
    /// the lifetime runs out (IPv4: within about a quarter second after,
    /// its lifetime check rounds to whole seconds). Preferred equals valid:
    /// an IPv6 address past its preferred lifetime would be deprecated and
    /// not chosen as a source.
    pub async fn add_address_leased(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        label: Option<&str>,
        lease: Duration,
    ) -> Result<(), NetlinkError> {
        let extras = AddressExtras {
            label,
            ..AddressExtras::default()
        };
        self.add_address_with(ifindex, addr, prefix_len, &extras, lease)
            .await
    }

    /// A virtual address with its `label`, `brd` and `scope` (as
    /// [`Netlink::add_address_leased`]).
    pub async fn add_vip(
        &self,
        ifindex: u32,
        vip: &Vip,
        lease: Duration,
        metric: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let extras = vip_extras(vip, metric);
        self.add_address_with(ifindex, vip.addr, vip.prefix_len, &extras, lease)
            .await
    }

    async fn add_address_with(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        extras: &AddressExtras<'_>,
        lease: Duration,
    ) -> Result<(), NetlinkError> {
        let mut request = self
            .handle
            .address()
            .add(ifindex, addr, prefix_len)
            .replace();
        *request.message_mut() = address_message(ifindex, addr, prefix_len, extras, lease);
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(NetlinkError::request(
                format!("add {addr}/{prefix_len} to interface {ifindex}"),
                e,
            )),
        }
    }

    /// Remove `addr/prefix_len` from interface `ifindex`. Already gone (or
    /// the interface gone) is success.
    ///
    /// Beware: removing a *primary* IPv4 address also removes the
    /// secondaries of its subnet unless the interface has
    /// `net.ipv4.conf.<if>.promote_secondaries=1` (keepalived's
    /// `promote_secondaries`).
    pub async fn delete_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let message = host_message(ifindex, addr, prefix_len);
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV | libc::ESRCH)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(NetlinkError::request(
                format!("delete {addr}/{prefix_len} from interface {ifindex}"),
                e,
            )),
        }
    }

    /// Whether `addr` (any prefix length) is on interface `ifindex`.
    pub async fn has_address(&self, ifindex: u32, addr: IpAddr) -> Result<bool, NetlinkError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .iter()
            .any(|a| a.addr == addr))
    }

    /// Every IPv4 and IPv6 address of interface `ifindex`, in the kernel's
    /// order (IPv4 primaries before their secondaries).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<AddressInfo>, NetlinkError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|e| {
                NetlinkError::request(format!("list addresses of interface {ifindex}"), e)
            })?;
        Ok(messages.iter().filter_map(address_info).collect())
    }

    /// The link called `name`.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        let request = self.handle.link().get().match_name(name.to_owned());
        first_link(request.execute(), name).await
    }

    /// The link with index `index`.
    pub async fn link_by_index(&self, index: u32) -> Result<LinkInfo, NetlinkError> {
        let request = self.handle.link().get().match_index(index);
        first_link(request.execute(), &format!("index {index}")).await
    }

    /// The link called `name` with its VRRP source addresses.
    pub async fn interface(&self, name: &str) -> Result<Interface, NetlinkError> {
        let link = self.link_by_name(name).await?;
        let addresses = self.addresses(link.index).await?;
        let primary_v4 = addresses.iter().find_map(|a| match a.addr {
            IpAddr::V4(v4) if !a.secondary => Some(v4),
            _ => None,
        });
        let link_local_v6 = addresses.iter().find_map(|a| match a.addr {
            IpAddr::V6(v6) if is_link_local_v6(&v6) && !a.tentative && !a.dad_failed => Some(v6),
            _ => None,
        });
        Ok(Interface {
            link,
            primary_v4,
            link_local_v6,
        })
    }
}

/// What kind of link a name is, for `use_vmac`: a macvlan (with the MAC
/// and the lower link it sits on) or anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKind {
    pub link: LinkInfo,
    pub macvlan: bool,
    /// IFLA_LINK: the lower link's index, for stacked links.
    pub lower: Option<u32>,
}

impl Netlink {
    /// The link called `name` and its kind; None if there is none.
    pub async fn link_kind(&self, name: &str) -> Result<Option<LinkKind>, NetlinkError> {
        let request = self.handle.link().get().match_name(name.to_owned());
        let mut stream = std::pin::pin!(request.execute());
        let message = match stream.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) if errno(&e) == Some(libc::ENODEV) => return Ok(None),
            Some(Err(e)) => return Err(NetlinkError::request(format!("get link {name}"), e)),
            None => return Ok(None),
        };
        let mut kind = LinkKind {
            link: link_info(&message),
            macvlan: false,
            lower: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::Link(index) => kind.lower = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    kind.macvlan = infos
                        .iter()
                        .any(|i| matches!(i, NlLinkInfo::Kind(InfoKind::MacVlan)));
                }
                _ => {}
            }
        }
        Ok(Some(kind))
    }

    /// Create macvlan `name` on `lower` with `mac`, in private mode, left
    /// down (the caller sets its sysctls before bringing it up).
    pub async fn add_macvlan(
        &self,
        name: &str,
        lower: u32,
        mac: [u8; 6],
    ) -> Result<(), NetlinkError> {
        let message = LinkMacVlan::new(name, lower, MacVlanMode::Private)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| NetlinkError::request(format!("create macvlan {name}"), e))
    }

    /// Bring link `index` administratively up.
    pub async fn set_link_up(&self, index: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .change(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| NetlinkError::request(format!("set link {index} up"), e))
    }

    /// Delete link `index`; already gone is success.
    pub async fn delete_link(&self, index: u32) -> Result<(), NetlinkError> {
        match self.handle.link().del(index).execute().await {
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(|e| NetlinkError::request(format!("delete link {index}"), e)),
        }
    }
}

/// What an address may carry beside its prefix (IPv4 only for label and
/// broadcast).
#[derive(Debug, Default, Clone, Copy)]
struct AddressExtras<'a> {
    label: Option<&'a str>,
    broadcast: Option<Ipv4Addr>,
    scope: Option<u8>,
    /// The prefix route's metric (IFA_RT_PRIORITY): zebra gives the
    /// connected route this metric, bgpd announces it as the MED.
    metric: Option<u32>,
}

/// The bare message about `addr/prefix_len` on `ifindex`.
fn host_message(ifindex: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    match addr {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(ifindex)
            .address(a, prefix_len)
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(ifindex)
            .address(a, prefix_len)
            .build(),
    }
}

/// The message that adds `addr/prefix_len` to `ifindex` (sent as a
/// replace: see [`Netlink::add_address_leased`]) with `extras` and `lease`.
fn address_message(
    ifindex: u32,
    addr: IpAddr,
    prefix_len: u8,
    extras: &AddressExtras<'_>,
    lease: Duration,
) -> AddressMessage {
    let label = extras.label;
    let mut message = host_message(ifindex, addr, prefix_len);
    if let Some(seconds) = lease_seconds(lease) {
        let mut info = CacheInfo::default();
        info.ifa_valid = seconds;
        info.ifa_preferred = seconds;
        message.attributes.push(AddressAttribute::CacheInfo(info));
    }
    match addr {
        IpAddr::V6(_) => {
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        IpAddr::V4(_) => {
            if let Some(label) = label {
                message
                    .attributes
                    .push(AddressAttribute::Label(label.to_owned()));
            }
            // The builder puts the subnet's broadcast (host bits set);
            // `ip address add` and keepalived set one only when told
            // (`brd`), and so does baton (a second one is EINVAL).
            message
                .attributes
                .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
            if let Some(brd) = extras.broadcast {
                message.attributes.push(AddressAttribute::Broadcast(brd));
            }
        }
    }
    if let Some(scope) = extras.scope {
        message.header.scope = AddressScope::from(scope);
    }
    if let Some(metric) = extras.metric {
        message
            .attributes
            .push(AddressAttribute::RoutePriority(metric));
    }
    message
}

/// The extras of a virtual address.
fn vip_extras(vip: &Vip, metric: Option<u32>) -> AddressExtras<'_> {
    AddressExtras {
        metric,
        label: vip.label.as_deref(),
        broadcast: match vip.brd {
            Some(IpAddr::V4(b)) => Some(b),
            _ => None,
        },
        scope: vip.scope.as_deref().and_then(scope_number),
    }
}

/// Lease refreshes of many virtual addresses in one netlink write.
///
/// The masters' lease refreshes come in groups (the node pulls nearly due
/// ones along), and a group of hundreds sent one request and one
/// acknowledgement at a time cost more than the adverts: each request is a
/// round trip through the connection task, and each wakes the kernel's
/// lifetime worker, which preempts the daemon. Here a group is one
/// `sendmsg` of many replace requests without acknowledgements, on a
/// socket of its own: the kernel handles them all within the call and
/// answers only the ones that failed, so reading the errors back never
/// waits.
pub struct LeaseRefresher {
    socket: rtnetlink::sys::Socket,
    buf: Vec<u8>,
    /// The requests in `buf`: sequence number and what it refreshes.
    queued: Vec<(u32, String)>,
    /// Failed requests of writes made since the last [`flush`](Self::flush).
    failures: Vec<RefreshFailure>,
    seq: u32,
}

/// A failed refresh: what it was and why.
#[derive(Debug)]
pub struct RefreshFailure {
    pub what: String,
    pub error: io::Error,
}

impl LeaseRefresher {
    /// Requests per write at most: well under the socket's send buffer.
    const WRITE_BYTES: usize = 32 * 1024;

    pub fn new() -> io::Result<LeaseRefresher> {
        let mut socket = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&rtnetlink::sys::SocketAddr::new(0, 0))?;
        socket.set_non_blocking(true)?;
        Ok(LeaseRefresher {
            socket,
            buf: Vec::with_capacity(Self::WRITE_BYTES),
            queued: Vec::new(),
            failures: Vec::new(),
            seq: 0,
        })
    }

    /// Queue a refresh of `vip` on `ifindex` with `lease` and `metric` (as
    /// [`Netlink::add_vip`]); `what` names it in a failure. Writes when
    /// the queue is full.
    pub fn queue(
        &mut self,
        ifindex: u32,
        vip: &Vip,
        lease: Duration,
        metric: Option<u32>,
        what: String,
    ) {
        let extras = vip_extras(vip, metric);
        let message = address_message(ifindex, vip.addr, vip.prefix_len, &extras, lease);
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewAddress(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_REPLACE | NLM_F_CREATE;
        self.seq = self.seq.wrapping_add(1);
        request.header.sequence_number = self.seq;
        request.finalize();
        let len = request.buffer_len();
        if self.buf.len() + len > Self::WRITE_BYTES {
            self.write();
        }
        let at = self.buf.len();
        self.buf.resize(at + len, 0);
        request.serialize(&mut self.buf[at..]);
        self.queued.push((self.seq, what));
    }

    /// Write what is queued; the requests that failed, since the last
    /// flush (none when nothing was queued).
    pub fn flush(&mut self) -> Vec<RefreshFailure> {
        self.write();
        std::mem::take(&mut self.failures)
    }

    /// Write what is queued and collect the kernel's answers to the
    /// requests that failed.
    fn write(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let sent = self.socket.send(&self.buf, 0);
        self.buf.clear();
        let queued = std::mem::take(&mut self.queued);
        if let Err(error) = sent {
            self.failures
                .extend(queued.into_iter().map(|(_, what)| RefreshFailure {
                    what,
                    error: io::Error::new(error.kind(), error.to_string()),
                }));
            return;
        }
        // The kernel handled every request within the send: its error
        // answers are all queued by now.
        let mut answer = [0u8; 4096];
        loop {
            let n = match self.socket.recv(&mut &mut answer[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let answer = &answer[..n.min(answer.len())];
            self.failures.extend(refresh_failures(answer, &queued));
        }
    }
}

/// The failures a datagram of error answers reports, by the sequence
/// numbers of the `queued` requests.
fn refresh_failures(mut datagram: &[u8], queued: &[(u32, String)]) -> Vec<RefreshFailure> {
    let mut out = Vec::new();
    while datagram.len() >= 16 {
        let len = u32::from_ne_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]) as usize;
        if len < 16 || len > datagram.len() {
            break;
        }
        if let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[..len]) {
            if let NetlinkPayload::Error(e) = &message.payload {
                if e.code.is_some() {
                    let seq = message.header.sequence_number;
                    let what = queued
                        .iter()
                        .find(|(s, _)| *s == seq)
                        .map_or_else(|| format!("request {seq}"), |(_, w)| w.clone());
                    out.push(RefreshFailure {
                        what,
                        error: e.to_io(),
                    });
                }
            }
        }
        datagram = &datagram[len.next_multiple_of(4).min(datagram.len())..];
    }
    out
}

impl Netlink {
    /// Add `route`, out of interface `oif` when it names a device. Already
    /// there (the same destination, table, metric...) is success.
    pub async fn add_route(&self, route: &Route, oif: Option<u32>) -> Result<(), NetlinkError> {
        let message = route_message(route, oif, false);
        match self.handle.route().add(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(NetlinkError::request(format!("add route {route}"), e)),
        }
    }

    /// Remove `route`. Already gone is success.
    pub async fn delete_route(&self, route: &Route, oif: Option<u32>) -> Result<(), NetlinkError> {
        let message = route_message(route, oif, true);
        match self.handle.route().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)) => {
                Ok(())
            }
            Err(e) => Err(NetlinkError::request(format!("delete route {route}"), e)),
        }
    }

    /// Add policy rule `rule`. Already there is success.
    pub async fn add_rule(&self, rule: &Rule) -> Result<(), NetlinkError> {
        let mut request = self.handle.rule().add();
        *request.message_mut() = rule_message(rule);
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(NetlinkError::request(format!("add rule {rule}"), e)),
        }
    }

    /// Remove policy rule `rule`. Already gone is success.
    pub async fn delete_rule(&self, rule: &Rule) -> Result<(), NetlinkError> {
        match self.handle.rule().del(rule_message(rule)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ESRCH)) => Ok(()),
            Err(e) => Err(NetlinkError::request(format!("delete rule {rule}"), e)),
        }
    }
}

fn family(f: Family) -> AddressFamily {
    match f {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

/// A table id as the 8-bit header field takes it: ids past 255 travel in
/// the table attribute only (the header says "unspecified"), as `ip` does.
fn header_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// The kernel's message for `route`, as `ip route add/del` builds it.
fn route_message(route: &Route, oif: Option<u32>, delete: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    let table = route.table.unwrap_or(u32::from(RouteHeader::RT_TABLE_MAIN));
    m.header.address_family = family(route.family());
    m.header.destination_prefix_length = route.dst.len;
    m.header.table = header_table(table);
    m.header.protocol = RouteProtocol::from(route.protocol.unwrap_or(PROTO_KEEPALIVED));
    // A delete without a scope matches any (ip route del does the same).
    m.header.scope = match (delete, route.scope) {
        (true, None) => RouteScope::NoWhere,
        _ => RouteScope::from(route.effective_scope()),
    };
    m.header.kind = match route.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
        RouteKind::Throw => RouteType::Throw,
    };
    if route.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    if route.dst.len > 0 {
        m.attributes
            .push(RouteAttribute::Destination(route.dst.addr.into()));
    }
    m.attributes.push(RouteAttribute::Table(table));
    if let Some(via) = route.via {
        m.attributes.push(RouteAttribute::Gateway(via.into()));
    }
    if let Some(src) = route.src {
        m.attributes.push(RouteAttribute::PrefSource(src.into()));
    }
    if let Some(index) = oif {
        m.attributes.push(RouteAttribute::Oif(index));
    }
    if let Some(metric) = route.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    m
}

/// The kernel's message for `rule`, as `ip rule add/del` builds it.
fn rule_message(rule: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(rule.family);
    m.header.action = match rule.kind {
        RuleKind::Table => RuleAction::ToTable,
        RuleKind::Blackhole => RuleAction::Blackhole,
        RuleKind::Unreachable => RuleAction::Unreachable,
        RuleKind::Prohibit => RuleAction::Prohibit,
    };
    if let Some(p) = rule.from {
        m.header.src_len = p.len;
        if p.len > 0 {
            m.attributes.push(RuleAttribute::Source(p.addr));
        }
    }
    if let Some(p) = rule.to {
        m.header.dst_len = p.len;
        if p.len > 0 {
            m.attributes.push(RuleAttribute::Destination(p.addr));
        }
    }
    if rule.kind == RuleKind::Table {
        let table = rule.table.unwrap_or(u32::from(RouteHeader::RT_TABLE_MAIN));
        m.header.table = header_table(table);
        m.attributes.push(RuleAttribute::Table(table));
    }
    if let Some(p) = rule.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(i) = &rule.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &rule.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = rule.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(mask) = mask {
            m.attributes.push(RuleAttribute::FwMask(mask));
        }
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(
            rule.protocol.unwrap_or(PROTO_KEEPALIVED),
        )));
    m
}

/// A lease in the kernel's unit, whole seconds rounded up; None for zero
/// (forever, the kernel's default when no lifetime is given). Never the
/// kernel's "infinity" (u32::MAX) by accident.
fn lease_seconds(lease: Duration) -> Option<u32> {
    if lease.is_zero() {
        return None;
    }
    let secs = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
    Some(
        u32::try_from(secs)
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1),
    )
}

async fn first_link(
    stream: impl futures_util::Stream<Item = Result<LinkMessage, rtnetlink::Error>>,
    what: &str,
) -> Result<LinkInfo, NetlinkError> {
    let mut stream = std::pin::pin!(stream);
    match stream.next().await {
        Some(Ok(message)) => Ok(link_info(&message)),
        Some(Err(e)) if errno(&e) == Some(libc::ENODEV) => {
            Err(NetlinkError::NoSuchInterface(what.to_owned()))
        }
        Some(Err(e)) => Err(NetlinkError::request(format!("get link {what}"), e)),
        None => Err(NetlinkError::NoSuchInterface(what.to_owned())),
    }
}

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn link_info(message: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: message.header.index,
        name: String::new(),
        mac: None,
        admin_up: message.header.flags.contains(LinkFlags::Up),
        // IFF_RUNNING is the kernel's summary of operstate: set only for
        // UP or UNKNOWN, so NO-CARRIER / LOWERLAYERDOWN / DORMANT clear it.
        up: message
            .header
            .flags
            .contains(LinkFlags::Up | LinkFlags::Running),
        mtu: 0,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::Address(mac) => info.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            _ => {}
        }
    }
    info
}

fn address_info(message: &AddressMessage) -> Option<AddressInfo> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    // IFA_FLAGS (32 bits) supersedes the 8-bit header field when present.
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and the only one given for most IPv6 addresses.
    let addr = local.or(address)?;
    Some(AddressInfo {
        ifindex: message.header.index,
        addr,
        prefix_len: message.header.prefix_len,
        secondary: flags.contains(AddressFlags::Secondary),
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
        link_scope: message.header.scope == AddressScope::Link,
        label,
    })
}

/// A link changed state (or first seen by the watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    pub name: String,
    /// Administratively up and running; false also when the link is removed.
    pub up: bool,
    /// The link was deleted.
    pub removed: bool,
}

/// An address appeared on or disappeared from an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEvent {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// What the watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    Link(LinkEvent),
    AddressAdded(AddressEvent),
    AddressRemoved(AddressEvent),
    /// A policy rule was deleted: its family and priority (None: the
    /// kernel's message had none).
    RuleRemoved {
        family: Family,
        priority: Option<u32>,
    },
    /// The kernel dropped notifications (socket buffer overrun): every link
    /// and address the receiver cares about must be read again.
    Overrun,
}

/// Receive buffer of the watch socket: a burst of thousands of VIP changes
/// must not overrun it.
const WATCH_RCVBUF: usize = 4 << 20;

/// Subscribe to link, IPv4 and IPv6 address and rule notifications and
/// deliver them on the returned channel. Must be called inside a tokio
/// runtime; the watch stops when the receiver is dropped. Without
/// `address_adds` the kernel drops every new-address notification before
/// it reaches the socket (a socket filter): a master refreshing hundreds
/// of leases would otherwise read and parse one for each refresh, and
/// only `--address-monitoring` logs them.
///
/// Link events are de-duplicated: one is sent when an interface is first
/// heard of and then whenever its `up` changes (the kernel sends several
/// messages per change). To avoid missing a change, subscribe first, then
/// read the current state with [`Netlink::link_by_name`].
pub fn watch(address_adds: bool) -> Result<mpsc::UnboundedReceiver<NetEvent>, NetlinkError> {
    let (mut connection, handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Rule,
    ])?;
    connection
        .socket_mut()
        .socket_mut()
        .set_rx_buf_sz(WATCH_RCVBUF)?;
    if !address_adds {
        let socket = connection.socket_mut().socket_mut();
        socket2::SockRef::from(&*socket).attach_filter(&drop_message_type(libc::RTM_NEWADDR))?;
    }
    let (events, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The handle keeps the connection alive as long as the forwarder.
        let _handle = handle;
        let forward = async {
            let mut link_up: HashMap<u32, bool> = HashMap::new();
            while let Some((message, _)) = messages.next().await {
                for event in translate(message, &mut link_up) {
                    if events.send(event).is_err() {
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = connection => {}
            _ = forward => {}
            _ = events.closed() => {}
        }
    });
    Ok(receiver)
}

/// A socket filter that drops every netlink datagram whose (first)
/// message is of type `kind` and keeps the rest. The kernel sends each
/// notification in a datagram of its own.
fn drop_message_type(kind: u16) -> [socket2::SockFilter; 4] {
    // Classic BPF loads in network byte order; the type field is in the
    // host's.
    let kind = u32::from(u16::from_be_bytes(kind.to_ne_bytes()));
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    [
        // The type: 4 bytes into the header (after the length).
        socket2::SockFilter::new(LD_H_ABS, 0, 0, 4),
        socket2::SockFilter::new(JEQ_K, 0, 1, kind),
        socket2::SockFilter::new(RET_K, 0, 0, 0),
        socket2::SockFilter::new(RET_K, 0, 0, u32::MAX),
    ]
}

fn translate(
    message: NetlinkMessage<RouteNetlinkMessage>,
    link_up: &mut HashMap<u32, bool>,
) -> Vec<NetEvent> {
    match message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
            let info = link_info(&link);
            if link_up.insert(info.index, info.up) == Some(info.up) {
                return Vec::new();
            }
            vec![NetEvent::Link(LinkEvent {
                ifindex: info.index,
                name: info.name,
                up: info.up,
                removed: false,
            })]
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            let info = link_info(&link);
            link_up.remove(&info.index);
            vec![NetEvent::Link(LinkEvent {
                ifindex: info.index,
                name: info.name,
                up: false,
                removed: true,
            })]
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => address_info(&a)
            .map(|a| NetEvent::AddressAdded(address_event(a)))
            .into_iter()
            .collect(),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => address_info(&a)
            .map(|a| NetEvent::AddressRemoved(address_event(a)))
            .into_iter()
            .collect(),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRule(rule)) => {
            let family = match rule.header.family {
                AddressFamily::Inet6 => Family::V6,
                _ => Family::V4,
            };
            let priority = rule.attributes.iter().find_map(|a| match a {
                RuleAttribute::Priority(p) => Some(*p),
                _ => None,
            });
            vec![NetEvent::RuleRemoved { family, priority }]
        }
        NetlinkPayload::Overrun(_) => {
            link_up.clear();
            vec![NetEvent::Overrun]
        }
        _ => Vec::new(),
    }
}

fn address_event(a: AddressInfo) -> AddressEvent {
    AddressEvent {
        ifindex: a.ifindex,
        addr: a.addr,
        prefix_len: a.prefix_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, flags: LinkFlags) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = flags;
        message
            .attributes
            .push(LinkAttribute::IfName("eth0".into()));
        NetlinkMessage::from(RouteNetlinkMessage::NewLink(message))
    }

    #[test]
    fn link_up_needs_running_and_events_are_deduplicated() {
        let mut state = HashMap::new();
        let up = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
        let no_carrier = LinkFlags::Up;
        let first = translate(link(3, up), &mut state);
        assert!(matches!(
            &first[..],
            [NetEvent::Link(LinkEvent {
                up: true,
                ifindex: 3,
                ..
            })]
        ));
        assert!(translate(link(3, up), &mut state).is_empty());
        let down = translate(link(3, no_carrier), &mut state);
        assert!(matches!(
            &down[..],
            [NetEvent::Link(LinkEvent { up: false, .. })]
        ));
        assert!(translate(link(3, LinkFlags::empty()), &mut state).is_empty());
    }

    #[test]
    fn leases_are_whole_seconds_rounded_up_and_never_infinite() {
        assert_eq!(lease_seconds(Duration::ZERO), None);
        assert_eq!(lease_seconds(Duration::from_millis(1)), Some(1));
        assert_eq!(lease_seconds(Duration::from_secs(6)), Some(6));
        assert_eq!(lease_seconds(Duration::from_millis(6001)), Some(7));
        assert_eq!(
            lease_seconds(Duration::from_secs(1 << 40)),
            Some(u32::MAX - 1)
        );
    }

    #[test]
    fn ipv6_address_flags_come_from_ifa_flags() {
        let mut message = AddressMessageBuilder::<Ipv6Addr>::new()
            .index(2)
            .address("fe80::1".parse().unwrap(), 64)
            .build();
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Tentative));
        let info = address_info(&message).unwrap();
        assert!(info.tentative);
        assert_eq!(info.addr, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(info.prefix_len, 64);
    }
}
