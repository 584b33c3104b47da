"""The kit's HTTP GET (atbb_kit/infra/http.py) against a loopback server: statuses, redirects, headers and
reading only the first bytes of a body."""

from __future__ import annotations

import http.server
import socket

import pytest

from atbb_kit.infra import http as httpc
from tests.loopback import serving

BIG = b"x" * 100_000


class Answers(http.server.BaseHTTPRequestHandler):
    """/ok 200 text, /big 100 kB, /gone 503 with a header, /moved 302 to /ok, /agent echoes the User-Agent."""

    def do_GET(self) -> None:
        routes = {
            "/ok": (200, {"Content-Type": "text/plain", "X-Atbb-Release": "r1"}, b"  hello\n  world  "),
            "/big": (200, {"Content-Type": "application/octet-stream"}, BIG),
            "/gone": (503, {"Content-Type": "application/json", "X-Atbb-Release": "r0"}, b'{"status": "starting"}'),
            "/moved": (302, {"Location": "/ok"}, b""),
            "/agent": (200, {}, self.headers.get("User-Agent", "").encode()),
        }
        status, headers, body = routes.get(self.path, (404, {}, b"no such path"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def base():
    with serving(Answers) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "body", "release"),
    [
        ("/ok", {}, 200, b"  hello\n  world  ", "r1"),
        ("/ok", {"limit": 7}, 200, b"  hello", "r1"),
        ("/big", {"limit": 200}, 200, b"x" * 200, None),
        ("/big", {}, 200, BIG, None),
        # An error status is an answer, limit included.
        ("/gone", {}, 503, b'{"status": "starting"}', "r0"),
        ("/gone", {"limit": 10}, 503, b'{"status":', "r0"),
        ("/nowhere", {}, 404, b"no such path", None),
        # A redirect is judged, not followed, unless asked.
        ("/moved", {}, 302, b"", None),
        ("/moved", {"follow_redirects": True}, 200, b"  hello\n  world  ", "r1"),
        ("/agent", {}, 200, b"atbb-kit", None),
        ("/agent", {"agent": "probe/1"}, 200, b"probe/1", None),
    ],
)
def test_get(base, path, kwargs, status, body, release) -> None:
    answer = httpc.get(base + path, **kwargs)
    assert (answer.status, answer.body, answer.headers.get("x-atbb-release")) == (status, body, release)


def test_answer_views(base) -> None:
    ok = httpc.get(base + "/ok")
    assert ok.text == "  hello\n  world  "
    assert ok.excerpt() == "hello world"
    assert ok.describe() == "HTTP 200 (text/plain): hello world"
    gone = httpc.get(base + "/gone")
    assert gone.json() == {"status": "starting"}
    assert gone.content_type == "application/json"


def test_nothing_listening_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(httpc.TRANSPORT_ERRORS):
            httpc.get(f"http://127.0.0.1:{port}/", timeout=2)
