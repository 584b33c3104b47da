"""argv builders for `inv upgrade` and `inv rollback` (atbb_kit/ops/upgrade.py runs them).

The switch works on the Compose example's two services `atbb` and `edge` (docker-compose.example.yml):
the new release is a second container of the `atbb` service (`up --scale atbb=2 --no-recreate`, with the
new image in ATBB_IMAGE), and the edge's nginx is pointed at one container or another by rewriting the
two `map`s of /tmp/edge/upstream.conf inside it and reloading it gracefully.
"""

from __future__ import annotations

import re
import shlex

from atbb_kit.commands.base import Command, argv
from atbb_kit.commands.compose import Compose

SERVICE = "atbb"
EDGE = "edge"
# Inside the edge container (its private tmpfs, written by the Compose file), not on the host.
UPSTREAM_CONF = "/tmp/edge/upstream.conf"  # noqa: S108
EDGE_NGINX_CONF = "/tmp/edge/nginx.conf"  # noqa: S108

# Written with printf from the arguments, so nothing the kit passes is parsed by a shell: $1 upstream
# (a container or service name), $2 the release label the edge shows in X-Atbb-Release. nginx -t first:
# a config that does not load is never signalled, and the running one stays.
EDGE_SCRIPT = (
    "set -e; "
    f'printf \'map $host $atbb_upstream {{ default "%s"; }}\\nmap $host $atbb_release {{ default "%s"; }}\\n\' '
    f'"$1" "$2" > {UPSTREAM_CONF}.new; '
    f"mv {UPSTREAM_CONF}.new {UPSTREAM_CONF}; "
    f"nginx -t -q -e stderr -c {EDGE_NGINX_CONF}; "
    f"nginx -e stderr -c {EDGE_NGINX_CONF} -s reload"
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_LABEL = re.compile(r"[A-Za-z0-9._:@/+-]{0,200}")


def scale_up(stack: Compose, count: int = 2) -> Command:
    """A second container of `atbb` next to the running one, with the image in the stack's ATBB_IMAGE;
    --no-recreate keeps the old one exactly as it is, --no-deps leaves PostgreSQL and the edge alone."""
    return stack.cmd(
        "up",
        "-d",
        "--no-build",
        "--no-deps",
        "--no-recreate",
        ("--scale", f"{SERVICE}={count}"),
        SERVICE,
        hint="see `inv logs -s atbb` for what the new container said",
    )


def point_edge(docker: str, edge: str, upstream: str, release: str) -> Command:
    """Point the edge container `edge` at `upstream` (a container name, or the service name `atbb`)."""
    if not _NAME.fullmatch(upstream):
        raise ValueError(f"not a container name: {upstream!r}")
    if not _LABEL.fullmatch(release):
        raise ValueError(f"not a release label: {release!r}")
    return Command(argv(docker, "exec", edge, "sh", "-c", EDGE_SCRIPT, "sh", upstream, release))


# Requests to the new container's own port 80 before it gets traffic: a fresh Node process answers its first
# requests slowly (JIT, the database pool, the first render), and visitors should not be the ones to pay.
# Node's fetch (Node 18+), run inside the container; each round sends every path twice at once.
WARM_UP_SCRIPT = (
    "const paths = process.argv.slice(1);"
    "(async () => { for (let r = 0; r < 10; r++) { await Promise.all(paths.flatMap((p) => [0, 1].map(() =>"
    " fetch('http://127.0.0.1' + p).then((res) => res.arrayBuffer()).catch(() => null)))); } })();"
)


def warm_up(docker: str, container: str, paths: list[str]) -> Command:
    for path in paths:
        if not path.startswith("/") or any(ch.isspace() for ch in path):
            raise ValueError(f"not a path: {path!r}")
    return Command(argv(docker, "exec", container, "node", "-e", WARM_UP_SCRIPT, *paths))


def stop(docker: str, container: str, grace: int) -> Command:
    """`docker stop`: SIGTERM (the image's supervisor stops nginx gracefully, then the services), SIGKILL
    after `grace` seconds."""
    return Command(argv(docker, "stop", ("-t", str(grace)), container))


def remove(docker: str, container: str) -> Command:
    return Command(argv(docker, "rm", "-f", container))


def pull(docker: str, ref: str) -> Command:
    return Command(argv(docker, "pull", ref))


def restore_command(dump: str, env_file: str) -> str:
    """The exact command the operator runs to go back to the database as it was before the upgrade."""
    parts = ["inv", "restore", dump, "--force"]
    if env_file != ".env":
        parts += ["--env-file", env_file]
    return shlex.join(parts)


def release_label(revision: str, image_id: str, container: str) -> str:
    """What the edge shows in X-Atbb-Release: the image's revision (or id) and the container's number."""
    ident = (revision or image_id.removeprefix("sha256:"))[:12] or "unknown"
    number = container.rsplit("_", 1)[-1].rsplit("-", 1)[-1]
    return f"{ident}-{number}" if number.isdigit() else ident
