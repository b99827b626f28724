//! The neutral benchmark server: tokio current_thread + tokio-tungstenite, TCP_NODELAY, no
//! compression (tungstenite has none). Every connection gets a real tungstenite handshake;
//! the request path then picks the behaviour:
//!
//! - `/echo`: tungstenite echoes every text/binary message (round trips, connections, setup).
//! - `/push?n=N&size=S`: sends N binary messages of S bytes as fast as it can, then the text
//!   `done`. The frames are encoded once into a ~1 MiB block that is written again and again
//!   (see peerbench.md: going through tungstenite's Sink per message caps the server below
//!   the fastest clients, so it would measure the server, not the client).
//! - `/sink?n=N`: counts the client's messages with a frame skipper (no unmasking, no copy),
//!   and sends the text `done` once N messages arrived. Again, so the server is never the limit.
//! - `/raw`: after the handshake, plain TCP: every byte is echoed as it arrives (no framing,
//!   no store-and-forward). The C raw client uses it for the loopback round-trip floor.
//!
//! Push and sink answer the client's Close frame themselves (code echoed) and then close TCP.
//!
//! Usage: `bench-server [--port P]`; prints `PORT <p>` on stdout once listening.

use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const BLOCK: usize = 1 << 20;

fn main() {
    let mut port: u16 = 0;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().and_then(|v| v.parse().ok()).expect("--port N"),
            other => {
                eprintln!("usage: bench-server [--port P] (unknown {other})");
                std::process::exit(2);
            }
        }
    }
    wsdom_bench::raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(serve(port));
}

async fn serve(port: u16) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(([127, 0, 0, 1], port).into())
        .unwrap_or_else(|e| wsdom_bench::fail(format!("bind 127.0.0.1:{port}: {e}")));
    let listener = socket.listen(16384).expect("listen");
    let port = listener.local_addr().expect("addr").port();
    println!("PORT {port}");
    std::io::stdout().flush().ok();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = handle(stream).await;
                });
            }
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

/// The query parameter `key` of `path`, as a number.
fn param(path: &str, key: &str) -> Option<usize> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

// The handshake callback's error type is tungstenite's, large by its design.
#[allow(clippy::result_large_err)]
async fn handle(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| {
        path = req.uri().to_string();
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config()))
        .await
        .map_err(std::io::Error::other)?;
    let route = path.split('?').next().unwrap_or("").to_string();
    match route.as_str() {
        "/push" => {
            let n = param(&path, "n").unwrap_or(1000);
            let size = param(&path, "size").unwrap_or(64);
            push(ws.into_inner(), n, size).await
        }
        "/sink" => {
            let n = param(&path, "n").unwrap_or(1000);
            sink(ws.into_inner(), n).await
        }
        "/raw" => raw_echo(ws.into_inner()).await,
        _ => echo(ws).await,
    }
}

async fn echo(mut ws: tokio_tungstenite::WebSocketStream<TcpStream>) -> std::io::Result<()> {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(m @ (Message::Binary(_) | Message::Text(_))) => {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            Ok(_) => {} // ping/pong/close: tungstenite answers them itself
            Err(_) => break,
        }
    }
    Ok(())
}

/// Appends a server (unmasked) frame header.
fn header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
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

async fn push(mut tcp: TcpStream, n: usize, size: usize) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(size + 10);
    header(&mut frame, 0x2, size);
    frame.resize(frame.len() + size, wsdom_bench::FILL);
    let per_block = (BLOCK / frame.len()).max(1);
    let block: Vec<u8> = frame.repeat(per_block);
    let mut left = n;
    while left >= per_block {
        tcp.write_all(&block).await?;
        left -= per_block;
    }
    if left > 0 {
        tcp.write_all(&block[..left * frame.len()]).await?;
    }
    let mut done = Vec::new();
    header(&mut done, 0x1, 4);
    done.extend_from_slice(b"done");
    tcp.write_all(&done).await?;
    // Then wait for the client's Close (or EOF) and answer it.
    let mut reader = FrameReader::new();
    loop {
        match reader.next(&mut tcp).await? {
            Frame::Eof => return Ok(()),
            Frame::Close(code) => return close_reply(tcp, code).await,
            Frame::Data { .. } | Frame::Other => {}
        }
    }
}

async fn sink(mut tcp: TcpStream, n: usize) -> std::io::Result<()> {
    let mut reader = FrameReader::new();
    let mut count = 0usize;
    if n == 0 {
        tcp.write_all(b"\x81\x04done").await?;
    }
    loop {
        match reader.next(&mut tcp).await? {
            Frame::Eof => return Ok(()),
            Frame::Close(code) => return close_reply(tcp, code).await,
            Frame::Data { fin } => {
                if fin {
                    count += 1;
                    if count == n {
                        tcp.write_all(b"\x81\x04done").await?;
                    }
                }
            }
            Frame::Other => {}
        }
    }
}

async fn close_reply(mut tcp: TcpStream, code: Option<u16>) -> std::io::Result<()> {
    let mut reply = vec![0x88];
    match code {
        Some(c) => {
            reply.push(2);
            reply.extend_from_slice(&c.to_be_bytes());
        }
        None => reply.push(0),
    }
    tcp.write_all(&reply).await?;
    tcp.shutdown().await?;
    Ok(())
}

async fn raw_echo(mut tcp: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        tcp.write_all(&buf[..n]).await?;
    }
}

enum Frame {
    /// A data frame (text, binary or continuation); `fin` ends a message.
    Data {
        fin: bool,
    },
    /// The client's Close frame, with its code if it had one.
    Close(Option<u16>),
    /// Ping/pong: ignored (the clients are run without keepalive).
    Other,
    Eof,
}

/// Skips client frames without copying or unmasking their payloads.
struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// The data frame being skipped (its FIN bit), reported once skipped.
    pending: Option<bool>,
}

impl FrameReader {
    fn new() -> FrameReader {
        FrameReader {
            buf: vec![0; 256 << 10],
            start: 0,
            end: 0,
            skip: 0,
            pending: None,
        }
    }

    async fn fill(&mut self, tcp: &mut TcpStream) -> std::io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = tcp.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    async fn next(&mut self, tcp: &mut TcpStream) -> std::io::Result<Frame> {
        loop {
            if self.skip > 0 {
                let avail = (self.end - self.start) as u64;
                let take = avail.min(self.skip);
                self.start += take as usize;
                self.skip -= take;
                if self.skip > 0 {
                    self.start = 0;
                    self.end = 0;
                    if !self.fill(tcp).await? {
                        return Ok(Frame::Eof);
                    }
                    continue;
                }
            }
            if let Some(fin) = self.pending.take() {
                return Ok(Frame::Data { fin });
            }
            match self.parse() {
                // A data frame counts once its whole payload has arrived.
                Some(Frame::Data { fin }) => {
                    self.pending = Some(fin);
                    continue;
                }
                Some(frame) => return Ok(frame),
                None => {}
            }
            if !self.fill(tcp).await? {
                return Ok(Frame::Eof);
            }
        }
    }

    /// Parses one frame header at `start` if it is complete (and the whole payload of a
    /// Close frame, whose code we need).
    fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return None;
        }
        let fin = b[0] & 0x80 != 0;
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 => {
                if b.len() < 4 {
                    return None;
                }
                (u16::from_be_bytes([b[2], b[3]]) as u64, 4)
            }
            127 => {
                if b.len() < 10 {
                    return None;
                }
                (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10)
            }
            l => (l as u64, 2),
        };
        let mask = if masked {
            if b.len() < at + 4 {
                return None;
            }
            at += 4;
            Some([b[at - 4], b[at - 3], b[at - 2], b[at - 1]])
        } else {
            None
        };
        if opcode == 0x8 {
            if (b.len() as u64) < at as u64 + len {
                return None;
            }
            let code = (len >= 2).then(|| {
                let m = mask.unwrap_or([0; 4]);
                u16::from_be_bytes([b[at] ^ m[0], b[at + 1] ^ m[1]])
            });
            self.start += at + len as usize;
            return Some(Frame::Close(code));
        }
        self.start += at;
        self.skip = len;
        Some(match opcode {
            0x0..=0x2 => Frame::Data { fin },
            _ => Frame::Other,
        })
    }
}
