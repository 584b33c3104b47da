"""doctor.py's verdicts, as tables of (facts -> level and message); no engine, no network."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from atbb_kit.core.errors import EngineUnavailable
from atbb_kit.ops import doctor
from atbb_kit.ops.doctor import GB, Finding, Level

OK, WARN, FAIL = Level.OK, Level.WARN, Level.FAIL


DISK = [
    ("plenty", 80 * GB, OK, "80.0 GB free on /var/lib/docker"),
    ("just-enough", 5 * GB, OK, "5.0 GB free"),
    ("low", 5 * GB - 1, WARN, "under 5 GB"),
    ("still-warn", 1 * GB, WARN, "1.0 GB free"),
    ("critical", 1 * GB - 1, FAIL, "1.0 GB free"),
    ("empty", 0, FAIL, "0.0 GB free"),
]


@pytest.mark.parametrize(("free", "level", "text"), [c[1:] for c in DISK], ids=[c[0] for c in DISK])
def test_disk(free, level, text):
    f = doctor.disk_finding("/var/lib/docker", free)
    assert (f.level, text in f.detail) == (level, True)
    assert bool(f.fix) == (level is not OK)


COMPOSE = [
    ("v2", ("docker", "compose"), "2.29.7", OK, "docker compose 2.29.7 (v2 plugin)"),
    ("v1-current", ("docker-compose",), "1.29.2", WARN, "docker-compose 1.29.2 (v1)"),
    ("v1-profiles", ("docker-compose",), "1.28.0", WARN, "end-of-life"),
    ("v1-too-old", ("docker-compose",), "1.27.4", FAIL, "too old: the Compose file needs 1.28+"),
    ("v1-unknown-version", ("/usr/bin/docker-compose",), None, WARN, "(version unknown)"),
    ("none", None, None, FAIL, "neither `docker compose` nor `docker-compose`"),
]


@pytest.mark.parametrize(("base", "version", "level", "text"), [c[1:] for c in COMPOSE], ids=[c[0] for c in COMPOSE])
def test_compose(base, version, level, text):
    f = doctor.compose_finding(base, version)
    assert f.level is level and text in f.detail, f


def test_engine():
    up = doctor.engine_finding("20.10.24", "1.41", "/usr/bin/docker", None)
    assert up.level is OK and up.detail == "20.10.24 (API 1.41), client /usr/bin/docker"
    down = doctor.engine_finding(None, None, None, EngineUnavailable("no Docker engine answers at x", "start it"))
    assert (down.level, down.detail, down.fix) == (FAIL, "no Docker engine answers at x", "start it")
    no_cli = doctor.engine_finding("20.10.24", "1.41", None, None)
    assert no_cli.level is FAIL and "no docker client" in no_cli.detail


ENV = [
    ("missing", False, (), FAIL, "does not exist", "cp .env.production.example"),
    ("problems", True, (".env: missing required variable(s): PDS_URL", ".env: LOG_LEVEL must be"), FAIL, "PDS_URL", ""),
    ("good", True, (), OK, "every required variable is set", ""),
]


@pytest.mark.parametrize(("exists", "problems", "level", "text", "fix"), [c[1:] for c in ENV], ids=[c[0] for c in ENV])
def test_env(exists, problems, level, text, fix):
    f = doctor.env_finding(Path(".env"), exists, problems)
    assert f.level is level and text in f.detail and fix in f.fix


def test_env_problems_are_joined_on_one_line():
    f = doctor.env_finding(Path(".env"), True, ("a", "b"))
    assert f.detail == "a; b" and "\n" not in f.detail


PERMISSIONS = [
    ("private", True, None, OK, "private to its owner"),
    ("world-readable", True, "x is readable by other users", WARN, "readable by other users"),
    ("missing", False, None, WARN, "not checked"),
]


@pytest.mark.parametrize(
    ("exists", "warning", "level", "text"), [c[1:] for c in PERMISSIONS], ids=[c[0] for c in PERMISSIONS]
)
def test_permissions(exists, warning, level, text):
    f = doctor.permission_finding(Path(".env"), exists, warning)
    assert f.level is level and text in f.detail
    if level is WARN and exists:
        assert f.fix == "chmod 600 .env"


PW = "pw-Sup3rSecret"
BASE = {
    "DATABASE_URL": f"postgres://atbb:{PW}@postgres:5432/atbb",
    "POSTGRES_USER": "atbb",
    "POSTGRES_PASSWORD": PW,
    "POSTGRES_DB": "atbb",
}
COMPOSE_ENV = [
    ("matching", {}, []),
    ("external-db-needs-only-a-password", {"DATABASE_URL": "postgres://u:x@db.example.com/f"}, []),
    ("no-password", {"POSTGRES_PASSWORD": None}, ["POSTGRES_PASSWORD is missing"]),
    ("other-password", {"POSTGRES_PASSWORD": "something-else"}, ["POSTGRES_PASSWORD does not match"]),
    ("other-user", {"POSTGRES_USER": "forum"}, ["POSTGRES_USER does not match"]),
    (
        "user-and-db-default-to-postgres",
        {"POSTGRES_USER": None, "POSTGRES_DB": None},
        ["POSTGRES_USER does not match", "POSTGRES_DB does not match"],
    ),
    ("db-defaults-to-user", {"POSTGRES_DB": None}, []),
    ("other-db", {"POSTGRES_DB": "forum"}, ["POSTGRES_DB does not match"]),
    (
        "other-port",
        {"DATABASE_URL": f"postgres://atbb:{PW}@postgres:6543/atbb"},
        ["must use port 5432 to reach the Compose service"],
    ),
    ("malformed-url-left-to-envfile", {"DATABASE_URL": "postgres://x:y@postgres:nope/atbb"}, []),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in COMPOSE_ENV], ids=[c[0] for c in COMPOSE_ENV])
def test_compose_env_problems(changes, expected):
    values = {**BASE, **changes}
    values = {k: v for k, v in values.items() if v is not None}
    problems = doctor.compose_env_problems(values, ".env")
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems, strict=True):
        assert fragment in problem and problem.startswith(".env: ")
    text = "\n".join(problems)
    assert PW not in text and "something-else" not in text


def test_compose_settings_finding():
    assert doctor.compose_settings_finding(True, [], False).level is OK
    assert "external database" in doctor.compose_settings_finding(True, [], True).detail
    bad = doctor.compose_settings_finding(True, ["a", "b"], False)
    assert bad.level is FAIL and bad.detail == "a; b"
    assert doctor.compose_settings_finding(False, [], False).level is WARN


PORTS = [
    ("free", True, [], True, OK, "8080 is free"),
    ("ours", False, [("atbb_atbb_1", "atbb", "atbb")], True, OK, "published by this stack's atbb"),
    ("ours-no-proxy", True, [("atbb_atbb_1", "atbb", "atbb")], True, OK, "this stack's atbb"),
    (
        "other-project",
        False,
        [("x_atbb_1", "other", "atbb")],
        True,
        FAIL,
        "by container x_atbb_1 of Compose project other",
    ),
    ("our-postgres-is-not-ours", False, [("atbb_postgres_1", "atbb", "postgres")], True, FAIL, "atbb_postgres_1"),
    ("plain-container", False, [("web", "", "")], True, FAIL, "published by container web"),
    ("program", False, [], True, FAIL, "in use by another program"),
    ("engine-down", False, [], False, FAIL, "may be this stack's own"),
]


@pytest.mark.parametrize(
    ("bindable", "publishers", "known", "level", "text"), [c[1:] for c in PORTS], ids=[c[0] for c in PORTS]
)
def test_port(bindable, publishers, known, level, text):
    f = doctor.port_finding(8080, bindable, publishers, "atbb", engine_known=known)
    assert f.level is level and text in f.detail, f
    if level is FAIL:
        assert "ATBB_COMPOSE_HOST_PORT=8081" in f.fix


def test_image():
    present = doctor.image_finding("atbb image", "atbb:1", ("sha256:" + "ab" * 32, 123_456_789), "build it")
    assert present.level is OK and present.detail == "atbb:1 (abababababab, 123 MB)"
    missing = doctor.image_finding("atbb image", "atbb:1", None, "build it")
    assert (missing.level, missing.detail, missing.fix) == (WARN, "atbb:1 is not present locally", "build it")


@pytest.mark.parametrize(
    ("levels", "code"),
    [((), 0), ((OK, OK), 0), ((OK, WARN), 0), ((WARN, FAIL), 1), ((FAIL,), 1)],
)
def test_exit_code(levels, code):
    assert doctor.exit_code([Finding("x", level, "d") for level in levels]) == code


def test_port_bindable_sees_a_listener_on_loopback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not doctor.port_bindable(port)
    assert doctor.port_bindable(port)


def test_checks_are_unique_and_a_raising_check_becomes_a_failed_row():
    keys = [c.key for c in doctor.CHECKS]
    assert len(keys) == len(set(keys))

    def boom(_probe):
        raise EngineUnavailable("no Docker engine answers", "start it")

    findings = doctor.run_checks(None, [doctor.DoctorCheck("x", "the x check", boom)])
    assert findings == [Finding("the x check", FAIL, "no Docker engine answers", "start it")]


def test_render_keeps_each_check_on_one_line_and_escapes_markup():
    long = "y" * 150
    findings = [Finding("env file", FAIL, f"[bold]{long}", "fix [it]"), Finding("Compose", OK, "fine")]
    out = io.StringIO()
    doctor.render(findings, out)
    lines = out.getvalue().splitlines()
    assert any(f"[bold]{long}" in ln and "fix [it]" in ln for ln in lines)
    assert "doctor: 1 ok, 0 warn, 1 fail: some checks failed" in lines[-1]


EXAMPLE = {
    "DATABASE_URL": "postgres://atbb:change-me-to-a-long-random-password@postgres:5432/atbb",
    "SESSION_SECRET": "replace-with-output-of-openssl-rand-hex-32",
    "POSTGRES_PASSWORD": "change-me-to-a-long-random-password",
    "FORUM_PASSWORD": "",
}
SECRET_NAMES = ("DATABASE_URL", "SESSION_SECRET", "FORUM_PASSWORD", "POSTGRES_PASSWORD")
PLACEHOLDERS = [
    ("all-replaced", {"DATABASE_URL": "postgres://atbb:fresh@postgres/atbb", "SESSION_SECRET": "f" * 64}, []),
    ("example-copied", dict(EXAMPLE), ["DATABASE_URL", "SESSION_SECRET", "POSTGRES_PASSWORD"]),
    ("only-secret-left", {"SESSION_SECRET": EXAMPLE["SESSION_SECRET"]}, ["SESSION_SECRET"]),
    # Another host with the example's password is still the public password.
    ("url-password-left", {"DATABASE_URL": "postgres://u:change-me-to-a-long-random-password@db/x"}, ["DATABASE_URL"]),
    ("empty-example-value-ignored", {"FORUM_PASSWORD": ""}, []),
]


@pytest.mark.parametrize(("values", "named"), [c[1:] for c in PLACEHOLDERS], ids=[c[0] for c in PLACEHOLDERS])
def test_placeholder_problems(values, named):
    problems = doctor.placeholder_problems(values, EXAMPLE, SECRET_NAMES, ".env")
    if not named:
        assert problems == []
        return
    (problem,) = problems
    verb = "still holds the public placeholder value" if len(named) == 1 else "still hold the public placeholder values"
    assert problem == f".env: {', '.join(named)} {verb} from .env.production.example"
    assert "change-me" not in problem and "replace-with" not in problem


def test_the_real_example_file_is_caught():
    from atbb_kit.core.config import load_config
    from atbb_kit.infra import envfile
    from tests.conftest import ROOT

    values = envfile.read(ROOT / ".env.production.example")
    cfg = load_config(ROOT / "atbb.yaml", environ={})
    problems = doctor.placeholder_problems(values, doctor.example_values(cfg), cfg.env.secret)
    assert problems and "SESSION_SECRET" in problems[0]
