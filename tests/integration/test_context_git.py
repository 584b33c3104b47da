"""read_context against real git repositories built in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from atbb_kit.core.tags import compute
from atbb_kit.infra.checkout import read_context, run_git


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's git config (signing, hooks, default branch) out of these repositories."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "test@example.com")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, name: str, content: str = "x\n") -> str:
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / ".gitignore").write_text(".env\n")
    git(path, "add", ".gitignore")
    commit(path, "README.md")
    return path


def test_clean_branch(repo: Path) -> None:
    ctx = read_context({}, repo)
    assert ctx.ref == "refs/heads/main"
    assert ctx.sha == git(repo, "rev-parse", "HEAD")
    assert not ctx.dirty
    assert ctx.changes == ()
    assert (ctx.repository, ctx.owner, ctx.problem) == (None, None, None)
    assert not ctx.in_actions


@pytest.mark.parametrize(
    ("url", "repository", "server_url"),
    [
        ("https://github.com/Acme/atbb.git", "Acme/atbb", "https://github.com"),
        ("git@github.com:acme/forum.git", "acme/forum", "https://github.com"),
        ("https://gitlab.example.org/group/sub/app", "group/sub/app", "https://gitlab.example.org"),
    ],
)
def test_origin_remote(repo: Path, url: str, repository: str, server_url: str) -> None:
    git(repo, "remote", "add", "origin", url)
    ctx = read_context({}, repo)
    assert (ctx.repository, ctx.owner, ctx.server_url) == (repository, repository.split("/")[0], server_url)


def test_remote_url_rewrites_apply(repo: Path) -> None:
    git(repo, "config", "url.git@github.com:.insteadOf", "gh:")
    git(repo, "remote", "add", "origin", "gh:acme/atbb.git")
    assert read_context({}, repo).repository == "acme/atbb"


def test_versions_and_detached_release_checkout(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1.0.0")
    git(repo, "tag", "nightly")
    second = commit(repo, "b.txt")
    git(repo, "tag", "-a", "v1.1.0", "-m", "release 1.1.0")
    git(repo, "tag", "1.1.1-rc.1")
    commit(repo, "c.txt")

    on_branch = read_context({}, repo)
    assert sorted(on_branch.versions) == ["1.1.1-rc.1", "v1.0.0", "v1.1.0"]
    assert on_branch.ref == "refs/heads/main"

    git(repo, "checkout", "-q", "v1.1.0")  # annotated: must be peeled to the commit
    detached = read_context({}, repo)
    assert (detached.ref, detached.sha) == ("refs/tags/v1.1.0", second)

    git(repo, "checkout", "-q", first)
    assert read_context({}, repo).ref == "refs/tags/v1.0.0"

    git(repo, "checkout", "-q", "main~1")
    git(repo, "checkout", "-q", "HEAD~1")
    git(repo, "commit", "-q", "--allow-empty", "-m", "detached work")
    untagged = read_context({}, repo)
    assert untagged.ref is None
    assert untagged.sha == git(repo, "rev-parse", "HEAD")


def test_branch_with_slash(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/Login")
    assert read_context({}, repo).ref == "refs/heads/feature/Login"


def test_modified_staged_untracked_and_renamed_files_are_dirty(repo: Path) -> None:
    commit(repo, "keep.txt")
    (repo / "README.md").write_text("changed\n")
    git(repo, "mv", "keep.txt", "moved.txt")
    (repo / "notes.txt").write_text("scratch\n")
    ctx = read_context({}, repo)
    assert ctx.dirty
    assert sorted(ctx.changes) == ["README.md", "moved.txt", "notes.txt"]


def test_only_untracked_file_is_dirty(repo: Path) -> None:
    (repo / "scratch.txt").write_text("x\n")
    assert read_context({}, repo).changes == ("scratch.txt",)


def test_ignored_files_are_not_dirty(repo: Path) -> None:
    (repo / ".env").write_text("SESSION_SECRET=x\n")
    assert not read_context({}, repo).dirty


def test_actions_reads_env_and_only_tags_from_git(repo: Path) -> None:
    git(repo, "tag", "v2.0.0")
    (repo / "README.md").write_text("build output\n")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/tags/v1.5.0",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REPOSITORY": "acme/atbb",
        "GITHUB_REPOSITORY_OWNER": "acme",
    }
    ctx = read_context(env, repo)
    assert (ctx.ref, ctx.sha, ctx.versions, ctx.dirty) == ("refs/tags/v1.5.0", "a" * 40, ("v2.0.0",), False)
    image = SimpleNamespace(registry="ghcr.io", owner="", name="atbb", title="t", description="d", licenses="MIT")
    plan = compute(image, SimpleNamespace(default_branch="main", sha_length=7), ctx, "2025-01-01T00:00:00Z")
    assert plan.refs == ("ghcr.io/acme/atbb:1.5.0", "ghcr.io/acme/atbb:1.5", "ghcr.io/acme/atbb:1")


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    ctx = read_context({}, tmp_path)
    assert (ctx.ref, ctx.sha) == ("refs/heads/main", None)
    assert ctx.problem == "the repository has no commits yet"


def test_not_a_repository(tmp_path: Path) -> None:
    ctx = read_context({}, tmp_path)
    assert (ctx.ref, ctx.sha, ctx.versions) == (None, None, ())
    assert "not a git repository" in (ctx.problem or "")


def test_git_missing(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    ctx = read_context({}, repo)
    assert (ctx.ref, ctx.sha) == (None, None)
    assert ctx.problem == "git is not installed or not on PATH"


def test_missing_folder_is_not_reported_as_missing_git(tmp_path: Path) -> None:
    ctx = read_context({}, tmp_path / "gone")
    assert ctx.sha is None
    assert "gone" in (ctx.problem or "")
    assert "not installed" not in (ctx.problem or "")


def test_run_git_reports_each_command(repo: Path) -> None:
    head, bad = run_git(repo, [("rev-parse", "HEAD"), ("no-such-command",)])
    assert head.ok and len(head.stdout.strip()) == 40
    assert not bad.ok and bad.error()


def test_read_context_is_fast(repo: Path) -> None:
    for n in range(20):
        git(repo, "tag", f"v0.{n}.0")
    read_context({}, repo)
    start = time.perf_counter()
    for _ in range(5):
        read_context({}, repo)
    assert (time.perf_counter() - start) / 5 < 0.2
