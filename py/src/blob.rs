//! `Blob`: immutable binary data, the default `data` of binary messages.

use crate::buffer::{self, BufferView};
use bytes::Bytes;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// `Blob(blobParts=None, options=None, *, type="")`: immutable bytes with a MIME type.
///
/// `blobParts` is an iterable of `str` (encoded as UTF-8), bytes-like objects and other
/// `Blob`s. Unlike the browser's promises, `bytes()`, `text()` and `arrayBuffer()` return
/// their result directly.
#[pyclass(module = "wsdom", frozen)]
pub struct Blob {
    data: Bytes,
    ty: String,
}

/// The browser's rule for a Blob type: printable ASCII only (else empty), lowercased.
fn normalize_type(t: &str) -> String {
    if t.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        t.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// Clamps a relative index as `Blob.slice()` does (negative counts from the end).
fn relative(index: Option<i64>, size: usize, default: usize) -> usize {
    match index {
        None => default,
        Some(i) if i < 0 => size.saturating_sub(i.unsigned_abs() as usize),
        Some(i) => (i as u64).min(size as u64) as usize,
    }
}

impl Blob {
    /// A Blob holding `data` (no copy) with an empty type.
    pub(crate) fn from_bytes(data: Bytes) -> Blob {
        Blob {
            data,
            ty: String::new(),
        }
    }

    /// The bytes.
    pub(crate) fn data(&self) -> &Bytes {
        &self.data
    }
}

fn append_part(out: &mut Vec<u8>, part: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(s) = part.cast::<PyString>() {
        out.extend_from_slice(buffer::str_utf8(s)?.as_bytes());
    } else if let Ok(b) = part.cast::<PyBytes>() {
        out.extend_from_slice(b.as_bytes());
    } else if let Ok(blob) = part.cast::<Blob>() {
        out.extend_from_slice(&blob.get().data);
    } else if let Some(view) = BufferView::get(part) {
        out.extend_from_slice(view.as_slice());
    } else {
        return Err(PyTypeError::new_err(format!(
            "a Blob part must be str, a bytes-like object or Blob, not {}",
            part.get_type().name()?
        )));
    }
    Ok(())
}

#[pymethods]
impl Blob {
    #[new]
    #[pyo3(signature = (blobParts = None, options = None, *, r#type = None))]
    #[allow(non_snake_case)]
    fn py_new(
        blobParts: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
        r#type: Option<&str>,
    ) -> PyResult<Self> {
        let mut data = Vec::new();
        if let Some(parts) = blobParts.filter(|p| !p.is_none()) {
            if parts.is_instance_of::<PyString>() || parts.is_instance_of::<PyBytes>() {
                return Err(PyTypeError::new_err(
                    "blobParts must be an iterable of parts, e.g. [b\"data\"], not a single part",
                ));
            }
            for part in parts.try_iter()? {
                append_part(&mut data, &part?)?;
            }
        }
        let mut ty = String::new();
        if let Some(opts) = options {
            if let Some(t) = opts.get_item("type")? {
                ty = t.extract()?;
            }
        }
        if let Some(t) = r#type {
            ty = t.to_owned();
        }
        Ok(Blob {
            data: Bytes::from(data),
            ty: normalize_type(&ty),
        })
    }

    /// The size in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.data.len()
    }

    /// The MIME type given at creation (lowercase), or `""`.
    #[getter(r#type)]
    fn get_type(&self) -> &str {
        &self.ty
    }

    /// The bytes, as a new `bytes` object.
    fn bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The bytes as a read-only `memoryview`, sharing the Blob's memory (no copy).
    #[pyo3(name = "arrayBuffer")]
    fn array_buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        buffer::memoryview(py, self.data.clone())
    }

    /// A new Blob of the bytes from `start` to `end` (negative values count from the end),
    /// with type `contentType`. Shares memory with this Blob.
    #[pyo3(signature = (start = None, end = None, contentType = None))]
    #[allow(non_snake_case)]
    fn slice(&self, start: Option<i64>, end: Option<i64>, contentType: Option<&str>) -> Blob {
        let size = self.data.len();
        let from = relative(start, size, 0);
        let to = relative(end, size, size).max(from);
        Blob {
            data: self.data.slice(from..to),
            ty: contentType.map(normalize_type).unwrap_or_default(),
        }
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __repr__(&self) -> String {
        format!("<Blob size={} type={:?}>", self.data.len(), self.ty)
    }
}
