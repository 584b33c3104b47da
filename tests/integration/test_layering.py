"""The layering contracts (pyproject.toml's [tool.importlinter], run by `inv lint`'s layers step) really
catch what they are meant to catch.

Each case copies the kit's package to a scratch folder, adds one import that breaks a rule, and runs
import-linter's `lint-imports` on the copy: it must fail, name the broken contract, and name the very
import added. The untouched copy must pass, so a failure is the added import's doing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
LAYERS = "Layers: tasks > ops > infra > commands > core"
PURE_CORE = "The core starts no process and opens no socket"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # cwd first on sys.path: the copy is analysed, not the checkout the venv has installed.
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layering")
    shutil.copytree(ROOT / "atbb_kit", root / "atbb_kit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "kit"
    shutil.copytree(pristine, root)
    return root


def add_import(root: Path, module: str, statement: str) -> None:
    path = root / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    # At the end of the module: import-linter reads every import statement wherever it stands.
    path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}\n", encoding="utf-8")


def test_the_untouched_package_keeps_every_contract(copy):
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout
    assert f"{PURE_CORE} KEPT" in result.stdout


# (the module that gets the import, the import, the contract it breaks, what the report names)
WRONG_IMPORTS = [
    # Each layer reaching one step up.
    ("atbb_kit.core.tags", "import atbb_kit.commands", LAYERS, "atbb_kit.core.tags -> atbb_kit.commands"),
    ("atbb_kit.commands", "import atbb_kit.infra.console", LAYERS, "atbb_kit.commands -> atbb_kit.infra.console"),
    ("atbb_kit.infra.envfile", "import atbb_kit.ops.doctor", LAYERS, "atbb_kit.infra.envfile -> atbb_kit.ops.doctor"),
    ("atbb_kit.ops.verify", "import atbb_kit.tasks.image", LAYERS, "atbb_kit.ops.verify -> atbb_kit.tasks.image"),
    # And several steps up, inside a function body where a lazy import would hide it from a reader.
    (
        "atbb_kit.core.routing",
        "def _sneaky():\n    from atbb_kit.tasks import smoke  # noqa\n",
        LAYERS,
        "atbb_kit.core.routing -> atbb_kit.tasks.smoke",
    ),
    # The pure core starting processes or talking to the network or the engine.
    ("atbb_kit.core.tags", "import subprocess", PURE_CORE, "atbb_kit.core.tags -> subprocess"),
    ("atbb_kit.core.config", "import socket", PURE_CORE, "atbb_kit.core.config -> socket"),
    ("atbb_kit.core.image_spec", "import docker", PURE_CORE, "atbb_kit.core.image_spec -> docker"),
    ("atbb_kit.core.imageref", "import requests", PURE_CORE, "atbb_kit.core.imageref -> requests"),
]


@pytest.mark.parametrize(("module", "statement", "contract", "named"), WRONG_IMPORTS, ids=[c[3] for c in WRONG_IMPORTS])
def test_a_wrong_import_breaks_its_contract(copy, module, statement, contract, named):
    add_import(copy, module, statement)
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout
    assert named in result.stdout, result.stdout
