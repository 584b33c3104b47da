"""git argv: the read-only queries infra/checkout.py runs (what they ask is core/context.py's STATUS_ARGS,
TAGS_ARGS, REMOTE_ARGS, which its parsers read)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from atbb_kit.commands.base import Command, argv

GIT_HINT = "install git (apt-get install git, or apk add git)"


def git(cwd: Path, args: Sequence[str]) -> Command:
    return Command(argv("git", list(args)), cwd=cwd, install_hint=GIT_HINT)
