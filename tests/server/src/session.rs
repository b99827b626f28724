//! One upgraded connection: transport access, frame I/O with recording,
//! bounded waits, closing (FIN or RST) and the echo loop.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use crate::frames::{self, Frame, FrameReader};
use crate::observe::Recorder;

/// How long an echo loop waits for the next client frame before giving up.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long "hold the connection open" behaviours last at most.
pub const HOLD: Duration = Duration::from_secs(30);
/// How long the server drains the client after closing its own side.
const DRAIN: Duration = Duration::from_secs(2);

/// A byte stream the server can talk WebSocket over, with access to the TCP socket.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The underlying TCP socket (for SO_LINGER).
    fn tcp(&self) -> &TcpStream;
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Whether a read error means the client went away.
fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Reads and discards everything until EOF or `deadline`; records the client's EOF.
pub async fn discard_until<S: Transport>(stream: &mut S, deadline: Instant, rec: &Recorder) {
    let mut buf = [0u8; 4096];
    loop {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return rec.client_closed(),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => {
                if is_gone(&e) {
                    rec.client_closed();
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// Writes `bytes`, closes our side of TCP and drains the client briefly.
pub async fn respond_and_close<S: Transport>(mut stream: S, bytes: &[u8], rec: &Recorder) {
    let _ = stream.write_all(bytes).await;
    rec.server_closed();
    let _ = timeout(DRAIN, stream.shutdown()).await;
    discard_until(&mut stream, Instant::now() + DRAIN, rec).await;
}

/// What the next read produced.
#[derive(Debug)]
pub enum Event {
    /// A complete client frame (already recorded).
    Frame(Frame),
    /// The client closed or reset the connection, or it became unusable.
    Eof,
    /// The deadline passed first.
    Timeout,
}

/// What an echo loop does when the client sends a Close frame.
#[derive(Debug, Clone, Copy)]
pub enum OnClose {
    /// Wait this long, reply with a Close echoing the body, then close TCP.
    Reply(Duration),
    /// Never answer and keep TCP open (up to [`HOLD`]).
    Ignore,
    /// Close TCP without answering.
    CloseTcp,
}

/// How an echo loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The connection is finished (closed, reset or idle).
    Done,
    /// The caller's deadline passed; the connection is still open.
    Deadline,
}

/// An upgraded WebSocket connection.
pub struct Session<S: Transport> {
    stream: S,
    reader: FrameReader,
    rec: Recorder,
}

impl<S: Transport> Drop for Session<S> {
    fn drop(&mut self) {
        // Dropping the stream closes TCP; note it unless the client went first.
        self.rec.server_closed();
    }
}

impl<S: Transport> Session<S> {
    /// Wraps an upgraded stream; `leftover` are bytes read past the request.
    pub fn new(stream: S, leftover: Vec<u8>, rec: Recorder) -> Self {
        Session {
            stream,
            reader: FrameReader::new(leftover),
            rec,
        }
    }

    /// Reads (and records) the next client frame, waiting at most until `deadline`.
    pub async fn next_until(&mut self, deadline: Instant) -> Event {
        match timeout_at(deadline, self.reader.read_frame(&mut self.stream)).await {
            Err(_) => Event::Timeout,
            Ok(Ok(Some(f))) => {
                self.rec.frame(&f);
                Event::Frame(f)
            }
            Ok(Ok(None)) => {
                self.rec.client_closed();
                Event::Eof
            }
            Ok(Err(e)) => {
                if is_gone(&e) {
                    self.rec.client_closed();
                }
                Event::Eof
            }
        }
    }

    /// Writes raw bytes and flushes.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends one complete unmasked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.write(&frames::encode(true, opcode, payload)).await
    }

    /// Keeps reading (and recording) frames until EOF or `deadline`.
    pub async fn hold(&mut self, deadline: Instant) {
        while let Event::Frame(_) = self.next_until(deadline).await {}
    }

    /// Closes our side of TCP (FIN, after TLS close_notify) and drains the client briefly.
    pub async fn close_tcp(&mut self) {
        self.rec.server_closed();
        let _ = timeout(DRAIN, self.stream.shutdown()).await;
        self.hold(Instant::now() + DRAIN).await;
    }

    /// Resets the connection (SO_LINGER 0, then close).
    pub fn reset(self) {
        let _ = self.stream.tcp().set_zero_linger();
        // Drop closes the socket, which sends RST.
    }

    /// Echoes data messages (reassembling fragments) and answers pings until the
    /// connection ends or `deadline` passes. Client Close frames are handled per `on_close`.
    pub async fn echo(&mut self, on_close: OnClose, deadline: Option<Instant>) -> Flow {
        let mut partial: Option<(u8, Vec<u8>)> = None;
        loop {
            let idle = Instant::now() + IDLE;
            let limit = deadline.map_or(idle, |d| d.min(idle));
            let f = match self.next_until(limit).await {
                Event::Frame(f) => f,
                Event::Eof => return Flow::Done,
                Event::Timeout if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Flow::Deadline
                }
                Event::Timeout => return Flow::Done,
            };
            let sent = match f.opcode {
                frames::OP_TEXT | frames::OP_BINARY if f.fin => {
                    self.send(f.opcode, &f.payload).await
                }
                frames::OP_TEXT | frames::OP_BINARY => {
                    partial = Some((f.opcode, f.payload));
                    Ok(())
                }
                frames::OP_CONT => match partial.as_mut() {
                    Some((_, buf)) if buf.len() + f.payload.len() > frames::MAX_PAYLOAD => {
                        return Flow::Done
                    }
                    Some((_, buf)) => {
                        buf.extend_from_slice(&f.payload);
                        match (f.fin, partial.take()) {
                            (true, Some((op, buf))) => self.send(op, &buf).await,
                            (_, p) => {
                                partial = p;
                                Ok(())
                            }
                        }
                    }
                    None => Ok(()),
                },
                frames::OP_PING => self.send(frames::OP_PONG, &f.payload).await,
                frames::OP_CLOSE => {
                    match on_close {
                        OnClose::Reply(delay) => {
                            sleep(delay).await;
                            if self.send(frames::OP_CLOSE, &f.payload).await.is_ok() {
                                self.close_tcp().await;
                            }
                        }
                        OnClose::Ignore => self.hold(Instant::now() + HOLD).await,
                        OnClose::CloseTcp => self.close_tcp().await,
                    }
                    return Flow::Done;
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                return Flow::Done;
            }
        }
    }
}
