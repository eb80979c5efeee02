//! Gratuitous ARP (RFC 5227 3: an ARP announcement) for a new IPv4 master,
//! and an ARP parser for tests that capture frames.

use std::net::Ipv4Addr;

/// Why a frame is not a usable Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("frame too short for Ethernet + ARP ({0} bytes, need 42)")]
    Truncated(usize),
    #[error("ethertype {0:#06x} is not ARP (0x0806)")]
    EtherType(u16),
    #[error("not Ethernet/IPv4 ARP (htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen})")]
    Format {
        htype: u16,
        ptype: u16,
        hlen: u8,
        plen: u8,
    },
}

/// An ARP packet for Ethernet hardware and IPv4 protocol addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// 1 = request, 2 = reply.
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

/// Ethernet II header followed by the ARP packet (RFC 826):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Ethernet destination                       |
/// +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
/// |                      Ethernet source                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     EtherType (0x0806)        |   Hardware type (1)           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Protocol type (0x0800)      |  HLEN (6)     |   PLEN (4)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Operation              |  Sender hardware address ...  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  ... sender HA, sender IP, target HA, target IP (6+4+6+4)     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
mod field {
    use std::ops::Range;

    pub const ETH_DST: Range<usize> = 0..6;
    pub const ETH_SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HTYPE: Range<usize> = 14..16;
    pub const PTYPE: Range<usize> = 16..18;
    pub const HLEN: usize = 18;
    pub const PLEN: usize = 19;
    pub const OPER: Range<usize> = 20..22;
    pub const SHA: Range<usize> = 22..28;
    pub const SPA: Range<usize> = 28..32;
    pub const THA: Range<usize> = 32..38;
    pub const TPA: Range<usize> = 38..42;
}

/// Length of an Ethernet + ARP frame before padding.
pub const FRAME_LEN: usize = 42;

pub const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV4: u16 = 0x0800;
const HTYPE_ETHERNET: u16 = 1;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// A gratuitous ARP announcing that `ip` is at `src_mac`: a broadcast ARP
/// request with sender = target = `ip` and a zero target hardware address
/// (RFC 5227 3, "ARP Announcement"). The frame is unpadded; the NIC pads it.
pub fn gratuitous_arp(src_mac: [u8; 6], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    frame[field::ETH_DST].copy_from_slice(&[0xff; 6]);
    frame[field::ETH_SRC].copy_from_slice(&src_mac);
    frame[field::ETHERTYPE].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    frame[field::PTYPE].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame[field::HLEN] = 6;
    frame[field::PLEN] = 4;
    frame[field::OPER].copy_from_slice(&OP_REQUEST.to_be_bytes());
    frame[field::SHA].copy_from_slice(&src_mac);
    frame[field::SPA].copy_from_slice(&ip.octets());
    // THA stays zero.
    frame[field::TPA].copy_from_slice(&ip.octets());
    frame
}

fn be16(frame: &[u8], range: std::ops::Range<usize>) -> u16 {
    match frame.get(range) {
        Some([hi, lo]) => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

fn mac(frame: &[u8], range: std::ops::Range<usize>) -> [u8; 6] {
    frame
        .get(range)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

fn ipv4(frame: &[u8], range: std::ops::Range<usize>) -> Ipv4Addr {
    match frame.get(range) {
        Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Parses an Ethernet frame carrying Ethernet/IPv4 ARP. Padding after the
/// 42 bytes is ignored.
pub fn parse_arp(frame: &[u8]) -> Result<ArpRepr, Error> {
    if frame.len() < FRAME_LEN {
        return Err(Error::Truncated(frame.len()));
    }
    let ethertype = be16(frame, field::ETHERTYPE);
    if ethertype != ETHERTYPE_ARP {
        return Err(Error::EtherType(ethertype));
    }
    let (htype, ptype) = (be16(frame, field::HTYPE), be16(frame, field::PTYPE));
    let (hlen, plen) = (frame[field::HLEN], frame[field::PLEN]);
    if htype != HTYPE_ETHERNET || ptype != ETHERTYPE_IPV4 || hlen != 6 || plen != 4 {
        return Err(Error::Format {
            htype,
            ptype,
            hlen,
            plen,
        });
    }
    Ok(ArpRepr {
        op: be16(frame, field::OPER),
        sender_mac: mac(frame, field::SHA),
        sender_ip: ipv4(frame, field::SPA),
        target_mac: mac(frame, field::THA),
        target_ip: ipv4(frame, field::TPA),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::hex_fixture;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    #[test]
    fn gratuitous_arp_bytes() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 53));
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // source MAC
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet / IPv4
            0x00, 0x01, // request
            0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 192, 0, 2, 53, // sender
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 53, // target
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn gratuitous_arp_parses() {
        let ip = Ipv4Addr::new(192, 0, 2, 7);
        let repr = parse_arp(&gratuitous_arp(MAC, ip)).unwrap();
        assert_eq!(
            repr,
            ArpRepr {
                op: OP_REQUEST,
                sender_mac: MAC,
                sender_ip: ip,
                target_mac: [0; 6],
                target_ip: ip,
            }
        );
    }

    #[test]
    fn keepalived_garp_matches_ours_but_for_target_mac() {
        let captured = hex_fixture(include_str!("../../tests/fixtures/garp.hex"));
        let repr = parse_arp(&captured).unwrap();
        let vip = Ipv4Addr::new(192, 0, 2, 53);
        // keepalived 2.2.7 fills the target hardware address with the
        // broadcast address; RFC 5227 asks for zero and receivers ignore it.
        assert_eq!(
            repr,
            ArpRepr {
                op: OP_REQUEST,
                sender_mac: MAC,
                sender_ip: vip,
                target_mac: [0xff; 6],
                target_ip: vip,
            }
        );
        let ours = gratuitous_arp(MAC, vip);
        assert_eq!(captured[..field::THA.start], ours[..field::THA.start]);
        assert_eq!(captured[field::TPA], ours[field::TPA]);
    }

    #[test]
    fn padded_frame_parses() {
        let mut frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 7)).to_vec();
        frame.resize(60, 0);
        assert!(parse_arp(&frame).is_ok());
    }

    #[test]
    fn short_frame_is_refused() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(parse_arp(&frame[..41]), Err(Error::Truncated(41)));
    }

    #[test]
    fn other_ethertype_is_refused() {
        let mut frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 7));
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_arp(&frame), Err(Error::EtherType(0x0800)));
    }

    #[test]
    fn other_hardware_is_refused() {
        let mut frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 7));
        frame[18] = 8;
        assert!(matches!(
            parse_arp(&frame),
            Err(Error::Format { hlen: 8, .. })
        ));
    }
}
