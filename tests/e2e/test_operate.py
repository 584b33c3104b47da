"""The operator's tasks against the real engine and Compose, in the order an operator meets them.

One Compose project per module run (unique name and host port: other engineers share this engine), driven
only through `inv` as a user would; the tests run in file order and build on each other's state:
compose-up from nothing -> status/logs/doctor -> migrate (twice, and twice at once) -> down/up keeps
data -> backup/restore -> down --volumes deletes it. Teardown removes everything the project created,
and only that.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from tests.conftest import ROOT, run_inv
from tests.e2e.stack import http_get, wait_for

PG_USER = PG_DB = "atbb"
MIGRATIONS = ["0001_init.sql", "0002_seed.sql"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_text(password: str, session_secret: str, port: int, **changes: str | None) -> str:
    """A complete env file for the Compose example; changes set (or, with None, drop) variables."""
    values: dict[str, str | None] = {
        "DATABASE_URL": f"postgres://{PG_USER}:{password}@postgres:5432/{PG_DB}",
        "FORUM_DID": "did:plc:e2etestforumaaaaaaaaaaaa",
        "PDS_URL": "https://pds.example.test",
        "OAUTH_PUBLIC_URL": f"http://localhost:{port}",
        "SESSION_SECRET": session_secret,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": password,
        "POSTGRES_DB": PG_DB,
        **changes,
    }
    return "".join(f"{k}={v}\n" for k, v in values.items() if v is not None)


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def project_containers(client, project: str, service: str | None = None):
    labels = [f"com.docker.compose.project={project}"]
    if service:
        labels.append(f"com.docker.compose.service={service}")
    return client.containers.list(all=True, filters={"label": labels})


def project_volumes(client, project: str):
    return client.volumes.list(filters={"label": f"com.docker.compose.project={project}"})


def sweep(client, project: str) -> None:
    """Remove what a test project left behind, selected by its unique Compose project label only."""
    for c in project_containers(client, project):
        c.remove(force=True)
    for v in project_volumes(client, project):
        v.remove(force=True)
    for n in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
        n.remove()


def assert_clean(proc, secret_values) -> str:
    """No traceback, no secret; returns stdout + stderr for further checks."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    for value in secret_values:
        assert value not in out, f"a secret value leaked into the output:\n{out[-3000:]}"
    return out


@dataclass
class Stack:
    client: object
    project: str
    port: int
    env_file: Path
    env: dict[str, str]
    image: str
    password: str
    session_secret: str
    workdir: Path
    made_tags: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        return [self.password, self.session_secret]

    def inv(self, *args: str, timeout: float = 300, ok: bool = True):
        proc = run_inv(*args, env=self.env, timeout=timeout)
        assert_clean(proc, self.secrets)
        if ok:
            shown = f"inv {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
            assert proc.returncode == 0, shown
        return proc

    def psql(self, sql: str, db: str = PG_DB) -> str:
        (container,) = [c for c in project_containers(self.client, self.project, "postgres") if c.status == "running"]
        code, out = container.exec_run(["psql", "-U", PG_USER, "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        assert code == 0, out.decode()
        return out.decode().strip()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"


def kit_env(test_images: dict[str, str], **extra: str) -> dict[str, str]:
    # test_images carries the stand-in size budget too (scripts/standin-images.sh writes it).
    return {**test_images, **extra}


@pytest.fixture(scope="module")
def stack(docker_client, test_images, built_image, tmp_path_factory):
    project = f"atbbe2e{uuid.uuid4().hex[:10]}"
    port = free_port()
    workdir = tmp_path_factory.mktemp("operate")
    password, session_secret = secrets.token_hex(16), secrets.token_hex(32)
    env_file = write_private(workdir / "forum.env", env_text(password, session_secret, port))
    env = kit_env(test_images, ATBB_COMPOSE_PROJECT=project, ATBB_COMPOSE_HOST_PORT=str(port))
    # A tag nothing has yet, so the first compose-up has to build it (from built_image's warm cache).
    image = f"atbb-e2e:operate-{uuid.uuid4().hex[:8]}"
    s = Stack(docker_client, project, port, env_file, env, image, password, session_secret, workdir, [image])
    yield s
    run_inv("compose-down", "--volumes", "--env-file", str(env_file), env=env, timeout=180)
    sweep(docker_client, project)
    for tag in s.made_tags:
        # Untags only: the layers are built_image's too. Already gone is fine.
        with contextlib.suppress(ImageNotFound):
            docker_client.images.remove(tag)


def test_compose_up_from_nothing_builds_migrates_and_serves_the_forum(stack):
    assert not project_containers(stack.client, stack.project)
    proc = stack.inv("compose-up", "--env-file", str(stack.env_file), "--image", stack.image, timeout=1200)
    assert f"{stack.image} is not present locally: building it from this checkout" in proc.stderr
    assert "waiting for postgres to turn healthy" in proc.stderr
    assert re.search(r"waiting for atbb to turn healthy: healthy \(\d+s\)", proc.stderr), proc.stderr[-2000:]
    assert "applied 0001_init.sql" in proc.stdout
    printed = re.search(r"atBB is up: (http://\S+)", proc.stdout)
    assert printed and printed.group(1) == stack.url
    health = http_get(printed.group(1) + "api/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    page = http_get(printed.group(1))
    assert page.status == 200 and "Example Forum" in page.text


def test_status_shows_each_service_and_its_health(stack):
    out = stack.inv("status").stdout
    assert re.search(r"atbb\s.*running\s.*healthy", out), out
    assert re.search(r"postgres\s.*running\s.*healthy", out), out
    assert f"atBB is up: {stack.url}" in out


def test_logs_of_one_service(stack):
    proc = stack.inv("logs", "-s", "atbb", "--tail", "50")
    assert '"source":"supervisor"' in proc.stdout or '"service":"appview"' in proc.stdout, proc.stdout[-2000:]
    assert "postgres_1" not in proc.stdout and "postgres-1" not in proc.stdout


def test_doctor_passes_on_the_running_stack(stack):
    proc = stack.inv("doctor", "--env-file", str(stack.env_file), "--image", stack.image)
    out = proc.stdout
    assert "connected to postgres:5432/atbb as atbb (on network" in out
    assert f"{stack.port} is published by this stack's atbb" in out
    assert "every required variable is set and well-formed" in out
    assert re.search(r"doctor: \d+ ok, \d+ warn, 0 fail: ready", out), out


def test_compose_up_again_on_the_running_stack_changes_nothing(stack):
    before = {c.name: c.id for c in project_containers(stack.client, stack.project)}
    proc = stack.inv("compose-up", "--env-file", str(stack.env_file), "--image", stack.image, timeout=600)
    assert "migrate: done (0 applied, 2 already applied)" in proc.stdout
    assert f"atBB is up: {stack.url}" in proc.stdout
    assert "building it" not in proc.stderr
    after = {c.name: c.id for c in project_containers(stack.client, stack.project)}
    assert after == before, "a second compose-up recreated containers"


def _applied(stack: Stack, db: str = PG_DB) -> list[tuple[str, int]]:
    rows = stack.psql("select name, count(*) from schema_migrations group by name order by name", db)
    return [(name, int(n)) for name, n in (line.split("|") for line in rows.splitlines())]


def test_migrate_twice_leaves_the_schema_as_it_was(stack):
    for _ in range(2):
        proc = stack.inv("migrate", "--env-file", str(stack.env_file), "--image", stack.image)
        assert "running on its network" in proc.stderr
        assert "migrate: done (0 applied, 2 already applied)" in proc.stdout
    assert _applied(stack) == [(m, 1) for m in MIGRATIONS]
    assert stack.psql("select count(*) from categories") == "3"


def test_migrate_twice_at_once_on_a_fresh_database_applies_each_migration_once(stack):
    stack.psql("create database atbb_concurrent")
    env_file = write_private(
        stack.workdir / "concurrent.env",
        env_text(
            stack.password,
            stack.session_secret,
            stack.port,
            DATABASE_URL=f"postgres://{PG_USER}:{stack.password}@postgres:5432/atbb_concurrent",
        ),
    )
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(lambda _: stack.inv("migrate", "--env-file", str(env_file), "--image", stack.image), range(2))
        )
    done = [re.search(r"migrate: done \((\d+) applied, (\d+) already applied\)", p.stdout) for p in runs]
    assert all(done), [p.stdout for p in runs]
    # Between them exactly the two migrations were applied, whoever got the advisory lock first.
    assert sum(int(m.group(1)) for m in done) == 2, [p.stdout for p in runs]
    assert _applied(stack, "atbb_concurrent") == [(m, 1) for m in MIGRATIONS]
    assert stack.psql("select count(*) from categories", "atbb_concurrent") == "3"


def test_compose_down_then_up_keeps_the_data(stack):
    stack.psql("insert into categories (forum_id, slug, name) select id, 'kept', 'Kept Across Restarts' from forums")
    down = stack.inv("compose-down", "--env-file", str(stack.env_file))
    assert "the database volume is kept" in down.stderr
    assert not project_containers(stack.client, stack.project)
    assert project_volumes(stack.client, stack.project), "compose-down without --volumes deleted the volume"
    stack.inv("compose-up", "--env-file", str(stack.env_file), "--image", stack.image, timeout=600)
    assert stack.psql("select name from categories where slug = 'kept'") == "Kept Across Restarts"
    page = wait_for(lambda: http_get(stack.url), 30, 0.5, "the forum page")
    assert "Kept Across Restarts" in page.text


def test_backup_then_restore_brings_the_database_back(stack):
    out_dir = stack.workdir / "backups"
    proc = stack.inv("backup", "--env-file", str(stack.env_file), "--output", str(out_dir))
    dump = Path(proc.stdout.strip().splitlines()[-1])
    assert dump.parent == out_dir and re.fullmatch(r"atbb-\d{8}-\d{6}\.dump", dump.name), proc.stdout
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert [p.name for p in out_dir.iterdir()] == [dump.name], "a partial file was left behind"

    stack.psql(
        "insert into categories (forum_id, slug, name) select id, 'later', 'Written After The Backup' from forums"
    )
    refused = stack.inv("restore", str(dump), "--env-file", str(stack.env_file), ok=False)
    assert refused.returncode != 0
    assert "is not empty (4 tables in schema public); restoring would replace its content" in refused.stderr
    assert "rerun with --force" in refused.stderr
    assert stack.psql("select count(*) from categories where slug = 'later'") == "1"

    stack.inv("restore", str(dump), "--env-file", str(stack.env_file), "--force")
    assert stack.psql("select count(*) from categories where slug = 'later'") == "0"
    assert stack.psql("select name from categories where slug = 'kept'") == "Kept Across Restarts"
    assert _applied(stack) == [(m, 1) for m in MIGRATIONS]
    # The running app reads the restored tables (same connection pool, new rows).
    assert "Written After The Backup" not in http_get(stack.url).text


def test_compose_down_volumes_deletes_the_data(stack):
    proc = stack.inv("compose-down", "--volumes", "--env-file", str(stack.env_file))
    assert "the database volume was deleted" in proc.stderr
    assert not project_containers(stack.client, stack.project)
    assert not project_volumes(stack.client, stack.project)
    assert "not running" in stack.inv("status").stdout


def test_compose_down_needs_no_env_file(stack, tmp_path):
    # Compose v1 loads `env_file:` for every command; the kit gives down a placeholder when there is none.
    proc = stack.inv("compose-down", "--env-file", str(tmp_path / "absent.env"))
    assert "stopped" in proc.stderr


def test_compose_file_stays_valid_for_both_compose_versions():
    # The file is what operators run by hand too; v1 and v2 both read the Compose spec schema.
    import subprocess
    import sys

    checker = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.example.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "docker-compose.example.yml").read_text()
    assert "atbb-healthcheck" not in text  # the image's HEALTHCHECK is inherited, not re-declared
