"""The import rule (docs/architecture.md): imports sit at module top, where they show what a module depends
on, except the heavy libraries, which stay inside function bodies so `inv --list` does not pay for them.

Two checks: an AST scan of atbb_kit/ that names every import breaking the rule (file:line), and a real
`inv --list` in a child process that must load none of the heavy libraries a bare Invoke does not load
itself. How long `inv --list` takes next to a bare Invoke is a figure of `inv bench --only cli`, not a
test.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "atbb_kit"

# Libraries slow enough to import that `inv --list` must not load them: these alone may be imported
# inside a function.
HEAVY = frozenset(
    {"pydantic", "docker", "rich", "requests", "yaml", "dotenv", "semver", "cyclonedx", "playwright", "matplotlib"}
    # Optional: installed with the test extra only, for `inv helm`'s schema checks (slow to import, too).
    | {"jsonschema", "kubernetes_validate"}
)
# Task modules are imported by `inv --list`; these kit modules pull the heavy libraries in, so a task
# imports them in its body, never at the top of the module.
TASK_BODY_ONLY = ("atbb_kit.ops", "atbb_kit.infra", "atbb_kit.core.config")


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The absolute names an import statement binds: `import a.b` -> a.b; `from a import b` -> a.b (b may be
    a submodule or a name in a); relative imports resolved against `module`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")[: -node.level]
        base = ".".join([*parts, node.module] if node.module else parts)
    return [f"{base}.{alias.name}" for alias in node.names]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_task_module(path: Path) -> bool:
    return path.relative_to(PACKAGE).parts[0] == "tasks"


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_type_checking_block(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Scan(ast.NodeVisitor):
    def __init__(self, shown: Path, module: str, tasks: bool) -> None:
        self.shown, self.module, self.tasks = shown, module, tasks
        self.function: str | None = None  # the innermost function being visited
        self.found: list[str] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if self.function is None and _is_type_checking_block(node):
            self.generic_visit(ast.Module(body=node.orelse, type_ignores=[]))  # type-only imports: not loaded
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        names = _imported(node, self.module)
        where = f"{self.shown}:{node.lineno}: `{ast.unparse(node)}`"
        if self.function is not None:
            if not all(n.split(".")[0] in HEAVY or (self.tasks and _under(n, TASK_BODY_ONLY)) for n in names):
                self.found.append(f"{where} inside {self.function}(): move it to the top of the module")
        elif self.tasks and any(_under(n, TASK_BODY_ONLY) for n in names):
            self.found.append(f"{where} at the top of a task module: import it inside the task body")

    visit_ImportFrom = visit_Import


def violations(path: Path, source: str | None = None) -> list[str]:
    """Every import in `path` that breaks the rule, as `file:line: the import and what to do`."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), str(path))
    scan = _Scan(path.relative_to(ROOT), _module_name(path), _is_task_module(path))
    scan.visit(tree)
    return scan.found


def test_every_import_in_the_kit_keeps_the_rule():
    offenders = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path)]
    assert not offenders, "imports breaking the import rule:\n" + "\n".join(offenders)


# The scan itself, on small sources: what it reports and what it lets pass.
CASES = [
    # (file, source, expected number of findings)
    ("atbb_kit/ops/x.py", "import os\nimport docker\n", 0),
    ("atbb_kit/ops/x.py", "def f():\n    import docker.errors\n    from rich.table import Table\n", 0),
    ("atbb_kit/ops/x.py", "def f():\n    import os\n", 1),
    ("atbb_kit/ops/x.py", "def f():\n    from atbb_kit.infra import engine\n", 1),
    ("atbb_kit/ops/x.py", "class A:\n    def m(self):\n        def g():\n            import json\n", 1),
    ("atbb_kit/ops/x.py", "def f():\n    from . import backup\n", 1),
    ("atbb_kit/tasks/x.py", "def t(c):\n    from atbb_kit.ops import smoke\n    from ..core.config import x\n", 0),
    ("atbb_kit/tasks/x.py", "def t(c):\n    from atbb_kit.core import tags\n", 1),
    ("atbb_kit/tasks/x.py", "from atbb_kit.ops import smoke\n", 1),
    ("atbb_kit/tasks/x.py", "from atbb_kit.core.config import Config\n", 1),
    ("atbb_kit/tasks/x.py", "from atbb_kit.core import config, tags\n", 1),
    ("atbb_kit/tasks/x.py", "def t(c):\n    from atbb_kit.core import config\n", 0),
    ("atbb_kit/ops/x.py", "def f():\n    from pydantic import BaseModel\n    import os\n", 1),
    ("atbb_kit/tasks/x.py", "from ..infra import runner\n", 1),
    ("atbb_kit/tasks/x.py", "import typing\nif typing.TYPE_CHECKING:\n    from atbb_kit.infra import runner\n", 0),
    ("atbb_kit/tasks/x.py", "from atbb_kit.core import tags\nfrom atbb_kit.tasks._base import kit_task\n", 0),
]


@pytest.mark.parametrize(("file", "source", "expected"), CASES)
def test_the_scan_finds_exactly_the_imports_that_break_the_rule(file, source, expected):
    found = violations(ROOT / file, source)
    assert len(found) == expected, found
    for line in found:
        assert line.startswith(f"{file}:"), line


def test_a_finding_names_the_file_and_line():
    source = "import re\n\n\ndef f():\n    import shlex\n"
    assert violations(ROOT / "atbb_kit/ops/x.py", source) == [
        "atbb_kit/ops/x.py:5: `import shlex` inside f(): move it to the top of the module"
    ]


def _heavy_loaded(cwd: Path) -> set[str]:
    """The heavy libraries `inv --list` loads when run in `cwd`, read from `python -X importtime`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", "--list"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            loaded.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "invoke" in loaded, "no -X importtime lines read"
    return loaded


def test_inv_list_loads_no_heavy_library_beyond_what_invoke_itself_loads(tmp_path):
    # A bare Invoke with one task: the same baseline as `inv bench --only cli`. Invoke imports PyYAML
    # for its own config files, so yaml is in both.
    (tmp_path / "tasks.py").write_text("from invoke import task\n\n\n@task\ndef hello(c):\n    pass\n")
    bare = _heavy_loaded(tmp_path) & HEAVY
    kit = _heavy_loaded(ROOT) & HEAVY
    assert kit <= bare, f"`inv --list` loads {sorted(kit - bare)}, which a bare Invoke does not"
