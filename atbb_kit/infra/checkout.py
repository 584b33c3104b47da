"""What the local checkout says about a build: git's answers, read through the Runner, and the tag plan.

The parsing and the rules are pure and live in core (context.py reads git's output, tags.py computes the
tags, release_plan.py the `created` label); this module only asks git, read-only, so it also works in
dry-run mode. Outside GitHub Actions three git queries start together, so the wall time is about one's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atbb_kit.commands.git import git
from atbb_kit.core import context
from atbb_kit.core.context import BuildContext, GitResult
from atbb_kit.core.release_plan import created_timestamp
from atbb_kit.core.tags import TagPlan, compute
from atbb_kit.infra.runner import Runner

if TYPE_CHECKING:
    from atbb_kit.core.config import Config  # pydantic: kept out of `inv --list`

GIT_TIMEOUT = 20.0


def run_git(cwd: Path, commands: Sequence[Sequence[str]], timeout: float = GIT_TIMEOUT) -> list[GitResult]:
    """Run several read-only git commands at once in `cwd`; a missing git or a hang becomes a failed result."""
    results = Runner(echo=False).probe_all([git(cwd, args) for args in commands], timeout)
    return [GitResult(r.returncode, r.stdout, r.stderr) for r in results]


def read_context(environ: Mapping[str, str], cwd: Path) -> BuildContext:
    """The build's ref, commit, repository and release tags (see core/context.py); never raises."""
    return context.read_context(environ, cwd, git=run_git)


def commit_time(root: Path) -> str:
    """HEAD's commit time as Unix seconds, or "" when git cannot say."""
    (res,) = run_git(root, [("log", "-1", "--format=%ct")], timeout=10)
    return res.stdout.strip() if res.ok else ""


def plan_for(cfg: Config, environ: Mapping[str, str] = os.environ) -> TagPlan:
    """The TagPlan for this checkout (or this GitHub Actions run)."""
    root = cfg.root()
    ctx = read_context(environ, root)
    created = created_timestamp(environ, "" if environ.get("SOURCE_DATE_EPOCH", "").isdigit() else commit_time(root))
    return compute(cfg.image, cfg.release, ctx, created)
