"""Building the one image operators deploy (`inv image`, and `inv compose-up` when the image is missing).

The builder is the best the docker client offers (engine.detect_cli); the Dockerfile needs BuildKit, so the
classic builder is refused, and several platforms need buildx. A stale nginx.conf is refused before the
build (it would route the old way), and the image must fit `image.size_budget_mb`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from atbb_kit.commands import docker as commands
from atbb_kit.core import flags, nginx_conf
from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine
from atbb_kit.infra.checkout import plan_for
from atbb_kit.infra.console import console, image_summary


def check_flags(base, platform, tags, builder, cache) -> list[str] | None:
    """`inv image`'s flags, each named as a flag (not as the atbb.yaml line it overrides); the platforms."""
    platforms = flags.platforms(platform)
    flags.image_ref("base", base)
    flags.image_refs("tag", tags)
    flags.choice("builder", builder, commands.BUILDERS)
    flags.choice("cache", cache, flags.CACHE_BACKENDS)
    return platforms


def build(
    k, *, extra_tags: Sequence[str] | None = None, builder: str | None = None, no_cache: bool = False, cache=None
) -> None:
    """Build the image for `k.cfg` with its release tags (plus `extra_tags`); check it against the budget."""
    cfg = k.cfg
    # Before anything runs: a stale nginx.conf would build an image routing the old way.
    drift = nginx_conf.check_drift(cfg, cfg.nginx_conf_path())
    if drift:
        raise KitError(drift)
    plan = plan_for(cfg)
    cli = engine.detect_cli(k.run, builder)
    if cli.builder == "classic":
        raise KitError(
            f"docker/Dockerfile needs BuildKit (RUN --mount cache mounts), and {cli.path} offers only the "
            "classic builder",
            "use Docker 23+ (BuildKit by default), the 20.10 client at /usr/bin/docker (the kit sets "
            "DOCKER_BUILDKIT=1), or install docker buildx",
        )
    if len(cfg.image.platforms) > 1 and cli.builder != "buildx":
        raise KitError(
            f"building for {len(cfg.image.platforms)} platforms needs docker buildx ({cli.path} has none)",
            "install buildx, or build one platform with --platform linux/amd64",
        )
    if cache and cli.builder != "buildx":
        raise KitError(
            f"--cache {cache} needs docker buildx ({cli.path} builds with the {cli.builder} builder)",
            "install buildx (in Actions: docker/setup-buildx-action), or drop --cache",
        )
    tags = [*plan.refs, *(extra_tags or [])]
    cmd = commands.docker_build(
        cli.path,
        cli.builder,
        context=commands.KIT_ROOT,
        dockerfile=commands.DOCKERFILE,
        tags=tags,
        args=commands.build_args(cfg),
        labels=plan.labels,
        platforms=cfg.image.platforms if cli.builder == "buildx" else (),
        no_cache=no_cache,
        cache=cache,
    )
    console.say(f"==> building {tags[0]} on {cfg.image.base} with the {cli.builder} builder")
    result = k.run.run(cmd)
    if k.run.dry_run:
        return
    if len(cfg.image.platforms) > 1:
        console.result(
            f"built {len(cfg.image.platforms)} platforms in the buildx cache (not loaded locally): {tags[0]}"
        )
        return
    found = engine.image_size(tags[0])
    if found is None:
        raise KitError(f"the build finished but {tags[0]} is not in the local engine", "rerun with --no-cache")
    image_id, size = found
    base_found = engine.image_size(cfg.image.base)
    budget = cfg.image.size_budget_mb * 1_000_000
    image_summary(tags, image_id, size, base_found[1] if base_found else None, budget, result.seconds)
    if size > budget:
        raise KitError(
            f"image is {size / 1e6:.1f} MB, over image.size_budget_mb={cfg.image.size_budget_mb}",
            "trim the runtime stage, or raise image.size_budget_mb in atbb.yaml if the growth is intended",
        )


def pull(client, ref: str) -> None:
    """An explicit reference that is not local is someone's image, often a published one: fetch it (with the
    Docker SDK). Building ours under its name would test the wrong thing."""
    from docker.errors import DockerException  # the Docker SDK: kept out of `inv --list`

    console.say(f"==> {ref} is not local: pulling it")
    try:
        client.images.pull(ref)
    except DockerException as exc:
        raise KitError(
            f"image {ref} is not local and cannot be pulled ({str(exc).splitlines()[0][-200:]})",
            f"build it ({shlex.join(['inv', 'image', '--tag', ref])}), or check the reference and your registry login",
        ) from None


def build_to_test(k, ref: str) -> None:
    """The checkout's own image is missing: build it as `inv image` does, for `inv smoke`. Over the size
    budget the build still leaves the image behind: it is tested anyway, and the size line fails beside
    whatever else is wrong, instead of stopping at the first problem."""
    console.say(f"==> {ref} is not built yet: building it")
    try:
        build(k)
    except KitError as exc:
        if engine.image_size(ref) is None:
            raise
        console.error(str(exc))
        console.say(f"==> the build reported a problem (above) but produced {ref}: smoke-testing it anyway")
    if engine.image_size(ref) is None:
        raise KitError(
            f"the build did not load {ref} into the local engine (a multi-platform build stays in buildx)",
            "build one platform to test it: inv image --platform linux/amd64, then inv smoke",
        )
