//! The GIL on wsdom's I/O threads.
//!
//! A socket's handler runs on the core I/O thread that reads it (thread mode), so a message
//! reaches the Python callback without crossing threads. Two things keep the GIL cheap there:
//! the thread keeps one Python thread state for its whole life, and it takes the GIL once for
//! a burst of events rather than once per event.

use std::cell::Cell;

thread_local! {
    /// This thread is a core I/O thread that keeps a Python thread state.
    static IO_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The GIL state taken by this I/O thread for the current batch of events.
    static BATCH: Cell<Option<pyo3::ffi::PyGILState_STATE>> = const { Cell::new(None) };
}

/// True on a core I/O thread that has run handlers.
pub(crate) fn on_io_thread() -> bool {
    IO_THREAD.with(Cell::get)
}

/// Prepares the calling I/O thread to run a handler: a kept thread state, and the GIL held
/// for the current batch. Only called while the interpreter is not finalizing (the exit hook
/// detaches every handler first).
pub(crate) fn enter_io_thread() {
    keep_thread_state();
    hold_gil_for_batch();
}

/// In a forked child: the flags of the forking thread start afresh.
pub(crate) fn forget_io_thread() {
    IO_THREAD.with(|k| k.set(false));
    BATCH.with(|b| b.set(None));
}

/// Gives the calling I/O thread a Python thread state for its whole life, so that taking the
/// GIL for an event is a plain lock acquisition rather than the creation and destruction of
/// a thread state each time (what `PyGILState_Ensure`/`Release` do on a foreign thread).
fn keep_thread_state() {
    IO_THREAD.with(|kept| {
        if !kept.get() {
            kept.set(true);
            // SAFETY: the interpreter is initialised (this module is loaded) and not finalizing
            // (checked by the caller; the exit hook detaches all handlers before finalization).
            // Ensure creates this thread's state and takes the GIL; SaveThread releases the GIL
            // and keeps the state, which later PyGILState_Ensure calls reuse.
            unsafe {
                pyo3::ffi::PyGILState_Ensure();
                pyo3::ffi::PyEval_SaveThread();
            }
        }
    });
}

/// Takes the GIL for the events this I/O thread handles until its event loop runs out of
/// ready work: the GIL is released by a task queued behind the tasks ready now, which runs
/// before the loop waits for I/O. A burst of messages (one read can hold hundreds) then costs
/// one GIL acquisition instead of one per message. Python threads still get the GIL at every
/// round of the loop, and from inside handlers at every switch interval.
fn hold_gil_for_batch() {
    if BATCH.with(Cell::get).is_some() {
        return;
    }
    let Ok(io_loop) = tokio::runtime::Handle::try_current() else {
        return;
    };
    // SAFETY: as in `keep_thread_state`; released by `end_batch` on this same thread.
    let state = unsafe { pyo3::ffi::PyGILState_Ensure() };
    BATCH.with(|b| b.set(Some(state)));
    io_loop.spawn(async { end_batch() });
}

/// Releases the GIL taken by [`hold_gil_for_batch`].
fn end_batch() {
    if let Some(state) = BATCH.with(Cell::take) {
        // SAFETY: matches the Ensure of `hold_gil_for_batch`, on the same thread.
        unsafe { pyo3::ffi::PyGILState_Release(state) };
    }
}
