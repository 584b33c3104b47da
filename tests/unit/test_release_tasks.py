"""`inv tags` and `inv push` without a registry: push order, login/push argv, credential rules, docker
error reading, the push sequence against a fake runner, GitHub step outputs, and the CLI's refusals.

The CLI tests run `inv` in scratch git repositories (git is the only process besides the interpreter);
nothing here needs a Docker engine: `inv push` is only run where it refuses, or with --dry-run.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import threading
import typing
import urllib.parse
from pathlib import Path

import pytest

from atbb_kit.commands import docker as commands
from atbb_kit.commands.base import Command, Secret
from atbb_kit.core.context import BuildContext
from atbb_kit.core.errors import KitError
from atbb_kit.core.tags import TagPlan, compute
from atbb_kit.infra import registry_api
from atbb_kit.infra.registry_api import RegistryError, parse_challenge, split_reference
from atbb_kit.infra.runner import Result, Runner
from atbb_kit.ops import publish as rt
from tests.conftest import run_inv
from tests.e2e.registry import GIT_ENV, free_port, git, kit_repo

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


class Image:
    registry, owner, name = "ghcr.io", "acme", "atbb"
    title, description, licenses = "atBB", "forum", "MIT"


class Release:
    default_branch, sha_length = "main", 7


def plan(ref: str, versions: tuple[str, ...] = ()) -> TagPlan:
    return compute(Image, Release, BuildContext(ref=ref, sha=SHA, versions=versions), "2024-01-01T00:00:00Z")


def tags_of(refs: list[str]) -> list[str]:
    return [r.rsplit(":", 1)[1] for r in refs]


# --- push order -------------------------------------------------------------------------------------------

ODD = TagPlan(
    repository="r/o/atbb",
    tags=("latest", "1", "1.2.3", "1.2"),
    version="latest",
    labels={},
    floating=frozenset({"latest", "1", "1.2"}),
)


@pytest.mark.parametrize(
    ("the_plan", "expected"),
    [
        (plan("refs/tags/v1.2.3"), ["1.2.3", "1.2", "1", "latest"]),
        (plan("refs/tags/v1.2.3", ("v1.2.3", "v1.1.0")), ["1.2.3", "1.2", "1", "latest"]),
        # Patching an old line: no `latest`, no `1`; the immutable tag still goes first.
        (plan("refs/tags/v1.2.5", ("v1.3.0",)), ["1.2.5", "1.2"]),
        (plan("refs/tags/v0.4.0"), ["0.4.0", "0.4", "latest"]),
        (plan("refs/tags/v2.0.0-rc.1"), ["2.0.0-rc.1"]),
        (plan("refs/heads/main"), ["main-0123456", "latest"]),
        # Whatever order a plan lists them in: immutable first, floating in plan order, latest last.
        (ODD, ["1.2.3", "1", "1.2", "latest"]),
    ],
)
def test_push_order(the_plan: TagPlan, expected: list[str]) -> None:
    refs = rt.push_order(the_plan)
    assert tags_of(refs) == expected
    assert all(r.startswith(the_plan.repository + ":") for r in refs)
    assert sorted(refs) == sorted(the_plan.refs)


# --- argv -------------------------------------------------------------------------------------------------


def test_login_token_goes_on_stdin_as_a_secret(tmp_path: Path) -> None:
    cmd = commands.docker_login("docker", "ghcr.io", "bot", Secret("s3cret-token"), config_dir=tmp_path)
    assert cmd.argv == ("docker", "login", "--username", "bot", "--password-stdin", "ghcr.io")
    assert isinstance(cmd.stdin, Secret) and cmd.stdin.reveal() == "s3cret-token"
    assert cmd.env == {"DOCKER_CONFIG": str(tmp_path)}
    shown = cmd.display()
    assert "s3cret-token" not in shown and "s3cret-token" not in repr(cmd)
    assert shown.endswith("<<< ***")


def test_login_refuses_a_plain_string_token() -> None:
    with pytest.raises(TypeError):
        commands.docker_login("docker", "ghcr.io", "bot", "plain")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (commands.docker_push("docker", "r/o/a:1"), ("docker", "push", "r/o/a:1")),
        (commands.docker_tag("docker", "a:1", "r/o/a:1"), ("docker", "tag", "a:1", "r/o/a:1")),
        (commands.docker_image_id("docker", "a:1"), ("docker", "image", "inspect", "--format", "{{.Id}}", "a:1")),
    ],
)
def test_registry_argv(cmd: Command, expected: tuple[str, ...]) -> None:
    assert cmd.argv == expected
    assert cmd.stdin is None


def test_push_uses_the_private_docker_config(tmp_path: Path) -> None:
    assert commands.docker_push("docker", "r/o/a:1", config_dir=tmp_path).env == {"DOCKER_CONFIG": str(tmp_path)}
    assert commands.docker_push("docker", "r/o/a:1").env == {}


# --- credentials ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "registry", "expected"),
    [
        ({}, "ghcr.io", None),
        ({"ATBB_REGISTRY_TOKEN": "t", "ATBB_REGISTRY_USER": "u"}, "ghcr.io", ("u", "ATBB_REGISTRY_TOKEN")),
        ({"ATBB_REGISTRY_TOKEN": "t", "GITHUB_ACTOR": "octo"}, "ghcr.io", ("octo", "ATBB_REGISTRY_TOKEN")),
        ({"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "octo"}, "ghcr.io", ("octo", "GITHUB_TOKEN")),
        ({"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "octo"}, "127.0.0.1:5000", ("octo", "GITHUB_TOKEN")),
        # ATBB_REGISTRY_TOKEN wins over GITHUB_TOKEN, ATBB_REGISTRY_USER over GITHUB_ACTOR.
        (
            {"ATBB_REGISTRY_TOKEN": "a", "GITHUB_TOKEN": "g", "ATBB_REGISTRY_USER": "u", "GITHUB_ACTOR": "o"},
            "registry.example",
            ("u", "ATBB_REGISTRY_TOKEN"),
        ),
        # A GitHub token is never sent to another registry.
        ({"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "octo"}, "registry.example", None),
        ({"ATBB_REGISTRY_TOKEN": "  ", "ATBB_REGISTRY_USER": "u"}, "ghcr.io", None),
    ],
)
def test_registry_login(env: dict[str, str], registry: str, expected: tuple[str, str] | None) -> None:
    login, _ = rt.registry_login(env, registry)
    if expected is None:
        assert login is None
        return
    assert login is not None
    assert (login.user, login.token_var) == expected
    assert isinstance(login.token, Secret)
    assert login.token_var in login.hint


def test_github_token_for_another_registry_says_why() -> None:
    _, notes = rt.registry_login({"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "o"}, "registry.example")
    assert notes == [
        "note: GITHUB_TOKEN is only sent to ghcr.io, not to registry.example; set ATBB_REGISTRY_TOKEN to log in there"
    ]


def test_token_without_user_is_an_error() -> None:
    with pytest.raises(KitError, match="ATBB_REGISTRY_TOKEN is set but no registry user"):
        rt.registry_login({"ATBB_REGISTRY_TOKEN": "t"}, "ghcr.io")


# --- reading docker's complaints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (
            'Error response from daemon: Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: '
            "connect: connection refused",
            "connection refused",
        ),
        (
            "Error response from daemon: login attempt to http://127.0.0.1:40123/v2/ failed with status: "
            "401 Unauthorized",
            "unauthorized",
        ),
        ("unauthorized: authentication required", "unauthorized"),
        ("Error response from daemon: Get https://ghcr.io/v2/: denied: denied", "denied"),
        ('Get "https://nope.invalid/v2/": dial tcp: lookup nope.invalid: no such host', "no such host"),
        # A port number is not a status code.
        ("manifest unknown on 127.0.0.1:14031", "manifest unknown on 127.0.0.1:14031"),
        ("", "no output"),
    ],
)
def test_failure_reason(output: str, reason: str) -> None:
    assert rt.failure_reason(output) == reason


def test_push_digest_is_read_from_docker_push_output() -> None:
    out = f"The push refers to repository [r/o/a]\nabc: Pushed\n1.2.3: digest: {DIGEST_A} size: 527\n"
    assert rt.push_digest(out) == DIGEST_A
    assert rt.push_digest("nothing") is None


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("ghcr.io/acme/atbb:1.2.3", ("ghcr.io", "acme/atbb", "1.2.3")),
        ("127.0.0.1:5000/acme/atbb:latest", ("127.0.0.1:5000", "acme/atbb", "latest")),
        ("localhost/a/b:1", ("localhost", "a/b", "1")),
    ],
)
def test_split_reference(ref: str, parts: tuple[str, str, str]) -> None:
    assert split_reference(ref) == parts


@pytest.mark.parametrize("ref", ["atbb:1.2.3", "ghcr.io/acme/atbb", "127.0.0.1:5000/acme/atbb"])
def test_split_reference_needs_registry_and_tag(ref: str) -> None:
    with pytest.raises(ValueError):
        split_reference(ref)


def test_parse_challenge() -> None:
    header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/atbb:pull"'
    assert parse_challenge(header) == (
        "bearer",
        {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:acme/atbb:pull"},
    )
    assert parse_challenge('Basic realm="atbb-test"') == ("basic", {"realm": "atbb-test"})


# --- the push sequence, against a fake runner -------------------------------------------------------------

REFS = [f"ghcr.io/acme/atbb:{t}" for t in ("1.2.3", "1.2", "1", "latest")]


class FakeRunner(Runner):
    """Answers `docker push` like the client does; `fail` maps a ref to the stderr of a failed push."""

    def __init__(self, fail: dict[str, str] | None = None, digest: str = DIGEST_A) -> None:
        super().__init__(echo=False)
        self.fail = fail or {}
        self.digest = digest
        self.pushed: list[str] = []

    def run(self, cmd: Command, **kw) -> Result:
        self.history.append(cmd)
        ref = cmd.argv[-1]
        if ref in self.fail:
            return Result(1, "The push refers to repository [ghcr.io/acme/atbb]\n", self.fail[ref])
        self.pushed.append(ref)
        line = f"{ref.rsplit(':', 1)[1]}: digest: {self.digest} size: 527\n" if self.digest else "\n"
        return Result(0, "The push refers to repository [ghcr.io/acme/atbb]\n" + line)


def run_publish(runner: FakeRunner, registry_digests: dict[str, str | None] | None = None):
    lines: list[str] = []
    digests = registry_digests or {}
    digest = rt.publish(
        runner,
        "docker",
        REFS,
        registry="ghcr.io",
        config_dir=None,
        registry_digest=lambda ref: digests.get(ref, runner.digest),
        progress=lines.append,
    )
    return digest, lines


def test_publish_pushes_in_order_and_reports_each_tag() -> None:
    runner = FakeRunner()
    digest, lines = run_publish(runner)
    assert digest == DIGEST_A
    assert runner.pushed == REFS
    assert lines == [f"pushed {i}/4 {ref} {DIGEST_A}" for i, ref in enumerate(REFS, start=1)]


@pytest.mark.parametrize("failing", REFS[:3])
def test_a_failed_push_stops_before_latest(failing: str) -> None:
    runner = FakeRunner(fail={failing: "unauthorized: authentication required\n"})
    with pytest.raises(RegistryError) as info:
        run_publish(runner)
    assert REFS[-1] not in runner.pushed
    assert runner.pushed == REFS[: REFS.index(failing)]
    message = str(info.value)
    assert f"refused the push of {failing} (unauthorized)" in message
    assert "`latest` untouched" in message
    assert "\n" not in message


def test_an_unreachable_registry_is_named() -> None:
    runner = FakeRunner(fail={REFS[1]: 'Get "https://ghcr.io/v2/": dial tcp: connect: connection refused'})
    with pytest.raises(RegistryError, match=r"registry ghcr.io is not reachable \(connection refused\); 1 of 4"):
        run_publish(runner)


def test_a_tag_that_resolves_elsewhere_stops_before_latest() -> None:
    runner = FakeRunner()
    with pytest.raises(RegistryError, match=r"resolves to sha256:b+ in the registry, not sha256:a+") as info:
        run_publish(runner, {REFS[2]: DIGEST_B})
    assert runner.pushed == REFS[:3]
    assert "`latest` untouched" in str(info.value)


def test_a_registry_query_failure_after_a_push_stops_before_latest() -> None:
    runner = FakeRunner()

    def query(ref: str) -> str:
        if ref == REFS[1]:
            raise RegistryError("registry ghcr.io is not reachable (connection refused)", "check it is up")
        return DIGEST_A

    with pytest.raises(RegistryError) as info:
        rt.publish(runner, "docker", REFS, registry="ghcr.io", config_dir=None, registry_digest=query)
    assert runner.pushed == REFS[:2]
    assert str(info.value) == (
        f"registry ghcr.io is not reachable (connection refused) while checking {REFS[1]}; 2 of 4 tags pushed, "
        "not pushed: 1, latest (`latest` untouched) — check it is up"
    )


def test_a_tag_the_registry_does_not_know_after_its_push_is_an_error() -> None:
    runner = FakeRunner(digest="")  # docker printed no digest line, and the registry has no such tag
    with pytest.raises(RegistryError, match=re.escape("does not know ghcr.io/acme/atbb:1.2.3 right after pushing")):
        run_publish(runner, dict.fromkeys(REFS))
    assert runner.pushed == REFS[:1]


def test_dry_run_pushes_nothing_and_verifies_nothing() -> None:
    runner = Runner(dry_run=True, echo=False, stream=open(os.devnull, "w"))  # noqa: SIM115
    asked: list[str] = []
    digest = rt.publish(
        runner, "docker", REFS, registry="ghcr.io", config_dir=None, registry_digest=asked.append, progress=print
    )
    assert digest is None and asked == []
    assert [c.argv[-1] for c in runner.history] == REFS


# --- GitHub step outputs ----------------------------------------------------------------------------------


def parse_github_output(text: str) -> dict[str, str]:
    """Read $GITHUB_OUTPUT the way the runner does: `name=value`, or `name<<DELIM` ... `DELIM`."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            out[line[:eq]] = line[eq + 1 :]
            continue
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        end = lines.index(delimiter, i)
        out[name] = "\n".join(lines[i:end])
        i = end + 1
    return out


def test_write_github_appends_outputs_and_summary(tmp_path: Path) -> None:
    output, summary = tmp_path / "out", tmp_path / "summary"
    output.write_text("earlier=step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    rt.write_github(env, {"tags": "a:1\na:latest", "digest": DIGEST_A}, "| table |\n")
    assert parse_github_output(output.read_text()) == {"earlier": "step", "tags": "a:1\na:latest", "digest": DIGEST_A}
    assert summary.read_text() == "| table |\n"


def test_write_github_does_nothing_outside_actions(tmp_path: Path) -> None:
    output = tmp_path / "out"
    rt.write_github({"GITHUB_OUTPUT": str(output)}, {"digest": DIGEST_A}, "x")
    assert not output.exists()


def test_push_summary_lists_every_tag() -> None:
    text = rt.github_push_summary("ghcr.io/acme/atbb", DIGEST_A, REFS)
    assert f"Digest `{DIGEST_A}`" in text
    assert [ln.split("`")[1] for ln in text.splitlines() if ln.startswith("| `")] == ["1.2.3", "1.2", "1", "latest"]


# --- the CLI in scratch repositories ----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    return {**GIT_ENV, "ATBB_IMAGE_OWNER": "acme", "DOCKER_CONFIG": str(docker_config)}


@pytest.fixture
def release_repo(tmp_path: Path) -> Path:
    return kit_repo(tmp_path / "repo", tag="v1.2.3")


EXPECTED_REFS = [f"ghcr.io/acme/atbb:{t}" for t in ("1.2.3", "1.2", "1", "latest")]


def test_inv_tags_prints_only_references(release_repo: Path, env: dict[str, str]) -> None:
    proc = run_inv("tags", cwd=release_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == EXPECTED_REFS
    assert proc.stdout.endswith("\n")


def test_inv_tags_json(release_repo: Path, env: dict[str, str]) -> None:
    proc = run_inv("tags", "--json", cwd=release_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"tags", "version", "labels", "publishable"} <= data.keys()
    assert data["tags"] == EXPECTED_REFS
    assert data["version"] == "1.2.3"
    assert data["publishable"] is True
    assert data["labels"]["org.opencontainers.image.revision"] == git(release_repo, "rev-parse", "HEAD")
    assert data["labels"]["org.opencontainers.image.version"] == "1.2.3"


def test_inv_tags_in_actions_writes_outputs_and_summary(release_repo: Path, env: dict[str, str], tmp_path: Path):
    output, summary = tmp_path / "github-output", tmp_path / "github-summary"
    actions = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/tags/v1.2.3",
        "GITHUB_SHA": git(release_repo, "rev-parse", "HEAD"),
        "GITHUB_REPOSITORY": "acme/forum",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    proc = run_inv("tags", cwd=release_repo, env={**env, **actions})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == EXPECTED_REFS
    outputs = parse_github_output(output.read_text())
    assert outputs["tags"].splitlines() == EXPECTED_REFS
    assert outputs["version"] == "1.2.3"
    assert "org.opencontainers.image.source=https://github.com/acme/forum" in outputs["labels"].splitlines()
    assert outputs["publishable"] == "true"
    assert "| `latest` | yes |" in summary.read_text()


def test_inv_tags_rejects_a_malformed_version_tag(tmp_path: Path, env: dict[str, str]) -> None:
    repo = kit_repo(tmp_path / "repo", tag="v1.2")
    proc = run_inv("tags", cwd=repo, env=env)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: tag v1.2 is not a semantic version")


def one_error_line(stderr: str) -> str:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_push_refuses_a_dirty_tree(release_repo: Path, env: dict[str, str]) -> None:
    (release_repo / "stray.txt").write_text("not committed\n")
    proc = run_inv("push", cwd=release_repo, env=env)
    assert proc.returncode == 3 and proc.stdout == ""
    assert one_error_line(proc.stderr).startswith(
        "error: not publishing: working tree has uncommitted changes — commit or stash them before pushing "
        "(changed: stray.txt)"
    )


def test_push_refuses_another_branch(release_repo: Path, env: dict[str, str]) -> None:
    git(release_repo, "checkout", "-q", "-b", "feature/x")
    proc = run_inv("push", "--dry-run", cwd=release_repo, env=env)
    assert proc.returncode == 3 and proc.stdout == ""
    assert "not publishing: branch feature/x is not the default branch" in one_error_line(proc.stderr)


def test_push_refuses_a_pull_request(release_repo: Path, env: dict[str, str]) -> None:
    actions = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/pull/7/merge",
        "GITHUB_SHA": git(release_repo, "rev-parse", "HEAD"),
        "GITHUB_REPOSITORY": "acme/forum",
    }
    proc = run_inv("push", cwd=release_repo, env={**env, **actions})
    assert proc.returncode == 3 and proc.stdout == ""
    assert "not publishing: pull request #7 builds are not published" in one_error_line(proc.stderr)


def test_push_refuses_without_an_owner(release_repo: Path, env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "ATBB_IMAGE_OWNER"}
    proc = run_inv("push", cwd=release_repo, env=env)
    assert proc.returncode == 3 and proc.stdout == ""
    assert one_error_line(proc.stderr) == (
        "error: not publishing: image owner unknown — set image.owner in atbb.yaml or ATBB_IMAGE_OWNER"
    )


def test_push_dry_run_never_shows_the_token(release_repo: Path, env: dict[str, str]) -> None:
    token = "tok-" + os.urandom(8).hex()
    creds = {"ATBB_REGISTRY_USER": "bot", "ATBB_REGISTRY_TOKEN": token}
    proc = run_inv("push", "--dry-run", cwd=release_repo, env={**env, **creds})
    assert proc.returncode == 0, proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert proc.stdout == ""
    login = next(ln for ln in proc.stderr.splitlines() if " login " in ln)
    assert re.search(r"docker login --username bot --password-stdin ghcr.io <<< \*\*\*$", login), login
    would = [ln for ln in proc.stderr.splitlines() if ln.startswith("would run ")]
    pushes = [ln.rsplit(" ", 1)[1] for ln in would if " push " in ln]
    # docker pushes only the immutable tag; the floating ones move through the registry's API afterwards.
    assert pushes == EXPECTED_REFS[:1]
    assert "dry run: would push 1.2.3 in that order" in proc.stderr
    assert "dry run: would then point the floating tags (X.Y, X, latest) at the highest builds" in proc.stderr


def test_push_only_floating_needs_no_local_image_but_a_token(release_repo: Path, env: dict[str, str]) -> None:
    proc = run_inv("push", "--only", "floating", cwd=release_repo, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert one_error_line(proc.stderr) == (
        "error: moving the floating tags (1.2, 1, latest) goes through the registry's API, which needs a token — "
        "set ATBB_REGISTRY_TOKEN and ATBB_REGISTRY_USER (in GitHub Actions GITHUB_TOKEN is used for ghcr.io)"
    )


def test_push_only_takes_a_known_stage(release_repo: Path, env: dict[str, str]) -> None:
    proc = run_inv("push", "--only", "latest", "--dry-run", cwd=release_repo, env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_error_line(proc.stderr).startswith("error: --only latest: expected immutable or floating")


# --- registry_api against an in-process fake registry -----------------------------------------------------


class FakeRegistry(http.server.BaseHTTPRequestHandler):
    """Just enough of the distribution API: one manifest, behind Basic or Bearer auth."""

    mode = "bearer"  # bearer | basic | open | no-digest-header | bad-realm
    realm_host = ""  # host:port the Bearer challenge names ("" = this server)
    manifest = b'{"schemaVersion": 2}'
    seen_auth: typing.ClassVar[list[str]] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _basic_ok(self) -> bool:
        return self.headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p").decode()

    def do_GET(self) -> None:
        self.seen_auth.append(f"GET {self.path} {self.headers.get('Authorization', '-')}")
        if self.path.startswith("/token"):
            if not self._basic_ok():
                return self._send(401)
            return self._send(200, json.dumps({"token": "tok123"}).encode())
        self._manifest(body=True)

    def do_HEAD(self) -> None:
        self.seen_auth.append(f"HEAD {self.path} {self.headers.get('Authorization', '-')}")
        self._manifest(body=False)

    def _manifest(self, body: bool) -> None:
        cls = type(self)
        auth = self.headers.get("Authorization", "")
        if cls.mode == "bearer" and auth != "Bearer tok123":
            host = cls.realm_host or f"127.0.0.1:{self.server.server_address[1]}"
            challenge = f'Bearer realm="http://{host}/token",service="fake",scope="repository:acme/atbb:pull"'
            return self._send(401, headers={"WWW-Authenticate": challenge})
        if cls.mode == "bad-realm" and not auth:
            return self._send(401, headers={"WWW-Authenticate": 'Bearer realm="file:///etc/passwd"'})
        if cls.mode == "basic" and not self._basic_ok():
            return self._send(401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        if not self.path.endswith("/manifests/1.2.3"):
            return self._send(404)
        headers = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
        if cls.mode != "no-digest-header":
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(cls.manifest).hexdigest()
        self._send(200, cls.manifest if body else b"", headers, length=len(cls.manifest))

    def _send(self, code: int, body: bytes = b"", headers=None, length: int | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)


@pytest.fixture
def fake_registry():
    FakeRegistry.seen_auth = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    FakeRegistry.mode, FakeRegistry.realm_host = "bearer", ""


MANIFEST_DIGEST = "sha256:" + hashlib.sha256(FakeRegistry.manifest).hexdigest()
CREDS = registry_api.Credentials("u", "p")


@pytest.mark.parametrize("mode", ["bearer", "basic", "open", "no-digest-header"])
def test_manifest_digest(fake_registry: str, mode: str) -> None:
    FakeRegistry.mode = mode
    assert registry_api.manifest_digest(fake_registry, "acme/atbb", "1.2.3", credentials=CREDS) == MANIFEST_DIGEST
    assert registry_api.manifest_digest(fake_registry, "acme/atbb", "9.9.9", credentials=CREDS) is None


def test_manifest_digest_refused_without_credentials(fake_registry: str) -> None:
    FakeRegistry.mode = "basic"
    with pytest.raises(RegistryError, match=r"refused the query \(needs credentials\)"):
        registry_api.manifest_digest(fake_registry, "acme/atbb", "1.2.3")


def test_credentials_only_go_to_the_registry_itself_over_http(fake_registry: str) -> None:
    # The challenge names another host (localhost vs 127.0.0.1) over plain HTTP: ask anonymously.
    FakeRegistry.realm_host = fake_registry.replace("127.0.0.1", "localhost")
    with pytest.raises(RegistryError, match=r"refused the query \(unauthorized\)"):
        registry_api.manifest_digest(fake_registry, "acme/atbb", "1.2.3", credentials=CREDS)
    assert all("Basic" not in seen for seen in FakeRegistry.seen_auth), FakeRegistry.seen_auth


def test_a_file_realm_is_refused(fake_registry: str) -> None:
    FakeRegistry.mode = "bad-realm"
    with pytest.raises(RegistryError, match="unusable token service"):
        registry_api.manifest_digest(fake_registry, "acme/atbb", "1.2.3", credentials=CREDS)


def test_an_unreachable_registry_is_one_clear_line() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(RegistryError) as info:
        registry_api.manifest_digest(f"127.0.0.1:{port}", "acme/atbb", "1.2.3", credentials=CREDS, timeout=5)
    assert str(info.value).startswith(f"registry 127.0.0.1:{port} is not reachable (connection refused)")
    assert repr(CREDS) == "Credentials(user='u', password=***)"


@pytest.mark.parametrize(
    ("registry", "url"),
    [
        ("ghcr.io", "https://ghcr.io"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("docker.io", "https://registry-1.docker.io"),
        ("10.0.0.5:5000", "https://10.0.0.5:5000"),
    ],
)
def test_base_url(registry: str, url: str) -> None:
    assert registry_api.base_url(registry) == url


def test_push_refuses_a_multi_platform_image(release_repo: Path, env: dict[str, str]) -> None:
    proc = run_inv(
        "push", "--dry-run", cwd=release_repo, env={**env, "ATBB_IMAGE_PLATFORMS": "linux/amd64,linux/arm64"}
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "a multi-platform image exists only in the buildx cache" in one_error_line(proc.stderr)


# --- floating tags: which build each one points at ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "newest_main", "main_newer", "expected"),
    [
        # Nothing published yet.
        ([], None, False, {}),
        # Only main builds: latest follows the newest one.
        (["main-aaaaaaa", "main-bbbbbbb"], "main-bbbbbbb", False, {"latest": "main-bbbbbbb"}),
        # One release: its line, its major, latest.
        (["1.2.3"], None, False, {"1.2": "1.2.3", "1": "1.2.3", "latest": "1.2.3"}),
        # The highest of each line wins, whatever order the registry lists them in; 0.x has no bare 0.
        (
            ["1.3.0", "0.9.1", "1.2.5", "1.2.3", "latest", "1.2", "1", "2.0.0-rc.1"],
            None,
            False,
            {"0.9": "0.9.1", "1.2": "1.2.5", "1.3": "1.3.0", "1": "1.3.0", "latest": "1.3.0"},
        ),
        # A higher release appeared: a patch of an older line never takes `1` or latest.
        (["1.2.3", "1.3.0", "1.2.4"], None, False, {"1.2": "1.2.4", "1.3": "1.3.0", "1": "1.3.0", "latest": "1.3.0"}),
        # A main build of the release's commit, or an older one: the release keeps latest.
        (["1.2.3", "main-0123456"], "main-0123456", False, {"1.2": "1.2.3", "1": "1.2.3", "latest": "1.2.3"}),
        # A main build past the release: latest follows main, the release lines stay.
        (["1.2.3", "main-0123456"], "main-0123456", True, {"1.2": "1.2.3", "1": "1.2.3", "latest": "main-0123456"}),
        # Prereleases never float.
        (["2.0.0-rc.1"], None, False, {}),
        # Tags that only look like versions are not releases.
        (["v1.2.3", "1.2", "01.2.3"], None, False, {}),
    ],
)
def test_floating_targets(tags, newest_main, main_newer, expected) -> None:
    targets = rt.floating_targets(tags, newest_main, lambda _release: main_newer)
    assert targets == expected
    assert list(targets)[-1:] == (["latest"] if "latest" in expected else [])


class FakeStore:
    """A registry repository in memory: tag -> digest; `on_tags` runs on every tag listing (another
    publisher acting between two of our requests)."""

    def __init__(self, tags: dict[str, str], on_tags=None, refuse: str | None = None) -> None:
        self.state = dict(tags)
        self.on_tags = on_tags
        self.refuse = refuse
        self.retags: list[tuple[str, str]] = []
        self.listings = 0

    def tags(self) -> list[str]:
        self.listings += 1
        if self.on_tags:
            self.on_tags(self)
        return list(self.state)

    def digest(self, reference: str) -> str | None:
        return self.state.get(reference)

    def retag(self, source: str, tag: str) -> str:
        if self.refuse:
            err = RegistryError(f"registry ghcr.io refused to write acme/atbb:{tag} ({self.refuse})", "token")
            err.detail = self.refuse
            raise err
        self.retags.append((tag, source))
        self.state[tag] = self.state[source]
        return self.state[tag]


def digest_of(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def test_move_floating_moves_only_what_differs_and_latest_last() -> None:
    store = FakeStore({"1.2.3": digest_of("a"), "1.2": digest_of("a"), "1.3.0": digest_of("b")})
    lines: list[str] = []
    results = rt.move_floating(store, rt.floating_targets, repository="ghcr.io/acme/atbb", progress=lines.append)
    assert [(r.tag, r.target, r.moved) for r in results] == [
        ("1.2", "1.2.3", False),
        ("1.3", "1.3.0", True),
        ("1", "1.3.0", True),
        ("latest", "1.3.0", True),
    ]
    assert store.retags == [("1.3", "1.3.0"), ("1", "1.3.0"), ("latest", "1.3.0")]
    assert lines[0] == f"kept ghcr.io/acme/atbb:1.2 at 1.2.3 {digest_of('a')}"
    assert lines[-1] == f"moved ghcr.io/acme/atbb:latest to 1.3.0 {digest_of('b')}"
    assert rt.latest_note("1.2.3", {"1.2", "1", "latest"}, results) == (
        "note: latest stays at 1.3.0, not 1.2.3: the registry holds a newer build (published after this "
        "checkout, or a release this checkout does not know)"
    )
    assert rt.latest_note("1.3.0", {"1.3", "1", "latest"}, results) is None


def test_a_higher_version_published_during_the_run_wins_latest() -> None:
    """1.2.3's run lists the registry; before it reaches `latest`, 1.4.0 is published by another run."""

    def publish_140(store: FakeStore) -> None:
        if store.listings == 3:
            store.state["1.4.0"] = digest_of("c")

    store = FakeStore({"1.2.3": digest_of("a")}, on_tags=publish_140)
    results = rt.move_floating(store, rt.floating_targets, repository="r/acme/atbb", progress=lambda _: None)
    assert store.state["latest"] == digest_of("c")
    assert store.state["1"] == digest_of("c")
    assert store.state["1.2"] == digest_of("a")
    # `1` had already moved to 1.2.3; it is moved again, to 1.4.0, before latest.
    assert [(r.tag, r.target) for r in results] == [
        ("1.2", "1.2.3"),
        ("1", "1.2.3"),
        ("1.4", "1.4.0"),
        ("1", "1.4.0"),
        ("latest", "1.4.0"),
    ]


def test_a_tag_moved_by_someone_else_right_after_ours_is_a_race_error() -> None:
    class Racing(FakeStore):
        def retag(self, source: str, tag: str) -> str:
            super().retag(source, tag)
            self.state[tag] = digest_of("someone else")
            return self.state[source]

    store = Racing({"1.2.3": digest_of("a")})
    with pytest.raises(RegistryError, match=r"another push is moving it; 1.2 not moved \(nothing moved\)"):
        rt.move_floating(store, rt.floating_targets, repository="r/acme/atbb", progress=lambda _: None)


# --- GHCR's refusals, from recorded answers ---------------------------------------------------------------

# What `docker push` printed in public reports of each refusal (docker/build-push-action#606,
# actions/runner#1039, hephaestus-build/Hephaestus#1671), and the same refusal as GHCR's HTTP API words it
# for a manifest PUT (distribution-spec error body; docker prints it as `<code>: <message>`).
GHCR_CREATE_PUSH = (
    "The push refers to repository [ghcr.io/acme/atbb]\n"
    "5f70bf18a086: Preparing\n"
    "denied: installation not allowed to Create organization package\n"
)
GHCR_WRITE_PUSH = (
    "The push refers to repository [ghcr.io/acme/atbb]\n"
    "denied: installation not allowed to Write organization package\n"
)
GHCR_WRITE_PACKAGE_PUSH = "failed to push ghcr.io/acme/atbb:1.2.3: denied: permission_denied: write_package\n"
GHCR_CREATE_BODY = b'{"errors":[{"code":"DENIED","message":"installation not allowed to Create organization package"}]}'
GHCR_WRITE_BODY = b'{"errors":[{"code":"DENIED","message":"permission_denied: write_package"}]}'

CREATE_FIX = (
    "an owner of acme allows it: organisation Settings > Packages > Package creation (tick the visibility), and "
    "Settings > Actions > General > Workflow permissions must not be read-only"
)
WRITE_FIX = (
    "in the package's settings (github.com/acme > Packages > atbb > Package settings) add this repository under "
    "Manage Actions access with the Write role"
)


@pytest.mark.parametrize(
    ("answer", "quoted", "fix"),
    [
        (GHCR_CREATE_PUSH, "denied: installation not allowed to Create organization package", CREATE_FIX),
        (GHCR_WRITE_PUSH, "denied: installation not allowed to Write organization package", WRITE_FIX),
        (
            GHCR_WRITE_PACKAGE_PUSH,
            "failed to push ghcr.io/acme/atbb:1.2.3: denied: permission_denied: write_package",
            WRITE_FIX,
        ),
        (
            registry_api.error_messages(GHCR_CREATE_BODY),
            "denied: installation not allowed to Create organization package",
            CREATE_FIX,
        ),
        (registry_api.error_messages(GHCR_WRITE_BODY), "denied: permission_denied: write_package", WRITE_FIX),
    ],
    ids=["push-create", "push-write-org", "push-write-package", "api-create", "api-write"],
)
def test_ghcr_refusals_name_the_setting(answer: str, quoted: str, fix: str) -> None:
    what, said_fix = rt.ghcr_refusal(answer, "ghcr.io/acme/atbb:1.2.3")
    assert said_fix == fix
    if fix == CREATE_FIX:
        assert what == (
            f"GHCR refused to create the package acme/atbb ({quoted}): the acme organisation does not let this "
            "repository's workflows create packages"
        )
    else:
        assert what == (
            f"GHCR refused to write to the package acme/atbb ({quoted}): it exists, but this repository has no "
            "write access to it"
        )


def test_other_refusals_are_not_mistaken_for_ghcr_settings() -> None:
    assert rt.ghcr_refusal("unauthorized: authentication required", "ghcr.io/acme/atbb:1") is None
    assert rt.ghcr_refusal("denied: requested access to the resource is denied", "ghcr.io/acme/atbb:1") is None


def test_a_ghcr_refusal_of_a_docker_push_is_one_line_with_the_setting() -> None:
    runner = FakeRunner(fail={REFS[0]: GHCR_CREATE_PUSH})
    with pytest.raises(RegistryError) as info:
        run_publish(runner)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "GHCR refused to create the package acme/atbb (denied: installation not allowed to Create organization "
        "package): the acme organisation does not let this repository's workflows create packages; 0 of 4 tags "
        "pushed, not pushed: 1.2.3, 1.2, 1, latest (`latest` untouched) — " + CREATE_FIX
    )
    assert runner.pushed == []


def test_a_ghcr_refusal_of_a_floating_move_is_one_line_with_the_setting() -> None:
    store = FakeStore({"1.2.3": digest_of("a")}, refuse=registry_api.error_messages(GHCR_WRITE_BODY))
    with pytest.raises(RegistryError) as info:
        rt.move_floating(store, rt.floating_targets, repository="ghcr.io/acme/atbb", progress=lambda _: None)
    assert str(info.value).startswith("GHCR refused to write to the package acme/atbb (denied: permission_denied")
    assert str(info.value).endswith(WRITE_FIX)


# --- the default branch's history decides between a release and a main build ------------------------------


def git_runner(repo: Path):
    def run(args):
        try:
            return True, git(repo, *args)
        except Exception:
            return False, ""

    return run


def test_newest_main_build_and_its_order_against_releases(tmp_path: Path) -> None:
    repo = kit_repo(tmp_path / "repo", tag=None)
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1.2.3")
    (repo / "NEWS").write_text("more\n")
    git(repo, "add", "NEWS")
    git(repo, "commit", "-q", "-m", "after the release")
    second = git(repo, "rev-parse", "HEAD")
    run = git_runner(repo)

    def branch_tag(sha: str) -> str:
        return f"main-{sha[:7]}"

    # The registry holds only the first commit's build: that one is the newest published main build.
    assert rt.newest_main_build(run, "main", branch_tag, {f"main-{first[:7]}", "1.2.3"}) == (f"main-{first[:7]}", first)
    assert rt.newest_main_build(run, "main", branch_tag, {f"main-{second[:7]}"}) == (f"main-{second[:7]}", second)
    assert rt.newest_main_build(run, "main", branch_tag, {"1.2.3"}) is None
    assert rt.newest_main_build(run, "trunk", branch_tag, {f"main-{second[:7]}"}) is None

    # Same commit as the release: the release wins; a later commit: main wins; an unknown release: it wins.
    assert rt.main_is_newer_than(run, first)("1.2.3") is False
    assert rt.main_is_newer_than(run, second)("1.2.3") is True
    assert rt.main_is_newer_than(run, second)("9.9.9") is False


# --- the registry API: tag lists, retagging (also of an index), refusals ---------------------------------


class WritableRegistry(http.server.BaseHTTPRequestHandler):
    """GHCR-like: Bearer tokens scoped pull or pull,push; PUT needs the push scope (a pull token gets a new
    challenge); tags/list is paginated with Link headers; `refuse` sends a recorded 403 body on PUT."""

    manifests: typing.ClassVar[dict[str, tuple[str, bytes]]] = {}
    refuse: bytes | None = None
    anonymous_ok = False
    log: typing.ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def _scope_of(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer tok-") if auth.startswith("Bearer tok-") else None

    def _challenge(self, scope: str) -> None:
        port = self.server.server_address[1]
        header = f'Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:acme/atbb:{scope}"'
        self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                   {"WWW-Authenticate": header})  # fmt: skip

    def do_GET(self) -> None:
        self.log.append(f"GET {self.path}")
        if self.path.startswith("/token"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            scope = query["scope"][0].rsplit(":", 1)[1]
            return self._send(200, json.dumps({"token": f"tok-{scope}"}).encode())
        if self._scope_of() is None and not type(self).anonymous_ok:
            return self._challenge("pull")
        if self.path.startswith("/v2/acme/atbb/tags/list"):
            names = sorted(type(self).manifests)
            last = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("last", [""])[0]
            page = [n for n in names if n > last][:2]
            headers = {}
            if len(page) == 2 and page[-1] != names[-1]:
                headers["Link"] = f'</v2/acme/atbb/tags/list?n=2&last={page[-1]}>; rel="next"'
            return self._send(200, json.dumps({"name": "acme/atbb", "tags": page}).encode(), headers)
        self._manifest(body=True)

    def do_HEAD(self) -> None:
        if self._scope_of() is None and not type(self).anonymous_ok:
            return self._challenge("pull")
        self._manifest(body=False)

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.log.append(f"PUT {self.path} {self._scope_of()}")
        if self._scope_of() != "pull,push":
            return self._challenge("pull,push")
        if type(self).refuse:
            return self._send(403, type(self).refuse)
        tag = self.path.rsplit("/", 1)[1]
        type(self).manifests[tag] = (self.headers["Content-Type"], body)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self._send(201, b"", {"Docker-Content-Digest": digest})

    def _manifest(self, body: bool) -> None:
        ref = self.path.rsplit("/", 1)[1]
        found = type(self).manifests.get(ref)
        if found is None:
            return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
        media_type, data = found
        headers = {"Content-Type": media_type, "Docker-Content-Digest": "sha256:" + hashlib.sha256(data).hexdigest()}
        self._send(200, data if body else b"", headers, length=len(data))

    def _send(self, code: int, body: bytes = b"", headers=None, length: int | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)


INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "1" * 64,
                "size": 9,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
        ],
    }
).encode()


@pytest.fixture
def writable_registry():
    WritableRegistry.manifests = {
        "1.2.3": ("application/vnd.oci.image.index.v1+json", INDEX),
        "1.2.4": ("application/vnd.docker.distribution.manifest.v2+json", b'{"schemaVersion": 2, "x": 1}'),
        "main-0123456": ("application/vnd.oci.image.manifest.v1+json", b'{"schemaVersion": 2, "y": 2}'),
    }
    WritableRegistry.refuse, WritableRegistry.anonymous_ok, WritableRegistry.log = None, False, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WritableRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tags_follow_pagination(writable_registry: str) -> None:
    repo = registry_api.Repository(writable_registry, "acme/atbb", credentials=CREDS)
    assert sorted(repo.tags()) == ["1.2.3", "1.2.4", "main-0123456"]
    # The first page twice (anonymous, then with the token), then the page its Link header names.
    assert [line for line in WritableRegistry.log if "/tags/list" in line] == [
        "GET /v2/acme/atbb/tags/list?n=1000",
        "GET /v2/acme/atbb/tags/list?n=1000",
        "GET /v2/acme/atbb/tags/list?n=2&last=1.2.4",
    ]


def test_retag_copies_an_index_byte_for_byte_with_a_push_token(writable_registry: str) -> None:
    repo = registry_api.Repository(writable_registry, "acme/atbb", credentials=CREDS)
    index_digest = "sha256:" + hashlib.sha256(INDEX).hexdigest()
    assert repo.digest("1.2.3") == index_digest
    assert repo.retag("1.2.3", "latest") == index_digest
    assert WritableRegistry.manifests["latest"] == ("application/vnd.oci.image.index.v1+json", INDEX)
    assert repo.digest("latest") == index_digest
    # Before writing, the client traded its pull token for a pull,push one, like the docker client does.
    assert [line for line in WritableRegistry.log if line.startswith("PUT")] == [
        "PUT /v2/acme/atbb/manifests/latest pull,push"
    ]
    assert any("scope=repository%3Aacme%2Fatbb%3Apull%2Cpush" in line for line in WritableRegistry.log)


def test_a_write_refused_with_a_new_challenge_is_retried_once_with_its_scope(writable_registry: str) -> None:
    # A registry whose challenges name no scope: the first PUT goes out with the pull token, gets a
    # challenge for pull,push, and is sent again once.
    repo = registry_api.Repository(writable_registry, "acme/atbb", credentials=CREDS)
    repo.digest("1.2.3")
    repo.client.challenge = repo.client.challenge.replace(',scope="repository:acme/atbb:pull"', "")
    assert repo.retag("1.2.4", "1.2") == "sha256:" + hashlib.sha256(WritableRegistry.manifests["1.2.4"][1]).hexdigest()
    assert [line for line in WritableRegistry.log if line.startswith("PUT")] == [
        "PUT /v2/acme/atbb/manifests/1.2 pull",
        "PUT /v2/acme/atbb/manifests/1.2 pull,push",
    ]


def test_a_refused_retag_keeps_ghcrs_words(writable_registry: str) -> None:
    WritableRegistry.refuse = GHCR_CREATE_BODY
    repo = registry_api.Repository(writable_registry, "acme/atbb", credentials=CREDS)
    with pytest.raises(RegistryError) as info:
        repo.retag("1.2.3", "latest")
    assert info.value.detail == "denied: installation not allowed to Create organization package"
    store_error = rt.ghcr_refusal(info.value.detail, "ghcr.io/acme/atbb:latest")
    assert store_error is not None and store_error[1] == CREATE_FIX


def test_private_package_note(writable_registry: str) -> None:
    ref = f"{writable_registry}/acme/atbb:1.2.3"

    def anonymous(r: str) -> str | None:
        host, path, tag = split_reference(r)
        # No credentials at all: what an operator's `docker pull` without a login gets.
        return registry_api.Repository(host, path).digest(tag) if WritableRegistry.anonymous_ok else _refuse(host)

    def _refuse(host: str) -> str:
        raise RegistryError(f"registry {host} refused the query (unauthorized)", "log in")

    assert rt.private_package_note(writable_registry, ref, anonymous_digest=anonymous) == (
        f"note: {writable_registry}/acme/atbb cannot be pulled without a login (the package is private); to let "
        "operators pull it: Package settings > Danger Zone > Change visibility > Public"
    )
    WritableRegistry.anonymous_ok = True
    assert rt.private_package_note(writable_registry, ref, anonymous_digest=anonymous) is None
