"""`inv platforms`, `inv release` and the `--by-digest` half of `inv push` (rules in atbb_kit/ops/multiarch.py)."""

from __future__ import annotations

import os
import sys

from atbb_kit.ops.publish import stderr_line, write_github
from atbb_kit.tasks._base import kit, kit_task


@kit_task(help={"json": 'Print the GitHub Actions matrix ({"include": [{platform, runner, slug}]}) as one line.'})
def platforms(c, json=False):
    """Print image.platforms, one a line, or as the publish workflow's matrix of native runners (--json)."""
    from atbb_kit.ops.multiarch import matrix

    cfg = kit(c).cfg
    wanted = list(cfg.image.platforms)
    if json:
        import json as jsonlib

        data = matrix(wanted)
        print(jsonlib.dumps(data, separators=(",", ":")), flush=True)
        write_github(os.environ, {"matrix": jsonlib.dumps(data, separators=(",", ":"))}, "")
    else:
        print("\n".join(wanted), flush=True)


def _api_login(k, action: str):
    """The registry login for API-only work; a token is required (the docker client's login is not ours)."""
    from atbb_kit.core.errors import KitError
    from atbb_kit.ops.publish import registry_login
    from atbb_kit.tasks.publish import _credentials

    registry = k.cfg.image.registry.lower()
    login, notes = registry_login(os.environ, registry)
    for note in notes:
        stderr_line(note)
    if login is None and not k.run.dry_run:
        raise KitError(
            f"{action} goes through the registry's API, which needs a token",
            "set ATBB_REGISTRY_TOKEN and ATBB_REGISTRY_USER (in GitHub Actions GITHUB_TOKEN is used for ghcr.io)",
        )
    return registry, login, _credentials(login)


def push_by_digest(k, plan, image, digest_file, sbom=True):
    """Push the local image without a tag through the registry's API; print and record its digest."""
    import json
    import tempfile
    from pathlib import Path

    from atbb_kit.commands import docker as commands
    from atbb_kit.commands.base import Command, argv
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra.registry_api import Repository, split_reference
    from atbb_kit.ops.multiarch import (
        image_from_archive,
        manifest_for,
        normalize_platform,
        platform_of,
        push_image,
        slug,
    )
    from atbb_kit.ops.publish import docker_client, failure_reason

    run, cfg = k.run, k.cfg
    _, _, credentials = _api_login(k, "pushing by digest")
    docker = docker_client()
    source = image or plan.primary
    host, path, _ = split_reference(plan.primary)
    repository = f"{host}/{path}"
    fmt = "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}"
    inspect = Command(argv(docker, "image", "inspect", "--format", fmt, source), install_hint=commands.DOCKER_HINT)
    found = run.probe(inspect)
    if not found.ok:
        fix = "check --image" if image else "run `inv image` first (it builds and tags it)"
        problem = KitError(f"no local image {source} ({failure_reason(found.stderr)})", fix)
        if not run.dry_run:
            raise problem
        stderr_line(f"note: a real push would stop here: {problem}")
        platform = "?"
    else:
        platform = normalize_platform(found.stdout.strip())
        wanted = [normalize_platform(p) for p in cfg.image.platforms]
        if platform not in wanted:
            raise KitError(
                f"{source} is a {platform} image, and image.platforms is {', '.join(cfg.image.platforms)}",
                "build it for one of those platforms, or add the platform to image.platforms",
            )
    stderr_line(f"==> pushing {source} ({platform}) to {repository} by digest, without a tag"
                + (" (dry run)" if run.dry_run else ""))  # fmt: skip
    if run.dry_run:
        run.run(Command(argv(docker, "save", "-o", "<tmp>/image.tar", source)), check=False)
        stderr_line(f"dry run: would upload its layers and config and PUT its manifest to {repository} by digest")
        return None
    store = Repository(host, path, credentials=credentials)
    with tempfile.TemporaryDirectory(prefix="atbb-push-") as tmp:
        archive = Path(tmp) / "image.tar"
        run.run(Command(argv(docker, "save", "-o", str(archive), source), install_hint=commands.DOCKER_HINT))
        config, layers = image_from_archive(archive, Path(tmp) / "blobs")
        archive.unlink()
        saved = platform_of(json.loads(config))
        digest, sent = push_image(store, config, layers, stderr_line)
        manifest_size = len(manifest_for(config, layers))
    stderr_line(f"pushed {repository}@{digest} ({normalize_platform(saved)}, {sent} bytes uploaded)")
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
    return digest


def attach_sbom(k, store, docker, source, labels, platform, digest, size) -> str:
    """Generate the image's CycloneDX SBOM, keep it in build/sbom/, attach it to `digest`; a summary line."""
    from datetime import UTC, datetime

    from atbb_kit.ops.multiarch import OCI_MANIFEST, slug
    from atbb_kit.ops.sbom import SBOM_TYPE, attach, describe_counts, generate, summarize

    document = generate(docker, source, labels).encode()
    out = k.cfg.root() / "build" / "sbom" / f"{slug(platform)}.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(document)
    counts = describe_counts(summarize(document))
    created = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
    ref, how = attach(store, subject, SBOM_TYPE, document, {"org.opencontainers.image.created": created})
    stderr_line(f"sbom: {counts}, CycloneDX, attached as {ref[:19]}… through the {how}; a copy in {out}")
    return f"\nSBOM (CycloneDX): {counts}, attached to the image (`{ref[:19]}…`)\n"


@kit_task(
    help={
        "image": "Local image to describe (default: the plan's first reference, as tagged by `inv image`).",
        "output": "Write the CycloneDX JSON here (default: build/sbom/<platform>.cdx.json).",
    }
)
def sbom(c, image=None, output=None):
    """Write the image's SBOM (CycloneDX: OS packages and the Node packages in it) and print its counts."""
    from pathlib import Path

    from atbb_kit.infra.checkout import plan_for
    from atbb_kit.ops.publish import docker_client
    from atbb_kit.ops.sbom import describe_counts, generate, summarize

    k = kit(c)
    plan = plan_for(k.cfg)
    source = image or plan.primary
    document = generate(docker_client(), source, plan.labels)
    out = Path(output) if output else k.cfg.root() / "build" / "sbom" / "image.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)
    counts = describe_counts(summarize(document))
    print(f"{source}: {counts} -> {out}", flush=True)
    write_github(os.environ, {"sbom": str(out)}, f"### SBOM of `{source}`\n\n{counts} (CycloneDX, `{out}`)\n")


@kit_task(
    iterable=["digest"],
    help={
        "digest": "A per-platform image digest from `inv push --by-digest` (repeat it, once per platform).",
        "digests_from": "A folder of files holding one digest each (what `--digest-file FOLDER/` wrote).",
        "only": "immutable: create the index and give it the tags that never move (1.2.3, main-<sha>); "
        "floating: only point 1.2, 1 and latest at the highest builds the registry holds. Default: both.",
    },
)
def release(c, digest=None, digests_from=None, only=None):
    """Create the multi-platform image index from per-platform digests and tag it (immutable first, latest last)."""
    from atbb_kit.core.errors import ConfigError
    from atbb_kit.infra.registry_api import Repository, split_reference
    from atbb_kit.ops.multiarch import check_platforms, describe, index_for, put_index, read_digests
    from atbb_kit.ops.publish import push_order
    from atbb_kit.tasks.publish import PUSH_STAGES, plan_for_push, push_floating

    if only not in (None, *PUSH_STAGES):
        raise ConfigError(f"--only {only}: expected immutable or floating", "drop --only to run both stages")
    stages = PUSH_STAGES if only is None else (only,)
    k = kit(c)
    plan = plan_for_push(k.cfg)
    registry, login, credentials = _api_login(k, "creating the image index")
    index_digest = None
    if "immutable" in stages:
        digests = read_digests(digest or [], digests_from)
        host, path, _ = split_reference(plan.primary)
        store = Repository(host, path, credentials=credentials)
        repository = f"{host}/{path}"
        entries = [describe(store, d, repository) for d in digests]
        check_platforms(entries, list(k.cfg.image.platforms), repository)
        order = [p for p in k.cfg.image.platforms]
        entries.sort(key=lambda e: [x.removesuffix("/v8") for x in order].index(e.platform))
        for e in entries:
            stderr_line(f"{e.platform}: {repository}@{e.digest}")
        body = index_for(entries, plan.labels)
        refs = [r for r in push_order(plan) if r.rsplit(":", 1)[1] not in plan.floating]
        stderr_line(f"==> pushing the {len(entries)}-platform index to {registry} as {len(refs)} tag(s)")
        index_digest = put_index(store, body, refs, progress=stderr_line)
        rows = "\n".join(f"| `{e.platform}` | `{e.digest[:19]}…` |" for e in entries)
        summary = (
            f"### Released `{plan.repository}`\n\nIndex `{index_digest}`\n\n| Platform | Digest |\n"
            f"| --- | --- |\n{rows}\n"
        )
        write_github(os.environ, {"digest": index_digest, "repository": repository}, summary)
    if "floating" in stages:
        push_floating(k, plan, registry, login)
    if index_digest:
        print(index_digest, flush=True)
    sys.stdout.flush()


@kit_task(
    help={
        "repo": "The GitHub repository (owner/name) whose publish workflow must have built it (default: the "
        "image's org.opencontainers.image.source label).",
        "require_provenance": "Fail when the provenance attestation cannot be checked (no gh or cosign).",
    }
)
def verify(c, ref, repo=None, require_provenance=False):
    """Show a published image's digest, platforms, labels, SBOM and whether its provenance checks out."""
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra.registry_api import Repository
    from atbb_kit.ops.publish import registry_login
    from atbb_kit.ops.verify import check_provenance, inspect, source_repo, split_ref
    from atbb_kit.tasks.publish import _credentials

    registry, repository, _ = split_ref(ref)
    login, notes = registry_login(os.environ, registry.lower())
    for note in notes:
        stderr_line(note)
    store = Repository(registry, repository, credentials=_credentials(login))
    report = inspect(store, ref)
    labelled = source_repo(report.platforms[0].labels) if report.platforms else None
    if repo and labelled and labelled.lower() != repo.lower():
        report.problems.append(f"the image says it comes from {labelled}, not {repo}")
    check_provenance(report, f"{registry}/{repository}@{report.digest}", repo or labelled)
    for line in report.lines():
        print(line, flush=True)
    if report.problems:
        raise KitError(f"{ref} does not check out: {report.problems[0]}", "do not deploy it; ask its publisher")
    if report.provenance_ok is False:
        raise KitError(f"{ref}: provenance {report.provenance}", "do not deploy it; ask its publisher")
    if report.provenance_ok is None and require_provenance:
        raise KitError(f"{ref}: provenance {report.provenance}", "install gh or cosign, or drop --require-provenance")
