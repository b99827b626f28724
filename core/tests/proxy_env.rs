//! Proxy environment variables (its own test binary: it changes the process environment).

mod common;
use common::*;
use wsdom_core::{Event, Options};
use wsdom_testserver::{ProxyKind, ProxyOptions, ProxyServer};

fn outcome(url: &str) -> Vec<&'static str> {
    let (ws, rx) = open_with(url, &[], Options::default());
    let first = next(&rx);
    if matches!(first.event, Event::Open) {
        ws.close(None, None).unwrap();
    }
    let mut events = vec![first];
    events.extend(until_close(&rx));
    types(&events)
}

#[test]
fn environment_proxies_and_no_proxy() {
    let srv = server();
    let proxy = ProxyServer::start(ProxyOptions::new(ProxyKind::HttpConnect)).unwrap();
    let url = srv.url("/echo").replace("127.0.0.1", "localhost");
    // SAFETY: this test binary runs this single test; nothing else reads the environment.
    unsafe {
        std::env::set_var("http_proxy", proxy.url());
        std::env::remove_var("no_proxy");
        std::env::remove_var("NO_PROXY");
    }
    // Loopback names connect directly, as in browsers: the proxy sees nothing.
    assert_eq!(outcome(&url), ["open", "close"]);
    assert!(proxy.log().is_empty());
    // A proxy that refuses everything proves the variable is read for other hosts.
    unsafe {
        std::env::set_var("http_proxy", "http://127.0.0.1:1");
    }
    let (_ws, rx) = open_with("ws://wsdom-test.invalid/", &[], Options::default());
    let events = until_close(&rx);
    let Event::Error(msg) = &events[0].event else {
        unreachable!()
    };
    assert!(
        msg.contains("cannot reach proxy http://127.0.0.1:1"),
        "{msg}"
    );
    unsafe {
        std::env::set_var("no_proxy", ".invalid");
    }
    let (_ws, rx) = open_with("ws://wsdom-test.invalid/", &[], Options::default());
    let events = until_close(&rx);
    let Event::Error(msg) = &events[0].event else {
        unreachable!()
    };
    assert!(!msg.contains("proxy"), "no_proxy bypasses: {msg}");
}
