"""The sans-I/O parts of WebSockets over HTTP/2: the extended CONNECT (RFC 8441) and the
close-frame watch, without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from trio_ws import InvalidArgument, WSServerHandshakeError
from trio_ws._closewatch import CloseWatch
from trio_ws._h2handshake import MAX_RESPONSE_HEADERS, H2Handshake
from trio_ws._offer import MAX_BODY_SIZE
from trio_ws._url import parse_url

from .servers import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, close_payload, frame
from .test_architecture import reachable

NEW_SANS_IO = ["_offer", "_h2handshake", "_closewatch"]


@pytest.mark.parametrize("module", NEW_SANS_IO)
def test_new_sans_io_modules_never_reach_trio(module: str) -> None:
    """The HTTP/2 handshake, the shared offer and the close watch never import trio."""
    external = reachable(module)
    assert "trio" not in external, f"{module} reaches trio: {external.get('trio')}"


def handshake(url: str = "wss://example.com:8443/chat?x=1", **options: Any) -> H2Handshake:
    return H2Handshake(parse_url(url), **options)


def test_request_is_an_extended_connect() -> None:
    """RFC 8441 §4: CONNECT with :protocol websocket, then the offer in lower case."""
    hs = handshake(protocols=["a", "b"], compress=12, origin="https://o", user_agent="ua")
    assert hs.request_headers() == [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat?x=1"),
        (b":authority", b"example.com:8443"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-protocol", b"a, b"),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits=12"),
        (b"origin", b"https://o"),
        (b"user-agent", b"ua"),
    ]


def test_host_header_becomes_authority_and_connection_headers_are_dropped() -> None:
    """A Host header gives :authority; connection-specific headers never go out."""
    hs = handshake(
        "ws://example.com/",
        headers=[("Host", "other.example"), ("Keep-Alive", "5"), ("X-A", "1")],
        user_agent=None,
    )
    headers = hs.request_headers()
    assert (b":scheme", b"http") in headers
    assert (b":authority", b"other.example") in headers
    assert (b"x-a", b"1") in headers
    assert not [name for name, _ in headers if name in (b"host", b"keep-alive")]


def test_offer_is_checked_before_anything() -> None:
    """The shared offer refuses what HTTP/1.1 refuses."""
    with pytest.raises(InvalidArgument):
        handshake(headers={"Sec-WebSocket-Key": "x"})


def test_200_accepts_with_the_negotiation() -> None:
    """A 200 with a subprotocol and deflate from the offer succeeds; no key is checked."""
    hs = handshake(protocols=["chat"], compress=15)
    hs.receive_headers(
        [
            (b":status", b"200"),
            (b":unknown-pseudo", b"ignored"),
            (b"sec-websocket-protocol", b"chat"),
            (b"sec-websocket-extensions", b"permessage-deflate; server_no_context_takeover"),
        ]
    )
    assert hs.done
    assert hs.succeeded
    assert not hs.in_body
    result = hs.result()
    assert result.subprotocol == "chat"
    assert result.deflate is not None
    assert result.deflate.server_no_context_takeover
    assert result.trailing_data == b""
    hs.receive_headers([(b":status", b"500")])  # a second block changes nothing
    hs.receive_data(b"ignored")
    hs.receive_eof()
    assert hs.result() is result


def test_subprotocol_not_offered_fails() -> None:
    """RFC 6455 §4.1 holds over HTTP/2 too: a subprotocol we did not offer fails."""
    hs = handshake(protocols=["chat"])
    hs.receive_headers([(b":status", b"200"), (b"sec-websocket-protocol", b"other")])
    with pytest.raises(WSServerHandshakeError, match="subprotocol"):
        hs.result()


def test_extension_not_offered_fails() -> None:
    hs = handshake()
    hs.receive_headers([(b":status", b"200"), (b"sec-websocket-extensions", b"x")])
    with pytest.raises(WSServerHandshakeError, match="did not offer"):
        hs.result()


def test_rejection_collects_the_body() -> None:
    """A 403 and its body (until END_STREAM) make the typed error."""
    hs = handshake()
    hs.receive_data(b"before the head: ignored")
    hs.receive_headers([(b":status", b"403"), (b"content-type", b"text/plain")])
    assert hs.in_body
    assert not hs.done
    hs.receive_data(b"go ")
    hs.receive_data(b"away")
    hs.receive_eof()
    with pytest.raises(WSServerHandshakeError) as info:
        hs.result()
    assert (info.value.status, info.value.body) == (403, b"go away")
    assert info.value.headers == [("content-type", "text/plain")]
    assert "the server answered 403, not 200: go away" in str(info.value)


def test_rejection_body_is_bounded() -> None:
    """The body kept is at most MAX_BODY_SIZE; the outcome is known when it is full."""
    hs = handshake()
    hs.receive_headers([(b":status", b"404")])
    hs.receive_data(b"x" * (MAX_BODY_SIZE + 10))
    assert hs.done
    with pytest.raises(WSServerHandshakeError) as info:
        hs.result()
    assert len(info.value.body) == MAX_BODY_SIZE


def test_finish_body_ends_a_slow_rejection() -> None:
    """The I/O layer's grace ran out: the rejection is reported with what arrived."""
    hs = handshake()
    hs.finish_body()  # before the head: nothing to finish
    assert not hs.done
    hs.receive_headers([(b":status", b"503")])
    hs.receive_data(b"busy")
    hs.finish_body()
    with pytest.raises(WSServerHandshakeError, match="503"):
        hs.result()


def test_stream_ended_without_response() -> None:
    hs = handshake()
    hs.receive_eof()
    with pytest.raises(WSServerHandshakeError, match="without a response"):
        hs.result()


@pytest.mark.parametrize("status", [b"", b"abc", b"99", b"600"])
def test_invalid_status(status: bytes) -> None:
    hs = handshake()
    hs.receive_headers([(b":status", status)] if status else [])
    with pytest.raises(WSServerHandshakeError, match="invalid :status"):
        hs.result()


def test_too_many_headers() -> None:
    hs = handshake()
    hs.receive_headers(
        [(b":status", b"200")] + [(b"x-%d" % i, b"v") for i in range(MAX_RESPONSE_HEADERS + 1)]
    )
    with pytest.raises(WSServerHandshakeError, match="headers"):
        hs.result()


# --------------------------------------------------------------------------------------------
# the close watch


def test_close_watch_finds_the_end_of_the_close_frame() -> None:
    """Frames of every length class, masked or not, fed in every chunk size: the watch
    reports the offset just past the close frame, and nothing after it."""
    for masked in (False, True):
        data = b"".join(
            [
                frame(OP_TEXT, b"hi", masked=masked),
                frame(OP_PING, b"", masked=masked),
                frame(OP_BINARY, b"x" * 300, masked=masked),
                frame(OP_BINARY, b"y" * 70_000, masked=masked),
                frame(OP_CLOSE, close_payload(1000, "bye"), masked=masked),
            ]
        )
        for step in (1, 2, 3, 7, 1000, len(data) + 8):
            watch = CloseWatch()
            stream = data + b"AFTER"
            kept = b""
            for i in range(0, len(stream), step):
                chunk = stream[i : i + step]
                kept += chunk[: watch.feed(chunk)]
                if watch.closed:
                    break
            assert watch.closed
            assert kept == data, (masked, step)
            assert watch.feed(b"more") == 4  # after the close: passes, stays closed


def test_close_watch_empty_close_frame() -> None:
    watch = CloseWatch()
    assert watch.feed(frame(OP_CLOSE) + b"z") == 2
    assert watch.closed


def test_close_watch_without_close() -> None:
    watch = CloseWatch()
    data = frame(OP_TEXT, b"a" * 200)
    assert watch.feed(data) == len(data)
    assert not watch.closed
