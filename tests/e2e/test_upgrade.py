"""`inv upgrade` / `inv rollback` against the real engine, under load the whole time (issue 17).

One Compose stack of the example (PostgreSQL, atbb, edge) for the module, started at v1 with `inv
compose-up`. The "builds" are small images derived from the e2e image: only their OCI version/revision
labels and the appview's package.json version differ (so /api/health reports which one answers), plus
two broken ones: `crash` (its `serve` exits at once: `serve` given an argument) and `sick` (its
HEALTHCHECK never passes). The load (atbb_kit/ops/bench_upgrade.Load: 8 threads on `/` and /api/health,
loopback only, bounded) runs through each attempt and must see no failed request and no socket error.
Every object is named after this module's own project and removed at the end by its labels.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from atbb_kit.ops.bench_upgrade import Load
from tests.conftest import INV, ROOT, run_inv

LABEL = "dev.atbb.test"
LABEL_VALUE = "upgrade-e2e"
PATHS = ("/", "/api/health")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def derived(client, base: str, tag: str, version: str, extra: str = "") -> str:
    dockerfile = f"""FROM {base}
USER root
RUN sed -i 's/"version": *"[^"]*"/"version": "{version}"/' /app/apps/appview/package.json
USER 10001:10001
LABEL org.opencontainers.image.version="{version}" org.opencontainers.image.revision="e2e-{version}"
LABEL {LABEL}="{LABEL_VALUE}"
{extra}
"""
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    return tag


@pytest.fixture(scope="module")
def images(docker_client, built_image):
    suffix = uuid.uuid4().hex[:6]
    made = {
        "v1": derived(docker_client, built_image, f"atbb-e2e-upgrade:v1-{suffix}", "1.0.0"),
        "v2": derived(docker_client, built_image, f"atbb-e2e-upgrade:v2-{suffix}", "1.1.0"),
        "v3": derived(docker_client, built_image, f"atbb-e2e-upgrade:v3-{suffix}", "1.2.0"),
        "crash": derived(docker_client, built_image, f"atbb-e2e-upgrade:crash-{suffix}", "1.3.0", 'CMD ["serve", "x"]'),
        "sick": derived(
            docker_client,
            built_image,
            f"atbb-e2e-upgrade:sick-{suffix}",
            "1.4.0",
            'HEALTHCHECK --interval=1s --timeout=2s --retries=1000 CMD ["false"]',
        ),
    }
    yield made
    for tag in made.values():
        # Best effort: a container still using one would already have failed a test.
        with contextlib.suppress(Exception):
            docker_client.images.remove(tag, force=True)


class Stack:
    def __init__(self, workdir: Path, project: str, port: int, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.project = project
        self.port = port
        self.env = env
        self.env_file = workdir / "atbb.env"

    def inv(self, *args: str, timeout: float = 600):
        return run_inv(*args, env=self.env, timeout=timeout)

    def upgrade_args(self, *args: str) -> list[str]:
        return ["--env-file", str(self.env_file), "--backup-dir", str(self.workdir / "backups"), *args]

    def health(self) -> tuple[int, dict, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=5) as resp:
                return resp.status, json.loads(resp.read()), dict(resp.headers)
        except OSError as exc:
            raise AssertionError(f"the forum does not answer ({exc}); the stack: {self.describe()}") from None

    def describe(self) -> str:
        import docker

        client = docker.from_env()
        found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        parts = []
        for c in found:
            state = c.attrs["State"]
            tail = c.logs(tail=5).decode("utf-8", "replace").strip().replace("\n", " | ")[-600:]
            parts.append(
                f"{c.name} {state['Status']} exit={state.get('ExitCode')} restarts={c.attrs['RestartCount']}: {tail}"
            )
        return "; ".join(parts) or "no containers"

    def app_containers(self, client):
        found = client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", "com.docker.compose.service=atbb"]},
        )
        return [c for c in found if c.labels.get("com.docker.compose.oneoff", "False") != "True"]

    def history(self) -> list[dict]:
        return json.loads((self.workdir / "atbb-releases.json").read_text())["releases"]


@pytest.fixture(scope="module")
def stack(docker_client, test_images, images, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("upgrade")
    project = f"atbbup{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**test_images, "ATBB_COMPOSE_PROJECT": project, "ATBB_COMPOSE_HOST_PORT": str(port)}
    s = Stack(workdir, project, port, env)
    password = uuid.uuid4().hex
    s.env_file.write_text(
        f"DATABASE_URL=postgres://atbb:{password}@postgres:5432/atbb\n"
        "FORUM_DID=did:plc:e2etestforumaaaaaaaaaaaa\nPDS_URL=https://pds.example.test\n"
        f"OAUTH_PUBLIC_URL=http://localhost:{port}\nSESSION_SECRET={uuid.uuid4().hex * 2}\n"
        f"POSTGRES_USER=atbb\nPOSTGRES_PASSWORD={password}\nPOSTGRES_DB=atbb\n"
    )
    s.env_file.chmod(0o600)
    up = s.inv("compose-up", "--env-file", str(s.env_file), "--image", images["v1"], timeout=900)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        yield s
    finally:
        s.inv("compose-down", "--env-file", str(s.env_file), "--volumes", timeout=300)
        for c in docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
            c.remove(force=True)


def served_version(stack: Stack) -> str:
    status, body, _ = stack.health()
    assert status == 200
    return body.get("version", "")


def assert_no_failures(result) -> None:
    assert result.total > 50, f"the load barely ran: {result.describe()}"
    assert not result.failed and not result.errors, result.describe()


def assert_one_healthy_release(stack: Stack, client) -> None:
    apps = stack.app_containers(client)
    assert len(apps) == 1, [c.name for c in apps]
    assert apps[0].status == "running"
    status, body, _ = stack.health()
    assert status == 200 and body.get("status") == "ok"


def test_a_good_upgrade_fails_no_request_and_the_new_release_answers(stack, images, docker_client):
    assert served_version(stack) == "1.0.0"
    with Load(stack.port, PATHS, limit=600) as load:
        time.sleep(2)
        proc = stack.inv("upgrade", "--image", images["v2"], *stack.upgrade_args(), timeout=900)
        time.sleep(1)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert_no_failures(load.result)
    for n, title in enumerate(["preflight", "smoke test", "backup", "migrate", "start new", "health check", "switch"]):
        assert f"[{n + 1}/9] {title}: ok in" in out, out[-3000:]
    assert "upgrade: atbb-e2e-upgrade:v2" in out  # the summary table's title
    assert served_version(stack) == "1.1.0"
    _, _, headers = stack.health()
    assert headers.get("X-Atbb-Release", "").startswith("e2e-1.1.0")
    assert_one_healthy_release(stack, docker_client)
    history = stack.history()
    assert [r["action"] for r in history] == ["found running", "upgrade"]
    assert history[-1]["version"] == "1.1.0" and history[-1]["migrated"] is True
    assert Path(history[-1]["backup"]).is_file()
    shown = stack.inv("releases", "--env-file", str(stack.env_file))
    assert shown.returncode == 0 and "1.1.0" in shown.stdout and "1.0.0" in shown.stdout


@pytest.mark.parametrize(
    "image, says",
    [("crash", "is not healthy: it"), ("sick", "did not pass its health check within 10 s")],
)
def test_a_broken_release_leaves_the_old_one_serving_and_nothing_behind(stack, images, docker_client, image, says):
    before = served_version(stack)
    with Load(stack.port, PATHS, limit=300) as load:
        proc = stack.inv(
            "upgrade", "--image", images[image], "--no-smoke", "--timeout", "10", *stack.upgrade_args(), timeout=600
        )
        time.sleep(1)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert says in out and "the old release" in out and "still serves" in out, out[-3000:]
    assert "was removed" in out
    # Migrations ran (with the broken image): the exact restore command is given, and nothing restored.
    assert "inv restore " in out and "--force" in out
    assert_no_failures(load.result)
    assert served_version(stack) == before
    assert_one_healthy_release(stack, docker_client)
    assert not [c for c in docker_client.containers.list(all=True) if c.image.tags and images[image] in c.image.tags]
    assert all(r["image"] != images[image] for r in stack.history())


def test_a_second_upgrade_at_once_is_refused(stack, images):
    lock = stack.workdir / "atbb-upgrade.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now", "command": "x"}))
        proc = stack.inv("upgrade", "--image", images["v3"], *stack.upgrade_args(), timeout=120)
    finally:
        holder.kill()
        holder.wait()
        lock.unlink(missing_ok=True)
    assert proc.returncode == 75, proc.stderr
    assert f"another upgrade or rollback is running (pid {holder.pid}" in proc.stderr


@pytest.mark.parametrize("step", ["[3/8] migrate:", "[4/8] start new:", "[5/8] health check:", "[6/8] switch:"])
def test_sigterm_at_a_step_leaves_one_healthy_release(stack, images, docker_client, step):
    before = served_version(stack)
    target = images["v3"] if before != "1.2.0" else images["v2"]
    args = ["upgrade", "--image", target, "--no-smoke", "--allow-downgrade", *stack.upgrade_args()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))} | stack.env
    seen = []
    with Load(stack.port, PATHS, limit=300) as load:
        proc = subprocess.Popen(
            [*INV, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        signalled = False
        for line in proc.stdout:
            seen.append(line)
            if not signalled and line.startswith(step):
                proc.send_signal(signal.SIGTERM)
                signalled = True
        proc.wait(timeout=300)
        time.sleep(1)
    out = "".join(seen)
    assert signalled, out[-3000:]
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "interrupted by SIGTERM" in out
    assert_no_failures(load.result)
    assert_one_healthy_release(stack, docker_client)
    assert served_version(stack) in (before, "1.2.0" if target == images["v3"] else "1.1.0")


def test_rollback_returns_to_the_previous_image_without_a_failed_request(stack, images, docker_client):
    history = stack.history()
    current = history[-1]
    previous = next(r for r in reversed(history[:-1]) if r["image_id"] != current["image_id"])
    with Load(stack.port, PATHS, limit=300) as load:
        time.sleep(1)
        proc = stack.inv("rollback", "--env-file", str(stack.env_file), timeout=600)
        time.sleep(1)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "the database was migrated since" in out
    assert_no_failures(load.result)
    assert served_version(stack) == previous["version"]
    assert_one_healthy_release(stack, docker_client)
    assert stack.history()[-1]["action"] == "rollback"
