"""The receive queue alone: ordering, cancel safety, timeouts, pause/resume, end of input."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws import WSMessage, WSMsgType, WSTimeoutError
from trio_ws._inbox import HIGH_BYTES, HIGH_MESSAGES, Inbox

from .scheduling import counting_steps


def text(data: str) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, data, None)


class Owner:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def _error_taken(self) -> None:
        self.calls.append("error taken")


def make_inbox() -> tuple[Inbox, list[str]]:
    owner = Owner()
    return Inbox(owner), owner.calls


async def test_messages_come_out_in_order() -> None:
    """Messages of several batches are taken in the order they were delivered."""
    inbox, _ = make_inbox()
    inbox.deliver([text("a"), text("b")])
    inbox.deliver([text("c")])
    assert [(await inbox.get(None)).data for _ in range(3)] == ["a", "b", "c"]


async def test_a_parked_get_is_woken_by_a_delivery(autojump_clock: trio.testing.MockClock) -> None:
    """A get waiting on an empty inbox returns the message the reader delivers later."""
    inbox, _ = make_inbox()
    async with trio.open_nursery() as nursery:

        async def deliver_later() -> None:
            await trio.sleep(5)
            inbox.deliver([text("late")])

        nursery.start_soon(deliver_later)
        assert (await inbox.get(None)).data == "late"
        assert trio.current_time() == 5


async def test_one_yield_per_batch_not_per_message() -> None:
    """Taking a batch of queued messages yields once per batch, not once per message."""
    inbox, _ = make_inbox()
    inbox.deliver([text(str(i)) for i in range(100)])
    with counting_steps() as counter:
        for _ in range(100):
            await inbox.get(None)
        assert counter.steps == 1
        inbox.deliver([text("a"), text("b")])
        await inbox.get(None)
        await inbox.get(None)
        assert counter.steps == 2


async def test_get_is_a_cancel_point_even_with_a_message_waiting() -> None:
    """A get in a cancelled scope raises Cancelled and takes nothing."""
    inbox, _ = make_inbox()
    inbox.deliver([text("kept")])
    with trio.CancelScope() as scope:
        scope.cancel()
        await inbox.get(None)
    assert scope.cancelled_caught
    assert (await inbox.get(None)).data == "kept"


async def test_a_cancelled_wait_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A get cancelled while parked takes nothing; the next get has the message."""
    inbox, _ = make_inbox()
    with trio.move_on_after(1):
        await inbox.get(None)
    inbox.deliver([text("after")])
    assert (await inbox.get(None)).data == "after"


async def test_timeout_raises_and_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """The timeout raises WSTimeoutError at exactly its time; a later message still arrives."""
    inbox, _ = make_inbox()
    with pytest.raises(WSTimeoutError, match="no message within 2"):
        await inbox.get(2)
    assert trio.current_time() == 2
    inbox.deliver([text("x")])
    assert (await inbox.get(2)).data == "x"


async def test_concurrent_get_is_an_error() -> None:
    """A second task calling get while one waits gets RuntimeError."""
    inbox, _ = make_inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.get, None)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="Concurrent call to receive"):
            await inbox.get(None)
        inbox.finish()


async def test_finish_delivers_the_rest_then_closed_forever() -> None:
    """After finish(), queued messages come first, then CLOSED on every call."""
    inbox, _ = make_inbox()
    inbox.deliver([text("last")])
    inbox.finish()
    assert (await inbox.get(None)).data == "last"
    assert (await inbox.get(None)).type is WSMsgType.CLOSED
    assert (await inbox.get(None)).type is WSMsgType.CLOSED


async def test_finish_wakes_a_waiting_get() -> None:
    """A get waiting when input ends returns CLOSED."""
    inbox, _ = make_inbox()
    async with trio.open_nursery() as nursery:
        got: list[WSMessage] = []

        async def wait() -> None:
            got.append(await inbox.get(None))

        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        inbox.finish()
    assert got[0].type is WSMsgType.CLOSED


async def test_discard_drops_the_queue_and_a_waiting_get_returns_closing() -> None:
    """discard() (close()) wakes a waiting get with CLOSING; later gets return CLOSED."""
    inbox, _ = make_inbox()
    got: list[WSMessage] = []
    async with trio.open_nursery() as nursery:

        async def wait() -> None:
            got.append(await inbox.get(None))

        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        inbox.discard()
    assert got[0].type is WSMsgType.CLOSING
    inbox.deliver([text("ignored")])
    assert inbox.discarded
    assert (await inbox.get(None)).type is WSMsgType.CLOSED


async def test_discard_drops_queued_messages() -> None:
    """Messages queued when the application closes are dropped."""
    inbox, _ = make_inbox()
    inbox.deliver([text("a")])
    inbox.discard()
    assert (await inbox.get(None)).type is WSMsgType.CLOSED


async def test_taking_an_error_calls_back() -> None:
    """The owner hears when the application takes the ERROR message, not before."""
    inbox, calls = make_inbox()
    inbox.deliver([text("before"), WSMessage(WSMsgType.ERROR, ValueError("x"), None)])
    await inbox.get(None)
    assert calls == []
    assert (await inbox.get(None)).type is WSMsgType.ERROR
    assert calls == ["error taken"]


@pytest.mark.parametrize(
    ("count", "size"), [(HIGH_MESSAGES, 1), (1, HIGH_BYTES)], ids=["messages", "bytes"]
)
async def test_full_pauses_the_reader_until_half_is_taken(count: int, size: int) -> None:
    """At the high mark the reader waits; it resumes once the queue is below half of it."""
    inbox, _ = make_inbox()
    payload = b"x" * size
    inbox.deliver([WSMessage(WSMsgType.BINARY, payload, None)] * count)
    assert inbox.full
    resumed: list[bool] = []
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            await inbox.wait_for_space()
            resumed.append(True)

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert inbox.paused
        taken = 0
        while not resumed:
            await inbox.get(None)
            taken += 1
            await trio.testing.wait_all_tasks_blocked()
    assert not inbox.paused
    assert taken == (count // 2 + 1 if count > 1 else 1)


async def test_the_heartbeat_waits_while_the_reader_is_paused() -> None:
    """wait_resumed() returns at once when not paused, and when the reader resumes."""
    inbox, _ = make_inbox()
    await inbox.wait_resumed()
    inbox.deliver([WSMessage(WSMsgType.BINARY, b"x", None)] * HIGH_MESSAGES)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.wait_for_space)
        await trio.testing.wait_all_tasks_blocked()

        async def heartbeat() -> None:
            await inbox.wait_resumed()
            order.append("resumed")

        nursery.start_soon(heartbeat)
        await trio.testing.wait_all_tasks_blocked()
        assert order == []
        inbox.discard()
    assert order == ["resumed"]
    assert not inbox.full  # a discarded inbox never pauses the reader


@pytest.mark.parametrize("limits", [{"max_queue": 1}, {"max_queue_bytes": 1}])
async def test_the_smallest_queue_still_resumes(
    limits: dict[str, int], autojump_clock: trio.testing.MockClock
) -> None:
    """max_queue=1 (or max_queue_bytes=1): half of the limit is 0, so "resume below half"
    never came and the reader stayed paused for good. It resumes once the queue is empty."""
    from trio_ws.testing import open_memory_pair

    async with open_memory_pair(**limits) as (ws, server):  # type: ignore[arg-type]
        for i in range(5):
            await server.send_text(f"m{i}")
        with trio.fail_after(60):  # virtual time: a reader that never resumes fails here
            assert [await ws.receive_str() for _ in range(5)] == [f"m{i}" for i in range(5)]
