"""Glue between the pure tag rules and the world: read the build context once, compute the plan."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from atbb_kit.core.config import Config


def created_timestamp(root: Path, environ=os.environ) -> str:
    """RFC 3339 `created` label: SOURCE_DATE_EPOCH, else the commit time, else now.

    The commit time keeps two builds of one commit byte-identical in their labels, so a rebuild with
    nothing changed reuses every layer and yields the same image id.
    """
    if environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        stamp = datetime.fromtimestamp(int(environ["SOURCE_DATE_EPOCH"]), tz=UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    stamp = datetime.fromtimestamp(int(out), tz=UTC) if out.isdigit() else datetime.now(tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_for(cfg: Config, environ=os.environ):
    """The TagPlan for this checkout (or this GitHub Actions run)."""
    from atbb_kit.core.context import read_context
    from atbb_kit.core.tags import compute

    ctx = read_context(environ, cfg.root())
    return compute(cfg.image, cfg.release, ctx, created_timestamp(cfg.root(), environ))
