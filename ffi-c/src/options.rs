//! `ws_options`: settings beyond the browser API, built once and used by any number of
//! `ws_new_with_options` calls.

use crate::handles::Table;
use crate::panic::{fail, ffi_panic_boundary, try_ffi};
use crate::result::{ws_result, Error};
use crate::strings::{path_arg, str_arg};
use std::ffi::{c_char, c_int};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wsdom_core::proxy::Proxy;
use wsdom_core::{Options, ProxySetting};

/// Options for `ws_new_with_options` (opaque): extra request headers, TLS trust and client
/// certificate, proxy, timeouts, keepalive, size limits, compression, and manual event
/// dispatch.
///
/// Created by `ws_options_new` with the defaults below, released by `ws_options_free`. A
/// socket copies the options when it is created, so one `ws_options` can serve many sockets
/// and be changed or freed afterwards without affecting them. All `ws_options_*` functions
/// are safe from any thread (they are serialized internally), and the handle is checked
/// like a `ws` handle (`WS_INVALID_HANDLE` after `ws_options_free`).
pub struct ws_options {
    _private: [u8; 0],
}

/// What a `ws_options *` stands for.
pub(crate) struct OptionsCell {
    options: Mutex<Options>,
}

impl OptionsCell {
    /// A copy of the current settings.
    pub(crate) fn snapshot(&self) -> Options {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Options> {
        self.options.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The live options objects, keyed by address.
static OPTIONS: Table<OptionsCell> = Table::new();

/// Number of live `ws_options` handles.
pub(crate) fn live_options() -> usize {
    OPTIONS.len()
}

/// The live options behind `options` (never dereferences the pointer).
pub(crate) fn options_of(options: *const ws_options) -> Result<Arc<OptionsCell>, Error> {
    if options.is_null() {
        return Err(Error::null("options"));
    }
    OPTIONS.get(options as usize).ok_or_else(|| {
        Error::new(
            ws_result::WS_INVALID_HANDLE,
            format!("{options:p} is not a live ws_options handle (already freed?)"),
        )
    })
}

/// Applies `change` to the options behind `options`.
fn update(
    options: *mut ws_options,
    change: impl FnOnce(&mut Options) -> Result<(), Error>,
) -> ws_result {
    match options_of(options).and_then(|cell| change(&mut cell.lock())) {
        Ok(()) => ws_result::WS_OK,
        Err(e) => fail(e),
    }
}

/// A nonzero number of milliseconds as a duration.
fn millis(ms: u32, what: &str) -> Result<Duration, Error> {
    if ms == 0 {
        return Err(Error::invalid(format!("{what} must be greater than 0 ms")));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// A nonzero size.
fn nonzero<T: Default + PartialEq>(value: T, what: &str) -> Result<T, Error> {
    if value == T::default() {
        return Err(Error::invalid(format!("{what} must be greater than 0")));
    }
    Ok(value)
}

/// Creates an options object with the defaults and stores its handle in `*out` (NULL on
/// failure). The caller owns it and releases it with `ws_options_free`.
///
/// Defaults: no extra headers; TLS trusts the system store and the Mozilla roots; no client
/// certificate; proxy from the environment; connect timeout 30000 ms (DNS + TCP + TLS + HTTP
/// upgrade); close timeout 5000 ms; no keepalive pings; max message size 64 MiB; max frame
/// size 16 MiB; max buffered amount 256 MiB; permessage-deflate offered; events dispatched on
/// the library's event thread (not manual).
///
/// Errors: `WS_NULL_ARGUMENT` (out is NULL).
///
/// Thread: any.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ws_options_new(out: *mut *mut ws_options) -> ws_result {
    ffi_panic_boundary! {
        if out.is_null() {
            return fail(Error::null("out"));
        }
        let cell = Arc::new(OptionsCell { options: Mutex::new(Options::default()) });
        let key = Arc::as_ptr(&cell) as usize;
        OPTIONS.insert(key, cell);
        // SAFETY: `out` is writable per the contract.
        unsafe { *out = key as *mut ws_options };
        ws_result::WS_OK
    }
}

/// Releases an options object. Sockets created with it keep their copy of the settings.
///
/// Returns `WS_OK`; `WS_OK` with nothing done for NULL; `WS_INVALID_HANDLE` if it was already
/// freed.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_free(options: *mut ws_options) -> ws_result {
    ffi_panic_boundary! {
        if options.is_null() {
            return ws_result::WS_OK;
        }
        match OPTIONS.remove(options as usize) {
            Some(_) => ws_result::WS_OK,
            None => fail(Error::new(
                ws_result::WS_INVALID_HANDLE,
                format!("{options:p} is not a live ws_options handle (double free?)"),
            )),
        }
    }
}

/// Adds a request header to the opening handshake (e.g. `Authorization`, `Cookie`, `Origin`,
/// `User-Agent`). Both strings are NUL-terminated UTF-8 and copied. Adding the same name twice
/// sends it twice.
///
/// Errors: `WS_SYNTAX_ERROR` (name is not an HTTP token, or is one the handshake sets itself:
/// Host, Upgrade, Connection, Sec-WebSocket-*, Content-Length, Transfer-Encoding; or the value
/// contains CR or LF), `WS_NULL_ARGUMENT`, `WS_INVALID_UTF8`, `WS_INVALID_HANDLE`. On error the
/// header is not added.
///
/// Thread: any.
///
/// # Safety
/// `name` and `value` are NULL or C strings.
#[no_mangle]
pub unsafe extern "C" fn ws_options_add_header(
    options: *mut ws_options,
    name: *const c_char,
    value: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        // SAFETY: forwarded contract.
        let name = try_ffi!(unsafe { str_arg(name, "name") });
        // SAFETY: forwarded contract.
        let value = try_ffi!(unsafe { str_arg(value, "value") });
        update(options, |o| {
            o.headers.push((name.to_owned(), value.to_owned()));
            if let Err(e) = o.validate() {
                o.headers.pop();
                return Err(Error::dom(e));
            }
            Ok(())
        })
    }
}

/// Trusts the CA certificates in the PEM file at `path` (NUL-terminated; any bytes) for
/// `wss://`, in addition to the default roots (see `ws_options_set_default_roots`). May be
/// called several times. The file is read when a `wss://` connection starts: if it cannot be
/// read or holds no certificate, that connection fails with `onerror` (saying why) and
/// `onclose` 1006.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`.
///
/// Thread: any.
///
/// # Safety
/// `path` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn ws_options_add_ca_file(
    options: *mut ws_options,
    path: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        // SAFETY: forwarded contract.
        let path = try_ffi!(unsafe { path_arg(path, "path") });
        update(options, |o| {
            o.tls.ca_files.push(path);
            Ok(())
        })
    }
}

/// Trusts the CA certificates in `pem` (NUL-terminated PEM text, one or more certificates;
/// copied) for `wss://`, in addition to the default roots. May be called several times. The
/// PEM is parsed when a `wss://` connection starts; if invalid, that connection fails with
/// `onerror` and `onclose` 1006.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_UTF8`, `WS_INVALID_HANDLE`.
///
/// Thread: any.
///
/// # Safety
/// `pem` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn ws_options_add_ca_pem(
    options: *mut ws_options,
    pem: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        // SAFETY: forwarded contract.
        let pem = try_ffi!(unsafe { str_arg(pem, "pem") });
        update(options, |o| {
            o.tls.ca_pem.push(pem.to_owned());
            Ok(())
        })
    }
}

/// Presents a client certificate for mutual TLS: `cert_chain_pem` (the certificate, then any
/// intermediates) and `private_key_pem` (PKCS#8, PKCS#1 or SEC1), both NUL-terminated PEM text,
/// copied. Replaces an earlier client certificate. Parsed when a `wss://` connection starts;
/// if invalid (or the key does not match), that connection fails with `onerror` and `onclose`
/// 1006.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_UTF8`, `WS_INVALID_HANDLE`.
///
/// Thread: any.
///
/// # Safety
/// `cert_chain_pem` and `private_key_pem` are NULL or C strings.
#[no_mangle]
pub unsafe extern "C" fn ws_options_set_client_cert(
    options: *mut ws_options,
    cert_chain_pem: *const c_char,
    private_key_pem: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        // SAFETY: forwarded contract.
        let chain = try_ffi!(unsafe { str_arg(cert_chain_pem, "cert_chain_pem") });
        // SAFETY: forwarded contract.
        let key = try_ffi!(unsafe { str_arg(private_key_pem, "private_key_pem") });
        update(options, |o| {
            o.tls.client_cert_pem = Some((chain.to_owned(), key.to_owned()));
            Ok(())
        })
    }
}

/// With `insecure` true, `wss://` accepts any server certificate (no verification at all;
/// a warning is printed on stderr at each connection). For tests only. Default false.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_insecure(options: *mut ws_options, insecure: bool) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.tls.insecure = insecure;
            Ok(())
        })
    }
}

/// Whether `wss://` trusts the operating system's certificate store and the Mozilla roots
/// (default true). With false, only the CAs added with `ws_options_add_ca_file` /
/// `ws_options_add_ca_pem` are trusted.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_default_roots(
    options: *mut ws_options,
    enabled: bool,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.tls.default_roots = enabled;
            Ok(())
        })
    }
}

/// Time allowed to establish the connection (DNS, TCP, TLS and the HTTP upgrade together),
/// in milliseconds (default 30000), from when the socket's turn comes (sockets to one host
/// and port handshake one at a time; waiting behind the others does not count). When it runs
/// out: `onerror`, then `onclose` 1006.
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_connect_timeout(
    options: *mut ws_options,
    timeout_ms: u32,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.connect_timeout = millis(timeout_ms, "the connect timeout")?;
            Ok(())
        })
    }
}

/// Time allowed for the closing handshake, in milliseconds (default 5000): after our Close
/// frame, how long to wait for the server's before dropping the connection (`onclose` 1006,
/// not clean).
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_close_timeout(
    options: *mut ws_options,
    timeout_ms: u32,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.close_timeout = millis(timeout_ms, "the close timeout")?;
            Ok(())
        })
    }
}

/// Largest message accepted, in bytes, after reassembly of its frames (default 64 MiB). A
/// larger one fails the connection with close code 1009 (`onerror`, `onclose` 1006).
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_max_message_size(
    options: *mut ws_options,
    bytes: usize,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.max_message_size = nonzero(bytes, "max_message_size")?;
            Ok(())
        })
    }
}

/// Largest frame payload accepted, in bytes (default 16 MiB); larger fails the connection with
/// close code 1009.
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_max_frame_size(
    options: *mut ws_options,
    bytes: usize,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.max_frame_size = nonzero(bytes, "max_frame_size")?;
            Ok(())
        })
    }
}

/// Largest `ws_buffered_amount` allowed (default 256 MiB): a send that goes beyond it fails
/// the connection (`onerror`, `onclose` 1006), as a browser does when its buffer is full.
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_max_buffered_amount(
    options: *mut ws_options,
    bytes: u64,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.max_buffered_amount = nonzero(bytes, "max_buffered_amount")?;
            Ok(())
        })
    }
}

/// The base URL that relative URLs given to `ws_new_with_options` are resolved against (the
/// browser's document URL), e.g. `"https://example.com/app/"`; NULL removes it (default: none,
/// relative URLs are a `WS_SYNTAX_ERROR`). Copied.
///
/// Errors: `WS_INVALID_UTF8`, `WS_NULL_ARGUMENT` (options), `WS_INVALID_HANDLE`. Thread: any.
///
/// # Safety
/// `base_url` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn ws_options_set_base_url(
    options: *mut ws_options,
    base_url: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        let base = if base_url.is_null() {
            None
        } else {
            // SAFETY: forwarded contract.
            Some(try_ffi!(unsafe { str_arg(base_url, "base_url") }).to_owned())
        };
        update(options, |o| {
            o.base_url = base;
            Ok(())
        })
    }
}

/// Manual dispatch: with `enabled` true, the callbacks of sockets created with these options
/// run only inside `ws_dispatch()`, on the thread that calls it, instead of on the library's
/// event thread. For single-threaded programs with their own event loop: watch
/// `ws_event_fd()` with poll/epoll/select (or libuv, ...) and call `ws_dispatch(0, NULL)` when
/// it is readable. All manual sockets of the process share one queue, so events of different
/// sockets come out in the order they happened. Default false.
///
/// Creates the process's event queue (and its descriptor) if needed.
///
/// Errors: `WS_IO_ERROR` (the event descriptor could not be created), `WS_NULL_ARGUMENT`,
/// `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_manual_dispatch(
    options: *mut ws_options,
    enabled: bool,
) -> ws_result {
    ffi_panic_boundary! {
        let queue = if enabled {
            Some(try_ffi!(crate::dispatch::manual_queue()))
        } else {
            None
        };
        update(options, |o| {
            o.queue = queue;
            Ok(())
        })
    }
}

/// Which proxy `ws://` and `wss://` connections go through:
/// - NULL (the default): from the environment, as curl reads it: `https_proxy` /
///   `HTTPS_PROXY` for wss, `http_proxy` / `HTTP_PROXY` for ws, then `all_proxy` /
///   `ALL_PROXY`, honouring `no_proxy` / `NO_PROXY`. Loopback hosts always connect directly.
/// - `""`: connect directly, ignoring the environment.
/// - a proxy URL: `http://[user:pass@]host:port` (HTTP CONNECT), `https://...` (CONNECT over
///   TLS, verified with these options' TLS settings), `socks5://...` or `socks5h://...` (the
///   proxy resolves the host name). Copied.
///
/// Errors: `WS_SYNTAX_ERROR` (not a valid proxy URL; the message never shows the password),
/// `WS_INVALID_UTF8`, `WS_NULL_ARGUMENT` (options), `WS_INVALID_HANDLE`. Thread: any.
///
/// # Safety
/// `proxy` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn ws_options_set_proxy(
    options: *mut ws_options,
    proxy: *const c_char,
) -> ws_result {
    ffi_panic_boundary! {
        let setting = if proxy.is_null() {
            ProxySetting::FromEnvironment
        } else {
            // SAFETY: forwarded contract.
            match try_ffi!(unsafe { str_arg(proxy, "proxy") }) {
                "" => ProxySetting::Direct,
                url => {
                    try_ffi!(Proxy::parse(url).map_err(|e| Error::new(
                        ws_result::WS_SYNTAX_ERROR,
                        format!("SyntaxError: invalid proxy: {e}")
                    )));
                    ProxySetting::Url(url.to_owned())
                }
            }
        };
        update(options, |o| {
            o.proxy = setting;
            Ok(())
        })
    }
}

/// Opt-in keepalive: after `interval_ms` milliseconds without anything from the server, send a
/// ping; if nothing arrives within the pong timeout after it, the connection fails (`onerror`,
/// `onclose` 1006). Detects half-open connections. 0 (the default) turns it off: idle
/// connections stay silent, as in browsers.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_ping_interval(
    options: *mut ws_options,
    interval_ms: u32,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.ping_interval =
                (interval_ms > 0).then(|| Duration::from_millis(u64::from(interval_ms)));
            Ok(())
        })
    }
}

/// With keepalive (`ws_options_set_ping_interval`), how long to wait for anything from the
/// server after a ping before failing the connection, in milliseconds (default 10000).
///
/// Errors: `WS_INVALID_ARGUMENT` (0), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_pong_timeout(
    options: *mut ws_options,
    timeout_ms: u32,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.pong_timeout = millis(timeout_ms, "the pong timeout")?;
            Ok(())
        })
    }
}

/// Whether to offer the permessage-deflate compression extension, as browsers do (default
/// true). When the server accepts it, `ws_extensions()` says so and messages are compressed
/// transparently.
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate(options: *mut ws_options, enabled: bool) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.deflate = enabled;
            Ok(())
        })
    }
}

/// With permessage-deflate, messages shorter than `bytes` are sent uncompressed (default 0:
/// every message is compressed, as Chromium does).
///
/// Errors: `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`. Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate_threshold(
    options: *mut ws_options,
    bytes: usize,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            o.deflate_threshold = bytes;
            Ok(())
        })
    }
}

/// zlib compression level of outgoing messages with permessage-deflate: 1 (fastest) to 9
/// (smallest). Default 6, zlib's default, as Chromium uses (the same bytes on the wire); level
/// 1 takes about a fifth of the CPU time for about 35% more bytes on JSON-like text.
///
/// Errors: `WS_INVALID_ARGUMENT` (outside 1..=9), `WS_NULL_ARGUMENT`, `WS_INVALID_HANDLE`.
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate_level(
    options: *mut ws_options,
    level: c_int,
) -> ws_result {
    ffi_panic_boundary! {
        update(options, |o| {
            if !(1..=9).contains(&level) {
                return Err(Error::invalid(format!(
                    "the deflate level must be 1 to 9, not {level}"
                )));
            }
            o.deflate_level = level as u32;
            Ok(())
        })
    }
}
