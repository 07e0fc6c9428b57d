"""receive_stream(): one message as it arrives, piece by piece, against the websockets server
(an independent peer that fragments, compresses and sends big frames) and a scripted peer
(to control what arrives when)."""

from __future__ import annotations

import os
from typing import Any, Final

import pytest
import trio
import trio.testing
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

import trio_ws
from trio_ws import WSClosedError, WSMessageTypeError, WSMsgType, WSTimeoutError

from .servers import OP_BINARY, OP_CONT, OP_TEXT, frame, open_websockets_server

OpenPair = Any  # the open_pair fixture (see conftest.py)
GUARD: Final = 10.0


async def collect(stream: trio_ws.MessageStream) -> list[Any]:
    return [piece async for piece in stream]


# ---------------------------------------------------------------------------------------------
# against the websockets server


@pytest.mark.parametrize("compress", [0, 15])
async def test_a_big_message_arrives_in_pieces(compress: int) -> None:
    """A 3 MiB BINARY message (one frame from the server) comes as many pieces, inflated when
    compressed, joined equal to the message; a TEXT echo of multi-byte characters comes as
    str pieces that each decode on their own."""
    data = os.urandom(3 * 1024 * 1024)
    text = "é€😀" * 100_000
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url("/echo"), compress=compress) as ws:
                await ws.send_bytes(data)
                async with ws.receive_stream() as stream:
                    assert stream.type is WSMsgType.BINARY
                    pieces = await collect(stream)
                await ws.send_str(text)
                async with ws.receive_stream() as stream:
                    assert stream.type is WSMsgType.TEXT
                    texts = await collect(stream)
                await ws.send_str("after")
                assert await ws.receive_str() == "after"
                stats = ws.statistics()
    assert len(pieces) > 3
    assert all(isinstance(p, bytes) and p for p in pieces)
    assert b"".join(pieces) == data
    assert all(isinstance(t, str) and t for t in texts)
    assert "".join(texts) == text
    assert stats.messages_in == 3  # a streamed message counts once


async def test_the_servers_fragments_are_the_pieces() -> None:
    """The websockets server's /fragments sends "fragmented" in three frames."""
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url("/fragments")) as ws:
                # Wait until both messages are there: a queued message streams all the same.
                with trio.move_on_after(0.5):
                    await ws.ping()
                async with ws.receive_stream() as stream:
                    text = await collect(stream)
                async with ws.receive_stream() as stream:
                    binary = await collect(stream)
    assert "".join(text) == "fragmented"
    assert b"".join(binary) == b"bytes"


# ---------------------------------------------------------------------------------------------
# against a scripted peer


async def test_pieces_come_before_the_message_ends(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Entering returns with the first fragment while the rest has not been sent; each piece
    comes as it arrives."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(BytesMessage(data=b"one", message_finished=False))
        async with ws.receive_stream() as stream:
            assert stream.type is WSMsgType.BINARY
            assert await stream.__anext__() == b"one"
            await peer.send(BytesMessage(data=b"two", message_finished=False))
            assert await stream.__anext__() == b"two"
            await peer.send(BytesMessage(data=b"", message_finished=True))
            assert await collect(stream) == []
        await peer.send(TextMessage(data="next"))
        assert await ws.receive_str() == "next"


async def test_a_character_cut_between_frames_is_never_split(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """UTF-8 is checked and decoded incrementally: a character cut between frames comes whole
    in the next piece."""
    euro = "€".encode()
    async with open_pair(nursery) as (ws, peer):
        await peer.send_raw(frame(OP_TEXT, b"a" + euro[:1], fin=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == "a"
            await peer.send_raw(frame(OP_CONT, euro[1:], fin=False))
            await peer.send_raw(frame(OP_CONT, b"b", fin=True))
            assert await collect(stream) in (["€b"], ["€", "b"])  # as the reads cut it


async def test_invalid_utf8_fails_as_it_arrives(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """An invalid byte fails the connection (1007) when it arrives; the stream raises."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send_raw(frame(OP_TEXT, b"ok", fin=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == "ok"
            await peer.send_raw(frame(OP_CONT, b"\xff", fin=True))
            with pytest.raises(WSClosedError):
                await stream.__anext__()
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert ws.close_code == 1007


async def test_max_msg_size_applies(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A streamed message is bounded like any other: 1009 when a header passes the limit."""
    async with open_pair(nursery, max_msg_size=10) as (ws, peer):
        await peer.send_raw(frame(OP_BINARY, b"12345678", fin=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == b"12345678"
            await peer.send_raw(frame(OP_CONT, b"90ab", fin=True))
            with pytest.raises(WSClosedError) as info:
                await stream.__anext__()
        assert info.value.code == 1009
        assert (await ws.receive()).type is WSMsgType.ERROR


async def test_leaving_early_drops_the_rest_and_keeps_the_connection(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Leave after the first piece: the rest is dropped as it arrives (before and after the
    block ends), and the next message is received as usual, by either API."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(BytesMessage(data=b"first", message_finished=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == b"first"
            await peer.send(BytesMessage(data=b"queued", message_finished=False))
            await trio.testing.wait_all_tasks_blocked()
        await peer.send(BytesMessage(data=b"later", message_finished=False))
        await peer.send(BytesMessage(data=b"last", message_finished=True))
        await peer.send(TextMessage(data="next"))
        assert await ws.receive_str() == "next"
        await peer.send(BytesMessage(data=b"x", message_finished=False))
        async with ws.receive_stream() as stream:
            await peer.send(BytesMessage(data=b"y", message_finished=True))
            assert await collect(stream) == [b"x", b"y"]
        # Left early again, and the next stream skips what is left of it.
        await peer.send(BytesMessage(data=b"a", message_finished=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == b"a"
        await peer.send(BytesMessage(data=b"b", message_finished=True))
        await peer.send(BytesMessage(data=b"c", message_finished=True))
        async with ws.receive_stream() as stream:
            assert await collect(stream) == [b"c"]


async def test_a_queued_or_whole_message_is_one_piece(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A message already queued whole, or arriving whole in one read, is a stream of one
    piece; an empty one has none."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="queued"))
        await peer.send(BytesMessage(data=b""))
        await trio.testing.wait_all_tasks_blocked()
        async with ws.receive_stream() as stream:
            assert await collect(stream) == ["queued"]
        async with ws.receive_stream() as stream:
            assert await collect(stream) == []
        await peer.send(TextMessage(data="whole"))
        async with ws.receive_stream() as stream:
            assert await collect(stream) == ["whole"]
        await peer.send(TextMessage(data="then as usual"))
        assert await ws.receive_str() == "then as usual"


async def test_a_message_begun_before_the_stream_comes_with_what_it_had(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """The message already half assembled when receive_stream() is entered: its first piece
    is everything so far, the rest streams, for TEXT and for a big frame in its sink."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send_raw(frame(OP_TEXT, b"ab", fin=False) + frame(OP_CONT, b"cd", fin=False))
        await trio.testing.wait_all_tasks_blocked()
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == "abcd"
            await peer.send_raw(frame(OP_CONT, b"ef", fin=True))
            assert await collect(stream) == ["ef"]
        big = os.urandom(300_000)  # a frame that spans reads gets a sink
        whole = frame(OP_BINARY, big)
        await peer.send_raw(whole[:100_000])
        await trio.testing.wait_all_tasks_blocked()
        async with ws.receive_stream() as stream:
            first = await stream.__anext__()
            await peer.send_raw(whole[100_000:])
            rest = await collect(stream)
        assert first == big[: len(first)]
        assert len(first) == 100_000 - 10
        assert first + b"".join(rest) == big


async def test_close_in_the_middle(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """The server closes before the message ends: the stream raises WSClosedError, and
    receive() still gets the CLOSE."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(BytesMessage(data=b"part", message_finished=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == b"part"
            await peer.send(CloseConnection(code=1001, reason="going"))
            with pytest.raises(WSClosedError) as info:
                await stream.__anext__()
        assert info.value.code == 1001
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1001, "going")


async def test_pings_between_the_pieces_wait_for_receive(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """With autoping=False, a ping between the fragments is kept for the next receive()."""
    async with open_pair(nursery, autoping=False) as (ws, peer):
        await peer.send(TextMessage(data="a", message_finished=False))
        async with ws.receive_stream() as stream:
            await peer.send(Ping(payload=b"p"))
            await peer.send(TextMessage(data="b", message_finished=True))
            assert await collect(stream) == ["a", "b"]
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.PING, b"p")


async def test_not_a_data_message(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Entering on a CLOSE (or anything but TEXT and BINARY) raises WSMessageTypeError with
    the message; receive() is refused while a block is open, and loses nothing."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="still", message_finished=False))
        async with ws.receive_stream() as stream:
            with pytest.raises(RuntimeError, match="receive_stream"):
                await ws.receive()
            await peer.send(TextMessage(data=" here", message_finished=True))
            assert await collect(stream) == ["still", " here"]
        await peer.send(CloseConnection(code=1000))
        with pytest.raises(WSMessageTypeError) as info:
            async with ws.receive_stream():
                pass  # pragma: no cover - not entered
        assert info.value.msg.type is WSMsgType.CLOSE


async def test_a_timed_out_stream_loses_nothing(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Entering times out (ws_receive or timeout=): nothing was asked of the next message,
    which receive() then gets whole; a piece's wait times out and the stream goes on."""
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(WSTimeoutError):
            async with ws.receive_stream(timeout=1):
                pass  # pragma: no cover - not entered
        await peer.send(BytesMessage(data=b"1", message_finished=False))
        await peer.send(BytesMessage(data=b"2", message_finished=True))
        assert await ws.receive_bytes() == b"12"
        await peer.send(BytesMessage(data=b"a", message_finished=False))
        async with ws.receive_stream(timeout=1) as stream:
            assert await stream.__anext__() == b"a"
            with pytest.raises(WSTimeoutError):
                await stream.__anext__()
            await peer.send(BytesMessage(data=b"b", message_finished=True))
            assert await collect(stream) == [b"b"]


async def test_a_stream_nobody_took_is_received_whole(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """If a stream was asked for and its message began, but the block was never entered
    (cancelled at that instant), receive() joins the pieces: nothing is lost, even when that
    receive() is itself cancelled half-way; then a receive_stream() goes on from there."""
    async with open_pair(nursery) as (ws, peer):
        ws.receive_stream()  # makes the connection's piece keeping
        assert ws._core.stream_message() is None  # what an entering block asks, then cancelled
        await peer.send(BytesMessage(data=b"1", message_finished=False))
        await peer.send(BytesMessage(data=b"2", message_finished=True))
        assert await ws.receive() == trio_ws.WSMessage(WSMsgType.BINARY, b"12", None)

        ws._core.stream_message()
        await peer.send(TextMessage(data="a", message_finished=False))
        with trio.move_on_after(1) as scope:
            await ws.receive()  # took "a", waits for the rest: cancelled
        assert scope.cancelled_caught
        await peer.send(TextMessage(data="b", message_finished=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == "a"
            assert await stream.__anext__() == "b"
            await peer.send(TextMessage(data="c", message_finished=True))
            assert await collect(stream) == ["c"]


async def test_edges(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A second block inside one is refused; a ping held by a stream is what the next block
    meets; a stream cut by our own close() raises; a half-joined orphan cut by the server's
    close frame is dropped and receive() gets the CLOSE."""
    async with open_pair(nursery, autoping=False) as (ws, peer):
        await peer.send(TextMessage(data="a", message_finished=False))
        async with ws.receive_stream() as stream:
            with pytest.raises(RuntimeError, match="another receive_stream"):
                async with ws.receive_stream():
                    pass  # pragma: no cover - not entered
            await peer.send(Ping(payload=b"p"))
            await peer.send(TextMessage(data="b", message_finished=True))
            assert await collect(stream) == ["a", "b"]
        with pytest.raises(WSMessageTypeError) as info:
            async with ws.receive_stream():
                pass  # pragma: no cover - not entered
        assert info.value.msg == trio_ws.WSMessage(WSMsgType.PING, b"p", None)

        ws._core.stream_message()  # an orphan (see the test above), cut by the close frame
        await peer.send(TextMessage(data="x", message_finished=False))
        with trio.move_on_after(1):
            await ws.receive()
        await peer.send(CloseConnection(code=1000))
        assert (await ws.receive()).type is WSMsgType.CLOSE
        assert ws._rx is not None
        assert ws._rx.partial is None

    async with open_pair(nursery) as (ws, peer):
        await peer.send(BytesMessage(data=b"1", message_finished=False))
        async with ws.receive_stream() as stream:
            assert await stream.__anext__() == b"1"
            nursery.start_soon(ws.close)
            with pytest.raises(WSClosedError):
                await stream.__anext__()
