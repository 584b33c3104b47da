"""One image per platform, pushed by digest, then one multi-platform OCI index: `inv push --by-digest`,
`inv release` and `inv platforms` (atbb_kit/tasks/publish.py).

Decisions (see "One image per platform, one index" in docs/decisions.md):
- `inv push --by-digest` writes the local image to the registry through its HTTP API, with no tag: the
  engine's `docker save` gives the config and the layers; each layer is gzip-compressed (unless it
  already is) and uploaded, then the OCI manifest is PUT under its own digest. `docker push` cannot push
  without a tag, and a temporary tag would be something to clean up (distribution cannot delete a tag
  without deleting the manifest). Nothing here needs buildx or a particular engine version.
- `inv release` takes the per-platform digests, reads each one's platform from its config blob (not from
  what the caller says it is), refuses a digest that does not exist, that is not a single-platform image,
  whose platform is not in image.platforms, or that repeats a platform, and refuses a set that misses a
  platform of image.platforms. Then it PUTs the OCI index under its digest, then under each immutable tag
  (each checked in the registry right after), and the floating tags follow through the usual
  reconciliation, `latest` last (publish.move_floating). A failure stops the sequence with the same "what
  was and was not pushed" note as `inv push`.
- The matrix of native runners is computed from image.platforms (`inv platforms --json`), so adding a
  platform to atbb.yaml is the only edit a new platform needs, and a platform without a native runner
  is refused rather than silently emulated.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from atbb_kit.commands import docker as docker_cmds
from atbb_kit.core.errors import KitError
from atbb_kit.core.tags import TagPlan
from atbb_kit.infra.console import console
from atbb_kit.infra.registry_api import Credentials, RegistryError, Repository, split_reference
from atbb_kit.ops.publish import (
    PUSH_STAGES,
    Login,
    _credentials,
    _progress_note,
    check_stage,
    docker_client,
    failure_reason,
    plan_for_push,
    push_floating,
    push_order,
    registry_login,
    write_github,
)
from atbb_kit.ops.sbom import SBOM_TYPE, attach, describe_counts, generate, summarize

if TYPE_CHECKING:
    from atbb_kit.core.config import Config

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
IMAGE_MANIFESTS = (OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
INDEXES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")

# GitHub-hosted runners that run each architecture natively.
NATIVE_RUNNERS = {"linux/amd64": "ubuntu-latest", "linux/arm64": "ubuntu-24.04-arm"}


def slug(platform: str) -> str:
    """`linux-arm64` for `linux/arm64`: a name usable in artifact and file names."""
    return platform.replace("/", "-")


def matrix(platforms: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The GitHub Actions matrix for the per-platform jobs: {"include": [{platform, runner, slug}, ...]}."""
    include = []
    for platform in platforms:
        runner = NATIVE_RUNNERS.get(platform)
        if runner is None:
            raise KitError(
                f"image.platforms lists {platform}, which has no native GitHub-hosted runner "
                f"(there are runners for {', '.join(NATIVE_RUNNERS)})",
                "drop it from image.platforms; emulated builds are not published untested",
            )
        include.append({"platform": platform, "runner": runner, "slug": slug(platform)})
    return {"include": include}


def platform_of(config: Mapping[str, object]) -> str:
    """`linux/arm64/v8`-style platform of an image config (os/architecture[/variant])."""
    parts = [str(config.get("os") or ""), str(config.get("architecture") or "")]
    if config.get("variant"):
        parts.append(str(config["variant"]))
    return "/".join(parts)


def normalize_platform(platform: str) -> str:
    """arm64's default variant is v8 (`linux/arm64/v8` == `linux/arm64`), amd64 has none."""
    return platform.removesuffix("/v8") if platform.startswith("linux/arm64/") else platform


def platform_dict(platform: str) -> dict[str, str]:
    os_, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    return {"architecture": arch, "os": os_, **({"variant": variant} if variant else {})}


# --------------------------------------------------------------------------------------------------------
# Pushing one local image by digest


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str
    path: Path | None = None
    data: bytes | None = None


class BlobStore(Protocol):
    def has_blob(self, digest: str) -> bool: ...
    def put_blob(self, digest: str, size: int, data) -> None: ...
    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str: ...
    def digest(self, reference: str) -> str | None: ...


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def image_from_archive(archive: Path, workdir: Path) -> tuple[bytes, list[Blob]]:
    """(config bytes, gzip-compressed layer blobs) of the one image in a `docker save` archive.

    Both archive layouts work: Docker 20.10's `<id>/layer.tar` and the OCI layout of Docker 25+ whose
    manifest.json names `blobs/sha256/<hex>` (already compressed with the containerd store).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        manifest_file = tar.extractfile("manifest.json")
        if manifest_file is None:
            raise KitError(f"{archive} is not a docker save archive (no manifest.json)")
        entries = json.load(manifest_file)
        if len(entries) != 1:
            raise KitError(f"the saved archive holds {len(entries)} images, expected one")
        entry = entries[0]
        config_file = tar.extractfile(entry["Config"])
        assert config_file is not None
        config = config_file.read()
        layers = []
        for i, name in enumerate(entry["Layers"]):
            member = tar.extractfile(name)
            assert member is not None
            out = workdir / f"layer-{i}.tar.gz"
            head = member.read(2)
            with out.open("wb") as fh:
                if head == b"\x1f\x8b":  # already gzip: upload the bytes as they are
                    fh.write(head)
                    shutil.copyfileobj(member, fh, 1 << 20)
                else:
                    # mtime=0 and no file name: the same layer compresses to the same bytes on every run.
                    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
                        gz.write(head)
                        shutil.copyfileobj(member, gz, 1 << 20)
            layers.append(Blob(_sha256_file(out), out.stat().st_size, LAYER_GZIP, path=out))
    return config, layers


def manifest_for(config: bytes, layers: Sequence[Blob]) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in layers],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def push_image(
    store: BlobStore, config: bytes, layers: Sequence[Blob], progress: Callable[[str], None]
) -> tuple[str, int]:
    """Upload what the registry lacks, then the manifest under its own digest (no tag); (digest, bytes sent)."""
    config_blob = Blob("sha256:" + hashlib.sha256(config).hexdigest(), len(config), OCI_CONFIG, data=config)
    sent = 0
    for blob in (*layers, config_blob):
        if store.has_blob(blob.digest):
            progress(f"exists {blob.digest[:19]} ({blob.size} bytes)")
            continue
        if blob.path is not None:
            with blob.path.open("rb") as fh:
                store.put_blob(blob.digest, blob.size, fh)
        else:
            store.put_blob(blob.digest, blob.size, blob.data)
        sent += blob.size
        progress(f"uploaded {blob.digest[:19]} ({blob.size} bytes)")
    body = manifest_for(config, layers)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    reported = store.put_manifest(digest, OCI_MANIFEST, body)
    if reported != digest or store.digest(digest) != digest:
        raise KitError(
            f"the registry stored the manifest as {reported}, not {digest}",
            "report it with the registry's name; the registry may rewrite manifests",
        )
    return digest, sent


# --------------------------------------------------------------------------------------------------------
# The index


class IndexStore(Protocol):
    def manifest(self, reference: str) -> tuple[str, bytes]: ...
    def blob(self, digest: str) -> bytes: ...
    def digest(self, reference: str) -> str | None: ...
    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str: ...


@dataclass(frozen=True)
class Entry:
    digest: str
    media_type: str
    size: int
    platform: str


def describe(store: IndexStore, digest: str, repository: str) -> Entry:
    """What `digest` is in the registry: its manifest's type and size, and the platform its config says."""
    if store.digest(digest) is None:
        raise RegistryError(
            f"{repository}@{digest} does not exist in the registry",
            "pass the digests `inv push --by-digest` printed for this run",
        )
    media_type, body = store.manifest(digest)
    if media_type in INDEXES:
        raise KitError(
            f"{repository}@{digest} is already a multi-platform index, not one platform's image",
            "pass the per-platform digests from `inv push --by-digest`",
        )
    try:
        config_digest = json.loads(body)["config"]["digest"]
        config = json.loads(store.blob(config_digest))
    except (ValueError, KeyError, TypeError):
        raise KitError(f"{repository}@{digest} is not an image manifest with a readable config") from None
    return Entry(digest, media_type, len(body), normalize_platform(platform_of(config)))


def check_platforms(entries: Sequence[Entry], wanted: Sequence[str], repository: str) -> None:
    """Exactly one image per platform of image.platforms: no stranger, no repeat, none missing."""
    wanted_n = [normalize_platform(p) for p in wanted]
    seen: dict[str, str] = {}
    for e in entries:
        if e.platform not in wanted_n:
            raise KitError(
                f"{repository}@{e.digest} is a {e.platform} image, and image.platforms is {', '.join(wanted)}",
                "pass only the digests of this run's per-platform jobs, or add the platform to image.platforms",
            )
        if e.platform in seen:
            raise KitError(
                f"{repository}@{seen[e.platform]} and @{e.digest} are both {e.platform} images",
                "pass one digest per platform",
            )
        seen[e.platform] = e.digest
    missing = [p for p in wanted_n if p not in seen]
    if missing:
        raise KitError(
            f"no image for {', '.join(missing)} among the {len(entries)} digest(s) given "
            f"(image.platforms is {', '.join(wanted)})",
            "every platform job must push (`inv push --by-digest`) before `inv release`",
        )


def index_for(entries: Sequence[Entry], annotations: Mapping[str, str]) -> bytes:
    """The OCI image index over the per-platform manifests, in image.platforms order."""
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": e.media_type, "digest": e.digest, "size": e.size, "platform": platform_dict(e.platform)}
            for e in entries
        ],
        **({"annotations": dict(annotations)} if annotations else {}),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def put_index(
    store: IndexStore,
    body: bytes,
    refs: Sequence[str],
    *,
    progress: Callable[[str], None],
) -> str:
    """PUT the index under its digest, then under each immutable tag of `refs`, each checked right after."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        store.put_manifest(digest, OCI_INDEX, body)
    except RegistryError as exc:
        raise RegistryError(exc.what + _progress_note(0, refs), exc.fix) from None
    for i, ref in enumerate(refs, start=1):
        tag = ref.rsplit(":", 1)[1]
        try:
            store.put_manifest(tag, OCI_INDEX, body)
            actual = store.digest(tag)
        except RegistryError as exc:
            raise RegistryError(exc.what + _progress_note(i - 1, refs), exc.fix) from None
        if actual != digest:
            raise RegistryError(
                f"{ref} resolves to {actual} in the registry, not the index {digest} "
                "(another push may have raced this one)" + _progress_note(i, refs),
                "rerun `inv release`",
            )
        progress(f"pushed {i}/{len(refs)} {ref} {digest}")
    return digest


def read_digests(values: Iterable[str], folder: str | None) -> list[str]:
    """Digests from --digest options and from the files of --digests-from (one digest a file, as
    `inv push --by-digest --digest-file` writes them), deduplicated, in a stable order."""
    found = [v.strip() for v in values if v.strip()]
    if folder:
        path = Path(folder)
        if not path.is_dir():
            raise KitError(f"--digests-from {folder}: no such folder", "download the digest artifacts first")
        found += [f.read_text().strip() for f in sorted(path.iterdir()) if f.is_file()]
    bad = [d for d in found if not re.fullmatch(r"sha256:[0-9a-f]{64}", d)]
    if bad:
        raise KitError(f"not a digest: {bad[0][:80]!r}", "digests look like sha256:<64 hex digits>")
    if not found:
        raise KitError("no digests given", "pass --digest sha256:... once per platform, or --digests-from FOLDER")
    return list(dict.fromkeys(found))


# --- the tasks: `inv platforms`, `inv push --by-digest`, `inv release` ---------------------------------


def print_platforms(cfg: Config, as_json: bool) -> None:
    """`inv platforms`: image.platforms one a line, or the publish workflow's matrix as one JSON line."""
    wanted = list(cfg.image.platforms)
    if as_json:
        data = json.dumps(matrix(wanted), separators=(",", ":"))
        console.result(data)
        write_github(os.environ, {"matrix": data}, "")
    else:
        console.result("\n".join(wanted))


def api_login(k, action: str) -> tuple[str, Login | None, Credentials | None]:
    """The registry login for API-only work; a token is required (the docker client's login is not ours)."""
    registry = k.cfg.image.registry.lower()
    login, notes = registry_login(os.environ, registry)
    for note in notes:
        console.say(note)
    if login is None and not k.run.dry_run:
        raise KitError(
            f"{action} goes through the registry's API, which needs a token",
            "set ATBB_REGISTRY_TOKEN and ATBB_REGISTRY_USER (in GitHub Actions GITHUB_TOKEN is used for ghcr.io)",
        )
    return registry, login, _credentials(login)


def push_by_digest(k, plan: TagPlan, image: str | None, digest_file: str | None, sbom: bool = True) -> str | None:
    """Push the local image without a tag through the registry's API; print and record its digest."""
    run, cfg = k.run, k.cfg
    _, _, credentials = api_login(k, "pushing by digest")
    docker = docker_client()
    source = image or plan.primary
    host, path, _ = split_reference(plan.primary)
    repository = f"{host}/{path}"
    found = run.probe(docker_cmds.docker_image_platform(docker, source))
    if not found.ok:
        fix = "check --image" if image else "run `inv image` first (it builds and tags it)"
        problem = KitError(f"no local image {source} ({failure_reason(found.stderr)})", fix)
        if not run.dry_run:
            raise problem
        console.say(f"note: a real push would stop here: {problem}")
        platform = "?"
    else:
        platform = normalize_platform(found.stdout.strip())
        wanted = [normalize_platform(p) for p in cfg.image.platforms]
        if platform not in wanted:
            raise KitError(
                f"{source} is a {platform} image, and image.platforms is {', '.join(cfg.image.platforms)}",
                "build it for one of those platforms, or add the platform to image.platforms",
            )
    console.say(
        f"==> pushing {source} ({platform}) to {repository} by digest, without a tag"
        + (" (dry run)" if run.dry_run else "")
    )
    if run.dry_run:
        run.run(docker_cmds.docker_save(docker, source, "<tmp>/image.tar"), check=False)
        console.say(f"dry run: would upload its layers and config and PUT its manifest to {repository} by digest")
        return None
    store = Repository(host, path, credentials=credentials)
    with tempfile.TemporaryDirectory(prefix="atbb-push-") as tmp:
        archive = Path(tmp) / "image.tar"
        run.run(docker_cmds.docker_save(docker, source, str(archive)))
        config, layers = image_from_archive(archive, Path(tmp) / "blobs")
        archive.unlink()
        saved = platform_of(json.loads(config))
        digest, sent = push_image(store, config, layers, console.say)
        manifest_size = len(manifest_for(config, layers))
    console.say(f"pushed {repository}@{digest} ({normalize_platform(saved)}, {sent} bytes uploaded)")
    sbom_line = ""
    if sbom:
        sbom_line = attach_sbom(k, store, docker, source, plan.labels, platform, digest, manifest_size)
    if digest_file:
        target = Path(digest_file)
        if target.is_dir() or digest_file.endswith("/"):
            target = target / slug(platform)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(digest + "\n")
    summary = f"### Pushed `{repository}` for {platform} by digest\n\n`{digest}` (no tag; `inv release` adds them)\n"
    summary += sbom_line
    outputs = {"digest": digest, "platform": platform, "slug": slug(platform), "repository": repository}
    write_github(os.environ, outputs, summary)
    console.result(digest)
    return digest


def attach_sbom(k, store, docker: str, source: str, labels, platform: str, digest: str, size: int) -> str:
    """Generate the image's CycloneDX SBOM, keep it in build/sbom/, attach it to `digest`; a summary line."""
    document = generate(k.run, docker, source, labels).encode()
    out = k.cfg.root() / "build" / "sbom" / f"{slug(platform)}.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(document)
    counts = describe_counts(summarize(document))
    created = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
    ref, how = attach(store, subject, SBOM_TYPE, document, {"org.opencontainers.image.created": created})
    console.say(f"sbom: {counts}, CycloneDX, attached as {ref[:19]}… through the {how}; a copy in {out}")
    return f"\nSBOM (CycloneDX): {counts}, attached to the image (`{ref[:19]}…`)\n"


def release(k, digests: Sequence[str], digests_from: str | None, only: str | None) -> None:
    """`inv release`: the multi-platform index from per-platform digests, tagged (immutable first, latest last)."""
    check_stage(only)
    stages = PUSH_STAGES if only is None else (only,)
    plan = plan_for_push(k.cfg)
    registry, login, credentials = api_login(k, "creating the image index")
    index_digest = None
    if "immutable" in stages:
        found = read_digests(digests, digests_from)
        host, path, _ = split_reference(plan.primary)
        store = Repository(host, path, credentials=credentials)
        repository = f"{host}/{path}"
        entries = [describe(store, d, repository) for d in found]
        check_platforms(entries, list(k.cfg.image.platforms), repository)
        order = list(k.cfg.image.platforms)
        entries.sort(key=lambda e: [x.removesuffix("/v8") for x in order].index(e.platform))
        for e in entries:
            console.say(f"{e.platform}: {repository}@{e.digest}")
        body = index_for(entries, plan.labels)
        refs = [r for r in push_order(plan) if r.rsplit(":", 1)[1] not in plan.floating]
        console.say(f"==> pushing the {len(entries)}-platform index to {registry} as {len(refs)} tag(s)")
        index_digest = put_index(store, body, refs, progress=console.say)
        rows = "\n".join(f"| `{e.platform}` | `{e.digest[:19]}…` |" for e in entries)
        summary = (
            f"### Released `{plan.repository}`\n\nIndex `{index_digest}`\n\n| Platform | Digest |\n"
            f"| --- | --- |\n{rows}\n"
        )
        write_github(os.environ, {"digest": index_digest, "repository": repository}, summary)
    if "floating" in stages:
        push_floating(k, plan, registry, login)
    if index_digest:
        console.result(index_digest)
