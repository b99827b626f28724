//! The incoming frame/message layer on bytes from a hostile server, fed in random-sized reads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsdom_core::framing::{Assembler, Decoded, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let mut asm = Assembler::new(Limits { max_frame_size: 1 << 16, max_message_size: 1 << 17 });
    let mut buf = Vec::new();
    for chunk in bytes.chunks(split as usize + 1) {
        buf.extend_from_slice(chunk);
        loop {
            match asm.decode(&buf) {
                Err(e) => {
                    assert!(matches!(e.close_code, 1002 | 1007 | 1009));
                    return;
                }
                Ok(Decoded::NeedMore(_)) => break,
                Ok(Decoded::Frame { consumed, .. }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                }
            }
        }
    }
});
