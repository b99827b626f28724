//! Conformance driver: runs the scenario table (`tests/scenarios/table/*.json`) against the
//! scenario server (in-process `wsdom-testserver`) and, for the scenarios marked portable,
//! against pywebsocket3, Python `websockets` and Node `ws` (see `tests/external/`).
//!
//! Each scenario's trace (events, action results, what the server observed) is written as JSON
//! lines to `target/conformance/rust-<server>.jsonl` and compared with the expected trace; every
//! mismatch is printed with the scenario id and the test fails. The format and the matching
//! rules are in `tests/scenarios/README.md`; `tests/scenarios/scenarios.py` implements the
//! same rules for the C and Python drivers.
//!
//! Environment:
//! * `WSDOM_SCENARIOS=text` runs only the scenarios whose id contains `text`.
//! * `WSDOM_EXTERNAL=require` fails when an external server is not installed (default: those
//!   tests record "unavailable" and pass; `tests/external/setup.sh` installs them).
//! * `WSDOM_CONFORMANCE_WORKERS=n` scenarios run at once (default 4).
//! * `WSDOM_CONFORMANCE_OUT=dir` where traces and summaries go (default `target/conformance`).

use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsdom_core::{Event, EventQueue, Message, Options, ReadyState, WebSocket};
use wsdom_testserver::{Observed, ServerOptions, TestServer};

const LANG: &str = "rust";
/// Trace fields this language cannot produce; the comparison ignores them.
const UNSUPPORTED_FIELDS: &[&str] = &["binary_type"];
/// Longest message payload written into the trace verbatim (`data`).
const DATA_INLINE_MAX: usize = 1024;
/// At most this many mismatches are listed per scenario.
const MAX_MISMATCHES: usize = 12;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Loads every scenario of `tests/scenarios/table/*.json`, with matrices expanded.
fn load_table() -> Vec<Value> {
    let dir = repo_root().join("tests/scenarios/table");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read table");
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
        for s in doc["scenarios"].as_array().expect("scenarios array") {
            out.extend(expand(s));
        }
    }
    out
}

/// Applies `matrix`: one scenario per entry, id `id[i]`, fields overridden, `{m.KEY}` replaced.
fn expand(s: &Value) -> Vec<Value> {
    let Some(matrix) = s.get("matrix").and_then(Value::as_array) else {
        return vec![s.clone()];
    };
    matrix
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let m = m.as_object().expect("matrix entries are objects");
            let mut base = s.as_object().expect("scenario object").clone();
            base.remove("matrix");
            for (k, v) in m {
                if base.contains_key(k) || is_scenario_key(k) {
                    base.insert(k.clone(), v.clone());
                }
            }
            let id = format!("{}[{i}]", s["id"].as_str().unwrap_or("?"));
            base.insert("id".into(), Value::String(id));
            subst_matrix(&Value::Object(base), m)
        })
        .collect()
}

fn is_scenario_key(k: &str) -> bool {
    matches!(
        k,
        "server" | "url" | "base_url" | "protocols" | "script" | "expect" | "observe" | "sockets"
    )
}

fn subst_matrix(v: &Value, m: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            if let Some(key) = s.strip_prefix("{m.").and_then(|r| r.strip_suffix('}')) {
                if let Some(val) = m.get(key) {
                    return val.clone();
                }
            }
            let mut out = s.clone();
            for (k, val) in m {
                let text = match val {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("{{m.{k}}}"), &text);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| subst_matrix(x, m)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), subst_matrix(x, m)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Placeholders filled in at run time.
#[derive(Clone)]
struct Env {
    host: String,
    port: u16,
    dead_port: u16,
}

impl Env {
    fn base(&self) -> String {
        format!("ws://{}:{}", self.host, self.port)
    }

    fn subst(&self, s: &str) -> String {
        s.replace("{base}", &self.base())
            .replace("{host}", &self.host)
            .replace("{port}", &self.port.to_string())
            .replace("{dead_port}", &self.dead_port.to_string())
    }
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ephemeral port")
}

/// A text value of the table: a string, `{"repeat": s, "count": n}` or `{"utf16": [units]}`.
/// `Err` when Rust cannot hold it (lone surrogates).
fn text_of(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o) if o.contains_key("repeat") => {
            let unit = o["repeat"].as_str().ok_or("repeat must be a string")?;
            let n = o["count"].as_u64().ok_or("count must be a number")? as usize;
            Ok(unit.repeat(n))
        }
        Value::Object(o) if o.contains_key("utf16") => {
            let units: Vec<u16> = o["utf16"]
                .as_array()
                .ok_or("utf16 must be an array")?
                .iter()
                .map(|u| u.as_u64().unwrap_or(0) as u16)
                .collect();
            String::from_utf16(&units).map_err(|_| "a Rust &str cannot hold lone surrogates".into())
        }
        other => Err(format!("not a text value: {other}")),
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A byte value of the table: `{"hex": ..}`, `{"length": n}` (byte i is i & 0xff) or
/// `{"fill_hex": "78", "count": n}`, optionally with `"view": [offset, length]`.
fn bytes_of(v: &Value) -> Vec<u8> {
    let o = v.as_object().expect("bytes value is an object");
    let all = if let Some(h) = o.get("hex").and_then(Value::as_str) {
        hex_decode(h)
    } else if let Some(n) = o.get("length").and_then(Value::as_u64) {
        (0..n).map(|i| (i & 0xff) as u8).collect()
    } else if let Some(f) = o.get("fill_hex").and_then(Value::as_str) {
        hex_decode(f).repeat(o["count"].as_u64().unwrap_or(0) as usize)
    } else {
        panic!("bad bytes value {v}")
    };
    match o.get("view").and_then(Value::as_array) {
        Some(view) => {
            let off = view[0].as_u64().unwrap_or(0) as usize;
            let len = view[1].as_u64().unwrap_or(0) as usize;
            all[off..off + len].to_vec()
        }
        None => all,
    }
}

fn fnv1a64(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

// ---------------------------------------------------------------------------------------------
// Running one scenario
// ---------------------------------------------------------------------------------------------

/// What the handlers and the driver loop share; only touched on the driver thread.
struct State {
    start: Instant,
    script: Vec<Value>,
    ids: Vec<u64>,
    traces: Vec<Vec<Value>>,
    messages: Vec<usize>,
    closed: Vec<bool>,
}

impl State {
    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The actions of the script entries that `trigger` (with message number `n`) selects.
    fn actions_for(&self, trigger: &str, n: usize) -> Vec<Value> {
        self.script
            .iter()
            .filter(|e| e["on"] == trigger)
            .filter(|e| trigger != "message" || e["n"].as_u64().unwrap_or(1) as usize == n)
            .flat_map(|e| e["do"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

fn attrs(ws: &WebSocket, e: &mut Map<String, Value>) {
    e.insert("readyState".into(), json!(ws.ready_state() as u8));
    e.insert("bufferedAmount".into(), json!(ws.buffered_amount()));
}

fn record_event(st: &mut State, i: usize, ws: &WebSocket, event: &Event) {
    let mut e = Map::new();
    e.insert("t".into(), json!("event"));
    e.insert("type".into(), json!(event.type_name()));
    attrs(ws, &mut e);
    e.insert("protocol".into(), json!(ws.protocol()));
    e.insert("extensions".into(), json!(ws.extensions()));
    e.insert("target_ok".into(), json!(st.ids.get(i) == Some(&ws.id())));
    match event {
        Event::Message(m) => {
            let (kind, data) = match m {
                Message::Text(t) => ("text", json!(t)),
                Message::Binary(b) => ("binary", json!(hex(b))),
            };
            e.insert("data_type".into(), json!(kind));
            e.insert("length".into(), json!(m.len()));
            e.insert("fnv1a64".into(), json!(fnv1a64(m.as_bytes())));
            if m.len() <= DATA_INLINE_MAX {
                e.insert("data".into(), data);
            }
            e.insert("origin".into(), json!(ws.origin()));
        }
        Event::Close(c) => {
            e.insert("code".into(), json!(c.code));
            e.insert("reason".into(), json!(c.reason));
            e.insert("wasClean".into(), json!(c.was_clean));
        }
        Event::Error(detail) => {
            e.insert("detail".into(), json!(detail));
        }
        Event::Open => {}
    }
    e.insert("ms".into(), json!(st.ms()));
    st.traces[i].push(Value::Object(e));
}

fn result_of(r: Result<(), wsdom_core::DomError>) -> Value {
    match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e.name()),
    }
}

/// Runs one action on socket `i` and records its result.
fn run_action(st: &mut State, i: usize, ws: &WebSocket, action: &Value) {
    let (op, arg) = action
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.as_str(), v))
        .expect("an action is an object with one key");
    let mut e = Map::new();
    e.insert("t".into(), json!("action"));
    let (op_name, result) = match op {
        "send_text" => (
            "send_text",
            match text_of(arg) {
                Ok(t) => result_of(ws.send_text(&t)),
                Err(why) => {
                    e.insert("detail".into(), json!(why));
                    json!("unsupported")
                }
            },
        ),
        "send_binary" => ("send_binary", result_of(ws.send_binary(&bytes_of(arg)))),
        "close" => {
            // [Clamp] unsigned short: what the WebIDL binding does before the call.
            let code = arg
                .get("code")
                .and_then(Value::as_i64)
                .map(|c| c.clamp(0, 65535) as u16);
            match arg.get("reason").map(text_of).transpose() {
                Ok(reason) => ("close", result_of(ws.close(code, reason.as_deref()))),
                Err(why) => {
                    e.insert("detail".into(), json!(why));
                    ("close", json!("unsupported"))
                }
            }
        }
        "sleep_ms" => {
            std::thread::sleep(Duration::from_millis(arg.as_u64().unwrap_or(0)));
            ("sleep", json!("ok"))
        }
        "snapshot" => {
            e.insert("protocol".into(), json!(ws.protocol()));
            e.insert("extensions".into(), json!(ws.extensions()));
            e.insert("url".into(), json!(ws.url()));
            ("snapshot", json!("ok"))
        }
        "set_binary_type" => {
            e.insert("detail".into(), json!("wsdom-core has no binaryType"));
            ("set_binary_type", json!("unsupported"))
        }
        "constants" => {
            e.insert(
                "values".into(),
                json!([
                    ReadyState::Connecting as u8,
                    ReadyState::Open as u8,
                    ReadyState::Closing as u8,
                    ReadyState::Closed as u8
                ]),
            );
            ("constants", json!("ok"))
        }
        other => panic!("unknown action {other:?}"),
    };
    e.insert("op".into(), json!(op_name));
    e.insert("result".into(), result);
    attrs(ws, &mut e);
    e.insert("ms".into(), json!(st.ms()));
    st.traces[i].push(Value::Object(e));
}

fn on_event(state: &Mutex<State>, i: usize, ws: &WebSocket, event: Event) {
    let mut st = state.lock().unwrap();
    record_event(&mut st, i, ws, &event);
    let actions = match &event {
        Event::Open => st.actions_for("open", 0),
        Event::Message(_) => {
            st.messages[i] += 1;
            let n = st.messages[i];
            st.actions_for("message", n)
        }
        Event::Error(_) => st.actions_for("error", 0),
        Event::Close(_) => {
            st.closed[i] = true;
            st.actions_for("close", 0)
        }
    };
    for a in &actions {
        run_action(&mut st, i, ws, a);
    }
}

/// Runs scenario `s` against the server at `env`; returns one trace per socket.
fn run_scenario(s: &Value, env: &Env) -> Vec<Vec<Value>> {
    let sockets = s["sockets"].as_u64().unwrap_or(1) as usize;
    let timeout = Duration::from_millis(s["timeout_ms"].as_u64().unwrap_or(10_000));
    let linger = Duration::from_millis(s["linger_ms"].as_u64().unwrap_or(100));
    let url = match s["url"].as_str() {
        Some(u) => env.subst(u),
        None => format!("{}{}", env.base(), s["server"].as_str().unwrap_or("/")),
    };
    let protocols: Vec<String> = s["protocols"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
    let script = s["script"].as_array().cloned().unwrap_or_default();
    let queue = EventQueue::new().expect("event queue");
    let state = Arc::new(Mutex::new(State {
        start: Instant::now(),
        script: script.clone(),
        ids: Vec::new(),
        traces: vec![Vec::new(); sockets],
        messages: vec![0; sockets],
        closed: vec![false; sockets],
    }));
    let mut socks: Vec<Option<WebSocket>> = Vec::new();
    for i in 0..sockets {
        let st = state.clone();
        let opts = Options {
            base_url: s["base_url"].as_str().map(|b| env.subst(b)),
            queue: Some(queue.clone()),
            handler: Some(Arc::new(move |ws: &WebSocket, ev: Event| {
                on_event(&st, i, ws, ev)
            })),
            ..Options::default()
        };
        let created = WebSocket::new(&url, &protocols, opts);
        let mut st = state.lock().unwrap();
        let ms = st.ms();
        match created {
            Ok(ws) => {
                st.ids.push(ws.id());
                st.traces[i].push(json!({
                    "t": "construct", "result": "ok", "url": ws.url(),
                    "readyState": ws.ready_state() as u8, "bufferedAmount": ws.buffered_amount(),
                    "protocol": ws.protocol(), "extensions": ws.extensions(), "ms": ms,
                }));
                for a in st.actions_for("construct", 0) {
                    run_action(&mut st, i, &ws, &a);
                }
                socks.push(Some(ws));
            }
            Err(e) => {
                st.ids.push(0);
                st.traces[i].push(json!({"t": "construct", "result": e.name(), "ms": ms}));
                st.closed[i] = true;
                socks.push(None);
            }
        }
    }
    let start = state.lock().unwrap().start;
    let mut timers: Vec<(Duration, Vec<Value>)> = script
        .iter()
        .filter(|e| e["on"] == "timer")
        .map(|e| {
            (
                Duration::from_millis(e["after_ms"].as_u64().unwrap_or(0)),
                e["do"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect();
    timers.sort_by_key(|t| t.0);
    let mut timers: VecDeque<_> = timers.into();
    let deadline = start + timeout;
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        while timers.front().is_some_and(|t| start + t.0 <= now) {
            let (_, actions) = timers.pop_front().expect("timer");
            let mut st = state.lock().unwrap();
            for (i, ws) in socks.iter().enumerate() {
                if let Some(ws) = ws {
                    for a in &actions {
                        run_action(&mut st, i, ws, a);
                    }
                }
            }
        }
        let all_closed = state.lock().unwrap().closed.iter().all(|c| *c);
        if all_closed && timers.is_empty() {
            let at = *done_at.get_or_insert(now + linger);
            if now >= at {
                break;
            }
        }
        if now >= deadline {
            let mut st = state.lock().unwrap();
            let ms = st.ms();
            for i in 0..sockets {
                if !st.closed[i] {
                    st.traces[i].push(json!({"t": "timeout", "ms": ms}));
                }
            }
            break;
        }
        let mut wake = deadline.min(now + Duration::from_millis(50));
        if let Some(t) = timers.front() {
            wake = wake.min(start + t.0);
        }
        if let Some(at) = done_at {
            wake = wake.min(at);
        }
        queue.dispatch(Some(wake.saturating_duration_since(Instant::now())));
    }
    // Leave nothing running: sockets still open are closed; their events are not recorded.
    for ws in socks.iter().flatten() {
        ws.detach_handler();
        let _ = ws.close(None, None);
    }
    let mut st = state.lock().unwrap();
    std::mem::take(&mut st.traces)
}

fn observed_entry(all: &[Observed]) -> Value {
    let first = all.first();
    let headers: Map<String, Value> = first
        .map(|o| {
            let mut m = Map::new();
            for (k, v) in &o.headers {
                m.entry(k.clone()).or_insert_with(|| json!(v));
            }
            m
        })
        .unwrap_or_default();
    let frames: Vec<Value> = first
        .map(|o| {
            o.frames
                .iter()
                .map(|f| {
                    json!({"opcode": f.opcode, "fin": f.fin, "rsv": f.rsv, "masked": f.masked,
                           "payload_hex": hex(&f.payload)})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "t": "observed",
        "connections": all.len(),
        "path": first.map(|o| o.path.clone()),
        "headers": headers,
        "frames": frames,
        "client_closed_tcp": first.map(|o| o.client_closed_tcp),
        "server_closed_tcp": first.map(|o| o.server_closed_tcp),
    })
}

// ---------------------------------------------------------------------------------------------
// Comparison (the same rules as tests/scenarios/scenarios.py)
// ---------------------------------------------------------------------------------------------

const EXPECT_ONLY: &[&str] = &[
    "count",
    "ms_min",
    "ms_max",
    "data",
    "data_contains",
    "data_not_contains",
];

fn subst_env(v: &Value, env: &Env) -> Value {
    match v {
        Value::String(s) => Value::String(env.subst(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| subst_env(x, env)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), subst_env(x, env)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn value_matches(expected: &Value, actual: Option<&Value>) -> bool {
    if let Some(options) = expected.get("one_of").and_then(Value::as_array) {
        return options.iter().any(|o| value_matches(o, actual));
    }
    match (expected, actual) {
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (e, Some(a)) => e == a,
        (Value::Null, None) => true,
        _ => false,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// Compares one expected entry with one actual entry; appends the differences.
fn compare_entry(exp: &Value, act: &Value, pos: usize, out: &mut Vec<String>) {
    let eo = exp.as_object().expect("expected entry object");
    let kind = |v: &Value| {
        format!(
            "{}:{}",
            v["t"].as_str().unwrap_or("?"),
            v.get("type")
                .or_else(|| v.get("op"))
                .and_then(Value::as_str)
                .unwrap_or("")
        )
    };
    if kind(exp) != kind(act) {
        out.push(format!(
            "#{pos}: expected {} got {}",
            short(exp),
            short(act)
        ));
        return;
    }
    for (k, ev) in eo {
        if EXPECT_ONLY.contains(&k.as_str()) || UNSUPPORTED_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if !value_matches(ev, act.get(k)) {
            out.push(format!(
                "#{pos} {}: {k} expected {} got {}",
                kind(exp),
                short(ev),
                act.get(k).map(short).unwrap_or_else(|| "(absent)".into())
            ));
        }
    }
    let ms = act["ms"].as_u64().unwrap_or(0);
    if let Some(min) = eo.get("ms_min").and_then(Value::as_u64) {
        if ms < min {
            out.push(format!(
                "#{pos} {}: at {ms} ms, expected >= {min} ms",
                kind(exp)
            ));
        }
    }
    if let Some(max) = eo.get("ms_max").and_then(Value::as_u64) {
        if ms > max {
            out.push(format!(
                "#{pos} {}: at {ms} ms, expected <= {max} ms",
                kind(exp)
            ));
        }
    }
    if let Some(want) = eo.get("data") {
        let bytes = if act["data_type"] == "binary" || (want.is_object() && !is_text_spec(want)) {
            bytes_of(want)
        } else {
            match text_of(want) {
                Ok(t) => t.into_bytes(),
                Err(e) => {
                    out.push(format!("#{pos}: expected data not representable: {e}"));
                    return;
                }
            }
        };
        if act["length"].as_u64() != Some(bytes.len() as u64)
            || act["fnv1a64"].as_str() != Some(fnv1a64(&bytes).as_str())
        {
            let got = act
                .get("data")
                .map(short)
                .unwrap_or_else(|| format!("{} bytes", act["length"]));
            out.push(format!(
                "#{pos} {}: data differs: expected {} bytes (fnv {}), got {got}",
                kind(exp),
                bytes.len(),
                fnv1a64(&bytes)
            ));
        }
    }
    let data = act["data"].as_str().unwrap_or("");
    if let Some(needle) = eo.get("data_contains").and_then(Value::as_str) {
        if !data.contains(needle) {
            out.push(format!(
                "#{pos}: data {} lacks {needle:?}",
                short(&act["data"])
            ));
        }
    }
    if let Some(needle) = eo.get("data_not_contains").and_then(Value::as_str) {
        if data.contains(needle) {
            out.push(format!(
                "#{pos}: data {} contains {needle:?}",
                short(&act["data"])
            ));
        }
    }
}

fn is_text_spec(v: &Value) -> bool {
    v.is_string() || v.get("repeat").is_some() || v.get("utf16").is_some()
}

fn compare_trace(expected: &[Value], actual: &[Value], out: &mut Vec<String>) {
    let mut flat = Vec::new();
    for e in expected {
        let n = e["count"].as_u64().unwrap_or(1);
        for _ in 0..n {
            flat.push(e);
        }
    }
    let actual: Vec<&Value> = actual.iter().filter(|a| a["t"] != "observed").collect();
    for (pos, (e, a)) in flat.iter().zip(actual.iter()).enumerate() {
        compare_entry(e, a, pos, out);
    }
    if actual.len() > flat.len() {
        for (pos, a) in actual.iter().enumerate().skip(flat.len()).take(3) {
            out.push(format!("#{pos}: unexpected {}", short(a)));
        }
    } else if flat.len() > actual.len() {
        out.push(format!(
            "#{}: missing {} (trace ended after {} entries)",
            actual.len(),
            short(flat[actual.len()]),
            actual.len()
        ));
    }
}

fn compare_observed(want: &Value, got: &Value, out: &mut Vec<String>) {
    let w = want.as_object().expect("observe object");
    if let Some(n) = w.get("connections") {
        if got.get("connections") != Some(n) {
            out.push(format!(
                "observed: {} connections, expected {n}",
                got["connections"]
            ));
        }
    }
    if let Some(p) = w.get("path") {
        if got.get("path") != Some(p) {
            out.push(format!("observed: path {} expected {p}", got["path"]));
        }
    }
    if let Some(h) = w.get("headers").and_then(Value::as_object) {
        for (name, v) in h {
            let actual = got["headers"].get(name);
            if !value_matches(v, actual) {
                out.push(format!(
                    "observed: header {name} = {} expected {v}",
                    actual.map(short).unwrap_or_else(|| "(absent)".into())
                ));
            }
        }
    }
    if let Some(h) = w.get("header_lengths").and_then(Value::as_object) {
        for (name, n) in h {
            let len = got["headers"][name].as_str().map(str::len);
            if len.map(|l| l as u64) != n.as_u64() {
                out.push(format!(
                    "observed: header {name} length {len:?} expected {n}"
                ));
            }
        }
    }
    let frames = got["frames"].as_array().cloned().unwrap_or_default();
    if let Some(want_frames) = w.get("frames").and_then(Value::as_array) {
        if want_frames.len() != frames.len() {
            out.push(format!(
                "observed: {} client frames {} expected {}",
                frames.len(),
                short(&Value::Array(frames.clone())),
                short(&Value::Array(want_frames.clone()))
            ));
        } else {
            for (i, (wf, gf)) in want_frames.iter().zip(&frames).enumerate() {
                for (k, v) in wf.as_object().expect("frame object") {
                    if gf.get(k) != Some(v) {
                        out.push(format!("observed: frame {i} {k} = {} expected {v}", gf[k]));
                    }
                }
            }
        }
    }
    if let Some(all) = w.get("frames_all").and_then(Value::as_object) {
        for (i, gf) in frames.iter().enumerate() {
            for (k, v) in all {
                if gf.get(k) != Some(v) {
                    out.push(format!("observed: frame {i} {k} = {} expected {v}", gf[k]));
                }
            }
        }
    }
    if let Some(code) = w.get("close_code") {
        let close = frames.iter().find(|f| f["opcode"] == 8);
        match close {
            None => out.push("observed: the client sent no Close frame".into()),
            Some(f) => {
                let body = hex_decode(f["payload_hex"].as_str().unwrap_or(""));
                let got_code = (body.len() >= 2).then(|| u16::from_be_bytes([body[0], body[1]]));
                if json!(got_code) != *code {
                    out.push(format!(
                        "observed: client Close code {got_code:?} expected {code}"
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Servers and the run
// ---------------------------------------------------------------------------------------------

/// An external server process started by this driver, stopped on drop.
struct External {
    child: Child,
    port: u16,
}

impl External {
    fn start(cmd: &[PathBuf]) -> Result<External, String> {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cmd[0].display()))?;
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        match line.trim().strip_prefix("LISTENING ").map(str::parse) {
            Some(Ok(port)) => Ok(External { child, port }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "{} did not print LISTENING <port> (got {line:?})",
                    cmd[0].display()
                ))
            }
        }
    }
}

impl Drop for External {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // EOF asks it to stop
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command that starts an external server, or why it is not available.
fn external_command(name: &str) -> Result<Vec<PathBuf>, String> {
    let root = repo_root();
    let py = root.join(".venv-ext/bin/python");
    let (cmd, needs) = match name {
        "pywebsocket3" => (
            vec![py.clone(), root.join("tests/external/pywebsocket/serve.py")],
            root.join(".venv-ext/bin/python"),
        ),
        "websockets" => (
            vec![py.clone(), root.join("tests/external/websockets/server.py")],
            root.join(".venv-ext/bin/python"),
        ),
        "ws" => (
            vec![
                PathBuf::from("node"),
                root.join("tests/external/node/server.js"),
            ],
            root.join("tests/external/node/node_modules/ws/package.json"),
        ),
        other => return Err(format!("unknown external server {other}")),
    };
    if needs.exists() {
        Ok(cmd)
    } else {
        Err(format!(
            "{} is missing: run tests/external/setup.sh",
            needs.display()
        ))
    }
}

/// A scenario's outcome and its trace lines.
type RunResult = (Outcome, Vec<Value>);

struct Outcome {
    id: String,
    status: &'static str,
    detail: Vec<String>,
}

fn out_dir() -> PathBuf {
    std::env::var_os("WSDOM_CONFORMANCE_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/conformance"))
}

/// Runs the scenarios that apply to `server` and writes the trace and summary files.
fn run_suite(server: &str) {
    let filter = std::env::var("WSDOM_SCENARIOS").unwrap_or_default();
    let all = load_table();
    let selected: Vec<Value> = all
        .into_iter()
        .filter(|s| s["id"].as_str().unwrap_or("").contains(&filter))
        .filter(|s| {
            server == "wsdom"
                || s["portable"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == server))
        })
        .collect();
    std::fs::create_dir_all(out_dir()).expect("output dir");
    let external = if server == "wsdom" {
        None
    } else {
        match external_command(server).and_then(|c| External::start(&c)) {
            Ok(e) => Some(e),
            Err(why) => {
                write_summary(server, &[], Some(&why));
                if std::env::var("WSDOM_EXTERNAL").as_deref() == Ok("require") {
                    panic!("{server}: {why}");
                }
                eprintln!(
                    "conformance[{server}]: UNAVAILABLE, {} scenarios not run: {why}",
                    selected.len()
                );
                return;
            }
        }
    };
    let ext_port = external.as_ref().map(|e| e.port);
    // Long scenarios first, so they overlap with the many short ones.
    let mut jobs: Vec<Value> = selected;
    jobs.sort_by_key(|s| {
        let timers = s["script"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["after_ms"].as_u64())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        std::cmp::Reverse(timers.max(s["timeout_ms"].as_u64().unwrap_or(0) / 4))
    });
    let jobs = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let results: Arc<Mutex<Vec<RunResult>>> = Arc::default();
    let workers: usize = std::env::var("WSDOM_CONFORMANCE_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(4);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let jobs = jobs.clone();
            let results = results.clone();
            scope.spawn(move || {
                let local = if ext_port.is_none() {
                    Some(TestServer::start(ServerOptions::default()).expect("scenario server"))
                } else {
                    None
                };
                loop {
                    let Some(s) = jobs.lock().unwrap().pop_front() else {
                        return;
                    };
                    let r = run_one(server, &s, local.as_ref(), ext_port);
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    drop(external);
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut trace_file = std::fs::File::create(out_dir().join(format!("{LANG}-{server}.jsonl")))
        .expect("trace file");
    writeln!(
        trace_file,
        "{}",
        json!({"t": "driver", "lang": LANG, "server": server, "unsupported_fields": UNSUPPORTED_FIELDS})
    )
    .expect("write");
    for (_, lines) in &results {
        for l in lines {
            writeln!(trace_file, "{l}").expect("write");
        }
    }
    let outcomes: Vec<Outcome> = results.into_iter().map(|r| r.0).collect();
    write_summary(server, &outcomes, None);
    let count = |st: &str| outcomes.iter().filter(|o| o.status == st).count();
    for o in &outcomes {
        if o.status == "skip" {
            eprintln!("SKIP {server} {}: {}", o.id, o.detail.join("; "));
        }
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == "fail").collect();
    for o in &failed {
        eprintln!("FAIL {server} {}:", o.id);
        for d in &o.detail {
            eprintln!("    {d}");
        }
    }
    eprintln!(
        "conformance[{LANG} vs {server}]: {} passed, {} failed, {} skipped (traces in {})",
        count("pass"),
        count("fail"),
        count("skip"),
        out_dir().display()
    );
    assert!(
        failed.is_empty(),
        "{} scenario(s) failed against {server}: {}",
        failed.len(),
        failed
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn run_one(
    server: &str,
    s: &Value,
    local: Option<&TestServer>,
    ext_port: Option<u16>,
) -> RunResult {
    let id = s["id"].as_str().unwrap_or("?").to_owned();
    let tag = |mut v: Value, socket: usize| {
        let o = v.as_object_mut().expect("entry");
        o.insert("id".into(), json!(id));
        o.insert("server".into(), json!(server));
        o.insert("lang".into(), json!(LANG));
        o.insert("socket".into(), json!(socket));
        v
    };
    if let Some(why) = s["skip"][LANG].as_str() {
        let end = tag(json!({"t": "end", "result": "skip", "reason": why}), 0);
        return (
            Outcome {
                id: id.clone(),
                status: "skip",
                detail: vec![why.to_owned()],
            },
            vec![end],
        );
    }
    let env = Env {
        host: "127.0.0.1".into(),
        port: ext_port.or(local.map(TestServer::port)).expect("a server"),
        dead_port: dead_port(),
    };
    let mut problems = Vec::new();
    if s["option_bag"] == true {
        problems.push(
            "option_bag: wsdom-core has no options-bag protocols and no skip is given".into(),
        );
    }
    if let Some(srv) = local {
        srv.clear_observed();
    }
    let traces = run_scenario(s, &env);
    let sockets = traces.len();
    let observed = match (local, s.get("observe")) {
        (Some(srv), Some(_)) => {
            let obs = srv.wait_finished(sockets, Duration::from_secs(3));
            Some(observed_entry(&obs))
        }
        _ => None,
    };
    for (i, trace) in traces.iter().enumerate() {
        let expected = match s.get("expect_sockets").and_then(Value::as_array) {
            Some(per) => per.get(i).cloned().unwrap_or(Value::Array(vec![])),
            None => s["expect"].clone(),
        };
        let expected = subst_env(&expected, &env);
        let mut out = Vec::new();
        compare_trace(expected.as_array().expect("expect list"), trace, &mut out);
        for d in out.into_iter().take(MAX_MISMATCHES) {
            problems.push(if sockets > 1 {
                format!("socket {i}: {d}")
            } else {
                d
            });
        }
    }
    if let (Some(got), Some(want)) = (&observed, s.get("observe")) {
        compare_observed(&subst_env(want, &env), got, &mut problems);
    }
    let mut lines = vec![tag(
        json!({"t": "start", "host": env.host, "port": env.port, "dead_port": env.dead_port}),
        0,
    )];
    for (i, trace) in traces.into_iter().enumerate() {
        for (seq, mut e) in trace.into_iter().enumerate() {
            e.as_object_mut()
                .expect("entry")
                .insert("seq".into(), json!(seq));
            lines.push(tag(e, i));
        }
    }
    if let Some(o) = observed {
        lines.push(tag(o, 0));
    }
    let status = if problems.is_empty() { "pass" } else { "fail" };
    lines.push(tag(
        json!({"t": "end", "result": status, "mismatches": problems}),
        0,
    ));
    (
        Outcome {
            id,
            status,
            detail: problems,
        },
        lines,
    )
}

fn write_summary(server: &str, outcomes: &[Outcome], unavailable: Option<&str>) {
    let count = |st: &str| outcomes.iter().filter(|o| o.status == st).count();
    let summary = json!({
        "lang": LANG,
        "server": server,
        "unavailable": unavailable,
        "pass": count("pass"),
        "fail": count("fail"),
        "skip": count("skip"),
        "total": outcomes.len(),
        "failed": outcomes.iter().filter(|o| o.status == "fail")
            .map(|o| json!({"id": o.id, "mismatches": o.detail})).collect::<Vec<_>>(),
        "skipped": outcomes.iter().filter(|o| o.status == "skip")
            .map(|o| json!({"id": o.id, "reason": o.detail.join("; ")})).collect::<Vec<_>>(),
    });
    let path = out_dir().join(format!("{LANG}-{server}.summary.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&summary).expect("json") + "\n",
    )
    .expect("summary file");
}

#[test]
fn table_is_well_formed() {
    let all = load_table();
    assert!(all.len() > 100, "only {} scenarios", all.len());
    let mut ids = std::collections::HashSet::new();
    for s in &all {
        let id = s["id"].as_str().expect("id");
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        assert!(
            s.get("expect").is_some() || s.get("expect_sockets").is_some(),
            "{id}: no expect"
        );
    }
}

#[test]
fn scenario_server() {
    run_suite("wsdom");
}

#[test]
fn external_pywebsocket3() {
    run_suite("pywebsocket3");
}

#[test]
fn external_websockets() {
    run_suite("websockets");
}

#[test]
fn external_node_ws() {
    run_suite("ws");
}
