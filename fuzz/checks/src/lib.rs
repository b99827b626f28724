//! The checks of the fuzz targets for wsdom-core's pure layers, in one place: the fuzz
//! targets (`fuzz/fuzz_targets/`) run them under libFuzzer, and the Miri replay
//! (`tests/reliability/miri`) runs them on the committed corpora.

use bytes::BytesMut;
use wsdom_core::deflate::{negotiate, Inflater};
use wsdom_core::framing::{Assembler, Decoded, Limits};

/// The constructor's input checks: URL parsing (with and without a base, split by U+0001)
/// and subprotocols. Whatever parses must be a ws/wss URL without a fragment.
pub fn url_and_protocols(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\u{1}');
    let url = parts.next().unwrap_or("");
    let base = parts.next();
    if let Ok(u) = wsdom_core::parse_websocket_url(url, base) {
        assert!(matches!(u.scheme(), "ws" | "wss"));
        assert!(u.fragment().is_none());
        let _ = wsdom_core::origin_of(&u);
    }
    let protocols: Vec<String> = parts.map(str::to_owned).collect();
    if wsdom_core::subprotocol::validate_protocols(&protocols).is_ok() {
        assert!(protocols
            .iter()
            .all(|p| wsdom_core::subprotocol::is_token(p)));
    }
}

/// The opening handshake's response parser and checks, on bytes from a hostile server.
pub fn handshake_response(data: &[u8]) {
    let protocols = ["chat".to_string(), "v2".to_string()];
    for offered in [&protocols[..], &[]] {
        for ext in [&["permessage-deflate"][..], &[]] {
            if let Ok(Some(accepted)) = wsdom_core::handshake::check_response(
                data,
                "dGhlIHNhbXBsZSBub25jZQ==",
                offered,
                ext,
            ) {
                assert!(accepted.head_len <= data.len());
                assert!(accepted.protocol.is_empty() || offered.contains(&accepted.protocol));
                let _ = negotiate(&accepted.extensions);
            }
        }
    }
}

/// The incoming frame/message layer on bytes from a hostile server, fed in reads of the size
/// the first byte gives; with `deflate`, after permessage-deflate was negotiated (compressed
/// messages, bombs, garbage DEFLATE). Only the close codes 1002, 1007 and 1009 may result.
pub fn frames(data: &[u8], deflate: bool) {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_frame_size: 1 << 16,
        max_message_size: 1 << 17,
    };
    let mut asm = if deflate {
        let params = negotiate("permessage-deflate; server_no_context_takeover")
            .unwrap()
            .unwrap();
        Assembler::with_inflater(limits, Inflater::new(&params))
    } else {
        Assembler::new(limits)
    };
    let mut buf = BytesMut::new();
    for chunk in bytes.chunks(split as usize + 1) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match asm.decode(&mut buf) {
                Err(e) => {
                    assert!(matches!(e.close_code, 1002 | 1007 | 1009));
                    return;
                }
                Ok(Decoded::NeedMore(_)) => {
                    assert_eq!(buf.len(), before, "an incomplete frame is left in place");
                    break;
                }
                Ok(Decoded::Frame(_)) => assert!(buf.len() < before, "a frame consumes bytes"),
            }
        }
    }
}
