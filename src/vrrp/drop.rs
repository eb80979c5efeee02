//! Why a received VRRP packet was dropped: one typed reason per drop
//! counter of `baton status`.
//!
//! The counter names ([`DropReason::as_str`]) are a stable interface:
//! `baton status --json`, the netns tests and operators' scripts read them.
//! A variant may be added; an existing name must not change.

use std::fmt;

use super::Rejected;
use crate::wire::vrrp::Error as WireError;

/// Declares [`DropReason`] from one list, so that the variants, their names
/// and [`DropReason::ALL`] cannot drift apart.
macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why a received packet was dropped; counted in
        /// [`RxStats::dropped`](super::RxStats::dropped) under
        /// [`DropReason::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The stable counter name (`bad_ttl`, `bad_checksum`,
            /// `unknown_vrid`...).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    // --- the receive path itself (`dispatch`) ---
    /// TTL / hop limit other than 255 (RFC 5798 7.1): sent from off-link.
    BadTtl => "bad_ttl",
    /// Well formed, but no instance on the interface has this VRID in this
    /// address family.
    UnknownVrid => "unknown_vrid",

    // --- the wire layer: the advert does not parse ([`WireError`]) ---
    /// Fewer than 8 bytes of VRRP header.
    Truncated => "truncated",
    /// The message length does not match its address count.
    LengthMismatch => "length_mismatch",
    /// Unsupported VRRP version, or one not valid for the address family.
    BadVersion => "bad_version",
    /// Message type other than 1 (advertisement).
    BadType => "bad_type",
    /// VRID 0.
    VridZero => "vrid_zero",
    /// Address count 0.
    CountZero => "count_zero",
    /// Fewer address bytes than the address count needs.
    AddressesTruncated => "addresses_truncated",
    /// v2 authentication type other than 0 or 1.
    BadAuthType => "bad_auth_type",
    /// Advertisement interval 0.
    IntervalZero => "interval_zero",
    /// VRRP checksum mismatch (in every accepted form).
    BadChecksum => "bad_checksum",
    /// v3 over IPv6 whose first address is not link-local (strict parse only).
    NotLinkLocal => "not_link_local",
    /// Addresses of another family than the IP header's.
    MixedFamilies => "mixed_families",
    /// IPv4 header: version other than 4.
    BadIpVersion => "bad_ip_version",
    /// IPv4 header: header length below 5 words.
    BadIpHeaderLength => "bad_ip_header_length",
    /// IPv4 header checksum mismatch.
    BadIpChecksum => "bad_ip_checksum",
    // Emit-side refusals of the wire layer. The receive path never produces
    // them; they are here so that every wire error has a reason and keeps
    // the name it always had.
    /// Interval not representable in the advert's version.
    IntervalNotRepresentable => "interval_not_representable",
    /// More than 255 addresses.
    TooManyAddresses => "too_many_addresses",
    /// Authentication asked of a v3 advert.
    AuthOnV3 => "auth_on_v3",
    /// Output buffer too small.
    BufferTooSmall => "buffer_too_small",

    // --- the instance: parsed, but refused ([`Rejected`]) ---
    /// v2 vs v3 mismatch with the configured version.
    VersionMismatch => "version_mismatch",
    /// v2: the simple-text password differs (or one side has none).
    AuthMismatch => "auth_mismatch",
    /// v2: the advert interval differs from ours.
    IntervalMismatch => "interval_mismatch",
    /// Our own address as source: a loop or a duplicate address.
    OwnAddress => "own_address",
    /// A unicast instance heard a router that is not one of its peers
    /// (keepalived's `check_unicast_src`).
    UnknownUnicastSrc => "unknown_unicast_src",
    /// With the cluster channel: a router that is not a cluster member
    /// (`accept_foreign_adverts` off).
    ForeignAdvert => "foreign_advert",

    // --- keepalived's IPsec AH (`auth_type AH`, [`crate::wire::ah`]) ---
    /// On the AH socket: not AH, or AH around something other than VRRP.
    AhNotVrrp => "ah_not_vrrp",
    /// The HMAC-MD5-96 check value is wrong: another password, or altered.
    AhBadIcv => "ah_bad_icv",
    /// The SPI is not the source address (keepalived's rule).
    AhBadSpi => "ah_bad_spi",
    /// The sequence number is not above the last one sent or accepted:
    /// replayed, older, or a restarted sender (keepalived's rule).
    AhReplay => "ah_replay",
    /// The advert's address list differs from ours (keepalived's
    /// `addr_list_err`; checked once per master with `skip_check_adv_addr`).
    AddrListMismatch => "addr_list_mismatch",
}

impl fmt::Display for DropReason {
    /// The counter name, as [`DropReason::as_str`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl From<&WireError> for DropReason {
    fn from(e: &WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::LengthMismatch => DropReason::LengthMismatch,
            WireError::Version(_) => DropReason::BadVersion,
            WireError::Type(_) => DropReason::BadType,
            WireError::VridZero => DropReason::VridZero,
            WireError::CountZero => DropReason::CountZero,
            WireError::AddressesTruncated => DropReason::AddressesTruncated,
            WireError::AuthType(_) => DropReason::BadAuthType,
            WireError::IntervalZero => DropReason::IntervalZero,
            WireError::Checksum => DropReason::BadChecksum,
            WireError::NotLinkLocal => DropReason::NotLinkLocal,
            WireError::Ttl(_) => DropReason::BadTtl,
            WireError::IntervalNotRepresentable => DropReason::IntervalNotRepresentable,
            WireError::TooManyAddresses => DropReason::TooManyAddresses,
            WireError::MixedFamilies => DropReason::MixedFamilies,
            WireError::AuthOnV3 => DropReason::AuthOnV3,
            WireError::BufferTooSmall => DropReason::BufferTooSmall,
            WireError::IpVersion(_) => DropReason::BadIpVersion,
            WireError::IpHeaderLength(_) => DropReason::BadIpHeaderLength,
            WireError::IpChecksum => DropReason::BadIpChecksum,
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        DropReason::from(&e)
    }
}

impl From<Rejected> for DropReason {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::AddressList => DropReason::AddrListMismatch,
            Rejected::VersionMismatch => DropReason::VersionMismatch,
            Rejected::AuthMismatch => DropReason::AuthMismatch,
            Rejected::IntervalMismatch => DropReason::IntervalMismatch,
            Rejected::OwnAddress => DropReason::OwnAddress,
            Rejected::UnknownUnicastSource => DropReason::UnknownUnicastSrc,
            Rejected::Foreign => DropReason::ForeignAdvert,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_distinct_non_empty_snake_case() {
        let names: BTreeSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DropReason::ALL.len(), "duplicate name");
        for name in names {
            assert!(!name.is_empty());
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is not snake_case"
            );
        }
    }

    #[test]
    fn display_is_the_counter_name() {
        for r in DropReason::ALL {
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(format!("{:>9}", DropReason::BadTtl), "  bad_ttl");
    }

    /// `wire::vrrp::Error::reason()` as it was before the typed reasons,
    /// verbatim: the names each wire error was counted under.
    fn old_wire_reason(e: &WireError) -> &'static str {
        match e {
            WireError::Truncated => "truncated",
            WireError::LengthMismatch => "length_mismatch",
            WireError::Version(_) => "bad_version",
            WireError::Type(_) => "bad_type",
            WireError::VridZero => "vrid_zero",
            WireError::CountZero => "count_zero",
            WireError::AddressesTruncated => "addresses_truncated",
            WireError::AuthType(_) => "bad_auth_type",
            WireError::IntervalZero => "interval_zero",
            WireError::Checksum => "bad_checksum",
            WireError::NotLinkLocal => "not_link_local",
            WireError::Ttl(_) => "bad_ttl",
            WireError::IntervalNotRepresentable => "interval_not_representable",
            WireError::TooManyAddresses => "too_many_addresses",
            WireError::MixedFamilies => "mixed_families",
            WireError::AuthOnV3 => "auth_on_v3",
            WireError::BufferTooSmall => "buffer_too_small",
            WireError::IpVersion(_) => "bad_ip_version",
            WireError::IpHeaderLength(_) => "bad_ip_header_length",
            WireError::IpChecksum => "bad_ip_checksum",
        }
    }

    #[test]
    fn wire_errors_keep_their_names() {
        let all = [
            WireError::Truncated,
            WireError::LengthMismatch,
            WireError::Version(4),
            WireError::Type(2),
            WireError::VridZero,
            WireError::CountZero,
            WireError::AddressesTruncated,
            WireError::AuthType(2),
            WireError::IntervalZero,
            WireError::Checksum,
            WireError::NotLinkLocal,
            WireError::Ttl(254),
            WireError::IntervalNotRepresentable,
            WireError::TooManyAddresses,
            WireError::MixedFamilies,
            WireError::AuthOnV3,
            WireError::BufferTooSmall,
            WireError::IpVersion(6),
            WireError::IpHeaderLength(4),
            WireError::IpChecksum,
        ];
        let mut reasons = BTreeSet::new();
        for e in &all {
            let r = DropReason::from(e);
            assert_eq!(r.as_str(), old_wire_reason(e), "{e:?}");
            assert_eq!(DropReason::from(e.clone()), r);
            reasons.insert(r);
        }
        // One reason per wire error: none shares a counter with another.
        assert_eq!(reasons.len(), all.len());
    }

    #[test]
    fn rejections_keep_their_names() {
        for (r, old) in [
            (Rejected::VersionMismatch, "version_mismatch"),
            (Rejected::AuthMismatch, "auth_mismatch"),
            (Rejected::IntervalMismatch, "interval_mismatch"),
            (Rejected::OwnAddress, "own_address"),
            (Rejected::UnknownUnicastSource, "unknown_unicast_src"),
            (Rejected::Foreign, "foreign_advert"),
        ] {
            assert_eq!(DropReason::from(r).as_str(), old);
        }
    }

    #[test]
    fn dispatch_names_are_unchanged() {
        assert_eq!(DropReason::BadTtl.as_str(), "bad_ttl");
        assert_eq!(DropReason::UnknownVrid.as_str(), "unknown_vrid");
    }
}
