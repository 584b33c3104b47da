"""docker/entrypoint.sh's VAR_FILE support (Swarm secrets, Kubernetes Secret files), under BusyBox sh and dash.

Reuses the fakes of test_entrypoint.py: the fake `node` records the environment each child started with.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.integration import test_entrypoint as base
from tests.integration.test_entrypoint import events, start, started, wait_for

# The fixtures of test_entrypoint.py (fake node and nginx on PATH, the kit's spec; each shell in turn).
env = base.env
shell = base.shell


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return str(path)


def error_line(out: str) -> dict:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines, out
    return lines[-1]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("postgres://u:p@db/atbb\n", "postgres://u:p@db/atbb"),  # the newline `echo x > file` leaves
        ("postgres://u:p@db/atbb", "postgres://u:p@db/atbb"),
        ("a 'quoted' $value with `ticks` and \\ ;\n\n", "a 'quoted' $value with `ticks` and \\ ;"),
    ],
)
def test_migrate_reads_var_file_into_var_and_unsets_it(shell, env, tmp_path, content, expected):
    del env["DATABASE_URL"]
    env["DATABASE_URL_FILE"] = secret(tmp_path, "db", content)
    proc = start(shell, env, "migrate")
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    (only,) = events(env)
    assert only["env"]["DATABASE_URL"] == expected


def test_serve_gives_every_service_the_file_values(shell, env, tmp_path):
    del env["DATABASE_URL"]
    env["DATABASE_URL_FILE"] = secret(tmp_path, "db", "postgres://s:w@db/atbb\n")
    proc = start(shell, env)
    found = wait_for(lambda: started(env), what="three children")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert {found[name]["env"]["DATABASE_URL"] for name in ("appview", "web")} == {"postgres://s:w@db/atbb"}


def test_pass_through_commands_see_the_value_and_not_the_file_variable(shell, env, tmp_path):
    env["SESSION_SECRET_FILE"] = secret(tmp_path, "session", "x" * 64 + "\n")
    proc = start(shell, env, "sh", "-c", 'printf "%s|%s" "$SESSION_SECRET" "${SESSION_SECRET_FILE-unset}"')
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == "x" * 64 + "|unset"


def test_a_line_inside_another_value_that_looks_like_a_file_variable_is_ignored(shell, env):
    env["NOTES"] = "first line\nFAKE_FILE=/does/not/exist"
    proc = start(shell, env, "sh", "-c", 'printf "%s" "${FAKE-unset}"')
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == "unset"


def test_an_empty_var_next_to_its_file_takes_the_file(shell, env, tmp_path):
    # The Compose example blanks POSTGRES_PASSWORD for the app; an empty value is "not set".
    env["POSTGRES_PASSWORD"] = ""
    env["POSTGRES_PASSWORD_FILE"] = secret(tmp_path, "pg", "pw")
    proc = start(shell, env, "sh", "-c", 'printf "%s" "$POSTGRES_PASSWORD"')
    out, _ = proc.communicate(timeout=10)
    assert (proc.returncode, out) == (0, "pw")


@pytest.mark.parametrize("mode", [[], ["migrate"], ["true"]])
def test_both_var_and_var_file_is_an_error_naming_the_variable(shell, env, tmp_path, mode):
    env["DATABASE_URL_FILE"] = secret(tmp_path, "db", "postgres://other/atbb")
    proc = start(shell, env, *mode)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 1
    line = error_line(out)
    assert (line["level"], line["var"]) == ("error", "DATABASE_URL")
    assert "both DATABASE_URL and DATABASE_URL_FILE" in line["msg"]
    assert events(env) == []


@pytest.mark.parametrize("target", ["missing", "directory"])
def test_an_unreadable_file_is_an_error_and_starts_nothing(shell, env, tmp_path, target):
    path = tmp_path / "secrets" / "session"
    if target == "directory":
        path.mkdir(parents=True)
    env["SESSION_SECRET_FILE"] = str(path)
    proc = start(shell, env)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 1
    line = error_line(out)
    assert line["var"] == "SESSION_SECRET_FILE"
    assert "cannot be read" in line["msg"]
    # The path is not logged: it may itself say more than an operator wants in a log.
    assert str(path) not in out
    assert events(env) == []


def test_the_health_probe_does_not_read_files(shell, env, tmp_path):
    # The HEALTHCHECK runs every 1.5 s; it needs no secrets and must not fail on them.
    env["SESSION_SECRET_FILE"] = str(tmp_path / "absent")
    proc = start(shell, env, "health")
    out, _ = proc.communicate(timeout=10)
    assert "cannot be read" not in out
