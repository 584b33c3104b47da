"""The one readiness poller: ask a probe until it says ready, or fail at a deadline with its last reason.

Every "wait until X" in the kit (PostgreSQL accepting connections, a port answering, a HEALTHCHECK turning
healthy, a log line appearing) is a probe handed to `until`. A probe returns `Waiting(reason)` while the
thing is not ready and anything else once it is; an exception from the probe ends the wait at once (a
container that exited will not become ready). The probe always runs at least once, and once more after
the deadline would be too late, so a slow first answer is never judged without being asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Waiting:
    """Not ready yet, and why (the last reason is what a timeout reports)."""

    reason: str = "not ready"


class TimedOut(Exception):
    """The deadline passed; `reason` is what the probe said last."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"not ready within {seconds:.0f} s (last: {reason})")
        self.seconds = seconds
        self.reason = reason


def until(
    probe: Callable[[], T | Waiting],
    *,
    seconds: float,
    interval: float,
    start: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `probe` every `interval` seconds until it returns something that is not `Waiting`.

    The deadline is `seconds` after `start` (default: now). Raises TimedOut once a probe that was asked
    after the deadline still says Waiting.
    """
    deadline = (clock() if start is None else start) + seconds
    while True:
        answer = probe()
        if not isinstance(answer, Waiting):
            return answer
        if clock() > deadline:
            raise TimedOut(seconds, answer.reason)
        sleep(interval)
