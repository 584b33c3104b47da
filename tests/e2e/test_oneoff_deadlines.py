"""One-off containers against the real engine: deadlines, cleanup on interruption, no HEALTHCHECK (issue 14).

The "database" here is a tiny TCP server in this process, bound to the gateway address of a Docker network
the test creates (so containers reach it and nothing else does): it answers HTTP like a web server or a
proxy on the wrong port, or accepts and never answers. Every container these tests cause is found by the
name the kit printed, and must be gone when the task has ended, however it ended.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import NotFound

from tests.conftest import INV, ROOT, run_inv
from tests.e2e.stack import TEST_LABEL, http_get

PREFIX = "atbb-h14rt"
ONEOFF = "dev.atbb.kit=one-off"


@pytest.fixture(scope="module")
def image(request) -> str:
    """The forum image: ATBB_E2E_ONEOFF_IMAGE when set (a build of this checkout under another tag), else the
    session's shared build."""
    return os.environ.get("ATBB_E2E_ONEOFF_IMAGE") or request.getfixturevalue("built_image")


@pytest.fixture(scope="module")
def gateway(docker_client):
    """The host's address on a network this module creates: reachable from containers, from nowhere else."""
    network = docker_client.networks.create(f"{PREFIX}-{uuid.uuid4().hex[:8]}", labels=TEST_LABEL)
    try:
        network.reload()
        yield network.attrs["IPAM"]["Config"][0]["Gateway"]
    finally:
        network.remove()


class Impostor:
    """Listens where the database should be. http: answers any bytes with `HTTP/1.1 400` and closes, as a
    web server or proxy does; silent: accepts and never answers."""

    def __init__(self, host: str, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self.behaviour == "silent":
                self._open.append(conn)
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                if conn.recv(1024):
                    conn.sendall(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\nBad Request"
                    )
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._open:
            conn.close()
        self._thread.join(timeout=5)


@pytest.fixture
def impostor(gateway):
    made: list[Impostor] = []

    def start(behaviour: str) -> Impostor:
        made.append(Impostor(gateway, behaviour))
        return made[-1]

    yield start
    for server in made:
        server.close()


def env_file(folder: Path, host: str, port: int) -> Path:
    values = {
        "DATABASE_URL": f"postgres://atbb:h14-secret-pw@{host}:{port}/atbb",
        "FORUM_DID": "did:plc:e2etestforumaaaaaaaaaaaa",
        "PDS_URL": "https://pds.example.test",
        "OAUTH_PUBLIC_URL": "http://localhost:8080",
        "SESSION_SECRET": "h14" * 22,
    }
    path = folder / "forum.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def kit_env(test_images: dict[str, str]) -> dict[str, str]:
    # A project of its own: the kit must not mistake another test's Compose stack for ours.
    return {**test_images, "ATBB_COMPOSE_PROJECT": f"atbbh14{uuid.uuid4().hex[:8]}"}


NAME = re.compile(r"--name (atbb-(?:migrate|doctor|probe)-[0-9a-f]{8})\b")


def container_names(output: str) -> list[str]:
    return NAME.findall(output)


def assert_gone(docker_client, names: list[str]) -> None:
    assert names, "the kit printed no one-off container name"
    for name in names:
        with pytest.raises(NotFound):
            docker_client.containers.get(name)


def test_migrate_fails_fast_on_an_http_server_at_the_database_address(
    docker_client, test_images, image, impostor, gateway, tmp_path
):
    """Before issue 14's fix: no output for 11 minutes, and the container outlived the task."""
    server = impostor("http")
    started = time.monotonic()
    proc = run_inv(
        "migrate", "--env-file", str(env_file(tmp_path, gateway, server.port)), "--image", image,
        env=kit_env(test_images), timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert took < 30, f"took {took:.0f}s"
    assert re.search(
        rf"migrate error: cannot use the database: {re.escape(gateway)}:{server.port} answered like an HTTP "
        r"server, not like PostgreSQL",
        out,
    ), out
    assert "error: migrations failed: the migrator exited with code 1" in out
    assert server.connections >= 1
    assert "h14-secret-pw" not in out
    assert_gone(docker_client, container_names(out))


def test_migrate_deadline_stops_and_removes_the_container(
    docker_client, test_images, image, impostor, gateway, tmp_path
):
    """A database that accepts and never answers keeps the migrator retrying for its whole wait (60 s): the
    kit's own deadline (--timeout) ends it first."""
    server = impostor("silent")
    started = time.monotonic()
    proc = run_inv(
        "migrate", "--env-file", str(env_file(tmp_path, gateway, server.port)), "--image", image,
        "--timeout", "8", env=kit_env(test_images), timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 124, out
    assert 8 <= took < 40, f"took {took:.0f}s"
    names = container_names(out)
    assert f"error: the migrator did not finish within 8s; its container {names[0]} was stopped and removed" in out
    assert "Traceback" not in out
    assert_gone(docker_client, names)


def _start_inv(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))}
    return subprocess.Popen(
        [*INV, *args], cwd=ROOT, env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_container(docker_client, proc: subprocess.Popen, lines: list[str], timeout: float = 60):
    """The one-off container, once it runs; its name comes from the kit's stderr (`lines`, filled by a
    reader thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = container_names("".join(lines))
        if names:
            try:
                container = docker_client.containers.get(names[0])
                if container.status == "running":
                    return container
            except NotFound:
                pass
        assert proc.poll() is None, "inv ended early:\n" + "".join(lines)
        time.sleep(0.2)
    raise AssertionError(f"no one-off container ran within {timeout}s:\n" + "".join(lines))


def _read_lines(stream, lines: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_migrate_leaves_no_container(
    docker_client, test_images, image, impostor, gateway, tmp_path, signum, code
):
    """The signal goes to the kit's process alone, as `timeout`, systemd or a CI runner send it: the docker
    client it started must not be left running with its container."""
    server = impostor("silent")
    proc = _start_inv(
        ["migrate", "--env-file", str(env_file(tmp_path, gateway, server.port)), "--image", image],
        kit_env(test_images),
    )
    lines: list[str] = []
    reader = _read_lines(proc.stderr, lines)
    try:
        container = _wait_for_container(docker_client, proc, lines)
        # While it runs: named, labelled, and without the image's HEALTHCHECK (it would only say "unhealthy").
        assert container.labels.get("dev.atbb.kit") == "one-off"
        assert container.attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
        assert container.attrs["State"].get("Health") is None
        started = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=60)
        took = time.monotonic() - started
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert proc.returncode == code, out
    assert took < 20, f"took {took:.0f}s to clean up"
    name = signal.Signals(signum).name
    assert f"error: interrupted ({name}) while the migrator ran; its container {container.name} was stopped" in out
    assert "Traceback" not in out
    assert_gone(docker_client, [container.name])


def test_doctor_database_check_against_an_http_server_ends_and_leaves_nothing(
    docker_client, test_images, image, impostor, gateway, tmp_path
):
    server = impostor("http")
    started = time.monotonic()
    proc = run_inv(
        "doctor", "--env-file", str(env_file(tmp_path, gateway, server.port)), "--image", image,
        env=kit_env(test_images), timeout=180,
    )  # fmt: skip
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert took < 90, f"took {took:.0f}s"
    assert re.search(r"│ database\s+│ fail", out), out
    assert "invalid response to SSL negotiation" in out, out
    assert server.connections >= 1, "the check reached the impostor"
    leftovers = [
        c.name
        for c in docker_client.containers.list(all=True, filters={"label": ONEOFF})
        if c.name.startswith("atbb-doctor-") and c.attrs["Created"] >= _iso(started)
    ]
    assert not leftovers, leftovers


def _iso(monotonic_start: float) -> str:
    """The wall-clock time of a monotonic instant, as Docker writes Created (RFC 3339, UTC)."""
    wall = time.time() - (time.monotonic() - monotonic_start)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall - 1))


# --- the Compose example: least privilege, the migrate one-off, health on a schema that falls behind ------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_of(container) -> dict[str, str]:
    container.reload()
    return dict(item.partition("=")[::2] for item in container.attrs["Config"]["Env"])


@pytest.fixture(scope="module")
def compose_stack(docker_client, test_images, image, tmp_path_factory):
    """A Compose project of its own (name and host port unique on this shared engine), started by
    `inv compose-up`; removed with its volume and network afterwards, by its project label only."""
    project = f"atbbh14{uuid.uuid4().hex[:8]}"
    port = _free_port()
    password, session = uuid.uuid4().hex, uuid.uuid4().hex * 2
    folder = tmp_path_factory.mktemp("h14compose")
    path = folder / "forum.env"
    path.write_text(
        f"DATABASE_URL=postgres://atbb:{password}@postgres:5432/atbb\n"
        "FORUM_DID=did:plc:e2etestforumaaaaaaaaaaaa\nPDS_URL=https://pds.example.test\n"
        f"OAUTH_PUBLIC_URL=http://localhost:{port}\nSESSION_SECRET={session}\n"
        f"POSTGRES_USER=atbb\nPOSTGRES_PASSWORD={password}\nPOSTGRES_DB=atbb\n"
    )
    path.chmod(0o600)
    env = {**test_images, "ATBB_COMPOSE_PROJECT": project, "ATBB_COMPOSE_HOST_PORT": str(port)}
    up = run_inv("compose-up", "--env-file", str(path), "--image", image, env=env, timeout=900)
    try:
        yield SimpleNamespace(
            project=project, port=port, password=password, session=session, up=up, env=env, env_file=path, image=image
        )
    finally:
        run_inv("compose-down", "--volumes", "--env-file", str(path), env=env, timeout=300)
        selector = {"label": f"com.docker.compose.project={project}"}
        for container in docker_client.containers.list(all=True, filters=selector):
            container.remove(force=True)
        for volume in docker_client.volumes.list(filters=selector):
            volume.remove(force=True)
        for network in docker_client.networks.list(filters=selector):
            network.remove()


def _service(docker_client, project: str, service: str):
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
    (container,) = docker_client.containers.list(filters={"label": labels})
    return container


def test_compose_up_migrates_in_a_one_off_that_leaves_nothing(docker_client, compose_stack):
    out = compose_stack.up.stdout + compose_stack.up.stderr
    assert compose_stack.up.returncode == 0, out[-4000:]
    assert f"atBB is up: http://localhost:{compose_stack.port}/" in out
    assert compose_stack.password not in out and compose_stack.session not in out
    names = re.findall(r"--name (atbb-migrate-[0-9a-f]{8}) --label dev\.atbb\.kit=one-off", out)
    assert len(names) == 1, out[-4000:]
    assert_gone(docker_client, names)
    labels = [f"com.docker.compose.project={compose_stack.project}", "com.docker.compose.oneoff=True"]
    assert not docker_client.containers.list(all=True, filters={"label": labels})


def test_each_container_holds_only_its_own_secrets(docker_client, compose_stack):
    pg = _env_of(_service(docker_client, compose_stack.project, "postgres"))
    assert pg["POSTGRES_PASSWORD"] == compose_stack.password
    assert "SESSION_SECRET" not in pg and "DATABASE_URL" not in pg
    app = _env_of(_service(docker_client, compose_stack.project, "atbb"))
    assert app["POSTGRES_PASSWORD"] == ""
    assert app["SESSION_SECRET"] == compose_stack.session
    assert compose_stack.password in app["DATABASE_URL"]


def test_health_turns_503_when_the_schema_falls_behind_and_pages_ask_to_retry(docker_client, compose_stack):
    """Issue 14: a reachable but unmigrated database answered 200 `database: up` while every page failed."""
    base = f"http://127.0.0.1:{compose_stack.port}"
    assert http_get(f"{base}/api/health").status == 200
    pg = _service(docker_client, compose_stack.project, "postgres")

    def psql(sql: str) -> None:
        code, output = pg.exec_run(["psql", "-U", "atbb", "-d", "atbb", "-v", "ON_ERROR_STOP=1", "-c", sql])
        assert code == 0, output.decode()

    # As if a newer image's migration had not run yet: its record is missing.
    psql("delete from schema_migrations where name = '0002_seed.sql'")
    health = http_get(f"{base}/api/health")
    assert health.status == 503, health.text
    assert health.json()["migrations"] == "pending"
    assert health.json()["reason"].startswith("1 of 2 migrations are not applied")
    # No schema at all: the pages answer 503 with Retry-After (they answered 502 before), not a 500.
    psql("drop table categories, posts, forums, schema_migrations cascade")
    page = http_get(f"{base}/")
    assert page.status == 503, page.text[:500]
    assert page.headers.get("retry-after") == "30"
    assert http_get(f"{base}/api/forum").status == 503
    # `inv migrate` joins the stack's network and puts it right; health recovers without a restart.
    proc = run_inv(
        "migrate", "--env-file", str(compose_stack.env_file), "--image", compose_stack.image,
        env=compose_stack.env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert http_get(f"{base}/api/health").status == 200
    assert http_get(f"{base}/").status == 200
