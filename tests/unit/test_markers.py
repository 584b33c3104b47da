"""One way to mark a test's suite: its folder (tests/conftest.py marks tests/unit as `unit`, and so on).

A `pytestmark` in a test file would be a second mechanism that can disagree with the folder (a `unit`
mark on a test that starts nginx), and a test file outside the three folders would get no mark at all, so
`inv test --suite ...` would never run it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

TESTS = ROOT / "tests"
SUITES = ("unit", "integration", "e2e")


def module_marks(path: Path, source: str | None = None) -> list[str]:
    """`file:line` of every module-level assignment to `pytestmark` in a test file."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign | ast.AugAssign)
            else []
        )
        names = [t for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)]
        if any(name.id == "pytestmark" for name in names):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_test_file_marks_itself():
    offenders = [hit for path in sorted(TESTS.rglob("*.py")) for hit in module_marks(path)]
    assert not offenders, (
        "the folder sets a test's suite marker (tests/conftest.py); remove `pytestmark` at: " + ", ".join(offenders)
    )


def test_every_test_file_is_in_a_suite_folder():
    outside = [
        str(p.relative_to(ROOT))
        for p in sorted(TESTS.rglob("test_*.py"))
        if p.relative_to(TESTS).parts[0] not in SUITES
    ]
    assert not outside, f"not in tests/unit, tests/integration or tests/e2e, so no suite runs them: {outside}"


def test_the_scan_finds_every_form_of_the_assignment():
    path = TESTS / "unit" / "test_x.py"
    assert module_marks(path, "import pytest\npytestmark = pytest.mark.unit\n") == ["tests/unit/test_x.py:2"]
    assert module_marks(path, "pytestmark: list = [pytest.mark.e2e]\n") == ["tests/unit/test_x.py:1"]
    assert module_marks(path, "a = pytestmark = pytest.mark.unit\n") == ["tests/unit/test_x.py:1"]
    assert module_marks(path, "pytestmark += [pytest.mark.slow]\n") == ["tests/unit/test_x.py:1"]
    assert module_marks(path, "x = 1\n@pytest.mark.unit\ndef test_a():\n    pass\n") == []


def test_the_folder_marks_each_collected_test(request):
    # This very test sits in tests/unit: the conftest hook gave it the `unit` marker.
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None
