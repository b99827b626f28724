//! Items 2 and 3: the opening handshake, its failures, and protocol/extensions at open.

mod common;
use common::*;
use wsdom_core::{Event, Options, ReadyState};

/// Every handshake failure: error (readyState 3) then close 1006, never open.
fn assert_fails(url: &str, protocols: &[&str], why: &str) {
    let (_ws, rx) = open(url, protocols);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"], "{why}: {events:#?}");
    assert_eq!(events[0].ready_state, ReadyState::Closed);
    let c = close_of(&events);
    assert_eq!(
        (c.code, c.was_clean, c.reason.as_str()),
        (1006, false, ""),
        "{why}"
    );
    match &events[0].event {
        Event::Error(msg) => assert!(!msg.is_empty()),
        _ => unreachable!(),
    }
}

#[test]
fn request_carries_the_required_headers() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &["chat", "superchat"]);
    let open = next(&rx);
    assert!(matches!(open.event, Event::Open));
    assert_eq!(open.protocol, "chat");
    ws.close(None, None).unwrap();
    until_close(&rx);
    let obs = srv.wait_finished(1, std::time::Duration::from_secs(5));
    let h = |n: &str| {
        obs[0]
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("upgrade").as_deref(), Some("websocket"));
    assert_eq!(h("connection").as_deref(), Some("Upgrade"));
    assert_eq!(h("sec-websocket-version").as_deref(), Some("13"));
    assert_eq!(
        h("sec-websocket-protocol").as_deref(),
        Some("chat, superchat")
    );
    assert_eq!(h("sec-websocket-key").map(|k| k.len()), Some(24));
    assert_eq!(h("host"), Some(format!("127.0.0.1:{}", srv.port())));
    assert_eq!(obs[0].path, "/echo");
}

#[test]
fn protocol_and_extensions_are_set_just_before_open_and_kept() {
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &["v2"]);
    assert_eq!(ws.protocol(), "");
    let open = next(&rx);
    assert_eq!(
        (open.ready_state, open.protocol.as_str()),
        (ReadyState::Open, "v2")
    );
    ws.close(Some(1000), None).unwrap();
    let events = until_close(&rx);
    assert_eq!(events.last().unwrap().protocol, "v2");
    assert_eq!(ws.protocol(), "v2");
    assert_eq!(ws.extensions(), "");
}

#[test]
fn non_101_and_redirects_fail() {
    let srv = server();
    assert_fails(&srv.url("/raw?status=404"), &[], "404");
    assert_fails(&srv.url("/raw?status=200"), &[], "200");
    assert_fails(&srv.url("/raw?redirect=ws://127.0.0.1:1/"), &[], "302");
    assert_fails(&srv.url("/nothing-here"), &[], "unknown path");
    let garbage = hex(b"FOO BAR BAZ\r\n\r\n");
    assert_fails(
        &srv.url(&format!("/raw?response={garbage}")),
        &[],
        "garbage",
    );
}

#[test]
fn bad_accept_upgrade_or_connection_fails() {
    let srv = server();
    assert_fails(&srv.url("/raw?accept=bad"), &[], "accept");
    let no_upgrade = hex(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n");
    assert_fails(
        &srv.url(&format!("/raw?response={no_upgrade}")),
        &[],
        "upgrade",
    );
}

#[test]
fn subprotocol_mismatches_fail() {
    let srv = server();
    assert_fails(
        &srv.url("/protocol?select=foobar"),
        &[],
        "none offered, one selected",
    );
    assert_fails(
        &srv.url("/protocol?select=foobar"),
        &["FOOBAR"],
        "case-sensitive",
    );
    assert_fails(
        &srv.url("/protocol?none=1"),
        &["chat"],
        "offered, none selected",
    );
}

#[test]
fn unoffered_extension_fails() {
    let srv = server();
    assert_fails(&srv.url("/extension?value=x-unknown"), &[], "extension");
}

#[test]
fn network_failures_fail_asynchronously() {
    // A port nobody listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_fails(&format!("ws://127.0.0.1:{port}/"), &[], "refused");
}

#[test]
fn connect_timeout_fails_a_handshake_that_never_ends() {
    let srv = server();
    let opts = wsdom_core::Options {
        connect_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let (_ws, rx) = open_with(&srv.url("/never-handshake"), &[], opts);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"]);
    assert_eq!(close_of(&events).code, 1006);
}

#[test]
fn frames_in_the_same_segment_as_the_101_are_processed() {
    let srv = server();
    // 101 immediately followed by Close(1001, "PASS") in one write.
    let (ws, rx) = open(&srv.url("/close?code=1001&reason=PASS"), &[]);
    let events = until_close(&rx);
    drop(ws);
    assert_eq!(types(&events), ["open", "close"]);
    let c = close_of(&events);
    assert_eq!(
        (c.code, c.reason.as_str(), c.was_clean),
        (1001, "PASS", true)
    );
}

#[test]
fn one_handshake_at_a_time_per_host_and_port() {
    let srv = server();
    let start = std::time::Instant::now();
    let (a, rxa) = open(&srv.url("/delay-handshake?ms=400"), &[]);
    let (b, rxb) = open(&srv.url("/delay-handshake?ms=400"), &[]);
    assert!(matches!(next(&rxa).event, Event::Open));
    let first = start.elapsed();
    assert!(matches!(next(&rxb).event, Event::Open));
    let second = start.elapsed();
    assert!(first.as_millis() >= 380, "{first:?}");
    assert!(
        second.as_millis() >= 780,
        "the second waited for the first: {second:?}"
    );
    a.close(None, None).unwrap();
    b.close(None, None).unwrap();
    until_close(&rxa);
    until_close(&rxb);
}

#[test]
fn connect_timeout_does_not_count_the_wait_for_other_handshakes() {
    // Three sockets to one host: their 400 ms handshakes run one after the other, so the
    // third opens ~1.2 s after it was created, beyond its 1 s connect timeout; its own
    // handshake took 400 ms, within it.
    let srv = server();
    let opts = || Options {
        connect_timeout: std::time::Duration::from_millis(1000),
        ..Options::default()
    };
    let url = srv.url("/delay-handshake?ms=400");
    let sockets: Vec<_> = (0..3).map(|_| open_with(&url, &[], opts())).collect();
    for (ws, rx) in &sockets {
        let ev = next(rx).event;
        assert!(matches!(ev, Event::Open), "{ev:?}");
        ws.close(None, None).unwrap();
    }
    for (_, rx) in &sockets {
        until_close(rx);
    }
}
