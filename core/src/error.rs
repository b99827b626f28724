//! The synchronous errors of the API, named after the browser's `DOMException`s.

use std::fmt;

/// Which `DOMException` the browser would throw for the same call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input text: URL, subprotocol token, close reason too long, bad header option.
    Syntax,
    /// The call is not allowed in the current `readyState` (e.g. `send` while CONNECTING).
    InvalidState,
    /// A close code other than 1000 or 3000-4999.
    InvalidAccess,
}

impl ErrorKind {
    /// The browser's exception name: `SyntaxError`, `InvalidStateError` or `InvalidAccessError`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "SyntaxError",
            ErrorKind::InvalidState => "InvalidStateError",
            ErrorKind::InvalidAccess => "InvalidAccessError",
        }
    }

    /// The legacy numeric `DOMException.code` (12, 11 and 15).
    pub fn legacy_code(self) -> u16 {
        match self {
            ErrorKind::Syntax => 12,
            ErrorKind::InvalidState => 11,
            ErrorKind::InvalidAccess => 15,
        }
    }
}

/// An error thrown synchronously by the constructor, `send` or `close`.
///
/// Network failures are never reported this way: they arrive as `error` and `close` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomError {
    kind: ErrorKind,
    message: String,
}

impl DomError {
    /// Creates an error of the given kind with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DomError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, message)
    }

    /// Which exception this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The browser's exception name, e.g. `"SyntaxError"`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The details: what was wrong with the input.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for DomError {}
