"""`inv doctor`: a checklist of what a deployment needs, one row per check: ok / warn / fail and the fix.

The checks are data (CHECKS, in the order they print). Each one gathers facts through a `Probe` (the only
part that touches the engine, the network or the disk, and that remembers answers other checks reuse)
and hands them to a pure `*_finding` function that decides the verdict; the unit tests call those.

Decisions:
- A check whose prerequisite failed (no engine, an invalid env file) is not run and shows as a warning
  saying why: the failing prerequisite already fails the run, and a second "fail" for the same cause would
  send the reader after two problems when there is one.
- The database check is skipped (warning) when DATABASE_URL names the Compose service `postgres` and the
  stack is not running yet: doctor is meant to be run *before* the first `inv compose-up`, and the
  database cannot be reachable then. When the stack's postgres exists but has stopped, that is a failure.
- Env file values are never printed, only variable names (envfile.validate's messages), so the output
  can be pasted into an issue.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from atbb_kit.commands import compose, pg
from atbb_kit.commands.compose import COMPOSE_HINT
from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine, envfile
from atbb_kit.infra.console import Column, Console
from atbb_kit.infra.runner import DeadlineExceeded
from atbb_kit.ops import (
    backup,
    browser_check,
    deployment,  # which imports this module too: used in function bodies only
)
from atbb_kit.ops.backup import COMPOSE_DB_HOST, parse_database_url
from atbb_kit.ops.browser_check import CHROMIUM_NAMES, INSTALL_CHROMIUM, INSTALL_PLAYWRIGHT

if TYPE_CHECKING:
    from atbb_kit.core.config import Config
    from atbb_kit.infra.envfile import EnvReport
    from atbb_kit.infra.runner import Runner

GB = 1_000_000_000  # decimal, like image.size_budget_mb
DISK_WARN = 5 * GB
DISK_FAIL = 1 * GB
# Compose v1 reads `profiles` from 1.28 on (the migrate service relies on it) and `depends_on` conditions
# in the unversioned (Compose spec) format from 1.27; 1.28 covers both.
COMPOSE_V1_MIN = (1, 28)


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str
    fix: str = ""


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Level.OK, detail)


def warn(check: str, detail: str, fix: str = "") -> Finding:
    return Finding(check, Level.WARN, detail, fix)


def fail(check: str, detail: str, fix: str = "") -> Finding:
    return Finding(check, Level.FAIL, detail, fix)


def not_checked(check: str, why: str, fix: str = "") -> Finding:
    return warn(check, f"not checked: {why}", fix)


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.level is Level.FAIL for f in findings) else 0


# --- verdicts (pure) ----------------------------------------------------------------------------------


def engine_finding(version: str | None, api: str | None, cli: str | None, error: KitError | None) -> Finding:
    name = "Docker engine"
    if error is not None:
        return fail(name, error.what, error.fix or "")
    if not cli:
        return fail(name, f"engine {version} answers, but there is no docker client on PATH", "install the docker CLI")
    return ok(name, f"{version} (API {api}), client {cli}")


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def compose_finding(base: Sequence[str] | None, version: str | None) -> Finding:
    name = "Compose"
    if not base:
        return fail(name, "neither `docker compose` nor `docker-compose` is available", _compose_hint())
    if base[-1] == "compose":
        return ok(name, f"docker compose {version or '(version unknown)'} (v2 plugin)")
    found = _version_tuple(version or "")
    if found and found < COMPOSE_V1_MIN:
        return fail(
            name,
            f"docker-compose {version} is too old: the Compose file needs 1.28+ (profiles)",
            "install the Compose v2 plugin (docker compose), or docker-compose 1.29",
        )
    return warn(
        name,
        f"docker-compose {version or '(version unknown)'} (v1): works, but v1 is end-of-life since July 2023",
        "install the Compose v2 plugin (docker compose); the kit prefers it when present",
    )


def _compose_hint() -> str:

    return COMPOSE_HINT


def disk_finding(path: str, free_bytes: int) -> Finding:
    name = "free disk space"
    shown = f"{free_bytes / GB:.1f} GB free on {path}"
    if free_bytes < DISK_FAIL:
        return fail(name, shown, "free space (docker system prune removes unused images and build cache)")
    if free_bytes < DISK_WARN:
        return warn(name, shown + " (under 5 GB)", "free space soon: images, the database and backups grow")
    return ok(name, shown)


def env_finding(
    path: Path, exists: bool, problems: Sequence[str], fix: str = "", mismatches: Sequence[str] = ()
) -> Finding:
    """`mismatches`: lines `docker run --env-file` reads differently (envfile.py), a warning when nothing
    else is wrong: the kit and Compose read the file as validated, plain docker would not."""
    name = "env file"
    if not exists:
        quoted = shlex.quote(str(path))
        fix = f"cp .env.production.example {quoted} && chmod 600 {quoted}, then edit it"
        return fail(name, f"{path} does not exist", fix)
    if problems:
        return fail(
            name,
            "; ".join(problems),
            fix or f"edit {shlex.quote(str(path))}; every variable is described in .env.production.example",
        )
    if mismatches:
        lines = "; ".join(mismatches)
        return warn(
            name,
            f"{path} is valid for the kit and Compose, but docker run --env-file reads {len(mismatches)} "
            f"line(s) differently: {lines}",
            "write each variable as NAME=value: no quotes, no `export`, no spaces around =, no # after it",
        )
    return ok(name, f"{path}: every required variable is set and well-formed")


def permission_finding(path: Path, exists: bool, warning: str | None) -> Finding:
    name = "env file permissions"
    if not exists:
        return not_checked(name, f"{path} does not exist")
    if warning:
        return warn(name, f"{path} is readable by other users", shlex.join(["chmod", "600", str(path)]))
    return ok(name, f"{path} is private to its owner")


def compose_env_problems(values: Mapping[str, str], name: str = ".env") -> list[str]:
    """What keeps the Compose example's PostgreSQL from matching DATABASE_URL. Names only, never values.

    The postgres service takes POSTGRES_USER/PASSWORD/DB from the same env file on its first start; the
    app connects with DATABASE_URL. When they disagree the stack starts and then every query fails.
    """
    problems: list[str] = []
    if not values.get("POSTGRES_PASSWORD", "").strip():
        problems.append(f"{name}: POSTGRES_PASSWORD is missing (the Compose example's PostgreSQL needs it)")
    try:
        target = parse_database_url(values.get("DATABASE_URL", ""))
    except KitError:
        return problems  # envfile.validate reports a malformed URL already
    if target.host != COMPOSE_DB_HOST:
        return problems
    pg_user = values.get("POSTGRES_USER", "").strip() or "postgres"
    pg_db = values.get("POSTGRES_DB", "").strip() or pg_user
    password = values.get("POSTGRES_PASSWORD", "")
    if password.strip() and password != target.password.reveal():
        problems.append(f"{name}: POSTGRES_PASSWORD does not match the password in DATABASE_URL")
    if pg_user != target.user:
        problems.append(f"{name}: POSTGRES_USER does not match the user in DATABASE_URL")
    if pg_db != target.dbname:
        problems.append(f"{name}: POSTGRES_DB does not match the database in DATABASE_URL")
    if target.port != 5432:
        problems.append(f"{name}: DATABASE_URL must use port 5432 to reach the Compose service `postgres`")
    return problems


EXAMPLE_ENV = ".env.production.example"


def placeholder_problems(
    values: Mapping[str, str], example: Mapping[str, str | None], secret_names: Sequence[str], name: str = ".env"
) -> list[str]:
    """Secrets still equal to the example file's placeholders: they are published with the kit, so a forum
    running with them has a public session secret or database password. Names only, never values."""

    def url_password(url: str | None) -> str:
        try:
            return parse_database_url(url or "").password.reveal()
        except KitError:
            return ""

    same = []
    for var in secret_names:
        mine, theirs = values.get(var) or "", example.get(var) or ""
        if var == "DATABASE_URL":
            mine, theirs = url_password(mine), url_password(theirs)
        if theirs and mine == theirs:
            same.append(var)
    if not same:
        return []
    verb = "still holds the public placeholder value" if len(same) == 1 else "still hold the public placeholder values"
    return [f"{name}: {', '.join(same)} {verb} from {EXAMPLE_ENV}"]


PLACEHOLDER_FIX = (
    "generate new values: `inv secret` for SESSION_SECRET, `openssl rand -hex 24` for the database password "
    "(in DATABASE_URL and POSTGRES_PASSWORD)"
)


def compose_settings_finding(exists: bool, problems: Sequence[str], external: bool) -> Finding:
    name = "Compose database settings"
    if not exists:
        return not_checked(name, "no env file")
    if problems:
        return fail(name, "; ".join(problems), "make POSTGRES_USER/PASSWORD/DB match DATABASE_URL")
    if external:
        return ok(name, "DATABASE_URL names an external database (the Compose postgres service is not used by atbb)")
    return ok(name, "POSTGRES_USER/PASSWORD/DB match DATABASE_URL")


def port_finding(
    port: int, bindable: bool, publishers: Sequence[tuple[str, str, str]], project: str, engine_known: bool = True
) -> Finding:
    """`publishers`: (container, compose project, service) of running containers publishing `port`;
    engine_known=False when the engine could not be asked (then a taken port may be our own stack's)."""
    name = "host port"
    fix = (
        f"stop what uses it, or choose another port: ATBB_COMPOSE_HOST_PORT={port + 1} (compose.host_port in atbb.yaml)"
    )
    # The Compose example publishes it from `edge` (in front of atbb); older files from atbb itself.
    ours = [p for p in publishers if p[1] == project and p[2] in ("atbb", "edge")]
    if ours:
        role = "atbb edge" if ours[0][2] == "edge" else "atbb"
        return ok(name, f"{port} is published by this stack's {role} ({ours[0][0]})")
    if publishers:
        container, other, _ = publishers[0]
        owner = f" of Compose project {other}" if other else ""
        return fail(name, f"{port} is already published by container {container}{owner}", fix)
    if not bindable:
        if not engine_known:
            return fail(name, f"{port} is in use (the engine does not answer, so it may be this stack's own)", fix)
        return fail(name, f"{port} is in use by another program on this host", fix)
    return ok(name, f"{port} is free")


def image_finding(name: str, ref: str, found: tuple[str, int] | None, missing_fix: str) -> Finding:
    if found is None:
        return warn(name, f"{ref} is not present locally", missing_fix)
    image_id, size = found
    return ok(name, f"{ref} ({image_id.removeprefix('sha256:')[:12]}, {size / 1e6:.0f} MB)")


# --- gathering (I/O) ----------------------------------------------------------------------------------


def port_bindable(port: int) -> bool:
    """True when a listener could take `port` on every address. Compose publishes on 0.0.0.0, so a
    program on 127.0.0.1 (or any one address) blocks it too; binding the wildcard notices both.
    SO_REUSEADDR, as Docker's proxy sets it: connections lingering in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 (a probe, closed at once)
        except OSError:
            return False
    return True


@dataclass
class Probe:
    """What the checks look at, fetched once. `env_path` and `image` come from the task's flags."""

    cfg: Config
    run: Runner
    env_path: Path
    image: str
    # --network or compose.network: the database's Docker network, already checked to exist.
    network_name: str | None = None
    _memo: dict[str, Any] = field(default_factory=dict)

    def _once(self, key: str, fetch: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = fetch()
        return self._memo[key]

    @property
    def project(self) -> str:
        return self.cfg.compose.project

    def engine(self) -> tuple[Any, KitError | None]:

        def fetch():
            try:
                return engine.facts(), None
            except KitError as exc:
                return None, exc

        return self._once("engine", fetch)

    def engine_ok(self) -> bool:
        return self.engine()[1] is None

    def cli(self) -> str | None:

        def fetch():
            try:
                return engine.cli_path()
            except KitError:
                return None

        return self._once("cli", fetch)

    def env(self) -> tuple[bool, EnvReport | None, str | None]:
        """(exists, validation report, permission warning)."""

        def fetch():
            env = self.cfg.env
            try:
                report = envfile.examine(self.env_path, env.required, (*env.optional, *env.secret))
            except envfile.MissingEnvFile:
                return False, None, None
            except KitError as exc:  # a folder, unreadable, not UTF-8, too large: a file that cannot be used
                return True, envfile.EnvReport({}, (exc.what,)), None
            return True, report, envfile.permission_warning(self.env_path)

        return self._once("env", fetch)

    def network(self) -> str | None:

        if self.network_name:
            return self.network_name
        return self._once("network", lambda: engine.compose_network(self.project) if self.engine_ok() else None)


def check_engine(p: Probe) -> Finding:
    facts, error = p.engine()
    if error is not None:
        return engine_finding(None, None, None, error)
    return engine_finding(facts.version, facts.api_version, p.cli(), None)


def check_compose(p: Probe) -> Finding:

    try:
        base = compose.detect(p.run)
    except KitError:
        return compose_finding(None, None)
    return compose_finding(base, compose.version(p.run, base))


def check_disk(p: Probe) -> Finding:

    facts, _ = p.engine()
    root = facts.data_root if facts and facts.data_root else ""
    # The data root is a path on the engine's machine; it is only meaningful here when it exists here.
    path = root if root and os.path.isdir(root) else "/"
    return disk_finding(path, shutil.disk_usage(path).free)


def check_env(p: Probe) -> Finding:
    exists, report, _ = p.env()
    problems = list(report.problems) if report else []
    placeholders = (
        placeholder_problems(report.values, example_values(p.cfg), p.cfg.env.secret, p.env_path.name) if report else []
    )
    fix = PLACEHOLDER_FIX if placeholders and not problems else ""
    mismatches = report.mismatches if report else ()
    return env_finding(p.env_path, exists, problems + placeholders, fix, mismatches)


def example_values(cfg: Config) -> dict[str, str | None]:
    """The placeholders of the kit's .env.production.example ({} when it is not there)."""
    path = cfg.root() / EXAMPLE_ENV
    return dict(envfile.read(path)) if path.is_file() else {}


def check_permissions(p: Probe) -> Finding:
    exists, _, warning = p.env()
    if exists and not p.env_path.is_file():
        return not_checked("env file permissions", f"{p.env_path} is not a file (see above)")
    return permission_finding(p.env_path, exists, warning)


def check_compose_settings(p: Probe) -> Finding:

    exists, report, _ = p.env()
    if not exists or report is None:
        return compose_settings_finding(False, (), False)
    problems = compose_env_problems(report.values, p.env_path.name)
    try:
        external = not parse_database_url(report.values.get("DATABASE_URL", "")).on_compose_host
    except KitError:
        external = False
    return compose_settings_finding(True, problems, external)


def check_database(p: Probe) -> Finding:

    name = "database"
    exists, report, _ = p.env()
    if not exists or report is None or not report.ok:
        return not_checked(name, "the env file is missing or invalid (see above)")
    try:
        target = backup.parse_database_url(report.values["DATABASE_URL"])
    except KitError as exc:
        return fail(name, exc.what, exc.fix or "")
    cli = p.cli()
    if not p.engine_ok() or not cli:
        return not_checked(name, "the check runs in a container and the Docker engine does not answer")
    network = p.network()
    if target.on_compose_host and not network:
        state = engine.compose_health(p.project, "postgres")
        if state and state not in ("running", "starting", "healthy", "unhealthy"):
            return fail(
                name,
                f"the Compose stack's postgres container is {state}",
                "see why with `inv logs -s postgres`, then start it again with `inv compose-up`",
            )
        return not_checked(
            name,
            f"DATABASE_URL names the Compose service `postgres` and the stack {p.project} is not running",
            "`inv compose-up` starts it; run doctor again afterwards",
        )
    image = p.cfg.compose.postgres_image
    if engine.image_size(image) is None:
        pull = shlex.join(["docker", "pull", image])
        return not_checked(name, f"it runs psql from {image}, which is not present locally", pull)

    job = deployment.one_off(cli, "doctor", "the database check", deployment.CHECK_SECONDS, deployment.CHECK_FIX)
    cmd = pg.connection_check(cli, image, backup.pg_env(target), network, name=job.name)
    try:
        result = p.run.run(cmd, check=False, capture=True, quiet=True, oneoff=job)
    except DeadlineExceeded as exc:
        return fail(name, exc.what, exc.fix or "")
    via = f" (on network {network})" if network else ""
    if result.ok:
        return ok(name, f"connected to {target.where} as {target.user}{via}")
    error = backup.connect_error(result.stderr or result.stdout, target, image)
    return fail(name, error.what + via, error.fix or "")


def check_port(p: Probe) -> Finding:

    port = p.cfg.compose.host_port
    publishers = engine.containers_publishing(port) if p.engine_ok() else []
    return port_finding(port, port_bindable(port), publishers, p.project, engine_known=p.engine_ok())


def check_image(p: Probe) -> Finding:

    name = "atbb image"
    if not p.engine_ok():
        return not_checked(name, "the Docker engine does not answer")
    return image_finding(
        name,
        p.image,
        engine.image_size(p.image),
        "`inv compose-up` builds it when missing (or build it now: inv image)",
    )


def check_postgres_image(p: Probe) -> Finding:

    name = "postgres image"
    ref = p.cfg.compose.postgres_image
    if not p.engine_ok():
        return not_checked(name, "the Docker engine does not answer")
    pull = shlex.join(["docker", "pull", ref])
    return image_finding(name, ref, engine.image_size(ref), f"Compose pulls it on the first start ({pull})")


def chromium_finding(path: str | None, client: bool) -> Finding:
    """Only `inv smoke --browser` needs Chromium and its client library: missing is a warning, never a failure."""
    name = "Chromium"
    if path is None:
        return warn(
            name,
            f"not installed (none of {', '.join(CHROMIUM_NAMES)} on PATH): `inv smoke --browser` cannot run",
            f"{INSTALL_CHROMIUM} (only inv smoke --browser needs it)",
        )
    if not client:
        return warn(
            name,
            f"{path}, but the Python package playwright that drives it is missing: `inv smoke --browser` cannot run",
            INSTALL_PLAYWRIGHT,
        )
    return ok(name, f"{path}, for inv smoke --browser")


def check_chromium(p: Probe) -> Finding:

    return chromium_finding(browser_check.find_chromium(), browser_check.playwright_installed())


@dataclass(frozen=True)
class DoctorCheck:
    """One line of `inv doctor`'s checklist: a key, the row's title, and the function that looks."""

    key: str
    title: str  # the row's name when the check itself raises
    run: Callable[[Probe], Finding]


# The checklist, in print order: what everything else depends on comes first.
CHECKS: tuple[DoctorCheck, ...] = (
    DoctorCheck("engine", "Docker engine", check_engine),
    DoctorCheck("compose", "Compose", check_compose),
    DoctorCheck("disk", "free disk space", check_disk),
    DoctorCheck("env", "env file", check_env),
    DoctorCheck("permissions", "env file permissions", check_permissions),
    DoctorCheck("compose-settings", "Compose database settings", check_compose_settings),
    DoctorCheck("database", "database", check_database),
    DoctorCheck("port", "host port", check_port),
    DoctorCheck("image", "atbb image", check_image),
    DoctorCheck("postgres-image", "postgres image", check_postgres_image),
    DoctorCheck("chromium", "Chromium", check_chromium),
)


def run_checks(probe: Probe, checks: Sequence[DoctorCheck] = CHECKS) -> list[Finding]:
    findings = []
    for check in checks:
        try:
            findings.append(check.run(probe))
        except KitError as exc:
            # A check that cannot even look is a failed check, not a crashed doctor: the rest still run.
            findings.append(fail(check.title, exc.what, exc.fix or ""))
    return findings


_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def render(findings: Sequence[Finding], out: TextIO | None = None) -> None:
    """The findings as a table and a one-line summary, on stdout (or `out`): results, not progress."""
    shown = Console(result_stream=out)
    shown.table(
        "atBB doctor",
        [Column("check", style="bold", no_wrap=True), Column("", no_wrap=True, markup=True), "detail", "fix"],
        [(f.check, f"[{_STYLE[f.level]}]{f.level.value}[/]", f.detail, f.fix) for f in findings],
    )
    counts = {level: sum(1 for f in findings if f.level is level) for level in Level}
    verdict = "some checks failed" if counts[Level.FAIL] else "ready"
    shown.result(f"doctor: {counts[Level.OK]} ok, {counts[Level.WARN]} warn, {counts[Level.FAIL]} fail: {verdict}")
