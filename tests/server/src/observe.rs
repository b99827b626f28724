//! The observation log: what the server saw on each connection.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::frames::Frame;
use crate::json;
use crate::params::hex_encode;

/// One frame received from the client after the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedFrame {
    /// 4-bit opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong, others reserved).
    pub opcode: u8,
    /// FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    pub rsv: u8,
    /// Whether the client set the MASK bit.
    pub masked: bool,
    /// Payload after unmasking.
    pub payload: Vec<u8>,
}

impl ObservedFrame {
    /// For a Close frame: the status code, if the body has at least 2 bytes.
    pub fn close_code(&self) -> Option<u16> {
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// For a Close frame: the reason bytes after the code (empty if none).
    pub fn close_reason(&self) -> &[u8] {
        self.payload.get(2..).unwrap_or(&[])
    }
}

impl From<&Frame> for ObservedFrame {
    fn from(f: &Frame) -> Self {
        ObservedFrame {
            opcode: f.opcode,
            fin: f.fin,
            rsv: f.rsv,
            masked: f.masked,
            payload: f.payload.clone(),
        }
    }
}

/// Everything observed on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Request target as sent by the client (path plus `?query`, if any).
    pub path: String,
    /// Request headers in order, names lowercased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// Frames received from the client after the handshake (not recorded for `/raw` and `/never-handshake`).
    pub frames: Vec<ObservedFrame>,
    /// The server read EOF (or a reset) from the client at some point.
    pub client_closed_tcp: bool,
    /// The server closed its side of TCP (FIN or RST) before it saw the client's EOF.
    pub server_closed_tcp: bool,
    /// The connection handler has finished; nothing more will be recorded.
    pub finished: bool,
}

impl Observed {
    /// First value of request header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Frames with the given opcode.
    pub fn frames_with_opcode(&self, opcode: u8) -> Vec<&ObservedFrame> {
        self.frames.iter().filter(|f| f.opcode == opcode).collect()
    }

    /// The first Close frame the client sent, if any.
    pub fn close_frame(&self) -> Option<&ObservedFrame> {
        self.frames
            .iter()
            .find(|f| f.opcode == crate::frames::OP_CLOSE)
    }

    /// JSON rendering used by the `/observed` endpoint (payloads as lowercase hex).
    pub fn to_json(&self) -> String {
        let frames: Vec<String> = self
            .frames
            .iter()
            .map(|f| {
                format!(
                    "{{\"opcode\":{},\"fin\":{},\"rsv\":{},\"masked\":{},\"payload_hex\":\"{}\"}}",
                    f.opcode,
                    f.fin,
                    f.rsv,
                    f.masked,
                    hex_encode(&f.payload)
                )
            })
            .collect();
        format!(
            "{{\"path\":{},\"headers\":{},\"frames\":[{}],\"client_closed_tcp\":{},\"server_closed_tcp\":{},\"finished\":{}}}",
            json::string(&self.path),
            json::header_object(&self.headers),
            frames.join(","),
            self.client_closed_tcp,
            self.server_closed_tcp,
            self.finished
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shared, append-only (until cleared) list of per-connection observations.
#[derive(Debug, Clone, Default)]
pub struct ObservedLog {
    entries: Arc<Mutex<Vec<Arc<Mutex<Observed>>>>>,
}

impl ObservedLog {
    /// Adds a new connection entry and returns its recorder.
    pub fn begin(&self, path: String, headers: Vec<(String, String)>) -> Recorder {
        let entry = Arc::new(Mutex::new(Observed {
            path,
            headers,
            ..Observed::default()
        }));
        lock(&self.entries).push(entry.clone());
        Recorder { entry }
    }

    /// Snapshot of all entries, in connection order.
    pub fn snapshot(&self) -> Vec<Observed> {
        lock(&self.entries)
            .iter()
            .map(|e| lock(e).clone())
            .collect()
    }

    /// Forgets all entries (handlers still running keep writing to their detached entry).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// JSON array of all entries.
    pub fn to_json(&self) -> String {
        let items: Vec<String> = self.snapshot().iter().map(Observed::to_json).collect();
        format!("[{}]", items.join(","))
    }
}

/// Handle through which one connection handler records what it sees.
#[derive(Debug, Clone)]
pub struct Recorder {
    entry: Arc<Mutex<Observed>>,
}

impl Recorder {
    /// A recorder not attached to any log (for connections that are not recorded).
    pub fn detached() -> Recorder {
        Recorder {
            entry: Arc::new(Mutex::new(Observed::default())),
        }
    }

    /// Records a client frame.
    pub fn frame(&self, f: &Frame) {
        lock(&self.entry).frames.push(f.into());
    }

    /// Records that the client closed (or reset) TCP.
    pub fn client_closed(&self) {
        lock(&self.entry).client_closed_tcp = true;
    }

    /// Records that the server closed its side, unless the client had already closed.
    pub fn server_closed(&self) {
        let mut e = lock(&self.entry);
        if !e.client_closed_tcp {
            e.server_closed_tcp = true;
        }
    }

    /// Marks the connection as finished.
    pub fn finish(&self) {
        lock(&self.entry).finished = true;
    }
}
