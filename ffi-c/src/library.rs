//! Process-wide functions: the library version and the live-handle count.

use crate::panic::ffi_panic_boundary;
use crate::result::ws_result;
use std::ffi::c_char;

/// The version of libwsdom, e.g. `"0.1.0"` (static string, never freed).
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_version() -> *const c_char {
    ffi_panic_boundary! {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}

/// The number of `ws` and `ws_options` handles created and not yet freed, in the whole
/// process: a leak check for tests and debugging (0 once everything was freed).
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn ws_live_handles() -> usize {
    ffi_panic_boundary! {
        crate::socket::live_sockets() + crate::options::live_options()
    }
}

/// Test hook, not in the header: panics inside the boundary, so the test suite can check that
/// a panic becomes `WS_PANIC` (kind 0) or a getter's neutral value (kind 1) instead of
/// unwinding into C.
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn wsdom_test_panic(kind: i32) -> ws_result {
    fn string_getter() -> *const c_char {
        ffi_panic_boundary! {
            panic!("test panic in a getter")
        }
    }
    ffi_panic_boundary! {
        if kind == 1 {
            let s = string_getter();
            // SAFETY: getters return a valid C string even after a panic.
            let empty = unsafe { std::ffi::CStr::from_ptr(s) }.is_empty();
            return if empty { ws_result::WS_OK } else { ws_result::WS_PANIC };
        }
        panic!("test panic requested by wsdom_test_panic({kind})")
    }
}
