"""The Docker-facing half of the executor: which docker client and builder to use, and SDK queries.

The Docker SDK calls here (and in the modules that take a client from `client()`) are the kit's one
executor besides infra/runner.py: they talk to the engine's API and start no process. Every process the
kit starts goes through the Runner; the client probes here run through it too (quiet, captured), so dry
runs and logs see them like any other command. The Docker SDK is imported lazily because it costs ~100 ms,
which `inv --list` must not pay.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from atbb_kit.commands import docker as commands
from atbb_kit.core.errors import EngineUnavailable, KitError
from atbb_kit.infra.runner import Runner


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


def cli_path() -> str:
    """A docker client for running containers (any version talks to the engine: it negotiates the API).
    Building needs `detect_cli`, which also picks a builder; running does not, and skips its probes."""
    path = shutil.which("docker") or shutil.which("/usr/bin/docker")
    if not path:
        raise EngineUnavailable("no docker client on PATH", commands.DOCKER_HINT)
    return path


def client():
    """A Docker SDK client that has answered a ping, or a clear error."""
    import docker
    from docker.errors import DockerException

    try:
        c = docker.from_env(timeout=60)
        c.ping()
    except DockerException as exc:
        reason, fix = _engine_problem(str(exc))
        raise EngineUnavailable(f"no Docker engine answers at {_engine_address()} ({reason})", fix) from None
    return c


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _engine_problem(text: str) -> tuple[str, str]:
    """The SDK's error (a nested repr of urllib3 exceptions) -> a short reason and what to do about it."""
    start = "start the engine (sudo systemctl start docker, or scripts/ensure-docker.sh)"
    lower = text.lower()
    if "filenotfounderror" in lower or "no such file" in lower:
        return "no such socket", start + ", or fix DOCKER_HOST"
    if "permission denied" in lower or "permissionerror" in lower:
        return "permission denied", "add your user to the docker group (then log in again), or use sudo"
    if "connection refused" in lower:
        return "connection refused", start + ", or fix DOCKER_HOST"
    return text.splitlines()[0][:120] if text else "no answer", start


def image_size(ref: str) -> tuple[str, int] | None:
    """(image id, size in bytes) of a local image, or None when it is not present.

    The size is `layers_size`: the uncompressed size of the platform image's layers, the same number on
    every engine and image store. The inspect request asks for the manifest list (`manifests=1`, API 1.48+;
    older engines ignore the parameter), which the containerd store needs to report that size.
    """
    from docker.errors import ImageNotFound

    c = client()
    try:
        img = c.images.get(ref)
    except ImageNotFound:
        return None
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    attrs = img.attrs
    try:
        response = c.api._get(c.api._url("/images/{0}/json", ref), params={"manifests": "1"})
    except (DockerException, RequestException):
        response = None  # the plain inspect above already answered; the manifest list is a bonus
    if response is not None and response.ok:
        attrs = response.json()
    return img.id, layers_size(attrs)


def layers_size(attrs: dict) -> int:
    """The uncompressed size of the image's layers for its platform, from `docker image inspect` output.

    This is what `image.size_budget_mb` measures, on every engine:
    - overlay2 (the classic store, Docker < 29 and any engine without the containerd store): `Size` is
      exactly that, the sum of the unpacked layers.
    - the containerd image store (Docker 29's default): the image is an OCI index whose `Size` means
      compressed content only, or compressed plus unpacked, depending on the version (moby#53398, #53426),
      so it is never used. The platform's entry in `Manifests` carries the unpacked size (`ImageData.Size
      .Unpacked`; `ImageData.UnpackedSize` on the first engines that listed manifests). Attestation
      manifests (provenance, SBOM) are not part of what runs and are skipped.
    Without a `Manifests` list (an engine too old to send it), `Size` is all there is.
    """
    manifests = [m for m in attrs.get("Manifests") or [] if m.get("Kind", "image") == "image"]
    if not manifests:
        return int(attrs.get("Size") or 0)
    want = (attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant") or None)

    def platform(m: dict) -> tuple:
        p = (m.get("ImageData") or {}).get("Platform") or (m.get("Descriptor") or {}).get("platform") or {}
        return p.get("os"), p.get("architecture"), p.get("variant") or None

    chosen = [m for m in manifests if platform(m) == want] or [m for m in manifests if platform(m)[:2] == want[:2]]
    if not chosen:
        chosen = [m for m in manifests if m.get("Available")] or manifests
    data = chosen[0].get("ImageData") or {}
    unpacked = (data.get("Size") or {}).get("Unpacked", data.get("UnpackedSize"))
    return int(unpacked) if unpacked is not None else int(attrs.get("Size") or 0)


@dataclass(frozen=True)
class EngineFacts:
    version: str
    api_version: str
    data_root: str


def facts() -> EngineFacts:
    """Server version and data root, for `inv doctor`."""
    c = client()
    version = c.version()
    info = c.info()
    return EngineFacts(version.get("Version", "?"), version.get("ApiVersion", "?"), info.get("DockerRootDir", ""))


def containers_publishing(port: int) -> list[tuple[str, str, str]]:
    """(container, compose project, compose service) of running containers publishing host `port`:
    with Docker's userland proxy off, nothing on the host listens, so a bind test alone would miss them."""
    found = []
    for container in client().containers.list():
        ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        bindings = [b for binds in ports.values() if binds for b in binds]
        if any(str(b.get("HostPort")) == str(port) for b in bindings):
            labels = container.labels or {}
            found.append(
                (
                    container.name,
                    labels.get("com.docker.compose.project", ""),
                    labels.get("com.docker.compose.service", ""),
                )
            )
    return found


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str  # running / exited / restarting / created ...
    health: str  # healthy / unhealthy / starting, or "" without a healthcheck
    ports: str
    exit_code: int


def compose_services(project: str) -> list[ServiceState]:
    """The stack's long-running containers (not `run` one-offs), for `inv status`."""
    out = []
    for c in _compose_containers(project):
        labels = c.labels or {}
        if labels.get("com.docker.compose.oneoff", "False") == "True":
            continue
        state = c.attrs["State"]
        ports = c.attrs.get("NetworkSettings", {}).get("Ports") or {}
        shown = sorted(
            {
                f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{inner}"  # noqa: S104 (a label, not a bind)
                for inner, binds in ports.items()
                if binds
                for b in binds
                if ":" not in (b.get("HostIp") or "")  # the IPv6 twin of each binding adds nothing
            }
        )
        out.append(
            ServiceState(
                labels.get("com.docker.compose.service", "?"),
                c.name,
                state.get("Status", "?"),
                (state.get("Health") or {}).get("Status", ""),
                ", ".join(shown),
                int(state.get("ExitCode") or 0),
            )
        )
    return sorted(out, key=lambda s: (s.service, s.container))


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


def network_exists(name: str) -> bool:
    from docker.errors import NotFound

    try:
        client().networks.get(name)
    except NotFound:
        return False
    return True


def compose_health(project: str, service: str) -> str:
    """healthy / unhealthy / starting for a service with a healthcheck, else the container state."""
    found = _compose_containers(project, service)
    if not found:
        return ""
    state = found[0].attrs["State"]
    health = state.get("Health", {}).get("Status")
    return state["Status"] if state["Status"] != "running" else (health or "running")


# Removal order matters: a network or volume still used by a container cannot be removed.
_SWEEP_ORDER = ("container", "volume", "network", "image")


def remove_labelled(docker_client, label: str, kinds=_SWEEP_ORDER) -> list[str]:
    """Remove every object of `kinds` labelled `label` ("key=value"); return what could not be removed.

    Throwaway runs (smoke, bench) label everything they create and sweep by label, so cleanup also
    finds objects whose creation was interrupted half-way, and never touches anyone else's.
    """
    from docker.errors import DockerException, NotFound

    selector = {"label": label}
    listers = {
        # ignore_removed: a container that vanishes between the list and its inspect is not an error.
        "container": lambda: docker_client.containers.list(all=True, filters=selector, ignore_removed=True),
        "volume": lambda: docker_client.volumes.list(filters=selector),
        "network": lambda: docker_client.networks.list(filters=selector),
        "image": lambda: docker_client.images.list(filters=selector),
    }
    removers = {
        "container": lambda obj: obj.remove(force=True, v=True),
        "volume": lambda obj: obj.remove(force=True),
        "network": lambda obj: obj.remove(),
        # Image ids carry the run's label in their config, so force only drops the run's own tags.
        "image": lambda obj: docker_client.images.remove(obj.id, force=True),
    }
    problems: list[str] = []
    for kind in (k for k in _SWEEP_ORDER if k in kinds):
        try:
            found = listers[kind]()
        except DockerException as exc:
            problems.append(f"cannot list {kind}s: {exc}")
            continue
        for obj in found:
            try:
                removers[kind](obj)
            except NotFound:
                pass
            except DockerException as exc:
                problems.append(f"{kind} {getattr(obj, 'name', obj.id)}: {str(exc).splitlines()[0][:200]}")
    return problems
