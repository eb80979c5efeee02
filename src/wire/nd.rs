//! Unsolicited neighbour advertisement (RFC 4861 4.4, 7.2.6) for a new IPv6
//! master, and an NA parser for tests that capture frames.

use std::net::{IpAddr, Ipv6Addr};

use super::vrrp::checksum_with_pseudo_header;

/// Why a frame is not a well-formed neighbour advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("frame too short for Ethernet + IPv6 + NA ({0} bytes, need at least 78)")]
    Truncated(usize),
    #[error("ethertype {0:#06x} is not IPv6 (0x86dd)")]
    EtherType(u16),
    #[error("IPv6 payload length {declared} exceeds the {available} bytes present")]
    PayloadLength { declared: usize, available: usize },
    #[error("next header {0} is not ICMPv6 (58); extension headers are not supported")]
    NextHeader(u8),
    #[error("ICMPv6 type {0}, code {1} is not a neighbour advertisement (136, 0)")]
    NotNa(u8, u8),
    #[error("ICMPv6 checksum mismatch")]
    Checksum,
    #[error("malformed neighbour discovery option")]
    BadOption,
}

/// A neighbour advertisement, with the Ethernet and IPv6 fields a test wants
/// to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaRepr {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub hop_limit: u8,
    pub router: bool,
    pub solicited: bool,
    pub override_flag: bool,
    pub target: Ipv6Addr,
    /// The Target Link-Layer Address option (type 2), if present.
    pub target_mac: Option<[u8; 6]>,
}

/// Ethernet II + IPv6 header + ICMPv6 NA. The NA itself (RFC 4861 4.4):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |R|S|O|                     Reserved                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       Target Address                          |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type (2)  |   Length (1)  |  Link-Layer Address (6 bytes) |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
mod field {
    use std::ops::Range;

    pub const ETH_DST: Range<usize> = 0..6;
    pub const ETH_SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const IP6: usize = 14;
    pub const IP6_VER_TC_FLOW: Range<usize> = 14..18;
    pub const IP6_PAYLOAD_LEN: Range<usize> = 18..20;
    pub const IP6_NEXT_HEADER: usize = 20;
    pub const IP6_HOP_LIMIT: usize = 21;
    pub const IP6_SRC: Range<usize> = 22..38;
    pub const IP6_DST: Range<usize> = 38..54;
    pub const ICMP: usize = 54;
    // Offsets inside the ICMPv6 message.
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS: usize = 4;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: usize = 24;
}

const ETHERTYPE_IPV6: u16 = 0x86dd;
const NEXT_HEADER_ICMPV6: u8 = 58;
const TYPE_NA: u8 = 136;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LLADDR: u8 = 2;
/// ICMPv6 NA without options.
const NA_LEN: usize = field::OPTIONS;
/// NA plus one Target Link-Layer Address option for Ethernet.
const NA_WITH_LLADDR_LEN: usize = NA_LEN + 8;

/// An unsolicited NA announcing `target` at `src_mac`: Ethernet to
/// 33:33:00:00:00:01, IPv6 from `src_ip` to ff02::1 with hop limit 255,
/// Override set, Solicited and Router clear, and a Target Link-Layer Address
/// option carrying `src_mac` (RFC 4861 7.2.6).
pub fn unsolicited_na(src_mac: [u8; 6], src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst_ip = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

    let mut icmp = [0u8; NA_WITH_LLADDR_LEN];
    icmp[field::TYPE] = TYPE_NA;
    icmp[field::FLAGS] = FLAG_OVERRIDE;
    icmp[field::TARGET].copy_from_slice(&target.octets());
    icmp[field::OPTIONS] = OPTION_TARGET_LLADDR;
    icmp[field::OPTIONS + 1] = 1; // in units of 8 bytes
    icmp[field::OPTIONS + 2..].copy_from_slice(&src_mac);
    let sum = checksum_with_pseudo_header(
        IpAddr::V6(src_ip),
        IpAddr::V6(dst_ip),
        NEXT_HEADER_ICMPV6,
        &icmp,
    );
    icmp[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());

    let mut frame = vec![0u8; field::ICMP];
    frame[field::ETH_DST].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    frame[field::ETH_SRC].copy_from_slice(&src_mac);
    frame[field::ETHERTYPE].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame[field::IP6_VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    // NA_WITH_LLADDR_LEN is 32: it fits in the 16-bit payload length.
    frame[field::IP6_PAYLOAD_LEN].copy_from_slice(&(NA_WITH_LLADDR_LEN as u16).to_be_bytes());
    frame[field::IP6_NEXT_HEADER] = NEXT_HEADER_ICMPV6;
    frame[field::IP6_HOP_LIMIT] = 255;
    frame[field::IP6_SRC].copy_from_slice(&src_ip.octets());
    frame[field::IP6_DST].copy_from_slice(&dst_ip.octets());
    frame.extend_from_slice(&icmp);
    frame
}

fn v6(bytes: &[u8]) -> Ipv6Addr {
    let octets: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
    Ipv6Addr::from(octets)
}

fn mac(bytes: &[u8]) -> [u8; 6] {
    bytes.try_into().unwrap_or([0; 6])
}

/// Walks the options; returns the first Target Link-Layer Address found.
fn target_lladdr(mut options: &[u8]) -> Result<Option<[u8; 6]>, Error> {
    let mut found = None;
    while !options.is_empty() {
        let (kind, units) = match options {
            [kind, units, ..] => (*kind, usize::from(*units)),
            _ => return Err(Error::BadOption),
        };
        // RFC 4861 4.6: a zero length is invalid and the packet is dropped.
        let len = units * 8;
        if len == 0 || len > options.len() {
            return Err(Error::BadOption);
        }
        if kind == OPTION_TARGET_LLADDR && found.is_none() && len == 8 {
            found = Some(mac(&options[2..8]));
        }
        options = &options[len..];
    }
    Ok(found)
}

/// Parses an Ethernet frame carrying an IPv6 neighbour advertisement (no
/// extension headers) and verifies its ICMPv6 checksum. Bytes beyond the
/// IPv6 payload length are ignored.
pub fn parse_na(frame: &[u8]) -> Result<NaRepr, Error> {
    if frame.len() < field::ICMP + NA_LEN {
        return Err(Error::Truncated(frame.len()));
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype != ETHERTYPE_IPV6 {
        return Err(Error::EtherType(ethertype));
    }
    let declared = usize::from(u16::from_be_bytes([
        frame[field::IP6_PAYLOAD_LEN.start],
        frame[field::IP6_PAYLOAD_LEN.start + 1],
    ]));
    let icmp = frame
        .get(field::ICMP..field::ICMP + declared)
        .ok_or(Error::PayloadLength {
            declared,
            available: frame.len() - field::ICMP,
        })?;
    let next_header = frame[field::IP6_NEXT_HEADER];
    if next_header != NEXT_HEADER_ICMPV6 {
        return Err(Error::NextHeader(next_header));
    }
    let ip6 = &frame[field::IP6..field::ICMP];
    let src_ip = v6(&frame[field::IP6_SRC]);
    let dst_ip = v6(&frame[field::IP6_DST]);
    if icmp.len() < NA_LEN {
        return Err(Error::Truncated(frame.len()));
    }
    if (icmp[field::TYPE], icmp[field::CODE]) != (TYPE_NA, 0) {
        return Err(Error::NotNa(icmp[field::TYPE], icmp[field::CODE]));
    }
    let sum = checksum_with_pseudo_header(
        IpAddr::V6(src_ip),
        IpAddr::V6(dst_ip),
        NEXT_HEADER_ICMPV6,
        icmp,
    );
    if sum != 0 {
        return Err(Error::Checksum);
    }
    let flags = icmp[field::FLAGS];
    Ok(NaRepr {
        eth_dst: mac(&frame[field::ETH_DST]),
        eth_src: mac(&frame[field::ETH_SRC]),
        src_ip,
        dst_ip,
        hop_limit: ip6[field::IP6_HOP_LIMIT - field::IP6],
        router: flags & FLAG_ROUTER != 0,
        solicited: flags & FLAG_SOLICITED != 0,
        override_flag: flags & FLAG_OVERRIDE != 0,
        target: v6(&icmp[field::TARGET]),
        target_mac: target_lladdr(&icmp[field::OPTIONS..])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::hex_fixture;
    use crate::wire::vrrp::checksum;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    fn ll(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last)
    }

    fn expected(src_ip: Ipv6Addr, target: Ipv6Addr) -> NaRepr {
        NaRepr {
            eth_dst: [0x33, 0x33, 0, 0, 0, 1],
            eth_src: MAC,
            src_ip,
            dst_ip: "ff02::1".parse().unwrap(),
            hop_limit: 255,
            router: false,
            solicited: false,
            override_flag: true,
            target,
            target_mac: Some(MAC),
        }
    }

    #[test]
    fn unsolicited_na_fields() {
        let frame = unsolicited_na(MAC, ll(0x54), ll(0x54));
        assert_eq!(frame.len(), 86);
        assert_eq!(parse_na(&frame).unwrap(), expected(ll(0x54), ll(0x54)));
    }

    #[test]
    fn unsolicited_na_checksum_is_independent() {
        // Recompute the ICMPv6 checksum by hand, pseudo-header spelled out
        // (RFC 8200 8.1), instead of trusting the shared helper twice.
        let frame = unsolicited_na(MAC, ll(1), "fd00::54".parse().unwrap());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&frame[22..54]);
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(&frame[54..]);
        assert_eq!(checksum(&pseudo), 0);
        assert_ne!(&frame[56..58], &[0, 0]);
    }

    #[test]
    fn keepalived_na_matches_ours() {
        let captured = hex_fixture(include_str!("../../tests/fixtures/una.hex"));
        let repr = parse_na(&captured).unwrap();
        // keepalived 2.2.7 sends from the VIP itself, not the interface's
        // link-local address.
        assert_eq!(repr, expected(ll(0x54), ll(0x54)));
        assert_eq!(unsolicited_na(MAC, ll(0x54), ll(0x54)), captured);
    }

    #[test]
    fn corrupted_checksum_is_refused() {
        let mut frame = unsolicited_na(MAC, ll(1), ll(0x54));
        frame[70] ^= 1;
        assert_eq!(parse_na(&frame), Err(Error::Checksum));
    }

    #[test]
    fn short_frame_is_refused() {
        let frame = unsolicited_na(MAC, ll(1), ll(0x54));
        assert_eq!(parse_na(&frame[..77]), Err(Error::Truncated(77)));
    }

    #[test]
    fn payload_length_beyond_frame_is_refused() {
        let frame = unsolicited_na(MAC, ll(1), ll(0x54));
        assert_eq!(
            parse_na(&frame[..80]),
            Err(Error::PayloadLength {
                declared: 32,
                available: 26
            })
        );
    }

    #[test]
    fn other_icmp_type_is_refused() {
        let mut frame = unsolicited_na(MAC, ll(1), ll(0x54));
        frame[54] = 135;
        assert_eq!(parse_na(&frame), Err(Error::NotNa(135, 0)));
    }

    #[test]
    fn other_next_header_is_refused() {
        let mut frame = unsolicited_na(MAC, ll(1), ll(0x54));
        frame[20] = 0;
        assert_eq!(parse_na(&frame), Err(Error::NextHeader(0)));
    }

    #[test]
    fn ipv4_frame_is_refused() {
        let mut frame = unsolicited_na(MAC, ll(1), ll(0x54));
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_na(&frame), Err(Error::EtherType(0x0800)));
    }

    #[test]
    fn zero_length_option_is_refused() {
        let mut frame = unsolicited_na(MAC, ll(1), ll(0x54));
        frame[79] = 0;
        frame[56..58].fill(0);
        let sum = checksum_with_pseudo_header(
            IpAddr::V6(ll(1)),
            "ff02::1".parse().unwrap(),
            58,
            &frame[54..],
        );
        frame[56..58].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_na(&frame), Err(Error::BadOption));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let frame = unsolicited_na(MAC, ll(1), ll(0x54));
        for len in 0..=frame.len() {
            let _ = parse_na(&frame[..len]);
        }
        for i in 0..frame.len() {
            let mut f = frame.clone();
            f[i] = 0xff;
            let _ = parse_na(&f);
        }
    }
}
