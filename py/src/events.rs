//! The DOM event classes: `Event`, `MessageEvent`, `CloseEvent` and `ErrorEvent`.
//!
//! Events fired by a WebSocket are created here already targeted at it (`isTrusted` true);
//! events built from Python with the constructors can be passed to `dispatchEvent`.

use parking_lot::Mutex;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::{intern, PyClassInitializer, PyTraverseError};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// An event type. The four WebSocket types are kept as variants for fast comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EvType {
    /// `"open"`.
    Open,
    /// `"message"`.
    Message,
    /// `"error"`.
    Error,
    /// `"close"`.
    Close,
    /// Any other type, e.g. from `dispatchEvent(Event("custom"))`.
    Other(String),
}

impl EvType {
    /// The type named `s`.
    pub(crate) fn parse(s: &str) -> EvType {
        match s {
            "open" => EvType::Open,
            "message" => EvType::Message,
            "error" => EvType::Error,
            "close" => EvType::Close,
            other => EvType::Other(other.to_owned()),
        }
    }

    /// The type's name.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            EvType::Open => "open",
            EvType::Message => "message",
            EvType::Error => "error",
            EvType::Close => "close",
            EvType::Other(s) => s,
        }
    }

    /// The index of the `on<type>` event handler attribute of a WebSocket, if any.
    pub(crate) fn handler_slot(&self) -> Option<usize> {
        match self {
            EvType::Open => Some(0),
            EvType::Message => Some(1),
            EvType::Error => Some(2),
            EvType::Close => Some(3),
            EvType::Other(_) => None,
        }
    }

    /// The type as a Python string (interned for the WebSocket types).
    pub(crate) fn to_py<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match self {
            EvType::Open => intern!(py, "open").clone(),
            EvType::Message => intern!(py, "message").clone(),
            EvType::Error => intern!(py, "error").clone(),
            EvType::Close => intern!(py, "close").clone(),
            EvType::Other(s) => PyString::new(py, s),
        }
    }
}

const STOP_PROPAGATION: u8 = 1;
const STOP_IMMEDIATE: u8 = 2;
const CANCELED: u8 = 4;
const DISPATCH: u8 = 8;
const IN_PASSIVE: u8 = 16;

const PHASE_NONE: u8 = 0;
const PHASE_AT_TARGET: u8 = 2;

/// Milliseconds since the module's time origin (the browser's `performance.now()` clock).
fn now_ms() -> f64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// How many events of one batch may share one reading of the clock.
const STAMP_REUSE: u32 = 16;

thread_local! {
    /// While this thread dispatches a batch of events: the last clock reading and how many
    /// events used it. None outside batches.
    static STAMP: Cell<Option<(f64, u32)>> = const { Cell::new(None) };
}

/// The `timeStamp` of an event fired now. Reading the clock costs more than the rest of an
/// event's bookkeeping on some machines, so within a batch (the messages of one read, or of
/// one drain of a queue, dispatched back to back) up to [`STAMP_REUSE`] events share a
/// reading: a few microseconds apart at most, below the 5–100 µs to which browsers coarsen
/// `timeStamp`. Outside a batch every event reads the clock.
fn fired_stamp() -> f64 {
    STAMP.with(|s| match s.get() {
        Some((stamp, uses)) if uses < STAMP_REUSE => {
            s.set(Some((stamp, uses + 1)));
            stamp
        }
        Some(_) => {
            let now = now_ms();
            s.set(Some((now, 1)));
            now
        }
        None => now_ms(),
    })
}

/// Runs `f`, which dispatches a batch of events back to back without waiting in between
/// (or only before the first), letting them share clock readings (see [`fired_stamp`]).
pub(crate) fn stamp_batch<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the enclosing state, also if `f` unwinds.
    struct Restore(Option<(f64, u32)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STAMP.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STAMP.with(|s| s.replace(Some((0.0, STAMP_REUSE)))));
    f()
}

/// The members of an event's init dictionary, from a mapping and/or keyword arguments.
struct Init<'py> {
    init: Option<Bound<'py, PyAny>>,
    kwargs: Option<Bound<'py, PyDict>>,
}

impl<'py> Init<'py> {
    /// Checks that the keyword arguments are all in `allowed`.
    fn new(
        init: Option<Bound<'py, PyAny>>,
        kwargs: Option<Bound<'py, PyDict>>,
        class: &str,
        allowed: &[&str],
    ) -> PyResult<Self> {
        if let Some(kw) = &kwargs {
            for key in kw.keys() {
                let key: String = key.extract()?;
                if !allowed.contains(&key.as_str()) {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "{class}() got an unexpected keyword argument '{key}'"
                    )));
                }
            }
        }
        let init = init.filter(|i| !i.is_none());
        Ok(Init { init, kwargs })
    }

    /// The member `name`: keyword argument first, then the init mapping.
    fn get(&self, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(kw) = &self.kwargs {
            if let Some(v) = kw.get_item(name)? {
                return Ok(Some(v));
            }
        }
        if let Some(init) = &self.init {
            return match init.get_item(name) {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(init.py()) => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }

    fn flag(&self, name: &str) -> PyResult<bool> {
        self.get(name)?.map_or(Ok(false), |v| v.is_truthy())
    }

    fn string(&self, name: &str) -> PyResult<String> {
        self.get(name)?.map_or(Ok(String::new()), |v| v.extract())
    }

    fn object(&self, name: &str) -> PyResult<Option<Py<PyAny>>> {
        Ok(self.get(name)?.filter(|v| !v.is_none()).map(Bound::unbind))
    }
}

const EVENT_KEYS: &[&str] = &["bubbles", "cancelable", "composed"];

/// `Event`: the base class of all events.
///
/// `Event(type, init=None, *, bubbles=False, cancelable=False, composed=False)`; the
/// members may also come from a mapping `init`, as the browser's `eventInitDict`.
#[pyclass(module = "wsdom", subclass, frozen, weakref)]
pub struct Event {
    ty: EvType,
    bubbles: bool,
    cancelable: bool,
    composed: bool,
    time_stamp: f64,
    trusted: AtomicBool,
    /// The flags above. Written only with the GIL held, which orders the writers, so
    /// updates are a plain load and store (see [`Event::update`]).
    flags: AtomicU8,
    phase: AtomicU8,
    /// The target; while the dispatch flag is set it is also `currentTarget` (a WebSocket
    /// has no event path, so its listeners always run at the target).
    target: Mutex<Option<Py<PyAny>>>,
}

impl Event {
    fn untrusted(ty: EvType, init: &Init<'_>) -> PyResult<Event> {
        Ok(Event {
            ty,
            bubbles: init.flag("bubbles")?,
            cancelable: init.flag("cancelable")?,
            composed: init.flag("composed")?,
            time_stamp: now_ms(),
            trusted: AtomicBool::new(false),
            flags: AtomicU8::new(0),
            phase: AtomicU8::new(PHASE_NONE),
            target: Mutex::new(None),
        })
    }

    /// An event fired by wsdom at `target` (`isTrusted` true), created in the state that
    /// [`Event::begin_untrusted`] would put it in, ready for its listeners.
    fn trusted(ty: EvType, target: &Bound<'_, PyAny>) -> Event {
        Event {
            ty,
            bubbles: false,
            cancelable: false,
            composed: false,
            time_stamp: fired_stamp(),
            trusted: AtomicBool::new(true),
            flags: AtomicU8::new(DISPATCH),
            phase: AtomicU8::new(PHASE_AT_TARGET),
            target: Mutex::new(Some(target.clone().unbind())),
        }
    }

    /// Sets the flags to `f(flags)`. Only called with the GIL held (from Python, or by the
    /// dispatch that holds it), which serialises the writers: no atomic read-modify-write
    /// is needed, and none is paid for on every event.
    fn update(&self, f: impl FnOnce(u8) -> u8) {
        let flags = self.flags.load(Ordering::Acquire);
        self.flags.store(f(flags), Ordering::Release);
    }

    /// The event's type.
    pub(crate) fn ty(&self) -> &EvType {
        &self.ty
    }

    /// True while the event is being dispatched.
    pub(crate) fn is_dispatching(&self) -> bool {
        self.flags.load(Ordering::Acquire) & DISPATCH != 0
    }

    /// Starts a `dispatchEvent` at `target`: `isTrusted` becomes False, and the dispatch
    /// flag, `target`, `currentTarget` and the phase are set. (Events fired by the socket
    /// are created in this state.)
    pub(crate) fn begin_untrusted(&self, target: &Bound<'_, PyAny>) {
        self.trusted.store(false, Ordering::Release);
        let old_target = self.target.lock().replace(target.clone().unbind());
        drop(old_target);
        self.update(|f| f | DISPATCH);
        self.phase.store(PHASE_AT_TARGET, Ordering::Release);
    }

    /// Ends the dispatch: `currentTarget` becomes None, the phase NONE, and the dispatch and
    /// propagation flags are cleared, as the DOM's dispatch algorithm does at its end.
    pub(crate) fn end(&self) {
        self.phase.store(PHASE_NONE, Ordering::Release);
        self.update(|f| f & !(DISPATCH | STOP_PROPAGATION | STOP_IMMEDIATE));
    }

    /// `currentTarget`: the target while the event is dispatched, else None.
    fn current(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        if self.is_dispatching() {
            self.target.lock().as_ref().map(|t| t.clone_ref(py))
        } else {
            None
        }
    }

    /// True once `stopImmediatePropagation()` was called during this dispatch.
    pub(crate) fn immediate_stopped(&self) -> bool {
        self.flags.load(Ordering::Acquire) & STOP_IMMEDIATE != 0
    }

    /// Marks the listener being called as passive (preventDefault is then ignored).
    pub(crate) fn set_passive(&self, passive: bool) {
        if passive {
            self.update(|f| f | IN_PASSIVE);
        } else {
            self.update(|f| f & !IN_PASSIVE);
        }
    }

    /// True once `preventDefault()` took effect.
    pub(crate) fn canceled(&self) -> bool {
        self.flags.load(Ordering::Acquire) & CANCELED != 0
    }

    fn prevent(&self) {
        if self.cancelable && self.flags.load(Ordering::Acquire) & IN_PASSIVE == 0 {
            self.update(|f| f | CANCELED);
        }
    }
}

#[pymethods]
impl Event {
    /// No phase: the event is not being dispatched.
    #[classattr]
    const NONE: u16 = 0;
    /// The capturing phase (never used by WebSocket events).
    #[classattr]
    const CAPTURING_PHASE: u16 = 1;
    /// The event is at its target.
    #[classattr]
    const AT_TARGET: u16 = 2;
    /// The bubbling phase (never used by WebSocket events).
    #[classattr]
    const BUBBLING_PHASE: u16 = 3;

    #[new]
    #[pyo3(signature = (r#type, init = None, **kwargs))]
    fn py_new(
        r#type: &str,
        init: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let init = Init::new(init, kwargs, "Event", EVENT_KEYS)?;
        Event::untrusted(EvType::parse(r#type), &init)
    }

    /// The event's type, e.g. `"message"`.
    #[getter(r#type)]
    fn get_type<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.ty.to_py(py)
    }

    /// The object the event was dispatched to (the WebSocket), or None before dispatch.
    #[getter]
    fn target(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.target.lock().as_ref().map(|t| t.clone_ref(py))
    }

    /// Legacy alias of `target`.
    #[getter(srcElement)]
    fn src_element(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.target(py)
    }

    /// The object whose listeners are running now; None outside dispatch.
    #[getter(currentTarget)]
    fn current_target(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.current(py)
    }

    /// `Event.NONE` (0) outside dispatch, `Event.AT_TARGET` (2) during it.
    #[getter(eventPhase)]
    fn event_phase(&self) -> u16 {
        u16::from(self.phase.load(Ordering::Acquire))
    }

    /// Always False for WebSocket events.
    #[getter]
    fn bubbles(&self) -> bool {
        self.bubbles
    }

    /// Whether `preventDefault()` has an effect (False for WebSocket events).
    #[getter]
    fn cancelable(&self) -> bool {
        self.cancelable
    }

    /// Always False for WebSocket events.
    #[getter]
    fn composed(&self) -> bool {
        self.composed
    }

    /// True if the event was fired by wsdom, False if it came from `dispatchEvent`.
    #[getter(isTrusted)]
    fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// When the event was created, in milliseconds since the module was loaded.
    #[getter(timeStamp)]
    fn time_stamp(&self) -> f64 {
        self.time_stamp
    }

    /// True if `preventDefault()` was called on a cancelable event.
    #[getter(defaultPrevented)]
    fn default_prevented(&self) -> bool {
        self.canceled()
    }

    /// Legacy: False once the default action was prevented.
    #[getter(returnValue)]
    fn return_value(&self) -> bool {
        !self.canceled()
    }

    /// Legacy: setting False is `preventDefault()`.
    #[setter(returnValue)]
    fn set_return_value(&self, value: bool) {
        if !value {
            self.prevent();
        }
    }

    /// Legacy: True once `stopPropagation()` was called.
    #[getter(cancelBubble)]
    fn cancel_bubble(&self) -> bool {
        self.flags.load(Ordering::Acquire) & STOP_PROPAGATION != 0
    }

    /// Legacy: setting True is `stopPropagation()`.
    #[setter(cancelBubble)]
    fn set_cancel_bubble(&self, value: bool) {
        if value {
            self.update(|f| f | STOP_PROPAGATION);
        }
    }

    /// Stops propagation to other objects (WebSocket events do not propagate).
    #[pyo3(name = "stopPropagation")]
    fn stop_propagation(&self) {
        self.update(|f| f | STOP_PROPAGATION);
    }

    /// Stops propagation, and skips the listeners of this target not yet called.
    #[pyo3(name = "stopImmediatePropagation")]
    fn stop_immediate_propagation(&self) {
        self.update(|f| f | STOP_PROPAGATION | STOP_IMMEDIATE);
    }

    /// Cancels the event if it is cancelable and the listener is not passive.
    #[pyo3(name = "preventDefault")]
    fn prevent_default(&self) {
        self.prevent();
    }

    /// `[currentTarget]` during dispatch, `[]` otherwise.
    #[pyo3(name = "composedPath")]
    fn composed_path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.current(py))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!(
            "<{} type={:?}>",
            slf.get_type().qualname()?,
            slf.get().ty.as_str()
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(t) = self.target.try_lock() {
            visit.call(t.as_ref())?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let t = self.target.lock().take();
        drop(t);
    }
}

/// `MessageEvent`: a message received by a WebSocket.
///
/// `data` is a `str` for a text message; for a binary one, a `Blob` or (with
/// `binaryType = "arraybuffer"`) a read-only `memoryview` of the bytes.
#[pyclass(module = "wsdom", extends = Event, subclass, frozen)]
pub struct MessageEvent {
    /// The message: `str` for text; `Blob` or `memoryview` for binary (see `binaryType`).
    /// (A plain member, read by the interpreter without a call into the extension.)
    #[pyo3(get)]
    data: Py<PyAny>,
    /// The origin of the WebSocket's URL, e.g. `"ws://example.com:8080"`.
    #[pyo3(get)]
    origin: Py<PyString>,
    last_event_id: String,
    source: Option<Py<PyAny>>,
    ports: Option<Py<PyTuple>>,
}

/// The members of a `MessageEvent` init dictionary.
const MESSAGE_KEYS: &[&str] = &[
    "bubbles",
    "cancelable",
    "composed",
    "data",
    "origin",
    "lastEventId",
    "source",
    "ports",
];

#[pymethods]
impl MessageEvent {
    #[new]
    #[pyo3(signature = (r#type, init = None, **kwargs))]
    fn py_new(
        py: Python<'_>,
        r#type: &str,
        init: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let init = Init::new(init, kwargs, "MessageEvent", MESSAGE_KEYS)?;
        let ports = match init.get("ports")? {
            Some(p) if !p.is_none() => {
                let items: Vec<Bound<'_, PyAny>> = p.try_iter()?.collect::<PyResult<_>>()?;
                Some(PyTuple::new(py, items)?.unbind())
            }
            _ => None,
        };
        let event = Event::untrusted(EvType::parse(r#type), &init)?;
        Ok(PyClassInitializer::from(event).add_subclass(MessageEvent {
            data: init.object("data")?.unwrap_or_else(|| py.None()),
            origin: PyString::new(py, &init.string("origin")?).unbind(),
            last_event_id: init.string("lastEventId")?,
            source: init.object("source")?,
            ports,
        }))
    }

    /// Always `""` for WebSocket messages.
    #[getter(lastEventId)]
    fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Always None for WebSocket messages.
    #[getter]
    fn source(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source.as_ref().map(|s| s.clone_ref(py))
    }

    /// Always `()` for WebSocket messages.
    #[getter]
    fn ports<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        match &self.ports {
            Some(p) => p.bind(py).clone(),
            None => PyTuple::empty(py),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.data)?;
        visit.call(self.source.as_ref())?;
        visit.call(self.ports.as_ref())?;
        Ok(())
    }
}

/// The members of a `CloseEvent` init dictionary.
const CLOSE_KEYS: &[&str] = &[
    "bubbles",
    "cancelable",
    "composed",
    "wasClean",
    "code",
    "reason",
];

/// `CloseEvent`: the last event of every WebSocket.
#[pyclass(module = "wsdom", extends = Event, subclass, frozen)]
pub struct CloseEvent {
    was_clean: bool,
    code: u16,
    reason: String,
}

#[pymethods]
impl CloseEvent {
    #[new]
    #[pyo3(signature = (r#type, init = None, **kwargs))]
    fn py_new(
        r#type: &str,
        init: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let init = Init::new(init, kwargs, "CloseEvent", CLOSE_KEYS)?;
        let code = init.get("code")?.map_or(Ok(0), |c| c.extract::<u16>())?;
        let event = Event::untrusted(EvType::parse(r#type), &init)?;
        Ok(PyClassInitializer::from(event).add_subclass(CloseEvent {
            was_clean: init.flag("wasClean")?,
            code,
            reason: init.string("reason")?,
        }))
    }

    /// True if the closing handshake completed.
    #[getter(wasClean)]
    fn was_clean(&self) -> bool {
        self.was_clean
    }

    /// The close code: the server's, 1005 if its Close frame had none, 1006 if the
    /// connection was lost or failed.
    #[getter]
    fn code(&self) -> u16 {
        self.code
    }

    /// The close reason sent by the server, or `""`.
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }
}

/// The members of an `ErrorEvent` init dictionary.
const ERROR_KEYS: &[&str] = &[
    "bubbles",
    "cancelable",
    "composed",
    "message",
    "filename",
    "lineno",
    "colno",
    "error",
];

/// `ErrorEvent`: the `error` event of a WebSocket. The browser fires a plain `Event`; wsdom
/// fires this subclass, whose `message` says what went wrong (for logs).
#[pyclass(module = "wsdom", extends = Event, subclass, frozen)]
pub struct ErrorEvent {
    message: String,
    filename: String,
    lineno: u32,
    colno: u32,
    error: Option<Py<PyAny>>,
}

#[pymethods]
impl ErrorEvent {
    #[new]
    #[pyo3(signature = (r#type, init = None, **kwargs))]
    fn py_new(
        r#type: &str,
        init: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let init = Init::new(init, kwargs, "ErrorEvent", ERROR_KEYS)?;
        let number =
            |name: &str| -> PyResult<u32> { init.get(name)?.map_or(Ok(0), |v| v.extract::<u32>()) };
        let event = Event::untrusted(EvType::parse(r#type), &init)?;
        Ok(PyClassInitializer::from(event).add_subclass(ErrorEvent {
            message: init.string("message")?,
            filename: init.string("filename")?,
            lineno: number("lineno")?,
            colno: number("colno")?,
            error: init.object("error")?,
        }))
    }

    /// What went wrong, e.g. `"TLS handshake with localhost failed: ..."`.
    #[getter]
    fn message(&self) -> &str {
        &self.message
    }

    /// Always `""` for WebSocket errors.
    #[getter]
    fn filename(&self) -> &str {
        &self.filename
    }

    /// Always 0 for WebSocket errors.
    #[getter]
    fn lineno(&self) -> u32 {
        self.lineno
    }

    /// Always 0 for WebSocket errors.
    #[getter]
    fn colno(&self) -> u32 {
        self.colno
    }

    /// Always None for WebSocket errors.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.error.as_ref().map(|e| e.clone_ref(py))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self.error.as_ref())?;
        Ok(())
    }
}

/// A trusted `Event` of type `ty`, ready to be dispatched at `target`.
pub(crate) fn plain<'py>(
    py: Python<'py>,
    ty: EvType,
    target: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(Bound::new(py, Event::trusted(ty, target))?.into_any())
}

/// A trusted `MessageEvent`, ready to be dispatched at `target`.
pub(crate) fn message<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    data: Bound<'py, PyAny>,
    origin: Py<PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    let init = PyClassInitializer::from(Event::trusted(EvType::Message, target)).add_subclass(
        MessageEvent {
            data: data.unbind(),
            origin,
            last_event_id: String::new(),
            source: None,
            ports: None,
        },
    );
    Ok(Bound::new(py, init)?.into_any())
}

/// A trusted `CloseEvent`, ready to be dispatched at `target`.
pub(crate) fn close<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    code: u16,
    reason: String,
    was_clean: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let init =
        PyClassInitializer::from(Event::trusted(EvType::Close, target)).add_subclass(CloseEvent {
            was_clean,
            code,
            reason,
        });
    Ok(Bound::new(py, init)?.into_any())
}

/// A trusted `ErrorEvent` with the diagnostic `message`, ready to be dispatched at `target`.
pub(crate) fn error<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    message: String,
) -> PyResult<Bound<'py, PyAny>> {
    let init =
        PyClassInitializer::from(Event::trusted(EvType::Error, target)).add_subclass(ErrorEvent {
            message,
            filename: String::new(),
            lineno: 0,
            colno: 0,
            error: None,
        });
    Ok(Bound::new(py, init)?.into_any())
}
