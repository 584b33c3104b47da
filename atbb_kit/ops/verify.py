"""`inv verify REF`: what an operator can check about a published image before running it.

Decisions (see "inv verify" in docs/decisions.md):
- Everything but provenance is read from the registry's HTTP API (registry_api.py), so no pull and no
  Docker engine is needed: the digest the reference resolves to, its platforms (an index's entries, each
  checked against its own config blob: an index that claims another platform than the image's config
  is reported as inconsistent), the OCI labels of each image, and the SBOM attached to each platform's
  image (the OCI referrers API, or the `sha256-<hex>` fallback tag), summarized as counts.
- Provenance is a signature check, which needs Sigstore's trust root and GitHub's attestation store:
  `gh attestation verify oci://REF --repo OWNER/REPO --signer-workflow OWNER/REPO/.github/workflows/
  publish.yml` when the GitHub CLI is installed, else cosign's `verify-attestation` with the workflow as
  certificate identity; with neither, the report says which to install and exits 0 unless
  --require-provenance. The repository is the image's `org.opencontainers.image.source` label unless
  --repo names it (a label is what the image claims; --repo is what the operator expects).
- Exit codes: 0 checked (or provenance not checkable and not required), 1 something does not check out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from atbb_kit.commands.base import Command
from atbb_kit.commands.provenance import provenance_argv
from atbb_kit.core.errors import KitError
from atbb_kit.infra.console import console
from atbb_kit.infra.registry_api import Repository, split_reference
from atbb_kit.infra.runner import Runner
from atbb_kit.ops.multiarch import normalize_platform, platform_of
from atbb_kit.ops.publish import _credentials, registry_login
from atbb_kit.ops.sbom import describe_counts, find_referrers, sbom_of, summarize

OCI_INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
SIGSTORE_BUNDLE = re.compile(r"^application/vnd\.dev\.sigstore\.bundle")
WORKFLOW = ".github/workflows/publish.yml"


def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry, repository, tag or digest) of `host/owner/name:tag` or `host/owner/name@sha256:...`."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        registry, _, repository = name.partition("/")
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or not repository:
            raise KitError(f"{ref!r} is not a reference like registry/owner/name@sha256:...")
        return registry, repository, digest
    try:
        return split_reference(ref)
    except ValueError as exc:
        raise KitError(f"{exc}", "pass a full reference like ghcr.io/OWNER/atbb:1.2.3") from None


@dataclass
class PlatformReport:
    platform: str
    digest: str
    labels: dict[str, str]
    sbom: str  # summary line, or why there is none
    sbom_ok: bool


@dataclass
class Report:
    ref: str
    digest: str
    media_type: str
    platforms: list[PlatformReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    attestations: int = 0  # Sigstore bundles attached in the registry (found, not verified here)
    provenance: str = ""
    provenance_ok: bool | None = None  # None: not checked

    def lines(self) -> list[str]:
        out = [f"image:      {self.ref}", f"digest:     {self.digest}", f"kind:       {self.media_type}"]
        out.append("platforms:  " + ", ".join(p.platform for p in self.platforms))
        first = self.platforms[0].labels if self.platforms else {}
        for key in sorted(first):
            if key.startswith("org.opencontainers.image."):
                out.append(f"label:      {key}={first[key]}")
        for p in self.platforms:
            out.append(f"sbom:       {p.platform}: {p.sbom}")
        out.append(f"provenance: {self.provenance}")
        out += [f"problem:    {p}" for p in self.problems]
        return out


def inspect(store, ref: str) -> Report:
    """Digest, platforms, labels and SBOMs of `ref`, read from the registry; consistency problems listed."""
    _, _, reference = split_ref(ref)
    digest = store.digest(reference)
    if digest is None:
        raise KitError(f"{ref} does not exist in the registry", "check the tag (`inv tags` lists this build's)")
    media_type, body = store.manifest(digest)
    report = Report(ref, digest, media_type)
    if media_type in OCI_INDEXES:
        entries = [m for m in json.loads(body).get("manifests", []) if m.get("platform", {}).get("os") != "unknown"]
    else:
        entries = [{"digest": digest, "platform": None}]
    for entry in entries:
        _, manifest = store.manifest(entry["digest"])
        config = json.loads(store.blob(json.loads(manifest)["config"]["digest"]))
        platform = normalize_platform(platform_of(config))
        claimed = entry.get("platform")
        if claimed is not None:
            said = normalize_platform(
                "/".join(x for x in (claimed.get("os"), claimed.get("architecture"), claimed.get("variant")) if x)
            )
            if said != platform:
                report.problems.append(
                    f"the index lists {entry['digest'][:19]}… as {said}, but its config says {platform} "
                    "(the index was altered or built wrongly)"
                )
        labels = {str(k): str(v) for k, v in ((config.get("config") or {}).get("Labels") or {}).items()}
        found = sbom_of(store, entry["digest"], lambda d: store.blob(d, limit=64 << 20))
        if found is None:
            sbom_line, sbom_ok = "none attached", False
            report.problems.append(f"no SBOM is attached to the {platform} image")
        else:
            document, how = found
            sbom_line, sbom_ok = f"{describe_counts(summarize(document))} (CycloneDX, found through the {how})", True
        report.platforms.append(PlatformReport(platform, entry["digest"], labels, sbom_line, sbom_ok))
        bundles, _ = find_referrers(store, entry["digest"])
        report.attestations += sum(1 for b in bundles if SIGSTORE_BUNDLE.match(str(b.get("artifactType", ""))))
    bundles, _ = find_referrers(store, digest)
    report.attestations += sum(1 for b in bundles if SIGSTORE_BUNDLE.match(str(b.get("artifactType", ""))))
    return report


def source_repo(labels: dict[str, str]) -> str | None:
    """`owner/repo` from org.opencontainers.image.source (https://github.com/owner/repo)."""
    match = re.fullmatch(
        r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", labels.get("org.opencontainers.image.source", "")
    )
    return match[1] if match else None


def check_provenance(
    report: Report,
    ref: str,
    repo: str | None,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[[Sequence[str]], tuple[int, str]] | None = None,
) -> None:
    if repo is None:
        report.provenance = "not checked: the image has no GitHub source label and --repo was not given"
        return
    commands = provenance_argv(ref, repo, WORKFLOW)
    tool = next((t for t in ("gh", "cosign") if which(t)), None)
    found = f"{report.attestations} Sigstore attestation bundle(s) attached in the registry"
    if tool is None:
        report.provenance = (
            f"not checked: neither gh (GitHub CLI) nor cosign is installed ({found}); install gh and run "
            f"`{' '.join(commands['gh'])}`"
        )
        return

    def default_run(argv: Sequence[str]) -> tuple[int, str]:
        res = Runner(echo=False).probe(Command(tuple(argv)), timeout=300)
        return res.returncode, (res.stderr or res.stdout).strip()

    code, output = (run or default_run)(commands[tool])
    last = output.splitlines()[-1][:200] if output.strip() else f"exit {code}"
    if code == 0:
        report.provenance, report.provenance_ok = f"verified with {tool}: built by {repo}/{WORKFLOW}", True
    else:
        report.provenance, report.provenance_ok = f"NOT verified with {tool} ({last})", False


def verify_ref(ref: str, repo: str | None, require_provenance: bool) -> None:
    """`inv verify REF`: the report on stdout; a KitError when the image does not check out."""
    registry, repository, _ = split_ref(ref)
    login, notes = registry_login(os.environ, registry.lower())
    for note in notes:
        console.say(note)
    store = Repository(registry, repository, credentials=_credentials(login))
    report = inspect(store, ref)
    labelled = source_repo(report.platforms[0].labels) if report.platforms else None
    if repo and labelled and labelled.lower() != repo.lower():
        report.problems.append(f"the image says it comes from {labelled}, not {repo}")
    check_provenance(report, f"{registry}/{repository}@{report.digest}", repo or labelled)
    for line in report.lines():
        console.result(line)
    if report.problems:
        raise KitError(f"{ref} does not check out: {report.problems[0]}", "do not deploy it; ask its publisher")
    if report.provenance_ok is False:
        raise KitError(f"{ref}: provenance {report.provenance}", "do not deploy it; ask its publisher")
    if report.provenance_ok is None and require_provenance:
        raise KitError(f"{ref}: provenance {report.provenance}", "install gh or cosign, or drop --require-provenance")
