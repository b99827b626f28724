//! The opening handshake's response parser and checks, on bytes from a hostile server.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsdom_fuzz_checks::handshake_response(data));
