//! VRRP v2 (RFC 3768) and v3 (RFC 5798, RFC 9568) advertisements.
//!
//! This module owns the advertisement format: a zero-copy checked view
//! ([`Packet`]), the plain representation the protocol core works with
//! ([`Repr`]; [`Advert`] is the same borrowing its address list from the
//! packet, which the receive path uses so that it allocates nothing), the
//! receive-side rejection reasons ([`Error`]) and the internet checksum
//! helpers that the ARP/ND builders reuse.
//!
//! Receive checks run in a fixed order so that a packet is counted under one
//! reason only: structure first (truncated, version, lengths), then integrity
//! (checksum), then meaning (type, VRID, count, auth type, interval,
//! link-local first address). A corrupted packet is thus `bad_checksum`, not
//! whatever its flipped bits happen to look like.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number / IPv6 next header of VRRP.
pub const PROTOCOL: u8 = 112;

/// VRRP protocol version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    V2,
    V3,
}

/// How the checksum of a VRRPv3-over-IPv4 advert is (to be) computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V3Checksum {
    /// keepalived's default and RFC 5798 as written: with the IPv4 pseudo-header.
    WithPseudoHeader,
    /// RFC 9568 correction: over the VRRP message only, as in v2.
    WithoutPseudoHeader,
}

/// Which checksum form a received advert carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    /// v2 (no pseudo-header) or v3 over IPv6 (pseudo-header): only one form exists.
    Standard,
    /// v3 over IPv4 checksummed with the pseudo-header.
    V3WithPseudoHeader,
    /// v3 over IPv4 checksummed without the pseudo-header (RFC 9568).
    V3WithoutPseudoHeader,
}

/// A parsed advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds. v3: the 12-bit Max Adver Int.
    /// v2: Adver Int (seconds) * 100.
    pub interval_cs: u16,
    /// Virtual addresses, all of one family (the family of the IP header).
    pub addresses: Vec<IpAddr>,
    /// v2 only: `Some(password)` for simple text authentication (type 1, 8 bytes,
    /// zero padded), `None` for no authentication (type 0).
    pub auth: Option<[u8; 8]>,
}

/// Why a VRRP packet was rejected on receive, or could not be built on emit.
///
/// The receive-side variants map one to one onto the drop counters of
/// `baton status` through [`crate::vrrp::DropReason`] (`From<Error>`), which
/// owns the counter names; the caller adds the context (interface, VRID,
/// source address) to the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("packet too short: fewer than 8 bytes of VRRP header")]
    Truncated,
    #[error("length mismatch: the message length does not match its address count")]
    LengthMismatch,
    #[error("version {0} not supported (or not valid for this address family)")]
    Version(u8),
    #[error("type {0} not supported: only 1 (advertisement) exists")]
    Type(u8),
    #[error("virtual router id 0 is not valid")]
    VridZero,
    #[error("address count 0: an advertisement must carry at least one address")]
    CountZero,
    #[error("address list truncated: fewer bytes than the address count needs")]
    AddressesTruncated,
    #[error("authentication type {0} not supported: only 0 (none) and 1 (simple text)")]
    AuthType(u8),
    #[error("advertisement interval 0 is not valid")]
    IntervalZero,
    #[error("checksum mismatch")]
    Checksum,
    #[error("first IPv6 address is not link-local (fe80::/10), as RFC 5798 5.2.9 requires")]
    NotLinkLocal,
    #[error("TTL/hop limit {0}, expected 255 (sent from off-link?)")]
    Ttl(u8),
    #[error(
        "advertisement interval not representable: VRRPv2 needs whole seconds 1..=255, \
         VRRPv3 1..=4095 centiseconds"
    )]
    IntervalNotRepresentable,
    #[error("too many addresses: at most 255 fit in one advertisement")]
    TooManyAddresses,
    #[error("mixed address families: all addresses must be of the IP header's family")]
    MixedFamilies,
    #[error("authentication is a VRRPv2 feature: VRRPv3 has none")]
    AuthOnV3,
    #[error("output buffer too small for the advertisement")]
    BufferTooSmall,
    #[error("IP version {0} where IPv4 was expected")]
    IpVersion(u8),
    #[error("IPv4 header length {0} (32-bit words) is below the minimum of 5")]
    IpHeaderLength(u8),
    #[error("IPv4 header checksum mismatch")]
    IpChecksum,
}

// ---------------------------------------------------------------------------
// Internet checksum (RFC 1071)
// ---------------------------------------------------------------------------

/// Ones' complement sum of `data` as big-endian 16-bit words (an odd last
/// byte is padded with zero), folded to 16 bits, added to `initial`.
fn sum_words(initial: u32, data: &[u8]) -> u32 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum = fold_once(sum + u32::from(u16::from_be_bytes([pair[0], pair[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = fold_once(sum + (u32::from(*last) << 8));
    }
    sum
}

/// Keeps the running sum below 2^17 so it can never overflow a u32.
fn fold_once(sum: u32) -> u32 {
    (sum & 0xffff) + (sum >> 16)
}

fn finish(sum: u32) -> u16 {
    let folded = fold_once(fold_once(sum));
    // `folded` is at most 0xffff here, so the cast cannot lose bits.
    !(folded as u16)
}

/// Internet checksum (RFC 1071) of `data`: the value to store in a checksum
/// field that was zero while summing. Over data that already carries a correct
/// checksum, the result is 0.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum_words(0, data))
}

/// Sum of the IPv4 (RFC 768 layout: src, dst, zero, protocol, 16-bit length)
/// or IPv6 (RFC 8200 8.1: src, dst, 32-bit length, zeros, next header)
/// pseudo-header. The layout follows the family of `src`; both layouts give
/// the same word sum for the protocol byte, only the length width differs.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, length: usize) -> u32 {
    let mut sum = 0;
    for addr in [src, dst] {
        sum = match addr {
            IpAddr::V4(a) => sum_words(sum, &a.octets()),
            IpAddr::V6(a) => sum_words(sum, &a.octets()),
        };
    }
    sum = fold_once(sum + u32::from(protocol));
    let length = match src {
        // IPv4 carries a 16-bit length; a larger message cannot be sent anyway.
        IpAddr::V4(_) => u32::from(u16::try_from(length).unwrap_or(u16::MAX)),
        IpAddr::V6(_) => u32::try_from(length).unwrap_or(u32::MAX),
    };
    sum_words(sum, &length.to_be_bytes())
}

/// Internet checksum of `data` preceded by the pseudo-header of `src`'s
/// family (`protocol` is the IPv4 protocol / IPv6 next header, e.g. 112 for
/// VRRP, 58 for ICMPv6). `src` and `dst` are expected to be of one family.
pub fn checksum_with_pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, data: &[u8]) -> u16 {
    finish(sum_words(
        pseudo_header_sum(src, dst, protocol, data.len()),
        data,
    ))
}

// ---------------------------------------------------------------------------
// Packet view
// ---------------------------------------------------------------------------

/// Address family of the IP header that carried (or will carry) the advert;
/// it fixes the size of each address in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes per address in the address list.
    pub fn address_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }
}

mod field {
    use std::ops::Range;

    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: Auth Type. v3: reserved nibble + high nibble of Max Adver Int.
    pub const AUTH_TYPE: usize = 4;
    /// v2: Adver Int (seconds).
    pub const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits, then the 12-bit Max Adver Int (centiseconds).
    pub const MAX_ADVER_INT: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const ADDRESSES: usize = 8;
    /// v2: the Authentication Data that follows the addresses.
    pub const AUTH_DATA_LEN: usize = 8;
}

/// Length of the fixed header that precedes the address list.
pub const HEADER_LEN: usize = field::ADDRESSES;

/// A VRRP advertisement on the wire: a view over the bytes of the IP payload.
///
/// VRRPv3 (RFC 5798 5.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv2 (RFC 3768 5.1), IPv4 only:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .                                  |
/// |                            .                                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// [`Packet::new_checked`] verifies once that the buffer is exactly as long
/// as the header says; after that no accessor can panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

/// Exact message length for a version, family and address count.
fn message_len(version: Version, family: Family, count: usize) -> usize {
    let trailer = match version {
        Version::V2 => field::AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.address_len() + trailer
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without any check. Accessors may panic on a short
    /// buffer; use only on a buffer of known good length (emit does).
    fn new_unchecked(buffer: T, family: Family) -> Packet<T> {
        Packet { buffer, family }
    }

    /// Wraps `buffer` (exactly one VRRP message, as cut by the IP length),
    /// after checking that its length matches version, family and count.
    /// v2 has no IPv6 form and is refused as `Version(2)`.
    pub fn new_checked(buffer: T, family: Family) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = self.wire_version()?;
        let count = usize::from(data[field::COUNT]);
        let addresses_end = HEADER_LEN + count * self.family.address_len();
        if data.len() < addresses_end {
            return Err(Error::AddressesTruncated);
        }
        if data.len() != message_len(version, self.family, count) {
            return Err(Error::LengthMismatch);
        }
        Ok(())
    }

    fn wire_version(&self) -> Result<Version, Error> {
        match (self.version(), self.family) {
            (2, Family::Ipv4) => Ok(Version::V2),
            (3, _) => Ok(Version::V3),
            (other, _) => Err(Error::Version(other)),
        }
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Address family given at construction.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Version nibble as on the wire (2 or 3 after `new_checked`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// Type nibble as on the wire (1 = advertisement).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// Count of addresses.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2: Auth Type. Meaningless for v3 (reserved bits and interval bits).
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2: Adver Int, in seconds.
    pub fn adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3: Max Adver Int, in centiseconds (12 bits; the reserved bits are
    /// ignored as RFC 5798 asks of receivers).
    pub fn max_adver_int(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::MAX_ADVER_INT.start], data[field::ADVER_INT]]) & 0x0fff
    }

    pub fn checksum(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::CHECKSUM.start], data[field::CHECKSUM.start + 1]])
    }

    /// The raw address list: `count` addresses of the family's size.
    pub fn address_bytes(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.count()) * self.family.address_len();
        data.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The addresses, decoded in wire order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let family = self.family;
        self.address_bytes()
            .chunks_exact(family.address_len())
            .map(move |chunk| address_from(family, chunk))
    }

    /// v2: the 8 bytes of Authentication Data; `None` for v3.
    pub fn auth_data(&self) -> Option<[u8; 8]> {
        if self.version() != 2 {
            return None;
        }
        let start = HEADER_LEN + self.address_bytes().len();
        let bytes = self
            .buffer
            .as_ref()
            .get(start..start + field::AUTH_DATA_LEN)?;
        bytes.try_into().ok()
    }
}

/// Copies `bytes` to the start of `out` (as far as it fits); returns the
/// number of bytes copied.
fn put(out: &mut [u8], bytes: &[u8]) -> usize {
    let n = bytes.len().min(out.len());
    out[..n].copy_from_slice(&bytes[..n]);
    n
}

fn address_from(family: Family, chunk: &[u8]) -> IpAddr {
    match family {
        Family::Ipv4 => {
            let mut octets = [0u8; 4];
            octets.copy_from_slice(chunk);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        Family::Ipv6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(chunk);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    fn set_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    fn set_adver_int(&mut self, seconds: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = seconds;
    }

    /// Writes the 12-bit interval with the reserved bits zero.
    fn set_max_adver_int(&mut self, centiseconds: u16) {
        let bytes = (centiseconds & 0x0fff).to_be_bytes();
        self.buffer.as_mut()[field::MAX_ADVER_INT].copy_from_slice(&bytes);
    }

    fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

// ---------------------------------------------------------------------------
// Repr
// ---------------------------------------------------------------------------

const TYPE_ADVERTISEMENT: u8 = 1;
const AUTH_NONE: u8 = 0;
const AUTH_SIMPLE_TEXT: u8 = 1;
/// Authentication type 2: keepalived's IPsec AH ([`crate::wire::ah`]).
pub const AUTH_AH: u8 = 2;
/// Where the v2 authentication type lies in the message.
pub const AUTH_TYPE_OFFSET: usize = field::AUTH_TYPE;
/// Where the checksum lies in the message.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

fn is_link_local(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// Which checksum form(s) `data` (with its checksum field filled) satisfies.
fn verify_checksum(
    version: Version,
    data: &[u8],
    src: IpAddr,
    dst: IpAddr,
) -> Result<ChecksumKind, Error> {
    let plain_ok = || checksum(data) == 0;
    let pseudo_ok = || checksum_with_pseudo_header(src, dst, PROTOCOL, data) == 0;
    match (version, Family::of(src)) {
        (Version::V2, _) => plain_ok().then_some(ChecksumKind::Standard),
        (Version::V3, Family::Ipv6) => pseudo_ok().then_some(ChecksumKind::Standard),
        (Version::V3, Family::Ipv4) => {
            if pseudo_ok() {
                Some(ChecksumKind::V3WithPseudoHeader)
            } else if plain_ok() {
                Some(ChecksumKind::V3WithoutPseudoHeader)
            } else {
                None
            }
        }
    }
    .ok_or(Error::Checksum)
}

/// The virtual addresses of an [`Advert`]: the packet's own bytes (as
/// received: nothing decoded or copied) or a [`Repr`]'s list.
#[derive(Debug, Clone, Copy)]
pub enum Addresses<'a> {
    /// `bytes`: whole addresses of `family`, in wire order.
    Wire {
        family: Family,
        bytes: &'a [u8],
    },
    List(&'a [IpAddr]),
}

impl Addresses<'_> {
    pub fn len(&self) -> usize {
        match self {
            Addresses::Wire { family, bytes } => bytes.len() / family.address_len(),
            Addresses::List(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses in wire order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (wire, list) = match *self {
            Addresses::Wire { family, bytes } => (Some((family, bytes)), &[][..]),
            Addresses::List(list) => (None, list),
        };
        let wire = wire.into_iter().flat_map(|(family, bytes)| {
            bytes
                .chunks_exact(family.address_len())
                .map(move |chunk| address_from(family, chunk))
        });
        wire.chain(list.iter().copied())
    }

    pub fn first(&self) -> Option<IpAddr> {
        self.iter().next()
    }

    /// Whether `addr` is in the list: compared as bytes, nothing decoded.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match (*self, addr) {
            (Addresses::List(list), _) => list.contains(addr),
            (
                Addresses::Wire {
                    family: Family::Ipv4,
                    bytes,
                },
                IpAddr::V4(a),
            ) => bytes.chunks_exact(4).any(|c| c == a.octets()),
            (
                Addresses::Wire {
                    family: Family::Ipv6,
                    bytes,
                },
                IpAddr::V6(a),
            ) => bytes.chunks_exact(16).any(|c| c == a.octets()),
            _ => false,
        }
    }
}

/// A parsed advertisement as [`Repr`], its address list borrowed from the
/// packet ([`Addresses::Wire`]) or from a `Repr` ([`Repr::as_advert`]).
#[derive(Debug, Clone, Copy)]
pub struct Advert<'a> {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// As [`Repr::interval_cs`].
    pub interval_cs: u16,
    pub addresses: Addresses<'a>,
    /// As [`Repr::auth`].
    pub auth: Option<[u8; 8]>,
}

impl<'a> Advert<'a> {
    /// [`Repr::parse`] without the copy of the address list.
    pub fn parse(
        payload: &'a [u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Advert<'a>, ChecksumKind), Error> {
        Self::parse_checked(payload, src, dst, true, false)
    }

    /// [`Repr::parse_ah`] without the copy of the address list.
    pub fn parse_ah(
        payload: &'a [u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Advert<'a>, ChecksumKind), Error> {
        Self::parse_checked(payload, src, dst, true, true)
    }

    /// [`Repr::parse_lenient`] without the copy of the address list.
    pub fn parse_lenient(
        payload: &'a [u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Advert<'a>, ChecksumKind), Error> {
        Self::parse_checked(payload, src, dst, false, false)
    }

    fn parse_checked(
        payload: &'a [u8],
        src: IpAddr,
        dst: IpAddr,
        link_local_first: bool,
        under_ah: bool,
    ) -> Result<(Advert<'a>, ChecksumKind), Error> {
        let family = Family::of(src);
        if Family::of(dst) != family {
            return Err(Error::MixedFamilies);
        }
        let packet = Packet::new_checked(payload, family)?;
        let version = packet.wire_version()?;
        let kind = verify_checksum(version, payload, src, dst)?;

        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::Type(packet.msg_type()));
        }
        if packet.vrid() == 0 {
            return Err(Error::VridZero);
        }
        if packet.count() == 0 {
            return Err(Error::CountZero);
        }
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let auth = match packet.auth_type() {
                    AUTH_NONE if !under_ah => None,
                    AUTH_SIMPLE_TEXT if !under_ah => packet.auth_data(),
                    AUTH_AH if under_ah => None,
                    other => return Err(Error::AuthType(other)),
                };
                (u16::from(packet.adver_int()) * 100, auth)
            }
            // keepalived's AH carries VRRPv2 only: a v3 message in it is
            // no advert of any router (and has no AH form to answer with).
            Version::V3 if under_ah => return Err(Error::Version(3)),
            Version::V3 => (packet.max_adver_int(), None),
        };
        if interval_cs == 0 {
            return Err(Error::IntervalZero);
        }
        // The address bytes, borrowed from the payload itself (not from the
        // view, which lives only in this function).
        let end = HEADER_LEN + usize::from(packet.count()) * family.address_len();
        let bytes = payload.get(HEADER_LEN..end).unwrap_or(&[]);
        let addresses = Addresses::Wire { family, bytes };
        if link_local_first
            && family == Family::Ipv6
            && !addresses.first().is_some_and(|a| is_link_local(&a))
        {
            return Err(Error::NotLinkLocal);
        }
        let advert = Advert {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval_cs,
            addresses,
            auth,
        };
        Ok((advert, kind))
    }

    /// The same advert owning its address list.
    pub fn to_repr(&self) -> Repr {
        Repr {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            addresses: self.addresses.iter().collect(),
            auth: self.auth,
        }
    }
}

impl Repr {
    /// Parses one VRRP message (the IP payload, cut to the IP header's length)
    /// received from `src` to `dst`. The address family is that of `src`.
    /// The TTL / hop limit check belongs to the caller (it has the IP header).
    pub fn parse(payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<(Repr, ChecksumKind), Error> {
        Advert::parse(payload, src, dst).map(|(a, kind)| (a.to_repr(), kind))
    }

    /// As [`Repr::parse`], for the VRRP message inside keepalived's AH
    /// header ([`crate::wire::ah`]): a v2 advert of authentication type 2,
    /// whose 8 bytes of authentication data are not looked at (the AH ICV
    /// covers them). `auth` is `None`. Types 0 and 1 are refused there.
    pub fn parse_ah(
        payload: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Repr, ChecksumKind), Error> {
        Advert::parse_ah(payload, src, dst).map(|(a, kind)| (a.to_repr(), kind))
    }

    /// As [`Repr::parse`], but a v3-over-IPv6 advert whose first address is
    /// not link-local is accepted (RFC 5798 5.2.9 says it MUST be): keepalived
    /// sends exactly the configured list and only warns when it starts with
    /// a global address, so a keepalived peer configured that way would
    /// otherwise never be heard. The caller decides and counts.
    pub fn parse_lenient(
        payload: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Repr, ChecksumKind), Error> {
        Advert::parse_lenient(payload, src, dst).map(|(a, kind)| (a.to_repr(), kind))
    }

    /// This advert as an [`Advert`] (borrowing the address list).
    pub fn as_advert(&self) -> Advert<'_> {
        Advert {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            addresses: Addresses::List(&self.addresses),
            auth: self.auth,
        }
    }

    /// Length of the message this `Repr` emits. Assumes one address family
    /// (emit refuses mixed ones).
    pub fn buffer_len(&self) -> usize {
        let addresses: usize = self
            .addresses
            .iter()
            .map(|a| Family::of(*a).address_len())
            .sum();
        let trailer = match self.version {
            Version::V2 => field::AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + addresses + trailer
    }

    /// Checks everything that would make the advert unsendable or rejected
    /// by a conforming receiver; returns the address count.
    fn validate(&self, src: IpAddr, dst: IpAddr) -> Result<u8, Error> {
        let family = Family::of(src);
        if Family::of(dst) != family || self.addresses.iter().any(|a| Family::of(*a) != family) {
            return Err(Error::MixedFamilies);
        }
        if self.version == Version::V2 && family == Family::Ipv6 {
            return Err(Error::Version(2));
        }
        if self.vrid == 0 {
            return Err(Error::VridZero);
        }
        if self.addresses.is_empty() {
            return Err(Error::CountZero);
        }
        let count = u8::try_from(self.addresses.len()).map_err(|_| Error::TooManyAddresses)?;
        match self.version {
            Version::V2 => {
                let seconds = self.interval_cs / 100;
                if self.interval_cs % 100 != 0 || !(1..=255).contains(&seconds) {
                    return Err(Error::IntervalNotRepresentable);
                }
            }
            Version::V3 => {
                if self.auth.is_some() {
                    return Err(Error::AuthOnV3);
                }
                if !(1..=V3_MAX_INTERVAL_CS).contains(&self.interval_cs) {
                    return Err(Error::IntervalNotRepresentable);
                }
            }
        }
        // A v3 IPv6 list that does not start with a link-local address is
        // sent as configured, as keepalived does (see `parse_lenient`).
        Ok(count)
    }

    /// Writes the advert into the first [`Repr::buffer_len`] bytes of `buf`,
    /// checksum included. `v3_ipv4` chooses the checksum form of v3 over
    /// IPv4 and is ignored otherwise.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        v3_ipv4: V3Checksum,
    ) -> Result<(), Error> {
        let count = self.validate(src, dst)?;
        let len = self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        buf.fill(0);
        let family = Family::of(src);
        let mut packet = Packet::new_unchecked(&mut *buf, family);
        let version = match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        packet.set_version_type(version, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count);
        match self.version {
            Version::V2 => {
                packet.set_auth_type(match self.auth {
                    Some(_) => AUTH_SIMPLE_TEXT,
                    None => AUTH_NONE,
                });
                // validate() bounded the interval to 1..=255 whole seconds.
                packet.set_adver_int(u8::try_from(self.interval_cs / 100).unwrap_or(u8::MAX));
            }
            Version::V3 => packet.set_max_adver_int(self.interval_cs),
        }
        let data = packet.into_inner();
        let mut offset = HEADER_LEN;
        for addr in &self.addresses {
            // buffer_len() sized `data` from these very addresses.
            offset += match addr {
                IpAddr::V4(a) => put(&mut data[offset..], &a.octets()),
                IpAddr::V6(a) => put(&mut data[offset..], &a.octets()),
            };
        }
        if let Some(password) = self.auth {
            put(&mut data[offset..], &password);
        }
        let with_pseudo_header = match (self.version, family) {
            (Version::V2, _) => false,
            (Version::V3, Family::Ipv6) => true,
            (Version::V3, Family::Ipv4) => v3_ipv4 == V3Checksum::WithPseudoHeader,
        };
        let sum = if with_pseudo_header {
            checksum_with_pseudo_header(src, dst, PROTOCOL, data)
        } else {
            checksum(data)
        };
        Packet::new_unchecked(data, family).set_checksum(sum);
        Ok(())
    }

    /// [`Repr::emit`] into a fresh buffer of the right length.
    pub fn to_bytes(
        &self,
        src: IpAddr,
        dst: IpAddr,
        v3_ipv4: V3Checksum,
    ) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf, src, dst, v3_ipv4)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip::parse_ipv4;
    use crate::wire::testutil::hex_fixture;

    const GROUP_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    const GROUP_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
    const NODE_A_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const NODE_A_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0xa));

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    /// Splits a captured IPv4 packet: checks the header as the receive path
    /// would and returns (src, dst, VRRP message).
    fn split_ipv4(packet: &[u8]) -> (IpAddr, IpAddr, &[u8]) {
        let (header, payload) = parse_ipv4(packet).unwrap();
        assert_eq!(header.ttl, 255);
        assert_eq!(header.protocol, PROTOCOL);
        (IpAddr::V4(header.src), IpAddr::V4(header.dst), payload)
    }

    /// Splits a captured IPv6 packet (fixed header, no extension headers).
    fn split_ipv6(packet: &[u8]) -> (IpAddr, IpAddr, &[u8]) {
        assert_eq!(packet[0] >> 4, 6);
        let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
        assert_eq!(packet[6], PROTOCOL, "next header");
        assert_eq!(packet[7], 255, "hop limit");
        let octets = |r: std::ops::Range<usize>| -> [u8; 16] { packet[r].try_into().unwrap() };
        let src = IpAddr::V6(Ipv6Addr::from(octets(8..24)));
        let dst = IpAddr::V6(Ipv6Addr::from(octets(24..40)));
        assert_eq!(packet.len(), 40 + payload_len);
        (src, dst, &packet[40..])
    }

    /// Parses a captured advert, compares it to `expected`, and re-emits it
    /// byte for byte.
    fn check_fixture(
        (src, dst, payload): (IpAddr, IpAddr, &[u8]),
        expected: Repr,
        kind: ChecksumKind,
    ) {
        let (repr, got_kind) = Repr::parse(payload, src, dst).unwrap();
        assert_eq!(repr, expected);
        assert_eq!(got_kind, kind);
        assert_eq!(repr.buffer_len(), payload.len());
        let emitted = repr
            .to_bytes(src, dst, V3Checksum::WithPseudoHeader)
            .unwrap();
        assert_eq!(emitted, payload);
    }

    #[test]
    fn keepalived_v2_no_auth() {
        let packet = hex_fixture(include_str!("../../tests/fixtures/v2_noauth.hex"));
        let parts = split_ipv4(&packet);
        assert_eq!((parts.0, parts.1), (NODE_A_V4, GROUP_V4));
        let view = Packet::new_checked(parts.2, Family::Ipv4).unwrap();
        assert_eq!(view.version(), 2);
        assert_eq!(view.msg_type(), 1);
        assert_eq!(view.vrid(), 51);
        assert_eq!(view.priority(), 150);
        assert_eq!(view.count(), 1);
        assert_eq!(view.auth_type(), 0);
        assert_eq!(view.adver_int(), 1);
        assert_eq!(view.checksum(), 0x8696);
        assert_eq!(view.address_bytes(), &[192, 0, 2, 51]);
        assert_eq!(view.auth_data(), Some([0; 8]));
        check_fixture(
            parts,
            Repr {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                interval_cs: 100,
                addresses: vec![v4(51)],
                auth: None,
            },
            ChecksumKind::Standard,
        );
    }

    #[test]
    fn keepalived_v2_simple_auth() {
        let packet = hex_fixture(include_str!("../../tests/fixtures/v2_pass.hex"));
        let parts = split_ipv4(&packet);
        let view = Packet::new_checked(parts.2, Family::Ipv4).unwrap();
        assert_eq!(view.auth_type(), 1);
        assert_eq!(view.adver_int(), 2);
        assert_eq!(view.auth_data(), Some(*b"secret\0\0"));
        check_fixture(
            parts,
            Repr {
                version: Version::V2,
                vrid: 52,
                priority: 150,
                interval_cs: 200,
                addresses: vec![v4(52), v4(152)],
                auth: Some(*b"secret\0\0"),
            },
            ChecksumKind::Standard,
        );
    }

    #[test]
    fn keepalived_v3_ipv4_uses_pseudo_header() {
        let packet = hex_fixture(include_str!("../../tests/fixtures/v3_ipv4.hex"));
        let parts = split_ipv4(&packet);
        let (src, dst, payload) = parts;
        let view = Packet::new_checked(payload, Family::Ipv4).unwrap();
        assert_eq!(view.version(), 3);
        assert_eq!(view.max_adver_int(), 50);
        assert_eq!(view.checksum(), 0x1132);
        assert_eq!(view.auth_data(), None);
        let expected = Repr {
            version: Version::V3,
            vrid: 53,
            priority: 150,
            interval_cs: 50,
            addresses: vec![v4(53), v4(153)],
            auth: None,
        };
        check_fixture(parts, expected.clone(), ChecksumKind::V3WithPseudoHeader);
        // The RFC 9568 form differs in the checksum field only.
        let plain = expected
            .to_bytes(src, dst, V3Checksum::WithoutPseudoHeader)
            .unwrap();
        assert_ne!(plain[6..8], payload[6..8]);
        assert_eq!(plain[..6], payload[..6]);
        assert_eq!(plain[8..], payload[8..]);
        assert_eq!(
            Repr::parse(&plain, src, dst).unwrap(),
            (expected, ChecksumKind::V3WithoutPseudoHeader)
        );
    }

    #[test]
    fn keepalived_v3_ipv6() {
        let packet = hex_fixture(include_str!("../../tests/fixtures/v3_ipv6.hex"));
        let parts = split_ipv6(&packet);
        assert_eq!((parts.0, parts.1), (NODE_A_V6, GROUP_V6));
        let view = Packet::new_checked(parts.2, Family::Ipv6).unwrap();
        assert_eq!(view.count(), 2);
        assert_eq!(view.max_adver_int(), 100);
        assert_eq!(
            view.addresses().collect::<Vec<_>>(),
            vec![v6("fe80::54"), v6("fd00::54")]
        );
        check_fixture(
            parts,
            Repr {
                version: Version::V3,
                vrid: 54,
                priority: 150,
                interval_cs: 100,
                addresses: vec![v6("fe80::54"), v6("fd00::54")],
                auth: None,
            },
            ChecksumKind::Standard,
        );
    }

    #[test]
    fn keepalived_priority_zero_adverts() {
        let v2 = hex_fixture(include_str!("../../tests/fixtures/v2_prio0.hex"));
        check_fixture(
            split_ipv4(&v2),
            Repr {
                version: Version::V2,
                vrid: 51,
                priority: 0,
                interval_cs: 100,
                addresses: vec![v4(51)],
                auth: None,
            },
            ChecksumKind::Standard,
        );
        let v3 = hex_fixture(include_str!("../../tests/fixtures/v3_ipv4_prio0.hex"));
        check_fixture(
            split_ipv4(&v3),
            Repr {
                version: Version::V3,
                vrid: 53,
                priority: 0,
                interval_cs: 50,
                addresses: vec![v4(53), v4(153)],
                auth: None,
            },
            ChecksumKind::V3WithPseudoHeader,
        );
        let v6_packet = hex_fixture(include_str!("../../tests/fixtures/v3_ipv6_prio0.hex"));
        check_fixture(
            split_ipv6(&v6_packet),
            Repr {
                version: Version::V3,
                vrid: 54,
                priority: 0,
                interval_cs: 100,
                addresses: vec![v6("fe80::54"), v6("fd00::54")],
                auth: None,
            },
            ChecksumKind::Standard,
        );
    }

    // --- checksum helpers ---------------------------------------------------

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 4.1: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn checksum_odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn checksum_carries_wrap_around() {
        // 0xffff + 0x0001 = 0x1_0000 -> folds to 0x0001 -> complement 0xfffe.
        assert_eq!(checksum(&[0xff, 0xff, 0x00, 0x01]), 0xfffe);
        // Large inputs must not overflow the accumulator.
        assert_eq!(checksum(&vec![0xff; 200_000]), 0x0000);
    }

    #[test]
    fn pseudo_header_ipv4_layout() {
        let src = NODE_A_V4;
        let data = [0x31, 0x35, 0x96, 0x02];
        let mut spelled = vec![192, 0, 2, 1, 224, 0, 0, 18, 0, 112, 0, 4];
        spelled.extend_from_slice(&data);
        assert_eq!(
            checksum_with_pseudo_header(src, GROUP_V4, 112, &data),
            checksum(&spelled)
        );
    }

    #[test]
    fn pseudo_header_ipv6_layout() {
        let data = [0x31, 0x36, 0x96, 0x02, 0xaa];
        let mut spelled = Vec::new();
        if let (IpAddr::V6(s), IpAddr::V6(d)) = (NODE_A_V6, GROUP_V6) {
            spelled.extend_from_slice(&s.octets());
            spelled.extend_from_slice(&d.octets());
        }
        spelled.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 112]);
        spelled.extend_from_slice(&data);
        assert_eq!(
            checksum_with_pseudo_header(NODE_A_V6, GROUP_V6, 112, &data),
            checksum(&spelled)
        );
    }

    // --- one test per rejection reason ------------------------------------

    fn sample_v3_v4() -> Vec<u8> {
        Repr {
            version: Version::V3,
            vrid: 7,
            priority: 100,
            interval_cs: 100,
            addresses: vec![v4(10)],
            auth: None,
        }
        .to_bytes(NODE_A_V4, GROUP_V4, V3Checksum::WithPseudoHeader)
        .unwrap()
    }

    fn sample_v2() -> Vec<u8> {
        Repr {
            version: Version::V2,
            vrid: 7,
            priority: 100,
            interval_cs: 100,
            addresses: vec![v4(10)],
            auth: None,
        }
        .to_bytes(NODE_A_V4, GROUP_V4, V3Checksum::WithPseudoHeader)
        .unwrap()
    }

    fn sample_v3_v6() -> Vec<u8> {
        Repr {
            version: Version::V3,
            vrid: 7,
            priority: 100,
            interval_cs: 100,
            addresses: vec![v6("fe80::7")],
            auth: None,
        }
        .to_bytes(NODE_A_V6, GROUP_V6, V3Checksum::WithPseudoHeader)
        .unwrap()
    }

    /// The receive path's view holds what Repr decodes, its addresses
    /// looked up in the packet's bytes: in any order, not across families.
    #[test]
    fn advert_view_finds_addresses_in_place() {
        for (src, dst, list) in [
            (NODE_A_V4, GROUP_V4, vec![v4(10), v4(11), v4(12)]),
            (NODE_A_V6, GROUP_V6, vec![v6("fe80::7"), v6("2001:db8::7")]),
        ] {
            let bytes = Repr {
                version: Version::V3,
                vrid: 7,
                priority: 100,
                interval_cs: 100,
                addresses: list.clone(),
                auth: None,
            }
            .to_bytes(src, dst, V3Checksum::WithPseudoHeader)
            .unwrap();
            let (view, kind) = Advert::parse(&bytes, src, dst).unwrap();
            assert_eq!(Repr::parse(&bytes, src, dst), Ok((view.to_repr(), kind)));
            assert!(matches!(view.addresses, Addresses::Wire { .. }));
            assert_eq!(view.addresses.len(), list.len());
            assert_eq!(view.addresses.iter().collect::<Vec<_>>(), list);
            assert_eq!(view.addresses.first(), list.first().copied());
            for a in list.iter().rev() {
                assert!(view.addresses.contains(a), "{a}");
            }
            for absent in [v4(13), v6("fe80::8"), v4(0), v6("::")] {
                assert!(!view.addresses.contains(&absent), "{absent}");
            }
            // 192.0.2.10 is not ::c000:20a, nor the reverse.
            let other = match list[0] {
                IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_compatible()),
                IpAddr::V6(_) => v4(10),
            };
            assert!(!view.addresses.contains(&other));
            let repr = view.to_repr();
            let back = repr.as_advert();
            assert!(matches!(back.addresses, Addresses::List(_)));
            assert_eq!(back.addresses.iter().collect::<Vec<_>>(), list);
            assert!(list.iter().all(|a| back.addresses.contains(a)));
        }
    }

    /// Recomputes the checksum of a hand-edited message so that the test
    /// reaches the check it is about: v2 plain, v3 with pseudo-header.
    fn fix_checksum(buf: &mut [u8], src: IpAddr, dst: IpAddr) {
        buf[6..8].fill(0);
        let sum = if buf[0] >> 4 == 2 {
            checksum(buf)
        } else {
            checksum_with_pseudo_header(src, dst, PROTOCOL, buf)
        };
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
    }

    fn parse_v4(buf: &[u8]) -> Result<(Repr, ChecksumKind), Error> {
        Repr::parse(buf, NODE_A_V4, GROUP_V4)
    }

    fn parse_v6(buf: &[u8]) -> Result<(Repr, ChecksumKind), Error> {
        Repr::parse(buf, NODE_A_V6, GROUP_V6)
    }

    fn edited_v4(base: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = base;
        edit(&mut buf);
        fix_checksum(&mut buf, NODE_A_V4, GROUP_V4);
        buf
    }

    #[test]
    fn samples_are_valid() {
        assert!(parse_v4(&sample_v3_v4()).is_ok());
        assert!(parse_v4(&sample_v2()).is_ok());
        assert!(parse_v6(&sample_v3_v6()).is_ok());
    }

    #[test]
    fn reject_truncated() {
        let buf = sample_v3_v4();
        assert_eq!(parse_v4(&buf[..7]), Err(Error::Truncated));
        assert_eq!(parse_v4(&[]), Err(Error::Truncated));
    }

    #[test]
    fn reject_length_mismatch_trailing_bytes() {
        let buf = edited_v4(sample_v3_v4(), |b| b.extend_from_slice(&[0; 4]));
        assert_eq!(parse_v4(&buf), Err(Error::LengthMismatch));
    }

    #[test]
    fn reject_length_mismatch_v2_without_auth_data() {
        // All addresses present but the 8 bytes of auth data cut short.
        let mut buf = sample_v2();
        buf.truncate(buf.len() - 1);
        assert_eq!(parse_v4(&buf), Err(Error::LengthMismatch));
    }

    #[test]
    fn reject_addresses_truncated() {
        let buf = edited_v4(sample_v3_v4(), |b| b[3] = 2);
        assert_eq!(parse_v4(&buf), Err(Error::AddressesTruncated));
    }

    #[test]
    fn reject_bad_version() {
        let buf = edited_v4(sample_v3_v4(), |b| b[0] = 0x41);
        let err = parse_v4(&buf).unwrap_err();
        assert_eq!(err, Error::Version(4));
        assert_eq!(
            err.to_string(),
            "version 4 not supported (or not valid for this address family)"
        );
        let buf = edited_v4(sample_v3_v4(), |b| b[0] = 0x11);
        assert_eq!(parse_v4(&buf), Err(Error::Version(1)));
    }

    #[test]
    fn reject_v2_over_ipv6() {
        let mut buf = sample_v3_v6();
        buf[0] = 0x21;
        fix_checksum(&mut buf, NODE_A_V6, GROUP_V6);
        assert_eq!(parse_v6(&buf), Err(Error::Version(2)));
    }

    #[test]
    fn reject_bad_type() {
        let buf = edited_v4(sample_v3_v4(), |b| b[0] = 0x32);
        assert_eq!(parse_v4(&buf), Err(Error::Type(2)));
    }

    #[test]
    fn reject_vrid_zero() {
        let buf = edited_v4(sample_v3_v4(), |b| b[1] = 0);
        assert_eq!(parse_v4(&buf), Err(Error::VridZero));
    }

    #[test]
    fn reject_count_zero() {
        let buf = edited_v4(sample_v3_v4(), |b| {
            b[3] = 0;
            b.truncate(8);
        });
        assert_eq!(parse_v4(&buf), Err(Error::CountZero));
    }

    #[test]
    fn reject_auth_type_ah() {
        let buf = edited_v4(sample_v2(), |b| b[4] = 2);
        assert_eq!(parse_v4(&buf), Err(Error::AuthType(2)));
    }

    #[test]
    fn reject_interval_zero_v2() {
        let buf = edited_v4(sample_v2(), |b| b[5] = 0);
        assert_eq!(parse_v4(&buf), Err(Error::IntervalZero));
    }

    #[test]
    fn reject_interval_zero_v3() {
        // Reserved bits set, interval bits zero: still zero.
        let buf = edited_v4(sample_v3_v4(), |b| b[4..6].copy_from_slice(&[0xf0, 0x00]));
        assert_eq!(parse_v4(&buf), Err(Error::IntervalZero));
    }

    #[test]
    fn v3_reserved_bits_are_ignored() {
        let buf = edited_v4(sample_v3_v4(), |b| b[4] |= 0xf0);
        assert_eq!(parse_v4(&buf).unwrap().0.interval_cs, 100);
    }

    #[test]
    fn reject_bad_checksum() {
        let mut buf = sample_v3_v4();
        buf[2] ^= 0x01;
        assert_eq!(parse_v4(&buf), Err(Error::Checksum));
        let mut buf = sample_v2();
        buf[9] ^= 0x80;
        assert_eq!(parse_v4(&buf), Err(Error::Checksum));
    }

    #[test]
    fn reject_v3_ipv6_without_pseudo_header() {
        // Over IPv6 only the pseudo-header form is valid.
        let mut buf = sample_v3_v6();
        buf[6..8].fill(0);
        let sum = checksum(&buf);
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_v6(&buf), Err(Error::Checksum));
    }

    #[test]
    fn reject_v3_ipv4_checksum_from_other_source() {
        // The pseudo-header binds the checksum to the addresses.
        let buf = sample_v3_v4();
        assert_eq!(Repr::parse(&buf, v4(2), GROUP_V4), Err(Error::Checksum));
    }

    #[test]
    fn reject_not_link_local() {
        let mut buf = sample_v3_v6();
        buf[8..24].copy_from_slice(&"fd00::7".parse::<Ipv6Addr>().unwrap().octets());
        fix_checksum(&mut buf, NODE_A_V6, GROUP_V6);
        assert_eq!(parse_v6(&buf), Err(Error::NotLinkLocal));
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        assert!(is_link_local(&v6("febf::1")));
        assert!(!is_link_local(&v6("fec0::1")));
        assert!(!is_link_local(&v6("fe00::1")));
    }

    #[test]
    fn reject_mixed_families_on_receive() {
        assert_eq!(
            Repr::parse(&sample_v3_v4(), NODE_A_V4, GROUP_V6),
            Err(Error::MixedFamilies)
        );
    }

    #[test]
    fn ttl_error_reads_well() {
        let err = Error::Ttl(254);
        assert_eq!(
            err.to_string(),
            "TTL/hop limit 254, expected 255 (sent from off-link?)"
        );
    }

    // --- emit-side refusals -----------------------------------------------

    fn base(version: Version) -> Repr {
        Repr {
            version,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addresses: vec![v4(1)],
            auth: None,
        }
    }

    fn emit_v4(repr: &Repr) -> Result<Vec<u8>, Error> {
        repr.to_bytes(NODE_A_V4, GROUP_V4, V3Checksum::WithPseudoHeader)
    }

    #[test]
    fn emit_refuses_unrepresentable_intervals() {
        for (version, cs) in [
            (Version::V2, 150),
            (Version::V2, 0),
            (Version::V2, 25_600),
            (Version::V3, 0),
            (Version::V3, 4096),
        ] {
            let repr = Repr {
                interval_cs: cs,
                ..base(version)
            };
            assert_eq!(
                emit_v4(&repr),
                Err(Error::IntervalNotRepresentable),
                "{version:?} {cs}"
            );
        }
        for (version, cs) in [(Version::V2, 25_500), (Version::V3, 4095), (Version::V3, 1)] {
            let repr = Repr {
                interval_cs: cs,
                ..base(version)
            };
            assert!(emit_v4(&repr).is_ok(), "{version:?} {cs}");
        }
    }

    #[test]
    fn emit_refuses_too_many_addresses() {
        let repr = Repr {
            addresses: vec![v4(1); 256],
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr), Err(Error::TooManyAddresses));
        let repr = Repr {
            addresses: vec![v4(1); 255],
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr).unwrap().len(), 8 + 4 * 255);
    }

    #[test]
    fn emit_refuses_mixed_families() {
        let repr = Repr {
            addresses: vec![v4(1), v6("fe80::1")],
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr), Err(Error::MixedFamilies));
        assert_eq!(
            base(Version::V3).to_bytes(NODE_A_V6, GROUP_V6, V3Checksum::WithPseudoHeader),
            Err(Error::MixedFamilies)
        );
    }

    #[test]
    fn emit_refuses_auth_on_v3() {
        let repr = Repr {
            auth: Some(*b"secret\0\0"),
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr), Err(Error::AuthOnV3));
    }

    #[test]
    fn emit_refuses_v2_over_ipv6() {
        let repr = Repr {
            addresses: vec![v6("fe80::1")],
            ..base(Version::V2)
        };
        assert_eq!(
            repr.to_bytes(NODE_A_V6, GROUP_V6, V3Checksum::WithPseudoHeader),
            Err(Error::Version(2))
        );
    }

    #[test]
    fn emit_refuses_what_receivers_reject() {
        let repr = Repr {
            vrid: 0,
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr), Err(Error::VridZero));
        let repr = Repr {
            addresses: vec![],
            ..base(Version::V3)
        };
        assert_eq!(emit_v4(&repr), Err(Error::CountZero));
        // A global first address is sent as configured (keepalived does),
        // refused by the strict parser, accepted by the lenient one.
        let repr = Repr {
            addresses: vec![v6("fd00::1"), v6("fe80::1")],
            ..base(Version::V3)
        };
        let bytes = repr
            .to_bytes(NODE_A_V6, GROUP_V6, V3Checksum::WithPseudoHeader)
            .unwrap();
        assert_eq!(
            Repr::parse(&bytes, NODE_A_V6, GROUP_V6),
            Err(Error::NotLinkLocal)
        );
        assert_eq!(
            Repr::parse_lenient(&bytes, NODE_A_V6, GROUP_V6).map(|r| r.0),
            Ok(repr)
        );
    }

    #[test]
    fn emit_into_short_and_long_buffers() {
        let repr = base(Version::V2);
        let mut short = [0u8; 19];
        assert_eq!(
            repr.emit(
                &mut short,
                NODE_A_V4,
                GROUP_V4,
                V3Checksum::WithPseudoHeader
            ),
            Err(Error::BufferTooSmall)
        );
        let mut long = [0xaau8; 24];
        repr.emit(&mut long, NODE_A_V4, GROUP_V4, V3Checksum::WithPseudoHeader)
            .unwrap();
        assert_eq!(long[20..], [0xaa; 4]);
        assert_eq!(parse_v4(&long[..20]).unwrap().0, repr);
    }

    // --- property tests ---------------------------------------------------

    mod prop {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn ipv4() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
        }

        fn ipv6() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
        }

        fn link_local() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 16]>().prop_map(|mut o| {
                o[0] = 0xfe;
                o[1] = 0x80 | (o[1] & 0x3f);
                IpAddr::V6(Ipv6Addr::from(o))
            })
        }

        fn v3_checksum() -> impl Strategy<Value = V3Checksum> {
            prop_oneof![
                Just(V3Checksum::WithPseudoHeader),
                Just(V3Checksum::WithoutPseudoHeader)
            ]
        }

        /// A valid advert with the addresses it is sent between.
        fn case() -> impl Strategy<Value = (Repr, IpAddr, IpAddr, V3Checksum)> {
            let v2 = (
                1u8..=255,
                any::<u8>(),
                1u16..=255,
                vec(ipv4(), 1..=255),
                proptest::option::of(any::<[u8; 8]>()),
                ipv4(),
                ipv4(),
                v3_checksum(),
            )
                .prop_map(|(vrid, priority, secs, addresses, auth, src, dst, c)| {
                    let repr = Repr {
                        version: Version::V2,
                        vrid,
                        priority,
                        interval_cs: secs * 100,
                        addresses,
                        auth,
                    };
                    (repr, src, dst, c)
                });
            let v3v4 = (
                1u8..=255,
                any::<u8>(),
                1u16..=4095,
                vec(ipv4(), 1..=255),
                ipv4(),
                ipv4(),
                v3_checksum(),
            )
                .prop_map(|(vrid, priority, interval_cs, addresses, src, dst, c)| {
                    let repr = Repr {
                        version: Version::V3,
                        vrid,
                        priority,
                        interval_cs,
                        addresses,
                        auth: None,
                    };
                    (repr, src, dst, c)
                });
            let v3v6 = (
                1u8..=255,
                any::<u8>(),
                1u16..=4095,
                link_local(),
                vec(ipv6(), 0..=254),
                ipv6(),
                ipv6(),
                v3_checksum(),
            )
                .prop_map(|(vrid, priority, interval_cs, first, rest, src, dst, c)| {
                    let mut addresses = vec![first];
                    addresses.extend(rest);
                    let repr = Repr {
                        version: Version::V3,
                        vrid,
                        priority,
                        interval_cs,
                        addresses,
                        auth: None,
                    };
                    (repr, src, dst, c)
                });
            prop_oneof![v2, v3v4, v3v6]
        }

        fn any_addr() -> impl Strategy<Value = IpAddr> {
            prop_oneof![ipv4(), ipv6()]
        }

        proptest! {
            #[test]
            fn emit_then_parse_round_trips((repr, src, dst, form) in case()) {
                let bytes = repr.to_bytes(src, dst, form).unwrap();
                prop_assert_eq!(bytes.len(), repr.buffer_len());
                let (parsed, kind) = Repr::parse(&bytes, src, dst).unwrap();
                prop_assert_eq!(&parsed, &repr);
                let expected_kind = match (repr.version, src, form) {
                    (Version::V3, IpAddr::V4(_), V3Checksum::WithPseudoHeader) => {
                        ChecksumKind::V3WithPseudoHeader
                    }
                    (Version::V3, IpAddr::V4(_), V3Checksum::WithoutPseudoHeader) => {
                        ChecksumKind::V3WithoutPseudoHeader
                    }
                    _ => ChecksumKind::Standard,
                };
                // In the rare case where the pseudo-header sums to zero, both
                // forms are the same bytes and the pseudo-header form wins.
                if kind != expected_kind {
                    prop_assert_eq!(
                        repr.to_bytes(src, dst, V3Checksum::WithPseudoHeader).unwrap(),
                        bytes
                    );
                }
            }

            #[test]
            fn parse_never_panics(
                bytes in vec(any::<u8>(), 0..600),
                src in any_addr(),
                dst in any_addr(),
            ) {
                let _ = Repr::parse(&bytes, src, dst);
                for family in [Family::Ipv4, Family::Ipv6] {
                    if let Ok(view) = Packet::new_checked(&bytes[..], family) {
                        let _ = (view.version(), view.msg_type(), view.vrid(), view.priority());
                        let _ = (view.count(), view.auth_type(), view.adver_int());
                        let _ = (view.max_adver_int(), view.checksum(), view.auth_data());
                        prop_assert_eq!(view.addresses().count(), usize::from(view.count()));
                    }
                }
                let _ = crate::wire::ip::parse_ipv4(&bytes);
                let _ = crate::wire::arp::parse_arp(&bytes);
                let _ = crate::wire::nd::parse_na(&bytes);
            }

            #[test]
            fn mutated_adverts_never_panic(
                (repr, src, dst, form) in case(),
                index in any::<usize>(),
                value in any::<u8>(),
                cut in any::<usize>(),
            ) {
                let mut bytes = repr.to_bytes(src, dst, form).unwrap();
                let i = index % bytes.len();
                bytes[i] = value;
                bytes.truncate(cut % (bytes.len() + 1));
                let _ = Repr::parse(&bytes, src, dst);
            }

            #[test]
            fn emit_never_panics(
                version in prop_oneof![Just(Version::V2), Just(Version::V3)],
                vrid in any::<u8>(),
                interval_cs in any::<u16>(),
                addresses in vec(any_addr(), 0..300),
                auth in proptest::option::of(any::<[u8; 8]>()),
                src in any_addr(),
                dst in any_addr(),
                form in v3_checksum(),
            ) {
                let repr = Repr { version, vrid, priority: 1, interval_cs, addresses, auth };
                if let Ok(bytes) = repr.to_bytes(src, dst, form) {
                    prop_assert_eq!(Repr::parse(&bytes, src, dst).map(|r| r.0), Ok(repr));
                }
            }
        }
    }
}
