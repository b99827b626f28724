//! The frame/message layer after permessage-deflate was negotiated: compressed messages,
//! bombs and garbage DEFLATE from a hostile server.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsdom_fuzz_checks::frames(data, true));
