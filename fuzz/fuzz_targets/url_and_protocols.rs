//! The constructor's input checks: URL parsing (with and without a base) and subprotocols.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsdom_fuzz_checks::url_and_protocols(data));
