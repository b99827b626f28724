//! The shared I/O runtime: a small fixed set of event-loop threads, created on first use.
//!
//! Each loop thread runs a single-threaded tokio runtime. A socket lives on one loop for its
//! whole life, so its reads, its writes and (by default) its event handler all run on that one
//! thread: a message never crosses threads between the socket and the handler.
//! The runtime is rebuilt in a child process after `fork()`.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;

/// The event-loop threads of this process.
pub(crate) struct Runtime {
    loops: Vec<Handle>,
    next: AtomicUsize,
}

struct Slot {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Slot>> = Mutex::new(None);
static THREADS: AtomicUsize = AtomicUsize::new(0);
static PARK_HOOK: Mutex<Option<fn()>> = Mutex::new(None);

/// Sets a function each I/O thread calls right before it blocks waiting for I/O or timers
/// (tokio's `on_thread_park`). A binding uses it to release a lock it holds across a burst
/// of events, such as Python's GIL. Takes effect only before the first socket is created;
/// returns false afterwards.
pub fn set_io_park_hook(hook: fn()) -> bool {
    let guard = RUNTIME.lock();
    if guard.as_ref().is_some_and(|s| s.pid == std::process::id()) {
        return false;
    }
    *PARK_HOOK.lock() = Some(hook);
    true
}

/// Sets the number of I/O threads (default 1, or `WSDOM_IO_THREADS`).
///
/// Takes effect only before the first socket is created; returns false afterwards.
/// With one thread (the default) all handlers of all sockets run one at a time, in order.
pub fn set_io_threads(n: usize) -> bool {
    let guard = RUNTIME.lock();
    if guard.as_ref().is_some_and(|s| s.pid == std::process::id()) {
        return false;
    }
    THREADS.store(n.max(1), Ordering::Relaxed);
    true
}

fn thread_count() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::env::var("WSDOM_IO_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(1),
        n => n,
    }
}

impl Runtime {
    /// The process's runtime, started on first use (and again in a forked child).
    pub(crate) fn get() -> Arc<Runtime> {
        let mut guard = RUNTIME.lock();
        let pid = std::process::id();
        if let Some(slot) = guard.as_ref() {
            if slot.pid == pid {
                return slot.runtime.clone();
            }
        }
        // First use, or a forked child whose parent's threads do not exist here.
        let runtime = Arc::new(Runtime::start(thread_count()));
        if let Some(old) = guard.replace(Slot {
            pid,
            runtime: runtime.clone(),
        }) {
            // The parent's loop threads are gone in the child; dropping their runtimes
            // could block or touch freed state, so they are leaked on purpose.
            std::mem::forget(old);
        }
        runtime
    }

    fn start(threads: usize) -> Runtime {
        let park = *PARK_HOOK.lock();
        let loops = (0..threads)
            .map(|i| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::Builder::new()
                    .name(format!("wsdom-io-{i}"))
                    .spawn(move || {
                        let mut builder = tokio::runtime::Builder::new_current_thread();
                        builder.enable_all();
                        if let Some(hook) = park {
                            builder.on_thread_park(hook);
                        }
                        let rt = builder.build().expect("cannot build the wsdom I/O runtime");
                        tx.send(rt.handle().clone()).expect("runtime handle");
                        rt.block_on(std::future::pending::<()>());
                    })
                    .expect("cannot spawn a wsdom I/O thread");
                rx.recv().expect("I/O thread started")
            })
            .collect();
        Runtime {
            loops,
            next: AtomicUsize::new(0),
        }
    }

    /// The loop for the next socket (round robin).
    pub(crate) fn pick(&self) -> Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        self.loops[i].clone()
    }
}
