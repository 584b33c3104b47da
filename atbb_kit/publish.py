"""Publishing the built image: credentials, push order, registry checks and GitHub outputs.

Used by `inv tags` and `inv push` (atbb_kit/tasks/release_tasks.py).

`inv tags` prints one full image reference per line on stdout and nothing else there, so scripts can
read it (`for ref in $(inv tags)`); notes go to stderr. `inv push` prints only the pushed manifest digest
on stdout; the commands it runs and one progress line per tag go to stderr.

Decisions:
- Push order: the immutable tags first (1.2.3, main-<sha>), then the floating ones in the plan's order
  (1.2, then 1), `latest` last. A failure stops the sequence, so a half-finished publish never moves
  `latest` and every floating tag that did move points at an image whose immutable tag exists.
- After each push the registry itself is asked what the tag resolves to (HTTP API, registry_api.py): all
  tags of one publish must share the manifest digest of the first push. A mismatch (someone else pushed
  in between) stops before `latest`.
- Credentials: ATBB_REGISTRY_TOKEN, else GITHUB_TOKEN; user ATBB_REGISTRY_USER, else GITHUB_ACTOR. The
  token reaches `docker login` on stdin as a Secret, never in argv (visible in `ps`), logs or dry runs.
  GITHUB_TOKEN is only sent to ghcr.io (or a loopback test registry): a typo in image.registry must not
  hand a GitHub token to a stranger's host. Other registries need ATBB_REGISTRY_TOKEN.
- With a token, login and pushes use a private DOCKER_CONFIG folder (mode 0700, deleted when the task
  ends): the docker client stores the token base64-encoded, not encrypted, in config.json; this way it
  never outlives the run, does not replace the user's own login, and does not end up in a credential
  store. Without a token the user's existing `docker login` (their DOCKER_CONFIG) is used as is.
- `inv push` publishes what the local engine holds, so one platform. A multi-platform image never
  reaches the engine (buildx keeps it in its cache) and is refused with that reason.
- --dry-run still refuses what a real push would refuse (it answers "would this publish?"), but only
  notes a missing local image, so the commands can be previewed before `inv image` has run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atbb_kit.runner import Runner, Secret
    from atbb_kit.tags import TagPlan

LATEST = "latest"
# Registries GITHUB_TOKEN may be sent to (plus loopback addresses, for local and CI test registries).
GITHUB_TOKEN_REGISTRIES = frozenset({"ghcr.io"})
_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
# docker's error output, reduced to a reason: these phrases mean "nothing answered" ...
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "connection reset by peer",
    "no route to host",
    "server gave http response to https client",
    "certificate",
)
# ... and these that the registry answered no. Whole words only: a port like :40123 must not read as 401.
_REFUSED = re.compile(r"\b(unauthorized|authentication required|incorrect username or password|status: 401)\b")
_DENIED = re.compile(r"\b(denied|forbidden|status: 403)\b")


def stderr_line(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------
# Pure pieces (unit-tested as tables)


def push_order(plan: TagPlan) -> list[str]:
    """Full references in push order: immutable tags, then floating ones (plan order), `latest` last."""
    fixed = [t for t in plan.tags if t not in plan.floating]
    moving = [t for t in plan.tags if t in plan.floating and t != LATEST]
    last = [LATEST] if LATEST in plan.tags else []
    return [f"{plan.repository}:{t}" for t in (*fixed, *moving, *last)]


@dataclass(frozen=True)
class Login:
    user: str
    token: Secret
    # The variables they came from, so an auth error names what to fix.
    user_var: str
    token_var: str

    @property
    def hint(self) -> str:
        return f"check {self.user_var}/{self.token_var}"


def registry_login(environ: Mapping[str, str], registry: str) -> tuple[Login | None, list[str]]:
    """The login to perform (None: rely on the docker client's existing login) and notes for stderr."""
    from atbb_kit.errors import KitError
    from atbb_kit.registry_api import is_loopback
    from atbb_kit.runner import Secret

    notes: list[str] = []
    token_var = next((v for v in ("ATBB_REGISTRY_TOKEN", "GITHUB_TOKEN") if environ.get(v, "").strip()), None)
    from_github = token_var == "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
    if from_github and registry.lower() not in GITHUB_TOKEN_REGISTRIES and not is_loopback(registry):
        notes.append(
            f"note: GITHUB_TOKEN is only sent to ghcr.io, not to {registry}; set ATBB_REGISTRY_TOKEN to log in there"
        )
        token_var = None
    if token_var is None:
        if environ.get("ATBB_REGISTRY_USER", "").strip():
            notes.append("note: ATBB_REGISTRY_USER is set but no token is; using the docker client's existing login")
        return None, notes
    user_var = next((v for v in ("ATBB_REGISTRY_USER", "GITHUB_ACTOR") if environ.get(v, "").strip()), None)
    if user_var is None:
        raise KitError(
            f"{token_var} is set but no registry user is",
            "set ATBB_REGISTRY_USER (in GitHub Actions GITHUB_ACTOR is used)",
        )
    token = Secret(environ[token_var].strip())
    return Login(environ[user_var].strip(), token, user_var, token_var), notes


def failure_reason(output: str) -> str:
    """The gist of docker's complaint, for a one-line error: a known phrase, else its last line."""
    lowered = output.lower()
    for phrase in _UNREACHABLE:
        if phrase in lowered:
            return phrase
    if _REFUSED.search(lowered):
        return "unauthorized"
    if _DENIED.search(lowered):
        return "denied"
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    return last.removeprefix("Error response from daemon: ")[:160]


def is_unreachable(reason: str) -> bool:
    return reason in _UNREACHABLE


def push_digest(output: str) -> str | None:
    """The digest `docker push` reports (`1.2.3: digest: sha256:... size: 528`)."""
    found = _PUSH_DIGEST.findall(output)
    return found[-1] if found else None


def github_push_summary(repository: str, digest: str, refs: Sequence[str]) -> str:
    lines = [f"### Pushed `{repository}`", "", f"Digest `{digest}`", "", "| Tag | Digest |", "| --- | --- |"]
    lines += [f"| `{ref.rsplit(':', 1)[1]}` | `{digest[:19]}…` |" for ref in refs]
    return "\n".join(lines) + "\n"


def write_github(environ: Mapping[str, str], outputs: Mapping[str, str], summary: str) -> None:
    """Append step outputs to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY (Actions only)."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return
    from atbb_kit.tags import github_output_lines

    for var, text in (("GITHUB_OUTPUT", github_output_lines(outputs)), ("GITHUB_STEP_SUMMARY", summary)):
        path = environ.get(var, "")
        if not path:
            stderr_line(f"warning: GITHUB_ACTIONS=true but {var} is not set; step outputs not written")
            continue
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(text)


# --------------------------------------------------------------------------------------------------------
# The push sequence, with its I/O passed in so unit tests can drive it with fakes.

DigestQuery = Callable[[str], str | None]


def publish(
    run: Runner,
    docker: str,
    refs: Sequence[str],
    *,
    registry: str,
    config_dir: Path | None,
    registry_digest: DigestQuery,
    progress: Callable[[str], None] = stderr_line,
) -> str | None:
    """Push `refs` in order and check each against the registry; return the digest they all share.

    Stops at the first failure, so nothing after it (above all `latest`) is pushed.
    """
    from atbb_kit import commands
    from atbb_kit.registry_api import RegistryError

    expected: str | None = None
    total = len(refs)
    for i, ref in enumerate(refs, start=1):
        res = run.run(commands.docker_push(docker, ref, config_dir=config_dir), check=False, capture=True)
        if run.dry_run:
            continue
        if not res.ok:
            reason = failure_reason(res.stderr + "\n" + res.stdout)
            if is_unreachable(reason):
                what, fix = f"registry {registry} is not reachable ({reason})", "check that the registry is up"
            elif reason in ("unauthorized", "denied"):
                what = f"registry {registry} refused the push of {ref} ({reason})"
                fix = "the token needs write access to the package (packages: write in GitHub Actions)"
            else:
                what, fix = f"docker push {ref} failed ({reason})", commands.PUSH_HINT
            raise RegistryError(what + _progress_note(i - 1, refs), fix)
        # From here on `ref` is pushed; what is left to say is whether it points where it should.
        reported = push_digest(res.stdout)
        try:
            actual = registry_digest(ref) or reported
        except RegistryError as exc:
            raise RegistryError(f"{exc.what} while checking {ref}" + _progress_note(i, refs), exc.fix) from None
        if actual is None:
            raise RegistryError(
                f"the registry does not know {ref} right after pushing it" + _progress_note(i, refs),
                "retry; if it persists the registry may be read-only or caching",
            )
        expected = expected or actual
        if actual != expected or (reported and reported != expected):
            raise RegistryError(
                f"{ref} resolves to {actual} in the registry, not {expected} like {refs[0]} "
                "(another push may have raced this one)" + _progress_note(i, refs),
                "rebuild and rerun `inv push`",
            )
        progress(f"pushed {i}/{total} {ref} {expected}")
    return expected


def _progress_note(done: int, refs: Sequence[str]) -> str:
    """`; 1 of 4 tags pushed, not pushed: 1, latest (`latest` untouched)` for a one-line error."""
    rest = [r.rsplit(":", 1)[1] for r in refs[done:]]
    note = f"; {done} of {len(refs)} tags pushed"
    if rest:
        note += f", not pushed: {', '.join(rest)}"
    if LATEST in rest:
        note += " (`latest` untouched)"
    return note


@contextmanager
def private_docker_config(enabled: bool):
    """A throwaway DOCKER_CONFIG folder (0700) for one login, removed afterwards; None when disabled."""
    if not enabled:
        yield None
        return
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="atbb-docker-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def docker_client() -> str:
    """The docker client to talk to the registry with: the one on PATH, else Debian's /usr/bin/docker.

    Any client version can log in and push; no builder is needed, so no probing (detect_cli) either.
    """
    import shutil

    return shutil.which("docker") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
