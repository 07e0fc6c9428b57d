"""The CLI over HTTP/2: ``--http2`` (when the server offers it) and ``--http2-only``, against
hypercorn (h2c) and trio_ws's own HTTP/1.1 test server."""

from __future__ import annotations

import pytest

from trio_ws.__main__ import main
from trio_ws._cli_session import ExitStatus
from trio_ws.testing import open_test_server

from .h2servers import open_hypercorn
from .test_cli import config, run_client

ECHO = [(None, "over h2\n"), ("< TEXT 'over h2'", "")]


def test_http2_options_parse() -> None:
    """No flag: HTTP/1.1; --http2: HTTP/2 when offered; --http2-only: required; not both."""
    assert config("ws://x/").options["http2"] is False
    assert config("ws://x/", "--http2").options["http2"] is True
    assert config("--http2-only", "ws://x/").options["http2"] == "require"
    with pytest.raises(SystemExit) as info:
        main(["ws://x/", "--http2", "--http2-only"])
    assert info.value.code == ExitStatus.USAGE


@pytest.mark.parametrize("flag", ["--http2", "--http2-only"])
async def test_connected_over_http2(flag: str) -> None:
    """hypercorn offers WebSockets over HTTP/2: the '= connected' line says so, and messages
    echo over it."""
    async with open_hypercorn() as server:
        status, lines = await run_client([server.url(), flag], ECHO)
    assert status == ExitStatus.OK
    assert lines[0] == f"= connected to {server.url()} over HTTP/2"
    assert "< TEXT 'over h2'" in lines


async def test_http2_falls_back_to_http11() -> None:
    """--http2 to a server without HTTP/2: the WebSocket runs over HTTP/1.1, and the
    '= connected' line does not claim HTTP/2."""
    async with open_test_server() as server:
        status, lines = await run_client([server.url, "--http2"], ECHO)
    assert status == ExitStatus.OK
    assert lines[0] == f"= connected to {server.url}"
    assert "< TEXT 'over h2'" in lines


async def test_http2_only_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--http2-only to a server without HTTP/2: the handshake is refused (status 6) and the
    error line says why."""
    async with open_test_server() as server:
        status, lines = await run_client([server.url, "--http2-only"])
    assert status == ExitStatus.REJECTED
    assert lines == []
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "does not speak HTTP/2" in err


async def test_verbose_says_http2(capsys: pytest.CaptureFixture[str]) -> None:
    """-v: the INFO record of the opened connection says HTTP/2; -vv: the response line of
    the handshake is HTTP/2's."""
    async with open_hypercorn() as server:
        status, _ = await run_client([server.url(), "--http2-only", "-vv"], ECHO)
    assert status == ExitStatus.OK
    err = capsys.readouterr().err
    assert f"connected to {server.url()} over HTTP/2 (" in err
    assert "< HTTP/2 200" in err
    assert "HTTP/1.1" not in err
