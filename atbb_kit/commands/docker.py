"""docker client argv: build (with its build args, labels and cache specs), probes, login, tag and push.

Pure builders returning `Command`s; nothing here runs anything. Tests compare the argv tuples directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from atbb_kit.commands.base import Command, Secret, argv
from atbb_kit.core import image_spec
from atbb_kit.core.errors import KitError
from atbb_kit.core.paths import KIT_ROOT

DOCKER_HINT = "install Docker (scripts/ensure-docker.sh on Debian) and start the engine"


# --- docker ---------------------------------------------------------------------------------------------

BUILDERS = ("buildx", "buildkit", "classic")


DOCKERFILE = KIT_ROOT / "docker" / "Dockerfile"


def context_relative(path: Path, what: str, context: Path = KIT_ROOT) -> str:
    """`path` relative to the build context, which must contain it (COPY cannot reach outside)."""
    try:
        rel = path.resolve().relative_to(context.resolve())
    except ValueError:
        raise KitError(
            f"{what} {path} is outside the build context {context}",
            "keep the monorepo and nginx.conf inside the kit's folder (copy the kit into the app's repository)",
        ) from None
    return rel.as_posix() or "."


def build_args(cfg, context: Path = KIT_ROOT) -> dict[str, str]:
    """The Dockerfile's ARGs, from atbb.yaml; their defaults in docker/Dockerfile mirror the kit's own file."""
    monorepo = cfg.monorepo_dir()
    kit_files = [
        context / "atbb_kit",
        context / "tasks.py",
        context / "docker" / "Dockerfile",
        context / "docker" / "entrypoint.sh",
        context / "nginx" / "nginx.conf.template",
        cfg.file(),
        cfg.nginx_conf_path(),
    ]
    return {
        "NODE_BASE": cfg.image.base,
        "PNPM_VERSION": cfg.node.pnpm,
        "MONOREPO": context_relative(monorepo, "the monorepo", context),
        "NGINX_CONF": context_relative(cfg.nginx_conf_path(), "nginx.conf", context),
        "KIT_EXCLUDE": " ".join(image_spec.kit_paths_inside(monorepo, kit_files)),
        "RUNTIME_INCLUDE": " ".join(cfg.runtime.include),
        "MIGRATE_PACKAGE": cfg.migrate.package,
        "SERVICES": image_spec.supervisor_spec(cfg),
        "MIGRATE": image_spec.migrate_spec(cfg),
        "HEALTH": image_spec.health_spec(cfg),
    }


# OCI label key -> Dockerfile ARG that carries it into the final stage's LABEL instruction.
LABEL_ARGS = {
    "org.opencontainers.image.source": "SOURCE",
    "org.opencontainers.image.revision": "REVISION",
    "org.opencontainers.image.version": "VERSION",
    "org.opencontainers.image.created": "CREATED",
    "org.opencontainers.image.title": "TITLE",
    "org.opencontainers.image.description": "DESCRIPTION",
    "org.opencontainers.image.licenses": "LICENSES",
}


def cache_source(backend: str) -> str:
    """`--cache-from` for a buildx cache backend. GitHub's cache service v1 was shut down on 2025-04-15 and
    some BuildKit releases still default to it (moby/buildkit#5896): `gha` always names the v2 service."""
    return f"type={backend},version=2" if backend == "gha" else f"type={backend}"


def cache_target(backend: str) -> str:
    """`--cache-to`: every layer (mode=max), and a failed cache export is only a warning (ignore-error=true):
    a cache outage must never fail a release whose image was built."""
    return cache_source(backend) + ",mode=max,ignore-error=true"


def docker_build(
    docker: str,
    builder: str,
    *,
    context: Path,
    dockerfile: Path,
    tags: Sequence[str],
    args: Mapping[str, str],
    labels: Mapping[str, str],
    platforms: Sequence[str] = (),
    no_cache: bool = False,
    push: bool = False,
    cache: str | None = None,
) -> Command:
    """`docker build` for the chosen builder.

    buildx: the only one that can target several platforms or push while building; `cache` names a buildx
    cache backend (e.g. "gha" in GitHub Actions). buildkit: the 20.10-era client with BuildKit built in.
    classic: the legacy builder, for clients with neither (the Dockerfile avoids BuildKit-only syntax).
    """
    if builder not in BUILDERS:
        raise ValueError(builder)
    all_args = {**args, **{LABEL_ARGS[k]: v for k, v in labels.items() if k in LABEL_ARGS}}
    common = argv(
        "--file",
        str(dockerfile),
        *[("--tag", t) for t in tags],
        *[("--build-arg", f"{k}={v}") for k, v in all_args.items()],
        "--no-cache" if no_cache else None,
    )
    if builder == "buildx":
        multi = len(platforms) > 1
        return Command(
            argv(
                docker,
                "buildx",
                "build",
                "--progress=plain",
                ("--platform", ",".join(platforms)) if platforms else None,
                # A multi-platform result cannot be loaded into the local engine: it can only be pushed.
                "--push" if push else (None if multi else "--load"),
                ("--cache-from", cache_source(cache)) if cache else None,
                ("--cache-to", cache_target(cache)) if cache else None,
                common,
                str(context),
            ),
            install_hint=DOCKER_HINT,
            failure_hint="the image build failed; the first error above names the Dockerfile step",
        )
    progress = ("--progress=plain",) if builder == "buildkit" else ()
    return Command(
        argv(docker, "build", progress, common, str(context)),
        env={"DOCKER_BUILDKIT": "1" if builder == "buildkit" else "0"},
        install_hint=DOCKER_HINT,
        failure_hint="the image build failed; the first error above names the Dockerfile step",
    )


def docker_prune_build_cache_mounts(docker: str) -> Command:
    """Empties BuildKit's cache mounts (the pnpm store, turbo's cache): a cold build must not find them
    warm, and `--no-cache` leaves them alone."""
    return Command(
        argv(docker, "builder", "prune", "--force", "--filter", "type=exec.cachemount"),
        env={"DOCKER_BUILDKIT": "1"},
        install_hint=DOCKER_HINT,
    )


def docker_probe(docker: str, *args: str) -> Command:
    return Command(argv(docker, args), install_hint=DOCKER_HINT)


# --- registry -------------------------------------------------------------------------------------------
# `inv push` logs in, tags and pushes with the docker client (it owns the layer upload and any credential
# helper); the read-only digest checks go to the registry's HTTP API instead (atbb_kit/infra/registry_api.py),
# because only the registry can say what a tag resolves to *now*, and the 20.10 client has neither
# `buildx imagetools` nor a non-experimental `manifest inspect`.

PUSH_HINT = "see the docker output above; rerun `inv push` (pushing a tag twice is harmless)"


def docker_login(docker: str, registry: str, user: str, token: Secret, *, config_dir: Path | None = None) -> Command:
    """`docker login` with the token on stdin: argv is visible to every user of the machine (`ps`), stdin
    is not, and the Runner prints a Secret as ***."""
    if not isinstance(token, Secret):
        raise TypeError("the registry token must be wrapped in commands.base.Secret")
    return Command(
        argv(docker, "login", "--username", user, "--password-stdin", registry),
        env=_docker_config_env(config_dir),
        stdin=token,
        install_hint=DOCKER_HINT,
        failure_hint="check ATBB_REGISTRY_USER/ATBB_REGISTRY_TOKEN and that the registry is up",
    )


def docker_tag(docker: str, source: str, target: str) -> Command:
    return Command(argv(docker, "tag", source, target), install_hint=DOCKER_HINT)


def docker_push(docker: str, ref: str, *, config_dir: Path | None = None) -> Command:
    return Command(
        argv(docker, "push", ref),
        env=_docker_config_env(config_dir),
        install_hint=DOCKER_HINT,
        failure_hint=PUSH_HINT,
    )


def docker_image_id(docker: str, ref: str) -> Command:
    """Read-only: the local image id of `ref` on stdout, exit 1 when the engine has no such image."""
    return Command(argv(docker, "image", "inspect", "--format", "{{.Id}}", ref), install_hint=DOCKER_HINT)


def _docker_config_env(config_dir: Path | None) -> dict[str, str]:
    # DOCKER_CONFIG points login and push at one private credentials folder (see ops/publish.push).
    return {"DOCKER_CONFIG": str(config_dir)} if config_dir else {}


def docker_image_platform(docker: str, ref: str) -> Command:
    """Read-only: `os/architecture[/variant]` of the local image `ref`, exit 1 when the engine has none."""
    fmt = "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}"
    return Command(argv(docker, "image", "inspect", "--format", fmt, ref), install_hint=DOCKER_HINT)


def docker_save(docker: str, ref: str, archive: str) -> Command:
    """The image as a `docker save` archive (its config and layers, read by ops/multiarch)."""
    return Command(argv(docker, "save", "-o", archive, ref), install_hint=DOCKER_HINT)


def docker_create(docker: str, name: str, image: str, *args: str) -> Command:
    """A container that is never started (its filesystem is read with `docker export`)."""
    return Command(argv(docker, "create", "--name", name, image, args), install_hint=DOCKER_HINT)


def docker_export(docker: str, name: str) -> Command:
    """The container's filesystem as a tar stream on stdout."""
    return Command(argv(docker, "export", name), install_hint=DOCKER_HINT)


def docker_pull(docker: str, ref: str) -> Command:
    return Command(argv(docker, "pull", ref), install_hint=DOCKER_HINT)


# --- one-off containers ---------------------------------------------------------------------------------
# Every container the kit starts for one job carries this label and a name of its own (the runner removes it
# by that name when its deadline passes or the task is interrupted), and runs without the image's
# HEALTHCHECK: the check probes a server a one-off never starts, so `docker ps` would call it unhealthy.
ONEOFF_LABEL = "dev.atbb.kit=one-off"


def oneoff_flags(name: str) -> tuple[str, ...]:
    return ("--name", name, "--label", ONEOFF_LABEL, "--no-healthcheck")


def env_by_name(env: Mapping[str, str]) -> list[str]:
    """`--env NAME` without a value: docker copies NAME from its own environment (Command.env), so values
    never appear in argv."""
    out: list[str] = []
    for name in env:
        out += ["--env", name]
    return out


def oneoff(
    docker: str,
    image: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    name: str,
    verb: str = "run",
    network: str | None = None,
    settings: Mapping[str, str] | None = None,
    hint: str | None = None,
) -> Command:
    """A one-off container of `image`: `docker run --rm` (verb "run"), or `docker create` (verb "create":
    the container exists before it runs, so a dump can be copied in or out with `docker cp`). `env` is
    passed by name and `settings` (never secret: argv is printed) as `--env K=V`. The postgres images'
    entrypoints run any command that is not the server as it is, so `args` is the tool and its flags."""
    if verb not in ("run", "create"):
        raise ValueError(f"a one-off container is run or created, not {verb!r}")
    return Command(
        argv(
            docker,
            verb,
            "--rm" if verb == "run" else None,
            oneoff_flags(name),
            ("--network", network) if network else None,
            env_by_name(env),
            *[("--env", f"{k}={v}") for k, v in (settings or {}).items()],
            image,
            list(args),
        ),
        env=dict(env),
        install_hint=DOCKER_HINT,
        failure_hint=hint,
    )


def docker_remove(docker: str, name: str) -> Command:
    """Removes a container, running or not."""
    return Command((docker, "rm", "--force", name), install_hint=DOCKER_HINT)
