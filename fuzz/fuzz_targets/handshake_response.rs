//! The opening handshake's response parser and checks, on bytes from a hostile server.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsdom_core::handshake::check_response;

fuzz_target!(|data: &[u8]| {
    let protocols = ["chat".to_string(), "v2".to_string()];
    for offered in [&protocols[..], &[]] {
        for ext in [&["permessage-deflate"][..], &[]] {
            if let Ok(Some(accepted)) = check_response(data, "dGhlIHNhbXBsZSBub25jZQ==", offered, ext) {
                assert!(accepted.head_len <= data.len());
                assert!(accepted.protocol.is_empty() || offered.contains(&accepted.protocol));
                let _ = wsdom_core::deflate::negotiate(&accepted.extensions);
            }
        }
    }
});
