"""Bad env files and bad states, through `inv` as a user meets them: each gives its own message (the
deployment guide's troubleshooting section quotes them), a non-zero exit and no traceback, and no
secret value ever appears in the output.

A table: (what is wrong, the command, what it must say, the exit code). Rows that need a real database
share one PostgreSQL-only Compose stack (unique project name); the others use a project that does not
exist. Nothing here touches containers it did not create.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from dataclasses import dataclass, field

import pytest

from tests.conftest import ROOT, run_inv
from tests.e2e.test_operate import (
    assert_clean,
    env_text,
    free_port,
    kit_env,
    project_containers,
    sweep,
    write_private,
)

PASSWORD = secrets.token_hex(16)
WRONG_PASSWORD = secrets.token_hex(16)
SESSION_SECRET = secrets.token_hex(32)
SHORT_SECRET = "short-" + secrets.token_hex(6)
SECRETS = (PASSWORD, WRONG_PASSWORD, SESSION_SECRET, SHORT_SECRET)
# Unique per run; used both for the database-backed rows and for "no such stack".
PG_PROJECT = f"atbbe2ebad{uuid.uuid4().hex[:8]}"
NO_PROJECT = f"atbbe2enone{uuid.uuid4().hex[:8]}"
DOWN_URL = f"postgres://atbb:{PASSWORD}@127.0.0.1:1/atbb"  # from a container: its own loopback, port 1
COMPOSE_SERVICES = "postgres, atbb, edge, migrate"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # placeholders: {env} {tmp} {image} {dump} {sql} {closed} {project}
    expect: tuple[str, ...]  # each must appear in stdout + stderr (same placeholders)
    code: int | None = None  # the exact exit code; None: any non-zero
    changes: dict[str, str | None] = field(default_factory=dict)  # env file edits; None drops the variable
    mode: int = 0o600
    kit: dict[str, str] = field(default_factory=dict)  # extra environment of `inv` (ATBB_*, DOCKER_HOST)
    needs: frozenset[str] = frozenset()  # "pg": the module's PostgreSQL, "image": the app image, "port-taken"


def C(id, args, expect, code=None, **kw) -> Case:
    # A short row constructor: the table reads as a table. args is split on spaces.
    return Case(id, tuple(args.split()), tuple(expect) if isinstance(expect, (list, tuple)) else (expect,), code, **kw)


DEAD = {"DOCKER_HOST": "unix://{tmp}/dead.sock"}
DEAD_SAYS = "no Docker engine answers at unix://{tmp}/dead.sock (no such socket)"

CASES = [
    # --- the env file -----------------------------------------------------------------------------
    C("env-file-missing", "migrate --env-file {tmp}/absent.env", "env file {tmp}/absent.env does not exist", 2),
    C(
        "database-url-missing",
        "compose-up --env-file {env}",
        "missing required variable(s): DATABASE_URL",
        2,
        changes={"DATABASE_URL": None},
    ),
    C(
        "two-required-missing",
        "compose-up --env-file {env}",
        "missing required variable(s): FORUM_DID, SESSION_SECRET",
        2,
        changes={"FORUM_DID": None, "SESSION_SECRET": None},
    ),
    C(
        "database-url-not-postgres",
        "migrate --env-file {env}",
        "DATABASE_URL must be a postgres:// or postgresql:// URL",
        2,
        changes={"DATABASE_URL": f"mysql://atbb:{PASSWORD}@db/atbb"},
    ),
    C(
        "database-url-without-database",
        "backup --env-file {env}",
        "DATABASE_URL must name a database after the host",
        2,
        changes={"DATABASE_URL": f"postgres://atbb:{PASSWORD}@postgres:5432/"},
    ),
    C(
        "database-url-port-not-a-number",
        "migrate --env-file {env}",
        # The env-file check names it before anything parses the URL further.
        "has a port that is not a number from 1 to 65535",
        2,
        changes={"DATABASE_URL": f"postgres://atbb:{PASSWORD}@postgres:54x2/atbb"},
    ),
    C(
        "pds-url-not-http",
        "compose-up --env-file {env}",
        "PDS_URL must be an http:// or https:// URL",
        2,
        changes={"PDS_URL": "pds.example.test"},
    ),
    C(
        "forum-did-malformed",
        "doctor --env-file {env}",
        "FORUM_DID must be a did:plc: or did:web: DID",
        1,
        changes={"FORUM_DID": "forum.example.com"},
    ),
    C(
        "session-secret-short",
        "compose-up --env-file {env}",
        "SESSION_SECRET must be at least 32 characters",
        2,
        changes={"SESSION_SECRET": SHORT_SECRET},
    ),
    C(
        "postgres-password-differs-from-url",
        "compose-up --env-file {env}",
        "POSTGRES_PASSWORD does not match the password in DATABASE_URL",
        2,
        changes={"POSTGRES_PASSWORD": WRONG_PASSWORD},
    ),
    C(
        "postgres-password-missing",
        "compose-up --env-file {env}",
        "POSTGRES_PASSWORD is missing (the Compose example's PostgreSQL needs it)",
        2,
        changes={"POSTGRES_PASSWORD": None},
    ),
    C(
        "example-placeholders-left",
        "compose-up --env-file {env}",
        (
            "SESSION_SECRET still holds the public placeholder value from .env.production.example",
            "`inv secret` for SESSION_SECRET",
        ),
        2,
        changes={"SESSION_SECRET": "replace-with-output-of-openssl-rand-hex-32"},
    ),
    C(
        "world-readable-is-only-a-warning",
        "migrate --env-file {env} --dry-run",
        ("warning: {env} is readable by other users (mode 644); run: chmod 600 {env}", "would run"),
        0,
        mode=0o644,
    ),
    C(
        "world-readable-doctor-warns",
        "doctor --env-file {env}",
        ("{env} is readable by other users", "chmod 600 {env}"),
        0,
        mode=0o644,
    ),
    # --- the engine -------------------------------------------------------------------------------
    C("engine-down-doctor", "doctor --env-file {env}", DEAD_SAYS, 1, kit=DEAD),
    C("engine-down-compose-up", "compose-up --env-file {env}", DEAD_SAYS, 4, kit=DEAD),
    C("engine-down-migrate", "migrate --env-file {env}", DEAD_SAYS, 4, kit=DEAD),
    C("engine-down-backup", "backup --env-file {env}", DEAD_SAYS, 4, kit=DEAD),
    C("engine-down-status", "status", DEAD_SAYS, 4, kit=DEAD),
    C(
        "engine-refuses-tcp",
        "logs",
        "no Docker engine answers at tcp://127.0.0.1:{closed} (connection refused)",
        4,
        kit={"DOCKER_HOST": "tcp://127.0.0.1:{closed}"},
    ),
    # --- the database -----------------------------------------------------------------------------
    C(
        "database-down-migrate-waits-then-fails",
        "migrate --env-file {env} --image {image}",
        (
            "waiting for database (0/2 s)",
            "migrate error: database unreachable after waiting 2 s",
            "migrations failed: the migrator exited with code 1",
        ),
        1,
        changes={"DATABASE_URL": DOWN_URL},
        kit={"ATBB_MIGRATE_WAIT_TIMEOUT": "2"},
        needs=frozenset({"image"}),
    ),
    C(
        "database-down-doctor",
        "doctor --env-file {env}",
        "nothing accepts connections at 127.0.0.1:1",
        1,
        changes={"DATABASE_URL": DOWN_URL},
    ),
    C(
        "database-down-backup",
        "backup --env-file {env} --output {tmp}/b",
        "nothing accepts connections at 127.0.0.1:1",
        1,
        changes={"DATABASE_URL": DOWN_URL},
    ),
    C(
        "stack-not-running-backup",
        "backup --env-file {env} --output {tmp}/b",
        "DATABASE_URL names the Compose service `postgres`, but the stack {project} is not running",
        1,
    ),
    C(
        "stack-not-running-migrate",
        "migrate --env-file {env} --image {image}",
        "DATABASE_URL names the Compose service `postgres`, but the stack {project} is not running",
        1,
        needs=frozenset({"image"}),
    ),
    C(
        "wrong-password-migrate",
        "migrate --env-file {env} --image {image}",
        (
            'migrate error: cannot use the database: password authentication failed for user "atbb"',
            "migrations failed",
        ),
        1,
        changes={"DATABASE_URL": f"postgres://atbb:{WRONG_PASSWORD}@postgres:5432/atbb"},
        needs=frozenset({"pg", "image"}),
    ),
    C(
        "wrong-password-doctor",
        "doctor --env-file {env}",
        "the database rejected the password of user 'atbb'",
        1,
        changes={"DATABASE_URL": f"postgres://atbb:{WRONG_PASSWORD}@postgres:5432/atbb"},
        needs=frozenset({"pg"}),
    ),
    C(
        "wrong-password-restore",
        "restore {dump} --env-file {env} --force",
        "the database rejected the password of user 'atbb'",
        1,
        changes={"DATABASE_URL": f"postgres://atbb:{WRONG_PASSWORD}@postgres:5432/atbb"},
        needs=frozenset({"pg"}),
    ),
    C(
        "database-does-not-exist",
        "doctor --env-file {env}",
        "database 'nosuchdb' does not exist on postgres:5432",
        1,
        changes={"DATABASE_URL": f"postgres://atbb:{PASSWORD}@postgres:5432/nosuchdb"},
        needs=frozenset({"pg"}),
    ),
    # --- the host and the images ------------------------------------------------------------------
    C(
        "port-taken-compose-up",
        "compose-up --env-file {env}",
        ("is in use by another program on this host", "ATBB_COMPOSE_HOST_PORT="),
        1,
        needs=frozenset({"port-taken"}),
    ),
    C(
        "port-taken-doctor",
        "doctor --env-file {env}",
        "is in use by another program on this host",
        1,
        needs=frozenset({"port-taken"}),
    ),
    C(
        "pull-without-registry",
        "compose-up --env-file {env} --pull --image 127.0.0.1:{closed}/atbb:missing",
        ("could not pull 127.0.0.1:{closed}/atbb:missing", "drop --pull to build it"),
        1,
    ),
    C(
        "image-missing-migrate",
        "migrate --env-file {env} --image atbb-e2e:absent-image",
        "image atbb-e2e:absent-image is not present locally",
        1,
    ),
    C("pull-and-build", "compose-up --env-file {env} --pull --build", "--pull and --build ask for opposite things", 1),
    # --- the tasks' own arguments -----------------------------------------------------------------
    C(
        "logs-unknown-service",
        "logs -s nginx",
        f"unknown service 'nginx': the Compose file defines {COMPOSE_SERVICES}",
        1,
    ),
    C(
        "restore-missing-file",
        "restore {tmp}/none.dump --env-file {env}",
        "backup file {tmp}/none.dump does not exist",
        1,
    ),
    C(
        "restore-not-a-dump",
        "restore {sql} --env-file {env}",
        "{sql} is not a pg_dump custom-format archive (it does not start with PGDMP)",
        1,
    ),
    # A bad flag, refused before anything runs: exit 2 like every flag error.
    C("backup-output-is-a-file", "backup --env-file {env} --output {sql}", "--output {sql} is not a folder", 2),
    C(
        "config-port-zero",
        "status",
        "ATBB_COMPOSE_HOST_PORT (compose.host_port): input should be greater than or equal to 1",
        2,
        kit={"ATBB_COMPOSE_HOST_PORT": "0"},
    ),
]


@pytest.fixture(scope="module")
def pg_stack(docker_client, test_images, tmp_path_factory):
    """A PostgreSQL-only Compose stack of the example file, started the way `inv compose-up` starts it."""
    from atbb_kit.commands import compose
    from atbb_kit.infra.runner import Runner
    from atbb_kit.ops.deployment import compose_env
    from tests.e2e.stack import wait_for

    workdir = tmp_path_factory.mktemp("bad-states-pg")
    env_file = write_private(workdir / "pg.env", env_text(PASSWORD, SESSION_SECRET, 8080))
    stack = compose.Compose(
        compose.detect(Runner(echo=False)),
        ROOT / "docker-compose.example.yml",
        PG_PROJECT,
        compose_env("atbb-e2e:unused", free_port(), env_file, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"]),
    )
    runner = Runner(echo=False)
    try:
        runner.run(stack.up("postgres"), capture=True)

        def healthy():
            found = project_containers(docker_client, PG_PROJECT, "postgres")
            return found and found[0].attrs["State"].get("Health", {}).get("Status") == "healthy"

        wait_for(healthy, 90, 0.5, "the bad-states PostgreSQL to turn healthy")
        yield PG_PROJECT
    finally:
        runner.run(stack.down(volumes=True), check=False, capture=True)
        sweep(docker_client, PG_PROJECT)


@pytest.fixture
def occupied_port():
    """A port some other program listens on (on every address, as a stray web server would)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 (a test listener, closed at the end)
        sock.listen()
        yield sock.getsockname()[1]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_state(case: Case, request, docker_client, test_images, tmp_path):
    project = request.getfixturevalue("pg_stack") if "pg" in case.needs else NO_PROJECT
    port = request.getfixturevalue("occupied_port") if "port-taken" in case.needs else free_port()
    image = request.getfixturevalue("built_image") if "image" in case.needs else "atbb-e2e:unused"
    env_file = write_private(tmp_path / "atbb.env", env_text(PASSWORD, SESSION_SECRET, port, **case.changes), case.mode)
    (tmp_path / "dump.sql").write_text("-- PostgreSQL database dump\nselect 1;\n")
    (tmp_path / "fake.dump").write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64)
    values = {
        "env": str(env_file),
        "tmp": str(tmp_path),
        "image": image,
        "dump": str(tmp_path / "fake.dump"),
        "sql": str(tmp_path / "dump.sql"),
        "closed": str(free_port()),
        "project": project,
    }
    env = kit_env(test_images, ATBB_COMPOSE_PROJECT=project, ATBB_COMPOSE_HOST_PORT=str(port))
    env.update({k: _fill(v, values) for k, v in case.kit.items()})
    proc = run_inv(*(_fill(a, values) for a in case.args), env=env, timeout=300)
    out = assert_clean(proc, SECRETS)
    for fragment in case.expect:
        assert _fill(fragment, values) in out, f"expected {_fill(fragment, values)!r} in:\n{out[-4000:]}"
    if case.code is None:
        assert proc.returncode != 0, out[-3000:]
    else:
        assert proc.returncode == case.code, out[-3000:]
    if case.code != 0:
        assert "error: " in proc.stderr or "fail" in proc.stdout, out[-3000:]
    if project == NO_PROJECT:
        # Refusals happen before anything starts.
        assert not project_containers(docker_client, NO_PROJECT)


def test_a_stopped_stack_database_is_named_as_such(pg_stack, docker_client, test_images, tmp_path):
    """Runs last: it stops the shared PostgreSQL."""
    env_file = write_private(tmp_path / "atbb.env", env_text(PASSWORD, SESSION_SECRET, 8080))
    (container,) = project_containers(docker_client, pg_stack, "postgres")
    container.stop(timeout=10)
    env = kit_env(test_images, ATBB_COMPOSE_PROJECT=pg_stack, ATBB_COMPOSE_HOST_PORT=str(free_port()))
    backup = run_inv("backup", "--env-file", str(env_file), "--output", str(tmp_path / "b"), env=env)
    out = assert_clean(backup, SECRETS)
    assert backup.returncode == 1, out
    assert "the Compose stack's postgres container is exited" in out
    assert "inv logs -s postgres" in out
    doctor = run_inv("doctor", "--env-file", str(env_file), env=env)
    out = assert_clean(doctor, SECRETS)
    assert doctor.returncode == 1 and "the Compose stack's postgres container is exited" in out
    assert not (tmp_path / "b").exists()


def test_the_table_is_big_enough():
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


def test_compose_up_demo_writes_a_private_env_file_and_never_prints_it(tmp_path, test_images):
    """--demo creates the file (mode 600) before validating it; with the engine down it stops there."""
    env_file = tmp_path / "demo.env"
    env = kit_env(test_images, ATBB_COMPOSE_PROJECT=NO_PROJECT, DOCKER_HOST=f"unix://{tmp_path}/dead.sock")
    proc = run_inv("compose-up", "--demo", "--env-file", str(env_file), env=env)
    assert proc.returncode == 4, proc.stderr
    assert f"wrote demo settings to {env_file} (mode 600)" in proc.stderr
    assert (env_file.stat().st_mode & 0o777) == 0o600
    written = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert_clean(proc, [written["POSTGRES_PASSWORD"], written["SESSION_SECRET"]])
