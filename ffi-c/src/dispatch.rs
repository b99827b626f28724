//! Where callbacks run: the library's event thread (default) or the caller's own loop
//! (manual dispatch with `ws_event_fd` and `ws_dispatch`).

use crate::panic::{fail, ffi_panic_boundary, try_ffi};
use crate::result::{ws_result, Error};
use std::ffi::c_int;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wsdom_core::EventQueue;

/// The process's manual-dispatch queue, created on first use.
static QUEUE: OnceLock<EventQueue> = OnceLock::new();
/// Serializes `ws_dispatch` callers, so callbacks still run one at a time and in order.
static DISPATCHING: Mutex<()> = Mutex::new(());

/// The manual-dispatch queue (created on first call).
pub(crate) fn manual_queue() -> Result<EventQueue, Error> {
    if let Some(q) = QUEUE.get() {
        return Ok(q.clone());
    }
    let queue = EventQueue::new().map_err(|e| {
        Error::new(
            ws_result::WS_IO_ERROR,
            format!("cannot create the event descriptor for manual dispatch: {e}"),
        )
    })?;
    // If another thread won the race, its queue is used and ours is dropped.
    Ok(QUEUE.get_or_init(|| queue).clone())
}

/// Stores in `*fd` the descriptor of the manual-dispatch queue: it polls readable (POLLIN)
/// while events of sockets created with `ws_options_set_manual_dispatch(opts, true)` wait.
/// Add it to poll/epoll/select (level-triggered) or libuv, and call `ws_dispatch(0, NULL)` when
/// it is readable. The descriptor belongs to the library and lives as long as the process: do
/// not read, write or close it. Creates the queue if needed (the same descriptor every call).
///
/// Errors: `WS_NULL_ARGUMENT` (fd is NULL), `WS_IO_ERROR` (the descriptor could not be
/// created; `*fd` is then -1).
///
/// Thread: any.
///
/// # Safety
/// `fd` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ws_event_fd(fd: *mut c_int) -> ws_result {
    ffi_panic_boundary! {
        if fd.is_null() {
            return fail(Error::null("fd"));
        }
        // SAFETY: writable per the contract.
        unsafe { *fd = -1 };
        let queue = try_ffi!(manual_queue());
        // SAFETY: as above.
        unsafe { *fd = queue.fd() };
        ws_result::WS_OK
    }
}

/// Runs the callbacks of the waiting events of manual-dispatch sockets, in order, on the
/// calling thread; stores their number in `*dispatched` (if not NULL).
///
/// If no event waits, waits for one up to `timeout_ms` milliseconds: 0 does not wait (for use
/// after poll() reported `ws_event_fd()` readable), a negative value waits without limit.
/// Events queued by the callbacks themselves wait for the next call, so one call is bounded.
/// Calls from several threads are serialized: callbacks never run two at a time.
///
/// Errors: `WS_INVALID_STATE_ERROR` (called from inside a callback: dispatch does not nest),
/// `WS_IO_ERROR` (the queue could not be created).
///
/// Thread: any thread outside a callback; usually the one thread running the program's loop.
///
/// # Safety
/// `dispatched` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ws_dispatch(timeout_ms: c_int, dispatched: *mut usize) -> ws_result {
    ffi_panic_boundary! {
        if !dispatched.is_null() {
            // SAFETY: writable per the contract.
            unsafe { *dispatched = 0 };
        }
        if crate::callbacks::in_callback() {
            return fail(Error::new(
                ws_result::WS_INVALID_STATE_ERROR,
                "ws_dispatch() was called from inside a callback; return from the callback instead",
            ));
        }
        let queue = try_ffi!(manual_queue());
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let count = {
            let _turn = DISPATCHING.lock().unwrap_or_else(|e| e.into_inner());
            queue.dispatch(timeout)
        };
        if !dispatched.is_null() {
            // SAFETY: as above.
            unsafe { *dispatched = count };
        }
        ws_result::WS_OK
    }
}

/// Sets the number of library I/O threads that run the sockets and (without manual dispatch)
/// their callbacks. The default is 1 (or the `WSDOM_IO_THREADS` environment variable): all
/// callbacks of all sockets then run one at a time, in order, on one event thread, like a
/// browser's event loop. With more threads, the sockets are spread over them and callbacks of
/// different sockets may run at the same time (each socket's own callbacks still run one at a
/// time, in order). A value of 0 counts as 1.
///
/// Errors: `WS_INVALID_STATE_ERROR` once the first socket was created (the threads exist).
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_set_io_threads(count: usize) -> ws_result {
    ffi_panic_boundary! {
        if wsdom_core::set_io_threads(count) {
            ws_result::WS_OK
        } else {
            fail(Error::new(
                ws_result::WS_INVALID_STATE_ERROR,
                "ws_set_io_threads() must be called before the first socket is created",
            ))
        }
    }
}
