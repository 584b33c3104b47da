"""`inv tags` and `inv push`: thin tasks over atbb_kit.ops.publish (the rules and their reasons live there)."""

from __future__ import annotations

import os
import sys

from atbb_kit.ops.publish import (
    GITHUB_TOKEN_REGISTRIES,
    docker_client,
    failure_reason,
    floating_targets,
    github_floating_summary,
    github_push_summary,
    is_unreachable,
    latest_note,
    main_is_newer_than,
    move_floating,
    newest_main_build,
    private_docker_config,
    private_package_note,
    publish,
    push_order,
    registry_login,
    stderr_line,
    write_github,
)
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    help={
        "json": "Print one JSON object (tags, version, labels, publishable, ...) instead of one reference a line.",
    }
)
def tags(c, json=False):
    """Print the image references this checkout would be published as, one a line (stdout only)."""
    from atbb_kit.core.tags import format_for_github
    from atbb_kit.infra.checkout import plan_for

    cfg = kit(c).cfg
    plan = plan_for(cfg)
    for warning in plan.warnings:
        stderr_line(f"warning: {warning}")
    if not plan.publishable:
        stderr_line(f"note: not publishable: {plan.reason}")
    if json:
        import json as jsonlib

        data = {
            "tags": list(plan.refs),
            "version": plan.version,
            "labels": dict(plan.labels),
            "publishable": plan.publishable,
            "reason": plan.reason,
            "repository": plan.repository,
            "floating": [r for r in plan.refs if r.rsplit(":", 1)[1] in plan.floating],
            "warnings": list(plan.warnings),
        }
        print(jsonlib.dumps(data, indent=2))
    else:
        print("\n".join(plan.refs))
    sys.stdout.flush()
    outputs, summary = format_for_github(plan)
    write_github(os.environ, outputs, summary)


PUSH_STAGES = ("immutable", "floating")


@kit_task(
    help={
        "image": "Local image to publish (default: the plan's first reference, as tagged by `inv image`).",
        "only": "immutable: push only the tags that never move (1.2.3, main-<sha>); floating: only point 1.2, 1 "
        "and latest at the highest builds the registry holds (no local image needed). Default: both, in order.",
        "dry_run": DRY_RUN_HELP,
        "by_digest": "Push this platform's image without any tag (registry API), print its digest for "
        "`inv release`, which creates the multi-platform index and tags it.",
        "digest_file": "With --by-digest: also write the digest to this file (a folder ending in / gets a file "
        "named after the platform, e.g. linux-arm64).",
        "sbom": "With --by-digest: generate the image's CycloneDX SBOM and attach it to the pushed image "
        "(default; --no-sbom skips it).",
    }
)
def push(c, dry_run=False, image=None, only=None, by_digest=False, digest_file=None, sbom=True):
    """Push the immutable tags, then point the floating ones (latest last) at the highest published builds."""
    from atbb_kit.core import flags
    from atbb_kit.core.errors import ConfigError, KitError

    if only not in (None, *PUSH_STAGES):
        raise ConfigError(f"--only {only}: expected immutable or floating", "drop --only to run both stages")
    flags.image_ref("image", image)
    if digest_file and not by_digest:
        raise ConfigError("--digest-file needs --by-digest", "add --by-digest")
    if by_digest:
        if only:
            raise ConfigError("--by-digest pushes no tags, so --only does not apply", "drop --only")
        from atbb_kit.tasks.release import push_by_digest

        k = kit(c, dry_run=dry_run)
        digest = push_by_digest(k, plan_for_push(k.cfg), image, digest_file, sbom=sbom)
        if digest:
            print(digest, flush=True)
        return
    stages = PUSH_STAGES if only is None else (only,)
    k = kit(c, dry_run=dry_run)
    run = k.run
    plan = plan_for_push(k.cfg)
    registry = k.cfg.image.registry.lower()
    login, notes = registry_login(os.environ, registry)
    for note in notes:
        stderr_line(note)
    if "floating" in stages and login is None and not run.dry_run:
        raise KitError(
            "moving the floating tags (1.2, 1, latest) goes through the registry's API, which needs a token",
            "set ATBB_REGISTRY_TOKEN and ATBB_REGISTRY_USER (in GitHub Actions GITHUB_TOKEN is used for ghcr.io)",
        )
    digest = None
    if "immutable" in stages:
        digest = push_immutable(k, plan, registry, login, image)
    if "floating" in stages:
        push_floating(k, plan, registry, login)
    if digest is not None:
        print(digest, flush=True)


def plan_for_push(cfg):
    from atbb_kit.infra.checkout import plan_for

    plan = plan_for(cfg)
    plan.require_publishable()
    for warning in plan.warnings:
        stderr_line(f"warning: {warning}")
    return plan


def _credentials(login):
    from atbb_kit.infra.registry_api import Credentials

    return Credentials(login.user, login.token.reveal()) if login else None


def push_immutable(k, plan, registry, login, image):
    """`docker push` of the tags that never move, each checked in the registry; the digest they share."""
    from atbb_kit.commands import docker as commands
    from atbb_kit.core.errors import EngineUnavailable, KitError
    from atbb_kit.infra.registry_api import RegistryError, manifest_digest, split_reference

    run = k.run
    platforms = k.cfg.image.platforms
    if len(platforms) > 1 and not image:
        # buildx cannot load a multi-platform image into the engine, so there is nothing local to push.
        raise KitError(
            f"image.platforms lists {len(platforms)} platforms; a multi-platform image exists only in the "
            "buildx cache and cannot be pushed from the local engine",
            "push each platform's image with `inv push --by-digest` and join them with `inv release`",
        )
    docker = docker_client()
    source = image or plan.primary

    found = run.probe(commands.docker_image_id(docker, source))
    if not found.ok:
        stderr = found.stderr.lower()
        if found.returncode == 127:
            problem = EngineUnavailable(f"no docker client found ({docker})", commands.DOCKER_HINT)
        elif "no such image" in stderr:
            fix = "check --image" if image else "run `inv image` first (it builds and tags it)"
            problem = KitError(f"no local image {source}", fix)
        elif "cannot connect" in stderr or "daemon running" in stderr:
            problem = EngineUnavailable(
                "no Docker engine answers",
                "start the engine (sudo systemctl start docker, or scripts/ensure-docker.sh)",
            )
        else:
            problem = KitError(f"cannot inspect the local image {source} ({failure_reason(found.stderr)})")
        if not run.dry_run:
            raise problem
        stderr_line(f"note: a real push would stop here: {problem}")

    refs = [r for r in push_order(plan) if r.rsplit(":", 1)[1] not in plan.floating]
    stderr_line(f"==> pushing {source} as {len(refs)} tag(s) to {registry}" + (" (dry run)" if run.dry_run else ""))
    credentials = _credentials(login)
    fallback_noted = False

    def registry_digest(ref: str) -> str | None:
        nonlocal fallback_noted
        host, repository, tag = split_reference(ref)
        try:
            return manifest_digest(host, repository, tag, credentials=credentials)
        except RegistryError as exc:
            # Without our own credentials the API may refuse us although the docker client's stored
            # login could push: then the digest docker push reported (from the registry) must do.
            if credentials is not None or "refused" not in exc.what:
                raise
            if not fallback_noted:
                stderr_line(f"note: {exc.what}; trusting the digests `docker push` reports (set ATBB_REGISTRY_TOKEN)")
                fallback_noted = True
            return None

    with private_docker_config(login is not None) as config_dir:
        if login is not None:
            cmd = commands.docker_login(docker, registry, login.user, login.token, config_dir=config_dir)
            res = run.run(cmd, check=False, capture=True)
            if not res.ok:
                reason = failure_reason(res.stderr + "\n" + res.stdout)
                if is_unreachable(reason):
                    raise RegistryError(
                        f"registry {registry} is not reachable ({reason})",
                        "check image.registry (ATBB_IMAGE_REGISTRY) and that the registry is up",
                    )
                if reason in ("unauthorized", "denied"):
                    raise RegistryError(f"registry {registry} refused the login ({reason})", login.hint)
                raise RegistryError(f"docker login {registry} failed ({reason})", login.hint)
        for ref in refs:
            if ref != source:
                run.run(commands.docker_tag(docker, source, ref))
        digest = publish(run, docker, refs, registry=registry, config_dir=config_dir, registry_digest=registry_digest)

    if run.dry_run or digest is None:
        stderr_line(f"dry run: would push {', '.join(r.rsplit(':', 1)[1] for r in refs)} in that order")
        return None
    if registry in GITHUB_TOKEN_REGISTRIES:
        host, repository, tag = split_reference(refs[0])
        note = private_package_note(
            registry, refs[0], anonymous_digest=lambda ref: manifest_digest(host, repository, tag)
        )
        if note:
            stderr_line(note)
    write_github(os.environ, {"digest": digest}, github_push_summary(plan.repository, digest, refs))
    return digest


def push_floating(k, plan, registry, login):
    """Point 1.2, 1 and latest at the highest builds the registry holds (see publish.floating_targets)."""
    from atbb_kit.core.tags import sanitize_tag
    from atbb_kit.infra.checkout import run_git
    from atbb_kit.infra.registry_api import Repository, split_reference

    run, cfg = k.run, k.cfg
    if run.dry_run:
        stderr_line(
            "dry run: would then point the floating tags (X.Y, X, latest) at the highest builds "
            f"{plan.repository} holds in the registry"
        )
        return
    host, path, _ = split_reference(plan.primary)
    store = Repository(host, path, credentials=_credentials(login))
    root = cfg.root()

    def git(args):
        (res,) = run_git(root, [args])
        return res.ok, res.stdout

    release = cfg.release

    def branch_tag(sha: str) -> str:
        return sanitize_tag(release.default_branch, suffix=sha[: release.sha_length], fallback="branch")

    def decide(tags: list[str]) -> dict[str, str]:
        newest = newest_main_build(git, release.default_branch, branch_tag, set(tags))
        if newest is None:
            return floating_targets(tags)
        return floating_targets(tags, newest[0], main_is_newer_than(git, newest[1]))

    stderr_line(f"==> pointing the floating tags of {plan.repository} at the highest published builds")
    results = move_floating(store, decide, repository=plan.repository)
    note = latest_note(plan.version, plan.floating, results)
    if note:
        stderr_line(note)
    write_github(os.environ, {}, github_floating_summary(plan.repository, results))
