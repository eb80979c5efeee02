//! The baton.toml reader on any text. A config it accepts converts back to
//! TOML (`baton convert`) that reads to an equal config; the format
//! detection never panics and calls a text with a [global] table TOML.
#![no_main]

use std::path::Path;

use baton::config::convert::to_toml;
use baton::config::toml::parse_toml_with;
use baton::config::{detect_format, Defaults, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let format = detect_format(text);
    let defaults = Defaults::default();
    let Ok(loaded) = parse_toml_with(text, Path::new("baton.toml"), &defaults) else {
        return;
    };
    let toml = to_toml(&loaded.config);
    assert_eq!(detect_format(&toml), Format::Toml);
    let _ = format;
    match parse_toml_with(&toml, Path::new("converted.toml"), &defaults) {
        Ok(back) => assert_eq!(back.config, loaded.config, "converted:\n{toml}"),
        Err(e) => panic!("the conversion does not read back: {e}\n{toml}"),
    }
});
