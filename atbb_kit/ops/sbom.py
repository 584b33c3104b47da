"""The image's software bill of materials (CycloneDX JSON) and where it is kept in the registry.

Used by `inv sbom`, `inv push --by-digest` (which attaches it to the pushed image) and `inv verify`.

Decisions (see "SBOM" in docs/decisions.md):
- Read from the image's filesystem, not from the lockfile: what an operator runs is what is in the image.
  One `docker export` of a created (never started) container is streamed once and gives the OS packages
  (Alpine's /lib/apk/db/installed, Debian's /var/lib/dpkg/status, the distribution from /etc/os-release),
  the Node packages actually installed (every `node_modules/<name>/package.json` and
  `node_modules/@scope/<name>/package.json` that is a file, not a pnpm symlink; workspace packages of the
  app under /app as well) and Node.js itself (its node_version.h when the base ships it).
- CycloneDX 1.6 JSON written with cyclonedx-python-lib (the CycloneDX project's own Python library), one
  component per package with its package URL (pkg:apk, pkg:deb, pkg:npm), so scanners can match them.
  @cyclonedx/cyclonedx-npm was the other candidate: it runs `npm ls` in a project, which does not read a
  pnpm `node_modules` layout and would need npm inside the image at build time.
- Attached to the image it describes as an OCI 1.1 referrer: an artifact manifest (artifactType
  application/vnd.cyclonedx+json) whose `subject` is the image manifest. A registry that implements the
  referrers API says so (the OCI-Subject header); one that does not (distribution 2.8, used for the tests)
  gets the spec's fallback: the index tagged `sha256-<hex of the image digest>` lists the referrers, and
  is updated by reading it, adding the new descriptor and writing it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from packageurl import PackageURL

from atbb_kit.commands import docker as docker_cmds
from atbb_kit.core.errors import KitError
from atbb_kit.infra.checkout import plan_for
from atbb_kit.infra.console import console
from atbb_kit.infra.runner import Runner
from atbb_kit.ops.publish import docker_client, write_github

SBOM_TYPE = "application/vnd.cyclonedx+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_NODE_PKG = re.compile(r"(?:^|/)node_modules/((?:@[^/]+/)?[^/@.][^/]*)/package\.json$")
_WORKSPACE_PKG = re.compile(r"^app/(?:[^/]+/)*[^/]+/package\.json$")
_NODE_VERSION = re.compile(r"#define NODE_(MAJOR|MINOR|PATCH)_VERSION (\d+)")


@dataclass
class Inventory:
    distro: str = ""  # os-release ID (alpine, debian)
    distro_version: str = ""
    os_packages: list[tuple[str, str, str]] = field(default_factory=list)  # (name, version, arch)
    os_kind: str = ""  # apk or deb
    npm: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, version) -> first path seen
    node: str = ""


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip().strip('"')
    return out


def parse_dpkg_status(text: str) -> list[tuple[str, str, str]]:
    """(name, version, arch) of every installed package in a dpkg status file."""
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and "installed" in fields.get("Status", "").split():
            found.append((fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")))
    return found


def parse_apk_installed(text: str) -> list[tuple[str, str, str]]:
    """(name, version, arch) of every package in Alpine's /lib/apk/db/installed (P:, V:, A: lines)."""
    found = []
    for stanza in text.split("\n\n"):
        fields = {line[0]: line[2:] for line in stanza.splitlines() if len(line) > 2 and line[1] == ":"}
        if fields.get("P"):
            found.append((fields["P"], fields.get("V", ""), fields.get("A", "")))
    return found


def scan(stream: IO[bytes]) -> Inventory:
    """One pass over a `docker export` tar stream."""
    inv = Inventory()
    versions: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.lstrip("./")
            wanted = name in ("etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status", "lib/apk/db/installed")
            npm = _NODE_PKG.search(name) or (name.startswith("app/") and _WORKSPACE_PKG.match(name) and
                                             "/node_modules/" not in name)  # fmt: skip
            node_h = name == "usr/local/include/node/node_version.h"
            if not (wanted or npm or node_h) or member.size > 8 << 20:
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            text = fh.read().decode("utf-8", errors="replace")
            if name.endswith("os-release") and not inv.distro:
                release = parse_os_release(text)
                inv.distro, inv.distro_version = release.get("ID", ""), release.get("VERSION_ID", "")
            elif name == "var/lib/dpkg/status":
                inv.os_packages, inv.os_kind = parse_dpkg_status(text), "deb"
            elif name == "lib/apk/db/installed":
                inv.os_packages, inv.os_kind = parse_apk_installed(text), "apk"
            elif node_h:
                versions.update(_NODE_VERSION.findall(text))
            else:
                try:
                    data = json.loads(text)
                except ValueError:
                    continue
                if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in ("name", "version")):
                    inv.npm.setdefault((data["name"], data["version"]), "/" + name.rsplit("/", 1)[0])
    if {"MAJOR", "MINOR", "PATCH"} <= versions.keys():
        inv.node = f"{versions['MAJOR']}.{versions['MINOR']}.{versions['PATCH']}"
    return inv


def to_cyclonedx(inv: Inventory, image: str, labels: Mapping[str, str] | None = None) -> str:
    """CycloneDX 1.6 JSON for the inventory, the image as the BOM's subject."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    labels = labels or {}
    bom = Bom()
    name, _, version = image.rpartition("@")[0].rpartition(":") if "@" in image else image.rpartition(":")
    bom.metadata.component = Component(
        name=labels.get("org.opencontainers.image.title") or name or image,
        version=labels.get("org.opencontainers.image.version") or version or None,
        type=ComponentType.CONTAINER,
        bom_ref="image",
    )
    distro = inv.distro or ("alpine" if inv.os_kind == "apk" else "debian")
    for pkg, ver, arch in sorted(inv.os_packages):
        qualifiers = {k: v for k, v in (("arch", arch), ("distro", f"{distro}-{inv.distro_version}")) if v}
        purl = PackageURL(type=inv.os_kind, namespace=distro, name=pkg, version=ver, qualifiers=qualifiers)
        bom.components.add(Component(name=pkg, version=ver, type=ComponentType.LIBRARY, purl=purl,
                                     bom_ref=f"{inv.os_kind}:{pkg}@{ver}:{arch}"))  # fmt: skip
    for (pkg, ver), path in sorted(inv.npm.items()):
        scope, _, short = pkg.rpartition("/") if pkg.startswith("@") else ("", "", pkg)
        purl = PackageURL(type="npm", namespace=scope or None, name=short, version=ver)
        bom.components.add(
            Component(
                name=pkg,
                version=ver,
                type=ComponentType.LIBRARY,
                purl=purl,
                bom_ref=f"npm:{pkg}@{ver}",
                properties=[Property(name="atbb:path", value=path)],
            )
        )
    if inv.node:
        bom.components.add(
            Component(name="node", version=inv.node, type=ComponentType.PLATFORM,
                      purl=PackageURL(type="generic", name="node", version=inv.node), bom_ref="node")
        )  # fmt: skip
    # Everything found is in the image: the image depends on each of them (a flat, complete graph).
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return JsonV1Dot6(bom).output_as_string(indent=2)


def summarize(document: bytes | str) -> dict[str, int]:
    """{"components": N, "apk"/"deb": n, "npm": n, ...}: counts by package URL type."""
    try:
        data = json.loads(document)
        components = data.get("components") or []
    except (ValueError, AttributeError):
        raise KitError("the SBOM is not CycloneDX JSON", "regenerate it with `inv sbom`") from None
    counts: dict[str, int] = {"components": len(components)}
    for c in components:
        kind = str(c.get("purl", "pkg:other/")).removeprefix("pkg:").split("/", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def describe_counts(counts: Mapping[str, int]) -> str:
    names = {"apk": "Alpine packages", "deb": "Debian packages", "npm": "npm packages", "generic": "other"}
    parts = [f"{n} {names.get(k, k)}" for k, n in sorted(counts.items()) if k != "components"]
    return f"{counts.get('components', 0)} components" + (f" ({', '.join(parts)})" if parts else "")


def generate(run: Runner, docker: str, image: str, labels: Mapping[str, str] | None = None) -> str:
    """The CycloneDX JSON of a local image: `docker create` (never started), `docker export`, scan, remove."""
    name = f"atbb-sbom-{uuid.uuid4().hex[:12]}"
    created = run.run(
        docker_cmds.docker_create(docker, name, image, "true"), check=False, capture=True, quiet=True, timeout=120
    )
    if not created.ok:
        raise KitError(f"cannot read the image {image} ({created.stderr.strip()[-200:]})", "build it with `inv image`")
    try:
        inv, exported = run.read_stream(docker_cmds.docker_export(docker, name), scan, timeout=300)
        if not exported.ok:
            raise KitError(f"docker export of {image} failed ({exported.stderr.strip()[-200:]})")
    finally:
        run.run(docker_cmds.docker_remove(docker, name), check=False, capture=True, quiet=True, timeout=60)
    if not inv.os_packages and not inv.npm:
        # Honest rather than fatal: an image built FROM scratch has nothing to list.
        console.warn(f"found neither OS packages nor Node packages in {image}; its SBOM lists none")
    return to_cyclonedx(inv, image, labels)


# --------------------------------------------------------------------------------------------------------
# Referrers: the SBOM next to the image in the registry


class ReferrerStore(Protocol):
    def has_blob(self, digest: str) -> bool: ...
    def put_blob(self, digest: str, size: int, data) -> None: ...
    def put_manifest_answer(self, reference: str, media_type: str, body: bytes) -> tuple[str, Mapping[str, str]]: ...
    def manifest(self, reference: str) -> tuple[str, bytes]: ...
    def digest(self, reference: str) -> str | None: ...
    def referrers(self, digest: str) -> list[dict] | None: ...


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for a subject digest: sha256:abc... -> sha256-abc..."""
    return digest.replace(":", "-", 1)


def attach(
    store: ReferrerStore,
    subject: Mapping[str, object],
    artifact_type: str,
    payload: bytes,
    annotations: Mapping[str, str],
) -> tuple[str, str]:
    """Push `payload` as an artifact that refers to `subject` (a descriptor); (its digest, how it is found)."""
    for data, _ in ((EMPTY, EMPTY_TYPE), (payload, artifact_type)):
        digest = _sha(data)
        if not store.has_blob(digest):
            store.put_blob(digest, len(data), data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": _sha(EMPTY), "size": len(EMPTY)},
        "layers": [{"mediaType": artifact_type, "digest": _sha(payload), "size": len(payload)}],
        "subject": dict(subject),
        "annotations": dict(annotations),
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest, headers = store.put_manifest_answer(_sha(body), OCI_MANIFEST, body)
    if headers.get("OCI-Subject"):
        return digest, "referrers API"
    # The referrers tag schema: an index tagged sha256-<hex> lists every referrer of the subject.
    tag = fallback_tag(str(subject["digest"]))
    existing: list[dict] = []
    if store.digest(tag) is not None:
        _, current = store.manifest(tag)
        existing = [m for m in json.loads(current).get("manifests", []) if m.get("digest") != digest]
    entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "artifactType": artifact_type,
             "annotations": dict(annotations)}  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*existing, entry]}
    store.put_manifest_answer(tag, OCI_INDEX, json.dumps(index, separators=(",", ":")).encode())
    return digest, f"tag {tag} (the registry has no referrers API)"


def find_referrers(store: ReferrerStore, digest: str, artifact_type: str | None = None) -> tuple[list[dict], str]:
    """Referrer descriptors of `digest` (filtered by artifact type), from the referrers API or the fallback tag."""
    found = store.referrers(digest)
    how = "referrers API"
    if found is None:
        tag = fallback_tag(digest)
        how = f"tag {tag}"
        found = json.loads(store.manifest(tag)[1]).get("manifests", []) if store.digest(tag) else []
    return [d for d in found if artifact_type is None or d.get("artifactType") == artifact_type], how


def sbom_of(store: ReferrerStore, digest: str, blob) -> tuple[bytes, str] | None:
    """The newest SBOM attached to `digest` (its bytes) and how it was found, or None."""
    found, how = find_referrers(store, digest, SBOM_TYPE)
    if not found:
        return None
    newest = max(found, key=lambda d: (d.get("annotations") or {}).get("org.opencontainers.image.created", ""))
    _, body = store.manifest(newest["digest"])
    layers = [layer for layer in json.loads(body).get("layers", []) if layer.get("mediaType") == SBOM_TYPE]
    if not layers:
        return None
    return blob(layers[0]["digest"]), how


def components(document: bytes) -> Iterable[dict]:
    return json.loads(document).get("components") or []


def write_sbom(k, image: str | None, output: str | None) -> None:
    """`inv sbom`: the image's CycloneDX document in a file, and its counts on stdout."""
    plan = plan_for(k.cfg)
    source = image or plan.primary
    document = generate(k.run, docker_client(), source, plan.labels)
    out = Path(output) if output else k.cfg.root() / "build" / "sbom" / "image.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)
    counts = describe_counts(summarize(document))
    console.result(f"{source}: {counts} -> {out}")
    write_github(os.environ, {"sbom": str(out)}, f"### SBOM of `{source}`\n\n{counts} (CycloneDX, `{out}`)\n")
