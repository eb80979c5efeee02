//! Minimal IPv4 header handling for the raw-socket receive path: enough to
//! find the VRRP message, its addresses and the TTL, and to build packets in
//! tests. IPv6 needs no counterpart: the kernel strips the IPv6 header on raw
//! sockets and hands the hop limit over as ancillary data.

use std::net::Ipv4Addr;

use super::vrrp::{checksum, Error};

/// IPv4 header (RFC 791 3.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |Type of Service|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Options                    |    Padding    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
}

mod field {
    use std::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Precedence "internetwork control", as keepalived sends adverts.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

fn addr(bytes: &[u8]) -> Ipv4Addr {
    match bytes {
        [a, b, c, d] => Ipv4Addr::new(*a, *b, *c, *d),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Parses the IPv4 header at the start of `buf` and returns it with the
/// payload, cut to the header's total length (Ethernet pads short frames, so
/// bytes past the total length are not payload). Options are skipped (IHL is
/// honoured). The header checksum is verified.
pub fn parse_ipv4(buf: &[u8]) -> Result<(Ipv4Header, &[u8]), Error> {
    if buf.len() < MIN_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let version = buf[field::VER_IHL] >> 4;
    if version != 4 {
        return Err(Error::IpVersion(version));
    }
    let ihl = buf[field::VER_IHL] & 0x0f;
    let header_len = usize::from(ihl) * 4;
    if header_len < MIN_HEADER_LEN {
        return Err(Error::IpHeaderLength(ihl));
    }
    let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if total_len < header_len {
        return Err(Error::LengthMismatch);
    }
    let packet = buf.get(..total_len).ok_or(Error::Truncated)?;
    let header = &packet[..header_len];
    if checksum(header) != 0 {
        return Err(Error::IpChecksum);
    }
    let parsed = Ipv4Header {
        src: addr(&header[field::SRC]),
        dst: addr(&header[field::DST]),
        ttl: header[field::TTL],
        protocol: header[field::PROTOCOL],
    };
    Ok((parsed, &packet[header_len..]))
}

/// Builds an IPv4 packet (20-byte header, TOS 0xc0 like keepalived, id 0,
/// no fragmentation flags, header checksum filled) around `payload`.
/// A payload longer than an IPv4 packet can carry is cut to fit.
pub fn emit_ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(usize::from(u16::MAX) - MIN_HEADER_LEN)];
    let total_len = u16::try_from(MIN_HEADER_LEN + payload.len()).unwrap_or(u16::MAX);
    let mut packet = vec![0u8; MIN_HEADER_LEN];
    packet[field::VER_IHL] = 0x45;
    packet[field::TOS] = TOS_INTERNETWORK_CONTROL;
    packet[field::TOTAL_LEN].copy_from_slice(&total_len.to_be_bytes());
    packet[field::TTL] = ttl;
    packet[field::PROTOCOL] = protocol;
    packet[field::SRC].copy_from_slice(&src.octets());
    packet[field::DST].copy_from_slice(&dst.octets());
    let sum = checksum(&packet);
    packet[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        emit_ipv4(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(224, 0, 0, 18),
            255,
            112,
            &[1, 2, 3, 4],
        )
    }

    #[test]
    fn round_trip() {
        let packet = sample();
        assert_eq!(packet.len(), 24);
        let (header, payload) = parse_ipv4(&packet).unwrap();
        assert_eq!(
            header,
            Ipv4Header {
                src: Ipv4Addr::new(192, 0, 2, 1),
                dst: Ipv4Addr::new(224, 0, 0, 18),
                ttl: 255,
                protocol: 112,
            }
        );
        assert_eq!(payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn ethernet_padding_is_cut() {
        let mut frame = sample();
        frame.resize(46, 0xee);
        let (_, payload) = parse_ipv4(&frame).unwrap();
        assert_eq!(payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6: one 4-byte option word (four NOPs) before the payload.
        let mut packet = sample();
        packet[0] = 0x46;
        packet.splice(20..20, [1u8, 1, 1, 1]);
        packet[2..4].copy_from_slice(&28u16.to_be_bytes());
        packet[10..12].fill(0);
        let sum = checksum(&packet[..24]);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        let (header, payload) = parse_ipv4(&packet).unwrap();
        assert_eq!(header.ttl, 255);
        assert_eq!(payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn short_buffer_is_truncated() {
        assert_eq!(parse_ipv4(&sample()[..19]), Err(Error::Truncated));
    }

    #[test]
    fn total_length_beyond_buffer_is_truncated() {
        assert_eq!(parse_ipv4(&sample()[..23]), Err(Error::Truncated));
    }

    #[test]
    fn total_length_below_header_is_mismatch() {
        let mut packet = sample();
        packet[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(parse_ipv4(&packet), Err(Error::LengthMismatch));
    }

    #[test]
    fn ipv6_is_refused() {
        let mut packet = sample();
        packet[0] = 0x65;
        assert_eq!(parse_ipv4(&packet), Err(Error::IpVersion(6)));
    }

    #[test]
    fn short_ihl_is_refused() {
        let mut packet = sample();
        packet[0] = 0x44;
        assert_eq!(parse_ipv4(&packet), Err(Error::IpHeaderLength(4)));
    }

    #[test]
    fn ihl_beyond_total_length_is_mismatch() {
        let mut packet = sample();
        packet[0] = 0x47; // 28-byte header, but total length 24
        assert_eq!(parse_ipv4(&packet), Err(Error::LengthMismatch));
    }

    #[test]
    fn corrupted_header_is_refused() {
        let mut packet = sample();
        packet[8] = 254;
        assert_eq!(parse_ipv4(&packet), Err(Error::IpChecksum));
    }
}
