//! `ws_result`, the error codes of every fallible function, and the thread-local details.

use crate::panic::ffi_panic_boundary;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use wsdom_core::{DomError, ErrorKind};

/// The result of every fallible libwsdom function.
///
/// `WS_OK` (0) is success. On any other value the call had no effect, and
/// `ws_last_error_message()` on the same thread describes what was wrong.
/// `ws_result_name()` gives the enumerator's name as a string.
///
/// The first three are the `DOMException`s a browser would throw for the same call.
/// The others report misuse of the C API that JavaScript cannot express.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ws_result {
    /// Success.
    WS_OK = 0,
    /// The browser's `SyntaxError`: an invalid URL (unparseable, relative without a base URL,
    /// a scheme other than ws/wss/http/https, a fragment), an invalid or repeated
    /// subprotocol, a close reason longer than 123 UTF-8 bytes, or an invalid header name or
    /// value.
    WS_SYNTAX_ERROR = 1,
    /// The browser's `InvalidStateError`: sending while the socket is still `WS_CONNECTING`,
    /// or `ws_dispatch()` called from inside a callback, or `ws_set_io_threads()` after the
    /// first socket was created.
    WS_INVALID_STATE_ERROR = 2,
    /// The browser's `InvalidAccessError`: a close code other than 1000 or 3000-4999.
    WS_INVALID_ACCESS_ERROR = 3,
    /// A required pointer argument was NULL (the message names it).
    WS_NULL_ARGUMENT = 4,
    /// A string argument (URL, subprotocol, header, text message, close reason...) is not
    /// valid UTF-8.
    WS_INVALID_UTF8 = 5,
    /// Memory for the request could not be reserved.
    WS_OUT_OF_MEMORY = 6,
    /// An internal error of libwsdom (a Rust panic, caught at the boundary). Please report it
    /// with the message. The library stays usable.
    WS_PANIC = 7,
    /// The `ws` or `ws_options` pointer is not a live handle: it was already freed, or never
    /// came from this library. Detected without touching the memory it points to.
    WS_INVALID_HANDLE = 8,
    /// An argument is outside its documented range (an unknown message type, a zero timeout
    /// or size limit, a length too large for the address space).
    WS_INVALID_ARGUMENT = 9,
    /// The operating system refused a resource (e.g. the event descriptor of manual dispatch
    /// could not be created); the message has the OS error.
    WS_IO_ERROR = 10,
}

impl ws_result {
    const ALL: [ws_result; 11] = [
        ws_result::WS_OK,
        ws_result::WS_SYNTAX_ERROR,
        ws_result::WS_INVALID_STATE_ERROR,
        ws_result::WS_INVALID_ACCESS_ERROR,
        ws_result::WS_NULL_ARGUMENT,
        ws_result::WS_INVALID_UTF8,
        ws_result::WS_OUT_OF_MEMORY,
        ws_result::WS_PANIC,
        ws_result::WS_INVALID_HANDLE,
        ws_result::WS_INVALID_ARGUMENT,
        ws_result::WS_IO_ERROR,
    ];

    /// The enumerator's name, NUL-terminated.
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            ws_result::WS_OK => c"WS_OK",
            ws_result::WS_SYNTAX_ERROR => c"WS_SYNTAX_ERROR",
            ws_result::WS_INVALID_STATE_ERROR => c"WS_INVALID_STATE_ERROR",
            ws_result::WS_INVALID_ACCESS_ERROR => c"WS_INVALID_ACCESS_ERROR",
            ws_result::WS_NULL_ARGUMENT => c"WS_NULL_ARGUMENT",
            ws_result::WS_INVALID_UTF8 => c"WS_INVALID_UTF8",
            ws_result::WS_OUT_OF_MEMORY => c"WS_OUT_OF_MEMORY",
            ws_result::WS_PANIC => c"WS_PANIC",
            ws_result::WS_INVALID_HANDLE => c"WS_INVALID_HANDLE",
            ws_result::WS_INVALID_ARGUMENT => c"WS_INVALID_ARGUMENT",
            ws_result::WS_IO_ERROR => c"WS_IO_ERROR",
        }
    }
}

/// A failure inside the library: the code returned to C and the details for
/// `ws_last_error_message()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) code: ws_result,
    pub(crate) message: String,
}

impl Error {
    pub(crate) fn new(code: ws_result, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `WS_NULL_ARGUMENT` naming the parameter.
    pub(crate) fn null(what: &str) -> Error {
        Error::new(ws_result::WS_NULL_ARGUMENT, format!("{what} is NULL"))
    }

    /// `WS_INVALID_UTF8` naming the parameter and the offset of the first bad byte.
    pub(crate) fn utf8(what: &str, e: std::str::Utf8Error) -> Error {
        Error::new(
            ws_result::WS_INVALID_UTF8,
            format!(
                "{what} is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    }

    /// `WS_INVALID_ARGUMENT`.
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ws_result::WS_INVALID_ARGUMENT, message)
    }

    /// The code of the browser's exception, with its message.
    pub(crate) fn dom(e: DomError) -> Error {
        let code = match e.kind() {
            ErrorKind::Syntax => ws_result::WS_SYNTAX_ERROR,
            ErrorKind::InvalidState => ws_result::WS_INVALID_STATE_ERROR,
            ErrorKind::InvalidAccess => ws_result::WS_INVALID_ACCESS_ERROR,
        };
        Error::new(code, format!("{}: {}", e.name(), e.message()))
    }
}

thread_local! {
    /// The details of the last failure on this thread.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `err` as this thread's last error.
pub(crate) fn set_last_error(err: Error) {
    let text = format!("{}: {}", err.code.name().to_string_lossy(), err.message);
    let text = crate::strings::cstring_lossy(&text);
    // `try_with`: a call during thread teardown must not panic.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(text));
}

/// The name of a `ws_result` value, e.g. `"WS_SYNTAX_ERROR"`, as a static NUL-terminated
/// string (never freed, never NULL). Values that are not a `ws_result` give
/// `"WS_UNKNOWN_RESULT"`.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_result_name(result: c_int) -> *const c_char {
    ffi_panic_boundary! {
        ws_result::ALL
            .iter()
            .find(|r| **r as c_int == result)
            .map_or(c"WS_UNKNOWN_RESULT".as_ptr(), |r| r.name().as_ptr())
    }
}

/// The details of the most recent failure of a libwsdom function on the calling thread,
/// e.g. `"WS_SYNTAX_ERROR: SyntaxError: the URL's scheme must be ws, wss, http or https"`.
///
/// Every function that returns an error (a `ws_result` other than `WS_OK`, or a getter's
/// neutral value for a bad handle) sets it first; successful calls leave it unchanged, as
/// with `errno`. `""` if nothing failed yet on this thread. Never NULL.
///
/// Ownership: the string belongs to the library. It stays valid on this thread until the
/// next failing libwsdom call on this same thread (or the thread's exit); copy it to keep it.
/// Calls on other threads never change it. Callbacks run on library threads, so failures
/// inside a callback are reported on that thread's message, read it from the callback.
///
/// Thread: any (each thread has its own message).
#[no_mangle]
pub extern "C" fn ws_last_error_message() -> *const c_char {
    ffi_panic_boundary! {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ref().map(|s| s.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(crate::strings::EMPTY.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn names_cover_every_value() {
        for r in ws_result::ALL {
            // SAFETY: ws_result_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(ws_result_name(r as c_int)) };
            assert_eq!(name, r.name());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(ws_result_name(99)) };
        assert_eq!(unknown, c"WS_UNKNOWN_RESULT");
    }

    #[test]
    fn last_error_is_per_thread() {
        set_last_error(Error::null("url"));
        // SAFETY: valid until the next failing call on this thread.
        let here = unsafe { CStr::from_ptr(ws_last_error_message()) }.to_owned();
        assert_eq!(here.to_str().unwrap(), "WS_NULL_ARGUMENT: url is NULL");
        let there = std::thread::spawn(|| {
            // SAFETY: as above.
            unsafe { CStr::from_ptr(ws_last_error_message()) }.to_owned()
        })
        .join()
        .unwrap();
        assert!(there.is_empty());
    }
}
