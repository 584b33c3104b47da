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

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"

REPO = "acme/atbb"
TAGS = ("1.2.3", "1.2", "1", "latest")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def local_images(registry: Registry, docker_config: Path):
    """Refs a test created in the engine; all removed afterwards so repeated runs do not pile up."""
    refs: list[str] = []
    yield refs
    remove_image(
        *refs, *(f"{registry.host}/{REPO}:{t}" for t in (*TAGS, "1.2.4", "1.3.0", "1.3")), config=docker_config
    )


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
    # docker pushes the immutable tag; the floating ones are pointed at it through the registry's API.
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith(("pushed ", "moved ", "kept "))]
    assert progress == [f"pushed 1/1 {refs[0]} {digest}"] + [
        f"moved {registry.host}/{REPO}:{t} to 1.2.3 {digest}" for t in TAGS[1:]
    ]

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


def test_latest_stays_when_a_higher_version_reached_the_registry_after_the_checkout(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_config: Path, local_images: list[str]
) -> None:
    """The checkout knows only v1.2.3, so its plan includes `latest`; meanwhile another run published
    1.3.0 (and pointed latest and 1 at it). The registry decides: 1.2.3 gets 1.2 and nothing more."""
    repo = kit_repo(tmp_path / "repo")
    plan = run_inv("tags", cwd=repo, env=env)
    assert plan.stdout.splitlines() == [f"{registry.host}/{REPO}:{t}" for t in TAGS]  # git alone says: latest

    other = f"{registry.host}/{REPO}:1.3.0"
    tiny_image(other, config=docker_config)
    docker("login", "--username", registry.user, "--password-stdin", registry.host, stdin=registry.password,
           config=docker_config)  # fmt: skip
    for tag in ("1.3.0", "1.3", "1", "latest"):
        docker("tag", other, f"{registry.host}/{REPO}:{tag}", config=docker_config)
        docker("push", f"{registry.host}/{REPO}:{tag}", config=docker_config)
    docker("logout", registry.host, config=docker_config)
    digest_130 = registry.digest(REPO, "1.3.0")

    tiny_image(primary_ref(repo, env), config=docker_config)
    proc = push(repo, env)
    assert proc.returncode == 0, proc.stderr
    digest_123 = proc.stdout.strip()
    assert DIGEST.fullmatch(digest_123) and digest_123 != digest_130
    assert registry.digest(REPO, "1.2.3") == digest_123
    assert registry.digest(REPO, "1.2") == digest_123
    assert registry.digest(REPO, "1") == digest_130
    assert registry.digest(REPO, "latest") == digest_130
    assert (
        "note: latest stays at 1.3.0, not 1.2.3: the registry holds a newer build (published after this "
        "checkout, or a release this checkout does not know)"
    ) in proc.stderr.splitlines()
    assert f"kept {registry.host}/{REPO}:latest at 1.3.0 {digest_130}" in proc.stderr.splitlines()


def test_the_floating_tags_of_an_oci_index(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_config: Path, local_images: list[str]
) -> None:
    """A build that is an OCI index (Docker 29's containerd store, or `buildx --push` of several
    platforms, with a provenance attestation) is in the registry as 1.2.3; `inv push --only floating`
    points 1.2, 1 and latest at the index itself, and the digest checks hold for it."""
    repo = kit_repo(tmp_path / "repo")
    index_digest = registry.push_oci_index(REPO, "1.2.3")
    assert registry.content_type(REPO, "1.2.3") == INDEX_TYPE

    proc = push(repo, env, "--only", "floating")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    for tag in ("1.2", "1", "latest"):
        assert registry.digest(REPO, tag) == index_digest, tag
        assert registry.content_type(REPO, tag) == INDEX_TYPE, tag
    moved = [ln for ln in proc.stderr.splitlines() if ln.startswith("moved ")]
    assert moved == [f"moved {registry.host}/{REPO}:{t} to 1.2.3 {index_digest}" for t in ("1.2", "1", "latest")]

    # A second run changes nothing and says so.
    again = push(repo, env, "--only", "floating")
    assert again.returncode == 0, again.stderr
    assert [ln for ln in again.stderr.splitlines() if ln.startswith(("moved ", "kept "))] == [
        f"kept {registry.host}/{REPO}:{t} at 1.2.3 {index_digest}" for t in ("1.2", "1", "latest")
    ]

    # And a user's engine resolves `latest` through the index to its platform's image.
    local_images.append(f"{registry.host}/{REPO}:latest")
    docker("login", "--username", registry.user, "--password-stdin", registry.host, stdin=registry.password,
           config=docker_config)  # fmt: skip
    docker("pull", "--quiet", f"{registry.host}/{REPO}:latest", config=docker_config)
    repo_digests = docker("image", "inspect", "--format", "{{json .RepoDigests}}", f"{registry.host}/{REPO}:latest",
                          config=docker_config)  # fmt: skip
    assert f"{registry.host}/{REPO}@{index_digest}" in repo_digests.stdout
