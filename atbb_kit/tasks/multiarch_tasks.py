"""`inv platforms`, `inv release` and the `--by-digest` half of `inv push` (rules in atbb_kit/multiarch.py)."""

from __future__ import annotations

import os
import sys

from atbb_kit.publish import stderr_line, write_github
from atbb_kit.tasks._base import kit, kit_task


@kit_task(help={"json": 'Print the GitHub Actions matrix ({"include": [{platform, runner, slug}]}) as one line.'})
def platforms(c, json=False):
    """Print image.platforms, one a line, or as the publish workflow's matrix of native runners (--json)."""
    from atbb_kit.multiarch import matrix

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
    from atbb_kit.errors import KitError
    from atbb_kit.publish import registry_login
    from atbb_kit.tasks.release_tasks import _credentials

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


def push_by_digest(k, plan, image, digest_file):
    """Push the local image without a tag through the registry's API; print and record its digest."""
    import json
    import tempfile
    from pathlib import Path

    from atbb_kit import commands
    from atbb_kit.errors import KitError
    from atbb_kit.multiarch import image_from_archive, normalize_platform, platform_of, push_image, slug
    from atbb_kit.publish import docker_client, failure_reason
    from atbb_kit.registry_api import Repository, split_reference
    from atbb_kit.runner import Command, argv

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
    stderr_line(f"pushed {repository}@{digest} ({normalize_platform(saved)}, {sent} bytes uploaded)")
    if digest_file:
        target = Path(digest_file)
        if target.is_dir() or digest_file.endswith("/"):
            target = target / slug(platform)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(digest + "\n")
    summary = f"### Pushed `{repository}` for {platform} by digest\n\n`{digest}` (no tag; `inv release` adds them)\n"
    outputs = {"digest": digest, "platform": platform, "slug": slug(platform), "repository": repository}
    write_github(os.environ, outputs, summary)
    return digest


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
    from atbb_kit.errors import ConfigError
    from atbb_kit.multiarch import check_platforms, describe, index_for, put_index, read_digests
    from atbb_kit.publish import push_order
    from atbb_kit.registry_api import Repository, split_reference
    from atbb_kit.tasks.release_tasks import PUSH_STAGES, plan_for_push, push_floating

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
