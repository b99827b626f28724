//! The incoming frame/message layer on bytes from a hostile server, fed in random-sized reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsdom_fuzz_checks::frames(data, false));
