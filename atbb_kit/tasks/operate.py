"""The operator's tasks: migrate, compose-up/down, logs, status, doctor, backup, restore, secret.

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
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env; see .env.production.example)."
IMAGE_HELP = "Image reference to run (default: the image `inv image` builds for this checkout)."


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _default_image(cfg) -> str:
    from atbb_kit.release import plan_for

    return plan_for(cfg).refs[0]


@contextmanager
def _stack(k, env_file: Path, image: str, *, need_env: bool = True):
    """The Compose invocation for this kit. need_env=False: a missing env file gets an empty placeholder."""
    import tempfile

    from atbb_kit import compose

    file = k.cfg.root() / k.cfg.compose.file
    base = compose.detect(k.run) if not k.run.dry_run else ("docker", "compose")
    with tempfile.TemporaryDirectory(prefix="atbb-compose-") as scratch:
        if not need_env and not env_file.is_file():
            env_file = Path(scratch) / "empty.env"
            env_file.write_text("")
        env = compose.compose_env(image, k.cfg.compose.host_port, env_file, k.cfg.compose.postgres_image)
        yield compose.Compose(base, file, k.cfg.compose.project, env)


def _checked_env(k, env_file: str):
    """Validate the env file (all problems at once, exit 2); print its warnings. -> (path, report)."""
    from atbb_kit.envfile import load_env_file

    path = Path(env_file)
    report = load_env_file(path, k.cfg.env.required)
    for warning in report.warnings:
        _say(f"warning: {warning}")
    return path, report


def _database(report):
    from atbb_kit.backup import parse_database_url

    return parse_database_url(report.values.get("DATABASE_URL", ""))


def _db_network(k, target) -> str | None:
    """The network one-off containers must join to reach `target`, or a KitError when it cannot be reached
    because the stack it lives in is not running."""
    from atbb_kit import engine
    from atbb_kit.errors import KitError

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


def _require_image(ref: str, fix: str) -> None:
    from atbb_kit import engine
    from atbb_kit.errors import KitError

    if engine.image_size(ref) is None:
        raise KitError(f"image {ref} is not present locally", fix)


@kit_task
def secret(c):
    """Print a fresh 64-hex-character SESSION_SECRET."""
    import secrets as _secrets

    print(_secrets.token_hex(32))


# --- migrate ------------------------------------------------------------------------------------------


@kit_task(help={"env_file": ENV_HELP, "image": IMAGE_HELP, "dry_run": DRY_RUN_HELP})
def migrate(c, env_file=".env", image=None, dry_run=False):
    """Run database migrations in a one-off container of the image (safe to repeat, even concurrently)."""
    from atbb_kit import engine
    from atbb_kit.errors import CommandFailed
    from atbb_kit.runner import Command, Secret, argv

    k = kit(c, dry_run=dry_run)
    _, report = _checked_env(k, env_file)
    target = _database(report)
    ref = image or _default_image(k.cfg)
    wait = k.cfg.migrate.wait_timeout
    network = None
    docker = "docker"
    if not k.run.dry_run:
        engine.client()
        _require_image(ref, f"build it with `inv image` (`inv image --tag {ref}` for this name), or pull it")
        network = _db_network(k, target)
        docker = engine.cli_path()
    if network:
        _say(f"==> the Compose stack is up: running on its network {network}")
    # DB_WAIT_TIMEOUT comes from atbb.yaml (migrate.wait_timeout), not from the env file: the migrator
    # waits that long for the database, printing one progress line per attempt.
    values = {name: Secret(value) for name, value in report.values.items() if name != "DB_WAIT_TIMEOUT"}
    cmd = Command(
        argv(
            docker,
            "run",
            "--rm",
            ("--network", network) if network else None,
            *[("--env", name) for name in values],
            ("--env", f"DB_WAIT_TIMEOUT={wait}"),
            ref,
            list(k.cfg.migrate.command),
        ),
        env=values,
    )
    _say(f"==> migrating {target.where} (waiting up to {wait}s for the database)")
    try:
        k.run.run(cmd)
    except CommandFailed as exc:
        raise CommandFailed(
            f"migrations failed: the migrator exited with code {exc.exit_code}",
            "its reason is on the `migrate error:` line above; the deployment guide's troubleshooting "
            "section explains each",
            returncode=exc.exit_code,
        ) from None


# --- compose-up / down, logs, status ------------------------------------------------------------------


def _service_state(project: str, service: str):
    from atbb_kit import engine

    return next((s for s in engine.compose_services(project) if s.service == service), None)


def _wait_healthy(k, stack, service: str, timeout: int) -> None:
    """Poll the service's healthcheck once a second with a progress line; fail fast when it stops."""
    import time

    from atbb_kit.errors import KitError

    project = k.cfg.compose.project
    tty = sys.stderr.isatty()
    started = time.monotonic()
    shown = ("", -10.0)
    while True:
        elapsed = time.monotonic() - started
        found = _service_state(project, service)
        state = (found.health or found.state) if found else "missing"
        # On a terminal the line rewrites itself; in a log, a line per change and one every 10 s.
        line = f"    waiting for {service} to turn healthy: {state} ({elapsed:.0f}s)"
        if tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif state != shown[0] or elapsed - shown[1] >= 10:
            _say(line)
            shown = (state, elapsed)
        if state in ("healthy", "running"):  # "running": the service has no healthcheck at all
            if tty:
                print(file=sys.stderr)
            return
        stopped = found is None or found.state in ("exited", "dead", "restarting") or found.health == "unhealthy"
        if stopped or elapsed >= timeout:
            if tty:
                print(file=sys.stderr)
            _say(f"==> the last lines {service} logged:")
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


@kit_task(
    help={
        "env_file": ENV_HELP,
        "image": IMAGE_HELP,
        "pull": "Pull the image from its registry first (to update it, or instead of building a missing one).",
        "build": "Build the image even when it exists.",
        "demo": "Create the env file with throwaway demo values if it does not exist (local trials only).",
        "timeout": "Seconds to wait for each service to turn healthy.",
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_up(c, env_file=".env", image=None, pull=False, build=False, demo=False, timeout=180, dry_run=False):
    """Start PostgreSQL and atBB with Compose: validate env, build if missing, migrate, wait until healthy."""
    from atbb_kit import doctor, engine
    from atbb_kit.errors import CommandFailed, EnvFileError, KitError

    k = kit(c, dry_run=dry_run)
    if pull and build:
        raise KitError("--pull and --build ask for opposite things", "use one: --pull fetches, --build builds")
    if demo and not Path(env_file).exists():
        _write_demo_env(Path(env_file), k.cfg.compose.host_port)
    path, report = _checked_env(k, env_file)
    placeholders = doctor.placeholder_problems(report.values, doctor.example_values(k.cfg), k.cfg.env.secret, path.name)
    if placeholders:
        raise EnvFileError("\n".join(placeholders), doctor.PLACEHOLDER_FIX)
    problems = doctor.compose_env_problems(report.values, path.name)
    if problems:
        raise EnvFileError("\n".join(problems), f"edit {path}: the POSTGRES_* values must match DATABASE_URL")
    ref = image or _default_image(k.cfg)
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    with _stack(k, path, ref) as stack:
        if not k.run.dry_run:
            engine.client()
            # Before anything starts: Compose would otherwise create PostgreSQL, migrate, and only then
            # fail on the port with a bare "port is already allocated".
            finding = doctor.port_finding(port, doctor.port_bindable(port), engine.containers_publishing(port), project)
            if finding.level is doctor.Level.FAIL:
                raise KitError(finding.detail, finding.fix)
            _ensure_image(c, k, ref, custom=image is not None, pull=pull, build=build)
        _say(f"==> starting PostgreSQL (project {project})")
        k.run.run(stack.up("postgres"))
        if not k.run.dry_run:
            _wait_healthy(k, stack, "postgres", timeout)
        _say("==> running migrations")
        try:
            k.run.run(stack.run_once("migrate", env={"DB_WAIT_TIMEOUT": str(k.cfg.migrate.wait_timeout)}))
        except CommandFailed as exc:
            raise CommandFailed(
                f"migrations failed: the migrator exited with code {exc.exit_code}; atbb was not started",
                "its reason is on the `migrate error:` line above",
                returncode=exc.exit_code,
            ) from None
        _say("==> starting atBB")
        k.run.run(stack.up("atbb"))
        if k.run.dry_run:
            return
        _wait_healthy(k, stack, "atbb", timeout)
    print(f"atBB is up: http://localhost:{port}/")


def _names_a_registry(ref: str) -> bool:
    first, _, rest = ref.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def _ensure_image(c, k, ref: str, *, custom: bool, pull: bool, build: bool) -> None:
    from atbb_kit import engine
    from atbb_kit.errors import CommandFailed, KitError
    from atbb_kit.runner import Command

    present = engine.image_size(ref) is not None
    if custom and not present and not build and _names_a_registry(ref):
        # A registry reference (ghcr.io/owner/atbb:1.0.0) means "that published image": building this
        # checkout under its name would run something else than the operator asked for.
        pull = True
    if pull:
        _say(f"==> pulling {ref}")
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
    _say(
        f"==> {ref} is {'being rebuilt' if present else 'not present locally'}: building it from this checkout"
        + ("" if present else " (--pull fetches it from its registry instead)")
    )
    from atbb_kit.tasks.image import image as build_image

    build_image.body(c, tag=[ref] if custom else None)
    if engine.image_size(ref) is None:
        raise KitError(f"the build finished but {ref} is not in the local engine", "rerun `inv image`; read its output")


@kit_task(
    help={
        "volumes": "Also delete the database volume (ALL forum data). Without it, data is kept.",
        "env_file": ENV_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_down(c, volumes=False, env_file=".env", dry_run=False):
    """Stop the Compose stack; the database volume is kept unless --volumes."""
    from atbb_kit import engine

    k = kit(c, dry_run=dry_run)
    if not k.run.dry_run:
        engine.client()
    with _stack(k, Path(env_file), _default_image(k.cfg), need_env=False) as stack:
        k.run.run(stack.down(volumes))
    if k.run.dry_run:
        return
    _say(
        "stopped; the database volume was deleted"
        if volumes
        else "stopped; the database volume is kept (--volumes deletes it)"
    )


# `--service`/`-s` is a flag, not a positional argument: Invoke has no optional positionals
# (pyinvoke/invoke#159), and a required one would make plain `inv logs` an error.
@kit_task(
    help={
        "service": "Only this service of the Compose file: atbb or postgres (default: all).",
        "follow": "Keep printing new lines (Ctrl-C stops).",
        "tail": "Only the last N lines of each service (0: all).",
        "env_file": ENV_HELP,
    },
)
def logs(c, service=None, follow=False, tail=200, env_file=".env"):
    """Show the Compose stack's logs (atbb logs are JSON lines): inv logs [-s SERVICE] [-f]."""
    from atbb_kit import compose, engine
    from atbb_kit.errors import KitError

    k = kit(c)
    known = compose.services(k.cfg.root() / k.cfg.compose.file)
    if service and service not in known:
        raise KitError(
            f"unknown service {service!r}: the Compose file defines {', '.join(known)}",
            "e.g. `inv logs -s atbb` or `inv logs -s postgres`",
        )
    engine.client()
    if not engine.compose_services(k.cfg.compose.project):
        _say(f"note: the stack {k.cfg.compose.project} has no containers (start it with `inv compose-up`)")
    with _stack(k, Path(env_file), _default_image(k.cfg), need_env=False) as stack:
        k.run.run(stack.logs(service, follow, int(tail) or None), quiet=True)


@kit_task(help={"env_file": ENV_HELP})
def status(c, env_file=".env"):
    """Show the Compose stack's containers, their health and the URL."""
    from rich.console import Console
    from rich.table import Table

    from atbb_kit import engine

    k = kit(c)
    engine.client()
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    services = engine.compose_services(project)
    if not services:
        print(f"stack {project}: not running (start it with `inv compose-up`)")
        return
    table = Table(title=f"stack {project}", title_justify="left")
    for column in ("service", "container", "state", "health", "ports"):
        table.add_column(column)
    for s in services:
        table.add_row(s.service, s.container, s.state, s.health or "-", s.ports or "-")
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    app = next((s for s in services if s.service == "atbb"), None)
    if app and app.health == "healthy":
        print(f"atBB is up: http://localhost:{port}/")


# --- doctor -------------------------------------------------------------------------------------------


@kit_task(help={"env_file": ENV_HELP, "image": IMAGE_HELP})
def doctor(c, env_file=".env", image=None):
    """Check the engine, Compose, disk, env file, database, port and images: ok / warn / fail with fixes."""
    from invoke import Exit

    from atbb_kit import doctor as checks

    k = kit(c)
    probe = checks.Probe(k.cfg, k.run, Path(env_file), image or _default_image(k.cfg))
    findings = checks.run_checks(probe)
    checks.render(findings)
    code = checks.exit_code(findings)
    if code:
        raise Exit(code=code)


# --- backup / restore ---------------------------------------------------------------------------------


def _db_access(k, report):
    """(docker, image, target, env, network) for a one-off client container, after checking each piece."""
    from atbb_kit import backup, engine

    target = _database(report)
    image = k.cfg.compose.postgres_image
    env = backup.pg_env(target, backup.TRANSFER_CONNECT_TIMEOUT)
    if k.run.dry_run:
        return "docker", image, target, env, None
    engine.client()
    network = _db_network(k, target)
    _require_image(image, f"docker pull {image}, or set ATBB_COMPOSE_POSTGRES_IMAGE (compose.postgres_image)")
    return engine.cli_path(), image, target, env, network


def _probe(k, docker, image, target, env, network):
    """Versions and table count, or the connection problem as a KitError."""
    from atbb_kit import backup

    _say(f"==> checking {target.where} from a container of {image}")
    # quiet: a read-only check whose quoted shell script would only clutter the log.
    result = k.run.run(backup.probe(docker, image, env, network), check=False, capture=True, quiet=True)
    if not result.ok:
        raise backup.connect_error(result.stderr or result.stdout, target, image, backup.TRANSFER_CONNECT_TIMEOUT)
    found = backup.parse_probe(result.stdout)
    problem = backup.version_problem(found, image)
    if problem:
        raise problem
    return found


def _tool_failure(tool: str, result, target, tail: str):
    from atbb_kit import backup
    from atbb_kit.errors import KitError

    text = backup.redact(result.stderr or result.stdout, [target.password])
    last = next((ln.strip() for ln in reversed(text.strip().splitlines()) if ln.strip()), "no output")
    return KitError(f"{tool} failed (exit code {result.returncode}): {last[:300]}", tail)


@kit_task(
    help={
        "env_file": ENV_HELP,
        "output": "Folder for the dump (default backups/; created private, mode 700).",
        "dry_run": DRY_RUN_HELP,
    }
)
def backup(c, env_file=".env", output="backups", dry_run=False):
    """Dump the forum database (pg_dump -Fc) to OUTPUT/atbb-YYYYmmdd-HHMMSS.dump (UTC, mode 600)."""
    import os
    import secrets as _secrets
    import shutil
    import tempfile
    from datetime import UTC, datetime

    from atbb_kit import backup as db
    from atbb_kit.errors import KitError

    k = kit(c, dry_run=dry_run)
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise KitError(f"--output {out_dir} is not a folder", "pass a folder, e.g. --output backups")
    _, report = _checked_env(k, env_file)
    docker, image, target, env, network = _db_access(k, report)
    name = db.backup_name(datetime.now(UTC))
    final = out_dir / name
    container = f"atbb-backup-{_secrets.token_hex(4)}"
    if k.run.dry_run:
        k.run.run(db.probe(docker, image, env, network))
        k.run.run(db.create(docker, container, image, db.dump_args(), env, network))
        k.run.run(db.start_attached(docker, container))
        k.run.run(db.copy(docker, f"{container}:{db.CONTAINER_DUMP}", str(final)))
        k.run.run(db.remove(docker, container))
        return
    found = _probe(k, docker, image, target, env, network)
    _say(f"==> dumping {target.where} (PostgreSQL {found.server_major}, {found.public_tables} tables)")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The dump arrives in a private folder next to its final place, gets mode 600 there, and only then
    # takes its name: at no moment is a readable dump, or a half-copied one, under the final name.
    scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        k.run.run(db.create(docker, container, image, db.dump_args(), env, network), capture=True)
        result = k.run.run(db.start_attached(docker, container), check=False, capture=True)
        if not result.ok:
            raise _tool_failure("pg_dump", result, target, "nothing was written; check the database and DATABASE_URL")
        partial = scratch / name
        k.run.run(db.copy(docker, f"{container}:{db.CONTAINER_DUMP}", str(partial)), capture=True)
        partial.chmod(0o600)
        with partial.open("rb") as fh:
            if not db.is_custom_dump(fh.read(len(db.DUMP_MAGIC))):
                raise KitError("pg_dump's output is not a custom-format archive", "report this: it is a kit bug")
        if final.exists():
            raise KitError(f"{final} already exists", "wait a second and run `inv backup` again")
        os.replace(partial, final)
    finally:
        k.run.run(db.remove(docker, container), check=False, capture=True, quiet=True)
        shutil.rmtree(scratch, ignore_errors=True)
    size = final.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
    _say(f"backup written: {final} ({shown}, mode 600); restore it with `inv restore {final}`")
    print(final)


@kit_task(
    positional=["file"],
    help={
        "file": "A dump written by `inv backup` (pg_dump custom format).",
        "env_file": ENV_HELP,
        "force": "Replace the content of a database that already holds tables.",
        "dry_run": DRY_RUN_HELP,
    },
)
def restore(c, file, env_file=".env", force=False, dry_run=False):
    """Restore a dump from `inv backup` into the forum database (all or nothing; --force to replace data)."""
    import secrets as _secrets

    from atbb_kit import backup as db
    from atbb_kit.errors import KitError

    k = kit(c, dry_run=dry_run)
    if file in ("-h", "--help"):
        # Invoke hands a required positional anything that is not one of the task's flags, --help too.
        print("usage: inv restore FILE [--force] [--env-file F] [--dry-run]   (inv --help restore: every option)")
        return
    dump = Path(file)
    if not dump.is_file():
        raise KitError(f"backup file {dump} does not exist", "pass a file written by `inv backup` (ls backups/)")
    with dump.open("rb") as fh:
        if not db.is_custom_dump(fh.read(len(db.DUMP_MAGIC))):
            raise KitError(
                f"{dump} is not a pg_dump custom-format archive (it does not start with PGDMP)",
                "pass a file written by `inv backup` (or by pg_dump -Fc)",
            )
    _, report = _checked_env(k, env_file)
    docker, image, target, env, network = _db_access(k, report)
    container = f"atbb-restore-{_secrets.token_hex(4)}"
    if not k.run.dry_run:
        found = _probe(k, docker, image, target, env, network)
        if found.public_tables and not force:
            raise KitError(
                f"the database {target.dbname} on {target.host} is not empty ({found.public_tables} tables in "
                "schema public); restoring would replace its content",
                "rerun with --force to replace it (take a backup of it first: inv backup)",
            )
        _say(f"==> restoring {dump} into {target.where}" + (" (replacing its content)" if found.public_tables else ""))
    try:
        k.run.run(db.create(docker, container, image, db.restore_args(target.dbname), env, network), capture=True)
        k.run.run(db.copy(docker, str(dump), f"{container}:{db.CONTAINER_DUMP}"), capture=True)
        result = k.run.run(db.start_attached(docker, container), check=False, capture=True)
        if not result.ok:
            raise _tool_failure(
                "pg_restore", result, target, "the restore ran in one transaction, so the database is unchanged"
            )
    finally:
        k.run.run(db.remove(docker, container), check=False, capture=True, quiet=not k.run.dry_run)
    if not k.run.dry_run:
        _say(f"restored {dump} into {target.where}")


def _write_demo_env(path: Path, host_port: int) -> None:
    import os
    import secrets as _secrets

    password = _secrets.token_hex(16)
    text = "\n".join(
        [
            "# Demo values written by `inv compose-up --demo`: for trying atBB locally, not for production.",
            f"DATABASE_URL=postgres://atbb:{password}@postgres:5432/atbb",
            "FORUM_DID=did:plc:demodemodemodemodemodemo",
            "PDS_URL=https://pds.example.com",
            f"OAUTH_PUBLIC_URL=http://localhost:{host_port}",
            f"SESSION_SECRET={_secrets.token_hex(32)}",
            "POSTGRES_USER=atbb",
            f"POSTGRES_PASSWORD={password}",
            "POSTGRES_DB=atbb",
            "",
        ]
    )
    # Created with mode 600 (O_EXCL: never over an existing file), not chmod-ed afterwards: the secrets
    # must not be readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    _say(f"==> wrote demo settings to {path} (mode 600)")
