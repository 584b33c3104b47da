"""Env files: every mistake named with its variable, all at once, and no value ever echoed."""

from __future__ import annotations

import os

import pytest

from atbb_kit.core.errors import EnvFileError
from atbb_kit.infra.envfile import examine, load_env_file, parse, validate
from tests.conftest import ROOT, run_inv

REQUIRED = ("DATABASE_URL", "FORUM_DID", "PDS_URL", "OAUTH_PUBLIC_URL", "SESSION_SECRET")
SECRET = "5f" * 32
GOOD = {
    "DATABASE_URL": "postgres://atbb:pw-Sup3rSecret@postgres:5432/atbb",
    "FORUM_DID": "did:plc:abcdefghijklmnopqrstuvwx",
    "PDS_URL": "https://pds.example.com",
    "OAUTH_PUBLIC_URL": "https://forum.example.com",
    "SESSION_SECRET": SECRET,
}


def with_(**changes):
    out = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            out.pop(key)
        else:
            out[key] = value
    return out


BAD = [
    ("missing-one", with_(FORUM_DID=None), ["missing required variable(s): FORUM_DID"]),
    ("missing-all-listed", {}, ["missing required variable(s): " + ", ".join(REQUIRED)]),
    ("empty-counts-as-missing", with_(PDS_URL=""), ["missing required variable(s): PDS_URL"]),
    ("db-mysql", with_(DATABASE_URL="mysql://u:p@db/atbb"), ["DATABASE_URL must be a postgres://"]),
    ("db-no-host", with_(DATABASE_URL="postgres:///atbb"), ["DATABASE_URL must name a host"]),
    ("db-no-database", with_(DATABASE_URL="postgres://u:p@db:5432/"), ["DATABASE_URL must name a database"]),
    ("db-plain-words", with_(DATABASE_URL="localhost"), ["DATABASE_URL must be a postgres://"]),
    ("did-handle", with_(FORUM_DID="forum.example.com"), ["FORUM_DID must be a did:plc: or did:web: DID"]),
    ("did-key", with_(FORUM_DID="did:key:z6Mkabc"), ["FORUM_DID must be a did:plc:"]),
    ("did-plc-short", with_(FORUM_DID="did:plc:abc"), ["FORUM_DID must be a did:plc:"]),
    ("did-plc-upper", with_(FORUM_DID="did:plc:ABCDEFGHIJKLMNOPQRSTUVWX"), ["FORUM_DID must be"]),
    ("pds-ftp", with_(PDS_URL="ftp://pds.example.com"), ["PDS_URL must be an http:// or https:// URL"]),
    ("pds-bare-host", with_(PDS_URL="pds.example.com"), ["PDS_URL must be an http://"]),
    ("oauth-no-scheme", with_(OAUTH_PUBLIC_URL="forum.example.com"), ["OAUTH_PUBLIC_URL must be an http://"]),
    ("secret-short", with_(SESSION_SECRET="x" * 31), ["SESSION_SECRET must be at least 32 characters"]),
    ("jetstream-http", {**GOOD, "JETSTREAM_URL": "https://jet.example"}, ["JETSTREAM_URL must be a ws://"]),
    ("ttl-zero", {**GOOD, "SESSION_TTL_DAYS": "0"}, ["SESSION_TTL_DAYS must be a whole number"]),
    ("ttl-words", {**GOOD, "SESSION_TTL_DAYS": "seven"}, ["SESSION_TTL_DAYS must be a whole number"]),
    ("log-level", {**GOOD, "LOG_LEVEL": "verbose"}, ["LOG_LEVEL must be one of"]),
    (
        "several-at-once",
        with_(FORUM_DID="nope", SESSION_SECRET="short", PDS_URL=None),
        ["missing required variable(s): PDS_URL", "FORUM_DID must be", "SESSION_SECRET must be at least"],
    ),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_values_are_named_without_echoing(values, expected):
    report = validate(values, REQUIRED, ".env")
    assert not report.ok
    text = "\n".join(report.problems)
    for fragment in expected:
        assert fragment in text
    for var, value in values.items():
        if len(value) >= 6:
            assert value not in text, f"{var}'s value leaked into: {text}"


def test_good_file_passes():
    assert validate(GOOD, REQUIRED).ok
    assert validate({**GOOD, "FORUM_DID": "did:web:forum.example.com"}, REQUIRED).ok


def test_example_file_is_valid_and_documents_every_variable():
    example = ROOT / ".env.production.example"
    from dotenv import dotenv_values

    values = dotenv_values(example)
    report = validate(values, REQUIRED, example.name)
    assert report.ok, report.problems
    text = example.read_text()
    for var in values:
        assert f"# {var}" in text or f"/ {var}" in text, f"{var} has no comment in {example.name}"


def write_env(tmp_path, values, mode=0o600):
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    os.chmod(path, mode)
    return path


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(EnvFileError) as info:
        load_env_file(tmp_path / ".env", REQUIRED)
    assert "does not exist" in info.value.what
    assert ".env.production.example" in info.value.fix


def test_world_readable_file_warns(tmp_path):
    report = load_env_file(write_env(tmp_path, GOOD, 0o644), REQUIRED)
    assert any("readable by other users" in w and "chmod 600" in w for w in report.warnings)
    assert load_env_file(write_env(tmp_path, GOOD, 0o600), REQUIRED).warnings == ()


@pytest.mark.parametrize("task", ["migrate", "compose-up"])
def test_tasks_refuse_bad_env_files_without_leaking(tmp_path, task):
    bad = with_(SESSION_SECRET="tooshort-but-secret", DATABASE_URL="mysql://root:hunter2hunter2@db/atbb")
    env_file = write_env(tmp_path, bad)
    proc = run_inv(task, "--env-file", str(env_file), "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "SESSION_SECRET must be at least 32 characters" in proc.stderr
    assert "DATABASE_URL must be a postgres://" in proc.stderr
    assert "hunter2hunter2" not in proc.stdout + proc.stderr
    assert "tooshort-but-secret" not in proc.stdout + proc.stderr


def test_secret_task_prints_64_hex():
    proc = run_inv("secret")
    assert proc.returncode == 0
    value = proc.stdout.strip()
    assert len(value) == 64 and int(value, 16) >= 0
    assert run_inv("secret").stdout.strip() != value


# ---------------------------------------------------------------------------------------------------------
# Line by line: every line is a variable, a comment or an error; lines docker run reads otherwise are named.

KNOWN = ("FORUM_HANDLE", "FORUM_PASSWORD", "JETSTREAM_URL", "SESSION_TTL_DAYS", "LOG_LEVEL")

# (id, one line, expected problem fragment or None, expected mismatch fragment or None)
LINES = [
    ("plain", "LOG_LEVEL=info", None, None),
    ("comment", "# LOG_LEVEL=info", None, None),
    ("indented-comment", "   # note", None, None),
    ("blank", "", None, None),
    ("empty-value", "FORUM_HANDLE=", None, None),
    ("hash-in-value", "FORUM_PASSWORD=ab#cd", None, None),
    ("equals-in-value", "JETSTREAM_URL=wss://j.example/sub?a=b", None, None),
    ("no-equals", "LOG_LEVEL", "a line without `=`", None),
    ("bare-word", "hunter2hunter2", "a line without `=`", None),
    ("no-name", "=info", "not a variable, a comment or a blank line", None),
    ("unterminated-quote", 'LOG_LEVEL="info', "not a variable, a comment or a blank line", None),
    ("bad-name", "LOG-LEVEL=info", "not a variable name", None),
    ("digit-name", "1LOG=info", "not a variable name", None),
    ("unknown", "SESION_SECRET=x", "SESION_SECRET is not a variable atBB reads (did you mean SESSION_SECRET?)", None),
    ("unknown-far", "SOMETHING_ELSE=1", "SOMETHING_ELSE is not a variable atBB reads", None),
    ("lower-case-known", "log_level=info", "log_level is not a variable atBB reads", None),
    ("control-char", "LOG_LEVEL=in\x01fo", "holds a control character", None),
    ("nul", "LOG_LEVEL=in\x00fo", "holds a control character", None),
    ("host-variable-braced", "FORUM_HANDLE=${HOME}", "holds a $NAME or ${NAME} reference", None),
    ("host-variable-bare", "FORUM_PASSWORD=ab$USER", "holds a $NAME or ${NAME} reference", None),
    ("host-variable-double-quoted", 'FORUM_HANDLE="${HOME}"', "holds a $NAME", "is quoted"),
    ("compose-escape", "FORUM_PASSWORD=a$$b", "holds a $NAME", None),
    ("dollar-digit-is-literal", "FORUM_PASSWORD=a$1", None, None),
    ("single-quoted-dollar", "FORUM_PASSWORD='a$b'", None, "is quoted"),
    ("double-quoted", 'LOG_LEVEL="info"', None, "is quoted: docker run --env-file keeps the quotes"),
    ("single-quoted", "LOG_LEVEL='info'", None, "is quoted"),
    ("export", "export LOG_LEVEL=info", None, "starts with `export`"),
    ("space-before-equals", "LOG_LEVEL =info", None, "has a space before the ="),
    ("space-after-equals", "LOG_LEVEL= info", None, "has a space after the ="),
    ("inline-comment", "LOG_LEVEL=info # the default", None, "has a # comment after the value"),
    ("trailing-spaces", "LOG_LEVEL=info   ", None, "ends with spaces"),
    ("quoted-name", "'LOG_LEVEL'=info", None, "has a quoted name"),
    ("escape-sequence", 'FORUM_PASSWORD="a\\tb"', None, "is quoted"),
    ("indented-variable", "   LOG_LEVEL=info", None, None),
    ("crlf", "LOG_LEVEL=info\r", None, None),
]


@pytest.mark.parametrize(("line", "problem", "mismatch"), [c[1:] for c in LINES], ids=[c[0] for c in LINES])
def test_each_line_is_a_variable_a_comment_or_an_error(line, problem, mismatch):
    parsed = parse(line + "\n", ".env", REQUIRED, KNOWN)
    problems = "\n".join(parsed.problems)
    mismatches = "\n".join(why for _, _, why in parsed.mismatches)
    if problem:
        assert problem in problems and problems.startswith(".env:1: ")
    else:
        assert parsed.problems == ()
    if mismatch:
        assert mismatch in mismatches
        assert parsed.mismatches[0][0] == 1
    else:
        assert parsed.mismatches == ()
    # Secrets stay secret: a line that is not a variable is never quoted back.
    if line.startswith("hunter2"):
        assert "hunter2" not in problems


def test_a_multi_line_value_is_a_mismatch_on_its_first_line():
    parsed = parse('# head\n\nFORUM_PASSWORD="line one\nline two"\nLOG_LEVEL=info\n', ".env", REQUIRED, KNOWN)
    assert parsed.mismatches == (
        (3, "FORUM_PASSWORD", "spans 2 lines: docker run --env-file reads each line on its own"),
    )
    assert parsed.values["LOG_LEVEL"] == "info"


def test_a_variable_set_twice_is_an_error_naming_both_lines():
    parsed = parse("LOG_LEVEL=info\n# x\nLOG_LEVEL=debug\n", ".env", REQUIRED, KNOWN)
    assert parsed.problems == (".env:3: LOG_LEVEL is set again (first on line 1); keep one",)


def test_lone_carriage_returns_are_an_error():
    parsed = parse("LOG_LEVEL=info\rFORUM_HANDLE=x\n", ".env", REQUIRED, KNOWN)
    assert any("carriage return" in p for p in parsed.problems)


def test_known_names_come_from_atbb_yaml_and_the_compose_example():
    text = "".join(f"{n}=x\n" for n in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "REDIS_URL", "EXTRA_ONE"))
    assert parse(text, ".env", REQUIRED, ("EXTRA_ONE",)).problems == ()
    assert parse(text, ".env", REQUIRED, ()).problems == (".env:5: EXTRA_ONE is not a variable atBB reads",)


def test_host_variables_are_never_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("ATBB_TEST_HOST_VALUE", "from-the-host")
    path = tmp_path / ".env"
    path.write_text("FORUM_HANDLE='${ATBB_TEST_HOST_VALUE}'\nFORUM_PASSWORD=${ATBB_TEST_HOST_VALUE}\n")
    path.chmod(0o600)
    report = examine(path, (), KNOWN)
    assert report.values["FORUM_HANDLE"] == "${ATBB_TEST_HOST_VALUE}"
    assert report.values["FORUM_PASSWORD"] == "${ATBB_TEST_HOST_VALUE}"
    assert "from-the-host" not in repr(report)
    assert report.problems == (
        ".env:2: FORUM_PASSWORD holds a $NAME or ${NAME} reference: Compose replaces it with the host's variable, "
        "docker run and the kit keep it as written (percent-encode a $ in a URL as %24)",
    )


def test_the_example_file_reads_alike_for_the_kit_and_docker_run():
    example = ROOT / ".env.production.example"
    parsed = parse(example.read_text(), example.name, REQUIRED, KNOWN)
    assert parsed.problems == ()
    assert parsed.mismatches == ()


def test_mismatches_warn_for_the_kit_and_fail_for_docker_run(tmp_path):
    path = write_env(tmp_path, {**GOOD, "LOG_LEVEL": '"info"', "FORUM_HANDLE": "forum.example.com # mine"})
    report = load_env_file(path, REQUIRED, KNOWN)
    assert report.values["LOG_LEVEL"] == "info" and report.values["FORUM_HANDLE"] == "forum.example.com"
    assert report.warnings == (
        ".env:6: LOG_LEVEL is quoted: docker run --env-file keeps the quotes as part of the value",
        ".env:7: FORUM_HANDLE has a # comment after the value: docker run --env-file keeps it as part of the value",
    )
    with pytest.raises(EnvFileError) as info:
        load_env_file(path, REQUIRED, KNOWN, docker_run=True)
    assert info.value.what.splitlines() == list(report.warnings)
    assert "no quotes, no `export`" in (info.value.fix or "")


def test_doctor_warns_about_lines_docker_run_reads_otherwise(tmp_path):
    from atbb_kit.core.config import load_config
    from atbb_kit.infra.runner import Runner
    from atbb_kit.ops import doctor

    cfg = load_config(ROOT / "atbb.yaml", environ={})
    path = write_env(tmp_path, {**GOOD, "LOG_LEVEL": "'info'"})
    probe = doctor.Probe(cfg, Runner(dry_run=True), path, "atbb:dev")
    (finding,) = doctor.run_checks(probe, [c for c in doctor.CHECKS if c.key == "env"])
    assert finding.level is doctor.Level.WARN
    assert "docker run --env-file reads 1 line(s) differently: .env:6: LOG_LEVEL is quoted" in finding.detail
    write_env(tmp_path, GOOD)
    probe = doctor.Probe(cfg, Runner(dry_run=True), path, "atbb:dev")
    (finding,) = doctor.run_checks(probe, [c for c in doctor.CHECKS if c.key == "env"])
    assert finding.level is doctor.Level.OK


def _fifo(tmp_path):
    path = tmp_path / "fifo.env"
    os.mkfifo(path)
    return path


def _bytes(data):
    def make(tmp_path):
        path = tmp_path / "bytes.env"
        path.write_bytes(data)
        return path

    return make


# (id, make the path, expected message fragment)
FILES = [
    ("missing", lambda t: t / "none.env", "does not exist"),
    ("folder", lambda t: t, "is a folder, not a file"),
    ("fifo", _fifo, "is not a regular file"),
    ("latin-1", _bytes(b"LOG_LEVEL=info\nFORUM_HANDLE=caf\xe9\n"), ":2: not UTF-8 text (byte 0xe9)"),
    ("utf-16", _bytes("LOG_LEVEL=info\n".encode("utf-16")), ":1: not UTF-8 text"),
    ("too-large", _bytes(b"# " + b"x" * 70_000 + b"\n"), "an env file is at most 64 KiB"),
    ("long-name", lambda t: t / ("x" * 300), "cannot read env file"),
]


@pytest.mark.parametrize(("make", "fragment"), [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_files_that_cannot_be_env_files_are_named(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(EnvFileError) as info:
        load_env_file(path, REQUIRED, KNOWN)
    assert fragment in info.value.what
    assert "\n" not in info.value.what


def test_ttl_days_are_bounded_like_the_image_bounds_them():
    assert validate({**GOOD, "SESSION_TTL_DAYS": "3650"}, REQUIRED).ok
    for bad in ("3651", "99999999999999999999", "²", "-1", "1.5"):
        assert not validate({**GOOD, "SESSION_TTL_DAYS": bad}, REQUIRED).ok, bad


def test_malformed_urls_are_problems_not_crashes():
    report = validate({**GOOD, "DATABASE_URL": "postgres://u:p@[::1/atbb", "PDS_URL": "http://[x"}, REQUIRED)
    assert any("DATABASE_URL is not a well-formed URL" in p for p in report.problems)
    report = validate({**GOOD, "DATABASE_URL": "postgres://u:p@db:99999/atbb"}, REQUIRED)
    assert report.problems == (".env: DATABASE_URL has a port that is not a number from 1 to 65535",)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_bytes(b"LOG_LEVEL=caf\xe9\n"), ":1: not UTF-8 text"), (lambda t: t, "is a folder, not a file")],
    ids=["not-utf8", "folder"],
)
def test_doctor_fails_the_env_row_for_a_file_it_cannot_use(tmp_path, make, fragment):
    from atbb_kit.core.config import load_config
    from atbb_kit.infra.runner import Runner
    from atbb_kit.ops import doctor

    cfg = load_config(ROOT / "atbb.yaml", environ={})
    probe = doctor.Probe(cfg, Runner(dry_run=True), make(tmp_path), "atbb:dev")
    keys = ("env", "permissions", "compose-settings", "database")
    findings = doctor.run_checks(probe, [c for c in doctor.CHECKS if c.key in keys])
    env, permissions, _, database = findings
    assert env.level is doctor.Level.FAIL and fragment in env.detail
    assert database.level is doctor.Level.WARN and "not checked" in database.detail
    if fragment.startswith("is a folder"):
        assert permissions.detail.startswith("not checked: ")
