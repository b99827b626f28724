//! # wsdom (Python)
//!
//! The compiled module `wsdom._wsdom` of the Python package `wsdom`: the browser's WebSocket
//! API on the Rust core (`wsdom-core`). The package `wsdom` re-exports these classes and adds
//! the asyncio helpers in Python.
//!
//! * [`socket`]: the `WebSocket` class.
//! * [`events`]: `Event`, `MessageEvent`, `CloseEvent`, `ErrorEvent`.
//! * [`listeners`]: event listeners, event handler attributes and dispatch.
//! * [`dispatch`]: from the core's handler to Python (lifetime, waits, observers).
//! * [`gil`]: the GIL on wsdom's I/O threads.
//! * [`lifecycle`]: interpreter exit and `fork()`.
//! * [`loops`]: events of sockets created in an asyncio loop run on that loop.
//! * [`blob`], [`buffer`]: binary data without extra copies.
//! * [`errors`], [`options`]: exceptions and constructor options.

#![warn(missing_docs)]

pub mod blob;
pub mod buffer;
pub mod dispatch;
pub mod errors;
pub mod events;
pub mod gil;
pub mod lifecycle;
pub mod listeners;
pub mod loops;
pub mod options;
pub mod socket;

use pyo3::prelude::*;

/// The module `wsdom._wsdom`.
#[pymodule(gil_used = true)]
fn _wsdom(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Before any socket can start the I/O runtime.
    gil::install_park_hook();
    gil::read_switch_interval(py);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    buffer::init(py)?;
    m.add_class::<socket::WebSocket>()?;
    m.add_class::<events::Event>()?;
    m.add_class::<events::MessageEvent>()?;
    m.add_class::<events::CloseEvent>()?;
    m.add_class::<events::ErrorEvent>()?;
    m.add_class::<blob::Blob>()?;
    m.add_class::<loops::LoopQueue>()?;
    m.add_function(wrap_pyfunction!(lifecycle::_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle::_after_fork_child, m)?)?;
    py.import("atexit")?
        .call_method1("register", (m.getattr("_shutdown")?,))?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("after_in_child", m.getattr("_after_fork_child")?)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    Ok(())
}
