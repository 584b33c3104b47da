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
from pathlib import Path

import pytest

from atbb_kit import commands, registry_api
from atbb_kit import publish as rt
from atbb_kit.context import BuildContext
from atbb_kit.errors import KitError
from atbb_kit.registry_api import RegistryError, parse_challenge, split_reference
from atbb_kit.runner import Command, Result, Runner, Secret
from atbb_kit.tags import TagPlan, compute
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
        (
            commands.docker_repo_digests("docker", "a:1"),
            ("docker", "image", "inspect", "--format", "{{json .RepoDigests}}", "a:1"),
        ),
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
    assert pushes == EXPECTED_REFS
    assert "dry run: would push 1.2.3, 1.2, 1, latest in that order" in proc.stderr


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
