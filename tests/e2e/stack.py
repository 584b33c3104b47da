"""Helpers that start real containers for e2e tests: a PostgreSQL on a private network and the app.

Everything a test starts carries the label `atbb.test=1`, so a session-end sweep can prove nothing leaked.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

TEST_LABEL = {"atbb.test": "1"}
PG_USER, PG_DB = "atbb", "atbb"


@dataclass
class Http:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Http:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (test URLs are loopback)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (test URLs are loopback)
            return Http(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Http(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # the thing we wait for may refuse connections until it is up
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Postgres:
    container: object
    network: object
    password: str

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}:{self.password}@{self.container.name}:5432/{PG_DB}"


def start_postgres(client, image: str, name: str) -> Postgres:
    network = client.networks.create(f"{name}-net", labels=TEST_LABEL)
    password = secrets.token_hex(12)
    container = client.containers.run(
        image,
        name=f"{name}-pg",
        detach=True,
        network=network.name,
        labels=TEST_LABEL,
        environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": password, "POSTGRES_DB": PG_DB},
    )

    def ready():
        code, _ = container.exec_run(["pg_isready", "-U", PG_USER, "-d", PG_DB, "-h", "127.0.0.1"])
        return code == 0

    wait_for(ready, 90, 0.5, "postgres to accept connections")
    return Postgres(container, network, password)


def app_env(pg: Postgres) -> dict[str, str]:
    return {
        "DATABASE_URL": pg.url,
        "FORUM_DID": "did:plc:e2etestforumaaaaaaaaaaaa",
        "PDS_URL": "https://pds.example.test",
        "OAUTH_PUBLIC_URL": "http://localhost:8080",
        "SESSION_SECRET": secrets.token_hex(32),
    }


@dataclass
class App:
    container: object
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ip(self) -> str:
        self.container.reload()
        nets = self.container.attrs["NetworkSettings"]["Networks"]
        return next(iter(nets.values()))["IPAddress"]


# The hardening the guide recommends: nothing writable but /tmp, no capabilities at all.
HARDENED = {"read_only": True, "tmpfs": {"/tmp": "rw,size=64m"}, "cap_drop": ["ALL"]}


def start_app(
    client, image: str, pg: Postgres, name: str, *, env: dict[str, str] | None = None, health="/api/health", **extra
) -> App:
    env = app_env(pg) if env is None else env
    container = client.containers.run(
        image,
        name=f"{name}-app",
        detach=True,
        network=pg.network.name,
        labels=TEST_LABEL,
        environment=env,
        ports={"80/tcp": ("127.0.0.1", None)},
        **{**HARDENED, **extra},
    )
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    app = App(container, port, env)
    wait_for(lambda: http_get(app.url + health, timeout=2).status == 200, 60, 0.25, "the app to answer 200")
    return app


def run_migration(client, image: str, pg: Postgres) -> tuple[int, str]:
    container = client.containers.run(
        image,
        ["migrate"],
        detach=True,
        network=pg.network.name,
        labels=TEST_LABEL,
        environment={"DATABASE_URL": pg.url},
    )
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def kill_process_inside(container, needle: str) -> None:
    """Kill the process whose command line contains `needle`, using only sh and /proc (no pkill needed)."""
    script = (
        'for p in /proc/[0-9]*; do c=$(tr "\\000" " " < "$p/cmdline" 2>/dev/null); '
        # Skip this shell itself: its own command line contains the needle too.
        f'[ "${{p#/proc/}}" = "$$" ] && continue; '
        f'case "$c" in *"{needle}"*) kill -9 "${{p#/proc/}}" && echo killed "${{p#/proc/}}";; esac; done'
    )
    # As the image's own user: with every capability dropped, root could not signal uid 10001.
    code, out = container.exec_run(["sh", "-c", script])
    assert b"killed" in out, f"no process matching {needle!r} (exit {code}): {out!r}"


def cleanup(client, name_prefix: str) -> None:
    for c in client.containers.list(all=True, filters={"label": "atbb.test=1", "name": name_prefix}):
        c.remove(force=True)
    for n in client.networks.list(filters={"label": "atbb.test=1"}):
        if n.name.startswith(name_prefix):
            n.remove()
