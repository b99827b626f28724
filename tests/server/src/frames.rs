//! Minimal WebSocket frame codec: parses (and unmasks) client frames exactly as
//! sent, and encodes unmasked server frames.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Continuation frame opcode.
pub const OP_CONT: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// Largest payload accepted from a client in one frame (and one message).
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// One frame as received from the client, payload already unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    pub rsv: u8,
    /// 4-bit opcode.
    pub opcode: u8,
    /// Whether the MASK bit was set.
    pub masked: bool,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

/// Incremental, cancel-safe frame reader: bytes are buffered internally, so a
/// `read_frame` future may be dropped (e.g. by a timeout) without losing data.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Creates a reader that first consumes `leftover` (bytes read past the HTTP request).
    pub fn new(leftover: Vec<u8>) -> Self {
        FrameReader { buf: leftover }
    }

    /// Tries to take one complete frame out of the buffer.
    pub fn parse(&mut self) -> io::Result<Option<Frame>> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        let rsv = (b[0] >> 4) & 0x07;
        let opcode = b[0] & 0x0F;
        let masked = b[1] & 0x80 != 0;
        let len7 = b[1] & 0x7F;
        let mut pos = 2usize;
        let len: u64 = match len7 {
            126 => {
                if b.len() < pos + 2 {
                    return Ok(None);
                }
                let l = u16::from_be_bytes([b[2], b[3]]) as u64;
                pos += 2;
                l
            }
            127 => {
                if b.len() < pos + 8 {
                    return Ok(None);
                }
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[2..10]);
                pos += 8;
                u64::from_be_bytes(a)
            }
            n => n as u64,
        };
        if len > MAX_PAYLOAD as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "client frame too large",
            ));
        }
        let len = len as usize;
        let mut key = [0u8; 4];
        if masked {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            key.copy_from_slice(&b[pos..pos + 4]);
            pos += 4;
        }
        if b.len() < pos + len {
            return Ok(None);
        }
        let mut payload = b[pos..pos + len].to_vec();
        if masked {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= key[i & 3];
            }
        }
        self.buf.drain(..pos + len);
        Ok(Some(Frame {
            fin,
            rsv,
            opcode,
            masked,
            payload,
        }))
    }

    /// Reads the next frame. `Ok(None)` means the peer closed the connection
    /// (EOF), even if it did so in the middle of a frame.
    pub async fn read_frame<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.parse()? {
                return Ok(Some(f));
            }
            let mut tmp = [0u8; 16 * 1024];
            let n = r.read(&mut tmp).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
}

/// Encodes one unmasked server frame with RSV bits clear.
pub fn encode(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_into(&mut out, fin, opcode, payload);
    out
}

/// Appends one unmasked server frame with RSV bits clear to `out`.
pub fn encode_into(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Builds a Close frame body: 2-byte big-endian code followed by the reason.
pub fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_unmasked_and_masked() {
        let mut r = FrameReader::new(encode(true, OP_TEXT, b"hi"));
        let f = r.parse().unwrap().unwrap();
        assert_eq!(
            (f.fin, f.opcode, f.masked, &f.payload[..]),
            (true, 1, false, &b"hi"[..])
        );

        // Masked "Hello" from RFC 6455 section 5.7.
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut r = FrameReader::new(masked[..5].to_vec());
        assert!(r.parse().unwrap().is_none());
        r.buf.extend_from_slice(&masked[5..]);
        let f = r.parse().unwrap().unwrap();
        assert!(f.masked);
        assert_eq!(f.payload, b"Hello");
    }

    #[test]
    fn extended_lengths() {
        for len in [125usize, 126, 65535, 65536] {
            let payload = vec![b'x'; len];
            let mut r = FrameReader::new(encode(false, OP_BINARY, &payload));
            let f = r.parse().unwrap().unwrap();
            assert_eq!(f.payload.len(), len);
            assert!(!f.fin);
        }
    }
}
