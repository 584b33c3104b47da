"""The app's env contract (atbb_kit/core/app_env.py): one definition for smoke, bench and the demo env file."""

from __future__ import annotations

import itertools
import re

import pytest

from atbb_kit.commands.base import Secret
from atbb_kit.core import app_env
from atbb_kit.core.app_env import Database, Identity
from atbb_kit.core.config import load_config
from atbb_kit.infra.envfile import DID, validate
from tests.conftest import ROOT

DB = Database(host="atbb-smoke-1-postgres", password="pw" * 8)
FIXED = Identity("did:plc:" + "a" * 24, "https://pds.x.invalid", "https://forum.x.invalid", "s" * 64)
CONTRACT = ("DATABASE_URL", "FORUM_DID", "PDS_URL", "OAUTH_PUBLIC_URL", "SESSION_SECRET")

DATABASES = [
    ("throwaway", DB, "postgres://atbb:pwpwpwpwpwpwpwpw@atbb-smoke-1-postgres:5432/atbb"),
    ("compose-demo", Database(host="postgres", password="x"), "postgres://atbb:x@postgres:5432/atbb"),
    ("other-port-and-name", Database("db", "p", user="u", name="forum", port=6543), "postgres://u:p@db:6543/forum"),
]


@pytest.mark.parametrize(("db", "url"), [c[1:] for c in DATABASES], ids=[c[0] for c in DATABASES])
def test_database_url_and_server_env_agree(db, url):
    assert db.url() == url
    assert db.server_env() == {"POSTGRES_USER": db.user, "POSTGRES_PASSWORD": db.password, "POSTGRES_DB": db.name}


ENVS = [
    # (id, required, placeholder, extra, expected additions beyond the contract)
    ("contract-only", (), "", None, {}),
    ("unknown-required-gets-placeholder", ("FORUM_HANDLE",), "smoke", None, {"FORUM_HANDLE": "smoke"}),
    ("no-placeholder-leaves-it-out", ("FORUM_HANDLE",), "", None, {}),
    ("known-required-is-not-overwritten", ("PDS_URL",), "bench", None, {}),
    ("extra-wins", (), "bench", {"LOG_LEVEL": "warn"}, {"LOG_LEVEL": "warn"}),
    ("extra-overrides-contract", (), "", {"PDS_URL": "https://p.invalid"}, {"PDS_URL": "https://p.invalid"}),
]


@pytest.mark.parametrize(("required", "placeholder", "extra", "added"), [c[1:] for c in ENVS], ids=[c[0] for c in ENVS])
def test_app_env(required, placeholder, extra, added):
    env = app_env.app_env(DB, FIXED, required, placeholder=placeholder, extra=extra)
    expected = {
        "DATABASE_URL": DB.url(),
        "FORUM_DID": FIXED.forum_did,
        "PDS_URL": FIXED.pds_url,
        "OAUTH_PUBLIC_URL": FIXED.public_url,
        "SESSION_SECRET": FIXED.session_secret,
        **added,
    }
    assert env == expected
    assert tuple(env)[:5] == CONTRACT  # the demo env file lists them in this order


IDENTITIES = [
    (
        "smoke",
        lambda: app_env.throwaway_identity("smoke"),
        r"https://pds\.smoke\.invalid",
        r"https://forum\.smoke\.invalid",
    ),
    (
        "bench",
        lambda: app_env.throwaway_identity("bench"),
        r"https://pds\.bench\.invalid",
        r"https://forum\.bench\.invalid",
    ),
    ("demo", lambda: app_env.demo_identity(8080), r"https://pds\.example\.com", r"http://localhost:8080"),
]


@pytest.mark.parametrize(("make", "pds", "public"), [c[1:] for c in IDENTITIES], ids=[c[0] for c in IDENTITIES])
def test_identities(make, pds, public):
    a, b = make(), make()
    assert re.fullmatch(pds, a.pds_url) and re.fullmatch(public, a.public_url)
    assert DID.fullmatch(a.forum_did) and re.fullmatch(r"did:plc:[a-z2-7]{24}", a.forum_did)
    assert len(a.session_secret) == 64 and a.session_secret != b.session_secret  # fresh every time


def test_throwaway_identity_is_deterministic_given_its_randomness():
    letters = itertools.cycle("ab")
    ident = app_env.throwaway_identity("smoke", choice=lambda _: next(letters), token_hex=lambda n: "f" * (2 * n))
    assert ident == Identity(
        "did:plc:" + "ab" * 12, "https://pds.smoke.invalid", "https://forum.smoke.invalid", "f" * 64
    )


def test_secret_values_are_wrapped_and_never_print():
    env = app_env.app_env(DB, FIXED, secret=Secret)
    for var in CONTRACT:
        assert isinstance(env[var], Secret) == (var in app_env.SECRET_VARIABLES)
    assert f"{env['DATABASE_URL']}" == "***" and repr(env["SESSION_SECRET"]) == "***"
    assert env["DATABASE_URL"].reveal() == DB.url()


@pytest.mark.parametrize("config", ["atbb.yaml", "examples/board/atbb.yaml"])
def test_a_throwaway_env_passes_the_operators_validation(config):
    cfg = load_config(ROOT / config, environ={})
    env = app_env.app_env(DB, app_env.throwaway_identity("smoke"), cfg.env.required, placeholder="smoke", secret=Secret)
    report = validate(env, cfg.env.required, "generated env")
    assert report.ok, report.problems
    assert set(cfg.env.required) <= set(env)
