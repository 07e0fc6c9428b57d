"""trio_ws's wsproto extensions on their own: ClientDeflate both ways, MessageLimits' identity.

The behaviour through the protocol core (limits, bombs, close codes, RFC 7692 examples) is
tested in ``test_protocol.py``; here a bare wsproto client :class:`Connection` carries the
extension, so the paths the core never takes (fragmented sends) are exercised too.
"""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate

from trio_ws._extensions import ClientDeflate, MessageLimits, is_valid_close_code


def wsproto_pair(client_ext: ClientDeflate, **server_params: bool) -> tuple[Connection, Connection]:
    """A wsproto client carrying ``client_ext`` and a wsproto server with its PerMessageDeflate."""
    server_ext = PerMessageDeflate(**server_params)
    server_ext.finalize(server_ext.name)
    return (
        Connection(ConnectionType.CLIENT, extensions=[client_ext]),
        Connection(ConnectionType.SERVER, extensions=[server_ext]),
    )


def test_client_deflate_describes_its_parameters() -> None:
    """offer() and repr() show the negotiated parameters; it is enabled from the start."""
    ext = ClientDeflate(
        client_no_context_takeover=True,
        client_max_window_bits=10,
        server_no_context_takeover=True,
        server_max_window_bits=9,
    )
    assert ext.name == "permessage-deflate"
    assert ext.enabled()
    params = (
        "client_max_window_bits=10; server_max_window_bits=9; "
        "client_no_context_takeover; server_no_context_takeover"
    )
    assert ext.offer() == params
    assert repr(ext) == f"<ClientDeflate {params}>"
    assert ClientDeflate().offer() == "client_max_window_bits=15; server_max_window_bits=15"


@pytest.mark.parametrize("bits", [{"client_max_window_bits": 8}, {"server_max_window_bits": 16}])
def test_client_deflate_refuses_window_bits_out_of_range(bits: dict[str, int]) -> None:
    """Window bits outside 9..15 raise ValueError (zlib cannot do 8)."""
    with pytest.raises(ValueError, match="window bits must be from 9 to 15"):
        ClientDeflate(**bits)  # type: ignore[arg-type]


def test_message_limits_is_internal() -> None:
    """MessageLimits is always enabled and never offered."""
    ext = MessageLimits(max_msg_size=0, max_fragments=0, deflate=False)
    assert ext.enabled()
    assert ext.offer() is False
    assert ext.error is None
    assert ext.close is None


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        *[(999, False), (1000, True), (1003, True), (1004, False), (1006, False)],
        *[(1007, True), (1014, True), (1015, False), (2999, False), (3000, True)],
        *[(4999, True), (5000, False)],
    ],
)
def test_valid_close_codes(code: int, valid: bool) -> None:
    """The codes of RFC 6455 §7.4 and the IANA registry, at every boundary."""
    assert is_valid_close_code(code) is valid


@pytest.mark.parametrize("takeover", [True, False])
def test_fragmented_send_is_one_compressed_message(takeover: bool) -> None:
    """A message sent in fragments is compressed as one: RSV1 on the first frame only."""
    client, server = wsproto_pair(
        ClientDeflate(client_no_context_takeover=not takeover),
        client_no_context_takeover=not takeover,
    )
    for _ in range(3):
        first = client.send(TextMessage("abc " * 50, message_finished=False))
        last = client.send(TextMessage("xyz " * 50))
        # No ping between the fragments here: wsproto's server (1.3.2) cannot decode that.
        ping = client.send(Ping(b"after"))
        assert first[0] & 0x40
        assert not last[0] & 0x40
        assert not ping[0] & 0x40
        server.receive_data(first + last + ping)
        events = list(server.events())
        assert events[-1] == Ping(b"after")
        assert "".join(e.data for e in events if isinstance(e, TextMessage)) == (
            "abc " * 50 + "xyz " * 50
        )


def test_fragmented_send_can_go_uncompressed() -> None:
    """After send_next_uncompressed(), all frames of the next message have RSV1 clear and
    carry the data as it is; the message after that is compressed again."""
    ext = ClientDeflate()
    client, server = wsproto_pair(ext)
    ext.send_next_uncompressed()
    wire = client.send(BytesMessage(b"raw " * 10, message_finished=False))
    wire += client.send(BytesMessage(b"data"))
    assert not wire[0] & 0x40
    server.receive_data(wire)
    assert b"".join(e.data for e in server.events() if isinstance(e, BytesMessage)) == (
        b"raw " * 10 + b"data"
    )
    again = client.send(BytesMessage(b"zip " * 50))
    assert again[0] & 0x40
    server.receive_data(again)
    assert list(server.events()) == [BytesMessage(b"zip " * 50)]
