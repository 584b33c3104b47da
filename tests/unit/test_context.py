"""BuildContext from GitHub Actions variables and from git's output, without running git."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from atbb_kit.core.context import (
    REMOTE_ARGS,
    STATUS_ARGS,
    TAGS_ARGS,
    BuildContext,
    GitResult,
    Remote,
    context_from_actions,
    context_from_git,
    parse_remote_url,
    parse_status,
    parse_tag_refs,
    pick_head_tag,
    read_context,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"
ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REF": "refs/tags/v1.2.3",
    "GITHUB_SHA": SHA,
    "GITHUB_REPOSITORY": "Acme/atbb",
    "GITHUB_REPOSITORY_OWNER": "Acme",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_EVENT_NAME": "push",
}


def ok(stdout: str) -> GitResult:
    return GitResult(0, stdout, "")


def failed(stderr: str, code: int = 128) -> GitResult:
    return GitResult(code, "", stderr)


def status_text(*records: str) -> str:
    return "".join(f"{r}\0" for r in records)


class FakeGit:
    """Answers git commands from a table and remembers what was asked."""

    def __init__(self, answers: dict[tuple[str, ...], GitResult]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, cwd: Path, commands: Sequence[Sequence[str]]) -> list[GitResult]:
        self.calls += [tuple(c) for c in commands]
        return [self.answers.get(tuple(c), failed("unexpected")) for c in commands]


# Actions


def test_actions_reads_github_variables() -> None:
    ctx = context_from_actions(ACTIONS, versions=["v1.2.3", "v1.0.0"])
    assert ctx == BuildContext(
        ref="refs/tags/v1.2.3",
        sha=SHA,
        repository="Acme/atbb",
        owner="Acme",
        server_url="https://github.com",
        versions=("v1.2.3", "v1.0.0"),
        dirty=False,
        in_actions=True,
        event="push",
    )


def test_actions_owner_falls_back_to_repository() -> None:
    env = {**ACTIONS, "GITHUB_REPOSITORY_OWNER": ""}
    assert context_from_actions(env).owner == "Acme"


def test_actions_enterprise_server_url_loses_trailing_slash() -> None:
    env = {**ACTIONS, "GITHUB_SERVER_URL": "https://ghe.corp.example/"}
    assert context_from_actions(env).server_url == "https://ghe.corp.example"


def test_actions_pull_request_ref() -> None:
    env = {**ACTIONS, "GITHUB_REF": "refs/pull/42/merge", "GITHUB_EVENT_NAME": "pull_request"}
    ctx = context_from_actions(env)
    assert (ctx.ref, ctx.event) == ("refs/pull/42/merge", "pull_request")


@pytest.mark.parametrize(
    ("sha", "problem"),
    [("", "GITHUB_SHA is not set"), ("abc123", "is not a full commit sha"), ("z" * 40, "not a full commit sha")],
)
def test_actions_bad_sha_is_a_problem_not_a_crash(sha: str, problem: str) -> None:
    ctx = context_from_actions({**ACTIONS, "GITHUB_SHA": sha})
    assert ctx.sha is None
    assert problem in (ctx.problem or "")


def test_actions_missing_everything() -> None:
    ctx = context_from_actions({"GITHUB_ACTIONS": "true"})
    assert (ctx.ref, ctx.sha, ctx.repository, ctx.owner) == (None, None, None, None)
    assert ctx.server_url == "https://github.com"


def test_actions_accepts_sha256_repositories() -> None:
    assert context_from_actions({**ACTIONS, "GITHUB_SHA": "a" * 64}).sha == "a" * 64


def test_read_context_in_actions_asks_git_only_for_tags() -> None:
    git = FakeGit({TAGS_ARGS: ok(f"v1.0.0 {OTHER} \nv1.2.3 {OTHER} {SHA}\n")})
    ctx = read_context(ACTIONS, Path("."), git=git)
    assert git.calls == [TAGS_ARGS]
    assert ctx.versions == ("v1.0.0", "v1.2.3")
    assert ctx.ref == "refs/tags/v1.2.3"
    assert not ctx.dirty


def test_read_context_in_actions_without_git() -> None:
    git = FakeGit({TAGS_ARGS: failed("git is not installed or not on PATH", 127)})
    ctx = read_context(ACTIONS, Path("."), git=git)
    assert ctx.versions == ()
    assert ctx.sha == SHA


@pytest.mark.parametrize("value", ["false", "", "1", "TRUE"])
def test_only_github_actions_true_means_actions(value: str) -> None:
    git = FakeGit({STATUS_ARGS: ok(status_text(f"# branch.oid {SHA}", "# branch.head main"))})
    ctx = read_context({**ACTIONS, "GITHUB_ACTIONS": value}, Path("."), git=git)
    assert git.calls == [STATUS_ARGS, TAGS_ARGS, REMOTE_ARGS]
    assert not ctx.in_actions
    assert ctx.ref == "refs/heads/main"
    assert ctx.repository is None


# git


def test_git_branch_remote_and_tags() -> None:
    git = FakeGit(
        {
            STATUS_ARGS: ok(status_text(f"# branch.oid {SHA}", "# branch.head feature/x", "# branch.ab +0 -0")),
            TAGS_ARGS: ok(f"v1.2.3 {SHA} \n"),
            REMOTE_ARGS: ok("git@github.com:Acme/atbb.git\n"),
        }
    )
    ctx = read_context({}, Path("."), git=git)
    assert ctx == BuildContext(
        ref="refs/heads/feature/x",
        sha=SHA,
        repository="Acme/atbb",
        owner="Acme",
        versions=("v1.2.3",),
    )


def test_git_detached_head_takes_the_highest_version_tag_on_it() -> None:
    status = ok(status_text(f"# branch.oid {SHA}", "# branch.head (detached)"))
    tags = ok(f"v1.0.0 {OTHER} \nv1.2.3-rc.1 {SHA} \nv1.2.3 {OTHER} {SHA}\nv0.9.0 {OTHER} \n")
    ctx = context_from_git(status, tags, failed("error: No such remote 'origin'", 2))
    assert ctx.ref == "refs/tags/v1.2.3"
    assert ctx.versions == ("v1.0.0", "v1.2.3-rc.1", "v1.2.3", "v0.9.0")
    assert (ctx.repository, ctx.owner) == (None, None)


def test_git_detached_head_without_tag_has_no_ref() -> None:
    status = ok(status_text(f"# branch.oid {SHA}", "# branch.head (detached)"))
    ctx = context_from_git(status, ok(f"v1.0.0 {OTHER} \n"), failed("no origin", 2))
    assert (ctx.ref, ctx.sha, ctx.problem) == (None, SHA, None)


def test_git_branch_wins_over_a_tag_on_the_same_commit() -> None:
    status = ok(status_text(f"# branch.oid {SHA}", "# branch.head main"))
    assert context_from_git(status, ok(f"v1.0.0 {SHA} \n"), failed("", 2)).ref == "refs/heads/main"


def test_git_not_a_repository() -> None:
    status = failed("fatal: not a git repository (or any of the parent directories): .git\n")
    ctx = context_from_git(status, failed("fatal: not a git repository"), failed("fatal: not a git repository"))
    assert (ctx.ref, ctx.sha) == (None, None)
    assert ctx.problem == "not a git repository (or any of the parent directories): .git"


def test_git_no_commits_yet() -> None:
    status = ok(status_text("# branch.oid (initial)", "# branch.head main", "? new.txt"))
    ctx = context_from_git(status, ok(""), failed("", 2))
    assert (ctx.ref, ctx.sha) == ("refs/heads/main", None)
    assert ctx.problem == "the repository has no commits yet"


def test_git_dirty_tree() -> None:
    status = ok(status_text(f"# branch.oid {SHA}", "# branch.head main", "1 .M N... 100644 100644 100644 a b x.py"))
    ctx = context_from_git(status, ok(""), failed("", 2))
    assert ctx.dirty
    assert ctx.changes == ("x.py",)


def test_git_error_message_is_the_first_line_without_fatal() -> None:
    assert failed("\nfatal: detected dubious ownership in repository at '/w'\nhint: ...").error() == (
        "detected dubious ownership in repository at '/w'"
    )
    assert failed("", 3).error() == "git exited 3"


# Pure parsers


def test_parse_status_records() -> None:
    text = status_text(
        f"# branch.oid {SHA}",
        "# branch.head main",
        "# branch.upstream origin/main",
        "1 M. N... 100644 100644 100644 aaa bbb src/with space.ts",
        "2 R. N... 100644 100644 100644 aaa bbb R100 new name.txt",
        "old name.txt",
        "u UU N... 100644 100644 100644 100644 a b c conflict.txt",
        "? untracked dir/",
    )
    assert parse_status(text) == (
        SHA,
        "main",
        ("src/with space.ts", "new name.txt", "conflict.txt", "untracked dir/"),
    )


def test_parse_status_clean_and_detached() -> None:
    assert parse_status(status_text(f"# branch.oid {SHA}", "# branch.head (detached)")) == (SHA, None, ())
    assert parse_status("") == (None, None, ())


def test_parse_tag_refs_peels_annotated_tags() -> None:
    text = f"v1.0.0 {OTHER} \nv2.0.0 {OTHER} {SHA}\n\nbroken\n"
    assert parse_tag_refs(text) == [("v1.0.0", OTHER), ("v2.0.0", SHA)]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["v1.2.3", "v1.10.0", "v1.9.9"], "v1.10.0"),
        (["v2.0.0-rc.1", "v2.0.0"], "v2.0.0"),
        (["v1.3.0-rc.1", "v1.2.0"], "v1.2.0"),
        (["v1.3.0-rc.1", "v1.3.0-rc.2"], "v1.3.0-rc.2"),
        (["1.0.0", "v0.9.0"], "1.0.0"),
        (["v1.2", "v1.x"], "v1.2"),
        (["v1.2", "v0.1.0"], "v0.1.0"),
        ([], None),
    ],
)
def test_pick_head_tag(names: list[str], expected: str | None) -> None:
    assert pick_head_tag(names) == expected


GH = "https://github.com"
REMOTES = [
    ("https://github.com/Acme/atbb.git", Remote("github.com", "Acme", "Acme/atbb", GH)),
    ("https://github.com/acme/atbb", Remote("github.com", "acme", "acme/atbb", GH)),
    ("https://github.com/acme/atbb/", Remote("github.com", "acme", "acme/atbb", GH)),
    ("https://github.com/acme/atbb.git/\n", Remote("github.com", "acme", "acme/atbb", GH)),
    ("https://x-access-token:ghs_secret@github.com/acme/atbb.git", Remote("github.com", "acme", "acme/atbb", GH)),
    ("http://git.local:3000/team/forum.git", Remote("git.local", "team", "team/forum", "http://git.local:3000")),
    ("https://GitLab.com/group/sub/repo.git", Remote("gitlab.com", "group", "group/sub/repo", "https://gitlab.com")),
    ("git@github.com:acme/atbb.git", Remote("github.com", "acme", "acme/atbb", GH)),
    ("github.com:acme/atbb", Remote("github.com", "acme", "acme/atbb", GH)),
    ("git@gitlab.com:group/repo.git", Remote("gitlab.com", "group", "group/repo", "https://gitlab.com")),
    ("git@github-work:acme/atbb.git", Remote("github-work", "acme", "acme/atbb", GH)),
    ("git@github.com-work:acme/atbb.git", Remote("github.com-work", "acme", "acme/atbb", GH)),
    ("ssh://git@github.com/acme/atbb.git", Remote("github.com", "acme", "acme/atbb", GH)),
    ("ssh://git@ssh.github.com:443/acme/atbb.git", Remote("ssh.github.com", "acme", "acme/atbb", GH)),
    ("ssh://git@git.corp.example:2222/a/b", Remote("git.corp.example", "a", "a/b", "https://git.corp.example")),
    ("git://github.com/acme/atbb.git", Remote("github.com", "acme", "acme/atbb", GH)),
    ("/srv/git/atbb.git", None),
    ("../atbb", None),
    ("file:///srv/git/atbb.git", None),
    ("C:/repos/atbb", None),
    ("https://github.com/atbb", None),
    ("ssh://git@host/~user/repo.git", None),
    ("", None),
]


@pytest.mark.parametrize(("url", "expected"), REMOTES, ids=[u.strip() or "empty" for u, _ in REMOTES])
def test_parse_remote_url(url: str, expected: Remote | None) -> None:
    assert parse_remote_url(url) == expected


def test_parse_remote_url_never_keeps_credentials() -> None:
    remote = parse_remote_url("https://user:hunter2@github.com/acme/atbb.git")
    assert remote is not None
    assert "hunter2" not in repr(remote)
