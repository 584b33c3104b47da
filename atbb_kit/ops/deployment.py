"""The operator's tasks: migrate, compose-up/down, logs, status, backup, restore, and what they share (the
Compose invocation, env checks, networks, waiting, images).

The tasks (atbb_kit/tasks/deployment.py) read their flags and call one function here each.

Decisions (checked against docker-compose 1.29.2 and written to stay valid for `docker compose` v2):
- Every task that touches the engine pings it first (engine.client()), so a stopped engine is always
  "error: no Docker engine answers" with exit code 4, never a Compose or SDK stack trace.
- `inv migrate` passes the env file's variables to the one-off container by name (`-e NAME`), with the
  values in the docker client's environment as Secrets: not `--env-file`, because docker's own env-file
  parser keeps quotes and `#` comments that python-dotenv (envfile.py, and Compose's `env_file:`) strips,
  so the container would see other values than the ones that were validated. argv never holds a value.
- When DATABASE_URL names the Compose service `postgres`, the one-off containers (migrate, backup,
  restore, doctor's check) must join the stack's network, and the name only resolves while the stack
  runs; they refuse at once when it does not, instead of retrying a name that cannot resolve.
- `inv compose-up` waits for each service's own healthcheck (the image's HEALTHCHECK for atbb), printing
  a progress line, and on failure shows the service's last log lines before the error.
- Compose v1 reads `env_file:` at load time for every command, `down` and `logs` included, and refuses a
  missing file; those commands do not need the values, so they get an empty placeholder when the env
  file does not exist (e.g. `inv compose-down` from a checkout without .env).
- The Compose file gives PostgreSQL only POSTGRES_USER/PASSWORD/DB, by variable substitution, and the app
  its env file with POSTGRES_PASSWORD blanked. The kit hands those three values to Compose in its
  environment (compose_env; Secrets, printed ***), so they come from the env file the task was
  given wherever it lies. `inv migrate` passes neither them nor anything else of PostgreSQL's to the migrator.
- Every one-off container (the migrator, psql, pg_dump, pg_restore) runs under a deadline the kit enforces
  (a commands.base.OneOff the runner holds it to), with a name of its own to remove it by, the label
  dev.atbb.kit=one-off and no HEALTHCHECK. A deadline passed, Ctrl-C or SIGTERM: the container is removed
  and the task says so.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from atbb_kit.commands import compose, pg
from atbb_kit.commands import docker as docker_cmds
from atbb_kit.commands.base import OneOff, Secret
from atbb_kit.core import app_env, image_spec
from atbb_kit.core.errors import CommandFailed, EnvFileError, KitError
from atbb_kit.infra import engine, polling
from atbb_kit.infra import http as httpc
from atbb_kit.infra.checkout import plan_for
from atbb_kit.infra.console import console
from atbb_kit.infra.envfile import load_env_file
from atbb_kit.infra.envfile import read as read_env
from atbb_kit.infra.polling import Waiting
from atbb_kit.infra.signals import raise_for_rest_of_process
from atbb_kit.ops import backup as db
from atbb_kit.ops import doctor
from atbb_kit.ops import image as images


def default_image(cfg) -> str:
    return plan_for(cfg).refs[0]


@contextmanager
def stack(k, env_file: Path, image: str, *, need_env: bool = True) -> Iterator[compose.Compose]:
    """The Compose invocation for this kit. need_env=False: a missing env file gets an empty placeholder."""
    file = k.cfg.root() / k.cfg.compose.file
    base = compose.detect(k.run) if not k.run.dry_run else ("docker", "compose")
    with tempfile.TemporaryDirectory(prefix="atbb-compose-") as scratch:
        if not need_env and not env_file.is_file():
            env_file = Path(scratch) / "empty.env"
            env_file.write_text("")
        env = compose_env(image, k.cfg.compose.host_port, env_file, k.cfg.compose.postgres_image)
        yield compose.Compose(base, file, k.cfg.compose.project, env)


def compose_env(image: str, host_port: int, env_file: Path, postgres_image: str) -> dict[str, str]:
    """The variables the Compose file reads (commands/compose.compose_variables), with the env file's
    POSTGRES_* values."""
    return compose.compose_variables(image, host_port, env_file, postgres_image, postgres_values(env_file))


def postgres_values(env_file: Path) -> dict[str, str]:
    """The env file's non-empty POSTGRES_* values, as Secrets; none when it cannot be read (`inv compose-down`
    and `inv logs` work without a valid env file, and the tasks that need one have validated it already)."""
    try:
        values = read_env(env_file) if env_file.is_file() else {}
    except KitError:
        return {}
    return {name: Secret(values[name]) for name in compose.POSTGRES_VARIABLES if values.get(name)}


def checked_env(k, env_file: str):
    """Validate the env file (all problems at once, exit 2); print its warnings. -> (path, report)."""
    path = Path(env_file)
    env = k.cfg.env
    report = load_env_file(path, env.required, (*env.optional, *env.secret))
    for warning in report.warnings:
        console.warn(warning)
    return path, report


def database(report):
    return db.parse_database_url(report.values.get("DATABASE_URL", ""))


def explicit_network(k, flag: str | None) -> str | None:
    """--network, else compose.network; checked to exist, so a typo is named instead of a DNS error."""
    name = flag or k.cfg.compose.network or None
    if name and not k.run.dry_run and not engine.network_exists(name):
        source = "--network" if flag else "compose.network in atbb.yaml"
        raise KitError(
            f"Docker network {name!r} ({source}) does not exist",
            "check the name with `docker network ls` (the database's container must be on it)",
        )
    return name


def db_network(k, target, explicit: str | None = None) -> str | None:
    """The network one-off containers must join to reach `target`: the one named by --network or
    compose.network, else the Compose stack's; a KitError when the stack it lives in is not running."""
    if explicit:
        return explicit
    project = k.cfg.compose.project
    network = engine.compose_network(project)
    if network or not target.on_compose_host:
        return network
    state = engine.compose_health(project, "postgres")
    if state:
        raise KitError(
            f"the Compose stack's postgres container is {state}, so the host `postgres` in DATABASE_URL "
            "cannot be reached",
            "see why with `inv logs -s postgres`, then start it again with `inv compose-up`",
        )
    raise KitError(
        f"DATABASE_URL names the Compose service `postgres`, but the stack {project} is not running",
        "start it with `inv compose-up` (or point DATABASE_URL at your database)",
    )


def require_image(ref: str, fix: str) -> None:
    if engine.image_size(ref) is None:
        raise KitError(f"image {ref} is not present locally", fix)


# Container states that will not turn healthy by waiting.
STOPPED = ("exited", "dead", "restarting")


def service_state(project: str, service: str):
    return next((s for s in engine.compose_services(project) if s.service == service), None)


def wait_healthy(k, stack, service: str, timeout: int) -> None:
    """Poll the service's healthcheck once a second with a progress line; fail fast when it stops."""
    project = k.cfg.compose.project
    err = console.err
    tty = err.isatty()
    started = time.monotonic()
    shown = ("", -10.0)
    last = (None, "missing")  # what the last poll found: (the container's state, its health or state)

    def probe() -> bool | Waiting:
        """True: healthy; False: it stopped, so it never will be; Waiting: not yet."""
        nonlocal shown, last
        elapsed = time.monotonic() - started
        found = service_state(project, service)
        state = (found.health or found.state) if found else "missing"
        last = (found, state)
        # On a terminal the line rewrites itself; in a log, a line per change and one every 10 s.
        line = f"    waiting for {service} to turn healthy: {state} ({elapsed:.0f}s)"
        if tty:
            print(f"\r{line}", end="", file=err, flush=True)
        elif state != shown[0] or elapsed - shown[1] >= 10:
            console.say(line)
            shown = (state, elapsed)
        if state in ("healthy", "running"):  # "running": the service has no healthcheck at all
            return True
        stopped = found is None or found.state in STOPPED or found.health == "unhealthy"
        return False if stopped else Waiting(state)

    try:
        healthy = polling.until(probe, seconds=timeout, interval=1, start=started)
    except polling.TimedOut:
        healthy = False
    if tty:
        print(file=err)
    if healthy:
        return
    found, state = last
    console.say(f"==> the last lines {service} logged:")
    k.run.run(stack.logs(service, False, 20), check=False)
    if found is None:
        raise KitError(f"{service} has no container in the stack {project}", f"see `inv logs -s {service}`")
    if found.state in STOPPED:
        raise KitError(
            f"{service} stopped (exit code {found.exit_code}) before turning healthy",
            f"its log lines above say why; `inv logs -s {service}` shows more",
        )
    raise KitError(
        f"{service} did not turn healthy within {timeout}s (last state: {state})",
        f"its log lines above say why; `inv logs -s {service}` shows more",
    )


def names_a_registry(ref: str) -> bool:
    first, _, rest = ref.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def ensure_image(k, ref: str, *, custom: bool, pull: bool, build: bool) -> None:
    present = engine.image_size(ref) is not None
    if custom and not present and not build and names_a_registry(ref):
        # A registry reference (ghcr.io/owner/atbb:1.0.0) means "that published image": building this
        # checkout under its name would run something else than the operator asked for.
        pull = True
    if pull:
        console.say(f"==> pulling {ref}")
        try:
            k.run.run(docker_cmds.docker_pull(engine.cli_path(), ref))
        except CommandFailed:
            raise KitError(
                f"could not pull {ref} (docker's reason is above)",
                "check the image reference and your registry login (docker login), or drop --pull to build it "
                "from this checkout",
            ) from None
        return
    if present and not build:
        return
    console.say(
        f"==> {ref} is {'being rebuilt' if present else 'not present locally'}: building it from this checkout"
        + ("" if present else " (--pull fetches it from its registry instead)")
    )
    images.build(k, extra_tags=[ref] if custom else None)
    if engine.image_size(ref) is None:
        raise KitError(f"the build finished but {ref} is not in the local engine", "rerun `inv image`; read its output")


def db_access(k, report, network_flag: str | None = None):
    """(docker, image, target, env, network) for a one-off client container, after checking each piece."""
    target = database(report)
    image = k.cfg.compose.postgres_image
    env = db.pg_env(target, db.TRANSFER_CONNECT_TIMEOUT)
    if k.run.dry_run:
        return "docker", image, target, env, network_flag or k.cfg.compose.network or None
    engine.client()
    network = db_network(k, target, explicit_network(k, network_flag))
    require_image(image, f"docker pull {image}, or set ATBB_COMPOSE_POSTGRES_IMAGE (compose.postgres_image)")
    return engine.cli_path(), image, target, env, network


def probe(k, docker, image, target, env, network):
    """Versions and table count, or the connection problem as a KitError."""
    console.say(f"==> checking {target.where} from a container of {image}")
    check = one_off(docker, "probe", "the database check", CHECK_SECONDS, CHECK_FIX)
    cmd = pg.probe(docker, image, env, network, name=check.name)
    # quiet: a read-only check whose quoted shell script would only clutter the log.
    result = k.run.run(cmd, check=False, capture=True, quiet=True, oneoff=check)
    if not result.ok:
        raise db.connect_error(result.stderr or result.stdout, target, image, db.TRANSFER_CONNECT_TIMEOUT)
    found = db.parse_probe(result.stdout)
    problem = db.version_problem(found, image)
    if problem:
        raise problem
    return found


def tool_failure(tool: str, result, target, tail: str):
    text = db.redact(result.stderr or result.stdout, [target.password])
    last = next((ln.strip() for ln in reversed(text.strip().splitlines()) if ln.strip()), "no output")
    return KitError(f"{tool} failed (exit code {result.returncode}): {last[:300]}", tail)


def write_demo_env(path: Path, host_port: int) -> None:
    # The Compose example's PostgreSQL service is called `postgres`; the app's env contract is app_env's.
    db = app_env.Database(host="postgres", password=secrets.token_hex(16))
    values = {**app_env.app_env(db, app_env.demo_identity(host_port)), **db.server_env()}
    header = "# Demo values written by `inv compose-up --demo`: for trying atBB locally, not for production."
    text = "\n".join([header, *(f"{k}={v}" for k, v in values.items()), ""])
    # Created with mode 600 (O_EXCL: never over an existing file), not chmod-ed afterwards: the secrets
    # must not be readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    console.say(f"==> wrote demo settings to {path} (mode 600)")


# --- one-off containers -------------------------------------------------------------------------------

# The deadlines the kit enforces on its one-off containers, in seconds. The programs inside have their own
# timeouts; these hold when those fail (a migrator that never gave up on an HTTP server at the database's
# address was the reason for them).
# The migrations themselves, once the database answers; migrate.wait_timeout comes on top.
MIGRATE_SECONDS = 900
# psql `select 1` or the version probe: each connection attempt gives up after 10 s.
CHECK_SECONDS = 60
# pg_dump or pg_restore of a whole forum.
TRANSFER_SECONDS = 3600

CHECK_FIX = "check that DATABASE_URL's host and port are those of PostgreSQL, and that it answers"
MIGRATE_FIX = (
    "its last lines above say where it stopped; check that DATABASE_URL's host and port are those of PostgreSQL "
    "(`inv doctor`), or give slow migrations longer with --timeout"
)
TRANSFER_FIX = "nothing was changed or written; check the database's load and the network, then run it again"


def one_off(docker: str, job: str, what: str, deadline: float, fix: str, *, remove_after: bool = True) -> OneOff:
    """A OneOff with a fresh container name `atbb-<job>-<8 hex>` (unique: several tasks may share an engine).
    From here on SIGTERM and SIGHUP unwind the task like Ctrl-C, so the `finally` that removes a container
    created between commands runs when the task is stopped."""
    raise_for_rest_of_process()
    name = oneoff_name(job)
    return OneOff(name, what, deadline, docker_cmds.docker_remove(docker, name), remove_after, fix)


def oneoff_name(job: str) -> str:
    return f"atbb-{job}-{secrets.token_hex(4)}"


def migrate_deadline(cfg, timeout: int | None) -> int:
    """--timeout, or the wait for the database plus MIGRATE_SECONDS for the migrations."""
    return timeout or cfg.migrate.wait_timeout + MIGRATE_SECONDS


def migrator_env(values: Mapping[str, str]) -> dict[str, str]:
    """The env file's variables for the migrator: not DB_WAIT_TIMEOUT (atbb.yaml's migrate.wait_timeout
    decides it), nor what only the Compose example's PostgreSQL reads."""
    dropped = {"DB_WAIT_TIMEOUT", *compose.POSTGRES_VARIABLES}
    return {name: Secret(value) for name, value in values.items() if name not in dropped}


def compose_migrate(k, stack, deadline: int) -> None:
    """`compose run --rm migrate` as a named, labelled one-off under `deadline` (Compose's own --rm does not
    remove the container when its client is stopped, v1 least of all)."""
    docker = "docker" if k.run.dry_run else engine.cli_path()
    job = one_off(docker, "migrate", "the migrator", deadline, MIGRATE_FIX)
    k.run.run(stack.run_oneoff("migrate", job.name, {"DB_WAIT_TIMEOUT": str(k.cfg.migrate.wait_timeout)}), oneoff=job)


def health_answer(url: str) -> tuple[int, str]:
    """(status, first 200 bytes of the body) of one GET; (0, reason) when nothing answered."""
    try:
        answer = httpc.get(url, timeout=5, follow_redirects=True, limit=200)
    except (*httpc.TRANSPORT_ERRORS, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))
    return answer.status, answer.text


def confirm_healthy(k, port: int) -> None:
    """Docker's health state is the image's HEALTHCHECK, and "running" when an image has none: before saying
    the forum is up, ask its health path ourselves, through the published port, as a visitor would."""
    path, wanted = k.cfg.health.path, k.cfg.health.status
    status, body = health_answer(f"http://127.0.0.1:{port}{path}")
    fix = "the answer says why (migrations pending: run `inv migrate`); `inv logs -s atbb` shows more"
    if not status:
        raise KitError(f"{path} does not answer on port {port} ({body}), so the forum is not up", fix)
    if status != wanted:
        raise KitError(
            f"{path} answers HTTP {status}, not {wanted}, so the forum is not up: {' '.join(body.split())}", fix
        )


# --- the tasks ----------------------------------------------------------------------------------------


def migrate(k, env_file: str, image: str | None, timeout: int | None, network: str | None) -> None:
    """`inv migrate`: the image's migrator in a one-off container, under a deadline."""
    _, report = checked_env(k, env_file)
    target = database(report)
    ref = image or default_image(k.cfg)
    wait = k.cfg.migrate.wait_timeout
    joined = network or k.cfg.compose.network or None  # what a dry run shows
    docker = "docker"
    if not k.run.dry_run:
        engine.client()
        tag = shlex.join(["inv", "image", "--tag", ref])
        require_image(ref, f"build it with `inv image` (`{tag}` for this name), or pull it")
        explicit = explicit_network(k, network)
        joined = db_network(k, target, explicit)
        docker = engine.cli_path()
        if joined and not explicit:
            console.say(f"==> the Compose stack is up: running on its network {joined}")
    if joined:
        console.say(f"==> the migrator joins the Docker network {joined}")
    # DB_WAIT_TIMEOUT comes from atbb.yaml (migrate.wait_timeout), not from the env file: the migrator
    # waits that long for the database, printing one progress line per attempt.
    values = migrator_env(report.values)
    job = one_off(docker, "migrate", "the migrator", migrate_deadline(k.cfg, timeout), MIGRATE_FIX)
    cmd = docker_cmds.oneoff(
        docker,
        ref,
        image_spec.MIGRATE_ARGS,
        values,
        name=job.name,
        network=joined,
        settings={"DB_WAIT_TIMEOUT": str(wait)},
    )
    console.say(f"==> migrating {target.where} (waiting up to {wait}s for the database, {job.deadline:g}s in all)")
    try:
        k.run.run(cmd, oneoff=job)
    except CommandFailed as exc:
        raise CommandFailed(
            f"migrations failed: the migrator exited with code {exc.exit_code}",
            "its reason is on the `migrate error:` line above (a host that cannot be resolved or reached on "
            "another Docker network needs --network NAME); the deployment guide's troubleshooting section "
            "explains each",
            returncode=exc.exit_code,
        ) from None


def compose_up(k, env_file: str, image: str | None, *, pull: bool, build: bool, demo: bool, timeout: int) -> None:
    """`inv compose-up`: validate the env, build or pull the image if missing, start PostgreSQL, migrate,
    start atBB and wait until it answers healthy."""
    if pull and build:
        raise KitError("--pull and --build ask for opposite things", "use one: --pull fetches, --build builds")
    if demo and not Path(env_file).exists():
        write_demo_env(Path(env_file), k.cfg.compose.host_port)
    path, report = checked_env(k, env_file)
    placeholders = doctor.placeholder_problems(report.values, doctor.example_values(k.cfg), k.cfg.env.secret, path.name)
    if placeholders:
        raise EnvFileError("\n".join(placeholders), doctor.PLACEHOLDER_FIX)
    problems = doctor.compose_env_problems(report.values, path.name)
    if problems:
        raise EnvFileError("\n".join(problems), f"edit {path}: the POSTGRES_* values must match DATABASE_URL")
    ref = image or default_image(k.cfg)
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    with stack(k, path, ref) as services:
        if not k.run.dry_run:
            engine.client()
            # Before anything starts: Compose would otherwise create PostgreSQL, migrate, and only then
            # fail on the port with a bare "port is already allocated".
            finding = doctor.port_finding(port, doctor.port_bindable(port), engine.containers_publishing(port), project)
            if finding.level is doctor.Level.FAIL:
                raise KitError(finding.detail, finding.fix)
            ensure_image(k, ref, custom=image is not None, pull=pull, build=build)
        console.say(f"==> starting PostgreSQL (project {project})")
        k.run.run(services.up("postgres"))
        if not k.run.dry_run:
            wait_healthy(k, services, "postgres", timeout)
        console.say("==> running migrations")
        try:
            compose_migrate(k, services, migrate_deadline(k.cfg, None))
        except CommandFailed as exc:
            raise CommandFailed(
                f"migrations failed: the migrator exited with code {exc.exit_code}; atbb was not started",
                "its reason is on the `migrate error:` line above",
                returncode=exc.exit_code,
            ) from None
        console.say("==> starting atBB")
        # edge: the front door publishing the host port (docker-compose.example.yml; inv upgrade switches it).
        k.run.run(services.up("atbb", *(["edge"] if "edge" in compose.services(services.file) else [])))
        if k.run.dry_run:
            return
        wait_healthy(k, services, "atbb", timeout)
        confirm_healthy(k, port)
    console.result(f"atBB is up: http://localhost:{port}/")


def compose_down(k, env_file: str, volumes: bool) -> None:
    """`inv compose-down`: stop the stack; the database volume only goes with `volumes`."""
    if not k.run.dry_run:
        engine.client()
    with stack(k, Path(env_file), default_image(k.cfg), need_env=False) as services:
        k.run.run(services.down(volumes))
    if k.run.dry_run:
        return
    console.say(
        "stopped; the database volume was deleted"
        if volumes
        else "stopped; the database volume is kept (--volumes deletes it)"
    )


def logs(k, env_file: str, service: str | None, follow: bool, tail: int | None) -> None:
    """`inv logs`: the stack's logs, of one service or all."""
    known = compose.services(k.cfg.root() / k.cfg.compose.file)
    if service and service not in known:
        raise KitError(
            f"unknown service {service!r}: the Compose file defines {', '.join(known)}",
            "e.g. `inv logs -s atbb` or `inv logs -s postgres`",
        )
    engine.client()
    if not engine.compose_services(k.cfg.compose.project):
        console.say(f"note: the stack {k.cfg.compose.project} has no containers (start it with `inv compose-up`)")
    with stack(k, Path(env_file), default_image(k.cfg), need_env=False) as services:
        k.run.run(services.logs(service, follow, tail), quiet=True)


def status(k) -> None:
    """`inv status`: the stack's containers, their health and the URL."""
    engine.client()
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    services = engine.compose_services(project)
    if not services:
        console.result(f"stack {project}: not running (start it with `inv compose-up`)")
        return
    console.table(
        f"stack {project}",
        ("service", "container", "state", "health", "ports"),
        [(s.service, s.container, s.state, s.health or "-", s.ports or "-") for s in services],
    )
    app = next((s for s in services if s.service == "atbb"), None)
    if app and app.health == "healthy":
        console.result(f"atBB is up: http://localhost:{port}/")


def doctor_checks(k, env_file: str, image: str | None, network: str | None) -> int:
    """`inv doctor`: every check, the table, and the exit code the findings call for."""
    probe = doctor.Probe(
        k.cfg, k.run, Path(env_file), image or default_image(k.cfg), network_name=explicit_network(k, network)
    )
    findings = doctor.run_checks(probe)
    doctor.render(findings)
    return doctor.exit_code(findings)


def backup(k, env_file: str, out_dir: Path, network: str | None) -> None:
    """`inv backup`: pg_dump -Fc in a one-off container, copied out, kept private (mode 600)."""
    _, report = checked_env(k, env_file)
    docker, image, target, env, network = db_access(k, report, network)
    name = db.backup_name(datetime.now(UTC))
    final = out_dir / name
    job = one_off(docker, "backup", "pg_dump", TRANSFER_SECONDS, TRANSFER_FIX, remove_after=False)
    container = job.name
    if k.run.dry_run:
        k.run.run(pg.probe(docker, image, env, network, name=oneoff_name("probe")))
        k.run.run(pg.create(docker, container, image, pg.dump_args(), env, network))
        k.run.run(pg.start_attached(docker, container))
        k.run.run(pg.copy(docker, f"{container}:{pg.CONTAINER_DUMP}", str(final)))
        k.run.run(docker_cmds.docker_remove(docker, container))
        return
    found = probe(k, docker, image, target, env, network)
    console.say(f"==> dumping {target.where} (PostgreSQL {found.server_major}, {found.public_tables} tables)")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The dump arrives in a private folder next to its final place, gets mode 600 there, and only then
    # takes its name: at no moment is a readable dump, or a half-copied one, under the final name.
    scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        k.run.run(pg.create(docker, container, image, pg.dump_args(), env, network), capture=True)
        result = k.run.run(pg.start_attached(docker, container), check=False, capture=True, oneoff=job)
        if not result.ok:
            raise tool_failure("pg_dump", result, target, "nothing was written; check the database and DATABASE_URL")
        partial = scratch / name
        k.run.run(pg.copy(docker, f"{container}:{pg.CONTAINER_DUMP}", str(partial)), capture=True)
        partial.chmod(0o600)
        with partial.open("rb") as fh:
            if not db.is_custom_dump(fh.read(len(db.DUMP_MAGIC))):
                raise KitError("pg_dump's output is not a custom-format archive", "report this: it is a kit bug")
        if final.exists():
            raise KitError(f"{final} already exists", "wait a second and run `inv backup` again")
        os.replace(partial, final)
    finally:
        k.run.run(docker_cmds.docker_remove(docker, container), check=False, capture=True, quiet=True)
        shutil.rmtree(scratch, ignore_errors=True)
    size = final.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
    console.say(f"backup written: {final} ({shown}, mode 600); restore it with `{db.restore_command(final)}`")
    console.result(str(final))


def restore(k, dump: Path, env_file: str, force: bool, network: str | None) -> None:
    """`inv restore FILE`: pg_restore in one transaction; a database holding tables only with `force`."""
    _, report = checked_env(k, env_file)
    docker, image, target, env, network = db_access(k, report, network)
    job = one_off(docker, "restore", "pg_restore", TRANSFER_SECONDS, TRANSFER_FIX, remove_after=False)
    container = job.name
    if not k.run.dry_run:
        found = probe(k, docker, image, target, env, network)
        if found.public_tables and not force:
            raise KitError(
                f"the database {target.dbname} on {target.host} is not empty ({found.public_tables} tables in "
                "schema public); restoring would replace its content",
                "rerun with --force to replace it (take a backup of it first: inv backup)",
            )
        console.say(
            f"==> restoring {dump} into {target.where}" + (" (replacing its content)" if found.public_tables else "")
        )
    try:
        k.run.run(pg.create(docker, container, image, pg.restore_args(target.dbname), env, network), capture=True)
        k.run.run(pg.copy(docker, str(dump), f"{container}:{pg.CONTAINER_DUMP}"), capture=True)
        result = k.run.run(pg.start_attached(docker, container), check=False, capture=True, oneoff=job)
        if not result.ok:
            raise tool_failure(
                "pg_restore", result, target, "the restore ran in one transaction, so the database is unchanged"
            )
    finally:
        k.run.run(docker_cmds.docker_remove(docker, container), check=False, capture=True, quiet=not k.run.dry_run)
    if not k.run.dry_run:
        console.say(f"restored {dump} into {target.where}")
