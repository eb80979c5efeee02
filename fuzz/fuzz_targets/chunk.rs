//! Sync chunks (the Data frame payload of data sync): `Chunk::parse` on any
//! bytes; what parses emits back to the very same bytes.
#![no_main]

use baton::cluster::sync::Chunk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(chunk) = Chunk::parse(data) else {
        return;
    };
    assert!(chunk.name.len() <= 255);
    let bytes = chunk.emit().expect("a parsed name fits");
    assert_eq!(bytes, data);
    assert_eq!(Chunk::parse(&bytes), Some(chunk));
});
