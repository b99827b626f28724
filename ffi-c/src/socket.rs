//! The `WebSocket` object: `ws_new`, `ws_send`, `ws_close`, the attributes, and `ws_free`.

use crate::callbacks::{ws_callbacks, Shared};
use crate::handles::Table;
use crate::options::{options_of, ws_options};
use crate::panic::{fail, ffi_panic_boundary, try_ffi};
use crate::result::{ws_result, Error};
use crate::strings::{bytes_arg, cstring_lossy, str_arg, utf8_arg, EMPTY};
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, OnceLock};
use wsdom_core::{Options, ReadyState, WebSocket};

/// `readyState` 0: the connection is not yet open.
pub const WS_CONNECTING: c_int = 0;
/// `readyState` 1: the connection is open and ready to communicate.
pub const WS_OPEN: c_int = 1;
/// `readyState` 2: the closing handshake has started.
pub const WS_CLOSING: c_int = 2;
/// `readyState` 3: the connection is closed or could not be opened.
pub const WS_CLOSED: c_int = 3;

/// The type of a message: `WS_MESSAGE_TEXT` or `WS_MESSAGE_BINARY`.
pub type ws_message_type = u32;
/// A text message: UTF-8 (opcode 0x1). The browser's string `data`.
pub const WS_MESSAGE_TEXT: ws_message_type = 1;
/// A binary message (opcode 0x2). The browser's `ArrayBuffer` `data`.
pub const WS_MESSAGE_BINARY: ws_message_type = 2;

// cbindgen would write `#define WS_CLOSE_NO_CODE -1` without parentheses, so the header's
// definition, `(-1)`, comes from `after_includes` in cbindgen.toml.
/// The `code` argument of `ws_close` meaning "no code", as `close()` without arguments.
///
/// cbindgen:ignore
pub const WS_CLOSE_NO_CODE: i32 = -1;

/// A WebSocket, as the browser's `WebSocket` object (opaque).
///
/// Created by `ws_new` / `ws_new_with_options`, released by `ws_free`. The pointer is a handle:
/// all functions taking it are safe to call from any thread at the same time, and the
/// library checks it against its table of live sockets before use, so a NULL or already freed
/// handle gives `WS_NULL_ARGUMENT` / `WS_INVALID_HANDLE` (or a getter's neutral value) instead
/// of a crash. Using a freed handle is still a bug (undefined behaviour, like any use after
/// `free`): once its address is reused by a new socket, the stale pointer names that socket.
pub struct ws {
    _private: [u8; 0],
}

/// What a `ws *` stands for: the core socket, its callbacks and the strings given to C.
pub(crate) struct Handle {
    pub(crate) socket: WebSocket,
    pub(crate) shared: Arc<Shared>,
    url: CString,
    protocol: OnceLock<CString>,
    extensions: OnceLock<CString>,
}

/// The live sockets, keyed by the address of their [`Shared`].
static SOCKETS: Table<Handle> = Table::new();

/// Number of live `ws` handles.
pub(crate) fn live_sockets() -> usize {
    SOCKETS.len()
}

/// The live socket behind `socket` (never dereferences it).
pub(crate) fn handle_of(socket: *const ws) -> Result<Arc<Handle>, Error> {
    if socket.is_null() {
        return Err(Error::null("socket"));
    }
    SOCKETS.get(socket as usize).ok_or_else(|| {
        Error::new(
            ws_result::WS_INVALID_HANDLE,
            format!("{socket:p} is not a live ws handle (already freed by ws_free?)"),
        )
    })
}

/// Reads the subprotocol list given as an array of C strings.
///
/// # Safety
/// `protocols` is NULL or points to `count` pointers, each NULL or a C string.
unsafe fn protocol_list<'a>(
    protocols: *const *const c_char,
    count: usize,
) -> Result<Vec<&'a str>, Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if protocols.is_null() {
        return Err(Error::null("protocols (with protocol_count > 0)"));
    }
    // SAFETY: `count` readable pointers per the contract.
    let items = unsafe { std::slice::from_raw_parts(protocols, count) };
    items
        .iter()
        .enumerate()
        // SAFETY: each item is NULL or a C string per the contract.
        .map(|(i, p)| unsafe { str_arg(*p, &format!("protocols[{i}]")) })
        .collect()
}

/// `new WebSocket(url, protocols)` with default options and no callbacks yet; the same as
/// `ws_new_with_options(url, protocols, protocol_count, NULL, NULL, out)`.
///
/// Validates the arguments and starts connecting on the library's threads; returns at once
/// with the socket in `WS_CONNECTING`. Network failures are not reported here: they come later
/// as `onerror` then `onclose` (code 1006). The events wait until the first callback is set
/// (see `ws_set_onopen`), so setting callbacks right after `ws_new` loses nothing.
///
/// - `url`: NUL-terminated UTF-8, `ws://`, `wss://`, `http://` or `https://` (the latter two
///   are rewritten to ws/wss as in the browser). No fragment.
/// - `protocols`: `protocol_count` NUL-terminated subprotocol names (the browser's
///   `protocols` array), or NULL when `protocol_count` is 0. Copied; may be freed on return.
/// - `out`: receives the new handle on success, NULL on failure. The caller owns the handle
///   and must release it with `ws_free` (also after the socket closed).
///
/// Errors: `WS_SYNTAX_ERROR` (invalid URL, invalid or repeated subprotocol),
/// `WS_NULL_ARGUMENT` (url or out is NULL, protocols is NULL with a count, or an element is
/// NULL), `WS_INVALID_UTF8` (url or a subprotocol).
///
/// Thread: any, including inside callbacks.
///
/// # Safety
/// `url` is NULL or a C string; `protocols` as described; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ws_new(
    url: *const c_char,
    protocols: *const *const c_char,
    protocol_count: usize,
    out: *mut *mut ws,
) -> ws_result {
    // SAFETY: forwarded contract.
    unsafe {
        ws_new_with_options(
            url,
            protocols,
            protocol_count,
            std::ptr::null(),
            std::ptr::null(),
            out,
        )
    }
}

/// `new WebSocket(url, protocols)` with options and, optionally, all callbacks in place before
/// the connection starts.
///
/// As `ws_new`, plus:
/// - `options`: NULL for the defaults, or a `ws_options` whose settings are copied (the
///   options object may be changed, reused for other sockets, or freed right after the call).
/// - `callbacks`: NULL to set callbacks later with `ws_set_on*` / `ws_set_callbacks` (events
///   wait until then), or a `ws_callbacks` (copied) installed before the connection starts, so
///   no event can be delivered before them.
///
/// Errors: as `ws_new`, plus `WS_SYNTAX_ERROR` for an invalid option (a header name or value),
/// and `WS_INVALID_HANDLE` if `options` is not a live `ws_options`.
///
/// Thread: any, including inside callbacks.
///
/// # Safety
/// As `ws_new`; `options` is NULL or a `ws_options` handle; `callbacks` is NULL or points to a
/// valid `ws_callbacks` whose functions stay callable while the socket lives.
#[no_mangle]
pub unsafe extern "C" fn ws_new_with_options(
    url: *const c_char,
    protocols: *const *const c_char,
    protocol_count: usize,
    options: *const ws_options,
    callbacks: *const ws_callbacks,
    out: *mut *mut ws,
) -> ws_result {
    ffi_panic_boundary! {
        if out.is_null() {
            return fail(Error::null("out"));
        }
        // SAFETY: `out` is writable per the contract.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: forwarded contract.
        let url = try_ffi!(unsafe { str_arg(url, "url") });
        // SAFETY: forwarded contract.
        let protocols = try_ffi!(unsafe { protocol_list(protocols, protocol_count) });
        let mut opts = if options.is_null() {
            Options::default()
        } else {
            try_ffi!(options_of(options)).snapshot()
        };
        // Callbacks must be able to use the handle from their first call, so the socket
        // starts without a handler (its events wait in the core), the handle is registered,
        // and only then are the callbacks installed.
        opts.handler = None;
        let core = try_ffi!(WebSocket::new(url, &protocols, opts).map_err(Error::dom));
        let handle = Arc::new(Handle {
            url: cstring_lossy(core.url()),
            socket: core,
            shared: Shared::new(),
            protocol: OnceLock::new(),
            extensions: OnceLock::new(),
        });
        let token = handle.shared.token();
        SOCKETS.insert(token as usize, handle.clone());
        if !callbacks.is_null() {
            // SAFETY: non-NULL and valid per the contract; copied.
            handle.shared.set_all(unsafe { &*callbacks });
            handle.shared.install_once(&handle.socket);
        }
        // SAFETY: as above.
        unsafe { *out = token };
        ws_result::WS_OK
    }
}

/// `send(data)`: queues one message of type `message_type` (`WS_MESSAGE_TEXT` or
/// `WS_MESSAGE_BINARY`) with the `len` bytes at `data` (copied; `data` may be NULL when `len`
/// is 0). Never blocks: the bytes count in `ws_buffered_amount` until written.
///
/// As in the browser, in `WS_CLOSING` or `WS_CLOSED` the message is discarded without error
/// (`ws_buffered_amount` still grows), and a send that makes `ws_buffered_amount` exceed the
/// `max_buffered_amount` option fails the connection (`onerror`, then `onclose` 1006).
///
/// Errors: `WS_INVALID_STATE_ERROR` (still `WS_CONNECTING`), `WS_INVALID_UTF8` (text that is
/// not UTF-8), `WS_INVALID_ARGUMENT` (unknown `message_type`), `WS_NULL_ARGUMENT` (socket, or
/// data with len > 0), `WS_OUT_OF_MEMORY` (no memory for a copy of the message),
/// `WS_INVALID_HANDLE`.
///
/// Thread: any; concurrent sends on one socket are each sent whole, in some order.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_send(
    socket: *mut ws,
    message_type: ws_message_type,
    data: *const c_void,
    len: usize,
) -> ws_result {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        let sent = match message_type {
            WS_MESSAGE_TEXT => {
                // SAFETY: forwarded contract.
                let text = try_ffi!(unsafe { utf8_arg(data, len, "data") });
                handle.socket.send_text(text)
            }
            WS_MESSAGE_BINARY => {
                // SAFETY: forwarded contract.
                let bytes = try_ffi!(unsafe { bytes_arg(data, len, "data") });
                handle.socket.send_binary(bytes)
            }
            other => {
                return fail(Error::invalid(format!(
                    "message_type {other} is neither WS_MESSAGE_TEXT (1) nor \
                     WS_MESSAGE_BINARY (2)"
                )))
            }
        };
        try_ffi!(sent.map_err(Error::dom));
        ws_result::WS_OK
    }
}

/// `send(string)`: sends the NUL-terminated UTF-8 `text` as a text message (the terminator
/// is not sent). To send text containing NUL characters, use `ws_send` with a length.
///
/// Errors and thread: as `ws_send` (`WS_NULL_ARGUMENT` if text is NULL).
///
/// # Safety
/// `text` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn ws_send_text(socket: *mut ws, text: *const c_char) -> ws_result {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        // SAFETY: forwarded contract.
        let text = try_ffi!(unsafe { str_arg(text, "text") });
        try_ffi!(handle.socket.send_text(text).map_err(Error::dom));
        ws_result::WS_OK
    }
}

/// `send(ArrayBuffer)`: sends the `len` bytes at `data` (copied) as a binary message.
///
/// Errors and thread: as `ws_send`.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_send_binary(
    socket: *mut ws,
    data: *const c_void,
    len: usize,
) -> ws_result {
    // SAFETY: forwarded contract.
    unsafe { ws_send(socket, WS_MESSAGE_BINARY, data, len) }
}

/// `close(code, reason)`: starts the closing handshake.
///
/// - `code`: `WS_CLOSE_NO_CODE` for none, else 1000 or 3000-4999.
/// - `reason`: NULL for none, else `reason_len` bytes of UTF-8 (at most 123; need not be
///   NUL-terminated). A reason without a code is sent with code 1000.
///
/// Then, as in the browser: nothing if `WS_CLOSING` or `WS_CLOSED`; while `WS_CONNECTING`, the
/// connection attempt is aborted (readyState becomes `WS_CLOSING` now, `onerror` and
/// `onclose` 1006 follow); when `WS_OPEN`, a Close frame is sent and readyState becomes
/// `WS_CLOSING`; `onclose` follows when the server answers (or after the close timeout).
///
/// Errors: `WS_INVALID_ACCESS_ERROR` (code not 1000 or 3000-4999), `WS_SYNTAX_ERROR` (reason
/// longer than 123 bytes), `WS_INVALID_UTF8` (reason), `WS_NULL_ARGUMENT` (socket, or reason
/// NULL with reason_len > 0), `WS_INVALID_HANDLE`. The code is checked first, in any state.
///
/// Thread: any, including the socket's own callbacks.
///
/// # Safety
/// `reason` is NULL or points to `reason_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_close(
    socket: *mut ws,
    code: i32,
    reason: *const c_char,
    reason_len: usize,
) -> ws_result {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        let code = match code {
            WS_CLOSE_NO_CODE => None,
            1000 | 3000..=4999 => Some(code as u16),
            other => {
                return fail(Error::new(
                    ws_result::WS_INVALID_ACCESS_ERROR,
                    format!(
                        "InvalidAccessError: close code {other} is neither 1000 nor in 3000-4999"
                    ),
                ))
            }
        };
        let reason = if reason.is_null() && reason_len == 0 {
            None
        } else {
            // SAFETY: forwarded contract.
            Some(try_ffi!(unsafe { utf8_arg(reason.cast(), reason_len, "reason") }))
        };
        try_ffi!(handle.socket.close(code, reason).map_err(Error::dom));
        ws_result::WS_OK
    }
}

/// `readyState`: `WS_CONNECTING`, `WS_OPEN`, `WS_CLOSING` or `WS_CLOSED`; -1 if `socket` is
/// NULL or not a live handle (then `ws_last_error_message()` says which).
///
/// As in the browser, it changes when the event is dispatched, not when the network says so:
/// a socket whose events wait for their first callback stays `WS_CONNECTING` even if it is
/// connected, and becomes `WS_OPEN` just before `onopen` runs.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_ready_state(socket: *const ws) -> c_int {
    ffi_panic_boundary! {
        match try_ffi!(handle_of(socket)).socket.ready_state() {
            ReadyState::Connecting => WS_CONNECTING,
            ReadyState::Open => WS_OPEN,
            ReadyState::Closing => WS_CLOSING,
            ReadyState::Closed => WS_CLOSED,
        }
    }
}

/// `bufferedAmount`: payload bytes accepted by `ws_send*` and not yet written to the network
/// (as in the browser, it keeps growing with sends after the socket started closing). 0 if
/// `socket` is NULL or not a live handle.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_buffered_amount(socket: *const ws) -> u64 {
    ffi_panic_boundary! {
        try_ffi!(handle_of(socket)).socket.buffered_amount()
    }
}

/// `url`: the socket's URL as the browser serializes it (after the http→ws rewrite), e.g.
/// `"ws://127.0.0.1:9001/echo"`.
///
/// Ownership: the string belongs to the socket and stays valid and unchanged until `ws_free`.
/// `""` (static) if `socket` is NULL or not a live handle; never NULL.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_url(socket: *const ws) -> *const c_char {
    ffi_panic_boundary! {
        try_ffi!(handle_of(socket)).url.as_ptr()
    }
}

/// `protocol`: the subprotocol the server selected; `""` until `onopen` is dispatched (and
/// when the server selected none).
///
/// Ownership: the string belongs to the socket and stays valid until `ws_free`. It changes
/// only once, from `""` to its final value when the socket opens: a pointer obtained earlier
/// keeps pointing to `""`. Never NULL; `""` if `socket` is NULL or not a live handle.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_protocol(socket: *const ws) -> *const c_char {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        cached(&handle.protocol, handle.socket.protocol())
    }
}

/// `extensions`: the server's `Sec-WebSocket-Extensions` value; `""` until `onopen` is
/// dispatched. Ownership and thread: as `ws_protocol`.
#[no_mangle]
pub extern "C" fn ws_extensions(socket: *const ws) -> *const c_char {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        cached(&handle.extensions, handle.socket.extensions())
    }
}

/// A C copy of `value`, made once (the value changes at most once, from "" to final).
fn cached(slot: &OnceLock<CString>, value: &str) -> *const c_char {
    if value.is_empty() {
        return EMPTY.as_ptr();
    }
    slot.get_or_init(|| cstring_lossy(value)).as_ptr()
}

/// Releases a socket, like a page that goes away: an open socket starts the closing handshake
/// with code 1001 (going away), a connecting one is aborted, a closed one just goes.
///
/// After `ws_free` returns, no callback of this socket runs any more, ever (it waits for one
/// running on another thread to finish), so the caller may free the userdata. Called from the
/// socket's own callback, it returns at once; that callback may finish but must not use the
/// handle again. The closing handshake completes in the background; the library frees
/// everything the socket owns when it ends. The strings returned by `ws_url`, `ws_protocol`
/// and `ws_extensions` become invalid.
///
/// Returns `WS_OK`; `WS_OK` with nothing done for NULL (like `free(NULL)`);
/// `WS_INVALID_HANDLE` if `socket` was already freed (a double free is detected, not a crash).
///
/// Thread: any. Do not free, from a callback running on one thread, a socket whose callback
/// is running on another thread and waiting for the first (with manual dispatch from several
/// threads, or several I/O threads): each would wait for the other.
#[no_mangle]
pub extern "C" fn ws_free(socket: *mut ws) -> ws_result {
    ffi_panic_boundary! {
        if socket.is_null() {
            return ws_result::WS_OK;
        }
        let Some(handle) = SOCKETS.remove(socket as usize) else {
            return fail(Error::new(
                ws_result::WS_INVALID_HANDLE,
                format!("{socket:p} is not a live ws handle (double ws_free?)"),
            ));
        };
        // Detach first: closing a connecting socket fires its error and close events at
        // once, and they must not reach callbacks of a socket being freed.
        handle.socket.detach_handler();
        handle.socket.go_away();
        drop(handle);
        ws_result::WS_OK
    }
}
