"""Bad input, as a user meets it: tables of hostile or malformed values, and the bad-input corpus.

The corpus (CORPUS, at the end) runs every case through the real CLI in a child process, with a time
limit each, and requires of every one: a non-zero exit, the expected `error: <what> — <fix>` line, no
traceback and no "internal error". Its size is printed in the terminal summary (see conftest.py here).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from atbb_kit.core import imageref, safe_yaml
from atbb_kit.core.config import load_config
from atbb_kit.core.errors import ConfigError
from tests.conftest import ROOT, run_inv

# ---------------------------------------------------------------------------------------------------------
# Image references: parsed as docker parses them


GOOD_REFERENCES = [
    "node:22-alpine",
    "postgres:16-alpine",
    "ghcr.io/owner/atbb:1.0.0",
    "registry.example/team/node:22",
    "localhost:5000/atbb:dev",
    "127.0.0.1:5000/atbb",
    "[::1]:5000/atbb:t",
    "atbb@sha256:" + "a" * 64,
    "ghcr.io/owner/atbb:1.0.0@sha256:" + "0" * 64,
    "a__b/c--d/e.f_g",
    "UPPERHOST/atbb",  # docker reads an upper-case first part as a registry host
]

BAD_REFERENCES = [
    ("empty", "", "is empty"),
    ("space-and-bang", "Bad Ref!!", "it holds ' ' '!'"),
    ("shell", "atbb;touch${IFS}pwned", "it holds '$' ';' '{' '}'"),
    ("upper-path", "ghcr.io/Owner/atbb", "holds upper case"),
    ("upper-short", "Node:22", "'Node' holds upper case"),
    ("empty-tag", "node:", "has an invalid tag ''"),
    ("dash-tag", "node:-x", "has an invalid tag '-x'"),
    ("long-tag", "node:" + "x" * 129, "has an invalid tag"),
    ("double-colon", "node::22", "'node:' is not a repository name"),
    ("empty-part", "a//b", "has an empty part"),
    ("trailing-slash", "atbb/", "has an empty part"),
    ("triple-underscore", "a___b", "is not a repository name"),
    ("dot-dash", "a.-b", "is not a repository name"),
    ("bad-port", "ghcr.io:99999/atbb", "has a port that is not a number"),
    ("empty-port", "ghcr.io:/atbb", "is not a host"),
    ("bad-host", "-ghcr.io/atbb", "is not a host"),
    ("short-digest", "atbb@sha256:abc", "has a digest that is not sha256"),
    ("upper-digest", "atbb@sha256:" + "A" * 64, "has a digest"),
    ("md5-digest", "atbb@md5:" + "a" * 32, "has a digest"),
    ("image-id", "a" * 64, "64 hex digits"),
    ("too-long-name", "a" * 256, "at most 255 characters"),
    ("five-megabytes", "a" * 5_000_000, "at most 520 characters, this one has 5000000"),
    ("newline", "atbb\nrm", "it holds '\\n'"),
    ("unicode", "atbé", "it holds 'é'"),
]


@pytest.mark.parametrize("ref", GOOD_REFERENCES)
def test_docker_references_parse(ref):
    parsed = imageref.parse(ref)
    assert str(parsed) == ref
    assert imageref.problem(ref) is None


@pytest.mark.parametrize(("ref", "fragment"), [c[1:] for c in BAD_REFERENCES], ids=[c[0] for c in BAD_REFERENCES])
def test_bad_references_say_why_in_one_short_line(ref, fragment):
    with pytest.raises(ValueError, match=None) as info:
        imageref.parse(ref)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300


# ---------------------------------------------------------------------------------------------------------
# atbb.yaml: bounded before it is built (alias bombs, nesting, size, encoding)


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


YAML_BOUNDS = [
    ("alias-bomb", billion_laughs(), "more than 20000 values once its aliases are expanded"),
    ("alias-bomb-small-fanout", billion_laughs(30, 2), "values once its aliases are expanded"),
    ("many-aliases", "x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n", "more than 100 aliases"),
    ("self-alias", "x: &x [1, *x]\n", "the alias *x is inside what it names"),
    ("deep-flow", "x: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 32 levels deep"),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n", "nested more than 32"),
    ("list-key", "? [a, b]\n: c\n", "a key must be a plain word"),
    ("mapping-key", "{{a: b}: c}\n", "a key must be a plain word"),
    ("alias-key", "k: &k image\n*k : x\n", "a key must be a plain word"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in YAML_BOUNDS], ids=[c[0] for c in YAML_BOUNDS])
def test_yaml_bounds_stop_before_anything_is_built(text, fragment):
    with pytest.raises(ConfigError) as info:
        safe_yaml.check(text, "atbb.yaml")
    assert fragment in info.value.what
    assert info.value.what.startswith("atbb.yaml:")
    assert info.value.fix


def test_the_kits_own_atbb_yaml_is_far_inside_the_bounds():
    text = (ROOT / "atbb.yaml").read_text()
    safe_yaml.check(text, "atbb.yaml")
    assert len(text.encode()) < safe_yaml.MAX_BYTES / 4


def _kit_copy(folder: Path) -> Path:
    """A scratch kit: atbb.yaml, tasks.py and what `inv config --check` compares (like conftest's kit_copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("atbb.yaml", "tasks.py"):
        shutil.copy(ROOT / name, folder / name)
    if (ROOT / "nginx" / "nginx.conf").is_file():
        (folder / "nginx").mkdir(exist_ok=True)
        shutil.copy(ROOT / "nginx" / "nginx.conf", folder / "nginx" / "nginx.conf")
    return folder


def _with(data_change: Callable[[dict], None]) -> str:
    data = yaml.safe_load((ROOT / "atbb.yaml").read_text())
    data_change(data)
    return yaml.safe_dump(data, sort_keys=False)


def _set(path: str, value):
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data.setdefault(key, {})
        data[last] = value

    return change


# (id, atbb.yaml text or bytes, expected fragment)
CONFIG_FILES = [
    ("alias-bomb", lambda: _with(lambda d: None) + billion_laughs(), "values once its aliases are expanded"),
    ("not-utf8", lambda: (ROOT / "atbb.yaml").read_bytes().replace(b"atBB", b"at\xe9BB", 1), "not UTF-8 text"),
    ("utf16", lambda: (ROOT / "atbb.yaml").read_text().encode("utf-16"), ":1: not UTF-8 text (byte 0xff)"),
    ("oversized", lambda: _with(lambda d: None) + "#" * (safe_yaml.MAX_BYTES + 1), "larger than 128 KiB"),
    ("five-mb-name", lambda: _with(_set("image.name", "a" * 5_000_000)), "larger than 128 KiB"),
    ("long-name", lambda: _with(_set("image.name", "a" * 100_000)), "image.name: expected at most 80 characters"),
    ("huge-int", lambda: _with(lambda d: None).replace("size_budget_mb: 250", "size_budget_mb: " + "9" * 5000), ""),
    ("budget-inf", lambda: _with(lambda d: None).replace("size_budget_mb: 250", "size_budget_mb: .inf"), "finite"),
    ("budget-true", lambda: _with(_set("image.size_budget_mb", True)), "size_budget_mb: expected a whole number"),
]


@pytest.mark.parametrize(("make", "fragment"), [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES])
def test_bad_config_files_are_one_line_errors(tmp_path, make, fragment):
    content = make()
    path = tmp_path / "atbb.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert fragment in info.value.what
    assert len(str(info.value)) < 400


def test_a_5_mb_value_is_never_echoed_whole():
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "atbb.yaml", environ={"ATBB_IMAGE_BASE": "Bad Ref!!" + "x" * 400})
    assert len(str(info.value)) < 400
    assert "(409 characters)" in info.value.what


REGISTRIES = [
    ("no-dot", "myregistry", "expected a registry host like ghcr.io"),
    ("path", "ghcr.io/owner", "expected a registry host"),
    ("port", "localhost:99999", "has a port that is not a number"),
    ("long", "r" * 95 + ".io" + "x" * 10, "at most 100 characters"),
]


@pytest.mark.parametrize(("value", "fragment"), [c[1:] for c in REGISTRIES], ids=[c[0] for c in REGISTRIES])
def test_registries_are_hosts_docker_reads_as_hosts(value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "atbb.yaml", environ={"ATBB_IMAGE_REGISTRY": value})
    assert fragment in info.value.what


@pytest.mark.parametrize(("owner", "ok"), [("atBB-org", True), ("a" * 64, True), ("a" * 65, False), ("a..b", False)])
def test_owners_make_valid_repository_names(owner, ok):
    environ = {"ATBB_IMAGE_OWNER": owner}
    if ok:
        assert load_config(ROOT / "atbb.yaml", environ=environ).image.owner == owner
    else:
        with pytest.raises(ConfigError):
            load_config(ROOT / "atbb.yaml", environ=environ)


# ---------------------------------------------------------------------------------------------------------
# The corpus: bad atbb.yaml files, env files and flags, each through the real CLI in a child process.

SECRET = "5f" * 32
GOOD_ENV = {
    "DATABASE_URL": "postgres://atbb:pw-Sup3rSecret-long@postgres:5432/atbb",
    "FORUM_DID": "did:plc:abcdefghijklmnopqrstuvwx",
    "PDS_URL": "https://pds.example.com",
    "OAUTH_PUBLIC_URL": "https://forum.example.com",
    "SESSION_SECRET": SECRET,
    "POSTGRES_USER": "atbb",
    "POSTGRES_PASSWORD": "pw-Sup3rSecret-long",
    "POSTGRES_DB": "atbb",
}
CASE_SECONDS = 45  # per child process; a case that needs longer counts as a hang
GOOD_LINES = "".join(f"{k}={v}\n" for k, v in GOOD_ENV.items())


def env_text(*extra: str, drop: tuple[str, ...] = (), **replace: str) -> str:
    """The good env file with `replace`d values, `drop`ped variables and `extra` raw lines appended."""
    values = {k: replace.get(k, v) for k, v in GOOD_ENV.items() if k not in drop}
    return "".join(f"{k}={v}\n" for k, v in values.items()) + "".join(f"{line}\n" for line in extra)


def yaml_replace(old: str, new: str) -> Callable[[], str]:
    def make() -> str:
        text = (ROOT / "atbb.yaml").read_text()
        assert old in text, f"{old!r} is no longer in atbb.yaml: update the corpus case"
        return text.replace(old, new, 1)

    return make


def yaml_set(path: str, value) -> Callable[[], str]:
    return lambda: _with(_set(path, value))


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # atbb.yaml, env file, flag
    args: tuple[str, ...]  # `inv` arguments; {env}, {dir} and {dump} name files of the case's folder
    expect: str  # a fragment of the error (or warning) line
    atbb_yaml: Callable[[], str | bytes] | None = None  # run `inv` in a scratch kit with this atbb.yaml
    env: str | bytes | None = GOOD_LINES  # the content of {env} (None: not written)
    environ: dict[str, str] = field(default_factory=dict)
    code: int = 2  # expected exit code; 0 only for a value accepted with a warning naming it


def config_case(id: str, make: Callable[[], str | bytes], expect: str) -> Case:
    return Case(id, "atbb.yaml", ("config", "--check"), expect, atbb_yaml=make, env=None)


def environ_case(id: str, variables: dict[str, str], expect: str) -> Case:
    return Case(id, "atbb.yaml", ("config", "--check"), expect, env=None, environ=variables)


def env_case(id: str, content: str | bytes | None, expect: str, task: str = "migrate", code: int = 2) -> Case:
    return Case(id, "env file", (task, "--env-file", "{env}", "--dry-run"), expect, env=content, code=code)


def flag_case(id: str, args: tuple[str, ...], expect: str, code: int = 2) -> Case:
    return Case(id, "flag", args, expect, code=code)


NOT_UTF8 = (ROOT / "atbb.yaml").read_bytes
CORPUS: list[Case] = [
    # --- atbb.yaml ---------------------------------------------------------------------------------------
    config_case("yaml-alias-bomb", lambda: _with(lambda d: None) + billion_laughs(), "once its aliases are expanded"),
    config_case(
        "yaml-alias-bomb-wide", lambda: _with(lambda d: None) + billion_laughs(2, 150), "more than 100 aliases"
    ),
    config_case("yaml-many-aliases", lambda: _with(lambda d: None) + YAML_BOUNDS[2][1], "more than 100 aliases"),
    config_case("yaml-self-alias", lambda: _with(lambda d: None) + "z: &z [1, *z]\n", "inside what it names"),
    config_case("yaml-unknown-alias", lambda: _with(lambda d: None) + "z: *nowhere\n", "not valid YAML"),
    config_case("yaml-deep-nesting", lambda: "x: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than 32 levels"),
    config_case("yaml-list-key", lambda: _with(lambda d: None) + "? [a, b]\n: c\n", "a key must be a plain word"),
    config_case("yaml-latin1", lambda: NOT_UTF8().replace(b"atBB", b"at\xe9BB", 1), "not UTF-8 text (byte 0xe9)"),
    config_case("yaml-utf16", lambda: (ROOT / "atbb.yaml").read_text().encode("utf-16"), ":1: not UTF-8 text"),
    config_case("yaml-binary", lambda: bytes(range(256)) * 4, "not UTF-8 text"),
    config_case("yaml-nul", lambda: _with(lambda d: None) + "z: a\x00b\n", "not valid YAML"),
    config_case("yaml-oversized", lambda: _with(lambda d: None) + "#" * 200_000 + "\n", "larger than 128 KiB"),
    config_case("yaml-5mb-name", yaml_set("image.name", "a" * 5_000_000), "larger than 128 KiB"),
    config_case("yaml-100kb-name", yaml_set("image.name", "a" * 100_000), "image.name: expected at most 80"),
    config_case("yaml-name-81", yaml_set("image.name", "a" * 81), "image.name: expected at most 80 characters"),
    config_case("yaml-name-upper", yaml_set("image.name", "AtBB"), "'AtBB' holds upper case"),
    config_case("yaml-name-space", yaml_set("image.name", "at bb"), "is not a repository name"),
    config_case("yaml-name-empty", yaml_set("image.name", ""), "the repository name is empty"),
    config_case("yaml-name-shell", yaml_set("image.name", "atbb;id"), "is not a repository name"),
    config_case("yaml-name-list", yaml_set("image.name", ["atbb"]), "image.name: input should be a valid string"),
    config_case("yaml-base-bang", yaml_set("image.base", "Bad Ref!!"), "is not an image reference"),
    config_case("yaml-base-empty-tag", yaml_set("image.base", "node:"), "has an invalid tag"),
    config_case("yaml-base-digest", yaml_set("image.base", "node@sha256:abc"), "has a digest that is not sha256"),
    config_case("yaml-postgres-upper", yaml_set("compose.postgres_image", "Postgres:16"), "holds upper case"),
    config_case("yaml-registry-no-dot", yaml_set("image.registry", "myregistry"), "expected a registry host"),
    config_case("yaml-registry-port", yaml_set("image.registry", "ghcr.io:99999"), "port that is not a number"),
    config_case("yaml-owner-dots", yaml_set("image.owner", "a..b"), "expected a GitHub user or organisation"),
    config_case("yaml-owner-long", yaml_set("image.owner", "o" * 65), "at most 64 characters"),
    config_case("yaml-budget-inf", yaml_set("image.size_budget_mb", float("inf")), "finite number"),
    config_case("yaml-budget-nan", yaml_set("image.size_budget_mb", float("nan")), "image.size_budget_mb"),
    config_case("yaml-budget-negative", yaml_set("image.size_budget_mb", -1), "greater than 0"),
    config_case("yaml-budget-zero", yaml_set("image.size_budget_mb", 0), "greater than 0"),
    config_case("yaml-budget-huge", yaml_set("image.size_budget_mb", 10**12), "less than or equal to 10000"),
    config_case("yaml-budget-true", yaml_set("image.size_budget_mb", True), "expected a whole number, got True"),
    config_case("yaml-budget-words", yaml_set("image.size_budget_mb", "250 MB"), "valid integer"),
    config_case("yaml-budget-fraction", yaml_set("image.size_budget_mb", 1.5), "fractional part"),
    config_case("yaml-budget-5000-digits", yaml_replace("size_budget_mb: 250", "size_budget_mb: " + "9" * 5000), ""),
    config_case("yaml-port-high", yaml_set("compose.host_port", 70000), "less than or equal to 65535"),
    config_case("yaml-wait-negative", yaml_set("migrate.wait_timeout", -1), "greater than or equal to 1"),
    config_case("yaml-sha-length", yaml_set("release.sha_length", 41), "less than or equal to 40"),
    config_case("yaml-platform-upper", yaml_set("image.platforms", ["LINUX/AMD64"]), "os/arch like linux/amd64"),
    config_case("yaml-platforms-empty", yaml_set("image.platforms", []), "at least 1 item"),
    config_case("yaml-top-list", lambda: "- a\n- b\n", "expected a mapping of keys at the top level"),
    config_case("yaml-top-scalar", lambda: "just words\n", "expected a mapping of keys at the top level"),
    config_case("yaml-syntax", lambda: _with(lambda d: None) + "z: [unclosed\n", "not valid YAML"),
    config_case("yaml-tab-indent", lambda: "image:\n\tname: atbb\n", "not valid YAML"),
    config_case("yaml-duplicate-key", lambda: _with(lambda d: None) + "image: {}\n", "duplicate key"),
    config_case("yaml-unknown-key", yaml_set("image.nmae", "atbb"), "image.nmae: unknown key"),
    config_case("yaml-two-documents", lambda: _with(lambda d: None) + "---\na: 1\n", "not valid YAML"),
    environ_case("env-var-budget-inf", {"ATBB_IMAGE_SIZE_BUDGET_MB": "inf"}, "ATBB_IMAGE_SIZE_BUDGET_MB"),
    environ_case("env-var-budget-negative", {"ATBB_IMAGE_SIZE_BUDGET_MB": "-5"}, "greater than 0"),
    environ_case("env-var-name-100kb", {"ATBB_IMAGE_NAME": "a" * 100_000}, "image.name): expected at most 80"),
    environ_case("env-var-base-bad", {"ATBB_IMAGE_BASE": "Bad Ref!!"}, "ATBB_IMAGE_BASE (image.base): 'Bad Ref!!'"),
    environ_case("env-var-port", {"ATBB_COMPOSE_HOST_PORT": "-1"}, "ATBB_COMPOSE_HOST_PORT (compose.host_port)"),
    environ_case("env-var-unknown", {"ATBB_IMAGE_NMAE": "x"}, "ATBB_IMAGE_NMAE does not name a config key"),
    environ_case("env-var-config-folder", {"ATBB_CONFIG": "/tmp"}, "ATBB_CONFIG points at /tmp, which is not a file"),
    environ_case("env-var-config-device", {"ATBB_CONFIG": "/dev/zero"}, "which is not a file"),
    # --- env files ---------------------------------------------------------------------------------------
    env_case("env-latin1", GOOD_LINES.encode() + b"FORUM_HANDLE=caf\xe9\n", ".env:9: not UTF-8 text (byte 0xe9)"),
    env_case("env-utf16", GOOD_LINES.encode("utf-16"), ".env:1: not UTF-8 text"),
    env_case("env-binary", bytes(range(256)), "not UTF-8 text"),
    env_case("env-oversized", GOOD_LINES + "#" * 70_000 + "\n", "an env file is at most 64 KiB"),
    env_case("env-no-equals", env_text("LOG_LEVEL"), ".env:9: a line without `=`"),
    env_case("env-bare-secret", env_text("hunter2hunter2"), ".env:9: a line without `=`"),
    env_case("env-no-name", env_text("=info"), ".env:9: not a variable, a comment or a blank line"),
    env_case("env-unterminated", env_text('LOG_LEVEL="info'), ".env:9: not a variable, a comment or a blank line"),
    env_case("env-bad-name", env_text("LOG-LEVEL=info"), ".env:9: the name before = is not a variable name"),
    env_case("env-unknown", env_text("SESION_SECRET=x"), "SESION_SECRET is not a variable atBB reads (did you mean"),
    env_case("env-unknown-far", env_text("MY_OWN_THING=1"), ".env:9: MY_OWN_THING is not a variable atBB reads"),
    env_case("env-lower-case", env_text("log_level=info"), ".env:9: log_level is not a variable atBB reads"),
    env_case("env-duplicate", env_text("LOG_LEVEL=info", "LOG_LEVEL=debug"), "LOG_LEVEL is set again (first on line"),
    env_case("env-host-braced", env_text("FORUM_HANDLE=${HOME}"), "FORUM_HANDLE holds a $NAME or ${NAME} reference"),
    env_case("env-host-bare", env_text("FORUM_PASSWORD=ab$USER"), "FORUM_PASSWORD holds a $NAME"),
    env_case("env-host-default", env_text("LOG_LEVEL=${LOG:-info}"), "LOG_LEVEL holds a $NAME"),
    env_case("env-control", env_text("FORUM_HANDLE=a\x01b"), ".env:9: holds a control character"),
    env_case("env-nul", env_text("FORUM_HANDLE=a\x00b"), ".env:9: holds a control character"),
    env_case("env-lone-cr", GOOD_LINES + "LOG_LEVEL=info\rFORUM_HANDLE=x\n", "holds a carriage return"),
    env_case("env-empty-file", "", "missing required variable(s): DATABASE_URL"),
    env_case("env-missing-required", env_text(drop=("FORUM_DID",)), "missing required variable(s): FORUM_DID"),
    env_case("env-empty-required", env_text(PDS_URL=""), "missing required variable(s): PDS_URL"),
    env_case("env-db-mysql", env_text(DATABASE_URL="mysql://u:p@db/atbb"), "DATABASE_URL must be a postgres://"),
    env_case("env-db-port", env_text(DATABASE_URL="postgres://u:p@db:99999/atbb"), "DATABASE_URL has a port"),
    env_case("env-db-ipv6", env_text(DATABASE_URL="postgres://u:p@[::1/atbb"), "DATABASE_URL is not a well-formed"),
    env_case("env-did", env_text(FORUM_DID="forum.example.com"), "FORUM_DID must be a did:plc: or did:web: DID"),
    env_case("env-pds", env_text(PDS_URL="pds.example.com"), "PDS_URL must be an http:// or https:// URL"),
    env_case("env-oauth", env_text(OAUTH_PUBLIC_URL="ftp://x"), "OAUTH_PUBLIC_URL must be an http://"),
    env_case("env-secret-short", env_text(SESSION_SECRET="short"), "SESSION_SECRET must be at least 32 characters"),
    env_case("env-ttl-zero", env_text("SESSION_TTL_DAYS=0"), "SESSION_TTL_DAYS must be a whole number of days"),
    env_case("env-ttl-huge", env_text("SESSION_TTL_DAYS=99999999"), "from 1 to 3650"),
    env_case("env-ttl-superscript", env_text("SESSION_TTL_DAYS=²"), "SESSION_TTL_DAYS must be a whole number"),
    env_case("env-log-level", env_text("LOG_LEVEL=verbose"), "LOG_LEVEL must be one of debug, info, warn, error"),
    env_case("env-jetstream", env_text("JETSTREAM_URL=https://j.example"), "JETSTREAM_URL must be a ws://"),
    env_case("env-quoted-warns", env_text('LOG_LEVEL="info"'), "warning: .env:9: LOG_LEVEL is quoted", code=0),
    env_case("env-export-warns", env_text("export LOG_LEVEL=info"), "LOG_LEVEL starts with `export`", code=0),
    env_case("env-comment-warns", env_text("LOG_LEVEL=info # default"), "LOG_LEVEL has a # comment", code=0),
    env_case("env-spaces-warn", env_text("LOG_LEVEL = info"), "LOG_LEVEL has a space before the =", code=0),
    env_case("env-multiline-warns", env_text('FORUM_PASSWORD="a', 'b"'), "FORUM_PASSWORD spans 2 lines", code=0),
    env_case("env-compose-placeholder", (ROOT / ".env.production.example").read_text(), "placeholder", "compose-up"),
    env_case("env-compose-mismatch", env_text(POSTGRES_DB="other"), "POSTGRES_DB does not match", "compose-up"),
    env_case("env-backup-latin1", b"DATABASE_URL=postgres://u:p@db/caf\xe9\n", "not UTF-8 text", "backup"),
    env_case("env-compose-up-unknown", env_text("SESION_SECRET=x"), "did you mean SESSION_SECRET?", "compose-up"),
    flag_case("env-file-folder", ("migrate", "--env-file", "{dir}", "--dry-run"), "is a folder, not a file"),
    flag_case("env-file-missing", ("migrate", "--env-file", "{dir}/none.env", "--dry-run"), "does not exist"),
    flag_case("env-file-fifo", ("migrate", "--env-file", "{fifo}", "--dry-run"), "is not a regular file"),
    flag_case("env-file-device", ("migrate", "--env-file", "/dev/zero", "--dry-run"), "is not a regular file"),
    flag_case("env-file-long-name", ("migrate", "--env-file", "{dir}/" + "x" * 300, "--dry-run"), "cannot read env"),
    flag_case("env-file-empty", ("compose-up", "--env-file", "", "--dry-run"), "--env-file '' is not a usable path"),
    flag_case("env-file-newline", ("migrate", "--env-file", "a\nb", "--dry-run"), "is not a usable path"),
    flag_case("env-file-compose-down", ("compose-down", "--env-file", "", "--dry-run"), "is not a usable path"),
    # --- flags -------------------------------------------------------------------------------------------
    flag_case("timeout-negative", ("compose-up", "--timeout", "-1", "--dry-run"), "--timeout '-1': expected a whole"),
    flag_case("timeout-zero", ("compose-up", "--timeout", "0", "--dry-run"), "from 1 to 3600"),
    flag_case("timeout-words", ("compose-up", "--timeout", "abc", "--dry-run"), "--timeout 'abc'"),
    flag_case("timeout-huge", ("compose-up", "--timeout", "9" * 30, "--dry-run"), "from 1 to 3600"),
    flag_case("timeout-fraction", ("compose-up", "--timeout", "1.5", "--dry-run"), "--timeout '1.5'"),
    flag_case("timeout-empty", ("compose-up", "--timeout", "", "--dry-run"), "--timeout ''"),
    flag_case("smoke-timeout-negative", ("smoke", "--timeout", "-5"), "--timeout '-5': expected a whole number"),
    flag_case("smoke-timeout-words", ("smoke", "--timeout", "soon"), "--timeout 'soon'"),
    flag_case("logs-tail-negative", ("logs", "--tail", "-1"), "--tail '-1': expected a whole number from 0"),
    flag_case("logs-tail-words", ("logs", "--tail", "all"), "--tail 'all'"),
    flag_case("logs-tail-huge", ("logs", "--tail", "99999999999"), "from 0 to 1000000"),
    flag_case("logs-service", ("logs", "--service", "nginx;id"), "unknown service 'nginx;id'", code=1),
    flag_case("migrate-image-bang", ("migrate", "--env-file", "{env}", "--image", "Bad Ref!!", "--dry-run"), "--image"),
    flag_case("migrate-image-empty", ("migrate", "--env-file", "{env}", "--image", "", "--dry-run"), "is empty"),
    flag_case("migrate-image-shell", ("migrate", "--image", "atbb;id", "--dry-run"), "it holds ';'"),
    flag_case("migrate-image-5mb", ("migrate", "--image", "a" * 100_000, "--dry-run"), "at most 520 characters"),
    flag_case("compose-up-image-upper", ("compose-up", "--image", "ghcr.io/Me/atbb", "--dry-run"), "upper case"),
    flag_case("compose-up-pull-build", ("compose-up", "--env-file", "{env}", "--pull", "--build", "--dry-run"), "", 1),
    flag_case("doctor-image", ("doctor", "--image", "x y"), "--image: 'x y' is not an image reference"),
    flag_case("doctor-env-file-empty", ("doctor", "--env-file", ""), "is not a usable path"),
    flag_case("push-image", ("push", "--image", "Bad!", "--dry-run"), "--image: 'Bad!' is not an image reference"),
    flag_case("smoke-image", ("smoke", "--image", "node:-x"), "has an invalid tag"),
    flag_case("image-platform-upper", ("image", "--platform", "LINUX", "--dry-run"), "--platform: 'LINUX' is not os"),
    flag_case("image-platform-empty", ("image", "--platform", "", "--dry-run"), "an empty platform"),
    flag_case("image-platform-trailing", ("image", "--platform", "linux/amd64,", "--dry-run"), "an empty platform"),
    flag_case("image-platform-shell", ("image", "--platform", "linux/amd64;id", "--dry-run"), "is not os/arch"),
    flag_case("image-base", ("image", "--base", "Bad Ref!!", "--dry-run"), "--base: 'Bad Ref!!' is not an image"),
    flag_case("image-tag", ("image", "--tag", "atbb:dev", "--tag", "Bad Tag!", "--dry-run"), "--tag: 'Bad Tag!'"),
    flag_case("image-tag-colon", ("image", "--tag", "atbb:", "--dry-run"), "has an invalid tag ''"),
    flag_case("image-builder", ("image", "--builder", "docker", "--dry-run"), "--builder 'docker' is not one of"),
    flag_case("image-cache", ("image", "--cache", "gha,url=http://x", "--dry-run"), "--cache 'gha,url=http://x'"),
    flag_case("backup-output-proc", ("backup", "--env-file", "{env}", "--output", "/proc/x", "--dry-run"), "written"),
    flag_case("backup-output-proc-real", ("backup", "--env-file", "{env}", "--output", "/proc/x/y"), "written"),
    flag_case("backup-output-sys", ("backup", "--env-file", "{env}", "--output", "/sys/atbb"), "cannot be written"),
    flag_case("backup-output-file", ("backup", "--env-file", "{env}", "--output", "{env}"), "is not a folder"),
    flag_case("backup-output-under-file", ("backup", "--output", "{env}/sub"), "is not a folder"),
    flag_case("backup-output-empty", ("backup", "--env-file", "{env}", "--output", ""), "is not a usable path"),
    flag_case("restore-folder", ("restore", "{dir}", "--env-file", "{env}", "--dry-run"), "is a folder, not a file", 1),
    flag_case("restore-missing", ("restore", "{dir}/none.dump", "--dry-run"), "does not exist", 1),
    flag_case("restore-not-a-dump", ("restore", "{env}", "--dry-run"), "is not a pg_dump custom-format archive", 1),
    flag_case("restore-fifo", ("restore", "{fifo}", "--dry-run"), "is not a regular file", 1),
    flag_case("restore-device", ("restore", "/dev/zero", "--dry-run"), "is not a regular file", 1),
    flag_case("test-suite", ("test", "--suite", "everything", "--dry-run"), "--suite 'everything' is not a suite"),
    flag_case("test-pytest-args", ("test", "--pytest-args", '"unclosed', "--dry-run"), "--pytest-args: No closing"),
    flag_case("lint-only", ("lint", "--only", "ruff,bogus", "--dry-run"), "--only"),
    flag_case("bench-only", ("bench", "--only", "bogus"), "--only: unknown section(s) bogus", code=1),
    flag_case("bench-base", ("bench", "--base", "Bad!"), "--base: 'Bad!' is not an image reference"),
    flag_case("bench-json-empty", ("bench", "--json", ""), "--json '' is not a usable path"),
]


@dataclass(frozen=True)
class Outcome:
    case: Case
    returncode: int | None  # None: killed after CASE_SECONDS
    stderr: str
    seconds: float


def _run_case(case: Case, base: Path) -> Outcome:
    import time

    folder = base / case.id
    folder.mkdir(parents=True)
    env_path = folder / ".env"
    if case.env is not None:
        if isinstance(case.env, bytes):
            env_path.write_bytes(case.env)
        else:
            env_path.write_text(case.env, encoding="utf-8", newline="")
        env_path.chmod(0o600)
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    names = {"env": str(env_path), "dir": str(folder), "fifo": str(fifo)}
    args = [a.format(**names) if a.startswith("{") else a for a in case.args]
    cwd = ROOT
    if case.atbb_yaml is not None:
        cwd = _kit_copy(folder / "kit")
        content = case.atbb_yaml()
        target = cwd / "atbb.yaml"
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    started = time.monotonic()
    try:
        proc = run_inv(*args, cwd=cwd, env=case.environ, timeout=CASE_SECONDS)
    except Exception as exc:  # subprocess.TimeoutExpired: a hang
        return Outcome(case, None, str(exc), time.monotonic() - started)
    return Outcome(case, proc.returncode, proc.stderr + proc.stdout, time.monotonic() - started)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, request) -> dict[str, Outcome]:
    """Every case, run in parallel (each in its own folder and process): the tests below read the results."""
    from tests.unit.conftest import CORPUS_KEY

    base = tmp_path_factory.mktemp("bad-inputs")
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        outcomes = list(pool.map(lambda case: _run_case(case, base), CORPUS))
    request.config.stash[CORPUS_KEY] = outcomes
    return {o.case.id: o for o in outcomes}


def test_the_corpus_is_large_and_covers_the_three_inputs():
    kinds = {kind: sum(1 for c in CORPUS if c.kind == kind) for kind in ("atbb.yaml", "env file", "flag")}
    assert len(CORPUS) >= 100 and all(n >= 30 for n in kinds.values()), kinds
    assert len({c.id for c in CORPUS}) == len(CORPUS), "case ids must be unique"


def problems_of(outcome: Outcome) -> list[str]:
    """What is wrong with how the kit met this bad input (empty: a clean one-line refusal, or warning)."""
    case, text = outcome.case, outcome.stderr
    found = []
    if outcome.returncode is None:
        return [f"hung: no answer within {CASE_SECONDS}s"]
    if "Traceback" in text:
        found.append("printed a traceback")
    if "internal error" in text:
        found.append("reported an internal error")
    if outcome.returncode != case.code:
        found.append(f"exit code {outcome.returncode}, expected {case.code}")
    if case.expect not in text:
        found.append(f"no {case.expect!r} in the output")
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    if case.code == 0:
        if not any(line.startswith("warning: ") and case.expect in line for line in text.splitlines()):
            found.append("accepted without a warning naming the line")
    elif not errors:
        found.append("no `error:` line")
    elif " — " not in errors[-1]:
        found.append("the last error line carries no fix after ' — '")
    if any(len(line) > 600 for line in text.splitlines()):
        found.append("a line longer than 600 characters (a value echoed whole?)")
    return found


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_bad_input_is_refused_in_one_line(corpus, case):
    outcome = corpus[case.id]
    assert problems_of(outcome) == [], f"inv {' '.join(case.args)[:200]}\n{outcome.stderr[-2000:]}"


def test_the_corpus_baseline_is_accepted(tmp_path):
    """The unchanged inputs pass, so each case above fails for its one bad value, not for its setup."""
    kit = _kit_copy(tmp_path / "kit")
    assert run_inv("config", "--check", cwd=kit).returncode == 0
    env = tmp_path / ".env"
    env.write_text(GOOD_LINES)
    env.chmod(0o600)
    for task in ("migrate", "compose-up"):
        proc = run_inv(task, "--env-file", str(env), "--dry-run")
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr
    proc = run_inv("backup", "--env-file", str(env), "--output", str(tmp_path / "b"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "b").exists(), "a dry run must not create the output folder"
