//! Per-socket options beyond the browser API, with documented defaults.

use crate::error::DomError;
use crate::event::EventHandler;
use crate::proxy::ProxySetting;
use crate::queue::EventQueue;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// TLS settings for `wss://` URLs.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates, PEM text (one or more certificates each).
    pub ca_pem: Vec<String>,
    /// Extra trusted CA certificate files (PEM).
    pub ca_files: Vec<PathBuf>,
    /// Client certificate chain and private key, both PEM, for mutual TLS.
    pub client_cert_pem: Option<(String, String)>,
    /// Skip all certificate verification. For tests only; a warning is logged on stderr.
    pub insecure: bool,
    /// Trust the operating system's store and the Mozilla (webpki) roots (default true).
    pub default_roots: bool,
}

/// Options of one WebSocket. `Options::default()` gives the documented defaults.
#[derive(Clone)]
pub struct Options {
    /// Base URL against which a relative URL is resolved (the browser's API base URL).
    pub base_url: Option<String>,
    /// Extra request headers, e.g. Authorization, Cookie, Origin, User-Agent. The handshake's
    /// own headers (Host, Upgrade, Connection, Sec-WebSocket-*) are rejected with a SyntaxError.
    pub headers: Vec<(String, String)>,
    /// TLS settings (also used for an `https://` proxy).
    pub tls: TlsOptions,
    /// Which proxy to go through (default: from the environment, as curl reads it).
    pub proxy: ProxySetting,
    /// Time allowed for DNS, TCP, TLS and the HTTP upgrade together (default 30 s), from
    /// when the socket's turn comes: sockets to one host and port handshake one at a time
    /// (RFC 6455 §4.1), and waiting behind the others does not count.
    pub connect_timeout: Duration,
    /// Time allowed for the closing handshake before the TCP connection is dropped (default 5 s).
    pub close_timeout: Duration,
    /// Largest accepted message, after reassembly (default 64 MiB). Larger fails with 1009.
    pub max_message_size: usize,
    /// Largest accepted frame payload (default 16 MiB).
    pub max_frame_size: usize,
    /// Largest `bufferedAmount` before the socket is flagged full and fails (default 256 MiB).
    pub max_buffered_amount: u64,
    /// Size of a read from the socket (default 16 KiB): the first, and the least once reads
    /// that fill up have grown it (up to 256 KiB while more data keeps waiting). The buffer is
    /// only held while data is being processed, so idle sockets cost little memory.
    pub read_chunk_size: usize,
    /// Opt-in keepalive: after this much silence from the server, send a ping (default
    /// `None`: idle connections stay open and silent, as in browsers).
    pub ping_interval: Option<Duration>,
    /// With `ping_interval`, fail the connection when nothing arrives this long after a ping
    /// (default 10 s): detects half-open connections.
    pub pong_timeout: Duration,
    /// Offer permessage-deflate (RFC 7692) as browsers do (default true).
    pub deflate: bool,
    /// With permessage-deflate, messages shorter than this are sent uncompressed (default 0:
    /// every message is compressed, as Chromium does).
    pub deflate_threshold: usize,
    /// zlib compression level of outgoing messages, 1 (fastest) to 9 (smallest); default 6,
    /// zlib's default, as Chromium and Python `websockets` use: on JSON-like text it puts the
    /// same bytes on the wire as Chromium. Level 1 takes about a fifth of the CPU time for
    /// about 35% more bytes (bench/RESULTS.md). Out-of-range values are clamped.
    pub deflate_level: u32,
    /// The handler of this socket's events, set before the connection starts.
    /// Without one, events wait in the socket's queue until [`crate::WebSocket::set_handler`].
    pub handler: Option<Arc<dyn EventHandler>>,
    /// Where events are dispatched: `None` runs the handler on the socket's I/O thread;
    /// `Some(queue)` runs it on whichever thread calls [`EventQueue::dispatch`].
    pub queue: Option<EventQueue>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_url: None,
            headers: Vec::new(),
            tls: TlsOptions {
                default_roots: true,
                ..TlsOptions::default()
            },
            proxy: ProxySetting::FromEnvironment,
            connect_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            max_buffered_amount: 256 << 20,
            read_chunk_size: 16 << 10,
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            deflate: true,
            deflate_threshold: 0,
            deflate_level: 6,
            handler: None,
            queue: None,
        }
    }
}

/// Header names the opening handshake owns; users may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

impl Options {
    /// Checks the options that can be wrong: header names and values.
    pub fn validate(&self) -> Result<(), DomError> {
        for (name, value) in &self.headers {
            if !crate::subprotocol::is_token(name) {
                return Err(DomError::syntax(format!("invalid header name {name:?}")));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(DomError::syntax(format!(
                    "header {name:?} is set by the WebSocket handshake and cannot be overridden"
                )));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(DomError::syntax(format!(
                    "the value of header {name:?} contains CR, LF or NUL"
                )));
            }
        }
        if let ProxySetting::Url(u) = &self.proxy {
            crate::proxy::Proxy::parse(u).map_err(DomError::syntax)?;
        }
        if self.max_message_size == 0 || self.max_frame_size == 0 || self.read_chunk_size == 0 {
            return Err(DomError::syntax("size limits must be greater than zero"));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("base_url", &self.base_url)
            .field("headers", &self.headers)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_buffered_amount", &self.max_buffered_amount)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("deflate", &self.deflate)
            .field("deflate_threshold", &self.deflate_threshold)
            .field("deflate_level", &self.deflate_level)
            .field("handler", &self.handler.is_some())
            .field("queue", &self.queue.is_some())
            .finish()
    }
}
