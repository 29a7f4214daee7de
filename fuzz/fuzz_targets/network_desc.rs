//! The scenario TOML loader on arbitrary text: `netstack::NetworkDesc::parse`,
//! then `netstack::build_network` on what parsed (names, addresses, links
//! and routes checked against each other, the hosts built).
//!
//! Never panics; a parse error names a line of the text (counting the
//! empty line after a final newline, where an unterminated value ends).

#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack::{NetstackError, NetworkDesc, build_network};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match NetworkDesc::parse(text) {
        Ok(desc) => {
            let _ = build_network(text, desc);
        }
        Err(NetstackError::Parse { line, .. }) => {
            let lines = text.split('\n').count();
            assert!(line >= 1 && line <= lines, "line {line} outside the text");
        }
        Err(e) => panic!("parse failed with a non-parse error: {e}"),
    }
});
