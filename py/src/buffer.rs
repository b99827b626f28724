//! Bytes in and out of Python without extra copies, under the abi3 (Python 3.9) ABI.
//!
//! PyO3 offers the buffer protocol only for abi3 builds targeting Python 3.11+, so this module
//! declares the few C-API functions it needs itself. They are public CPython API in every
//! version since 3.0 (only added to the *limited* API in 3.11), so the symbols exist in every
//! interpreter the abi3-py39 wheel loads into, and `Py_buffer` has kept its layout.
//!
//! * [`memoryview`]: a read-only `memoryview` over [`Bytes`] we own (received messages), by
//!   way of a tiny heap type that exports the buffer protocol (`Py_bf_getbuffer`, accepted by
//!   `PyType_FromSpec` since Python 3.9).
//! * [`BufferView`]: borrows the bytes of any object that exports a contiguous buffer
//!   (bytearray, memoryview, array.array, numpy arrays, mmap, ...).
//! * [`str_utf8`]: the UTF-8 text of a `str`, without a copy when CPython has it cached.

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::borrow::Cow;
use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicPtr, Ordering};

/// CPython's `Py_buffer` (identical in all supported versions).
#[repr(C)]
struct PyBufferRaw {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

/// `PyBUF_SIMPLE`: a contiguous buffer of bytes.
const PYBUF_SIMPLE: c_int = 0;
/// `Py_bf_getbuffer` slot number.
const PY_BF_GETBUFFER: c_int = 1;

extern "C" {
    fn PyObject_GetBuffer(obj: *mut ffi::PyObject, view: *mut PyBufferRaw, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut PyBufferRaw);
    fn PyBuffer_FillInfo(
        view: *mut PyBufferRaw,
        obj: *mut ffi::PyObject,
        buf: *mut c_void,
        len: ffi::Py_ssize_t,
        readonly: c_int,
        flags: c_int,
    ) -> c_int;
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// The instance layout of the buffer-owner type.
#[repr(C)]
struct Owner {
    ob_base: ffi::PyObject,
    data: ManuallyDrop<Bytes>,
}

static OWNER_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn owner_getbuffer(
    obj: *mut ffi::PyObject,
    view: *mut PyBufferRaw,
    flags: c_int,
) -> c_int {
    // SAFETY: `obj` is an instance of the owner type, whose `data` was initialised at creation.
    let data = unsafe { &(*obj.cast::<Owner>()).data };
    // SAFETY: FillInfo stores a new reference to `obj`, which keeps `data` alive for the view;
    // it fails with BufferError if a writable buffer is requested.
    unsafe {
        PyBuffer_FillInfo(
            view,
            obj,
            data.as_ptr() as *mut c_void,
            data.len() as ffi::Py_ssize_t,
            1,
            flags,
        )
    }
}

unsafe extern "C" fn owner_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: called once by CPython when the last reference goes; `data` was initialised.
    unsafe {
        ManuallyDrop::drop(&mut (*obj.cast::<Owner>()).data);
        let tp = ffi::Py_TYPE(obj);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if !free.is_null() {
            let free: ffi::freefunc = std::mem::transmute(free);
            free(obj.cast());
        }
        // Instances of heap types hold a reference to their type.
        ffi::Py_DECREF(tp.cast());
    }
}

unsafe extern "C" fn owner_new(
    _tp: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: sets a Python exception with a static message.
    unsafe {
        ffi::PyErr_SetString(
            ffi::PyExc_TypeError,
            c"the memory of a received message cannot be created from Python".as_ptr(),
        )
    };
    std::ptr::null_mut()
}

/// Creates the buffer-owner type. Called once, when the module is imported.
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    if !OWNER_TYPE.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: owner_dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_new,
            pfunc: owner_new as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: PY_BF_GETBUFFER,
            pfunc: owner_getbuffer as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"wsdom._wsdom.MessageBytes".as_ptr(),
        basicsize: std::mem::size_of::<Owner>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the spec and slots are valid for the call; CPython copies what it keeps.
    let tp = unsafe { ffi::PyType_FromSpec(&mut spec) };
    if tp.is_null() {
        return Err(PyErr::fetch(py));
    }
    // The type lives as long as the process (its reference is never released).
    OWNER_TYPE.store(tp.cast(), Ordering::Release);
    Ok(())
}

/// A read-only `memoryview` of `data`, sharing its memory.
pub(crate) fn memoryview(py: Python<'_>, data: Bytes) -> PyResult<Bound<'_, PyAny>> {
    let tp = OWNER_TYPE.load(Ordering::Acquire);
    if tp.is_null() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "wsdom is not initialised",
        ));
    }
    // SAFETY: allocates an instance of our heap type (zeroed) and initialises `data` before
    // anything can see it; the memoryview then holds the only reference.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(tp, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        std::ptr::write(&mut (*obj.cast::<Owner>()).data, ManuallyDrop::new(data));
        let owner = Bound::from_owned_ptr(py, obj);
        let view = ffi::PyMemoryView_FromObject(owner.as_ptr());
        Bound::from_owned_ptr_or_err(py, view)
    }
}

/// The contiguous bytes of an object that exports the buffer protocol, borrowed until drop.
/// It must be dropped with the GIL held (it releases the exporter's buffer).
pub(crate) struct BufferView {
    view: PyBufferRaw,
}

impl BufferView {
    /// Borrows the bytes of `obj`; None if it exports no contiguous buffer.
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> Option<BufferView> {
        let mut view = std::mem::MaybeUninit::<PyBufferRaw>::zeroed();
        // SAFETY: `view` is writable memory for one Py_buffer; on success it is filled in and
        // must be released with PyBuffer_Release (done in Drop).
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), PYBUF_SIMPLE) };
        if rc != 0 {
            // Not a buffer, or not a contiguous one: the caller decides what to do.
            // SAFETY: clears the exception PyObject_GetBuffer set.
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        // SAFETY: initialised by the successful call.
        Some(BufferView {
            view: unsafe { view.assume_init() },
        })
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.view.len == 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: the exporter guarantees `len` readable bytes at `buf` while the view is held.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.view.len as usize) }
    }
}

impl Drop for BufferView {
    fn drop(&mut self) {
        // SAFETY: releases the buffer obtained in `get`, once; callers hold the GIL.
        unsafe { PyBuffer_Release(&mut self.view) };
    }
}

// SAFETY: the view only points into memory kept alive by the exporter, which it owns a
// reference to; it is released on drop with the GIL held.
unsafe impl Send for BufferView {}
// SAFETY: shared access is read-only.
unsafe impl Sync for BufferView {}

/// The UTF-8 text of `s`. Borrowed from CPython's cached UTF-8 form when the string has no
/// lone surrogates; otherwise each lone surrogate becomes U+FFFD, as the browser's USVString
/// conversion does.
pub(crate) fn str_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a str; the returned pointer stays valid while `s` is alive (the borrow).
    let ptr = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
    if !ptr.is_null() {
        // SAFETY: CPython returns valid UTF-8 of `size` bytes, alive as long as `s`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size as usize) };
        // SAFETY: CPython guarantees the cached form is valid UTF-8.
        return Ok(Cow::Borrowed(unsafe {
            std::str::from_utf8_unchecked(bytes)
        }));
    }
    let py = s.py();
    // Lone surrogates: clear the UnicodeEncodeError and replace them.
    drop(PyErr::take(py));
    let fixed = s
        .call_method1("encode", ("utf-16", "surrogatepass"))?
        .call_method1("decode", ("utf-16", "replace"))?;
    Ok(Cow::Owned(fixed.extract::<String>()?))
}

/// The UTF-8 text of any object that must be a `str` (TypeError otherwise), as
/// [`str_utf8`], owned.
pub(crate) fn usv_string(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(str_utf8(s)?.into_owned()),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            obj.get_type().name()?
        ))),
    }
}
