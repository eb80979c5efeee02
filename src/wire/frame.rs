//! Cluster-channel frames: the unit that baton nodes exchange over their TCP
//! full mesh.
//!
//! This module owns the byte format, the per-connection session key and the
//! receive-side rejection reasons ([`FrameError`]). It is pure: no IO, no
//! clock, no randomness (nonces come in as arguments).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------------------------------------------------------+
//! |                        magic "BTN1"                           |
//! +---------------+---------------+-------------------------------+
//! |     type      |     flags     |           reserved            |
//! +---------------+---------------+-------------------------------+
//! |                  payload length (big-endian)                  |
//! +---------------------------------------------------------------+
//! |                                                               |
//! +                   sequence (64 bits, big-endian)              +
//! |                                                               |
//! +---------------------------------------------------------------+
//! |   payload (payload length bytes; ChaCha20 ciphertext once     |
//! ~   keyed, in clear in a Hello)                                 ~
//! +---------------------------------------------------------------+
//! |            CRC32 of everything before it (big-endian)         |
//! +---------------------------------------------------------------+
//! |      Poly1305 tag (16 bytes; a Hello: 32 zero bytes)          |
//! ~                                                               ~
//! +---------------------------------------------------------------+
//! ```
//!
//! Types: 1 Hello (in clear and unauthenticated; payload: version, name,
//! nonce; its trailer is 32 zero bytes, never checked), 2 Message (JSON of
//! [`crate::cluster::Message`]), 3 Data (opaque bytes), 4 Close (a UTF-8
//! reason), 5 Proof (empty: the acceptor's proof of the key, see
//! [`crate::cluster::session`]).
//!
//! Every frame but the Hello is sealed with ChaCha20-Poly1305 (RFC 8439)
//! under its direction's key: the payload is encrypted, and the 20 header
//! bytes (magic, type, flags, reserved, length, sequence) are authenticated
//! as associated data but stay in clear. The AEAD nonce is the frame's
//! sequence number (four zero bytes, then the 64-bit sequence). A sender
//! never seals two frames with one sequence number under one key, and a
//! key is never used on two connections: it is derived from both ends'
//! fresh random nonces ([`SessionKey::derive`]), and each direction has its
//! own ([`SessionKey::split`]). So a (key, nonce) pair never repeats, which
//! is what ChaCha20-Poly1305 needs to stay secret and unforgeable.
//!
//! What an eavesdropper learns: the Hellos (both node names, the protocol
//! version, the nonces), and for every other frame its type, length,
//! sequence number and timing. Never a payload.
//!
//! The Hello keeps the layout of protocol version 1 (a 32-byte trailer
//! where version 1 had its HMAC tag), so that nodes of either version read
//! the other's Hello and refuse its version by name
//! ([`FrameError::Version`]) instead of waiting for bytes that never come.
//!
//! Receive checks run in a fixed order so that one bad frame is counted under
//! one reason: magic (as soon as 4 bytes are in, so a stranger speaking
//! another protocol is told apart at once), length (before any payload is
//! buffered), CRC (corruption), type, tag (forgery, wrong key, a frame
//! spliced in from another connection), sequence (replay, reordering). The
//! CRC before the tag is what tells a flaky link from an attacker; it is
//! computed over the ciphertext, so it reveals nothing of the payload.
//!
//! Sequence numbers are per connection and per direction: the Hello is 0,
//! the first sealed frame is 1. Each direction has its own key
//! ([`SessionKey::split`]), so a frame cannot be reflected back to its sender.

use std::ops::Range;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

pub const MAGIC: [u8; 4] = *b"BTN1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 20;
pub const CRC_LEN: usize = 4;
/// The Poly1305 tag closing every frame but the Hello.
pub const TAG_LEN: usize = baton_seal::TAG_LEN;
/// The Hello's trailer: zeros, where protocol version 1 had a 32-byte tag.
pub const HELLO_TRAILER_LEN: usize = 32;
/// Bytes of a sealed frame that are not payload.
pub const OVERHEAD: usize = HEADER_LEN + CRC_LEN + TAG_LEN;
/// Default largest payload a receiver accepts (1 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;
/// The Hello's protocol version. 2: payloads encrypted (ChaCha20-Poly1305)
/// and the acceptor proves the key first; version 1 (HMAC-SHA256 tags,
/// payloads in clear) is refused.
pub const PROTOCOL_VERSION: u8 = 2;
pub const NONCE_LEN: usize = 32;
/// Longest node name a Hello can carry.
pub const MAX_NAME_LEN: usize = 255;
/// Largest Hello payload: version, name length, name, nonce. A receiver
/// waiting for a Hello should cap its decoder at this, so that a stranger
/// cannot make it buffer a megabyte before proving anything.
pub const MAX_HELLO_PAYLOAD: usize = 2 + MAX_NAME_LEN + NONCE_LEN;
/// Label mixed into every session key (domain separation; the protocol
/// version is in it, so no key is shared with another version).
const KEY_LABEL: &[u8] = b"baton cluster v2";

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const TYPE: usize = 4;
    pub const FLAGS: usize = 5;
    #[allow(dead_code)] // documents the layout; always zero, ignored
    pub const RESERVED: Range<usize> = 6..8;
    pub const LENGTH: Range<usize> = 8..12;
    pub const SEQ: Range<usize> = 12..20;
}

/// Byte range of the payload length field (for tests that corrupt it).
pub const LENGTH_FIELD: Range<usize> = field::LENGTH;
/// Byte range of the magic (for tests that corrupt it).
pub const MAGIC_FIELD: Range<usize> = field::MAGIC;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    Hello = 1,
    Message = 2,
    Data = 3,
    Close = 4,
    Proof = 5,
}

impl FrameType {
    pub fn from_u8(v: u8) -> Option<FrameType> {
        match v {
            1 => Some(FrameType::Hello),
            2 => Some(FrameType::Message),
            3 => Some(FrameType::Data),
            4 => Some(FrameType::Close),
            5 => Some(FrameType::Proof),
            _ => None,
        }
    }

    /// Bytes after the CRC: the tag, or the Hello's zero trailer.
    fn trailer_len(type_byte: u8) -> usize {
        if type_byte == FrameType::Hello as u8 {
            HELLO_TRAILER_LEN
        } else {
            TAG_LEN
        }
    }
}

/// A frame that passed every check (its payload decrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameType,
    /// Unused so far: carried, covered by CRC and tag, ignored.
    pub flags: u8,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Why a received frame was rejected. After any of these the byte stream
/// cannot be trusted (framing may be lost): the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("bad magic (not a baton cluster frame)")]
    BadMagic,
    #[error("payload length {length} exceeds the limit of {max} bytes")]
    Oversized { length: u64, max: usize },
    #[error("CRC mismatch (corrupted frame)")]
    BadCrc,
    #[error("authentication tag mismatch (wrong cluster key, forged or spliced frame)")]
    BadTag,
    #[error("sequence {got}, expected {expected} (replayed or reordered frame)")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("bad hello: {0}")]
    BadHello(&'static str),
    #[error(
        "the peer speaks cluster protocol version {got}, this node version {}: \
         every node of a cluster must run a baton of the same protocol version",
        PROTOCOL_VERSION
    )]
    Version { got: u8 },
}

impl FrameError {
    /// A stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::BadMagic => "bad_magic",
            FrameError::Oversized { .. } => "oversized",
            FrameError::BadCrc => "bad_crc",
            FrameError::BadTag => "bad_tag",
            FrameError::OutOfOrder { .. } => "out_of_order",
            FrameError::UnknownType(_) => "unknown_type",
            FrameError::BadHello(_) => "bad_hello",
            FrameError::Version { .. } => "protocol_version",
        }
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // Not input-dependent: HMAC takes keys of any length (the crate's own
    // `KeyInit::new` relies on the same fact).
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The key of one direction (or, before [`split`], of one connection): a
/// 32-byte secret, used as the ChaCha20-Poly1305 key of its frames and, by
/// `split`, to derive the direction keys. Never printed.
///
/// [`split`]: SessionKey::split
#[derive(Clone)]
pub struct SessionKey {
    /// HMAC keyed with the secret (for `split`).
    prf: HmacSha256,
    aead: baton_seal::Key,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// The AEAD nonce of the frame with sequence `seq`: unique per direction
/// key, because a sender numbers its frames 1, 2, 3... and a key lives for
/// one direction of one connection.
fn aead_nonce(seq: u64) -> [u8; baton_seal::NONCE_LEN] {
    let mut n = [0u8; baton_seal::NONCE_LEN];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

impl SessionKey {
    fn from_secret(secret: &[u8; 32]) -> SessionKey {
        SessionKey {
            prf: hmac(secret),
            aead: baton_seal::Key::new(secret),
        }
    }

    fn prf(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.prf.clone();
        m.update(data);
        let mut out = [0u8; 32];
        out.copy_from_slice(&m.finalize().into_bytes());
        out
    }

    /// The connection key: HMAC-SHA256(cluster_key, "baton cluster v2" ||
    /// len16(dialer) || dialer || len16(acceptor) || acceptor ||
    /// dialer_nonce || acceptor_nonce). Fresh nonces on both sides make it
    /// unique per connection, so a frame from another connection (or an
    /// earlier one) fails the tag, and no (key, AEAD nonce) pair is ever
    /// used twice even though AEAD nonces restart at 1 on each connection.
    pub fn derive(
        cluster_key: &[u8],
        dialer_name: &str,
        dialer_nonce: &[u8; NONCE_LEN],
        acceptor_name: &str,
        acceptor_nonce: &[u8; NONCE_LEN],
    ) -> SessionKey {
        let mut m = hmac(cluster_key);
        m.update(KEY_LABEL);
        for name in [dialer_name, acceptor_name] {
            let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
            m.update(&len.to_be_bytes());
            m.update(name.as_bytes());
        }
        m.update(dialer_nonce);
        m.update(acceptor_nonce);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&m.finalize().into_bytes());
        SessionKey::from_secret(&secret)
    }

    /// The two direction keys: (dialer to acceptor, acceptor to dialer).
    /// With one key for both directions, a man in the middle could send a
    /// node's own frame back to it and it would verify (and both ends
    /// would seal with the same nonces).
    pub fn split(&self) -> (SessionKey, SessionKey) {
        let sub = |label: &[u8]| SessionKey::from_secret(&self.prf(label));
        (sub(b"dialer to acceptor"), sub(b"acceptor to dialer"))
    }

    /// Encrypt `payload` in place; the tag over it and `header`.
    fn seal(&self, seq: u64, header: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        // Only fails for a payload over 256 GiB; the length field (u32)
        // and every receiver's limit are far below.
        self.aead
            .seal(&aead_nonce(seq), header, payload)
            .unwrap_or([0; TAG_LEN])
    }

    /// Check the tag and decrypt `payload` in place (constant-time tag
    /// comparison: the crate's).
    fn open(&self, seq: u64, header: &[u8], payload: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        self.aead.open(&aead_nonce(seq), header, payload, &tag)
    }
}

/// Encode one frame. `key` is ignored for a Hello (in clear, zero trailer)
/// and required for the others, whose payload it encrypts: without one the
/// payload stays in clear, the tag is zeros and every receiver rejects the
/// frame (`BadTag`; for tests only). Payloads are limited by the receiver's
/// `max_payload`; a payload over 4 GiB would saturate the length field and
/// be rejected too.
pub fn encode(kind: FrameType, seq: u64, payload: &[u8], key: Option<&SessionKey>) -> Vec<u8> {
    let trailer = FrameType::trailer_len(kind as u8);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + CRC_LEN + trailer);
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.push(0); // flags
    out.extend_from_slice(&[0, 0]); // reserved
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(payload);
    let tag = match (kind, key) {
        (FrameType::Hello, _) | (_, None) => None,
        (_, Some(k)) => {
            let (header, body) = out.split_at_mut(HEADER_LEN);
            Some(k.seal(seq, header, body))
        }
    };
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    match tag {
        Some(t) => out.extend_from_slice(&t),
        None => out.resize(out.len() + trailer, 0),
    }
    out
}

/// Recompute the CRC of an encoded frame in place (the tag is left alone).
/// For tests and the rogue-peer helper: it turns a corrupted frame into a
/// forged one. Does nothing when `frame` is shorter than its length field
/// says.
pub fn fix_crc(frame: &mut [u8]) {
    let Some(len) = read_len(frame) else { return };
    let Some(end) = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN))
    else {
        return;
    };
    if frame.len() < end + CRC_LEN {
        return;
    }
    let crc = crc32fast::hash(&frame[..end]);
    frame[end..end + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
}

fn read_len(buf: &[u8]) -> Option<u32> {
    let b = buf.get(field::LENGTH)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A streaming decoder for one direction of one connection.
///
/// Feed it bytes as they arrive ([`push`](Decoder::push)) and drain frames
/// ([`next_frame`](Decoder::next_frame)) after each push. It holds what it
/// is given: a caller that reads in chunks of at most N bytes and drains
/// after each one holds at most `max_payload + OVERHEAD + N` bytes. A length
/// over the limit is refused as soon as the header is in, before any of its
/// payload is buffered.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max_payload: usize,
}

impl Decoder {
    pub fn new(max_payload: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            max_payload,
        }
    }

    /// Change the limit (a connection waits for a Hello with
    /// [`MAX_HELLO_PAYLOAD`], then raises it).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// `key: None` means the connection is waiting for the peer's Hello (the
    /// only frame accepted then); `Some` means the handshake is done and a
    /// Hello is refused. `expected_seq` is 0 for the Hello, then 1, 2, ...
    pub fn next_frame(
        &mut self,
        expected_seq: u64,
        key: Option<&SessionKey>,
    ) -> Result<Option<Frame>, FrameError> {
        let have = self.buf.len().min(MAGIC.len());
        if self.buf[..have] != MAGIC[..have] {
            return Err(FrameError::BadMagic);
        }
        let Some(len) = read_len(&self.buf) else {
            return Ok(None);
        };
        let len = match usize::try_from(len) {
            Ok(l) if l <= self.max_payload => l,
            _ => {
                return Err(FrameError::Oversized {
                    length: u64::from(len),
                    max: self.max_payload,
                })
            }
        };
        let crc_at = HEADER_LEN + len;
        let tag_at = crc_at + CRC_LEN;
        // Read once 4 bytes are in, which the length needed already.
        let total = tag_at + FrameType::trailer_len(self.buf[field::TYPE]);
        if self.buf.len() < total {
            return Ok(None);
        }
        let b = &self.buf;
        let crc = u32::from_be_bytes([b[crc_at], b[crc_at + 1], b[crc_at + 2], b[crc_at + 3]]);
        if crc32fast::hash(&b[..crc_at]) != crc {
            return Err(FrameError::BadCrc);
        }
        let kind =
            FrameType::from_u8(b[field::TYPE]).ok_or(FrameError::UnknownType(b[field::TYPE]))?;
        let s = &b[field::SEQ];
        let seq = u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        let mut payload = b[HEADER_LEN..crc_at].to_vec();
        match (kind, key) {
            (FrameType::Hello, Some(_)) => {
                return Err(FrameError::BadHello("hello after handshake"))
            }
            (FrameType::Hello, None) => {}
            (_, None) => return Err(FrameError::BadHello("expected a hello first")),
            (_, Some(k)) => {
                // The sequence is checked after the tag (which covers it),
                // so that a forged one is counted as forged.
                if !k.open(seq, &b[..HEADER_LEN], &mut payload, &b[tag_at..total]) {
                    return Err(FrameError::BadTag);
                }
            }
        }
        if seq != expected_seq {
            return Err(FrameError::OutOfOrder {
                expected: expected_seq,
                got: seq,
            });
        }
        let frame = Frame {
            kind,
            flags: b[field::FLAGS],
            seq,
            payload,
        };
        self.buf.drain(..total);
        Ok(Some(frame))
    }
}

/// The Hello payload.
///
/// ```text
/// | version (1) | name length (1) | name (UTF-8) | nonce (32) |
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub name: String,
    pub nonce: [u8; NONCE_LEN],
}

impl Hello {
    /// The payload bytes. Names longer than [`MAX_NAME_LEN`] bytes are cut
    /// (config validation keeps node names far shorter).
    pub fn payload(&self) -> Vec<u8> {
        let mut name = self.name.as_bytes();
        if name.len() > MAX_NAME_LEN {
            name = &name[..MAX_NAME_LEN];
        }
        let mut out = Vec::with_capacity(2 + name.len() + NONCE_LEN);
        out.push(PROTOCOL_VERSION);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&self.nonce);
        out
    }

    /// A whole Hello frame (sequence 0, in clear, zero trailer).
    pub fn encode(&self) -> Vec<u8> {
        encode(FrameType::Hello, 0, &self.payload(), None)
    }

    pub fn parse(payload: &[u8]) -> Result<Hello, FrameError> {
        let (&version, rest) = payload.split_first().ok_or(FrameError::BadHello("empty"))?;
        // First, so that any other version is refused by name, whatever
        // else its Hello carries.
        if version != PROTOCOL_VERSION {
            return Err(FrameError::Version { got: version });
        }
        let (&len, rest) = rest
            .split_first()
            .ok_or(FrameError::BadHello("truncated"))?;
        let len = usize::from(len);
        if len == 0 {
            return Err(FrameError::BadHello("empty node name"));
        }
        if rest.len() != len + NONCE_LEN {
            return Err(FrameError::BadHello("wrong length"));
        }
        let name = std::str::from_utf8(&rest[..len])
            .map_err(|_| FrameError::BadHello("node name is not UTF-8"))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[len..]);
        Ok(Hello {
            name: name.to_string(),
            nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLUSTER_KEY: &[u8] = b"0123456789abcdef-cluster-key";

    fn key() -> SessionKey {
        SessionKey::derive(CLUSTER_KEY, "lb1", &[1; 32], "lb2", &[2; 32])
    }

    fn decode_all(
        bytes: &[u8],
        seq: u64,
        key: Option<&SessionKey>,
    ) -> Result<Option<Frame>, FrameError> {
        let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
        d.push(bytes);
        d.next_frame(seq, key)
    }

    /// A Message frame, seq 1, payload `{}`: the layout byte by byte.
    #[test]
    fn layout() {
        let f = encode(FrameType::Message, 1, b"{}", Some(&key()));
        assert_eq!(f.len(), OVERHEAD + 2);
        assert_eq!(
            &f[..HEADER_LEN],
            &[
                b'B', b'T', b'N', b'1', // magic
                2, 0, 0, 0, // type, flags, reserved
                0, 0, 0, 2, // length
                0, 0, 0, 0, 0, 0, 0, 1, // sequence
            ]
        );
        // The payload is ciphertext: ChaCha20 under the key, nonce = seq.
        assert_ne!(&f[HEADER_LEN..HEADER_LEN + 2], b"{}");
        let crc = crc32fast::hash(&f[..22]).to_be_bytes();
        assert_eq!(&f[22..26], &crc);
        assert_eq!(f[26..].len(), TAG_LEN);
        assert_ne!(&f[26..], &[0u8; TAG_LEN]);
    }

    /// The Hello keeps the version 1 layout (32-byte zero trailer), with
    /// version 2 in its first payload byte: what a version 1 node parses
    /// to refuse it, and what this version parses of a version 1 Hello.
    #[test]
    fn hello_layout_and_version_1_refused_by_name() {
        let h = Hello {
            name: "lb1".into(),
            nonce: [7; 32],
        };
        let f = h.encode();
        assert_eq!(f.len(), HEADER_LEN + 2 + 3 + 32 + CRC_LEN + 32);
        assert_eq!(f[4], 1);
        assert_eq!(&f[HEADER_LEN..HEADER_LEN + 5], &[2, 3, b'l', b'b', b'1']);
        assert_eq!(&f[HEADER_LEN + 5..HEADER_LEN + 37], &[7; 32]);
        assert_eq!(&f[f.len() - 32..], &[0; 32]);
        // A version 1 Hello, byte for byte as version 1 wrote it.
        let mut v1 = f.clone();
        v1[HEADER_LEN] = 1;
        fix_crc(&mut v1);
        let got = decode_all(&v1, 0, None).unwrap().unwrap();
        let e = Hello::parse(&got.payload).unwrap_err();
        assert_eq!(e, FrameError::Version { got: 1 });
        assert_eq!(e.reason(), "protocol_version");
        assert_eq!(
            e.to_string(),
            "the peer speaks cluster protocol version 1, this node version 2: \
             every node of a cluster must run a baton of the same protocol version"
        );
    }

    /// What is on the wire of a sealed frame: header and lengths, never a
    /// byte of the payload (no 4-byte window of it survives).
    #[test]
    fn payload_never_in_clear() {
        let k = key();
        let secret: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
        for seq in 1..4 {
            let f = encode(FrameType::Data, seq, &secret, Some(&k));
            for w in secret.windows(4) {
                assert!(!f.windows(4).any(|x| x == w), "seq {seq}: {w:?} in clear");
            }
            d.push(&f);
            assert_eq!(
                d.next_frame(seq, Some(&k)).unwrap().unwrap().payload,
                secret
            );
        }
        // Same payload, another sequence number: another ciphertext.
        assert_ne!(
            encode(FrameType::Data, 1, &secret, Some(&k))[HEADER_LEN..],
            encode(FrameType::Data, 2, &secret, Some(&k))[HEADER_LEN..]
        );
    }

    #[test]
    fn round_trip_every_type() {
        let k = key();
        let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
        d.push(
            &Hello {
                name: "lb1".into(),
                nonce: [7; 32],
            }
            .encode(),
        );
        d.push(&encode(FrameType::Message, 1, b"{\"a\":1}", Some(&k)));
        d.push(&encode(FrameType::Data, 2, &[0, 255, 3], Some(&k)));
        d.push(&encode(FrameType::Close, 3, b"shutdown", Some(&k)));
        d.push(&encode(FrameType::Proof, 4, &[], Some(&k)));
        let h = d.next_frame(0, None).unwrap().unwrap();
        assert_eq!(h.kind, FrameType::Hello);
        assert_eq!(
            Hello::parse(&h.payload).unwrap(),
            Hello {
                name: "lb1".into(),
                nonce: [7; 32]
            }
        );
        let m = d.next_frame(1, Some(&k)).unwrap().unwrap();
        assert_eq!(
            (m.kind, m.seq, &m.payload[..]),
            (FrameType::Message, 1, &b"{\"a\":1}"[..])
        );
        let x = d.next_frame(2, Some(&k)).unwrap().unwrap();
        assert_eq!(
            (x.kind, &x.payload[..]),
            (FrameType::Data, &[0, 255, 3][..])
        );
        let c = d.next_frame(3, Some(&k)).unwrap().unwrap();
        assert_eq!(
            (c.kind, &c.payload[..]),
            (FrameType::Close, &b"shutdown"[..])
        );
        let p = d.next_frame(4, Some(&k)).unwrap().unwrap();
        assert_eq!((p.kind, p.payload.len()), (FrameType::Proof, 0));
        assert_eq!(d.next_frame(5, Some(&k)), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn empty_payload() {
        let k = key();
        let f = encode(FrameType::Data, 1, &[], Some(&k));
        assert_eq!(f.len(), OVERHEAD);
        assert_eq!(
            decode_all(&f, 1, Some(&k)).unwrap().unwrap().payload,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn bad_magic() {
        let mut f = encode(FrameType::Message, 1, b"{}", Some(&key()));
        f[0] = b'X';
        let e = decode_all(&f, 1, Some(&key())).unwrap_err();
        assert_eq!(e, FrameError::BadMagic);
        assert_eq!(e.reason(), "bad_magic");
        // Told apart from the first byte: someone speaking HTTP.
        assert_eq!(decode_all(b"G", 1, Some(&key())), Err(FrameError::BadMagic));
    }

    #[test]
    fn oversized_without_buffering_the_payload() {
        let mut d = Decoder::new(1024);
        let f = encode(FrameType::Data, 1, &[0u8; 1025], Some(&key()));
        // Only the header is given: refused already.
        d.push(&f[..HEADER_LEN]);
        let e = d.next_frame(1, Some(&key())).unwrap_err();
        assert_eq!(
            e,
            FrameError::Oversized {
                length: 1025,
                max: 1024
            }
        );
        assert_eq!(e.reason(), "oversized");
        assert_eq!(d.buffered(), HEADER_LEN);
        // A claimed 4 GiB length.
        let mut h = f[..HEADER_LEN].to_vec();
        h[LENGTH_FIELD].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_all(&h, 1, None),
            Err(FrameError::Oversized { .. })
        ));
        // Exactly at the limit is fine.
        let ok = encode(FrameType::Data, 1, &[0u8; 1024], Some(&key()));
        let mut d = Decoder::new(1024);
        d.push(&ok);
        assert!(d.next_frame(1, Some(&key())).unwrap().is_some());
    }

    #[test]
    fn bad_crc() {
        let mut f = encode(FrameType::Message, 1, b"{}", Some(&key()));
        f[HEADER_LEN] ^= 0x01;
        let e = decode_all(&f, 1, Some(&key())).unwrap_err();
        assert_eq!(e, FrameError::BadCrc);
        assert_eq!(e.reason(), "bad_crc");
    }

    #[test]
    fn bad_tag_forged_and_wrong_key() {
        let mut f = encode(FrameType::Message, 1, b"{}", Some(&key()));
        f[HEADER_LEN] ^= 0x01;
        fix_crc(&mut f);
        let e = decode_all(&f, 1, Some(&key())).unwrap_err();
        assert_eq!(e, FrameError::BadTag);
        assert_eq!(e.reason(), "bad_tag");
        // A sender with another cluster key.
        let other = SessionKey::derive(b"another key entirely", "lb1", &[1; 32], "lb2", &[2; 32]);
        let f = encode(FrameType::Message, 1, b"{}", Some(&other));
        assert_eq!(decode_all(&f, 1, Some(&key())), Err(FrameError::BadTag));
        // No key at all (zero tag).
        let f = encode(FrameType::Message, 1, b"{}", None);
        assert_eq!(decode_all(&f, 1, Some(&key())), Err(FrameError::BadTag));
    }

    #[test]
    fn spliced_from_another_connection() {
        // Same cluster key and names, another pair of nonces: another session.
        let a = key();
        let b = SessionKey::derive(CLUSTER_KEY, "lb1", &[1; 32], "lb2", &[3; 32]);
        let f = encode(FrameType::Message, 1, b"{}", Some(&b));
        assert_eq!(decode_all(&f, 1, Some(&a)), Err(FrameError::BadTag));
        // Names are bound too, and their length prefix prevents shifting
        // bytes between them.
        let c = SessionKey::derive(CLUSTER_KEY, "lb", &[1; 32], "1lb2", &[2; 32]);
        let f = encode(FrameType::Message, 1, b"{}", Some(&c));
        assert_eq!(decode_all(&f, 1, Some(&a)), Err(FrameError::BadTag));
    }

    #[test]
    fn reflected_to_its_sender() {
        let (d2a, a2d) = key().split();
        let f = encode(FrameType::Message, 1, b"{}", Some(&d2a));
        assert_eq!(decode_all(&f, 1, Some(&a2d)), Err(FrameError::BadTag));
        assert!(decode_all(&f, 1, Some(&d2a)).unwrap().is_some());
    }

    #[test]
    fn replay_is_out_of_order() {
        let k = key();
        let f = encode(FrameType::Message, 1, b"{}", Some(&k));
        let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
        d.push(&f);
        d.push(&f);
        assert!(d.next_frame(1, Some(&k)).unwrap().is_some());
        let e = d.next_frame(2, Some(&k)).unwrap_err();
        assert_eq!(
            e,
            FrameError::OutOfOrder {
                expected: 2,
                got: 1
            }
        );
        assert_eq!(e.reason(), "out_of_order");
        // Skipping ahead (a frame dropped or reordered) is refused as well.
        let f = encode(FrameType::Message, 5, b"{}", Some(&k));
        assert_eq!(
            decode_all(&f, 1, Some(&k)),
            Err(FrameError::OutOfOrder {
                expected: 1,
                got: 5
            })
        );
    }

    #[test]
    fn unknown_type() {
        let k = key();
        let mut f = encode(FrameType::Message, 1, b"{}", Some(&k));
        f[4] = 9;
        fix_crc(&mut f);
        let e = decode_all(&f, 1, Some(&k)).unwrap_err();
        assert_eq!(e, FrameError::UnknownType(9));
        assert_eq!(e.reason(), "unknown_type");
    }

    #[test]
    fn bad_hello() {
        let k = key();
        // A Hello after the handshake, an authenticated frame before it.
        let hello = Hello {
            name: "lb1".into(),
            nonce: [0; 32],
        }
        .encode();
        let e = decode_all(&hello, 1, Some(&k)).unwrap_err();
        assert_eq!(e.reason(), "bad_hello");
        let m = encode(FrameType::Message, 0, b"{}", Some(&k));
        assert!(matches!(
            decode_all(&m, 0, None),
            Err(FrameError::BadHello(_))
        ));
        // Malformed payloads.
        let good = Hello {
            name: "lb1".into(),
            nonce: [0; 32],
        }
        .payload();
        assert!(Hello::parse(&good).is_ok());
        let mut v3 = good.clone();
        v3[0] = 3;
        assert_eq!(Hello::parse(&v3), Err(FrameError::Version { got: 3 }));
        for bad in [&[][..], &[2][..], &good[..good.len() - 1], &[2, 0, 0][..]] {
            assert!(
                matches!(Hello::parse(bad), Err(FrameError::BadHello(_))),
                "{bad:?}"
            );
        }
        let mut not_utf8 = good.clone();
        not_utf8[2] = 0xff;
        assert!(matches!(
            Hello::parse(&not_utf8),
            Err(FrameError::BadHello(_))
        ));
    }

    #[test]
    fn truncated_input_waits() {
        let k = key();
        let f = encode(FrameType::Message, 1, b"{\"x\":[1,2,3]}", Some(&k));
        let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
        for (i, b) in f.iter().enumerate() {
            assert_eq!(d.next_frame(1, Some(&k)), Ok(None), "after {i} bytes");
            d.push(&[*b]);
        }
        assert!(d.next_frame(1, Some(&k)).unwrap().is_some());
    }

    #[test]
    fn session_key_is_deterministic_and_bound_to_every_input() {
        let f = |k: SessionKey| encode(FrameType::Data, 1, b"x", Some(&k));
        let base = f(key());
        assert_eq!(base, f(key()));
        let variants = [
            SessionKey::derive(
                b"0123456789abcdef-cluster-kez",
                "lb1",
                &[1; 32],
                "lb2",
                &[2; 32],
            ),
            SessionKey::derive(CLUSTER_KEY, "lb3", &[1; 32], "lb2", &[2; 32]),
            SessionKey::derive(CLUSTER_KEY, "lb1", &[9; 32], "lb2", &[2; 32]),
            SessionKey::derive(CLUSTER_KEY, "lb1", &[1; 32], "lb3", &[2; 32]),
            SessionKey::derive(CLUSTER_KEY, "lb1", &[1; 32], "lb2", &[9; 32]),
            SessionKey::derive(CLUSTER_KEY, "lb2", &[2; 32], "lb1", &[1; 32]),
        ];
        for v in variants {
            assert_ne!(f(v), base);
        }
    }

    proptest! {
        /// One flipped bit anywhere is never accepted. Outside the magic and
        /// the length field the frame is complete and it is always `BadCrc`
        /// (header, payload, CRC) or `BadTag` (the tag itself).
        #[test]
        fn bit_flip_anywhere_is_rejected(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let k = key();
            let mut f = encode(FrameType::Message, 1, &payload, Some(&k));
            let i = pos.index(f.len());
            f[i] ^= 1 << bit;
            let r = decode_all(&f, 1, Some(&k));
            let tag_at = f.len() - TAG_LEN;
            if MAGIC_FIELD.contains(&i) {
                prop_assert_eq!(r, Err(FrameError::BadMagic));
            } else if LENGTH_FIELD.contains(&i) {
                // Longer: waits for bytes that never come (the idle timeout
                // ends it) or oversized; shorter: the CRC lands elsewhere.
                prop_assert!(matches!(r, Ok(None) | Err(FrameError::BadCrc) | Err(FrameError::Oversized { .. })), "{:?}", r);
            } else if i >= tag_at {
                prop_assert_eq!(r, Err(FrameError::BadTag));
            } else {
                prop_assert_eq!(r, Err(FrameError::BadCrc));
            }
        }

        /// Same flip with the CRC recomputed (an attacker, not line noise):
        /// the tag catches it.
        #[test]
        fn bit_flip_with_fixed_crc_is_bad_tag(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let k = key();
            let mut f = encode(FrameType::Message, 1, &payload, Some(&k));
            let crc_at = f.len() - TAG_LEN - CRC_LEN;
            let i = pos.index(crc_at);
            prop_assume!(!MAGIC_FIELD.contains(&i) && !LENGTH_FIELD.contains(&i) && i != 4);
            f[i] ^= 1 << bit;
            fix_crc(&mut f);
            prop_assert_eq!(decode_all(&f, 1, Some(&k)), Err(FrameError::BadTag));
        }

        /// Arbitrary bytes never panic and never yield a frame without a key
        /// match.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let k = key();
            let mut d = Decoder::new(128);
            d.push(&bytes);
            let _ = d.next_frame(1, Some(&k));
            let mut d = Decoder::new(128);
            d.push(&bytes);
            if let Ok(Some(f)) = d.next_frame(0, None) {
                prop_assert_eq!(f.kind, FrameType::Hello);
            }
            let _ = Hello::parse(&bytes);
        }

        #[test]
        fn round_trip(kind in 2u8..=5, seq in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let k = key();
            let kind = FrameType::from_u8(kind).unwrap();
            let f = encode(kind, seq, &payload, Some(&k));
            let got = decode_all(&f, seq, Some(&k)).unwrap().unwrap();
            prop_assert_eq!(got, Frame { kind, flags: 0, seq, payload });
        }
    }
}
