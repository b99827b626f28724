//! # wsdom-core
//!
//! The browser's `WebSocket` API as a Rust library, with the WHATWG WebSockets Standard's
//! semantics: URL and subprotocol validation, the `readyState` machine, `bufferedAmount`,
//! `close()` validation, event order, and the CloseEvent codes 1005 and 1006.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wsdom_core::{Event, Options, WebSocket};
//!
//! let ws = WebSocket::new("ws://127.0.0.1:9001/echo", &[], Options::default()).unwrap();
//! ws.set_handler(Arc::new(|ws: &WebSocket, event: Event| match event {
//!     Event::Open => ws.send_text("hello").unwrap(),
//!     Event::Message(m) => { println!("got {m:?}"); ws.close(None, None).unwrap(); }
//!     Event::Error(e) => eprintln!("error: {e}"),
//!     Event::Close(c) => println!("closed {} clean={}", c.code, c.was_clean),
//! }));
//! ```
//!
//! Sockets run on a small shared pool of event-loop threads ([`set_io_threads`]). A socket's
//! handler runs on its loop thread by default, or on any thread that drains an
//! [`EventQueue`] given in [`Options::queue`].

#![warn(missing_docs)]

mod address;
mod connection;
pub mod deflate;
mod dial;
mod dispatch;
mod error;
mod event;
pub mod framing;
pub mod handshake;
mod options;
mod outbox;
pub mod proxy;
mod queue;
mod runtime;
mod socket;
pub mod subprotocol;
mod tls;

pub use address::{origin_of, parse_websocket_url};
/// The byte buffer type of [`Message::Binary`] (from the `bytes` crate).
pub use bytes::Bytes;
pub use error::{DomError, ErrorKind};
pub use event::{CloseEvent, Event, EventHandler, Message};
pub use options::{Options, TlsOptions};
pub use proxy::ProxySetting;
pub use queue::EventQueue;
pub use runtime::{set_io_park_hook, set_io_threads};
pub use socket::{live_socket_count, ReadyState, WebSocket};
