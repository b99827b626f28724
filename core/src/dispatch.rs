//! Event dispatch: the browser's "queue a task" for one socket.
//!
//! The I/O task emits raw events. Dispatching one (on the I/O thread, or on the thread that
//! drains the socket's [`crate::EventQueue`]) first applies its state change, as the
//! standard's task does, then calls the handler. Events wait in the socket until a handler is
//! set, so none is lost to a handler attached late.

use crate::event::{CloseEvent, Event, EventHandler, Message};
use crate::socket::{ReadyState, Socket, WebSocket};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

thread_local! {
    /// How many handler calls are running on this thread.
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// Marks this thread as running a handler until dropped (also when the handler panics).
struct HandlerScope;

impl HandlerScope {
    fn enter() -> HandlerScope {
        IN_HANDLER.with(|n| n.set(n.get() + 1));
        HandlerScope
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        IN_HANDLER.with(|n| n.set(n.get() - 1));
    }
}

/// A process-unique number for the current thread (cheaper than `thread::current().id()`).
fn thread_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// True while this thread runs an event handler.
pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(|n| n.get() > 0)
}

/// What the I/O task reports, before the state changes that dispatch applies.
#[derive(Debug)]
pub(crate) enum RawEvent {
    /// The handshake succeeded.
    Open {
        protocol: String,
        extensions: String,
    },
    /// A message arrived.
    Message(Message),
    /// The server started the closing handshake (readyState becomes CLOSING, no event).
    Closing,
    /// The connection failed; a `Close` follows.
    Error(String),
    /// The connection is closed.
    Close(CloseEvent),
}

/// A unit of work in an [`crate::EventQueue`].
pub(crate) enum Task {
    /// Dispatch one event of a socket.
    Event(Arc<Socket>, RawEvent),
    /// Dispatch the events a socket kept while it had no handler.
    Flush(Arc<Socket>),
}

impl Task {
    pub(crate) fn run(self) {
        match self {
            Task::Event(socket, event) => socket.deliver(event),
            Task::Flush(socket) => socket.flush_pending(),
        }
    }
}

/// The handler of one socket and the events waiting for it.
#[derive(Default)]
pub(crate) struct Slot {
    handler: Option<Arc<dyn EventHandler>>,
    pending: VecDeque<RawEvent>,
    /// `detach_handler` was called: drop everything from now on.
    detached: bool,
}

/// Per-socket dispatch state.
#[derive(Default)]
pub(crate) struct Dispatch {
    slot: Mutex<Slot>,
    /// The thread number running the handler right now (0: none).
    running_on: AtomicU64,
    /// Threads waiting in `detach_handler` for the running handler to return.
    waiting: AtomicU32,
    idle: Condvar,
}

/// The events the I/O task emits from one read. With inline dispatch it holds the handler
/// taken when the batch started, so that each event need not take its own reference.
pub(crate) struct Batch {
    handler: Option<Arc<dyn EventHandler>>,
}

impl Batch {
    /// A batch without a known handler (events emitted one at a time).
    pub(crate) const NONE: Batch = Batch { handler: None };
}

impl Socket {
    /// Called by the I/O task: dispatch now (inline) or through the socket's queue.
    pub(crate) fn emit(self: &Arc<Self>, event: RawEvent) {
        self.emit_in(&Batch::NONE, event);
    }

    /// As [`Socket::emit`], for an event of `batch`.
    pub(crate) fn emit_in(self: &Arc<Self>, batch: &Batch, event: RawEvent) {
        match &self.queue {
            Some(queue) => queue.push(Task::Event(self.clone(), event)),
            None => self.deliver_with(event, batch.handler.as_ref()),
        }
    }

    /// Runs `f` (which emits events of the batch it is given) inside the handler's batch,
    /// when events are dispatched inline; with a queue the batch belongs to the queue's
    /// consumer.
    pub(crate) fn in_batch<R>(self: &Arc<Self>, f: impl FnOnce(&Batch) -> R) -> R {
        let handler = match self.queue {
            Some(_) => None,
            None => self.dispatch.slot.lock().handler.clone(),
        };
        let Some(handler) = handler else {
            return f(&Batch::NONE);
        };
        let batch = Batch {
            handler: Some(handler.clone()),
        };
        let mut f = Some(f);
        let mut result = None;
        handler.batch(&mut || result = f.take().map(|f| f(&batch)));
        match result {
            Some(r) => r,
            // A batch hook that did not run its dispatch function: run it now.
            None => (f.take().expect("not run yet"))(&batch),
        }
    }

    /// Dispatches one event on the current thread, or keeps it until a handler is set.
    pub(crate) fn deliver(self: &Arc<Self>, event: RawEvent) {
        self.deliver_with(event, None);
    }

    /// As [`Socket::deliver`]; `known` is a reference to the handler that the caller
    /// already holds, if any, used instead of taking a new one when it is still the current.
    fn deliver_with(self: &Arc<Self>, event: RawEvent, known: Option<&Arc<dyn EventHandler>>) {
        let mut slot = self.dispatch.slot.lock();
        if slot.detached {
            return;
        }
        if slot.handler.is_none() || !slot.pending.is_empty() {
            slot.pending.push_back(event);
            return;
        }
        self.run_event(slot, event, known);
    }

    /// Dispatches the events kept while there was no handler.
    pub(crate) fn flush_pending(self: &Arc<Self>) {
        loop {
            let mut slot = self.dispatch.slot.lock();
            if slot.handler.is_none() {
                return;
            }
            let Some(event) = slot.pending.pop_front() else {
                return;
            };
            self.run_event(slot, event, None);
        }
    }

    /// Applies the event's state change, then calls the handler if the event is surfaced.
    /// Takes the slot's lock (held by the caller) and releases it before the handler runs,
    /// so one event costs one lock (and no new reference to the handler if `known` is it).
    fn run_event(
        self: &Arc<Self>,
        slot: MutexGuard<'_, Slot>,
        event: RawEvent,
        known: Option<&Arc<dyn EventHandler>>,
    ) {
        // A new task: the event loop reached step 1, so bufferedAmount catches up.
        self.outbox.apply_credit();
        let surfaced = match event {
            RawEvent::Open {
                protocol,
                extensions,
            } => {
                // Keep readyState monotonic: close() may have run first.
                if !self.transition(ReadyState::Connecting, ReadyState::Open) {
                    return;
                }
                let _ = self.protocol.set(protocol);
                let _ = self.extensions.set(extensions);
                Event::Open
            }
            RawEvent::Message(m) => {
                if self.ready_state() != ReadyState::Open {
                    return;
                }
                Event::Message(m)
            }
            RawEvent::Closing => {
                self.transition(ReadyState::Open, ReadyState::Closing);
                return;
            }
            RawEvent::Error(e) => {
                self.set_state(ReadyState::Closed);
                Event::Error(e)
            }
            RawEvent::Close(c) => {
                self.set_state(ReadyState::Closed);
                Event::Close(c)
            }
        };
        let is_close = matches!(surfaced, Event::Close(_));
        let Some(current) = slot.handler.as_ref() else {
            return;
        };
        let taken;
        let handler: &dyn EventHandler = match known {
            Some(h) if Arc::ptr_eq(h, current) => &**h,
            _ => {
                taken = current.clone();
                &*taken
            }
        };
        // Published by the lock's release below, before `detach_handler` can look.
        self.dispatch
            .running_on
            .store(thread_number(), Ordering::Relaxed);
        drop(slot);
        {
            let _inside = HandlerScope::enter();
            handler.handle_event(WebSocket::borrow(self), surfaced);
        }
        self.dispatch.running_on.store(0, Ordering::SeqCst);
        if is_close {
            // The last event: drop the handler, which may hold the socket (a cycle).
            let mut slot = self.dispatch.slot.lock();
            slot.handler = None;
            slot.detached = true;
        }
        if self.dispatch.waiting.load(Ordering::SeqCst) > 0 {
            let _slot = self.dispatch.slot.lock();
            self.dispatch.idle.notify_all();
        }
    }

    /// Installs the handler and schedules the events that waited for it.
    pub(crate) fn install_handler(self: &Arc<Self>, handler: Arc<dyn EventHandler>) {
        let mut slot = self.dispatch.slot.lock();
        if slot.detached {
            return;
        }
        slot.handler = Some(handler);
        let has_pending = !slot.pending.is_empty();
        drop(slot);
        if has_pending {
            match &self.queue {
                Some(queue) => queue.push(Task::Flush(self.clone())),
                None => {
                    let me = self.clone();
                    self.io.spawn(async move { me.flush_pending() });
                }
            }
        }
    }

    /// Removes the handler for good. On return no handler call is running (except one on the
    /// calling thread, when called from inside the handler) and none will start.
    pub(crate) fn detach_handler(&self) {
        let me = thread_number();
        let mut slot = self.dispatch.slot.lock();
        slot.detached = true;
        slot.handler = None;
        slot.pending.clear();
        self.dispatch.waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            let running = self.dispatch.running_on.load(Ordering::SeqCst);
            if running == 0 || running == me {
                break;
            }
            self.dispatch
                .idle
                .wait_for(&mut slot, std::time::Duration::from_millis(10));
        }
        self.dispatch.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
