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

from atbb_kit.core import image_spec
from atbb_kit.core.config import Config, load_config
from tests.conftest import ROOT

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
        # The supervisor names each service in ATBB_SERVICE; the migration runs without it.
        name = os.environ.get("ATBB_SERVICE") or "migrate"

    def record(event, **extra):
        line = json.dumps(dict(event=event, name=name, pid=os.getpid(), t=time.monotonic(), **extra))
        fd = os.open(os.environ["FAKE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (line + "\\n").encode())
        os.close(fd)

    keys = ("HOST", "PORT", "APPVIEW_URL", "DATABASE_URL", "NODE_ENV", "API_PORT", "API_BASE_URL", "PATH")
    record("start", prog=prog, argv=args, cwd=os.getcwd(), env={{k: os.environ.get(k) for k in keys}})
    if os.environ.get("FAKE_SLOW_START") == name:
        # Like Node before its SIGTERM handler is installed: the default action ends the process.
        time.sleep(3)
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


def write_spec(path: Path, cfg) -> Path:
    """The spec file exactly as the Dockerfile writes it from the kit's build arguments."""
    lines = [image_spec.supervisor_spec(cfg), image_spec.migrate_spec(cfg), image_spec.health_spec(cfg)]
    path.write_text("# test spec\n" + "\n".join(lines) + "\n")
    return path


def install_fake(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    for prog in ("node", "nginx"):
        install_fake(bin_dir / prog)
    app = tmp_path / "app"
    app.mkdir()
    # The kit's own atbb.yaml (the forum): appview, then web.
    spec = write_spec(tmp_path / "services.sh", load_config(ROOT / "atbb.yaml", environ={}))
    return {
        "ATBB_SPEC": str(spec),
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


def started_all(env, names) -> dict[str, dict]:
    found = {e["name"]: e for e in events(env) if e["event"] == "start"}
    return found if set(names) <= found.keys() else {}


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
    assert app["prog"] == "node"
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


BOARD = {
    "services": {
        "api": {"command": ["node", "dist/index.js"], "cwd": "apps/api", "port": 4000, "env": {"API_PORT": "{port}"}},
        "web": {
            "command": ["react-router-serve", "./build/server/index.js"],
            "cwd": "apps/web",
            "port": 4001,
            "env": {"API_BASE_URL": "{api.url}", "LITERAL": "{{x}}"},
            "grace": 2,
        },
        "worker": {"command": ["node", "apps/worker/dist/index.js", "--interval", "5"]},
    },
    "routes": [{"path": "/api/", "service": "api"}, {"path": "/", "service": "web"}],
    "health": {"path": "/api/boards"},
    "migrate": {"package": "@board/db", "command": ["drizzle-kit", "migrate"], "cwd": "."},
}


@pytest.fixture
def board(env, tmp_path):
    """Three services unlike the forum's: a cwd each, a framework CLI found in node_modules/.bin, a worker."""
    app = Path(env["APP_DIR"])
    for rel in ("apps/api/dist/index.js", "apps/web/build/server/index.js", "apps/worker/dist/index.js"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text("")
    install_fake(app / "apps" / "web" / "node_modules" / ".bin" / "react-router-serve")
    migrate_dir = tmp_path / "migrate"
    install_fake(migrate_dir / "node_modules" / ".bin" / "drizzle-kit")
    spec = Path(env["ATBB_SPEC"]).read_text()
    spec = write_spec(Path(env["ATBB_SPEC"]), Config.model_validate(BOARD)).read_text()
    # The image deploys migrate.package to /migrate; point the spec at the test's folder instead.
    Path(env["ATBB_SPEC"]).write_text(spec.replace("migrate_dir=/migrate", f"migrate_dir={migrate_dir}"))
    return env


def test_services_from_the_spec_start_in_order_with_their_cwd_env_and_programs(shell, board):
    env = board
    proc = start(shell, env)
    try:
        children = wait_for(lambda: started_all(env, ("api", "web", "worker", "nginx")), what="four children")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    app = env["APP_DIR"]
    api, web, worker = children["api"], children["web"], children["worker"]
    assert (api["cwd"], api["argv"]) == (f"{app}/apps/api", ["dist/index.js"])
    assert api["env"]["API_PORT"] == "4000" and api["env"]["PORT"] == "4000" and api["env"]["HOST"] == "127.0.0.1"
    assert (web["prog"], web["cwd"], web["argv"]) == (
        "react-router-serve",
        f"{app}/apps/web",
        ["./build/server/index.js"],
    )
    assert web["env"]["API_BASE_URL"] == "http://127.0.0.1:4000"
    assert web["env"]["PATH"].startswith(f"{app}/apps/web/node_modules/.bin:{app}/node_modules/.bin:")
    # A worker has no port: no PORT/HOST of its own, and the operator's values do not leak in either.
    assert worker["argv"] == ["apps/worker/dist/index.js", "--interval", "5"]
    assert worker["env"]["PORT"] == "9999"  # inherited from the container env, untouched by the kit
    assert proc.returncode == 0
    starts = [line["child"] for line in supervisor_lines(out) if line["msg"] == "started child"]
    assert starts == ["api", "web", "worker", "nginx"]
    stopped = [line["child"] for line in supervisor_lines(out) if line["msg"] == "child stopped"]
    assert stopped == ["nginx", "worker", "web", "api"]


def test_any_service_dying_ends_the_container(shell, board):
    env = board
    proc = start(shell, env)
    children = wait_for(lambda: started_all(env, ("api", "web", "worker", "nginx")), what="four children")
    os.kill(children["worker"]["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 137
    assert next(line for line in supervisor_lines(out) if line["msg"].startswith("child exited"))["child"] == "worker"
    assert not any(pid_alive(c["pid"]) for c in children.values())


def test_check_finds_every_program_and_file_argument(shell, board):
    proc = start(shell, board, "check")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "check: 3 service(s) and the migration can start"


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        (
            "apps/web/build/server/index.js",
            "service web: ./build/server/index.js (relative to apps/web) is not in the image",
        ),
        (
            "apps/web/node_modules/.bin/react-router-serve",
            "service web: program 'react-router-serve' is not in apps/web",
        ),
        ("apps/api", "service api: working directory apps/api is not in the image"),
        ("apps/worker/dist/index.js", "service worker: apps/worker/dist/index.js (relative to .) is not in the image"),
    ],
)
def test_check_names_the_missing_path(shell, board, remove, message):
    target = Path(board["APP_DIR"]) / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    proc = start(shell, board, "check")
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert message in err, err


def test_migrate_runs_the_baked_command_from_the_deployed_package(shell, board, tmp_path):
    proc = start(shell, board, "migrate", "--verbose", "it's")
    proc.communicate(timeout=10)
    (only,) = events(board)
    assert (only["prog"], only["argv"]) == ("drizzle-kit", ["migrate", "--verbose", "it's"])
    assert only["cwd"] == str(tmp_path / "migrate")


def test_migrate_without_a_command_says_so_and_succeeds(shell, env, tmp_path):
    cfg = load_config(ROOT / "atbb.yaml", environ={})
    write_spec(
        Path(env["ATBB_SPEC"]), cfg.model_copy(update={"migrate": cfg.migrate.model_copy(update={"command": ()})})
    )
    proc = start(shell, env, "migrate")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "no migrate.command" in out
    assert events(env) == []


@pytest.mark.parametrize("slow", ["appview", "web"])
def test_a_stop_during_start_up_is_a_clean_stop(shell, env, slow):
    # `docker stop` right after `docker run`: the child dies of the TERM it was sent before installing a
    # handler. That is the stop we asked for, so the container exits 0, within the grace.
    env["FAKE_SLOW_START"] = slow
    proc = start(shell, env)
    wait_for(lambda: started(env), what="three children")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, out + err
    assert time.monotonic() - sent < 5
    codes = {line["child"]: line["code"] for line in supervisor_lines(out) if line["msg"] == "child stopped"}
    assert codes[slow] == 143


TINI = shutil.which("tini") or "/usr/bin/tini"


def test_a_stop_before_every_child_started_starts_nothing_more(shell, env):
    # Under tini, as in the image (ENTRYPOINT tini -s -e 143): a TERM before the shell set its trap is a
    # clean stop too.
    proc = subprocess.Popen(
        [TINI, "-s", "-e", "143", "--", *SHELLS[shell], str(ENTRYPOINT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # `docker stop` can only follow once the container runs, i.e. once tini has started the supervisor.
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    wait_for(lambda: children.read_text().strip(), what="tini to start the supervisor")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, out + err
    # Whatever had started was stopped; nothing outlives the supervisor.
    assert not any(pid_alive(e["pid"]) for e in events(env) if e["event"] == "start")


def test_missing_spec_is_a_clear_error(shell, env, tmp_path):
    env["ATBB_SPEC"] = str(tmp_path / "absent.sh")
    proc = start(shell, env)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "service spec missing" in out
    assert events(env) == []


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
        # Killed by someone else's SIGTERM without draining: 143 would read as "stopped" under tini -e 143.
        ("nginx", signal.SIGTERM, 1),
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
    env["FAKE_HANG"] = "web"
    cfg = load_config(ROOT / "atbb.yaml", environ={})
    hung = cfg.services["web"].model_copy(update={"grace": 1})
    write_spec(Path(env["ATBB_SPEC"]), cfg.model_copy(update={"services": {**cfg.services, "web": hung}}))
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
    assert (only["prog"], only["argv"]) == ("node", ["apps/appview/dist/migrate.js", "--verbose"])
    assert only["cwd"] == env["APP_DIR"]
    assert only["env"]["DATABASE_URL"] == env["DATABASE_URL"]
    # exec, not a child: signals from `docker stop` reach the migrator directly.
    assert only["pid"] == proc.pid
    assert out == ""


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
