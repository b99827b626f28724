//! The I/O task of one socket: connect, TLS, the opening handshake, then read frames and run
//! the closing handshake, reporting everything as raw events in order.

use crate::deflate::{Deflater, Inflater, Params};
use crate::dial::{self, ByteStream, Stream};
use crate::dispatch::{Batch, RawEvent};
use crate::event::CloseEvent;
use crate::framing::{encode_frame, Assembler, Decoded, Incoming, Limits, ProtocolError};
use crate::handshake::{build_request, check_response, Accepted};
use crate::outbox::Chunk;
use crate::socket::Socket;
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// The most a read reserves ahead of the bytes that arrived.
const MAX_READ_AHEAD: usize = 256 * 1024;

/// How long a large read buffer is kept once idle before its memory is given back.
const BUFFER_IDLE_RELEASE: Duration = Duration::from_secs(1);

/// How long a failing connection waits for its Close frame to be written before dropping TCP.
const FAIL_FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// An established transport.
enum Transport {
    /// Plain TCP: senders may write to it directly from any thread.
    Plain(TcpStream),
    /// TLS, or a tunnel through an HTTPS proxy: all writes go through the writer task.
    Stream(Box<dyn ByteStream>),
}

/// The read side of an established transport.
enum Reader {
    Plain(OwnedReadHalf),
    Stream(ReadHalf<Box<dyn ByteStream>>),
}

impl Reader {
    /// Reads more bytes into `buf`; 0 means end of stream. Memory is reserved only once the
    /// socket is readable, so an idle connection holds no read buffer.
    async fn read(&mut self, buf: &mut BytesMut, chunk: usize) -> std::io::Result<usize> {
        match self {
            Reader::Plain(r) => loop {
                r.readable().await?;
                buf.reserve(chunk);
                match r.try_read_buf(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            },
            Reader::Stream(r) => {
                buf.reserve(chunk);
                r.read_buf(buf).await
            }
        }
    }
}

/// The size of the next read: the configured chunk at first, doubled (up to
/// [`MAX_READ_AHEAD`]) while reads fill it, since more data is waiting and fewer, larger reads
/// mean fewer system calls and wake-ups; halved back towards the chunk when reads come back
/// much smaller. So a flood is read in large blocks, and ordinary traffic keeps small buffers.
struct ReadSize {
    base: usize,
    now: usize,
}

impl ReadSize {
    fn new(base: usize) -> ReadSize {
        ReadSize { base, now: base }
    }

    fn get(&self) -> usize {
        self.now
    }

    /// Adapts to a read of `n` bytes.
    fn record(&mut self, n: usize) {
        if n >= self.now {
            self.now = (self.now * 2).min(MAX_READ_AHEAD.max(self.base));
        } else if n < self.now / 4 {
            self.now = (self.now / 2).max(self.base);
        }
    }
}

/// Runs one socket from connect to the `close` event.
pub(crate) async fn run(sock: Arc<Socket>) {
    let timeout = sock.options.connect_timeout;
    let connect = async {
        // One opening handshake at a time per host and port (RFC 6455 §4.1). The connect
        // timeout starts when this socket's turn comes, so a burst of sockets to one server
        // does not fail for the time spent behind each other (each wait is bounded by the
        // timeouts of the sockets ahead); `close()` still ends the wait at once.
        let _turn = dial::handshake_turn(&sock.url).await;
        tokio::time::timeout(timeout, establish(&sock)).await
    };
    let outcome = tokio::select! {
        biased;
        reason = wait_for_fail(&sock) => Err(reason),
        r = connect => match r {
            Ok(r) => r,
            Err(_) => Err(format!("the connection was not established within {timeout:?}")),
        },
    };
    match outcome {
        Err(reason) => fail_events(&sock, reason),
        Ok(established) => session(sock, established).await,
    }
}

async fn wait_for_fail(sock: &Socket) -> String {
    loop {
        let notified = sock.control.notify.notified();
        if let Some(reason) = sock.control.take_fail() {
            return reason;
        }
        notified.await;
    }
}

fn fail_events(sock: &Arc<Socket>, reason: String) {
    sock.outbox.shut();
    sock.emit(RawEvent::Error(reason));
    sock.emit(RawEvent::Close(CloseEvent {
        code: 1006,
        reason: String::new(),
        was_clean: false,
    }));
}

/// An established connection: transport, what the server accepted, and the bytes that
/// followed the response head.
struct Established {
    transport: Transport,
    accepted: Accepted,
    deflate: Option<Params>,
    leftover: BytesMut,
}

/// Connects and upgrades; the caller holds the handshake turn for `sock.url`.
async fn establish(sock: &Socket) -> Result<Established, String> {
    let url = &sock.url;
    let stream = dial::open(url, &sock.options).await?;
    let offer = sock.options.deflate.then_some(crate::deflate::OFFER);
    let request = build_request(url, &sock.protocols, offer, &sock.options.headers);
    if url.scheme() == "wss" {
        let host = url.host().expect("checked in new()");
        let mut tls: Box<dyn ByteStream> = match stream {
            Stream::Tcp(tcp) => Box::new(dial::tls_handshake(tcp, &host, &sock.options.tls).await?),
            Stream::Boxed(inner) => {
                Box::new(dial::tls_handshake(inner, &host, &sock.options.tls).await?)
            }
        };
        let (accepted, leftover) = upgrade(&mut tls, sock, &request).await?;
        established(Transport::Stream(tls), accepted, leftover)
    } else {
        match stream {
            Stream::Tcp(mut tcp) => {
                let (accepted, leftover) = upgrade(&mut tcp, sock, &request).await?;
                established(Transport::Plain(tcp), accepted, leftover)
            }
            Stream::Boxed(mut inner) => {
                let (accepted, leftover) = upgrade(&mut inner, sock, &request).await?;
                established(Transport::Stream(inner), accepted, leftover)
            }
        }
    }
}

fn established(
    transport: Transport,
    accepted: Accepted,
    leftover: BytesMut,
) -> Result<Established, String> {
    let deflate = crate::deflate::negotiate(&accepted.extensions)?;
    Ok(Established {
        transport,
        accepted,
        deflate,
        leftover,
    })
}

/// Writes the upgrade request and reads until the response head is complete and valid.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sock: &Socket,
    request: &crate::handshake::Request,
) -> Result<(Accepted, BytesMut), String> {
    stream
        .write_all(&request.bytes)
        .await
        .map_err(|e| format!("cannot send the handshake request: {e}"))?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("connection lost during the handshake: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection during the handshake".into());
        }
        let offered: &[&str] = if sock.options.deflate {
            &[crate::deflate::NAME]
        } else {
            &[]
        };
        if let Some(accepted) = check_response(&buf, &request.key, &sock.protocols, offered)? {
            buf.advance(accepted.head_len);
            return Ok((accepted, buf));
        }
    }
}

async fn session(sock: Arc<Socket>, conn: Established) {
    let inflater = conn.deflate.map(|params| {
        let deflater = Deflater::new(
            &params,
            sock.options.deflate_threshold,
            sock.options.deflate_level,
        );
        let _ = sock.deflater.set(parking_lot::Mutex::new(Some(deflater)));
        Inflater::new(&params)
    });
    let reader = match conn.transport {
        Transport::Plain(tcp) => {
            let (r, w) = tcp.into_split();
            let w = Arc::new(w);
            sock.outbox.set_direct(w.clone());
            tokio::spawn(write_plain(sock.clone(), w));
            Reader::Plain(r)
        }
        Transport::Stream(stream) => {
            let (r, w) = tokio::io::split(stream);
            tokio::spawn(write_stream(sock.clone(), w));
            Reader::Stream(r)
        }
    };
    // Writers are ready first, so an `open` handler's sends go straight to the socket.
    sock.emit(RawEvent::Open {
        protocol: conn.accepted.protocol,
        extensions: conn.accepted.extensions,
    });
    let end = read_loop(&sock, reader, conn.leftover, inflater).await;
    sock.outbox.shut();
    // Nothing more is sent: free the compressor's window and tables now, not when the last
    // handle goes.
    if let Some(deflater) = sock.deflater.get() {
        deflater.lock().take();
    }
    match end {
        End::Clean(close) => sock.emit(RawEvent::Close(close)),
        End::Failed(reason) => fail_events(&sock, reason),
    }
}

/// Writer task of a plain TCP socket: writes what senders could not write directly.
async fn write_plain(sock: Arc<Socket>, half: Arc<OwnedWriteHalf>) {
    loop {
        let notified = sock.outbox.wake_writer.notified();
        if sock.outbox.is_shut() {
            return;
        }
        match sock.outbox.flush_direct(&half) {
            Ok(true) => notified.await,
            Ok(false) => {
                // Wait for room in the kernel, or for the end of the connection: a server that
                // stops reading must not keep the socket (this task holds it) open after the
                // close timeout or a failure shut the outbox.
                match unless_shut(&sock, half.writable()).await {
                    None => return,
                    Some(Ok(())) => {}
                    Some(Err(_)) => {
                        sock.control.notify.notify_one();
                        return;
                    }
                }
            }
            Err(_) => {
                sock.control.notify.notify_one();
                return;
            }
        }
    }
}

/// Writer task of a TLS or tunnelled socket: all writes go through here.
async fn write_stream(sock: Arc<Socket>, mut half: WriteHalf<Box<dyn ByteStream>>) {
    loop {
        let notified = sock.outbox.wake_writer.notified();
        if sock.outbox.is_shut() {
            let _ = half.shutdown().await;
            return;
        }
        let chunks = sock.outbox.take_queued();
        if chunks.is_empty() {
            notified.await;
            continue;
        }
        for chunk in chunks {
            let Some(written) =
                unless_shut(&sock, half.write_all(crate::outbox::Outbox::bytes(&chunk))).await
            else {
                return;
            };
            if let Err(e) = written {
                sock.outbox
                    .write_error
                    .lock()
                    .get_or_insert_with(|| format!("write failed: {e}"));
                sock.control.notify.notify_one();
                return;
            }
            sock.outbox.written(chunk);
        }
        match unless_shut(&sock, half.flush()).await {
            None => return,
            Some(Ok(())) => {}
            Some(Err(_)) => {
                sock.control.notify.notify_one();
                return;
            }
        }
    }
}

/// Runs `write` (a write to the server, or a wait for room to write) to its end, unless the
/// outbox is shut first (None). A server that stops reading must not keep the connection,
/// which the writer task holds, open after the close timeout or a failure ended it.
async fn unless_shut<F: std::future::Future>(sock: &Socket, write: F) -> Option<F::Output> {
    tokio::pin!(write);
    loop {
        let woken = sock.outbox.wake_writer.notified();
        if sock.outbox.is_shut() {
            return None;
        }
        tokio::select! {
            biased;
            done = &mut write => return Some(done),
            _ = woken => {}
        }
    }
}

/// How the read loop ended.
enum End {
    /// The closing handshake completed.
    Clean(CloseEvent),
    /// The connection failed, with the diagnostic.
    Failed(String),
}

fn close_event(received: &Option<(u16, String)>) -> CloseEvent {
    match received {
        None => CloseEvent {
            code: 1005,
            reason: String::new(),
            was_clean: true,
        },
        Some((code, reason)) => CloseEvent {
            code: *code,
            reason: reason.clone(),
            was_clean: true,
        },
    }
}

fn queue_close(sock: &Socket, body: &[u8]) -> bool {
    let mut frame = Vec::new();
    encode_frame(OpCode::Control(Control::Close), body, &mut frame);
    sock.outbox.push_close(Chunk::control(frame))
}

/// Sends our Close for a protocol error (best effort), then reports the failure.
async fn fail_protocol(sock: &Socket, err: ProtocolError) -> End {
    if queue_close(sock, &err.close_code.to_be_bytes()) {
        let _ = tokio::time::timeout(FAIL_FLUSH_TIMEOUT, sock.outbox.wait_drained()).await;
    }
    End::Failed(err.message)
}

async fn read_loop(
    sock: &Arc<Socket>,
    mut reader: Reader,
    mut buf: BytesMut,
    inflater: Option<Inflater>,
) -> End {
    let limits = Limits {
        max_frame_size: sock.options.max_frame_size,
        max_message_size: sock.options.max_message_size,
    };
    let chunk = sock.options.read_chunk_size;
    let mut read_size = ReadSize::new(chunk);
    let close_timeout = sock.options.close_timeout;
    let mut assembler = match inflater {
        Some(inflater) => Assembler::with_inflater(limits, inflater),
        None => Assembler::new(limits),
    };
    // The first Close frame received: Some(None) for an empty body.
    let mut close_received: Option<Option<(u16, String)>> = None;
    let mut deadline: Option<Instant> = None;
    let mut keepalive = Keepalive::new(sock.options.ping_interval, sock.options.pong_timeout);
    loop {
        // Decode everything buffered, as one dispatch batch, after writing what was sent
        // before it arrived.
        if !buf.is_empty() {
            sock.outbox.flush_before_dispatch();
        }
        let decoded = sock.in_batch(|batch| {
            decode_buffered(sock, batch, &mut assembler, &mut buf, &mut close_received)
        });
        if let Err(e) = decoded {
            return fail_protocol(sock, e).await;
        }
        if close_received.is_some() && deadline.is_none() {
            deadline = Some(Instant::now() + close_timeout);
        }
        if close_received.is_some() {
            buf.clear(); // nothing after the Close frame is processed
        }
        // A buffer grown by a large message is kept while traffic flows (no allocation and
        // page faults per message) and given back after a second of quiet.
        let shrink_at = (buf.is_empty() && buf.capacity() > 4 * chunk)
            .then(|| Instant::now() + BUFFER_IDLE_RELEASE);
        if let Some(reason) = sock.control.take_fail() {
            return End::Failed(reason);
        }
        if let Some(err) = sock.outbox.write_error.lock().clone() {
            return End::Failed(err);
        }
        if deadline.is_none() && sock.control.close_started.load(Ordering::Acquire) {
            deadline = Some(Instant::now() + close_timeout);
        }
        let notified = sock.control.notify.notified();
        let sleep = sleep_until(deadline);
        let keepalive_due = sleep_until(keepalive.due().filter(|_| close_received.is_none()));
        let shrink = sleep_until(shrink_at);
        tokio::select! {
            biased;
            _ = notified => {}
            _ = shrink => buf = BytesMut::new(),
            _ = keepalive_due => {
                if keepalive.waiting_for_pong() {
                    return End::Failed(format!(
                        "keepalive: no answer to our ping within {:?}",
                        sock.options.pong_timeout
                    ));
                }
                let mut frame = Vec::new();
                encode_frame(OpCode::Control(Control::Ping), b"wsdom", &mut frame);
                sock.outbox.push_control(Chunk::control(frame));
                keepalive.ping_sent();
            }
            _ = sleep => {
                return match &close_received {
                    // Handshake done, the server did not close TCP in time: drop it, clean.
                    Some(body) => End::Clean(close_event(body)),
                    None => End::Failed(format!(
                        "the server did not answer our Close frame within {close_timeout:?}"
                    )),
                };
            }
            r = reader.read(&mut buf, read_size.get()) => match r {
                Ok(0) | Err(_) if close_received.is_some() => {
                    return End::Clean(close_event(close_received.as_ref().expect("checked")));
                }
                Ok(0) => {
                    return End::Failed(
                        "the server closed the TCP connection without a closing handshake".into(),
                    )
                }
                Err(e) => return End::Failed(format!("connection lost: {e}")),
                Ok(n) => {
                    keepalive.heard_from_server();
                    sock.outbox.note_read();
                    read_size.record(n);
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The opt-in keepalive: ping after `interval` of silence, fail if nothing arrives within
/// `pong_timeout` of the ping (detects half-open connections).
struct Keepalive {
    interval: Option<Duration>,
    pong_timeout: Duration,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

impl Keepalive {
    fn new(interval: Option<Duration>, pong_timeout: Duration) -> Keepalive {
        Keepalive {
            interval,
            pong_timeout,
            last_heard: Instant::now(),
            ping_sent: None,
        }
    }

    /// When the keepalive next needs to act, if it is enabled.
    fn due(&self) -> Option<Instant> {
        let interval = self.interval?;
        Some(match self.ping_sent {
            Some(at) => at + self.pong_timeout,
            None => self.last_heard + interval,
        })
    }

    fn waiting_for_pong(&self) -> bool {
        self.ping_sent.is_some()
    }

    fn ping_sent(&mut self) {
        self.ping_sent = Some(Instant::now());
    }

    /// Any bytes from the server prove the connection is alive.
    fn heard_from_server(&mut self) {
        self.last_heard = Instant::now();
        self.ping_sent = None;
    }
}

/// Decodes every complete frame in `buf`: emits messages, answers pings, and handles the
/// server's Close (which ends decoding).
fn decode_buffered(
    sock: &Arc<Socket>,
    batch: &Batch,
    assembler: &mut Assembler,
    buf: &mut BytesMut,
    close_received: &mut Option<Option<(u16, String)>>,
) -> Result<(), ProtocolError> {
    while close_received.is_none() {
        match assembler.decode(buf)? {
            Decoded::NeedMore(n) => {
                // Grow towards a large frame as its bytes arrive: a header alone must not
                // reserve (even as address space) what the peer may never send.
                buf.reserve(n.min(MAX_READ_AHEAD));
                return Ok(());
            }
            Decoded::Frame(item) => match item {
                None | Some(Incoming::Pong) => {}
                Some(Incoming::Message(m)) => sock.emit_in(batch, RawEvent::Message(m)),
                Some(Incoming::Ping(payload)) => {
                    let mut frame = Vec::new();
                    encode_frame(OpCode::Control(Control::Pong), &payload, &mut frame);
                    sock.outbox.push_control(Chunk::control(frame));
                }
                Some(Incoming::Close(body)) => {
                    sock.emit_in(batch, RawEvent::Closing);
                    // Echo the code (RFC 6455 §5.5.1); an empty body stays empty.
                    let reply = body.as_ref().map(|(c, _)| c.to_be_bytes().to_vec());
                    queue_close(sock, &reply.unwrap_or_default());
                    *close_received = Some(body);
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_up_and_shrink_back_when_they_do_not() {
        let mut r = ReadSize::new(16 << 10);
        for _ in 0..3 {
            let full = r.get();
            r.record(full);
        }
        assert_eq!(r.get(), 128 << 10);
        for _ in 0..10 {
            let full = r.get();
            r.record(full);
        }
        assert_eq!(r.get(), MAX_READ_AHEAD, "bounded");
        r.record(MAX_READ_AHEAD / 2);
        assert_eq!(r.get(), MAX_READ_AHEAD, "a fair read keeps the size");
        for _ in 0..10 {
            r.record(100);
        }
        assert_eq!(r.get(), 16 << 10, "never below the configured chunk");
        // A configured chunk above the read-ahead bound is used as is.
        let mut big = ReadSize::new(1 << 20);
        big.record(1 << 20);
        assert_eq!(big.get(), 1 << 20);
    }
}
