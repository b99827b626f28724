//! The panic boundary: no Rust panic ever unwinds into C.
//!
//! Every exported function wraps its body in [`ffi_panic_boundary!`]. A panic is caught,
//! recorded for `ws_last_error_message()`, and turned into the function's error value:
//! `WS_PANIC` for functions returning `ws_result`, and a documented neutral value for the
//! others (see [`FfiReturn`]). Errors are returned early from a body with [`try_ffi!`].

use crate::result::{set_last_error, ws_result, Error};
use std::ffi::{c_char, c_int};

/// What an exported function returns when it fails (or panics) instead of doing its job.
pub(crate) trait FfiReturn {
    /// The value that reports failure `code` to C.
    fn on_error(code: ws_result) -> Self;
}

impl FfiReturn for ws_result {
    fn on_error(code: ws_result) -> Self {
        code
    }
}

/// Getters returning a string give `""` (never NULL) on failure.
impl FfiReturn for *const c_char {
    fn on_error(_: ws_result) -> Self {
        crate::strings::EMPTY.as_ptr()
    }
}

/// `ws_ready_state` gives -1 on failure.
impl FfiReturn for c_int {
    fn on_error(_: ws_result) -> Self {
        -1
    }
}

/// Counters give 0 on failure.
impl FfiReturn for u64 {
    fn on_error(_: ws_result) -> Self {
        0
    }
}

/// Counters give 0 on failure.
impl FfiReturn for usize {
    fn on_error(_: ws_result) -> Self {
        0
    }
}

/// Records `err` for `ws_last_error_message()` and returns the caller's error value.
pub(crate) fn fail<T: FfiReturn>(err: Error) -> T {
    let code = err.code;
    set_last_error(err);
    T::on_error(code)
}

/// Records a caught panic and returns the caller's error value for `WS_PANIC`.
pub(crate) fn panicked<T: FfiReturn>(payload: Box<dyn std::any::Any + Send>) -> T {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string());
    fail(Error::new(
        ws_result::WS_PANIC,
        format!("internal error (panic) in libwsdom: {what}"),
    ))
}

/// Runs the body of an exported function, catching any panic (see the module docs).
///
/// The body is a closure: `return` inside it returns from the exported function.
macro_rules! ffi_panic_boundary {
    ( $($tt:tt)* ) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($tt)* })) {
            Ok(ret) => ret,
            Err(payload) => $crate::panic::panicked(payload),
        }
    };
}

/// Unwraps a `Result<T, Error>` inside [`ffi_panic_boundary!`]; on `Err`, records the error
/// and returns the function's error value.
macro_rules! try_ffi {
    ( $e:expr ) => {
        match $e {
            Ok(value) => value,
            Err(err) => return $crate::panic::fail(err),
        }
    };
}

pub(crate) use ffi_panic_boundary;
pub(crate) use try_ffi;
