//! One cluster-channel session (acceptor side), fed by a hostile dialer
//! that may know the cluster key: raw bytes, Hellos, correctly keyed
//! frames of any type, payload and sequence number, and the passing of
//! time, in any order.
//!
//! Checked: no panic; the acceptor sends nothing but its Hello before the
//! peer proved the key; Keyed comes before PeerProven, which comes before
//! any Message or Data; nothing follows Ended; what the session buffers
//! stays within its limit; a message is only delivered from a frame the
//! harness keyed.
#![no_main]

use std::time::{Duration, Instant};

use baton::cluster::session::{Session, SessionConfig, SessionEvent};
use baton::wire::frame::{encode, FrameType, Hello, SessionKey, OVERHEAD};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"cluster key for fuzzing";
const MAX_PAYLOAD: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let t0 = Instant::now();
    let mut now = t0;
    let cfg = SessionConfig {
        me: "b".to_string(),
        cluster_key: KEY.to_vec(),
        old_keys: Vec::new(),
        max_payload: MAX_PAYLOAD,
        hello_timeout: Duration::from_secs(5),
        dead_after: Duration::from_secs(3),
        heartbeat_interval: u.arbitrary::<bool>()?.then_some(Duration::from_millis(100)),
    };
    let mut s = Session::acceptor(cfg, now);
    // The dialer side, as far as the harness plays it.
    let mut dialer: Option<(String, [u8; 32])> = None;
    let mut key: Option<SessionKey> = None;
    let mut seq = 1u64;
    let (mut keyed, mut proven, mut ended, mut keyed_frames) = (false, false, false, 0u64);

    for _ in 0..u.int_in_range(1..=24)? {
        match u.int_in_range(0..=5)? {
            0 => {
                let n = u.int_in_range(0..=200)?;
                s.handle_read(now, u.bytes(n)?);
            }
            1 => {
                let name: String = u.arbitrary()?;
                let nonce: [u8; 32] = u.arbitrary()?;
                s.handle_read(
                    now,
                    &Hello {
                        name: name.clone(),
                        nonce,
                    }
                    .encode(),
                );
                dialer.get_or_insert((name, nonce));
            }
            2 => {
                let nonce: [u8; 32] = u.arbitrary()?;
                if s.admit(now, nonce).is_ok() {
                    if let Some((name, dn)) = &dialer {
                        let k = SessionKey::derive(KEY, name, dn, "b", &nonce);
                        key = Some(k.split().0);
                    }
                }
            }
            3 | 4 => {
                // A frame the harness keys, as a peer with the key would.
                let kind = *u.choose(&[FrameType::Message, FrameType::Data, FrameType::Close])?;
                let payload: Vec<u8> = if u.arbitrary()? {
                    message_json(u)?
                } else {
                    let n = u.int_in_range(0..=300)?;
                    u.bytes(n)?.to_vec()
                };
                let fseq = if u.ratio(1, 8)? { u.arbitrary()? } else { seq };
                s.handle_read(now, &encode(kind, fseq, &payload, key.as_ref()));
                seq += 1;
                keyed_frames += 1;
            }
            _ => {
                now += Duration::from_millis(u.int_in_range(0..=4000)?);
                s.handle_timeout(now);
            }
        }
        while let Some(e) = s.poll_event() {
            assert!(!ended, "an event after Ended: {e:?}");
            match e {
                SessionEvent::Keyed => keyed = true,
                SessionEvent::PeerProven => {
                    assert!(keyed);
                    proven = true;
                }
                SessionEvent::Message(_) | SessionEvent::Data(_) | SessionEvent::Skipped { .. } => {
                    assert!(proven && keyed_frames > 0);
                }
                SessionEvent::Ended(_) => ended = true,
                SessionEvent::HelloReceived { .. } | SessionEvent::HeartbeatDue => {}
            }
        }
        let mut sent = 0;
        while let Some(bytes) = s.poll_transmit() {
            sent += 1;
            assert!(bytes.len() <= OVERHEAD + MAX_PAYLOAD);
        }
        // Before the peer proved the key: at most our Hello (and a Close).
        assert!(proven || sent <= 2);
        assert!(!ended || s.is_ended());
    }
    Ok(())
}

/// A well-formed cluster message now and then, so that the session's
/// message decoding is reached past the tag.
fn message_json(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let kind = *u.choose(&["heartbeat", "takeover", "sync_have", "future_kind"])?;
    let n: u64 = u.arbitrary()?;
    Ok(format!(
        r#"{{"type":"{kind}","node":"a","instances":[],"instance":"VI_1","epoch":{n},"pinned":false,"name":"f","version":null,"digest":null,"committed":null}}"#
    )
    .into_bytes())
}
