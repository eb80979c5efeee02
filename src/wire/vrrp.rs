//! VRRP v2 (RFC 3768) and v3 (RFC 5798, RFC 9568) advertisements.
//! SKELETON: types are final; function bodies are filled in by the wire work.

use std::net::IpAddr;

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

/// Why a received VRRP packet was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("packet too short")]
    Truncated,
}

// TEMPORARY stubs so the core compiles while the wire work lands on its branch.
impl Error {
    pub fn reason(&self) -> &'static str {
        "truncated"
    }
}
#[allow(non_snake_case)]
pub fn Ttl(_: u8) -> Error {
    Error::Truncated
}
impl Repr {
    pub fn parse(_p: &[u8], _s: IpAddr, _d: IpAddr) -> Result<(Repr, ChecksumKind), Error> {
        Err(Error::Truncated)
    }
    pub fn to_bytes(&self, _s: IpAddr, _d: IpAddr, _m: V3Checksum) -> Result<Vec<u8>, Error> {
        Err(Error::Truncated)
    }
}
