"""A fake clock for tests of waits: `sleep` moves it on at once, so a 20 s deadline costs no time and the
number of polls is exact. `on_fake_clock(monkeypatch, module)` gives `module` a `polling` whose `until`
runs on such a clock (the module's other code keeps the real one unless a test patches it too)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from atbb_kit.infra import polling


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now = round(self.now + seconds, 6)  # no drift: 100 sleeps of 0.2 s are 20 s exactly


def on_fake_clock(monkeypatch, module) -> FakeClock:
    clock = FakeClock()
    until = functools.partial(polling.until, clock=clock, sleep=clock.sleep)
    monkeypatch.setattr(module, "polling", SimpleNamespace(until=until, TimedOut=polling.TimedOut))
    return clock
