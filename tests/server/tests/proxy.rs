//! Proxy servers: HTTP CONNECT, HTTPS CONNECT and SOCKS5 tunnelling to the
//! scenario server's `/echo`, authentication, and the loopback-only policy.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::Message;
use wsdom_testserver::{
    ProxyKind, ProxyOptions, ProxyRequest, ProxyServer, ServerOptions, TestServer,
};

const WAIT: Duration = Duration::from_secs(10);

/// `base64("user:pass")`.
const GOOD_BASIC: &str = "dXNlcjpwYXNz";
/// `base64("user:nope")`.
const BAD_BASIC: &str = "dXNlcjpub3Bl";

fn proxy(kind: ProxyKind, auth: bool) -> ProxyServer {
    ProxyServer::start(ProxyOptions {
        kind,
        auth: auth.then(|| ("user".to_string(), "pass".to_string())),
        ipv6: false,
    })
    .unwrap()
}

fn request(host: &str, port: u16, authenticated: bool, accepted: bool) -> ProxyRequest {
    ProxyRequest {
        target_host: host.to_string(),
        target_port: port,
        authenticated,
        accepted,
        socks_atyp: None,
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Reads one HTTP head byte by byte (so nothing after it is consumed).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
    })
    .await
    .unwrap();
    String::from_utf8(head).unwrap()
}

/// Reads to EOF (or a reset), with a deadline.
async fn read_to_end<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap();
    out
}

/// A WebSocket upgrade request for `/echo`.
fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET /echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// After [`upgrade_request`] was sent: expects `101`, then echoes a masked "hi".
async fn expect_upgrade_and_echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) {
    let head = read_head(s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mask = [1u8, 2, 3, 4];
    let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ mask[0], b'i' ^ mask[1]];
    s.write_all(&frame).await.unwrap();
    let mut reply = [0u8; 4];
    tokio::time::timeout(WAIT, s.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0x81, 0x02, b'h', b'i']);
}

/// A WebSocket session over the tunnel with tokio-tungstenite.
async fn ws_echo_over<S: AsyncRead + AsyncWrite + Unpin>(s: S, url: &str) {
    let (mut ws, resp) = client_async(url, s).await.unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    ws.send(Message::text("through the proxy")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("through the proxy")
    );
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

/// Sends `CONNECT target` (with an optional `Basic` token) and returns the response head.
async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: &str,
    basic: Option<&str>,
) -> String {
    let auth = basic
        .map(|t| format!("Proxy-Authorization: Basic {t}\r\n"))
        .unwrap_or_default();
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    read_head(s).await
}

async fn tcp_to(proxy: &ProxyServer) -> TcpStream {
    TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap()
}

async fn tls_to(proxy: &ProxyServer) -> TlsStream<TcpStream> {
    let pem = proxy.ca_pem().expect("CA PEM for an HTTPS proxy");
    tls_connect(proxy.port(), &pem).await
}

/// TLS to `localhost` on 127.0.0.1:`port`, trusting only the CA in `ca_pem`.
async fn tls_connect(port: u16, ca_pem: &str) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn http_connect_without_auth_pipelined_upgrade() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let proxy = proxy(ProxyKind::HttpConnect, false);
    assert_eq!(proxy.url(), format!("http://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.ca_pem(), None);

    // The upgrade request follows the CONNECT head in the same write: the proxy
    // must forward those early bytes.
    let target = format!("127.0.0.1:{}", server.port());
    let mut bytes = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    bytes.extend(upgrade_request(&target));
    let mut s = tcp_to(&proxy).await;
    s.write_all(&bytes).await.unwrap();
    assert_eq!(
        read_head(&mut s).await,
        "HTTP/1.1 200 Connection established\r\n\r\n"
    );
    expect_upgrade_and_echo(&mut s).await;
    drop(s);

    // By name, then a WebSocket session with tokio-tungstenite.
    let mut s = tcp_to(&proxy).await;
    let target = format!("localhost:{}", server.port());
    let head = http_connect(&mut s, &target, None).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    ws_echo_over(s, &server.url("/echo")).await;

    assert_eq!(
        proxy.log(),
        vec![
            request("127.0.0.1", server.port(), false, true),
            request("localhost", server.port(), false, true),
        ]
    );
}

#[tokio::test]
async fn http_connect_with_auth() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let proxy = proxy(ProxyKind::HttpConnect, true);
    assert!(!proxy.url().contains("user"));
    let target = format!("127.0.0.1:{}", server.port());

    for basic in [None, Some(BAD_BASIC)] {
        let mut s = tcp_to(&proxy).await;
        let head = http_connect(&mut s, &target, basic).await;
        assert!(
            head.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Proxy-Authenticate: Basic realm=\"wsdom-test\"\r\n"),
            "{head}"
        );
        assert!(read_to_end(&mut s).await.is_empty(), "closed after 407");
    }

    let mut s = tcp_to(&proxy).await;
    let head = http_connect(&mut s, &target, Some(GOOD_BASIC)).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    ws_echo_over(s, &server.url("/echo")).await;

    assert_eq!(
        proxy.log(),
        vec![
            request("127.0.0.1", server.port(), false, false),
            request("127.0.0.1", server.port(), false, false),
            request("127.0.0.1", server.port(), true, true),
        ]
    );
}

#[tokio::test]
async fn http_connect_refusals() {
    let proxy = proxy(ProxyKind::HttpConnect, false);
    // Not loopback: refused without connecting.
    for target in [
        "example.com:80",
        "10.0.0.1:80",
        "[2001:db8::1]:443",
        "0.0.0.0:80",
    ] {
        let mut s = tcp_to(&proxy).await;
        let head = http_connect(&mut s, target, None).await;
        assert!(head.starts_with("HTTP/1.1 403 "), "{target}: {head}");
    }
    // Loopback but nothing listening.
    let port = closed_port();
    let mut s = tcp_to(&proxy).await;
    let head = http_connect(&mut s, &format!("127.0.0.1:{port}"), None).await;
    assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{head}");
    // Not CONNECT, malformed target.
    let mut s = tcp_to(&proxy).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 405 "));
    let mut s = tcp_to(&proxy).await;
    let head = http_connect(&mut s, "127.0.0.1", None).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");

    let log = proxy.log();
    let seen: Vec<(&str, u16, bool)> = log
        .iter()
        .map(|r| (r.target_host.as_str(), r.target_port, r.accepted))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("example.com", 80, false),
            ("10.0.0.1", 80, false),
            ("2001:db8::1", 443, false),
            ("0.0.0.0", 80, false),
            ("127.0.0.1", port, false),
        ]
    );
}

#[tokio::test]
async fn https_connect_with_and_without_auth() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let target = format!("127.0.0.1:{}", server.port());

    let open = proxy(ProxyKind::HttpsConnect, false);
    assert_eq!(open.url(), format!("https://localhost:{}", open.port()));
    let mut s = tls_to(&open).await;
    let head = http_connect(&mut s, &target, None).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    ws_echo_over(s, &server.url("/echo")).await;
    assert_eq!(
        open.log(),
        vec![request("127.0.0.1", server.port(), false, true)]
    );

    let authed = proxy(ProxyKind::HttpsConnect, true);
    let mut s = tls_to(&authed).await;
    let head = http_connect(&mut s, &target, Some(BAD_BASIC)).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    let mut s = tls_to(&authed).await;
    let head = http_connect(&mut s, &target, Some(GOOD_BASIC)).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    s.write_all(&upgrade_request(&target)).await.unwrap();
    expect_upgrade_and_echo(&mut s).await;
    let mut s = tls_to(&authed).await;
    let head = http_connect(&mut s, "192.0.2.1:80", Some(GOOD_BASIC)).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert_eq!(
        authed.log(),
        vec![
            request("127.0.0.1", server.port(), false, false),
            request("127.0.0.1", server.port(), true, true),
            request("192.0.2.1", 80, true, false),
        ]
    );
}

/// SOCKS5 destination address.
enum Dst<'a> {
    V4(Ipv4Addr),
    Name(&'a str),
    V6(Ipv6Addr),
}

/// Method selection (offering `methods`); returns the chosen method.
async fn socks_greet(s: &mut TcpStream, methods: &[u8]) -> u8 {
    let mut msg = vec![5, methods.len() as u8];
    msg.extend_from_slice(methods);
    s.write_all(&msg).await.unwrap();
    let mut resp = [0u8; 2];
    s.read_exact(&mut resp).await.unwrap();
    assert_eq!(resp[0], 5);
    resp[1]
}

/// RFC 1929 sub-negotiation; returns the status.
async fn socks_user_pass(s: &mut TcpStream, user: &str, pass: &str) -> u8 {
    let mut msg = vec![1, user.len() as u8];
    msg.extend_from_slice(user.as_bytes());
    msg.push(pass.len() as u8);
    msg.extend_from_slice(pass.as_bytes());
    s.write_all(&msg).await.unwrap();
    let mut resp = [0u8; 2];
    s.read_exact(&mut resp).await.unwrap();
    assert_eq!(resp[0], 1);
    resp[1]
}

/// Sends a request with command `cmd`; returns the reply code (after reading
/// the whole reply).
async fn socks_request(s: &mut TcpStream, cmd: u8, dst: Dst<'_>, port: u16) -> u8 {
    let mut msg = vec![5, cmd, 0];
    match dst {
        Dst::V4(a) => {
            msg.push(1);
            msg.extend_from_slice(&a.octets());
        }
        Dst::Name(n) => {
            msg.push(3);
            msg.push(n.len() as u8);
            msg.extend_from_slice(n.as_bytes());
        }
        Dst::V6(a) => {
            msg.push(4);
            msg.extend_from_slice(&a.octets());
        }
    }
    msg.extend_from_slice(&port.to_be_bytes());
    s.write_all(&msg).await.unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!((head[0], head[2]), (5, 0));
    let addr_len = match head[3] {
        1 => 4,
        4 => 16,
        other => panic!("unexpected reply ATYP {other}"),
    };
    let mut rest = vec![0u8; addr_len + 2];
    s.read_exact(&mut rest).await.unwrap();
    if head[1] == 0 {
        assert_ne!(&rest[addr_len..], &[0, 0], "bound port");
    }
    head[1]
}

async fn socks_tunnel(proxy: &ProxyServer, dst: Dst<'_>, port: u16) -> Result<TcpStream, u8> {
    let mut s = tcp_to(proxy).await;
    assert_eq!(socks_greet(&mut s, &[0]).await, 0);
    match socks_request(&mut s, 1, dst, port).await {
        0 => Ok(s),
        code => Err(code),
    }
}

#[tokio::test]
async fn socks5_without_auth_ipv4_and_domain() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let proxy = proxy(ProxyKind::Socks5, false);
    assert_eq!(proxy.url(), format!("socks5://127.0.0.1:{}", proxy.port()));
    let port = server.port();

    let s = socks_tunnel(&proxy, Dst::V4(Ipv4Addr::LOCALHOST), port)
        .await
        .unwrap();
    ws_echo_over(s, &server.url("/echo")).await;
    let mut s = socks_tunnel(&proxy, Dst::Name("localhost"), port)
        .await
        .unwrap();
    s.write_all(&upgrade_request("localhost")).await.unwrap();
    expect_upgrade_and_echo(&mut s).await;

    // Offering only username/password to a proxy without auth: unacceptable.
    let mut s = tcp_to(&proxy).await;
    assert_eq!(socks_greet(&mut s, &[2]).await, 0xFF);
    assert!(read_to_end(&mut s).await.is_empty());

    let log = proxy.log();
    let seen: Vec<(&str, u16, bool, bool, Option<u8>)> = log
        .iter()
        .map(|r| {
            let host = r.target_host.as_str();
            (
                host,
                r.target_port,
                r.authenticated,
                r.accepted,
                r.socks_atyp,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("127.0.0.1", port, false, true, Some(1)),
            ("localhost", port, false, true, Some(3)),
        ]
    );
}

#[tokio::test]
async fn socks5_with_auth() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let proxy = proxy(ProxyKind::Socks5, true);
    let port = server.port();

    // No-auth only: unacceptable.
    let mut s = tcp_to(&proxy).await;
    assert_eq!(socks_greet(&mut s, &[0]).await, 0xFF);
    assert!(read_to_end(&mut s).await.is_empty());
    // Wrong password: failure status, then closed.
    let mut s = tcp_to(&proxy).await;
    assert_eq!(socks_greet(&mut s, &[0, 2]).await, 2);
    assert_ne!(socks_user_pass(&mut s, "user", "nope").await, 0);
    assert!(read_to_end(&mut s).await.is_empty());
    // Right credentials.
    let mut s = tcp_to(&proxy).await;
    assert_eq!(socks_greet(&mut s, &[0, 2]).await, 2);
    assert_eq!(socks_user_pass(&mut s, "user", "pass").await, 0);
    assert_eq!(
        socks_request(&mut s, 1, Dst::V4(Ipv4Addr::LOCALHOST), port).await,
        0
    );
    ws_echo_over(s, &server.url("/echo")).await;

    // Failed negotiations end before any request: only the tunnel is logged.
    let log = proxy.log();
    assert_eq!(log.len(), 1);
    assert!(log[0].authenticated && log[0].accepted);
    assert_eq!(log[0].socks_atyp, Some(1));
}

#[tokio::test]
async fn socks5_refusals() {
    let proxy = proxy(ProxyKind::Socks5, false);
    let closed = closed_port();

    let cases: Vec<(Dst, u16, u8)> = vec![
        (Dst::V4(Ipv4Addr::new(8, 8, 8, 8)), 53, 0x02),
        (Dst::Name("example.com"), 80, 0x02),
        (Dst::Name("localhost.example.com"), 80, 0x02),
        (Dst::V6("2001:db8::1".parse().unwrap()), 443, 0x02),
        (Dst::V4(Ipv4Addr::LOCALHOST), closed, 0x05),
    ];
    for (dst, port, want) in cases {
        assert_eq!(socks_tunnel(&proxy, dst, port).await.err(), Some(want));
    }
    // BIND is not supported.
    let mut s = tcp_to(&proxy).await;
    assert_eq!(socks_greet(&mut s, &[0]).await, 0);
    assert_eq!(
        socks_request(&mut s, 2, Dst::V4(Ipv4Addr::LOCALHOST), 80).await,
        0x07
    );

    let log = proxy.log();
    assert!(log.iter().all(|r| !r.accepted));
    let atyps: Vec<Option<u8>> = log.iter().map(|r| r.socks_atyp).collect();
    assert_eq!(
        atyps,
        vec![Some(1), Some(3), Some(3), Some(4), Some(1), Some(1)]
    );
    assert_eq!(log[1].target_host, "example.com");
    assert_eq!(log[3].target_host, "2001:db8::1");
}

#[tokio::test]
async fn ipv6_proxy_and_targets() {
    let Ok(server) = TestServer::start(ServerOptions {
        tls: false,
        ipv6: true,
    }) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let socks = ProxyServer::start(ProxyOptions {
        kind: ProxyKind::Socks5,
        auth: None,
        ipv6: true,
    })
    .unwrap();
    assert_eq!(socks.url(), format!("socks5://[::1]:{}", socks.port()));
    let mut s = TcpStream::connect((Ipv6Addr::LOCALHOST, socks.port()))
        .await
        .unwrap();
    assert_eq!(socks_greet(&mut s, &[0]).await, 0);
    assert_eq!(
        socks_request(&mut s, 1, Dst::V6(Ipv6Addr::LOCALHOST), server.port()).await,
        0
    );
    ws_echo_over(s, &server.url("/echo")).await;
    assert_eq!(socks.log()[0].socks_atyp, Some(4));
    assert_eq!(socks.log()[0].target_host, "::1");

    let http = proxy(ProxyKind::HttpConnect, false);
    let mut s = tcp_to(&http).await;
    let head = http_connect(&mut s, &format!("[::1]:{}", server.port()), None).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    ws_echo_over(s, &server.url("/echo")).await;
    assert_eq!(http.log(), vec![request("::1", server.port(), false, true)]);
}

#[test]
fn binary_proxy_mode_prints_listening_and_writes_ca() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("wsdom-proxy-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsdom-testserver"))
        .args(["--proxy", "https", "--proxy-auth", "user:pass", "--ca-out"])
        .arg(&ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(port > 0);
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // A 407 over TLS proves it is the authenticating HTTPS proxy.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = tls_connect(port, &pem).await;
        let head = http_connect(&mut s, "127.0.0.1:9", None).await;
        assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    });

    drop(child.stdin.take()); // EOF on stdin stops it.
    let status = child.wait().unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);

    let bad = Command::new(env!("CARGO_BIN_EXE_wsdom-testserver"))
        .args(["--proxy", "ftp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(bad.code(), Some(2));
}
