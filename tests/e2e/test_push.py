"""`inv push` against a real registry (Debian's docker-registry, htpasswd auth) and the real engine.

Each test gets its own registry on a free loopback port, its own DOCKER_CONFIG (so no login touches
/root/.docker) and a scratch kit checkout tagged v1.2.3. The pushed image is a tiny `docker import`:
what is under test is the publishing, not the build.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_inv
from tests.e2e.registry import GIT_ENV, Registry, docker, git, kit_repo, remove_image, tiny_image

REPO = "acme/atbb"
TAGS = ("1.2.3", "1.2", "1", "latest")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def registry(docker_client, tmp_path: Path):
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    path = tmp_path / "docker-config"
    path.mkdir()
    return path


@pytest.fixture
def local_images(registry: Registry, docker_config: Path):
    """Refs a test created in the engine; all removed afterwards so repeated runs do not pile up."""
    refs: list[str] = []
    yield refs
    remove_image(*refs, *(f"{registry.host}/{REPO}:{t}" for t in (*TAGS, "1.2.4")), config=docker_config)


@pytest.fixture
def env(registry: Registry, docker_config: Path) -> dict[str, str]:
    return {
        **GIT_ENV,
        "ATBB_IMAGE_REGISTRY": registry.host,
        "ATBB_IMAGE_OWNER": "acme",
        "ATBB_REGISTRY_USER": registry.user,
        "ATBB_REGISTRY_TOKEN": registry.password,
        "DOCKER_CONFIG": str(docker_config),
    }


def primary_ref(repo: Path, env: dict[str, str]) -> str:
    proc = run_inv("tags", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def push(repo: Path, env: dict[str, str], *args: str):
    return run_inv("push", *args, cwd=repo, env=env, timeout=300)


def test_push_publishes_every_tag_with_one_digest(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_config: Path, local_images: list[str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    primary = primary_ref(repo, env)
    assert primary == f"{registry.host}/{REPO}:1.2.3"
    tiny_image(primary, config=docker_config)

    proc = push(repo, env)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip()
    assert DIGEST.fullmatch(digest), proc.stdout
    refs = [f"{registry.host}/{REPO}:{t}" for t in TAGS]
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("pushed ")]
    assert progress == [f"pushed {i}/4 {ref} {digest}" for i, ref in enumerate(refs, start=1)]

    # The token was on stdin only, and the login lived in a private folder that is gone again.
    assert registry.password not in proc.stdout + proc.stderr
    assert "--password-stdin" in proc.stderr
    assert not (docker_config / "config.json").exists()

    # What the registry says, asked independently of the kit.
    assert {t: registry.digest(REPO, t) for t in TAGS} == dict.fromkeys(TAGS, digest)

    # And what a user gets: pull each tag back from scratch.
    remove_image(*refs, config=docker_config)
    docker("login", "--username", registry.user, "--password-stdin", registry.host, stdin=registry.password,
           config=docker_config)  # fmt: skip
    for ref in refs:
        docker("pull", "--quiet", ref, config=docker_config)
        repo_digests = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref, config=docker_config)
        assert f"{registry.host}/{REPO}@{digest}" in repo_digests.stdout, (ref, repo_digests.stdout)


def test_wrong_password_fails_the_login_and_pushes_nothing(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_config: Path, local_images: list[str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    tiny_image(primary_ref(repo, env), config=docker_config)
    wrong = "wrong-" + registry.password[::-1]
    proc = push(repo, {**env, "ATBB_REGISTRY_TOKEN": wrong})
    assert proc.returncode != 0
    assert proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [
        f"error: registry {registry.host} refused the login (unauthorized) — "
        "check ATBB_REGISTRY_USER/ATBB_REGISTRY_TOKEN"
    ]
    assert wrong not in proc.stdout + proc.stderr
    assert registry.digest(REPO, "latest") is None
    assert registry.digest(REPO, "1.2.3") is None


def test_a_stopped_registry_is_a_clear_error_and_latest_stays(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_config: Path, local_images: list[str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    # Publish 1.2.3 from an image with another local name, through --image.
    local_images.append("atbb-e2e-local:dev")
    tiny_image("atbb-e2e-local:dev", config=docker_config)
    first = push(repo, env, "--image", "atbb-e2e-local:dev")
    assert first.returncode == 0, first.stderr
    digest_123 = first.stdout.strip()
    assert registry.digest(REPO, "latest") == digest_123

    # Release 1.2.4 (a new commit, a new image) while the registry is down.
    git(repo, "checkout", "-q", "main")
    (repo / "CHANGELOG.md").write_text("1.2.4\n")
    git(repo, "add", "CHANGELOG.md")
    git(repo, "commit", "-q", "-m", "1.2.4")
    git(repo, "tag", "v1.2.4")
    git(repo, "checkout", "-q", "--detach", "v1.2.4")
    primary = primary_ref(repo, env)
    assert primary.endswith(":1.2.4")
    tiny_image(primary, config=docker_config)
    registry.stop()
    proc = push(repo, env)
    assert proc.returncode != 0
    assert proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [
        f"error: registry {registry.host} is not reachable (connection refused) — "
        "check image.registry (ATBB_IMAGE_REGISTRY) and that the registry is up"
    ]

    # Same port, same storage: latest still points at 1.2.3 and 1.2.4 never arrived.
    registry.start()
    assert registry.digest(REPO, "latest") == digest_123
    assert registry.digest(REPO, "1.2.4") is None


def test_push_without_a_local_image_says_to_build_it(
    tmp_path: Path, registry: Registry, env: dict[str, str], local_images: list[str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    proc = push(repo, env)
    assert proc.returncode != 0
    assert proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [
        f"error: no local image {registry.host}/{REPO}:1.2.3 — run `inv image` first (it builds and tags it)"
    ]
    assert registry.digest(REPO, "1.2.3") is None
