"""Unit-suite hooks: the bad-input corpus (test_bad_inputs.py) reports its size and outcome at the end."""

from __future__ import annotations

import pytest

CORPUS_KEY = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    outcomes = config.stash.get(CORPUS_KEY, None)
    if not outcomes:
        return
    from tests.unit.test_bad_inputs import problems_of

    kinds: dict[str, int] = {}
    for o in outcomes:
        kinds[o.case.kind] = kinds.get(o.case.kind, 0) + 1
    failed = [o for o in outcomes if problems_of(o)]
    hung = sum(1 for o in outcomes if o.returncode is None)
    tracebacks = sum(1 for o in outcomes if "Traceback" in o.stderr)
    internal = sum(1 for o in outcomes if "internal error" in o.stderr)
    slowest = max(o.seconds for o in outcomes)
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    terminalreporter.write_sep("-", "bad-input corpus")
    terminalreporter.write_line(
        f"bad-input corpus: {len(outcomes)} cases ({shown}); {len(outcomes) - len(failed)} refused cleanly, "
        f"{len(failed)} not; {tracebacks} tracebacks, {internal} internal errors, {hung} hangs; "
        f"slowest case {slowest:.1f}s"
    )
