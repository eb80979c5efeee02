//! keepalived's IPsec AH (`wire::ah`): `parse` on any datagram, the ICV
//! check with a fixed key, and, for what parses, a rebuild with that key
//! that must verify and parse to the same fields.
//!
//! Input: the datagram as an AH raw socket hands it over (IPv4 header
//! first).
#![no_main]

use baton::wire::ah::{self, Stamp};
use baton::wire::vrrp::Repr;
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 8] = *b"secret\0\0";

fuzz_target!(|data: &[u8]| {
    let Ok(p) = ah::parse(data) else {
        return;
    };
    assert!(p.header_len >= 20 && p.header_len + ah::HEADER_LEN <= p.datagram.len());
    assert_eq!(p.datagram.len(), data.len().min(p.datagram.len()));
    let _ = ah::verify(&KEY, &p, false);
    let _ = ah::verify(&KEY, &p, true);
    let Ok((repr, _)) = Repr::parse_ah(p.vrrp, p.src.into(), p.dst.into()) else {
        return;
    };
    // Rebuilt with our key, it verifies and reads back the same.
    let stamp = Stamp { id: 7, seq: p.seq };
    let vrrp = ah::vrrp_message(&repr, p.src, p.dst).expect("a parsed advert encodes");
    let built = ah::emit(&KEY, p.src, p.dst, p.ttl, stamp, false, &vrrp).expect("fits");
    let q = ah::parse(&built).expect("a built datagram parses");
    assert!(ah::verify(&KEY, &q, false));
    assert_eq!((q.src, q.dst, q.seq, q.spi), (p.src, p.dst, p.seq, p.src));
    assert_eq!(
        Repr::parse_ah(q.vrrp, q.src.into(), q.dst.into()).map(|r| r.0),
        Ok(repr)
    );
});
