"""Bad input, as a user meets it: tables of hostile or malformed values, and the bad-input corpus.

The corpus (CORPUS, at the end) runs every case through the real CLI in a child process, with a time
limit each, and requires of every one: a non-zero exit, the expected `error: <what> — <fix>` line, no
traceback and no "internal error". Its size is printed in the terminal summary (see conftest.py here).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from atbb_kit import imageref, safe_yaml
from atbb_kit.config import load_config
from atbb_kit.errors import ConfigError
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
