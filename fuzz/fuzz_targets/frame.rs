//! Cluster-channel frames and the Hello: the streaming `Decoder` fed any
//! bytes in any cut, and `Hello::parse`.
//!
//! Input: a byte that sets the cut size, then the stream. Checked: the
//! decoder never holds more than its limit allows, frames come out in
//! sequence, the first error ends the stream; a parsed Hello encodes back
//! to the same bytes; a frame encoded with a key decodes to itself.
#![no_main]

use baton::wire::frame::{encode, Decoder, FrameType, Hello, SessionKey, OVERHEAD};
use libfuzzer_sys::fuzz_target;

const MAX_PAYLOAD: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut % 64) + 1;
    let key = SessionKey::derive(b"fuzz key", "a", &[1; 32], "b", &[2; 32]);

    // As a connection reads: a Hello first (no key), then keyed frames.
    let mut dec = Decoder::new(MAX_PAYLOAD);
    let mut seq = 0u64;
    'read: for piece in stream.chunks(cut) {
        dec.push(piece);
        loop {
            let k = (seq > 0).then_some(&key);
            match dec.next_frame(seq, k) {
                Ok(Some(frame)) => {
                    assert_eq!(frame.seq, seq);
                    assert!(frame.payload.len() <= MAX_PAYLOAD);
                    assert_eq!(frame.kind == FrameType::Hello, seq == 0);
                    if frame.kind == FrameType::Hello {
                        let _ = Hello::parse(&frame.payload);
                    }
                    seq += 1;
                }
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
        assert!(dec.buffered() <= MAX_PAYLOAD + OVERHEAD + cut);
    }

    // The Hello payload: parse, then back to the very same bytes.
    if let Ok(hello) = Hello::parse(stream) {
        assert_eq!(hello.payload(), stream);
        assert_eq!(Hello::parse(&hello.payload()), Ok(hello));
    }

    // Any payload, framed with the key, decodes to itself.
    let payload = &stream[..stream.len().min(MAX_PAYLOAD)];
    for kind in [FrameType::Message, FrameType::Data, FrameType::Close] {
        let bytes = encode(kind, 7, payload, Some(&key));
        let mut dec = Decoder::new(MAX_PAYLOAD);
        dec.push(&bytes);
        let frame = dec
            .next_frame(7, Some(&key))
            .expect("own frame")
            .expect("whole frame");
        assert_eq!(
            (frame.kind, frame.seq, &frame.payload[..]),
            (kind, 7, payload)
        );
        assert_eq!(dec.buffered(), 0);
    }
});
