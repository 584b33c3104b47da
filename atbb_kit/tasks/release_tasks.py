"""`inv tags` and `inv push`: thin tasks over atbb_kit.publish (the rules and their reasons live there)."""

from __future__ import annotations

import os
import sys

from atbb_kit.publish import (
    docker_client,
    failure_reason,
    github_push_summary,
    is_unreachable,
    private_docker_config,
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
    from atbb_kit.release import plan_for
    from atbb_kit.tags import format_for_github

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


@kit_task(
    help={
        "image": "Local image to publish (default: the plan's first reference, as tagged by `inv image`).",
        "dry_run": DRY_RUN_HELP,
    }
)
def push(c, dry_run=False, image=None):
    """Push the image under every release tag (latest last) and verify each in the registry."""
    from atbb_kit import commands
    from atbb_kit.errors import EngineUnavailable, KitError
    from atbb_kit.registry_api import Credentials, RegistryError, manifest_digest, split_reference
    from atbb_kit.release import plan_for

    k = kit(c, dry_run=dry_run)
    run = k.run
    plan = plan_for(k.cfg)
    plan.require_publishable()
    for warning in plan.warnings:
        stderr_line(f"warning: {warning}")
    registry = k.cfg.image.registry.lower()
    login, notes = registry_login(os.environ, registry)
    for note in notes:
        stderr_line(note)
    platforms = k.cfg.image.platforms
    if len(platforms) > 1 and not image:
        # buildx cannot load a multi-platform image into the engine, so there is nothing local to push.
        raise KitError(
            f"image.platforms lists {len(platforms)} platforms; a multi-platform image exists only in the "
            "buildx cache and cannot be pushed from the local engine",
            "publish one platform (ATBB_IMAGE_PLATFORMS=linux/amd64), or push with buildx while building",
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

    refs = push_order(plan)
    stderr_line(f"==> pushing {source} as {len(refs)} tag(s) to {registry}" + (" (dry run)" if run.dry_run else ""))
    credentials = Credentials(login.user, login.token.reveal()) if login else None
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
        return
    print(digest, flush=True)
    write_github(os.environ, {"digest": digest}, github_push_summary(plan.repository, digest, refs))
