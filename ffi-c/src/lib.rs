//! # wsdom-ffi: the browser's WebSocket API for C and C++
//!
//! This crate builds `libwsdom` (`libwsdom.so` and `libwsdom.a`), whose API is declared in
//! `include/wsdom.h` (generated from these sources by cbindgen; see `ffi-c/cbindgen.toml`).
//! The C user's concepts each have a module: [`result`] (`ws_result`, error messages),
//! [`socket`] (`ws_new`, `ws_send`, `ws_close`, the attributes, `ws_free`), [`callbacks`]
//! (`ws_set_onopen`...), [`options`] (`ws_options`), [`dispatch`] (`ws_event_fd`,
//! `ws_dispatch`) and [`library`] (version, live-handle count). The rest is plumbing: the
//! panic boundary, string conversions and the handle tables.
//!
//! Conventions (as in rustls-ffi): every exported function runs inside
//! `ffi_panic_boundary!`, so no panic crosses into C; fallible functions return `ws_result`
//! and record details for `ws_last_error_message()`; every object C receives has a free
//! function; handles are looked up in a table instead of being dereferenced.

#![allow(non_camel_case_types)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// Plumbing first: the panic boundary macros are used by every other module.
mod panic;

// One module per concept a C user sees. cbindgen writes the header in this order, so each
// has its own comment (rustfmt would sort an uninterrupted group alphabetically).

// ws_result, ws_result_name, ws_last_error_message.
pub mod result;
// ws, the readyState constants, ws_new*, ws_send*, ws_close, the getters, ws_free.
pub mod socket;
// The callback types, ws_callbacks, ws_set_on*, ws_set_callbacks.
pub mod callbacks;
// ws_options and its setters.
pub mod options;
// ws_event_fd, ws_dispatch, ws_set_io_threads.
pub mod dispatch;
// ws_version, ws_live_handles.
pub mod library;

// Plumbing.
mod handles;
mod strings;
