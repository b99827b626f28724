//! `WebSocket`: the browser's API on one connection.

use crate::address::{origin_of, parse_websocket_url};
use crate::deflate::Deflater;
use crate::dispatch::Dispatch;
use crate::error::{DomError, ErrorKind};
use crate::event::EventHandler;
use crate::framing::{close_payload, encode_frame, encode_frame_rsv1};
use crate::options::Options;
use crate::outbox::{Chunk, Outbox};
use crate::queue::EventQueue;
use crate::runtime::Runtime;
use crate::subprotocol::validate_protocols;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use url::Url;

/// The `readyState` values, with the browser's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReadyState {
    /// 0: the connection is not yet open.
    Connecting = 0,
    /// 1: the connection is open and ready to communicate.
    Open = 1,
    /// 2: the closing handshake has started.
    Closing = 2,
    /// 3: the connection is closed or could not be opened.
    Closed = 3,
}

impl ReadyState {
    fn from_u8(v: u8) -> ReadyState {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }
}

/// Requests from API calls to the socket's I/O task.
#[derive(Default)]
pub(crate) struct Control {
    /// Wakes the I/O task to look at the flags below.
    pub(crate) notify: Notify,
    /// Set when the connection must fail, with the diagnostic for the `error` event.
    pub(crate) fail: Mutex<Option<String>>,
    /// Set when our Close frame was queued by `close()`.
    pub(crate) close_started: AtomicBool,
}

impl Control {
    /// Asks the I/O task to fail the connection (first reason wins).
    pub(crate) fn fail(&self, reason: impl Into<String>) {
        self.fail.lock().get_or_insert_with(|| reason.into());
        self.notify.notify_one();
    }

    pub(crate) fn take_fail(&self) -> Option<String> {
        self.fail.lock().clone()
    }
}

/// The shared state of one socket: the API side, the I/O task and the dispatcher all hold it.
pub(crate) struct Socket {
    pub(crate) url: Url,
    pub(crate) origin: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) options: Options,
    state: AtomicU8,
    pub(crate) protocol: OnceLock<String>,
    pub(crate) extensions: OnceLock<String>,
    pub(crate) outbox: Outbox,
    /// The compressor, once permessage-deflate is negotiated. Sends hold its lock while
    /// queueing, so frames go out in the order their compression context expects.
    /// (Emptied once the connection is closed.)
    pub(crate) deflater: OnceLock<Mutex<Option<Deflater>>>,
    pub(crate) control: Control,
    pub(crate) dispatch: Dispatch,
    pub(crate) queue: Option<EventQueue>,
    /// The event loop this socket lives on.
    pub(crate) io: tokio::runtime::Handle,
    id: u64,
}

impl Socket {
    pub(crate) fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, s: ReadyState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Moves `from` → `to` atomically; false if the state was not `from`.
    pub(crate) fn transition(&self, from: ReadyState, to: ReadyState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A WebSocket client connection with the browser's semantics.
///
/// Cloning gives another handle to the same connection. Dropping handles does not close it:
/// call [`WebSocket::close`] (bindings map garbage collection to that).
#[derive(Clone)]
#[repr(transparent)]
pub struct WebSocket {
    inner: Arc<Socket>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// A frame buffer each sending thread reuses (see `send_frame`).
    static FRAME_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Larger frame buffers are freed rather than kept for reuse.
const MAX_REUSED_FRAME_BUFFER: usize = 1 << 20;
static LIVE_SOCKETS: AtomicU64 = AtomicU64::new(0);

/// The number of sockets whose memory is still held (by handles, the I/O task or queued
/// events). It returns to its earlier value once every handle is dropped and every socket
/// closed: leak checks in tests and bindings use it.
pub fn live_socket_count() -> u64 {
    LIVE_SOCKETS.load(Ordering::SeqCst)
}

impl Drop for Socket {
    fn drop(&mut self) {
        LIVE_SOCKETS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WebSocket {
    /// `new WebSocket(url, protocols)`: validates the input and starts connecting in the
    /// background. Returns at once in CONNECTING; never fires an event from inside.
    ///
    /// Errors (SyntaxError only): unparseable or relative URL without `options.base_url`, a
    /// scheme other than ws/wss/http/https, a fragment, an invalid or repeated subprotocol,
    /// or an invalid option. Network failures come later as `error` then `close` events.
    pub fn new(url: &str, protocols: &[&str], options: Options) -> Result<WebSocket, DomError> {
        let url = parse_websocket_url(url, options.base_url.as_deref())?;
        let protocols: Vec<String> = protocols.iter().map(|s| s.to_string()).collect();
        validate_protocols(&protocols)?;
        options.validate()?;
        let runtime = Runtime::get();
        let handler = options.handler.clone();
        LIVE_SOCKETS.fetch_add(1, Ordering::SeqCst);
        let socket = Arc::new(Socket {
            origin: origin_of(&url),
            url,
            protocols,
            queue: options.queue.clone(),
            options,
            state: AtomicU8::new(ReadyState::Connecting as u8),
            protocol: OnceLock::new(),
            extensions: OnceLock::new(),
            outbox: Outbox::new(),
            deflater: OnceLock::new(),
            control: Control::default(),
            dispatch: Dispatch::default(),
            io: runtime.pick(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        if let Some(h) = handler {
            socket.install_handler(h);
        }
        socket.io.spawn(crate::connection::run(socket.clone()));
        Ok(WebSocket { inner: socket })
    }

    /// Views the shared socket as a handle without touching its reference count.
    pub(crate) fn borrow(inner: &Arc<Socket>) -> &WebSocket {
        // SAFETY: `WebSocket` is `repr(transparent)` over `Arc<Socket>`, so both have the
        // same layout, and the returned reference borrows `inner` for its whole life.
        unsafe { &*(inner as *const Arc<Socket>).cast::<WebSocket>() }
    }

    /// A process-unique number for this socket.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The URL, as the WHATWG URL serializer writes it (after the http→ws rewrite).
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// The parsed URL.
    pub fn url_record(&self) -> &Url {
        &self.inner.url
    }

    /// The serialised origin of the URL (`MessageEvent.origin`).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The current `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.inner.ready_state()
    }

    /// `bufferedAmount`: payload bytes accepted by `send()` and not yet written to the socket.
    /// Never reset, and it keeps growing with sends after the closing handshake started.
    /// Inside a handler it does not fall (a browser updates it only between tasks); outside
    /// handlers it falls as soon as bytes are written.
    pub fn buffered_amount(&self) -> u64 {
        if !crate::dispatch::in_handler() {
            self.inner.outbox.apply_credit();
        }
        self.inner.outbox.buffered.load(Ordering::Acquire)
    }

    /// The subprotocol the server selected; `""` until `open` is dispatched.
    pub fn protocol(&self) -> &str {
        self.inner.protocol.get().map(String::as_str).unwrap_or("")
    }

    /// The server's `Sec-WebSocket-Extensions` value; `""` until `open` is dispatched.
    pub fn extensions(&self) -> &str {
        self.inner
            .extensions
            .get()
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Sends a text message (UTF-8).
    ///
    /// InvalidStateError while CONNECTING. In CLOSING or CLOSED the data is discarded, but
    /// `bufferedAmount` still grows, as in the browser.
    pub fn send_text(&self, text: &str) -> Result<(), DomError> {
        self.send_frame(OpCode::Data(Data::Text), text.as_bytes())
    }

    /// Sends a binary message; otherwise as [`WebSocket::send_text`].
    pub fn send_binary(&self, data: &[u8]) -> Result<(), DomError> {
        self.send_frame(OpCode::Data(Data::Binary), data)
    }

    fn send_frame(&self, opcode: OpCode, payload: &[u8]) -> Result<(), DomError> {
        let s = &self.inner;
        let state = s.ready_state();
        if state == ReadyState::Connecting {
            return Err(DomError::new(
                ErrorKind::InvalidState,
                "send() was called while the WebSocket is still CONNECTING",
            ));
        }
        s.outbox
            .buffered
            .fetch_add(payload.len() as u64, Ordering::AcqRel);
        if state != ReadyState::Open {
            return Ok(());
        }
        let buffered = s.outbox.outstanding();
        if buffered > s.options.max_buffered_amount {
            s.control.fail(format!(
                "the send buffer is full: bufferedAmount {buffered} exceeds the limit of {} bytes",
                s.options.max_buffered_amount
            ));
            return Ok(());
        }
        if let Some(deflater) = s.deflater.get() {
            let mut deflater = deflater.lock();
            let Some(deflater) = deflater.as_mut() else {
                return Ok(()); // closed: the data is discarded, as after any close
            };
            let mut compressed = Vec::new();
            let mut bytes = Vec::new();
            if deflater.compress(payload, &mut compressed) {
                let header_len = encode_frame_rsv1(opcode, true, &compressed, &mut bytes);
                let original = payload.len() as u64;
                s.outbox
                    .push_data(Chunk::compressed(bytes, header_len, original));
            } else {
                let header_len = encode_frame(opcode, payload, &mut bytes);
                s.outbox.push_data(Chunk::data(bytes, header_len));
            }
            return Ok(());
        }
        // Frames are encoded into a per-thread buffer that is reused whenever the kernel
        // takes the whole frame at once: no allocation per message in the common case.
        let mut bytes = FRAME_BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
        bytes.clear();
        let header_len = encode_frame(opcode, payload, &mut bytes);
        if let Some(spent) = s.outbox.push_data(Chunk::data(bytes, header_len)) {
            if spent.capacity() <= MAX_REUSED_FRAME_BUFFER {
                FRAME_BUFFER.with(|b| *b.borrow_mut() = spent);
            }
        }
        Ok(())
    }

    /// `close(code, reason)`.
    ///
    /// InvalidAccessError unless `code` is 1000 or 3000-4999; SyntaxError if `reason` is longer
    /// than 123 UTF-8 bytes; both checked first, in any state. Then: nothing if CLOSING or
    /// CLOSED; while CONNECTING, fail the connection (readyState 2 now, `error` and `close`
    /// 1006 later); when OPEN, send a Close frame (empty body without a code) and move to
    /// CLOSING. A reason without a code is sent with code 1000 (whatwg/websockets PR #48).
    pub fn close(&self, code: Option<u16>, reason: Option<&str>) -> Result<(), DomError> {
        if let Some(c) = code {
            if c != 1000 && !(3000..=4999).contains(&c) {
                return Err(DomError::new(
                    ErrorKind::InvalidAccess,
                    format!("close code {c} is neither 1000 nor in 3000-4999"),
                ));
            }
        }
        let reason = reason.unwrap_or("");
        if reason.len() > 123 {
            return Err(DomError::syntax(format!(
                "the close reason is {} bytes long; at most 123 UTF-8 bytes are allowed",
                reason.len()
            )));
        }
        let code = code.or((!reason.is_empty()).then_some(1000));
        let s = &self.inner;
        loop {
            match s.ready_state() {
                ReadyState::Closing | ReadyState::Closed => return Ok(()),
                ReadyState::Connecting => {
                    if s.transition(ReadyState::Connecting, ReadyState::Closing) {
                        s.control
                            .fail("close() was called before the connection was established");
                        return Ok(());
                    }
                }
                ReadyState::Open => {
                    if s.transition(ReadyState::Open, ReadyState::Closing) {
                        self.start_closing_handshake(code, reason);
                        return Ok(());
                    }
                }
            }
        }
    }

    fn start_closing_handshake(&self, code: Option<u16>, reason: &str) {
        let s = &self.inner;
        let mut frame = Vec::new();
        encode_frame(
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Close),
            &close_payload(code, reason),
            &mut frame,
        );
        if s.outbox.push_close(Chunk::control(frame)) {
            s.control.close_started.store(true, Ordering::Release);
            s.control.notify.notify_one();
        }
    }

    /// Closes like a page being unloaded: CONNECTING fails; OPEN starts the closing handshake
    /// with code 1001 (going away); otherwise nothing. Used by `ws_free` in C.
    pub fn go_away(&self) {
        let s = &self.inner;
        if s.transition(ReadyState::Connecting, ReadyState::Closing) {
            s.control
                .fail("the WebSocket was released before it opened");
        } else if s.transition(ReadyState::Open, ReadyState::Closing) {
            self.start_closing_handshake(Some(1001), "");
        }
    }

    /// Sets (or replaces) the event handler. Events that waited for a handler are then
    /// dispatched, in order, in the socket's dispatch context (never inside this call).
    pub fn set_handler(&self, handler: Arc<dyn EventHandler>) {
        self.inner.install_handler(handler);
    }

    /// Removes the handler for good: on return no handler call for this socket is running
    /// (other than the caller's own, when called from the handler) and none ever starts.
    pub fn detach_handler(&self) {
        self.inner.detach_handler();
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("id", &self.id())
            .field("url", &self.url())
            .field("ready_state", &self.ready_state())
            .finish()
    }
}
