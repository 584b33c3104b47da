"""What the operator's tasks share: the Compose invocation, env checks, networks, waiting, images.

The tasks themselves (atbb_kit/tasks/deployment.py) read flags and call these.

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
  environment (compose.compose_env; Secrets, printed ***), so they come from the env file the task was
  given wherever it lies. `inv migrate` passes neither them nor anything else of PostgreSQL's to the migrator.
- Every one-off container (the migrator, psql, pg_dump, pg_restore) runs under a deadline the kit enforces
  (runner.OneOff), with a name of its own to remove it by, the label dev.atbb.kit=one-off and no
  HEALTHCHECK. A deadline passed, Ctrl-C or SIGTERM: the container is removed and the task says so.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def default_image(cfg) -> str:
    from atbb_kit.core.release_plan import plan_for

    return plan_for(cfg).refs[0]


@contextmanager
def stack(k, env_file: Path, image: str, *, need_env: bool = True):
    """The Compose invocation for this kit. need_env=False: a missing env file gets an empty placeholder."""
    import tempfile

    from atbb_kit.commands import compose

    file = k.cfg.root() / k.cfg.compose.file
    base = compose.detect(k.run) if not k.run.dry_run else ("docker", "compose")
    with tempfile.TemporaryDirectory(prefix="atbb-compose-") as scratch:
        if not need_env and not env_file.is_file():
            env_file = Path(scratch) / "empty.env"
            env_file.write_text("")
        env = compose.compose_env(image, k.cfg.compose.host_port, env_file, k.cfg.compose.postgres_image)
        yield compose.Compose(base, file, k.cfg.compose.project, env)


def checked_env(k, env_file: str):
    """Validate the env file (all problems at once, exit 2); print its warnings. -> (path, report)."""
    from atbb_kit.infra.envfile import load_env_file

    path = Path(env_file)
    env = k.cfg.env
    report = load_env_file(path, env.required, (*env.optional, *env.secret))
    for warning in report.warnings:
        say(f"warning: {warning}")
    return path, report


def database(report):
    from atbb_kit.ops.backup import parse_database_url

    return parse_database_url(report.values.get("DATABASE_URL", ""))


NETWORK_HELP = (
    "Docker network the one-off container joins to reach the database (default: compose.network in atbb.yaml, "
    "else the Compose stack's when DATABASE_URL names `postgres`)."
)


def explicit_network(k, flag: str | None) -> str | None:
    """--network, else compose.network; checked to exist, so a typo is named instead of a DNS error."""
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra import engine

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
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra import engine

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
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra import engine

    if engine.image_size(ref) is None:
        raise KitError(f"image {ref} is not present locally", fix)


def service_state(project: str, service: str):
    from atbb_kit.infra import engine

    return next((s for s in engine.compose_services(project) if s.service == service), None)


def wait_healthy(k, stack, service: str, timeout: int) -> None:
    """Poll the service's healthcheck once a second with a progress line; fail fast when it stops."""
    import time

    from atbb_kit.core.errors import KitError

    project = k.cfg.compose.project
    tty = sys.stderr.isatty()
    started = time.monotonic()
    shown = ("", -10.0)
    while True:
        elapsed = time.monotonic() - started
        found = service_state(project, service)
        state = (found.health or found.state) if found else "missing"
        # On a terminal the line rewrites itself; in a log, a line per change and one every 10 s.
        line = f"    waiting for {service} to turn healthy: {state} ({elapsed:.0f}s)"
        if tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif state != shown[0] or elapsed - shown[1] >= 10:
            say(line)
            shown = (state, elapsed)
        if state in ("healthy", "running"):  # "running": the service has no healthcheck at all
            if tty:
                print(file=sys.stderr)
            return
        stopped = found is None or found.state in ("exited", "dead", "restarting") or found.health == "unhealthy"
        if stopped or elapsed >= timeout:
            if tty:
                print(file=sys.stderr)
            say(f"==> the last lines {service} logged:")
            k.run.run(stack.logs(service, False, 20), check=False)
            if found is None:
                raise KitError(f"{service} has no container in the stack {project}", f"see `inv logs -s {service}`")
            if found.state in ("exited", "dead", "restarting"):
                raise KitError(
                    f"{service} stopped (exit code {found.exit_code}) before turning healthy",
                    f"its log lines above say why; `inv logs -s {service}` shows more",
                )
            raise KitError(
                f"{service} did not turn healthy within {timeout}s (last state: {state})",
                f"its log lines above say why; `inv logs -s {service}` shows more",
            )
        time.sleep(1)


def names_a_registry(ref: str) -> bool:
    first, _, rest = ref.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def ensure_image(c, k, ref: str, *, custom: bool, pull: bool, build: bool) -> None:
    from atbb_kit.commands.base import Command
    from atbb_kit.core.errors import CommandFailed, KitError
    from atbb_kit.infra import engine

    present = engine.image_size(ref) is not None
    if custom and not present and not build and names_a_registry(ref):
        # A registry reference (ghcr.io/owner/atbb:1.0.0) means "that published image": building this
        # checkout under its name would run something else than the operator asked for.
        pull = True
    if pull:
        say(f"==> pulling {ref}")
        try:
            k.run.run(Command((engine.cli_path(), "pull", ref)))
        except CommandFailed:
            raise KitError(
                f"could not pull {ref} (docker's reason is above)",
                "check the image reference and your registry login (docker login), or drop --pull to build it "
                "from this checkout",
            ) from None
        return
    if present and not build:
        return
    say(
        f"==> {ref} is {'being rebuilt' if present else 'not present locally'}: building it from this checkout"
        + ("" if present else " (--pull fetches it from its registry instead)")
    )
    from atbb_kit.tasks.image import image as build_image

    build_image.body(c, tag=[ref] if custom else None)
    if engine.image_size(ref) is None:
        raise KitError(f"the build finished but {ref} is not in the local engine", "rerun `inv image`; read its output")


def db_access(k, report, network_flag: str | None = None):
    """(docker, image, target, env, network) for a one-off client container, after checking each piece."""
    from atbb_kit.infra import engine
    from atbb_kit.ops import backup

    target = database(report)
    image = k.cfg.compose.postgres_image
    env = backup.pg_env(target, backup.TRANSFER_CONNECT_TIMEOUT)
    if k.run.dry_run:
        return "docker", image, target, env, network_flag or k.cfg.compose.network or None
    engine.client()
    network = db_network(k, target, explicit_network(k, network_flag))
    require_image(image, f"docker pull {image}, or set ATBB_COMPOSE_POSTGRES_IMAGE (compose.postgres_image)")
    return engine.cli_path(), image, target, env, network


def probe(k, docker, image, target, env, network):
    """Versions and table count, or the connection problem as a KitError."""
    from atbb_kit.ops import backup

    say(f"==> checking {target.where} from a container of {image}")
    check = one_off(docker, "probe", "the database check", CHECK_SECONDS, CHECK_FIX)
    cmd = backup.probe(docker, image, env, network, name=check.name)
    # quiet: a read-only check whose quoted shell script would only clutter the log.
    result = k.run.run(cmd, check=False, capture=True, quiet=True, oneoff=check)
    if not result.ok:
        raise backup.connect_error(result.stderr or result.stdout, target, image, backup.TRANSFER_CONNECT_TIMEOUT)
    found = backup.parse_probe(result.stdout)
    problem = backup.version_problem(found, image)
    if problem:
        raise problem
    return found


def tool_failure(tool: str, result, target, tail: str):
    from atbb_kit.core.errors import KitError
    from atbb_kit.ops import backup

    text = backup.redact(result.stderr or result.stdout, [target.password])
    last = next((ln.strip() for ln in reversed(text.strip().splitlines()) if ln.strip()), "no output")
    return KitError(f"{tool} failed (exit code {result.returncode}): {last[:300]}", tail)


def write_demo_env(path: Path, host_port: int) -> None:
    import os
    import secrets as _secrets

    from atbb_kit.core import app_env

    # The Compose example's PostgreSQL service is called `postgres`; the app's env contract is app_env's.
    db = app_env.Database(host="postgres", password=_secrets.token_hex(16))
    values = {**app_env.app_env(db, app_env.demo_identity(host_port)), **db.server_env()}
    header = "# Demo values written by `inv compose-up --demo`: for trying atBB locally, not for production."
    text = "\n".join([header, *(f"{k}={v}" for k, v in values.items()), ""])
    # Created with mode 600 (O_EXCL: never over an existing file), not chmod-ed afterwards: the secrets
    # must not be readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    say(f"==> wrote demo settings to {path} (mode 600)")


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


def one_off(docker: str, job: str, what: str, deadline: float, fix: str, *, remove_after: bool = True):
    """A OneOff with a fresh container name `atbb-<job>-<8 hex>` (unique: several tasks may share an engine).
    From here on SIGTERM and SIGHUP unwind the task like Ctrl-C, so the `finally` that removes a container
    created between commands runs when the task is stopped."""
    from atbb_kit.commands.base import OneOff
    from atbb_kit.infra.runner import interrupt_on_termination
    from atbb_kit.ops import backup

    interrupt_on_termination()
    name = oneoff_name(job)
    return OneOff(name, what, deadline, backup.remove(docker, name), remove_after, fix)


def oneoff_name(job: str) -> str:
    import secrets as _secrets

    return f"atbb-{job}-{_secrets.token_hex(4)}"


def migrate_deadline(cfg, timeout: int | None) -> int:
    """--timeout, or the wait for the database plus MIGRATE_SECONDS for the migrations."""
    return timeout or cfg.migrate.wait_timeout + MIGRATE_SECONDS


def migrator_env(values: Mapping[str, str]) -> dict[str, str]:
    """The env file's variables for the migrator: not DB_WAIT_TIMEOUT (atbb.yaml's migrate.wait_timeout
    decides it), nor what only the Compose example's PostgreSQL reads."""
    from atbb_kit.commands.base import Secret
    from atbb_kit.commands.compose import POSTGRES_VARIABLES

    dropped = {"DB_WAIT_TIMEOUT", *POSTGRES_VARIABLES}
    return {name: Secret(value) for name, value in values.items() if name not in dropped}


def compose_migrate(k, stack, deadline: int) -> None:
    """`compose run --rm migrate` as a named, labelled one-off under `deadline` (Compose's own --rm does not
    remove the container when its client is stopped, v1 least of all)."""
    from atbb_kit.infra import engine
    from atbb_kit.ops import backup

    docker = "docker" if k.run.dry_run else engine.cli_path()
    job = one_off(docker, "migrate", "the migrator", deadline, MIGRATE_FIX)
    # -T: no pseudo-terminal, so output streams line by line into logs and CI (and v1 does not fail for want
    # of a TTY). `-e K=V` is for non-secret settings only: argv is printed.
    cmd = stack.cmd(
        "run",
        "--rm",
        "-T",
        ("--name", job.name, "--label", backup.ONEOFF_LABEL),
        ("-e", f"DB_WAIT_TIMEOUT={k.cfg.migrate.wait_timeout}"),
        "migrate",
    )
    k.run.run(cmd, oneoff=job)


def health_answer(url: str) -> tuple[int, str]:
    """(status, first 200 characters of the body) of one GET; (0, reason) when nothing answered."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (http://127.0.0.1 only)
            return resp.status, resp.read(200).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read(200).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def confirm_healthy(k, port: int) -> None:
    """Docker's health state is the image's HEALTHCHECK, and "running" when an image has none: before saying
    the forum is up, ask its health path ourselves, through the published port, as a visitor would."""
    from atbb_kit.core.errors import KitError

    path, wanted = k.cfg.health.path, k.cfg.health.status
    status, body = health_answer(f"http://127.0.0.1:{port}{path}")
    fix = "the answer says why (migrations pending: run `inv migrate`); `inv logs -s atbb` shows more"
    if not status:
        raise KitError(f"{path} does not answer on port {port} ({body}), so the forum is not up", fix)
    if status != wanted:
        raise KitError(
            f"{path} answers HTTP {status}, not {wanted}, so the forum is not up: {' '.join(body.split())}", fix
        )
