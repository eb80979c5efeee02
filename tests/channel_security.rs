//! Cluster channel against peers that should not be trusted: a wrong key,
//! an unknown name, a name that should not dial, and a keyed peer that
//! replays, corrupts, forges or oversizes frames. Each is refused, counted
//! under its reason, and nothing it sent is delivered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use baton::agent::channel::{Channel, ChannelEvent, ChannelHandle, ChannelOptions};
use baton::cluster::Message;
use baton::wire::frame::{self, FrameType, Hello, HEADER_LEN, LENGTH_FIELD};
use tokio::sync::mpsc;

#[path = "support/forger.rs"]
mod forger;
use forger::RogueClient;

const KEY: &[u8] = b"test cluster key, 32 bytes long!";
const WRONG_KEY: &[u8] = b"some other key, also 32 bytes!!!";
const SEC: Duration = Duration::from_secs(1);

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

/// Every event that arrives within `wait`.
async fn drain(rx: &mut mpsc::Receiver<ChannelEvent>, wait: Duration) -> Vec<ChannelEvent> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = vec![];
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(ev);
    }
    out
}

fn rejected(h: &ChannelHandle, peer: &str) -> BTreeMap<String, u64> {
    h.peers()
        .into_iter()
        .find(|p| p.name == peer)
        .unwrap()
        .rejected
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn wrong_key_never_up_nothing_delivered() {
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let (a, mut a_rx) = Channel::start(
        "a",
        a_addr,
        vec![("b".into(), b_addr)],
        WRONG_KEY.to_vec(),
        ChannelOptions::default(),
    )
    .unwrap();
    let (b, mut b_rx) = Channel::start(
        "b",
        b_addr,
        vec![("a".into(), a_addr)],
        KEY.to_vec(),
        ChannelOptions::default(),
    )
    .unwrap();
    // Both daemons heartbeat as usual.
    let beats = {
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            loop {
                a.broadcast(&heartbeat("a"));
                b.broadcast(&heartbeat("b"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (a_ev, b_ev) = tokio::join!(drain(&mut a_rx, SEC), drain(&mut b_rx, SEC));
    beats.abort();
    // a (the dialer) could not open b's Proof and sent nothing but its
    // goodbye, sealed under the wrong key: b counts that.
    assert!(!b_ev.is_empty());
    for ev in &b_ev {
        match ev {
            ChannelEvent::Down { peer, reason, .. } => {
                assert_eq!(peer, "a");
                assert!(reason.starts_with("bad_tag"), "{reason}");
            }
            other => panic!("b: unexpected {other:?}"),
        }
    }
    // a refused b's Proof.
    for ev in &a_ev {
        assert!(
            matches!(ev, ChannelEvent::Down { reason, .. } if reason.starts_with("bad_tag")),
            "a: {ev:?}"
        );
    }
    let b_rej = rejected(&b, "a");
    assert!(b_rej["bad_tag"] >= 1, "{b_rej:?}");
    assert_eq!(b_rej.len(), 1, "{b_rej:?}");
    let a_rej = rejected(&a, "b");
    assert!(a_rej.get("bad_tag").copied() >= Some(1), "{a_rej:?}");
    assert_eq!(a_rej.len(), 1, "{a_rej:?}");
    assert!(!b.peers()[0].connected && !a.peers()[0].connected);
    assert!(b.peers()[0].last_frame.is_none());
    eprintln!(
        "wrong key over 1 s: b rejected {b_rej:?}, a rejected {:?}",
        rejected(&a, "b")
    );
}

#[tokio::test]
async fn unknown_name_and_wrong_direction_refused() {
    let b_addr = free_addr();
    let (b, mut b_rx) = Channel::start(
        "b",
        b_addr,
        vec![("a".into(), free_addr()), ("c".into(), free_addr())],
        KEY.to_vec(),
        ChannelOptions::default(),
    )
    .unwrap();
    let results = tokio::task::spawn_blocking(move || {
        [
            // Not in b's config (even with the right key).
            RogueClient::connect(b_addr, "mallory", KEY, SEC).err(),
            // b's own name.
            RogueClient::connect(b_addr, "b", KEY, SEC).err(),
            // c is configured, but b < c: b dials c, c never dials b.
            RogueClient::connect(b_addr, "c", KEY, SEC).err(),
        ]
    })
    .await
    .unwrap();
    for r in &results {
        let e = r.as_ref().expect("connection should have been refused");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    }
    // Garbage and silence from strangers.
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(b_addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 16];
        let http = s.read(&mut buf).unwrap_or(0);
        let mut s = std::net::TcpStream::connect(b_addr).unwrap();
        let t = std::time::Instant::now();
        let silent = s.read(&mut buf).unwrap_or(0);
        (http, silent, t.elapsed())
    })
    .await
    .unwrap();
    assert_eq!((raw.0, raw.1), (0, 0), "refused without an answer");
    assert!(
        raw.2 >= Duration::from_millis(900),
        "hello timeout {:?}",
        raw.2
    );
    assert_eq!(
        b.unknown_rejected(),
        counts(&[("unknown_peer", 2), ("bad_magic", 1), ("hello_timeout", 1)])
    );
    assert_eq!(rejected(&b, "c"), counts(&[("wrong_direction", 1)]));
    assert!(rejected(&b, "a").is_empty());
    assert_eq!(drain(&mut b_rx, Duration::from_millis(50)).await, vec![]);
}

/// Run `attack` as a rogue "a" (with the right key) against node "b", and
/// return b's events.
async fn attack(
    b_addr: SocketAddr,
    rx: &mut mpsc::Receiver<ChannelEvent>,
    attack: impl FnOnce(&mut RogueClient) + Send + 'static,
) -> Vec<ChannelEvent> {
    let closed = tokio::task::spawn_blocking(move || {
        let mut r = RogueClient::connect(b_addr, "a", KEY, SEC).unwrap();
        attack(&mut r);
        r.wait_closed(SEC)
    });
    let evs = drain(rx, Duration::from_millis(200)).await;
    assert!(closed.await.unwrap(), "b should hang up");
    evs
}

fn down_reason(evs: &[ChannelEvent]) -> &str {
    match evs.last() {
        Some(ChannelEvent::Down { peer, reason, .. }) if peer == "a" => reason,
        other => panic!("expected a Down last, got {other:?} in {evs:?}"),
    }
}

#[tokio::test]
async fn rogue_frames_rejected_and_counted() {
    let b_addr = free_addr();
    let (b, mut rx) = Channel::start(
        "b",
        b_addr,
        vec![("a".into(), free_addr())],
        KEY.to_vec(),
        ChannelOptions::default(),
    )
    .unwrap();

    // Replay: the first copy is genuine and delivered, the second is not.
    let evs = attack(b_addr, &mut rx, |r| {
        let f = r.message_frame(&heartbeat("a"));
        r.send_raw(&f).unwrap();
        r.send_raw(&f).unwrap();
    })
    .await;
    assert_eq!(evs[0], ChannelEvent::Up { peer: "a".into() });
    assert_eq!(
        evs[1],
        ChannelEvent::Message {
            peer: "a".into(),
            msg: heartbeat("a")
        }
    );
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert!(down_reason(&evs).starts_with("out_of_order"));

    // Line noise: a flipped payload bit.
    let evs = attack(b_addr, &mut rx, |r| {
        let mut f = r.message_frame(&heartbeat("a"));
        f[HEADER_LEN + 3] ^= 0x10;
        r.send_raw(&f).unwrap();
    })
    .await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(down_reason(&evs).starts_with("bad_crc"));

    // Forgery: a flipped bit with the CRC made right again.
    let evs = attack(b_addr, &mut rx, |r| {
        let mut f = r.message_frame(&Message::ClearPin {
            instance: "VI_1".into(),
            epoch: 1,
        });
        // The epoch digit, before the closing brace: ChaCha20 is a stream
        // cipher, so flipping a ciphertext bit flips the same plaintext
        // bit ("1" would become "0"); only the tag stands in the way.
        let at = f.len() - frame::TAG_LEN - frame::CRC_LEN - 2;
        f[at] ^= 0x01;
        frame::fix_crc(&mut f);
        r.send_raw(&f).unwrap();
    })
    .await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(down_reason(&evs).starts_with("bad_tag"));

    // Oversized: only a header claiming 2 MiB is sent; b hangs up without
    // waiting for the payload.
    let evs = attack(b_addr, &mut rx, |r| {
        let mut f = r.frame(FrameType::Data, b"x");
        f[LENGTH_FIELD].copy_from_slice(&(2u32 << 20).to_be_bytes());
        r.send_raw(&f[..HEADER_LEN]).unwrap();
    })
    .await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(down_reason(&evs).starts_with("oversized"));

    // A keyed peer sending a frame type from the future.
    let evs = attack(b_addr, &mut rx, |r| {
        let mut f = r.frame(FrameType::Data, b"x");
        f[4] = 42;
        frame::fix_crc(&mut f);
        r.send_raw(&f).unwrap();
    })
    .await;
    assert!(down_reason(&evs).starts_with("unknown_type"));

    // Valid frame, but a malformed message (a known type without its
    // fields).
    let evs = attack(b_addr, &mut rx, |r| {
        let f = r.frame(FrameType::Message, b"{\"type\":\"takeover\"}");
        r.send_raw(&f).unwrap();
    })
    .await;
    assert!(down_reason(&evs).starts_with("bad_message"));

    // A second Hello after the handshake.
    let evs = attack(b_addr, &mut rx, |r| {
        let h = Hello {
            name: "a".into(),
            nonce: [0; 32],
        };
        r.send_raw(&h.encode()).unwrap();
    })
    .await;
    assert!(down_reason(&evs).starts_with("bad_hello"));

    // A message type from a newer version (a rolling upgrade): skipped and
    // counted; the connection stays.
    let kept = tokio::task::spawn_blocking(move || {
        let mut r = RogueClient::connect(b_addr, "a", KEY, SEC).unwrap();
        let f = r.frame(FrameType::Message, b"{\"type\":\"from_the_future\"}");
        r.send_raw(&f).unwrap();
        !r.wait_closed(Duration::from_millis(100))
    });
    let evs = drain(&mut rx, Duration::from_millis(50)).await;
    assert!(kept.await.unwrap(), "b hung up on an unknown message type");
    assert!(
        !evs.iter().any(
            |e| matches!(e, ChannelEvent::Down { reason, .. } if reason.starts_with("bad_message"))
        ),
        "{evs:?}"
    );
    let _ = drain(&mut rx, Duration::from_millis(100)).await;

    assert_eq!(
        rejected(&b, "a"),
        counts(&[
            ("out_of_order", 1),
            ("bad_crc", 1),
            ("bad_tag", 1),
            ("oversized", 1),
            ("unknown_type", 1),
            ("bad_message", 1),
            ("bad_hello", 1),
            ("unknown_message", 1),
        ])
    );
    assert!(b.unknown_rejected().is_empty());
    assert!(!b.peers()[0].connected);
}

/// A stranger claiming an Up peer's name cannot push it out: the real
/// connection stays Up and no event is emitted, whatever the stranger sends.
#[tokio::test]
async fn impostor_cannot_disturb_an_up_peer() {
    let b_addr = free_addr();
    let (b, mut rx) = Channel::start(
        "b",
        b_addr,
        vec![("a".into(), free_addr())],
        KEY.to_vec(),
        ChannelOptions::default(),
    )
    .unwrap();
    let (keep_tx, keep_rx) = std::sync::mpsc::channel::<()>();
    let genuine = tokio::task::spawn_blocking(move || {
        let mut r = RogueClient::connect(b_addr, "a", KEY, SEC).unwrap();
        // Heartbeat every 50 ms until told to stop.
        while keep_rx.recv_timeout(Duration::from_millis(50)).is_err() {
            r.send_message(&heartbeat("a")).unwrap();
        }
    });
    let evs = drain(&mut rx, Duration::from_millis(200)).await;
    assert_eq!(evs[0], ChannelEvent::Up { peer: "a".into() });

    let impostor = tokio::task::spawn_blocking(move || {
        // It ignores b's Proof (which it cannot open) and sends anyway.
        let mut r = RogueClient::connect_unverified(b_addr, "a", WRONG_KEY, SEC).unwrap();
        let f = r.message_frame(&heartbeat("impostor"));
        r.send_raw(&f).unwrap();
        // b sends it nothing it can open before hanging up.
        let got = r.recv(SEC);
        (r.wait_closed(SEC), got.err().map(|e| e.kind()))
    });
    let evs = drain(&mut rx, Duration::from_millis(300)).await;
    let (closed, got) = impostor.await.unwrap();
    assert!(closed);
    // Its only frames from b are the Proof and the Close, neither of which
    // it can open (the first already fails).
    assert_eq!(got, Some(std::io::ErrorKind::InvalidData));
    assert!(
        evs.iter().all(|ev| matches!(
            ev,
            ChannelEvent::Message { msg, .. } if *msg == heartbeat("a")
        )),
        "{evs:?}"
    );
    assert!(b.peers()[0].connected);
    assert_eq!(rejected(&b, "a"), counts(&[("bad_tag", 1)]));
    keep_tx.send(()).unwrap();
    genuine.await.unwrap();
}
