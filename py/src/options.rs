//! The keyword options of `WebSocket(url, protocols, **options)`, converted to core options.

use crate::buffer::usv_string;
use crate::events::EvType;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyMapping, PyString};
use std::time::Duration;
use wsdom_core::{Options, ProxySetting};

/// The option names, for error messages and the documentation.
pub(crate) const NAMES: &[&str] = &[
    "headers",
    "base_url",
    "ca_file",
    "ca_pem",
    "client_cert",
    "client_key",
    "client_cert_pem",
    "client_key_pem",
    "insecure",
    "default_roots",
    "proxy",
    "connect_timeout",
    "close_timeout",
    "max_message_size",
    "max_frame_size",
    "max_buffered_amount",
    "read_chunk_size",
    "ping_interval",
    "pong_timeout",
    "deflate",
    "deflate_threshold",
    "deflate_level",
    "binaryType",
    "onopen",
    "onmessage",
    "onerror",
    "onclose",
];

/// The parsed options.
pub(crate) struct Parsed {
    /// The core options (without handler and queue).
    pub(crate) core: Options,
    /// `onopen=` and friends, in the order given: (handler slot, callable or None).
    pub(crate) handlers: Vec<(usize, Option<Py<PyAny>>)>,
    /// `binaryType=`, if valid.
    pub(crate) arraybuffer: Option<bool>,
}

fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a number of seconds")))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, not {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// An int or float equal to zero (not a bool).
fn is_zero(value: &Bound<'_, PyAny>) -> bool {
    !value.is_instance_of::<PyBool>() && value.extract::<f64>().is_ok_and(|x| x == 0.0)
}

fn size(name: &str, value: &Bound<'_, PyAny>, min: u64) -> PyResult<u64> {
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int")));
    }
    let n: i128 = value
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{name} is too large")))?;
    if n < i128::from(min) || n > i128::from(u64::MAX) {
        return Err(PyValueError::new_err(format!(
            "{name} must be at least {min}, not {n}"
        )));
    }
    Ok(n as u64)
}

fn flag(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be True or False")))
}

/// A str, or bytes decoded as UTF-8 (PEM text).
fn text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|_| PyValueError::new_err(format!("{name} is not UTF-8 text")));
    }
    usv_string(value, name)
}

/// One item or a list of items (a str or PathLike counts as one).
fn one_or_many<'py>(value: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let single = value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyBytes>()
        || value.hasattr("__fspath__")?;
    if single {
        return Ok(vec![value.clone()]);
    }
    value.try_iter()?.collect()
}

/// Reads a file named by a str or PathLike, as text.
fn read_file(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    // PEM text given for a path: say so without echoing it (it may be a private key).
    if value
        .cast::<PyString>()
        .is_ok_and(|s| s.to_cow().is_ok_and(|s| s.contains("-----BEGIN")))
    {
        let pem_name = match name {
            "ca_file" => "ca_pem".to_string(),
            other => format!("{other}_pem"),
        };
        return Err(PyValueError::new_err(format!(
            "{name} is the path of a PEM file, not PEM text: pass the text as {pem_name}"
        )));
    }
    let path: std::path::PathBuf = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a path (str or PathLike)")))?;
    std::fs::read_to_string(&path).map_err(|e| {
        // OSError(errno, strerror, filename) picks the subclass, e.g. FileNotFoundError.
        let py = value.py();
        let strerror = format!("{name}: {e}");
        let made = py.import("builtins").and_then(|b| {
            b.getattr("OSError")?
                .call1((e.raw_os_error().unwrap_or(0), strerror, path.clone()))
        });
        match made {
            Ok(err) => PyErr::from_value(err),
            Err(err) => err,
        }
    })
}

/// `proxy=`: None (the environment, as curl reads it), False or "" (direct, as `""` in C), or
/// a proxy URL. A URL that cannot be parsed is a SyntaxError when the socket is created.
fn proxy(value: &Bound<'_, PyAny>) -> PyResult<ProxySetting> {
    if value.is_none() {
        return Ok(ProxySetting::FromEnvironment);
    }
    if value.is_instance_of::<PyBool>() {
        return match value.extract::<bool>()? {
            false => Ok(ProxySetting::Direct),
            true => Err(PyTypeError::new_err(
                "proxy must be None (from the environment), False (direct) or a proxy URL, \
                 not True",
            )),
        };
    }
    if !value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "proxy must be None (from the environment), False (direct) or a proxy URL, not {}",
            value.get_type().name()?
        )));
    }
    Ok(match usv_string(value, "proxy")?.as_str() {
        "" => ProxySetting::Direct,
        url => ProxySetting::Url(url.to_owned()),
    })
}

fn headers(value: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let pairs: Vec<Bound<'_, PyAny>> = if let Ok(m) = value.cast::<PyMapping>() {
        m.items()?.try_iter()?.collect::<PyResult<_>>()?
    } else {
        value.try_iter()?.collect::<PyResult<_>>()?
    };
    pairs
        .iter()
        .map(|pair| {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract().map_err(|_| {
                PyTypeError::new_err("headers must be a mapping or a sequence of (name, value)")
            })?;
            Ok((
                usv_string(&k, "a header name")?,
                usv_string(&v, "a header value")?,
            ))
        })
        .collect()
}

/// Parses `**options`. Unknown names raise TypeError; bad values TypeError or ValueError;
/// files that cannot be read raise OSError.
pub(crate) fn parse(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Parsed> {
    let mut core = Options::default();
    let mut handlers = Vec::new();
    let mut arraybuffer = None;
    let mut cert: Option<String> = None;
    let mut key: Option<String> = None;
    let Some(kwargs) = kwargs else {
        return Ok(Parsed {
            core,
            handlers,
            arraybuffer,
        });
    };
    for (name, value) in kwargs.iter() {
        let name: String = name.extract()?;
        let v = &value;
        let n = name.as_str();
        match n {
            "headers" => core.headers = if v.is_none() { Vec::new() } else { headers(v)? },
            "base_url" => {
                core.base_url = if v.is_none() {
                    None
                } else {
                    Some(usv_string(v, n)?)
                }
            }
            "ca_file" => {
                if !v.is_none() {
                    for f in one_or_many(v)? {
                        core.tls.ca_pem.push(read_file(n, &f)?);
                    }
                }
            }
            "ca_pem" => {
                if !v.is_none() {
                    for p in one_or_many(v)? {
                        core.tls.ca_pem.push(text(n, &p)?);
                    }
                }
            }
            "client_cert" => cert = (!v.is_none()).then(|| read_file(n, v)).transpose()?,
            "client_key" => key = (!v.is_none()).then(|| read_file(n, v)).transpose()?,
            "client_cert_pem" => cert = (!v.is_none()).then(|| text(n, v)).transpose()?,
            "client_key_pem" => key = (!v.is_none()).then(|| text(n, v)).transpose()?,
            "insecure" => core.tls.insecure = flag(n, v)?,
            "default_roots" => core.tls.default_roots = flag(n, v)?,
            "proxy" => core.proxy = proxy(v)?,
            "connect_timeout" => core.connect_timeout = seconds(n, v)?,
            "close_timeout" => core.close_timeout = seconds(n, v)?,
            "pong_timeout" => core.pong_timeout = seconds(n, v)?,
            "ping_interval" => {
                // None or 0: off (0 as in C's ws_options_set_ping_interval).
                core.ping_interval = if v.is_none() || is_zero(v) {
                    None
                } else {
                    Some(seconds(n, v)?)
                }
            }
            "max_message_size" => core.max_message_size = size(n, v, 1)? as usize,
            "max_frame_size" => core.max_frame_size = size(n, v, 1)? as usize,
            "max_buffered_amount" => core.max_buffered_amount = size(n, v, 1)?,
            "read_chunk_size" => core.read_chunk_size = size(n, v, 1)? as usize,
            "deflate" => core.deflate = flag(n, v)?,
            "deflate_threshold" => core.deflate_threshold = size(n, v, 0)? as usize,
            "deflate_level" => {
                let level = size(n, v, 1)?;
                if level > 9 {
                    return Err(PyValueError::new_err(format!(
                        "{n} must be 1 to 9, not {level}"
                    )));
                }
                core.deflate_level = level as u32;
            }
            "binaryType" => {
                arraybuffer = match v.extract::<String>().as_deref() {
                    Ok("blob") => Some(false),
                    Ok("arraybuffer") => Some(true),
                    _ => arraybuffer,
                }
            }
            "onopen" | "onmessage" | "onerror" | "onclose" => {
                let slot = EvType::parse(&n[2..])
                    .handler_slot()
                    .expect("one of the four WebSocket events");
                let handler = v.is_callable().then(|| v.clone().unbind());
                handlers.push((slot, handler));
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "WebSocket() got an unexpected keyword argument '{n}' (options: {})",
                    NAMES.join(", ")
                )))
            }
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => core.tls.client_cert_pem = Some((c, k)),
        (None, None) => {}
        _ => {
            return Err(PyValueError::new_err(
                "a client certificate needs both client_cert and client_key \
                 (or client_cert_pem and client_key_pem)",
            ))
        }
    }
    Ok(Parsed {
        core,
        handlers,
        arraybuffer,
    })
}
