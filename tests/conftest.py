"""Shared test helpers: where the kit lives and how to run its CLI the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke"]


def run_inv(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120):
    """Run `inv ARGS` in a child process, as a user would, with a clean ATBB_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))}
    base.update(env or {})
    return subprocess.run(
        [*INV, *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout, check=False
    )


NOBODY = 65534


def unprivileged_stdio(*files: Path) -> dict:
    """subprocess kwargs that run a server as nobody when the tests run as root, as the image does.

    Like runc with a container's stdio, the files it writes stdout/stderr to are created and handed to
    that user first, so an nginx config naming /dev/stdout can open it.
    """
    for f in files:
        f.touch()
    if os.geteuid() != 0:
        return {}
    for f in files:
        os.chown(f, NOBODY, NOBODY)
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


@pytest.fixture
def kit_copy(tmp_path: Path) -> Path:
    """A scratch folder holding a copy of atbb.yaml, for config tests that edit it."""
    (tmp_path / "atbb.yaml").write_text((ROOT / "atbb.yaml").read_text())
    (tmp_path / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    # `inv config --check` also compares the rendered nginx.conf with the config.
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "nginx.conf").write_text((ROOT / "nginx" / "nginx.conf").read_text())
    return tmp_path


def pytest_collection_modifyitems(config, items):
    """Mark each test by its folder, so `-m unit|integration|e2e` selects suites without decorators."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT).parts
        if len(parts) > 1 and parts[1] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[1]))
