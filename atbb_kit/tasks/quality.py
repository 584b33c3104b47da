"""Checks a contributor runs before pushing, and CI runs on every pull request: test, build."""

from __future__ import annotations

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    help={
        "suite": "Which kit suite: unit, integration, e2e or all (default all).",
        "monorepo": "Also run the monorepo's `pnpm turbo test` (default on; --no-monorepo skips it).",
        "pytest_args": 'Extra arguments for pytest, e.g. "-k tags -x".',
        "dry_run": DRY_RUN_HELP,
    }
)
def test(c, suite="all", monorepo=True, pytest_args="", dry_run=False):
    """Run the kit's tests (unit, integration, e2e) and the monorepo's own tests."""
    import shlex

    from atbb_kit import commands
    from atbb_kit.errors import ConfigError

    if suite not in commands.SUITES:
        raise ConfigError(f"--suite {suite!r} is not a suite", f"use one of: {', '.join(commands.SUITES)}")
    k = kit(c, dry_run=dry_run)
    if monorepo:
        k.run.run(commands.monorepo_test(k.cfg.monorepo_dir()))
    k.run.run(commands.pytest_suite(k.cfg.root(), suite, shlex.split(pytest_args)))


@kit_task(help={"dry_run": DRY_RUN_HELP})
def build(c, dry_run=False):
    """Compile the monorepo with `pnpm turbo run build` (lexicon, then db, appview and web)."""
    from atbb_kit import commands

    k = kit(c, dry_run=dry_run)
    k.run.run(commands.monorepo_build(k.cfg.monorepo_dir()))
