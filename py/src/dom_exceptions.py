# The exception classes of wsdom, run once by the compiled module `wsdom._wsdom` when it is
# imported (see errors.rs). They are plain Python classes because each of the concrete errors
# derives from two bases: DOMException and the built-in exception a Python user would catch.

_LEGACY_CODES = {
    "IndexSizeError": 1,
    "HierarchyRequestError": 3,
    "WrongDocumentError": 4,
    "InvalidCharacterError": 5,
    "NoModificationAllowedError": 7,
    "NotFoundError": 8,
    "NotSupportedError": 9,
    "InvalidStateError": 11,
    "SyntaxError": 12,
    "InvalidModificationError": 13,
    "NamespaceError": 14,
    "InvalidAccessError": 15,
    "TypeMismatchError": 17,
    "SecurityError": 18,
    "NetworkError": 19,
    "AbortError": 20,
    "URLMismatchError": 21,
    "QuotaExceededError": 22,
    "TimeoutError": 23,
    "InvalidNodeTypeError": 24,
    "DataCloneError": 25,
}


class DOMException(Exception):
    """The browser's ``DOMException``: an error with a ``name``, a ``message`` and the
    legacy numeric ``code`` of that name (0 for names without one).

    wsdom raises its subclasses :class:`DOMSyntaxError`, :class:`InvalidStateError` and
    :class:`InvalidAccessError`, which are also :class:`ValueError` or :class:`RuntimeError`.
    """

    INDEX_SIZE_ERR = 1
    DOMSTRING_SIZE_ERR = 2
    HIERARCHY_REQUEST_ERR = 3
    WRONG_DOCUMENT_ERR = 4
    INVALID_CHARACTER_ERR = 5
    NO_DATA_ALLOWED_ERR = 6
    NO_MODIFICATION_ALLOWED_ERR = 7
    NOT_FOUND_ERR = 8
    NOT_SUPPORTED_ERR = 9
    INUSE_ATTRIBUTE_ERR = 10
    INVALID_STATE_ERR = 11
    SYNTAX_ERR = 12
    INVALID_MODIFICATION_ERR = 13
    NAMESPACE_ERR = 14
    INVALID_ACCESS_ERR = 15
    VALIDATION_ERR = 16
    TYPE_MISMATCH_ERR = 17
    SECURITY_ERR = 18
    NETWORK_ERR = 19
    ABORT_ERR = 20
    URL_MISMATCH_ERR = 21
    QUOTA_EXCEEDED_ERR = 22
    TIMEOUT_ERR = 23
    INVALID_NODE_TYPE_ERR = 24
    DATA_CLONE_ERR = 25

    def __init__(self, message="", name="Error"):
        message = str(message)
        name = str(name)
        super().__init__(message)
        self._message = message
        self._name = name

    @property
    def name(self):
        """The error's name, e.g. ``"SyntaxError"``."""
        return self._name

    @property
    def message(self):
        """What went wrong."""
        return self._message

    @property
    def code(self):
        """The legacy numeric code of :attr:`name` (12 for SyntaxError, ...), or 0."""
        return _LEGACY_CODES.get(self._name, 0)

    def __str__(self):
        return self._message

    def __repr__(self):
        return f"{type(self).__name__}({self._message!r}, {self._name!r})"

    def __reduce__(self):
        return (DOMException, (self._message, self._name))


class DOMSyntaxError(DOMException, ValueError):
    """``DOMException`` named ``"SyntaxError"`` (code 12): a bad URL, subprotocol, close
    reason or option. Also a :class:`ValueError`."""

    def __init__(self, message=""):
        DOMException.__init__(self, message, "SyntaxError")

    def __repr__(self):
        return f"{type(self).__name__}({self._message!r})"

    def __reduce__(self):
        return (type(self), (self._message,))


class InvalidStateError(DOMException, RuntimeError):
    """``DOMException`` named ``"InvalidStateError"`` (code 11): the call is not allowed in
    the current ``readyState``, e.g. ``send()`` while CONNECTING. Also a
    :class:`RuntimeError`."""

    def __init__(self, message=""):
        DOMException.__init__(self, message, "InvalidStateError")

    def __repr__(self):
        return f"{type(self).__name__}({self._message!r})"

    def __reduce__(self):
        return (type(self), (self._message,))


class InvalidAccessError(DOMException, ValueError):
    """``DOMException`` named ``"InvalidAccessError"`` (code 15): a close code other than
    1000 or 3000-4999. Also a :class:`ValueError`."""

    def __init__(self, message=""):
        DOMException.__init__(self, message, "InvalidAccessError")

    def __repr__(self):
        return f"{type(self).__name__}({self._message!r})"

    def __reduce__(self):
        return (type(self), (self._message,))
