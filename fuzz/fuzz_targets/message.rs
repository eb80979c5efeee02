//! Cluster messages (the JSON in an authenticated Message frame):
//! `Message::from_json` and `unknown_kind` on any bytes; a decoded message
//! encodes and decodes to itself, and is never taken for an unknown kind.
#![no_main]

use baton::cluster::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let unknown = Message::unknown_kind(data);
    if let Some(kind) = &unknown {
        assert!(kind.chars().count() <= 64);
        assert!(!Message::KINDS.contains(&kind.as_str()));
    }
    let Ok(msg) = Message::from_json(data) else {
        return;
    };
    assert!(unknown.is_none());
    assert!(Message::KINDS.contains(&msg.kind()));
    let json = msg.to_json();
    assert_eq!(Message::from_json(&json).expect("own JSON"), msg);
});
