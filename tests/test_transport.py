"""The transport helpers that write and close without a trip through the scheduler."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_ws._transport import (
    close_now,
    read_now,
    readable_socket,
    receive_into,
    socket_of,
    write_now,
)


def socket_stream_pair() -> tuple[trio.SocketStream, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    return trio.SocketStream(trio.socket.from_stdlib_socket(ours)), theirs


def closed_socket() -> trio.socket.SocketType:
    """A socket closed by us (its descriptor is -1)."""
    stream, peer = socket_stream_pair()
    peer.close()
    stream.socket.close()
    return stream.socket


@asynccontextmanager
async def reset_connection() -> AsyncIterator[trio.socket.SocketType]:
    """A TCP client socket whose server closed with SO_LINGER 0 (RST): reading it fails with
    ECONNRESET; it is readable already."""
    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = trio.socket.socket()
        with client:
            await client.connect(listener.getsockname())
            server, _ = await listener.accept()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            server.close()
            await trio.lowlevel.wait_readable(client)
            yield client


async def test_write_now_writes_what_the_socket_takes() -> None:
    """On a TCP-like socket the bytes go out at once; a full buffer takes nothing (0)."""
    stream, peer = socket_stream_pair()
    with peer:
        assert write_now(stream, b"request") == 7
        assert peer.recv(100) == b"request"
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        while write_now(stream, b"x" * 65536):
            pass  # fill the buffers: the peer does not read
        assert write_now(stream, b"more") == 0
        await close_now(stream)


async def test_write_now_leaves_other_streams_to_send_all() -> None:
    """TLS or a user's stream: write_now writes nothing, the caller uses send_all."""
    client, _server = trio.testing.memory_stream_pair()
    assert write_now(client, b"request") == 0


async def test_write_now_raises_when_the_socket_failed() -> None:
    """A socket whose peer is gone raises OSError (the caller turns it into our error)."""
    stream, peer = socket_stream_pair()
    peer.close()
    with pytest.raises(OSError):
        write_now(stream, b"request")
    await close_now(stream)


async def test_close_now_closes_sockets_and_other_streams() -> None:
    """A socket stream is closed at once; other streams through aclose_forcefully."""
    stream, peer = socket_stream_pair()
    with peer:
        await close_now(stream)
        assert stream.socket.fileno() == -1
        assert peer.recv(10) == b""
    client, server = trio.testing.memory_stream_pair()
    await close_now(client)
    assert await server.receive_some() == b""


async def test_receive_into_reads_into_the_view_and_reports_eof() -> None:
    stream, peer = socket_stream_pair()
    sock = socket_of(stream)
    assert sock is stream.socket
    buf = bytearray(10)
    with peer:
        peer.send(b"abc")
        assert await receive_into(sock, memoryview(buf)[2:]) == 3
        assert buf[2:5] == b"abc"
        peer.shutdown(socket.SHUT_WR)
        assert await receive_into(sock, memoryview(buf)) == 0
    await close_now(stream)
    client, _server = trio.testing.memory_stream_pair()
    assert socket_of(client) is None


async def test_receive_into_translates_errors_as_receive_some_does() -> None:
    """A closed socket: ClosedResourceError; a reset connection: BrokenResourceError."""
    with pytest.raises(trio.ClosedResourceError):
        await receive_into(closed_socket(), memoryview(bytearray(10)))
    async with reset_connection() as client:
        with pytest.raises(trio.BrokenResourceError) as info:
            await receive_into(client, memoryview(bytearray(10)))
        assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_read_now_reads_what_is_there_without_waiting() -> None:
    """None while the socket has nothing, its bytes when it has some, b"" at EOF."""
    stream, peer = socket_stream_pair()
    sock = readable_socket(stream)
    assert sock is stream.socket
    with peer:
        assert read_now(sock, 10) is None
        peer.send(b"abcdef")
        assert read_now(sock, 4) == b"abcd"
        assert read_now(sock, 4) == b"ef"
        peer.shutdown(socket.SHUT_WR)
        assert read_now(sock, 4) == b""
    await close_now(stream)
    client, _server = trio.testing.memory_stream_pair()
    assert readable_socket(client) is None


def test_readable_socket_is_none_where_read_cannot_read_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Windows read(2) does not take a socket: the reader uses receive_some there."""
    monkeypatch.setattr("trio_ws._transport._READ_FD", False)
    stream, peer = socket_stream_pair()
    with peer, stream.socket:
        assert readable_socket(stream) is None


async def test_read_now_translates_errors_as_receive_some_does() -> None:
    """A closed socket (descriptor -1, never a reused number): ClosedResourceError; a reset
    connection: BrokenResourceError."""
    with pytest.raises(trio.ClosedResourceError):
        read_now(closed_socket(), 10)
    async with reset_connection() as client:
        with pytest.raises(trio.BrokenResourceError) as info:
            read_now(client, 10)
        assert isinstance(info.value.__cause__, ConnectionResetError)
