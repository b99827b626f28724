//! Item 1: the constructor validates input synchronously and never fires events itself.

mod common;
use common::*;
use std::time::Duration;
use wsdom_core::{ErrorKind, Event, Options, ReadyState, WebSocket};

fn err(url: &str, protocols: &[&str]) -> ErrorKind {
    WebSocket::new(url, protocols, Options::default())
        .unwrap_err()
        .kind()
}

#[test]
fn input_errors_are_syntax_errors() {
    assert_eq!(err("ws://foo bar/", &[]), ErrorKind::Syntax);
    assert_eq!(err("ftp://h/", &[]), ErrorKind::Syntax);
    assert_eq!(err("ws://h/#", &[]), ErrorKind::Syntax);
    assert_eq!(err("/relative", &[]), ErrorKind::Syntax);
    assert_eq!(err("ws://h/", &[""]), ErrorKind::Syntax);
    assert_eq!(err("ws://h/", &["a b"]), ErrorKind::Syntax);
    assert_eq!(err("ws://h/", &["echo", "ECHO"]), ErrorKind::Syntax);
    // A bad URL is reported before bad protocols.
    let e = WebSocket::new("ftp://h/", &["a b"], Options::default()).unwrap_err();
    assert!(e.message().contains("scheme"), "{e}");
    assert_eq!(e.name(), "SyntaxError");
}

#[test]
fn reserved_and_invalid_headers_are_rejected() {
    for (name, value) in [
        ("Sec-WebSocket-Key", "x"),
        ("host", "x"),
        ("Bad Name", "x"),
        ("X-Ok", "a\r\nInjected: 1"),
    ] {
        let opts = Options {
            headers: vec![(name.into(), value.into())],
            ..Options::default()
        };
        let e = WebSocket::new("ws://127.0.0.1:1/", &[], opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Syntax, "{name}");
    }
}

#[test]
fn relative_url_resolves_against_base_option() {
    let opts = Options {
        base_url: Some("http://127.0.0.1:1/dir/page".into()),
        ..Options::default()
    };
    let ws = WebSocket::new("sock?x=1", &[], opts).unwrap();
    assert_eq!(ws.url(), "ws://127.0.0.1:1/dir/sock?x=1");
    ws.close(None, None).unwrap();
}

#[test]
fn returns_at_once_in_connecting_and_fires_nothing_inside() {
    let srv = server();
    let (h, rx) = recorder();
    let opts = Options {
        handler: Some(h),
        ..Options::default()
    };
    // The handshake is delayed 300 ms: the constructor must not wait for it.
    let start = std::time::Instant::now();
    let ws = WebSocket::new(&srv.url("/delay-handshake?ms=300"), &[], opts).unwrap();
    assert!(start.elapsed() < Duration::from_millis(100));
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    assert_eq!(ws.buffered_amount(), 0);
    assert_eq!(ws.protocol(), "");
    assert_eq!(ws.extensions(), "");
    assert!(
        rx.try_recv().is_err(),
        "no event before the constructor returned"
    );
    let seen = next(&rx);
    assert!(matches!(seen.event, Event::Open));
    assert_eq!(seen.ready_state, ReadyState::Open);
    ws.close(None, None).unwrap();
    until_close(&rx);
}

#[test]
fn http_urls_connect_as_ws() {
    let srv = server();
    let url = srv.url("/echo").replace("ws://", "http://");
    let (ws, rx) = open(&url, &[]);
    assert!(ws.url().starts_with("ws://127.0.0.1:"));
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    let events = until_close(&rx);
    assert!(close_of(&events).was_clean);
}
