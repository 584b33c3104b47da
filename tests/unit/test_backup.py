"""backup.py's pure pieces: DATABASE_URL parsing, libpq environment, argv builders, output readers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atbb_kit.commands import docker, pg
from atbb_kit.commands.base import MASK, Secret
from atbb_kit.core.errors import KitError
from atbb_kit.ops import backup

PASSWORD = "pw-Sup3r/Secret@x"  # characters a URL must percent-encode
URL = "postgres://atbb:pw-Sup3r%2FSecret%40x@postgres:5432/atbb"

PARSE = [
    ("compose", URL, ("postgres", 5432, "atbb", PASSWORD, "atbb", ())),
    ("default-port", "postgresql://u:p@db.example.com/forum", ("db.example.com", 5432, "u", "p", "forum", ())),
    ("other-port", "postgres://u:p@10.0.0.5:6543/forum", ("10.0.0.5", 6543, "u", "p", "forum", ())),
    ("no-user", "postgres://db/forum", ("db", 5432, "postgres", "", "forum", ())),
    ("no-password", "postgres://u@db/forum", ("db", 5432, "u", "", "forum", ())),
    ("encoded-db", "postgres://u:p@db/my%20forum", ("db", 5432, "u", "p", "my forum", ())),
    (
        "sslmode-kept-unknown-dropped",
        "postgres://u:p@db/f?sslmode=require&foo=bar",
        ("db", 5432, "u", "p", "f", (("sslmode", "require"),)),
    ),
    ("ipv6", "postgres://u:p@[::1]:5433/f", ("::1", 5433, "u", "p", "f", ())),
]


@pytest.mark.parametrize(("url", "expected"), [c[1:] for c in PARSE], ids=[c[0] for c in PARSE])
def test_parse_database_url(url, expected):
    t = backup.parse_database_url(url)
    assert (t.host, t.port, t.user, t.password.reveal(), t.dbname, t.params) == expected
    assert isinstance(t.password, Secret)


BAD_URLS = [
    ("mysql", "mysql://u:p@db/f", "must be a postgres://"),
    ("words", "localhost", "must be a postgres://"),
    ("port-words", "postgres://u:hunter2hunter2@db:port/f", "port that is not a number"),
    ("port-too-big", "postgres://u:hunter2hunter2@db:99999/f", "port that is not a number"),
    ("no-host", "postgres:///f", "must name a host"),
    ("no-db", "postgres://u:hunter2hunter2@db:5432/", "must name one database"),
    ("two-segments", "postgres://u:hunter2hunter2@db/a/b", "must name one database"),
]


@pytest.mark.parametrize(("url", "fragment"), [c[1:] for c in BAD_URLS], ids=[c[0] for c in BAD_URLS])
def test_bad_urls_are_named_without_their_value(url, fragment):
    with pytest.raises(KitError) as info:
        backup.parse_database_url(url)
    assert fragment in info.value.what
    assert "hunter2hunter2" not in str(info.value)


def test_pg_env_carries_the_password_as_a_secret_and_the_rest_in_clear():
    env = backup.pg_env(backup.parse_database_url(URL + "?sslmode=verify-full"))
    assert env == {
        "PGHOST": "postgres",
        "PGPORT": "5432",
        "PGUSER": "atbb",
        "PGDATABASE": "atbb",
        "PGPASSWORD": PASSWORD,
        "PGSSLMODE": "verify-full",
        "PGCONNECT_TIMEOUT": str(backup.CONNECT_TIMEOUT),
    }
    assert isinstance(env["PGPASSWORD"], Secret)
    assert "PGPASSWORD" not in backup.pg_env(backup.parse_database_url("postgres://u@db/f"))
    # A connect_timeout in the URL wins over the kit's default.
    assert backup.pg_env(backup.parse_database_url("postgres://u@db/f?connect_timeout=30"))["PGCONNECT_TIMEOUT"] == "30"


def _env():
    return backup.pg_env(backup.parse_database_url(URL))


def test_one_off_names_variables_and_never_holds_values():
    cmd = pg.connection_check("docker", "postgres:16-alpine", _env(), "atbb_default", name="atbb-doctor-1")
    assert cmd.argv == (
        "docker",
        "run",
        "--rm",
        *("--name", "atbb-doctor-1", "--label", "dev.atbb.kit=one-off", "--no-healthcheck"),
        "--network",
        "atbb_default",
        *("--env", "PGHOST", "--env", "PGPORT", "--env", "PGUSER", "--env", "PGDATABASE"),
        *("--env", "PGPASSWORD", "--env", "PGCONNECT_TIMEOUT"),
        "postgres:16-alpine",
        *pg.CHECK_ARGS,
    )
    assert all(PASSWORD not in a for a in cmd.argv)
    shown = cmd.display()
    assert PASSWORD not in shown and f"PGPASSWORD={MASK}" in shown
    assert cmd.env["PGPASSWORD"].reveal() == PASSWORD  # the child still gets it


COMMANDS = [
    (
        "probe-default-network",
        lambda: pg.probe("docker", "pg:16", {"PGHOST": "db"}, None, name="atbb-probe-1"),
        (
            *("docker", "run", "--rm", "--name", "atbb-probe-1", "--label", "dev.atbb.kit=one-off"),
            *("--no-healthcheck", "--env", "PGHOST", "pg:16", "sh", "-c", pg.PROBE_SCRIPT),
        ),
    ),
    (
        "create-dump",
        lambda: pg.create("docker", "atbb-backup-1", "pg:16", pg.dump_args(), {"PGHOST": "db"}, "net"),
        (
            *("docker", "create", "--name", "atbb-backup-1", "--label", "dev.atbb.kit=one-off"),
            *("--no-healthcheck", "--network", "net", "--env", "PGHOST", "pg:16"),
            *("pg_dump", "--format=custom", "--file", pg.CONTAINER_DUMP),
        ),
    ),
    (
        "restore-args",
        lambda: pg.create("docker", "r", "pg:16", pg.restore_args("atbb"), {}, None),
        (
            *("docker", "create", "--name", "r", "--label", "dev.atbb.kit=one-off", "--no-healthcheck", "pg:16"),
            *("pg_restore", "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction"),
            *("--dbname", "atbb", pg.CONTAINER_DUMP),
        ),
    ),
    ("start", lambda: pg.start_attached("docker", "c"), ("docker", "start", "--attach", "c")),
    ("copy-out", lambda: pg.copy("docker", "c:/tmp/atbb.dump", "out"), ("docker", "cp", "c:/tmp/atbb.dump", "out")),
    ("remove", lambda: docker.docker_remove("docker", "c"), ("docker", "rm", "--force", "c")),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_commands(build, expected):
    assert build().argv == expected


PROBES = [
    ("same-major", "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n150020|4\n", (15, 150020, 4, 15)),
    ("newer-client", "pg_dump (PostgreSQL) 16.4\n150008|0\n", (16, 150008, 0, 15)),
    ("older-client", "pg_dump (PostgreSQL) 15.2\n170002|12\n", (15, 170002, 12, 17)),
]


@pytest.mark.parametrize(("stdout", "expected"), [c[1:] for c in PROBES], ids=[c[0] for c in PROBES])
def test_parse_probe(stdout, expected):
    r = backup.parse_probe(stdout)
    assert (r.client_major, r.server_version_num, r.public_tables, r.server_major) == expected


def test_parse_probe_rejects_other_output():
    with pytest.raises(KitError, match="could not read the PostgreSQL versions"):
        backup.parse_probe("sh: pg_dump: not found\n")


def test_version_problem_only_when_the_client_is_older():
    assert backup.version_problem(backup.ProbeResult(16, 150008, 0), "pg:16") is None
    assert backup.version_problem(backup.ProbeResult(16, 160004, 0), "pg:16") is None
    problem = backup.version_problem(backup.ProbeResult(15, 170002, 0), "postgres:15-alpine")
    assert problem is not None
    assert "runs PostgreSQL 17, but postgres:15-alpine carries pg_dump 15" in problem.what
    assert "postgres:17-alpine" in problem.fix


TARGET = backup.parse_database_url("postgres://atbb:hunter2hunter2@postgres:5432/atbb")
ERRORS = [
    (
        "dns",
        'psql: error: could not translate host name "postgres" to address: Name or service not known',
        "cannot reach the database host 'postgres': its name does not resolve",
    ),
    (
        "refused",
        'psql: error: connection to server at "10.0.0.5", port 5432 failed: Connection refused',
        "nothing accepts connections at postgres:5432",
    ),
    (
        "timeout",
        "psql: error: connection to server ... failed: timeout expired",
        "no answer from postgres:5432 within 3 s",
    ),
    (
        "password",
        'psql: error: ... FATAL:  password authentication failed for user "atbb"',
        "the database rejected the password of user 'atbb'",
    ),
    (
        "no-database",
        'psql: error: ... FATAL:  database "forum" does not exist',
        "database 'forum' does not exist on postgres:5432",
    ),
    ("no-role", 'psql: error: ... FATAL:  role "bob" does not exist', "user 'bob' does not exist on postgres:5432"),
    ("hba", 'FATAL:  no pg_hba.conf entry for host "1.2.3.4"', "does not accept connections from this client"),
    (
        "unknown",
        "psql: error: something new hunter2hunter2",
        "the database check failed: psql: error: something new ***",
    ),
]


@pytest.mark.parametrize(("stderr", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_connect_errors_are_specific_and_never_show_the_password(stderr, expected):
    error = backup.connect_error(stderr, TARGET, "pg:16")
    assert expected in error.what
    assert error.fix
    assert "hunter2hunter2" not in str(error)


def test_redact_masks_longest_first():
    assert backup.redact("a secret and secretive", [Secret("secret"), "secretive"]) == "a *** and ***"
    assert backup.redact("nothing", ["", Secret("")]) == "nothing"


def test_backup_name_and_dump_magic():
    name = backup.backup_name(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    assert name == "atbb-20260304-050607.dump"
    assert backup.BACKUP_NAME.fullmatch(name)
    assert backup.is_custom_dump(b"PGDMP\x01\x0e")
    assert not backup.is_custom_dump(b"-- PostgreSQL database dump")
    assert not backup.is_custom_dump(b"")
