"""One-off containers: a deadline the kit enforces, removal however the task ends (issue 14).

The runner is tested with stand-ins for the docker client (a Python child that sleeps) and for
`docker rm --force` (a child that records each call), so these tests need no engine; tests/e2e/
test_oneoff_deadlines.py runs the same paths against a real one.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from atbb_kit.commands.base import Command, OneOff
from atbb_kit.commands.compose import POSTGRES_VARIABLES
from atbb_kit.core.errors import KitError
from atbb_kit.infra.runner import DeadlineExceeded, Runner
from atbb_kit.infra.signals import Interrupted
from atbb_kit.ops import deployment as ops
from tests.conftest import ROOT, run_inv

# The stand-in client writes its pid, prints a line, then sleeps far past any deadline here.
CLIENT = (
    "import os,sys,time; open(sys.argv[1],'w').write(str(os.getpid())); print('started', flush=True); time.sleep(60)"
)
# The stand-in `docker rm --force NAME` appends a line per call.
REMOVE = "import sys; open(sys.argv[1],'a').write('removed\\n')"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose once its parent reaped it or it is defunct.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][0] != "Z"


def _job(tmp_path: Path, deadline: float, **kw) -> tuple[Command, OneOff]:
    client = Command((sys.executable, "-c", CLIENT, str(tmp_path / "pid")))
    remove = Command((sys.executable, "-c", REMOVE, str(tmp_path / "removed")))
    return client, OneOff("atbb-test-1", "the stand-in", deadline, remove, fix="the fix", **kw)


def _removals(tmp_path: Path) -> int:
    path = tmp_path / "removed"
    return path.read_text().count("removed") if path.exists() else 0


@pytest.mark.parametrize("capture", [False, True], ids=["passthrough", "captured"])
def test_deadline_removes_the_container_and_ends_the_client(tmp_path, capfd, capture):
    cmd, job = _job(tmp_path, 1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        Runner(echo=False).run(cmd, capture=capture, oneoff=job)
    took = time.monotonic() - started
    assert 1.0 <= took < 8, took
    assert info.value.exit_code == 124
    assert info.value.what == (
        "the stand-in did not finish within 1s; its container atbb-test-1 was stopped and removed"
    )
    assert info.value.fix == "the fix"
    # Removed before the client was stopped, and once more after (a container created meanwhile).
    assert _removals(tmp_path) == 2
    assert not _alive(int((tmp_path / "pid").read_text()))
    if capture:
        assert "started" in capfd.readouterr().err, "the cut-short output's last lines are shown"


def test_a_normal_end_removes_the_container_unless_told_not_to(tmp_path):
    remove = Command((sys.executable, "-c", REMOVE, str(tmp_path / "removed")))
    quick = Command((sys.executable, "-c", "print('done')"))
    runner = Runner(echo=False)
    res = runner.run(quick, capture=True, oneoff=OneOff("c", "it", 10, remove))
    assert res.ok and res.stdout == "done\n"
    assert _removals(tmp_path) == 1
    runner.run(quick, capture=True, oneoff=OneOff("c", "it", 10, remove, remove_after=False))
    assert _removals(tmp_path) == 1


def test_failure_of_a_one_off_is_an_ordinary_command_failure(tmp_path):
    remove = Command((sys.executable, "-c", REMOVE, str(tmp_path / "removed")))
    failing = Command((sys.executable, "-c", "import sys; print('nope', file=sys.stderr); sys.exit(3)"))
    with pytest.raises(KitError) as info:
        Runner(echo=False).run(failing, capture=True, oneoff=OneOff("c", "it", 10, remove))
    assert info.value.exit_code == 3 and "nope" in info.value.what
    assert Runner(echo=False).run(failing, check=False, oneoff=OneOff("c", "it", 10, remove)).returncode == 3


def test_dry_run_runs_nothing(tmp_path):
    cmd, job = _job(tmp_path, 0.1)
    assert Runner(dry_run=True, stream=open(os.devnull, "w")).run(cmd, oneoff=job).ok  # noqa: SIM115
    assert _removals(tmp_path) == 0 and not (tmp_path / "pid").exists()


# A task process in miniature: a Runner running one one-off, as `inv migrate` does, reporting the way the
# kit's error boundary does.
TASK = textwrap.dedent(
    """
    import sys
    from atbb_kit.core.errors import KitError
    from atbb_kit.commands.base import Command, OneOff
    from atbb_kit.infra.runner import Runner
    client = Command((sys.executable, "-c", {client!r}, {pid!r}))
    remove = Command((sys.executable, "-c", {remove!r}, {removed!r}))
    try:
        Runner(echo=False).run(client, oneoff=OneOff("atbb-test-2", "the stand-in", 60, remove))
    except KitError as exc:
        print(f"error: {{exc.what}} — {{exc.fix}}", file=sys.stderr)
        sys.exit(exc.exit_code)
    """
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_an_interrupted_task_removes_its_container(tmp_path, signum, code):
    script = TASK.format(client=CLIENT, pid=str(tmp_path / "pid"), remove=REMOVE, removed=str(tmp_path / "removed"))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < deadline, "the stand-in client never started"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    name = signal.Signals(signum).name
    assert (
        f"error: interrupted ({name}) while the stand-in ran; its container atbb-test-2 was stopped and removed" in err
    )
    assert "Traceback" not in err
    assert _removals(tmp_path) == 2
    assert not _alive(int((tmp_path / "pid").read_text()))


def test_a_killed_task_takes_its_client_with_it(tmp_path):
    """SIGKILL leaves no chance to clean up: the client is still told (SIGTERM, which a docker client passes on
    to its container) instead of running on, orphaned."""
    script = TASK.format(client=CLIENT, pid=str(tmp_path / "pid"), remove=REMOVE, removed=str(tmp_path / "removed"))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < deadline, "the stand-in client never started"
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=20)
    finally:
        proc.kill()
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the client outlived the killed task"


def test_interrupted_is_a_kit_error_with_the_signal_in_its_code():
    exc = Interrupted("x", "y", signal.SIGTERM)
    assert isinstance(exc, KitError) and exc.exit_code == 143


# --- what the tasks start ------------------------------------------------------------------------------

ENV = {
    "DATABASE_URL": "postgres://atbb:c2f0e9d94d1a7b36a2e1@db.example.test:5432/atbb",
    "FORUM_DID": "did:plc:abcdefghijklmnopqrstuvwx",
    "PDS_URL": "https://pds.example.com",
    "OAUTH_PUBLIC_URL": "https://forum.example.com",
    "SESSION_SECRET": "9" * 64,
    "POSTGRES_USER": "atbb",
    "POSTGRES_PASSWORD": "c2f0e9d94d1a7b36a2e1",
    "POSTGRES_DB": "atbb",
}


def _env_file(folder: Path, **changes: str) -> Path:
    path = folder / "forum.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in {**ENV, **changes}.items()))
    path.chmod(0o600)
    return path


def test_inv_migrate_runs_a_named_labelled_one_off_without_healthcheck_or_postgres_secrets(tmp_path):
    proc = run_inv("migrate", "--env-file", str(_env_file(tmp_path)), "--image", "atbb:t", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("would run") and " run --rm " in ln)
    assert " --name atbb-migrate-" in line
    assert " --label dev.atbb.kit=one-off --no-healthcheck " in line
    assert "--env DATABASE_URL" in line and "--env SESSION_SECRET" in line
    for name in POSTGRES_VARIABLES:
        assert f"--env {name} " not in line and f"{name}=" not in line, line
    assert "c2f0e9d94d1a7b36a2e1" not in proc.stderr + proc.stdout
    # 60 s of waiting (atbb.yaml) plus the migrations' budget, unless --timeout says otherwise.
    assert "(waiting up to 60s for the database, 960s in all)" in proc.stderr
    short = run_inv(
        "migrate", "--env-file", str(_env_file(tmp_path)), "--image", "atbb:t", "--timeout", "5", "--dry-run"
    )
    assert "5s in all" in short.stderr


def test_compose_up_migrates_in_a_named_one_off_and_hands_postgres_its_values(tmp_path):
    env_file = _env_file(tmp_path, DATABASE_URL="postgres://atbb:c2f0e9d94d1a7b36a2e1@postgres:5432/atbb")
    proc = run_inv("compose-up", "--env-file", str(env_file), "--image", "atbb:t", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("would run")]
    migrate = next(ln for ln in lines if " run --rm " in ln)
    assert " run --rm -T --name atbb-migrate-" in migrate
    assert "--label dev.atbb.kit=one-off -e DB_WAIT_TIMEOUT=60 migrate" in migrate
    # Compose substitutes these into the postgres service: they travel in its environment, masked.
    for line in lines:
        assert "POSTGRES_PASSWORD=***" in line and "POSTGRES_USER=***" in line, line
    assert "c2f0e9d94d1a7b36a2e1" not in proc.stderr + proc.stdout


# --- compose-up asks the forum itself before saying it is up --------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    answer = (503, b'{"status":"error","database":"up","migrations":"pending"}')

    def do_GET(self):
        status, body = self.answer
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _kit(path="/api/health", status=200):
    return SimpleNamespace(cfg=SimpleNamespace(health=SimpleNamespace(path=path, status=status)))


def test_confirm_healthy_refuses_a_503_whatever_docker_says(health_server):
    port = health_server.server_address[1]
    _Health.answer = (503, b'{"status":"error","database":"up","migrations":"pending"}')
    with pytest.raises(KitError) as info:
        ops.confirm_healthy(_kit(), port)
    assert info.value.what == (
        '/api/health answers HTTP 503, not 200, so the forum is not up: {"status":"error","database":"up",'
        '"migrations":"pending"}'
    )
    _Health.answer = (200, b'{"status":"ok"}')
    ops.confirm_healthy(_kit(), port)


def test_confirm_healthy_says_when_nothing_answers():
    with pytest.raises(KitError) as info:
        ops.confirm_healthy(_kit(), 1)
    assert info.value.what.startswith("/api/health does not answer on port 1 (")
