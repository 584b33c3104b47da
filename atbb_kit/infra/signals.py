"""Signals: the one implementation of how the kit stops when it is asked to.

Every task that creates something (a one-off container, a throwaway stack, a second release) must clean up
when stopped by Ctrl-C, SIGTERM (CI cancelling a job, `docker stop` of a runner) or SIGHUP (a closed
terminal). Python turns only SIGINT into an exception; its default for the other two ends the process
without running a single `finally`. The tools here make all three unwind the same way:

- `SignalReceived` is what a signal raises. It is a KeyboardInterrupt, so it unwinds like Ctrl-C: no
  `except Exception` swallows it, and Invoke exits quietly if nothing catches it.
- `raising()` / `raise_for_rest_of_process()` turn SIGTERM and SIGHUP into it (SIGINT already is).
- `ignored()` holds all three off while a cleanup that must finish runs.
- `Guard` is for code that creates engine objects: inside `critical()` (a create call the engine may
  complete after the client gave up) a signal waits until the call returns; during cleanup it is only
  acknowledged.
- `Interrupted` is the KitError a task raises afterwards: exit 128 + the signal, the shell's convention
  (130 for Ctrl-C, 143 for SIGTERM).

Handlers can only be installed from the main thread; elsewhere (an embedding) every tool here is a no-op.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from atbb_kit.core.errors import KitError

# The signals that mean "stop": Ctrl-C, a polite kill, a closed terminal.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The ones Python does not already raise for.
_NOT_RAISING = (signal.SIGTERM, signal.SIGHUP)


class SignalReceived(KeyboardInterrupt):
    """Raised in the main thread by a stopping signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupted(KitError):
    """A task was stopped by a signal after cleaning up; exits 128 + the signal."""

    def __init__(self, what: str, fix: str | None, signum: int) -> None:
        super().__init__(what, fix)
        self.exit_code = 128 + signum


def number(exc: BaseException) -> int:
    """The signal behind an interrupt: a plain KeyboardInterrupt is Ctrl-C."""
    return int(getattr(exc, "signum", signal.SIGINT))


def name(signum: int) -> str:
    return signal.Signals(signum).name


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise(signum: int, _frame: Any) -> None:
    raise SignalReceived(signum)


@contextmanager
def _handled(signals: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    if not _main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def raising() -> Any:
    """For the duration, SIGTERM and SIGHUP raise `SignalReceived` as SIGINT raises KeyboardInterrupt."""
    return _handled(_NOT_RAISING, _raise)


def raise_for_rest_of_process() -> None:
    """`raising()` for the rest of the process: for tasks that hold something between commands (a one-off
    container created, run, copied from and removed in a `finally`)."""
    if _main_thread():
        for s in _NOT_RAISING:
            signal.signal(s, _raise)


def ignored() -> Any:
    """A cleanup that must finish: a second Ctrl-C or SIGTERM during it would leave things behind."""
    return _handled(STOPPING, signal.SIG_IGN)


class Guard:
    """Turns stopping signals into `SignalReceived`, except where an exception would do harm.

    Inside `critical()` (a create call: the engine may finish creating after the client gave up, and a
    sweep would miss it) the signal is remembered and raised when the section ends. Once `cleaning` is set
    it is only acknowledged: a second Ctrl-C must not leave half of the objects behind.
    """

    def __init__(self, say: Callable[[str], None] = lambda _: None) -> None:
        self.pending: int | None = None
        self.depth = 0
        self.cleaning = False
        self.say = say

    def on_signal(self, signum: int, frame: Any = None) -> None:
        if self.pending is None:
            self.pending = signum
        if self.cleaning:
            self.say(f"received {name(signum)} while cleaning up: finishing the cleanup first")
            return
        if self.depth:
            return
        raise SignalReceived(signum)

    @contextmanager
    def critical(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending is not None and not self.cleaning:
                raise SignalReceived(self.pending)

    def installed(self) -> Any:
        return _handled(STOPPING, self.on_signal)
