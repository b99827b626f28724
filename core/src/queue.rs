//! A shared event queue: one consumer thread runs the handlers of many sockets, woken through
//! a file descriptor (an eventfd) that can sit in poll/epoll/select or an asyncio loop.

use crate::dispatch::Task;
use crossbeam_channel::{Receiver, Sender};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A queue of events from any number of sockets, dispatched by whoever calls
/// [`EventQueue::dispatch`]. Cloning gives another handle to the same queue.
#[derive(Clone)]
pub struct EventQueue {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Sender<Task>,
    rx: Receiver<Task>,
    fd: OwnedFd,
    /// The eventfd has been written since the consumer last cleared it.
    signaled: AtomicBool,
}

impl EventQueue {
    /// Creates an empty queue with its wake-up descriptor.
    pub fn new() -> io::Result<EventQueue> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(EventQueue {
            inner: Arc::new(Inner {
                tx,
                rx,
                // SAFETY: fd is a new descriptor owned by nobody else.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                signaled: AtomicBool::new(false),
            }),
        })
    }

    /// A descriptor that is readable while events wait. Do not read or close it: call
    /// [`EventQueue::dispatch`] when it polls readable.
    pub fn fd(&self) -> RawFd {
        self.inner.fd.as_raw_fd()
    }

    /// Number of events waiting.
    pub fn len(&self) -> usize {
        self.inner.rx.len()
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.inner.rx.is_empty()
    }

    pub(crate) fn push(&self, task: Task) {
        // The receiver lives in `inner`, so the channel is never disconnected.
        let _ = self.inner.tx.send(task);
        if !self.inner.signaled.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Clears the descriptor, then the flag, so that a push racing with this either sees the
    /// flag still set before our drain of the channel (its event is drained below), or sees it
    /// clear and writes the descriptor again. The other order would lose that wake-up.
    fn clear_signal(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.fd(), (&mut value as *mut u64).cast(), 8) };
        self.inner.signaled.store(false, Ordering::SeqCst);
    }

    /// Runs the handlers of the events waiting now, in order, on the calling thread.
    ///
    /// If none waits, waits up to `timeout` for one (`None`: forever, zero: do not wait).
    /// Returns the number of events dispatched. Events queued by the handlers themselves
    /// wait for the next call, so one call is bounded.
    pub fn dispatch(&self, timeout: Option<Duration>) -> usize {
        self.clear_signal();
        let mut budget = self.inner.rx.len();
        if budget == 0 {
            let first = match timeout {
                Some(t) if t.is_zero() => return 0,
                Some(t) => self.inner.rx.recv_timeout(t).ok(),
                None => self.inner.rx.recv().ok(),
            };
            let Some(task) = first else { return 0 };
            self.clear_signal();
            budget = self.inner.rx.len();
            task.run();
        } else {
            budget -= 1;
            match self.inner.rx.try_recv() {
                Ok(task) => task.run(),
                Err(_) => return 0,
            }
        }
        let mut count = 1;
        for _ in 0..budget {
            match self.inner.rx.try_recv() {
                Ok(task) => {
                    task.run();
                    count += 1;
                }
                Err(_) => break,
            }
        }
        if !self.inner.rx.is_empty() && !self.inner.signaled.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: as in `push`.
            unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
        }
        count
    }
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("fd", &self.fd())
            .field("len", &self.len())
            .finish()
    }
}
