"""`inv upgrade` and `inv rollback`: a release goes live behind the edge with no failed request, or not at all.

The steps (`plan`) are data; the tasks (atbb_kit/tasks/upgrade.py) hand in what only they can run (smoke,
backup, migrate) as callables, and `Switch` does the rest against the engine:

1. preflight: the doctor's checks that matter here, the new image present (pulled when it names a
   registry), its OCI labels shown, no downgrade unless allowed, exactly one running atbb container and a
   running edge (docker-compose.example.yml);
2. smoke (`inv smoke` of the new image, throwaway database) — upgrade only;
3. backup (`inv backup`; its path goes into the history) — upgrade only;
4. migrate with the new image — upgrade only;
5. start: a second container of the `atbb` service with the new image (`up --scale atbb=2 --no-recreate`);
6. health: the image's own HEALTHCHECK command, run in the new container every 0.5 s until it passes;
   a container that exits or restarts, or whose check has not passed within --timeout, fails the step;
7. switch: the edge is pointed at the new container (graceful nginx reload: in-flight requests finish on
   the old one) and the kit waits until the edge answers the health path from the new release;
8. drain: --drain seconds for requests still in flight, then the old container is stopped and removed;
9. record: the release history gets its entry.

Before the switch the edge is pinned to the old container by name (the service name `atbb` would make
Docker's DNS hand out the new, not yet healthy, container as well) unless it already is: after an upgrade
it stays pinned to the container it switched to, so an upgrade costs the edge one graceful reload (two
on the first one after the edge started). Each reload closes the idle keep-alive connections of the old
workers, which a client may have just sent a request on, so fewer reloads mean fewer such races.
A failure or a signal (Ctrl-C, SIGTERM,
SIGHUP) before the switch is confirmed points the edge back at the old container and removes the new one;
after it, the old one is stopped. Either way one healthy release serves when the task ends. The cleanup
runs with the signals ignored, so a second Ctrl-C cannot cut it short.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from atbb_kit.commands import upgrade as cmds
from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine, polling, signals
from atbb_kit.infra import http as httpc
from atbb_kit.infra.console import Column, console
from atbb_kit.infra.polling import Waiting
from atbb_kit.infra.signals import Interrupted
from atbb_kit.ops import releases

# Labels the build writes (docker/Dockerfile) and the history keeps.
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
CREATED_LABEL = "org.opencontainers.image.created"
HEALTH_POLL = 0.5
EDGE_CONFIRM_SECONDS = 20
EDGE_POLL = 0.2
STOP_GRACE = 10


# --- the plan (pure) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    what: str  # one line for --dry-run and the step line


def plan(action: str, *, smoke: bool = True) -> list[Step]:
    """The steps of `action` ("upgrade" or "rollback"), in order."""
    if action not in ("upgrade", "rollback"):
        raise ValueError(action)
    steps = [Step("preflight", "preflight", "doctor checks, the image present, its labels, no downgrade")]
    if action == "upgrade":
        if smoke:
            steps.append(Step("smoke", "smoke test", "inv smoke of the new image against a throwaway database"))
        steps += [
            Step("backup", "backup", "inv backup of the live database (the path goes into the history)"),
            Step("migrate", "migrate", "inv migrate with the new image"),
        ]
    steps += [
        Step("start", "start new", "a second atbb container with the new image, next to the old one"),
        Step("health", "health check", "the image's HEALTHCHECK in the new container until it passes, then warm-up"),
        Step("switch", "switch", "point the edge at the new container (graceful nginx reload), confirm it"),
        Step("drain", "drain old", "wait for requests in flight, stop and remove the old container"),
        Step("record", "record", "append the release to the history"),
    ]
    return steps


def dry_run_lines(steps: Sequence[Step], details: Mapping[str, Sequence[str]]) -> list[str]:
    """`--dry-run`'s output: each numbered step, then the commands it would run."""
    lines = []
    for n, step in enumerate(steps, 1):
        lines.append(f"[{n}/{len(steps)}] {step.title}: {step.what}")
        lines += [f"    $ {text}" for text in details.get(step.key, ())]
    return lines


def repository_of(ref: str) -> str:
    """`ghcr.io/o/atbb:main-1234abc` -> `ghcr.io/o/atbb` (a registry port is not a tag)."""
    ref = ref.split("@", 1)[0]
    head, sep, tail = ref.rpartition(":")
    return head if sep and "/" not in tail else ref


def resolve_ref(image: str | None, version: str | None, default_ref: str) -> str:
    """--image as given, or --version X.Y.Z against the configured repository."""
    if bool(image) == bool(version):
        raise KitError("give one of --image REF or --version X.Y.Z", "e.g. inv upgrade --version 1.2.3")
    if image:
        return image
    assert version is not None
    if releases.parse_version(version) is None:
        raise KitError(f"--version {version!r} is not a version like 1.2.3", "give X.Y.Z, or --image REF")
    return f"{repository_of(default_ref)}:{version.removeprefix('v')}"


# --- facts about images and containers ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    ref: str
    image_id: str
    version: str
    revision: str
    created: str

    def shown(self) -> str:
        return (
            f"{self.ref} (id {self.image_id.removeprefix('sha256:')[:12]}, version {self.version or '?'}, "
            f"revision {(self.revision or '?')[:12]}, created {self.created or '?'})"
        )


def facts_from(ref: str, attrs: dict) -> ImageFacts:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return ImageFacts(
        ref,
        attrs.get("Id", ""),
        labels.get(VERSION_LABEL, ""),
        labels.get(REVISION_LABEL, ""),
        labels.get(CREATED_LABEL, ""),
    )


def image_facts(ref: str) -> ImageFacts | None:
    from docker.errors import ImageNotFound

    try:
        return facts_from(ref, engine.client().images.get(ref).attrs)
    except ImageNotFound:
        return None


def service_containers(project: str, service: str) -> list[Any]:
    """The service's long-running containers (not `run` one-offs), oldest number first."""
    found = engine.client().containers.list(
        all=True,
        filters={"label": [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]},
    )
    found = [c for c in found if (c.labels or {}).get("com.docker.compose.oneoff", "False") != "True"]
    return sorted(found, key=lambda c: int((c.labels or {}).get("com.docker.compose.container-number", "0") or 0))


def health_test(attrs: dict) -> list[str] | None:
    """The container's HEALTHCHECK as an exec argv, or None when it has none."""
    test = ((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return None


def crash_reason(attrs: dict) -> str | None:
    """Why the container is not going to turn healthy, or None while it may."""
    state = attrs.get("State") or {}
    status = state.get("Status", "")
    if status in ("exited", "dead"):
        return f"it exited with code {state.get('ExitCode')}"
    if status == "restarting" or int(attrs.get("RestartCount") or 0) > 0:
        return f"it crashed and is restarting (exit code {state.get('ExitCode')})"
    if (state.get("Health") or {}).get("Status") == "unhealthy":
        return "Docker marks it unhealthy"
    return None


# --- progress -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    steps: list[Step]
    rows: list[tuple[int, str, float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def number(self, key: str) -> int:
        return next(i for i, s in enumerate(self.steps, 1) if s.key == key)

    @contextmanager
    def step(self, key: str):
        n = self.number(key)
        step = self.steps[n - 1]
        console.say(f"[{n}/{len(self.steps)}] {step.title}: {step.what}")
        t0 = time.monotonic()
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        finally:
            seconds = time.monotonic() - t0
            self.rows.append((n, step.title, seconds, outcome))
            console.say(f"[{n}/{len(self.steps)}] {step.title}: {outcome} in {seconds:.1f} s")

    def seconds(self) -> dict[str, float]:
        return {self.steps[n - 1].key: s for n, _, s, _ in self.rows}

    def summary(self, title: str) -> None:
        done = {n for n, *_ in self.rows}
        rows = [[str(n), t, f"{s:.1f}", o] for n, t, s, o in self.rows]
        rows += [[str(n), s.title, "-", "not run"] for n, s in enumerate(self.steps, 1) if n not in done]
        rows.sort(key=lambda r: int(r[0]))
        total = time.monotonic() - self.started
        console.table(
            title,
            [Column("#", justify="right"), Column("step"), Column("seconds", justify="right"), Column("result")],
            rows,
            caption=f"{total:.1f} s in all",
        )


# --- signals --------------------------------------------------------------------------------------------


# --- the switch -----------------------------------------------------------------------------------------

_MAP_DEFAULT = re.compile(r'map \$host \$(atbb_upstream|atbb_release) \{ default "([^"]*)"; \}')


def parse_upstream(text: str) -> tuple[str, str]:
    """(upstream, release label) from the edge's upstream.conf; ("", "") for what the kit did not write."""
    found = dict(_MAP_DEFAULT.findall(text))
    return found.get("atbb_upstream", ""), found.get("atbb_release", "")


def get_with_header(url: str, header: str) -> tuple[int, str]:
    """(status, the header's value) of one GET through the edge; (0, reason) when nothing answered."""
    try:
        answer = httpc.get(url, timeout=5, follow_redirects=True)
    except (*httpc.TRANSPORT_ERRORS, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))
    return answer.status, answer.headers.get(header.lower(), "")


@dataclass
class Hooks:
    """What only the tasks can run; each raises a KitError on failure."""

    smoke: Callable[[str], None] | None = None
    backup: Callable[[], str] | None = None
    migrate: Callable[[str], None] | None = None


@dataclass
class Outcome:
    new: ImageFacts
    old_container: str
    new_container: str
    backup: str = ""
    migrated: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


class UpgradeFailed(KitError):
    exit_code = 1


def release_of(facts: ImageFacts, action: str, *, container: str, backup: str = "", migrated: bool = False):
    """The history's record of `facts` starting to serve now, by whoever runs the kit."""
    return releases.Release(
        image=facts.ref,
        image_id=facts.image_id,
        version=facts.version,
        revision=facts.revision,
        created=facts.created,
        at=releases.now_iso(),
        by=releases.operator(),
        action=action,
        backup=backup,
        migrated=migrated,
        container=container,
    )


def settle(sw: Switch, facts: Callable[[], ImageFacts], history: releases.History, action: str, ref: str) -> list[str]:
    """After a failure or a signal: one release serving, and the history saying which. When migrations
    started and the old release kept the traffic, the history records it again as migrated, so a later
    `inv rollback` warns that the database is newer than what ran before it."""
    with signals.ignored():
        problems = sw.finish_after_signal() if sw.confirmed else sw.revert()
        if sw.confirmed:
            record(sw, facts(), history, action)
        elif sw.migrate_started and sw.old_facts is not None:
            kept = release_of(
                sw.old_facts, f"kept ({action} to {ref} failed)", container=sw.old.name, backup=sw.backup, migrated=True
            )
            releases.append(history, kept)
    return problems


def record(sw: Switch, new: ImageFacts, history: releases.History, action: str) -> None:
    releases.append(history, release_of(new, action, container=sw.new.name, backup=sw.backup, migrated=sw.migrated))


class Switch:
    """One upgrade or rollback of the Compose stack `k.cfg.compose.project`."""

    def __init__(self, k, stack_for: Callable[[str], Any], env_file: str, *, timeout: int, drain: float) -> None:
        self.k = k
        self.stack_for = stack_for  # image -> context manager yielding the Compose invocation
        self.env_file = env_file
        self.project = k.cfg.compose.project
        self.port = k.cfg.compose.host_port
        self.timeout = timeout
        self.drain = drain
        self.docker = "docker"
        self.old: Any = None
        self.edge: Any = None
        self.new: Any = None
        self.old_label = ""
        self.confirmed = False
        self.backup = ""
        self.migrated = False
        self.migrate_started = False
        # The running release's facts, read in the preflight; recorded again if a failed upgrade migrated.
        self.old_facts: ImageFacts | None = None

    # -- preflight --

    def find_stack(self) -> None:
        """Exactly one running atbb container and a running edge, or a KitError saying what to do."""
        edges = [c for c in service_containers(self.project, cmds.EDGE) if c.status == "running"]
        if not edges:
            raise KitError(
                f"the stack {self.project} has no running edge container, so there is nothing to switch traffic "
                "with (a Compose file from before the edge, or a stack that is not up)",
                "start it with `inv compose-up` (docker-compose.example.yml has the edge service); without an edge, "
                "upgrade with brief downtime: inv backup, inv migrate --image REF, inv compose-up --image REF",
            )
        apps = service_containers(self.project, cmds.SERVICE)
        running = [c for c in apps if c.status == "running"]
        if len(apps) != 1 or len(running) != 1:
            names = ", ".join(f"{c.name} ({c.status})" for c in apps) or "none"
            raise KitError(
                f"the stack {self.project} must run exactly one atbb container to upgrade from; it has: {names}",
                "start it with `inv compose-up`, or remove the extra one with `docker rm -f NAME` "
                "(the one the edge does not point at: `inv releases` says which image serves)",
            )
        self.edge, self.old = edges[0], running[0]

    def current_facts(self) -> ImageFacts:
        attrs = self.old.attrs
        ref = (attrs.get("Config") or {}).get("Image", "")
        image_attrs = self.old.image.attrs
        return facts_from(ref, image_attrs)

    # -- start and health --

    def start_new(self, ref: str) -> None:
        with self.stack_for(ref) as stack:
            self.k.run.run(cmds.scale_up(stack, 2))
        others = [c for c in service_containers(self.project, cmds.SERVICE) if c.id != self.old.id]
        if len(others) != 1:
            raise KitError(f"expected one new atbb container, found {len(others)}", "see `inv status`")
        self.new = others[0]
        console.say(f"    new container: {self.new.name}")

    def wait_healthy(self) -> None:
        from docker.errors import APIError, NotFound

        test = None

        def probe() -> bool | Waiting:
            """True once the image's own health check passes in it; a KitError once it never will."""
            nonlocal test
            try:
                self.new.reload()
            except NotFound:
                raise KitError(f"the new container {self.new.name} disappeared", "see `inv logs -s atbb`") from None
            attrs = self.new.attrs
            reason = crash_reason(attrs)
            if reason:
                raise KitError(
                    f"the new release's container {self.new.name} is not healthy: {reason}", self.logs_hint()
                )
            test = test or health_test(attrs)
            if attrs["State"].get("Status") != "running":
                return Waiting(attrs["State"].get("Status", "not running"))
            if test is None:
                console.warn("the new image has no HEALTHCHECK: it counts as healthy once it runs")
                return True
            try:
                code, _ = self.new.exec_run(test)
            except APIError:
                code = -1
            if code != 0:
                return Waiting(f"its health check exited {code}")
            console.say(f"    {self.new.name} passes its health check")
            return True

        try:
            polling.until(probe, seconds=self.timeout, interval=HEALTH_POLL)
        except polling.TimedOut:
            raise KitError(
                f"the new release's container {self.new.name} did not pass its health check within {self.timeout} s",
                self.logs_hint(),
            ) from None

    def warm_up(self) -> None:
        """A few requests to the new container itself before it gets traffic (commands/upgrade.WARM_UP_SCRIPT);
        one that fails only costs the warm-up."""
        paths = list(dict.fromkeys(["/", self.k.cfg.health.path]))
        t0 = time.monotonic()
        result = self.k.run.run(cmds.warm_up(self.docker, self.new.name, paths), check=False, capture=True)
        if result.ok:
            console.say(
                f"    warmed up {self.new.name} ({', '.join(paths)}, 20 requests each) in {time.monotonic() - t0:.1f} s"
            )
        else:
            console.warn(f"could not warm up {self.new.name} (exit {result.returncode}); switching anyway")

    def logs_hint(self) -> str:
        tail = ""
        try:
            raw = self.new.logs(tail=8).decode("utf-8", "replace").strip() if self.new is not None else ""
            tail = " | ".join(line.strip()[:160] for line in raw.splitlines()[-4:])
        except Exception:
            tail = ""
        return "its last log lines: " + tail if tail else "its logs are gone with it; try the image with inv smoke"

    # -- the edge --

    def point_edge(self, container: str, label: str) -> None:
        self.k.run.run(cmds.point_edge(self.docker, self.edge.name, container, label), capture=True)

    def confirm_edge(self, label: str) -> None:
        """Until the edge answers the health path with this release's label (the reload is asynchronous)."""
        url = f"http://127.0.0.1:{self.port}{self.k.cfg.health.path}"

        def probe() -> bool | Waiting:
            status, header = get_with_header(url, "X-Atbb-Release")
            if status == self.k.cfg.health.status and header == label:
                return True
            return Waiting(f"HTTP {status}, release {header or 'none'}")

        try:
            polling.until(probe, seconds=EDGE_CONFIRM_SECONDS, interval=EDGE_POLL)
        except polling.TimedOut as exc:
            raise KitError(
                f"the edge did not answer from release {label} within {EDGE_CONFIRM_SECONDS} s (last: {exc.reason})",
                "see `inv logs -s edge`",
            ) from None

    def edge_points_at(self) -> tuple[str, str]:
        """What the edge's upstream.conf says now: (upstream, release label)."""
        code, out = self.edge.exec_run(["cat", cmds.UPSTREAM_CONF])
        return parse_upstream(out.decode("utf-8", "replace")) if code == 0 else ("", "")

    def pin_old(self) -> None:
        self.old_label = cmds.release_label(*self._label_parts(self.old))
        if self.edge_points_at() == (self.old.name, self.old_label):
            console.say(f"    the edge already points at {self.old.name}")
            return
        self.point_edge(self.old.name, self.old_label)
        self.confirm_edge(self.old_label)

    @staticmethod
    def _label_parts(container) -> tuple[str, str, str]:
        labels = (container.image.attrs.get("Config") or {}).get("Labels") or {}
        return labels.get(REVISION_LABEL, ""), container.image.id, container.name

    def switch(self) -> str:
        """Point the edge at the new container and wait until it answers from there; returns the label."""
        label = cmds.release_label(*self._label_parts(self.new))
        self.point_edge(self.new.name, label)
        self.confirm_edge(label)
        self.confirmed = True
        return label

    def retire_old(self) -> None:
        if self.drain:
            console.say(f"    waiting {self.drain:g} s for requests in flight on {self.old.name}")
            time.sleep(self.drain)
        self.k.run.run(cmds.stop(self.docker, self.old.name, STOP_GRACE), capture=True)
        self.k.run.run(cmds.remove(self.docker, self.old.name), capture=True)

    # -- cleanup --

    def revert(self) -> list[str]:
        """Before the switch was confirmed: the old container gets (or keeps) the traffic, the new one goes.
        Returns what could not be done."""
        problems = []
        if self.old is not None and self.edge is not None and self.old_label:
            try:
                self.point_edge(self.old.name, self.old_label)
                self.confirm_edge(self.old_label)
            except KitError as exc:
                problems.append(f"pointing the edge back at {self.old.name}: {exc.what}")
        if self.old is not None:
            # Every atbb container but the old one: also one whose `up` was cut short before the kit knew
            # its name (a create the engine had already received lands a moment later: look twice).
            for attempt in range(2):
                for extra in service_containers(self.project, cmds.SERVICE):
                    if extra.id == self.old.id:
                        continue
                    result = self.k.run.run(cmds.remove(self.docker, extra.name), check=False, capture=True)
                    if not result.ok and "No such container" not in result.stderr:
                        problems.append(f"removing {extra.name}: {result.stderr.strip()[:200]}")
                if attempt == 0:
                    time.sleep(1.0)
        return problems

    def finish_after_signal(self) -> list[str]:
        """After the switch was confirmed: the old one is stopped now (no drain wait)."""
        problems = []
        for cmd in (cmds.stop(self.docker, self.old.name, STOP_GRACE), cmds.remove(self.docker, self.old.name)):
            result = self.k.run.run(cmd, check=False, capture=True)
            if not result.ok:
                problems.append(result.stderr.strip()[:200])
        return problems


def failure(step: str, number: int, total: int, exc: KitError, sw: Switch, problems: Sequence[str]) -> KitError:
    """The one error an upgrade that did not go live ends with: what failed, who serves, what to do."""
    serving = f"the old release ({sw.old.name}) still serves" if sw.old is not None else "nothing was changed"
    removed = f"; the new container {sw.new.name} was removed" if sw.new is not None else ""
    what = f"step {number}/{total} ({step}) failed: {exc.what}. {serving}{removed}"
    if problems:
        what += ". Cleanup problems: " + "; ".join(problems)
    fixes = [exc.fix] if exc.fix else []
    if sw.migrate_started and sw.backup:
        fixes.append(
            "migrations ran against the live database; to put it back as it was before this upgrade, run "
            f"`{cmds.restore_command(sw.backup, sw.env_file)}` (nothing is restored without you asking)"
        )
    return UpgradeFailed(what, "; ".join(fixes) or None)


def interrupted(step: str, sw: Switch, signum: int, problems: Sequence[str]) -> KitError:
    name = signal.Signals(signum).name
    if sw.confirmed:
        serving = f"the new release ({sw.new.name}) serves; the old one was stopped"
    elif sw.old is not None:
        serving = f"the old release ({sw.old.name}) still serves" + (
            f"; the new container {sw.new.name} was removed" if sw.new is not None else ""
        )
    else:
        serving = "nothing was changed"
    fix = "run the upgrade again when ready"
    if sw.migrate_started and sw.backup and not sw.confirmed:
        fix += (
            f"; migrations ran: `{cmds.restore_command(sw.backup, sw.env_file)}` puts the database back (only if "
            "you want to)"
        )
    if problems:
        fix += ". Cleanup problems: " + "; ".join(problems)
    return Interrupted(f"interrupted by {name} during {step}: {serving}", fix, signum)


# --- the whole run --------------------------------------------------------------------------------------


def execute(
    sw: Switch,
    steps: Sequence[Step],
    ref: str,
    facts: Callable[[], ImageFacts],
    hooks: Hooks,
    history: releases.History,
    *,
    action: str,
    preflight: Callable[[], None],
) -> Outcome:
    """Run `steps`; on failure or a signal leave one healthy release serving and raise the error that says so.
    `facts` gives the new image's facts once the preflight has read them (it may pull the image)."""
    progress = Progress(list(steps))
    current = "preflight"
    try:
        try:
            with progress.step("preflight"):
                preflight()
            if any(s.key == "smoke" for s in steps):
                current = "smoke"
                with progress.step("smoke"):
                    assert hooks.smoke is not None
                    hooks.smoke(ref)
            if any(s.key == "backup" for s in steps):
                current = "backup"
                with progress.step("backup"):
                    assert hooks.backup is not None
                    sw.backup = hooks.backup()
                    console.say(f"    backup: {sw.backup}")
            if any(s.key == "migrate" for s in steps):
                current = "migrate"
                with progress.step("migrate"):
                    assert hooks.migrate is not None
                    sw.migrate_started = True
                    hooks.migrate(ref)
                    sw.migrated = True
            current = "start"
            with progress.step("start"):
                sw.pin_old()
                sw.start_new(ref)
            current = "health"
            with progress.step("health"):
                sw.wait_healthy()
                sw.warm_up()
            current = "switch"
            with progress.step("switch"):
                sw.switch()
            current = "drain"
            with progress.step("drain"):
                sw.retire_old()
        except KitError as exc:
            if exc.exit_code > 128:
                # A one-off container (migrate, backup) or the smoke run was stopped by a signal: the same
                # as a signal here.
                raise signals.SignalReceived(exc.exit_code - 128) from None
            problems = settle(sw, facts, history, action, ref)
            n = progress.number(current)
            progress.summary(f"{action}: failed")
            if sw.confirmed:
                raise UpgradeFailed(
                    f"step {n}/{len(steps)} ({current}) failed after the switch: {exc.what}. The new release "
                    f"({sw.new.name}) serves and was recorded"
                    + (f"; cleanup problems: {'; '.join(problems)}" if problems else ""),
                    exc.fix or "see `inv status`",
                ) from None
            raise failure(current, n, len(steps), exc, sw, problems) from None
    except KeyboardInterrupt as exc:
        signum = signals.number(exc)
        problems = settle(sw, facts, history, action, ref)
        progress.summary(f"{action}: interrupted")
        raise interrupted(current, sw, signum, problems) from None
    new = facts()
    with progress.step("record"):
        record(sw, new, history, action)
    progress.summary(f"{action}: {new.ref} is live")
    return Outcome(new, sw.old.name, sw.new.name, sw.backup, sw.migrated, progress.seconds())
