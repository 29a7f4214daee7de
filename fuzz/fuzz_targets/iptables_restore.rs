//! `iptables-restore` on arbitrary text (`netfilter::iptables_restore`).
//!
//! Never panics; and what it accepted, `iptables-save` prints in a form
//! that restores to the same tables (save → restore → save is stable).

#![no_main]

use libfuzzer_sys::fuzz_target;
use netfilter::{IpTables, iptables_restore, iptables_save};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tables = IpTables::new();
    if iptables_restore(&tables, text, true).is_err() {
        return;
    }
    let saved = iptables_save(&tables, true);
    let again = IpTables::new();
    if let Err(e) = iptables_restore(&again, &saved, true) {
        panic!("iptables-save printed what iptables-restore refuses ({e:?}):\n{saved}");
    }
    assert_eq!(iptables_save(&again, true), saved, "save → restore → save changed");
});
