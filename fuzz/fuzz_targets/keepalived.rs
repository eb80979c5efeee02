//! The keepalived.conf reader: any text, with includes read from memory
//! (the text after the first NUL byte is /etc/keepalived/inc.conf). A
//! config it accepts converts to baton.toml (`baton convert`), which reads
//! back to an equal config.
#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton::config::convert::to_toml;
use baton::config::keepalived::{parse_keepalived_in, MemFiles};
use baton::config::toml::parse_toml_with;
use baton::config::{Defaults, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (main, inc) = text.split_once('\0').unwrap_or((text, ""));
    let file = Path::new("/etc/keepalived/keepalived.conf");
    let files = MemFiles(BTreeMap::from([
        (file.to_path_buf(), main.to_string()),
        (PathBuf::from("/etc/keepalived/inc.conf"), inc.to_string()),
    ]));
    let options = Options {
        defaults: Defaults::default(),
        config_id: Some("lb1".to_string()),
        strict: false,
        // Vary it too: the first byte of the text picks.
        all_config: main.starts_with('!'),
    };
    let Ok(loaded) = parse_keepalived_in(main, file, &options, &files) else {
        return;
    };
    let toml = to_toml(&loaded.config);
    match parse_toml_with(&toml, Path::new("converted.toml"), &options.defaults) {
        Ok(back) => assert_eq!(back.config, loaded.config, "converted:\n{toml}"),
        Err(e) => panic!("the conversion does not read back: {e}\n{toml}"),
    }
});
