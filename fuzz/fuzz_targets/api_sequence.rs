//! Sequences of C ABI calls (issue #8): `ws_new*`, sends, closes, frees, options, manual
//! dispatch, misuse with NULLs and invalid UTF-8, and callbacks that re-enter the library
//! (send, close, free their own socket, create sockets, call `ws_dispatch`), in random orders
//! and on several threads at once, against an in-process scenario server.
//!
//! Besides "no crash, no hang" (libFuzzer's -timeout catches deadlocks; libfuzzer-sys's panic
//! hook aborts on any panic, including panics the library would catch at its boundary), every
//! input checks:
//! - each call returns one of its documented results, never `WS_PANIC`;
//! - each socket's events follow the standard: open first and at most once, nothing after
//!   close, at most one error and then close 1006 (not clean), readyState as documented;
//! - echoed messages arrive byte-identical and, per sending thread, in order;
//! - after everything is freed, `ws_live_handles()` is 0, and sockets do not pile up in the
//!   core (`live_socket_count` returns to a small number).
//!
//! Input format: a byte string decoded op by op (see `decode`); unknown bytes map onto ops.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst,
};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use wsdom::callbacks::*;
use wsdom::dispatch::*;
use wsdom::library::*;
use wsdom::options::*;
use wsdom::result::ws_result::{self, *};
use wsdom::result::*;
use wsdom::socket::*;

// ---- Set-up ----

static PORT: OnceLock<u16> = OnceLock::new();
/// The scenario server; it records every connection, so `end` clears its log now and then.
static SERVER: Mutex<Option<wsdom_testserver::TestServer>> = Mutex::new(None);

fn port() -> u16 {
    *PORT.get_or_init(|| {
        // Many sockets linger briefly after an input (closing handshakes): raise the fd limit.
        unsafe {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
        // Connect directly whatever the environment says.
        for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            std::env::remove_var(var);
        }
        assert_eq!(ws_set_io_threads(1), WS_OK);
        let server = wsdom_testserver::TestServer::start(Default::default()).expect("server");
        let port = server.port();
        *SERVER.lock().unwrap() = Some(server); // runs for the whole process
        port
    })
}

// ---- Decoding ----

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

#[derive(Debug, Clone)]
enum Op {
    New {
        path: u8,
        opts: u8,
        mode: u8,
        behaviour: u8,
    },
    Send {
        slot: u8,
        binary: bool,
        size: u8,
    },
    SendEmpty {
        slot: u8,
        binary: bool,
    },
    SendBad {
        slot: u8,
        kind: u8,
    },
    Close {
        slot: u8,
        code: u8,
        reason: u8,
    },
    Free {
        slot: u8,
    },
    Getters {
        slot: u8,
    },
    Dispatch {
        ms: u8,
    },
    Wait {
        slot: u8,
        ms: u8,
    },
    Sleep {
        ms: u8,
    },
    Misuse {
        kind: u8,
    },
    Options {
        bits: u8,
    },
    SetCallbacks {
        slot: u8,
        mode: u8,
        behaviour: u8,
    },
    Spawn {
        ops: Vec<Op>,
    },
}

const MAX_OPS: usize = 48;
const MAX_NEW: usize = 8;

fn decode_one(b: &mut Bytes, nested: bool, news: &mut usize) -> Op {
    match b.byte() % 14 {
        0 if *news < MAX_NEW => {
            *news += 1;
            Op::New {
                path: b.byte(),
                opts: b.byte(),
                mode: b.byte(),
                behaviour: b.byte(),
            }
        }
        0 => Op::Sleep { ms: 0 },
        1 => Op::Send {
            slot: b.byte(),
            binary: false,
            size: b.byte(),
        },
        2 => Op::Send {
            slot: b.byte(),
            binary: true,
            size: b.byte(),
        },
        3 => {
            let slot = b.byte();
            Op::SendEmpty {
                slot,
                binary: slot & 0x80 != 0,
            }
        }
        4 => Op::SendBad {
            slot: b.byte(),
            kind: b.byte(),
        },
        5 => Op::Close {
            slot: b.byte(),
            code: b.byte(),
            reason: b.byte(),
        },
        6 => Op::Free { slot: b.byte() },
        7 => Op::Getters { slot: b.byte() },
        8 => Op::Dispatch { ms: b.byte() },
        9 => Op::Wait {
            slot: b.byte(),
            ms: b.byte(),
        },
        10 => Op::Sleep { ms: b.byte() },
        11 => Op::Misuse { kind: b.byte() },
        12 => Op::Options { bits: b.byte() },
        _ => {
            let n = b.byte();
            if nested {
                return Op::SetCallbacks {
                    slot: n,
                    mode: b.byte(),
                    behaviour: b.byte(),
                };
            }
            let k = (n % 8) as usize + 1;
            let mut ops = Vec::new();
            for _ in 0..k {
                if b.done() {
                    break;
                }
                ops.push(decode_one(b, true, news));
            }
            Op::Spawn { ops }
        }
    }
}

fn decode(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes { data, pos: 0 };
    let mut ops = Vec::new();
    let mut news = 0;
    while !b.done() && ops.len() < MAX_OPS {
        ops.push(decode_one(&mut b, false, &mut news));
    }
    ops
}

// ---- The world of one input ----

/// Sender ids: 0 the main thread, 1..=8 spawned threads, 9 callbacks on the I/O thread,
/// 10 callbacks run by `ws_dispatch` (serialized).
const SENDERS: usize = 11;
const CB_IO: usize = 9;
const CB_MANUAL: usize = 10;

#[derive(Default)]
struct Log {
    opened: bool,
    errored: bool,
    closed: bool,
    messages: u64,
    /// Events seen (any type).
    events: u64,
    last_seq: [Option<u32>; SENDERS],
}

struct Ctx {
    id: u32,
    world: Weak<World>,
    /// The `ws *` while the socket is owned (None once freed, or before `ws_new` returned).
    handle: Mutex<Option<usize>>,
    /// Messages from the server are echoes of ours (verified byte by byte).
    echo: bool,
    manual: bool,
    behaviour: AtomicU8,
    /// Callbacks running now.
    active: AtomicUsize,
    log: Mutex<Log>,
    changed: Condvar,
    seq: [AtomicU32; SENDERS],
    callback_sends: AtomicU32,
}

struct World {
    slots: Mutex<Vec<Arc<Ctx>>>,
    next_id: AtomicU32,
    created_in_callbacks: AtomicUsize,
    ending: AtomicBool,
    /// Microseconds the ops of one input may still spend waiting (keeps executions fast).
    wait_budget_us: AtomicU64,
}

const WAIT_BUDGET: Duration = Duration::from_millis(12);

impl World {
    /// Takes up to `want` from the waiting budget.
    fn take_wait(&self, want: Duration) -> Duration {
        let want = want.as_micros() as u64;
        let mut left = self.wait_budget_us.load(SeqCst);
        loop {
            let take = want.min(left);
            match self
                .wait_budget_us
                .compare_exchange(left, left - take, SeqCst, SeqCst)
            {
                Ok(_) => return Duration::from_micros(take),
                Err(now) => left = now,
            }
        }
    }
}

impl World {
    fn ctx(&self, slot: u8) -> Option<Arc<Ctx>> {
        let slots = self.slots.lock().unwrap();
        if slots.is_empty() {
            return None;
        }
        Some(slots[slot as usize % slots.len()].clone())
    }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(ws_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

#[track_caller]
fn expect(r: ws_result, allowed: &[ws_result], what: &str) {
    assert_ne!(r, WS_PANIC, "{what}: {}", last_error());
    assert!(
        allowed.contains(&r),
        "{what}: got {r:?}, expected one of {allowed:?}: {}",
        last_error()
    );
}

// ---- Messages: tagged, self-checking payloads ----

fn filler(seq: u32, sender: usize, i: usize) -> u8 {
    (seq.wrapping_mul(31) as usize)
        .wrapping_add(i.wrapping_mul(7))
        .wrapping_add(sender) as u8
}

fn message(ctx: u32, sender: usize, seq: u32, size: usize, binary: bool) -> Vec<u8> {
    if binary {
        let len = size.max(16);
        let mut v = Vec::with_capacity(len);
        v.extend([0xB7, b'W', sender as u8, 0]);
        v.extend(ctx.to_le_bytes());
        v.extend(seq.to_le_bytes());
        v.extend((len as u32).to_le_bytes());
        v.extend((16..len).map(|i| filler(seq, sender, i)));
        v
    } else {
        let mut v = format!("W{sender:02}{ctx:08x}{seq:08x}").into_bytes();
        let len = size.max(v.len() + 8);
        v.extend(format!("{len:08x}").into_bytes());
        v.extend((v.len()..len).map(|i| b'a' + filler(seq, sender, i) % 26));
        v
    }
}

/// Checks an echoed message; returns (sender, seq), or None for an empty one.
fn verify(ctx: u32, binary: bool, data: &[u8]) -> Option<(usize, u32)> {
    if data.is_empty() {
        return None;
    }
    let (sender, c, seq, len) = if binary {
        assert!(
            data.len() >= 16 && data[..2] == [0xB7, b'W'],
            "bad echo {data:?}"
        );
        let word = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().unwrap());
        (data[2] as usize, word(4), word(8), word(12) as usize)
    } else {
        let s = std::str::from_utf8(data).expect("echoed text is UTF-8");
        assert!(s.len() >= 27 && s.starts_with('W'), "bad echo {s:?}");
        let hex = |r: std::ops::Range<usize>| u32::from_str_radix(&s[r], 16).unwrap();
        (
            s[1..3].parse::<usize>().unwrap(),
            hex(3..11),
            hex(11..19),
            hex(19..27) as usize,
        )
    };
    assert_eq!(c, ctx, "an echo for another socket");
    assert_eq!(len, data.len(), "echo length");
    let expected = message(ctx, sender, seq, len, binary);
    assert!(
        expected == data,
        "echo content differs (sender {sender}, seq {seq})"
    );
    Some((sender, seq))
}

/// Sends a tagged message to `ws` as `sender`; returns the call's result.
fn send_tagged(ctx: &Ctx, ws: *mut ws, sender: usize, size: usize, binary: bool) -> ws_result {
    let seq = ctx.seq[sender].fetch_add(1, SeqCst);
    let msg = message(ctx.id, sender, seq, size, binary);
    let ty = if binary {
        WS_MESSAGE_BINARY
    } else {
        WS_MESSAGE_TEXT
    };
    unsafe { ws_send(ws, ty, msg.as_ptr().cast(), msg.len()) }
}

fn size_of_class(size: u8) -> usize {
    let r = (size >> 3) as usize;
    match size % 8 {
        0 => r,
        1 => 100 + r,
        2 => 125 + r % 3,
        3 => 65535 + r % 2,
        4 => 1000 + r * 100,
        5 => 16 * 1024 + r,
        6 if r % 8 == 0 => 100_000,
        _ => 20 + r,
    }
}

// ---- Callbacks ----

/// Behaviour bits of a socket's callbacks.
const B_SEND_ON_OPEN: u8 = 1;
const B_SEND_ON_MESSAGE: u8 = 2;
const B_CLOSE_ON_MESSAGE: u8 = 4;
const B_FREE_ON_OPEN_OR_MESSAGE: u8 = 8;
const B_CREATE: u8 = 16;
const B_FREE_ON_CLOSE: u8 = 32;
const B_DISPATCH: u8 = 64;
const B_SEND_OTHER: u8 = 128;

struct Active<'a>(&'a Ctx);
impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
    }
}

unsafe fn ctx_of<'a>(ud: *mut c_void) -> (&'a Ctx, Active<'a>) {
    let ctx = unsafe { &*(ud as *const Ctx) };
    ctx.active.fetch_add(1, SeqCst);
    (ctx, Active(ctx))
}

fn callback_sender(ctx: &Ctx) -> usize {
    if ctx.manual {
        CB_MANUAL
    } else {
        CB_IO
    }
}

fn free_own(ctx: &Ctx, ws: *mut ws) {
    let taken = ctx.handle.lock().unwrap().take();
    if let Some(p) = taken {
        assert_eq!(p, ws as usize, "the callback's socket is its own");
        expect(ws_free(p as *mut ws), &[WS_OK], "ws_free in own callback");
    }
}

/// What the callbacks do besides recording, per the socket's behaviour bits.
fn act(ctx: &Ctx, ws: *mut ws, on: &str) {
    let b = ctx.behaviour.load(SeqCst);
    let sender = callback_sender(ctx);
    let budget = || ctx.callback_sends.fetch_add(1, SeqCst) < 4;
    let send_results = [WS_OK, WS_INVALID_STATE_ERROR, WS_INVALID_HANDLE];
    if b & B_DISPATCH != 0 {
        expect(
            unsafe { ws_dispatch(0, std::ptr::null_mut()) },
            &[WS_INVALID_STATE_ERROR],
            "ws_dispatch inside a callback",
        );
    }
    let send = (on == "open" && b & B_SEND_ON_OPEN != 0)
        || (on == "message" && b & B_SEND_ON_MESSAGE != 0);
    if send && budget() {
        let r = send_tagged(ctx, ws, sender, 10 + (b as usize) * 5, b & 1 == 0);
        expect(r, &send_results, "ws_send in a callback");
    }
    if on != "close" && b & B_SEND_OTHER != 0 && budget() {
        if let Some(world) = ctx.world.upgrade() {
            if let Some(other) = world.ctx(b ^ (ctx.id as u8)) {
                let guard = other.handle.lock().unwrap();
                if let Some(p) = *guard {
                    let r = send_tagged(&other, p as *mut ws, sender, 50, true);
                    expect(r, &send_results, "ws_send to another socket in a callback");
                }
            }
        }
    }
    if on == "message" && b & B_CLOSE_ON_MESSAGE != 0 {
        let r = unsafe { ws_close(ws, 4000 + (b as i32), std::ptr::null(), 0) };
        expect(r, &[WS_OK, WS_INVALID_HANDLE], "ws_close in a callback");
    }
    if on != "close" && b & B_CREATE != 0 {
        if let Some(world) = ctx.world.upgrade() {
            if !world.ending.load(SeqCst) && world.created_in_callbacks.fetch_add(1, SeqCst) < 12 {
                new_socket(
                    &world,
                    b.rotate_left(3),
                    b,
                    0,
                    b.rotate_right(2) & !B_CREATE,
                );
            }
        }
    }
    if (on == "open" || on == "message") && b & B_FREE_ON_OPEN_OR_MESSAGE != 0 {
        free_own(ctx, ws);
    }
    if on == "close" && b & B_FREE_ON_CLOSE != 0 {
        free_own(ctx, ws);
    }
}

unsafe extern "C" fn on_open(ws: *mut ws, ud: *mut c_void) {
    let (ctx, _active) = unsafe { ctx_of(ud) };
    {
        let mut log = ctx.log.lock().unwrap();
        assert!(
            !log.opened && !log.closed && !log.errored && log.messages == 0,
            "open out of order"
        );
        log.opened = true;
        log.events += 1;
    }
    let rs = ws_ready_state(ws);
    assert!(
        rs == WS_OPEN || rs == WS_CLOSING || rs == -1,
        "readyState {rs} in onopen"
    );
    let _ = unsafe { CStr::from_ptr(ws_protocol(ws)) };
    let _ = unsafe { CStr::from_ptr(ws_extensions(ws)) };
    ctx.changed.notify_all();
    act(ctx, ws, "open");
}

unsafe extern "C" fn on_message(
    ws: *mut ws,
    ud: *mut c_void,
    ty: ws_message_type,
    data: *const c_char,
    len: usize,
) {
    let (ctx, _active) = unsafe { ctx_of(ud) };
    assert!(!data.is_null());
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    let binary = match ty {
        WS_MESSAGE_TEXT => {
            assert_eq!(unsafe { *data.add(len) }, 0, "text is NUL-terminated");
            assert!(std::str::from_utf8(bytes).is_ok(), "text is UTF-8");
            false
        }
        WS_MESSAGE_BINARY => true,
        other => panic!("message type {other}"),
    };
    let tag = if ctx.echo {
        verify(ctx.id, binary, bytes)
    } else {
        None
    };
    {
        let mut log = ctx.log.lock().unwrap();
        assert!(!log.closed, "message after close");
        log.messages += 1;
        log.events += 1;
        if let Some((sender, seq)) = tag {
            if let Some(last) = log.last_seq[sender] {
                assert!(
                    seq > last,
                    "sender {sender}: seq {seq} after {last}: out of order or twice"
                );
            }
            log.last_seq[sender] = Some(seq);
        }
    }
    let rs = ws_ready_state(ws);
    assert!(
        rs == WS_OPEN || rs == WS_CLOSING || rs == -1,
        "readyState {rs} in onmessage"
    );
    ctx.changed.notify_all();
    act(ctx, ws, "message");
}

unsafe extern "C" fn on_error(ws: *mut ws, ud: *mut c_void, message: *const c_char) {
    let (ctx, _active) = unsafe { ctx_of(ud) };
    assert!(!message.is_null());
    let _ = unsafe { CStr::from_ptr(message) };
    {
        let mut log = ctx.log.lock().unwrap();
        assert!(!log.closed && !log.errored, "error after close, or twice");
        log.errored = true;
        log.events += 1;
    }
    let rs = ws_ready_state(ws);
    assert!(rs == WS_CLOSED || rs == -1, "readyState {rs} in onerror");
    ctx.changed.notify_all();
    act(ctx, ws, "error");
}

unsafe extern "C" fn on_close(
    ws: *mut ws,
    ud: *mut c_void,
    code: u16,
    reason: *const c_char,
    reason_len: usize,
    was_clean: bool,
) {
    let (ctx, _active) = unsafe { ctx_of(ud) };
    assert!(!reason.is_null() && reason_len <= 123);
    let reason_bytes = unsafe { std::slice::from_raw_parts(reason.cast::<u8>(), reason_len) };
    assert!(std::str::from_utf8(reason_bytes).is_ok());
    assert_eq!(unsafe { *reason.add(reason_len) }, 0);
    {
        let mut log = ctx.log.lock().unwrap();
        assert!(!log.closed, "two close events");
        if log.errored {
            assert!(
                code == 1006 && !was_clean,
                "error then close {code} clean={was_clean}"
            );
        }
        if code == 1006 {
            assert!(!was_clean, "1006 is never clean");
        }
        assert!(
            code == 1000 || code == 1005 || code == 1006 || (1001..=4999).contains(&code),
            "close code {code}"
        );
        log.closed = true;
        log.events += 1;
    }
    let rs = ws_ready_state(ws);
    assert!(rs == WS_CLOSED || rs == -1, "readyState {rs} in onclose");
    ctx.changed.notify_all();
    act(ctx, ws, "close");
}

fn callbacks_for(ctx: &Arc<Ctx>) -> ws_callbacks {
    ws_callbacks {
        onopen: Some(on_open),
        onmessage: Some(on_message),
        onerror: Some(on_error),
        onclose: Some(on_close),
        userdata: Arc::as_ptr(ctx) as *mut c_void,
    }
}

// ---- Ops ----

const BAD_FRAMES: &[&str] = &[
    "8380aabbccdd010203",   // masked frame from the server
    "830161",               // reserved opcode 3
    "8103ceba ff",          // (bad hex: the server answers 400)
    "8103cebaff",           // invalid UTF-8 text
    "097e0100",             // fragmented ping with a 256-byte length
    "817f0000000080000000", // a 2 GiB text frame header
    "8802ffff",             // invalid close code
    "0101618101",           // new message inside a fragmented one
];

/// The URL and whether the server echoes, for a path selector.
fn url_for(path: u8, port: u16) -> (String, bool) {
    let base = format!("ws://127.0.0.1:{port}");
    let r = path >> 5;
    match path % 20 {
        0 | 1 => (format!("{base}/echo"), true),
        2 => (format!("{base}/deflate"), true),
        3 => (
            format!("{base}/close?code={}&reason=bye", 4000 + r as u16),
            false,
        ),
        4 => (format!("{base}/close?after_ms={}", 5 + r as u32 * 10), true),
        5 => (format!("{base}/drop?after_ms={}", 5 + r as u32 * 10), true),
        6 => (format!("{base}/drop?rst=1"), false),
        7 => (format!("{base}/rst-after-open"), false),
        8 => (format!("{base}/no-close-reply"), true),
        9 => (format!("{base}/never-handshake"), false),
        10 => (
            format!("{base}/raw?status={}", [404, 500, 301, 200][r as usize % 4]),
            false,
        ),
        11 => (
            format!("{base}/push?n={}&size={}", 1 + r * 5, 1 + r as u32 * 300),
            false,
        ),
        12 => (
            format!("{base}/slow?chunk=1&interval_ms=1&then=hello"),
            false,
        ),
        13 => (
            format!(
                "{base}/send?frames={}",
                BAD_FRAMES[r as usize % BAD_FRAMES.len()]
            ),
            false,
        ),
        14 => (format!("{base}/delay-handshake?ms={}", r as u32 * 10), true),
        15 => ("ws://127.0.0.1:1/".to_string(), false), // connection refused
        16 => (format!("{base}/protocol?select=other"), false),
        17 => (format!("http://127.0.0.1:{port}/echo?x=1"), true),
        18 => (format!("{base}/raw?accept=bad"), false),
        _ => (format!("{base}/headers"), false),
    }
}

/// Creates a socket (options from `opts` bits, callbacks per `mode`) and adds it to the world.
fn new_socket(world: &Arc<World>, path: u8, opts: u8, mode: u8, behaviour: u8) {
    let (url, echo) = url_for(path, port());
    let ctx = Arc::new(Ctx {
        id: world.next_id.fetch_add(1, SeqCst),
        world: Arc::downgrade(world),
        handle: Mutex::new(None),
        echo,
        manual: opts & 1 != 0,
        behaviour: AtomicU8::new(behaviour),
        active: AtomicUsize::new(0),
        log: Mutex::new(Log::default()),
        changed: Condvar::new(),
        seq: Default::default(),
        callback_sends: AtomicU32::new(0),
    });
    let mut o: *mut ws_options = std::ptr::null_mut();
    expect(
        unsafe { ws_options_new(&mut o) },
        &[WS_OK],
        "ws_options_new",
    );
    let empty = CString::new("").unwrap();
    expect(
        unsafe { ws_options_set_proxy(o, empty.as_ptr()) },
        &[WS_OK],
        "proxy",
    );
    let set = |r: ws_result| expect(r, &[WS_OK], "option");
    set(ws_options_set_manual_dispatch(o, opts & 1 != 0));
    set(ws_options_set_deflate(o, opts & 2 == 0));
    if opts & 4 != 0 {
        set(ws_options_set_close_timeout(o, 200));
    }
    if opts & 8 != 0 {
        set(ws_options_set_connect_timeout(o, 300));
    }
    if opts & 16 != 0 {
        set(ws_options_set_max_message_size(o, 1000));
    }
    if opts & 32 != 0 {
        set(ws_options_set_ping_interval(o, 50));
        set(ws_options_set_pong_timeout(o, 100));
    }
    if opts & 64 != 0 {
        set(ws_options_set_max_buffered_amount(o, 100_000));
    }
    if opts & 128 != 0 {
        set(ws_options_set_deflate_threshold(o, 100));
        set(ws_options_set_max_frame_size(o, 70_000));
    }
    let protos: Vec<CString> = match path >> 6 {
        0 => vec![],
        1 => vec![CString::new("chat").unwrap()],
        _ => vec![
            CString::new("chat").unwrap(),
            CString::new("v2.json").unwrap(),
        ],
    };
    let ptrs: Vec<*const c_char> = protos.iter().map(|p| p.as_ptr()).collect();
    let curl = CString::new(url).unwrap();
    let cbs = callbacks_for(&ctx);
    let with_cbs = mode % 4 == 0;
    // Registered before ws_new: its callbacks may run before ws_new returns.
    world.slots.lock().unwrap().push(ctx.clone());
    let mut out: *mut ws = std::ptr::null_mut();
    let r = unsafe {
        ws_new_with_options(
            curl.as_ptr(),
            if ptrs.is_empty() {
                std::ptr::null()
            } else {
                ptrs.as_ptr()
            },
            ptrs.len(),
            o,
            if with_cbs { &cbs } else { std::ptr::null() },
            &mut out,
        )
    };
    expect(r, &[WS_OK], "ws_new_with_options");
    expect(ws_options_free(o), &[WS_OK], "ws_options_free");
    assert!(!out.is_null());
    *ctx.handle.lock().unwrap() = Some(out as usize);
    if !with_cbs {
        set_callbacks(&ctx, out, mode);
    }
}

fn set_callbacks(ctx: &Arc<Ctx>, ws: *mut ws, mode: u8) {
    let cbs = callbacks_for(ctx);
    let ud = cbs.userdata;
    let ok = [WS_OK, WS_INVALID_HANDLE];
    unsafe {
        match mode % 4 {
            0 | 1 => expect(ws_set_callbacks(ws, &cbs), &ok, "ws_set_callbacks"),
            2 => {
                expect(ws_set_onopen(ws, cbs.onopen, ud), &ok, "ws_set_onopen");
                expect(
                    ws_set_onmessage(ws, cbs.onmessage, ud),
                    &ok,
                    "ws_set_onmessage",
                );
                expect(ws_set_onerror(ws, cbs.onerror, ud), &ok, "ws_set_onerror");
                expect(ws_set_onclose(ws, cbs.onclose, ud), &ok, "ws_set_onclose");
            }
            _ => {} // none: the events wait until the socket is freed
        }
    }
}

/// Runs `f` on the socket of `slot` while it is owned (the handle lock is held: `f` must not
/// block on callbacks).
fn with_socket(world: &World, slot: u8, f: impl FnOnce(&Arc<Ctx>, *mut ws)) {
    if let Some(ctx) = world.ctx(slot) {
        let guard = ctx.handle.lock().unwrap();
        if let Some(p) = *guard {
            f(&ctx, p as *mut ws);
        }
    }
}

fn dispatch_for(ms: u32) {
    let mut n = 0usize;
    let r = unsafe { ws_dispatch(ms as c_int, &mut n) };
    expect(r, &[WS_OK], "ws_dispatch");
}

fn misuse(world: &World, kind: u8) {
    let url = CString::new(format!("ws://127.0.0.1:{}/echo", port())).unwrap();
    let mut out: *mut ws = std::ptr::null_mut();
    let null = std::ptr::null::<c_char>();
    unsafe {
        match kind % 16 {
            0 => expect(
                ws_new(null, std::ptr::null(), 0, &mut out),
                &[WS_NULL_ARGUMENT],
                "NULL url",
            ),
            1 => expect(
                ws_new(url.as_ptr(), std::ptr::null(), 0, std::ptr::null_mut()),
                &[WS_NULL_ARGUMENT],
                "NULL out",
            ),
            2 => {
                let bad = b"ws://127.0.0.1/\xc3\x28\0";
                expect(
                    ws_new(bad.as_ptr().cast(), std::ptr::null(), 0, &mut out),
                    &[WS_INVALID_UTF8],
                    "invalid UTF-8 url",
                )
            }
            3 => {
                let u = CString::new("ws://127.0.0.1/#frag").unwrap();
                expect(
                    ws_new(u.as_ptr(), std::ptr::null(), 0, &mut out),
                    &[WS_SYNTAX_ERROR],
                    "fragment",
                )
            }
            4 => {
                let u = CString::new("ftp://127.0.0.1/").unwrap();
                expect(
                    ws_new(u.as_ptr(), std::ptr::null(), 0, &mut out),
                    &[WS_SYNTAX_ERROR],
                    "scheme",
                )
            }
            5 => {
                let p = [CString::new("a").unwrap().into_raw() as *const c_char, null];
                expect(
                    ws_new(url.as_ptr(), p.as_ptr(), 2, &mut out),
                    &[WS_NULL_ARGUMENT],
                    "NULL protocol",
                );
                drop(CString::from_raw(p[0] as *mut c_char));
            }
            6 => {
                let a = CString::new("chat").unwrap();
                let p = [a.as_ptr(), a.as_ptr()];
                expect(
                    ws_new(url.as_ptr(), p.as_ptr(), 2, &mut out),
                    &[WS_SYNTAX_ERROR],
                    "duplicate protocol",
                )
            }
            7 => expect(
                ws_new(url.as_ptr(), std::ptr::null(), 3, &mut out),
                &[WS_NULL_ARGUMENT],
                "NULL protocols with a count",
            ),
            8 => {
                let text = CString::new("x").unwrap();
                expect(
                    ws_send(
                        std::ptr::null_mut(),
                        WS_MESSAGE_TEXT,
                        text.as_ptr().cast(),
                        1,
                    ),
                    &[WS_NULL_ARGUMENT],
                    "send NULL",
                );
                expect(
                    ws_send_text(std::ptr::null_mut(), text.as_ptr()),
                    &[WS_NULL_ARGUMENT],
                    "send_text NULL",
                );
                expect(
                    ws_close(std::ptr::null_mut(), 1000, null, 0),
                    &[WS_NULL_ARGUMENT],
                    "close NULL",
                );
                assert_eq!(ws_ready_state(std::ptr::null()), -1);
                assert_eq!(ws_buffered_amount(std::ptr::null()), 0);
                assert_eq!(CStr::from_ptr(ws_url(std::ptr::null())).to_bytes(), b"");
                assert_eq!(
                    CStr::from_ptr(ws_protocol(std::ptr::null())).to_bytes(),
                    b""
                );
                expect(ws_free(std::ptr::null_mut()), &[WS_OK], "free NULL");
                expect(
                    ws_set_onopen(std::ptr::null_mut(), None, std::ptr::null_mut()),
                    &[WS_NULL_ARGUMENT],
                    "set NULL",
                );
                expect(
                    ws_set_callbacks(std::ptr::null_mut(), std::ptr::null()),
                    &[WS_NULL_ARGUMENT],
                    "set_callbacks NULL",
                );
            }
            9 => {
                expect(
                    ws_options_new(std::ptr::null_mut()),
                    &[WS_NULL_ARGUMENT],
                    "options_new NULL",
                );
                expect(
                    ws_options_free(std::ptr::null_mut()),
                    &[WS_OK],
                    "options_free NULL",
                );
                expect(
                    ws_options_set_close_timeout(std::ptr::null_mut(), 5),
                    &[WS_NULL_ARGUMENT],
                    "options NULL",
                );
                expect(
                    ws_options_add_header(std::ptr::null_mut(), null, null),
                    &[WS_NULL_ARGUMENT],
                    "header NULL",
                );
            }
            10 => {
                expect(
                    ws_event_fd(std::ptr::null_mut()),
                    &[WS_NULL_ARGUMENT],
                    "event_fd NULL",
                );
                let mut fd: c_int = -1;
                expect(ws_event_fd(&mut fd), &[WS_OK], "event_fd");
                assert!(fd >= 0);
            }
            11 => {
                assert!(!ws_result_name(kind as c_int - 100).is_null());
                assert!(!ws_last_error_message().is_null());
                assert!(!ws_version().is_null());
            }
            12 => expect(
                ws_set_io_threads(kind as usize),
                &[WS_INVALID_STATE_ERROR],
                "set_io_threads late",
            ),
            13 => with_socket(world, kind, |_, p| {
                expect(
                    ws_send(p, 7, std::ptr::null(), 0),
                    &[WS_INVALID_ARGUMENT],
                    "unknown type",
                );
                expect(
                    ws_send(p, WS_MESSAGE_BINARY, std::ptr::null(), 5),
                    &[WS_NULL_ARGUMENT],
                    "NULL data",
                );
                expect(
                    ws_close(p, 1000, null, 4),
                    &[WS_NULL_ARGUMENT],
                    "NULL reason",
                );
                expect(
                    ws_set_callbacks(p, std::ptr::null()),
                    &[WS_NULL_ARGUMENT],
                    "NULL callbacks",
                );
            }),
            14 => {
                // Protocol tokens: empty, separators, non-ASCII.
                for bad in ["", "a b", "a,b", "é"] {
                    let b = CString::new(bad).unwrap();
                    let p = [b.as_ptr()];
                    expect(
                        ws_new(url.as_ptr(), p.as_ptr(), 1, &mut out),
                        &[WS_SYNTAX_ERROR],
                        "bad protocol",
                    );
                }
            }
            _ => {
                let u = CString::new("/relative").unwrap();
                expect(
                    ws_new(u.as_ptr(), std::ptr::null(), 0, &mut out),
                    &[WS_SYNTAX_ERROR],
                    "relative url",
                );
            }
        }
    }
    assert!(out.is_null(), "a failed ws_new leaves *out NULL");
}

fn options_churn(bits: u8) {
    let mut o: *mut ws_options = std::ptr::null_mut();
    unsafe {
        expect(ws_options_new(&mut o), &[WS_OK], "ws_options_new");
        let c = |s: &str| CString::new(s).unwrap();
        let (n, v) = (c("X-Test"), c("1"));
        expect(
            ws_options_add_header(o, n.as_ptr(), v.as_ptr()),
            &[WS_OK],
            "header",
        );
        if bits & 1 != 0 {
            let (n, v) = (c("Sec-WebSocket-Key"), c("x"));
            expect(
                ws_options_add_header(o, n.as_ptr(), v.as_ptr()),
                &[WS_SYNTAX_ERROR],
                "reserved header",
            );
            let (n, v) = (c("X-Bad"), c("a\r\nb"));
            expect(
                ws_options_add_header(o, n.as_ptr(), v.as_ptr()),
                &[WS_SYNTAX_ERROR],
                "CRLF header",
            );
            let (n, v) = (c("bad name"), c("v"));
            expect(
                ws_options_add_header(o, n.as_ptr(), v.as_ptr()),
                &[WS_SYNTAX_ERROR],
                "header name",
            );
        }
        if bits & 2 != 0 {
            expect(
                ws_options_set_connect_timeout(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero timeout",
            );
            expect(
                ws_options_set_close_timeout(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero timeout",
            );
            expect(
                ws_options_set_pong_timeout(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero timeout",
            );
            expect(
                ws_options_set_max_message_size(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero size",
            );
            expect(
                ws_options_set_max_frame_size(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero size",
            );
            expect(
                ws_options_set_max_buffered_amount(o, 0),
                &[WS_INVALID_ARGUMENT],
                "zero size",
            );
        }
        if bits & 4 != 0 {
            let p = c("not a proxy url");
            expect(
                ws_options_set_proxy(o, p.as_ptr()),
                &[WS_SYNTAX_ERROR],
                "bad proxy",
            );
            let b = b"https://\xff/\0";
            expect(
                ws_options_set_base_url(o, b.as_ptr().cast()),
                &[WS_INVALID_UTF8],
                "bad base url",
            );
            expect(
                ws_options_set_base_url(o, std::ptr::null()),
                &[WS_OK],
                "no base url",
            );
        }
        if bits & 8 != 0 {
            let pem = c("not a pem");
            expect(
                ws_options_add_ca_pem(o, pem.as_ptr()),
                &[WS_OK],
                "ca pem (checked later)",
            );
            expect(
                ws_options_set_client_cert(o, pem.as_ptr(), pem.as_ptr()),
                &[WS_OK],
                "client cert",
            );
            expect(
                ws_options_set_insecure(o, bits & 16 != 0),
                &[WS_OK],
                "insecure",
            );
            expect(
                ws_options_set_default_roots(o, bits & 32 != 0),
                &[WS_OK],
                "roots",
            );
        }
        expect(ws_options_free(o), &[WS_OK], "ws_options_free");
    }
}

fn close_args(code: u8, reason: u8) -> (i32, Vec<u8>, &'static [ws_result]) {
    let c = match code % 8 {
        0 => WS_CLOSE_NO_CODE,
        1 => 1000,
        2 => 3000 + code as i32,
        3 => 4999,
        4 => 1001,
        5 => 999,
        6 => 5000,
        _ => 2999,
    };
    let valid_code = matches!(code % 8, 0..=3);
    let (text, kind): (Vec<u8>, u8) = match reason % 6 {
        0 => (vec![], 0),
        1 => (b"bye".to_vec(), 0),
        2 => (vec![b'r'; 123], 0),
        3 => (vec![b'r'; 124], 1),
        4 => ("é".repeat(61).into_bytes(), 0),
        _ => (b"\xc3\x28".to_vec(), 2),
    };
    let allowed: &'static [ws_result] = if !valid_code {
        &[WS_INVALID_ACCESS_ERROR]
    } else if kind == 1 {
        &[WS_SYNTAX_ERROR]
    } else if kind == 2 {
        &[WS_INVALID_UTF8]
    } else {
        &[WS_OK]
    };
    (c, text, allowed)
}

fn run_op(
    world: &Arc<World>,
    op: &Op,
    sender: usize,
    threads: &mut Vec<std::thread::JoinHandle<()>>,
) {
    match op {
        Op::New {
            path,
            opts,
            mode,
            behaviour,
        } => new_socket(world, *path, *opts, *mode, *behaviour),
        Op::Send { slot, binary, size } => with_socket(world, *slot, |ctx, p| {
            let r = send_tagged(ctx, p, sender, size_of_class(*size), *binary);
            // InvalidStateError while CONNECTING (readyState may have moved on since).
            expect(r, &[WS_OK, WS_INVALID_STATE_ERROR], "ws_send");
        }),
        Op::SendEmpty { slot, binary } => with_socket(world, *slot, |_, p| {
            let ty = if *binary {
                WS_MESSAGE_BINARY
            } else {
                WS_MESSAGE_TEXT
            };
            let r = unsafe { ws_send(p, ty, std::ptr::null(), 0) };
            expect(r, &[WS_OK, WS_INVALID_STATE_ERROR], "empty ws_send");
        }),
        Op::SendBad { slot, kind } => with_socket(world, *slot, |_, p| {
            let bad: &[u8] = match kind % 4 {
                0 => b"\xff",
                1 => b"abc\xc3",
                2 => b"\xed\xa0\x80",     // a UTF-16 surrogate
                _ => b"\xf4\x90\x80\x80", // above U+10FFFF
            };
            let r = unsafe { ws_send(p, WS_MESSAGE_TEXT, bad.as_ptr().cast(), bad.len()) };
            expect(r, &[WS_INVALID_UTF8], "invalid UTF-8 text");
        }),
        Op::Close { slot, code, reason } => with_socket(world, *slot, |_, p| {
            let (c, text, allowed) = close_args(*code, *reason);
            let ptr = if text.is_empty() && reason % 2 == 0 {
                std::ptr::null()
            } else {
                text.as_ptr().cast()
            };
            let r = unsafe { ws_close(p, c, ptr, text.len()) };
            expect(r, allowed, "ws_close");
            if r == WS_OK {
                let rs = ws_ready_state(p);
                assert!(rs >= WS_CONNECTING && rs <= WS_CLOSED, "{rs}");
            }
        }),
        Op::Free { slot } => {
            if let Some(ctx) = world.ctx(*slot) {
                let taken = ctx.handle.lock().unwrap().take();
                if let Some(p) = taken {
                    expect(ws_free(p as *mut ws), &[WS_OK], "ws_free");
                }
            }
        }
        Op::Getters { slot } => with_socket(world, *slot, |_, p| {
            let rs = ws_ready_state(p);
            assert!((WS_CONNECTING..=WS_CLOSED).contains(&rs), "readyState {rs}");
            let _ = ws_buffered_amount(p);
            let url = unsafe { CStr::from_ptr(ws_url(p)) }.to_str().unwrap();
            assert!(url.starts_with("ws://"), "{url}");
            let _ = unsafe { CStr::from_ptr(ws_protocol(p)) };
            let _ = unsafe { CStr::from_ptr(ws_extensions(p)) };
        }),
        Op::Dispatch { ms } => {
            let ms = world.take_wait(Duration::from_millis((*ms % 8) as u64));
            dispatch_for(ms.as_millis() as u32)
        }
        Op::Wait { slot, ms } => {
            if let Some(ctx) = world.ctx(*slot) {
                let wait = world.take_wait(Duration::from_millis((*ms % 64) as u64));
                let deadline = Instant::now() + wait;
                // Until the socket's next event (or its close).
                let seen = ctx.log.lock().unwrap().events;
                loop {
                    let log = ctx.log.lock().unwrap();
                    if log.closed || log.events > seen || Instant::now() >= deadline {
                        break;
                    }
                    drop(log);
                    if ctx.manual {
                        dispatch_for(2);
                    } else {
                        let log = ctx.log.lock().unwrap();
                        let _ = ctx
                            .changed
                            .wait_timeout(log, Duration::from_millis(2))
                            .unwrap();
                    }
                }
            }
        }
        Op::Sleep { ms } => {
            std::thread::sleep(world.take_wait(Duration::from_micros((*ms as u64 % 32) * 100)))
        }
        Op::Misuse { kind } => misuse(world, *kind),
        Op::Options { bits } => options_churn(*bits),
        Op::SetCallbacks {
            slot,
            mode,
            behaviour,
        } => with_socket(world, *slot, |ctx, p| {
            ctx.behaviour.store(*behaviour, SeqCst);
            set_callbacks(ctx, p, *mode);
        }),
        Op::Spawn { ops } => {
            if threads.len() >= 8 {
                return;
            }
            let id = 1 + threads.len();
            let world = world.clone();
            let ops = ops.clone();
            threads.push(std::thread::spawn(move || {
                let mut none = Vec::new();
                for op in &ops {
                    run_op(&world, op, id, &mut none);
                }
            }));
        }
    }
}

/// Frees everything, waits for callbacks to finish, and checks nothing is left.
fn end(world: &Arc<World>) {
    world.ending.store(true, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all: Vec<Arc<Ctx>> = world.slots.lock().unwrap().clone();
        for ctx in &all {
            let taken = ctx.handle.lock().unwrap().take();
            if let Some(p) = taken {
                expect(ws_free(p as *mut ws), &[WS_OK], "ws_free at the end");
            }
        }
        while all.iter().any(|c| c.active.load(SeqCst) > 0) {
            assert!(Instant::now() < deadline, "a callback never returned");
            std::thread::sleep(Duration::from_micros(100));
        }
        // Events of freed manual sockets fire nothing; drain them.
        dispatch_for(0);
        let now: Vec<Arc<Ctx>> = world.slots.lock().unwrap().clone();
        if now.len() == all.len() && now.iter().all(|c| c.handle.lock().unwrap().is_none()) {
            break;
        }
    }
    assert_eq!(
        ws_live_handles(),
        0,
        "handles left after freeing everything"
    );
    world.slots.lock().unwrap().clear();
}

static INPUTS: AtomicUsize = AtomicUsize::new(0);

/// Sockets finish their closing handshakes in the background after ws_free: they must not
/// pile up (a leak of core sockets would).
fn check_core_sockets() {
    if INPUTS.fetch_add(1, SeqCst) % 64 != 0 {
        return;
    }
    // What the server observed is of no use here and would grow without bound.
    if let Some(server) = SERVER.lock().unwrap().as_ref() {
        server.clear_observed();
    }
    if wsdom_core::live_socket_count() <= 256 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while wsdom_core::live_socket_count() > 64 {
        assert!(
            Instant::now() < deadline,
            "{} core sockets still alive 30 s after being freed",
            wsdom_core::live_socket_count()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fuzz_target!(|data: &[u8]| {
    port();
    let ops = decode(data);
    let world = Arc::new(World {
        slots: Mutex::new(Vec::new()),
        next_id: AtomicU32::new(1),
        created_in_callbacks: AtomicUsize::new(0),
        ending: AtomicBool::new(false),
        wait_budget_us: AtomicU64::new(WAIT_BUDGET.as_micros() as u64),
    });
    let trace = std::env::var_os("WSDOM_FUZZ_TRACE").is_some();
    let mut threads = Vec::new();
    for op in &ops {
        let t0 = Instant::now();
        run_op(&world, op, 0, &mut threads);
        if trace {
            eprintln!("{:?} {op:?}", t0.elapsed());
        }
    }
    let t0 = Instant::now();
    for t in threads {
        t.join().expect("a driver thread panicked");
    }
    end(&world);
    check_core_sockets();
    if trace {
        eprintln!("{:?} join+end", t0.elapsed());
    }
});
