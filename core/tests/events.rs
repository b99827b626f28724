//! Item 6: server closes, protocol violations, drops, pings.

mod common;
use common::*;
use std::time::Duration;
use wsdom_core::{Event, Message, ReadyState};

fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut v = vec![first, payload.len() as u8];
    v.extend_from_slice(payload);
    v
}

#[test]
fn server_close_with_code_and_reason() {
    let srv = server();
    let (_ws, rx) = open(&srv.url("/close?code=4001&reason=bye%20now"), &[]);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["open", "close"]);
    let c = close_of(&events);
    assert_eq!(
        (c.code, c.reason.as_str(), c.was_clean),
        (4001, "bye now", true)
    );
    // We answered with a Close echoing the code.
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let close = obs[0].frames.iter().find(|f| f.opcode == 8).expect("reply");
    assert_eq!(close.close_code(), Some(4001));
}

#[test]
fn server_close_without_body_is_1005() {
    let srv = server();
    let (_ws, rx) = open(&srv.url("/close?empty=1"), &[]);
    let events = until_close(&rx);
    let c = close_of(&events);
    assert_eq!((c.code, c.reason.as_str(), c.was_clean), (1005, "", true));
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let close = obs[0].frames.iter().find(|f| f.opcode == 8).expect("reply");
    assert!(close.payload.is_empty());
}

#[test]
fn abrupt_drop_after_open_is_error_then_1006() {
    let srv = server();
    for path in ["/drop", "/drop?rst=1", "/rst-after-open"] {
        let (_ws, rx) = open(&srv.url(path), &[]);
        let events = until_close(&rx);
        assert_eq!(types(&events), ["open", "error", "close"], "{path}");
        assert_eq!(events[1].ready_state, ReadyState::Closed);
        let c = close_of(&events);
        assert_eq!((c.code, c.was_clean), (1006, false), "{path}");
    }
}

/// Good message, then the violation: message, error, close 1006, and our Close carries `code`.
fn assert_violation(bytes: &[u8], code: u16, why: &str) {
    let srv = server();
    let mut all = frame(0x81, b"test");
    all.extend_from_slice(bytes);
    let (_ws, rx) = open(&srv.url(&format!("/send?frames={}", hex(&all))), &[]);
    let events = until_close(&rx);
    assert_eq!(
        types(&events),
        ["open", "message", "error", "close"],
        "{why}"
    );
    assert!(matches!(&events[1].event, Event::Message(Message::Text(t)) if t == "test"));
    let c = close_of(&events);
    assert_eq!((c.code, c.was_clean), (1006, false), "{why}");
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let sent = obs[0]
        .frames
        .iter()
        .find(|f| f.opcode == 8)
        .map(|f| f.close_code());
    assert_eq!(sent, Some(Some(code)), "{why}: our Close frame");
}

#[test]
fn protocol_violations_fail_the_connection() {
    assert_violation(&[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1], 1002, "masked frame");
    assert_violation(&frame(0xc1, b"x"), 1002, "RSV1");
    assert_violation(&frame(0xa1, b"x"), 1002, "RSV2");
    assert_violation(&frame(0x91, b"x"), 1002, "RSV3");
    assert_violation(&frame(0x83, b"LOL"), 1002, "reserved data opcode");
    assert_violation(&frame(0x8b, b""), 1002, "reserved control opcode");
    let mut big_ping = vec![0x89, 126, 0, 126];
    big_ping.extend_from_slice(&[0; 126]);
    assert_violation(&big_ping, 1002, "126-byte control frame");
    assert_violation(&frame(0x09, b""), 1002, "fragmented ping");
    assert_violation(&frame(0x80, b"x"), 1002, "continuation without start");
    let mut interleaved = frame(0x01, b"a");
    interleaved.extend(frame(0x81, b"b"));
    assert_violation(&interleaved, 1002, "new message inside a fragmented one");
    assert_violation(
        &frame(0x81, b"\xce\xba\xe1\xbd\xb9\xff"),
        1007,
        "invalid UTF-8",
    );
    let mut split = frame(0x01, b"\xce");
    split.extend(frame(0x80, b"A"));
    assert_violation(&split, 1007, "invalid UTF-8 across fragments");
    assert_violation(&frame(0x88, b"\x03"), 1002, "1-byte close body");
    for code in [999u16, 1005, 1006, 1015, 5000] {
        assert_violation(
            &frame(0x88, &code.to_be_bytes()),
            1002,
            &format!("close code {code}"),
        );
    }
    assert_violation(
        &frame(0x88, b"\x03\xe8\xff"),
        1007,
        "invalid UTF-8 close reason",
    );
}

#[test]
fn fragmented_and_split_utf8_messages_are_reassembled() {
    let srv = server();
    let text = "h\u{e9}llo \u{1F600}".as_bytes();
    let mut bytes = frame(0x01, &text[..2]);
    bytes.extend(frame(0x89, b"ping")); // control frame inside a fragmented message
    bytes.extend(frame(0x00, &text[2..8]));
    bytes.extend(frame(0x80, &text[8..]));
    bytes.extend(frame(0x02, &[1, 2]));
    bytes.extend(frame(0x80, &[3]));
    let (ws, rx) = open(&srv.url(&format!("/send?frames={}", hex(&bytes))), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    match next(&rx).event {
        Event::Message(Message::Text(t)) => assert_eq!(t.as_bytes(), text),
        other => panic!("{other:?}"),
    }
    match next(&rx).event {
        Event::Message(Message::Binary(b)) => assert_eq!(b[..], [1, 2, 3]),
        other => panic!("{other:?}"),
    }
    ws.close(None, None).unwrap();
    until_close(&rx);
    // The ping was answered with a pong carrying its payload, and never surfaced.
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let pong = obs[0].frames.iter().find(|f| f.opcode == 10).expect("pong");
    assert_eq!(pong.payload, b"ping");
}

#[test]
fn slow_loris_bytes_are_reassembled() {
    let srv = server();
    let (_ws, rx) = open(&srv.url("/slow?chunk=1&interval_ms=5&then=hello"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    match next(&rx).event {
        Event::Message(Message::Text(t)) => assert_eq!(t, "hello"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_before_a_drop_are_all_delivered_in_order() {
    let srv = server();
    let (_ws, rx) = open(&srv.url("/push?n=1000&size=100&type=binary"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    for _ in 0..1000 {
        match next(&rx).event {
            Event::Message(Message::Binary(b)) => assert_eq!(b.len(), 100),
            other => panic!("{other:?}"),
        }
    }
    match next(&rx).event {
        Event::Message(Message::Text(t)) => assert_eq!(t, "done"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keepalive_pings_and_detects_a_silent_peer() {
    let srv = server();
    // /no-close-reply echoes and answers pings: the keepalive keeps it open.
    let opts = wsdom_core::Options {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (ws, rx) = open_with(&srv.url("/echo"), &[], opts.clone());
    assert!(matches!(next(&rx).event, Event::Open));
    assert!(
        rx.recv_timeout(Duration::from_millis(600)).is_err(),
        "alive: no event"
    );
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let pings = obs[0].frames.iter().filter(|f| f.opcode == 9).count();
    assert!(pings >= 3, "{pings} pings");
    // A server that goes silent after the handshake (a half-open connection): detected.
    let (port, server) = stalled_server();
    let start = std::time::Instant::now();
    let (_ws, rx) = open_with(&format!("ws://127.0.0.1:{port}/"), &[], opts);
    let events = until_close(&rx);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(types(&events), ["open", "error", "close"]);
    match &events[1].event {
        Event::Error(msg) => assert!(msg.contains("keepalive"), "{msg}"),
        _ => unreachable!(),
    }
    server.join().unwrap();
}
