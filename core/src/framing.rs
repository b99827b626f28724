//! RFC 6455 framing for a client: masked outgoing frames, and incoming frames checked and
//! reassembled into messages. Pure logic with no I/O, so it can be fuzzed and run under Miri.

use crate::deflate::Inflater;
use crate::event::Message;
use bytes::{Buf, Bytes, BytesMut};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close code for protocol errors (RFC 6455 §7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for invalid UTF-8 in a text message or close reason.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code for a message or frame above the configured size limit.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Unfragmented binary payloads of at least this many bytes are handed out as a view of the
/// read buffer instead of a copy (see [`take_payload`]).
const SHARE_MIN: usize = 4096;

/// Appends one masked client frame (FIN set) carrying `payload` to `out`; returns the header
/// length, so callers can tell framing bytes from payload bytes.
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> usize {
    encode_frame_rsv1(opcode, false, payload, out)
}

/// As [`encode_frame`], with RSV1 set when `compressed` (permessage-deflate).
pub fn encode_frame_rsv1(
    opcode: OpCode,
    compressed: bool,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    let mask: [u8; 4] = rand::random();
    let header = FrameHeader {
        is_final: true,
        rsv1: compressed,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(mask),
    };
    let start = out.len();
    let header_len = header.len(payload.len() as u64);
    out.reserve(header_len + payload.len());
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
    apply_mask(&mut out[start + header_len..], mask);
    header_len
}

/// A Close frame body: optional code and reason (the API has already validated both).
pub fn close_payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    match code {
        None => Vec::new(),
        Some(c) => {
            let mut body = c.to_be_bytes().to_vec();
            body.extend_from_slice(reason.as_bytes());
            body
        }
    }
}

/// XORs `buf` with the 4-byte mask, eight bytes at a time.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("chunk of 8")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// What one complete incoming frame means to the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete data message.
    Message(Message),
    /// A ping with its payload, to be answered with a pong.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// A Close frame: `None` for an empty body, else the code and the reason.
    Close(Option<(u16, String)>),
}

/// A violation of RFC 6455 by the server: the connection must fail with `close_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The code to send in our Close frame (1002, 1007 or 1009).
    pub close_code: u16,
    /// A diagnostic for the `error` event.
    pub message: String,
}

fn violation(close_code: u16, message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        close_code,
        message: message.into(),
    }
}

/// Limits on what a server may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest frame payload.
    pub max_frame_size: usize,
    /// Largest reassembled message.
    pub max_message_size: usize,
}

/// A message being reassembled from fragments.
struct Partial {
    is_text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Turns the server's byte stream into [`Incoming`] items, enforcing RFC 6455 §5
/// (and RFC 7692 when permessage-deflate was negotiated).
pub struct Assembler {
    limits: Limits,
    partial: Option<Partial>,
    /// Set when permessage-deflate is in use: RSV1 marks compressed messages.
    inflater: Option<Inflater>,
}

impl Assembler {
    /// A new assembler with no partial message and no extension.
    pub fn new(limits: Limits) -> Self {
        Assembler {
            limits,
            partial: None,
            inflater: None,
        }
    }

    /// A new assembler for a connection that negotiated permessage-deflate.
    pub fn with_inflater(limits: Limits, inflater: Inflater) -> Self {
        Assembler {
            inflater: Some(inflater),
            ..Assembler::new(limits)
        }
    }

    fn finish(&mut self, p: Partial) -> Result<Message, ProtocolError> {
        let data = if p.compressed {
            let inflater = self
                .inflater
                .as_mut()
                .expect("RSV1 only accepted with deflate");
            inflater
                .decompress(&p.data, self.limits.max_message_size)
                .map_err(|too_big| match too_big {
                    true => violation(
                        CLOSE_TOO_BIG,
                        format!(
                            "decompressed message exceeds the limit of {} bytes",
                            self.limits.max_message_size
                        ),
                    ),
                    false => violation(CLOSE_INVALID_DATA, "invalid compressed data"),
                })?
        } else {
            p.data
        };
        to_message(p.is_text, data)
    }

    /// Decodes the next frame from the front of `buf` and removes it from `buf`.
    ///
    /// Returns [`Decoded::NeedMore`] (leaving `buf` as it was) when `buf` holds no complete
    /// frame yet, else the item the frame completed, if any (`None` for a fragment). On an
    /// error the connection must fail; what is left in `buf` is unspecified.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        let mut cursor = Cursor::new(&buf[..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(Decoded::NeedMore(0)),
            Err(e) => return Err(violation(CLOSE_PROTOCOL_ERROR, format!("bad frame: {e}"))),
        };
        if header.mask.is_some() {
            return Err(violation(
                CLOSE_PROTOCOL_ERROR,
                "the server sent a masked frame",
            ));
        }
        let starts_message = matches!(
            header.opcode,
            OpCode::Data(Data::Text) | OpCode::Data(Data::Binary)
        );
        if header.rsv2
            || header.rsv3
            || (header.rsv1 && !(starts_message && self.inflater.is_some()))
        {
            return Err(violation(
                CLOSE_PROTOCOL_ERROR,
                "reserved bits set without a negotiated extension",
            ));
        }
        if len >> 63 != 0 {
            // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
            return Err(violation(
                CLOSE_PROTOCOL_ERROR,
                "frame length with the most significant bit set",
            ));
        }
        if len > self.limits.max_frame_size as u64 {
            return Err(violation(
                CLOSE_TOO_BIG,
                format!(
                    "frame of {len} bytes exceeds the limit of {} bytes",
                    self.limits.max_frame_size
                ),
            ));
        }
        let header_len = cursor.position() as usize;
        let len = len as usize;
        let total = header_len + len;
        if buf.len() < total {
            return Ok(Decoded::NeedMore(total - buf.len()));
        }
        let payload = &buf[header_len..total];
        let item = match header.opcode {
            OpCode::Control(control) => {
                if !header.is_final {
                    return Err(violation(CLOSE_PROTOCOL_ERROR, "fragmented control frame"));
                }
                if len > 125 {
                    return Err(violation(
                        CLOSE_PROTOCOL_ERROR,
                        format!("control frame with a {len}-byte payload (limit 125)"),
                    ));
                }
                Some(match control {
                    Control::Ping => Incoming::Ping(payload.to_vec()),
                    Control::Pong => Incoming::Pong,
                    Control::Close => Incoming::Close(parse_close(payload)?),
                    Control::Reserved(op) => {
                        return Err(violation(
                            CLOSE_PROTOCOL_ERROR,
                            format!("reserved opcode {op:#x}"),
                        ))
                    }
                })
            }
            OpCode::Data(Data::Continue) => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(violation(
                        CLOSE_PROTOCOL_ERROR,
                        "continuation frame without a message to continue",
                    ));
                };
                if partial.data.len() + len > self.limits.max_message_size {
                    let size = partial.data.len() + len;
                    return Err(too_big(size, self.limits.max_message_size));
                }
                partial.data.extend_from_slice(payload);
                if header.is_final {
                    let partial = self.partial.take().expect("checked above");
                    Some(Incoming::Message(self.finish(partial)?))
                } else {
                    None
                }
            }
            OpCode::Data(data_op) => {
                let is_text = match data_op {
                    Data::Text => true,
                    Data::Binary => false,
                    Data::Continue => unreachable!("handled above"),
                    Data::Reserved(op) => {
                        return Err(violation(
                            CLOSE_PROTOCOL_ERROR,
                            format!("reserved opcode {op:#x}"),
                        ))
                    }
                };
                if self.partial.is_some() {
                    return Err(violation(
                        CLOSE_PROTOCOL_ERROR,
                        "new data frame before the fragmented message finished",
                    ));
                }
                if len > self.limits.max_message_size {
                    return Err(too_big(len, self.limits.max_message_size));
                }
                if header.is_final && !header.rsv1 && !is_text {
                    let data = take_payload(buf, header_len, total);
                    return Ok(Decoded::Frame(Some(Incoming::Message(Message::Binary(
                        data,
                    )))));
                }
                let partial = Partial {
                    is_text,
                    compressed: header.rsv1,
                    data: payload.to_vec(),
                };
                if header.is_final {
                    Some(Incoming::Message(self.finish(partial)?))
                } else {
                    self.partial = Some(partial);
                    None
                }
            }
        };
        buf.advance(total);
        Ok(Decoded::Frame(item))
    }
}

/// Removes the frame of `total` bytes (header included) from the front of `buf` and returns its
/// payload. A large payload is split off the read buffer without a copy when that keeps at most
/// four times its size alive (the rest of the buffer's allocation stays with the message until
/// it is dropped); smaller ones are copied, so that a small message never pins a large buffer.
fn take_payload(buf: &mut BytesMut, header_len: usize, total: usize) -> Bytes {
    let len = total - header_len;
    if len >= SHARE_MIN && len * 4 >= buf.capacity() {
        let mut frame = buf.split_to(total);
        frame.advance(header_len);
        frame.freeze()
    } else {
        let payload = Bytes::copy_from_slice(&buf[header_len..total]);
        buf.advance(total);
        payload
    }
}

fn too_big(size: usize, limit: usize) -> ProtocolError {
    violation(
        CLOSE_TOO_BIG,
        format!("message of {size} bytes exceeds the limit of {limit} bytes"),
    )
}

/// The result of [`Assembler::decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough bytes for a whole frame; at least this many more are needed (0: unknown).
    NeedMore(usize),
    /// One frame was consumed; it completed this message or control item, if any.
    Frame(Option<Incoming>),
}

fn to_message(is_text: bool, data: Vec<u8>) -> Result<Message, ProtocolError> {
    if is_text {
        String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| violation(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message"))
    } else {
        Ok(Message::Binary(Bytes::from(data)))
    }
}

/// True for a close code that may appear on the wire (RFC 6455 §7.4).
pub fn is_valid_wire_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(violation(
            CLOSE_PROTOCOL_ERROR,
            "Close frame with a 1-byte body",
        )),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_wire_close_code(code) {
                return Err(violation(
                    CLOSE_PROTOCOL_ERROR,
                    format!("invalid close code {code} from the server"),
                ));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| violation(CLOSE_INVALID_DATA, "invalid UTF-8 in the close reason"))?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_frame_size: 1 << 20,
        max_message_size: 2 << 20,
    };

    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        match payload.len() {
            n if n < 126 => v.push(n as u8),
            n if n <= 0xffff => {
                v.push(126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(payload);
        v
    }

    /// Decodes all of `bytes`, returning the items, or the first error.
    fn decode_all(bytes: &[u8]) -> Result<Vec<Incoming>, ProtocolError> {
        let mut a = Assembler::new(LIMITS);
        let mut buf = BytesMut::from(bytes);
        let mut items = Vec::new();
        while !buf.is_empty() {
            let before = buf.len();
            match a.decode(&mut buf)? {
                Decoded::NeedMore(_) => panic!("truncated input in test"),
                Decoded::Frame(item) => {
                    assert!(buf.len() < before, "a frame consumes bytes");
                    items.extend(item);
                }
            }
        }
        Ok(items)
    }

    /// Decodes one frame from `bytes` with `a`.
    fn decode_one(a: &mut Assembler, bytes: &[u8]) -> Result<Decoded, ProtocolError> {
        a.decode(&mut BytesMut::from(bytes))
    }

    fn err_code(bytes: &[u8]) -> u16 {
        decode_all(bytes).unwrap_err().close_code
    }

    #[test]
    fn mask_round_trips_at_every_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut buf = data.clone();
            apply_mask(&mut buf, [1, 2, 3, 4]);
            for (i, (a, b)) in buf.iter().zip(&data).enumerate() {
                assert_eq!(*a, b ^ [1, 2, 3, 4][i % 4]);
            }
        }
    }

    #[test]
    fn encoded_frames_are_masked_with_every_length_format() {
        for len in [0usize, 125, 126, 0xffff, 0x10000] {
            let payload = vec![0x5a; len];
            let mut out = Vec::new();
            let hl = encode_frame(OpCode::Data(Data::Binary), &payload, &mut out);
            assert_eq!(out.len(), hl + len);
            let (h, l) = FrameHeader::parse(&mut Cursor::new(&out)).unwrap().unwrap();
            assert_eq!(l as usize, len);
            assert!(h.is_final);
            let mask = h.mask.expect("client frames are masked");
            let mut body = out[hl..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn messages_and_fragments() {
        let mut bytes = server_frame(0x81, b"test");
        bytes.extend(server_frame(0x01, "h\u{e9}".as_bytes()[..2].as_ref()));
        bytes.extend(server_frame(0x89, b"p")); // ping interleaved
        bytes.extend(server_frame(0x80, &"h\u{e9}".as_bytes()[2..]));
        bytes.extend(server_frame(0x82, &[0u8; 70000]));
        let items = decode_all(&bytes).unwrap();
        assert_eq!(
            items,
            vec![
                Incoming::Message(Message::Text("test".into())),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Message(Message::Text("h\u{e9}".into())),
                Incoming::Message(Message::Binary(vec![0; 70000].into())),
            ]
        );
    }

    #[test]
    fn large_binary_payloads_share_the_read_buffer_small_ones_are_copied() {
        let mut bytes = server_frame(0x82, &[7; 64 << 10]);
        bytes.extend(server_frame(0x82, &[8; 64]));
        let mut buf = BytesMut::from(&bytes[..]);
        let start = buf.as_ptr() as usize;
        let mut a = Assembler::new(LIMITS);
        let Decoded::Frame(Some(Incoming::Message(Message::Binary(big)))) =
            a.decode(&mut buf).unwrap()
        else {
            panic!("a binary message")
        };
        assert_eq!(big, vec![7u8; 64 << 10]);
        // The payload is the buffer's own bytes, right after the 10-byte header.
        assert_eq!(big.as_ptr() as usize, start + 10);
        let small_at = buf.as_ptr() as usize + 2;
        let Decoded::Frame(Some(Incoming::Message(Message::Binary(small)))) =
            a.decode(&mut buf).unwrap()
        else {
            panic!("a binary message")
        };
        assert_eq!(small, vec![8u8; 64]);
        assert_ne!(
            small.as_ptr() as usize,
            small_at,
            "a small payload is a copy"
        );
        assert!(buf.is_empty());
        // A large payload in a much larger buffer is copied too: it must not pin the buffer.
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.extend_from_slice(&server_frame(0x82, &[9; 8 << 10]));
        let at = buf.as_ptr() as usize + 4;
        let Decoded::Frame(Some(Incoming::Message(Message::Binary(mid)))) =
            a.decode(&mut buf).unwrap()
        else {
            panic!("a binary message")
        };
        assert_eq!(mid, vec![9u8; 8 << 10]);
        assert_ne!(mid.as_ptr() as usize, at);
    }

    #[test]
    fn incomplete_input_needs_more() {
        let bytes = server_frame(0x82, &[1; 300]);
        let mut a = Assembler::new(LIMITS);
        assert_eq!(
            decode_one(&mut a, &bytes[..1]).unwrap(),
            Decoded::NeedMore(0)
        );
        let mut buf = BytesMut::from(&bytes[..10]);
        assert_eq!(a.decode(&mut buf).unwrap(), Decoded::NeedMore(294));
        assert_eq!(
            buf.len(),
            10,
            "nothing is consumed before the frame is complete"
        );
    }

    #[test]
    fn close_bodies() {
        assert_eq!(
            decode_all(&server_frame(0x88, b"")).unwrap(),
            vec![Incoming::Close(None)]
        );
        assert_eq!(
            decode_all(&server_frame(0x88, b"\x0f\xa1bye")).unwrap(),
            vec![Incoming::Close(Some((4001, "bye".into())))]
        );
        assert_eq!(err_code(&server_frame(0x88, b"\x03")), 1002);
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                err_code(&server_frame(0x88, &code.to_be_bytes())),
                1002,
                "{code}"
            );
        }
        assert_eq!(err_code(&server_frame(0x88, b"\x03\xe8\xff")), 1007);
    }

    #[test]
    fn violations() {
        // masked server frame
        assert_eq!(err_code(&[0x81, 0x81, 1, 2, 3, 4, 0x55]), 1002);
        // reserved bits
        for rsv in [0x40u8, 0x20, 0x10] {
            assert_eq!(err_code(&server_frame(0x81 | rsv, b"x")), 1002);
        }
        // reserved opcodes
        for op in (3u8..=7).chain(11..=15) {
            assert_eq!(err_code(&server_frame(0x80 | op, b"")), 1002, "{op}");
        }
        // control frame too long, fragmented control frame
        assert_eq!(err_code(&server_frame(0x89, &[0; 126])), 1002);
        assert_eq!(err_code(&server_frame(0x09, b"")), 1002);
        // continuation without start; new message inside a fragmented one
        assert_eq!(err_code(&server_frame(0x80, b"x")), 1002);
        let mut b = server_frame(0x01, b"a");
        b.extend(server_frame(0x81, b"b"));
        assert_eq!(err_code(&b), 1002);
        // invalid UTF-8, whole and split across fragments
        assert_eq!(err_code(&server_frame(0x81, b"\xce\xba\xff")), 1007);
        let mut b = server_frame(0x01, b"\xce");
        b.extend(server_frame(0x80, b"\x41"));
        assert_eq!(err_code(&b), 1007);
    }

    #[test]
    fn size_limits_refuse_before_allocating() {
        // A length with the top bit set is a protocol error, not a size error.
        let header = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        let mut a = Assembler::new(LIMITS);
        assert_eq!(decode_one(&mut a, &header).unwrap_err().close_code, 1002);
        // A 2 GiB frame header: refused from the header alone.
        let header = [0x82, 127, 0, 0, 0, 0, 0x80, 0, 0, 0];
        let mut a = Assembler::new(LIMITS);
        assert_eq!(decode_one(&mut a, &header).unwrap_err().close_code, 1009);
        // Fragments adding up past the message limit.
        let mut b = Vec::new();
        b.extend(server_frame(0x02, &vec![0; 1 << 20]));
        b.extend(server_frame(0x00, &vec![0; 1 << 20]));
        b.extend(server_frame(0x80, &[0; 1]));
        assert_eq!(err_code(&b), 1009);
    }

    #[test]
    fn compressed_messages_with_deflate() {
        use crate::deflate::{negotiate, Deflater, Inflater};
        let params = negotiate("permessage-deflate").unwrap().unwrap();
        let mut deflater = Deflater::new(&params, 0, 6);
        let mut body = Vec::new();
        let hello = "Hello".repeat(20);
        assert!(deflater.compress(hello.as_bytes(), &mut body));
        // A compressed text frame split in two fragments: RSV1 only on the first.
        let (a, b) = body.split_at(2);
        let mut bytes = server_frame(0x41, a);
        bytes.extend(server_frame(0x80, b));
        let mut asm = Assembler::with_inflater(LIMITS, Inflater::new(&params));
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(asm.decode(&mut buf).unwrap(), Decoded::Frame(None));
        assert_eq!(
            asm.decode(&mut buf).unwrap(),
            Decoded::Frame(Some(Incoming::Message(Message::Text(hello))))
        );
        // RSV1 on a continuation or a control frame is still an error.
        let mut asm = Assembler::with_inflater(LIMITS, Inflater::new(&params));
        let mut bad = server_frame(0x01, b"a");
        bad.extend(server_frame(0xc0, b"b"));
        let mut buf = BytesMut::from(&bad[..]);
        assert_eq!(asm.decode(&mut buf).unwrap(), Decoded::Frame(None));
        assert_eq!(asm.decode(&mut buf).unwrap_err().close_code, 1002);
        let mut asm = Assembler::with_inflater(LIMITS, Inflater::new(&params));
        assert_eq!(
            decode_one(&mut asm, &server_frame(0xc9, b""))
                .unwrap_err()
                .close_code,
            1002
        );
        // A decompression bomb: 10 MiB of zeros against a 2 MiB message limit.
        let mut bomb = Vec::new();
        deflater.compress(&vec![0u8; 10 << 20], &mut bomb);
        let mut asm = Assembler::with_inflater(LIMITS, Inflater::new(&params));
        assert_eq!(
            decode_one(&mut asm, &server_frame(0xc2, &bomb))
                .unwrap_err()
                .close_code,
            1009
        );
        // Garbage that is not DEFLATE: invalid data.
        let mut asm = Assembler::with_inflater(LIMITS, Inflater::new(&params));
        assert_eq!(
            decode_one(&mut asm, &server_frame(0xc2, &[0xff; 8]))
                .unwrap_err()
                .close_code,
            1007
        );
    }
}
