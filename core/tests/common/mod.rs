//! Shared helpers: a handler that records every event with the state seen at dispatch.

#![allow(dead_code)]

use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;
use wsdom_core::{Event, EventHandler, Options, ReadyState, WebSocket};
pub use wsdom_testserver::{ServerOptions, TestServer};

/// One dispatched event and the socket's attributes at that moment.
#[derive(Debug, Clone)]
pub struct Seen {
    pub event: Event,
    pub ready_state: ReadyState,
    pub protocol: String,
    pub extensions: String,
    pub buffered: u64,
}

/// Something to do for each event before it is recorded.
type Action = Box<dyn Fn(&WebSocket, &Event) + Send + Sync>;

/// Records events into a channel; optionally runs an action for each.
pub struct Recorder {
    tx: Sender<Seen>,
    action: Option<Action>,
}

impl EventHandler for Recorder {
    fn handle_event(&self, ws: &WebSocket, event: Event) {
        if let Some(a) = &self.action {
            a(ws, &event);
        }
        let _ = self.tx.send(Seen {
            event,
            ready_state: ws.ready_state(),
            protocol: ws.protocol().to_owned(),
            extensions: ws.extensions().to_owned(),
            buffered: ws.buffered_amount(),
        });
    }
}

pub fn recorder() -> (Arc<Recorder>, Receiver<Seen>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Arc::new(Recorder { tx, action: None }), rx)
}

pub fn recorder_with(
    action: impl Fn(&WebSocket, &Event) + Send + Sync + 'static,
) -> (Arc<Recorder>, Receiver<Seen>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        Arc::new(Recorder {
            tx,
            action: Some(Box::new(action)),
        }),
        rx,
    )
}

/// Opens `url` with a recorder installed before the connection starts.
pub fn open(url: &str, protocols: &[&str]) -> (WebSocket, Receiver<Seen>) {
    open_with(url, protocols, Options::default())
}

pub fn open_with(url: &str, protocols: &[&str], mut opts: Options) -> (WebSocket, Receiver<Seen>) {
    let (h, rx) = recorder();
    opts.handler = Some(h);
    (
        WebSocket::new(url, protocols, opts).expect("valid input"),
        rx,
    )
}

/// Collects events until `close` (bounded by 10 s); panics on timeout.
pub fn until_close(rx: &Receiver<Seen>) -> Vec<Seen> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no close event within 10 s; saw {out:#?}"));
        let done = matches!(seen.event, Event::Close(_));
        out.push(seen);
        if done {
            return out;
        }
    }
}

/// The next event (bounded by 10 s).
pub fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

/// Event type names, e.g. ["open", "message", "close"].
pub fn types(events: &[Seen]) -> Vec<&'static str> {
    events.iter().map(|s| s.event.type_name()).collect()
}

/// The close event at the end of `events`.
pub fn close_of(events: &[Seen]) -> wsdom_core::CloseEvent {
    match &events.last().expect("events").event {
        Event::Close(c) => c.clone(),
        other => panic!("last event is {other:?}"),
    }
}

pub fn server() -> TestServer {
    TestServer::start(ServerOptions::default()).expect("test server")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server that completes the handshake and then never reads: our sends back up.
pub fn stalled_server() -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut b = [0u8; 1];
        while !req.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
            req.push(b[0]);
        }
        let req = String::from_utf8(req).unwrap();
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
        write!(
            s,
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    (port, t)
}
