//! Replays the committed fuzz seed corpora (fuzz/corpus/*) through the same checks as the
//! fuzz targets, for Miri: undefined behaviour, out-of-bounds and uninitialised reads in the
//! pure layers (URL and subprotocol checks, the handshake response parser, the frame decoder,
//! with and without permessage-deflate) on the inputs that reach their interesting paths.
//!
//! `cargo +nightly miri run --manifest-path tests/reliability/miri/Cargo.toml -- fuzz/corpus`
//! (with MIRIFLAGS=-Zmiri-disable-isolation, to read the files). Also runs natively.

use std::path::Path;
use wsdom_core::deflate::{negotiate, Inflater};
use wsdom_core::framing::{Assembler, Decoded, Limits};

fn url_and_protocols(data: &[u8]) {
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

fn handshake_response(data: &[u8]) {
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

fn frames(data: &[u8], deflate: bool) {
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
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let targets: [(&str, fn(&[u8])); 4] = [
        ("url_and_protocols", url_and_protocols),
        ("handshake_response", handshake_response),
        ("frames", |d| frames(d, false)),
        ("frames_deflate", |d| frames(d, true)),
    ];
    let mut total = 0;
    for (name, run) in targets {
        let dir = Path::new(&root).join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in &files {
            run(&std::fs::read(f).unwrap());
        }
        println!("{name}: {} inputs replayed", files.len());
        total += files.len();
    }
    println!("miri-replay: {total} corpus inputs, no undefined behaviour");
}
