"""`inv smoke`: the design's manual testing checklist, run against a real image in throwaway containers.

The checklist is data (`checklist`), the order and skip rules are a pure loop (`run_checklist`), and the
verdicts on HTTP answers are pure functions (`judge_*`), so all of it is unit-tested without Docker.
`SmokeRun` is the only part that talks to the engine, through the run's throwaway stack (ops/stack.py):
a private network, a PostgreSQL, two migration runs and the app, every object named
`atbb-smoke-<run id>-*` and labelled `atbb.smoke=<run id>`. The stack sweeps by that label, so cleanup
also finds an object whose creation was cut short, and it runs on success, failure, Ctrl-C and SIGTERM
alike (unless --keep).

With --browser, lines that open smoke.browser.pages in headless Chromium (atbb_kit/ops/browser_check.py) come
after the HEALTHCHECK line and before `docker stop`, which ends the app they load.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atbb_kit.core import routing
from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine, polling
from atbb_kit.infra import http as httpc
from atbb_kit.infra.console import Column, console
from atbb_kit.infra.envfile import validate
from atbb_kit.infra.http import EXCERPT, Http
from atbb_kit.infra.polling import Waiting
from atbb_kit.ops import browser_check
from atbb_kit.ops.stack import App, Stack, StepFailed, cleanup_hint, log_tail

if TYPE_CHECKING:
    from atbb_kit.core.config import Config

LABEL = "atbb.smoke"
NAME_PREFIX = "atbb-smoke"
OK, FAIL, SKIPPED = "ok", "fail", "skipped"
# `docker stop` sends SIGKILL after this many seconds; an image that needs them all did not stop by itself.
STOP_GRACE = 10
# How long the app must stay up after nginx first answers to count as started (see check_start).
STARTUP_GRACE = 3.0
# Answers that mean "not up yet" rather than "wrong": nginx says 502 until the upstream listens, and the
# appview's health says 503 while its database pool connects. Anything else is final.
STARTING = frozenset({502, 503, 504})


# ---------------------------------------------------------------------------------------------------------
# The checklist as data, and the loop that runs it.


@dataclass(frozen=True)
class SmokeCheck:
    key: str
    title: str
    # Keys of the checks that must pass first; otherwise this one is skipped (transitively).
    needs: tuple[str, ...] = ()


def health_title(cfg: Config) -> str:
    h = cfg.health
    body = f" containing {h.body}" if h.body else ""
    return f"{h.path} answers {h.status}{body} from {cfg.health_service()}"


def checklist(cfg: Config, browser: bool = False) -> tuple[SmokeCheck, ...]:
    """The ten lines, in the order they run. Titles are what users see and what failures are named by;
    every expectation comes from atbb.yaml (health, routes), none from one app's response shapes.

    With `browser`, Chromium's lines go between the HEALTHCHECK and the stop (which ends the app)."""
    lines = (
        SmokeCheck("size", f"image size within the {cfg.image.size_budget_mb} MB budget"),
        SmokeCheck("postgres", "PostgreSQL is ready"),
        SmokeCheck("migrate", "migration runs (exit 0)", ("postgres",)),
        SmokeCheck("migrate-again", "migration runs again (idempotent, exit 0)", ("migrate",)),
        # The app needs the schema: without it the pages fail too, and that second failure would only hide
        # the first one.
        SmokeCheck("start", "app container starts with a generated env", ("migrate",)),
        SmokeCheck("health", health_title(cfg), ("start",)),
        SmokeCheck("page", f"/ answers a page from {cfg.service_for('/')}", ("start",)),
        SmokeCheck("routes", f"each of the {len(route_probes(cfg))} routes reaches its service", ("start",)),
        # The HEALTHCHECK probes the same path through nginx: when that path is broken, waiting ~40 s
        # for Docker to say "unhealthy" would only repeat line 6.
        SmokeCheck("healthy", "HEALTHCHECK turns healthy", ("health",)),
        SmokeCheck("stop", f"docker stop exits 0 within {STOP_GRACE} s", ("start",)),
    )
    if not browser:
        return lines
    return (*lines[:-1], *browser_checks(cfg), lines[-1])


def browser_checks(cfg: Config) -> tuple[SmokeCheck, ...]:
    """`--browser`: Chromium starts once every curl-level line passed, then a line per configured page."""
    pages = tuple(
        SmokeCheck(f"browser-{i}", f"{page} loads in Chromium without errors", ("chromium",))
        for i, page in enumerate(cfg.smoke.browser.pages, 1)
    )
    return (SmokeCheck("chromium", "headless Chromium starts", ("page", "routes", "healthy")), *pages)


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
            port = cfg.services[route.service].port
            assert port is not None  # the config refuses a route to a service without a port
            probes.append(RouteProbe(label, host, path, route.service, int(port)))
    return probes


class CheckFailed(StepFailed):
    """One checklist line failed: `summary` is one line for the table, `reason` the evidence (body, logs).
    A stack step that fails (StepFailed) fails its line the same way."""


@dataclass(frozen=True)
class CheckResult:
    check: SmokeCheck
    status: str
    seconds: float = 0.0
    detail: str = ""
    reason: str = ""


class Reporter:
    """Where the loop announces progress; the default prints nothing (tests), `Printer` prints to stderr."""

    def started(self, index: int, check: SmokeCheck):
        return nullcontext()

    def finished(self, index: int, total: int, outcome: CheckResult) -> None:
        pass


def run_checklist(
    checks: Sequence[SmokeCheck],
    actions: Mapping[str, Callable[[], str | None]],
    reporter: Reporter | None = None,
    errors: tuple[type[BaseException], ...] = (StepFailed,),
    clock: Callable[[], float] = time.monotonic,
    outcomes: list[CheckResult] | None = None,
) -> list[CheckResult]:
    """Run each check whose needs passed, in order; skip the others. `errors` become failed lines.

    Anything else (an interrupt, a kit bug) propagates: the caller's finally still cleans up, and
    `outcomes`, when given, holds the lines finished so far.
    """
    reporter = reporter or Reporter()
    outcomes = [] if outcomes is None else outcomes
    by_key: dict[str, CheckResult] = {}
    titles = {c.key: c.title for c in checks}
    for index, check in enumerate(checks, 1):
        blockers = [n for n in check.needs if by_key.get(n) is None or by_key[n].status != OK]
        if blockers:
            outcome = CheckResult(check, SKIPPED, detail="needs: " + "; ".join(titles.get(b, b) for b in blockers))
        else:
            started = clock()
            try:
                with reporter.started(index, check):
                    detail = actions[check.key]() or ""
                outcome = CheckResult(check, OK, clock() - started, detail)
            except errors as exc:
                if isinstance(exc, StepFailed):
                    outcome = CheckResult(check, FAIL, clock() - started, exc.summary, exc.reason)
                else:
                    text = str(exc)
                    summary = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:EXCERPT]
                    # The whole message only when the one-line summary had to cut it.
                    full = text if text and not summary.endswith(text) else ""
                    outcome = CheckResult(check, FAIL, clock() - started, summary, full)
        by_key[check.key] = outcome
        outcomes.append(outcome)
        reporter.finished(index, len(checks), outcome)
    return outcomes


def verdict(outcomes: Sequence[CheckResult]) -> KitError | None:
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
# The verdicts on the app's answers: pure.


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
# Output


class Printer(Reporter):
    """One line per check on stderr as it completes; a spinner while it runs when stderr is a terminal."""

    def __init__(self, out: Any = None) -> None:
        self.console = out or console

    def say(self, text: str) -> None:
        self.console.say(text)

    def started(self, index: int, check: SmokeCheck):
        return self.console.status(f"checking: {check.title}")

    def finished(self, index: int, total: int, outcome: CheckResult) -> None:
        status = "FAIL" if outcome.status == FAIL else outcome.status
        timing = f" ({outcome.seconds:.1f} s)" if outcome.status != SKIPPED else ""
        detail = f" — {outcome.detail}" if outcome.detail else ""
        self.say(f"[{index:>2}/{total}] {status:<7} {outcome.check.title}{detail}{timing}")
        if outcome.status == FAIL and outcome.reason:
            for line in outcome.reason.splitlines():
                self.say(f"        {line}")


_STYLE = {OK: "green", FAIL: "bold red", SKIPPED: "yellow"}
_COLUMNS = (
    Column("#", justify="right"),
    Column("check"),
    Column("result", markup=True),
    Column("time", justify="right"),
    Column("detail"),
)


def print_table(outcomes: Sequence[CheckResult], image: str, run_id: str, seconds: float) -> None:
    rows = [
        (
            str(i),
            o.check.title,
            f"[{_STYLE[o.status]}]{o.status}[/]",
            f"{o.seconds:.1f} s" if o.status != SKIPPED else "",
            o.detail,
        )
        for i, o in enumerate(outcomes, 1)
    ]
    console.table(f"smoke: {image}", _COLUMNS, rows, caption=f"run {run_id}, {seconds:.1f} s in all")


# ---------------------------------------------------------------------------------------------------------
# The engine side: the checks, on top of the throwaway stack (ops/stack.py)


def make_stack(client: Any, cfg: Config | None, **kwargs: Any) -> Stack:
    """This run's stack: `atbb-smoke-<run id>-*`, labelled `atbb.smoke=<run id>`."""
    postgres = cfg.compose.postgres_image if cfg is not None else ""
    required = tuple(cfg.env.required) if cfg is not None else ()
    return Stack(client, LABEL, NAME_PREFIX, postgres, required, **kwargs)


@dataclass
class SmokeRun:
    """The checks of one run, on its stack; the stack owns the engine's objects and their cleanup."""

    stack: Stack
    cfg: Config
    image: str
    # --browser: the Chromium executable to launch, and the folder its screenshots go to.
    chromium: str = ""
    screenshots: Path | None = None
    # The app container (SDK object), and the stack's record of it (its URL, when it started).
    app: Any = None
    started_app: App | None = None
    url: str = ""
    browser: Any = None

    @property
    def timeout(self) -> float:
        return self.stack.timeout

    def actions(self) -> dict[str, Callable[[], str | None]]:
        browser: dict[str, Callable[[], str | None]] = {}
        if self.chromium:
            browser["chromium"] = self.check_chromium
            for i, page in enumerate(self.cfg.smoke.browser.pages, 1):
                browser[f"browser-{i}"] = functools.partial(self.check_browser_page, i, page)
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

    def _require_app(self) -> None:
        self.stack.require_running(self.app, "the app container")

    def _get_settled(self, path: str, headers: Mapping[str, str] | None = None) -> Http:
        """GET through the published port until the answer is not a "still starting" one."""
        assert self.started_app is not None  # every line that asks needs "start"

        def late(last: str) -> CheckFailed:
            return CheckFailed(f"no settled answer within {self.timeout:.0f} s", f"last: {last}\n{log_tail(self.app)}")

        return self.stack.wait_answering(
            self.started_app, path, accept=lambda resp: resp.status not in STARTING, headers=headers, late=late
        )

    # --- the ten actions --------------------------------------------------------------------------------

    def check_size(self) -> str:
        # The same measure as `inv image` and image.size_budget_mb: the platform's unpacked layers.
        size = engine.layers_size(self.stack.client.images.get(self.image).attrs)
        problem = judge_size(size, self.cfg.image.size_budget_mb)
        if problem:
            raise problem
        return f"{size / 1e6:.1f} MB"

    def check_postgres(self) -> str:
        self.stack.start_postgres()
        return self.stack.postgres_image

    def check_migrate(self, attempt: int) -> str:
        output = self.stack.migrate(self.image, f"migrate-{attempt}")
        return output[-1][:EXCERPT] if output else "exit 0"

    def check_start(self) -> str:
        env = self.stack.app_env("smoke")
        report = validate(env, self.cfg.env.required, "generated env")
        if not report.ok:
            raise CheckFailed("the generated env is invalid", "\n".join(report.problems))
        started = self.stack.start_app(self.image, "app", env)
        self.started_app, self.app, self.url = started, started.container, started.url
        # Started = nginx answers at all (whether the right thing answers is for the next lines) and the
        # container is still up STARTUP_GRACE seconds in: a service that dies at start-up ends the container
        # within about two seconds (the supervisor polls once a second), and that failure belongs here.
        self.stack.wait_answering(started, "/", stay_up=STARTUP_GRACE)
        return self.url

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

        def all_logged() -> dict[str, dict[str, Any]] | Waiting:
            for line in self.app.logs().decode("utf-8", "replace").splitlines():
                if '"source":"nginx"' not in line or "request_id" not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("request_id") in ids:
                    found[entry["request_id"]] = entry
            return found if len(found) == len(ids) else Waiting(f"{len(found)} of {len(ids)} lines logged")

        try:
            return polling.until(all_logged, seconds=5, interval=0.2)
        except polling.TimedOut:
            return found  # the missing ones are judged as such

    def check_healthy(self) -> str:
        assert self.started_app is not None  # "healthy" needs "start"
        return self.stack.wait_healthy(self.started_app)

    def check_stop(self) -> str:
        from requests.exceptions import RequestException

        # An app that already died proves nothing about stopping; say so rather than blame `docker stop`.
        self._require_app()
        started = time.monotonic()
        try:
            self.app.stop(timeout=STOP_GRACE)
        except RequestException as exc:
            raise CheckFailed(f"docker stop did not return ({exc})", log_tail(self.app)) from None
        seconds = time.monotonic() - started
        self.app.reload()
        code = int(self.app.attrs["State"]["ExitCode"])
        problem = judge_stop(code, seconds)
        if problem:
            raise CheckFailed(problem.summary, log_tail(self.app))
        return f"exit 0 after {seconds:.1f} s"

    # --- --browser --------------------------------------------------------------------------------------

    def check_chromium(self) -> str:
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
        # The app must still be up: a page that fails because the container died would blame the page.
        self._require_app()
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
) -> list[CheckResult]:
    """Run the checklist against `image`, clean up, print the table; raise a KitError on any failure.

    `chromium` (an executable, from browser_check.preflight) adds the --browser lines; their screenshots
    go to `output`, by default build/smoke/<run id>/."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    printer = printer or Printer()
    stack = make_stack(client, cfg, timeout=timeout, keep=keep, say=printer.say)
    run = SmokeRun(stack, cfg, image, chromium=chromium)
    if chromium:
        run.screenshots = output if output is not None else Path("build") / "smoke" / stack.run_id
    checks = checklist(cfg, browser=bool(chromium))
    printer.say(
        f"==> smoke run {stack.run_id}: {image} with {stack.postgres_image}; "
        f"everything it starts is named {stack.prefix}-* and labelled {LABEL}={stack.run_id}"
    )
    if run.screenshots is not None:
        printer.say(
            f"==> --browser: {len(cfg.smoke.browser.pages)} page(s) in {chromium}; screenshots go to {run.screenshots}/"
        )
    started = time.monotonic()
    outcomes: list[CheckResult] = []
    with stack:
        try:
            run_checklist(
                checks,
                run.actions(),
                printer,
                errors=(StepFailed, DockerException, RequestException, *httpc.TRANSPORT_ERRORS),
                outcomes=outcomes,
            )
        finally:
            stack.guard.cleaning = True
            run.close_browser()
    seconds = time.monotonic() - started
    done = len(outcomes)
    interrupted = stack.interruption("smoke", f" after {done} check(s)" if done else "")
    if interrupted is not None:
        raise interrupted
    print_table(outcomes, image, stack.run_id, seconds)
    if run.screenshots is not None and any(run.screenshots.glob("*.png")):
        printer.say(f"==> screenshots: {run.screenshots}/")
    failure = verdict(outcomes)
    if failure:
        raise failure
    if stack.problems:
        raise KitError(
            f"smoke: every check passed, but {len(stack.problems)} object(s) could not be removed",
            f"remove them with: {cleanup_hint(stack.label, stack.run_id)}",
        )
    printer.say(f"smoke: all {len(outcomes)} checks passed in {seconds:.1f} s")
    return outcomes


_RUN_ID = re.compile(r"==> smoke run ([0-9a-f]+):")


def run_id_from(output: str) -> str | None:
    """The run id a smoke run announced (tests and scripts use it to find the run's objects)."""
    found = _RUN_ID.search(output)
    return found.group(1) if found else None
