//! What the fuzz targets share: cutting addresses out of the input, fixing
//! checksums so that the fuzzer gets past them, and the planted bug.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use baton::wire::vrrp::{checksum, checksum_with_pseudo_header, PROTOCOL};

/// Source and destination addresses (4 or 16 bytes each) from the start of
/// `data`, and the rest.
pub fn addresses(v6: bool, data: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    if v6 {
        let src: [u8; 16] = data.get(..16)?.try_into().ok()?;
        let dst: [u8; 16] = data.get(16..32)?.try_into().ok()?;
        Some((
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
            &data[32..],
        ))
    } else {
        let src: [u8; 4] = data.get(..4)?.try_into().ok()?;
        let dst: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        Some((
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
            &data[8..],
        ))
    }
}

/// Writes a valid checksum into a VRRP message (bytes 6..8): over the
/// message only for v2, with the pseudo-header for v3 (over IPv4 only if
/// `v3_pseudo`). Too short a message is left alone.
pub fn fix_vrrp_checksum(msg: &mut [u8], src: IpAddr, dst: IpAddr, v3_pseudo: bool) {
    if msg.len() < 8 {
        return;
    }
    msg[6] = 0;
    msg[7] = 0;
    let pseudo = msg[0] >> 4 == 3 && (src.is_ipv6() || v3_pseudo);
    let sum = if pseudo {
        checksum_with_pseudo_header(src, dst, PROTOCOL, msg)
    } else {
        checksum(msg)
    };
    msg[6..8].copy_from_slice(&sum.to_be_bytes());
}

/// The planted bug (feature `planted_bug`, tools/fuzz --planted): a crash
/// on adverts that only a search past the parser's checks builds: VRRPv3,
/// VRID 183, priority 42 (any family; a v6 advert covers no more edges
/// than a v4 one, so libFuzzer keeps no v6 seed to grow it from). Shows that the harness finds a bug within its time. Each field
/// is tested on its own (black_box: no merged compare), as a parser's
/// field-by-field checks are.
#[cfg(feature = "planted_bug")]
pub fn planted_bug(repr: &baton::wire::vrrp::Repr) {
    use std::hint::black_box;

    use baton::wire::vrrp::Version;
    if repr.version != Version::V3 {
        return;
    }
    if black_box(repr.vrid) == 183 {
        if black_box(repr.priority) == 42 {
            panic!("planted bug reached: the fuzzer works");
        }
    }
}

/// A global allocator that counts the bytes live on the heap, for targets
/// that check memory stays bounded.
pub mod alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    /// Bytes allocated and not yet freed (by any thread).
    pub fn live_bytes() -> usize {
        LIVE.load(Ordering::Relaxed)
    }

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}
