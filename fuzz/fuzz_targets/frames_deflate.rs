//! The frame/message layer after permessage-deflate was negotiated: compressed messages,
//! bombs and garbage DEFLATE from a hostile server.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsdom_core::deflate::{negotiate, Inflater};
use wsdom_core::framing::{Assembler, Decoded, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let params = negotiate("permessage-deflate; server_no_context_takeover").unwrap().unwrap();
    let limits = Limits { max_frame_size: 1 << 16, max_message_size: 1 << 17 };
    let mut asm = Assembler::with_inflater(limits, Inflater::new(&params));
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
