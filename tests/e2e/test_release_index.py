"""`inv push --by-digest` and `inv release` against a real registry (Debian's docker-registry, distribution
2.8, htpasswd auth) on loopback.

What this proves, and what it does not: the amd64 image is a tiny `docker import` and the "arm64" one a
tiny `FROM scratch` + COPY image that BuildKit builds for linux/arm64 without running anything (no
emulation, and it could not run here). Both are real single-platform images with honest configs, pushed by
the kit through the registry's API without a tag; the index, its platforms, the tags and their order are
then exactly what a release of real per-platform builds gets. That the real forum image builds and runs
on arm64 is not proven here (see the arm64 section of docs/decisions.md).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_inv
from tests.e2e.registry import (
    GIT_ENV,
    FaultyProxy,
    Registry,
    arm64_image,
    docker,
    get_json,
    kit_repo,
    registry_error,
    remove_image,
    tag_list,
    tiny_image,
)

REPO = "acme/atbb"
TAGS = ("1.2.3", "1.2", "1", "latest")
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
BOTH = "linux/amd64,linux/arm64"


@pytest.fixture
def images(docker_config: Path):
    """Two local single-platform images with unique names, removed afterwards."""
    tag = f"atbb-e2e-rel-{uuid.uuid4().hex[:12]}"
    refs = {"linux/amd64": f"{tag}:amd64", "linux/arm64": f"{tag}:arm64"}
    tiny_image(refs["linux/amd64"], config=docker_config)
    arm64_image(refs["linux/arm64"], docker_config.parent / "arm64", config=docker_config)
    yield refs
    remove_image(*refs.values(), config=docker_config)


def env_for(host: str, registry: Registry, docker_config: Path, platforms: str = BOTH) -> dict[str, str]:
    return {
        **GIT_ENV,
        "ATBB_IMAGE_REGISTRY": host,
        "ATBB_IMAGE_OWNER": "acme",
        "ATBB_IMAGE_PLATFORMS": platforms,
        "ATBB_REGISTRY_USER": registry.user,
        "ATBB_REGISTRY_TOKEN": registry.password,
        "DOCKER_CONFIG": str(docker_config),
    }


def image_tags(registry: Registry) -> list[str]:
    """The repository's tags but the SBOM referrer tags (sha256-<hex>)."""
    return [t for t in tag_list(registry, REPO) if not t.startswith("sha256-")]


def errors(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]


def push_both(repo: Path, env: dict[str, str], images: dict[str, str], digest_dir: Path) -> dict[str, str]:
    digests = {}
    for platform, ref in images.items():
        proc = run_inv("push", "--by-digest", "--image", ref, "--digest-file", f"{digest_dir}/", cwd=repo, env=env,
                       timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert DIGEST.fullmatch(proc.stdout.strip()), proc.stdout
        digests[platform] = proc.stdout.strip()
    return digests


def test_two_pushes_by_digest_then_release_one_index_with_every_tag(
    tmp_path: Path, registry: Registry, docker_config: Path, images: dict[str, str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    env = env_for(registry.host, registry, docker_config)
    digest_dir = tmp_path / "digests"
    digests = push_both(repo, env, images, digest_dir)

    # Pushed without a tag: the registry holds the manifests, and no tag yet but the SBOMs' referrer tags
    # (distribution 2.8 has no referrers API: the OCI fallback tag sha256-<hex> lists each image's SBOM).
    assert sorted(tag_list(registry, REPO)) == sorted(d.replace(":", "-") for d in digests.values())
    for platform, digest in digests.items():
        assert registry.digest(REPO, digest) == digest
        config = get_json(registry, REPO, get_json(registry, REPO, digest)["config"]["digest"], kind="blobs")
        assert f"{config['os']}/{config['architecture']}" == platform
    # --digest-file FOLDER/ wrote one file per platform, for the merge job.
    assert {f.name: f.read_text().strip() for f in digest_dir.iterdir()} == {
        "linux-amd64": digests["linux/amd64"],
        "linux-arm64": digests["linux/arm64"],
    }

    proc = run_inv("release", "--digests-from", str(digest_dir), cwd=repo, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    index_digest = proc.stdout.strip()
    assert DIGEST.fullmatch(index_digest), proc.stdout

    # The index, read from the registry independently of the kit: both manifests, the right platforms.
    index = get_json(registry, REPO, "1.2.3")
    assert registry.content_type(REPO, "1.2.3") == INDEX_TYPE
    assert [(m["digest"], m["platform"]) for m in index["manifests"]] == [
        (digests["linux/amd64"], {"architecture": "amd64", "os": "linux"}),
        (digests["linux/arm64"], {"architecture": "arm64", "os": "linux"}),
    ]
    assert index["annotations"]["org.opencontainers.image.version"] == "1.2.3"
    # Every tag resolves to the index, and only these tags exist.
    assert {t: registry.digest(REPO, t) for t in TAGS} == dict.fromkeys(TAGS, index_digest)
    assert sorted(image_tags(registry)) == sorted(TAGS)
    # Immutable first, then the floating ones, `latest` last.
    steps = [
        ln.split()[2 if ln.startswith("pushed ") else 1]
        for ln in proc.stderr.splitlines()
        if ln.startswith(("pushed ", "moved "))
    ]
    assert steps == [f"{registry.host}/{REPO}:{t}" for t in TAGS]

    # A user's amd64 engine pulls `latest` through the index and gets the amd64 image.
    docker("login", "--username", registry.user, "--password-stdin", registry.host, stdin=registry.password,
           config=docker_config)  # fmt: skip
    pulled = f"{registry.host}/{REPO}:latest"
    try:
        docker("pull", "--quiet", pulled, config=docker_config)
        arch = docker("image", "inspect", "--format", "{{.Architecture}}", pulled, config=docker_config).stdout
        assert arch.strip() == "amd64"
    finally:
        remove_image(pulled, config=docker_config)


def test_a_failure_before_latest_leaves_latest_where_it_was(
    tmp_path: Path, registry: Registry, docker_config: Path, images: dict[str, str]
) -> None:
    """1.2.2 is published (with latest); releasing 1.2.3 fails at the move of `1`, the step before
    `latest` (a proxy in front of the real registry refuses that one PUT): 1.2.3 and 1.2 are the index,
    `1` and `latest` still point at 1.2.2, and the error says what was and was not pushed."""
    old = f"{registry.host}/{REPO}:1.2.2"
    tiny_image(old, config=docker_config)
    docker("login", "--username", registry.user, "--password-stdin", registry.host, stdin=registry.password,
           config=docker_config)  # fmt: skip
    try:
        for tag in ("1.2.2", "1.2", "1", "latest"):
            docker("tag", old, f"{registry.host}/{REPO}:{tag}", config=docker_config)
            docker("push", f"{registry.host}/{REPO}:{tag}", config=docker_config)
    finally:
        remove_image(*(f"{registry.host}/{REPO}:{t}" for t in ("1.2.2", "1.2", "1", "latest")), config=docker_config)
    digest_122 = registry.digest(REPO, "1.2.2")
    assert registry.digest(REPO, "latest") == digest_122

    def fault(method: str, path: str, headers: dict) -> tuple[int, bytes] | None:
        if method == "PUT" and path == f"/v2/{REPO}/manifests/1":
            return 500, registry_error("UNKNOWN", "injected failure")
        return None

    repo = kit_repo(tmp_path / "repo")
    with FaultyProxy(registry, fault) as proxy:
        env = env_for(proxy.host, registry, docker_config)
        digests = push_both(repo, env, images, tmp_path / "digests")
        proc = run_inv("release", "--digest", digests["linux/amd64"], "--digest", digests["linux/arm64"], cwd=repo,
                       env=env, timeout=300)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proxy.injected == [f"PUT /v2/{REPO}/manifests/1"]
    assert errors(proc) == [
        f"error: registry {proxy.host} answered HTTP 500 for {REPO}:1 (unknown: injected failure); 1 not moved "
        "(moved before it: 1.2) — retry later, or check the registry's status page"
    ]
    index_digest = registry.digest(REPO, "1.2.3")
    assert registry.content_type(REPO, "1.2.3") == INDEX_TYPE
    assert registry.digest(REPO, "1.2") == index_digest
    assert registry.digest(REPO, "1") == digest_122
    assert registry.digest(REPO, "latest") == digest_122


# --- refusals: one line each, nothing tagged ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["stranger-platform", "missing-platform", "unknown-digest", "no-index-support"])
def test_release_refusals(
    tmp_path: Path, registry: Registry, docker_config: Path, images: dict[str, str], case: str
) -> None:
    repo = kit_repo(tmp_path / "repo")
    digests = push_both(repo, env_for(registry.host, registry, docker_config), images, tmp_path / "digests")
    amd, arm = digests["linux/amd64"], digests["linux/arm64"]
    host = f"{registry.host}/{REPO}"

    def no_index(method: str, path: str, headers: dict) -> tuple[int, bytes] | None:
        if method == "PUT" and headers.get("Content-Type") == INDEX_TYPE:
            return 400, registry_error("MANIFEST_INVALID", "manifest invalid")
        return None

    with FaultyProxy(registry, no_index) as proxy:
        env = env_for(registry.host, registry, docker_config)
        if case == "stranger-platform":
            args, env = ["--digest", amd, "--digest", arm], {**env, "ATBB_IMAGE_PLATFORMS": "linux/amd64"}
            expected = (
                f"error: {host}@{arm} is a linux/arm64 image, and image.platforms is linux/amd64 — pass only the "
                "digests of this run's per-platform jobs, or add the platform to image.platforms"
            )
        elif case == "missing-platform":
            args = ["--digest", amd]
            expected = (
                "error: no image for linux/arm64 among the 1 digest(s) given (image.platforms is linux/amd64, "
                "linux/arm64) — every platform job must push (`inv push --by-digest`) before `inv release`"
            )
        elif case == "unknown-digest":
            missing = "sha256:" + "0" * 64
            args = ["--digest", amd, "--digest", missing]
            expected = (
                f"error: {host}@{missing} does not exist in the registry — pass the digests `inv push "
                "--by-digest` printed for this run"
            )
        else:
            args, env = ["--digest", amd, "--digest", arm], {**env, "ATBB_IMAGE_REGISTRY": proxy.host}
            expected = (
                f"error: registry {proxy.host} does not accept image indexes ({INDEX_TYPE}: HTTP 400, "
                "manifest_invalid: manifest invalid); 0 of 1 tags pushed, not pushed: 1.2.3 — publish to a "
                "registry that supports OCI image indexes (GHCR, Docker Hub, distribution 2.7+)"
            )
        proc = run_inv("release", *args, cwd=repo, env=env, timeout=300)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert errors(proc) == [expected]
    assert image_tags(registry) == []


def test_push_by_digest_refuses_an_image_of_another_platform(
    tmp_path: Path, registry: Registry, docker_config: Path, images: dict[str, str]
) -> None:
    repo = kit_repo(tmp_path / "repo")
    env = env_for(registry.host, registry, docker_config, platforms="linux/amd64")
    proc = run_inv("push", "--by-digest", "--image", images["linux/arm64"], cwd=repo, env=env, timeout=300)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert errors(proc) == [
        f"error: {images['linux/arm64']} is a linux/arm64 image, and image.platforms is linux/amd64 — build it "
        "for one of those platforms, or add the platform to image.platforms"
    ]
    assert image_tags(registry) == []
