//! The EventTarget part of a WebSocket: its event listener list, the `on<type>` event handler
//! attributes, and the DOM's "inner invoke" that calls them for one event.

use crate::events::{EvType, Event};
use crate::socket::WebSocket;
use pyo3::exceptions::PyException;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a listener calls.
pub(crate) enum Callback {
    /// A callable, or an object with a `handleEvent` method.
    Object(Py<PyAny>),
    /// The `on<type>` event handler attribute with this index; its current value is called.
    Handler(usize),
}

/// One entry of the event listener list.
pub(crate) struct Entry {
    ty: EvType,
    callback: Callback,
    capture: bool,
    once: bool,
    passive: bool,
    /// Set when the entry is removed, so dispatches already under way skip it.
    removed: AtomicBool,
}

impl Entry {
    /// A listener added by `addEventListener`.
    pub(crate) fn listener(
        ty: EvType,
        callback: Py<PyAny>,
        capture: bool,
        once: bool,
        passive: bool,
    ) -> Entry {
        Entry {
            ty,
            callback: Callback::Object(callback),
            capture,
            once,
            passive,
            removed: AtomicBool::new(false),
        }
    }

    /// What to call: the callback object, or the current value of the event handler
    /// attribute, read by `handler` (None once the attribute was cleared).
    fn resolve(
        &self,
        py: Python<'_>,
        handler: impl FnOnce(usize) -> Option<Py<PyAny>>,
    ) -> Option<Py<PyAny>> {
        match &self.callback {
            Callback::Object(c) => Some(c.clone_ref(py)),
            Callback::Handler(slot) => handler(*slot),
        }
    }

    fn same(&self, ty: &EvType, callback: *mut pyo3::ffi::PyObject, capture: bool) -> bool {
        self.capture == capture
            && self.ty == *ty
            && matches!(&self.callback, Callback::Object(c) if c.as_ptr() == callback)
    }
}

/// The names of the event handler attributes, by index.
pub(crate) const HANDLER_TYPES: [EvType; 4] =
    [EvType::Open, EvType::Message, EvType::Error, EvType::Close];

/// A WebSocket's listeners. Only touched with the GIL held, and never while calling Python:
/// callers take what they need out of the lock first, and drop removed Python objects only
/// after releasing it.
#[derive(Default)]
pub(crate) struct Listeners {
    /// Copy-on-write, so a dispatch holds a snapshot without copying on every event.
    list: Arc<Vec<Arc<Entry>>>,
    /// The values of `onopen`, `onmessage`, `onerror`, `onclose`.
    handlers: [Option<Py<PyAny>>; 4],
}

/// Python objects taken out of the listener list, to be dropped after the lock is released.
pub(crate) type Garbage = Vec<Arc<Entry>>;

impl Listeners {
    /// Appends `entry` unless an equal listener (type, callback, capture) is present.
    pub(crate) fn add(&mut self, entry: Entry) -> Option<Arc<Entry>> {
        let duplicate = match &entry.callback {
            Callback::Object(c) => self
                .list
                .iter()
                .any(|e| e.same(&entry.ty, c.as_ptr(), entry.capture)),
            Callback::Handler(_) => false,
        };
        let entry = Arc::new(entry);
        if duplicate {
            return Some(entry);
        }
        Arc::make_mut(&mut self.list).push(entry);
        None
    }

    /// Removes the listener equal to (type, callback, capture), if any.
    pub(crate) fn remove(&mut self, ty: &EvType, callback: &Py<PyAny>, capture: bool) -> Garbage {
        let ptr = callback.as_ptr();
        self.remove_where(|e| e.same(ty, ptr, capture))
    }

    fn remove_where(&mut self, pred: impl Fn(&Entry) -> bool) -> Garbage {
        if !self.list.iter().any(|e| pred(e)) {
            return Vec::new();
        }
        let list = Arc::make_mut(&mut self.list);
        let mut garbage = Vec::new();
        list.retain(|e| {
            if pred(e) {
                e.removed.store(true, Ordering::Release);
                garbage.push(e.clone());
                false
            } else {
                true
            }
        });
        garbage
    }

    fn remove_entry(&mut self, entry: &Arc<Entry>) -> Garbage {
        self.remove_where(|e| std::ptr::eq(e, &**entry))
    }

    /// The current value of event handler `slot`.
    pub(crate) fn handler(&self, py: Python<'_>, slot: usize) -> Option<Py<PyAny>> {
        self.handlers[slot].as_ref().map(|h| h.clone_ref(py))
    }

    /// Sets event handler `slot` to `value` (None deactivates it). A handler that becomes
    /// non-null joins the listener list at its end; changing a non-null value keeps its
    /// place. Returns what must be dropped after the lock is released.
    pub(crate) fn set_handler(
        &mut self,
        slot: usize,
        value: Option<Py<PyAny>>,
    ) -> (Option<Py<PyAny>>, Garbage) {
        let was_active = self.handlers[slot].is_some();
        let active = value.is_some();
        let old = std::mem::replace(&mut self.handlers[slot], value);
        let garbage = if was_active && !active {
            self.remove_where(|e| matches!(e.callback, Callback::Handler(s) if s == slot))
        } else {
            Vec::new()
        };
        if active && !was_active {
            Arc::make_mut(&mut self.list).push(Arc::new(Entry {
                ty: HANDLER_TYPES[slot].clone(),
                callback: Callback::Handler(slot),
                capture: false,
                once: false,
                passive: false,
                removed: AtomicBool::new(false),
            }));
        }
        (old, garbage)
    }

    /// The list as it is now; later changes do not affect the snapshot's order.
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<Entry>>> {
        self.list.clone()
    }

    /// True if a listener for one of `types` is present.
    pub(crate) fn listens_to_any(&self, types: &[EvType]) -> bool {
        self.list.iter().any(|e| types.contains(&e.ty))
    }

    /// True if the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Reports every Python object held, for the garbage collector.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for h in self.handlers.iter().flatten() {
            visit.call(h)?;
        }
        for e in self.list.iter() {
            if let Callback::Object(c) = &e.callback {
                visit.call(c)?;
            }
        }
        Ok(())
    }

    /// Empties the list and the handlers (garbage collector `tp_clear`); returns the contents.
    pub(crate) fn take_all(&mut self) -> Listeners {
        for e in self.list.iter() {
            e.removed.store(true, Ordering::Release);
        }
        std::mem::take(self)
    }
}

/// What to do with an exception raised by a listener.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Report everything with `sys.unraisablehook` (listeners on a wsdom I/O thread).
    Report,
    /// Report `Exception`s; keep a `BaseException` such as KeyboardInterrupt for the caller
    /// to raise after the current batch of events (listeners run from an asyncio loop).
    Defer,
    /// Report `Exception`s; raise a `BaseException` at once (`dispatchEvent`).
    Raise,
}

thread_local! {
    /// A BaseException deferred by [`OnError::Defer`], raised by whoever drains the queue.
    static DEFERRED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Takes the exception deferred on this thread, if any.
pub(crate) fn take_deferred() -> Option<PyErr> {
    DEFERRED.with(|d| d.borrow_mut().take())
}

/// Handles an exception from a listener (or observer) `callback` per `mode`; returns it if it
/// must stop the dispatch and be raised.
pub(crate) fn handle_error(
    py: Python<'_>,
    err: PyErr,
    callback: &Bound<'_, PyAny>,
    mode: OnError,
) -> Option<PyErr> {
    if mode != OnError::Report && !err.is_instance_of::<PyException>(py) {
        if mode == OnError::Raise {
            return Some(err);
        }
        let kept = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(err);
                None
            } else {
                Some(err)
            }
        });
        if let Some(err) = kept {
            err.write_unraisable(py, Some(callback));
        }
        return None;
    }
    err.write_unraisable(py, Some(callback));
    None
}

/// Calls a listener's callback: the object itself if callable, else its `handleEvent`.
fn call(callback: &Bound<'_, PyAny>, event: &Bound<'_, PyAny>) -> PyResult<()> {
    if callback.is_callable() {
        call_with(callback, event)?;
    } else {
        let method = callback.getattr(pyo3::intern!(callback.py(), "handleEvent"))?;
        call_with(&method, event)?;
    }
    Ok(())
}

/// `f(arg)`. PyO3's `call1` builds an argument tuple per call under the abi3-py39 API;
/// `PyObject_CallFunctionObjArgs` (stable ABI) passes the argument on the C stack by vectorcall.
fn call_with<'py>(f: &Bound<'py, PyAny>, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: both pointers are live objects; the argument list is NULL-terminated.
    unsafe {
        let result = pyo3::ffi::PyObject_CallFunctionObjArgs(
            f.as_ptr(),
            arg.as_ptr(),
            std::ptr::null_mut::<pyo3::ffi::PyObject>(),
        );
        Bound::from_owned_ptr_or_err(f.py(), result)
    }
}

/// How an event starts its dispatch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Fired by the socket: created already targeted (see `events::message`).
    Prepared,
    /// From `dispatchEvent`: `isTrusted` becomes False.
    Untrusted,
}

/// Dispatches `event` at `target` (the DOM's dispatch, for a target without parents): calls
/// each listener of the event's type present when dispatch starts and not removed since, in
/// order, until one calls `stopImmediatePropagation()`. Returns the number of listeners
/// called, or the exception that `mode` says to raise.
pub(crate) fn invoke(
    py: Python<'_>,
    target: &Bound<'_, WebSocket>,
    event: &Bound<'_, PyAny>,
    begin: Begin,
    mode: OnError,
) -> PyResult<usize> {
    let ev: &Bound<'_, Event> = event.cast()?;
    let ev = ev.get();
    if begin == Begin::Untrusted {
        ev.begin_untrusted(target.as_any());
    }
    let result = invoke_listeners(py, target, event, ev, mode);
    ev.end();
    result
}

/// What a dispatch calls. The common case, one listener for the event's type (say
/// `ws.onmessage = f` beside handlers of other types), needs no snapshot of the list: its
/// callback is read under the same lock acquisition.
enum Plan {
    /// No listener for the type.
    Nothing,
    /// The one listener for the type: its callback and whether it is passive.
    One(Py<PyAny>, bool),
    /// Several listeners, or a `once` one: the general path, over a snapshot.
    Each(Arc<Vec<Arc<Entry>>>),
}

impl Listeners {
    /// The plan for an event of type `ty`.
    fn plan(&self, py: Python<'_>, ty: &EvType) -> Plan {
        let mut of_type = self.list.iter().filter(|e| e.ty == *ty);
        match (of_type.next(), of_type.next()) {
            (None, _) => Plan::Nothing,
            (Some(only), None) if !only.once => {
                match only.resolve(py, |slot| self.handler(py, slot)) {
                    Some(callback) => Plan::One(callback, only.passive),
                    None => Plan::Nothing,
                }
            }
            _ => Plan::Each(self.snapshot()),
        }
    }
}

fn invoke_listeners(
    py: Python<'_>,
    target: &Bound<'_, WebSocket>,
    event: &Bound<'_, PyAny>,
    ev: &Event,
    mode: OnError,
) -> PyResult<usize> {
    let lock = target.get().listeners();
    let plan = lock.lock().plan(py, ev.ty());
    let snapshot = match plan {
        Plan::Nothing => return Ok(0),
        Plan::One(callback, passive) => {
            let callback = callback.into_bound(py);
            return call_one(py, &callback, event, ev, passive, mode).map(|()| 1);
        }
        Plan::Each(snapshot) => snapshot,
    };
    let mut called = 0;
    for entry in snapshot.iter() {
        if entry.ty != *ev.ty() || entry.removed.load(Ordering::Acquire) {
            continue;
        }
        if entry.once {
            let garbage = lock.lock().remove_entry(entry);
            drop(garbage);
        }
        let Some(callback) = entry.resolve(py, |slot| lock.lock().handler(py, slot)) else {
            continue;
        };
        let callback = callback.into_bound(py);
        called += 1;
        call_one(py, &callback, event, ev, entry.passive, mode)?;
        if ev.immediate_stopped() {
            break;
        }
    }
    Ok(called)
}

/// Calls one listener's callback, with the passive flag set around it if `passive`; an
/// exception is handled per `mode`, and returned only if it must be raised.
fn call_one(
    py: Python<'_>,
    callback: &Bound<'_, PyAny>,
    event: &Bound<'_, PyAny>,
    ev: &Event,
    passive: bool,
    mode: OnError,
) -> PyResult<()> {
    if passive {
        ev.set_passive(true);
    }
    let outcome = call(callback, event);
    if passive {
        ev.set_passive(false);
    }
    match outcome {
        Err(err) => handle_error(py, err, callback, mode).map_or(Ok(()), Err),
        Ok(()) => Ok(()),
    }
}
