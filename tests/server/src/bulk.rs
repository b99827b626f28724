//! A fast echo server that records nothing, for load and soak tests (tests/reliability).
//!
//! The scenario server records every client frame (see [`crate::Observed`]), so its memory
//! grows with the traffic: fine for conformance tests, not for gigabytes of load. This server
//! answers every WebSocket path with an echo and keeps nothing:
//!
//! - frames are echoed as they come (unmasked, same FIN/RSV1/opcode), so fragmentation is
//!   preserved; pings get pongs; a Close gets the same code back, then the server closes TCP;
//! - on `/deflate`, when the client offers permessage-deflate, it is accepted with
//!   `server_no_context_takeover; client_no_context_takeover`: every message is then
//!   compressed on its own, so a compressed client message echoed verbatim is a valid
//!   compressed server message.
//!
//! Loopback only, one tokio current-thread runtime on its own thread, like [`crate::TestServer`].

use crate::ServerThread;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::handshake;

/// Largest frame payload echoed; a larger one ends the connection (1009).
const MAX_FRAME: u64 = 64 << 20;
/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The extension answer on `/deflate`.
const DEFLATE: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A running non-recording echo server; stopped by [`BulkEchoServer::stop`] or on drop.
pub struct BulkEchoServer {
    port: u16,
    _thread: ServerThread,
}

impl BulkEchoServer {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub fn start() -> io::Result<BulkEchoServer> {
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let port = socket.local_addr()?.port();
        let thread = ServerThread::spawn(format!("wsdom-bulk-echo-{port}"), move |stop| async {
            // A deep backlog: load tests open a thousand connections at once.
            if let Ok(listener) = socket.listen(4096) {
                serve(listener, stop).await;
            }
        })?;
        Ok(BulkEchoServer {
            port,
            _thread: thread,
        })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server and closes all its connections (also done on drop).
    pub fn stop(self) {
        drop(self);
    }
}

async fn serve(listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(connection(tcp));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn connection(mut tcp: TcpStream) {
    let Ok(Ok((req, leftover))) =
        tokio::time::timeout(REQUEST_TIMEOUT, handshake::read_request(&mut tcp)).await
    else {
        return;
    };
    let key = match handshake::check_upgrade(&req) {
        Ok(key) => key,
        Err(resp) => {
            let _ = tcp.write_all(&resp).await;
            return;
        }
    };
    let path = req.target.split('?').next().unwrap_or("");
    let offered_deflate = req
        .tokens("sec-websocket-extensions")
        .iter()
        .any(|t| t.split(';').next().unwrap_or("").trim() == "permessage-deflate");
    let extensions = (path == "/deflate" && offered_deflate).then_some(DEFLATE);
    let protocol = req.tokens("sec-websocket-protocol").into_iter().next();
    let resp = handshake::accept_response(&key, protocol.as_deref(), extensions);
    if tcp.write_all(&resp).await.is_err() {
        return;
    }
    let _ = echo(tcp, leftover).await;
}

/// What one parsed client frame asks for.
enum Step {
    /// Need more bytes.
    More,
    /// A frame of `len` bytes was handled; keep going.
    Next(usize),
    /// A Close was answered, or the client broke the protocol: stop.
    Stop(usize),
}

/// Parses one client frame at the start of `buf`, unmasks it and appends the reply to `out`.
fn step(buf: &mut [u8], out: &mut Vec<u8>) -> Step {
    if buf.len() < 2 {
        return Step::More;
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let (len, mut pos) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return Step::More,
        n => (n as u64, 2),
    };
    if len > MAX_FRAME {
        out.extend_from_slice(&[0x88, 2, 0x03, 0xf1]); // 1009
        return Step::Stop(buf.len());
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Step::More;
        }
        let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    let total = pos + len as usize;
    if buf.len() < total {
        return Step::More;
    }
    let payload = &mut buf[pos..total];
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i & 3];
        }
    }
    let opcode = b0 & 0x0f;
    match opcode {
        0x8 => {
            let code = if payload.len() >= 2 {
                &payload[..2]
            } else {
                &[][..]
            };
            out.extend_from_slice(&[0x88, code.len() as u8]);
            out.extend_from_slice(code);
            return Step::Stop(total);
        }
        0x9 => header(out, 0x8a, payload.len()),
        0xa => return Step::Next(total),
        _ => header(out, b0, payload.len()),
    }
    out.extend_from_slice(payload);
    Step::Next(total)
}

fn header(out: &mut Vec<u8>, b0: u8, len: usize) {
    out.push(b0);
    if len < 126 {
        out.push(len as u8);
    } else if len < 65536 {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

async fn echo(mut tcp: TcpStream, leftover: Vec<u8>) -> io::Result<()> {
    let mut buf = leftover;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let mut stop = false;
        loop {
            match step(&mut buf[start..], &mut out) {
                Step::More => break,
                Step::Next(n) => start += n,
                Step::Stop(n) => {
                    start += n;
                    stop = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            tcp.write_all(&out).await?;
            out.clear();
        }
        if stop {
            let _ = tcp.shutdown().await;
            return Ok(());
        }
        buf.drain(..start);
        start = 0;
        if buf.capacity() > (1 << 20) && buf.len() < (64 << 10) {
            buf.shrink_to(64 << 10); // give memory back after a large frame
        }
        buf.reserve(64 << 10);
        if tcp.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_echoed_unmasked_and_close_is_answered() {
        // A masked "Hi" text frame, a masked ping, then a Close 1000.
        let mut buf = vec![0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
        buf.extend([0x89, 0x80, 0, 0, 0, 0]);
        buf.extend([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
        let mut out = Vec::new();
        let mut start = 0;
        let mut steps = 0;
        loop {
            match step(&mut buf[start..], &mut out) {
                Step::Next(n) => start += n,
                Step::Stop(n) => {
                    start += n;
                    break;
                }
                Step::More => panic!("complete frames"),
            }
            steps += 1;
        }
        assert_eq!(steps, 2);
        assert_eq!(start, buf.len());
        assert_eq!(out, [0x81, 2, b'H', b'i', 0x8a, 0, 0x88, 2, 0x03, 0xe8]);
        assert!(matches!(
            step(&mut [0x82, 0xfe, 0][..], &mut out),
            Step::More
        ));
    }
}
