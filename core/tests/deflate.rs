//! permessage-deflate (RFC 7692) against the scenario server's independent flate2 echo.

mod common;
use common::*;
use std::time::Duration;
use wsdom_core::{Event, Message, Options};

fn random_bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn json_text(n: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"a\",\"b\"]}},"
        ));
        i += 1;
    }
    s.truncate(n);
    s
}

#[test]
fn offers_like_chromium_and_exposes_the_servers_answer() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/deflate"), &[]);
    let open = next(&rx);
    assert!(matches!(open.event, Event::Open));
    assert_eq!(open.extensions, "permessage-deflate");
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    assert_eq!(
        obs[0].header("sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits")
    );
}

#[test]
fn byte_exact_round_trips_with_every_parameter_combination() {
    let srv = server();
    let combos = [
        "",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_no_context_takeover;client_no_context_takeover",
        "server_max_window_bits=10",
        "client_max_window_bits=9",
        "server_max_window_bits=12;client_max_window_bits=12;client_no_context_takeover",
        "client_max_window_bits=8",
    ];
    for (k, params) in combos.iter().enumerate() {
        let url = srv.url(&format!("/deflate?params={}", params.replace(';', "%3B")));
        let (ws, rx) = open(&url, &[]);
        let open = next(&rx);
        let expected_ext = if params.is_empty() {
            "permessage-deflate".to_string()
        } else {
            format!("permessage-deflate; {}", params.replace(';', "; "))
        };
        assert_eq!(open.extensions, expected_ext);
        let mut sent = Vec::new();
        for (i, size) in [0usize, 1, 100, 5000, 70_000, 300_000].iter().enumerate() {
            let seed = (k * 10 + i) as u32 + 7;
            let bin = random_bytes(*size, seed);
            ws.send_binary(&bin).unwrap();
            sent.push(Message::Binary(bin.into()));
            let text = json_text(*size);
            ws.send_text(&text).unwrap();
            sent.push(Message::Text(text));
        }
        for expected in &sent {
            match next(&rx).event {
                Event::Message(m) => assert!(m == *expected, "{params}: {m:?} != {expected:?}"),
                other => panic!("{params}: {other:?}"),
            }
        }
        assert_eq!(ws.buffered_amount(), 0);
        ws.close(Some(1000), None).unwrap();
        let events = until_close(&rx);
        assert!(close_of(&events).was_clean, "{params}");
    }
    let obs = srv.wait_finished(combos.len(), Duration::from_secs(5));
    // JSON text is compressed (RSV1); random bytes do not shrink and go plain; with an 8-bit
    // window, which zlib cannot make, nothing is compressed.
    for o in &obs {
        let big = |op: u8| -> Vec<_> {
            o.frames
                .iter()
                .filter(|f| f.opcode == op && f.payload.len() > 1000)
                .collect()
        };
        assert!(big(2).iter().all(|f| f.rsv == 0), "{}", o.path);
        let text = big(1);
        let compressed = text.iter().filter(|f| f.rsv == 4).count();
        if o.path.contains("client_max_window_bits=8") {
            assert_eq!(compressed, 0, "{}", o.path);
        } else {
            assert_eq!(compressed, text.len(), "{}", o.path);
        }
        // Control frames are never compressed.
        assert!(o
            .frames
            .iter()
            .filter(|f| f.opcode >= 8)
            .all(|f| f.rsv == 0));
    }
}

#[test]
fn compression_shrinks_json_on_the_wire() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/deflate"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    let text = json_text(100_000);
    ws.send_text(&text).unwrap();
    assert!(matches!(next(&rx).event, Event::Message(Message::Text(t)) if t == text));
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let wire = obs[0]
        .frames
        .iter()
        .find(|f| f.opcode == 1)
        .unwrap()
        .payload
        .len();
    assert!(
        wire * 5 < text.len(),
        "{wire} bytes on the wire for {}",
        text.len()
    );
}

#[test]
fn threshold_and_disabling() {
    let srv = server();
    let opts = Options {
        deflate_threshold: 1000,
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/deflate"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.send_text("small").unwrap();
    ws.send_text(&json_text(5000)).unwrap();
    next(&rx);
    next(&rx);
    ws.close(None, None).unwrap();
    until_close(&rx);
    let opts = Options {
        deflate: false,
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/deflate"), &[], opts);
    let open = next(&rx);
    assert_eq!(open.extensions, "");
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(2, Duration::from_secs(5));
    let rsv: Vec<u8> = obs[0]
        .frames
        .iter()
        .filter(|f| f.opcode == 1)
        .map(|f| f.rsv)
        .collect();
    assert_eq!(rsv, [0, 4], "small message plain, large compressed");
    assert_eq!(obs[1].header("sec-websocket-extensions"), None);
}

#[test]
fn invalid_negotiation_fails_the_connection() {
    let srv = server();
    for value in [
        "permessage-deflate; foo=1",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_no_context_takeover=x",
    ] {
        let url = srv.url(&format!(
            "/extension?value={}",
            value
                .replace(';', "%3B")
                .replace(' ', "%20")
                .replace(',', "%2C")
                .replace('=', "%3D")
        ));
        let (_ws, rx) = open(&url, &[]);
        let events = until_close(&rx);
        assert_eq!(types(&events), ["error", "close"], "{value}");
    }
}

#[test]
fn rsv1_without_deflate_still_fails() {
    let srv = server();
    let opts = Options {
        deflate: false,
        ..Options::default()
    };
    let frame = hex(&[0xc1, 0x01, b'x']);
    let (_ws, rx) = open_with(&srv.url(&format!("/send?frames={frame}")), &[], opts);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["open", "error", "close"]);
}

/// Compressed bytes of `text` on the wire with the given `deflate_level` (own server).
fn wire_bytes_at_level(text: &str, level: u32) -> usize {
    let srv = server();
    let opts = Options {
        deflate_level: level,
        ..Options::default()
    };
    let url = srv.url("/deflate");
    let (ws, rx) = open_with(&url, &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.send_text(text).unwrap();
    assert!(matches!(next(&rx).event, Event::Message(Message::Text(t)) if t == text));
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let frame = obs[0].frames.iter().find(|f| f.opcode == 1).unwrap();
    assert_eq!(frame.rsv, 4, "compressed at level {level}");
    frame.payload.len()
}

#[test]
fn deflate_level_trades_cpu_for_bytes_on_the_wire() {
    // Varied records (ids, names, scores), as real JSON is.
    let text: String = (0..2000u32)
        .map(|i| {
            format!(
                "{{\"id\":{},\"name\":\"user {}\",\"score\":{}}},",
                i * 7919 % 100_003,
                i % 97,
                i * 31 % 1000
            )
        })
        .collect();
    let fast = wire_bytes_at_level(&text, 1);
    let default = wire_bytes_at_level(&text, Options::default().deflate_level);
    assert_eq!(Options::default().deflate_level, 6);
    assert!(
        default * 5 < fast * 4,
        "level 6: {default} bytes, level 1: {fast} bytes"
    );
}
