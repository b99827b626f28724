//! Converting C arguments (NUL-terminated strings, pointer + length buffers) and making
//! NUL-terminated strings for C.

use crate::result::{ws_result, Error};
use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The empty string handed to C where a string is absent (static, never freed).
pub(crate) const EMPTY: &CStr = c"";

/// A NUL-terminated UTF-8 argument. NULL → `WS_NULL_ARGUMENT`; bad UTF-8 → `WS_INVALID_UTF8`.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| Error::utf8(what, e))
}

/// A NUL-terminated file path (any bytes but NUL: Unix paths need not be UTF-8).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf, Error> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: as in str_arg.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// A buffer given as pointer and length. NULL is accepted for an empty buffer only.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    p: *const c_void,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "the length of {what} ({len}) is larger than any object can be"
        )));
    }
    reserve_check(len, what)?;
    // SAFETY: non-NULL, `len` readable bytes per the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Buffers from this size on are checked to fit in memory before they are used.
const LARGE_BUFFER: usize = 1 << 20;

/// `WS_OUT_OF_MEMORY` if a copy of a `len`-byte buffer (plus a frame header) cannot be
/// allocated, instead of aborting the process inside the copy. Checked before the caller's
/// buffer is touched, so an absurd length never leads to reading past its end.
fn reserve_check(len: usize, what: &str) -> Result<(), Error> {
    if len < LARGE_BUFFER {
        return Ok(());
    }
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(len.saturating_add(16))
        .map_err(|e| {
            Error::new(
                ws_result::WS_OUT_OF_MEMORY,
                format!("cannot allocate a copy of {what} ({len} bytes): {e}"),
            )
        })
}

/// A UTF-8 buffer given as pointer and length.
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn utf8_arg<'a>(
    p: *const c_void,
    len: usize,
    what: &str,
) -> Result<&'a str, Error> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(p, len, what) }?;
    std::str::from_utf8(bytes).map_err(|e| Error::utf8(what, e))
}

/// `s` as a C string; an embedded NUL (never expected in what we convert) ends the string.
pub(crate) fn cstring_lossy(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).expect("no NUL before `end`")
}

/// `bytes` followed by a NUL terminator, so C gets both a length and a C string.
pub(crate) fn nul_terminated(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked() {
        // SAFETY: NULL and static strings.
        unsafe {
            assert_eq!(
                str_arg(std::ptr::null(), "url").unwrap_err().code,
                ws_result::WS_NULL_ARGUMENT
            );
            assert_eq!(
                str_arg(c"\xff".as_ptr(), "url").unwrap_err().code,
                ws_result::WS_INVALID_UTF8
            );
            assert_eq!(str_arg(c"ok".as_ptr(), "url").unwrap(), "ok");
            assert_eq!(bytes_arg(std::ptr::null(), 0, "data").unwrap(), b"");
            assert_eq!(
                bytes_arg(std::ptr::null(), 3, "data").unwrap_err().code,
                ws_result::WS_NULL_ARGUMENT
            );
        }
        assert_eq!(cstring_lossy("a\0b").as_bytes(), b"a");
        assert_eq!(nul_terminated(b"ab".to_vec()), b"ab\0");
    }
}
