//! Smoke tests: drive the scenario server with tokio-tungstenite as the client.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{client_async, WebSocketStream};
use wsdom_testserver::{ServerOptions, TestServer};

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer, path: &str) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let (ws, _) = client_async(server.url(path), tcp).await.unwrap();
    ws
}

#[tokio::test]
async fn echo_text_binary_ping_and_close() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    assert_eq!(
        server.base_url(),
        format!("ws://127.0.0.1:{}", server.port())
    );
    let mut ws = connect(&server, "/echo").await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    ws.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Pong(b"p".to_vec().into())
    );
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(cf)))) => {
            assert_eq!(cf.code, CloseCode::Normal);
            assert_eq!(cf.reason.as_str(), "bye");
        }
        other => panic!("expected close echo, got {other:?}"),
    }
    drop(ws);

    let obs = server.wait_finished(1, WAIT);
    assert_eq!(obs.len(), 1);
    let o = &obs[0];
    assert_eq!(o.path, "/echo");
    assert_eq!(
        o.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
        Some("websocket")
    );
    assert!(o.frames.iter().all(|f| f.masked && f.rsv == 0 && f.fin));
    let opcodes: Vec<u8> = o.frames.iter().map(|f| f.opcode).collect();
    assert_eq!(opcodes, vec![1, 2, 9, 8]);
    let close = o.close_frame().unwrap();
    assert_eq!(close.close_code(), Some(1000));
    assert_eq!(close.close_reason(), b"bye");
    assert!(o.server_closed_tcp);
}

#[tokio::test]
async fn server_initiated_close_with_code_and_reason() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut ws = connect(&server, "/close?code=4001&reason=bye").await;
    match ws.next().await {
        Some(Ok(Message::Close(Some(cf)))) => {
            assert_eq!(u16::from(cf.code), 4001);
            assert_eq!(cf.reason.as_str(), "bye");
        }
        other => panic!("expected close, got {other:?}"),
    }
    // tungstenite replies to the Close automatically; drain to the end.
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    let obs = server.wait_finished(1, WAIT);
    let close = obs[0].close_frame().expect("client close reply recorded");
    assert!(close.masked);
    assert_eq!(close.close_code(), Some(4001));
}

#[tokio::test]
async fn push_many_messages_then_done() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut ws = connect(&server, "/push?n=50&size=1000&type=text").await;
    for _ in 0..50 {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => assert_eq!(t.as_str(), "x".repeat(1000)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("done"));
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test]
async fn tls_echo_with_generated_ca() {
    let server = TestServer::start(ServerOptions {
        tls: true,
        ipv6: false,
    })
    .unwrap();
    assert_eq!(
        server.base_url(),
        format!("wss://localhost:{}", server.port())
    );
    let pem = server.ca_pem().expect("CA PEM for TLS");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut ws, _) = client_async(server.url("/echo"), tls).await.unwrap();
    ws.send(Message::text("secure")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("secure"));
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    let obs = server.wait_finished(1, WAIT);
    assert!(obs[0].close_frame().unwrap().payload.is_empty());
}

#[tokio::test]
async fn raw_status_404() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    match client_async(server.url("/raw?status=404"), tcp).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 404),
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn unknown_path_is_404_and_observed_endpoint_reports_json() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    match client_async(server.url("/nope"), tcp).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 404),
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| ())),
    }
    server.wait_finished(1, WAIT);
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    tcp.write_all(b"GET /observed HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("\"path\":\"/nope\""), "{body}");
}

#[tokio::test]
async fn send_injects_raw_bytes_and_drop_rst() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    // Unmasked text frame "hi" with RSV1 set: 0xC1 0x02 'h' 'i'.
    let mut ws = connect(&server, "/send?frames=c1026869").await;
    match ws.next().await {
        Some(Err(WsError::Protocol(_))) => {}
        other => panic!("expected protocol error, got {other:?}"),
    }
    drop(ws);

    let mut ws = connect(&server, "/drop?rst=1").await;
    match ws.next().await {
        Some(Err(_)) | None => {}
        other => panic!("expected connection loss, got {other:?}"),
    }
}

#[tokio::test]
async fn stop_is_prompt_with_held_connections() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    tcp.write_all(b"GET /never-handshake HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "connection closed by stop");
}
