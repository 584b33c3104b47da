"""Helpers that start real containers for e2e tests: a PostgreSQL on a private network and the app.

Everything a test starts carries the label `atbb.test=1`, so a session-end sweep can prove nothing leaked.

What the kit defines once, the tests take from it rather than writing it again: the app's env contract and
PostgreSQL's settings (atbb_kit/core/app_env.py), the HTTP GET (atbb_kit/infra/http.py) and the readiness
poller (atbb_kit/infra/polling.py). The containers are the tests' own, not ops/stack.py's: test modules rely
on their names (`<name>-pg`, `<name>-app`), their one shared label and `cleanup()` by name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from atbb_kit.core import app_env as contract
from atbb_kit.core.app_env import PG_READY_PROBE, Database
from atbb_kit.infra import http as httpc
from atbb_kit.infra import polling
from atbb_kit.infra.http import Http
from atbb_kit.infra.polling import Waiting

TEST_LABEL = {"atbb.test": "1"}
# The forum the e2e apps believe they serve (an env file some tests write by hand carries the same values).
IDENTITY = contract.Identity(
    forum_did="did:plc:e2etestforumaaaaaaaaaaaa",
    pds_url="https://pds.example.test",
    public_url="http://localhost:8080",
    session_secret="",
)


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Http:
    """The kit's GET, following redirects as a browser would (tests read the page a visitor ends on)."""
    return httpc.get(url, timeout=timeout, headers=headers, follow_redirects=True)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """`predicate()` until it returns something truthy (that is returned); an exception counts as not yet,
    as the thing waited for may refuse connections until it is up. An AssertionError at the deadline."""

    def probe():
        try:
            answer = predicate()
        except Exception as exc:
            return Waiting(repr(exc))
        return answer if answer else Waiting(repr(answer))

    try:
        return polling.until(probe, seconds=timeout, interval=interval)
    except polling.TimedOut as exc:
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {exc.reason})") from None


@dataclass
class Postgres:
    container: object
    network: object
    password: str

    @property
    def db(self) -> Database:
        return Database(host=self.container.name, password=self.password)

    @property
    def url(self) -> str:
        return self.db.url()


def start_postgres(client, image: str, name: str) -> Postgres:
    network = client.networks.create(f"{name}-net", labels=TEST_LABEL)
    password = secrets.token_hex(12)
    container = client.containers.run(
        image,
        name=f"{name}-pg",
        detach=True,
        network=network.name,
        labels=TEST_LABEL,
        environment=Database(host="", password=password).server_env(),
    )
    wait_for(lambda: container.exec_run(list(PG_READY_PROBE))[0] == 0, 90, 0.5, "postgres to accept connections")
    return Postgres(container, network, password)


def app_env(pg: Postgres) -> dict[str, str]:
    return contract.app_env(pg.db, replace(IDENTITY, session_secret=secrets.token_hex(32)))


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
