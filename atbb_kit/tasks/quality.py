"""Checks a contributor runs before pushing, and CI runs on every pull request: lint, test, build, ci.

Each task is a thin wrapper around a `_run_*` function; `inv ci` calls those same functions in turn
(composition, not `inv` in a subshell), so the local `inv ci` and the PR workflow's jobs cannot drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

if TYPE_CHECKING:
    from atbb_kit.ops.lint import LintStep
    from atbb_kit.tasks._base import Kit

# The kit suite the pull-request workflow runs (see .github/workflows/ci.yml for why only unit there);
# `inv ci` defaults to the same so that "passes locally" means "passes in the PR".
PR_SUITE = "unit"
# `--suite none` skips the kit's pytest run and leaves only the monorepo's tests.
NO_SUITE = "none"


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


def _say(text: str) -> None:
    print(text, flush=True)


def _summary(title: str, outcomes: list[Outcome]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    table.add_column("step", style="bold")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("detail")
    for o in outcomes:
        verdict = "[green]ok[/green]" if o.ok else "[red]FAILED[/red]"
        # Tool output can hold [brackets] (actionlint's "[expression]"): never let rich read it as markup.
        table.add_row(o.name, verdict, f"{o.seconds:.1f}s", escape(o.detail))
    # CI logs are not terminals; rich would wrap at 80 columns there and split the detail column.
    Console(width=max(110, Console().width)).print(table)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


# --- lint -----------------------------------------------------------------------------------------------


def _lint_names(only: str) -> list[str]:
    from atbb_kit.core.errors import ConfigError
    from atbb_kit.ops import lint as linters

    try:
        return linters.parse_only(only)
    except ValueError as exc:
        raise ConfigError(f"--only: {exc}", f"choose from: {', '.join(linters.STEP_NAMES)}") from None


def _lint_step(k: Kit, step: LintStep, verbose: bool) -> Outcome:
    from atbb_kit.core.errors import KitError

    started = time.monotonic()
    if step.missing:
        # Never a silent skip: a check that cannot run has not passed.
        if k.run.dry_run:
            _say(f"would fail {step.name}: {step.missing}")
        return Outcome(step.name, False, 0.0, step.missing)
    if step.check is not None:
        if k.run.dry_run:
            _say(f"would check {step.what}")
            return Outcome(step.name, True, 0.0)
        try:
            problem = step.check()
        except Exception as exc:  # a crashing check is a failed check; the others still run
            problem = f"the check itself failed: {type(exc).__name__}: {exc}"
        return Outcome(step.name, problem is None, time.monotonic() - started, problem or "")
    assert step.command is not None
    try:
        # Captured, and shown only when the step fails (or with --verbose): ten passing linters
        # printing their banners would bury the one finding that matters. The slow monorepo step streams.
        result = k.run.run(step.command, check=False, capture=not (step.stream or verbose))
    except KitError as exc:  # the program itself is missing; its install hint is in the message
        return Outcome(step.name, False, time.monotonic() - started, str(exc))
    if k.run.dry_run:
        return Outcome(step.name, True, 0.0)
    output = "\n".join(part.rstrip("\n") for part in (result.stdout, result.stderr) if part.strip())
    if output and not result.ok:
        _say(output)
    if result.ok:
        return Outcome(step.name, True, result.seconds)
    last = _last_line(output)
    detail = f"exit {result.returncode}" + (f": {last}" if last else "")
    return Outcome(step.name, False, result.seconds, detail)


def _run_lint(k: Kit, names: list[str], verbose: bool = False) -> list[Outcome]:
    """Run every selected check, whatever fails along the way; print one summary table."""
    from atbb_kit.ops import lint as linters

    steps = linters.select(linters.lint_steps(k.cfg), names)
    outcomes = []
    for step in steps:
        outcome = _lint_step(k, step, verbose)
        if not k.run.dry_run:
            why = f" — {outcome.detail}" if not outcome.ok and outcome.detail else ""
            _say(f"{'ok' if outcome.ok else 'FAILED'}: {step.name} ({outcome.seconds:.1f}s){why}")
        outcomes.append(outcome)
    if not k.run.dry_run:
        _summary("lint", outcomes)
    return outcomes


def _lint_or_raise(k: Kit, names: list[str], verbose: bool = False) -> None:
    from atbb_kit.core.errors import KitError

    failed = [o.name for o in _run_lint(k, names, verbose) if not o.ok]
    if failed and not k.run.dry_run:
        raise KitError(
            f"lint: {len(failed)} check(s) failed: {', '.join(failed)}",
            "each failed check's output is above; rerun one with `inv lint --only NAME`",
        )


@kit_task(
    help={
        "only": "Comma-separated checks to run (default all): ruff, ruff-format, shellcheck, hadolint, "
        "nginx-drift, nginx, actionlint, workflow-schema, action-schema, compose-schema, monorepo.",
        "verbose": "Show every check's output, not only the failing ones'.",
        "dry_run": DRY_RUN_HELP,
    }
)
def lint(c, only="", verbose=False, dry_run=False):
    """Run every linter (monorepo, Python, shell, Dockerfile, nginx, workflows, Compose), then summarise."""
    names = _lint_names(only)
    _lint_or_raise(kit(c, dry_run=dry_run), names, verbose)


# --- test and build -------------------------------------------------------------------------------------


def _check_suite(suite: str) -> None:
    from atbb_kit.commands import pnpm as commands
    from atbb_kit.core.errors import ConfigError

    choices = (*commands.SUITES, NO_SUITE)
    if suite not in choices:
        raise ConfigError(f"--suite {suite!r} is not a suite", f"use one of: {', '.join(choices)}")


def _pytest_args(text: str) -> list[str]:
    import shlex

    from atbb_kit.core.errors import ConfigError

    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise ConfigError(
            f"--pytest-args: {exc}", 'quote it as one shell word, e.g. --pytest-args "-k tags -x"'
        ) from None


def _run_tests(k: Kit, suite: str, monorepo: bool = True, pytest_args: str = "") -> None:
    from atbb_kit.commands import pnpm as commands

    args = _pytest_args(pytest_args)
    if monorepo:
        k.run.run(commands.monorepo_test(k.cfg.monorepo_dir()))
    if suite != NO_SUITE:
        k.run.run(commands.pytest_suite(k.cfg.root(), suite, args))


def _run_build(k: Kit) -> None:
    from atbb_kit.commands import pnpm as commands

    k.run.run(commands.monorepo_build(k.cfg.monorepo_dir()))


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
    _check_suite(suite)
    _pytest_args(pytest_args)
    _run_tests(kit(c, dry_run=dry_run), suite, monorepo, pytest_args)


@kit_task(help={"dry_run": DRY_RUN_HELP})
def build(c, dry_run=False):
    """Compile the monorepo with `pnpm turbo run build` (every package, in turbo's dependency order)."""
    _run_build(kit(c, dry_run=dry_run))


# --- ci -------------------------------------------------------------------------------------------------


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
    from atbb_kit.core.errors import KitError

    # Bad flags fail before anything runs, not after a five-minute lint.
    _check_suite(suite)
    names = _lint_names(lint_only)
    k = kit(c, dry_run=dry_run)
    plan = [
        ("lint", lambda: _lint_or_raise(k, names, verbose)),
        ("test", lambda: _run_tests(k, suite)),
        ("build", lambda: _run_build(k)),
    ]
    outcomes = []
    for name, step in plan:
        _say(f"==> ci: {name}")
        started = time.monotonic()
        try:
            step()
        except KitError as exc:
            # Reported here and in the summary; the next step still runs, like parallel CI jobs do.
            _say(f"ci: {name} failed: {exc}\n")
            outcomes.append(Outcome(name, False, time.monotonic() - started, exc.what.splitlines()[0]))
        else:
            outcomes.append(Outcome(name, True, time.monotonic() - started))
    if k.run.dry_run:
        return
    _summary("ci", outcomes)
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        lint_cmd = f"inv lint --only {','.join(names)}" if names else "inv lint"
        rerun = {"lint": lint_cmd, "test": f"inv test --suite {suite}", "build": "inv build"}
        raise KitError(
            f"ci: {', '.join(failed)} failed",
            "rerun it alone and read its first error: " + "; ".join(rerun[n] for n in failed),
        )
