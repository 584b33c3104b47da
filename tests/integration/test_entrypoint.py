"""docker/entrypoint.sh under BusyBox sh and dash, with fake `node` and `nginx` on PATH.

The fakes record what they were started with and which signals they got, so the tests can check the
environment each child sees, the stop order, and that nothing outlives the supervisor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SHELLS = {
    "busybox": [shutil.which("busybox") or "/usr/bin/busybox", "sh"],
    "dash": [shutil.which("dash") or "/usr/bin/dash"],
}

FAKE = textwrap.dedent(
    """\
    #!{python}
    # Stands in for node and nginx: logs start and signals as JSON lines to $FAKE_LOG.
    import json, os, signal, sys, time

    prog = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if prog == "nginx":
        name = "nginx"
    elif args == ["-v"]:
        print("v22.0.0-fake")
        sys.exit(0)
    else:
        entry = args[0]
        name = "migrate" if "migrate" in entry else "appview" if "appview" in entry else "web"

    def record(event, **extra):
        line = json.dumps(dict(event=event, name=name, pid=os.getpid(), t=time.monotonic(), **extra))
        fd = os.open(os.environ["FAKE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (line + "\\n").encode())
        os.close(fd)

    keys = ("HOST", "PORT", "APPVIEW_URL", "DATABASE_URL", "NODE_ENV")
    record("start", argv=args, cwd=os.getcwd(), env={{k: os.environ.get(k) for k in keys}})
    if name == "migrate":
        sys.exit(int(os.environ.get("FAKE_MIGRATE_EXIT", "0")))
    start_exit = os.environ.get("FAKE_EXIT_AT_START", "")
    if start_exit.startswith(name + ":"):
        sys.exit(int(start_exit.split(":")[1]))

    def on_signal(signum, frame):
        record("signal", sig=signal.Signals(signum).name)
        if os.environ.get("FAKE_HANG") == name:
            return
        time.sleep(float(os.environ.get("FAKE_DRAIN", "0.1")))
        record("exit")
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    while True:
        time.sleep(0.05)
    """
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for prog in ("node", "nginx"):
        script = bin_dir / prog
        script.write_text(FAKE.format(python=sys.executable))
        script.chmod(0o755)
    app = tmp_path / "app"
    app.mkdir()
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "fake.log"),
        "APP_DIR": str(app),
        "NGINX_CONF": "/etc/atbb-test/nginx.conf",
        # What an operator's env file might hold: the supervisor must not let these through.
        "HOST": "0.0.0.0",  # noqa: S104
        "PORT": "9999",
        "APPVIEW_URL": "http://elsewhere:1",
        "DATABASE_URL": "postgres://u:p@db/atbb",
    }


def events(env) -> list[dict]:
    path = Path(env["FAKE_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start(shell, env, *args):
    return subprocess.Popen(
        [*SHELLS[shell], str(ENTRYPOINT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def started(env) -> dict[str, dict]:
    found = {e["name"]: e for e in events(env) if e["event"] == "start"}
    return found if {"appview", "web", "nginx"} <= found.keys() else {}


def supervisor_lines(stdout: str) -> list[dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert lines and all(line["source"] == "supervisor" for line in lines)
    return lines


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Reparented children of the test process would linger as zombies of nobody we wait for.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(params=sorted(SHELLS))
def shell(request):
    return request.param


def test_serve_starts_three_children_on_loopback(shell, env):
    proc = start(shell, env)
    try:
        children = wait_for(lambda: started(env), what="three children")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    app = children["appview"]
    assert app["argv"] == ["apps/appview/dist/index.js"]
    assert app["cwd"] == env["APP_DIR"]
    assert app["env"]["HOST"] == "127.0.0.1"
    assert app["env"]["PORT"] == "3000"
    assert app["env"]["DATABASE_URL"] == env["DATABASE_URL"]
    web = children["web"]
    assert web["argv"] == ["apps/web/dist/index.js"]
    assert web["env"]["HOST"] == "127.0.0.1"
    assert web["env"]["PORT"] == "3001"
    assert web["env"]["APPVIEW_URL"] == "http://127.0.0.1:3000"
    assert children["nginx"]["argv"] == ["-e", "stderr", "-c", "/etc/atbb-test/nginx.conf"]
    starts = [line for line in supervisor_lines(out) if line["msg"] == "started child"]
    assert [(s["child"], s["pid"]) for s in starts] == [(n, children[n]["pid"]) for n in ("appview", "web", "nginx")]


def test_entries_and_ports_follow_the_image_env(shell, env):
    env.update(APPVIEW_ENTRY="srv/appview-main.js", WEB_ENTRY="srv/web-main.js", APPVIEW_PORT="4100", WEB_PORT="4200")
    proc = start(shell, env)
    try:
        children = wait_for(lambda: started(env), what="three children")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert children["appview"]["argv"] == ["srv/appview-main.js"]
    assert children["appview"]["env"]["PORT"] == "4100"
    assert children["web"]["argv"] == ["srv/web-main.js"]
    assert children["web"]["env"]["APPVIEW_URL"] == "http://127.0.0.1:4100"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_nginx_then_web_then_appview_and_exits_0(shell, env, sig):
    proc = start(shell, env)
    children = wait_for(lambda: started(env), what="three children")
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)  # also proves nothing left holds our stdout
    elapsed = time.monotonic() - sent
    assert proc.returncode == 0, err
    assert elapsed < 5
    got = [e for e in events(env) if e["event"] == "signal"]
    assert [(e["name"], e["sig"]) for e in got] == [("nginx", "SIGQUIT"), ("web", "SIGTERM"), ("appview", "SIGTERM")]
    # Ordered, not merely sent in order: each stops before the next is asked to.
    exits = {e["name"]: e["t"] for e in events(env) if e["event"] == "exit"}
    signals = {e["name"]: e["t"] for e in got}
    assert exits["nginx"] <= signals["web"]
    assert exits["web"] <= signals["appview"]
    assert not any(pid_alive(c["pid"]) for c in children.values())
    lines = supervisor_lines(out)
    assert [line["child"] for line in lines if line["msg"] == "child stopped"] == ["nginx", "web", "appview"]
    assert all(line["code"] == 0 for line in lines if line["msg"] == "child stopped")
    assert lines[-1]["msg"] == "supervisor exiting"


@pytest.mark.parametrize(
    ("child", "sig", "code"),
    [
        ("appview", signal.SIGKILL, 137),
        ("web", signal.SIGKILL, 137),
        ("nginx", signal.SIGKILL, 137),
        # The fake drains and exits 0 on TERM, as the real services do: still a failure of the container.
        ("appview", signal.SIGTERM, 1),
    ],
)
def test_a_dying_child_ends_the_supervisor_non_zero_within_3s(shell, env, child, sig, code):
    proc = start(shell, env)
    children = wait_for(lambda: started(env), what="three children")
    killed = time.monotonic()
    os.kill(children[child]["pid"], sig)
    out, _ = proc.communicate(timeout=10)
    elapsed = time.monotonic() - killed
    assert proc.returncode == code
    assert elapsed < 3, f"took {elapsed:.1f}s"
    assert not any(pid_alive(c["pid"]) for c in children.values())
    lines = supervisor_lines(out)
    failure = next(line for line in lines if line["msg"].startswith("child exited"))
    assert failure["child"] == child
    assert failure["level"] == "error"


def test_a_child_failing_at_start_ends_the_supervisor(shell, env):
    env["FAKE_EXIT_AT_START"] = "nginx:1"
    began = time.monotonic()
    proc = start(shell, env)
    proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert time.monotonic() - began < 4


def test_a_hung_child_is_killed_after_its_grace(shell, env):
    env.update(FAKE_HANG="web", SUPERVISOR_APP_GRACE="1")
    proc = start(shell, env)
    children = wait_for(lambda: started(env), what="three children")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert 0.9 < time.monotonic() - sent < 4
    assert proc.returncode == 1  # not a clean stop: say so
    assert not pid_alive(children["web"]["pid"])
    stopped = {line["child"]: line for line in supervisor_lines(out) if line["msg"] == "child stopped"}
    assert stopped["web"]["code"] == 137
    assert stopped["web"]["level"] == "warn"
    assert stopped["appview"]["code"] == 0


def test_hup_reloads_nginx_only(shell, env):
    proc = start(shell, env)
    wait_for(lambda: started(env), what="three children")
    assert not [e for e in events(env) if e["event"] == "signal"]
    # The fake exits on HUP like any signal; the supervisor must treat that as nginx dying.
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=10)
    assert next((e["name"], e["sig"]) for e in events(env) if e["event"] == "signal") == ("nginx", "SIGHUP")
    assert proc.returncode == 1


def test_migrate_execs_the_migrator_from_the_app_dir(shell, env):
    env["FAKE_MIGRATE_EXIT"] = "3"
    proc = start(shell, env, "migrate", "--verbose")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 3, err
    (only,) = events(env)
    assert only["name"] == "migrate"
    assert only["argv"] == ["apps/appview/dist/migrate.js", "--verbose"]
    assert only["cwd"] == env["APP_DIR"]
    assert only["env"]["DATABASE_URL"] == env["DATABASE_URL"]
    # exec, not a child: signals from `docker stop` reach the migrator directly.
    assert only["pid"] == proc.pid
    assert out == ""


def test_migrate_entry_follows_the_image_env(shell, env):
    env["MIGRATE_ENTRY"] = "tools/db-migrate.js"
    proc = start(shell, env, "migrate")
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert events(env)[0]["argv"] == ["tools/db-migrate.js"]


def test_other_commands_are_execed(shell, env):
    proc = start(shell, env, "sh", "-c", 'echo "hello $$"; exit 7')
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 7
    assert out == f"hello {proc.pid}\n"


def test_node_version_passthrough(shell, env):
    proc = start(shell, env, "node", "-v")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == "v22.0.0-fake\n"


def test_serve_refuses_extra_arguments(shell, env):
    proc = start(shell, env, "serve", "now")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 64
    assert events(env) == []
    assert supervisor_lines(out)[0]["level"] == "error"


def test_explicit_serve_is_the_default(shell, env):
    proc = start(shell, env, "serve")
    wait_for(lambda: started(env), what="three children")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_missing_app_dir_fails_before_starting_anything(shell, env, tmp_path):
    env["APP_DIR"] = str(tmp_path / "absent")
    proc = start(shell, env)
    _out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert events(env) == []
