//! asyncio integration: one core [`EventQueue`] per running event loop.
//!
//! A WebSocket created while an asyncio loop runs in the current thread sends its events to
//! that loop's queue. The queue's eventfd is registered with `loop.add_reader`, so the loop
//! runs the handlers on its own thread, between its other callbacks.

use crate::listeners;
use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::thread::ThreadId;
use std::time::Duration;
use wsdom_core::EventQueue;

/// The event queue of one asyncio loop; its `_drain` method is the loop's reader callback.
#[pyclass(module = "wsdom._wsdom", frozen)]
pub(crate) struct LoopQueue {
    queue: EventQueue,
}

#[pymethods]
impl LoopQueue {
    /// The descriptor that is readable while events wait.
    fn fileno(&self) -> i32 {
        self.queue.fd()
    }

    /// Runs the handlers of the events waiting now. A KeyboardInterrupt or SystemExit raised
    /// by a handler is raised here, after the batch, into the loop.
    fn _drain(&self) -> PyResult<()> {
        crate::events::stamp_batch(|| self.queue.dispatch(Some(Duration::ZERO)));
        match listeners::take_deferred() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// `asyncio._get_running_loop`.
static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `weakref.WeakKeyDictionary()` from loop to its [`LoopQueue`].
static QUEUES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// How a socket is bound to the asyncio loop that was running when it was created.
pub(crate) struct LoopBinding {
    /// The loop's event queue.
    pub(crate) queue: EventQueue,
    /// The loop's thread.
    pub(crate) thread: ThreadId,
    /// A weak reference to the loop (None if the loop does not support weak references).
    event_loop: Option<Py<PyAny>>,
}

impl LoopBinding {
    /// True while the loop is running (or if that cannot be known).
    pub(crate) fn is_running(&self, py: Python<'_>) -> bool {
        let Some(weak) = &self.event_loop else {
            return true;
        };
        match weak.call0(py) {
            Ok(l) if l.is_none(py) => false,
            Ok(l) => l
                .call_method0(py, "is_running")
                .and_then(|r| r.is_truthy(py))
                .unwrap_or(true),
            Err(_) => true,
        }
    }
}

/// The binding to the asyncio loop running in this thread, if a loop runs.
pub(crate) fn for_running_loop(py: Python<'_>) -> PyResult<Option<LoopBinding>> {
    let get = GET_RUNNING_LOOP.get_or_try_init(py, || {
        py.import("asyncio")?
            .getattr("_get_running_loop")
            .map(Bound::unbind)
    })?;
    let event_loop = get.call0(py)?.into_bound(py);
    if event_loop.is_none() {
        return Ok(None);
    }
    let queues = QUEUES
        .get_or_try_init(py, || {
            py.import("weakref")?
                .getattr("WeakKeyDictionary")?
                .call0()
                .map(Bound::unbind)
        })?
        .bind(py);
    let thread = std::thread::current().id();
    let weak = py
        .import("weakref")?
        .getattr("ref")?
        .call1((&event_loop,))
        .ok()
        .map(Bound::unbind);
    let existing = queues.call_method1("get", (&event_loop,))?;
    if let Ok(q) = existing.cast::<LoopQueue>() {
        return Ok(Some(LoopBinding {
            queue: q.get().queue.clone(),
            thread,
            event_loop: weak,
        }));
    }
    let queue = Bound::new(
        py,
        LoopQueue {
            queue: EventQueue::new()?,
        },
    )?;
    match event_loop.call_method1(
        "add_reader",
        (queue.get().fileno(), queue.getattr("_drain")?),
    ) {
        Ok(_) => {}
        // A loop without add_reader: dispatch on the I/O thread instead.
        Err(e) if e.is_instance_of::<PyNotImplementedError>(py) => return Ok(None),
        Err(e) => return Err(e),
    }
    queues.set_item(&event_loop, &queue)?;
    Ok(Some(LoopBinding {
        queue: queue.get().queue.clone(),
        thread,
        event_loop: weak,
    }))
}

/// In a forked child: forget the parent's loops (their queues are shared with the parent).
pub(crate) fn after_fork(py: Python<'_>) {
    if let Some(q) = QUEUES.get(py) {
        let _ = q.bind(py).call_method0("clear");
    }
}
