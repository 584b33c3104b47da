"""Where a build comes from: GitHub Actions' environment, else the local git clone.

`read_context` never fails. What it cannot learn stays None and `problem` says why; `tags.compute`
raises a `ReleaseError` only when it needs the missing value. Nothing here starts a process: `read_context`
is handed a function that runs the read-only git queries (infra/checkout.run_git, through the Runner, so
they also run in dry-run mode); everything else is a pure parser that the unit tests feed with text.

Decisions:
- Outside Actions the ref is the checked-out branch. On a detached HEAD it is the highest version tag
  on HEAD, stable before prerelease (`git checkout v1.2.3` is how a release is rebuilt locally). A
  branch wins over tags on the same commit: from a branch you get branch tags, a release comes from
  its tag.
- Dirty means tracked changes (staged or not) or untracked files that are not ignored. `docker build`
  sends the working directory, so an untracked file can end up in an image whose revision label names a
  clean commit. Ignored files (.env, node_modules, dist) do not count: .dockerignore keeps them out.
- In Actions the tree is never dirty: the checkout is fresh and earlier steps may leave build output.
- `versions` holds every tag named `v*` or starting with a digit (release tags may omit the `v`), as
  written, invalid ones included: `tags.compute` ignores what is not semver. In Actions this needs the
  tags fetched (actions/checkout `fetch-depth: 0`); a shallow checkout only knows the pushed tag.
- Outside Actions there are three git calls, started together so the wall time is about that of one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import semver

DEFAULT_SERVER_URL = "https://github.com"

# SHA-256 repositories have 64-digit object names.
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# --no-optional-locks: a read must never take index.lock away from an editor or another git.
STATUS_ARGS = ("--no-optional-locks", "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal")
# Ref names cannot contain spaces, so a space separates the fields; `*objectname` is the commit an
# annotated tag points at (empty for lightweight tags).
TAGS_ARGS = (
    "for-each-ref",
    "--format=%(refname:strip=2) %(objectname) %(*objectname)",
    "refs/tags/v*",
    "refs/tags/[0-9]*",
)
REMOTE_ARGS = ("remote", "get-url", "origin")


@dataclass(frozen=True)
class BuildContext:
    ref: str | None = None
    sha: str | None = None
    repository: str | None = None
    owner: str | None = None
    server_url: str = DEFAULT_SERVER_URL
    versions: tuple[str, ...] = ()
    dirty: bool = False
    in_actions: bool = False
    # Paths git reports as changed or untracked, for the message that refuses a dirty publish.
    changes: tuple[str, ...] = ()
    # GITHUB_EVENT_NAME: pull_request_target runs with the base branch's ref and must not publish.
    event: str | None = None
    # Why ref or sha could not be read (git missing, not a repository, no commits, ...).
    problem: str | None = None


class GitResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error(self) -> str:
        """The first line of git's complaint, without the `fatal: ` noise."""
        line = next((ln for ln in self.stderr.splitlines() if ln.strip()), f"git exited {self.returncode}")
        return line.removeprefix("fatal: ").removeprefix("error: ").strip()


GitRunner = Callable[[Path, Sequence[Sequence[str]]], list[GitResult]]


def read_context(environ: Mapping[str, str], cwd: Path, *, git: GitRunner) -> BuildContext:
    """Read the build's ref, commit, repository and release tags; never raises. `git` runs read-only git
    commands in `cwd` (infra/checkout.run_git through the Runner; the unit tests pass canned answers)."""
    if environ.get("GITHUB_ACTIONS") == "true":
        (tags,) = git(cwd, [TAGS_ARGS])
        versions = [name for name, _ in parse_tag_refs(tags.stdout)] if tags.ok else []
        return context_from_actions(environ, versions=versions)
    status, tags, remote = git(cwd, [STATUS_ARGS, TAGS_ARGS, REMOTE_ARGS])
    return context_from_git(status, tags, remote)


def context_from_actions(environ: Mapping[str, str], versions: Sequence[str] = ()) -> BuildContext:
    """GitHub's own variables are the truth in Actions: the checkout may be a detached merge commit."""
    sha = (environ.get("GITHUB_SHA") or "").strip().lower()
    repository = (environ.get("GITHUB_REPOSITORY") or "").strip() or None
    owner = (environ.get("GITHUB_REPOSITORY_OWNER") or "").strip() or None
    if owner is None and repository and "/" in repository:
        owner = repository.split("/", 1)[0]
    problem = None
    if not sha:
        problem = "GITHUB_SHA is not set"
    elif not _SHA.fullmatch(sha):
        problem = f"GITHUB_SHA={sha!r} is not a full commit sha"
    return BuildContext(
        ref=(environ.get("GITHUB_REF") or "").strip() or None,
        sha=sha if _SHA.fullmatch(sha) else None,
        repository=repository,
        owner=owner,
        server_url=(environ.get("GITHUB_SERVER_URL") or "").strip().rstrip("/") or DEFAULT_SERVER_URL,
        versions=tuple(versions),
        in_actions=True,
        event=(environ.get("GITHUB_EVENT_NAME") or "").strip() or None,
        problem=problem,
    )


def context_from_git(status: GitResult, tags: GitResult, remote: GitResult) -> BuildContext:
    tag_refs = parse_tag_refs(tags.stdout) if tags.ok else []
    remote_info = parse_remote_url(remote.stdout) if remote.ok else None
    repository = remote_info.repository if remote_info else None
    owner = remote_info.owner if remote_info else None
    server_url = remote_info.server_url if remote_info else DEFAULT_SERVER_URL
    versions = tuple(name for name, _ in tag_refs)
    if not status.ok:
        return BuildContext(
            versions=versions, problem=status.error(), repository=repository, owner=owner, server_url=server_url
        )
    parsed = parse_status(status.stdout)
    ref = None
    if parsed.branch:
        ref = f"refs/heads/{parsed.branch}"
    elif parsed.sha:
        head_tag = pick_head_tag([name for name, commit in tag_refs if commit == parsed.sha])
        ref = f"refs/tags/{head_tag}" if head_tag else None
    return BuildContext(
        ref=ref,
        sha=parsed.sha,
        versions=versions,
        dirty=bool(parsed.changes),
        changes=parsed.changes,
        problem=None if parsed.sha else "the repository has no commits yet",
        repository=repository,
        owner=owner,
        server_url=server_url,
    )


class GitStatus(NamedTuple):
    sha: str | None
    branch: str | None
    changes: tuple[str, ...]


def parse_status(text: str) -> GitStatus:
    """Parse `git status --porcelain=v2 --branch -z`: HEAD's commit, its branch, and changed paths."""
    sha = branch = None
    changes: list[str] = []
    records = text.split("\0")
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if not record:
            continue
        if record.startswith("# branch.oid "):
            value = record.removeprefix("# branch.oid ").strip()
            sha = value if _SHA.fullmatch(value) else None  # "(initial)" before the first commit
        elif record.startswith("# branch.head "):
            value = record.removeprefix("# branch.head ").strip()
            branch = None if value == "(detached)" else value
        elif record.startswith("#"):
            continue
        elif record[0] == "1":
            changes.append(record.split(" ", 8)[-1])
        elif record[0] == "2":
            changes.append(record.split(" ", 9)[-1])
            i += 1  # a rename carries its original path as the next record
        elif record[0] == "u":
            changes.append(record.split(" ", 10)[-1])
        elif record[0] in "?!":
            changes.append(record[2:])
    return GitStatus(sha, branch, tuple(changes))


def parse_tag_refs(text: str) -> list[tuple[str, str]]:
    """Parse TAGS_ARGS output into (tag name, commit it points at) pairs."""
    refs = []
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) < 2 or not parts[0]:
            continue
        peeled = parts[2] if len(parts) > 2 and parts[2] else parts[1]
        refs.append((parts[0], peeled))
    return refs


def pick_head_tag(names: Sequence[str]) -> str | None:
    """The tag a detached HEAD is built as: the highest stable version, else the highest prerelease
    (a commit tagged v1.2.0 and v1.3.0-rc.1 is the 1.2.0 release), else any version-looking tag, so
    that `compute` can say what is wrong with it.
    """
    valid = []
    for name in names:
        try:
            version = semver.Version.parse(name.removeprefix("v"))
        except ValueError:
            continue
        valid.append((not version.prerelease, version, name))
    if valid:
        return max(valid)[2]
    return min(names) if names else None


class Remote(NamedTuple):
    host: str
    owner: str
    # "owner/repo" (GitLab subgroups give "group/sub/repo").
    repository: str
    # Web address of the forge, for the source label.
    server_url: str


_URL_REMOTE = re.compile(
    r"(?P<scheme>https?|ssh|git|git\+ssh|ssh\+git)://"
    r"(?:[^@/]*@)?"  # user or user:token, dropped: it must never reach a label or a log
    r"(?P<host>[^/:@]+)(?::(?P<port>\d*))?"
    r"/(?P<path>.+)",
    re.IGNORECASE,
)
# scp-like `[user@]host:path`; a one-letter host would be a Windows drive.
_SCP_REMOTE = re.compile(r"(?:[^@/:]+@)?(?P<host>[^@/:]{2,}):(?!//)(?P<path>[^/].*)")


def parse_remote_url(url: str) -> Remote | None:
    """Owner and repository from a git remote URL (https, ssh://, scp-like git@host:owner/repo)."""
    url = url.strip()
    match = _URL_REMOTE.fullmatch(url)
    if match:
        scheme, host, port, path = match["scheme"].lower(), match["host"], match["port"], match["path"]
        if scheme.startswith("http"):
            server = f"{scheme}://{host.lower()}{f':{port}' if port else ''}"
        else:
            server = f"https://{_web_host(host)}"
    else:
        match = _SCP_REMOTE.fullmatch(url)
        if not match:
            return None
        host, path = match["host"], match["path"]
        server = f"https://{_web_host(host)}"
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1].removesuffix(".git")
    segments = [s for s in segments if s]
    if len(segments) < 2 or segments[0].startswith("~"):
        return None
    return Remote(host.lower(), segments[0], "/".join(segments), server)


def _web_host(host: str) -> str:
    """The forge's web host behind an ssh host. Aliases from ~/.ssh/config (no dot, or github.com-work)
    are nearly always there for a second GitHub account, so they map to github.com."""
    lowered = host.lower()
    if lowered == "ssh.github.com" or lowered.startswith("github.com") or "." not in lowered:
        return "github.com"
    return lowered
