"""The one place that runs external processes.

Commands arrive as data (`Command`), built by pure functions in `commands.py`. The executor prints each
one before running it (secrets as ***), runs nothing in dry-run mode, and turns failures into `KitError`s
that say what failed and what to try.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atbb_kit.errors import CommandFailed, KitError

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
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner:
    """Executes Commands. `dry_run` prints what would run; `echo` prints each command before it runs."""

    def __init__(self, dry_run: bool = False, echo: bool = True, stream=None) -> None:
        self.dry_run = dry_run
        self.echo = echo
        self.stream = stream or sys.stderr
        self.history: list[Command] = []

    def _announce(self, cmd: Command) -> None:
        if self.echo or self.dry_run:
            print(f"{'would run' if self.dry_run else '$'} {cmd.display()}", file=self.stream, flush=True)

    def run(self, cmd: Command, *, check: bool = True, capture: bool = False, quiet: bool = False) -> Result:
        """Run `cmd`. capture=True collects output instead of passing it through.

        quiet=True skips the announcement (for probes whose output is the point, like `git rev-parse`).
        """
        self.history.append(cmd)
        if not quiet:
            self._announce(cmd)
        if self.dry_run:
            return Result(0)
        env = {**os.environ, **{k: reveal(v) for k, v in cmd.env.items()}} if cmd.env else None
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                env=env,
                input=reveal(cmd.stdin) if cmd.stdin is not None else None,
                stdin=subprocess.DEVNULL if cmd.stdin is None else None,
                capture_output=capture,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            raise KitError(
                f"{cmd.argv[0]} is not installed (needed for: {cmd.display()})",
                cmd.install_hint or f"install {cmd.argv[0]} or run scripts/bootstrap.sh",
            ) from None
        result = Result(proc.returncode, proc.stdout or "", proc.stderr or "", time.monotonic() - started)
        if check and not result.ok:
            detail = _last_line(result.stderr) or _last_line(result.stdout)
            raise CommandFailed(
                f"`{_short(cmd)}` exited with code {result.returncode}" + (f": {detail}" if detail else ""),
                cmd.failure_hint or "see the output above",
                returncode=result.returncode,
            )
        return result

    def probe(self, cmd: Command) -> Result:
        """Run a read-only query even in dry-run mode (e.g. which builder a client offers), captured."""
        try:
            proc = subprocess.run(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=30,
            )
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return Result(127)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run_all(self, cmds: Iterable[Command], **kwargs) -> list[Result]:
        return [self.run(c, **kwargs) for c in cmds]


def _short(cmd: Command) -> str:
    text = cmd.display()
    return text if len(text) <= 120 else text[:117] + "..."


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


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
