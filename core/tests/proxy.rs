//! Proxies: HTTP CONNECT, HTTPS, SOCKS5 and SOCKS5h, with and without authentication, for ws
//! and wss, against the test tree's proxy servers; IPv6 literals.

mod common;
use common::*;
use wsdom_core::{Event, Message, Options, ProxySetting, TlsOptions};
use wsdom_testserver::{ProxyKind, ProxyOptions, ProxyServer};

fn with_auth(url: &str, auth: Option<(&str, &str)>) -> String {
    match auth {
        None => url.to_string(),
        Some((u, p)) => url.replacen("://", &format!("://{u}:{p}@"), 1),
    }
}

/// Opens `target` through `proxy_url`, echoes one message, closes cleanly.
fn echo_through(target: &str, proxy_url: String, ca: Vec<String>) {
    let opts = Options {
        proxy: ProxySetting::Url(proxy_url.clone()),
        tls: TlsOptions {
            ca_pem: ca,
            default_roots: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let (ws, rx) = open_with(target, &[], opts);
    let open = next(&rx);
    assert!(
        matches!(open.event, Event::Open),
        "{target} via {proxy_url}: {open:?}"
    );
    ws.send_text("through the proxy").unwrap();
    match next(&rx).event {
        Event::Message(Message::Text(t)) => assert_eq!(t, "through the proxy"),
        other => panic!("{other:?}"),
    }
    ws.close(Some(1000), None).unwrap();
    let events = until_close(&rx);
    assert!(close_of(&events).was_clean);
}

#[test]
fn every_proxy_kind_with_and_without_auth_for_ws_and_wss() {
    let plain = server();
    let tls = TestServer::start(ServerOptions {
        tls: true,
        ipv6: false,
    })
    .unwrap();
    for kind in [
        ProxyKind::HttpConnect,
        ProxyKind::HttpsConnect,
        ProxyKind::Socks5,
    ] {
        for auth in [None, Some(("user", "p@ss:w0rd"))] {
            let proxy = ProxyServer::start(ProxyOptions {
                kind,
                auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
                ipv6: false,
            })
            .unwrap();
            let encoded = auth.map(|(u, _)| (u, "p%40ss%3Aw0rd"));
            let proxy_url = with_auth(&proxy.url(), encoded);
            let mut ca = vec![tls.ca_pem().unwrap()];
            ca.extend(proxy.ca_pem());
            echo_through(&plain.url("/echo"), proxy_url.clone(), ca.clone());
            echo_through(&tls.url("/echo"), proxy_url.clone(), ca.clone());
            if kind == ProxyKind::Socks5 {
                // socks5h: the proxy resolves "localhost" (address type 3).
                let h = proxy_url.replacen("socks5://", "socks5h://", 1);
                echo_through(&tls.url("/echo"), h, ca);
            }
            let log = proxy.log();
            assert!(log.iter().all(|r| r.accepted), "{log:?}");
            assert!(log.iter().all(|r| r.authenticated == auth.is_some()));
            if kind == ProxyKind::Socks5 {
                let atyps: Vec<_> = log.iter().map(|r| r.socks_atyp).collect();
                assert_eq!(
                    atyps,
                    [Some(1), Some(1), Some(3)],
                    "socks5 resolves locally"
                );
            } else {
                assert_eq!(log[1].target_host, "localhost", "CONNECT names the host");
            }
        }
    }
}

#[test]
fn proxy_failures_name_the_proxy_but_never_the_password() {
    let srv = server();
    for kind in [ProxyKind::HttpConnect, ProxyKind::Socks5] {
        let proxy = ProxyServer::start(ProxyOptions {
            kind,
            auth: Some(("user".into(), "right".into())),
            ipv6: false,
        })
        .unwrap();
        let url = with_auth(&proxy.url(), Some(("user", "Wr0ngSecret")));
        let opts = Options {
            proxy: ProxySetting::Url(url),
            ..Options::default()
        };
        let (_ws, rx) = open_with(&srv.url("/echo"), &[], opts);
        let events = until_close(&rx);
        assert_eq!(types(&events), ["error", "close"]);
        let Event::Error(msg) = &events[0].event else {
            unreachable!()
        };
        assert!(
            msg.contains(&format!("127.0.0.1:{}", proxy.port())),
            "{msg}"
        );
        assert!(!msg.contains("Wr0ngSecret"), "{msg}");
        assert!(msg.contains("407") || msg.contains("rejected"), "{msg}");
    }
    // A proxy that is not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = Options {
        proxy: ProxySetting::Url(format!("http://u:Secr3t@127.0.0.1:{port}")),
        ..Options::default()
    };
    let (_ws, rx) = open_with(&srv.url("/echo"), &[], opts);
    let events = until_close(&rx);
    let Event::Error(msg) = &events[0].event else {
        unreachable!()
    };
    assert!(
        msg.contains("cannot reach proxy http://127.0.0.1:") && !msg.contains("Secr3t"),
        "{msg}"
    );
}

#[test]
fn ipv6_literals_directly_and_through_a_socks_proxy() {
    let Ok(srv6) = TestServer::start(ServerOptions {
        tls: false,
        ipv6: true,
    }) else {
        eprintln!("::1 is not available here; skipping");
        return;
    };
    let url = srv6.url("/echo");
    assert!(url.starts_with("ws://[::1]:"));
    let (ws, rx) = open(&url, &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    until_close(&rx);
    let proxy = ProxyServer::start(ProxyOptions {
        kind: ProxyKind::Socks5,
        auth: None,
        ipv6: true,
    })
    .unwrap();
    echo_through(&url, proxy.url(), vec![]);
    assert_eq!(proxy.log()[0].socks_atyp, Some(4));
}

#[test]
fn an_invalid_proxy_url_is_a_syntax_error() {
    let opts = Options {
        proxy: ProxySetting::Url("gopher://x".into()),
        ..Options::default()
    };
    let e = wsdom_core::WebSocket::new("ws://127.0.0.1:1/", &[], opts).unwrap_err();
    assert_eq!(e.name(), "SyntaxError");
}
