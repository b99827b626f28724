//! Every socket's memory is released once it is closed and its handles are dropped
//! (its own test binary: the live-socket counter is process-wide).

mod common;
use common::*;
use std::time::{Duration, Instant};
use wsdom_core::{live_socket_count, Event};

#[test]
fn closed_and_dropped_sockets_are_freed() {
    let srv = server();
    let before = live_socket_count();
    for path in ["/echo", "/close?code=4000", "/drop", "/raw?status=404"] {
        let mut all = Vec::new();
        for _ in 0..50 {
            all.push(open(&srv.url(path), &[]));
        }
        for (ws, rx) in &all {
            let first = next(rx);
            if matches!(first.event, Event::Open) {
                ws.send_binary(&[1; 1000]).unwrap();
                ws.close(None, None).unwrap();
            }
            if !matches!(first.event, Event::Close(_)) {
                until_close(rx);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_socket_count() != before {
        assert!(
            Instant::now() < deadline,
            "{} sockets leaked",
            live_socket_count() - before
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
