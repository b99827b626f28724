//! The browser's event handlers: `onopen`, `onmessage`, `onerror`, `onclose`.
//!
//! A socket's callbacks live in a [`Shared`] object that the core's event handler (the
//! trampoline below) and the `ws_set_on*` setters both hold. The address of that object is
//! the `ws *` handle C sees, so the trampoline can pass the handle back without owning it.

use crate::panic::{ffi_panic_boundary, try_ffi};
use crate::result::{ws_result, Error};
use crate::socket::{handle_of, ws, ws_message_type, WS_MESSAGE_BINARY, WS_MESSAGE_TEXT};
use crate::strings::{cstring_lossy, nul_terminated, EMPTY};
use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wsdom_core::{Event, Message, WebSocket};

/// `onopen`: the connection is established (readyState is now `WS_OPEN`, and `ws_protocol()`
/// and `ws_extensions()` have their final values).
///
/// `socket` is the handle the event belongs to; `userdata` is the pointer given with the
/// callback, passed back untouched. The callback may call any `ws_*` function on any socket,
/// including `ws_close(socket, ...)` and `ws_free(socket)` (after which `socket` must not be
/// used, not even by the rest of this callback). It must return normally: no `longjmp`, and
/// no C++ exception may leave it.
pub type ws_onopen_callback = Option<unsafe extern "C" fn(socket: *mut ws, userdata: *mut c_void)>;

/// `onmessage`: a complete message arrived.
///
/// `message_type` is `WS_MESSAGE_TEXT` (then `data` is valid UTF-8, and `data[len]` is a NUL
/// byte, so `data` is also a C string unless the text itself contains NUL characters) or
/// `WS_MESSAGE_BINARY`. `data` and `len` are valid only during the call: copy what you keep.
/// `data` is never NULL, even when `len` is 0. Otherwise as `ws_onopen_callback`.
pub type ws_onmessage_callback = Option<
    unsafe extern "C" fn(
        socket: *mut ws,
        userdata: *mut c_void,
        message_type: ws_message_type,
        data: *const c_char,
        len: usize,
    ),
>;

/// `onerror`: the connection failed (or could not be established). The browser's event has no
/// detail; `message` is a human-readable diagnostic for logs (e.g. "TLS handshake with
/// localhost failed: ..."), NUL-terminated and valid only during the call. An `onclose` with
/// code 1006 always follows. Otherwise as `ws_onopen_callback`.
pub type ws_onerror_callback =
    Option<unsafe extern "C" fn(socket: *mut ws, userdata: *mut c_void, message: *const c_char)>;

/// `onclose`: the last event of every socket, fired exactly once (unless `ws_free` came first).
///
/// `code` is the status code of the server's Close frame, 1005 if it had none, or 1006 if the
/// connection was lost or failed without a closing handshake. `reason` is the UTF-8 reason
/// (`reason_len` bytes, followed by a NUL byte; `""` if none), valid only during the call.
/// `was_clean` is the browser's `wasClean`: true only if the closing handshake completed.
/// The socket is `WS_CLOSED`; its handle stays valid until `ws_free`, which is still needed.
/// Otherwise as `ws_onopen_callback`.
pub type ws_onclose_callback = Option<
    unsafe extern "C" fn(
        socket: *mut ws,
        userdata: *mut c_void,
        code: u16,
        reason: *const c_char,
        reason_len: usize,
        was_clean: bool,
    ),
>;

/// All four callbacks of a socket and one `userdata` for them, to set them in one step: given
/// to `ws_new_with_options()` (so they are in place before the connection starts) or to
/// `ws_set_callbacks()`. A NULL member means "no callback" for that event.
///
/// The struct is read during the call it is given to and may be freed or reused afterwards.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ws_callbacks {
    /// Called for `open`, or NULL.
    pub onopen: ws_onopen_callback,
    /// Called for each `message`, or NULL.
    pub onmessage: ws_onmessage_callback,
    /// Called for `error`, or NULL.
    pub onerror: ws_onerror_callback,
    /// Called for `close`, or NULL.
    pub onclose: ws_onclose_callback,
    /// Passed untouched to each of the callbacks above.
    pub userdata: *mut c_void,
}

/// A C `userdata` pointer: the library never dereferences it, only passes it back.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the pointer is never dereferenced by the library; passing it to the C callback on
// another thread is what the C API documents.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl Default for UserData {
    fn default() -> Self {
        UserData(std::ptr::null_mut())
    }
}

/// One socket's callbacks, each with its userdata.
#[derive(Clone, Copy, Default)]
struct Table {
    onopen: (ws_onopen_callback, UserData),
    onmessage: (ws_onmessage_callback, UserData),
    onerror: (ws_onerror_callback, UserData),
    onclose: (ws_onclose_callback, UserData),
}

/// The callback state of one socket. Its address is the socket's `ws *` handle.
pub(crate) struct Shared {
    table: Mutex<Table>,
    /// The core handler was installed (events no longer wait).
    installed: AtomicBool,
}

thread_local! {
    /// How many libwsdom callbacks are running on this thread.
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
}

/// True while the calling thread is inside a libwsdom callback.
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(|d| d.get() > 0)
}

/// Marks the current thread as running a callback for its lifetime.
struct CallbackScope;

impl CallbackScope {
    fn enter() -> CallbackScope {
        IN_CALLBACK.with(|d| d.set(d.get() + 1));
        CallbackScope
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|d| d.set(d.get() - 1));
    }
}

impl Shared {
    /// No callbacks yet; events will wait.
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            table: Mutex::new(Table::default()),
            installed: AtomicBool::new(false),
        })
    }

    /// The `ws *` C sees for this socket.
    pub(crate) fn token(&self) -> *mut ws {
        (self as *const Shared).cast_mut().cast()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets all four callbacks from `c`.
    pub(crate) fn set_all(&self, c: &ws_callbacks) {
        let ud = UserData(c.userdata);
        *self.table() = Table {
            onopen: (c.onopen, ud),
            onmessage: (c.onmessage, ud),
            onerror: (c.onerror, ud),
            onclose: (c.onclose, ud),
        };
    }

    /// Installs the handler (the trampoline into C) on the first callback set, which
    /// releases the socket's waiting events; later calls only changed the table.
    pub(crate) fn install_once(self: &Arc<Self>, socket: &WebSocket) {
        if !self.installed.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            socket.set_handler(Arc::new(move |_: &WebSocket, event: Event| me.fire(event)));
        }
    }

    /// Calls the C callback for `event`, if one is set. Runs in the socket's dispatch context.
    fn fire(&self, event: Event) {
        // Nothing here should panic, but a panic must not unwind into the I/O thread's loop.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fire_inner(event)));
    }

    fn fire_inner(&self, event: Event) {
        let token = self.token();
        let table = *self.table();
        // SAFETY (all calls below): the function pointers were given by C for exactly this
        // call signature; the data pointers are valid for the duration of the call.
        match event {
            Event::Open => {
                if let (Some(f), ud) = table.onopen {
                    let _scope = CallbackScope::enter();
                    unsafe { f(token, ud.0) };
                }
            }
            Event::Message(message) => {
                if let (Some(f), ud) = table.onmessage {
                    let (kind, bytes) = match message {
                        // Text gets a NUL terminator after its `len` bytes.
                        Message::Text(s) => {
                            (WS_MESSAGE_TEXT, nul_terminated(s.into_bytes()).into())
                        }
                        Message::Binary(b) => (WS_MESSAGE_BINARY, b),
                    };
                    let len = bytes.len() - usize::from(kind == WS_MESSAGE_TEXT);
                    // Never NULL, even for an empty binary message.
                    let data = if bytes.is_empty() {
                        EMPTY.as_ptr()
                    } else {
                        bytes.as_ptr().cast()
                    };
                    let _scope = CallbackScope::enter();
                    unsafe { f(token, ud.0, kind, data, len) };
                }
            }
            Event::Error(message) => {
                if let (Some(f), ud) = table.onerror {
                    let message = cstring_lossy(&message);
                    let _scope = CallbackScope::enter();
                    unsafe { f(token, ud.0, message.as_ptr()) };
                }
            }
            Event::Close(close) => {
                if let (Some(f), ud) = table.onclose {
                    let len = close.reason.len();
                    let reason = nul_terminated(close.reason.into_bytes());
                    let _scope = CallbackScope::enter();
                    unsafe {
                        f(
                            token,
                            ud.0,
                            close.code,
                            reason.as_ptr().cast(),
                            len,
                            close.was_clean,
                        )
                    };
                }
            }
        }
    }
}

/// Updates one callback of `socket` and releases its waiting events.
fn set_one(socket: *mut ws, update: impl FnOnce(&mut Table)) -> Result<(), Error> {
    let handle = handle_of(socket)?;
    update(&mut handle.shared.table());
    handle.shared.install_once(&handle.socket);
    Ok(())
}

/// Sets (or, with NULL, removes) the `onopen` callback of `socket`, with its `userdata`.
///
/// **Events wait for the first callback.** A socket connects on the library's threads from the
/// moment `ws_new` returns, so it may open before this call runs. No event is lost: a socket
/// keeps its events (open, messages, error, close) in its queue until its first callback is
/// set, by any `ws_set_on*` call or `ws_set_callbacks`; that first call releases them, in
/// order, in the socket's dispatch context (never inside the setter). To have every callback
/// in place before the first event is delivered, give them together: in a `ws_callbacks` to
/// `ws_new_with_options()` or `ws_set_callbacks()`. With separate setters, events that are
/// released before their own callback is set are dispatched to no callback, as in a browser
/// without a listener (so set first the callback of the earliest event you expect, usually
/// `onopen`). Setting a callback again replaces it, from the next event on.
///
/// Errors: `WS_NULL_ARGUMENT` (socket is NULL), `WS_INVALID_HANDLE` (socket was freed).
///
/// Thread: any; the callback runs in the socket's dispatch context (see `ws_dispatch`).
///
/// # Safety
/// `callback` is NULL or a function with the documented signature that stays callable until
/// the socket is freed or the callback is replaced.
#[no_mangle]
pub unsafe extern "C" fn ws_set_onopen(
    socket: *mut ws,
    callback: ws_onopen_callback,
    userdata: *mut c_void,
) -> ws_result {
    ffi_panic_boundary! {
        try_ffi!(set_one(socket, |t| t.onopen = (callback, UserData(userdata))));
        ws_result::WS_OK
    }
}

/// Sets (or, with NULL, removes) the `onmessage` callback of `socket`, with its `userdata`.
/// Releases the socket's waiting events; see `ws_set_onopen` for the rule and the errors.
///
/// # Safety
/// As `ws_set_onopen`.
#[no_mangle]
pub unsafe extern "C" fn ws_set_onmessage(
    socket: *mut ws,
    callback: ws_onmessage_callback,
    userdata: *mut c_void,
) -> ws_result {
    ffi_panic_boundary! {
        try_ffi!(set_one(socket, |t| t.onmessage = (callback, UserData(userdata))));
        ws_result::WS_OK
    }
}

/// Sets (or, with NULL, removes) the `onerror` callback of `socket`, with its `userdata`.
/// Releases the socket's waiting events; see `ws_set_onopen` for the rule and the errors.
///
/// # Safety
/// As `ws_set_onopen`.
#[no_mangle]
pub unsafe extern "C" fn ws_set_onerror(
    socket: *mut ws,
    callback: ws_onerror_callback,
    userdata: *mut c_void,
) -> ws_result {
    ffi_panic_boundary! {
        try_ffi!(set_one(socket, |t| t.onerror = (callback, UserData(userdata))));
        ws_result::WS_OK
    }
}

/// Sets (or, with NULL, removes) the `onclose` callback of `socket`, with its `userdata`.
/// Releases the socket's waiting events; see `ws_set_onopen` for the rule and the errors.
///
/// # Safety
/// As `ws_set_onopen`.
#[no_mangle]
pub unsafe extern "C" fn ws_set_onclose(
    socket: *mut ws,
    callback: ws_onclose_callback,
    userdata: *mut c_void,
) -> ws_result {
    ffi_panic_boundary! {
        try_ffi!(set_one(socket, |t| t.onclose = (callback, UserData(userdata))));
        ws_result::WS_OK
    }
}

/// Sets all four callbacks of `socket` at once from `*callbacks` (NULL members remove that
/// callback), then releases the socket's waiting events: every event is delivered with the
/// complete set in place. `*callbacks` is copied; it may be freed after the call.
///
/// Errors: `WS_NULL_ARGUMENT` (socket or callbacks is NULL), `WS_INVALID_HANDLE` (socket was
/// freed).
///
/// Thread: any.
///
/// # Safety
/// `callbacks` is NULL or points to a valid `ws_callbacks`; its functions as in
/// `ws_set_onopen`.
#[no_mangle]
pub unsafe extern "C" fn ws_set_callbacks(
    socket: *mut ws,
    callbacks: *const ws_callbacks,
) -> ws_result {
    ffi_panic_boundary! {
        let handle = try_ffi!(handle_of(socket));
        if callbacks.is_null() {
            return crate::panic::fail(Error::null("callbacks"));
        }
        // SAFETY: non-NULL and valid per the contract; copied.
        let callbacks = unsafe { *callbacks };
        handle.shared.set_all(&callbacks);
        handle.shared.install_once(&handle.socket);
        ws_result::WS_OK
    }
}
