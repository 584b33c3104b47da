"""Env files: every mistake named with its variable, all at once, and no value ever echoed."""

from __future__ import annotations

import os

import pytest

from atbb_kit.envfile import load_env_file, validate
from atbb_kit.errors import EnvFileError
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
