//! `/deflate`: a permessage-deflate (RFC 7692) echo server, written against flate2 directly
//! (independently of the client's implementation), for compression round-trip tests.

use std::io;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::time::{sleep, Instant};

use crate::frames::{self, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT};
use crate::params::Target;
use crate::session::{Event, Session, Transport, IDLE};

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// The negotiated parameters of `/deflate?params=a;b=c`.
pub struct DeflateParams {
    /// The response header value.
    pub header: String,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
}

impl DeflateParams {
    /// Reads `params` from the query (`;`-separated, as they should appear in the header).
    pub fn from_target(target: &Target) -> DeflateParams {
        let raw = target.str("params").unwrap_or_default();
        let mut p = DeflateParams {
            header: "permessage-deflate".into(),
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
        };
        for param in raw.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            p.header.push_str("; ");
            p.header.push_str(param);
            match param.split_once('=') {
                Some(("server_max_window_bits", v)) => {
                    p.server_max_window_bits = v.parse().unwrap_or(15).clamp(9, 15)
                }
                None if param == "server_no_context_takeover" => {
                    p.server_no_context_takeover = true
                }
                None if param == "client_no_context_takeover" => {
                    p.client_no_context_takeover = true
                }
                _ => {}
            }
        }
        p
    }
}

fn inflate(d: &mut Decompress, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut input = data.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(input.len() * 4 + 64);
    let start = d.total_in();
    loop {
        let consumed = (d.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        d.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if (d.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if out.len() > frames::MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too big"));
        }
    }
}

fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let start = c.total_in();
    loop {
        let consumed = (c.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - 4);
    }
    if out.is_empty() {
        out.push(0x00); // an empty message after a flush: the empty stored block's header
    }
    out
}

/// Echoes every message compressed (RSV1), decompressing the client's compressed ones;
/// answers pings and echoes the client's Close.
pub async fn echo<S: Transport>(mut s: Session<S>, p: &DeflateParams) -> io::Result<()> {
    let mut inflater = Decompress::new_with_window_bits(false, 15);
    let mut deflater =
        Compress::new_with_window_bits(Compression::default(), false, p.server_max_window_bits);
    let mut partial: Option<(u8, bool, Vec<u8>)> = None;
    loop {
        let f = match s.next_until(Instant::now() + IDLE).await {
            Event::Frame(f) => f,
            _ => return Ok(()),
        };
        let complete = match f.opcode {
            OP_TEXT | OP_BINARY => {
                let msg = (f.opcode, f.rsv & 4 != 0, f.payload);
                if f.fin {
                    Some(msg)
                } else {
                    partial = Some(msg);
                    None
                }
            }
            OP_CONT => match partial.as_mut() {
                Some((_, _, buf)) => {
                    buf.extend_from_slice(&f.payload);
                    if f.fin {
                        partial.take()
                    } else {
                        None
                    }
                }
                None => None,
            },
            OP_PING => {
                s.send(OP_PONG, &f.payload).await?;
                None
            }
            OP_CLOSE => {
                s.send(OP_CLOSE, &f.payload).await?;
                sleep(Duration::from_millis(10)).await;
                s.close_tcp().await;
                return Ok(());
            }
            _ => None,
        };
        if let Some((opcode, compressed, data)) = complete {
            let data = if compressed {
                let out = inflate(&mut inflater, &data)?;
                if p.client_no_context_takeover {
                    inflater.reset(false);
                }
                out
            } else {
                data
            };
            let body = deflate(&mut deflater, &data);
            if p.server_no_context_takeover {
                deflater.reset();
            }
            let mut frame = frames::encode(true, opcode, &body);
            frame[0] |= 0x40; // RSV1: compressed
            s.write(&frame).await?;
        }
    }
}
