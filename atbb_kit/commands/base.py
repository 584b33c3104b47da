"""The data every command is made of: `Command` (argv, env, cwd, stdin, hints), `Secret` strings, `OneOff`.

Pure values: nothing here runs anything. `infra/runner.py` executes them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MASK = "***"


class Secret(str):
    """A string that never shows itself: printing, formatting and repr give ***.

    It stays a `str` so it can be handed to a process as an environment value or on stdin.
    """

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def reveal(self) -> str:
        return str.__str__(self)


def reveal(value: str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    # Extra environment for the child (merged over os.environ). Values may be Secret.
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Text fed on stdin, e.g. a registry password, so it never appears in argv.
    stdin: str | None = None
    # Shown instead of "command not found" when the program is missing.
    install_hint: str | None = None
    # What the user can try when the command fails.
    failure_hint: str | None = None

    def display(self) -> str:
        shown = " ".join(shlex.quote(str(a)) if not isinstance(a, Secret) else MASK for a in self.argv)
        prefix = " ".join(f"{k}={MASK if isinstance(v, Secret) else shlex.quote(v)}" for k, v in self.env.items())
        where = f"(cd {shlex.quote(str(self.cwd))} && " if self.cwd else ""
        text = f"{prefix} {shown}".strip()
        if self.stdin is not None:
            text += f" <<< {MASK if isinstance(self.stdin, Secret) else '…'}"
        return f"{where}{text})" if where else text


@dataclass(frozen=True)
class OneOff:
    """A container started for one job: how to find it, how long it may take, what to say when it is late."""

    name: str  # the container's --name: cleanup removes it by this
    what: str  # for messages: "the migrator", "pg_dump"
    deadline: float  # seconds, enforced by the kit
    remove: Command  # removes the container, running or not (docker rm --force NAME)
    # Remove the container after a normal end too (a `docker run --rm` may not have, when its client died).
    # False for `docker start --attach`, whose container still holds a file to copy out.
    remove_after: bool = True
    fix: str = "see its output above"


def argv(*parts: str | Secret | Sequence[str] | None) -> tuple[str, ...]:
    """Flatten parts into an argv tuple, dropping None, so builders can write optional flags inline."""
    out: list[str] = []
    for part in parts:
        if part is None:
            continue
        if isinstance(part, str):
            out.append(part)
        else:
            out.extend(p for p in part if p is not None)
    return tuple(out)
