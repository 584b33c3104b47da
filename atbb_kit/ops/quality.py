"""What `inv lint`, `inv test`, `inv build` and `inv ci` do: run the checks, keep going past failures, summarise.

`inv ci` calls the same functions as the single tasks in turn (composition, not `inv` in a subshell), so the
local `inv ci` and the PR workflow's jobs cannot drift. Progress goes to stderr, the summary tables to stdout.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from atbb_kit.commands import pnpm
from atbb_kit.core.errors import ConfigError, KitError
from atbb_kit.infra.console import Column, console
from atbb_kit.ops import lint as linters
from atbb_kit.ops.lint import LintStep

# `--suite none` skips the kit's pytest run and leaves only the monorepo's tests.
NO_SUITE = "none"


@dataclass(frozen=True)
class StepOutcome:
    """How one lint check or ci step ended: a row of the summary table."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""


def summary(title: str, outcomes: list[StepOutcome]) -> None:
    rows = [
        (o.name, "[green]ok[/green]" if o.ok else "[red]FAILED[/red]", f"{o.seconds:.1f}s", o.detail) for o in outcomes
    ]
    # detail is tool output, which can hold [brackets] (actionlint's "[expression]"): escaped, never markup.
    columns: list[Column | str] = [
        Column("step", style="bold"),
        Column("result", markup=True),
        Column("time", justify="right"),
        "detail",
    ]
    console.table(title, columns, rows)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


# --- lint -----------------------------------------------------------------------------------------------


def lint_names(only: str) -> list[str]:
    """`--only a,b` of `inv lint` / `--lint-only` of `inv ci`, checked."""
    try:
        return linters.parse_only(only)
    except ValueError as exc:
        raise ConfigError(f"--only: {exc}", f"choose from: {', '.join(linters.STEP_NAMES)}") from None


def lint_step(k, step: LintStep, verbose: bool) -> StepOutcome:
    started = time.monotonic()
    if step.missing:
        # Never a silent skip: a check that cannot run has not passed.
        if k.run.dry_run:
            console.say(f"would fail {step.name}: {step.missing}")
        return StepOutcome(step.name, False, 0.0, step.missing)
    if step.check is not None:
        if k.run.dry_run:
            console.say(f"would check {step.what}")
            return StepOutcome(step.name, True, 0.0)
        try:
            problem = step.check()
        except Exception as exc:  # a crashing check is a failed check; the others still run
            problem = f"the check itself failed: {type(exc).__name__}: {exc}"
        return StepOutcome(step.name, problem is None, time.monotonic() - started, problem or "")
    assert step.command is not None
    try:
        # Captured, and shown only when the step fails (or with --verbose): ten passing linters
        # printing their banners would bury the one finding that matters. The slow monorepo step streams.
        result = k.run.run(step.command, check=False, capture=not (step.stream or verbose))
    except KitError as exc:  # the program itself is missing; its install hint is in the message
        return StepOutcome(step.name, False, time.monotonic() - started, str(exc))
    if k.run.dry_run:
        return StepOutcome(step.name, True, 0.0)
    output = "\n".join(part.rstrip("\n") for part in (result.stdout, result.stderr) if part.strip())
    if output and not result.ok:
        console.say(output)
    if result.ok:
        return StepOutcome(step.name, True, result.seconds)
    last = _last_line(output)
    detail = f"exit {result.returncode}" + (f": {last}" if last else "")
    return StepOutcome(step.name, False, result.seconds, detail)


def run_lint(k, names: list[str], verbose: bool = False) -> list[StepOutcome]:
    """Run every selected check, whatever fails along the way; print one summary table."""
    steps = linters.select(linters.lint_steps(k.cfg), names)
    outcomes = []
    for step in steps:
        outcome = lint_step(k, step, verbose)
        if not k.run.dry_run:
            why = f" — {outcome.detail}" if not outcome.ok and outcome.detail else ""
            console.say(f"{'ok' if outcome.ok else 'FAILED'}: {step.name} ({outcome.seconds:.1f}s){why}")
        outcomes.append(outcome)
    if not k.run.dry_run:
        summary("lint", outcomes)
    return outcomes


def lint(k, names: list[str], verbose: bool = False) -> None:
    """`inv lint`: every selected check; a KitError naming the failed ones."""
    failed = [o.name for o in run_lint(k, names, verbose) if not o.ok]
    if failed and not k.run.dry_run:
        raise KitError(
            f"lint: {len(failed)} check(s) failed: {', '.join(failed)}",
            "each failed check's output is above; rerun one with `inv lint --only NAME`",
        )


# --- test and build -------------------------------------------------------------------------------------


def check_suite(suite: str) -> None:
    choices = (*pnpm.SUITES, NO_SUITE)
    if suite not in choices:
        raise ConfigError(f"--suite {suite!r} is not a suite", f"use one of: {', '.join(choices)}")


def pytest_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise ConfigError(
            f"--pytest-args: {exc}", 'quote it as one shell word, e.g. --pytest-args "-k tags -x"'
        ) from None


def run_tests(k, suite: str, monorepo: bool = True, extra: str = "") -> None:
    """`inv test`: the monorepo's tests, then the kit's suite."""
    args = pytest_args(extra)
    if monorepo:
        k.run.run(pnpm.monorepo_test(k.cfg.monorepo_dir()))
    if suite != NO_SUITE:
        k.run.run(pnpm.pytest_suite(k.cfg.root(), suite, args))


def run_build(k) -> None:
    """`inv build`: the monorepo's build."""
    k.run.run(pnpm.monorepo_build(k.cfg.monorepo_dir()))


# --- ci -------------------------------------------------------------------------------------------------


def ci(k, suite: str, names: list[str], verbose: bool = False) -> None:
    """`inv ci`: lint, test and build in turn, each run whatever the one before did; a KitError naming the
    failed ones and how to rerun each."""
    plan: list[tuple[str, Callable[[], None]]] = [
        ("lint", lambda: lint(k, names, verbose)),
        ("test", lambda: run_tests(k, suite)),
        ("build", lambda: run_build(k)),
    ]
    outcomes = []
    for name, step in plan:
        console.say(f"==> ci: {name}")
        started = time.monotonic()
        try:
            step()
        except KitError as exc:
            # Reported here and in the summary; the next step still runs, like parallel CI jobs do.
            console.say(f"ci: {name} failed: {exc}\n")
            outcomes.append(StepOutcome(name, False, time.monotonic() - started, exc.what.splitlines()[0]))
        else:
            outcomes.append(StepOutcome(name, True, time.monotonic() - started))
    if k.run.dry_run:
        return
    summary("ci", outcomes)
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        lint_cmd = f"inv lint --only {','.join(names)}" if names else "inv lint"
        rerun = {"lint": lint_cmd, "test": f"inv test --suite {suite}", "build": "inv build"}
        raise KitError(
            f"ci: {', '.join(failed)} failed",
            "rerun it alone and read its first error: " + "; ".join(rerun[n] for n in failed),
        )
