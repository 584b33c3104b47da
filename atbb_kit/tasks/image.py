"""`inv image`: build the one image operators deploy, with computed tags and OCI labels."""

from __future__ import annotations

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    iterable=["tag"],
    help={
        "base": "Base image for build and runtime stages (default: image.base in atbb.yaml).",
        "platform": "Comma-separated target platforms, e.g. linux/amd64,linux/arm64 (several need buildx).",
        "tag": "Extra local tag(s) to add, e.g. --tag atbb:dev (repeatable).",
        "builder": "Force a builder: buildx or buildkit (default: the best the client offers; classic is refused).",
        "no_cache": "Build every layer from scratch.",
        "cache": "buildx cache backend to read and fill, e.g. gha (GitHub Actions' cache); needs buildx.",
        "dry_run": DRY_RUN_HELP,
    },
)
def image(c, base=None, platform=None, tag=None, builder=None, no_cache=False, cache=None, dry_run=False):
    """Build the Docker image (the services of atbb.yaml behind nginx) with release tags; fail over budget."""
    from atbb_kit.commands import docker as commands
    from atbb_kit.core import flags, nginx_conf
    from atbb_kit.core.errors import KitError
    from atbb_kit.core.release_plan import plan_for
    from atbb_kit.infra import engine
    from atbb_kit.infra.console import image_summary

    # Flags first, each named as a flag (not as the atbb.yaml line it overrides), before anything runs.
    platforms = flags.platforms(platform)
    flags.image_ref("base", base)
    flags.image_refs("tag", tag)
    flags.choice("builder", builder, commands.BUILDERS)
    flags.choice("cache", cache, flags.CACHE_BACKENDS)
    k = kit(c, dry_run=dry_run, overrides={"image.base": base, "image.platforms": platforms})
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
    tags = [*plan.refs, *(tag or [])]
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
    import sys

    print(f"==> building {tags[0]} on {cfg.image.base} with the {cli.builder} builder", file=sys.stderr, flush=True)
    result = k.run.run(cmd)
    if k.run.dry_run:
        return
    if len(cfg.image.platforms) > 1:
        print(f"built {len(cfg.image.platforms)} platforms in the buildx cache (not loaded locally): {tags[0]}")
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
