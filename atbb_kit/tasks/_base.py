"""What every task shares: the error boundary, config loading, and the executor.

Task modules import only this and invoke at import time; heavy modules (pydantic, the Docker SDK, rich)
are imported inside task bodies so `inv --list` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoke import Exit, task

from atbb_kit.core.errors import KitError

if TYPE_CHECKING:
    from atbb_kit.core.config import Config
    from atbb_kit.infra.runner import Runner

DRY_RUN_HELP = "Print the commands that would run (secrets as ***) and run nothing."


def debug_enabled() -> bool:
    # Invoke's core --debug turns on its logging; we also honour it for tracebacks (not -d: tasks use it).
    return os.environ.get("ATBB_DEBUG", "") not in ("", "0", "false") or "--debug" in sys.argv


def report(exc: BaseException) -> int:
    """The one error boundary: a KitError becomes `error: <what> — <fix>`; anything else is a kit bug."""
    from atbb_kit.infra.console import console

    if isinstance(exc, KitError):
        lines = exc.what.splitlines() or [exc.what]
        for i, line in enumerate(lines):
            tail = f" — {exc.fix}" if exc.fix and i == len(lines) - 1 else ""
            console.error(f"{line}{tail}")
        return exc.exit_code
    console.error(
        f"internal error ({type(exc).__name__}: {exc}) — rerun with ATBB_DEBUG=1 for the traceback and report it"
    )
    return 70


def kit_task(*args: Any, **kwargs: Any):
    """`invoke.task` plus the error boundary. Use exactly like @task(help={...})."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any):
            try:
                return fn(*a, **kw)
            except (Exit, KeyboardInterrupt):
                raise
            except Exception as exc:  # the boundary: everything ends here
                if debug_enabled():
                    traceback.print_exc()
                raise Exit(code=report(exc)) from None

        return task(*args, **kwargs)(wrapper) if args or kwargs else task(wrapper)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        fn, args = args[0], ()
        return decorate(fn)
    return decorate


@dataclass
class Kit:
    cfg: Config
    run: Runner


def kit(c: Any = None, *, dry_run: bool = False, overrides: dict[str, Any] | None = None) -> Kit:
    """Load the config once for this task call and build the executor."""
    from atbb_kit.core.config import load_config
    from atbb_kit.infra.runner import Runner

    invoke_dry = bool(c is not None and getattr(getattr(c, "config", None), "run", {}).get("dry", False))
    return Kit(cfg=load_config(overrides=overrides), run=Runner(dry_run=dry_run or invoke_dry))
