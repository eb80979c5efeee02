//! Cluster channel on 127.0.0.1: the mesh forms, messages and data arrive
//! in order, a restarted node comes back, a killed one is noticed at once
//! and a silent one after `dead_after`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use baton::agent::channel::{Channel, ChannelEvent, ChannelHandle, ChannelOptions, SendError};
use baton::cluster::Message;
use baton::wire::frame::FrameType;
use tokio::sync::mpsc;

#[path = "support/forger.rs"]
mod forger;
use forger::RogueClient;

const KEY: &[u8] = b"test cluster key, 32 bytes long!";
const HEARTBEAT: Duration = Duration::from_millis(50);

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn heartbeat(node: &str) -> Message {
    Message::Heartbeat {
        stamp: None,
        echo: Vec::new(),
        node: node.into(),
        instances: vec![],
    }
}

/// A channel plus the daemon's part that matters here: a heartbeat every
/// 50 ms (the channel sends nothing by itself).
struct Node {
    name: String,
    handle: Option<ChannelHandle>,
    rx: mpsc::Receiver<ChannelEvent>,
    beat: tokio::task::JoinHandle<()>,
}

impl Node {
    fn start(name: &str, all: &[(String, SocketAddr)], opts: ChannelOptions) -> Node {
        let listen = all.iter().find(|(n, _)| n == name).unwrap().1;
        let peers = all.iter().filter(|(n, _)| n != name).cloned().collect();
        let (handle, rx) = Channel::start(name, listen, peers, KEY.to_vec(), opts).unwrap();
        let h = handle.clone();
        let me = name.to_string();
        let beat = tokio::spawn(async move {
            loop {
                h.broadcast(&heartbeat(&me));
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        Node {
            name: name.into(),
            handle: Some(handle),
            rx,
            beat,
        }
    }

    fn h(&self) -> &ChannelHandle {
        self.handle.as_ref().unwrap()
    }

    /// Stop like a daemon that exits: peers are told (Close "shutdown").
    async fn stop(mut self) {
        self.beat.abort();
        let _ = (&mut self.beat).await;
        self.handle = None;
        // Let the connection tasks say goodbye before the runtime goes on.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Events other than heartbeats until `done` matches one (returned
    /// last), or panic after `timeout`.
    async fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&ChannelEvent) -> bool,
    ) -> Vec<ChannelEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = vec![];
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: timed out; saw {seen:?}", self.name))
                .expect("channel stopped");
            if matches!(
                &ev,
                ChannelEvent::Message {
                    msg: Message::Heartbeat { .. },
                    ..
                }
            ) {
                continue;
            }
            let stop = done(&ev);
            seen.push(ev);
            if stop {
                return seen;
            }
        }
    }

    async fn until_up(&mut self, peers: &[&str], timeout: Duration) {
        let mut missing: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
        self.until(timeout, |ev| {
            if let ChannelEvent::Up { peer } = ev {
                missing.retain(|p| p != peer);
            }
            missing.is_empty()
        })
        .await;
    }
}

fn mesh(names: &[&str]) -> Vec<(String, SocketAddr)> {
    names.iter().map(|n| (n.to_string(), free_addr())).collect()
}

fn is_down(ev: &ChannelEvent, who: &str) -> bool {
    matches!(ev, ChannelEvent::Down { peer, .. } if peer == who)
}

fn is_up(ev: &ChannelEvent, who: &str) -> bool {
    matches!(ev, ChannelEvent::Up { peer } if peer == who)
}

#[tokio::test]
async fn three_nodes_full_mesh_in_order() {
    let all = mesh(&["a", "b", "c"]);
    let t0 = Instant::now();
    let mut a = Node::start("a", &all, ChannelOptions::default());
    let mut b = Node::start("b", &all, ChannelOptions::default());
    let mut c = Node::start("c", &all, ChannelOptions::default());
    a.until_up(&["b", "c"], Duration::from_secs(3)).await;
    b.until_up(&["a", "c"], Duration::from_secs(3)).await;
    c.until_up(&["a", "b"], Duration::from_secs(3)).await;
    eprintln!("mesh of 3 up in {:?}", t0.elapsed());
    for n in [&a, &b, &c] {
        let peers = n.h().peers();
        assert_eq!(peers.len(), 2);
        for p in peers {
            assert!(p.connected, "{}: {p:?}", n.name);
            assert!(p.since.is_some() && p.last_frame.is_some());
            assert!(p.rejected.is_empty(), "{p:?}");
        }
        assert!(n.h().unknown_rejected().is_empty());
    }

    // Unicast a -> b, in order.
    for epoch in 1..=100 {
        let m = Message::Takeover {
            instance: "VI_1".into(),
            node: "a".into(),
            epoch,
            pinned: false,
            priority: 100,
            address: None,
        };
        a.h().send("b", &m).unwrap();
    }
    let mut next = 1;
    b.until(Duration::from_secs(3), |ev| match ev {
        ChannelEvent::Message {
            peer,
            msg: Message::Takeover { epoch, .. },
        } => {
            assert_eq!(peer, "a");
            assert_eq!(*epoch, next, "out of order");
            next += 1;
            next == 101
        }
        other => panic!("unexpected {other:?}"),
    })
    .await;

    // Broadcast from c reaches a and b, in order.
    for epoch in 1..=50 {
        let m = Message::ClearPin {
            instance: "VI_1".into(),
            epoch,
        };
        assert_eq!(c.h().broadcast(&m), 2);
    }
    for n in [&mut a, &mut b] {
        let mut next = 1;
        n.until(Duration::from_secs(3), |ev| match ev {
            ChannelEvent::Message {
                peer,
                msg: Message::ClearPin { epoch, .. },
            } => {
                assert_eq!(peer, "c");
                assert_eq!(*epoch, next);
                next += 1;
                next == 51
            }
            other => panic!("unexpected {other:?}"),
        })
        .await;
    }

    // Data, both directions of a dialed and an accepted connection,
    // including a large chunk.
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    c.h().send_data("a", vec![1, 2, 3]).unwrap();
    c.h().send_data("a", big.clone()).unwrap();
    c.h().send_data("a", vec![]).unwrap();
    let got = a
        .until(
            Duration::from_secs(3),
            |ev| matches!(ev, ChannelEvent::Data { bytes, .. } if bytes.is_empty()),
        )
        .await;
    let data: Vec<&Vec<u8>> = got
        .iter()
        .map(|ev| match ev {
            ChannelEvent::Data { peer, bytes } if peer == "c" => bytes,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(data, vec![&vec![1, 2, 3], &big, &vec![]]);
    a.h().send_data("c", vec![9; 10]).unwrap();
    let got = c
        .until(Duration::from_secs(3), |ev| {
            matches!(ev, ChannelEvent::Data { .. })
        })
        .await;
    assert_eq!(
        got,
        vec![ChannelEvent::Data {
            peer: "a".into(),
            bytes: vec![9; 10]
        }]
    );

    // Errors a caller can get without blocking.
    assert!(matches!(
        a.h().send("zz", &heartbeat("a")),
        Err(SendError::UnknownPeer(_))
    ));
    let too_big = vec![0u8; ChannelOptions::default().max_payload + 1];
    assert!(matches!(
        a.h().send_data("b", too_big),
        Err(SendError::TooLarge { .. })
    ));
    // Nothing was rejected anywhere.
    for n in [&a, &b, &c] {
        assert!(n.h().peers().iter().all(|p| p.rejected.is_empty()));
    }
}

#[tokio::test]
async fn restarted_node_reconnects() {
    let all = mesh(&["a", "b", "c"]);
    let mut a = Node::start("a", &all, ChannelOptions::default());
    let b = Node::start("b", &all, ChannelOptions::default());
    let mut c = Node::start("c", &all, ChannelOptions::default());
    a.until_up(&["b", "c"], Duration::from_secs(3)).await;
    c.until_up(&["a", "b"], Duration::from_secs(3)).await;

    // b dials c and accepts a: both kinds of connection restart.
    let t = Instant::now();
    b.stop().await;
    let down = a.until(Duration::from_secs(1), |ev| is_down(ev, "b")).await;
    // (Includes the 20 ms `stop` waits.)
    eprintln!("a saw b down after {:?}: {down:?}", t.elapsed());
    assert!(
        matches!(down.last(), Some(ChannelEvent::Down { reason, died: false, .. }) if reason == "closed by peer: shutdown"),
        "{down:?}"
    );
    // b dialed c: its dialing side says goodbye too (Close, then EOF: no
    // death).
    let down = c.until(Duration::from_secs(1), |ev| is_down(ev, "b")).await;
    assert!(
        matches!(down.last(), Some(ChannelEvent::Down { reason, died: false, .. }) if reason == "closed by peer: shutdown"),
        "{down:?}"
    );
    assert!(!a.h().peers()[0].connected);

    let t = Instant::now();
    let mut b = Node::start("b", &all, ChannelOptions::default());
    b.until_up(&["a", "c"], Duration::from_secs(3)).await;
    a.until(Duration::from_secs(3), |ev| is_up(ev, "b")).await;
    c.until(Duration::from_secs(3), |ev| is_up(ev, "b")).await;
    eprintln!("b back up everywhere after {:?}", t.elapsed());
    assert!(a.h().peers().iter().all(|p| p.connected));
    assert!(c.h().peers().iter().all(|p| p.connected));
    // And messages flow on the new connections.
    b.h().send("a", &heartbeat("hello again")).unwrap();
    let seen = a
        .h()
        .peers()
        .iter()
        .find(|p| p.name == "b")
        .unwrap()
        .last_frame;
    assert!(seen.is_some());
}

/// A node whose process dies (its listener, runtime and sockets vanish, no
/// goodbye): the kernel closes its connections and the peer notices at
/// once, and takes it for a death (its listener refuses the check).
#[tokio::test]
async fn killed_node_is_down_at_once() {
    let all = mesh(&["a", "b"]);
    let mut a = Node::start("a", &all, ChannelOptions::default());
    let (die_tx, die_rx) = std::sync::mpsc::channel::<()>();
    let all_b = all.clone();
    let b_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut b = Node::start("b", &all_b, ChannelOptions::default());
            b.until_up(&["a"], Duration::from_secs(3)).await;
            // Keep heartbeating until told to die.
            let _ = tokio::task::spawn_blocking(move || die_rx.recv()).await;
            // A dying process's listener goes with it: move it off the
            // address `a` knows (the old one closes), as the kernel would.
            b.handle
                .as_ref()
                .unwrap()
                .rebind(free_addr())
                .expect("moving b's listener away");
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::mem::forget(b);
        });
        // Dropping the runtime drops every task without running it again:
        // no Close frame, sockets closed by the kernel.
        drop(rt);
    });
    a.until_up(&["b"], Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    die_tx.send(()).unwrap();
    let down = a.until(Duration::from_secs(1), |ev| is_down(ev, "b")).await;
    let took = t.elapsed();
    eprintln!("killed peer reported down after {took:?}: {down:?}");
    b_thread.join().unwrap();
    assert!(
        matches!(down.last(), Some(ChannelEvent::Down { reason, died: true, .. }) if reason == "connection closed by peer"),
        "no goodbye: the process died; {down:?}"
    );
    // Well before the 300 ms silence timeout.
    assert!(took < Duration::from_millis(150), "{took:?}");
}

/// How a proven peer's connection ends, and whether the other end takes it
/// for the death of the peer's process: a Close frame then EOF is not one;
/// EOF alone, or EOF in the middle of a frame, is.
#[tokio::test]
async fn only_a_close_without_goodbye_is_a_death() {
    let all = mesh(&["a", "b"]);
    let b_addr = all[1].1;
    let mut b = Node::start("b", &all, ChannelOptions::default());
    for (case, want_died) in [("goodbye", false), ("eof", true), ("half_frame", true)] {
        let rogue = tokio::task::spawn_blocking(move || {
            let mut r = RogueClient::connect(b_addr, "a", KEY, Duration::from_secs(1)).unwrap();
            r.send_message(&heartbeat("a")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            match case {
                "goodbye" => {
                    let bye = r.frame(FrameType::Close, b"shutdown");
                    r.send_raw(&bye).unwrap();
                }
                "half_frame" => {
                    let f = r.message_frame(&heartbeat("a"));
                    r.send_raw(&f[..f.len() / 2]).unwrap();
                }
                _ => {}
            }
            // Dropped: the kernel sends FIN.
        });
        b.until(Duration::from_secs(2), |ev| is_up(ev, "a")).await;
        rogue.await.unwrap();
        let down = b.until(Duration::from_secs(1), |ev| is_down(ev, "a")).await;
        assert!(
            matches!(down.last(), Some(ChannelEvent::Down { died, .. }) if *died == want_died),
            "{case}: {down:?}"
        );
    }
}

/// A peer that stops talking but keeps its socket open (hung process, or a
/// partition that swallows packets): closed after `dead_after`.
#[tokio::test]
async fn silent_peer_is_down_after_dead_after() {
    let all = mesh(&["a", "b"]);
    let b_addr = all[1].1;
    let opts = ChannelOptions::default();
    let dead_after = opts.dead_after;
    let mut b = Node::start("b", &all, opts);
    let rogue = tokio::task::spawn_blocking(move || {
        let mut r = RogueClient::connect(b_addr, "a", KEY, Duration::from_secs(1)).unwrap();
        r.send_message(&heartbeat("a")).unwrap();
        let last = Instant::now();
        // Then silence; wait for b to hang up.
        let closed = r.wait_closed(Duration::from_secs(2));
        (closed, last.elapsed())
    });
    b.until(Duration::from_secs(2), |ev| is_up(ev, "a")).await;
    let down = b.until(Duration::from_secs(2), |ev| is_down(ev, "a")).await;
    let (closed, after) = rogue.await.unwrap();
    eprintln!("silent peer: connection closed {after:?} after its last frame: {down:?}");
    assert!(closed);
    assert!(
        matches!(down.last(), Some(ChannelEvent::Down { reason, died: false, .. }) if reason.starts_with("no frame for")),
        "silence is not a death: {down:?}"
    );
    assert!(after >= dead_after, "{after:?}");
    assert!(after < dead_after + Duration::from_millis(150), "{after:?}");
}

/// A peer that does not read: its data queue fills and further data is
/// refused (the connection stays: sync resumes); then its message queue
/// fills and it is dropped. The sender never blocks.
#[tokio::test]
async fn slow_peer_is_dropped_not_waited_for() {
    let all = mesh(&["a", "b"]);
    let b_addr = all[1].1;
    let opts = ChannelOptions {
        queue_len: 4,
        ..ChannelOptions::default()
    };
    let mut b = Node::start("b", &all, opts);
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let rogue = tokio::task::spawn_blocking(move || {
        let mut r = RogueClient::connect(b_addr, "a", KEY, Duration::from_secs(1)).unwrap();
        // Never read; keep the socket open until the test is done, and keep
        // heartbeating (alive, only slow: not dropped for silence).
        r.send_message(&heartbeat("a")).unwrap();
        while hold_rx.recv_timeout(HEARTBEAT).is_err() {
            if r.send_message(&heartbeat("a")).is_err() {
                break;
            }
        }
        drop(r);
    });
    b.until(Duration::from_secs(2), |ev| is_up(ev, "a")).await;
    let chunk = vec![0u8; 512 * 1024];
    let mut full = None;
    let t = Instant::now();
    for i in 0..1000 {
        let s = Instant::now();
        let r = b.h().send_data("a", chunk.clone());
        assert!(s.elapsed() < Duration::from_millis(20), "send blocked");
        if let Err(e) = r {
            full = Some((i, e));
            break;
        }
        tokio::task::yield_now().await;
    }
    let (i, e) = full.expect("queue never filled");
    eprintln!(
        "data queue full after {i} chunks of 512 KiB in {:?}",
        t.elapsed()
    );
    assert!(matches!(e, SendError::DataQueueFull(_)), "{e:?}");
    let mut refused = None;
    for _ in 0..100 {
        if let Err(e) = b.h().send("a", &heartbeat("b")) {
            refused = Some(e);
            break;
        }
        tokio::task::yield_now().await;
    }
    let e = refused.expect("message queue never filled");
    assert!(matches!(e, SendError::QueueFull(_)), "{e:?}");
    let down = b.until(Duration::from_secs(1), |ev| is_down(ev, "a")).await;
    assert!(
        matches!(down.last(), Some(ChannelEvent::Down { reason, .. }) if reason == "send queue full"),
        "{down:?}"
    );
    hold_tx.send(()).unwrap();
    rogue.await.unwrap();
}

/// Protocol version 1 (HMAC-SHA256 tags, payloads in clear, the dialer
/// speaking first), spelled out byte by byte: its Hello, and how it read
/// one. Version 2 is not wire-compatible; each side must refuse the other
/// by name, not hang.
mod version_1 {
    use baton::wire::frame::{HEADER_LEN, MAGIC};

    /// A version 1 Hello frame: header, payload (version 1, name, nonce),
    /// CRC32, and a 32-byte zero tag.
    pub fn hello(name: &str, nonce: [u8; 32]) -> Vec<u8> {
        let mut payload = vec![1, name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(&nonce);
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&[1, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(&0u64.to_be_bytes());
        f.extend_from_slice(&payload);
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_be_bytes());
        f.extend_from_slice(&[0; 32]);
        f
    }

    /// Read a Hello as version 1 did from the front of `buf`: the frame's
    /// length in version 1's layout (CRC checked) and the version byte of
    /// its payload, or None if more bytes are needed.
    pub fn parse_hello(buf: &[u8]) -> Option<(usize, u8)> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        assert_eq!(&buf[..4], &MAGIC, "a baton frame");
        assert_eq!(buf[4], 1, "a Hello");
        let len = u32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
        let total = HEADER_LEN + len + 4 + 32;
        if buf.len() < total {
            return None;
        }
        let crc_at = HEADER_LEN + len;
        let crc = u32::from_be_bytes(buf[crc_at..crc_at + 4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&buf[..crc_at]), "CRC");
        Some((total, buf[HEADER_LEN]))
    }
}

/// A version 1 dialer: refused at its Hello, by name (counted as
/// `protocol_version`), and answered with nothing.
#[tokio::test]
async fn version_1_dialer_refused_by_name() {
    let all = mesh(&["a", "b"]);
    let b_addr = all[1].1;
    let b = Node::start("b", &all, ChannelOptions::default());
    let got = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(b_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(&version_1::hello("a", [0x5a; 32])).unwrap();
        let mut buf = [0u8; 64];
        s.read(&mut buf).unwrap_or(usize::MAX)
    })
    .await
    .unwrap();
    assert_eq!(got, 0, "b hangs up without a word");
    let want: std::collections::BTreeMap<String, u64> =
        [("protocol_version".to_string(), 1)].into();
    assert_eq!(b.h().unknown_rejected(), want);
    assert!(b.h().peers().iter().all(|p| !p.connected));
    b.stop().await;
}

/// A version 1 acceptor: it reads this version's Hello in its own layout
/// (and would refuse version 2 by name); if it answered, this dialer
/// refuses version 1 by name, counted for that peer, and sends nothing.
#[tokio::test]
async fn version_1_acceptor_refused_by_name() {
    let all = mesh(&["a", "b"]);
    let listener = std::net::TcpListener::bind(all[1].1).unwrap();
    let a = Node::start("a", &all, ChannelOptions::default());
    let old = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = vec![];
        let mut buf = [0u8; 512];
        let (total, version) = loop {
            if let Some(h) = version_1::parse_hello(&got) {
                break h;
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed during the hello");
            got.extend_from_slice(&buf[..n]);
        };
        s.write_all(&version_1::hello("b", [0xa5; 32])).unwrap();
        // Then nothing but the end of the stream.
        let mut rest = got[total..].to_vec();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => rest.extend_from_slice(&buf[..n]),
            }
        }
        (version, rest)
    });
    let (version, rest) = old.await.unwrap();
    assert_eq!(version, 2, "the version a version 1 node refuses by name");
    assert_eq!(
        rest,
        Vec::<u8>::new(),
        "the dialer sent nothing after its Hello"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let rej = a.h().peers()[0].rejected.clone();
        if rej.get("protocol_version").copied() >= Some(1) {
            assert_eq!(rej.len(), 1, "{rej:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not counted: {rej:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
}

/// A reload's new listen address: the connection up stays up, the old
/// port no longer accepts, and a peer given the new address reaches it.
#[tokio::test]
async fn rebind_keeps_the_connection_and_moves_the_listener() {
    let all = mesh(&["a", "b"]);
    let mut a = Node::start("a", &all, ChannelOptions::default());
    let mut b = Node::start("b", &all, ChannelOptions::default());
    a.until_up(&["b"], Duration::from_secs(3)).await;
    b.until_up(&["a"], Duration::from_secs(3)).await;
    let old = all[1].1;
    let new = free_addr();
    b.h().rebind(new).unwrap();
    assert_eq!(b.h().listen_addr(), new);
    // The old listener is closed by its accept loop: give it a turn.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "the old port still accepts"
    );
    assert!(a.h().peers()[0].connected, "the connection up stays up");
    // Binding what cannot be bound changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(b.h().rebind(taken.local_addr().unwrap()).is_err());
    assert_eq!(b.h().listen_addr(), new);
    // a learns b's new address: the old connection is closed, a new one
    // reaches b on its new port.
    a.h().set_peers(vec![("b".into(), new)]);
    a.until(Duration::from_secs(3), |ev| is_up(ev, "b")).await;
    b.until(Duration::from_secs(3), |ev| is_up(ev, "a")).await;
    assert!(a.h().peers()[0].connected && a.h().peers()[0].addr == new);
}
