"""pyproject.toml's [tool.mypy] does what docs/architecture.md says: strict on atbb_kit/core, function bodies
checked everywhere else. mypy can set `strict` only globally, so the core's section lists the strict flags
one by one; this shows they take effect, on a copy of the package with one defect added per layer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

MYPY = str(Path(sys.executable).parent / "mypy")

UNTYPED = "\n\ndef _added_untyped(value):\n    return value\n"
BAD_BODY = '\n\ndef _added_bad_body(value):\n    number: int = "text"\n    return number\n'


def test_core_is_strict_and_the_rest_has_its_bodies_checked(tmp_path):
    shutil.copytree(ROOT / "atbb_kit", tmp_path / "atbb_kit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    added_from = {}  # module -> first line of the added code
    for module in ("core/tags.py", "ops/verify.py"):
        path = tmp_path / "atbb_kit" / module
        added_from[f"atbb_kit/{module}"] = len(path.read_text(encoding="utf-8").splitlines()) + 1
        with path.open("a", encoding="utf-8") as f:
            f.write(UNTYPED + BAD_BODY)
    proc = subprocess.run(
        [MYPY, "--cache-dir", str(tmp_path / ".mypy_cache")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Only the added code's findings: the package's own are `inv lint`'s business.
    errors = [
        line
        for line in proc.stdout.splitlines()
        if ": error: " in line
        and line.split(":")[0] in added_from
        and int(line.split(":")[1]) >= added_from[line.split(":")[0]]
    ]
    # core: the missing annotations (strict) and the bad assignment; ops: only the bad assignment.
    assert sum("atbb_kit/core/tags.py" in e and "[no-untyped-def]" in e for e in errors) == 2, errors
    assert sum("atbb_kit/core/tags.py" in e and "[assignment]" in e for e in errors) == 1, errors
    assert sum("atbb_kit/ops/verify.py" in e and "[assignment]" in e for e in errors) == 1, errors
    assert not [e for e in errors if "atbb_kit/ops/verify.py" in e and "[no-untyped-def]" in e], errors
    assert len(errors) == 4, errors
