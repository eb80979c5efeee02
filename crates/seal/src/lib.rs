//! ChaCha20-Poly1305 (RFC 8439) for baton's cluster channel, behind two
//! plain functions.
//!
//! Why a crate of its own: RustCrypto's ciphers are generic, so their code
//! is compiled in the crate that names the concrete types, at that crate's
//! optimisation level. In baton's debug builds (the test suite, whose
//! network tests run the debug binary) that is opt-level 0, where the
//! cipher runs at about 2 MB/s and one sync chunk holds a node's event loop
//! past the channel's idle timeout. Compiled here, with
//! `[profile.dev.package.baton-seal] opt-level = 3` in baton's manifest,
//! the debug build seals at close to release speed. No other logic lives
//! here: framing, nonces and keys are baton's (`src/wire/frame.rs`).

#![forbid(unsafe_code)]

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// A ChaCha20-Poly1305 key. Never printed.
#[derive(Clone)]
pub struct Key(ChaCha20Poly1305);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(bytes: &[u8; KEY_LEN]) -> Key {
        Key(ChaCha20Poly1305::new(&(*bytes).into()))
    }

    /// Encrypt `buf` in place; the tag over `aad` and the ciphertext.
    /// `None` only for a buffer beyond the cipher's limit (256 GiB).
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        let nonce = Nonce::from(*nonce);
        self.0
            .encrypt_inout_detached(&nonce, aad, buf.into())
            .ok()
            .map(Into::into)
    }

    /// Check `tag` (in constant time) and decrypt `buf` in place; false,
    /// with `buf` left as it was, if the tag does not match.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        let nonce = Nonce::from(*nonce);
        self.0
            .decrypt_inout_detached(&nonce, aad, buf.into(), &Tag::from(*tag))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 section 2.8.2: the AEAD test vector.
    #[test]
    fn rfc8439_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let nonce = [
            0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        ];
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut buf = plain.to_vec();
        let k = Key::new(&key);
        let tag = k.seal(&nonce, &aad, &mut buf).unwrap();
        assert_eq!(&buf[..8], &[0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb]);
        assert_eq!(
            tag,
            [
                0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a, 0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60,
                0x06, 0x91
            ]
        );
        let mut bad = tag;
        bad[0] ^= 1;
        let sealed = buf.clone();
        assert!(!k.open(&nonce, &aad, &mut buf, &bad));
        assert_eq!(buf, sealed, "untouched on failure");
        assert!(k.open(&nonce, &aad, &mut buf, &tag));
        assert_eq!(&buf[..], &plain[..]);
    }
}
