"""The `created` label of a build: pure, given what the environment and git said (infra/checkout.py asks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime


def created_timestamp(environ: Mapping[str, str], commit_time: str = "") -> str:
    """RFC 3339 `created` label: SOURCE_DATE_EPOCH, else the commit time (Unix seconds), else now.

    The commit time keeps two builds of one commit byte-identical in their labels, so a rebuild with
    nothing changed reuses every layer and yields the same image id.
    """
    if environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        stamp = datetime.fromtimestamp(int(environ["SOURCE_DATE_EPOCH"]), tz=UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = datetime.fromtimestamp(int(commit_time), tz=UTC) if commit_time.isdigit() else datetime.now(tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
