"""Checks a contributor runs before pushing, and CI runs on every pull request: lint, test, build, ci.

Thin tasks over atbb_kit.ops.quality, where `inv ci` composes the same functions the single tasks call.
"""

from __future__ import annotations

from atbb_kit.commands.pnpm import PR_SUITE
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    help={
        "only": "Comma-separated checks to run (default all): ruff, ruff-format, mypy, layers, shellcheck, "
        "hadolint, nginx-drift, nginx, helm, actionlint, workflow-schema, action-schema, compose-schema, monorepo.",
        "verbose": "Show every check's output, not only the failing ones'.",
        "dry_run": DRY_RUN_HELP,
    }
)
def lint(c, only="", verbose=False, dry_run=False):
    """Run every linter (monorepo, Python, shell, Dockerfile, nginx, workflows, Compose), then summarise."""
    from atbb_kit.ops import quality

    names = quality.lint_names(only)
    quality.lint(kit(c, dry_run=dry_run), names, verbose)


@kit_task(
    help={
        "suite": "Which kit suite: unit, integration, e2e, all (default), or none (only the monorepo's tests).",
        "monorepo": "Also run the monorepo's `pnpm turbo test` (default on; --no-monorepo skips it).",
        "pytest_args": 'Extra arguments for pytest, e.g. "-k tags -x".',
        "dry_run": DRY_RUN_HELP,
    }
)
def test(c, suite="all", monorepo=True, pytest_args="", dry_run=False):
    """Run the kit's tests (unit, integration, e2e) and the monorepo's own tests."""
    from atbb_kit.ops import quality

    quality.check_suite(suite)
    quality.pytest_args(pytest_args)
    quality.run_tests(kit(c, dry_run=dry_run), suite, monorepo, pytest_args)


@kit_task(help={"dry_run": DRY_RUN_HELP})
def build(c, dry_run=False):
    """Compile the monorepo with `pnpm turbo run build` (every package, in turbo's dependency order)."""
    from atbb_kit.ops import quality

    quality.run_build(kit(c, dry_run=dry_run))


@kit_task(
    help={
        "suite": f"Kit suite for the test step (default {PR_SUITE}, as in the PR workflow; none skips it).",
        "lint_only": "Comma-separated checks for the lint step (default all; see `inv lint --help`).",
        "verbose": "Show every lint check's output, not only the failing ones'.",
        "dry_run": DRY_RUN_HELP,
    }
)
def ci(c, suite=PR_SUITE, lint_only="", verbose=False, dry_run=False):
    """Lint, test and build in one go, as the pull-request workflow does; keep going past failures."""
    from atbb_kit.ops import quality

    # Bad flags fail before anything runs, not after a five-minute lint.
    quality.check_suite(suite)
    names = quality.lint_names(lint_only)
    quality.ci(kit(c, dry_run=dry_run), suite, names, verbose)
