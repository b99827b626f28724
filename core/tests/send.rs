//! Item 4: send() and bufferedAmount.

mod common;
use common::*;
use std::time::Duration;
use wsdom_core::{ErrorKind, Event, Message, ReadyState};

#[test]
fn send_while_connecting_is_invalid_state() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/delay-handshake?ms=200"), &[]);
    let e = ws.send_text("x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidState);
    assert_eq!(e.kind().name(), "InvalidStateError");
    assert_eq!(ws.buffered_amount(), 0);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    until_close(&rx);
}

#[test]
fn buffered_amount_grows_by_utf8_length_then_drains() {
    let srv = server();
    // Inside the open handler, bufferedAmount is exact and does not fall, even though the
    // bytes may already be on the wire (a browser updates it between tasks).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let (h, rx) = recorder_with(move |ws, ev| {
        if let Event::Open = ev {
            let mut v = seen2.lock().unwrap();
            v.push(ws.buffered_amount());
            for (i, s) in ["x", "\u{e5}", "\u{5336}", "\u{1047e}"].iter().enumerate() {
                ws.send_text(s).unwrap();
                v.push(ws.buffered_amount());
                assert!(i < 4);
            }
            ws.send_binary(&[0; 10]).unwrap();
            ws.send_text("").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            v.push(ws.buffered_amount());
        }
    });
    let opts = wsdom_core::Options {
        handler: Some(h),
        ..Default::default()
    };
    let ws = wsdom_core::WebSocket::new(&srv.url("/echo"), &[], opts).unwrap();
    assert!(matches!(next(&rx).event, Event::Open));
    assert_eq!(*seen.lock().unwrap(), [0, 1, 3, 6, 10, 20]);
    let mut got = Vec::new();
    for _ in 0..6 {
        if let Event::Message(m) = next(&rx).event {
            got.push(m);
        }
    }
    assert_eq!(
        got,
        vec![
            Message::Text("x".into()),
            Message::Text("\u{e5}".into()),
            Message::Text("\u{5336}".into()),
            Message::Text("\u{1047e}".into()),
            Message::Binary(vec![0; 10].into()),
            Message::Text(String::new()),
        ]
    );
    // Outside handlers it falls as soon as the bytes are written.
    assert_eq!(ws.buffered_amount(), 0);
    ws.close(None, None).unwrap();
    until_close(&rx);
}

#[test]
fn backed_up_sends_stay_buffered_then_the_limit_fails_the_connection() {
    let (port, server) = stalled_server();
    let opts = wsdom_core::Options {
        max_buffered_amount: 8 << 20,
        ..Default::default()
    };
    let (ws, rx) = open_with(&format!("ws://127.0.0.1:{port}/"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..6 {
        ws.send_binary(&chunk).unwrap();
    }
    // The kernel takes a few MB at most; the rest stays counted.
    std::thread::sleep(Duration::from_millis(200));
    let buffered = ws.buffered_amount();
    assert!(buffered > 0 && buffered <= 6 << 20, "{buffered}");
    assert_eq!(ws.ready_state(), ReadyState::Open);
    for _ in 0..8 {
        ws.send_binary(&chunk).unwrap();
    }
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"]);
    match &events[0].event {
        Event::Error(msg) => assert!(msg.contains("send buffer is full"), "{msg}"),
        _ => unreachable!(),
    }
    assert_eq!(close_of(&events).code, 1006);
    server.join().unwrap();
}

#[test]
fn send_after_close_is_discarded_but_counted() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    let before = ws.buffered_amount();
    ws.send_text("abc").unwrap();
    assert_eq!(ws.buffered_amount(), before + 3);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["close"]);
    ws.send_binary(&[0; 7]).unwrap();
    assert_eq!(ws.buffered_amount(), before + 10, "never reset after close");
    // The server saw no data frame after our Close.
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    let ops: Vec<u8> = obs[0].frames.iter().map(|f| f.opcode).collect();
    assert_eq!(ops, [8]);
}

#[test]
fn received_messages_kept_while_more_arrive_stay_intact() {
    // Large payloads are views of the read buffer: the ones kept must not be overwritten by
    // the reads of the messages after them, whatever sizes the reads and messages have.
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    let sizes = [
        100_000usize,
        4096,
        70_000,
        64,
        300_000,
        5000,
        16_384,
        1,
        200_000,
    ];
    let payload =
        |i: usize, len: usize| -> Vec<u8> { (0..len).map(|j| (j * 31 + i * 17) as u8).collect() };
    for round in 0..3 {
        for (i, &len) in sizes.iter().enumerate() {
            ws.send_binary(&payload(round * 100 + i, len)).unwrap();
        }
    }
    let mut kept = Vec::new();
    for _ in 0..3 * sizes.len() {
        match next(&rx).event {
            Event::Message(Message::Binary(b)) => kept.push(b),
            other => panic!("{other:?}"),
        }
    }
    for (k, b) in kept.iter().enumerate() {
        let (round, i) = (k / sizes.len(), k % sizes.len());
        assert!(
            b[..] == payload(round * 100 + i, sizes[i])[..],
            "message {k}"
        );
    }
    ws.close(None, None).unwrap();
    until_close(&rx);
}

#[test]
fn large_messages_round_trip_byte_exact() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for len in [0usize, 125, 126, 65535, 65536, 100_000, 1_000_000] {
        ws.send_binary(&big[..len]).unwrap();
    }
    let text = "\u{1F600}é".repeat(30_000);
    ws.send_text(&text).unwrap();
    for len in [0usize, 125, 126, 65535, 65536, 100_000, 1_000_000] {
        match next(&rx).event {
            Event::Message(Message::Binary(b)) => assert_eq!(b, &big[..len]),
            other => panic!("{other:?}"),
        }
    }
    match next(&rx).event {
        Event::Message(Message::Text(t)) => assert_eq!(t, text),
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.buffered_amount(), 0);
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, Duration::from_secs(5));
    assert!(
        obs[0].frames.iter().all(|f| f.masked),
        "client frames are masked"
    );
}

#[test]
fn sends_from_many_threads_arrive_whole_and_in_per_thread_order() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    std::thread::scope(|s| {
        for t in 0..4 {
            let ws = ws.clone();
            s.spawn(move || {
                for i in 0..200 {
                    ws.send_text(&format!("{t}:{i}")).unwrap();
                }
            });
        }
    });
    let mut last = [-1i32; 4];
    for _ in 0..800 {
        match next(&rx).event {
            Event::Message(Message::Text(s)) => {
                let (t, i) = s.split_once(':').unwrap();
                let (t, i): (usize, i32) = (t.parse().unwrap(), i.parse().unwrap());
                assert_eq!(i, last[t] + 1, "per-thread order");
                last[t] = i;
            }
            other => panic!("{other:?}"),
        }
    }
    ws.close(None, None).unwrap();
    until_close(&rx);
}
