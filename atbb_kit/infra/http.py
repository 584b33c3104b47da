"""HTTP GET for the kit's own probes (smoke's checks, bench's readiness): loopback and Docker networks only.

A redirect is an answer to judge, not something to follow, unless the caller asks to follow it; an HTTP
error status is an answer too (an `Http` with that status), never an exception. Network failures raise
OSError or http.client.HTTPException (`TRANSPORT_ERRORS`).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXCERPT = 200
# What a GET raises when nothing (or garbage) answered: the port is closed, reset, or timed out.
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Http:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def excerpt(self, limit: int = EXCERPT) -> str:
        # Whitespace collapsed so an HTML page still reads as one line in a terminal.
        text = " ".join(self.body.decode("utf-8", "replace").split())
        return text[:limit] + ("…" if len(text) > limit else "")

    def describe(self) -> str:
        return f"HTTP {self.status} ({self.content_type or 'no content type'}): {self.excerpt() or '(empty body)'}"

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECT = urllib.request.build_opener(_NoRedirect)
_FOLLOW = urllib.request.build_opener()


def get(
    url: str,
    *,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
    agent: str = "atbb-kit",
    follow_redirects: bool = False,
    limit: int | None = None,
) -> Http:
    """One GET. `limit`: read at most that many bytes of the body (a probe that shows only the start of an
    answer need not wait for the rest of a large one)."""
    req = urllib.request.Request(url, headers={"User-Agent": agent, **(headers or {})})  # noqa: S310 (local only)
    opener = _FOLLOW if follow_redirects else _NO_REDIRECT
    try:
        with opener.open(req, timeout=timeout) as resp:
            return _answer(resp.status, resp, limit)
    except urllib.error.HTTPError as err:
        return _answer(err.code, err, limit)


def _answer(status: int, resp: Any, limit: int | None) -> Http:
    body = resp.read() if limit is None else resp.read(limit)
    return Http(status, {k.lower(): v for k, v in resp.headers.items()}, body)
