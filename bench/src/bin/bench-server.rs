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
//! With permessage-deflate (RFC 7692), for the compression workloads; the message pools come
//! from `--pools DIR` (`DIR/NAME.pool`, see `wsdom_bench::Pool`), loaded and compressed once
//! at start-up, before `PORT` is printed:
//!
//! - `/zpush?n=N&pool=NAME`: sends the pool's messages in turn (N in all), each compressed
//!   once up front at zlib's default level with no context takeover (so every frame is
//!   independent), RSV1 set on every one, even where compression does not help (random
//!   bytes grow by a few bytes: a naive server); then the text `done`. Like `/push`, the
//!   frames are written in ~1 MiB blocks.
//! - `/zsink?n=N&pool=NAME`: counts the client's messages with the frame skipper, adds up
//!   the bytes of the data frames on the wire (headers, mask keys and payloads) and the
//!   messages whose first frame has RSV1 set, and once N messages arrived answers the text
//!   `done <wire_bytes> <rsv1_messages>`. With `--verify` it also unmasks and inflates every
//!   message and checks it against the pool (`error <why>` instead of `done` on a mismatch).
//!
//! A z route answers `Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover`
//! (plus `client_max_window_bits=B` when the client offered it: B = its value, or 15), which
//! RFC 7692 lets a server add unasked. A client that offers no permessage-deflate gets
//! HTTP 400 with the reason in the body: a compression run never silently measures without.
//!
//! Push and sink answer the client's Close frame themselves (code echoed) and then close TCP.
//!
//! Usage: `bench-server [--port P] [--pools DIR] [--verify]`; prints `PORT <p>` on stdout
//! once listening.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use wsdom_bench::Pool;

const BLOCK: usize = 1 << 20;

/// The trailer of a sync flush, which permessage-deflate leaves off the wire (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The pools of `--pools DIR` by name, and whether `/zsink` checks what it receives.
struct Z {
    pools: HashMap<String, Arc<ZPool>>,
    verify: bool,
}

static Z_STATE: OnceLock<Z> = OnceLock::new();

fn main() {
    let mut port: u16 = 0;
    let mut pools_dir = None;
    let mut verify = false;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--pools" => pools_dir = Some(it.next().expect("--pools DIR").clone()),
            "--verify" => verify = true,
            other => {
                eprintln!(
                    "usage: bench-server [--port P] [--pools DIR] [--verify] (unknown {other})"
                );
                std::process::exit(2);
            }
        }
    }
    let pools = match pools_dir {
        Some(dir) => load_pools(Path::new(&dir)),
        None => HashMap::new(),
    };
    let _ = Z_STATE.set(Z { pools, verify });
    wsdom_bench::raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(serve(port));
}

/// Loads and compresses every `DIR/*.pool` (exits on a bad one).
fn load_pools(dir: &Path) -> HashMap<String, Arc<ZPool>> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| wsdom_bench::fail(format!("--pools {}: {e}", dir.display())));
    let mut pools = HashMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pool") {
            continue;
        }
        let pool = Pool::load(&path).unwrap_or_else(|e| wsdom_bench::fail(e));
        let name = wsdom_bench::pool_name(&path.to_string_lossy());
        pools.insert(name, Arc::new(ZPool::new(pool)));
    }
    pools
}

/// A pool and its pre-encoded `/zpush` frames.
struct ZPool {
    pool: Pool,
    /// The compressed frames of the pool, in order, repeated to fill at least ~1 MiB.
    cycle: Vec<u8>,
    /// End offset in `cycle` of every frame.
    ends: Vec<usize>,
}

impl ZPool {
    fn new(pool: Pool) -> ZPool {
        let opcode = if pool.text { 0x1 } else { 0x2 };
        let mut pass = Vec::new();
        let mut pass_ends = Vec::new();
        let mut z = Vec::new();
        for m in &pool.messages {
            // A fresh compressor per message: no context takeover, as the server announces.
            let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
            deflate(&mut c, m, &mut z);
            header(&mut pass, 0x40 | opcode, z.len());
            pass.extend_from_slice(&z);
            pass_ends.push(pass.len());
        }
        let times = BLOCK.div_ceil(pass.len()).max(1);
        let mut cycle = Vec::with_capacity(pass.len() * times);
        let mut ends = Vec::with_capacity(pass_ends.len() * times);
        for _ in 0..times {
            let base = cycle.len();
            cycle.extend_from_slice(&pass);
            ends.extend(pass_ends.iter().map(|e| base + e));
        }
        ZPool { pool, cycle, ends }
    }
}

/// Compresses one message into `out` with a sync flush, without the trailer (RFC 7692 7.2.1).
fn deflate(c: &mut Compress, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(data.len() + data.len() / 1000 + 64);
    let start = c.total_in();
    loop {
        let consumed = (c.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        c.compress_vec(&data[consumed..], out, FlushCompress::Sync)
            .expect("deflate");
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - 4);
    }
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
    param_str(path, key).and_then(|v| v.parse().ok())
}

/// The query parameter `key` of `path`.
fn param_str<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// The `Sec-WebSocket-Extensions` answer to the first permessage-deflate offer of `req` that
/// the bench server can accept, or why there is none.
fn accept_deflate(req: &Request, push: bool) -> Result<String, String> {
    let mut seen = Vec::new();
    for value in req.headers().get_all("sec-websocket-extensions") {
        let value = value.to_str().map_err(|_| "a non-ASCII extension header")?;
        seen.push(value.to_string());
        'offer: for offer in value.split(',') {
            let mut parts = offer.split(';').map(str::trim);
            if !parts
                .next()
                .unwrap_or("")
                .eq_ignore_ascii_case("permessage-deflate")
            {
                continue;
            }
            let mut answer = String::from("permessage-deflate; server_no_context_takeover");
            for p in parts {
                let (key, value) = match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p, None),
                };
                let bits = value.and_then(|v| v.parse::<u8>().ok());
                match (key.to_ascii_lowercase().as_str(), value, bits) {
                    ("client_max_window_bits", None, _) => {
                        answer.push_str("; client_max_window_bits=15")
                    }
                    ("client_max_window_bits", Some(_), Some(b @ 8..=15)) => {
                        answer.push_str(&format!("; client_max_window_bits={b}"))
                    }
                    // /zpush's frames were compressed with a 15-bit window.
                    ("server_max_window_bits", Some(_), Some(15)) => {
                        answer.push_str("; server_max_window_bits=15")
                    }
                    ("server_max_window_bits", Some(_), Some(b @ 8..=14)) if !push => {
                        answer.push_str(&format!("; server_max_window_bits={b}"))
                    }
                    // The server resets after every message anyway; the client may too.
                    ("server_no_context_takeover", None, _)
                    | ("client_no_context_takeover", None, _) => {}
                    _ => continue 'offer,
                }
            }
            return Ok(answer);
        }
    }
    Err(if seen.is_empty() {
        "bench-server: this route needs permessage-deflate, and the client did not offer it"
            .to_string()
    } else {
        format!(
            "bench-server: this route needs permessage-deflate, and no offer in {seen:?} \
             can be accepted"
        )
    })
}

fn refuse(why: String) -> ErrorResponse {
    eprintln!("{why}");
    let mut resp = ErrorResponse::new(Some(why));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

// The handshake callback's error type is tungstenite's, large by its design.
#[allow(clippy::result_large_err)]
async fn handle(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut path = String::new();
    let mut zpool = None;
    let callback = |req: &Request, mut resp: Response| {
        path = req.uri().to_string();
        let route = req.uri().path();
        if route == "/zpush" || route == "/zsink" {
            let push = route == "/zpush";
            let name = param_str(&path, "pool").unwrap_or("");
            let z = Z_STATE.get().expect("state");
            zpool = z.pools.get(name).cloned();
            if push && zpool.is_none() {
                return Err(refuse(format!(
                    "bench-server: no pool {name:?} (start it with --pools DIR)"
                )));
            }
            let answer = accept_deflate(req, push).map_err(refuse)?;
            resp.headers_mut().insert(
                "sec-websocket-extensions",
                HeaderValue::from_str(&answer).expect("header"),
            );
        }
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config()))
        .await
        .map_err(std::io::Error::other)?;
    let route = path.split('?').next().unwrap_or("").to_string();
    match route.as_str() {
        "/zpush" => {
            let n = param(&path, "n").unwrap_or(1000);
            zpush(ws.into_inner(), zpool.expect("pool"), n).await
        }
        "/zsink" => {
            let n = param(&path, "n").unwrap_or(1000);
            let verify = Z_STATE.get().expect("state").verify;
            zsink(ws.into_inner(), zpool.filter(|_| verify), n).await
        }
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

/// Appends a server (unmasked, final) frame header; `opcode` may carry RSV bits (0x40 = RSV1).
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
            Frame::Data { fin, .. } => {
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

async fn zpush(mut tcp: TcpStream, zp: Arc<ZPool>, n: usize) -> std::io::Result<()> {
    let per_cycle = zp.ends.len();
    let mut left = n;
    while left >= per_cycle {
        tcp.write_all(&zp.cycle).await?;
        left -= per_cycle;
    }
    if left > 0 {
        tcp.write_all(&zp.cycle[..zp.ends[left - 1]]).await?;
    }
    tcp.write_all(&text_frame("done")).await?;
    let mut reader = FrameReader::new();
    loop {
        match reader.next(&mut tcp).await? {
            Frame::Eof => return Ok(()),
            Frame::Close(code) => return close_reply(tcp, code).await,
            Frame::Data { .. } | Frame::Other => {}
        }
    }
}

/// Checks the messages `/zsink` receives against the pool (`--verify`).
struct Verifier {
    zp: Arc<ZPool>,
    inflate: Decompress,
    out: Vec<u8>,
}

impl Verifier {
    fn check(
        &mut self,
        index: usize,
        opcode: u8,
        rsv1: bool,
        payload: &[u8],
    ) -> Result<(), String> {
        let zp = self.zp.clone();
        let pool = &zp.pool;
        let want = pool.get(index);
        let want_op = if pool.text { 1 } else { 2 };
        if opcode != want_op {
            return Err(format!(
                "message {index}: opcode {opcode}, expected {want_op}"
            ));
        }
        let got: &[u8] = if rsv1 {
            self.inflate(payload, want.len())
                .map_err(|e| format!("message {index}: {e}"))?;
            &self.out
        } else {
            payload
        };
        if got != want {
            return Err(format!(
                "message {index}: {} bytes that differ from the pool's {} bytes",
                got.len(),
                want.len()
            ));
        }
        Ok(())
    }

    /// Inflates one message; the context carries over (the client may keep its context).
    fn inflate(&mut self, data: &[u8], expect: usize) -> Result<(), String> {
        let d = &mut self.inflate;
        let out = &mut self.out;
        out.clear();
        out.reserve(expect + 64);
        let mut ended = false;
        for input in [data, &TAIL[..]] {
            let start = d.total_in();
            while !ended {
                let consumed = (d.total_in() - start) as usize;
                if out.len() == out.capacity() {
                    if out.len() > expect + 4096 {
                        return Err(format!("inflates to more than {expect} bytes"));
                    }
                    out.reserve(4096);
                }
                let before = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                    .map_err(|e| format!("bad deflate data: {e}"))?;
                ended = status == Status::StreamEnd;
                let all_in = (d.total_in() - start) as usize == input.len();
                if out.len() < out.capacity() && (all_in || (d.total_in(), d.total_out()) == before)
                {
                    break;
                }
            }
        }
        if ended {
            d.reset(false);
        }
        Ok(())
    }
}

async fn zsink(mut tcp: TcpStream, verify: Option<Arc<ZPool>>, n: usize) -> std::io::Result<()> {
    let mut reader = FrameReader::new();
    let mut verifier = verify.map(|zp| {
        reader.collect = Some(Vec::new());
        Verifier {
            zp,
            inflate: Decompress::new_with_window_bits(false, 15),
            out: Vec::new(),
        }
    });
    let (mut count, mut wire, mut rsv1_messages) = (0usize, 0u64, 0u64);
    // The first frame of the message being received: its opcode and RSV1 bit.
    let mut first: Option<(u8, bool)> = None;
    let mut failed = false;
    if n == 0 {
        tcp.write_all(&text_frame("done 0 0")).await?;
    }
    loop {
        match reader.next(&mut tcp).await? {
            Frame::Eof => return Ok(()),
            Frame::Close(code) => return close_reply(tcp, code).await,
            Frame::Data {
                fin,
                opcode,
                rsv1,
                wire: w,
            } => {
                wire += w;
                let (op, compressed) = *first.get_or_insert((opcode, rsv1));
                if !fin {
                    continue;
                }
                first = None;
                if compressed {
                    rsv1_messages += 1;
                }
                if let (Some(v), false) = (verifier.as_mut(), failed) {
                    let mut payload = reader.collect.take().unwrap_or_default();
                    if let Err(why) = v.check(count, op, compressed, &payload) {
                        // Answer the error instead of `done`, and check no further.
                        failed = true;
                        tcp.write_all(&text_frame(&format!("error {why}"))).await?;
                    } else {
                        payload.clear();
                        reader.collect = Some(payload);
                    }
                }
                count += 1;
                if count == n && !failed {
                    let text = format!("done {wire} {rsv1_messages}");
                    tcp.write_all(&text_frame(&text)).await?;
                }
            }
            Frame::Other => {}
        }
    }
}

/// A server text frame.
fn text_frame(text: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(text.len() + 4);
    header(&mut frame, 0x1, text.len());
    frame.extend_from_slice(text.as_bytes());
    frame
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
        /// 0 (continuation), 1 (text) or 2 (binary).
        opcode: u8,
        /// RSV1: the message is compressed (permessage-deflate; first frame only).
        rsv1: bool,
        /// Bytes of the frame on the wire: header, mask key and payload.
        wire: u64,
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
    /// The data frame being skipped, reported once skipped.
    pending: Option<Frame>,
    /// When set, the payloads of data frames are unmasked and appended here (`--verify`).
    collect: Option<Vec<u8>>,
    /// The mask key of the current frame and the payload bytes of it seen so far.
    mask: [u8; 4],
    mask_at: usize,
}

impl FrameReader {
    fn new() -> FrameReader {
        FrameReader {
            buf: vec![0; 256 << 10],
            start: 0,
            end: 0,
            skip: 0,
            pending: None,
            collect: None,
            mask: [0; 4],
            mask_at: 0,
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
                if let Some(c) = self.collect.as_mut() {
                    if self.pending.is_some() {
                        let from = c.len();
                        c.extend_from_slice(&self.buf[self.start..self.start + take as usize]);
                        for (i, b) in c[from..].iter_mut().enumerate() {
                            *b ^= self.mask[(self.mask_at + i) & 3];
                        }
                        self.mask_at += take as usize;
                    }
                }
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
            if let Some(frame) = self.pending.take() {
                return Ok(frame);
            }
            match self.parse() {
                // A data frame counts once its whole payload has arrived.
                Some(frame @ Frame::Data { .. }) => {
                    self.pending = Some(frame);
                    self.mask_at = 0;
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
        let rsv1 = b[0] & 0x40 != 0;
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
        self.mask = mask.unwrap_or([0; 4]);
        Some(match opcode {
            0x0..=0x2 => Frame::Data {
                fin,
                opcode,
                rsv1,
                wire: at as u64 + len,
            },
            _ => Frame::Other,
        })
    }
}
