"""Event classes, listeners, event handler attributes and dispatchEvent (DOM semantics)."""

from __future__ import annotations

import pytest

import wsdom
from wsdom import CloseEvent, ErrorEvent, Event, MessageEvent, WebSocket


@pytest.fixture
def ws(server):
    sock = WebSocket(server.url("/never-handshake"))
    yield sock
    sock.close()


def test_event_constructor_and_attributes():
    e = Event("custom")
    assert e.type == "custom"
    assert e.target is None and e.currentTarget is None and e.srcElement is None
    assert e.eventPhase == Event.NONE == 0
    assert (e.bubbles, e.cancelable, e.composed) == (False, False, False)
    assert e.isTrusted is False and e.defaultPrevented is False
    assert isinstance(e.timeStamp, float) and e.timeStamp >= 0
    assert Event("x").timeStamp >= e.timeStamp
    assert e.composedPath() == []
    assert (Event.CAPTURING_PHASE, Event.AT_TARGET, Event.BUBBLING_PHASE) == (1, 2, 3)
    e = Event("x", bubbles=True, cancelable=True, composed=True)
    assert (e.bubbles, e.cancelable, e.composed) == (True, True, True)
    e = Event("x", {"cancelable": 1, "bubbles": 0, "unknown": 5})
    assert (e.bubbles, e.cancelable) == (False, True)
    assert "Event" in repr(e) and "'x'" in repr(e) or '"x"' in repr(e)
    with pytest.raises(TypeError):
        Event("x", nope=True)
    with pytest.raises(TypeError):
        Event(5)
    with pytest.raises(AttributeError):
        e.type = "y"


def test_message_close_error_event_constructors():
    m = MessageEvent("message", data=b"x", origin="ws://a", lastEventId="7", ports=[1, 2])
    assert isinstance(m, Event)
    assert (m.type, m.data, m.origin, m.lastEventId, m.source, m.ports) == (
        "message", b"x", "ws://a", "7", None, (1, 2))
    m = MessageEvent("message")
    assert (m.data, m.origin, m.lastEventId, m.ports) == (None, "", "", ())
    c = CloseEvent("close", {"code": 4000, "reason": "r", "wasClean": True})
    assert (c.code, c.reason, c.wasClean) == (4000, "r", True)
    assert (CloseEvent("close").code, CloseEvent("close").wasClean) == (0, False)
    with pytest.raises(OverflowError):
        CloseEvent("close", code=70000)
    err = ErrorEvent("error", message="m", lineno=3)
    assert (err.message, err.lineno, err.colno, err.filename, err.error) == ("m", 3, 0, "", None)


def test_events_can_be_subclassed_in_python(ws):
    class MyEvent(Event):
        pass

    got = []
    ws.addEventListener("mine", lambda e: got.append((type(e).__name__, e.extra)))
    ev = MyEvent("mine")
    ev.extra = 42
    assert ws.dispatchEvent(ev)
    assert got == [("MyEvent", 42)]


def test_dispatch_event_sets_fields_during_and_after(ws):
    ev = Event("ping", cancelable=True)
    seen = []

    def listener(e):
        seen.append((e is ev, e.target is ws, e.currentTarget is ws, e.eventPhase,
                     e.isTrusted, e.composedPath() == [ws]))

    ws.addEventListener("ping", listener)
    assert ws.dispatchEvent(ev) is True
    assert seen == [(True, True, True, Event.AT_TARGET, False, True)]
    assert ev.target is ws and ev.currentTarget is None
    assert ev.eventPhase == Event.NONE and ev.composedPath() == []
    # An event can be dispatched again once the first dispatch ended.
    assert ws.dispatchEvent(ev) is True and len(seen) == 2


def test_handler_attribute_order(ws):
    order = []
    ws.addEventListener("open", lambda e: order.append("A"))
    ws.onopen = lambda e: order.append("H1")
    ws.addEventListener("open", lambda e: order.append("B"))
    ws.dispatchEvent(Event("open"))
    assert order == ["A", "H1", "B"]
    # Changing the value keeps the handler's place.
    order.clear()
    ws.onopen = lambda e: order.append("H2")
    ws.dispatchEvent(Event("open"))
    assert order == ["A", "H2", "B"]
    # None removes it; setting it again puts it last.
    order.clear()
    ws.onopen = None
    ws.dispatchEvent(Event("open"))
    assert order == ["A", "B"]
    ws.onopen = lambda e: order.append("H3")
    order.clear()
    ws.dispatchEvent(Event("open"))
    assert order == ["A", "B", "H3"]


def test_non_callable_handler_stores_none(ws):
    f = lambda e: None  # noqa: E731
    for name in ("onopen", "onmessage", "onerror", "onclose"):
        setattr(ws, name, f)
        assert getattr(ws, name) is f
        setattr(ws, name, "not callable")
        assert getattr(ws, name) is None
        setattr(ws, name, f)
        setattr(ws, name, 42)
        assert getattr(ws, name) is None


def test_handlers_for_each_type_only_see_their_type(ws):
    got = []
    ws.onopen = lambda e: got.append(("onopen", e.type))
    ws.onmessage = lambda e: got.append(("onmessage", e.type))
    ws.onerror = lambda e: got.append(("onerror", e.type))
    ws.onclose = lambda e: got.append(("onclose", e.type))
    for t in ("open", "message", "error", "close", "other"):
        ws.dispatchEvent(Event(t))
    assert got == [("onopen", "open"), ("onmessage", "message"), ("onerror", "error"),
                   ("onclose", "close")]


def test_duplicates_capture_and_remove(ws):
    got = []

    def f(e):
        got.append("f")

    ws.addEventListener("x", f)
    ws.addEventListener("x", f)
    ws.addEventListener("x", f, False)
    ws.addEventListener("x", f, {"capture": True})
    ws.dispatchEvent(Event("x"))
    assert got == ["f", "f"]
    got.clear()
    ws.removeEventListener("x", f, True)
    ws.dispatchEvent(Event("x"))
    assert got == ["f"]
    got.clear()
    ws.removeEventListener("x", f)
    ws.removeEventListener("x", f)
    ws.removeEventListener("x", None)
    ws.addEventListener("x", None)
    ws.dispatchEvent(Event("x"))
    assert got == []


def test_once_listener(ws):
    got = []
    ws.addEventListener("x", lambda e: got.append(1), once=True)
    ws.addEventListener("x", lambda e: got.append(2), {"once": True})
    ws.dispatchEvent(Event("x"))
    ws.dispatchEvent(Event("x"))
    assert got == [1, 2]


def test_listeners_added_or_removed_during_dispatch(ws):
    got = []

    def late(e):
        got.append("late")

    def second(e):
        got.append("second")

    def first(e):
        got.append("first")
        ws.addEventListener("x", late)
        ws.removeEventListener("x", second)

    ws.addEventListener("x", first)
    ws.addEventListener("x", second)
    ws.dispatchEvent(Event("x"))
    assert got == ["first"]
    got.clear()
    ws.dispatchEvent(Event("x"))
    assert got == ["first", "late"]


def test_stop_immediate_propagation(ws):
    got = []
    ws.addEventListener("x", lambda e: (got.append(1), e.stopImmediatePropagation()))
    ws.addEventListener("x", lambda e: got.append(2))
    ev = Event("x")
    ws.dispatchEvent(ev)
    assert got == [1]
    # The flags are reset at the end of dispatch.
    assert ev.cancelBubble is False


def test_stop_propagation_does_not_skip_same_target(ws):
    got = []
    ws.addEventListener("x", lambda e: (got.append(1), e.stopPropagation()))
    ws.addEventListener("x", lambda e: got.append(2))
    ws.dispatchEvent(Event("x"))
    assert got == [1, 2]


def test_prevent_default(ws):
    ws.addEventListener("c", lambda e: e.preventDefault())
    assert ws.dispatchEvent(Event("c", cancelable=True)) is False
    assert ws.dispatchEvent(Event("c")) is True
    ws.addEventListener("p", lambda e: e.preventDefault(), passive=True)
    assert ws.dispatchEvent(Event("p", cancelable=True)) is True
    e = Event("r", cancelable=True)
    e.returnValue = False
    assert e.defaultPrevented and e.returnValue is False


def test_handle_event_objects(ws):
    class Listener:
        def __init__(self):
            self.got = []

        def handleEvent(self, e):
            self.got.append(e.type)

    obj = Listener()
    ws.addEventListener("x", obj)
    ws.dispatchEvent(Event("x"))
    assert obj.got == ["x"]
    ws.removeEventListener("x", obj)
    ws.dispatchEvent(Event("x"))
    assert obj.got == ["x"]
    with pytest.raises(TypeError):
        ws.addEventListener("x", 42)


def test_listener_exceptions_are_reported_and_dispatch_goes_on(ws, unraisable):
    got = []

    def bad(e):
        raise ValueError("from a listener")

    ws.addEventListener("x", bad)
    ws.onmessage = bad
    ws.addEventListener("x", lambda e: got.append("after"))
    assert ws.dispatchEvent(Event("x")) is True
    ws.dispatchEvent(MessageEvent("message"))
    assert got == ["after"]
    assert [u[:2] for u in unraisable] == [(ValueError, "from a listener")] * 2
    assert unraisable[0][2] is bad


def test_keyboard_interrupt_in_dispatch_event_propagates(ws):
    got = []

    def interrupt(e):
        raise KeyboardInterrupt

    ws.addEventListener("x", interrupt)
    ws.addEventListener("x", lambda e: got.append(1))
    ev = Event("x")
    with pytest.raises(KeyboardInterrupt):
        ws.dispatchEvent(ev)
    assert got == [] and ev.eventPhase == Event.NONE
    # The event is no longer being dispatched.
    ws.removeEventListener("x", interrupt)
    ws.dispatchEvent(ev)
    assert got == [1]


def test_trusted_events_from_the_socket(server):
    ws = WebSocket(server.url("/close?code=4001&reason=bye"))
    seen = []

    def listener(e):
        seen.append((type(e), e.type, e.isTrusted, e.eventPhase, e.target is ws,
                     e.currentTarget is ws, e.bubbles, e.cancelable))
        e.preventDefault()

    for kind in ("open", "close"):
        ws.addEventListener(kind, listener)
    assert ws.wait_closed(10)
    assert seen == [
        (Event, "open", True, 2, True, True, False, False),
        (CloseEvent, "close", True, 2, True, True, False, False),
    ]


def test_error_event_carries_a_message(server):
    ws = WebSocket(server.url("/raw?status=404"))
    got = []
    ws.onerror = lambda e: got.append((type(e), e.type, e.message))
    assert ws.wait_closed(10)
    assert got[0][0] is ErrorEvent and got[0][1] == "error"
    assert "404" in got[0][2]
    assert isinstance(got[0][0]("error"), Event)


def test_add_event_listener_argument_errors(ws):
    with pytest.raises(TypeError):
        ws.addEventListener(5, lambda e: None)
    with pytest.raises(TypeError):
        ws.addEventListener("x", lambda e: None, "capture")
    with pytest.raises(TypeError):
        ws.addEventListener("x")
