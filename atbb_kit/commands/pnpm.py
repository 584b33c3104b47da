"""pnpm and pytest argv: the monorepo's install, lint, test and build (pnpm + turbo), and the kit's own suite.

Pure builders returning `Command`s; nothing here runs anything.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from atbb_kit.commands.base import Command, argv

PNPM_HINT = "install pnpm (npm i -g pnpm@<node.pnpm from atbb.yaml>) or run scripts/bootstrap.sh"

SUITES = ("unit", "integration", "e2e", "all")
# The kit suite the pull-request workflow runs (see .github/workflows/ci.yml for why only unit there);
# `inv ci` defaults to the same so that "passes locally" means "passes in the PR".
PR_SUITE = "unit"


# --- the monorepo (pnpm + turbo) ------------------------------------------------------------------------


def pnpm(monorepo: Path, *args: str, env: Mapping[str, str] | None = None, hint: str | None = None) -> Command:
    return Command(argv("pnpm", args), cwd=monorepo, env=dict(env or {}), install_hint=PNPM_HINT, failure_hint=hint)


def monorepo_lint(monorepo: Path) -> Command:
    return pnpm(monorepo, "turbo", "run", "lint", hint="fix the type errors above")


def monorepo_test(monorepo: Path) -> Command:
    return pnpm(monorepo, "turbo", "run", "test", hint="a monorepo test failed; rerun `pnpm test` in the monorepo")


def monorepo_build(monorepo: Path) -> Command:
    return pnpm(monorepo, "turbo", "run", "build", hint="the monorepo does not compile; see the errors above")


# --- the kit's own suite --------------------------------------------------------------------------------


def pytest_suite(root: Path, suite: str, extra: Sequence[str] = ()) -> Command:
    if suite not in SUITES:
        raise ValueError(suite)
    marker = () if suite == "all" else ("-m", suite)
    return Command(
        argv(sys.executable, "-m", "pytest", marker, list(extra)),
        cwd=root,
        failure_hint=f"a kit test failed; rerun `inv test --suite {suite}` and read the first failure",
    )
