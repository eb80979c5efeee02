//! keepalived's IPsec Authentication Header for VRRPv2 over IPv4
//! (`authentication { auth_type AH }`).
//!
//! Not IPsec proper: no security association, no key exchange. keepalived
//! puts an RFC 2402 AH header between the IPv4 header and the VRRP message
//! and fills it itself, and baton does exactly the same so that the two
//! authenticate each other:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | IPv4 header, protocol 51 (AH), TOS 0xc0, TTL 255, id != 0     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header=112|  Payload Len=4 |          RESERVED = 0         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Security Parameters Index = the IPv4 source address    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Integrity Check Value: HMAC-MD5 truncated to 96 bits   |
//! |                        (3 words)                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | VRRPv2 advert, auth type 2, 8 zero bytes of auth data         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! What keepalived 2.2.7 does, and this module with it (checked against a
//! capture, `tests/fixtures/v2_ah.hex`):
//! - The ICV is HMAC-MD5 (RFC 2104) keyed by the 8-byte `auth_pass` field
//!   (the password zero padded, or cut, to 8 bytes), over the whole IPv4
//!   datagram with TOS, flags/fragment offset and header checksum zeroed,
//!   the TTL zeroed too in unicast mode only, and the ICV field zeroed;
//!   the first 12 bytes are sent (RFC 2403).
//! - Payload Len is 4 (RFC 2402 2.2: 6 words minus 2).
//! - The sender chooses the SPI: its IPv4 source address. A receiver drops
//!   an advert whose SPI is not the packet's source.
//! - One sequence number counter per instance, shared by sending and
//!   receiving ([`SeqCounter`]).
//! - The IP identification must not be 0: sent with IP_HDRINCL, the kernel
//!   would fill in its own after the ICV was computed.

use std::net::Ipv4Addr;

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;

use super::ip;
use super::vrrp::{self, checksum, Error};

/// The IP protocol number of AH.
pub const PROTOCOL: u8 = 51;
/// Length of keepalived's AH header (with the 96-bit ICV).
pub const HEADER_LEN: usize = 24;
/// Length of the truncated HMAC-MD5.
pub const ICV_LEN: usize = 12;
/// The key is the v2 authentication data field: 8 bytes.
pub const KEY_LEN: usize = 8;
/// RFC 2402 2.2: the header length in 32-bit words, minus 2.
const PAYLOAD_LEN_WORDS: u8 = 4;
/// keepalived's TOS (precedence internetwork control).
const TOS: u8 = 0xc0;

mod field {
    use std::ops::Range;

    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const SPI: Range<usize> = 4..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const ICV: Range<usize> = 12..24;

    // In the IPv4 header.
    pub const IP_TOS: usize = 1;
    pub const IP_FRAG: Range<usize> = 6..8;
    pub const IP_TTL: usize = 8;
    pub const IP_CHECKSUM: Range<usize> = 10..12;
}

/// Why a datagram received on the AH socket is no authenticated VRRP advert
/// (before any key is tried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AhError {
    /// The IPv4 header is malformed, or too short for an AH header.
    #[error("{0}")]
    Ip(Error),
    /// Not AH, or AH around something other than VRRP.
    #[error("not an AH-wrapped VRRP packet (protocol {protocol}, next header {next_header})")]
    NotVrrp { protocol: u8, next_header: u8 },
}

/// A datagram on the AH socket, its structure checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The Security Parameters Index, as the address it should be.
    pub spi: Ipv4Addr,
    pub seq: u32,
    /// The whole datagram, cut to the IPv4 total length.
    pub datagram: &'a [u8],
    /// Length of the IPv4 header (options included).
    pub header_len: usize,
    /// The VRRP message after the AH header.
    pub vrrp: &'a [u8],
}

/// Checks the IPv4 and AH headers of a datagram as a raw socket hands it
/// over (Ethernet padding past the total length is cut). Never panics.
pub fn parse(buf: &[u8]) -> Result<Parsed<'_>, AhError> {
    let (header, payload) = ip::parse_ipv4(buf).map_err(AhError::Ip)?;
    // parse_ipv4 cut the datagram to its total length: header + payload.
    let total = buf
        .len()
        .min(usize::from(u16::from_be_bytes([buf[2], buf[3]])));
    let header_len = total - payload.len();
    let datagram = &buf[..total];
    if header.protocol != PROTOCOL {
        return Err(AhError::NotVrrp {
            protocol: header.protocol,
            next_header: 0,
        });
    }
    let Some(ah) = payload.get(..HEADER_LEN) else {
        return Err(AhError::Ip(Error::Truncated));
    };
    if ah[field::NEXT_HEADER] != vrrp::PROTOCOL {
        return Err(AhError::NotVrrp {
            protocol: header.protocol,
            next_header: ah[field::NEXT_HEADER],
        });
    }
    let spi = Ipv4Addr::new(ah[4], ah[5], ah[6], ah[7]);
    let seq = u32::from_be_bytes([ah[8], ah[9], ah[10], ah[11]]);
    Ok(Parsed {
        src: header.src,
        dst: header.dst,
        ttl: header.ttl,
        spi,
        seq,
        datagram,
        header_len,
        vrrp: &payload[HEADER_LEN..],
    })
}

/// The HMAC-MD5 over `datagram` (whose IPv4 header is `header_len` bytes,
/// followed by an AH header) with the mutable fields and the ICV zeroed, as
/// keepalived computes it; `unicast` zeroes the TTL too. Never panics: a
/// datagram too short to hold the headers is hashed as it is.
fn mac(key: &[u8; KEY_LEN], datagram: &[u8], header_len: usize, unicast: bool) -> Hmac<Md5> {
    // A key of any length is accepted by HMAC; 8 bytes it is.
    let mut m = <Hmac<Md5> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    let Some(header) = datagram
        .get(..header_len)
        .filter(|h| h.len() >= ip::MIN_HEADER_LEN)
    else {
        m.update(datagram);
        return m;
    };
    // At most 60 bytes (IHL 15).
    let mut ip_header = [0u8; 60];
    let Some(copy) = ip_header.get_mut(..header.len()) else {
        m.update(datagram);
        return m;
    };
    copy.copy_from_slice(header);
    copy[field::IP_TOS] = 0;
    copy[field::IP_FRAG].fill(0);
    copy[field::IP_CHECKSUM].fill(0);
    if unicast {
        copy[field::IP_TTL] = 0;
    }
    m.update(copy);
    let rest = &datagram[header_len..];
    match rest.get(..HEADER_LEN) {
        Some(ah) => {
            m.update(&ah[..field::ICV.start]);
            m.update(&[0u8; ICV_LEN]);
            m.update(&rest[HEADER_LEN..]);
        }
        None => m.update(rest),
    }
    m
}

/// The 96-bit ICV of `datagram` (see [`mac`]).
pub fn icv(
    key: &[u8; KEY_LEN],
    datagram: &[u8],
    header_len: usize,
    unicast: bool,
) -> [u8; ICV_LEN] {
    let full = mac(key, datagram, header_len, unicast)
        .finalize()
        .into_bytes();
    let mut out = [0u8; ICV_LEN];
    out.copy_from_slice(&full[..ICV_LEN]);
    out
}

/// Whether the datagram's ICV is right for `key`, compared in constant time.
pub fn verify(key: &[u8; KEY_LEN], p: &Parsed<'_>, unicast: bool) -> bool {
    let Some(sent) = p
        .datagram
        .get(p.header_len..)
        .and_then(|ah| ah.get(field::ICV))
    else {
        return false;
    };
    mac(key, p.datagram, p.header_len, unicast)
        .verify_truncated_left(sent)
        .is_ok()
}

/// The VRRPv2 message of an AH advert: `repr` (its `auth` ignored) with
/// authentication type 2 and 8 zero bytes of authentication data, as
/// keepalived sends it.
pub fn vrrp_message(repr: &vrrp::Repr, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Vec<u8>, Error> {
    if repr.version != vrrp::Version::V2 {
        return Err(Error::Version(3));
    }
    let plain = vrrp::Repr {
        auth: None,
        ..repr.clone()
    };
    let mut bytes = plain.to_bytes(src.into(), dst.into(), vrrp::V3Checksum::WithPseudoHeader)?;
    // A v2 message always has the 8-byte header.
    bytes[vrrp::AUTH_TYPE_OFFSET] = vrrp::AUTH_AH;
    bytes[vrrp::CHECKSUM_OFFSET..vrrp::CHECKSUM_OFFSET + 2].fill(0);
    let sum = checksum(&bytes);
    bytes[vrrp::CHECKSUM_OFFSET..vrrp::CHECKSUM_OFFSET + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(bytes)
}

/// What varies from one AH advert to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// IPv4 identification; 0 is replaced by 1 (see the module docs).
    pub id: u16,
    pub seq: u32,
}

/// A whole IPv4 datagram (protocol 51) carrying `vrrp`, ready for a raw
/// socket with IP_HDRINCL: header checksum filled, ICV computed. `unicast`
/// leaves the TTL out of the ICV, as keepalived does for unicast peers.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    key: &[u8; KEY_LEN],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    stamp: Stamp,
    unicast: bool,
    vrrp: &[u8],
) -> Result<Vec<u8>, Error> {
    let total = ip::MIN_HEADER_LEN + HEADER_LEN + vrrp.len();
    let total_len = u16::try_from(total).map_err(|_| Error::TooManyAddresses)?;
    let mut d = vec![0u8; total];
    d[0] = 0x45;
    d[field::IP_TOS] = TOS;
    d[2..4].copy_from_slice(&total_len.to_be_bytes());
    d[4..6].copy_from_slice(&stamp.id.max(1).to_be_bytes());
    d[field::IP_TTL] = ttl;
    d[9] = PROTOCOL;
    d[12..16].copy_from_slice(&src.octets());
    d[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&d[..ip::MIN_HEADER_LEN]);
    d[field::IP_CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    let ah = &mut d[ip::MIN_HEADER_LEN..ip::MIN_HEADER_LEN + HEADER_LEN];
    ah[field::NEXT_HEADER] = vrrp::PROTOCOL;
    ah[field::PAYLOAD_LEN] = PAYLOAD_LEN_WORDS;
    ah[field::SPI].copy_from_slice(&src.octets());
    ah[field::SEQ].copy_from_slice(&stamp.seq.to_be_bytes());
    d[ip::MIN_HEADER_LEN + HEADER_LEN..].copy_from_slice(vrrp);
    let value = icv(key, &d, ip::MIN_HEADER_LEN, unicast);
    let start = ip::MIN_HEADER_LEN + field::ICV.start;
    d[start..start + ICV_LEN].copy_from_slice(&value);
    Ok(d)
}

/// One instance's AH sequence number, as keepalived keeps it: a single
/// counter for what it sends and what it accepts.
///
/// - Sending adds one first (the first advert carries 1); the counter stops
///   at 0xFFFFFFFE and marks itself cycled.
/// - An advert is accepted only with a number above the counter, which then
///   takes that number: a replayed or older advert is dropped.
/// - A backup thus follows its master, and a new master continues above the
///   old one's numbers, so the old master (now backup) accepts it.
/// - A restarted sender starts again at 1 and is dropped by peers that saw
///   higher numbers, until one of them becomes master (its master-down timer
///   ran out) and sends above them: the restarted node accepts that, takes
///   the number over, and from then on sends above it. A master hearing a
///   lower-priority advert also takes its number plus one.
/// - Becoming master with a cycled counter restarts it at 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqCounter {
    seq: u32,
    cycled: bool,
}

impl SeqCounter {
    /// The last number sent or accepted.
    pub fn current(&self) -> u32 {
        self.seq
    }

    /// The number for the next advert sent.
    pub fn next_send(&mut self) -> u32 {
        if self.seq > 0xFFFF_FFFD {
            self.cycled = true;
        } else {
            self.seq += 1;
        }
        self.seq
    }

    /// Whether an authenticated advert numbered `seq` is new; takes it over
    /// if so.
    pub fn accept(&mut self, seq: u32) -> bool {
        if seq > self.seq {
            self.seq = seq;
            true
        } else {
            false
        }
    }

    /// A valid advert came from the master (as backup) or from a preferred
    /// router (as master): whoever sends, does not cycle.
    pub fn clear_cycle(&mut self) {
        self.cycled = false;
    }

    /// As master, an advert of lower priority numbered `seq` was accepted.
    pub fn follow_lower(&mut self, seq: u32) {
        self.seq = seq.wrapping_add(1);
        self.cycled = false;
    }

    /// Becoming master.
    pub fn become_master(&mut self) {
        if self.cycled {
            self.cycled = false;
            self.seq = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::hex_fixture;
    use std::net::IpAddr;

    const KEY: [u8; 8] = *b"secret\0\0";
    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    fn capture() -> Vec<u8> {
        hex_fixture(include_str!("../../tests/fixtures/v2_ah.hex"))
    }

    fn capture_repr() -> vrrp::Repr {
        vrrp::Repr {
            version: vrrp::Version::V2,
            vrid: 52,
            priority: 150,
            interval_cs: 100,
            addresses: vec![
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 52)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 152)),
            ],
            auth: None,
        }
    }

    #[test]
    fn keepalived_capture_deconstructs() {
        let bytes = capture();
        let p = parse(&bytes).unwrap();
        assert_eq!(p.src, A);
        assert_eq!(p.dst, GROUP);
        assert_eq!(p.ttl, 255);
        assert_eq!(p.spi, A);
        assert_eq!(p.seq, 1);
        assert_eq!(p.header_len, 20);
        assert_eq!(p.datagram.len(), bytes.len());
        assert_eq!(bytes[21], PAYLOAD_LEN_WORDS);
        assert!(verify(&KEY, &p, false));
        let (repr, _) = vrrp::Repr::parse_ah(p.vrrp, A.into(), GROUP.into()).unwrap();
        assert_eq!(repr, capture_repr());
    }

    #[test]
    fn keepalived_capture_is_rebuilt_byte_for_byte() {
        let vrrp = vrrp_message(&capture_repr(), A, GROUP).unwrap();
        let built = emit(&KEY, A, GROUP, 255, Stamp { id: 1, seq: 1 }, false, &vrrp).unwrap();
        assert_eq!(built, capture());
    }

    #[test]
    fn wrong_key_fails() {
        let bytes = capture();
        let p = parse(&bytes).unwrap();
        assert!(!verify(b"secreT\0\0", &p, false));
        assert!(!verify(&[0; 8], &p, false));
        // keepalived leaves the TTL in the ICV in multicast mode only.
        assert!(!verify(&KEY, &p, true));
    }

    #[test]
    fn every_covered_bit_matters_and_mutable_fields_do_not() {
        let bytes = capture();
        for i in (0..bytes.len()).filter(|i| !(10..12).contains(i)) {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            b[10..12].fill(0);
            let sum = checksum(&b[..20]);
            b[10..12].copy_from_slice(&sum.to_be_bytes());
            match parse(&b) {
                // Version/IHL, total length, protocol, next header.
                Err(_) => assert!([0, 2, 3, 9, 20].contains(&i), "byte {i}"),
                Ok(p) => assert_eq!(verify(&KEY, &p, false), [1, 6, 7].contains(&i), "byte {i}"),
            }
        }
    }

    #[test]
    fn unicast_leaves_the_ttl_out() {
        let vrrp = vrrp_message(&capture_repr(), A, Ipv4Addr::new(192, 0, 2, 2)).unwrap();
        let stamp = Stamp { id: 7, seq: 9 };
        let d = emit(
            &KEY,
            A,
            Ipv4Addr::new(192, 0, 2, 2),
            255,
            stamp,
            true,
            &vrrp,
        )
        .unwrap();
        let mut routed = d.clone();
        routed[8] = 250;
        let sum = {
            routed[10..12].fill(0);
            checksum(&routed[..20])
        };
        routed[10..12].copy_from_slice(&sum.to_be_bytes());
        assert!(verify(&KEY, &parse(&routed).unwrap(), true));
        assert!(!verify(&KEY, &parse(&routed).unwrap(), false));
    }

    #[test]
    fn id_zero_is_never_sent() {
        let vrrp = vrrp_message(&capture_repr(), A, GROUP).unwrap();
        let d = emit(&KEY, A, GROUP, 255, Stamp { id: 0, seq: 1 }, false, &vrrp).unwrap();
        assert_eq!(&d[4..6], &[0, 1]);
    }

    #[test]
    fn malformed_input_is_refused() {
        let bytes = capture();
        for len in 0..44 {
            assert!(parse(&bytes[..len]).is_err(), "length {len}");
        }
        // Ethernet padding is cut.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse(&padded).unwrap().datagram, &bytes[..]);
        // AH around something else.
        let mut other = bytes.clone();
        other[20] = 6;
        assert!(matches!(
            parse(&other),
            Err(AhError::NotVrrp { next_header: 6, .. })
        ));
        // VRRP without AH on the AH path.
        let plain = ip::emit_ipv4(A, GROUP, 255, vrrp::PROTOCOL, &bytes[44..]);
        assert!(matches!(
            parse(&plain),
            Err(AhError::NotVrrp { protocol: 112, .. })
        ));
    }

    #[test]
    fn v3_has_no_ah() {
        let mut r = capture_repr();
        r.version = vrrp::Version::V3;
        assert!(vrrp_message(&r, A, GROUP).is_err());
    }

    #[test]
    fn sequence_numbers_as_keepalived() {
        let mut c = SeqCounter::default();
        assert_eq!(c.next_send(), 1);
        assert_eq!(c.next_send(), 2);
        // Replayed and older adverts are dropped; newer ones taken over.
        assert!(!c.accept(2));
        assert!(!c.accept(1));
        assert!(c.accept(10));
        assert_eq!(c.next_send(), 11);
        // A restarted sender (starting at 1 again) is refused...
        assert!(!c.accept(1));
        // ...and, as master hearing a lower priority, we follow it.
        c.follow_lower(3);
        assert_eq!(c.next_send(), 5);
    }

    #[test]
    fn counter_saturates_and_restarts_on_becoming_master() {
        let mut c = SeqCounter::default();
        assert!(c.accept(0xFFFF_FFFD));
        assert_eq!(c.next_send(), 0xFFFF_FFFE);
        assert_eq!(c.next_send(), 0xFFFF_FFFE);
        c.become_master();
        assert_eq!(c.next_send(), 1);
        // Not cycled: becoming master keeps the count.
        c.become_master();
        assert_eq!(c.next_send(), 2);
        // A peer's advert clears the cycle mark.
        assert!(c.accept(0xFFFF_FFFF));
        assert_eq!(c.next_send(), 0xFFFF_FFFF);
        c.clear_cycle();
        c.become_master();
        assert_eq!(c.current(), 0xFFFF_FFFF);
    }
}
