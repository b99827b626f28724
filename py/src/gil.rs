//! The GIL on wsdom's I/O threads.
//!
//! A socket's handler runs on the core I/O thread that reads it (thread mode), so a message
//! reaches the Python callback without crossing threads. Three things keep the GIL cheap there:
//!
//! * the thread keeps one Python thread state for its whole life, so taking the GIL is a plain
//!   lock acquisition rather than the creation and destruction of a thread state each time;
//! * the GIL, once taken for an event, is kept while the thread has more work ready: a burst
//!   of messages (one read can hold hundreds, and a flood keeps the thread busy read after
//!   read) costs one acquisition, not one per message;
//! * it is given back by the core's park hook ([`wsdom_core::set_io_park_hook`]), which each
//!   I/O thread calls right before it blocks waiting for I/O or timers, and also at the end
//!   of a read batch once it has been held for twice the interpreter's switch interval (see
//!   [`hold_limit`]), so that Python threads get it even while the I/O thread never runs out
//!   of work. (Inside a Python handler the interpreter also hands it over at every switch
//!   interval, as for any Python thread.)
//!
//! The hook is registered when the module is imported, before any socket can exist; it stays
//! registered for the life of the process, and a forked child's new I/O threads use it too.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an I/O thread that never runs out of work keeps the GIL between read batches, in
/// microseconds: twice `sys.getswitchinterval()` as read at import (5 ms by default).
static HOLD_LIMIT_US: AtomicU64 = AtomicU64::new(10_000);

/// See [`HOLD_LIMIT_US`]. Why not shorter: a thread waiting for the GIL asks the holder to drop
/// it only after a whole switch interval in which the GIL did not change hands, and giving
/// the GIL back and taking it again at once counts as a change. An I/O thread that did that
/// more often than every switch interval would keep the waiting thread out for the whole
/// flood; holding for two intervals leaves a quiet interval in any two, so the waiter asks,
/// and the next release hands the GIL over.
fn hold_limit() -> Duration {
    Duration::from_micros(HOLD_LIMIT_US.load(Ordering::Relaxed))
}

/// Reads the switch interval for [`hold_limit`] (clamped to 1-100 ms). Called at import.
pub(crate) fn read_switch_interval(py: pyo3::Python<'_>) {
    use pyo3::types::PyAnyMethods;
    let interval = py
        .import("sys")
        .and_then(|sys| sys.call_method0("getswitchinterval"))
        .and_then(|v| v.extract::<f64>());
    if let Ok(seconds) = interval {
        let us = (2e6 * seconds).clamp(1_000.0, 100_000.0);
        HOLD_LIMIT_US.store(us as u64, Ordering::Relaxed);
    }
}

/// The park hook is registered: the GIL can be kept between events.
static HOOKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread is a core I/O thread that keeps a Python thread state.
    static IO_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The GIL state taken by this I/O thread, and when, until the thread parks.
    static HELD: Cell<Option<(pyo3::ffi::PyGILState_STATE, Instant)>> = const { Cell::new(None) };
}

/// Registers the park hook with the core. Called once, at module import (before the I/O
/// runtime can start); if that were too late, the GIL is given back after every event.
pub(crate) fn install_park_hook() {
    if wsdom_core::set_io_park_hook(on_park) {
        HOOKED.store(true, Ordering::Release);
    }
}

/// True on a core I/O thread that has run handlers.
pub(crate) fn on_io_thread() -> bool {
    IO_THREAD.with(Cell::get)
}

/// Prepares the calling I/O thread to run a handler: a kept thread state, and the GIL held
/// until the thread parks. Only called while the interpreter is not finalizing (the exit
/// hook detaches every handler first).
pub(crate) fn enter_io_thread() {
    if HELD.with(Cell::get).is_some() {
        return;
    }
    keep_thread_state();
    // SAFETY: as in `keep_thread_state`; released by `release` on this same thread.
    let state = unsafe { pyo3::ffi::PyGILState_Ensure() };
    HELD.with(|h| h.set(Some((state, Instant::now()))));
}

/// The GIL may be kept after an event: the park hook will give it back, and the interpreter
/// is not exiting (the exit hook waits for it; it must not wait for the thread to park).
fn may_keep() -> bool {
    HOOKED.load(Ordering::Relaxed) && !crate::lifecycle::shutting_down()
}

/// After each event: gives the GIL back unless it may be kept (see [`may_keep`]).
pub(crate) fn after_event() {
    if !may_keep() {
        release();
    }
}

/// At the end of a read batch: gives the GIL back if it has been held for [`hold_limit`]
/// (the thread may have more ready work and not park for a while), or unless it may be kept.
pub(crate) fn end_batch() {
    let overdue = HELD
        .with(Cell::get)
        .is_some_and(|(_, since)| !may_keep() || since.elapsed() >= hold_limit());
    if overdue {
        release();
    }
}

/// In a forked child: the flags of the forking thread start afresh.
pub(crate) fn forget_io_thread() {
    IO_THREAD.with(|k| k.set(false));
    HELD.with(|h| h.set(None));
}

/// The core's park hook: runs on an I/O thread right before it blocks. Only releases a GIL
/// this thread took: no other Python C-API call, so it is safe on any thread, after
/// `fork()` (a child's new I/O threads start with nothing held) and during finalization (no
/// I/O thread holds the GIL by then: once the exit hook started, each gives it back after
/// its current event, and the exit hook cannot finish without it).
fn on_park() {
    release();
}

/// Releases the GIL taken by [`enter_io_thread`], if this thread holds it.
fn release() {
    if let Some((state, _)) = HELD.with(Cell::take) {
        // SAFETY: matches the Ensure of `enter_io_thread`, on the same thread. The interpreter
        // still exists: the exit hook runs while this thread holds no GIL or gives it back
        // before the main thread can go on to finalize (it needs the GIL for that).
        unsafe { pyo3::ffi::PyGILState_Release(state) };
    }
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
