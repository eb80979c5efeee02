//! VRRP v2/v3 advertisements over IPv4 and IPv6: `Repr::parse` and
//! `parse_lenient` on any bytes, then decode -> encode -> decode.
//!
//! Input: a flags byte, the source and destination addresses (4 or 16
//! bytes each, as the flags say) and the VRRP message.
//! - bit 0: IPv6 (else IPv4)
//! - bit 1: take the checksum as it is; else fill in a valid one first (so
//!   that the fuzzer spends its time past the checksum check too)
//! - bit 2: when filling in a v3-over-IPv4 checksum, the RFC 9568 form
//!   (without pseudo-header)
#![no_main]

use std::net::IpAddr;

use baton::wire::vrrp::{Advert, ChecksumKind, Family, Packet, Repr, V3Checksum, Version};
use baton_fuzz::{addresses, fix_vrrp_checksum};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let v6 = flags & 1 != 0;
    let Some((src, dst, payload)) = addresses(v6, rest) else {
        return;
    };
    let mut payload = payload.to_vec();
    if flags & 2 == 0 {
        fix_vrrp_checksum(&mut payload, src, dst, flags & 4 == 0);
    }
    check(&payload, src, dst);
});

fn check(payload: &[u8], src: IpAddr, dst: IpAddr) {
    // The checked view: after new_checked no accessor may panic.
    if let Ok(p) = Packet::new_checked(payload, Family::of(src)) {
        let _ = (p.version(), p.msg_type(), p.vrid(), p.priority(), p.count());
        let _ = (
            p.auth_type(),
            p.adver_int(),
            p.max_adver_int(),
            p.checksum(),
        );
        assert_eq!(p.addresses().count(), usize::from(p.count()));
        let _ = p.auth_data();
    }

    let strict = Repr::parse(payload, src, dst);
    let lenient = Repr::parse_lenient(payload, src, dst);
    if let Ok(ok) = &strict {
        // Lenient accepts all that strict does, as the same advert.
        assert_eq!(lenient.as_ref(), Ok(ok));
    }
    let Ok((repr, kind)) = lenient else {
        return;
    };

    // The receive path's form (the list left in the packet): the same
    // advert, its addresses found in place, none of the other family.
    let (view, view_kind) = Advert::parse_lenient(payload, src, dst).expect("parses as Repr does");
    assert_eq!(view_kind, kind);
    assert_eq!(view.to_repr(), repr);
    assert_eq!(view.addresses.len(), repr.addresses.len());
    assert!(repr.addresses.iter().all(|a| view.addresses.contains(a)));
    let other_family = match src {
        IpAddr::V4(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    };
    assert!(!view.addresses.contains(&other_family));

    #[cfg(feature = "planted_bug")]
    baton_fuzz::planted_bug(&repr);

    // What a parsed advert must be.
    assert_ne!(repr.vrid, 0);
    assert_ne!(repr.interval_cs, 0);
    assert!(!repr.addresses.is_empty());
    assert!(repr.addresses.iter().all(|a| a.is_ipv4() == src.is_ipv4()));
    assert!(repr.version == Version::V3 || src.is_ipv4());
    assert!(repr.version == Version::V2 || repr.auth.is_none());
    assert_eq!(repr.buffer_len(), payload.len());

    // Encode it again, in the checksum form it came in: the same advert,
    // and the same bytes when the input was in canonical form.
    let form = match kind {
        ChecksumKind::V3WithoutPseudoHeader => V3Checksum::WithoutPseudoHeader,
        _ => V3Checksum::WithPseudoHeader,
    };
    let bytes = repr
        .to_bytes(src, dst, form)
        .expect("a parsed advert encodes");
    assert_eq!(
        Repr::parse_lenient(&bytes, src, dst),
        Ok((repr.clone(), kind))
    );
    let canonical = match repr.version {
        // The reserved bits of Max Adver Int are ignored on receive.
        Version::V3 => payload[4] & 0xf0 == 0,
        // Without authentication, the auth data is ignored.
        Version::V2 => repr.auth.is_some() || payload[payload.len() - 8..] == [0; 8],
    };
    if canonical {
        assert_eq!(bytes, payload);
    }
}
