//! Item 5: close() validation, the state switch and the closing handshake.

mod common;
use common::*;
use std::time::{Duration, Instant};
use wsdom_core::{ErrorKind, Event, Options, ReadyState};

#[test]
fn invalid_codes_and_long_reasons_throw_in_any_state() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/delay-handshake?ms=200"), &[]);
    for code in [0u16, 999, 1001, 1005, 1006, 2999, 5000, 65535] {
        let e = ws.close(Some(code), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidAccess, "{code}");
    }
    let e = ws.close(Some(1000), Some(&"x".repeat(124))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    // 4-byte characters: 31 * 4 = 124 bytes.
    let e = ws
        .close(Some(1000), Some(&"\u{1F50C}".repeat(31)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    // Code is checked before reason.
    let e = ws.close(Some(2999), Some(&"x".repeat(200))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidAccess);
    assert_eq!(ws.ready_state(), ReadyState::Connecting, "no side effect");
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(Some(1000), Some(&"x".repeat(123))).unwrap();
    let events = until_close(&rx);
    assert_eq!(close_of(&events).reason, "x".repeat(123));
    // Still checked when CLOSED.
    assert!(ws.close(Some(1), None).is_err());
}

#[test]
fn close_while_connecting_fails_asynchronously() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/delay-handshake?ms=300"), &[]);
    ws.close(None, None).unwrap();
    assert_eq!(
        ws.ready_state(),
        ReadyState::Closing,
        "synchronously CLOSING"
    );
    assert!(rx.try_recv().is_err(), "nothing fired inside close()");
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"]);
    assert_eq!(events[0].ready_state, ReadyState::Closed);
    let c = close_of(&events);
    assert_eq!((c.code, c.was_clean), (1006, false));
    ws.close(None, None).unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "one close only"
    );
}

#[test]
fn clean_close_reports_the_servers_reply() {
    let srv = server();
    for (code, reason, expect_code) in [
        (None, None, 1005),
        (Some(1000), Some("Clean Close"), 1000),
        (Some(3000), None, 3000),
        (Some(4999), Some("\u{e9}t\u{e9}"), 4999),
        (None, Some("only reason"), 1000),
    ] {
        let (ws, rx) = open(&srv.url("/echo"), &[]);
        assert!(matches!(next(&rx).event, Event::Open));
        ws.close(code, reason).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        let events = until_close(&rx);
        assert_eq!(types(&events), ["close"]);
        assert_eq!(events[0].ready_state, ReadyState::Closed);
        let c = close_of(&events);
        assert_eq!(c.code, expect_code);
        assert_eq!(c.reason, reason.unwrap_or(""));
        assert!(c.was_clean);
    }
    // What went on the wire: an empty body for close(), code+reason otherwise.
    let obs = srv.wait_finished(5, Duration::from_secs(5));
    let closes: Vec<Vec<u8>> = obs
        .iter()
        .map(|o| {
            o.frames
                .iter()
                .find(|f| f.opcode == 8)
                .unwrap()
                .payload
                .clone()
        })
        .collect();
    assert!(closes.contains(&vec![]));
    assert!(closes.contains(&b"\x03\xe8Clean Close".to_vec()));
    assert!(closes.contains(&b"\x03\xe8only reason".to_vec()));
}

#[test]
fn repeated_close_gives_one_close_event() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(Some(1000), None).unwrap();
    ws.close(Some(3001), None).unwrap();
    let events = until_close(&rx);
    assert_eq!(close_of(&events).code, 1000);
    ws.close(None, None).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn close_waits_for_a_delayed_reply() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo?delay_close_ms=500"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    let t = Instant::now();
    ws.close(Some(1000), None).unwrap();
    let events = until_close(&rx);
    assert!(t.elapsed() >= Duration::from_millis(450));
    assert!(close_of(&events).was_clean);
}

#[test]
fn close_timeout_drops_a_server_that_never_answers() {
    let srv = server();
    let opts = Options {
        close_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/no-close-reply"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    let t = Instant::now();
    ws.close(None, None).unwrap();
    let events = until_close(&rx);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(types(&events), ["error", "close"]);
    let c = close_of(&events);
    assert_eq!((c.code, c.was_clean), (1006, false));
}

#[test]
fn messages_after_close_are_not_delivered() {
    let srv = server();
    // The handler closes on the first message; 1999 more are already on their way.
    let (h, rx) = recorder_with(|ws, ev| {
        if matches!(ev, Event::Message(_)) {
            ws.close(None, None).unwrap();
        }
    });
    let opts = Options {
        handler: Some(h),
        ..Options::default()
    };
    let _ws =
        wsdom_core::WebSocket::new(&srv.url("/push?n=2000&size=10&type=text"), &[], opts).unwrap();
    let events = until_close(&rx);
    assert_eq!(
        types(&events),
        ["open", "message", "close"],
        "no message after close()"
    );
}

#[test]
fn go_away_sends_1001() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.go_away();
    let events = until_close(&rx);
    assert_eq!(close_of(&events).code, 1001);
}

/// How many of this process's descriptors are TCP sockets connected to `port` (the
/// in-process test server's own sockets have `port` as their local port, not remote).
fn client_sockets_to(port: u16) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f.get(2).and_then(|a| a.rsplit(':').next());
            if remote_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port) {
                inodes.insert(format!("socket:[{}]", f[9]));
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| inodes.contains(l.to_string_lossy().as_ref()))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_server_that_stops_reading_does_not_keep_the_connection_after_the_close_timeout() {
    let srv = server();
    let opts = Options {
        close_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    // /slow writes one byte every 10 s and reads nothing meanwhile: our sends back up.
    let (ws, rx) = open_with(&srv.url("/slow?interval_ms=10000"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    assert_eq!(client_sockets_to(srv.port()), 1);
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..64 {
        ws.send_binary(&chunk).unwrap();
    }
    assert!(ws.buffered_amount() > 0, "the kernel took everything");
    ws.close(None, None).unwrap();
    let events = until_close(&rx);
    let close = close_of(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    // The socket is released soon after the close event, not when the server next writes.
    let deadline = Instant::now() + Duration::from_secs(3);
    while client_sockets_to(srv.port()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        client_sockets_to(srv.port()),
        0,
        "the connection is still open"
    );
}
