//! `DOMException` and its subclasses, and the conversion of core errors to them.
//!
//! The classes are defined in Python (`dom_exceptions.py`, run once at import) because each
//! concrete error has two bases, e.g. `InvalidStateError(DOMException, RuntimeError)`, which
//! PyO3's exception macros cannot express.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use std::ffi::CString;
use wsdom_core::{DomError, ErrorKind};

/// The Python source of the exception classes.
const SOURCE: &str = include_str!("dom_exceptions.py");

/// The exception classes, created when the module is imported.
struct Classes {
    syntax: Py<PyType>,
    invalid_state: Py<PyType>,
    invalid_access: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// Creates the exception classes and adds them to the module `m`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let globals = PyDict::new(py);
    // The classes report `wsdom` as their module, where users find them.
    globals.set_item("__name__", "wsdom")?;
    globals.set_item("__builtins__", py.import("builtins")?)?;
    let code = CString::new(SOURCE).expect("the exception source has no NUL byte");
    py.run(&code, Some(&globals), None)?;
    let class = |name: &str| -> PyResult<Py<PyType>> {
        Ok(globals
            .get_item(name)?
            .expect("defined by dom_exceptions.py")
            .cast_into::<PyType>()?
            .unbind())
    };
    for name in [
        "DOMException",
        "DOMSyntaxError",
        "InvalidStateError",
        "InvalidAccessError",
    ] {
        m.add(name, class(name)?)?;
    }
    let _ = CLASSES.set(
        py,
        Classes {
            syntax: class("DOMSyntaxError")?,
            invalid_state: class("InvalidStateError")?,
            invalid_access: class("InvalidAccessError")?,
        },
    );
    Ok(())
}

fn make(py: Python<'_>, class: fn(&Classes) -> &Py<PyType>, message: &str) -> PyErr {
    let Some(classes) = CLASSES.get(py) else {
        return pyo3::exceptions::PyRuntimeError::new_err(message.to_owned());
    };
    match class(classes).bind(py).call1((message,)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// The Python exception for a core error: `DOMSyntaxError`, `InvalidStateError` or
/// `InvalidAccessError`, with the core's message.
pub(crate) fn from_dom(py: Python<'_>, e: &DomError) -> PyErr {
    match e.kind() {
        ErrorKind::Syntax => syntax(py, e.message()),
        ErrorKind::InvalidState => invalid_state(py, e.message()),
        ErrorKind::InvalidAccess => invalid_access(py, e.message()),
    }
}

/// A `DOMSyntaxError` with `message`.
pub(crate) fn syntax(py: Python<'_>, message: &str) -> PyErr {
    make(py, |c| &c.syntax, message)
}

/// An `InvalidStateError` with `message`.
pub(crate) fn invalid_state(py: Python<'_>, message: &str) -> PyErr {
    make(py, |c| &c.invalid_state, message)
}

/// An `InvalidAccessError` with `message`.
pub(crate) fn invalid_access(py: Python<'_>, message: &str) -> PyErr {
    make(py, |c| &c.invalid_access, message)
}
