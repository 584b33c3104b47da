"""`inv smoke`: the design's manual testing checklist, run against a real image in throwaway containers.

The checklist is data (`checklist`), the order and skip rules are a pure loop (`run_checklist`), and the
verdicts on HTTP answers are pure functions (`judge_*`), so all of it is unit-tested without Docker.
`SmokeRun` is the only part that talks to the engine: a private network, a PostgreSQL, two migration
runs and the app, every object named `atbb-smoke-<run id>-*` and labelled `atbb.smoke=<run id>`.
Cleanup sweeps by that label, so it also finds an object whose creation was cut short, and it runs on
success, failure, Ctrl-C and SIGTERM alike (unless --keep).

With --browser, lines that open smoke.browser.pages in headless Chromium (atbb_kit/ops/browser_check.py) come
after the HEALTHCHECK line and before `docker stop`, which ends the app they load.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atbb_kit.core import image_spec
from atbb_kit.core.errors import KitError
from atbb_kit.infra.envfile import validate
from atbb_kit.infra.runner import Secret, reveal

if TYPE_CHECKING:
    from atbb_kit.core.config import Config

LABEL = "atbb.smoke"
NAME_PREFIX = "atbb-smoke"
OK, FAIL, SKIPPED = "ok", "fail", "skipped"
# `docker stop` sends SIGKILL after this many seconds; an image that needs them all did not stop by itself.
STOP_GRACE = 10
# How long the app must stay up after nginx first answers to count as started (see check_start).
STARTUP_GRACE = 3.0
LOG_LINES = 20
EXCERPT = 200
PG_USER = PG_DB = "atbb"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
# Answers that mean "not up yet" rather than "wrong": nginx says 502 until the upstream listens, and the
# appview's health says 503 while its database pool connects. Anything else is final.
STARTING = frozenset({502, 503, 504})


# ---------------------------------------------------------------------------------------------------------
# The checklist as data, and the loop that runs it.


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    # Keys of the checks that must pass first; otherwise this one is skipped (transitively).
    needs: tuple[str, ...] = ()


def health_title(cfg: Config) -> str:
    h = cfg.health
    body = f" containing {h.body}" if h.body else ""
    return f"{h.path} answers {h.status}{body} from {cfg.health_service()}"


def checklist(cfg: Config, browser: bool = False) -> tuple[Check, ...]:
    """The ten lines, in the order they run. Titles are what users see and what failures are named by;
    every expectation comes from atbb.yaml (health, routes), none from one app's response shapes.

    With `browser`, Chromium's lines go between the HEALTHCHECK and the stop (which ends the app)."""
    lines = (
        Check("size", f"image size within the {cfg.image.size_budget_mb} MB budget"),
        Check("postgres", "PostgreSQL is ready"),
        Check("migrate", "migration runs (exit 0)", ("postgres",)),
        Check("migrate-again", "migration runs again (idempotent, exit 0)", ("migrate",)),
        # The app needs the schema: without it the pages fail too, and that second failure would only hide
        # the first one.
        Check("start", "app container starts with a generated env", ("migrate",)),
        Check("health", health_title(cfg), ("start",)),
        Check("page", f"/ answers a page from {cfg.service_for('/')}", ("start",)),
        Check("routes", f"each of the {len(route_probes(cfg))} routes reaches its service", ("start",)),
        # The HEALTHCHECK probes the same path through nginx: when that path is broken, waiting ~40 s
        # for Docker to say "unhealthy" would only repeat line 6.
        Check("healthy", "HEALTHCHECK turns healthy", ("health",)),
        Check("stop", f"docker stop exits 0 within {STOP_GRACE} s", ("start",)),
    )
    if not browser:
        return lines
    return (*lines[:-1], *browser_checks(cfg), lines[-1])


def browser_checks(cfg: Config) -> tuple[Check, ...]:
    """`--browser`: Chromium starts once every curl-level line passed, then a line per configured page."""
    pages = tuple(
        Check(f"browser-{i}", f"{page} loads in Chromium without errors", ("chromium",))
        for i, page in enumerate(cfg.smoke.browser.pages, 1)
    )
    return (Check("chromium", "headless Chromium starts", ("page", "routes", "healthy")), *pages)


@dataclass(frozen=True)
class RouteProbe:
    """One request that only `route` should answer: its Host (None: any), path, and the expected upstream."""

    label: str
    host: str | None
    path: str
    service: str
    port: int


def route_probes(cfg: Config) -> list[RouteProbe]:
    """A request per route and server block, derived from atbb.yaml by the same rules nginx follows."""
    from atbb_kit.core import routing

    probes = []
    for server in routing.servers(cfg.routes):
        # A wildcard host is probed through one made-up subdomain of it.
        host = server.host.replace("*", "smoke", 1) if server.host else None
        for route in server.routes:
            path = routing.sample_path(route)
            # Only probe what this server really sends to this route (a longer prefix may shadow a sample).
            if routing.resolve(cfg.routes, path, host) is not route:
                continue
            where = f" on {host}" if host else ""
            label = f"{route.match} {route.path}{where}"
            probes.append(RouteProbe(label, host, path, route.service, int(cfg.services[route.service].port)))
    return probes


class CheckFailed(Exception):
    """One checklist line failed: `summary` is one line for the table, `reason` the evidence (body, logs)."""

    def __init__(self, summary: str, reason: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    check: Check
    status: str
    seconds: float = 0.0
    detail: str = ""
    reason: str = ""


class Reporter:
    """Where the loop announces progress; the default prints nothing (tests), `Printer` prints to stderr."""

    def started(self, index: int, check: Check):
        return nullcontext()

    def finished(self, index: int, total: int, outcome: Outcome) -> None:
        pass


def run_checklist(
    checks: Sequence[Check],
    actions: Mapping[str, Callable[[], str | None]],
    reporter: Reporter | None = None,
    errors: tuple[type[BaseException], ...] = (CheckFailed,),
    clock: Callable[[], float] = time.monotonic,
    outcomes: list[Outcome] | None = None,
) -> list[Outcome]:
    """Run each check whose needs passed, in order; skip the others. `errors` become failed lines.

    Anything else (an interrupt, a kit bug) propagates: the caller's finally still cleans up, and
    `outcomes`, when given, holds the lines finished so far.
    """
    reporter = reporter or Reporter()
    outcomes = [] if outcomes is None else outcomes
    by_key: dict[str, Outcome] = {}
    titles = {c.key: c.title for c in checks}
    for index, check in enumerate(checks, 1):
        blockers = [n for n in check.needs if by_key.get(n) is None or by_key[n].status != OK]
        if blockers:
            outcome = Outcome(check, SKIPPED, detail="needs: " + "; ".join(titles.get(b, b) for b in blockers))
        else:
            started = clock()
            try:
                with reporter.started(index, check):
                    detail = actions[check.key]() or ""
                outcome = Outcome(check, OK, clock() - started, detail)
            except errors as exc:
                if isinstance(exc, CheckFailed):
                    outcome = Outcome(check, FAIL, clock() - started, exc.summary, exc.reason)
                else:
                    text = str(exc)
                    summary = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:EXCERPT]
                    # The whole message only when the one-line summary had to cut it.
                    full = text if text and not summary.endswith(text) else ""
                    outcome = Outcome(check, FAIL, clock() - started, summary, full)
        by_key[check.key] = outcome
        outcomes.append(outcome)
        reporter.finished(index, len(checks), outcome)
    return outcomes


def verdict(outcomes: Sequence[Outcome]) -> KitError | None:
    """None when every line passed; else the error naming the failed lines (skipped ones are counted)."""
    failed = [o.check.title for o in outcomes if o.status == FAIL]
    skipped = sum(1 for o in outcomes if o.status == SKIPPED)
    if not failed and not skipped:
        return None
    if not failed:  # only reachable through a checklist whose needs name unknown keys: a kit bug
        return KitError(f"smoke: {skipped} of {len(outcomes)} checks were skipped", "see the checklist above")
    head = f"smoke: {len(failed)} of {len(outcomes)} checks failed" + (f", {skipped} skipped" if skipped else "")
    return KitError(f"{head}: {'; '.join(failed)}", "see the reason above")


# ---------------------------------------------------------------------------------------------------------
# The app's environment, and the verdicts on its answers: pure.


def forum_did(token: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    """A syntactically valid did:plc (24 base32 characters) that names no real forum."""
    return "did:plc:" + "".join(token(BASE32) for _ in range(24))


def database_url(host: str, password: str) -> Secret:
    return Secret(f"postgres://{PG_USER}:{password}@{host}:5432/{PG_DB}")


def generated_env(db_url: str, required: Sequence[str] = ()) -> dict[str, str]:
    """Values for every required variable; secrets stay `Secret` so nothing prints them.

    `.invalid` (RFC 2606) can never resolve: the smoke test must not reach any real PDS or forum.
    A required variable the kit does not know gets a placeholder, as nothing else could be meant.
    """
    env: dict[str, str] = {
        "DATABASE_URL": db_url if isinstance(db_url, Secret) else Secret(db_url),
        "FORUM_DID": forum_did(),
        "PDS_URL": "https://pds.smoke.invalid",
        "OAUTH_PUBLIC_URL": "https://forum.smoke.invalid",
        "SESSION_SECRET": Secret(secrets.token_hex(32)),
    }
    for var in required:
        env.setdefault(var, "smoke")
    return env


@dataclass(frozen=True)
class Http:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def excerpt(self) -> str:
        # Whitespace collapsed so an HTML page still reads as one line in a terminal.
        text = " ".join(self.body.decode("utf-8", "replace").split())
        return text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")

    def describe(self) -> str:
        return f"HTTP {self.status} ({self.content_type or 'no content type'}): {self.excerpt() or '(empty body)'}"

    def json(self) -> Any:
        return json.loads(self.body)


def judge_health(resp: Http, status: int = 200, body: str | None = None) -> CheckFailed | None:
    """health.status, and health.body within the answer when set (atbb.yaml's `health:`)."""
    if resp.status != status:
        hint = ""
        if resp.status == 404:
            hint = ": is health.path a path the app serves, and routed to health.service?"
        elif resp.status in STARTING:
            hint = ": the service behind it is down or not ready (see its log lines)"
        return CheckFailed(f"HTTP {resp.status}, expected {status}{hint}", resp.describe())
    if body and body not in resp.body.decode("utf-8", "replace"):
        return CheckFailed(f"{status} but the body does not contain {body}", resp.describe())
    return None


def judge_page(resp: Http) -> CheckFailed | None:
    """The landing page: 2xx (or a redirect, e.g. to a sign-in page); an HTML answer must be a page."""
    if not 200 <= resp.status < 400:
        return CheckFailed(f"HTTP {resp.status}, expected a page (200-399)", resp.describe())
    if resp.status == 200 and "text/html" in resp.content_type.lower() and b"<html" not in resp.body.lower():
        return CheckFailed("200 HTML but no <html> element: not a page", resp.describe())
    return None


def judge_route(probe: RouteProbe, status: int, logged: Mapping[str, Any] | None) -> CheckFailed | None:
    """What nginx's access log says about one probe: which upstream answered, and how."""
    where = f"{probe.path}" + (f" (Host {probe.host})" if probe.host else "")
    if logged is None:
        return CheckFailed(f"{where}: nginx logged no line for the request (is the access log on?)")
    upstream = str(logged.get("upstream_addr") or "")
    expected = f"127.0.0.1:{probe.port}"
    if not upstream:
        return CheckFailed(f"{where}: nginx answered {status} itself; no location sends it to {probe.service}")
    if expected not in upstream.split(", ")[-1:]:
        return CheckFailed(f"{where}: reached {upstream}, expected {probe.service} at {expected}")
    if status >= 500:
        return CheckFailed(f"{where}: {probe.service} answered {status}")
    return None


def judge_stop(exit_code: int, seconds: float, grace: float = STOP_GRACE) -> CheckFailed | None:
    if seconds >= grace or exit_code == 137:
        return CheckFailed(f"took {seconds:.1f} s: Docker had to SIGKILL it (exit {exit_code})")
    if exit_code != 0:
        return CheckFailed(f"exited {exit_code} after {seconds:.1f} s, expected 0")
    return None


def judge_size(size: int, budget_mb: int) -> CheckFailed | None:
    if size > budget_mb * 1_000_000:
        return CheckFailed(
            f"{size / 1e6:.1f} MB is over image.size_budget_mb={budget_mb}",
            "trim the runtime stage, or raise image.size_budget_mb in atbb.yaml if the growth is intended",
        )
    return None


# ---------------------------------------------------------------------------------------------------------
# Signals: Ctrl-C and SIGTERM must end in cleanup, never in leaked containers.


class Interrupted(BaseException):
    """Raised in the main thread by a signal. A BaseException so no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SmokeInterrupted(KitError):
    def __init__(self, what: str, fix: str | None, signum: int) -> None:
        super().__init__(what, fix)
        self.exit_code = 128 + signum  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM


class Guard:
    """Turns signals into `Interrupted`, except where an exception would do harm.

    Inside `critical()` (a create call: the engine may finish creating after the client gave up, and the
    sweep would miss it) the signal is remembered and raised when the section ends. During cleanup it is
    only acknowledged: a second Ctrl-C must not leave half of the objects behind.
    """

    def __init__(self, say: Callable[[str], None] = lambda _: None) -> None:
        self.pending: int | None = None
        self.depth = 0
        self.cleaning = False
        self.say = say

    def on_signal(self, signum: int, frame: Any = None) -> None:
        if self.pending is None:
            self.pending = signum
        if self.cleaning:
            self.say(f"received {signal.Signals(signum).name} while cleaning up: finishing the cleanup first")
            return
        if self.depth:
            return
        raise Interrupted(signum)

    @contextmanager
    def critical(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending is not None and not self.cleaning:
                raise Interrupted(self.pending)

    @contextmanager
    def installed(self) -> Iterator[None]:
        # Python only lets the main thread set handlers; elsewhere (an embedding) the default ones stay.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        previous = {s: signal.getsignal(s) for s in wanted}
        for s in wanted:
            signal.signal(s, self.on_signal)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


# ---------------------------------------------------------------------------------------------------------
# Output


class Printer(Reporter):
    """One line per check on stderr as it completes; a spinner while it runs when stderr is a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.console = None
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console

            self.console = Console(file=self.stream)

    def say(self, text: str) -> None:
        if self.console is not None:
            # Through rich, so a line printed while the spinner runs lands above it instead of through it.
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def started(self, index: int, check: Check):
        if self.console is None:
            return nullcontext()
        return self.console.status(f"checking: {check.title}")

    def finished(self, index: int, total: int, outcome: Outcome) -> None:
        status = "FAIL" if outcome.status == FAIL else outcome.status
        timing = f" ({outcome.seconds:.1f} s)" if outcome.status != SKIPPED else ""
        detail = f" — {outcome.detail}" if outcome.detail else ""
        self.say(f"[{index:>2}/{total}] {status:<7} {outcome.check.title}{detail}{timing}")
        if outcome.status == FAIL and outcome.reason:
            for line in outcome.reason.splitlines():
                self.say(f"        {line}")


def print_table(outcomes: Sequence[Outcome], image: str, run_id: str, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"smoke: {image}", caption=f"run {run_id}, {seconds:.1f} s in all")
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("detail", overflow="fold")
    style = {OK: "green", FAIL: "bold red", SKIPPED: "yellow"}
    for i, o in enumerate(outcomes, 1):
        table.add_row(
            str(i),
            o.check.title,
            f"[{style[o.status]}]{o.status}[/]",
            f"{o.seconds:.1f} s" if o.status != SKIPPED else "",
            o.detail,
        )
    # rich wraps at 80 columns when stdout is not a terminal (CI logs): wide enough to keep lines whole.
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))
    console.print(table)


# ---------------------------------------------------------------------------------------------------------
# The engine side


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is an answer to judge (the page check accepts one), not something to follow.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> Http:
    req = urllib.request.Request(  # noqa: S310 (loopback only)
        url, headers={"User-Agent": "atbb-kit-smoke", **(headers or {})}
    )
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Http(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Http(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


# Terminal control sequences (colours, cursor moves) that CLIs such as drizzle-kit print for spinners.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain_lines(raw: bytes) -> list[str]:
    """Log output as a person reads it: control sequences gone, a spinner's redrawn line as its last state."""
    text = raw.decode("utf-8", "replace")
    lines = []
    for line in text.split("\n"):
        # A line redrawn with \r or "cursor to column 1" shows only its final state on a terminal.
        last = re.split(r"\r|\x1b\[1G", line.rstrip("\r"))[-1]
        cleaned = _ANSI.sub("", last).strip()
        if cleaned:
            lines.append(cleaned)
    return lines


def _indent_logs(raw: bytes) -> str:
    lines = raw.decode("utf-8", "replace").rstrip().splitlines()[-LOG_LINES:]
    return "\n".join(["last log lines:", *lines]) if lines else "(no log output)"


@dataclass
class SmokeRun:
    """One run's objects on the engine and the ten actions; `cleanup` removes everything by label."""

    client: Any
    cfg: Config
    image: str
    postgres_image: str
    timeout: float = 120.0
    keep: bool = False
    guard: Guard = field(default_factory=Guard)
    say: Callable[[str], None] = lambda _: None
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    # --browser: the Chromium executable to launch, and the folder its screenshots go to.
    chromium: str = ""
    screenshots: Path | None = None

    network: Any = None
    postgres: Any = None
    app: Any = None
    db_url: str = ""
    url: str = ""
    exits_reported: set[str] = field(default_factory=set)
    browser: Any = None

    @property
    def prefix(self) -> str:
        return f"{NAME_PREFIX}-{self.run_id}"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.run_id}

    @property
    def selector(self) -> dict[str, str]:
        return {"label": f"{LABEL}={self.run_id}"}

    def actions(self) -> dict[str, Callable[[], str | None]]:
        browser: dict[str, Callable[[], str | None]] = {}
        if self.chromium:
            browser["chromium"] = self.check_chromium
            for i, page in enumerate(self.cfg.smoke.browser.pages, 1):
                browser[f"browser-{i}"] = lambda i=i, page=page: self.check_browser_page(i, page)
        return browser | {
            "size": self.check_size,
            "postgres": self.check_postgres,
            "migrate": lambda: self.check_migrate(1),
            "migrate-again": lambda: self.check_migrate(2),
            "start": self.check_start,
            "health": self.check_health,
            "page": self.check_page,
            "routes": self.check_routes,
            "healthy": self.check_healthy,
            "stop": self.check_stop,
        }

    # --- helpers ----------------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _logs(self, container) -> str:
        try:
            return _indent_logs(container.logs(tail=LOG_LINES))
        except Exception as exc:  # the evidence is a bonus: never let it hide the failure itself
            return f"(logs unavailable: {exc})"

    def _volumes(self, image: str, role: str) -> dict[str, dict[str, str]]:
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

    def _run(self, image: str, name: str, **kwargs):
        with self.guard.critical():
            return self.client.containers.run(
                image, name=f"{self.prefix}-{name}", detach=True, labels=self.labels, **kwargs
            )

    def _require_running(self, container, what: str) -> None:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] == "running":
            return
        summary = f"{what} exited (code {state.get('ExitCode')})"
        # Every later line that needs the app fails the same way: show its logs once, not once per line.
        if container.id in self.exits_reported:
            raise CheckFailed(summary, "its last log lines are shown above")
        self.exits_reported.add(container.id)
        raise CheckFailed(summary, self._logs(container))

    def _ensure_image(self, ref: str) -> None:
        from docker.errors import DockerException, ImageNotFound

        try:
            self.client.images.get(ref)
        except ImageNotFound:
            self.say(f"==> {ref} is not local: pulling it")
            try:
                self.client.images.pull(ref)
            except DockerException as exc:
                raise CheckFailed(
                    f"{ref} is not local and cannot be pulled",
                    f"{str(exc)[-300:]}\n"
                    "set compose.postgres_image (or ATBB_COMPOSE_POSTGRES_IMAGE) to an image you have",
                ) from None

    def _get_settled(self, path: str, headers: Mapping[str, str] | None = None) -> Http:
        """GET through the published port until the answer is not a "still starting" one."""
        deadline = self._deadline()
        last: Http | str = "no answer"
        while True:
            self._require_running(self.app, "the app container")
            try:
                resp = http_get(self.url + path, headers=headers)
                if resp.status not in STARTING:
                    return resp
                last = resp
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                shown = last.describe() if isinstance(last, Http) else last
                raise CheckFailed(
                    f"no settled answer within {self.timeout:.0f} s", f"last: {shown}\n{self._logs(self.app)}"
                )
            time.sleep(0.25)

    # --- the ten actions --------------------------------------------------------------------------------

    def check_size(self) -> str:
        from atbb_kit.infra.engine import layers_size

        # The same measure as `inv image` and image.size_budget_mb: the platform's unpacked layers.
        size = layers_size(self.client.images.get(self.image).attrs)
        problem = judge_size(size, self.cfg.image.size_budget_mb)
        if problem:
            raise problem
        return f"{size / 1e6:.1f} MB"

    def check_postgres(self) -> str:
        self._ensure_image(self.postgres_image)
        with self.guard.critical():
            self.network = self.client.networks.create(f"{self.prefix}-net", driver="bridge", labels=self.labels)
        password = secrets.token_hex(16)
        self.postgres = self._run(
            self.postgres_image,
            "postgres",
            network=self.network.name,
            environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": password, "POSTGRES_DB": PG_DB},
            volumes=self._volumes(self.postgres_image, "postgres"),
        )
        self.db_url = database_url(self.postgres.name, password)
        deadline = self._deadline()
        # Over TCP: the official image's first-start server listens on the socket only, so a socket probe
        # could pass before the real server is up.
        probe = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", PG_USER, "-d", PG_DB]
        while True:
            self._require_running(self.postgres, "PostgreSQL")
            code, output = self.postgres.exec_run(probe)
            if code == 0:
                return self.postgres_image
            if code in (126, 127):
                raise CheckFailed(f"{self.postgres_image} has no pg_isready", output.decode("utf-8", "replace"))
            if time.monotonic() > deadline:
                raise CheckFailed(f"not ready within {self.timeout:.0f} s", self._logs(self.postgres))
            time.sleep(0.5)

    def check_migrate(self, attempt: int) -> str:
        from requests.exceptions import RequestException

        container = self._run(
            self.image,
            f"migrate-{attempt}",
            command=list(image_spec.MIGRATE_ARGS),
            network=self.network.name,
            # Only DATABASE_URL: the design promises migrations need nothing else. No DB_WAIT_TIMEOUT either:
            # PostgreSQL already answered over TCP, so a migrator that still cannot connect is a failure.
            environment={"DATABASE_URL": reveal(self.db_url)},
        )
        try:
            try:
                code = container.wait(timeout=self.timeout)["StatusCode"]
            except RequestException:
                raise CheckFailed(f"did not finish within {self.timeout:.0f} s", self._logs(container)) from None
            output = plain_lines(container.logs())
            if code != 0:
                raise CheckFailed(f"exited {code}", _indent_logs("\n".join(output).encode()))
            return output[-1][:EXCERPT] if output else "exit 0"
        finally:
            if not self.keep:
                container.remove(force=True, v=True)

    def check_start(self) -> str:
        env = generated_env(self.db_url, self.cfg.env.required)
        report = validate(env, self.cfg.env.required, "generated env")
        if not report.ok:
            raise CheckFailed("the generated env is invalid", "\n".join(report.problems))
        # As the Compose example runs it: read-only root, a tmpfs /tmp, no capabilities.
        self.app = self._run(
            self.image,
            "app",
            network=self.network.name,
            environment={k: reveal(v) for k, v in env.items()},
            ports={"80/tcp": ("127.0.0.1", None)},
            read_only=True,
            tmpfs={"/tmp": ""},  # noqa: S108 (the container's /tmp, a private tmpfs)
            cap_drop=["ALL"],
            volumes=self._volumes(self.image, "app"),
        )
        self.app.reload()
        bindings = (self.app.attrs["NetworkSettings"]["Ports"] or {}).get("80/tcp") or []
        if not bindings:
            raise CheckFailed("port 80 was not published", self._logs(self.app))
        self.url = f"http://127.0.0.1:{bindings[0]['HostPort']}"
        # Started = nginx answers at all (whether the right thing answers is for the next lines) and the
        # container is still up STARTUP_GRACE seconds in: a service that dies at start-up ends the container
        # within about two seconds (the supervisor polls once a second), and that failure belongs here.
        started = time.monotonic()
        deadline = self._deadline()
        answered = False
        while True:
            self._require_running(self.app, "the app container")
            if not answered:
                try:
                    http_get(self.url + "/", timeout=2)
                    answered = True
                except (OSError, http.client.HTTPException) as exc:
                    if time.monotonic() > deadline:
                        raise CheckFailed(
                            f"port 80 did not answer within {self.timeout:.0f} s ({exc})", self._logs(self.app)
                        ) from None
            if answered and time.monotonic() - started >= STARTUP_GRACE:
                return self.url
            time.sleep(0.25)

    def _judged(self, path: str, judge: Callable[[Http], CheckFailed | None]) -> Http:
        resp = self._get_settled(path)
        problem = judge(resp)
        if problem:
            raise problem
        return resp

    def check_health(self) -> str:
        h = self.cfg.health
        return self._judged(h.path, lambda resp: judge_health(resp, h.status, h.body)).excerpt()[:80]

    def check_page(self) -> str:
        resp = self._judged("/", judge_page)
        return f"{resp.status} {resp.content_type.split(';')[0]}, {len(resp.body)} bytes"

    def check_routes(self) -> str:
        """Each route's sample request, tagged with a request id nginx logs; the log line names the upstream
        that answered, which is the only proof of routing that does not depend on what the app returns."""
        token = secrets.token_hex(4)
        sent: list[tuple[RouteProbe, str, int]] = []
        for i, probe in enumerate(route_probes(self.cfg)):
            rid = f"atbb-smoke-{token}-{i}"
            headers = {"X-Request-ID": rid, **({"Host": probe.host} if probe.host else {})}
            resp = self._get_settled(probe.path, headers=headers)
            sent.append((probe, rid, resp.status))
        logged = self._access_lines({rid for _, rid, _ in sent})
        problems = [p for p in (judge_route(probe, status, logged.get(rid)) for probe, rid, status in sent) if p]
        if problems:
            raise CheckFailed(problems[0].summary, "\n".join(p.summary for p in problems))
        return ", ".join(f"{probe.path} -> {probe.service}" for probe, _, _ in sent)[:EXCERPT]

    def _access_lines(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """nginx's JSON access lines for these request ids (the log is flushed every 100 ms)."""
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 5
        while True:
            for line in self.app.logs().decode("utf-8", "replace").splitlines():
                if '"source":"nginx"' not in line or "request_id" not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("request_id") in ids:
                    found[entry["request_id"]] = entry
            if len(found) == len(ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def check_healthy(self) -> str:
        deadline = self._deadline()
        while True:
            self._require_running(self.app, "the app container")
            health = self.app.attrs["State"].get("Health")
            if health is None:
                raise CheckFailed("the image defines no HEALTHCHECK")
            if health["Status"] == "healthy":
                return "healthy"
            timed_out = time.monotonic() > deadline
            if health["Status"] == "unhealthy" or timed_out:
                probes = [(p.get("Output") or "").strip() or "(empty)" for p in (health.get("Log") or [])][-3:]
                summary = "unhealthy" if not timed_out else f"still {health['Status']} after {self.timeout:.0f} s"
                raise CheckFailed(summary, "\n".join(["last probe output:", *probes, self._logs(self.app)]))
            time.sleep(0.5)

    def check_stop(self) -> str:
        from requests.exceptions import RequestException

        # An app that already died proves nothing about stopping; say so rather than blame `docker stop`.
        self._require_running(self.app, "the app container")
        started = time.monotonic()
        try:
            self.app.stop(timeout=STOP_GRACE)
        except RequestException as exc:
            raise CheckFailed(f"docker stop did not return ({exc})", self._logs(self.app)) from None
        seconds = time.monotonic() - started
        self.app.reload()
        code = int(self.app.attrs["State"]["ExitCode"])
        problem = judge_stop(code, seconds)
        if problem:
            raise CheckFailed(problem.summary, self._logs(self.app))
        return f"exit 0 after {seconds:.1f} s"

    # --- --browser --------------------------------------------------------------------------------------

    def check_chromium(self) -> str:
        from atbb_kit.ops import browser_check

        self.browser = browser_check.Browser(self.chromium, timeout=self.timeout)
        try:
            version = self.browser.start()
        except browser_check.BrowserFailed as exc:
            raise CheckFailed(exc.summary, exc.reason) from None
        if self.screenshots is not None:
            self.screenshots.mkdir(parents=True, exist_ok=True)
        return f"Chromium {version} ({self.chromium})"

    def check_browser_page(self, index: int, page: str) -> str:
        """Load `page` through nginx; fail on what judge() finds, naming each URL or error."""
        from atbb_kit.ops import browser_check

        # The app must still be up: a page that fails because the container died would blame the page.
        self._require_running(self.app, "the app container")
        name = browser_check.screenshot_name(index, page)
        shot = self.screenshots / name if self.screenshots is not None else None
        try:
            load = self.browser.load(self.url, page, shot)
        except browser_check.BrowserFailed as exc:
            raise CheckFailed(exc.summary, exc.reason) from None
        verdict = browser_check.judge(load)
        detail = browser_check.summary(load, verdict, name if shot is not None else "")
        if verdict.problems:
            more = len(verdict.problems) - 1
            head = verdict.problems[0] + (f" (and {more} more)" if more else "")
            raise CheckFailed(head[: EXCERPT * 2], "\n".join([*verdict.problems, detail]))
        return detail

    def close_browser(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None

    # --- cleanup ----------------------------------------------------------------------------------------

    def _containers(self) -> list:
        # ignore_removed: a container that vanishes between the list and its inspect is not an error.
        return self.client.containers.list(all=True, filters=self.selector, ignore_removed=True)

    def leftovers(self) -> list[str]:
        found = [f"container {c.name}" for c in self._containers()]
        found += [f"network {n.name}" for n in self.client.networks.list(filters=self.selector)]
        found += [f"volume {v.name}" for v in self.client.volumes.list(filters=self.selector)]
        return found

    def cleanup(self) -> list[str]:
        """Remove every object carrying this run's label; return what could not be removed."""
        from atbb_kit.infra.engine import remove_labelled

        return remove_labelled(self.client, self.selector["label"], ("container", "volume", "network"))


def cleanup_hint(run_id: str) -> str:
    sel = f"label={LABEL}={run_id}"
    return (
        f"docker rm -f $(docker ps -aq --filter {sel}); "
        f"docker volume rm $(docker volume ls -q --filter {sel}); "
        f"docker network rm $(docker network ls -q --filter {sel})"
    )


def smoke(
    client: Any,
    cfg: Config,
    image: str,
    *,
    keep: bool = False,
    timeout: float = 120.0,
    printer: Printer | None = None,
    chromium: str = "",
    output: Path | None = None,
) -> list[Outcome]:
    """Run the checklist against `image`, clean up, print the table; raise a KitError on any failure.

    `chromium` (an executable, from browser_check.preflight) adds the --browser lines; their screenshots
    go to `output`, by default build/smoke/<run id>/."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    printer = printer or Printer()
    guard = Guard(printer.say)
    run = SmokeRun(
        client,
        cfg,
        image,
        cfg.compose.postgres_image,
        timeout=timeout,
        keep=keep,
        guard=guard,
        say=printer.say,
        chromium=chromium,
    )
    if chromium:
        run.screenshots = output if output is not None else Path("build") / "smoke" / run.run_id
    checks = checklist(cfg, browser=bool(chromium))
    printer.say(
        f"==> smoke run {run.run_id}: {image} with {run.postgres_image}; "
        f"everything it starts is named {run.prefix}-* and labelled {LABEL}={run.run_id}"
    )
    if run.screenshots is not None:
        printer.say(
            f"==> --browser: {len(cfg.smoke.browser.pages)} page(s) in {chromium}; screenshots go to {run.screenshots}/"
        )
    started = time.monotonic()
    outcomes: list[Outcome] = []
    interrupted: int | None = None
    with guard.installed():
        try:
            run_checklist(
                checks,
                run.actions(),
                printer,
                errors=(CheckFailed, DockerException, RequestException, OSError, http.client.HTTPException),
                outcomes=outcomes,
            )
        except Interrupted as exc:
            interrupted = exc.signum
        finally:
            guard.cleaning = True
            run.close_browser()
            if keep:
                kept = run.leftovers()
                printer.say(f"==> --keep: left {len(kept)} object(s): {', '.join(kept) or 'none'}")
                printer.say(f"    remove them with: {cleanup_hint(run.run_id)}")
                problems = []
            else:
                problems = run.cleanup()
                for problem in problems:
                    printer.say(f"warning: could not remove {problem}")
                if not problems:
                    printer.say(f"==> removed everything run {run.run_id} started")
    seconds = time.monotonic() - started
    # A signal that arrived during the cleanup still means the user asked to stop.
    interrupted = interrupted if interrupted is not None else guard.pending
    if interrupted is not None:
        done = len(outcomes)
        raise SmokeInterrupted(
            f"smoke: interrupted by {signal.Signals(interrupted).name}" + (f" after {done} check(s)" if done else ""),
            "nothing was left behind" if not keep and not problems else f"clean up with: {cleanup_hint(run.run_id)}",
            interrupted,
        )
    print_table(outcomes, image, run.run_id, seconds)
    if run.screenshots is not None and any(run.screenshots.glob("*.png")):
        printer.say(f"==> screenshots: {run.screenshots}/")
    failure = verdict(outcomes)
    if failure:
        raise failure
    if problems:
        raise KitError(
            f"smoke: every check passed, but {len(problems)} object(s) could not be removed",
            f"remove them with: {cleanup_hint(run.run_id)}",
        )
    printer.say(f"smoke: all {len(outcomes)} checks passed in {seconds:.1f} s")
    return outcomes


_RUN_ID = re.compile(r"==> smoke run ([0-9a-f]+):")


def run_id_from(output: str) -> str | None:
    """The run id a smoke run announced (tests and scripts use it to find the run's objects)."""
    found = _RUN_ID.search(output)
    return found.group(1) if found else None
