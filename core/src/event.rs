//! The events a WebSocket fires, as the browser shapes them.

use bytes::Bytes;
use std::fmt;

/// A received message, after defragmentation and UTF-8 validation.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1), valid UTF-8.
    Text(String),
    /// A binary message (opcode 0x2). A large one shares the connection's read buffer (no copy).
    Binary(Bytes),
}

impl Message {
    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(s) => s.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(s) if s.len() <= 64 => write!(f, "Text({s:?})"),
            Message::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

/// The fields of the browser's `CloseEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseEvent {
    /// The code of the first Close frame received; 1005 if it had no body, 1006 if none arrived.
    pub code: u16,
    /// The reason of the first Close frame received (UTF-8), or empty.
    pub reason: String,
    /// True only if the closing handshake completed (a Close frame was sent and received).
    pub was_clean: bool,
}

/// One event of a WebSocket, delivered in order to its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `open`: the connection is established; `protocol()` and `extensions()` are set.
    Open,
    /// `message`: a complete message arrived while the socket was OPEN.
    Message(Message),
    /// `error`: the connection failed. The browser's event carries no detail; this string
    /// says what went wrong (for logs). Always immediately followed by `Close`.
    Error(String),
    /// `close`: the last event of every socket, fired exactly once.
    Close(CloseEvent),
}

impl Event {
    /// The DOM event type: `"open"`, `"message"`, `"error"` or `"close"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Open => "open",
            Event::Message(_) => "message",
            Event::Error(_) => "error",
            Event::Close(_) => "close",
        }
    }
}

/// Receives the events of one WebSocket, one at a time and in order.
///
/// It runs on the socket's I/O thread by default, or on whichever thread calls
/// [`crate::EventQueue::dispatch`] when the socket was given a queue. It may call any method of
/// the socket (send, close, even drop it) without deadlock.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event; `ws` is the socket that fired it.
    fn handle_event(&self, ws: &crate::WebSocket, event: Event);

    /// Runs `dispatch`, which may call `handle_event` any number of times (all the messages
    /// of one read from the socket). A binding can take a lock once for the whole batch here,
    /// such as Python's GIL. The default just runs it.
    fn batch(&self, dispatch: &mut dyn FnMut()) {
        dispatch()
    }
}

impl<F> EventHandler for F
where
    F: Fn(&crate::WebSocket, Event) + Send + Sync + 'static,
{
    fn handle_event(&self, ws: &crate::WebSocket, event: Event) {
        self(ws, event)
    }
}
