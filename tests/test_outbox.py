"""The outbox alone: how our frames are queued and how the queue is handed over.

The mask key is all zeros (an injected ``mask_source``), so a frame reads as its header, four
zero bytes and the payload as it is. What may be sent when is the core's business
(tests/test_protocol.py); here every frame is accepted.
"""

from __future__ import annotations

import zlib

from trio_ws._deflate import ClientDeflate
from trio_ws._framing import BINARY, NO_STATUS, PING, PONG, TEXT
from trio_ws._outbox import JOIN_LIMIT, Outbox

ZERO_MASK = b"\0\0\0\0"


def zero_mask(n: int) -> bytes:
    return b"\0" * n


def test_control_frames_go_first_then_the_rest_in_call_order() -> None:
    """Pings and pongs wait apart and leave first; messages and close frames in call order;
    take() empties the outbox."""
    box = Outbox(zero_mask)
    box.message(TEXT, b"hi")
    box.control(PING, b"p")
    box.message(BINARY, b"\x01\x02", compress=False)
    box.control(PONG, b"")
    box.close(1000)
    expected = (
        b"\x89\x81" + ZERO_MASK + b"p"
        + b"\x8a\x80" + ZERO_MASK
        + b"\x81\x82" + ZERO_MASK + b"hi"
        + b"\x82\x82" + ZERO_MASK + b"\x01\x02"
        + b"\x88\x82" + ZERO_MASK + b"\x03\xe8"
    )  # fmt: skip
    assert box.size == len(expected)
    assert box.take() == expected
    assert (box.pieces, box.urgent, box.size, box.take()) == ([], None, 0, b"")


def test_one_frame_is_one_piece_taken_without_a_join() -> None:
    """A frame is one buffer (header, key, payload), and a lone one is handed over as it is."""
    box = Outbox(zero_mask)
    box.message(BINARY, b"abc")
    (piece,) = box.pieces
    assert piece == b"\x82\x83" + ZERO_MASK + b"abc"
    assert box.take() is piece
    box.control(PING, b"")
    assert box.urgent is not None
    (piece,) = box.urgent
    assert box.take() is piece


def test_take_urgent_takes_only_the_control_frames() -> None:
    """take_urgent() hands over the waiting pings and pongs joined, and leaves the rest."""
    box = Outbox(zero_mask)
    assert box.take_urgent() == b""
    box.message(BINARY, b"a")
    box.control(PONG, b"1")
    box.control(PING, b"2")
    rest = box.size - 2 * 7
    assert box.take_urgent() == b"\x8a\x81" + ZERO_MASK + b"1" + b"\x89\x81" + ZERO_MASK + b"2"
    assert (box.urgent, box.size) == (None, rest)
    box.control(PONG, b"")
    assert box.take_urgent() == b"\x8a\x80" + ZERO_MASK
    assert box.take() == b"\x82\x81" + ZERO_MASK + b"a"


def test_big_messages_go_out_in_frames_of_max_frame_size() -> None:
    """A payload over max_frame_size: frames of at most that size, the opcode on the first,
    CONTINUATION after, FIN on the last, one piece each, each with its own key; counted as
    one message and the other frames."""
    keys = iter(i.to_bytes(4, "big") for i in range(1, 100))
    box = Outbox(lambda n: next(keys), max_frame_size=4)
    box.trace = []
    box.message(BINARY, b"0123456789")
    box.message(TEXT, b"abcd")  # exactly the limit: one frame
    assert box.pieces == [
        b"\x02\x84\x00\x00\x00\x01" + b"0123"[:3] + bytes([ord("3") ^ 1]),
        b"\x00\x84\x00\x00\x00\x02" + b"456" + bytes([ord("7") ^ 2]),
        b"\x80\x82\x00\x00\x00\x03" + b"89",  # the key's 3 is on byte 4: none here
        b"\x81\x84\x00\x00\x00\x04" + b"abc" + bytes([ord("d") ^ 4]),
    ]
    assert (box.messages, box.other_frames, box.payload_bytes) == (2, 2, 14)
    assert box.trace == [
        (">", BINARY, False, False, 10, b"0123456789"),
        (">", 0, False, False, 4, b"4567"),
        (">", 0, True, False, 2, b"89"),
        (">", TEXT, True, False, 4, b"abcd"),
    ]


def test_a_compressed_message_is_split_after_compression() -> None:
    """With permessage-deflate the compressed payload is split; RSV1 on the first frame only,
    and the frames inflate to the message."""
    box = Outbox(zero_mask, ClientDeflate(), max_frame_size=16)
    message = bytes(range(256)) * 4
    box.message(BINARY, message)
    frames = box.pieces
    assert len(frames) > 1
    assert [f[0] for f in frames] == [0x42] + [0x00] * (len(frames) - 2) + [0x80]
    body = b"".join(f[2 + 4 :] for f in frames)
    assert all(len(f) == 2 + 4 + 16 for f in frames[:-1])
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(body + b"\x00\x00\xff\xff") == message


def test_fragments_bigger_than_max_frame_size_are_split_too() -> None:
    """A piece of a message sent in pieces is cut the same way; FIN only on the very last."""
    box = Outbox(zero_mask, max_frame_size=3)
    box.fragment(TEXT, b"abcde", False, first=True, last=False)
    box.fragment(TEXT, b"fghij", False, first=False, last=True)
    assert [(f[0], f[6:]) for f in box.pieces] == [
        (0x01, b"abc"),
        (0x00, b"de"),
        (0x00, b"fgh"),
        (0x80, b"ij"),
    ]
    assert (box.messages, box.other_frames) == (1, 3)


def test_close_frames_carry_code_and_reason_or_nothing_for_no_status() -> None:
    """A close frame is the code in 2 bytes and the UTF-8 reason; 1005 gives an empty one."""
    box = Outbox(zero_mask)
    box.close(1000, "bye")
    box.close(NO_STATUS)
    assert box.take() == (b"\x88\x85" + ZERO_MASK + b"\x03\xe8bye" + b"\x88\x80" + ZERO_MASK)


def test_each_frame_gets_its_own_mask_key() -> None:
    """mask_source(4) is asked once per frame and its key is used for that frame."""
    keys = iter([b"\x01\x02\x03\x04", b"\xff\xff\xff\xff"])
    box = Outbox(lambda n: next(keys))
    box.message(BINARY, b"\0\0")
    box.control(PONG, b"\0")
    assert box.take() == b"\x8a\x81\xff\xff\xff\xff\xff" + b"\x82\x82\x01\x02\x03\x04\x01\x02"


def test_compression_only_with_deflate_and_when_asked() -> None:
    """compress=True with permessage-deflate sets RSV1 and deflates; otherwise plain."""
    plain = Outbox(zero_mask)
    plain.message(TEXT, b"aaaa", compress=True)
    assert plain.take() == b"\x81\x84" + ZERO_MASK + b"aaaa"

    box = Outbox(zero_mask, ClientDeflate())
    box.message(TEXT, b"aaaa", compress=False)
    assert box.take() == b"\x81\x84" + ZERO_MASK + b"aaaa"
    box.message(TEXT, b"aaaa" * 100)
    data = box.take()
    assert data[0] == 0xC1  # FIN, RSV1, TEXT
    body = data[2 + 4 :]
    assert data[1] == 0x80 | len(body)
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(body + b"\x00\x00\xff\xff") == b"aaaa" * 100


def test_small_pieces_are_joined_into_one_buffer() -> None:
    """Below the join limit, take_pieces() hands over one buffer (or nothing)."""
    box = Outbox(zero_mask)
    assert box.take_pieces() == []
    box.message(BINARY, b"a")
    box.message(BINARY, b"b")
    assert box.take_pieces() == [b"\x82\x81" + ZERO_MASK + b"a" + b"\x82\x81" + ZERO_MASK + b"b"]
    assert box.size == 0


def test_big_frames_stay_on_their_own_between_joined_runs() -> None:
    """A frame of 64 KiB or more is its own piece; the small frames around it are joined, the
    control frames first."""
    big = b"B" * JOIN_LIMIT
    big_frame = b"\x82\xff" + JOIN_LIMIT.to_bytes(8, "big") + ZERO_MASK + big
    box = Outbox(zero_mask)
    box.message(BINARY, b"a")
    box.message(BINARY, big)
    box.message(BINARY, big)
    box.message(BINARY, b"b")
    box.control(PING, b"")
    size = box.size
    pieces = box.take_pieces()
    assert pieces == [
        b"\x89\x80" + ZERO_MASK + b"\x82\x81" + ZERO_MASK + b"a",
        big_frame,
        big_frame,
        b"\x82\x81" + ZERO_MASK + b"b",
    ]
    assert sum(map(len, pieces)) == size
    assert (box.pieces, box.size) == ([], 0)


def test_a_big_frame_first_or_last_leaves_no_empty_run() -> None:
    """When the outbox starts or ends with a big frame, no empty piece comes with it."""
    big = b"B" * JOIN_LIMIT
    big_frame = b"\x82\xff" + JOIN_LIMIT.to_bytes(8, "big") + ZERO_MASK + big
    box = Outbox(zero_mask)
    box.message(BINARY, big)
    box.message(BINARY, big)
    assert box.take_pieces() == [big_frame, big_frame]


def test_fragments_and_their_trace() -> None:
    """A message in pieces: TEXT/BINARY then CONTINUATION, FIN on the last, RSV1 on the first
    when compressed as one message; each frame traced while tracing is on."""
    outbox = Outbox(lambda n: ZERO_MASK, ClientDeflate())
    outbox.trace = []
    outbox.fragment(TEXT, b"ab", True, first=True, last=False)
    outbox.fragment(TEXT, b"cd", True, first=False, last=True)
    data = outbox.take()
    assert [t[:4] for t in outbox.trace] == [(">", TEXT, False, True), (">", 0, True, False)]
    assert (data[0], outbox.messages, outbox.other_frames) == (0x40 | TEXT, 1, 1)
    second = 2 + 4 + outbox.trace[0][4]
    assert data[second] == 0x80  # FIN, CONTINUATION, no RSV1
    decompressor = zlib.decompressobj(wbits=-15)
    payloads = [data[6:second], data[second + 6 :]]
    assert decompressor.decompress(b"".join(payloads) + b"\x00\x00\xff\xff") == b"abcd"
    plain = Outbox(lambda n: ZERO_MASK)
    plain.fragment(BINARY, b"x", True, first=True, last=False)
    assert plain.take()[:2] == bytes([BINARY, 0x80 | 1])
