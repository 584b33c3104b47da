"""E2E fixtures: a real Docker engine and the base images the build may use.

When no engine answers, these tests FAIL under CI=true (a skipped e2e suite must never pass CI) and skip
with a loud reason on a laptop.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_inv

# The images the e2e modules test, built once per session by `inv image` exactly as a user would. The tag
# names this checkout, so two checkouts testing on one engine (a fresh clone next to a working tree)
# never test each other's builds.
_CHECKOUT = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
IMAGE = f"atbb-e2e:test-{_CHECKOUT}"
# The second example (examples/board), built from the same kit files with only its own atbb.yaml.
BOARD_IMAGE = f"atbb-e2e-board:test-{_CHECKOUT}"
BOARD_CONFIG = {"ATBB_CONFIG": str(ROOT / "examples" / "board" / "atbb.yaml")}


# Separately invoked suites, collected only when asked for (never collected-then-skipped): the arm64 build
# under QEMU needs a machine-wide binfmt registration and about 6.5 minutes (docs/decisions.md).
collect_ignore = [] if os.environ.get("ATBB_E2E_ARM64") == "1" else ["test_arm64_emulated.py"]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: e2e tests must run, not skip; run scripts/bootstrap.sh)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/bootstrap.sh to set up an engine")


@pytest.fixture(scope="session")
def docker_client():
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        _unavailable(f"no Docker engine answers ({exc})")
    return client


def read_test_images() -> dict[str, str]:
    """Base-image overrides chosen by scripts/standin-images.sh (stand-ins when registries are unreachable)."""
    values: dict[str, str] = {}
    path = ROOT / "build" / "test-images.env"
    if path.is_file():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    for key in ("ATBB_IMAGE_BASE", "ATBB_COMPOSE_POSTGRES_IMAGE"):
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values


@pytest.fixture(scope="session")
def test_images(docker_client) -> dict[str, str]:
    from docker.errors import ImageNotFound

    images = read_test_images()
    defaults = {"ATBB_IMAGE_BASE": "node:22-alpine", "ATBB_COMPOSE_POSTGRES_IMAGE": "postgres:16-alpine"}
    for key, default in defaults.items():
        ref = images.setdefault(key, default)
        try:
            docker_client.images.get(ref)
        except ImageNotFound:
            _unavailable(f"base image {ref} is not present; scripts/standin-images.sh builds stand-ins")
    return images


@pytest.fixture(scope="session")
def built_image(docker_client, test_images):
    # Session-scoped: test_image.py and test_smoke.py share one build instead of paying for two.
    proc = run_inv("image", "--tag", IMAGE, env=test_images, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "within budget" in proc.stdout
    return IMAGE


def board_images(test_images: dict[str, str]) -> dict[str, str]:
    """test_images for the board: on a stand-in base the board gets the same allowance over its own budget
    that scripts/standin-images.sh gives the forum's (the Debian stand-in base is 314 MB, Alpine's ~160)."""
    env = {**test_images, **BOARD_CONFIG}
    if "ATBB_IMAGE_SIZE_BUDGET_MB" in test_images:
        from atbb_kit.core.config import load_config

        allowance = (
            int(test_images["ATBB_IMAGE_SIZE_BUDGET_MB"])
            - load_config(ROOT / "atbb.yaml", environ={}).image.size_budget_mb
        )
        board = load_config(ROOT / "examples" / "board" / "atbb.yaml", environ={})
        env["ATBB_IMAGE_SIZE_BUDGET_MB"] = str(board.image.size_budget_mb + allowance)
    return env


@pytest.fixture(scope="session")
def board_image(docker_client, test_images):
    proc = run_inv("image", "--tag", BOARD_IMAGE, env=board_images(test_images), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "within budget" in proc.stdout
    return BOARD_IMAGE


def kit_root() -> Path:
    return ROOT


# A real registry (Debian's docker-registry) on a free loopback port, and a private docker client config,
# for the modules that push; tests/e2e/test_actions_replay.py keeps its own with the Actions bot's user.
@pytest.fixture
def registry(docker_client, tmp_path: Path):
    from tests.e2e.registry import Registry

    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    path = tmp_path / "docker-config"
    path.mkdir()
    return path
