//! The bridge from the core's event handler to Python.
//!
//! Each WebSocket has one [`Bridge`], installed as its core handler when the first listener,
//! observer or waiter appears (events wait in the core until then). For every event it takes
//! the GIL once, builds the DOM event and calls the listeners, then wakes the threads blocked
//! in `wait_open`/`wait_closed` and calls the observers (the asyncio helpers).
//!
//! A socket is *pinned* (its Python object is kept alive by the bridge) while it has
//! listeners for events it can still fire, as the browser's garbage collection rules say; an
//! unpinned socket whose Python object is collected is closed. While unpinned, events need no
//! Python at all: the bridge only records them for the waiters, without taking the GIL.
//!
//! In thread mode the handler runs on the core's I/O thread, with no thread hop; the GIL is
//! taken once for a burst of events and given back when the thread parks (see `gil.rs`). At
//! interpreter exit an `atexit` hook detaches every handler (see `lifecycle.rs`), so no I/O
//! thread touches Python during or after finalization.

use crate::events::EvType;
use crate::gil;
use crate::lifecycle::{self, generation, shutting_down};
use crate::listeners::{self, OnError};
use crate::loops::LoopBinding;
use crate::socket::WebSocket;
use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsdom_core::{Event as CoreEvent, EventHandler, WebSocket as CoreWs};

/// How long a blocking wait sleeps between checks for signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Where a socket's handlers run.
pub(crate) enum Mode {
    /// On the core's I/O thread.
    Thread,
    /// On the thread of the asyncio loop that drains the socket's queue.
    Loop(LoopBinding),
}

/// How a blocking wait can proceed on the calling thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitHere {
    /// Sleep until the dispatching thread reports the event.
    Block,
    /// This thread owns the socket's asyncio loop, which no longer runs: dispatch the
    /// socket's queue here while waiting.
    Drain,
    /// This thread is the one that dispatches the socket's events and is busy: waiting here
    /// would never end.
    Deadlock,
}

/// The kind of a core event, for bookkeeping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Message,
    Error,
    Close,
}

impl Kind {
    fn of(event: &CoreEvent) -> Kind {
        match event {
            CoreEvent::Open => Kind::Open,
            CoreEvent::Message(_) => Kind::Message,
            CoreEvent::Error(_) => Kind::Error,
            CoreEvent::Close(_) => Kind::Close,
        }
    }
}

#[derive(Default)]
struct State {
    /// The socket's Python object, while it must stay alive.
    pin: Option<Py<WebSocket>>,
    /// Internal callbacks called after the listeners, with `(event, listeners_called)`.
    observers: Vec<(u64, Py<PyAny>)>,
    next_token: u64,
    /// `open` was dispatched.
    opened: bool,
    /// `close` was dispatched.
    closed: bool,
    /// The handler was detached (interpreter exit): no event will come.
    detached: bool,
}

impl State {
    fn record(&mut self, kind: Kind) {
        match kind {
            Kind::Open => self.opened = true,
            Kind::Close => self.closed = true,
            Kind::Message | Kind::Error => {}
        }
    }

    /// The answer of a wait, once known.
    fn answer(&self, for_close: bool) -> Option<bool> {
        if for_close {
            if self.closed {
                return Some(true);
            }
        } else if self.opened || self.closed {
            return Some(self.opened);
        }
        self.detached.then_some(false)
    }
}

/// The core handler of one socket (see the module documentation).
pub(crate) struct Bridge {
    core: CoreWs,
    mode: Mode,
    generation: u64,
    state: Mutex<State>,
    cond: Condvar,
    installed: AtomicBool,
    /// Mirrors `state.pin.is_some()`, so that an event of an unpinned socket is recognised
    /// without the lock.
    pinned: AtomicBool,
    /// Mirrors `!state.observers.is_empty()`, so that a message needs no second lock.
    observed: AtomicBool,
}

impl Bridge {
    /// A bridge for a new socket, registered for the exit hook.
    pub(crate) fn new(core: CoreWs, mode: Mode) -> Arc<Bridge> {
        let bridge = Arc::new(Bridge {
            core,
            mode,
            generation: generation(),
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            installed: AtomicBool::new(false),
            pinned: AtomicBool::new(false),
            observed: AtomicBool::new(false),
        });
        lifecycle::register(&bridge);
        bridge
    }

    /// The core socket.
    pub(crate) fn core(&self) -> &CoreWs {
        &self.core
    }

    /// True in a forked child for a socket of the parent.
    pub(crate) fn is_foreign(&self) -> bool {
        self.generation != generation()
    }

    /// True for a socket whose events run on an asyncio loop.
    pub(crate) fn is_loop_mode(&self) -> bool {
        matches!(self.mode, Mode::Loop(_))
    }

    /// Sets this bridge as the core handler (once): the events kept so far start to flow.
    pub(crate) fn install(self: &Arc<Self>) {
        if !self.installed.swap(true, Ordering::AcqRel) {
            self.core.set_handler(self.clone());
        }
    }

    /// True once [`Bridge::install`] ran.
    pub(crate) fn is_installed(&self) -> bool {
        self.installed.load(Ordering::Acquire)
    }

    /// Forgets this socket in the exit hook's registry.
    pub(crate) fn unregister(&self) {
        lifecycle::unregister(self.core.id());
    }

    /// At interpreter exit, with the GIL released: closes the socket as a page unload does
    /// (code 1001) and detaches the handler, waiting for a running one.
    pub(crate) fn detach_for_exit(&self) {
        if !self.is_foreign() {
            self.core.go_away();
            self.core.detach_handler();
        }
    }

    /// At interpreter exit, after [`Bridge::detach_for_exit`]: releases the Python objects
    /// and ends the waits.
    pub(crate) fn release_for_exit(&self) {
        let garbage = {
            let mut st = self.state.lock();
            st.detached = true;
            let garbage = (st.pin.take(), std::mem::take(&mut st.observers));
            self.mirror(&st);
            garbage
        };
        self.cond.notify_all();
        drop(garbage);
    }

    /// Pins or unpins `target` (the Python object of this socket): it stays pinned until
    /// `close` is dispatched while observers exist, or while `listens` says that a listener
    /// waits for one of the events the socket can still fire. The phase comes from the
    /// events dispatched so far, not from `readyState`, so that an event already on its way
    /// still finds its listeners.
    pub(crate) fn update_pin(
        &self,
        target: &Bound<'_, WebSocket>,
        listens: impl FnOnce(&[EvType]) -> bool,
    ) {
        const BEFORE_OPEN: &[EvType] =
            &[EvType::Open, EvType::Message, EvType::Error, EvType::Close];
        const AFTER_OPEN: &[EvType] = &[EvType::Message, EvType::Error, EvType::Close];
        let garbage = {
            let mut st = self.state.lock();
            let live = !st.closed && !st.detached;
            let want = live
                && (!st.observers.is_empty()
                    || listens(if st.opened { AFTER_OPEN } else { BEFORE_OPEN }));
            let garbage = if want == st.pin.is_some() {
                None
            } else if want {
                st.pin = Some(target.clone().unbind());
                None
            } else {
                st.pin.take()
            };
            self.mirror(&st);
            garbage
        };
        drop(garbage);
    }

    /// Updates the lock-free mirrors of `st` (called with the lock held, after a change).
    fn mirror(&self, st: &State) {
        self.pinned.store(st.pin.is_some(), Ordering::Release);
        self.observed
            .store(!st.observers.is_empty(), Ordering::Release);
    }

    /// Registers an observer and pins `target`; returns the observer's token and whether
    /// `open` and `close` were already dispatched, atomically with the registration.
    pub(crate) fn observe(
        &self,
        target: &Bound<'_, WebSocket>,
        callback: Py<PyAny>,
    ) -> (u64, bool, bool) {
        let mut st = self.state.lock();
        st.next_token += 1;
        let token = st.next_token;
        let opened = st.opened;
        if st.closed || st.detached {
            drop(st);
            drop(callback);
            return (token, opened, true);
        }
        st.observers.push((token, callback));
        if st.pin.is_none() {
            st.pin = Some(target.clone().unbind());
        }
        self.mirror(&st);
        (token, opened, false)
    }

    /// Removes the observer registered with `token`.
    pub(crate) fn unobserve(&self, token: u64) {
        let removed: Vec<(u64, Py<PyAny>)> = {
            let mut st = self.state.lock();
            let (gone, kept) = std::mem::take(&mut st.observers)
                .into_iter()
                .partition(|(t, _)| *t == token);
            st.observers = kept;
            self.mirror(&st);
            gone
        };
        drop(removed);
    }

    /// Reports the observers to the garbage collector (skipped if the lock is busy).
    pub(crate) fn traverse(
        &self,
        visit: &pyo3::gc::PyVisit<'_>,
    ) -> Result<(), pyo3::PyTraverseError> {
        if let Some(st) = self.state.try_lock() {
            for (_, o) in &st.observers {
                visit.call(o)?;
            }
        }
        Ok(())
    }

    /// Removes all observers (garbage collector `tp_clear`).
    pub(crate) fn clear_observers(&self) {
        let removed = {
            let mut st = self.state.lock();
            let removed = std::mem::take(&mut st.observers);
            self.mirror(&st);
            removed
        };
        drop(removed);
    }

    /// How a blocking wait can proceed here: it would deadlock on the thread that runs this
    /// socket's handlers (a wsdom I/O thread, or the thread of its running asyncio loop).
    pub(crate) fn wait_here(&self, py: Python<'_>) -> WaitHere {
        match &self.mode {
            Mode::Thread if gil::on_io_thread() => WaitHere::Deadlock,
            Mode::Thread => WaitHere::Block,
            Mode::Loop(b) if std::thread::current().id() != b.thread => WaitHere::Block,
            Mode::Loop(b) if b.is_running(py) => WaitHere::Deadlock,
            Mode::Loop(_) => WaitHere::Drain,
        }
    }

    /// Blocks until `open` (or `close`, if `for_close`) is dispatched, with the GIL released,
    /// checking for signals every few milliseconds. Returns False on timeout; a wait for open
    /// also returns False when the socket closed without opening.
    pub(crate) fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        for_close: bool,
        how: WaitHere,
    ) -> PyResult<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let (WaitHere::Drain, Mode::Loop(b)) = (how, &self.mode) {
                if let Some(a) = self.state.lock().answer(for_close) {
                    return Ok(a);
                }
                let mut slice = WAIT_SLICE;
                if let Some(d) = deadline {
                    slice = slice.min(d.saturating_duration_since(Instant::now()));
                }
                py.detach(|| crate::events::stamp_batch(|| b.queue.dispatch(Some(slice))));
                if let Some(err) = listeners::take_deferred() {
                    return Err(err);
                }
                if let Some(a) = self.state.lock().answer(for_close) {
                    return Ok(a);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
                py.check_signals()?;
                continue;
            }
            let answer = py.detach(|| {
                let mut st = self.state.lock();
                let mut end = Instant::now() + WAIT_SLICE;
                if let Some(d) = deadline {
                    end = end.min(d);
                }
                loop {
                    if let Some(a) = st.answer(for_close) {
                        return Some(a);
                    }
                    if self.cond.wait_until(&mut st, end).timed_out() {
                        return st.answer(for_close);
                    }
                }
            });
            if let Some(a) = answer {
                return Ok(a);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }

    /// Records an event that no Python code needs to see.
    fn record_only(&self, kind: Kind) {
        self.state.lock().record(kind);
        self.wake_waiters(kind);
        if kind == Kind::Close {
            self.unregister();
        }
    }

    /// Wakes the blocking waits, which only care about `open` and `close` (waking them for
    /// every message would cost a context switch per message).
    fn wake_waiters(&self, kind: Kind) {
        if matches!(kind, Kind::Open | Kind::Close) {
            self.cond.notify_all();
        }
    }

    fn error_mode(&self) -> OnError {
        match self.mode {
            Mode::Thread => OnError::Report,
            Mode::Loop(_) => OnError::Defer,
        }
    }

    /// Dispatches one event to Python (GIL held).
    fn dispatch(&self, py: Python<'_>, event: CoreEvent, kind: Kind) {
        let pin = self.state.lock().pin.as_ref().map(|p| p.clone_ref(py));
        let Some(target) = pin else {
            // Unpinned since `handle_event` looked (rare): nobody in Python waits for it.
            self.record_only(kind);
            return;
        };
        if kind == Kind::Message && !self.observed.load(Ordering::Acquire) {
            // The common case: a message, with nothing to record and no observer to call.
            return self.dispatch_message(py, target, event);
        }
        let target = target.into_bound(py);
        let mode = self.error_mode();
        let mut listened = 0;
        let event = match WebSocket::make_event(&target, event) {
            Ok(ev) => {
                match listeners::invoke(py, &target, &ev, listeners::Begin::Prepared, mode) {
                    Ok(n) => listened = n,
                    Err(e) => e.write_unraisable(py, Some(target.as_any())),
                }
                Some(ev)
            }
            Err(e) => {
                e.write_unraisable(py, Some(target.as_any()));
                None
            }
        };
        let observers: Vec<Py<PyAny>> = {
            let mut st = self.state.lock();
            st.record(kind);
            st.observers.iter().map(|(_, o)| o.clone_ref(py)).collect()
        };
        self.wake_waiters(kind);
        if let Some(event) = &event {
            for observer in observers {
                let observer = observer.into_bound(py);
                if let Err(e) = observer.call1((event, listened)) {
                    // Raise mode is not used here, so nothing comes back.
                    let _ = listeners::handle_error(py, e, &observer, mode);
                }
            }
        }
        if kind == Kind::Close {
            self.clear_observers();
            self.unregister();
        }
        if kind != Kind::Message {
            WebSocket::refresh_pin(&target);
        }
    }

    /// Dispatches a message of a pinned socket without observers: the event and its
    /// listeners, and nothing else (a message changes no state that waits look at; an
    /// observer added by a listener sees the following messages).
    fn dispatch_message(&self, py: Python<'_>, target: Py<WebSocket>, event: CoreEvent) {
        let target = target.into_bound(py);
        let result = WebSocket::make_event(&target, event).and_then(|ev| {
            listeners::invoke(
                py,
                &target,
                &ev,
                listeners::Begin::Prepared,
                self.error_mode(),
            )
        });
        if let Err(e) = result {
            e.write_unraisable(py, Some(target.as_any()));
        }
    }
}

impl EventHandler for Bridge {
    fn handle_event(&self, _ws: &CoreWs, event: CoreEvent) {
        let kind = Kind::of(&event);
        // After the exit hook ran, events are only recorded: no Python code may run. An
        // unpinned socket has nobody in Python waiting for the event: recorded without the
        // GIL. (A pin that goes away after this check is noticed under the GIL.)
        if !self.pinned.load(Ordering::Acquire) || shutting_down() {
            self.record_only(kind);
            return;
        }
        let thread_mode = matches!(self.mode, Mode::Thread);
        if thread_mode {
            gil::enter_io_thread();
        }
        Python::attach(|py| self.dispatch(py, event, kind));
        if thread_mode {
            gil::after_event();
        }
    }

    /// The messages of one read: the GIL taken by the first event that needs Python is kept
    /// until the I/O thread parks (see `gil.rs`), or given back here if held for long.
    fn batch(&self, dispatch: &mut dyn FnMut()) {
        crate::events::stamp_batch(dispatch);
        if matches!(self.mode, Mode::Thread) {
            gil::end_batch();
        }
    }
}
