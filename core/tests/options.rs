//! Item 7: request headers, URL credentials and TLS options.

mod common;
use common::*;
use wsdom_core::{Event, Message, Options, TlsOptions};

fn headers_seen(url: &str, opts: Options) -> String {
    let (ws, rx) = open_with(url, &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    let json = match next(&rx).event {
        Event::Message(Message::Text(t)) => t,
        other => panic!("{other:?}"),
    };
    ws.close(None, None).unwrap();
    until_close(&rx);
    json
}

#[test]
fn extra_headers_are_sent() {
    let srv = server();
    let opts = Options {
        headers: vec![
            ("Authorization".into(), "Bearer t0k3n".into()),
            ("Cookie".into(), "a=1; b=2".into()),
            ("Origin".into(), "https://app.example".into()),
            ("User-Agent".into(), "my-agent/2".into()),
        ],
        ..Options::default()
    };
    let json = headers_seen(&srv.url("/headers"), opts);
    assert!(json.contains(r#""authorization":"Bearer t0k3n""#), "{json}");
    assert!(json.contains(r#""cookie":"a=1; b=2""#), "{json}");
    assert!(json.contains(r#""origin":"https://app.example""#), "{json}");
    assert!(json.contains(r#""user-agent":"my-agent/2""#), "{json}");
}

#[test]
fn url_credentials_become_basic_auth_and_default_user_agent() {
    let srv = server();
    let url = srv.url("/headers").replace("ws://", "ws://foo:bar@");
    let json = headers_seen(&url, Options::default());
    assert!(
        json.contains(r#""authorization":"Basic Zm9vOmJhcg==""#),
        "{json}"
    );
    assert!(json.contains(r#""user-agent":"wsdom/"#), "{json}");
}

fn tls_server() -> TestServer {
    TestServer::start(ServerOptions {
        tls: true,
        ipv6: false,
    })
    .unwrap()
}

#[test]
fn wss_with_the_test_ca_works_and_round_trips() {
    let srv = tls_server();
    let opts = Options {
        tls: TlsOptions {
            ca_pem: vec![srv.ca_pem().unwrap()],
            default_roots: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/echo"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    let big = vec![3u8; 300_000];
    ws.send_binary(&big).unwrap();
    ws.send_text("hi").unwrap();
    assert!(matches!(next(&rx).event, Event::Message(Message::Binary(b)) if b == big));
    assert!(matches!(next(&rx).event, Event::Message(Message::Text(t)) if t == "hi"));
    assert_eq!(ws.buffered_amount(), 0);
    ws.close(Some(1000), None).unwrap();
    let events = until_close(&rx);
    assert!(close_of(&events).was_clean);
}

#[test]
fn wss_with_a_ca_file_works() {
    let srv = tls_server();
    let dir = std::env::temp_dir().join(format!("wsdom-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, srv.ca_pem().unwrap()).unwrap();
    let opts = Options {
        tls: TlsOptions {
            ca_files: vec![path],
            default_roots: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/echo"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    until_close(&rx);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_ca_is_refused_with_a_clear_error() {
    let srv = tls_server();
    let (_ws, rx) = open(&srv.url("/echo"), &[]);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"]);
    match &events[0].event {
        Event::Error(msg) => assert!(
            msg.contains("TLS") && msg.contains("UnknownIssuer"),
            "{msg}"
        ),
        _ => unreachable!(),
    }
    assert_eq!(close_of(&events).code, 1006);
}

#[test]
fn insecure_option_skips_verification() {
    let srv = tls_server();
    let opts = Options {
        tls: TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let (ws, rx) = open_with(&srv.url("/echo"), &[], opts);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    until_close(&rx);
}

#[test]
fn bad_ca_pem_fails_the_connection_not_the_constructor() {
    let srv = tls_server();
    let opts = Options {
        tls: TlsOptions {
            ca_pem: vec!["not a pem".into()],
            default_roots: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let (_ws, rx) = open_with(&srv.url("/echo"), &[], opts);
    let events = until_close(&rx);
    assert_eq!(types(&events), ["error", "close"]);
}
