"""The one readiness poller (atbb_kit/infra/polling.py), on a fake clock: no sleeping, no timing."""

from __future__ import annotations

import pytest

from atbb_kit.infra.polling import TimedOut, Waiting, until
from tests.clock import FakeClock


def scripted(answers, clock: FakeClock, cost: float = 0.0):
    """A probe that returns `answers` in turn (an exception instance is raised), each taking `cost` seconds."""
    calls = []

    def probe():
        calls.append(clock.now)
        clock.now += cost
        answer = answers[min(len(calls) - 1, len(answers) - 1)]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return probe, calls


W = Waiting
CASES = [
    # (id, answers, seconds, interval, cost, expected value or exception, number of probes)
    ("ready-at-once", ["up"], 10, 1, 0, "up", 1),
    ("ready-on-the-third", [W("a"), W("b"), "up"], 10, 1, 0, "up", 3),
    ("falsy-answers-are-ready-too", [W("a"), 0], 10, 1, 0, 0, 2),
    ("times-out-with-the-last-reason", [W("starting"), W("still starting")], 2, 1, 0, TimedOut, 4),
    ("no-time-still-asks-at-and-just-after-the-deadline", [W("no")], 0, 1, 0, TimedOut, 2),
    ("a-slow-probe-is-asked-once-after-the-deadline", [W("slow")], 1, 0.5, 3, TimedOut, 1),
    ("a-probe-error-ends-the-wait", [W("a"), ValueError("exited")], 10, 1, 0, ValueError, 2),
]


@pytest.mark.parametrize(
    ("answers", "seconds", "interval", "cost", "expected", "probes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_until(answers, seconds, interval, cost, expected, probes):
    clock = FakeClock()
    probe, calls = scripted(answers, clock, cost)
    run = lambda: until(probe, seconds=seconds, interval=interval, clock=clock, sleep=clock.sleep)  # noqa: E731
    if isinstance(expected, type) and issubclass(expected, BaseException):
        with pytest.raises(expected) as info:
            run()
        if expected is TimedOut:
            last = next(a for a in reversed(answers) if isinstance(a, Waiting))
            assert info.value.reason == last.reason
            assert f"not ready within {seconds:.0f} s (last: {last.reason})" == str(info.value)
    else:
        assert run() == expected
    assert len(calls) == probes
    assert all(s == interval for s in clock.slept)


def test_the_deadline_counts_from_start_when_given():
    clock = FakeClock()
    probe, calls = scripted([W("x")], clock)
    # Started 5 s ago with a 3 s budget: one last look, then the timeout.
    with pytest.raises(TimedOut):
        until(probe, seconds=3, interval=1, start=clock.now - 5, clock=clock, sleep=clock.sleep)
    assert len(calls) == 1
