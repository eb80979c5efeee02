//! Data sync latency: the time from writing a file on the control node to
//! the same content on both peers of a 3-node cluster, 1 KiB and 1 MiB (10
//! rounds each) and 64 MiB (3 rounds), noticed through inotify.
//! Also the oldest heartbeat any node had from a peer while it ran (100 ms
//! heartbeats: ~100 ms when nothing waits behind the data). Needs root.
//!
//! `cargo bench --bench sync` (rows of BENCHMARKS.md "Data sync").
//!
//! First, without root, the cost of the channel's frame sealing: encode +
//! decode of a 256 KiB sync chunk and of a 200-byte message, with
//! ChaCha20-Poly1305 (this version) and, for comparison, the CRC +
//! HMAC-SHA256 tag that protocol version 1 computed on both sides.

use std::time::{Duration, Instant};

use baton::lab;
use baton::wire::frame::{encode, Decoder, FrameType, SessionKey};
use hmac::{Hmac, KeyInit, Mac};

#[path = "../tests/support/sync_lab.rs"]
#[allow(dead_code)]
mod sync_lab;
use sync_lab::*;

/// BENCHMARKS.md "Data sync": time from writing the file on the master to
/// the content on both peers, 3-node cluster (inotify, no poll wait).
fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    codec(if smoke { 20 } else { 2000 });
    if !lab::is_root() {
        println!("benches/sync: needs root (network namespaces); nothing measured");
        return;
    }
    // `cargo test --all-targets` runs this too (without `--bench`): then
    // two rounds of 1 KiB prove it works, without measuring for long.
    let (sizes, rounds): (&[(&str, usize)], u8) = if smoke {
        (&[("1 KiB", 1024)], 2)
    } else {
        (
            &[("1 KiB", 1024), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20)],
            10,
        )
    };
    let mut s = SyncLab::new("syd", 3);
    s.max_size = Some("128MiB");
    s.up(&[0, 1, 2]);
    for &(label, size) in sizes {
        let mut times = Vec::new();
        let mut oldest_beat = 0u64;
        let rounds = if size > 1 << 20 {
            rounds.min(3)
        } else {
            rounds
        };
        for round in 0..rounds {
            let content: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_add(round)).collect();
            // Written beside and renamed in: the poll never sees half of it.
            let tmp = s.lab.dir().join("bench.tmp");
            std::fs::write(&tmp, &content).unwrap();
            let t0 = Instant::now();
            std::fs::rename(&tmp, s.file(0)).unwrap();
            // Files are compared every millisecond; the peers' heartbeat
            // ages (a `baton status` each, milliseconds of work) only every
            // 50 ms, so asking does not delay the measurement much.
            let mut next_status = t0 + Duration::from_millis(50);
            while !s.everywhere(&[1, 2], &content) {
                assert!(t0.elapsed() < SETTLE * 6, "{label} did not arrive");
                if Instant::now() >= next_status {
                    next_status = Instant::now() + Duration::from_millis(50);
                    for i in 0..3 {
                        let Some(c) = s.lab.status(i).and_then(|st| st.cluster) else {
                            continue;
                        };
                        for p in &c.peers {
                            oldest_beat = oldest_beat.max(p.last_heard_ms.unwrap_or(0));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            times.push(t0.elapsed());
            s.committed(0);
            // Desynchronise from the poll phase.
            std::thread::sleep(Duration::from_millis(37 + u64::from(round) * 17));
        }
        times.sort();
        println!(
            "{label}: min {:?} median {:?} max {:?}; oldest heartbeat seen meanwhile {oldest_beat} ms",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

/// Frame sealing cost, per frame and in MB/s of payload: this version's
/// encode + decode (CRC32, ChaCha20-Poly1305 both ways), then what version
/// 1 computed on each side (CRC32 + HMAC-SHA256 over the frame, twice).
fn codec(rounds: u32) {
    let key = SessionKey::derive(
        b"0123456789abcdef0123456789abcdef",
        "a",
        &[1; 32],
        "b",
        &[2; 32],
    );
    for (label, size) in [("256 KiB chunk", 256 * 1024), ("200 B message", 200)] {
        let payload = vec![0x5au8; size];
        let mut dec = Decoder::new(1 << 20);
        let t = Instant::now();
        for seq in 1..=u64::from(rounds) {
            let f = encode(FrameType::Data, seq, &payload, Some(&key));
            dec.push(&f);
            let got = dec.next_frame(seq, Some(&key)).unwrap().unwrap();
            assert_eq!(got.payload.len(), size);
        }
        let aead = t.elapsed() / rounds;
        let t = Instant::now();
        let mut frame = vec![0u8; 20 + size];
        for seq in 0..rounds {
            frame[0] = seq as u8;
            for _ in 0..2 {
                let crc = crc32fast::hash(&frame);
                let mut m =
                    <Hmac<sha2::Sha256>>::new_from_slice(b"a 32-byte session key, v1 style!")
                        .unwrap();
                m.update(&frame);
                m.update(&crc.to_be_bytes());
                std::hint::black_box(m.finalize());
            }
        }
        let hmac = t.elapsed() / rounds;
        let mbs = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
        println!(
            "codec {label}: ChaCha20-Poly1305 seal+open {aead:?} ({:.0} MB/s); v1 CRC+HMAC-SHA256 both sides {hmac:?} ({:.0} MB/s)",
            mbs(aead),
            mbs(hmac)
        );
    }
}
