//! The send queue of one socket, and `bufferedAmount` accounting.
//!
//! `send()` encodes the frame on the caller's thread. On a plain TCP socket whose queue is
//! empty, the caller also writes it (non-blocking `try_write`), so a send from a handler running
//! on the I/O thread costs no thread hop; what the kernel does not take waits here for the
//! socket's writer task. `bufferedAmount` falls as payload bytes are written, but, as in a
//! browser, never while a handler runs: written bytes are credited between events.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// One encoded frame waiting to be written.
pub(crate) struct Chunk {
    bytes: Vec<u8>,
    /// Bytes already written.
    pos: usize,
    /// Bytes at the front that are not application payload (the frame header), or the whole
    /// frame for control frames, which `bufferedAmount` does not count.
    overhead: usize,
    /// For a compressed frame, the application bytes it carries (credited once it is
    /// written); `None` when the payload is the application data itself.
    compressed_from: Option<u64>,
}

impl Chunk {
    /// A data frame whose payload counts towards `bufferedAmount`.
    pub(crate) fn data(bytes: Vec<u8>, header_len: usize) -> Chunk {
        Chunk {
            bytes,
            pos: 0,
            overhead: header_len,
            compressed_from: None,
        }
    }

    /// A compressed data frame standing for `original` application bytes.
    pub(crate) fn compressed(bytes: Vec<u8>, header_len: usize, original: u64) -> Chunk {
        Chunk {
            compressed_from: Some(original),
            ..Chunk::data(bytes, header_len)
        }
    }

    /// A control frame (close, pong): not part of `bufferedAmount`.
    pub(crate) fn control(bytes: Vec<u8>) -> Chunk {
        let overhead = bytes.len();
        Chunk {
            bytes,
            pos: 0,
            overhead,
            compressed_from: None,
        }
    }

    /// Marks `n` more bytes written; returns how many application bytes that sent.
    fn advance(&mut self, n: usize) -> u64 {
        let before = self.pos.max(self.overhead);
        self.pos += n;
        match self.compressed_from {
            None => (self.pos.max(self.overhead) - before) as u64,
            Some(original) if self.done() && n > 0 => original,
            Some(_) => 0,
        }
    }

    fn remaining(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Chunk>,
    /// Plain TCP: the write half any thread may `try_write` to.
    direct: Option<Arc<OwnedWriteHalf>>,
    /// A Close frame is queued: later data frames are discarded (RFC 6455 §5.5.1).
    close_queued: bool,
    /// The transport is gone: everything is discarded.
    shut: bool,
}

/// The outgoing queue of one socket, shared by senders and the writer task.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer task when the queue gains work.
    pub(crate) wake_writer: Notify,
    /// Wakes whoever waits for the queue to empty.
    drained: Notify,
    /// `bufferedAmount` as shown: payload bytes accepted by `send()`, less the written bytes
    /// credited so far.
    pub(crate) buffered: AtomicU64,
    /// Payload bytes written but not yet taken off `buffered` (see [`Outbox::apply_credit`]).
    credit: AtomicU64,
    /// The first write error, for the reader to report.
    pub(crate) write_error: Mutex<Option<String>>,
}

impl Outbox {
    pub(crate) fn new() -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            buffered: AtomicU64::new(0),
            credit: AtomicU64::new(0),
            write_error: Mutex::new(None),
        }
    }

    /// Enables writes from the sending thread on a plain TCP connection.
    pub(crate) fn set_direct(&self, half: Arc<OwnedWriteHalf>) {
        self.state.lock().direct = Some(half);
    }

    /// Queues a data frame, writing it at once when possible. Returns the frame's buffer
    /// when it was not kept (written at once, or discarded after the closing handshake
    /// started), so the sender can reuse it.
    pub(crate) fn push_data(&self, chunk: Chunk) -> Option<Vec<u8>> {
        let mut st = self.state.lock();
        if st.close_queued || st.shut {
            return Some(chunk.bytes);
        }
        self.push_locked(&mut st, chunk)
    }

    /// Queues a control frame (pong) unless a Close frame went first.
    pub(crate) fn push_control(&self, chunk: Chunk) {
        let mut st = self.state.lock();
        if !st.close_queued && !st.shut {
            self.push_locked(&mut st, chunk);
        }
    }

    /// Queues our Close frame; returns false if one was already queued.
    pub(crate) fn push_close(&self, chunk: Chunk) -> bool {
        let mut st = self.state.lock();
        if st.close_queued || st.shut {
            return false;
        }
        st.close_queued = true;
        self.push_locked(&mut st, chunk);
        true
    }

    fn push_locked(&self, st: &mut State, mut chunk: Chunk) -> Option<Vec<u8>> {
        if st.queue.is_empty() {
            if let Some(half) = &st.direct {
                match half.try_write(chunk.remaining()) {
                    Ok(n) => {
                        self.account(&mut chunk, n);
                        if chunk.done() {
                            return Some(chunk.bytes);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        self.record_error(&e);
                        return Some(chunk.bytes);
                    }
                }
            }
        }
        st.queue.push_back(chunk);
        self.wake_writer.notify_one();
        None
    }

    fn account(&self, chunk: &mut Chunk, n: usize) {
        let payload = chunk.advance(n);
        if payload > 0 {
            self.credit.fetch_add(payload, Ordering::AcqRel);
        }
    }

    /// Takes the written bytes off `bufferedAmount`. Called between events ("when the event
    /// loop reaches step 1") and by readers outside any handler, never inside a handler.
    pub(crate) fn apply_credit(&self) {
        if self.credit.load(Ordering::Relaxed) == 0 {
            return; // the common case costs one plain load
        }
        let credit = self.credit.swap(0, Ordering::AcqRel);
        if credit > 0 {
            self.buffered.fetch_sub(credit, Ordering::AcqRel);
        }
    }

    /// Payload bytes accepted and really not yet written (for the buffer-full limit).
    pub(crate) fn outstanding(&self) -> u64 {
        let credit = self.credit.load(Ordering::Acquire);
        self.buffered.load(Ordering::Acquire).saturating_sub(credit)
    }

    fn record_error(&self, e: &io::Error) {
        self.write_error
            .lock()
            .get_or_insert_with(|| format!("write failed: {e}"));
    }

    /// Writer task, plain TCP: writes queued frames until the kernel pushes back.
    /// Returns Ok(true) when the queue is empty.
    pub(crate) fn flush_direct(&self, half: &OwnedWriteHalf) -> io::Result<bool> {
        let mut st = self.state.lock();
        while let Some(front) = st.queue.front_mut() {
            match half.try_write(front.remaining()) {
                Ok(n) => {
                    self.account(front, n);
                    if front.done() {
                        st.queue.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => {
                    self.record_error(&e);
                    st.queue.clear();
                    return Err(e);
                }
            }
        }
        self.drained.notify_waiters();
        Ok(true)
    }

    /// Writer task, TLS: takes everything queued (the caller writes it, then calls `written`).
    pub(crate) fn take_queued(&self) -> Vec<Chunk> {
        let mut st = self.state.lock();
        let chunks: Vec<Chunk> = st.queue.drain(..).collect();
        if chunks.is_empty() {
            self.drained.notify_waiters();
        }
        chunks
    }

    /// Writer task, TLS: records a chunk as fully written.
    pub(crate) fn written(&self, mut chunk: Chunk) {
        let n = chunk.remaining().len();
        self.account(&mut chunk, n);
    }

    /// Bytes of a chunk still to be written (TLS writer).
    pub(crate) fn bytes(chunk: &Chunk) -> &[u8] {
        chunk.remaining()
    }

    /// True when nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.state.lock().queue.is_empty()
    }

    /// Waits until the queue is empty.
    pub(crate) async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_empty() {
                return;
            }
            self.wake_writer.notify_one();
            notified.await;
        }
    }

    /// The transport is gone: drop everything and stop the writer.
    pub(crate) fn shut(&self) {
        let mut st = self.state.lock();
        st.shut = true;
        st.queue.clear();
        st.direct = None;
        drop(st);
        self.wake_writer.notify_one();
    }

    /// True once `shut` was called.
    pub(crate) fn is_shut(&self) -> bool {
        self.state.lock().shut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_accounting_skips_headers() {
        let mut c = Chunk::data(vec![0; 10], 4);
        assert_eq!(c.advance(2), 0);
        assert_eq!(c.advance(3), 1);
        assert_eq!(c.advance(5), 5);
        assert!(c.done());
        let mut c = Chunk::control(vec![0; 6]);
        assert_eq!(c.advance(6), 0);
        let mut c = Chunk::compressed(vec![0; 10], 2, 100);
        assert_eq!(c.advance(9), 0);
        assert_eq!(c.advance(1), 100);
    }

    #[test]
    fn nothing_after_close() {
        let o = Outbox::new();
        assert_eq!(o.push_data(Chunk::data(vec![1, 2], 1)), None, "queued");
        assert!(o.push_close(Chunk::control(vec![0x88, 0])));
        assert!(!o.push_close(Chunk::control(vec![0x88, 0])));
        assert_eq!(
            o.push_data(Chunk::data(vec![1, 2], 1)),
            Some(vec![1, 2]),
            "discarded"
        );
        assert_eq!(o.take_queued().len(), 2);
    }
}
