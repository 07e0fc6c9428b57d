"""send_stream(): one message sent in pieces, against the websockets server (an independent
peer: it reassembles, inflates and echoes) and a scripted wsproto peer (to see the frames)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

import trio_ws
from trio_ws import WSClosedError, WSMessageTypeError

from .servers import open_websockets_server

OpenPair = Any  # the open_pair fixture (see conftest.py)
GUARD = 5.0


async def slowly(chunks: list[Any], pause: float = 0.01) -> AsyncIterator[Any]:
    for chunk in chunks:
        await trio.sleep(pause)
        yield chunk


@pytest.mark.parametrize("compress", [0, 15])
async def test_pieces_arrive_as_one_message(compress: int) -> None:
    """The websockets server reassembles (and inflates) the fragments into one message."""
    text_chunks = ["héllo ", "wörld ", "x" * 70_000]
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url(), compress=compress) as ws:
                await ws.send_stream(text_chunks)
                assert await ws.receive_str() == "".join(text_chunks)
                await ws.send_stream(slowly([b"\x00" * 1000, b"\x01", bytearray(b"\x02")]))
                assert await ws.receive_bytes() == b"\x00" * 1000 + b"\x01\x02"
                await ws.send_stream([])
                assert await ws.receive_bytes() == b""
                stats = ws.statistics()
    assert stats.messages_out == 3
    assert stats.frames_out >= 3 + 1 + 3 + 1 + 1  # a frame per chunk, then the FIN one


async def test_the_frames_on_the_wire(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    async with open_pair(nursery) as (ws, peer):
        await ws.send_stream(["ab", "cd"])
        events = [await peer.next_event() for _ in range(3)]
    assert events == [
        TextMessage("ab", frame_finished=True, message_finished=False),
        TextMessage("cd", frame_finished=True, message_finished=False),
        TextMessage("", frame_finished=True, message_finished=True),
    ]


async def test_no_data_message_interleaves_but_pongs_do(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Another task's send waits for the end of the message; a ping of the server is
    answered between the fragments."""
    async with open_pair(nursery) as (ws, peer):

        async def chunks() -> AsyncIterator[bytes]:
            yield b"one"
            await peer.send(Ping(b"are you there"))
            await trio.sleep(1)  # the pong goes out meanwhile
            yield b"two"

        async def other() -> None:
            await trio.sleep(0.5)
            await ws.send_str("other")

        nursery.start_soon(other)
        await ws.send_stream(chunks())
        events = [await peer.next_event() for _ in range(5)]
    assert events == [
        BytesMessage(b"one", frame_finished=True, message_finished=False),
        Pong(b"are you there"),
        BytesMessage(b"two", frame_finished=True, message_finished=False),
        BytesMessage(b"", frame_finished=True, message_finished=True),
        TextMessage("other"),
    ]


@pytest.mark.parametrize(
    ("chunks", "error"),
    [
        (["text", b"bytes"], WSMessageTypeError),
        ([b"bytes", "text"], WSMessageTypeError),
        ([b"ok", 42], WSMessageTypeError),
        (["ok", "\udcff"], trio_ws.InvalidArgument),
    ],
)
async def test_a_started_message_that_fails_closes_with_1011(
    open_pair: OpenPair, nursery: trio.Nursery, chunks: list[Any], error: type[Exception]
) -> None:
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(error):
            await ws.send_stream(chunks)
        await peer.next_event()  # the first fragment
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert (close.code, close.reason) == (1011, "message cut short")
        with pytest.raises(WSClosedError):
            await ws.send_str("after")


async def test_a_bad_first_chunk_sends_nothing(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(WSMessageTypeError, match="not int"):
            await ws.send_stream([1])
        await ws.send_str("still usable")
        assert await peer.next_event() == TextMessage("still usable")


async def test_cancelled_in_the_middle_closes_with_1011(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):
        with trio.move_on_after(0.5) as scope:
            await ws.send_stream(slowly([b"a", b"b"], pause=0.4))
        assert scope.cancelled_caught
        assert await peer.next_event() == BytesMessage(
            b"a", frame_finished=True, message_finished=False
        )
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1011


async def test_an_iterator_that_raises(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    class Broken(Exception):
        pass

    def chunks() -> Any:
        yield "part"
        raise Broken

    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(Broken):
            await ws.send_stream(chunks())
        await peer.next_event()
        assert (await peer.next_event()).code == 1011  # type: ignore[attr-defined]


async def test_pieces_wait_for_the_writer_and_are_logged(
    autojump_clock: trio.testing.MockClock,
    open_pair: OpenPair,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Backpressure applies to each piece (a peer that reads nothing makes the second wait);
    each fragment is logged at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_pair(nursery, lockstep=True) as (ws, _peer):
        with trio.move_on_after(5) as scope:
            await ws.send_stream([b"x" * 100_000, b"y" * 100_000])
        assert scope.cancelled_caught  # the second piece waited for the writer
        assert ws.statistics().messages_out == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("> BINARY more 65536 bytes" in line for line in lines)  # max_frame_size
    assert any("> CONT more 34464 bytes" in line for line in lines)


async def test_a_whole_stream_is_logged(
    open_pair: OpenPair, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_pair(nursery) as (ws, peer):
        await ws.send_stream(["a"])
        assert await peer.next_event() == TextMessage(
            "a", frame_finished=True, message_finished=False
        )
    lines = [r.getMessage() for r in caplog.records]
    assert f"[{ws.id}] > TEXT more 1 bytes b'a'" in lines
    assert f"[{ws.id}] > CONT fin 0 bytes b''" in lines
