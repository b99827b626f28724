//! `make demo`: starts a local scenario server, opens a WebSocket to it, sends a few
//! messages, closes, and prints every event it sees.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use wsdom_core::{Event, Message, Options, WebSocket};
use wsdom_testserver::{ServerOptions, TestServer};

fn main() {
    let server = TestServer::start(ServerOptions::default()).expect("start the demo server");
    let url = server.url("/echo");
    println!("demo: echo server on {url}");

    let (done_tx, done_rx) = mpsc::channel();
    let handler = move |ws: &WebSocket, event: Event| match &event {
        Event::Open => {
            println!(
                "open     readyState={:?} protocol={:?}",
                ws.ready_state(),
                ws.protocol()
            );
            ws.send_text("hello from wsdom").unwrap();
            ws.send_binary(&[1, 2, 3, 4]).unwrap();
            ws.send_text("\u{1F44B} unicode too").unwrap();
            println!("sent 3 messages, bufferedAmount={}", ws.buffered_amount());
        }
        Event::Message(Message::Text(t)) => {
            println!("message  text {t:?}");
            if t.contains("unicode") {
                ws.close(Some(1000), Some("demo done")).unwrap();
                println!("close()  readyState={:?}", ws.ready_state());
            }
        }
        Event::Message(Message::Binary(b)) => println!("message  binary {b:?}"),
        Event::Error(e) => println!("error    {e}"),
        Event::Close(c) => {
            println!(
                "close    code={} reason={:?} wasClean={} readyState={:?}",
                c.code,
                c.reason,
                c.was_clean,
                ws.ready_state()
            );
            let _ = done_tx.send(());
        }
    };
    let options = Options {
        handler: Some(Arc::new(handler)),
        ..Options::default()
    };
    let ws = WebSocket::new(&url, &["chat"], options).expect("valid URL");
    println!(
        "new      url={} readyState={:?}",
        ws.url(),
        ws.ready_state()
    );
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the demo finishes within 10 s");
}
