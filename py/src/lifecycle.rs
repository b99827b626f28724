//! Process lifecycle: interpreter exit and `fork()`.
//!
//! A registry keeps every socket that may still fire events. The `atexit` hook closes them as
//! a page unload does and detaches their handlers, so that no wsdom thread takes the GIL
//! during or after finalization. In a forked child the parent's sockets and I/O threads do
//! not exist: they are forgotten, and new sockets start a new I/O thread.

use crate::dispatch::Bridge;
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// Set by the `atexit` hook: from then on no handler touches Python.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Incremented in a child process after `fork()`; sockets from before are inert there.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The bridges of sockets that may still fire events, by core socket id.
static REGISTRY: LazyLock<Mutex<HashMap<u64, Arc<Bridge>>>> = LazyLock::new(Default::default);

/// The current fork generation.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// True once the interpreter started shutting down.
pub(crate) fn shutting_down() -> bool {
    SHUTDOWN.load(Ordering::Acquire)
}

/// Adds a socket to the registry.
pub(crate) fn register(bridge: &Arc<Bridge>) {
    let old = REGISTRY.lock().insert(bridge.core().id(), bridge.clone());
    drop(old);
}

/// Removes the socket with core id `id` from the registry.
pub(crate) fn unregister(id: u64) {
    let removed = REGISTRY.lock().remove(&id);
    drop(removed);
}

/// The `atexit` hook: detaches every handler (waiting for running ones, with the GIL
/// released) and closes open sockets with code 1001, as a page unload does. An I/O thread
/// that took the GIL for its last events gives it back when it parks or ends its read batch
/// (see `gil.rs`), before this thread can take it back and go on to finalize; after this
/// hook no I/O thread takes the GIL again.
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>) {
    SHUTDOWN.store(true, Ordering::Release);
    let bridges: Vec<Arc<Bridge>> = REGISTRY.lock().drain().map(|(_, b)| b).collect();
    py.detach(|| bridges.iter().for_each(|b| b.detach_for_exit()));
    bridges.iter().for_each(|b| b.release_for_exit());
}

/// The `os.register_at_fork(after_in_child=...)` hook: the parent's sockets and threads do
/// not exist in the child, so they are forgotten; new sockets start a new I/O thread.
#[pyfunction]
pub(crate) fn _after_fork_child(py: Python<'_>) {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if REGISTRY.is_locked() {
        // SAFETY: only the forking thread exists in the child; the lock's owner is gone.
        unsafe { REGISTRY.force_unlock() };
    }
    let parents = std::mem::take(&mut *REGISTRY.lock());
    // Their core sockets belong to the parent's I/O threads: never drop them here.
    std::mem::forget(parents);
    crate::gil::forget_io_thread();
    crate::loops::after_fork(py);
}
