"""The pure pieces of `inv push --by-digest`, `inv release` and `inv platforms` (atbb_kit/ops/multiarch.py):
the runner matrix, platform checks, the index body, reading `docker save` archives of both layouts, the
push and index sequences against an in-memory registry, and the CLI's refusals that need no registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from atbb_kit.core.errors import KitError
from atbb_kit.infra.registry_api import RegistryError
from atbb_kit.ops import multiarch as ma
from tests.conftest import run_inv
from tests.e2e.registry import GIT_ENV, kit_repo


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_matrix_maps_each_platform_to_its_native_runner() -> None:
    assert ma.matrix(["linux/amd64", "linux/arm64"]) == {
        "include": [
            {"platform": "linux/amd64", "runner": "ubuntu-latest", "slug": "linux-amd64"},
            {"platform": "linux/arm64", "runner": "ubuntu-24.04-arm", "slug": "linux-arm64"},
        ]
    }
    with pytest.raises(KitError, match="linux/arm/v7, which has no native GitHub-hosted runner"):
        ma.matrix(["linux/amd64", "linux/arm/v7"])


@pytest.mark.parametrize(
    ("config", "platform"),
    [
        ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64"),
        ({"os": "linux", "architecture": "arm", "variant": "v7"}, "linux/arm/v7"),
    ],
)
def test_platform_of_a_config(config: dict, platform: str) -> None:
    assert ma.normalize_platform(ma.platform_of(config)) == platform


def entry(platform: str, n: str) -> ma.Entry:
    return ma.Entry("sha256:" + n * 64, ma.OCI_MANIFEST, 400, platform)


def test_check_platforms() -> None:
    both = ["linux/amd64", "linux/arm64"]
    ma.check_platforms([entry("linux/arm64", "b"), entry("linux/amd64", "a")], both, "r")
    with pytest.raises(KitError, match=r"r@sha256:b+ is a linux/arm64 image, and image.platforms is linux/amd64 — "):
        ma.check_platforms([entry("linux/amd64", "a"), entry("linux/arm64", "b")], ["linux/amd64"], "r")
    with pytest.raises(KitError, match="no image for linux/arm64 among the 1 digest"):
        ma.check_platforms([entry("linux/amd64", "a")], both, "r")
    with pytest.raises(KitError, match="are both linux/amd64 images"):
        ma.check_platforms([entry("linux/amd64", "a"), entry("linux/amd64", "c")], both, "r")


def test_index_body() -> None:
    body = json.loads(ma.index_for([entry("linux/amd64", "a"), entry("linux/arm64", "b")], {"k": "v"}))
    assert body["mediaType"] == ma.OCI_INDEX and body["schemaVersion"] == 2
    assert [m["platform"] for m in body["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert body["annotations"] == {"k": "v"}


def test_read_digests(tmp_path: Path) -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    (tmp_path / "linux-amd64").write_text(a + "\n")
    (tmp_path / "linux-arm64").write_text(b + "\n")
    assert ma.read_digests([a], str(tmp_path)) == [a, b]
    with pytest.raises(KitError, match="not a digest"):
        ma.read_digests(["sha256:12"], None)
    with pytest.raises(KitError, match="no digests given"):
        ma.read_digests([], None)
    with pytest.raises(KitError, match="no such folder"):
        ma.read_digests([], str(tmp_path / "nope"))


def saved_archive(path: Path, layers: list[bytes], *, oci: bool) -> bytes:
    """A `docker save` archive: Docker 20.10's layout (`<id>/layer.tar`) or Docker 25+'s (`blobs/sha256`)."""
    config = json.dumps({"os": "linux", "architecture": "arm64", "rootfs": {"diff_ids": []}}).encode()
    files: dict[str, bytes] = {}
    names = []
    for i, layer in enumerate(layers):
        name = f"blobs/sha256/{sha(layer)[7:]}" if oci else f"{i:064x}/layer.tar"
        files[name] = layer
        names.append(name)
    config_name = f"blobs/sha256/{sha(config)[7:]}" if oci else f"{sha(config)[7:]}.json"
    files[config_name] = config
    files["manifest.json"] = json.dumps([{"Config": config_name, "RepoTags": ["x:y"], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return config


@pytest.mark.parametrize("oci", [False, True])
def test_image_from_archive_compresses_plain_layers_and_keeps_gzip_ones(tmp_path: Path, oci: bool) -> None:
    plain = b"plain tar bytes " * 100
    already = gzip.compress(b"compressed tar bytes", mtime=0)
    config = saved_archive(tmp_path / "image.tar", [plain, already], oci=oci)
    got_config, blobs = ma.image_from_archive(tmp_path / "image.tar", tmp_path / "work")
    assert got_config == config
    assert gzip.decompress(blobs[0].path.read_bytes()) == plain
    assert blobs[1].path.read_bytes() == already
    assert [b.digest for b in blobs] == [sha(blobs[0].path.read_bytes()), sha(already)]
    # Deterministic: the same layer compresses to the same digest on every run (re-pushes upload nothing).
    _, again = ma.image_from_archive(tmp_path / "image.tar", tmp_path / "work2")
    assert [b.digest for b in again] == [b.digest for b in blobs]


class MemoryRegistry:
    """Blobs and manifests in dicts; `refuse_index` answers an index PUT the way a registry without OCI
    index support does."""

    def __init__(self, refuse_index: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.refuse_index = refuse_index
        self.log: list[str] = []

    def has_blob(self, digest: str) -> bool:
        return digest in self.blobs

    def put_blob(self, digest: str, size: int, data) -> None:
        body = data if isinstance(data, bytes) else data.read()
        assert sha(body) == digest and len(body) == size
        self.blobs[digest] = body
        self.log.append(f"blob {digest[:13]}")

    def blob(self, digest: str) -> bytes:
        return self.blobs[digest]

    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str:
        if self.refuse_index and media_type == ma.OCI_INDEX:
            raise RegistryError("registry r does not accept image indexes", "use another")
        self.manifests[reference] = (media_type, body)
        self.manifests[sha(body)] = (media_type, body)
        self.log.append(f"manifest {reference[:13]}")
        return sha(body)

    def manifest(self, reference: str) -> tuple[str, bytes]:
        return self.manifests[reference]

    def digest(self, reference: str) -> str | None:
        found = self.manifests.get(reference)
        return sha(found[1]) if found else None


def test_push_image_uploads_only_missing_blobs_and_tags_nothing(tmp_path: Path) -> None:
    config = saved_archive(tmp_path / "image.tar", [b"one" * 50, b"two" * 50], oci=False)
    _, layers = ma.image_from_archive(tmp_path / "image.tar", tmp_path / "work")
    reg = MemoryRegistry()
    digest, sent = ma.push_image(reg, config, layers, lambda _: None)
    assert set(reg.manifests) == {digest}  # by digest only: no tag
    assert sent == sum(b.size for b in layers) + len(config)
    again, sent_again = ma.push_image(reg, config, layers, lambda _: None)
    assert (again, sent_again) == (digest, 0)
    entry_ = ma.describe(reg, digest, "r")
    assert entry_.platform == "linux/arm64" and entry_.media_type == ma.OCI_MANIFEST


def test_put_index_tags_in_order_and_reports_what_was_not_pushed() -> None:
    reg = MemoryRegistry()
    body = ma.index_for([entry("linux/amd64", "a")], {})
    refs = ["r/x:1.2.3", "r/x:main-abc1234"]
    progress: list[str] = []
    digest = ma.put_index(reg, body, refs, progress=progress.append)
    assert [p.split()[2] for p in progress] == refs
    assert reg.digest("1.2.3") == reg.digest("main-abc1234") == digest
    with pytest.raises(RegistryError, match=r"does not accept image indexes; 0 of 2 tags pushed, not pushed: 1.2.3"):
        ma.put_index(MemoryRegistry(refuse_index=True), body, refs, progress=progress.append)


def test_describe_refuses_an_unknown_digest_and_an_index() -> None:
    reg = MemoryRegistry()
    with pytest.raises(RegistryError, match="does not exist in the registry"):
        ma.describe(reg, "sha256:" + "0" * 64, "r")
    index = reg.put_manifest("x", ma.OCI_INDEX, ma.index_for([entry("linux/amd64", "a")], {}))
    with pytest.raises(KitError, match="already a multi-platform index"):
        ma.describe(reg, index, "r")


def test_cli_refusals_without_a_registry(tmp_path: Path) -> None:
    repo = kit_repo(tmp_path / "repo")
    env = {**GIT_ENV, "ATBB_IMAGE_OWNER": "acme", "ATBB_REGISTRY_TOKEN": "", "GITHUB_TOKEN": ""}
    proc = run_inv("push", "--digest-file", "x", cwd=repo, env=env)
    assert proc.returncode != 0 and "error: --digest-file needs --by-digest — add --by-digest" in proc.stderr
    proc = run_inv("push", "--by-digest", "--only", "floating", cwd=repo, env=env)
    assert proc.returncode != 0 and "--by-digest pushes no tags, so --only does not apply" in proc.stderr
    proc = run_inv("release", "--digest", "sha256:" + "a" * 64, cwd=repo, env=env)
    assert proc.returncode != 0 and "creating the image index goes through the registry's API" in proc.stderr
    proc = run_inv("platforms", "--json", cwd=repo, env={**env, "ATBB_IMAGE_PLATFORMS": "linux/arm64,linux/amd64"})
    assert proc.returncode == 0, proc.stderr
    assert [i["runner"] for i in json.loads(proc.stdout)["include"]] == ["ubuntu-24.04-arm", "ubuntu-latest"]
