"""The Docker-facing half of the executor: which docker client and builder to use, and SDK queries.

Probes run through the Runner (quiet, captured) so dry runs and logs see them like any other command;
the Docker SDK is imported lazily because it costs ~100 ms, which `inv --list` must not pay.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from atbb_kit import commands
from atbb_kit.errors import EngineUnavailable, KitError
from atbb_kit.runner import Runner


@dataclass(frozen=True)
class DockerCli:
    path: str
    builder: str  # one of commands.BUILDERS


def _client_major(run: Runner, docker: str) -> int | None:
    res = run.probe(commands.docker_probe(docker, "version", "--format", "{{.Client.Version}}"))
    head = res.stdout.strip().split(".")[0]
    return int(head) if head.isdigit() else None


def detect_cli(run: Runner, prefer: str | None = None) -> DockerCli:
    """Pick the docker client and the best builder it offers: buildx > built-in BuildKit > classic.

    Clients before 23 have BuildKit built in (DOCKER_BUILDKIT=1); later ones need buildx for it and
    refuse DOCKER_BUILDKIT=1 without it, so they fall back to the classic builder.
    """
    candidates = [p for p in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]) if p and shutil.which(p)]
    if not candidates:
        raise EngineUnavailable("no docker client on PATH", commands.DOCKER_HINT)
    options: list[DockerCli] = []
    for path in candidates:
        if run.probe(commands.docker_probe(path, "buildx", "version")).ok:
            options.append(DockerCli(path, "buildx"))
        major = _client_major(run, path)
        if major is not None and major < 23:
            options.append(DockerCli(path, "buildkit"))
        options.append(DockerCli(path, "classic"))
    if prefer:
        chosen = [o for o in options if o.builder == prefer]
        if not chosen:
            raise KitError(
                f"builder {prefer!r} is not available with {', '.join(candidates)}",
                "drop --builder to let the kit choose, or install docker buildx",
            )
        return chosen[0]
    rank = {b: i for i, b in enumerate(commands.BUILDERS)}
    return min(options, key=lambda o: rank[o.builder])


def client():
    """A Docker SDK client that has answered a ping, or a clear error."""
    import docker
    from docker.errors import DockerException

    try:
        c = docker.from_env(timeout=60)
        c.ping()
    except DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine answers ({str(exc).splitlines()[0][:120]})",
            "start the engine (sudo systemctl start docker, or scripts/ensure-docker.sh)",
        ) from None
    return c


def image_size(ref: str) -> tuple[str, int] | None:
    """(image id, size in bytes) of a local image, or None when it is not present."""
    from docker.errors import ImageNotFound

    try:
        img = client().images.get(ref)
    except ImageNotFound:
        return None
    return img.id, int(img.attrs.get("Size", 0))


def _compose_containers(project: str, service: str | None = None):
    # Compose v1 and v2 both label their containers with the project and service names.
    filters = [f"com.docker.compose.project={project}"]
    if service:
        filters.append(f"com.docker.compose.service={service}")
    return client().containers.list(all=True, filters={"label": filters})


def compose_network(project: str) -> str | None:
    """The stack's default network when its PostgreSQL is running, so one-off containers can reach it."""
    running = [c for c in _compose_containers(project, "postgres") if c.status == "running"]
    if not running:
        return None
    networks = running[0].attrs["NetworkSettings"]["Networks"]
    return next(iter(networks), None)


def compose_health(project: str, service: str) -> str:
    """healthy / unhealthy / starting for a service with a healthcheck, else the container state."""
    found = _compose_containers(project, service)
    if not found:
        return ""
    state = found[0].attrs["State"]
    health = state.get("Health", {}).get("Status")
    return state["Status"] if state["Status"] != "running" else (health or "running")
