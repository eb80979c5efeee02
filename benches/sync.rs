//! Data sync latency: the time from writing a file on the control node to
//! the same content on both peers of a 3-node cluster, 1 KiB and 1 MiB, 10
//! rounds each. Includes the 200 ms change poll. Needs root.
//!
//! `cargo bench --bench sync` (rows of BENCHMARKS.md "Data sync").

use std::time::{Duration, Instant};

use baton::lab;

#[path = "../tests/support/sync_lab.rs"]
#[allow(dead_code)]
mod sync_lab;
use sync_lab::*;

/// BENCHMARKS.md "Data sync": time from writing the file on the master to
/// the content on both peers, 3-node cluster. Includes the 200 ms poll.
fn main() {
    if !lab::is_root() {
        println!("benches/sync: needs root (network namespaces); nothing measured");
        return;
    }
    // `cargo test --all-targets` runs this too (without `--bench`): then
    // two rounds of 1 KiB prove it works, without measuring for long.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (sizes, rounds): (&[(&str, usize)], u8) = if smoke {
        (&[("1 KiB", 1024)], 2)
    } else {
        (&[("1 KiB", 1024), ("1 MiB", 1 << 20)], 10)
    };
    let mut s = SyncLab::new("syd", 3);
    s.up(&[0, 1, 2]);
    for &(label, size) in sizes {
        let mut times = Vec::new();
        for round in 0..rounds {
            let content: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_add(round)).collect();
            let t0 = Instant::now();
            std::fs::write(s.file(0), &content).unwrap();
            s.wait("the change on both peers", SETTLE, |s| {
                s.everywhere(&[1, 2], &content)
            });
            times.push(t0.elapsed());
            s.committed(0);
            // Desynchronise from the poll phase.
            std::thread::sleep(Duration::from_millis(37 + u64::from(round) * 17));
        }
        times.sort();
        println!(
            "{label}: min {:?} median {:?} max {:?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
