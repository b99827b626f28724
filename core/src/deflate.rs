//! permessage-deflate (RFC 7692): the offer, the negotiation of the server's response, and
//! per-message compression with raw DEFLATE (flate2).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What the client offers, exactly as Chromium does.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The extension name.
pub const NAME: &str = "permessage-deflate";

/// The parameters the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// We must reset our compression context after each message.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window (8-15; 15 when not given).
    pub server_max_window_bits: u8,
    /// Our LZ77 window limit (8-15; 15 when not given).
    pub client_max_window_bits: u8,
}

fn window_bits(name: &str, value: Option<&str>) -> Result<u8, String> {
    let v = value.ok_or_else(|| format!("{name} needs a value"))?;
    let v = v.trim_matches('"');
    match v.parse::<u8>() {
        Ok(n @ 8..=15) if !v.starts_with('0') && !v.starts_with('+') => Ok(n),
        _ => Err(format!("invalid {name} value {v:?}")),
    }
}

/// Checks the server's `Sec-WebSocket-Extensions` value against our offer.
///
/// Returns `None` when the server accepted no extension, the parameters when it accepted
/// permessage-deflate, and a diagnostic for anything RFC 7692 says must fail the connection:
/// another extension, the extension twice, unknown, repeated or invalid parameters.
pub fn negotiate(response: &str) -> Result<Option<Params>, String> {
    let mut params = None;
    for ext in response.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = ext.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        if !name.eq_ignore_ascii_case(NAME) {
            return Err(format!(
                "the server selected extension {name:?}, which was not offered"
            ));
        }
        if params.is_some() {
            return Err("the server accepted permessage-deflate twice".into());
        }
        let mut p = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut seen: Vec<String> = Vec::new();
        for param in parts {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
                None => (param.to_ascii_lowercase(), None),
            };
            if seen.contains(&key) {
                return Err(format!("permessage-deflate parameter {key} is repeated"));
            }
            match key.as_str() {
                "server_no_context_takeover" | "client_no_context_takeover" if value.is_some() => {
                    return Err(format!("{key} takes no value"))
                }
                "server_no_context_takeover" => p.server_no_context_takeover = true,
                "client_no_context_takeover" => p.client_no_context_takeover = true,
                "server_max_window_bits" => p.server_max_window_bits = window_bits(&key, value)?,
                "client_max_window_bits" => p.client_max_window_bits = window_bits(&key, value)?,
                other => return Err(format!("unknown permessage-deflate parameter {other:?}")),
            }
            seen.push(key);
        }
        params = Some(p);
    }
    Ok(params)
}

/// The trailer that a sync flush ends with and that the wire format omits (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses outgoing messages.
pub struct Deflater {
    compress: Option<Compress>,
    reset_each_message: bool,
    threshold: usize,
}

impl Deflater {
    /// A compressor for the negotiated `params` at zlib `level` (clamped to 1..=9); messages
    /// shorter than `threshold` bytes are sent uncompressed.
    pub fn new(params: &Params, threshold: usize, level: u32) -> Deflater {
        // zlib cannot make raw DEFLATE with an 8-bit window: such a server gets plain messages,
        // which RFC 7692 allows (compression is per message).
        let compress = (params.client_max_window_bits >= 9).then(|| {
            Compress::new_with_window_bits(
                Compression::new(level.clamp(1, 9)),
                false,
                params.client_max_window_bits,
            )
        });
        Deflater {
            compress,
            reset_each_message: params.client_no_context_takeover,
            threshold,
        }
    }

    /// Compresses `data` into `out` (without the trailer); false when the message should be
    /// sent uncompressed (below the threshold, or compression is not possible).
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(c) = self.compress.as_mut() else {
            return false;
        };
        if data.len() < self.threshold {
            return false;
        }
        out.clear();
        out.reserve(data.len() / 2 + 64);
        let start_in = c.total_in();
        loop {
            let consumed = (c.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            }
            c.compress_vec(&data[consumed..], out, FlushCompress::Sync)
                .expect("deflate on a valid stream");
            // A sync flush is complete once all input is in and output space is left over.
            if (c.total_in() - start_in) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - 4);
        }
        if out.is_empty() {
            // Nothing was pending (an empty message after a flush): send the empty stored
            // block's header byte, which the receiver completes with the trailer (§7.2.3.6).
            out.push(0x00);
        }
        if out.len() >= data.len() && !data.is_empty() {
            // Incompressible: send it plain (allowed per message). Our window now holds data
            // the peer will not see, so start afresh; later messages cannot refer to it.
            c.reset();
            return false;
        }
        if self.reset_each_message {
            c.reset();
        }
        true
    }
}

/// Decompresses incoming messages, refusing output above a size limit (decompression bombs).
pub struct Inflater {
    decompress: Decompress,
    reset_each_message: bool,
}

impl Inflater {
    /// A decompressor for the negotiated `params` (always with a 15-bit window, which can
    /// read any smaller window).
    pub fn new(params: &Params) -> Inflater {
        Inflater {
            decompress: Decompress::new_with_window_bits(false, 15),
            reset_each_message: params.server_no_context_takeover,
        }
    }

    /// Decompresses one message; Err(true) if it would exceed `limit` bytes, Err(false) if the
    /// data is not valid DEFLATE.
    pub fn decompress(&mut self, data: &[u8], limit: usize) -> Result<Vec<u8>, bool> {
        let d = &mut self.decompress;
        // Never more than limit + 1 bytes: one byte past the limit proves the bomb.
        let mut out: Vec<u8> = Vec::with_capacity((data.len() * 4).max(256).min(limit + 1));
        let mut ended = false;
        for input in [data, &TAIL[..]] {
            let start = d.total_in();
            while !ended {
                let consumed = (d.total_in() - start) as usize;
                if out.len() == out.capacity() {
                    if out.len() > limit {
                        return Err(true);
                    }
                    out.reserve_exact(out.capacity().min(limit + 1 - out.len()).max(1));
                }
                let before = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| false)?;
                ended = status == Status::StreamEnd;
                let room = out.len() < out.capacity();
                let all_in = (d.total_in() - start) as usize == input.len();
                if room && (all_in || (d.total_in(), d.total_out()) == before) {
                    break;
                }
            }
        }
        if out.len() > limit {
            return Err(true);
        }
        if self.reset_each_message || ended {
            d.reset(false);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        negotiate(s).unwrap().unwrap()
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate("").unwrap(), None);
        let p = params("permessage-deflate");
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (15, 15)
        );
        let p = params(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
        );
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (10, 9)
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ] {
            assert!(negotiate(bad).is_err(), "{bad}");
        }
    }

    fn round_trip(p: &Params, messages: &[Vec<u8>]) {
        // Our deflater feeds our inflater here, so the inflater must expect what the
        // deflater does: reset per message exactly when client_no_context_takeover is set.
        let mirrored = Params {
            server_no_context_takeover: p.client_no_context_takeover,
            ..*p
        };
        let mut d = Deflater::new(p, 0, 6);
        let mut i = Inflater::new(&mirrored);
        for (k, m) in messages.iter().enumerate() {
            let mut wire = Vec::new();
            if !d.compress(m, &mut wire) {
                continue; // incompressible: sent plain, never reaches the inflater
            }
            let got = i.decompress(&wire, 1 << 24);
            assert!(
                got.as_ref() == Ok(m),
                "{p:?} message {k}: {:?}",
                got.map(|v| v.len())
            );
        }
    }

    #[test]
    fn round_trips_with_every_parameter_combination() {
        let mut msgs: Vec<Vec<u8>> = vec![b"".to_vec(), b"Hello".to_vec()];
        msgs.push(b"{\"id\": 1, \"name\": \"wsdom\"} ".repeat(2000));
        let mut x: u32 = 1;
        msgs.push(
            (0..200_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect(),
        );
        msgs.push(b"Hello".to_vec());
        msgs.push(b"".to_vec());
        msgs.push(b"".to_vec());
        msgs.push(b"Hello".to_vec());
        for s in [false, true] {
            for c in [false, true] {
                for bits in [9u8, 12, 15] {
                    let p = Params {
                        server_no_context_takeover: s,
                        client_no_context_takeover: c,
                        server_max_window_bits: bits,
                        client_max_window_bits: bits,
                    };
                    round_trip(&p, &msgs);
                }
            }
        }
    }

    #[test]
    fn the_rfc_example_decompresses() {
        // RFC 7692 §7.2.3.2: "Hello" compressed, then again with context takeover.
        let p = params("permessage-deflate");
        let mut i = Inflater::new(&p);
        assert_eq!(
            i.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
                .unwrap(),
            b"Hello"
        );
        assert_eq!(
            i.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100).unwrap(),
            b"Hello"
        );
        // A final (BFINAL) block, §7.2.3.3-style, is accepted too.
        let mut i = Inflater::new(&p);
        assert_eq!(
            i.decompress(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
                .unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn bombs_are_refused_at_the_limit() {
        let p = params("permessage-deflate");
        let mut d = Deflater::new(&p, 0, 6);
        let mut wire = Vec::new();
        d.compress(&vec![0u8; 10 << 20], &mut wire);
        assert!(wire.len() < (10 << 20) / 50, "{}", wire.len());
        let mut i = Inflater::new(&p);
        assert_eq!(i.decompress(&wire, 1 << 20), Err(true));
        let mut i = Inflater::new(&p);
        assert_eq!(i.decompress(&wire, 10 << 20).unwrap().len(), 10 << 20);
        let mut i = Inflater::new(&p);
        assert_eq!(i.decompress(&[0xff, 0xff, 0xff], 100), Err(false));
    }

    #[test]
    fn incompressible_messages_go_plain_and_later_ones_still_decode() {
        let p = params("permessage-deflate");
        let mut d = Deflater::new(&p, 0, 6);
        let mut i = Inflater::new(&p);
        let mut x: u32 = 7;
        let random: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let text = b"compressible text, compressible text, compressible text".repeat(20);
        let mut out = Vec::new();
        assert!(d.compress(&text, &mut out));
        assert_eq!(i.decompress(&out, 1 << 20).unwrap(), text);
        assert!(!d.compress(&random, &mut out), "sent plain");
        assert!(d.compress(&text, &mut out));
        assert_eq!(i.decompress(&out, 1 << 20).unwrap(), text);
    }

    #[test]
    fn levels_trade_cpu_for_size_and_are_clamped() {
        let p = params("permessage-deflate");
        // Varied records, as real JSON is: level 9 finds more matches than level 1.
        let text: Vec<u8> = (0..400u32)
            .map(|i| {
                format!(
                    "{{\"id\":{},\"name\":\"user {}\",\"score\":{}}},",
                    i * 7919 % 10007,
                    i % 97,
                    i * 31 % 1000
                )
            })
            .collect::<String>()
            .into_bytes();
        let size_at = |level: u32| {
            let mut d = Deflater::new(&p, 0, level);
            let mut wire = Vec::new();
            assert!(d.compress(&text, &mut wire), "level {level}");
            let mut i = Inflater::new(&p);
            assert_eq!(i.decompress(&wire, 1 << 20).unwrap(), text, "level {level}");
            wire.len()
        };
        let (fast, default, best) = (size_at(1), size_at(6), size_at(9));
        // (Level 9 is not always smaller than 6, but both beat level 1 by far.)
        assert!(
            default * 5 < fast * 4 && best * 5 < fast * 4,
            "{best} {default} {fast}"
        );
        assert_eq!(size_at(0), fast, "0 is clamped to 1");
        assert_eq!(size_at(42), best, "42 is clamped to 9");
    }

    #[test]
    fn threshold_and_8_bit_windows_send_plain() {
        let mut d = Deflater::new(&params("permessage-deflate"), 100, 6);
        let mut out = Vec::new();
        assert!(!d.compress(b"short", &mut out));
        let mut d = Deflater::new(
            &params("permessage-deflate; client_max_window_bits=8"),
            0,
            6,
        );
        assert!(!d.compress(&[0; 1000], &mut out));
    }
}
