//! The `WebSocket` class: the browser's API on top of a core socket.

use crate::blob::Blob;
use crate::buffer::{self, usv_string, BufferView};
use crate::dispatch::{Bridge, Mode, WaitHere};
use crate::errors;
use crate::events::{self, EvType, Event};
use crate::lifecycle;
use crate::listeners::{self, Entry, Listeners, OnError};
use crate::{loops, options};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyMapping, PyString, PyTuple};
use pyo3::{intern, PyTraverseError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wsdom_core::{DomError, Event as CoreEvent, Message, WebSocket as CoreWs};

/// Sends of at least this many bytes release the GIL while the frame is built (masking,
/// compression) and written.
const DETACH_SEND_BYTES: usize = 64 << 10;

/// `WebSocket(url, protocols=None, **options)`: the browser's WebSocket.
///
/// Connecting starts at once, in the background; events are dispatched (in order) once a
/// listener, an event handler attribute, a waiter or an iterator is attached, so none is lost
/// to a handler set late. See the package documentation for the options.
#[pyclass(module = "wsdom._wsdom", name = "WebSocket", subclass, weakref, frozen)]
pub struct WebSocket {
    bridge: Arc<Bridge>,
    listeners: Mutex<Listeners>,
    /// `binaryType` is "arraybuffer" (else "blob").
    arraybuffer: AtomicBool,
    /// `MessageEvent.origin`, shared by all the socket's messages.
    origin: Py<PyString>,
}

/// `protocols`: None, one str, or an iterable of str.
fn protocol_list(protocols: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(p) = protocols.filter(|p| !p.is_none()) else {
        return Ok(Vec::new());
    };
    if p.is_instance_of::<PyString>() {
        return Ok(vec![usv_string(p, "protocols")?]);
    }
    if p.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "protocols must be a str or a sequence of str, not bytes",
        ));
    }
    let iter = p
        .try_iter()
        .map_err(|_| PyTypeError::new_err("protocols must be a str or a sequence of str"))?;
    iter.map(|item| usv_string(&item?, "each protocol"))
        .collect()
}

/// `timeout=` of the waits: None, or seconds (negative means zero).
fn wait_timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(PyValueError::new_err("timeout must not be NaN")),
        Some(t) if t <= 0.0 => Ok(Some(Duration::ZERO)),
        Some(t) => Ok(Some(
            Duration::try_from_secs_f64(t).unwrap_or(Duration::from_secs(u64::MAX / 4)),
        )),
    }
}

/// `(capture, once, passive)` from the `options` argument of add/removeEventListener.
fn listener_options(options: Option<&Bound<'_, PyAny>>) -> PyResult<(bool, bool, bool)> {
    let Some(o) = options.filter(|o| !o.is_none()) else {
        return Ok((false, false, false));
    };
    if let Ok(b) = o.extract::<bool>() {
        return Ok((b, false, false));
    }
    let m = o.cast::<PyMapping>().map_err(|_| {
        PyTypeError::new_err("listener options must be a bool (capture) or a mapping")
    })?;
    let member = |name: &str| -> PyResult<bool> {
        match m.get_item(name) {
            Ok(v) => v.is_truthy(),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(o.py()) => Ok(false),
            Err(e) => Err(e),
        }
    };
    Ok((member("capture")?, member("once")?, member("passive")?))
}

fn send_result(py: Python<'_>, r: Result<(), DomError>) -> PyResult<()> {
    r.map_err(|e| errors::from_dom(py, &e))
}

impl WebSocket {
    /// The listener list (for dispatch).
    pub(crate) fn listeners(&self) -> &Mutex<Listeners> {
        &self.listeners
    }

    fn core(&self) -> &CoreWs {
        self.bridge.core()
    }

    /// Sockets of the parent process are inert in a forked child.
    fn check_owned(&self, py: Python<'_>) -> PyResult<()> {
        if self.bridge.is_foreign() {
            return Err(errors::invalid_state(
                py,
                "this WebSocket was created by the parent process before fork()",
            ));
        }
        Ok(())
    }

    /// Builds the DOM event for a core event, reading `binaryType` now.
    pub(crate) fn make_event<'py>(
        slf: &Bound<'py, Self>,
        event: CoreEvent,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let target = slf.as_any();
        match event {
            CoreEvent::Open => events::plain(py, EvType::Open, target),
            CoreEvent::Message(Message::Text(text)) => events::message(
                py,
                target,
                PyString::new(py, &text).into_any(),
                this.origin.clone_ref(py),
            ),
            CoreEvent::Message(Message::Binary(bytes)) => {
                let data = if this.arraybuffer.load(Ordering::Acquire) {
                    buffer::memoryview(py, bytes)?
                } else {
                    Bound::new(py, Blob::from_bytes(bytes))?.into_any()
                };
                events::message(py, target, data, this.origin.clone_ref(py))
            }
            CoreEvent::Error(message) => events::error(py, target, message),
            CoreEvent::Close(c) => events::close(py, target, c.code, c.reason, c.was_clean),
        }
    }

    /// Pins the Python object while it has listeners for events still to come (see
    /// `dispatch.rs`), unpins it otherwise.
    pub(crate) fn refresh_pin(slf: &Bound<'_, Self>) {
        let this = slf.get();
        this.bridge
            .update_pin(slf, |types| this.listeners.lock().listens_to_any(types));
    }

    /// Pins as needed and lets the events flow.
    fn activate(slf: &Bound<'_, Self>) {
        Self::refresh_pin(slf);
        slf.get().bridge.install();
    }

    fn set_handler_attr(slf: &Bound<'_, Self>, slot: usize, value: Option<&Bound<'_, PyAny>>) {
        let value = value
            .filter(|v| v.is_callable())
            .map(|v| v.clone().unbind());
        let active = value.is_some();
        let garbage = slf.get().listeners.lock().set_handler(slot, value);
        drop(garbage);
        if active {
            Self::activate(slf);
        } else {
            Self::refresh_pin(slf);
        }
    }

    fn get_handler_attr(&self, py: Python<'_>, slot: usize) -> Option<Py<PyAny>> {
        self.listeners.lock().handler(py, slot)
    }

    fn wait(slf: &Bound<'_, Self>, timeout: Option<f64>, for_close: bool) -> PyResult<bool> {
        let py = slf.py();
        let this = slf.get();
        this.check_owned(py)?;
        let name = if for_close {
            "wait_closed"
        } else {
            "wait_open"
        };
        let how = this.bridge.wait_here(py);
        if how == WaitHere::Deadlock {
            return Err(PyRuntimeError::new_err(format!(
                "{name}() would block the thread that runs this WebSocket's event handlers \
                 (its asyncio loop, or a wsdom I/O thread); use `await ws.{name}_async()` \
                 in asyncio code, or an event handler"
            )));
        }
        let timeout = wait_timeout(timeout)?;
        this.bridge.install();
        this.bridge.wait(py, timeout, for_close, how)
    }

    /// The bytes of a buffer that is not contiguous, through `memoryview(obj).tobytes()`.
    fn buffer_copy<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let py = data.py();
        let not_data = || {
            PyTypeError::new_err(format!(
                "send() argument must be str, a bytes-like object or Blob, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        };
        let view = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((data,))
            .map_err(|_| not_data())?;
        Ok(view.call_method0("tobytes")?.cast_into::<PyBytes>()?)
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        if self.bridge.is_foreign() || lifecycle::shutting_down() {
            return;
        }
        // Collected while open: start the closing handshake with no status code, as the
        // browser does. (A pinned socket, one with listeners, is not collected.)
        let _ = self.bridge.core().close(None, None);
        if !self.bridge.is_installed() {
            self.bridge.unregister();
        }
    }
}

#[pymethods]
impl WebSocket {
    /// readyState 0: the connection is not yet open.
    #[classattr]
    const CONNECTING: u16 = 0;
    /// readyState 1: the connection is open and ready to communicate.
    #[classattr]
    const OPEN: u16 = 1;
    /// readyState 2: the closing handshake has started.
    #[classattr]
    const CLOSING: u16 = 2;
    /// readyState 3: the connection is closed or could not be opened.
    #[classattr]
    const CLOSED: u16 = 3;

    #[new]
    #[pyo3(signature = (url, protocols = None, **options))]
    fn py_new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        protocols: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let url = usv_string(url, "url")?;
        let protocols = protocol_list(protocols)?;
        let parsed = options::parse(options)?;
        let mut core_options = parsed.core;
        let mode = match loops::for_running_loop(py)? {
            Some(binding) => {
                core_options.queue = Some(binding.queue.clone());
                Mode::Loop(binding)
            }
            None => Mode::Thread,
        };
        let refs: Vec<&str> = protocols.iter().map(String::as_str).collect();
        let core = CoreWs::new(&url, &refs, core_options).map_err(|e| errors::from_dom(py, &e))?;
        let origin = PyString::new(py, core.origin()).unbind();
        let mut listeners = Listeners::default();
        for (slot, handler) in parsed.handlers {
            let garbage = listeners.set_handler(slot, handler);
            drop(garbage);
        }
        Ok(WebSocket {
            bridge: Bridge::new(core, mode),
            listeners: Mutex::new(listeners),
            arraybuffer: AtomicBool::new(parsed.arraybuffer == Some(true)),
            origin,
        })
    }

    /// Lets the events flow to the handlers given as `onopen=`... keyword arguments.
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __init__(
        slf: &Bound<'_, Self>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) {
        let has_listeners = !slf.get().listeners.lock().is_empty();
        if has_listeners {
            Self::activate(slf);
        }
    }

    /// The URL, as resolved and serialised (http: and https: become ws: and wss:).
    #[getter]
    fn url(&self) -> &str {
        self.core().url()
    }

    /// CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3).
    #[getter(readyState)]
    fn ready_state(&self) -> u16 {
        self.core().ready_state() as u16
    }

    /// Bytes passed to `send()` and not yet written to the network.
    #[getter(bufferedAmount)]
    fn buffered_amount(&self) -> u64 {
        self.core().buffered_amount()
    }

    /// The extensions the server selected (`""` until open).
    #[getter]
    fn extensions(&self) -> &str {
        self.core().extensions()
    }

    /// The subprotocol the server selected (`""` until open, or if none).
    #[getter]
    fn protocol(&self) -> &str {
        self.core().protocol()
    }

    /// How binary messages are exposed: `"blob"` (a `Blob`, the default) or
    /// `"arraybuffer"` (a read-only `memoryview`). Other values are ignored.
    #[getter(binaryType)]
    fn binary_type<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        if self.arraybuffer.load(Ordering::Acquire) {
            intern!(py, "arraybuffer")
        } else {
            intern!(py, "blob")
        }
    }

    #[setter(binaryType)]
    fn set_binary_type(&self, value: Option<&Bound<'_, PyAny>>) {
        match value.and_then(|v| v.extract::<String>().ok()).as_deref() {
            Some("blob") => self.arraybuffer.store(false, Ordering::Release),
            Some("arraybuffer") => self.arraybuffer.store(true, Ordering::Release),
            _ => {}
        }
    }

    /// The `open` event handler (a callable or None).
    #[getter]
    fn onopen(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_handler_attr(py, 0)
    }

    #[setter]
    fn set_onopen(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) {
        Self::set_handler_attr(slf, 0, value)
    }

    /// The `message` event handler (a callable or None).
    #[getter]
    fn onmessage(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_handler_attr(py, 1)
    }

    #[setter]
    fn set_onmessage(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) {
        Self::set_handler_attr(slf, 1, value)
    }

    /// The `error` event handler (a callable or None).
    #[getter]
    fn onerror(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_handler_attr(py, 2)
    }

    #[setter]
    fn set_onerror(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) {
        Self::set_handler_attr(slf, 2, value)
    }

    /// The `close` event handler (a callable or None).
    #[getter]
    fn onclose(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_handler_attr(py, 3)
    }

    #[setter]
    fn set_onclose(slf: &Bound<'_, Self>, value: Option<&Bound<'_, PyAny>>) {
        Self::set_handler_attr(slf, 3, value)
    }

    /// Sends `data`: a `str` as a text message; bytes, bytearray, memoryview or any other
    /// buffer, or a `Blob`, as a binary message. InvalidStateError while CONNECTING; after
    /// closing, the data is discarded but still counted in `bufferedAmount`.
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check_owned(py)?;
        let core = self.core();
        if let Ok(s) = data.cast::<PyString>() {
            let text = buffer::str_utf8(s)?;
            let r = if text.len() >= DETACH_SEND_BYTES {
                py.detach(|| core.send_text(&text))
            } else {
                core.send_text(&text)
            };
            return send_result(py, r);
        }
        if let Ok(b) = data.cast::<PyBytes>() {
            let bytes = b.as_bytes();
            let r = if bytes.len() >= DETACH_SEND_BYTES {
                py.detach(|| core.send_binary(bytes))
            } else {
                core.send_binary(bytes)
            };
            return send_result(py, r);
        }
        if let Ok(blob) = data.cast::<Blob>() {
            let bytes = blob.get().data().clone();
            let r = if bytes.len() >= DETACH_SEND_BYTES {
                py.detach(|| core.send_binary(&bytes))
            } else {
                core.send_binary(&bytes)
            };
            return send_result(py, r);
        }
        if let Some(view) = BufferView::get(data) {
            let r = if view.as_slice().len() >= DETACH_SEND_BYTES {
                // A mutable buffer may change while the GIL is released: send a copy.
                let copy = view.as_slice().to_vec();
                drop(view);
                py.detach(|| core.send_binary(&copy))
            } else {
                core.send_binary(view.as_slice())
            };
            return send_result(py, r);
        }
        let bytes = Self::buffer_copy(data)?;
        let bytes = bytes.as_bytes();
        send_result(py, py.detach(|| core.send_binary(bytes)))
    }

    /// Starts the closing handshake (or fails a connection still CONNECTING).
    /// InvalidAccessError unless `code` is 1000 or 3000-4999; DOMSyntaxError if `reason`
    /// is longer than 123 UTF-8 bytes. Does nothing once CLOSING or CLOSED.
    #[pyo3(signature = (code = None, reason = None))]
    fn close(
        &self,
        py: Python<'_>,
        code: Option<&Bound<'_, PyAny>>,
        reason: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.check_owned(py)?;
        let code = match code.filter(|c| !c.is_none()) {
            None => None,
            Some(c) => {
                if !c.is_instance_of::<PyInt>() {
                    return Err(PyTypeError::new_err(format!(
                        "close() code must be an int, not {}",
                        c.get_type().name()?
                    )));
                }
                match c.extract::<i64>() {
                    Ok(n) if (0..=i64::from(u16::MAX)).contains(&n) => Some(n as u16),
                    _ => {
                        return Err(errors::invalid_access(
                            py,
                            &format!("close code {c} is neither 1000 nor in 3000-4999"),
                        ))
                    }
                }
            }
        };
        let reason = match reason.filter(|r| !r.is_none()) {
            None => None,
            Some(r) => Some(usv_string(r, "close() reason")?),
        };
        send_result(py, self.core().close(code, reason.as_deref()))
    }

    /// Adds `listener` (a callable, or an object with a `handleEvent` method) for events of
    /// `type`, unless the same listener is already there. `options` may be a bool (capture)
    /// or a mapping with `capture`, `once` and `passive`; the keyword arguments override it.
    #[pyo3(
        name = "addEventListener",
        signature = (r#type, listener, options = None, *, once = None, capture = None, passive = None)
    )]
    #[allow(clippy::too_many_arguments)]
    fn add_event_listener(
        slf: &Bound<'_, Self>,
        r#type: &Bound<'_, PyAny>,
        listener: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyAny>>,
        once: Option<bool>,
        capture: Option<bool>,
        passive: Option<bool>,
    ) -> PyResult<()> {
        let ty = EvType::parse(&usv_string(r#type, "the event type")?);
        let Some(listener) = listener.filter(|l| !l.is_none()) else {
            return Ok(());
        };
        if !listener.is_callable() && !listener.hasattr(intern!(slf.py(), "handleEvent"))? {
            return Err(PyTypeError::new_err(format!(
                "a listener must be callable or have a handleEvent method, not {}",
                listener.get_type().name()?
            )));
        }
        let (c, o, p) = listener_options(options)?;
        let entry = Entry::listener(
            ty,
            listener.clone().unbind(),
            capture.unwrap_or(c),
            once.unwrap_or(o),
            passive.unwrap_or(p),
        );
        let duplicate = slf.get().listeners.lock().add(entry);
        drop(duplicate);
        Self::activate(slf);
        Ok(())
    }

    /// Removes the listener added with the same type, listener and capture flag.
    #[pyo3(
        name = "removeEventListener",
        signature = (r#type, listener, options = None, *, capture = None)
    )]
    fn remove_event_listener(
        slf: &Bound<'_, Self>,
        r#type: &Bound<'_, PyAny>,
        listener: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyAny>>,
        capture: Option<bool>,
    ) -> PyResult<()> {
        let ty = EvType::parse(&usv_string(r#type, "the event type")?);
        let Some(listener) = listener.filter(|l| !l.is_none()) else {
            return Ok(());
        };
        let (c, _, _) = listener_options(options)?;
        let garbage = slf.get().listeners.lock().remove(
            &ty,
            &listener.clone().unbind(),
            capture.unwrap_or(c),
        );
        drop(garbage);
        Self::refresh_pin(slf);
        Ok(())
    }

    /// Dispatches `event` (an `Event`) to this socket's listeners now, on this thread;
    /// `isTrusted` becomes False. Exceptions of listeners are reported with
    /// `sys.unraisablehook`, not raised. Returns False if a listener canceled the event.
    #[pyo3(name = "dispatchEvent")]
    fn dispatch_event(slf: &Bound<'_, Self>, event: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = slf.py();
        let ev = event
            .cast::<Event>()
            .map_err(|_| PyTypeError::new_err("dispatchEvent() argument must be an Event"))?;
        if ev.get().is_dispatching() {
            return Err(errors::invalid_state(
                py,
                "the event is already being dispatched",
            ));
        }
        listeners::invoke(py, slf, event, listeners::Begin::Untrusted, OnError::Raise)?;
        Ok(!ev.get().canceled())
    }

    /// Blocks (with the GIL released) until the `open` event has been dispatched, or the
    /// socket closed without opening. Returns True if it opened, False if it did not or
    /// `timeout` (seconds) passed. Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait_open(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<bool> {
        Self::wait(slf, timeout, false)
    }

    /// Blocks (with the GIL released) until the `close` event has been dispatched.
    /// Returns False if `timeout` (seconds) passed first. Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait_closed(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<bool> {
        Self::wait(slf, timeout, true)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the socket and, where blocking is allowed, waits for the `close` event.
    #[pyo3(signature = (*_exc))]
    fn __exit__(slf: &Bound<'_, Self>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let this = slf.get();
        if this.bridge.is_foreign() {
            return Ok(false);
        }
        this.close(slf.py(), None, None)?;
        if this.bridge.wait_here(slf.py()) != WaitHere::Deadlock {
            Self::wait(slf, None, true)?;
        }
        Ok(false)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.get();
        Ok(format!(
            "<{} url={:?} readyState={}>",
            slf.get_type().qualname()?,
            this.core().url(),
            this.core().ready_state() as u16
        ))
    }

    /// Internal (asyncio helpers): calls `callback(event, listeners_called)` after the
    /// listeners of each event, on the dispatching thread, until `close`. Returns
    /// `(token, opened, closed)` as of the registration.
    fn _observe(slf: &Bound<'_, Self>, callback: &Bound<'_, PyAny>) -> PyResult<(u64, bool, bool)> {
        let this = slf.get();
        this.check_owned(slf.py())?;
        let registered = this.bridge.observe(slf, callback.clone().unbind());
        this.bridge.install();
        Ok(registered)
    }

    /// Internal: removes the observer registered with `token`.
    fn _unobserve(slf: &Bound<'_, Self>, token: u64) {
        slf.get().bridge.unobserve(token);
        Self::refresh_pin(slf);
    }

    /// Internal: True if this socket's events run on an asyncio loop.
    #[getter]
    fn _loop_mode(&self) -> bool {
        self.bridge.is_loop_mode()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(l) = self.listeners.try_lock() {
            l.traverse(&visit)?;
        }
        self.bridge.traverse(&visit)
    }

    fn __clear__(&self) {
        let taken = self.listeners.lock().take_all();
        drop(taken);
        self.bridge.clear_observers();
    }
}
