"""One throwaway stack on the engine: a private network, a PostgreSQL, migrations and app containers.

`inv smoke` and `inv bench` (and the upgrade check after them) keep only their own checks and measurements
on top of it. Every object a stack creates is named `<prefix>-<run id>-*` and labelled `<label>=<run id>`;
cleanup sweeps by that label, so it also finds an object whose creation was cut short, and never touches
anyone else's. Used as a context manager it installs the signal guard: Ctrl-C, SIGTERM and SIGHUP become
`SignalReceived` (caught at the end of the `with`, recorded in `interrupted`; `interruption()` is the
runner's `Interrupted` error, exit 128 + signal, for the task to raise), except inside a create call,
where the signal waits until the engine has answered so the sweep can find what it made. On leaving, the
stack removes everything (unless `keep`), whatever happened.

Several app containers, from different images, can run at once on the one network and database
(`start_app`); each has its own URL: the published host port, or its address on the run's network.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atbb_kit.commands.base import Secret, reveal
from atbb_kit.core import app_env, image_spec
from atbb_kit.core.app_env import PG_READY_PROBE, Database
from atbb_kit.infra import engine, polling, signals
from atbb_kit.infra import http as httpc
from atbb_kit.infra.console import console
from atbb_kit.infra.polling import Waiting
from atbb_kit.infra.signals import Guard, Interrupted, SignalReceived

LOG_LINES = 20
# The app's nginx listens here in the container.
APP_PORT = "80/tcp"
# As the Compose example runs the app: read-only root, a private tmpfs /tmp, no capabilities.
HARDENED: dict[str, Any] = {"read_only": True, "tmpfs": {"/tmp": ""}, "cap_drop": ["ALL"]}  # noqa: S108


class StepFailed(Exception):
    """A stack step failed: `summary` is one line, `reason` the evidence (log tails, probe output)."""

    def __init__(self, summary: str, reason: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.reason = reason

    def one_line(self) -> str:
        return f"{self.summary}: {self.reason}" if self.reason else self.summary


# ---------------------------------------------------------------------------------------------------------
# Signals: Ctrl-C and SIGTERM must end in cleanup, never in leaked containers.


# ---------------------------------------------------------------------------------------------------------
# Log tails


# Terminal control sequences (colours, cursor moves) that CLIs such as drizzle-kit print for spinners.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain_lines(raw: bytes) -> list[str]:
    """Log output as a person reads it: control sequences gone, a spinner's redrawn line as its last state."""
    lines = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        # A line redrawn with \r or "cursor to column 1" shows only its final state on a terminal.
        last = re.split(r"\r|\x1b\[1G", line.rstrip("\r"))[-1]
        cleaned = _ANSI.sub("", last).strip()
        if cleaned:
            lines.append(cleaned)
    return lines


def indent_logs(raw: bytes, lines: int = LOG_LINES) -> str:
    shown = raw.decode("utf-8", "replace").rstrip().splitlines()[-lines:]
    return "\n".join(["last log lines:", *shown]) if shown else "(no log output)"


def log_tail(container: Any, lines: int = LOG_LINES) -> str:
    """A container's last log lines for a failure report; never raises (the evidence is a bonus)."""
    try:
        return indent_logs(container.logs(tail=lines), lines)
    except Exception as exc:  # never let the evidence hide the failure itself
        return f"(logs unavailable: {exc})"


# ---------------------------------------------------------------------------------------------------------
# The stack


@dataclass
class App:
    """One app container of the stack and where it answers."""

    name: str
    image: str
    container: Any
    # Monotonic time just before the container was created (for start-up timings).
    started: float
    url: str
    host_port: int | None = None
    ip: str = ""


def cleanup_hint(label: str, run_id: str) -> str:
    sel = f"label={label}={run_id}"
    return (
        f"docker rm -f $(docker ps -aq --filter {sel}); "
        f"docker volume rm $(docker volume ls -q --filter {sel}); "
        f"docker network rm $(docker network ls -q --filter {sel})"
    )


def remove_run(client: Any, label: str, run_id: str) -> list[str]:
    """Remove every object labelled `label=run_id`; what could not be removed."""
    return engine.remove_labelled(client, f"{label}={run_id}")


@dataclass
class Stack:
    client: Any
    label: str  # e.g. atbb.smoke
    name_prefix: str  # e.g. atbb-smoke
    postgres_image: str
    required_env: tuple[str, ...] = ()
    timeout: float = 120.0
    keep: bool = False
    say: Callable[[str], None] = console.say
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    guard: Guard = field(default_factory=Guard)

    network: Any = None
    postgres: Any = None
    db: Database | None = None
    apps: dict[str, App] = field(default_factory=dict)
    # Set when leaving the `with`: the signal that ended the run, and what cleanup could not remove.
    interrupted: int | None = None
    problems: list[str] = field(default_factory=list)
    exits_reported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.guard.say is not self.say:
            self.guard.say = self.say

    # --- names -----------------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return f"{self.name_prefix}-{self.run_id}"

    @property
    def labels(self) -> dict[str, str]:
        return {self.label: self.run_id}

    @property
    def selector(self) -> dict[str, str]:
        return {"label": f"{self.label}={self.run_id}"}

    # --- the context: signal guard and guaranteed cleanup ----------------------------------------------

    def __enter__(self) -> Stack:
        self._installed = self.guard.installed()
        self._installed.__enter__()
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        try:
            self.close()
        finally:
            self._installed.__exit__(None, None, None)
        if isinstance(exc, SignalReceived):
            self.interrupted = exc.signum
        # A signal that arrived during the cleanup still means the user asked to stop.
        if self.interrupted is None:
            self.interrupted = self.guard.pending
        return isinstance(exc, SignalReceived)

    def close(self) -> None:
        """Remove everything the run created, or with `keep` say what is left and how to remove it."""
        self.guard.cleaning = True
        if self.keep:
            kept = self.leftovers()
            self.say(f"==> --keep: left {len(kept)} object(s): {', '.join(kept) or 'none'}")
            self.say(f"    remove them with: {cleanup_hint(self.label, self.run_id)}")
            return
        self.problems = remove_run(self.client, self.label, self.run_id)
        for problem in self.problems:
            self.say(f"warning: could not remove {problem}")
        if not self.problems:
            self.say(f"==> removed everything run {self.run_id} started")

    def interruption(self, what: str, after: str = "") -> Interrupted | None:
        """The error to raise after the `with` when a signal ended the run (None when none did); it exits
        128 + the signal, the shell's convention: 130 for Ctrl-C, 143 for SIGTERM."""
        if self.interrupted is None:
            return None
        left = "nothing was left behind" if not self.keep and not self.problems else None
        return Interrupted(
            f"{what}: interrupted by {signals.name(self.interrupted)}{after}",
            left or f"clean up with: {cleanup_hint(self.label, self.run_id)}",
            self.interrupted,
        )

    def leftovers(self) -> list[str]:
        # ignore_removed: a container that vanishes between the list and its inspect is not an error.
        found = [
            f"container {c.name}"
            for c in self.client.containers.list(all=True, filters=self.selector, ignore_removed=True)
        ]
        found += [f"network {n.name}" for n in self.client.networks.list(filters=self.selector)]
        found += [f"volume {v.name}" for v in self.client.volumes.list(filters=self.selector)]
        return found

    # --- creating objects (always inside the guard's critical section) ---------------------------------

    def run(self, image: str, name: str, **kwargs: Any) -> Any:
        """`docker run --detach` a container named and labelled for this run."""
        with self.guard.critical():
            return self.client.containers.run(
                image, name=f"{self.prefix}-{name}", detach=True, labels=self.labels, **kwargs
            )

    def ensure_network(self) -> Any:
        if self.network is None:
            with self.guard.critical():
                self.network = self.client.networks.create(f"{self.prefix}-net", driver="bridge", labels=self.labels)
        return self.network

    def volumes_for(self, image: str, role: str) -> dict[str, dict[str, str]]:
        """A labelled volume for each VOLUME the image declares, so Docker creates no anonymous one.

        Anonymous volumes carry no label; one the sweep cannot find is one that leaks.
        """
        declared = (self.client.images.get(image).attrs.get("Config") or {}).get("Volumes") or {}
        mounts = {}
        for i, path in enumerate(sorted(declared)):
            with self.guard.critical():
                vol = self.client.volumes.create(name=f"{self.prefix}-{role}-{i}", labels=self.labels)
            mounts[vol.name] = {"bind": path, "mode": "rw"}
        return mounts

    def ensure_image(self, ref: str) -> None:
        from docker.errors import DockerException, ImageNotFound

        try:
            self.client.images.get(ref)
        except ImageNotFound:
            self.say(f"==> {ref} is not local: pulling it")
            try:
                self.client.images.pull(ref)
            except DockerException as exc:
                raise StepFailed(
                    f"{ref} is not local and cannot be pulled",
                    f"{str(exc)[-300:]}\n"
                    "set compose.postgres_image (or ATBB_COMPOSE_POSTGRES_IMAGE) to an image you have",
                ) from None

    # --- state -----------------------------------------------------------------------------------------

    def require_running(self, container: Any, what: str) -> None:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] == "running":
            return
        summary = f"{what} exited (code {state.get('ExitCode')})"
        # Every later step that needs it fails the same way: show its logs once, not once per step.
        if container.id in self.exits_reported:
            raise StepFailed(summary, "its last log lines are shown above")
        self.exits_reported.add(container.id)
        raise StepFailed(summary, log_tail(container))

    def poll(self, probe: Callable[[], Any], *, interval: float, start: float | None = None) -> Any:
        """The stack's readiness waits: `probe` until ready, within the run's timeout."""
        return polling.until(probe, seconds=self.timeout, interval=interval, start=start)

    # --- PostgreSQL and migrations ---------------------------------------------------------------------

    def start_postgres(self) -> Database:
        """The run's PostgreSQL on its network, ready for connections (pg_isready over TCP)."""
        self.ensure_image(self.postgres_image)
        self.ensure_network()
        password = secrets.token_hex(16)
        self.postgres = self.run(
            self.postgres_image,
            "postgres",
            network=self.network.name,
            environment=Database(host="", password=password).server_env(),
            volumes=self.volumes_for(self.postgres_image, "postgres"),
        )
        self.db = Database(host=self.postgres.name, password=password)

        def ready() -> bool | Waiting:
            self.require_running(self.postgres, "PostgreSQL")
            code, output = self.postgres.exec_run(list(PG_READY_PROBE))
            if code in (126, 127):
                raise StepFailed(f"{self.postgres_image} has no pg_isready", output.decode("utf-8", "replace"))
            return True if code == 0 else Waiting(f"pg_isready exited {code}")

        try:
            self.poll(ready, interval=0.5)
        except polling.TimedOut:
            raise StepFailed(f"not ready within {self.timeout:.0f} s", log_tail(self.postgres)) from None
        return self.db

    @property
    def database_url(self) -> Secret:
        if self.db is None:
            raise StepFailed("PostgreSQL is not started")
        return Secret(self.db.url())

    def migrate(self, image: str, name: str = "migrate") -> list[str]:
        """The image's baked `migrate` command against the run's database; its output lines (exit 0)."""
        from requests.exceptions import RequestException

        container = self.run(
            image,
            name,
            command=list(image_spec.MIGRATE_ARGS),
            network=self.ensure_network().name,
            # Only DATABASE_URL: the design promises migrations need nothing else. No DB_WAIT_TIMEOUT either:
            # PostgreSQL already answered over TCP, so a migrator that still cannot connect is a failure.
            environment={"DATABASE_URL": reveal(self.database_url)},
        )
        try:
            try:
                code = container.wait(timeout=self.timeout)["StatusCode"]
            except RequestException:
                raise StepFailed(f"did not finish within {self.timeout:.0f} s", log_tail(container)) from None
            output = plain_lines(container.logs())
            if code != 0:
                raise StepFailed(f"exited {code}", indent_logs("\n".join(output).encode()))
            return output
        finally:
            if not self.keep:
                container.remove(force=True, v=True)

    # --- app containers --------------------------------------------------------------------------------

    def app_env(self, run: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The app's env for this stack's database: a fresh `.invalid` identity named after `run`."""
        if self.db is None:
            raise StepFailed("PostgreSQL is not started")
        return app_env.app_env(
            self.db,
            app_env.throwaway_identity(run),
            self.required_env,
            placeholder=run,
            extra=extra,
            secret=Secret,
        )

    def start_app(self, image: str, name: str, env: Mapping[str, str], *, publish: bool = True) -> App:
        """Start an app container of `image` on the run's network, hardened as the Compose example runs it.

        With `publish`, port 80 is published on a free 127.0.0.1 port and the URL is that; without, the URL
        is the container's address on the run's network (reachable from the host on Linux). Any number of
        apps, of any images, may run next to each other; `name` tells them apart.
        """
        network = self.ensure_network()
        volumes = self.volumes_for(image, name)
        started = time.monotonic()
        container = self.run(
            image,
            name,
            network=network.name,
            environment={k: reveal(v) for k, v in env.items()},
            ports={APP_PORT: ("127.0.0.1", None)} if publish else {},
            volumes=volumes,
            **HARDENED,
        )
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        if publish:
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(APP_PORT) or []
            if not bindings:
                raise StepFailed("port 80 was not published", log_tail(container))
            port = int(bindings[0]["HostPort"])
            app = App(name, image, container, started, f"http://127.0.0.1:{port}", port, ip)
        else:
            app = App(name, image, container, started, f"http://{ip}", None, ip)
        self.apps[name] = app
        return app

    def wait_answering(
        self,
        app: App,
        path: str = "/",
        *,
        accept: Callable[[httpc.Http], bool] = lambda _: True,
        headers: Mapping[str, str] | None = None,
        stay_up: float = 0.0,
        interval: float = 0.25,
        check_every: int = 1,
        follow_redirects: bool = False,
        late: Callable[[str], StepFailed] | None = None,
    ) -> httpc.Http:
        """GET `path` until an answer `accept` takes, and the container is still up `stay_up` seconds after
        the wait began; the first such answer. The app must keep running throughout.

        `check_every`: ask the engine whether the container still runs on every n-th poll only (a fast
        poll would otherwise mostly measure the engine). `late(last reason)` is the error at the deadline.
        """
        answered: list[httpc.Http] = []
        polls = [0]
        begun = time.monotonic()

        def probe() -> httpc.Http | Waiting:
            polls[0] += 1
            if polls[0] % check_every == 0 or polls[0] == 1:
                self.require_running(app.container, "the app container")
            if not answered:
                try:
                    resp = httpc.get(app.url + path, timeout=2, headers=headers, follow_redirects=follow_redirects)
                except httpc.TRANSPORT_ERRORS as exc:
                    return Waiting(f"{type(exc).__name__}: {exc}")
                if not accept(resp):
                    return Waiting(resp.describe())
                answered.append(resp)
            if time.monotonic() - begun < stay_up:
                return Waiting("answered; staying up")
            return answered[0]

        try:
            return self.poll(probe, interval=interval)
        except polling.TimedOut as exc:
            if late is not None:
                raise late(exc.reason) from None
            raise StepFailed(
                f"port 80 did not answer within {self.timeout:.0f} s ({exc.reason})", log_tail(app.container)
            ) from None

    def wait_healthy(self, app: App, *, interval: float = 0.5) -> str:
        """Until Docker says the app's HEALTHCHECK is healthy; fails at once when unhealthy."""

        def probe() -> str | Waiting:
            self.require_running(app.container, "the app container")
            health = app.container.attrs["State"].get("Health")
            if health is None:
                raise StepFailed("the image defines no HEALTHCHECK")
            if health["Status"] == "healthy":
                return "healthy"
            if health["Status"] == "unhealthy":
                raise StepFailed("unhealthy", self._probe_output(app, health))
            return Waiting(health["Status"])

        try:
            return self.poll(probe, interval=interval)
        except polling.TimedOut as exc:
            health = app.container.attrs["State"].get("Health") or {}
            raise StepFailed(
                f"still {exc.reason} after {self.timeout:.0f} s", self._probe_output(app, health)
            ) from None

    def _probe_output(self, app: App, health: Mapping[str, Any]) -> str:
        probes = [(p.get("Output") or "").strip() or "(empty)" for p in (health.get("Log") or [])][-3:]
        return "\n".join(["last probe output:", *probes, log_tail(app.container)])

    def remove_app(self, name: str) -> None:
        app = self.apps.pop(name)
        app.container.remove(force=True, v=True)
