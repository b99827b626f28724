//! The send queue of one socket, and `bufferedAmount` accounting.
//!
//! `send()` encodes the frame on the caller's thread. On a plain TCP socket whose queue is
//! empty, the caller also writes it (non-blocking `try_write`), so a send from a handler running
//! on the I/O thread costs no thread hop; what the kernel does not take waits here for the
//! socket's writer task. A burst of small sends from outside event handlers (one right after a
//! direct write, with nothing read in between: a stream, not request and response) is queued
//! instead, and the writer task writes the queued frames together, many per system call.
//! `bufferedAmount` falls as payload bytes are written, but, as in a browser, never while a
//! handler runs: written bytes are credited between events.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// A send this soon after the end of a direct write, with nothing read since, is part of a
/// burst: it is queued for the writer task rather than written on its own.
const BURST_GAP: Duration = Duration::from_micros(20);

/// The most frames one system call of the writer task writes.
const MAX_GATHER: usize = 64;

/// Larger frames are always written at once when the queue is empty: a system call is cheap
/// next to their bytes, and queueing them would cost an allocation each.
const BURST_MAX_FRAME: usize = 16 << 10;

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
    /// When the last direct write by a sender ended.
    last_direct: Option<Instant>,
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
    /// The reader got bytes since the last direct write: the next send answers them, it is
    /// not part of a burst.
    read_since_write: AtomicBool,
    /// Frames may be queued: lets the reader skip the lock when nothing is (a plain load).
    maybe_queued: AtomicBool,
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
            read_since_write: AtomicBool::new(false),
            maybe_queued: AtomicBool::new(false),
        }
    }

    /// Called by the reader after each read (see [`BURST_GAP`]).
    pub(crate) fn note_read(&self) {
        self.read_since_write.store(true, Ordering::Relaxed);
    }

    /// True when a frame pushed now belongs to a burst of sends. Never inside an event
    /// handler: what a handler sends is written at once, so the events after it in the same
    /// batch see it written, as in a browser.
    fn in_burst(&self, st: &State) -> bool {
        !crate::dispatch::in_handler()
            && is_burst(
                st.last_direct,
                self.read_since_write.load(Ordering::Relaxed),
                Instant::now(),
            )
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
        if st.queue.is_empty() && (chunk.bytes.len() > BURST_MAX_FRAME || !self.in_burst(st)) {
            if let Some(half) = &st.direct {
                match half.try_write(chunk.remaining()) {
                    Ok(n) => {
                        self.account(&mut chunk, n);
                        st.last_direct = Some(Instant::now());
                        self.read_since_write.store(false, Ordering::Relaxed);
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
        self.maybe_queued.store(true, Ordering::Release);
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

    /// Writer task, plain TCP: writes queued frames, up to [`MAX_GATHER`] per system call,
    /// until the kernel pushes back. Returns Ok(true) when the queue is empty.
    pub(crate) fn flush_direct(&self, half: &OwnedWriteHalf) -> io::Result<bool> {
        self.flush_locked(&mut self.state.lock(), half)
    }

    /// Called by the reader before it dispatches what it read: writes what is queued on a
    /// plain TCP socket, so that frames sent before a response arrived are written (and
    /// credited to `bufferedAmount`) by the time the response's event fires, as in a browser.
    /// What the kernel does not take is left to the writer task, already woken.
    pub(crate) fn flush_before_dispatch(&self) {
        if !self.maybe_queued.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.state.lock();
        if let Some(half) = st.direct.clone() {
            // An error is recorded in `write_error`, which the reader checks next.
            let _ = self.flush_locked(&mut st, &half);
        }
    }

    /// [`Outbox::flush_direct`] with the state already locked.
    fn flush_locked(&self, st: &mut State, half: &OwnedWriteHalf) -> io::Result<bool> {
        while !st.queue.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_GATHER];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(&st.queue) {
                    *slot = IoSlice::new(chunk.remaining());
                    count += 1;
                }
                match half.try_write_vectored(&slices[..count]) {
                    Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                    other => other,
                }
            };
            match written {
                Ok(mut n) => {
                    while n > 0 {
                        let front = st.queue.front_mut().expect("written bytes were queued");
                        let take = n.min(front.remaining().len());
                        self.account(front, take);
                        n -= take;
                        if front.done() {
                            st.queue.pop_front();
                        }
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
        self.maybe_queued.store(false, Ordering::Release);
        self.drained.notify_waiters();
        Ok(true)
    }

    /// Writer task, TLS: takes everything queued (the caller writes it, then calls `written`).
    pub(crate) fn take_queued(&self) -> Vec<Chunk> {
        let mut st = self.state.lock();
        let chunks: Vec<Chunk> = st.queue.drain(..).collect();
        self.maybe_queued.store(false, Ordering::Release);
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

/// A send at `now` is part of a burst if the last direct write ended less than [`BURST_GAP`]
/// before and nothing was read since (a request answered by a response is not a burst).
fn is_burst(last_direct: Option<Instant>, read_since: bool, now: Instant) -> bool {
    last_direct.is_some_and(|t| !read_since && now.saturating_duration_since(t) < BURST_GAP)
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

    #[test]
    fn bursts_are_sends_in_quick_succession_with_nothing_read_between() {
        let t = Instant::now();
        assert!(!is_burst(None, false, t), "the first send");
        assert!(is_burst(Some(t), false, t + BURST_GAP / 2));
        assert!(
            !is_burst(Some(t), true, t + BURST_GAP / 2),
            "answers what was read"
        );
        assert!(!is_burst(Some(t), false, t + BURST_GAP), "after a pause");
    }

    /// A connected pair: our write half (registered with `rt`) and the peer's socket.
    fn pair(rt: &tokio::runtime::Runtime) -> (OwnedWriteHalf, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        rt.block_on(async {
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (peer, _) = listener.accept().unwrap();
            (client.into_split().1, peer)
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    #[cfg_attr(miri, ignore = "real sockets")]
    fn the_writer_gathers_queued_frames_and_credits_their_payload() {
        use std::io::Read;
        let rt = runtime();
        let (half, mut peer) = pair(&rt);
        let _guard = rt.enter();
        let o = Outbox::new();
        // Without a direct half everything is queued: 200 frames of a 2-byte header and
        // 3 payload bytes each, more than one system call takes.
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let frame = vec![0x82, 3, i as u8, (i >> 8) as u8, 0xee];
            expected.extend_from_slice(&frame);
            assert_eq!(o.push_data(Chunk::data(frame, 2)), None);
        }
        assert!(o.flush_direct(&half).unwrap(), "the queue was emptied");
        assert!(o.is_empty());
        assert_eq!(o.credit.load(Ordering::Acquire), 600, "payload bytes only");
        drop(half);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, expected, "every frame, whole and in order");
    }

    #[test]
    #[cfg_attr(miri, ignore = "real sockets")]
    fn a_small_send_right_after_a_direct_write_waits_for_the_writer() {
        let rt = runtime();
        let (half, _peer) = pair(&rt);
        let _guard = rt.enter();
        let half = Arc::new(half);
        let o = Outbox::new();
        o.set_direct(half.clone());
        let small = || Chunk::data(vec![0x82, 1, 7], 2);
        assert!(
            o.push_data(small()).is_some(),
            "the first send is written at once"
        );
        o.state.lock().last_direct = Some(Instant::now());
        assert_eq!(
            o.push_data(small()),
            None,
            "the next, in a burst, is queued"
        );
        assert!(o.flush_direct(&half).unwrap());
        o.state.lock().last_direct = Some(Instant::now());
        o.note_read();
        assert!(
            o.push_data(small()).is_some(),
            "an answer to a read is written at once"
        );
        o.state.lock().last_direct = Some(Instant::now());
        let large = Chunk::data(vec![0; BURST_MAX_FRAME + 1], 2);
        assert!(
            o.push_data(large).is_some(),
            "a large frame is written at once"
        );
    }
}
