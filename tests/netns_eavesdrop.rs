//! What an eavesdropper on the cluster channel sees: two real `baton run`
//! processes sync a file of random bytes while a raw packet socket in the
//! bridge namespace records every frame that crosses the bridge.
//!
//! ```text
//!   node0 (prio 200, writes app.cfg)     node1 (150, receives it)
//!        |  eth0                              |  eth0
//!   +----+-- n0 -------- br0 -------- n1 -----+----+
//!   |  bridge namespace: AF_PACKET capture of n0, n1, br0 |
//!   +-----------------------------------------------------+
//! ```
//!
//! The capture must hold the channel's traffic (the Hellos, in clear, name
//! both nodes; frames start with the magic "BTN1"), and never a 16-byte
//! window of the file nor a message's JSON. Needs root: without it the
//! test prints "skipped: needs root" and passes, except under `CI=true`.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use baton::lab;
use socket2::{Domain, Protocol, Socket, Type};

#[path = "support/sync_lab.rs"]
#[allow(dead_code)]
mod sync_lab;
use sync_lab::*;

/// Every frame seen on any interface of the calling thread's namespace
/// until `stop`, back to back (duplicates included: a frame crossing the
/// bridge is seen on two ports). `ready` is told once the socket is open.
fn capture(stop: Arc<AtomicBool>, ready: mpsc::Sender<()>) -> Vec<u8> {
    let all = Protocol::from(i32::from((libc::ETH_P_ALL as u16).to_be()));
    let sock = Socket::new(Domain::PACKET, Type::RAW, Some(all)).expect("AF_PACKET socket");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    ready.send(()).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = (&sock).read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut out)
        .unwrap();
    out
}

#[test]
fn an_eavesdropper_sees_names_and_sizes_never_a_synced_byte() {
    if !lab::require_root() {
        return;
    }
    let mut s = SyncLab::new("eav", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let cap = {
        let stop = stop.clone();
        lab::spawn_in_netns(s.lab.bridge_ns(), move || capture(stop, ready_tx))
    };
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the capture socket");
    s.up(&[0, 1]);
    // Random bytes: no window of them occurs anywhere by chance.
    let content = random_bytes(8192);
    std::fs::write(s.file(0), &content).unwrap();
    s.wait("the file on node1", SETTLE, |s| {
        s.everywhere(&[1], &content)
    });
    s.committed(0);
    // Heartbeats and the commit's acknowledgements keep flowing meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let pcap = cap.join().expect("the capture thread");

    // The capture works and holds the channel: both Hellos (in clear:
    // names are public) and many frames, more bytes than the file.
    assert!(pcap.len() > content.len(), "captured {} bytes", pcap.len());
    assert!(contains(&pcap, b"BTN1"), "no cluster frame captured");
    for name in [&b"node0"[..], b"node1"] {
        assert!(contains(&pcap, name), "no Hello naming {name:?} captured");
    }
    let port = 7480u16.to_be_bytes();
    assert!(contains(&pcap, &port), "no packet of TCP port 7480");

    // Nothing of the file: no 16-byte window of it.
    let windows: HashSet<&[u8]> = content.windows(16).collect();
    let leaked = pcap.windows(16).filter(|w| windows.contains(w)).count();
    assert_eq!(
        leaked, 0,
        "{leaked} 16-byte windows of the synced file captured"
    );
    // Nor any message: every one is JSON with a "type".
    for word in [
        &b"\"type\""[..],
        b"heartbeat",
        b"sync_offer",
        b"sync_request",
        b"\"name\":\"app\"",
    ] {
        assert!(
            !contains(&pcap, word),
            "{:?} in clear on the wire",
            String::from_utf8_lossy(word)
        );
    }
    println!(
        "MEASURED: eavesdropper captured {} bytes while 8 KiB synced: names and frame headers, no payload",
        pcap.len()
    );
}
