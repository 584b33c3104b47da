"""The SBOM `inv push --by-digest` attaches, and `inv verify` on images pushed to a real registry on
loopback (Debian's docker-registry, distribution 2.8: no referrers API, so the OCI fallback tag
`sha256-<hex>` is what is exercised).

The image is the real forum image (`inv image`, on the stand-in base here): its SBOM must list the
base's OS packages and the Node packages in /app. Tampered cases made locally: an index rewritten to
claim another platform, an image pushed without its SBOM, an image that names another source
repository. Provenance cannot be attested offline (no Fulcio, Rekor or GitHub OIDC here), so the real
check is only reached through stand-in `gh` programs on PATH that answer as `gh attestation verify`
does: they prove the wiring (which command, how its answer is reported), not a signature.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_inv
from tests.e2e.registry import GIT_ENV, Registry, docker, get_json, kit_repo, remove_image, tiny_image

REPO = "acme/atbb"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def env(registry: Registry, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "docker-config"
    config.mkdir()
    return {
        **GIT_ENV,
        "ATBB_IMAGE_REGISTRY": registry.host,
        "ATBB_IMAGE_OWNER": "acme",
        "ATBB_REGISTRY_USER": registry.user,
        "ATBB_REGISTRY_TOKEN": registry.password,
        "DOCKER_CONFIG": str(config),
        # No gh or cosign from the machine: the tests decide which provenance tool exists.
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
    }


def inv(repo: Path, env: dict[str, str], *args: str):
    return run_inv(*args, cwd=repo, env=env, timeout=600)


def released(repo: Path, env: dict[str, str], image: str, *push_args: str) -> tuple[str, str]:
    """Push `image` by digest and release it as 1.2.3; (image digest, index digest)."""
    pushed = inv(repo, env, "push", "--by-digest", "--image", image, *push_args)
    assert pushed.returncode == 0, pushed.stderr
    release = inv(repo, env, "release", "--digest", pushed.stdout.strip())
    assert release.returncode == 0, release.stderr
    return pushed.stdout.strip(), release.stdout.strip()


def errors(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]


def test_the_sbom_lists_os_and_node_packages_and_verify_reports_it(
    tmp_path: Path, registry: Registry, env: dict[str, str], built_image: str
) -> None:
    repo = kit_repo(tmp_path / "repo")
    local = inv(repo, env, "sbom", "--image", built_image, "--output", str(tmp_path / "local.cdx.json"))
    assert local.returncode == 0, local.stderr
    image_digest, index_digest = released(repo, env, built_image)

    # The SBOM, read from the registry independently of the kit: the fallback tag lists one CycloneDX
    # referrer whose subject is the image.
    listing = get_json(registry, REPO, image_digest.replace(":", "-"))
    assert [m["artifactType"] for m in listing["manifests"]] == [SBOM_TYPE]
    artifact = get_json(registry, REPO, listing["manifests"][0]["digest"])
    assert artifact["subject"]["digest"] == image_digest
    document = get_json(registry, REPO, artifact["layers"][0]["digest"], kind="blobs")
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    purls = [c["purl"] for c in document["components"]]
    os_kind = "deb" if any(p.startswith("pkg:deb/") for p in purls) else "apk"
    assert sum(p.startswith(f"pkg:{os_kind}/") for p in purls) > 10  # the base's packages
    assert any(p.startswith("pkg:npm/hono@") for p in purls)  # a runtime dependency of the app
    assert any(p.startswith("pkg:npm/postgres@") for p in purls)
    assert not any("typescript" in p for p in purls)  # a build-time tool, not in the runtime
    assert json.loads((tmp_path / "local.cdx.json").read_text())["components"] == document["components"]
    assert f"{len(purls)} components" in local.stdout

    proc = inv(repo, env, "verify", f"{registry.host}/{REPO}:1.2.3", "--repo", "acme/forum")
    # The image was built from this checkout without a GitHub remote: its source label is empty, so
    # --repo names what the operator expects.
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"digest:     {index_digest}" in lines
    assert "platforms:  linux/amd64" in lines
    assert "label:      org.opencontainers.image.title=atBB" in lines
    assert any(ln.startswith("label:      org.opencontainers.image.revision=") for ln in lines)
    (sbom_line,) = [ln for ln in lines if ln.startswith("sbom:")]
    assert sbom_line.startswith(f"sbom:       linux/amd64: {len(purls)} components (")
    assert f"found through the tag {image_digest.replace(':', '-')}" in sbom_line
    assert lines[-1] == (
        "provenance: not checked: neither gh (GitHub CLI) nor cosign is installed (0 Sigstore attestation "
        f"bundle(s) attached in the registry); install gh and run `gh attestation verify oci://{registry.host}/"
        f"{REPO}@{index_digest} --repo acme/forum --signer-workflow acme/forum/.github/workflows/publish.yml`"
    )
    strict = inv(repo, env, "verify", f"{registry.host}/{REPO}:1.2.3", "--repo", "acme/forum", "--require-provenance")
    assert strict.returncode != 0
    assert errors(strict) == [
        f"error: {registry.host}/{REPO}:1.2.3: provenance not checked: neither gh (GitHub CLI) nor cosign is "
        f"installed (0 Sigstore attestation bundle(s) attached in the registry); install gh and run `gh "
        f"attestation verify oci://{registry.host}/{REPO}@{index_digest} --repo acme/forum --signer-workflow "
        "acme/forum/.github/workflows/publish.yml` — install gh or cosign, or drop --require-provenance"
    ]

    # Stand-in gh programs: one that accepts, one that refuses, as `gh attestation verify` answers.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/gh.args\nexit 0\n')
    gh.chmod(0o755)
    ok = inv(repo, env, "verify", f"{registry.host}/{REPO}:1.2.3", "--repo", "acme/forum")
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout.splitlines()[-1] == "provenance: verified with gh: built by acme/forum/.github/workflows/publish.yml"
    )
    assert (tmp_path / "gh.args").read_text().split() == [
        "attestation", "verify", f"oci://{registry.host}/{REPO}@{index_digest}", "--repo", "acme/forum",
        "--signer-workflow", "acme/forum/.github/workflows/publish.yml",
    ]  # fmt: skip
    gh.write_text("#!/bin/sh\necho 'Error: no attestations found for subject' >&2\nexit 1\n")
    refused = inv(repo, env, "verify", f"{registry.host}/{REPO}:1.2.3", "--repo", "acme/forum")
    assert refused.returncode != 0
    assert errors(refused) == [
        f"error: {registry.host}/{REPO}:1.2.3: provenance NOT verified with gh (Error: no attestations found for "
        "subject) — do not deploy it; ask its publisher"
    ]


def test_verify_reports_tampered_and_incomplete_images(
    tmp_path: Path, registry: Registry, env: dict[str, str], docker_client
) -> None:
    repo = kit_repo(tmp_path / "repo")
    image = f"atbb-e2e-rel-verify-{os.getpid()}:amd64"
    tiny_image(image, config=Path(env["DOCKER_CONFIG"]))
    try:
        image_digest, _ = released(repo, env, image)
        ref = f"{registry.host}/{REPO}:1.2.3"
        good = inv(repo, env, "verify", ref, "--repo", "acme/forum")
        assert good.returncode == 0, good.stderr
        # An empty SBOM is still an SBOM: the image holds no packages, and says so.
        assert "sbom:       linux/amd64: 0 components (CycloneDX, found through the tag" in good.stdout

        # An image whose source label names another repository than the operator expects.
        labelled = f"atbb-e2e-rel-verify-{os.getpid()}:labelled"
        docker("build", "-q", "--label", "org.opencontainers.image.source=https://github.com/evil/forum", "-t",
               labelled, "-", stdin=f"FROM {image}\n", config=Path(env["DOCKER_CONFIG"]))  # fmt: skip
        try:
            pushed = inv(repo, env, "push", "--by-digest", "--image", labelled)
            assert pushed.returncode == 0, pushed.stderr
        finally:
            remove_image(labelled, config=Path(env["DOCKER_CONFIG"]))
        other = inv(repo, env, "verify", f"{registry.host}/{REPO}@{pushed.stdout.strip()}", "--repo", "acme/forum")
        assert other.returncode != 0
        assert errors(other)[0].endswith(
            "does not check out: the image says it comes from evil/forum, not acme/forum — do not deploy it; "
            "ask its publisher"
        )

        # An index that lies about a platform does not check out.
        index = get_json(registry, REPO, "1.2.3")
        index["manifests"][0]["platform"] = {"architecture": "arm64", "os": "linux"}
        registry.put_manifest(REPO, "1.2.3", INDEX_TYPE, json.dumps(index).encode())
        tampered = inv(repo, env, "verify", ref, "--repo", "acme/forum")
        assert tampered.returncode != 0
        assert errors(tampered) == [
            f"error: {ref} does not check out: the index lists {image_digest[:19]}… as linux/arm64, but its "
            "config says linux/amd64 (the index was altered or built wrongly) — do not deploy it; ask its publisher"
        ]

        # An image published without its SBOM.
        tiny_image(image, config=Path(env["DOCKER_CONFIG"]))
        bare = inv(repo, env, "push", "--by-digest", "--image", image, "--no-sbom")
        assert bare.returncode == 0, bare.stderr
        missing = inv(repo, env, "verify", f"{registry.host}/{REPO}@{bare.stdout.strip()}", "--repo", "acme/forum")
        assert missing.returncode != 0
        assert "sbom:       linux/amd64: none attached" in missing.stdout
        assert errors(missing)[0].endswith(
            "does not check out: no SBOM is attached to the linux/amd64 image — do not deploy it; ask its publisher"
        )

        unknown = inv(repo, env, "verify", f"{registry.host}/{REPO}:9.9.9")
        assert errors(unknown) == [
            f"error: {registry.host}/{REPO}:9.9.9 does not exist in the registry — check the tag (`inv tags` "
            "lists this build's)"
        ]
    finally:
        remove_image(image, config=Path(env["DOCKER_CONFIG"]))
